"""Adapters: implementations of the ports over third-party libraries, one extra each."""
