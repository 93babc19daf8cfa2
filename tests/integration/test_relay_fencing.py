"""Fencing: a relay never sends a row of a stream it no longer holds.

The PostgreSQL sessions of the relays are killed (``pg_terminate_backend``) again and
again while two or four relays deliver; every send is logged, and the log is checked for
lost rows, out-of-order deliveries and interleaved duplicates.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, literal, update

from messagebus import AsyncAbstractEventstreamTransport
from messagebus.adapters.sqlalchemy import AsyncOutboxRelay, Backoff
from tests.integration.relay_support import (
    OutboxDatabase,
    RecordingTransport,
    kill_backends,
    named_engine,
    outbox_database,
)

FAST = Backoff(base=0.02, factor=2, cap=0.1, jitter=0.5)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OutboxDatabase]:
    async with outbox_database(request.param, tmp_path) as database:
        yield database


class SharedLog(AsyncAbstractEventstreamTransport):
    """One relay's transport, appending ``(relay, id)`` to a log every relay shares."""

    def __init__(self, log: list[tuple[str, str]], name: str) -> None:
        self.log = log
        self.name = name

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        await asyncio.sleep(0.002)  # let the other relays and the killer run in between
        self.log.append((self.name, message["id"]))


def check_log(
    log: list[tuple[str, str]], ids: list[str], stream_of: Mapping[str, str]
) -> dict[str, int]:
    """Count what went wrong in ``log``, per kind: lost, out of order, interleaved, duplicates.

    Per stream, each send must be the next row of the stream, or a replay from an
    earlier row (a relay that re-sends rows whose marks were lost); anything else is out of
    order if it skips a row never sent, interleaved otherwise.
    """
    counts = {"lost": len(set(ids) - {i for _, i in log}), "out_of_order": 0, "interleaved": 0}
    counts["duplicates"] = len(log) - len({i for _, i in log})
    last: dict[str, int] = {}
    seen: set[str] = set()
    for _, message_id in log:
        stream = stream_of[message_id]
        rows = [i for i in ids if stream_of[i] == stream]
        position = rows.index(message_id)
        previous = last.get(stream, -1)
        if position > previous + 1:
            if rows[position - 1] not in seen:
                counts["out_of_order"] += 1
            else:
                counts["interleaved"] += 1
        last[stream] = position
        seen.add(message_id)
    return counts


async def pending_rows(db: OutboxDatabase) -> int:
    """Count the pending rows through the test's own engine, which nobody kills."""
    return sum(
        1 for row in await db.rows() if row["delivered_at"] is None and row["dead_at"] is None
    )


async def deliver_while_killing(
    db: OutboxDatabase, relays: int, streams: int, rows: int
) -> dict[str, int]:
    ids = await db.add({f"s{n}": rows for n in range(streams)})
    log: list[tuple[str, str]] = []
    names = [f"{db.prefix}r{n}" for n in range(relays)]
    engines = [named_engine(db, name) for name in names]
    running = [
        AsyncOutboxRelay(
            engine,
            SharedLog(log, name),
            outbox=db.outbox,
            batch_size=10,
            poll_interval=0.01,
            backoff=FAST,
            commit_interval=0.02,
            send_timeout=0.5,
        )
        for engine, name in zip(engines, names, strict=True)
    ]
    tasks = [asyncio.create_task(relay.run()) for relay in running]
    kills = 0
    try:
        async with asyncio.timeout(60):
            while await pending_rows(db):
                if db.kind == "postgresql" and log:
                    kills += await kill_backends(db, random.choice(names))
                await asyncio.sleep(random.uniform(0.005, 0.03))
    finally:
        for relay in running:
            relay.stop()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=30)
        for engine in engines:
            await engine.dispose()
    counts = check_log(log, ids, await db.stream_of())
    counts["kills"] = kills
    counts["relays that sent"] = len({name for name, _ in log})
    return counts


@pytest.mark.parametrize("relays", [2, 4])
async def test_killed_sessions_lose_nothing_and_never_interleave(
    db: OutboxDatabase, relays: int
) -> None:
    counts = await deliver_while_killing(db, relays, streams=6, rows=40)

    print(counts)  # the figures of the report: pytest -s shows them
    assert 0 == counts["lost"]
    assert 0 == counts["out_of_order"]
    assert 0 == counts["interleaved"]
    if db.kind == "postgresql":
        assert counts["kills"] > 0, "no session was killed during the delivery"
    assert counts["relays that sent"] > 1


async def test_a_relay_whose_stream_was_taken_stops_before_its_next_send(
    db: OutboxDatabase,
) -> None:
    ids = await db.add({"a": 10})
    outbox = db.outbox
    tampered: list[str] = []

    async def take_the_stream(message: Mapping[str, Any]) -> None:
        # As another relay would once the lease ended: a new lease on the rows.
        if not tampered:
            tampered.append(message["id"])
            async with db.engine.begin() as conn:
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.delivered_at.is_(None))
                    .values(available_at=_one_second_later(db))
                )

    class Slow(RecordingTransport):
        async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
            await take_the_stream(message)
            await asyncio.sleep(0.06)
            await super().send_message_serialized(message)

    transport = Slow()
    # A send may take 0.1s: after 0.1s of its 0.3s lease, the relay renews before each
    # send, and finds the rows taken.
    relay = AsyncOutboxRelay(db.engine, transport, outbox=db.outbox, send_timeout=0.1)

    await relay.run_once()

    # One send, or two on a fast machine: then the first renewal finds the rows taken.
    assert 1 <= len(transport.sent) <= 2
    assert ids[: len(transport.sent)] == transport.sent
    rows = await db.rows()
    assert all(row["delivered_at"] is None for row in rows[len(transport.sent) :])


def _one_second_later(db: OutboxDatabase) -> Any:
    """The rows' ``available_at`` plus a second, in SQL: the end of another lease."""
    available_at = db.outbox.c.available_at
    if db.kind == "postgresql":
        return available_at + literal(timedelta(seconds=1))
    return func.strftime("%Y-%m-%d %H:%M:%f000", available_at, "+1 seconds")


async def test_several_relays_on_sqlite_or_postgresql_send_each_row_once(
    db: OutboxDatabase,
) -> None:
    ids = await db.add({f"s{n}": 15 for n in range(4)})
    log: list[tuple[str, str]] = []
    engines = [db.new_engine() for _ in range(3)]
    relays = [
        AsyncOutboxRelay(
            engine, SharedLog(log, f"r{n}"), outbox=db.outbox, batch_size=5, poll_interval=0.01
        )
        for n, engine in enumerate(engines)
    ]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    try:
        async with asyncio.timeout(30):
            while await pending_rows(db):
                await asyncio.sleep(0.02)
    finally:
        for relay in relays:
            relay.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
        for engine in engines:
            await engine.dispose()

    counts = check_log(log, ids, await db.stream_of())
    assert {"lost": 0, "out_of_order": 0, "interleaved": 0, "duplicates": 0} == counts
