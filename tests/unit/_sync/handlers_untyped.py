# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""A handler whose first parameter has no message annotation: scanning it fails."""

from typing import Any

from messagebus import sync_listen


@sync_listen
def untyped(command: Any, transaction: Any) -> None:
    pass  # pragma: no cover
