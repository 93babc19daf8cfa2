# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""The tracing of the async bus and unit of work; its sync twin is generated."""
