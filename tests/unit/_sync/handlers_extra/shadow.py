# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""Shares the name prefix of ``handlers``: scanning ``handlers`` must not register this."""

from typing import Any

from messagebus import sync_listen
from tests.unit.model import ReviewBook


@sync_listen
def shadow_review_book(command: ReviewBook, uow: Any) -> str:
    return "the shadow handler ran"
