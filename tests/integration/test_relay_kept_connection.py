"""On PostgreSQL a running relay keeps the connection of its last statement for the next.

It holds one connection more than its listener while it runs, survives that connection
dying between two statements, gives it back when it stops, and keeps none that a small
pool would miss, whether the application or another relay shares it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from messagebus.adapters.sqlalchemy import AsyncOutboxRelay, Backoff
from tests.integration.relay_support import (
    OutboxDatabase,
    RecordingTransport,
    eventually,
    in_order_per_stream,
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


async def test_a_relay_keeps_no_connection_that_a_small_shared_pool_needs(
    db: OutboxDatabase,
) -> None:
    # Two connections in all: the listener's, and one for the relay's statements and
    # the application's transactions, in turn.
    engine = create_async_engine(db.engine.url, pool_size=2, max_overflow=0, pool_timeout=2)
    transport = RecordingTransport()
    relay = AsyncOutboxRelay(engine, transport, outbox=db.outbox, poll_interval=60, backoff=FAST)
    task = asyncio.create_task(relay.run())
    try:
        ids = await db.add({"a": 3})
        relay.wake()

        async def all_sent() -> bool:
            """every row was sent"""
            return sorted(transport.sent) == sorted(ids)

        await eventually(all_sent)

        async def idle_with_its_listener_only() -> bool:
            """the relay holds its listener's connection, and no other"""
            return engine.pool.checkedout() == 1  # type: ignore[attr-defined]

        await eventually(idle_with_its_listener_only)
        # The application gets the other connection at once (pool_timeout=2 otherwise).
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=10)
        await engine.dispose()


async def test_two_relays_on_one_small_pool_send_every_row_once_in_order(
    db: OutboxDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    # Two listeners and one connection left, which the two relays take in turn: a relay
    # that kept it would starve the other one (pool_timeout=2, then errors).
    engine = create_async_engine(db.engine.url, pool_size=3, max_overflow=0, pool_timeout=2)
    ids = await db.add({f"s{n}": 20 for n in range(3)})
    transports = [RecordingTransport(delay=0.001), RecordingTransport(delay=0.001)]
    relays = [
        AsyncOutboxRelay(
            engine, transport, outbox=db.outbox, poll_interval=0.05, backoff=FAST, batch_size=5
        )
        for transport in transports
    ]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    try:

        async def nothing_pending() -> bool:
            """every row was marked delivered"""
            return all(row["delivered_at"] is not None for row in await db.rows())

        await eventually(nothing_pending, timeout=30)
    finally:
        for relay in relays:
            relay.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
    try:
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
    sent = transports[0].sent + transports[1].sent
    assert sorted(sent) == sorted(ids)  # none lost, none sent twice
    stream_of = await db.stream_of()
    for transport in transports:
        assert in_order_per_stream(transport.sent, ids, stream_of)
    # Neither relay waited for a connection until the pool gave up.
    assert [r.message for r in caplog.records if r.levelno >= logging.WARNING] == []
