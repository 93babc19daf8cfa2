# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""A package of handlers, scanned by the bus tests."""
