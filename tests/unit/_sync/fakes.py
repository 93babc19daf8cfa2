# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""In-memory adapters for the unit tests: a repository, a message store, a unit of work."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
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
    SyncSinkholeMessageStoreRepository,
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


@dataclass(frozen=True)
class Configuration:
    """One way a user sets up a unit of work: the hot path must be right in each."""

    name: str
    records_messages: bool = True
    """A message store that keeps the messages, or the default sinkhole store."""
    publishes: bool = True
    """A publisher to a recording transport."""
    records_metrics: bool = False
    overrides_release: bool = False
    overrides_collect: bool = False

    def __str__(self) -> str:
        return self.name


CONFIGURATIONS = [
    Configuration("recording"),
    Configuration("sinkhole", records_messages=False, publishes=False),
    Configuration("sinkhole-publisher", records_messages=False),
    Configuration("metrics", records_metrics=True),
    Configuration("release", overrides_release=True),
    Configuration("collect", overrides_collect=True),
]
"""Every configuration of a unit of work the tests run the bus and the transactions in."""


class SyncInMemoryUnitOfWork(
    SyncAbstractUnitOfWork[SyncInMemoryBookRepository, Any, AbstractMetricsStore]
):
    def __init__(
        self,
        transport: SyncRecordingTransport | None = None,
        configuration: Configuration = CONFIGURATIONS[0],
    ) -> None:
        self.configuration = configuration
        self.books = SyncInMemoryBookRepository()
        self.transport = transport or SyncRecordingTransport()
        publisher = SyncEventstreamPublisher(self.transport) if configuration.publishes else None
        if configuration.records_messages:
            self.messagestore = SyncInMemoryMessageStore(publisher)
        else:
            self.messagestore = SyncSinkholeMessageStoreRepository(publisher)
        if configuration.records_metrics:
            self.metrics_store = RecordingMetricsStore()
        self.calls: list[str] = []

    def commit(self) -> None:
        self.calls.append("commit")

    def rollback(self) -> None:
        self.calls.append("rollback")

    def stored(self) -> list[Message[Any]]:
        """The messages the message store kept: none for the sinkhole store."""
        store = self.messagestore
        return list(store.messages) if isinstance(store, SyncInMemoryMessageStore) else []

    def expect_stored(self, messages: list[Message[Any]]) -> list[Message[Any]]:
        """What ``stored()`` holds when the bus stored ``messages``, in this configuration."""
        return messages if self.configuration.records_messages else []

    def published(self) -> list[str]:
        """The types of the envelopes the transport received."""
        return [envelope["type"] for envelope in self.transport.sent]

    def expect_published(self, types: list[str]) -> list[str]:
        """What ``published()`` holds when ``types`` were published, in this configuration."""
        return types if self.configuration.publishes else []


class SyncReleasingUnitOfWork(SyncInMemoryUnitOfWork):
    """Overrides ``release``, as the SQL unit of work does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.released = 0

    def release(self) -> None:
        self.released += 1


class SyncCollectingUnitOfWork(SyncInMemoryUnitOfWork):
    """Overrides ``collect_new_events``, as 0.16 users may have done."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.collected = 0

    def collect_new_events(self) -> Iterator[Message[Any]]:
        for event in super().collect_new_events():
            self.collected += 1
            yield event


def make_unit_of_work(configuration: Configuration) -> SyncInMemoryUnitOfWork:
    """Return a unit of work set up as ``configuration`` says."""
    if configuration.overrides_release:
        return SyncReleasingUnitOfWork(configuration=configuration)
    if configuration.overrides_collect:
        return SyncCollectingUnitOfWork(configuration=configuration)
    return SyncInMemoryUnitOfWork(configuration=configuration)


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
