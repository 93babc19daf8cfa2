"""In-memory adapters for the unit tests: a repository, a message store, a unit of work."""

from collections.abc import Mapping
from typing import Any

from messagebus import (
    AbstractMetricsStore,
    AsyncAbstractEventstreamTransport,
    AsyncAbstractMessageStoreRepository,
    AsyncAbstractRepository,
    AsyncAbstractUnitOfWork,
    AsyncDependency,
    AsyncEventstreamPublisher,
    Message,
    SinkholeMetricsStore,
)
from tests.unit.model import Book


class AsyncInMemoryBookRepository(AsyncAbstractRepository[Book]):
    def __init__(self) -> None:
        super().__init__()
        self.books: dict[str, Book] = {}

    async def add(self, book: Book) -> None:
        self.books[book.id] = book
        self.seen.append(book)

    async def get(self, book_id: str) -> Book:
        book = self.books[book_id]
        self.seen.append(book)
        return book


class AsyncRecordingTransport(AsyncAbstractEventstreamTransport):
    def __init__(self) -> None:
        self.sent: list[Mapping[str, Any]] = []

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        self.sent.append(message)


class AsyncInMemoryMessageStore(AsyncAbstractMessageStoreRepository):
    def __init__(self, publisher: AsyncEventstreamPublisher | None = None) -> None:
        super().__init__(publisher)
        self.messages: list[Message[Any]] = []

    async def _add(self, message: Message[Any]) -> None:
        self.messages.append(message)


class AsyncInMemoryUnitOfWork(
    AsyncAbstractUnitOfWork[
        AsyncInMemoryBookRepository, AsyncInMemoryMessageStore, SinkholeMetricsStore
    ]
):
    def __init__(self, transport: AsyncRecordingTransport | None = None) -> None:
        self.books = AsyncInMemoryBookRepository()
        self.transport = transport or AsyncRecordingTransport()
        self.messagestore = AsyncInMemoryMessageStore(AsyncEventstreamPublisher(self.transport))
        self.calls: list[str] = []

    async def commit(self) -> None:
        self.calls.append("commit")

    async def rollback(self) -> None:
        self.calls.append("rollback")


class AsyncRecordingDependency(AsyncDependency):
    def __init__(self) -> None:
        self.outcome = ""

    async def on_after_commit(self) -> None:
        self.outcome = "committed"

    async def on_after_rollback(self) -> None:
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
