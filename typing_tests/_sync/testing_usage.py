# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""The async testing kit as a test calls it: every line must type-check under mypy --strict."""

from typing import assert_type

from messagebus import SyncMessageBus, SyncUnitOfWorkTransaction
from messagebus.testing import (
    SentEnvelope,
    SyncInMemoryRepository,
    SyncInMemoryTransport,
    SyncInMemoryUnitOfWork,
    SyncScenario,
    assert_handled,
    assert_published,
)
from typing_tests.model import Book, BookRegistered, RegisterBook


class SyncBookRepository(SyncInMemoryRepository[Book]):
    pass


class SyncLibrary(SyncInMemoryUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.books = SyncBookRepository()


# Not decorated: typing_tests._sync is scanned by the usage of the core API.
def register_book(
    command: RegisterBook, transaction: SyncUnitOfWorkTransaction[SyncLibrary]
) -> str:
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=book.id))
    transaction.uow.books.add(book)
    found = transaction.uow.books.get(book.id)
    assert_type(found, Book | None)
    return book.id


def main() -> list[SentEnvelope]:
    bus = SyncMessageBus[SyncLibrary]()
    bus.add_listener(RegisterBook, register_book)
    uow = SyncLibrary()
    scenario = SyncScenario(bus, uow).when(RegisterBook(id="1", title="Dune"))
    scenario.then(BookRegistered(id="1")).then_published(BookRegistered(id="1"))
    assert_handled(uow, [RegisterBook(id="1", title="Dune"), BookRegistered(id="1")])
    assert_published(uow.messagestore, [BookRegistered(id="1")])
    assert_type(uow.books.models["1"], Book)
    assert_type(uow.transport, SyncInMemoryTransport)
    return uow.transport.sent
