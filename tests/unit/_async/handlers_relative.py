"""Scans a package relative to its own: ``bus.scan(".handlers")``."""

from typing import Any

from messagebus import AsyncMessageBus


def scan_relative(bus: AsyncMessageBus[Any]) -> None:
    bus.scan(".handlers")
