"""What the relay tests share: databases with outbox tables of their own, rows, transports."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from messagebus import AsyncAbstractEventstreamTransport, Event, MessageSerializer, Metadata
from messagebus.adapters.sqlalchemy import MessagebusTables, messagebus_tables

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_ASYNC_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
HERE = Path(__file__).parent


class Numbered(Event):
    """The event the relay tests put in the outbox: its stream and its rank in it."""

    stream: str
    n: int
    metadata: Metadata = Metadata(name="Numbered", schema_version=1, published=True)


def postgres_or_skip() -> None:
    """Skip the test when PostgreSQL does not listen; fail instead under CI=true."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return
    except OSError:
        reason = "PostgreSQL is not listening on 127.0.0.1:5432"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}, and CI=true requires it")
    pytest.skip(reason)


@dataclass
class OutboxDatabase:
    """A database with messagebus tables under a random prefix, dropped after the test."""

    kind: str
    url: str
    """The URL as a user would write it, for the command line."""
    engine: AsyncEngine
    tables: MessagebusTables
    prefix: str

    @property
    def outbox(self) -> Any:
        return self.tables.outbox

    def new_engine(self) -> AsyncEngine:
        """Return another engine on the same database: another relay's connections."""
        return create_async_engine(self.engine.url)

    async def add(self, streams: Mapping[str, int]) -> list[str]:
        """Insert ``count`` rows per stream, interleaved; return the message ids in id order."""
        serializer = MessageSerializer()
        ids: list[str] = []
        rows = []
        for n in range(max(streams.values(), default=0)):
            for stream, count in streams.items():
                if n < count:
                    event = Numbered(stream=stream, n=n)
                    envelope = dict(serializer.serialize_message(event))
                    now = datetime.now(UTC)
                    rows.append(
                        {
                            "message_id": event.message_id,
                            "stream": stream,
                            "type": envelope["type"],
                            "payload": envelope,
                            "created_at": now,
                            "available_at": now,
                        }
                    )
                    ids.append(envelope["id"])
        async with self.engine.begin() as conn:
            for row in rows:  # one by one: the ids follow the list order
                await conn.execute(insert(self.outbox).values(**row))
        return ids

    async def rows(self) -> list[dict[str, Any]]:
        """Return every outbox row, in id order, as dictionaries."""
        async with self.engine.connect() as conn:
            result = await conn.execute(select(self.outbox).order_by(self.outbox.c.id))
            return [dict(row._mapping) for row in result]

    async def stream_of(self) -> dict[str, str]:
        """Map each message id (as sent) to its stream."""
        return {str(row["message_id"]): row["stream"] for row in await self.rows()}


@asynccontextmanager
async def outbox_database(kind: str, tmp_path: Path) -> AsyncIterator[OutboxDatabase]:
    """Create the messagebus tables under a random prefix in SQLite or PostgreSQL."""
    if kind == "postgresql":
        postgres_or_skip()
        url, async_url = PG_URL, PG_ASYNC_URL
    else:
        url = f"sqlite:///{tmp_path / 'outbox.db'}"
        async_url = f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}"
    prefix = f"relay_{uuid.uuid4().hex[:8]}_"
    metadata = MetaData()
    tables = messagebus_tables(metadata, prefix=prefix)
    engine = create_async_engine(async_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield OutboxDatabase(kind, url, engine, tables, prefix)
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await engine.dispose()


@dataclass
class RecordingTransport(AsyncAbstractEventstreamTransport):
    """Keeps the ids it was sent; raises for the messages ``fails`` is true of."""

    fails: Callable[[Mapping[str, Any]], bool] = lambda message: False
    delay: float = 0.0
    sent: list[str] = field(default_factory=list)
    calls: int = 0
    on_send: Callable[[Mapping[str, Any]], None] | None = None

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fails(message):
            raise ConnectionError("broker down")
        self.sent.append(message["id"])
        if self.on_send is not None:
            self.on_send(message)


async def eventually(check: Callable[[], Any], *, timeout: float = 10.0) -> None:
    """Wait until the awaitable ``check()`` returns true; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"still false after {timeout}s: {check.__doc__ or check}")
        await asyncio.sleep(0.02)


def in_order_per_stream(sent: list[str], ids: list[str], stream_of: Mapping[str, str]) -> bool:
    """Whether ``sent`` (first sends only) keeps, per stream, the order of ``ids``."""
    first: list[str] = list(dict.fromkeys(sent))
    for stream in set(stream_of.values()):
        expected = [i for i in ids if stream_of[i] == stream and i in first]
        actual = [i for i in first if stream_of[i] == stream]
        if expected != actual:
            return False
    return True


def named_engine(db: OutboxDatabase, name: str) -> AsyncEngine:
    """Return another engine on ``db`` whose PostgreSQL sessions are named ``name``."""
    if db.kind != "postgresql":
        return db.new_engine()
    return create_async_engine(
        db.engine.url, connect_args={"server_settings": {"application_name": name}}
    )


async def kill_backends(db: OutboxDatabase, name: str) -> int:
    """Terminate the PostgreSQL sessions named ``name``; return how many there were."""
    query = text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = :name AND pid <> pg_backend_pid()"
    )
    async with db.engine.connect() as conn:
        return int((await conn.execute(query, {"name": name})).scalar_one())
