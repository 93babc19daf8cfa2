"""Async behaviour that has no sync twin: task cancellation."""

import asyncio

import pytest

from tests.unit._async.fakes import AsyncInMemoryUnitOfWork
from tests.unit.model import BookRegistered


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
