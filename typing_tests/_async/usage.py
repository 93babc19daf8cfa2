"""The async API as a user calls it: every line must type-check under mypy --strict."""

from collections.abc import Mapping
from typing import Any, assert_type

from messagebus import (
    AsyncAbstractEventstreamTransport,
    AsyncAbstractMessageStoreRepository,
    AsyncAbstractRepository,
    AsyncAbstractUnitOfWork,
    AsyncDependency,
    AsyncEventstreamPublisher,
    AsyncMessageBus,
    AsyncUnitOfWorkTransaction,
    Message,
    SinkholeMetricsStore,
    TransactionStatus,
    async_listen,
)
from typing_tests.model import Book, BookRegistered, RegisterBook


class AsyncBookRepository(AsyncAbstractRepository[Book]):
    def __init__(self) -> None:
        super().__init__()
        self.books: dict[str, Book] = {}

    async def add(self, book: Book) -> None:
        self.books[book.id] = book
        self.seen.append(book)


class AsyncMessageStore(AsyncAbstractMessageStoreRepository):
    async def _add(self, message: Message[Any]) -> None:
        pass


class AsyncPrintTransport(AsyncAbstractEventstreamTransport):
    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        print(message["type"])


class AsyncUnitOfWork(
    AsyncAbstractUnitOfWork[AsyncBookRepository, AsyncMessageStore, SinkholeMetricsStore]
):
    def __init__(self) -> None:
        self.books = AsyncBookRepository()
        self.messagestore = AsyncMessageStore(AsyncEventstreamPublisher(AsyncPrintTransport()))

    async def commit(self) -> None:
        pass

    async def rollback(self) -> None:
        pass


class AsyncMailer(AsyncDependency):
    async def on_after_commit(self) -> None:
        pass

    async def on_after_rollback(self) -> None:
        pass


Transaction = AsyncUnitOfWorkTransaction[AsyncUnitOfWork]


@async_listen
async def register_book(command: RegisterBook, transaction: Transaction) -> Book:
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=book.id))
    # transaction.uow is the unit of work with its own type: its repositories are checked
    assert_type(transaction.uow, AsyncUnitOfWork)
    assert_type(transaction.uow.books, AsyncBookRepository)
    await transaction.uow.books.add(book)
    return book


@async_listen
async def notify(event: BookRegistered, uow: Transaction, mailer: AsyncMailer) -> None:
    pass


async def main() -> TransactionStatus:
    bus: AsyncMessageBus[AsyncUnitOfWork] = AsyncMessageBus(mailer=AsyncMailer)
    bus.scan("typing_tests._async")
    uow = AsyncUnitOfWork()
    async with uow as transaction:
        book: Book = await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        assert book.title == "Dune"
        await transaction.commit()
    status: TransactionStatus = transaction.status
    return status
