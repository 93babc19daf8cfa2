"""The metrics-store port: what the bus and the unit of work count and time."""

import abc
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

from messagebus.domain.model import GenericCommand, Metadata, TransactionStatus


class AbstractMetricsStore(abc.ABC):
    """Receives the counts and timings of transactions and messages.

    Implement it to feed a monitoring system; :class:`SinkholeMetricsStore` is the
    default and records nothing. :class:`messagebus.adapters.prometheus.MetricsStore`
    (extra ``messagebus[prometheus]``) implements it with Prometheus metrics.
    """

    @abc.abstractmethod
    def inc_beginned_transaction_count(self) -> None:
        """Count a transaction that started."""

    @abc.abstractmethod
    def inc_transaction_failed(self) -> None:
        """Count a transaction whose block raised an exception."""

    @abc.abstractmethod
    def inc_transaction_closed_count(self, status: TransactionStatus) -> None:
        """Count a transaction that closed, ``status`` being committed or rolled back."""

    @abc.abstractmethod
    def inc_messages_processed_total(self, msg_metadata: Metadata) -> None:
        """Count a message the bus processed, by name and schema version."""

    @abc.abstractmethod
    def command_processing_timer(
        self, command: GenericCommand[Any]
    ) -> AbstractContextManager[None]:
        """Return a context manager that times the handling of ``command``."""


_NO_TIMER: nullcontext[None] = nullcontext()


class SinkholeMetricsStore(AbstractMetricsStore):
    """A metrics store that records nothing, the default of every unit of work."""

    def inc_beginned_transaction_count(self) -> None:
        """Record nothing."""

    def inc_transaction_failed(self) -> None:
        """Record nothing."""

    def inc_transaction_closed_count(self, status: TransactionStatus) -> None:
        """Record nothing."""

    def inc_messages_processed_total(self, msg_metadata: Metadata) -> None:
        """Record nothing."""

    def command_processing_timer(
        self, command: GenericCommand[Any]
    ) -> AbstractContextManager[None]:
        """Return a context manager that does nothing."""
        return _NO_TIMER


TMetricsStore = TypeVar("TMetricsStore", bound=AbstractMetricsStore)
"""The type of the metrics store of a unit of work."""
