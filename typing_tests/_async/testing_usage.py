"""The async testing kit as a test calls it: every line must type-check under mypy --strict."""

from typing import assert_type

from messagebus import AsyncMessageBus, AsyncUnitOfWorkTransaction
from messagebus.testing import (
    AsyncInMemoryRepository,
    AsyncInMemoryTransport,
    AsyncInMemoryUnitOfWork,
    AsyncScenario,
    SentEnvelope,
    assert_handled,
    assert_published,
)
from typing_tests.model import Book, BookRegistered, RegisterBook


class AsyncBookRepository(AsyncInMemoryRepository[Book]):
    pass


class AsyncLibrary(AsyncInMemoryUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.books = AsyncBookRepository()


# Not decorated: typing_tests._async is scanned by the usage of the core API.
async def register_book(
    command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[AsyncLibrary]
) -> str:
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=book.id))
    await transaction.uow.books.add(book)
    found = await transaction.uow.books.get(book.id)
    assert_type(found, Book | None)
    return book.id


async def main() -> list[SentEnvelope]:
    bus = AsyncMessageBus[AsyncLibrary]()
    bus.add_listener(RegisterBook, register_book)
    uow = AsyncLibrary()
    scenario = await AsyncScenario(bus, uow).when(RegisterBook(id="1", title="Dune"))
    scenario.then(BookRegistered(id="1")).then_published(BookRegistered(id="1"))
    assert_handled(uow, [RegisterBook(id="1", title="Dune"), BookRegistered(id="1")])
    assert_published(uow.messagestore, [BookRegistered(id="1")])
    assert_type(uow.books.models["1"], Book)
    assert_type(uow.transport, AsyncInMemoryTransport)
    return uow.transport.sent
