"""Poison rows and slow streams: max_attempts, on_dead, concurrency, the relay's counters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from messagebus.adapters.sqlalchemy import AsyncOutboxRelay, Backoff
from messagebus.adapters.sqlalchemy.outbox.relay import DEFAULT_MAX_ATTEMPTS
from tests.integration.relay_support import (
    OutboxDatabase,
    RecordingTransport,
    eventually,
    outbox_database,
)

# No wait between attempts: each run_once() tries the failing head again.
NO_WAIT = Backoff(base=1e-6, cap=1e-6, jitter=0)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OutboxDatabase]:
    async with outbox_database(request.param, tmp_path) as database:
        yield database


@pytest.mark.parametrize("on_dead", ["block", "skip"])
async def test_a_row_failing_max_attempts_times_is_dead_counted_and_logged_once(
    db: OutboxDatabase, on_dead: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ids = await db.add({"a": 3, "b": 2})
    stream_of = await db.stream_of()
    poison = [i for i in ids if stream_of[i] == "a"][1]
    transport = RecordingTransport(fails=lambda message: message["id"] == poison)
    relay = AsyncOutboxRelay(
        db.engine, transport, outbox=db.outbox, backoff=NO_WAIT, max_attempts=3, on_dead=on_dead
    )

    with caplog.at_level(logging.WARNING, logger="messagebus.relay"):
        for _ in range(6):
            await relay.run_once()

    [dead] = [row for row in await db.rows() if str(row["message_id"]) == poison]
    assert dead["dead_at"] is not None
    assert dead["delivered_at"] is None
    assert 3 == dead["attempts"]
    assert "ConnectionError: broker down" == dead["last_error"]
    assert 3 == relay.failed_attempts
    assert 1 == relay.dead
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert 1 == len(errors)
    assert poison not in transport.sent
    a_rows = [i for i in ids if stream_of[i] == "a"]
    sent_a = [i for i in transport.sent if stream_of[i] == "a"]
    if on_dead == "block":
        assert a_rows[:1] == sent_a  # the row after the dead one waits
        assert 1 == await relay.pending()
    else:
        assert [a_rows[0], a_rows[2]] == sent_a
        assert 0 == await relay.pending()
    assert [i for i in ids if stream_of[i] == "b"] == [
        i for i in transport.sent if stream_of[i] == "b"
    ]
    assert len(transport.sent) == relay.delivered


async def test_max_attempts_none_tries_forever(db: OutboxDatabase) -> None:
    await db.add({"a": 1})
    transport = RecordingTransport(fails=lambda message: True)
    relay = AsyncOutboxRelay(
        db.engine, transport, outbox=db.outbox, backoff=NO_WAIT, max_attempts=None
    )

    for _ in range(DEFAULT_MAX_ATTEMPTS + 2):
        await relay.run_once()

    [row] = await db.rows()
    assert row["dead_at"] is None
    assert DEFAULT_MAX_ATTEMPTS + 2 == row["attempts"]
    assert 0 == relay.dead


async def test_an_operator_retry_unblocks_the_stream(db: OutboxDatabase) -> None:
    ids = await db.add({"a": 3})
    broken = True
    transport = RecordingTransport(fails=lambda message: broken)
    relay = AsyncOutboxRelay(
        db.engine, transport, outbox=db.outbox, backoff=NO_WAIT, max_attempts=1
    )
    await relay.run_once()
    assert 0 == await relay.run_once()  # blocked by its dead head

    broken = False
    outbox = db.outbox
    async with db.engine.begin() as conn:  # what `messagebus-relay dead retry` does
        await conn.execute(outbox.update().values(dead_at=None, attempts=0))
    await relay.run_once()

    assert ids == transport.sent


class Gate(RecordingTransport):
    """Holds every send of ``slow`` until ``opened`` is set; sends the others at once."""

    def __init__(self, slow: str, stream_of: Mapping[str, str]) -> None:
        super().__init__()
        self.slow = slow
        self.stream_of = stream_of
        self.opened = asyncio.Event()
        self.holding = asyncio.Event()

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        if self.stream_of[message["id"]] == self.slow:
            self.holding.set()
            await self.opened.wait()
        await super().send_message_serialized(message)


async def test_a_hung_send_holds_its_own_stream_only(db: OutboxDatabase) -> None:
    ids = await db.add({"slow": 2})
    ids += await db.add({f"s{n}": 3 for n in range(5)})
    stream_of = await db.stream_of()
    transport = Gate("slow", stream_of)
    relay = AsyncOutboxRelay(
        db.engine, transport, outbox=db.outbox, concurrency=2, poll_interval=0.01
    )
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.wait_for(transport.holding.wait(), timeout=10)

        async def the_others_went() -> bool:
            """every row of the other streams was sent while one send hung"""
            return len(transport.sent) == len(ids) - 2

        await eventually(the_others_went)
        assert 1 == relay.in_flight
        assert not [i for i in transport.sent if stream_of[i] == "slow"]
        transport.opened.set()

        async def all_went() -> bool:
            """every row was sent"""
            return len(transport.sent) == len(ids)

        await eventually(all_went)
    finally:
        relay.stop()
        transport.opened.set()
        await asyncio.wait_for(task, timeout=10)
    assert 0 == relay.in_flight
    assert len(ids) == relay.delivered


async def test_a_send_that_times_out_frees_its_stream_for_the_next_attempt(
    db: OutboxDatabase,
) -> None:
    ids = await db.add({"slow": 1, "fast": 2})
    stream_of = await db.stream_of()
    transport = Gate("slow", stream_of)
    relay = AsyncOutboxRelay(
        db.engine, transport, outbox=db.outbox, send_timeout=0.05, backoff=NO_WAIT
    )

    await relay.run_once()

    assert [i for i in ids if stream_of[i] == "fast"] == transport.sent
    [slow] = [row for row in await db.rows() if row["stream"] == "slow"]
    assert slow["last_error"].startswith("TimeoutError")
    assert 1 == relay.failed_attempts
