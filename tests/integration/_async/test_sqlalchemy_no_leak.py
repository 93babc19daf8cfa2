"""A transaction of the SQL unit of work that did not commit leaves nothing for the next one.

A handler stores a book that raised an event, then its second insert fails: whatever way the
transaction then ends without a commit, the next transaction writes only its own messages
to the message store and the outbox.
"""

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from messagebus import AsyncMessageBus, AsyncUnitOfWorkTransaction, TransactionError
from messagebus.adapters.sqlalchemy._compat import AsyncEngine
from tests.integration._async.books import AsyncBookUnitOfWork, make_bus
from tests.integration.conftest import Schema
from tests.integration.model import Book, BookRegistered, RegisterBook

Transaction = AsyncUnitOfWorkTransaction[AsyncBookUnitOfWork]


async def register_twice(command: RegisterBook, transaction: Transaction) -> None:
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=command.id, title=command.title))
    await transaction.uow.books.add(book)
    await transaction.uow.books.add(Book(id=command.id, title="again"))  # IntegrityError


def failing_bus() -> AsyncMessageBus[AsyncBookUnitOfWork]:
    bus: AsyncMessageBus[AsyncBookUnitOfWork] = AsyncMessageBus()
    bus.add_listener(RegisterBook, register_twice)
    return bus


GHOST = RegisterBook(id="ghost", title="A book that never existed")


async def end_with_an_exception(uow: AsyncBookUnitOfWork) -> None:
    with pytest.raises(IntegrityError):
        async with uow as transaction:
            await failing_bus().handle(GHOST, transaction)


async def end_with_rollback(uow: AsyncBookUnitOfWork) -> None:
    async with uow as transaction:
        with pytest.raises(IntegrityError):
            await failing_bus().handle(GHOST, transaction)
        await transaction.rollback()


async def end_without_commit(uow: AsyncBookUnitOfWork) -> None:
    with pytest.raises(TransactionError):
        async with uow as transaction:
            book = Book(id="ghost", title="A book that never existed")
            book.messages.append(BookRegistered(id=book.id, title=book.title))
            await transaction.uow.books.add(book)


async def end_detached_then_closed(uow: AsyncBookUnitOfWork) -> None:
    async with uow as transaction:
        book = Book(id="ghost", title="A book that never existed")
        book.messages.append(BookRegistered(id=book.id, title=book.title))
        await transaction.uow.books.add(book)
        await transaction.detach()
    await transaction.close()


@pytest.mark.parametrize(
    "ending",
    [end_with_an_exception, end_with_rollback, end_without_commit, end_detached_then_closed],
    ids=lambda ending: ending.__name__,
)
async def test_the_next_transaction_writes_only_its_own_messages(
    engine: AsyncEngine,
    schema: Schema,
    uow: AsyncBookUnitOfWork,
    ending: Callable[[AsyncBookUnitOfWork], Awaitable[None]],
) -> None:
    await ending(uow)
    async with uow as transaction:
        await make_bus().handle(RegisterBook(id="real", title="Dune"), transaction)
        await transaction.commit()

    async with engine.connect() as connection:
        stored = (await connection.execute(select(schema.messagebus.messages.c.payload))).all()
        outbox = (await connection.execute(select(schema.messagebus.outbox.c.payload))).all()
        books = (await connection.execute(select(schema.books.c.id))).scalars().all()
    assert ["real"] == list(books)
    assert [{"id": "real", "title": "Dune"}] * 2 == [row.payload for row in stored]
    assert ['{"id":"real","title":"Dune"}'] == [row.payload["payload"] for row in outbox]
