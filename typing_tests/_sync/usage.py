# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""The async API as a user calls it: every line must type-check under mypy --strict."""

from collections.abc import Mapping
from typing import Any, assert_type

from messagebus import (
    Message,
    SinkholeMetricsStore,
    SyncAbstractEventstreamTransport,
    SyncAbstractMessageStoreRepository,
    SyncAbstractRepository,
    SyncAbstractUnitOfWork,
    SyncDependency,
    SyncEventstreamPublisher,
    SyncMessageBus,
    SyncUnitOfWorkTransaction,
    TransactionStatus,
    sync_listen,
)
from typing_tests.model import Book, BookRegistered, RegisterBook


class SyncBookRepository(SyncAbstractRepository[Book]):
    def __init__(self) -> None:
        super().__init__()
        self.books: dict[str, Book] = {}

    def add(self, book: Book) -> None:
        self.books[book.id] = book
        self.seen.append(book)


class SyncMessageStore(SyncAbstractMessageStoreRepository):
    def _add(self, message: Message[Any]) -> None:
        pass


class SyncPrintTransport(SyncAbstractEventstreamTransport):
    def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        print(message["type"])


class SyncUnitOfWork(
    SyncAbstractUnitOfWork[SyncBookRepository, SyncMessageStore, SinkholeMetricsStore]
):
    def __init__(self) -> None:
        self.books = SyncBookRepository()
        self.messagestore = SyncMessageStore(SyncEventstreamPublisher(SyncPrintTransport()))

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass


class SyncMailer(SyncDependency):
    def on_after_commit(self) -> None:
        pass

    def on_after_rollback(self) -> None:
        pass


Transaction = SyncUnitOfWorkTransaction[SyncUnitOfWork]


@sync_listen
def register_book(command: RegisterBook, transaction: Transaction) -> Book:
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=book.id))
    # transaction.uow is the unit of work with its own type: its repositories are checked
    assert_type(transaction.uow, SyncUnitOfWork)
    assert_type(transaction.uow.books, SyncBookRepository)
    transaction.uow.books.add(book)
    return book


@sync_listen
def notify(event: BookRegistered, uow: Transaction, mailer: SyncMailer) -> None:
    pass


def main() -> TransactionStatus:
    bus: SyncMessageBus[SyncUnitOfWork] = SyncMessageBus(mailer=SyncMailer)
    bus.scan("typing_tests._sync")
    uow = SyncUnitOfWork()
    with uow as transaction:
        book: Book = bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        assert book.title == "Dune"
        transaction.commit()
    status: TransactionStatus = transaction.status
    return status
