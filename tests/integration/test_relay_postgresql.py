"""The relay on PostgreSQL under concurrency: several relays, many writers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from messagebus import (
    AsyncAbstractEventstreamTransport,
    AsyncMessageBus,
    AsyncUnitOfWorkTransaction,
    Command,
    Event,
    Metadata,
    Model,
    SinkholeMetricsStore,
)
from messagebus.adapters.sqlalchemy import (
    AsyncOutboxRelay,
    AsyncSqlAlchemyRepository,
    AsyncSqlAlchemyUnitOfWork,
    Backoff,
    MessagebusTables,
    messagebus_tables,
)
from messagebus.adapters.sqlalchemy._async import message_store as async_message_store
from tests.integration.relay_support import (
    PG_ASYNC_URL,
    OutboxDatabase,
    eventually,
    in_order_per_stream,
    outbox_database,
    postgres_or_skip,
)

FAST = Backoff(base=0.05, factor=2, cap=0.2, jitter=0.5)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[OutboxDatabase]:
    async with outbox_database("postgresql", tmp_path) as database:
        yield database


class SharedLog(AsyncAbstractEventstreamTransport):
    """One relay's transport, writing to a log that every relay shares, in send order."""

    def __init__(self, log: list[tuple[str, str]], name: str) -> None:
        self.log = log
        self.name = name

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        await asyncio.sleep(0.001)  # let the other relay run in between
        self.log.append((self.name, message["id"]))


async def run_relays_until_done(relays: list[AsyncOutboxRelay], timeout: float = 30) -> None:
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    try:

        async def nothing_pending() -> bool:
            """the outbox is empty"""
            return 0 == await relays[0].pending()

        await eventually(nothing_pending, timeout=timeout)
    finally:
        for relay in relays:
            relay.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)


@pytest.mark.parametrize("streams", [{f"s{i}": 25 for i in range(8)}, {"only": 150}])
async def test_two_relays_send_every_row_once_in_order(
    db: OutboxDatabase, streams: dict[str, int]
) -> None:
    ids = await db.add(streams)
    log: list[tuple[str, str]] = []
    engines = [db.new_engine(), db.new_engine()]
    relays = [
        AsyncOutboxRelay(
            engine,
            SharedLog(log, name),
            outbox=db.outbox,
            batch_size=10,
            poll_interval=0.01,
            backoff=FAST,
        )
        for engine, name in zip(engines, ["first", "second"], strict=True)
    ]
    try:
        await run_relays_until_done(relays)
    finally:
        for engine in engines:
            await engine.dispose()

    sent = [message_id for _, message_id in log]
    assert sorted(ids) == sorted(sent)
    assert len(ids) == len(sent), "a row was sent twice"
    assert in_order_per_stream(sent, ids, await db.stream_of())
    if len(streams) > 1:
        # Both relays worked, on different streams at the same time.
        assert {"first", "second"} == {name for name, _ in log}


# --- 1,000 concurrent transactions through the SQL unit of work --------------------------


class Book(Model):
    id: str


class ShelveBook(Command):
    book_id: str
    attempt: int
    metadata: Metadata = Metadata(name="shelve_book", schema_version=1)


class BookShelved(Event):
    book_id: str
    attempt: int
    metadata: Metadata = Metadata(name="book_shelved", schema_version=1, published=True)


class Shelf(AsyncSqlAlchemyRepository[Book]):
    def __init__(self, uow: AsyncSqlAlchemyUnitOfWork[Any, Any], table: Table) -> None:
        super().__init__(uow)
        self.table = table

    async def add(self, book: Book, attempt: int) -> None:
        await self.connection.execute(insert(self.table).values(id=book.id, attempt=attempt))
        self.seen.append(book)


class ShelfUnitOfWork(AsyncSqlAlchemyUnitOfWork[Shelf, SinkholeMetricsStore]):
    def __init__(
        self, engine: AsyncEngine, tables: MessagebusTables, books: Table, stream: str
    ) -> None:
        super().__init__(engine, tables=tables, stream=stream)
        self.books = Shelf(self, books)


async def shelve_book(
    command: ShelveBook, transaction: AsyncUnitOfWorkTransaction[ShelfUnitOfWork]
) -> None:
    book = Book(id=command.book_id)
    book.messages.append(BookShelved(book_id=command.book_id, attempt=command.attempt))
    await transaction.books.add(book, command.attempt)


class Collected(AsyncAbstractEventstreamTransport):
    def __init__(self) -> None:
        self.attempts: list[int] = []

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        self.attempts.append(json.loads(message["payload"])["attempt"])


def shelf_schema() -> tuple[MetaData, MessagebusTables, Table]:
    """The messagebus tables and a books table, under a prefix of their own."""
    prefix = f"relay_{uuid.uuid4().hex[:8]}_"
    metadata = MetaData()
    tables = messagebus_tables(metadata, prefix=prefix)
    books = Table(
        f"{prefix}books",
        metadata,
        Column("id", String(32), primary_key=True),
        Column("attempt", Integer, nullable=False),
    )
    return metadata, tables, books


async def test_the_events_of_committed_transactions_only_are_delivered() -> None:
    postgres_or_skip()
    metadata, tables, books = shelf_schema()
    engine = create_async_engine(PG_ASYNC_URL, pool_size=40, max_overflow=0, pool_timeout=60)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    bus: AsyncMessageBus[ShelfUnitOfWork] = AsyncMessageBus()
    bus.add_listener(ShelveBook, shelve_book)

    async def shelve(attempt: int) -> bool:
        # 1,000 attempts on 700 books: 300 lose on the primary key and roll back.
        uow = ShelfUnitOfWork(engine, tables, books, stream=f"shelf-{attempt % 7}")
        command = ShelveBook(book_id=f"book-{attempt % 700}", attempt=attempt)
        try:
            async with uow as transaction:
                await bus.handle(command, transaction)
                await transaction.commit()
        except IntegrityError:
            return False
        return True

    try:
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(shelve(attempt) for attempt in range(1000))), timeout=60
        )
        committed = {attempt for attempt, ok in enumerate(outcomes) if ok}
        assert 700 == len(committed)

        transport = Collected()
        relays = [
            AsyncOutboxRelay(engine, transport, outbox=tables.outbox, poll_interval=0.01)
            for _ in range(2)
        ]
        await run_relays_until_done(relays)

        assert committed == set(transport.attempts)
        assert 700 == len(transport.attempts)
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await engine.dispose()


class _AheadClock(datetime):
    """The clock of a writer host two minutes ahead of the database's."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
        return datetime.now(tz) + timedelta(minutes=2)


async def test_a_writer_whose_clock_runs_ahead_does_not_hold_its_rows_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rows are due by the database's clock, the one the relay compares with."""
    postgres_or_skip()
    metadata, tables, books = shelf_schema()
    engine = create_async_engine(PG_ASYNC_URL)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    bus: AsyncMessageBus[ShelfUnitOfWork] = AsyncMessageBus()
    bus.add_listener(ShelveBook, shelve_book)
    monkeypatch.setattr(async_message_store, "datetime", _AheadClock)
    try:
        async with ShelfUnitOfWork(engine, tables, books, stream="shelf") as transaction:
            await bus.handle(ShelveBook(book_id="b1", attempt=1), transaction)
            await transaction.commit()
        transport = Collected()

        assert 1 == await AsyncOutboxRelay(engine, transport, outbox=tables.outbox).run_once()
        assert [1] == transport.attempts
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await engine.dispose()
