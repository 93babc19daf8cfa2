# Generated from the _async package by scripts/generate_sync.py: do not edit.
