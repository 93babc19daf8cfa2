"""Async and sync handlers side by side in one module."""

from typing import Any

from messagebus import async_listen, sync_listen
from tests.unit.model import BookRegistered, RegisterBook


@async_listen
async def register_async(command: RegisterBook, transaction: Any) -> str:
    return "async"  # pragma: no cover


@sync_listen
def register_sync(command: RegisterBook, transaction: Any) -> str:
    return "sync"  # pragma: no cover


@sync_listen
def on_registered_sync(event: BookRegistered, transaction: Any) -> None:
    pass  # pragma: no cover
