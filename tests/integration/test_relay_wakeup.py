"""A commit wakes the relay: in the process (SQLite and PostgreSQL), through LISTEN/NOTIFY
on PostgreSQL; polling stays the fallback.

Every relay here polls every 60 seconds: a row delivered within the test's time was
delivered because a commit woke the relay.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update

from messagebus import SinkholeMetricsStore
from messagebus.adapters.sqlalchemy import AsyncOutboxRelay, AsyncSqlAlchemyUnitOfWork
from messagebus.adapters.sqlalchemy.outbox.wakeup import (
    NOTIFIED_STREAMS,
    notify_statement,
    outbox_committed,
)
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


@pytest.mark.parametrize("where", ["in the relay's thread", "in another thread"])
async def test_the_signal_of_a_commit_wakes_the_relay_from_any_thread(
    tmp_path: Path, where: str
) -> None:
    # SQLite: no NOTIFY, the signal of the process is the only one.
    async with outbox_database("sqlite", tmp_path) as db:
        transport = RecordingTransport()
        relay = AsyncOutboxRelay(db.engine, transport, outbox=db.outbox, poll_interval=NEVER)
        task = await running(relay)
        try:
            ids = await db.add({"a": 2})  # written without a signal
            if where == "in another thread":
                await asyncio.to_thread(outbox_committed, db.engine.url, db.outbox.name, ["a"])
            else:
                outbox_committed(db.engine.url, db.outbox.name, ["a"])

            async def sent() -> bool:
                """the signal woke the relay, which sent the rows"""
                return ids == transport.sent

            await eventually(sent)
        finally:
            relay.stop()
            await asyncio.wait_for(task, timeout=10)


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


class Statements:
    """Keeps the SQL an engine runs, while attached."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine.sync_engine
        self.seen: list[str] = []

    def _keep(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(statement)

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._keep)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._keep)


def looks_at_every_stream(statement: str) -> bool:
    """Whether ``statement`` is the relay's query of the due streams."""
    return "GROUP BY" in statement


async def statements_before_send(
    relay: AsyncOutboxRelay,
    transport: RecordingTransport,
    write: Callable[[], Awaitable[list[str]]],
) -> list[str]:
    """Run ``write``, which commits rows and returns their ids; wait until the relay sent
    them; return the statements the relay ran before its first send."""
    before_send: list[str] = []
    with Statements(relay.engine) as statements:
        transport.on_send = lambda _: before_send.extend(statements.seen)
        ids = await write()

        async def sent() -> bool:
            """the relay sent the committed rows"""
            return ids == transport.sent

        await eventually(sent)
    assert before_send
    return before_send


async def test_a_commit_names_its_stream_and_the_relay_claims_it_at_once(
    db: OutboxDatabase,
) -> None:
    transport = RecordingTransport()
    relay = AsyncOutboxRelay(db.new_engine(), transport, outbox=db.outbox, poll_interval=NEVER)
    task = await running(relay)
    try:

        async def write() -> list[str]:
            return [await publish(db, 0)]

        before_send = await statements_before_send(relay, transport, write)
        # The commit named stream "a": the relay claimed it without asking which
        # streams are due (it asks once the delivery ended, for whatever came meanwhile).
        assert not [s for s in before_send if looks_at_every_stream(s)]
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=10)
        await relay.engine.dispose()


async def test_a_named_stream_that_is_not_due_waits_and_the_others_are_found(
    db: OutboxDatabase,
) -> None:
    transport = RecordingTransport()
    relay = AsyncOutboxRelay(db.engine, transport, outbox=db.outbox, poll_interval=NEVER)
    task = await running(relay)
    try:
        ids = await db.add({"a": 1, "b": 2})  # written without a signal
        outbox = db.outbox
        async with db.engine.begin() as conn:  # "a" is postponed: not due for a minute
            later = datetime.now(UTC) + timedelta(minutes=1)
            await conn.execute(
                update(outbox).where(outbox.c.stream == "a").values(available_at=later)
            )
        relay.wake(["a"])  # as a commit to "a" would: "a" is not due, "b" is

        async def sent_b() -> bool:
            """the relay looked at every stream after its claim of "a" found nothing"""
            return transport.sent == [ids[1], ids[2]]

        await eventually(sent_b)
        await asyncio.sleep(0.2)
        assert ids[0] not in transport.sent  # "a" waits for its time
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=10)


async def test_a_transaction_of_many_streams_asks_every_relay_to_look(pg: OutboxDatabase) -> None:
    db = pg
    payloads: list[str] = []
    async with db.engine.connect() as listening:
        raw = (await listening.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.add_listener(db.outbox.name, lambda *args: payloads.append(args[-1]))
        uow = UnitOfWork(db.engine, tables=db.tables, stream=lambda event: event.stream)
        streams = [f"s{n}" for n in range(NOTIFIED_STREAMS + 2)]
        async with uow as transaction:
            for n, stream in enumerate([*streams, *streams]):  # each stream twice
                await uow.messagestore.add(Numbered(stream=stream, n=n))
            await transaction.commit()

        async def notified() -> bool:
            """the listener got the notifications of the commit"""
            return len(payloads) == NOTIFIED_STREAMS + 1

        await eventually(notified)
        await asyncio.sleep(0.1)
    # One per stream, as long as they are few; then one asking for a full look.
    assert payloads == [*streams[:NOTIFIED_STREAMS], ""]


@pytest.mark.parametrize("payload", [None, "a"])
async def test_notify_wakes_a_relay_of_another_process(
    pg: OutboxDatabase, payload: str | None
) -> None:
    db = pg
    transport = RecordingTransport()
    engine = named_engine(db, f"{db.prefix}listener")
    relay = AsyncOutboxRelay(engine, transport, outbox=db.outbox, poll_interval=NEVER)
    task = await running(relay)
    try:

        async def write() -> list[str]:  # as another process: rows and pg_notify only
            ids = await db.add({"a": 2})
            async with db.engine.begin() as conn:
                parameters = {} if payload is None else {"stream": payload}
                await conn.execute(notify_statement(db.outbox.name), parameters)
            return ids

        before_send = await statements_before_send(relay, transport, write)
        # Named, the stream is claimed at once; unnamed, the relay looks at every stream.
        looked = [s for s in before_send if looks_at_every_stream(s)]
        assert bool(looked) == (payload is None)
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=10)
        await engine.dispose()
