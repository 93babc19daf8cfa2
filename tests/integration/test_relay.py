"""The outbox relay in-process, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, update

from messagebus.adapters.sqlalchemy import AsyncOutboxRelay, Backoff, messagebus_tables
from tests.integration.relay_support import (
    OutboxDatabase,
    RecordingTransport,
    eventually,
    in_order_per_stream,
    outbox_database,
)

FAST = Backoff(base=0.05, factor=2, cap=0.2, jitter=0.5)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OutboxDatabase]:
    async with outbox_database(request.param, tmp_path) as database:
        yield database


def relay_for(
    db: OutboxDatabase, transport: RecordingTransport, **options: Any
) -> AsyncOutboxRelay:
    options.setdefault("backoff", FAST)
    return AsyncOutboxRelay(db.engine, transport, outbox=db.outbox, **options)


async def drain(relay: AsyncOutboxRelay, *, rounds: int = 200) -> None:
    """Run batches until nothing is pending, for at most ``rounds`` batches."""
    for _ in range(rounds):
        if not await relay.pending():
            return
        if not await relay.run_once():
            await asyncio.sleep(0.02)
    pytest.fail(f"{await relay.pending()} rows still pending after {rounds} batches")


async def test_delivers_every_row_in_order_and_marks_it(db: OutboxDatabase) -> None:
    ids = await db.add({"a": 7, "b": 5})
    transport = RecordingTransport()
    relay = relay_for(db, transport, batch_size=4)

    await drain(relay)

    assert sorted(ids) == sorted(transport.sent)
    assert in_order_per_stream(transport.sent, ids, await db.stream_of())
    rows = await db.rows()
    assert [None] * 12 == [row["last_error"] for row in rows]
    assert [1] * 12 == [row["attempts"] for row in rows]
    assert all(row["delivered_at"] is not None for row in rows)
    assert 12 == relay.delivered
    assert 0 == await relay.pending()


@dataclass
class StreamRecordingTransport(RecordingTransport):
    streams: list[tuple[str, str | None]] = field(default_factory=list)

    async def send_envelope(self, envelope: Mapping[str, Any], *, stream: str | None) -> None:
        self.streams.append((envelope["id"], stream))
        await super().send_envelope(envelope, stream=stream)


async def test_the_transport_receives_the_stream_of_each_row(db: OutboxDatabase) -> None:
    ids = await db.add({"a": 2, "b": 1})
    stream_of = await db.stream_of()
    transport = StreamRecordingTransport()

    await relay_for(db, transport).run_once()

    assert sorted((id_, stream_of[id_]) for id_ in ids) == sorted(transport.streams)


async def test_sends_the_envelope_the_serializer_made(db: OutboxDatabase) -> None:
    await db.add({"a": 1})
    received: list[dict[str, object]] = []
    transport = RecordingTransport(on_send=lambda message: received.append(dict(message)))

    await relay_for(db, transport).run_once()

    [row] = await db.rows()
    assert [row["payload"]] == received
    assert {"id", "created_at", "type", "causation_id", "correlation_id", "payload"} == set(
        received[0]
    )
    assert "Numbered_v1" == received[0]["type"]


async def test_rows_stay_pending_while_the_transport_fails_then_all_go_in_order(
    db: OutboxDatabase,
) -> None:
    ids = await db.add({"a": 4, "b": 3})
    broken = True
    transport = RecordingTransport(fails=lambda message: broken)
    # A wait long enough for the second batch to come before it, even on a busy machine.
    relay = relay_for(db, transport, backoff=Backoff(base=0.5, cap=1, jitter=0.2))
    started = datetime.now(UTC)

    assert 0 == await relay.run_once()

    heads = [row for row in await db.rows() if row["attempts"]]
    assert ["a", "b"] == [row["stream"] for row in heads]
    for head in heads:
        assert "ConnectionError: broker down" == head["last_error"]
        assert head["available_at"] > started
        assert head["delivered_at"] is None
    assert 7 == await relay.pending()
    calls = transport.calls

    # Postponed: the next batch does not try the heads, nor the rows behind them.
    assert 0 == await relay.run_once()
    assert calls == transport.calls

    async def retried_twice() -> bool:
        """the head rows were tried a second time"""
        await relay.run_once()
        return {2} == {row["attempts"] for row in await db.rows() if row["attempts"]}

    await eventually(retried_twice, timeout=5)
    assert 7 == await relay.pending()

    broken = False
    await drain(relay)

    assert sorted(ids) == sorted(transport.sent)
    assert in_order_per_stream(transport.sent, ids, await db.stream_of())
    assert len(ids) == len(transport.sent)  # nothing delivered twice
    assert 2 <= relay.failed


async def test_a_failing_row_blocks_its_stream_only(db: OutboxDatabase) -> None:
    ids = await db.add({"a": 5, "b": 5})
    stream_of = await db.stream_of()
    poison = [i for i in ids if stream_of[i] == "a"][2]
    transport = RecordingTransport(fails=lambda message: message["id"] == poison)
    relay = relay_for(db, transport)

    for _ in range(3):
        await relay.run_once()

    sent_a = [i for i in transport.sent if stream_of[i] == "a"]
    sent_b = [i for i in transport.sent if stream_of[i] == "b"]
    assert [i for i in ids if stream_of[i] == "a"][:2] == sent_a
    assert [i for i in ids if stream_of[i] == "b"] == sent_b
    assert 3 == await relay.pending()


async def test_batch_size_bounds_one_run(db: OutboxDatabase) -> None:
    await db.add({"a": 5, "b": 5, "c": 5})
    relay = relay_for(db, RecordingTransport(), batch_size=4)

    assert 4 == await relay.run_once()
    assert 11 == await relay.pending()


async def test_stop_finishes_the_row_being_sent(db: OutboxDatabase) -> None:
    await db.add({"a": 10})
    transport = RecordingTransport()
    relay = relay_for(db, transport)
    transport.on_send = lambda message: relay.stop() if len(transport.sent) == 3 else None

    assert 3 == await relay.run_once()

    delivered = [row for row in await db.rows() if row["delivered_at"] is not None]
    assert transport.sent == [str(row["message_id"]) for row in delivered]


async def test_run_delivers_rows_written_while_it_runs_and_stops(db: OutboxDatabase) -> None:
    transport = RecordingTransport()
    relay = relay_for(db, transport, poll_interval=0.01)
    task = asyncio.create_task(relay.run())
    try:
        ids = await db.add({"a": 3})
        ids += await db.add({"a": 3, "b": 2})

        async def all_sent() -> bool:
            """every row was sent"""
            return len(transport.sent) == len(ids)

        await eventually(all_sent)
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=5)
    assert sorted(ids) == sorted(transport.sent)
    assert in_order_per_stream(transport.sent, ids, await db.stream_of())
    assert 0 == await relay.pending()


async def test_run_returns_at_once_when_stopped_before(db: OutboxDatabase) -> None:
    await db.add({"a": 2})
    transport = RecordingTransport()
    relay = relay_for(db, transport)
    relay.stop()

    await asyncio.wait_for(relay.run(), timeout=5)

    assert [] == transport.sent


async def test_a_send_that_hangs_times_out_and_is_retried(db: OutboxDatabase) -> None:
    await db.add({"a": 1})
    transport = RecordingTransport(delay=5)
    relay = relay_for(db, transport, send_timeout=0.05)

    assert 0 == await relay.run_once()

    [row] = await db.rows()
    assert 1 == row["attempts"]
    assert row["last_error"].startswith("TimeoutError")


def test_backoff_grows_to_its_cap() -> None:
    backoff = Backoff(base=1, factor=2, cap=10, jitter=0)

    assert [1, 2, 4, 8, 10, 10] == [backoff.delay(n) for n in range(1, 7)]
    assert 10 == backoff.delay(10_000)


def test_backoff_jitter_takes_off_up_to_its_fraction() -> None:
    backoff = Backoff(base=4, factor=2, cap=100, jitter=0.5)
    delays = [backoff.delay(2) for _ in range(200)]

    assert all(4 <= delay <= 8 for delay in delays)
    assert len(set(delays)) > 100


@pytest.mark.parametrize(
    "options", [{"base": 0}, {"base": 2, "cap": 1}, {"factor": 0.5}, {"jitter": 1.5}]
)
def test_backoff_refuses_nonsense(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Invalid Backoff"):
        Backoff(**options)


async def test_run_survives_database_errors_and_delivers_once_they_end(
    db: OutboxDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    # The relay starts before its table exists: every batch fails until it is created.
    metadata = MetaData()
    later = messagebus_tables(metadata, prefix=f"{db.prefix}later_")
    transport = RecordingTransport()
    relay = AsyncOutboxRelay(
        db.engine, transport, outbox=later.outbox, poll_interval=0.01, backoff=FAST
    )
    task = asyncio.create_task(relay.run())
    try:

        async def failed_twice() -> bool:
            """the relay logged two database errors"""
            return 2 <= caplog.text.count("database error")

        await eventually(failed_twice)
        assert not task.done()

        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        await OutboxDatabase(db.kind, db.url, db.engine, later, db.prefix).add({"a": 3})

        async def all_sent() -> bool:
            """the three rows were sent"""
            return 3 == len(transport.sent)

        await eventually(all_sent)
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=5)
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)


async def test_purge_deletes_old_delivered_rows_only(db: OutboxDatabase) -> None:
    ids = await db.add({"a": 6})
    relay = relay_for(db, RecordingTransport(), batch_size=4)
    await relay.run_once()  # four delivered, two pending
    long_ago = datetime.now(UTC) - timedelta(days=8)
    async with db.engine.begin() as conn:
        outbox = db.outbox
        old = [row["id"] for row in await db.rows() if row["delivered_at"]][:3]
        await conn.execute(update(outbox).where(outbox.c.id.in_(old)).values(delivered_at=long_ago))

    assert 3 == await relay.purge(timedelta(days=7), chunk=2)

    assert ids[3:] == [str(row["message_id"]) for row in await db.rows()]
    assert 2 == await relay.pending()


async def test_run_purges_when_told_to_keep_delivered_rows_for_a_while(
    db: OutboxDatabase,
) -> None:
    await db.add({"a": 3})
    relay = relay_for(
        db, RecordingTransport(), poll_interval=0.01, keep_delivered=timedelta(seconds=0)
    )
    task = asyncio.create_task(relay.run())
    try:

        async def purged() -> bool:
            """the delivered rows were deleted"""
            return not await db.rows()

        await eventually(purged)
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=5)
    assert 3 == relay.delivered


async def test_a_long_blocked_stream_does_not_starve_the_streams_after_it(
    db: OutboxDatabase,
) -> None:
    # Far more rows behind the failing head than the relay looks at first.
    await db.add({"blocked": 40})
    later = await db.add({"free": 3})
    stream_of = await db.stream_of()
    transport = RecordingTransport(fails=lambda message: stream_of[message["id"]] == "blocked")
    relay = relay_for(db, transport, batch_size=2, backoff=Backoff(base=60, cap=60))

    for _ in range(4):
        await relay.run_once()

    assert later == transport.sent
    assert 1 == transport.calls - len(later)  # the blocked head, tried once
