"""A small application built on the kit, as a user of messagebus.testing writes one."""

from typing import Any

from messagebus import AsyncUnitOfWorkTransaction, async_listen
from messagebus.testing import AsyncInMemoryRepository, AsyncInMemoryUnitOfWork
from tests.unit.model import (
    Book,
    BookRegistered,
    BookReviewed,
    RegisterBook,
    ReviewBook,
    ShelfUpdated,
)


class AsyncBookRepository(AsyncInMemoryRepository[Book]):
    pass


class AsyncLibraryUnitOfWork(AsyncInMemoryUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.books = AsyncBookRepository()


@async_listen
async def register_book(
    command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[AsyncLibraryUnitOfWork]
) -> str:
    books = transaction.uow.books
    if await books.get(command.id) is not None:
        raise ValueError(f"{command.id} is already registered")
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=book.id, title=book.title))
    await books.add(book)
    return book.id


@async_listen
async def update_shelf(
    event: BookRegistered, transaction: AsyncUnitOfWorkTransaction[AsyncLibraryUnitOfWork]
) -> None:
    book = await transaction.uow.books.get(event.id)
    assert book is not None
    book.messages.append(ShelfUpdated(book_id=book.id))


@async_listen
async def review_book(command: ReviewBook, transaction: AsyncUnitOfWorkTransaction[Any]) -> None:
    book = await transaction.uow.books.get(command.book_id)
    if book is None:
        raise LookupError(f"no book {command.book_id}")
    book.title = f"{book.title} (reviewed)"
    book.messages.append(BookReviewed(book_id=book.id, stars=command.stars))
