from typing import Any

from messagebus import AsyncUnitOfWorkTransaction, async_listen
from tests.unit._async.fakes import AsyncInMemoryUnitOfWork
from tests.unit.model import Book, BookRegistered, RegisterBook

calls: list[str] = []


@async_listen
async def register_book(
    command: RegisterBook, uow: AsyncUnitOfWorkTransaction[AsyncInMemoryUnitOfWork]
) -> str:
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=book.id, title=book.title))
    await uow.books.add(book)
    return book.id


@async_listen
async def notify_librarian(
    event: BookRegistered, uow: AsyncUnitOfWorkTransaction[Any], clock: str = "no clock"
) -> None:
    calls.append(f"notify {event.id} ({clock})")
