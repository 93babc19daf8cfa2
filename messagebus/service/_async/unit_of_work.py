"""The unit of work and the transaction it hands out.

``async with uow as transaction`` opens a transaction that the block must end with
``await transaction.commit()`` or ``await transaction.rollback()``. The rules, and
where they are stricter than the PyPI ``messagebus`` package:

- an exception in the block rolls back (unless committed) and propagates;
- leaving the block without committing or rolling back raises
  :class:`~messagebus.TransactionError`, and rolls back;
- a commit is final: an exception after it leaves it committed, a later
  ``rollback()`` raises, and ``detach()`` keeps it committed;
- a rollback, however it happens, discards the messages buffered for the event
  stream and forgets the models in every repository's ``seen`` with the events they
  raised: nothing of a rolled-back transaction reaches the next one;
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
from messagebus.service._async.repository import (
    AsyncAbstractMessageStoreRepository,
    AsyncAbstractRepository,
    AsyncSinkholeMessageStoreRepository,
)
from messagebus.service._per_instance import PerInstance

if TYPE_CHECKING:
    from messagebus.service._async.dependency import AsyncDependency

__all__ = [
    "AsyncAbstractMessageStoreRepository",
    "AsyncAbstractUnitOfWork",
    "AsyncUnitOfWorkTransaction",
    "TAsyncMessageStore",
    "TAsyncUow",
    "TRepositories",
]

TAsyncMessageStore = TypeVar("TAsyncMessageStore", bound=AsyncAbstractMessageStoreRepository)
"""The type of the message store of a unit of work."""

TRepositories = TypeVar(  # noqa: PLC0105 - the name the PyPI package exports
    "TRepositories", bound=AsyncAbstractRepository[Any], covariant=True
)
"""The type of the repositories of a unit of work."""

_running = TransactionStatus.running
_streaming = TransactionStatus.streaming
_committed = TransactionStatus.committed
_rolledback = TransactionStatus.rolledback
_closed = TransactionStatus.closed

_SHARED_METRICS = SinkholeMetricsStore()
# The repositories found among the attributes of a unit of work, kept in its __dict__
# until an attribute that is, or was, a repository is set or deleted.
_REPOSITORIES = "_messagebus_repositories"


class AsyncAbstractUnitOfWork(abc.ABC, Generic[TRepositories, TAsyncMessageStore, TMetricsStore]):
    """The base class of units of work.

    Implement :meth:`commit` and :meth:`rollback`, and set the repositories as
    attributes: every attribute that is a repository is part of the unit of work,
    whenever it is set. Set ``messagestore`` to keep the handled messages (by default
    each unit of work gets its own :class:`AsyncSinkholeMessageStoreRepository`) and
    ``metrics_store`` to count transactions and messages.

    In a handler, ``transaction.uow`` is the unit of work with its declared type, so
    ``transaction.uow.books`` is checked by mypy; ``transaction.books`` works too, as
    in 0.16, but is typed ``Any``.
    """

    messagestore: TAsyncMessageStore = PerInstance(  # type: ignore[assignment]
        AsyncSinkholeMessageStoreRepository
    )
    """Where the bus stores every message it processed."""
    metrics_store: TMetricsStore = _SHARED_METRICS  # type: ignore[assignment]
    """Where transactions and messages are counted; records nothing by default."""
    _transaction: AsyncUnitOfWorkTransaction[Any]

    def __setattr__(self, name: str, value: Any) -> None:
        members = self.__dict__
        if _REPOSITORIES in members and (
            isinstance(value, AsyncAbstractRepository)
            or isinstance(members.get(name), AsyncAbstractRepository)
        ):
            del members[_REPOSITORIES]  # looked for again when next needed
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self.__dict__.pop(_REPOSITORIES, None)
        object.__delattr__(self, name)

    def collect_new_events(self) -> Iterator[Message[Any]]:
        """Yield, and forget, the events raised by the models in the repositories' ``seen``."""
        yield from take_new_events(self._repositories())

    def _repositories(self) -> tuple[AsyncAbstractRepository[Any], ...]:
        """Return the repositories among the attributes of the unit of work.

        They are looked for once and kept until an attribute that is, or was, a
        repository is set or deleted (see ``__setattr__``), so the answer is exact.
        """
        members = self.__dict__
        found: tuple[AsyncAbstractRepository[Any], ...] | None = members.get(_REPOSITORIES)
        if found is None:
            found = tuple(
                member for member in members.values() if isinstance(member, AsyncAbstractRepository)
            )
            members[_REPOSITORIES] = found
        return found

    async def __aenter__(self) -> AsyncUnitOfWorkTransaction[Self]:
        members = self.__dict__
        current: AsyncUnitOfWorkTransaction[Any] | None = members.get("_transaction")
        if current is not None and current.status is not _closed:
            raise TransactionError(
                f"{type(self).__name__} is already in a transaction "
                f"({current.status.value}): finish it before opening another one, "
                f"or give each concurrent task its own unit of work"
            )
        transaction = AsyncUnitOfWorkTransaction(self)
        members["_transaction"] = transaction  # not a repository: no need for __setattr__
        self.metrics_store.inc_beginned_transaction_count()
        return transaction

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._transaction._end(exc)

    @abc.abstractmethod
    async def commit(self) -> None:
        """Make the writes of the transaction durable."""

    @abc.abstractmethod
    async def rollback(self) -> None:
        """Discard the writes of the transaction."""

    async def release(self) -> None:
        """Give back what the transaction held, such as a database connection.

        Override it in an adapter: it is awaited once, when the transaction closes,
        however it ended (commit, rollback, exception, cancellation, or ``close()``
        after ``detach()``), before the published messages are sent. It does nothing
        by default.

        .. versionadded:: 0.17
        """


_BASE_RELEASE = AsyncAbstractUnitOfWork.release
_BASE_COLLECT = AsyncAbstractUnitOfWork.collect_new_events


def take_new_events(repositories: Iterable[AsyncAbstractRepository[Any]]) -> list[Message[Any]]:
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


TAsyncUow = TypeVar("TAsyncUow", bound=AsyncAbstractUnitOfWork[Any, Any, Any])
"""The type of a unit of work."""


class AsyncUnitOfWorkTransaction(Generic[TAsyncUow]):
    """A transaction of a unit of work, what ``async with uow`` returns.

    The unit of work is :attr:`uow`, with its own type: ``transaction.uow.books`` is
    the ``books`` repository, checked by mypy. ``transaction.books`` reaches it too (the
    0.16 way), typed ``Any``. End the transaction with :meth:`commit` or
    :meth:`rollback`; for a streaming response, :meth:`detach` it from the block and
    :meth:`close` it when the stream ends.
    """

    uow: TAsyncUow
    """The unit of work this transaction belongs to, with its repositories."""
    status: TransactionStatus
    """Where the transaction stands."""

    def __init__(self, uow: TAsyncUow) -> None:
        self.uow = uow
        self.status = _running
        self._detached = False
        self._hooks: list[AsyncDependency] = []
        # What depends on how the unit of work is configured is decided here, once per
        # transaction. Each saves a call the base class would make for nothing:
        # - collecting the events of the repositories' `seen` directly, not through a
        #   generator, after each handler (`collect_new_events` not overridden);
        # - awaiting a `release` that does nothing, when the transaction closes.
        cls = type(uow)
        self._collects = cls.collect_new_events is not _BASE_COLLECT
        self._releases = cls.release is not _BASE_RELEASE

    def __getattr__(self, name: str) -> Any:
        # Only called for names the transaction lacks: the unit of work's repositories.
        return getattr(self.uow, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {type(self.uow).__name__} {self.status.value}>"

    @property
    def messagestore(self) -> AsyncAbstractMessageStoreRepository:
        """The message store of the unit of work."""
        return self.uow.messagestore  # type: ignore[no-any-return]

    @property
    def metrics_store(self) -> AbstractMetricsStore:
        """The metrics store of the unit of work."""
        return self.uow.metrics_store  # type: ignore[no-any-return]

    def add_listener(self, listener: AsyncDependency) -> AsyncDependency:
        """Tell ``listener`` how the transaction ends; return it."""
        self._hooks.append(listener)
        return listener

    def new_events(self) -> list[Message[Any]]:
        """Take, and forget, the events raised by the models the repositories saw.

        The bus calls it after each handler; it calls the unit of work's
        ``collect_new_events`` when a subclass overrides it.
        """
        if self._collects:
            return list(self.uow.collect_new_events())
        repositories = self.uow._repositories()
        for repository in repositories:
            if repository.seen:  # most handlers raise nothing: look before collecting
                return take_new_events(repositories)
        return []

    async def commit(self) -> None:
        """Commit the transaction; raise :class:`TransactionError` if it is over."""
        if self.status is not _running and self.status is not _streaming:
            raise TransactionError(
                f"Cannot commit a transaction that is {self.status.value}: "
                f"commit() and rollback() end a transaction, once"
            )
        await self.uow.commit()
        self.status = _committed
        for hook in self._hooks:
            await hook.on_after_commit()

    async def rollback(self) -> None:
        """Roll back the transaction and discard its messages for the event stream.

        The models in the repositories' ``seen`` are forgotten with the events they
        raised. Rolling back twice is harmless; rolling back after a commit raises
        :class:`TransactionError`: a commit is final.
        """
        if self.status is _rolledback:
            return
        if self.status is not _running and self.status is not _streaming:
            raise TransactionError(
                f"Cannot roll back a transaction that is {self.status.value}: a commit is final"
            )
        await self._rollback()

    async def _rollback(self) -> None:
        """Roll back; every way a transaction ends without a commit goes through here."""
        uow = self.uow
        uow.messagestore.discard_eventstream()
        discard_seen(uow._repositories())
        try:
            await uow.rollback()
        finally:
            self.status = _rolledback
        for hook in self._hooks:
            await hook.on_after_rollback()

    async def detach(self) -> None:
        """Keep the transaction open after its ``async with`` block, for streaming.

        Call :meth:`close` when the response is sent. A committed transaction stays
        committed (its messages are published on close); one still running is rolled
        back on close unless it is committed first.
        """
        if self.status is _closed:
            raise TransactionError("Cannot detach a closed transaction")
        self._detached = True
        if self.status is _running:
            self.status = _streaming

    async def close(self) -> None:
        """Finish a detached transaction: roll back unless committed, then publish."""
        if self.status is _closed:
            raise TransactionError("The transaction is already closed")
        try:
            if self.status is _running or self.status is _streaming:
                await self._rollback()
        finally:
            await self._close()

    async def _end(self, exc: BaseException | None) -> None:
        """End the ``async with`` block, ``exc`` being what it raised, if anything."""
        if exc is None:
            if self.status is _committed and not self._detached:
                await self._close()  # the usual way out
                return
            if self._detached:
                return
            if self.status is _running:
                try:
                    await self._rollback()
                finally:
                    await self._close()
                raise TransactionError(
                    "The transaction was neither committed nor rolled back: call "
                    "`await transaction.commit()` or `await transaction.rollback()` "
                    "before the end of the block. It has been rolled back."
                )
            if self.status is not _closed:
                await self._close()
            return
        self.uow.metrics_store.inc_transaction_failed()
        try:
            if self.status is _running or self.status is _streaming:
                await self._rollback()
        finally:
            if self.status is not _closed:
                await self._close()

    async def _close(self) -> None:
        """Close the transaction; the only place that does, however it ended."""
        status = self.status
        self.status = _closed
        uow = self.uow
        uow.metrics_store.inc_transaction_closed_count(status)
        try:
            if self._releases:
                await uow.release()
        finally:
            if status is _committed:
                await uow.messagestore.publish_eventstream()


def discard_seen(repositories: Iterable[AsyncAbstractRepository[Any]]) -> None:
    """Forget the models in the ``seen`` of ``repositories`` and the events they raised."""
    for repository in repositories:
        seen = repository.seen
        for model in seen:
            model.messages.clear()
        seen.clear()
