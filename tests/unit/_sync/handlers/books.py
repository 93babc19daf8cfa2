# Generated from the _async package by scripts/generate_sync.py: do not edit.
from typing import Any

from messagebus import SyncUnitOfWorkTransaction, sync_listen
from tests.unit._sync.fakes import SyncInMemoryUnitOfWork
from tests.unit.model import Book, BookRegistered, RegisterBook

calls: list[str] = []


@sync_listen
def register_book(
    command: RegisterBook, uow: SyncUnitOfWorkTransaction[SyncInMemoryUnitOfWork]
) -> str:
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=book.id, title=book.title))
    uow.books.add(book)
    return book.id


@sync_listen
def notify_librarian(
    event: BookRegistered, uow: SyncUnitOfWorkTransaction[Any], clock: str = "no clock"
) -> None:
    calls.append(f"notify {event.id} ({clock})")
