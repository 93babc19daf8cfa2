# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""The unit of work, message store and repository base of the SQLAlchemy adapter, synchronous."""
