"""A metrics store that exports Prometheus metrics (extra ``messagebus[prometheus]``).

The metric names are those of the PyPI ``messagebus`` package, so dashboards keep working:

- ``messagebus_transactions_started_total`` (counter)
- ``messagebus_transactions_in_progress`` (gauge)
- ``messagebus_transactions_failed_total`` (counter): blocks that raised
- ``messagebus_transactions_closed_total{status}`` (counter): committed or rolledback
- ``messagebus_messages_processed_total{name,version}`` (counter)
- ``messagebus_command_processing_seconds{name,version}`` (histogram)
"""

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from messagebus.domain.model import GenericCommand, Metadata, TransactionStatus
from messagebus.ports.observability import AbstractMetricsStore

DEFAULT_COMMAND_PROCESSING_SECONDS_BUCKETS: tuple[float, ...] = tuple(
    0.01 * 2**exponent for exponent in range(10)
)
"""Histogram buckets from 10 ms to about 5 s, doubling."""


class MetricsStore(AbstractMetricsStore):
    """Counts transactions and messages, and times commands, in a Prometheus registry.

    A registry can hold each metric name once, so one store is made per registry and
    shared: building ``MetricsStore()`` twice for the same registry (say, once for an
    async and once for a sync unit of work) returns the same object.

    :param registry: where the metrics are registered; the global one by default.
    :param command_processing_seconds_buckets: the buckets of the command timer.
    """

    _by_registry: ClassVar[dict[int, "MetricsStore"]] = {}

    def __new__(
        cls,
        *,
        registry: CollectorRegistry = REGISTRY,
        command_processing_seconds_buckets: Sequence[float | str] = (
            DEFAULT_COMMAND_PROCESSING_SECONDS_BUCKETS
        ),
    ) -> "MetricsStore":
        """Return the store of ``registry``, making it on first use."""
        store = cls._by_registry.get(id(registry))
        if store is None or store.registry is not registry:
            store = super().__new__(cls)
            store._setup(registry, command_processing_seconds_buckets)
            cls._by_registry[id(registry)] = store
        return store

    def _setup(self, registry: CollectorRegistry, buckets: Sequence[float | str]) -> None:
        self.registry = registry
        self.transactions_started_total = Counter(
            "messagebus_transactions_started_total",
            "Unit-of-work transactions started.",
            registry=registry,
        )
        self.transactions_in_progress = Gauge(
            "messagebus_transactions_in_progress",
            "Unit-of-work transactions started and not closed yet.",
            registry=registry,
        )
        self.transactions_failed_total = Counter(
            "messagebus_transactions_failed_total",
            "Unit-of-work transactions whose block raised an exception.",
            registry=registry,
        )
        self.transactions_closed_total = Counter(
            "messagebus_transactions_closed_total",
            "Unit-of-work transactions closed, by final status.",
            labelnames=["status"],
            registry=registry,
        )
        self.messages_processed_total = Counter(
            "messagebus_messages_processed_total",
            "Messages processed by the bus, by name and schema version.",
            labelnames=["name", "version"],
            registry=registry,
        )
        self.command_processing_seconds = Histogram(
            "messagebus_command_processing_seconds",
            "Time spent handling a command and the events it caused.",
            labelnames=["name", "version"],
            registry=registry,
            buckets=buckets,
        )
        # The labelled children, by label values: `labels()` validates and locks on
        # every call, a dict lookup does not. Exact, since a child never changes.
        self._processed: dict[tuple[str, int], Any] = {}
        self._timers: dict[tuple[str, int], Any] = {}
        self._closed: dict[TransactionStatus, Any] = {}

    def __init__(self, **_: Any) -> None:
        """Everything is set up once per registry, in ``__new__``."""

    def inc_beginned_transaction_count(self) -> None:
        """Count a started transaction."""
        self.transactions_started_total.inc()
        self.transactions_in_progress.inc()

    def inc_transaction_failed(self) -> None:
        """Count a transaction whose block raised."""
        self.transactions_failed_total.inc()

    def inc_transaction_closed_count(self, status: TransactionStatus) -> None:
        """Count a closed transaction by its final status."""
        child = self._closed.get(status)
        if child is None:
            child = self._closed[status] = self.transactions_closed_total.labels(status=status.name)
        child.inc()
        self.transactions_in_progress.dec()

    def inc_messages_processed_total(self, msg_metadata: Metadata) -> None:
        """Count a processed message by name and schema version."""
        key = (msg_metadata.name, msg_metadata.schema_version)
        child = self._processed.get(key)
        if child is None:
            child = self._processed[key] = self.messages_processed_total.labels(*key)
        child.inc()

    def command_processing_timer(
        self, command: GenericCommand[Any]
    ) -> AbstractContextManager[None]:
        """Time the handling of ``command`` in the histogram."""
        metadata = command.metadata
        key = (metadata.name, metadata.schema_version)
        child = self._timers.get(key)
        if child is None:
            child = self._timers[key] = self.command_processing_seconds.labels(*key)
        timer: AbstractContextManager[None] = child.time()
        return timer
