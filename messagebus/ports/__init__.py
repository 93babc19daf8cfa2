"""Ports: the abstract interfaces that adapters implement."""
