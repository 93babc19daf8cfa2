"""`python -m bench.sql_uow`: the SQL unit of work next to hand-written SQLAlchemy Core.

One command is `RegisterBook`: its handler inserts a book row and the book raises
`BookRegistered`, a published event. Through `AsyncSqlAlchemyUnitOfWork` with the outbox,
a command writes four rows in one transaction: the book, the command and the event in the
message store, the event's envelope in the outbox. The **floor** writes the same four rows
with the same SQL by hand: `engine.begin()`, four `INSERT`s built once and run with a
dictionary each, the payloads made by the same pydantic calls; when the unit of work also
sends a `NOTIFY` (on PostgreSQL, to wake the relays), so does the floor.

Measured on SQLite (a file, in /dev/shm when there is one), PostgreSQL through asyncpg
and through psycopg, with one task and with 8 concurrent tasks (each with its own unit of
work), in one run:

- **floor** and **uow**: the ratio uow / floor is the cost of the framework;
- **uow, values() per message**: the message store as it was before, building
  `insert(table).values(...)` for each message; what building the statements once saved;
- **uow, payload referenced**: the outbox row keeps a reference to the message store row
  instead of a copy of the envelope, with a small and a 4 KB payload: what storing the
  payload once instead of three times would save.

PostgreSQL runs with `synchronous_commit=off` for these sessions, so that a commit does not
wait for the disk (the same for every variant, and most of the time otherwise). Rounds are
interleaved and each figure is the best of its rounds (load from other
processes only adds time).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, event, insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.sql import Book, BookRegistered, RegisterBook
from messagebus import (
    AsyncMessageBus,
    AsyncUnitOfWorkTransaction,
    Message,
    MessageSerializer,
    SinkholeMetricsStore,
)
from messagebus.adapters.sqlalchemy import (
    AsyncSqlAlchemyMessageStoreRepository,
    AsyncSqlAlchemyRepository,
    AsyncSqlAlchemyUnitOfWork,
    MessagebusTables,
    messagebus_tables,
)

PG = os.environ.get("MESSAGEBUS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
_EXCLUDED = {"message_id", "created_at", "metadata"}
TASKS = (1, 8)


class ValuesPerMessage(AsyncSqlAlchemyMessageStoreRepository):
    """The message store as it was: a new `insert(...).values(...)` for every message."""

    async def _add(self, message: Message[Any]) -> None:
        connection = self._uow.connection
        metadata = message.metadata
        await connection.execute(
            insert(self.tables.messages).values(
                message_id=message.message_id,
                name=metadata.name,
                schema_version=metadata.schema_version,
                kind="command" if isinstance(message, RegisterBook) else "event",
                payload=message.model_dump(mode="json", exclude=_EXCLUDED),
                created_at=message.created_at,
                published=metadata.published,
            )
        )
        if self.outbox and metadata.published:
            now = datetime.now(UTC)
            await connection.execute(
                insert(self.tables.outbox).values(
                    message_id=message.message_id,
                    stream="messagebus",
                    type=f"{metadata.name}_v{metadata.schema_version}",
                    payload=dict(self.serializer.serialize_message(message)),
                    created_at=now,
                    available_at=now,
                )
            )


class PayloadReferenced(AsyncSqlAlchemyMessageStoreRepository):
    """The outbox row points at the message store row instead of copying the envelope."""

    async def _add(self, message: Message[Any]) -> None:
        connection = self._uow.connection
        metadata = message.metadata
        await connection.execute(
            self._insert_message,
            {
                "message_id": message.message_id,
                "name": metadata.name,
                "schema_version": metadata.schema_version,
                "kind": "command" if isinstance(message, RegisterBook) else "event",
                "payload": message.model_dump(mode="json", exclude=_EXCLUDED),
                "created_at": message.created_at,
                "published": metadata.published,
            },
        )
        if self.outbox and metadata.published:
            now = datetime.now(UTC)
            await connection.execute(
                self._insert_outbox,
                {
                    "message_id": message.message_id,
                    "stream": "messagebus",
                    "type": f"{metadata.name}_v{metadata.schema_version}",
                    "payload": {},
                    "created_at": now,
                    "available_at": now,
                },
            )


class Books(AsyncSqlAlchemyRepository[Book]):
    """Stores a book with a statement built once, as the floor does: the same user code."""

    def __init__(self, uow: AsyncSqlAlchemyUnitOfWork[Any, Any], table: Table) -> None:
        super().__init__(uow)
        self._insert = insert(table)

    async def add(self, book: Book) -> None:
        await self.connection.execute(self._insert, {"id": book.id, "title": book.title})
        self.seen.append(book)


class UnitOfWork(AsyncSqlAlchemyUnitOfWork[Books, SinkholeMetricsStore]):
    def __init__(self, engine: AsyncEngine, tables: MessagebusTables, books: Table) -> None:
        super().__init__(engine, tables=tables)
        self.books = Books(self, books)


async def register_book(
    command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[UnitOfWork]
) -> None:
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=command.id, title=command.title))
    await transaction.books.add(book)


def wanted(name: str, size: str, tasks: int) -> bool:
    """Which measurements are made: the floor and the unit of work everywhere, the rest once."""
    if name in ("floor", "uow"):
        return size == "small" or name == "uow"
    if name == "uow, payload referenced":
        return tasks == 1
    return size == "small"


class Schema:
    def __init__(self) -> None:
        prefix = f"bench_{uuid.uuid4().hex[:8]}_"
        self.metadata = MetaData()
        self.tables = messagebus_tables(self.metadata, prefix=prefix)
        self.books = Table(
            f"{prefix}books",
            self.metadata,
            Column("id", String(64), primary_key=True),
            Column("title", String(8192), nullable=False),
        )


def notifies(engine: AsyncEngine) -> Callable[[], int]:
    """Count the NOTIFY statements sent on ``engine`` from now on."""
    seen = [0]

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "notify" in statement.lower():
            seen[0] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    return lambda: seen[0]


def floor(
    engine: AsyncEngine, schema: Schema, notify: str | None
) -> Callable[[RegisterBook], Awaitable[None]]:
    """Handle a command the way one would write it with SQLAlchemy Core, no framework."""
    tables = schema.tables
    add_book = insert(schema.books)
    add_message = insert(tables.messages)
    add_outbox = insert(tables.outbox)
    serializer = MessageSerializer()
    from sqlalchemy import text

    wake = text(notify) if notify else None

    async def handle(command: RegisterBook) -> None:
        book = Book(id=command.id, title=command.title)
        registered = BookRegistered(id=command.id, title=command.title)
        async with engine.begin() as conn:
            await conn.execute(add_book, {"id": book.id, "title": book.title})
            for message, kind in ((command, "command"), (registered, "event")):
                metadata = message.metadata
                await conn.execute(
                    add_message,
                    {
                        "message_id": message.message_id,
                        "name": metadata.name,
                        "schema_version": metadata.schema_version,
                        "kind": kind,
                        "payload": message.model_dump(mode="json", exclude=_EXCLUDED),
                        "created_at": message.created_at,
                        "published": metadata.published,
                    },
                )
            if wake is not None:
                await conn.execute(wake)
            now = datetime.now(UTC)
            await conn.execute(
                add_outbox,
                {
                    "message_id": registered.message_id,
                    "stream": "messagebus",
                    "type": "book_registered_v1",
                    "payload": dict(serializer.serialize_message(registered)),
                    "created_at": now,
                    "available_at": now,
                },
            )

    return handle


def through_uow(
    engine: AsyncEngine, schema: Schema, store: type | None
) -> Callable[[], Callable[[RegisterBook], Awaitable[None]]]:
    """Return a maker of handlers; each handler has its own unit of work (one per task)."""
    bus: AsyncMessageBus[UnitOfWork] = AsyncMessageBus()
    bus.add_listener(RegisterBook, register_book)

    def make() -> Callable[[RegisterBook], Awaitable[None]]:
        uow = UnitOfWork(engine, schema.tables, schema.books)
        if store is not None:
            uow.messagestore = store(uow, tables=schema.tables)

        async def handle(command: RegisterBook) -> None:
            async with uow as transaction:
                await bus.handle(command, transaction)
                await transaction.commit()

        return handle

    return make


async def timed(
    make: Callable[[], Callable[[RegisterBook], Awaitable[None]]],
    commands: list[RegisterBook],
    tasks: int,
) -> tuple[float, float]:
    """Return the wall-clock and the CPU seconds of this process to handle ``commands``."""

    async def run(share: list[RegisterBook]) -> None:
        handle = make()
        for command in share:
            await handle(command)

    gc.collect()
    gc.disable()  # as timeit does: the collector runs when it likes, not when the code does
    try:
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(run(commands[n::tasks]) for n in range(tasks)))
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        gc.enable()


async def measure(url: str, commands: int, rounds: int) -> dict[str, tuple[float, float]]:
    """Return the best CPU and wall µs per command of each variant and number of tasks."""
    # PostgreSQL waits for its disk at each commit unless told not to: on a shared
    # machine that wait is most of a transaction, and the same for every variant.
    connect_args: dict[str, Any] = {}
    if "asyncpg" in url:
        connect_args = {"server_settings": {"synchronous_commit": "off"}}
    elif "psycopg" in url:
        connect_args = {"options": "-c synchronous_commit=off"}
    engine = create_async_engine(url, pool_size=10, connect_args=connect_args)
    best: dict[str, tuple[float, float]] = {}
    try:
        schema = Schema()
        async with engine.begin() as conn:
            await conn.run_sync(schema.metadata.create_all)
        try:
            counted = notifies(engine)
            await through_uow(engine, schema, None)()(RegisterBook(id="probe", title="Dune"))
            notify = f"NOTIFY {schema.tables.outbox.name}" if counted() else None
            variants: dict[str, Callable[[], Callable[[RegisterBook], Awaitable[None]]]] = {
                "floor": lambda: floor(engine, schema, notify),
                "uow": through_uow(engine, schema, None),
                "uow, values() per message": through_uow(engine, schema, ValuesPerMessage),
                "uow, payload referenced": through_uow(engine, schema, PayloadReferenced),
            }
            for round_number in range(rounds):
                names = list(variants)
                if round_number % 2:
                    names.reverse()  # a burst of load then hits every variant alike
                for tasks in TASKS:
                    for title in ("Dune", "x" * 4096):
                        size = "4 KB" if len(title) > 100 else "small"
                        for name in names:
                            if not wanted(name, size, tasks):
                                continue
                            batch = [
                                RegisterBook(id=f"{uuid.uuid4().hex}", title=title)
                                for _ in range(commands)
                            ]
                            wall, cpu = await timed(variants[name], batch, tasks)
                            key = f"{name} [{size}, {tasks} task{'s' if tasks > 1 else ''}]"
                            cpu_best, wall_best = best.get(key, (float("inf"), float("inf")))
                            best[key] = (
                                min(cpu_best, cpu / commands * 1e6),
                                min(wall_best, wall / commands * 1e6),
                            )
        finally:
            async with engine.begin() as conn:
                await conn.run_sync(schema.metadata.drop_all)
    finally:
        await engine.dispose()
    best["notify"] = (1.0, 1.0) if notify else (0.0, 0.0)
    return best


def print_table(database: str, best: dict[str, tuple[float, float]]) -> None:
    notify = best.pop("notify")[0]
    print(
        f"\n{database}{' (the unit of work sends a NOTIFY: so does the floor)' if notify else ''}"
    )
    print(f"{'measurement':<46}{'cpu µs':>8}{'wall µs':>9}  {'ratio cpu':<16}ratio wall")
    for key, (cpu, wall) in best.items():
        name, _, rest = key.partition(" [")
        size, _, tasks = rest.rstrip("]").partition(", ")
        referenced = name == "uow, payload referenced"
        base = f"uow [{size}, {tasks}]" if referenced else f"floor [{size}, {tasks}]"
        label = "x uow" if referenced else "x floor"
        ratios = ["", ""]
        if name != "floor" and base in best:
            ratios = [f"{cpu / best[base][0]:.3f} {label}", f"{wall / best[base][1]:.3f} {label}"]
        print(f"{key:<46}{cpu:>8.0f}{wall:>9.0f}  {ratios[0]:<16}{ratios[1]}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sql_uow", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--commands", type=int, default=600, help="per variant and round (600)")
    parser.add_argument("--rounds", type=int, default=4, help="keep the best (4)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a database is missing")
    parser.add_argument("--only", choices=["sqlite", "asyncpg", "psycopg"], action="append")
    args = parser.parse_args(argv)
    if args.quick:
        args.commands, args.rounds = 50, 1
    status = 0
    # On a memory file system when there is one: a disk's flush at each commit (tens of
    # ms on a shared machine) would drown what the code costs.
    memory = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=memory) as folder:
        databases = {
            "sqlite": f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}",
            "asyncpg": PG.replace("postgresql://", "postgresql+asyncpg://"),
            "psycopg": PG.replace("postgresql://", "postgresql+psycopg://"),
        }
        for name, url in databases.items():
            if args.only and name not in args.only:
                continue
            driver = url.partition("+")[2].partition(":")[0]
            if importlib.util.find_spec(driver) is None:
                print(f"{name}: skipped, the driver {driver} is not installed", file=sys.stderr)
                status = 1 if args.strict else status
                continue
            try:
                best = asyncio.run(measure(url, args.commands, args.rounds))
            except (OSError, ConnectionError) as exc:
                print(f"{name}: skipped, {type(exc).__name__}: {exc}", file=sys.stderr)
                status = 1 if args.strict else status
                continue
            print_table(name, best)
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
