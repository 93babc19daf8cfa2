"""Shares the name prefix of ``handlers``: scanning ``handlers`` must not register this."""

from typing import Any

from messagebus import async_listen
from tests.unit.model import ReviewBook


@async_listen
async def shadow_review_book(command: ReviewBook, uow: Any) -> str:
    return "the shadow handler ran"
