"""Every message records its cause and its conversation, in every configuration.

Each test runs in every configuration of the unit of work (see ``conftest.py``).
"""

from typing import Any

from pydantic import ConfigDict

from messagebus import (
    AsyncMessageBus,
    AsyncUnitOfWorkTransaction,
    Event,
    Message,
    Metadata,
)
from messagebus.domain.model.ids import new_message_id
from tests.unit._async.fakes import AsyncInMemoryUnitOfWork
from tests.unit.model import Book, BookRegistered, RegisterBook, ShelfUpdated

Transaction = AsyncUnitOfWorkTransaction[AsyncInMemoryUnitOfWork]


class BookFrozen(Event):
    """An event of a frozen class: the bus sets its ids all the same."""

    model_config = ConfigDict(frozen=True)
    id: str
    metadata: Metadata = Metadata(name="book_frozen", schema_version=1)


def book_raising(book_id: str, *events: Message[Any]) -> Book:
    book = Book(id=book_id, title="Dune")
    book.messages.extend(events)
    return book


def make_bus(handled: list[Message[Any]]) -> AsyncMessageBus[AsyncInMemoryUnitOfWork]:
    async def register(command: RegisterBook, transaction: Transaction) -> None:
        handled.append(command)
        event = BookRegistered(id=command.id, title=command.title)
        await transaction.uow.books.add(book_raising(command.id, event))

    async def shelve(event: BookRegistered, transaction: Transaction) -> None:
        handled.append(event)
        shelf = f"shelf-{event.id}"
        await transaction.uow.books.add(book_raising(shelf, ShelfUpdated(book_id=event.id)))

    async def record(event: ShelfUpdated, transaction: Transaction) -> None:
        handled.append(event)

    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.add_listener(RegisterBook, register)
    bus.add_listener(BookRegistered, shelve)
    bus.add_listener(ShelfUpdated, record)
    return bus


async def test_each_message_records_its_cause_and_the_command_it_began_with(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    handled: list[Message[Any]] = []
    command = RegisterBook(id="1", title="Dune")
    async with uow as transaction:
        await make_bus(handled).handle(command, transaction)
        await transaction.commit()

    registered, shelved = handled[1:]
    assert [RegisterBook, BookRegistered, ShelfUpdated] == [type(m) for m in handled]
    assert (None, None) == (command.causation_id, command.correlation_id)
    assert command.message_id == command.conversation_id
    assert (command.message_id, command.message_id) == (
        registered.causation_id,
        registered.correlation_id,
    )
    assert (registered.message_id, command.message_id) == (
        shelved.causation_id,
        shelved.correlation_id,
    )
    assert {command.message_id} == {message.conversation_id for message in handled}


async def test_a_command_of_a_conversation_passes_its_correlation_on(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    """A command sent in reply to a message of another service continues its conversation."""
    handled: list[Message[Any]] = []
    cause, conversation = new_message_id(), new_message_id()
    command = RegisterBook(id="1", title="Dune", causation_id=cause, correlation_id=conversation)
    async with uow as transaction:
        await make_bus(handled).handle(command, transaction)
        await transaction.commit()

    assert (cause, conversation) == (command.causation_id, command.correlation_id)
    assert [command.message_id, handled[1].message_id] == [m.causation_id for m in handled[1:]]
    assert {conversation} == {message.conversation_id for message in handled}


async def test_an_event_handled_directly_causes_the_events_of_its_handlers(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    handled: list[Message[Any]] = []
    event = BookRegistered(id="1", title="Dune")
    async with uow as transaction:
        await make_bus(handled).handle(event, transaction)
        await transaction.commit()

    [shelved] = handled[1:]
    assert (event.message_id, event.message_id) == (shelved.causation_id, shelved.correlation_id)


async def test_an_event_keeps_the_ids_its_model_gave_it(uow: AsyncInMemoryUnitOfWork) -> None:
    cause, conversation = new_message_id(), new_message_id()
    explicit = BookRegistered(id="1", title="Dune", causation_id=cause, correlation_id=conversation)
    frozen = BookFrozen(id="1")
    received: list[Message[Any]] = []

    async def register(command: RegisterBook, transaction: Transaction) -> None:
        await transaction.uow.books.add(book_raising(command.id, explicit, frozen))

    async def record(event: BookRegistered | BookFrozen, transaction: Transaction) -> None:
        received.append(event)

    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.add_listener(RegisterBook, register)
    bus.add_listener(BookRegistered, record)
    bus.add_listener(BookFrozen, record)
    command = RegisterBook(id="1", title="Dune")
    async with uow as transaction:
        await bus.handle(command, transaction)
        await transaction.commit()

    assert [explicit, frozen] == received
    assert (cause, conversation) == (explicit.causation_id, explicit.correlation_id)
    assert (command.message_id, command.message_id) == (
        frozen.causation_id,
        frozen.correlation_id,
    )


def test_equality_and_repr_ignore_the_ids() -> None:
    caused = BookRegistered(id="1", title="Dune", causation_id=new_message_id())
    assert BookRegistered(id="1", title="Dune") == caused
    assert "<BookRegistered id='1' title='Dune'>" == repr(caused)
