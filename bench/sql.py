"""`python -m bench.sql`: the SQL unit of work with and without the outbox, and the relay.

On SQLite (a file in a temporary folder) and on PostgreSQL (skipped when it does not
answer), in one run:

- **commands/s through the SQL unit of work**: one task handles `RegisterBook` commands
  one after the other with `AsyncSqlAlchemyUnitOfWork`; the handler inserts a book row and
  the book raises `BookRegistered`, a published event. *no outbox* writes the book and the
  two messages to the message store; *outbox* also writes the event's outbox row, in the
  same transaction. The ratio is outbox / no outbox.
- **deliveries/s of the relay**: `AsyncOutboxRelay.run_once()` until the outbox rows
  written above are delivered, next to calling the same transport directly with the same
  envelopes, one after the other. Two transports: *sink* returns at once (the relay's own
  cost: a read per batch, an update and a commit per row), *1 ms* sleeps 1 ms per message
  (a broker round trip). The ratio is relay / direct.

Each figure is the best of the rounds (load from other processes only adds time). The
relay's deliveries are checked: every row, in order, none twice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.relay import commit_to_transport, percentiles, relay_against_loop
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
    AsyncSqlAlchemyRepository,
    AsyncSqlAlchemyUnitOfWork,
    MessagebusTables,
    messagebus_tables,
)

LATENCY_EVENTS = 100
"""Events committed one by one per round while a relay with default settings runs."""
PG_URL = os.environ.get("MESSAGEBUS_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


class RegisterBook(Command):
    id: str
    title: str
    metadata: Metadata = Metadata(name="register_book", schema_version=1)


class BookRegistered(Event):
    id: str
    title: str
    metadata: Metadata = Metadata(name="book_registered", schema_version=1, published=True)


class Book(Model):
    id: str
    title: str


class Books(AsyncSqlAlchemyRepository[Book]):
    def __init__(self, uow: AsyncSqlAlchemyUnitOfWork[Any, Any], table: Table) -> None:
        super().__init__(uow)
        self.table = table

    async def add(self, book: Book) -> None:
        await self.connection.execute(insert(self.table).values(id=book.id, title=book.title))
        self.seen.append(book)


class UnitOfWork(AsyncSqlAlchemyUnitOfWork[Books, SinkholeMetricsStore]):
    def __init__(
        self, engine: AsyncEngine, tables: MessagebusTables, books: Table, outbox: bool
    ) -> None:
        super().__init__(engine, tables=tables, outbox=outbox)
        self.books = Books(self, books)


async def register_book(
    command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[UnitOfWork]
) -> None:
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=command.id, title=command.title))
    await transaction.books.add(book)


class Transport(AsyncAbstractEventstreamTransport):
    """Keeps the ids it was sent; sleeps ``latency`` seconds per message if not zero."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.sent: list[str] = []

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        if self.latency:
            await asyncio.sleep(self.latency)
        self.sent.append(message["id"])


@dataclass
class Figures:
    """The best rate of each measurement of one database, over the rounds."""

    rates: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    rounds: int = 0
    trips: dict[str, float] = field(default_factory=dict)
    """Round trips per batch of the relay and of the hand-written loop."""
    latencies: dict[str, list[float]] = field(default_factory=dict)
    """Seconds from commit to transport, per way of waking the relay, over the rounds."""

    def keep(self, name: str, count: int, seconds: float) -> None:
        self.rates[name] = max(self.rates.get(name, 0.0), count / seconds)


async def timed(action: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def one_round(engine: AsyncEngine, commands: int, figures: Figures) -> None:
    prefix = f"bench_{uuid.uuid4().hex[:8]}_"
    metadata = MetaData()
    tables = messagebus_tables(metadata, prefix=prefix)
    books = Table(
        f"{prefix}books",
        metadata,
        Column("id", String(64), primary_key=True),
        Column("title", String(255), nullable=False),
    )
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        bus: AsyncMessageBus[UnitOfWork] = AsyncMessageBus()
        bus.add_listener(RegisterBook, register_book)
        # Alternate which goes first: a burst of load then hits both alike over the rounds.
        order = (False, True) if figures.rounds % 2 == 0 else (True, False)
        figures.rounds += 1
        for outbox in order:
            uow = UnitOfWork(engine, tables, books, outbox=outbox)
            batch = [RegisterBook(id=f"{outbox:d}-{n}", title="Dune") for n in range(commands)]

            async def handle_all(uow: UnitOfWork = uow, batch: list[RegisterBook] = batch) -> None:
                for command in batch:
                    async with uow as transaction:
                        await bus.handle(command, transaction)
                        await transaction.commit()

            name = "uow + outbox" if outbox else "uow, no outbox"
            figures.keep(name, commands, await timed(handle_all))
        await measure_relay(engine, tables, books, bus, figures)
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)


async def measure_relay(
    engine: AsyncEngine,
    tables: MessagebusTables,
    books: Table,
    bus: AsyncMessageBus[UnitOfWork],
    figures: Figures,
) -> None:
    outbox = tables.outbox
    async with engine.connect() as conn:
        result = await conn.execute(select(outbox.c.payload).order_by(outbox.c.id))
        expected = [payload["id"] for payload in result.scalars()]
    compared = await relay_against_loop(engine, outbox, expected)
    figures.errors.extend(compared["errors"])
    rows = len(expected)
    figures.keep("hand-written relay loop", rows, compared["loop"])
    figures.keep("AsyncOutboxRelay", rows, compared["relay"])
    figures.trips["hand-written relay loop"] = compared["loop round trips per batch"]
    figures.trips["AsyncOutboxRelay"] = compared["relay round trips per batch"]

    url = engine.url.render_as_string(hide_password=False)
    variants = [("in-process", url)]
    if engine.dialect.name == "postgresql" and "@127.0.0.1" in url:
        variants.append(("NOTIFY", url.replace("@127.0.0.1", "@localhost")))
    for label, relay_url in variants:
        latencies = await commit_to_transport(
            engine,
            tables,
            bus,
            lambda: UnitOfWork(engine, tables, books, outbox=True),
            lambda n, label=label: RegisterBook(id=f"{label}-{figures.rounds}-{n}", title="Dune"),
            LATENCY_EVENTS,
            relay_url,
        )
        if len(latencies) < LATENCY_EVENTS:
            figures.errors.append(
                f"{label}: {len(latencies)} of {LATENCY_EVENTS} events reached the transport"
            )
        figures.latencies.setdefault(label, []).extend(latencies)


async def measure(url: str, commands: int, rounds: int) -> Figures:
    engine = create_async_engine(url)
    figures = Figures()
    try:
        for _ in range(rounds):
            await one_round(engine, commands, figures)
    finally:
        await engine.dispose()
    return figures


async def reachable(url: str) -> str | None:
    """Return why the database cannot be used, or ``None``."""
    engine = create_async_engine(url)
    try:
        async with asyncio.timeout(5), engine.connect():
            return None
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    finally:
        await engine.dispose()


RATIOS = {
    "uow + outbox": ("uow, no outbox", "x the time of no outbox"),
    "AsyncOutboxRelay": ("hand-written relay loop", "x the time of the loop"),
}


def print_table(results: dict[str, Figures], commands: int) -> None:
    print(f"{'database':<11}{'measurement':<26}{'n':>6}{'per s':>10}{'µs each':>10}  ratio")
    for database, figures in results.items():
        for name, rate in figures.rates.items():
            ratio = ""
            if name in RATIOS:
                other, label = RATIOS[name]
                # Of times: the other's rate over this one's.
                ratio = f"{figures.rates[other] / rate:.3g} {label}"
            if name in figures.trips:
                ratio = f"{ratio}  {figures.trips[name]:.1f} round trips/batch".strip()
            print(
                f"{database:<11}{name:<26}{commands:>6}{rate:>10,.0f}{1e6 / rate:>10.1f}  {ratio}"
            )
    print()
    print(f"{'database':<11}{'commit to transport':<26}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}")
    for database, figures in results.items():
        for label, latencies in figures.latencies.items():
            p50, p99 = percentiles(latencies)
            print(f"{database:<11}{label:<26}{len(latencies):>6}{p50:>10.1f}{p99:>10.1f}")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sql",
        description="The SQL unit of work with and without the outbox, and the outbox relay.",
    )
    parser.add_argument("--commands", type=int, default=500, help="per round (500)")
    parser.add_argument("--rounds", type=int, default=3, help="keep the best (3)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if a database is missing or a check fails"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.commands, args.rounds = 200, 1
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    results: dict[str, Figures] = {}
    status = 0
    with tempfile.TemporaryDirectory() as folder:
        sqlite = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        for database, url in (("sqlite", sqlite), ("postgresql", PG_URL)):
            reason = asyncio.run(reachable(url))
            if reason is not None:
                print(f"{database}: skipped, {reason}", file=sys.stderr)
                status = 1 if args.strict else status
                continue
            results[database] = asyncio.run(measure(url, args.commands, args.rounds))
    print_table(results, args.commands)
    for database, figures in results.items():
        for error in figures.errors:
            print(f"{database}: CHECK FAILED: {error}")
            status = 1
    # The unit of work next to hand-written SQLAlchemy Core: bench/sql_uow.py.
    from bench import sql_uow

    flags = [flag for flag in ("--quick", "--strict") if getattr(args, flag[2:])]
    return max(status, sql_uow.main(flags))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
