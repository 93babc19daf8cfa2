# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""A transaction of the SQL unit of work that did not commit leaves nothing for the next one.

A handler stores a book that raised an event, then its second insert fails: whatever way the
transaction then ends without a commit, the next transaction writes only its own messages
to the message store and the outbox.
"""

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from messagebus import SyncMessageBus, SyncUnitOfWorkTransaction, TransactionError
from messagebus.adapters.sqlalchemy._compat import SyncEngine
from tests.integration._sync.books import SyncBookUnitOfWork, make_bus
from tests.integration.conftest import Schema
from tests.integration.model import Book, BookRegistered, RegisterBook

Transaction = SyncUnitOfWorkTransaction[SyncBookUnitOfWork]


def register_twice(command: RegisterBook, transaction: Transaction) -> None:
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=command.id, title=command.title))
    transaction.uow.books.add(book)
    transaction.uow.books.add(Book(id=command.id, title="again"))  # IntegrityError


def failing_bus() -> SyncMessageBus[SyncBookUnitOfWork]:
    bus: SyncMessageBus[SyncBookUnitOfWork] = SyncMessageBus()
    bus.add_listener(RegisterBook, register_twice)
    return bus


GHOST = RegisterBook(id="ghost", title="A book that never existed")


def end_with_an_exception(uow: SyncBookUnitOfWork) -> None:
    with pytest.raises(IntegrityError):
        with uow as transaction:
            failing_bus().handle(GHOST, transaction)


def end_with_rollback(uow: SyncBookUnitOfWork) -> None:
    with uow as transaction:
        with pytest.raises(IntegrityError):
            failing_bus().handle(GHOST, transaction)
        transaction.rollback()


def end_without_commit(uow: SyncBookUnitOfWork) -> None:
    with pytest.raises(TransactionError):
        with uow as transaction:
            book = Book(id="ghost", title="A book that never existed")
            book.messages.append(BookRegistered(id=book.id, title=book.title))
            transaction.uow.books.add(book)


def end_detached_then_closed(uow: SyncBookUnitOfWork) -> None:
    with uow as transaction:
        book = Book(id="ghost", title="A book that never existed")
        book.messages.append(BookRegistered(id=book.id, title=book.title))
        transaction.uow.books.add(book)
        transaction.detach()
    transaction.close()


@pytest.mark.parametrize(
    "ending",
    [end_with_an_exception, end_with_rollback, end_without_commit, end_detached_then_closed],
    ids=lambda ending: ending.__name__,
)
def test_the_next_transaction_writes_only_its_own_messages(
    engine: SyncEngine,
    schema: Schema,
    uow: SyncBookUnitOfWork,
    ending: Callable[[SyncBookUnitOfWork], Awaitable[None]],
) -> None:
    ending(uow)
    with uow as transaction:
        make_bus().handle(RegisterBook(id="real", title="Dune"), transaction)
        transaction.commit()

    with engine.connect() as connection:
        stored = (connection.execute(select(schema.messagebus.messages.c.payload))).all()
        outbox = (connection.execute(select(schema.messagebus.outbox.c.payload))).all()
        books = (connection.execute(select(schema.books.c.id))).scalars().all()
    assert ["real"] == list(books)
    assert [{"id": "real", "title": "Dune"}] * 2 == [row.payload for row in stored]
    assert ['{"id":"real","title":"Dune"}'] == [row.payload["payload"] for row in outbox]
