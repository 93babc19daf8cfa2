# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""Scans a package relative to its own: ``bus.scan(".handlers")``."""

from typing import Any

from messagebus import SyncMessageBus


def scan_relative(bus: SyncMessageBus[Any]) -> None:
    bus.scan(".handlers")
