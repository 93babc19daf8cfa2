"""On PostgreSQL a running relay keeps the connection of its last statement for the next.

It holds one connection more than its listener while it runs, survives that connection
dying between two statements, and gives it back when it stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from messagebus.adapters.sqlalchemy import AsyncOutboxRelay, Backoff
from tests.integration.relay_support import (
    OutboxDatabase,
    RecordingTransport,
    eventually,
    kill_backends,
    named_engine,
    outbox_database,
)

FAST = Backoff(base=0.05, factor=2, cap=0.2, jitter=0.5)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[OutboxDatabase]:
    async with outbox_database("postgresql", tmp_path) as database:
        yield database


async def test_the_kept_connection_is_replaced_when_it_dies_and_given_back_at_the_end(
    db: OutboxDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"{db.prefix}kept"
    engine = named_engine(db, name)
    transport = RecordingTransport()
    # No poll during the test: a commit's wake-up, or the test's, starts each delivery.
    relay = AsyncOutboxRelay(engine, transport, outbox=db.outbox, poll_interval=60, backoff=FAST)
    task = asyncio.create_task(relay.run())
    try:
        first = await db.add({"a": 3, "b": 2})
        relay.wake()

        async def all_sent() -> bool:
            """every row was sent"""
            return sorted(transport.sent) == sorted(first)

        await eventually(all_sent)

        async def idle_with_two() -> bool:
            """the relay holds its listener's connection and the one it kept, no more"""
            return engine.pool.checkedout() == 2  # type: ignore[attr-defined]

        await eventually(idle_with_two)
        # They die between two statements (with those idle in the engine's pool): the
        # next statement runs on a new connection.
        assert await kill_backends(db, name) >= 2
        caplog.clear()
        second = await db.add({"a": 2, "c": 1})
        relay.wake()

        async def all_sent_once() -> bool:
            """every row of both rounds was sent, once"""
            return sorted(transport.sent) == sorted(first + second)

        await eventually(all_sent_once)
        assert len(transport.sent) == len(set(transport.sent))
        # Replaced at once, as a dead connection of the pool is: no error, no backoff.
        assert [r.message for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=10)
    try:
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert all(row["delivered_at"] is not None for row in await db.rows())
    finally:
        await engine.dispose()
