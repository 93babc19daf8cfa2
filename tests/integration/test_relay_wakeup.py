"""A commit wakes the relay: in the process (SQLite and PostgreSQL), through LISTEN/NOTIFY
on PostgreSQL; polling stays the fallback.

Every relay here polls every 60 seconds: a row delivered within the test's time was
delivered because a commit woke the relay.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from messagebus import SinkholeMetricsStore
from messagebus.adapters.sqlalchemy import AsyncOutboxRelay, AsyncSqlAlchemyUnitOfWork
from messagebus.adapters.sqlalchemy.outbox.wakeup import notify_statement
from tests.integration.relay_support import (
    Numbered,
    OutboxDatabase,
    RecordingTransport,
    eventually,
    kill_backends,
    named_engine,
    outbox_database,
)

NEVER = 60.0  # a poll interval no test waits for


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OutboxDatabase]:
    async with outbox_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[OutboxDatabase]:
    async with outbox_database("postgresql", tmp_path) as database:
        yield database


class UnitOfWork(AsyncSqlAlchemyUnitOfWork[Any, SinkholeMetricsStore]):
    pass


async def publish(db: OutboxDatabase, n: int, *, commit: bool = True) -> str:
    """Write one published event through the SQL unit of work; return its id."""
    uow = UnitOfWork(db.engine, tables=db.tables, stream="a")
    event = Numbered(stream="a", n=n)
    async with uow as transaction:
        await uow.messagestore.add(event)
        if commit:
            await transaction.commit()
        else:
            await transaction.rollback()
    return str(event.message_id)


async def running(relay: AsyncOutboxRelay) -> asyncio.Task[None]:
    """Start ``relay.run()`` and let it reach its idle wait."""
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(0.2)
    return task


async def test_a_commit_of_the_unit_of_work_wakes_the_relay(db: OutboxDatabase) -> None:
    transport = RecordingTransport()
    relay = AsyncOutboxRelay(db.new_engine(), transport, outbox=db.outbox, poll_interval=NEVER)
    task = await running(relay)
    try:
        first = await publish(db, 0)

        async def sent_first() -> bool:
            """the relay sent the committed row without polling"""
            return [first] == transport.sent

        await eventually(sent_first)
        await publish(db, 1, commit=False)  # a rollback wakes nobody, and sends nothing
        second = await publish(db, 2)

        async def sent_second() -> bool:
            """the relay sent the second committed row"""
            return [first, second] == transport.sent

        await eventually(sent_second)
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=10)
        await relay.engine.dispose()


async def test_notify_wakes_a_relay_of_another_process(pg: OutboxDatabase) -> None:
    db = pg
    transport = RecordingTransport()
    engine = named_engine(db, f"{db.prefix}listener")
    relay = AsyncOutboxRelay(engine, transport, outbox=db.outbox, poll_interval=NEVER)
    task = await running(relay)
    try:
        # Written as another process would: rows and pg_notify, no in-process signal.
        ids = await db.add({"a": 2})
        async with db.engine.begin() as conn:
            await conn.execute(notify_statement(db.outbox.name))

        async def sent() -> bool:
            """the notified relay sent the rows"""
            return ids == transport.sent

        await eventually(sent)
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=10)
        await engine.dispose()


async def test_polling_delivers_when_no_commit_wakes_the_relay(db: OutboxDatabase) -> None:
    transport = RecordingTransport()
    relay = AsyncOutboxRelay(db.engine, transport, outbox=db.outbox, poll_interval=0.05)
    task = await running(relay)
    try:
        ids = await db.add({"a": 2})  # no NOTIFY, no in-process signal

        async def sent() -> bool:
            """the relay found the rows by polling"""
            return ids == transport.sent

        await eventually(sent)
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=10)


async def test_the_listener_comes_back_after_its_session_is_killed(pg: OutboxDatabase) -> None:
    db = pg
    transport = RecordingTransport()
    name = f"{db.prefix}listener"
    engine = named_engine(db, name)
    relay = AsyncOutboxRelay(engine, transport, outbox=db.outbox, poll_interval=0.05)
    task = await running(relay)
    try:
        assert await kill_backends(db, name) >= 1
        await asyncio.sleep(0.3)  # a few polls: the relay listens again
        relay.poll_interval = NEVER
        await asyncio.sleep(0.1)  # the poll under way ends; from now on only NOTIFY wakes it
        ids = await db.add({"a": 1})
        async with db.engine.begin() as conn:
            await conn.execute(notify_statement(db.outbox.name))

        async def sent() -> bool:
            """the relay, listening again, sent the row"""
            return ids == transport.sent

        await eventually(sent)
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=10)
        await engine.dispose()
