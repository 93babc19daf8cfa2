# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""The unit of work and the transaction it hands out.

``with uow as transaction`` opens a transaction that the block must end with
``transaction.commit()`` or ``transaction.rollback()``. The rules, and
where they are stricter than the PyPI ``messagebus`` package:

- an exception in the block rolls back (unless committed) and propagates;
- leaving the block without committing or rolling back raises
  :class:`~messagebus.TransactionError`, and rolls back;
- a commit is final: an exception after it leaves it committed, a later
  ``rollback()`` raises, and ``detach()`` keeps it committed;
- a rollback discards the messages buffered for the event stream;
- after the block (or ``close()``) the status is ``closed``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from messagebus.domain.model import Message, TransactionError, TransactionStatus
from messagebus.ports.observability import (
    AbstractMetricsStore,
    SinkholeMetricsStore,
    TMetricsStore,
)
from messagebus.service._per_instance import PerInstance
from messagebus.service._sync.repository import (
    SyncAbstractMessageStoreRepository,
    SyncAbstractRepository,
    SyncSinkholeMessageStoreRepository,
)

if TYPE_CHECKING:
    from messagebus.service._sync.dependency import SyncDependency

__all__ = [
    "SyncAbstractMessageStoreRepository",
    "SyncAbstractUnitOfWork",
    "SyncUnitOfWorkTransaction",
    "TSyncMessageStore",
    "TSyncUow",
    "TRepositories",
]

TSyncMessageStore = TypeVar("TSyncMessageStore", bound=SyncAbstractMessageStoreRepository)
"""The type of the message store of a unit of work."""

TRepositories = TypeVar(  # noqa: PLC0105 - the name the PyPI package exports
    "TRepositories", bound=SyncAbstractRepository[Any], covariant=True
)
"""The type of the repositories of a unit of work."""

_running = TransactionStatus.running
_streaming = TransactionStatus.streaming
_committed = TransactionStatus.committed
_rolledback = TransactionStatus.rolledback
_closed = TransactionStatus.closed

_SHARED_METRICS = SinkholeMetricsStore()
_REPOSITORY_NAMES = "_messagebus_repository_names"
_BASE_PUBLISH = SyncAbstractMessageStoreRepository.publish_eventstream


class SyncAbstractUnitOfWork(abc.ABC, Generic[TRepositories, TSyncMessageStore, TMetricsStore]):
    """The base class of units of work.

    Implement :meth:`commit` and :meth:`rollback`, and set the repositories as
    attributes: every attribute that is a repository is part of the unit of work.
    Set ``messagestore`` to keep the handled messages (by default each unit of work
    gets its own :class:`SyncSinkholeMessageStoreRepository`) and
    ``metrics_store`` to count transactions and messages.
    """

    messagestore: TSyncMessageStore = PerInstance(  # type: ignore[assignment]
        SyncSinkholeMessageStoreRepository
    )
    """Where the bus stores every message it processed."""
    metrics_store: TMetricsStore = _SHARED_METRICS  # type: ignore[assignment]
    """Where transactions and messages are counted; records nothing by default."""

    def collect_new_events(self) -> Iterator[Message[Any]]:
        """Yield, and forget, the events raised by the models in the repositories' ``seen``."""
        yield from self._take_new_events()

    def _take_new_events(self) -> list[Message[Any]]:
        return take_new_events(self._repositories())

    def _repositories(self) -> list[SyncAbstractRepository[Any]]:
        """Return the repositories among the attributes of the unit of work.

        The bus asks once per command. The names of the repository attributes are
        cached with the size of ``__dict__`` they were found at: an attribute added
        since makes them found again; a repository replaced by another is read anew.
        """
        members = self.__dict__
        cache: tuple[tuple[str, ...], int] | None = members.get(_REPOSITORY_NAMES)
        if cache is None or cache[1] != len(members):
            members.pop(_REPOSITORY_NAMES, None)
            names = tuple(
                name
                for name, member in members.items()
                if isinstance(member, SyncAbstractRepository)
            )
            cache = (names, len(members) + 1)
            members[_REPOSITORY_NAMES] = cache
        return [members[name] for name in cache[0] if name in members]

    def __enter__(self) -> SyncUnitOfWorkTransaction[Self]:
        current: SyncUnitOfWorkTransaction[Any] | None = self.__dict__.get("_transaction")
        if current is not None and current.status is not _closed:
            raise TransactionError(
                f"{type(self).__name__} is already in a transaction "
                f"({current.status.value}): finish it before opening another one, "
                f"or give each concurrent task its own unit of work"
            )
        transaction = SyncUnitOfWorkTransaction(self)
        self._transaction = transaction
        metrics = self.metrics_store
        if type(metrics) is not SinkholeMetricsStore:
            metrics.inc_beginned_transaction_count()
        return transaction

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        transaction = self._transaction
        if exc is None and transaction.status is _committed and not transaction._detached:
            # The usual way out. When closing has nothing to count, release or publish,
            # it only changes the status.
            messagestore = self.messagestore
            if (
                type(self.metrics_store) is SinkholeMetricsStore
                and type(self).release is _BASE_RELEASE
                and not messagestore.stream_buffer
                and type(messagestore).publish_eventstream is _BASE_PUBLISH
            ):
                transaction.status = _closed
            else:
                transaction._close()
        else:
            transaction.__exit__(exc_type, exc, tb)

    @abc.abstractmethod
    def commit(self) -> None:
        """Make the writes of the transaction durable."""

    @abc.abstractmethod
    def rollback(self) -> None:
        """Discard the writes of the transaction."""

    def release(self) -> None:
        """Give back what the transaction held, such as a database connection.

        Override it in an adapter: it is called once, when the transaction closes,
        however it ended (commit, rollback, exception, cancellation, or ``close()``
        after ``detach()``), before the published messages are sent. It does nothing
        by default.

        .. versionadded:: 0.17
        """


_BASE_RELEASE = SyncAbstractUnitOfWork.release


def take_new_events(repositories: Iterable[SyncAbstractRepository[Any]]) -> list[Message[Any]]:
    """Take the events of the models in the ``seen`` of ``repositories``, emptying both."""
    events: list[Message[Any]] = []
    for repository in repositories:
        seen = repository.seen
        if seen:
            for model in seen:
                messages = model.messages
                if messages:
                    events.extend(messages)
                    messages.clear()
            seen.clear()
    return events


TSyncUow = TypeVar("TSyncUow", bound=SyncAbstractUnitOfWork[Any, Any, Any])
"""The type of a unit of work."""


class SyncUnitOfWorkTransaction(Generic[TSyncUow]):
    """A transaction of a unit of work, what ``with uow`` returns.

    The repositories of the unit of work are its attributes (``transaction.books``).
    End it with :meth:`commit` or :meth:`rollback`; for a streaming response,
    :meth:`detach` it from the block and :meth:`close` it when the stream ends.
    """

    uow: TSyncUow
    """The unit of work this transaction belongs to."""
    status: TransactionStatus
    """Where the transaction stands."""

    def __init__(self, uow: TSyncUow) -> None:
        self.uow = uow
        self.status = _running
        self._detached = False
        self._hooks: list[SyncDependency] = []

    def __getattr__(self, name: str) -> Any:
        # Only called for names the transaction lacks: the unit of work's repositories.
        return getattr(self.uow, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {type(self.uow).__name__} {self.status.value}>"

    @property
    def messagestore(self) -> SyncAbstractMessageStoreRepository:
        """The message store of the unit of work."""
        return self.uow.messagestore  # type: ignore[no-any-return]

    @property
    def metrics_store(self) -> AbstractMetricsStore:
        """The metrics store of the unit of work."""
        return self.uow.metrics_store  # type: ignore[no-any-return]

    def add_listener(self, listener: SyncDependency) -> SyncDependency:
        """Tell ``listener`` how the transaction ends; return it."""
        self._hooks.append(listener)
        return listener

    def commit(self) -> None:
        """Commit the transaction; raise :class:`TransactionError` if it is over."""
        if self.status is not _running and self.status is not _streaming:
            raise TransactionError(
                f"Cannot commit a transaction that is {self.status.value}: "
                f"commit() and rollback() end a transaction, once"
            )
        self.uow.commit()
        self.status = _committed
        for hook in self._hooks:
            hook.on_after_commit()

    def rollback(self) -> None:
        """Roll back the transaction and discard its messages for the event stream.

        Rolling back twice is harmless; rolling back after a commit raises
        :class:`TransactionError`: a commit is final.
        """
        if self.status is _rolledback:
            return
        if self.status is not _running and self.status is not _streaming:
            raise TransactionError(
                f"Cannot roll back a transaction that is {self.status.value}: a commit is final"
            )
        self._rollback()

    def _rollback(self) -> None:
        self.uow.messagestore.discard_eventstream()
        try:
            self.uow.rollback()
        finally:
            self.status = _rolledback
        for hook in self._hooks:
            hook.on_after_rollback()

    def detach(self) -> None:
        """Keep the transaction open after its ``with`` block, for streaming.

        Call :meth:`close` when the response is sent. A committed transaction stays
        committed (its messages are published on close); one still running is rolled
        back on close unless it is committed first.
        """
        if self.status is _closed:
            raise TransactionError("Cannot detach a closed transaction")
        self._detached = True
        if self.status is _running:
            self.status = _streaming

    def close(self) -> None:
        """Finish a detached transaction: roll back unless committed, then publish."""
        if self.status is _closed:
            raise TransactionError("The transaction is already closed")
        try:
            if self.status is _running or self.status is _streaming:
                self._rollback()
        finally:
            self._close()

    def _close(self) -> None:
        status = self.status
        self.status = _closed
        uow = self.uow
        metrics = uow.metrics_store
        if type(metrics) is not SinkholeMetricsStore:
            metrics.inc_transaction_closed_count(status)
        try:
            if type(uow).release is not _BASE_RELEASE:
                uow.release()
        finally:
            if status is _committed:
                messagestore = uow.messagestore
                # Nothing to send through the base implementation: skip the call.
                if messagestore.stream_buffer or (
                    type(messagestore).publish_eventstream is not _BASE_PUBLISH
                ):
                    messagestore.publish_eventstream()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.uow.metrics_store.inc_transaction_failed()
            try:
                if self.status is _running or self.status is _streaming:
                    self._rollback()
            finally:
                if self.status is not _closed:
                    self._close()
            return
        if self._detached:
            return
        if self.status is _running:
            try:
                self._rollback()
            finally:
                self._close()
            raise TransactionError(
                "The transaction was neither committed nor rolled back: call "
                "`transaction.commit()` or `transaction.rollback()` "
                "before the end of the block. It has been rolled back."
            )
        if self.status is not _closed:
            self._close()
