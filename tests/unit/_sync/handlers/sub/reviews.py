# Generated from the _async package by scripts/generate_sync.py: do not edit.
from __future__ import annotations

from messagebus import SyncUnitOfWorkTransaction, sync_listen
from tests.unit._sync.fakes import SyncInMemoryUnitOfWork
from tests.unit.model import BookReviewed, ReviewBook


@sync_listen
def review_book(command: ReviewBook, uow: SyncUnitOfWorkTransaction[SyncInMemoryUnitOfWork]) -> int:
    book = uow.books.get(command.book_id)
    book.messages.append(BookReviewed(book_id=book.id, stars=command.stars))
    return command.stars
