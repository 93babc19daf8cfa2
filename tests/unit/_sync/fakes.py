# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""In-memory adapters for the unit tests: a repository, a message store, a unit of work."""

from collections.abc import Mapping
from typing import Any

from messagebus import (
    AbstractMetricsStore,
    Message,
    SinkholeMetricsStore,
    SyncAbstractEventstreamTransport,
    SyncAbstractMessageStoreRepository,
    SyncAbstractRepository,
    SyncAbstractUnitOfWork,
    SyncDependency,
    SyncEventstreamPublisher,
)
from tests.unit.model import Book


class SyncInMemoryBookRepository(SyncAbstractRepository[Book]):
    def __init__(self) -> None:
        super().__init__()
        self.books: dict[str, Book] = {}

    def add(self, book: Book) -> None:
        self.books[book.id] = book
        self.seen.append(book)

    def get(self, book_id: str) -> Book:
        book = self.books[book_id]
        self.seen.append(book)
        return book


class SyncRecordingTransport(SyncAbstractEventstreamTransport):
    def __init__(self) -> None:
        self.sent: list[Mapping[str, Any]] = []

    def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        self.sent.append(message)


class SyncInMemoryMessageStore(SyncAbstractMessageStoreRepository):
    def __init__(self, publisher: SyncEventstreamPublisher | None = None) -> None:
        super().__init__(publisher)
        self.messages: list[Message[Any]] = []

    def _add(self, message: Message[Any]) -> None:
        self.messages.append(message)


class SyncInMemoryUnitOfWork(
    SyncAbstractUnitOfWork[
        SyncInMemoryBookRepository, SyncInMemoryMessageStore, SinkholeMetricsStore
    ]
):
    def __init__(self, transport: SyncRecordingTransport | None = None) -> None:
        self.books = SyncInMemoryBookRepository()
        self.transport = transport or SyncRecordingTransport()
        self.messagestore = SyncInMemoryMessageStore(SyncEventstreamPublisher(self.transport))
        self.calls: list[str] = []

    def commit(self) -> None:
        self.calls.append("commit")

    def rollback(self) -> None:
        self.calls.append("rollback")


class SyncRecordingDependency(SyncDependency):
    def __init__(self) -> None:
        self.outcome = ""

    def on_after_commit(self) -> None:
        self.outcome = "committed"

    def on_after_rollback(self) -> None:
        self.outcome = "rolledback"


class RecordingMetricsStore(AbstractMetricsStore):
    def __init__(self) -> None:
        self.events: list[str] = []

    def inc_beginned_transaction_count(self) -> None:
        self.events.append("begin")

    def inc_transaction_failed(self) -> None:
        self.events.append("failed")

    def inc_transaction_closed_count(self, status: Any) -> None:
        self.events.append(f"closed:{status.value}")

    def inc_messages_processed_total(self, msg_metadata: Any) -> None:
        self.events.append(f"message:{msg_metadata.name}")

    def command_processing_timer(self, command: Any) -> Any:
        self.events.append(f"timer:{command.metadata.name}")
        return SinkholeMetricsStore().command_processing_timer(command)
