"""The SQLAlchemy adapter as a user calls it, async and sync, under mypy --strict.

Not generated: a user imports SQLAlchemy's engines from SQLAlchemy itself, and the
relay has no sync twin.
"""

import asyncio
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from messagebus import (
    AsyncAbstractEventstreamTransport,
    AsyncMessageBus,
    AsyncUnitOfWorkTransaction,
    SinkholeMetricsStore,
    SyncMessageBus,
    SyncUnitOfWorkTransaction,
)
from messagebus.adapters.sqlalchemy import (
    AsyncOutboxRelay,
    AsyncSqlAlchemyRepository,
    AsyncSqlAlchemyUnitOfWork,
    Backoff,
    MessagebusTables,
    SyncSqlAlchemyRepository,
    SyncSqlAlchemyUnitOfWork,
    messagebus_tables,
)
from typing_tests.model import Book, BookRegistered, RegisterBook

metadata = MetaData()
books = Table(
    "typed_books", metadata, Column("id", String, primary_key=True), Column("title", String)
)
tables: MessagebusTables = messagebus_tables(metadata, prefix="typed_")


class AsyncBookRepository(AsyncSqlAlchemyRepository[Book]):
    async def add(self, book: Book) -> None:
        await self.connection.execute(insert(books).values(id=book.id, title=book.title))
        self.seen.append(book)

    async def count(self) -> int:
        return len((await self.connection.execute(select(books.c.id))).all())


class AsyncUnitOfWork(AsyncSqlAlchemyUnitOfWork[AsyncBookRepository, SinkholeMetricsStore]):
    def __init__(self, url: str) -> None:
        super().__init__(create_async_engine(url), tables=tables, stream=lambda m: "books")
        self.books = AsyncBookRepository(self)


class SyncBookRepository(SyncSqlAlchemyRepository[Book]):
    def add(self, book: Book) -> None:
        self.connection.execute(insert(books).values(id=book.id, title=book.title))
        self.seen.append(book)


class SyncUnitOfWork(SyncSqlAlchemyUnitOfWork[SyncBookRepository, SinkholeMetricsStore]):
    def __init__(self, url: str) -> None:
        super().__init__(create_engine(url), tables=tables)
        self.books = SyncBookRepository(self)


class AsyncListTransport(AsyncAbstractEventstreamTransport):
    def __init__(self) -> None:
        self.sent: list[Mapping[str, Any]] = []

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        self.sent.append(message)


async def register_async(command: RegisterBook, uow: AsyncUnitOfWorkTransaction[Any]) -> None:
    book = Book(id=command.id, title=command.title, messages=[BookRegistered(id=command.id)])
    await uow.books.add(book)


def register_sync(command: RegisterBook, uow: SyncUnitOfWorkTransaction[Any]) -> None:
    uow.books.add(Book(id=command.id, title=command.title))


async def run_async(url: str) -> int:
    """Handle a command through the SQL unit of work, then relay the outbox."""
    uow = AsyncUnitOfWork(url)
    async with uow.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    bus: AsyncMessageBus[AsyncUnitOfWork] = AsyncMessageBus()
    bus.add_listener(RegisterBook, register_async)
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    transport = AsyncListTransport()
    relay = AsyncOutboxRelay(
        uow.engine, transport, outbox=tables.outbox, backoff=Backoff(), progress_interval=None
    )
    delivered: int = await relay.run_once()
    await uow.engine.dispose()
    return delivered + len(transport.sent)


def run_sync(url: str) -> None:
    """Handle a command through the sync SQL unit of work."""
    uow = SyncUnitOfWork(url)
    bus: SyncMessageBus[SyncUnitOfWork] = SyncMessageBus()
    bus.add_listener(RegisterBook, register_sync)
    with uow as transaction:
        bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        transaction.commit()


def main(path: str) -> int:
    """Run both APIs on one SQLite file; return what the relay delivered, twice counted."""
    delivered = asyncio.run(run_async(f"sqlite+aiosqlite:///{path}"))
    run_sync(f"sqlite:///{path}")
    return delivered
