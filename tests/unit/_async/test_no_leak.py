"""Nothing of a transaction that did not commit reaches the next one; every repository counts.

Each test runs in every configuration of the unit of work (see ``conftest.py``).
"""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from messagebus import (
    AsyncMessageBus,
    AsyncUnitOfWorkTransaction,
    Command,
    ConfigurationError,
    Event,
    GenericCommand,
    GenericEvent,
    Message,
    TransactionError,
)
from tests.unit._async.fakes import AsyncInMemoryBookRepository, AsyncInMemoryUnitOfWork
from tests.unit._async.handlers import books
from tests.unit.model import Book, BookRegistered, RegisterBook

Transaction = AsyncUnitOfWorkTransaction[AsyncInMemoryUnitOfWork]


def book_with_event(book_id: str) -> Book:
    book = Book(id=book_id, title="Ghost")
    book.messages.append(BookRegistered(id=book_id, title="Ghost"))
    return book


async def register_then_fail(command: RegisterBook, transaction: Transaction) -> None:
    await transaction.uow.books.add(book_with_event(command.id))
    raise LookupError("the second insert failed")  # as an IntegrityError would


def failing_bus() -> AsyncMessageBus[AsyncInMemoryUnitOfWork]:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.add_listener(RegisterBook, register_then_fail)
    return bus


async def end_with_an_exception(uow: AsyncInMemoryUnitOfWork) -> None:
    with pytest.raises(LookupError):
        async with uow as transaction:
            await failing_bus().handle(RegisterBook(id="ghost", title="Ghost"), transaction)


async def end_with_rollback(uow: AsyncInMemoryUnitOfWork) -> None:
    async with uow as transaction:
        with pytest.raises(LookupError):
            await failing_bus().handle(RegisterBook(id="ghost", title="Ghost"), transaction)
        await transaction.rollback()


async def end_without_commit(uow: AsyncInMemoryUnitOfWork) -> None:
    with pytest.raises(TransactionError):
        async with uow as transaction:
            await transaction.uow.books.add(book_with_event("ghost"))


async def end_detached_then_closed(uow: AsyncInMemoryUnitOfWork) -> None:
    async with uow as transaction:
        await transaction.uow.books.add(book_with_event("ghost"))
        await transaction.detach()
    await transaction.close()


ENDINGS: list[Callable[[AsyncInMemoryUnitOfWork], Awaitable[None]]] = [
    end_with_an_exception,
    end_with_rollback,
    end_without_commit,
    end_detached_then_closed,
]


@pytest.mark.parametrize("ending", ENDINGS, ids=lambda ending: ending.__name__)
async def test_no_event_outlives_a_transaction_that_did_not_commit(
    uow: AsyncInMemoryUnitOfWork,
    ending: Callable[[AsyncInMemoryUnitOfWork], Awaitable[None]],
) -> None:
    await ending(uow)
    assert [] == list(uow.books.seen)

    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.scan("tests.unit._async.handlers")
    async with uow as transaction:
        await bus.handle(RegisterBook(id="real", title="Dune"), transaction)
        await transaction.commit()

    assert ["notify real (no clock)"] == books.calls
    assert (
        uow.expect_stored(
            [RegisterBook(id="real", title="Dune"), BookRegistered(id="real", title="Dune")]
        )
        == uow.stored()
    )
    assert uow.expect_published(["book_registered_v1"]) == uow.published()
    assert all('"real"' in envelope["payload"] for envelope in uow.transport.sent)


async def add_to(repository_name: str, command: RegisterBook, transaction: Any) -> None:
    await getattr(transaction.uow, repository_name).add(book_with_event(command.id))


def bus_adding_to(repository_name: str, seen: list[str]) -> AsyncMessageBus[Any]:
    async def handler(command: RegisterBook, transaction: Any) -> None:
        await add_to(repository_name, command, transaction)

    async def on_registered(event: BookRegistered, transaction: Any) -> None:
        seen.append(event.id)

    bus: AsyncMessageBus[Any] = AsyncMessageBus()
    bus.add_listener(RegisterBook, handler)
    bus.add_listener(BookRegistered, on_registered)
    return bus


async def handle(uow: AsyncInMemoryUnitOfWork, bus: AsyncMessageBus[Any], book_id: str) -> None:
    async with uow as transaction:
        await bus.handle(RegisterBook(id=book_id, title="Ghost"), transaction)
        await transaction.commit()


async def test_a_repository_set_after_the_first_command_is_seen(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    dispatched: list[str] = []
    uow.archive = None  # declared in __init__, as users do, and set later
    await handle(uow, bus_adding_to("books", dispatched), "1")
    uow.archive = AsyncInMemoryBookRepository()
    await handle(uow, bus_adding_to("archive", dispatched), "2")
    assert ["1", "2"] == dispatched
    assert uow.expect_published(["book_registered_v1"] * 2) == uow.published()


async def test_a_replaced_repository_is_seen(uow: AsyncInMemoryUnitOfWork) -> None:
    dispatched: list[str] = []
    bus = bus_adding_to("books", dispatched)
    await handle(uow, bus, "1")
    uow.books = AsyncInMemoryBookRepository()
    await handle(uow, bus, "2")
    assert ["1", "2"] == dispatched


async def test_a_repository_made_during_a_transaction_is_seen(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    dispatched: list[str] = []
    bus = bus_adding_to("books", dispatched)
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        uow.books = AsyncInMemoryBookRepository()  # made lazily, mid-transaction
        await bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        await transaction.commit()
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
        # way makes the unit of work look again (see AsyncAbstractUnitOfWork).
        (set_after_reading_dict, True),
    ],
    ids=lambda value: getattr(value, "__name__", "after" if value else "before"),
)
async def test_a_repository_set_without_the_unit_of_work_knowing_is_seen(
    uow: AsyncInMemoryUnitOfWork,
    set_repository: Callable[[Any, str, Any], None],
    after_a_command: bool,
) -> None:
    # The unit of work records the attributes its __setattr__ sets, so as never to read
    # its __dict__ (see AsyncAbstractUnitOfWork._members); these ways around it count too.
    dispatched: list[str] = []
    if after_a_command:
        await handle(uow, bus_adding_to("books", dispatched), "0")
    set_repository(uow, "archive", AsyncInMemoryBookRepository())
    await handle(uow, bus_adding_to("archive", dispatched), "1")
    assert [*(["0"] if after_a_command else []), "1"] == dispatched


async def test_a_deleted_repository_is_no_longer_looked_at(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    dispatched: list[str] = []
    uow.archive = AsyncInMemoryBookRepository()
    await handle(uow, bus_adding_to("archive", dispatched), "1")
    archive = uow.archive
    del uow.archive
    await archive.add(book_with_event("orphan"))  # no longer part of the unit of work
    await handle(uow, bus_adding_to("books", dispatched), "2")
    assert ["1", "2"] == dispatched


@pytest.mark.parametrize(
    "base", [Message, GenericCommand, GenericEvent, Command, Event], ids=lambda c: c.__name__
)
def test_listening_to_a_base_message_class_is_an_error(base: type[Message[Any]]) -> None:
    async def on_anything(message: Any, transaction: Any) -> None:
        pass  # pragma: no cover

    bus: AsyncMessageBus[Any] = AsyncMessageBus()
    with pytest.raises(ConfigurationError) as raised:
        bus.add_listener(base, on_anything)
    assert "on_anything" in str(raised.value)
    assert "concrete command or event class" in str(raised.value)
