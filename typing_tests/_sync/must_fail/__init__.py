# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""Code that mypy --strict must refuse: see scripts/check_must_fail.py."""
