# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""The synchronous service layer, the source of the generated ``_sync`` package."""
