"""A repository and a unit of work over the books table, as a user of the adapter writes them."""

from typing import Any

from sqlalchemy import Table, insert, select

from messagebus import AsyncMessageBus, AsyncUnitOfWorkTransaction, SinkholeMetricsStore
from messagebus.adapters.sqlalchemy import AsyncSqlAlchemyRepository, AsyncSqlAlchemyUnitOfWork
from messagebus.adapters.sqlalchemy._compat import AsyncEngine
from tests.integration.conftest import Schema
from tests.integration.model import Book, BookRegistered, RegisterBook


class AsyncBookRepository(AsyncSqlAlchemyRepository[Book]):
    def __init__(self, uow: AsyncSqlAlchemyUnitOfWork[Any, Any], table: Table) -> None:
        super().__init__(uow)
        self.table = table

    async def add(self, book: Book) -> None:
        await self.connection.execute(insert(self.table).values(id=book.id, title=book.title))
        self.seen.append(book)

    async def get(self, book_id: str) -> Book | None:
        result = await self.connection.execute(select(self.table).where(self.table.c.id == book_id))
        row = result.one_or_none()
        if row is None:
            return None
        book = Book(id=row.id, title=row.title)
        self.seen.append(book)
        return book


class AsyncBookUnitOfWork(AsyncSqlAlchemyUnitOfWork[AsyncBookRepository, SinkholeMetricsStore]):
    def __init__(self, engine: AsyncEngine, schema: Schema, **options: Any) -> None:
        super().__init__(engine, tables=schema.messagebus, **options)
        self.books = AsyncBookRepository(self, schema.books)


async def register_book(
    command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[AsyncBookUnitOfWork]
) -> str:
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=command.id, title=command.title))
    await transaction.books.add(book)
    return book.id


def make_bus() -> AsyncMessageBus[AsyncBookUnitOfWork]:
    bus: AsyncMessageBus[AsyncBookUnitOfWork] = AsyncMessageBus()
    bus.add_listener(RegisterBook, register_book)
    return bus
