# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""A small application built on the kit, as a user of messagebus.testing writes one."""

from typing import Any

from messagebus import SyncUnitOfWorkTransaction, sync_listen
from messagebus.testing import SyncInMemoryRepository, SyncInMemoryUnitOfWork
from tests.unit.model import (
    Book,
    BookRegistered,
    BookReviewed,
    RegisterBook,
    ReviewBook,
    ShelfUpdated,
)


class SyncBookRepository(SyncInMemoryRepository[Book]):
    pass


class SyncLibraryUnitOfWork(SyncInMemoryUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.books = SyncBookRepository()


@sync_listen
def register_book(
    command: RegisterBook, transaction: SyncUnitOfWorkTransaction[SyncLibraryUnitOfWork]
) -> str:
    books = transaction.uow.books
    if books.get(command.id) is not None:
        raise ValueError(f"{command.id} is already registered")
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=book.id, title=book.title))
    books.add(book)
    return book.id


@sync_listen
def update_shelf(
    event: BookRegistered, transaction: SyncUnitOfWorkTransaction[SyncLibraryUnitOfWork]
) -> None:
    book = transaction.uow.books.get(event.id)
    assert book is not None
    book.messages.append(ShelfUpdated(book_id=book.id))


@sync_listen
def review_book(command: ReviewBook, transaction: SyncUnitOfWorkTransaction[Any]) -> None:
    book = transaction.uow.books.get(command.book_id)
    if book is None:
        raise LookupError(f"no book {command.book_id}")
    book.title = f"{book.title} (reviewed)"
    book.messages.append(BookReviewed(book_id=book.id, stars=command.stars))
