"""The relay against hostile inputs: error texts, unreadable rows, a database that refuses,
and cancellation, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update

from messagebus.adapters.sqlalchemy import AsyncOutboxRelay, Backoff
from messagebus.adapters.sqlalchemy.outbox.reasons import MAX_REASON_LENGTH, clean, describe
from tests.integration.relay_support import (
    OutboxDatabase,
    RecordingTransport,
    kill_backends,
    named_engine,
    outbox_database,
)

FAST = Backoff(base=0.05, factor=2, cap=0.2, jitter=0.5)
SLOW = Backoff(base=60, cap=60)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OutboxDatabase]:
    async with outbox_database(request.param, tmp_path) as database:
        yield database


class Refusing(RecordingTransport):
    """Raises ``error`` for the messages of ``streams``; takes the others."""

    def __init__(self, error: BaseException, streams: set[str], stream_of: dict[str, str]):
        super().__init__(fails=lambda message: stream_of[message["id"]] in streams)
        self.error = error

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        try:
            await super().send_message_serialized(message)
        except ConnectionError:
            raise self.error from None


HOSTILE = [
    pytest.param(ConnectionError("broker\x00 said no"), "\\x00", id="nul"),
    pytest.param(ConnectionError("bad \udc80 byte"), "\\udc80", id="lone-surrogate"),
    pytest.param(ValueError("x" * 100_000), "…", id="huge"),
    pytest.param(OSError("colour\x1b[31m red\x7f"), "\\x1b[31m red\\x7f", id="controls"),
]


@pytest.mark.parametrize(("error", "kept"), HOSTILE)
async def test_any_error_text_is_stored_cleaned_and_other_streams_go_on(
    db: OutboxDatabase, error: BaseException, kept: str
) -> None:
    ids = await db.add({"bad": 3, "good": 3})
    stream_of = await db.stream_of()
    transport = Refusing(error, {"bad"}, stream_of)
    relay = AsyncOutboxRelay(db.engine, transport, outbox=db.outbox, backoff=SLOW)

    await relay.run_once()

    rows = await db.rows()
    [head] = [row for row in rows if row["stream"] == "bad" and row["attempts"]]
    assert kept in head["last_error"]
    assert len(head["last_error"]) <= MAX_REASON_LENGTH
    assert "\x00" not in head["last_error"]
    head["last_error"].encode("utf-8")  # storable and readable back: no lone surrogate
    assert [i for i in ids if stream_of[i] == "good"] == transport.sent
    assert 1 == relay.failed_attempts


def test_clean_makes_one_bounded_line() -> None:
    assert "a b \\x00 \\udc80" == clean("a\nb \x00 \udc80")
    assert 10 == len(clean("y" * 50, limit=10))
    assert clean("y" * 50, limit=10).endswith("…")


def test_describe_survives_a_broken_str() -> None:
    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert "Weird" == describe(Weird())


async def refuse_recorded_errors(db: OutboxDatabase, stream: str) -> None:
    """Make the database refuse to record a failure of ``stream``: a trigger aborts it."""
    table = db.outbox.name
    async with db.engine.begin() as conn:
        if db.kind == "sqlite":
            await conn.execute(
                text(
                    f"CREATE TRIGGER {table}_refuse BEFORE UPDATE OF last_error ON {table} "
                    f"WHEN NEW.stream = '{stream}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            await conn.execute(
                text(
                    f"CREATE FUNCTION {table}_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                    f"$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
                )
            )
            await conn.execute(
                text(
                    f"CREATE TRIGGER {table}_refuse BEFORE UPDATE OF last_error ON {table} "
                    f"FOR EACH ROW WHEN (NEW.stream = '{stream}') "
                    f"EXECUTE FUNCTION {table}_refuse()"
                )
            )


async def test_a_failure_to_record_a_failure_stops_neither_rows_nor_streams(
    db: OutboxDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    ids = await db.add({"a": 4, "b": 4})
    stream_of = await db.stream_of()
    poison = [i for i in ids if stream_of[i] == "a"][2]
    transport = RecordingTransport(fails=lambda message: message["id"] == poison)
    await refuse_recorded_errors(db, "a")
    relay = AsyncOutboxRelay(
        db.engine, transport, outbox=db.outbox, backoff=FAST, poll_interval=0.01
    )

    try:
        await relay.run_once()
        task = asyncio.create_task(relay.run())
        await db.add({"c": 2})
        async with asyncio.timeout(10):
            while len(transport.sent) < 8:
                await asyncio.sleep(0.02)
        assert not task.done()
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=5)
        if db.kind == "postgresql":
            async with db.engine.begin() as conn:
                await conn.execute(text(f"DROP FUNCTION {db.outbox.name}_refuse CASCADE"))

    # The rows of "a" before the failing one were marked, though recording it failed.
    delivered = {str(row["message_id"]) for row in await db.rows() if row["delivered_at"]}
    assert set([i for i in ids if stream_of[i] == "a"][:2]) <= delivered
    assert {i for i in ids if stream_of[i] == "b"} <= delivered
    assert "cannot record the failure" in caplog.text
    assert poison not in transport.sent


async def set_payload(db: OutboxDatabase, row_id: int, payload: str) -> None:
    """Store ``payload`` as the row's raw JSON text, readable or not."""
    async with db.engine.begin() as conn:
        if db.kind == "sqlite":
            statement = text(f"UPDATE {db.outbox.name} SET payload = :p WHERE id = :id")
        else:  # PostgreSQL only stores valid JSON, but not necessarily an object
            statement = text(
                f"UPDATE {db.outbox.name} SET payload = CAST(:p AS json) WHERE id = :id"
            )
        await conn.execute(statement, {"p": payload, "id": row_id})


@pytest.mark.parametrize("on_dead", ["block", "skip"])
async def test_an_unreadable_row_is_dead_with_its_reason_and_the_rest_goes_on(
    db: OutboxDatabase, on_dead: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ids = await db.add({"a": 3, "b": 3})
    stream_of = await db.stream_of()
    rows = await db.rows()
    bad = [row for row in rows if row["stream"] == "a"][1]
    await set_payload(db, bad["id"], "{not json" if db.kind == "sqlite" else "[1, 2]")
    transport = RecordingTransport()
    relay = AsyncOutboxRelay(db.engine, transport, outbox=db.outbox, on_dead=on_dead)

    with caplog.at_level(logging.ERROR, logger="messagebus.relay"):
        for _ in range(3):
            await relay.run_once()

    outbox = db.outbox
    async with db.engine.connect() as conn:
        query = select(
            outbox.c.dead_at, outbox.c.delivered_at, outbox.c.last_error, outbox.c.attempts
        )
        [dead] = (await conn.execute(query.where(outbox.c.id == bad["id"]))).mappings().all()
    assert dead["dead_at"] is not None
    assert dead["delivered_at"] is None
    assert dead["last_error"].startswith("unreadable payload")
    assert 0 == dead["attempts"]  # never sent
    assert 1 == relay.dead
    assert 1 == caplog.text.count("is dead")
    a_rows = [i for i in ids if stream_of[i] == "a"]
    b_rows = [i for i in ids if stream_of[i] == "b"]
    assert b_rows == [i for i in transport.sent if stream_of[i] == "b"]
    sent_a = [i for i in transport.sent if stream_of[i] == "a"]
    if on_dead == "block":
        assert a_rows[:1] == sent_a
        assert 1 == await relay.pending()
    else:
        assert [a_rows[0], a_rows[2]] == sent_a
        assert 0 == await relay.pending()


class Hanging(RecordingTransport):
    """Hangs on every send, after calling ``before``."""

    def __init__(self, before: Any = None) -> None:
        super().__init__()
        self.before = before
        self.started = asyncio.Event()

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        if self.before is not None:
            await self.before()
        self.started.set()
        await asyncio.Event().wait()


async def test_cancel_ends_the_relay_during_a_send_whose_connection_died(
    db: OutboxDatabase,
) -> None:
    await db.add({"a": 5, "b": 5})
    engine = named_engine(db, f"{db.prefix}cancel")

    async def kill() -> None:
        if db.kind == "postgresql":
            await kill_backends(db, f"{db.prefix}cancel")

    transport = Hanging(kill)
    relay = AsyncOutboxRelay(
        engine, transport, outbox=db.outbox, poll_interval=0.01, send_timeout=3600
    )
    try:
        task = asyncio.create_task(relay.run())
        await asyncio.wait_for(transport.started.wait(), timeout=10)
        task.cancel()
        # Generous bound: a cancelled relay ends in about a second at worst.
        done, _ = await asyncio.wait([task], timeout=10)
        assert {task} == done
        assert task.cancelled()
        assert 0 == relay.in_flight
    finally:
        await engine.dispose()
    rows = await db.rows()
    assert all(row["delivered_at"] is None for row in rows)


async def test_cancel_during_a_send_leaves_the_row_pending_for_the_next_relay(
    db: OutboxDatabase,
) -> None:
    ids = await db.add({"a": 3})
    transport = Hanging()
    relay = AsyncOutboxRelay(db.engine, transport, outbox=db.outbox, send_timeout=3600)
    task = asyncio.create_task(relay.run())
    await asyncio.wait_for(transport.started.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)

    after = RecordingTransport()
    await AsyncOutboxRelay(db.engine, after, outbox=db.outbox).run_once()

    assert ids == after.sent  # the lease was handed back: no wait for it to end


async def test_options_are_checked() -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine("sqlite+aiosqlite://")
    transport = RecordingTransport()
    for options, name in [
        ({"send_timeout": 0}, "send_timeout"),
        ({"send_timeout": float("inf")}, "send_timeout"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"on_dead": "drop"}, "on_dead"),
        ({"concurrency": 0}, "concurrency"),
        ({"poll_interval": float("nan")}, "poll_interval"),
        ({"poll_interval": float("inf")}, "poll_interval"),
    ]:
        with pytest.raises(ValueError, match=name):
            AsyncOutboxRelay(engine, transport, **options)
    await engine.dispose()


async def test_a_row_set_dead_by_hand_is_not_sent(db: OutboxDatabase) -> None:
    ids = await db.add({"a": 2})
    async with db.engine.begin() as conn:
        outbox = db.outbox
        first = (await db.rows())[0]["id"]
        await conn.execute(
            update(outbox).where(outbox.c.id == first).values(dead_at=outbox.c.available_at)
        )
    transport = RecordingTransport()

    await AsyncOutboxRelay(db.engine, transport, outbox=db.outbox, on_dead="skip").run_once()

    assert ids[1:] == transport.sent
