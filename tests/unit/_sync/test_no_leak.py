# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""Nothing of a transaction that did not commit reaches the next one; every repository counts.

Each test runs in every configuration of the unit of work (see ``conftest.py``).
"""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from messagebus import (
    Command,
    ConfigurationError,
    Event,
    GenericCommand,
    GenericEvent,
    Message,
    SyncMessageBus,
    SyncUnitOfWorkTransaction,
    TransactionError,
)
from tests.unit._sync.fakes import SyncInMemoryBookRepository, SyncInMemoryUnitOfWork
from tests.unit._sync.handlers import books
from tests.unit.model import Book, BookRegistered, RegisterBook

Transaction = SyncUnitOfWorkTransaction[SyncInMemoryUnitOfWork]


def book_with_event(book_id: str) -> Book:
    book = Book(id=book_id, title="Ghost")
    book.messages.append(BookRegistered(id=book_id, title="Ghost"))
    return book


def register_then_fail(command: RegisterBook, transaction: Transaction) -> None:
    transaction.uow.books.add(book_with_event(command.id))
    raise LookupError("the second insert failed")  # as an IntegrityError would


def failing_bus() -> SyncMessageBus[SyncInMemoryUnitOfWork]:
    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    bus.add_listener(RegisterBook, register_then_fail)
    return bus


def end_with_an_exception(uow: SyncInMemoryUnitOfWork) -> None:
    with pytest.raises(LookupError):
        with uow as transaction:
            failing_bus().handle(RegisterBook(id="ghost", title="Ghost"), transaction)


def end_with_rollback(uow: SyncInMemoryUnitOfWork) -> None:
    with uow as transaction:
        with pytest.raises(LookupError):
            failing_bus().handle(RegisterBook(id="ghost", title="Ghost"), transaction)
        transaction.rollback()


def end_without_commit(uow: SyncInMemoryUnitOfWork) -> None:
    with pytest.raises(TransactionError):
        with uow as transaction:
            transaction.uow.books.add(book_with_event("ghost"))


def end_detached_then_closed(uow: SyncInMemoryUnitOfWork) -> None:
    with uow as transaction:
        transaction.uow.books.add(book_with_event("ghost"))
        transaction.detach()
    transaction.close()


ENDINGS: list[Callable[[SyncInMemoryUnitOfWork], Awaitable[None]]] = [
    end_with_an_exception,
    end_with_rollback,
    end_without_commit,
    end_detached_then_closed,
]


@pytest.mark.parametrize("ending", ENDINGS, ids=lambda ending: ending.__name__)
def test_no_event_outlives_a_transaction_that_did_not_commit(
    uow: SyncInMemoryUnitOfWork,
    ending: Callable[[SyncInMemoryUnitOfWork], Awaitable[None]],
) -> None:
    ending(uow)
    assert [] == list(uow.books.seen)

    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    bus.scan("tests.unit._sync.handlers")
    with uow as transaction:
        bus.handle(RegisterBook(id="real", title="Dune"), transaction)
        transaction.commit()

    assert ["notify real (no clock)"] == books.calls
    assert (
        uow.expect_stored(
            [RegisterBook(id="real", title="Dune"), BookRegistered(id="real", title="Dune")]
        )
        == uow.stored()
    )
    assert uow.expect_published(["book_registered_v1"]) == uow.published()
    assert all('"real"' in envelope["payload"] for envelope in uow.transport.sent)


def add_to(repository_name: str, command: RegisterBook, transaction: Any) -> None:
    getattr(transaction.uow, repository_name).add(book_with_event(command.id))


def bus_adding_to(repository_name: str, seen: list[str]) -> SyncMessageBus[Any]:
    def handler(command: RegisterBook, transaction: Any) -> None:
        add_to(repository_name, command, transaction)

    def on_registered(event: BookRegistered, transaction: Any) -> None:
        seen.append(event.id)

    bus: SyncMessageBus[Any] = SyncMessageBus()
    bus.add_listener(RegisterBook, handler)
    bus.add_listener(BookRegistered, on_registered)
    return bus


def handle(uow: SyncInMemoryUnitOfWork, bus: SyncMessageBus[Any], book_id: str) -> None:
    with uow as transaction:
        bus.handle(RegisterBook(id=book_id, title="Ghost"), transaction)
        transaction.commit()


def test_a_repository_set_after_the_first_command_is_seen(
    uow: SyncInMemoryUnitOfWork,
) -> None:
    dispatched: list[str] = []
    uow.archive = None  # declared in __init__, as users do, and set later
    handle(uow, bus_adding_to("books", dispatched), "1")
    uow.archive = SyncInMemoryBookRepository()
    handle(uow, bus_adding_to("archive", dispatched), "2")
    assert ["1", "2"] == dispatched
    assert uow.expect_published(["book_registered_v1"] * 2) == uow.published()


def test_a_replaced_repository_is_seen(uow: SyncInMemoryUnitOfWork) -> None:
    dispatched: list[str] = []
    bus = bus_adding_to("books", dispatched)
    handle(uow, bus, "1")
    uow.books = SyncInMemoryBookRepository()
    handle(uow, bus, "2")
    assert ["1", "2"] == dispatched


def test_a_repository_made_during_a_transaction_is_seen(
    uow: SyncInMemoryUnitOfWork,
) -> None:
    dispatched: list[str] = []
    bus = bus_adding_to("books", dispatched)
    with uow as transaction:
        bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        uow.books = SyncInMemoryBookRepository()  # made lazily, mid-transaction
        bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        transaction.commit()
    assert ["1", "2"] == dispatched


def set_behind_setattr(uow: Any, name: str, value: Any) -> None:
    object.__setattr__(uow, name, value)


def set_in_dict(uow: Any, name: str, value: Any) -> None:
    vars(uow)[name] = value


def set_after_reading_dict(uow: Any, name: str, value: Any) -> None:
    assert "books" in vars(uow)
    setattr(uow, name, value)


@pytest.mark.parametrize(
    ("set_repository", "after_a_command"),
    [
        (set_behind_setattr, False),
        (set_in_dict, False),
        (set_after_reading_dict, False),
        # Once the repositories are known, only an attribute set or deleted the usual
        # way makes the unit of work look again (see SyncAbstractUnitOfWork).
        (set_after_reading_dict, True),
    ],
    ids=lambda value: getattr(value, "__name__", "after" if value else "before"),
)
def test_a_repository_set_without_the_unit_of_work_knowing_is_seen(
    uow: SyncInMemoryUnitOfWork,
    set_repository: Callable[[Any, str, Any], None],
    after_a_command: bool,
) -> None:
    # The unit of work records the attributes its __setattr__ sets, so as never to read
    # its __dict__ (see SyncAbstractUnitOfWork._members); these ways around it count too.
    dispatched: list[str] = []
    if after_a_command:
        handle(uow, bus_adding_to("books", dispatched), "0")
    set_repository(uow, "archive", SyncInMemoryBookRepository())
    handle(uow, bus_adding_to("archive", dispatched), "1")
    assert [*(["0"] if after_a_command else []), "1"] == dispatched


def test_a_deleted_repository_is_no_longer_looked_at(
    uow: SyncInMemoryUnitOfWork,
) -> None:
    dispatched: list[str] = []
    uow.archive = SyncInMemoryBookRepository()
    handle(uow, bus_adding_to("archive", dispatched), "1")
    archive = uow.archive
    del uow.archive
    archive.add(book_with_event("orphan"))  # no longer part of the unit of work
    handle(uow, bus_adding_to("books", dispatched), "2")
    assert ["1", "2"] == dispatched


@pytest.mark.parametrize(
    "base", [Message, GenericCommand, GenericEvent, Command, Event], ids=lambda c: c.__name__
)
def test_listening_to_a_base_message_class_is_an_error(base: type[Message[Any]]) -> None:
    def on_anything(message: Any, transaction: Any) -> None:
        pass  # pragma: no cover

    bus: SyncMessageBus[Any] = SyncMessageBus()
    with pytest.raises(ConfigurationError) as raised:
        bus.add_listener(base, on_anything)
    assert "on_anything" in str(raised.value)
    assert "concrete command or event class" in str(raised.value)
