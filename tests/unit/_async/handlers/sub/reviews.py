from __future__ import annotations

from messagebus import AsyncUnitOfWorkTransaction, async_listen
from tests.unit._async.fakes import AsyncInMemoryUnitOfWork
from tests.unit.model import BookReviewed, ReviewBook


@async_listen
async def review_book(
    command: ReviewBook, uow: AsyncUnitOfWorkTransaction[AsyncInMemoryUnitOfWork]
) -> int:
    book = await uow.books.get(command.book_id)
    book.messages.append(BookReviewed(book_id=book.id, stars=command.stars))
    return command.stars
