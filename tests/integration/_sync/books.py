# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""A repository and a unit of work over the books table, as a user of the adapter writes them."""

from typing import Any

from sqlalchemy import Table, insert, select

from messagebus import SinkholeMetricsStore, SyncMessageBus, SyncUnitOfWorkTransaction
from messagebus.adapters.sqlalchemy import SyncSqlAlchemyRepository, SyncSqlAlchemyUnitOfWork
from messagebus.adapters.sqlalchemy._compat import SyncEngine
from tests.integration.conftest import Schema
from tests.integration.model import Book, BookRegistered, RegisterBook


class SyncBookRepository(SyncSqlAlchemyRepository[Book]):
    def __init__(self, uow: SyncSqlAlchemyUnitOfWork[Any, Any], table: Table) -> None:
        super().__init__(uow)
        self.table = table

    def add(self, book: Book) -> None:
        self.connection.execute(insert(self.table).values(id=book.id, title=book.title))
        self.seen.append(book)

    def get(self, book_id: str) -> Book | None:
        result = self.connection.execute(select(self.table).where(self.table.c.id == book_id))
        row = result.one_or_none()
        if row is None:
            return None
        book = Book(id=row.id, title=row.title)
        self.seen.append(book)
        return book


class SyncBookUnitOfWork(SyncSqlAlchemyUnitOfWork[SyncBookRepository, SinkholeMetricsStore]):
    def __init__(self, engine: SyncEngine, schema: Schema, **options: Any) -> None:
        super().__init__(engine, tables=schema.messagebus, **options)
        self.books = SyncBookRepository(self, schema.books)


def register_book(
    command: RegisterBook, transaction: SyncUnitOfWorkTransaction[SyncBookUnitOfWork]
) -> str:
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=command.id, title=command.title))
    transaction.books.add(book)
    return book.id


def make_bus() -> SyncMessageBus[SyncBookUnitOfWork]:
    bus: SyncMessageBus[SyncBookUnitOfWork] = SyncMessageBus()
    bus.add_listener(RegisterBook, register_book)
    return bus
