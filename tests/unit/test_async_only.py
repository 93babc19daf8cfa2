"""Async behaviour that has no sync twin: task cancellation, tasks run at once."""

import asyncio
from typing import Any

import pytest

from messagebus import AsyncMessageBus
from tests.unit._async.fakes import AsyncInMemoryUnitOfWork
from tests.unit.model import Book, BookRegistered, RegisterBook


async def store_published_event(uow: AsyncInMemoryUnitOfWork) -> None:
    await uow.messagestore.add(BookRegistered(id="1", title="Dune"))


async def test_cancellation_rolls_back() -> None:
    uow = AsyncInMemoryUnitOfWork()
    started = asyncio.Event()

    async def handler() -> None:
        async with uow as transaction:
            await store_published_event(uow)
            started.set()
            await asyncio.sleep(10)
            await transaction.commit()

    task = asyncio.ensure_future(handler())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ["rollback"] == uow.calls
    assert [] == uow.transport.sent


async def test_commands_handled_at_once_each_cause_their_own_events() -> None:
    """Fifty tasks interleave at every await: no event is given another command's cause."""
    caused: list[tuple[object, object, object]] = []

    async def register(command: RegisterBook, transaction: Any) -> None:
        await asyncio.sleep(0)
        book = Book(id=command.id, title=command.title)
        book.messages.append(BookRegistered(id=command.id, title=command.title))
        await transaction.uow.books.add(book)
        await asyncio.sleep(0)

    async def record(event: BookRegistered, transaction: Any) -> None:
        await asyncio.sleep(0)
        caused.append((event.id, event.causation_id, event.correlation_id))

    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.add_listener(RegisterBook, register)
    bus.add_listener(BookRegistered, record)
    commands = {str(n): RegisterBook(id=str(n), title="Dune") for n in range(50)}

    async def handle(command: RegisterBook) -> None:
        uow = AsyncInMemoryUnitOfWork()
        async with uow as transaction:
            await bus.handle(command, transaction)
            await transaction.commit()

    await asyncio.gather(*(handle(command) for command in commands.values()))
    assert 50 == len(caused)
    for book_id, causation, correlation in caused:
        assert commands[str(book_id)].message_id == causation == correlation
