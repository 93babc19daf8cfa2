"""A small consuming service for the tests: its messages, a unit of work in memory, a bus."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from messagebus import (
    AsyncAbstractUnitOfWork,
    AsyncMessageBus,
    AsyncUnitOfWorkTransaction,
    Command,
    Event,
    Message,
    MessageSerializer,
    Metadata,
)


class BookRegistered(Event):
    """Version 3: a title and a number of pages (version 1 had an id only)."""

    id: str
    title: str
    pages: int
    metadata: Metadata = Metadata(name="book_registered", schema_version=3, published=True)


class RegisterBook(Command):
    id: str
    title: str
    metadata: Metadata = Metadata(name="register_book", schema_version=1)


class Store:
    """The committed state of the service: how many times each message had its effect."""

    def __init__(self) -> None:
        self.applied: Counter[str] = Counter()
        self.commits = 0


class UnitOfWork(AsyncAbstractUnitOfWork[Any, Any, Any]):
    """Stages the effects of a transaction and applies them to the store on commit."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.staged: list[str] = []

    async def commit(self) -> None:
        self.store.applied.update(self.staged)
        self.store.commits += 1
        self.staged.clear()

    async def rollback(self) -> None:
        self.staged.clear()


def make_bus() -> AsyncMessageBus[UnitOfWork]:
    """A bus whose handlers stage one effect per message, keyed by its business id."""
    bus: AsyncMessageBus[UnitOfWork] = AsyncMessageBus()

    async def on_registered(
        event: BookRegistered, transaction: AsyncUnitOfWorkTransaction[UnitOfWork]
    ) -> None:
        transaction.uow.staged.append(f"registered:{event.id}:{event.title}:{event.pages}")

    async def register(
        command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[UnitOfWork]
    ) -> None:
        transaction.uow.staged.append(f"register:{command.id}")
        await asyncio.sleep(0)  # lets concurrent consumers interleave within a transaction

    bus.add_listener(BookRegistered, on_registered)
    bus.add_listener(RegisterBook, register)
    return bus


def envelope(message: Message[Any]) -> bytes:
    """The body a broker delivers for ``message``."""
    return json.dumps(dict(MessageSerializer().serialize_message(message))).encode()


def raw_envelope(type_: str, payload: Any, message_id: str | None = None) -> bytes:
    """An envelope of any type and payload, as another service might send."""
    body: dict[str, Any] = {
        "id": message_id or "0193b3c4-3c4a-7f5e-8d1a-2b3c4d5e6f70",
        "created_at": "2025-01-01T00:00:00+00:00",
        "type": type_,
        "payload": payload if isinstance(payload, str) else json.dumps(payload),
    }
    return json.dumps(body).encode()
