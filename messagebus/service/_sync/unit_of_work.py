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
- a rollback, however it happens, discards the messages buffered for the event
  stream and forgets the models in every repository's ``seen`` with the events they
  raised: nothing of a rolled-back transaction reaches the next one;
- after the block (or ``close()``) the status is ``closed``.
"""

from __future__ import annotations

import abc
import contextlib
import gc
import weakref
from collections.abc import Callable, Iterable, Iterator
from types import SimpleNamespace, TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast

from messagebus.domain.model import Message, TransactionError, TransactionStatus
from messagebus.ports.observability import (
    AbstractMetricsStore,
    SinkholeMetricsStore,
    TMetricsStore,
)
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
# The repositories of a unit of work (see _Repositories), kept on it until an attribute
# is set or deleted.
_REPOSITORIES = "_messagebus_repositories"
# The attributes of a unit of work, by name (see SyncAbstractUnitOfWork._members).
_MEMBERS = "_messagebus_members"
# Deleted, for SyncUnitOfWorkTransaction._member_set().
_DELETED = object()


# Stand-ins for the first repository in _Repositories, where the bus reads none. Of a
# unit of work without repositories: it never sees a model.
_NO_REPOSITORY = SimpleNamespace(seen=())
# When the bus must look closer after each handler: its `seen` is never empty. The
# repositories are outdated (an attribute of the unit of work was set, see
# SyncUnitOfWorkTransaction._member_set), or the unit of work collects its events.
_LOOK_CLOSER = SimpleNamespace(seen=("look closer",))


class _Repositories:
    """The repositories among the attributes of a unit of work, as the bus reads them.

    Also the attributes of the unit of work that its transactions copy (see
    :func:`_transaction_class`).
    """

    __slots__ = ("all", "first", "for_transaction", "others")

    def __init__(self, members: dict[str, Any], uow_class: type) -> None:
        self.all: tuple[SyncAbstractRepository[Any], ...] = tuple(
            member for member in members.values() if isinstance(member, SyncAbstractRepository)
        )
        # `all` split for the bus, which reads the first one's `seen` after each handler
        # without a loop (see SyncMessageBus.handle).
        self.first: SyncAbstractRepository[Any] | SimpleNamespace = (
            self.all[0] if self.all else _NO_REPOSITORY
        )
        self.others = self.all[1:]
        skipped = _transaction_class(uow_class)._not_copied
        # Pairs rather than a dict: no items() view and no tuple made per name (-670).
        self.for_transaction = tuple(
            (name, value) for name, value in members.items() if name not in skipped
        )


class SyncAbstractUnitOfWork(abc.ABC, Generic[TRepositories, TSyncMessageStore, TMetricsStore]):
    """The base class of units of work.

    Implement :meth:`commit` and :meth:`rollback`, and set the repositories as
    attributes: every attribute that is a repository is part of the unit of work,
    whenever it is set. Set ``messagestore`` to keep the handled messages (by default
    each unit of work gets its own :class:`SyncSinkholeMessageStoreRepository`) and
    ``metrics_store`` to count transactions and messages.

    In a handler, ``transaction.uow`` is the unit of work with its declared type, so
    ``transaction.uow.books`` is checked by mypy; ``transaction.books`` is the same
    repository (the 0.16 way), typed ``Any``.
    """

    messagestore: TSyncMessageStore
    """Where the bus stores every message it processed; by default, each unit of work
    gets its own :class:`SyncSinkholeMessageStoreRepository`."""
    metrics_store: TMetricsStore
    """Where transactions and messages are counted; by default, a
    :class:`~messagebus.SinkholeMetricsStore` that records nothing."""
    # Set by __new__ on every instance (no class-level values, see there).
    _transaction: SyncUnitOfWorkTransaction[Any] | None
    _messagebus_repositories: _Repositories | None
    _messagebus_members: dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        # Every attribute the bus reads is set here, on the instance, even for a
        # subclass whose __init__ skips super().__init__(): CPython 3.11 loads an
        # instance attribute fast only when the class has no attribute of that name (a
        # default, a descriptor) and the instance's __dict__ was never read, which is
        # also why nothing here reads it (-1.6k instructions per command).
        uow = super().__new__(cls)
        set_attribute = object.__setattr__
        set_attribute(uow, "_transaction", None)
        set_attribute(uow, _REPOSITORIES, None)
        # The attributes set since, by name, for _repositories(): the same as __dict__,
        # without reading it (see _members()).
        members: dict[str, Any] = {}
        set_attribute(uow, _MEMBERS, members)
        # A subclass may give either one a class-level value: it is kept.
        if not hasattr(cls, "metrics_store"):
            members["metrics_store"] = _SHARED_METRICS
            set_attribute(uow, "metrics_store", _SHARED_METRICS)
        if not hasattr(cls, "messagestore"):
            members["messagestore"] = store = SyncSinkholeMessageStoreRepository()
            set_attribute(uow, "messagestore", store)
        return uow

    def __setattr__(self, name: str, value: Any) -> None:
        # A transaction copies the attributes of its unit of work: they are looked for
        # again when next needed, and the open transaction follows the change.
        object.__setattr__(self, name, value)
        self._messagebus_members[name] = value
        object.__setattr__(self, _REPOSITORIES, None)
        transaction = self._transaction
        if transaction is not None and transaction.status is not _closed:
            transaction._member_set(name, value)

    def __delattr__(self, name: str) -> None:
        object.__delattr__(self, name)
        self._messagebus_members.pop(name, None)
        object.__setattr__(self, _REPOSITORIES, None)
        transaction = self._transaction
        if transaction is not None and transaction.status is not _closed:
            transaction._member_set(name, _DELETED)

    def _set_quietly(self, name: str, value: Any) -> None:
        """Set an attribute that is no repository, for an adapter: no transaction follows it.

        Cheaper than ``__setattr__`` (the repositories are not looked for again), for
        what an adapter changes on every transaction, such as its connection.
        """
        object.__setattr__(self, name, value)
        self._messagebus_members[name] = value

    def collect_new_events(self) -> Iterator[Message[Any]]:
        """Yield, and forget, the events raised by the models in the repositories' ``seen``."""
        yield from take_new_events(self._repositories().all)

    def _repositories(self) -> _Repositories:
        """Return the repositories among the attributes of the unit of work.

        They are looked for once and kept until an attribute is set or deleted (see
        ``__setattr__``), so the answer is exact.
        """
        found = self._messagebus_repositories
        if found is None:
            found = _Repositories(self._members(), type(self))
            object.__setattr__(self, _REPOSITORIES, found)
        return found

    def _members(self) -> dict[str, Any]:
        """Return the attributes of the unit of work, by name, without the bus's own.

        They are those ``__setattr__`` recorded, unless an attribute was set without it
        (``object.__setattr__``, a write into ``__dict__``): then ``__dict__`` is read.
        The instance's referents tell, without reading ``__dict__``: its attributes'
        values and its class, or its ``__dict__`` and its class once that was read.
        """
        members = self._messagebus_members
        expected = [*members.values(), self._transaction, self._messagebus_repositories, members]
        # The same objects as many times each: sorted ids compare as multisets do, at a
        # fifth of the cost of two Counters (this runs for each new unit of work).
        if sorted(map(id, gc.get_referents(self))) != sorted(map(id, [*expected, type(self)])):
            members = vars(self)
        return {name: value for name, value in members.items() if name not in _INTERNAL_NAMES}

    def __enter__(self) -> SyncUnitOfWorkTransaction[Self]:
        current = self._transaction
        if current is None:
            transaction_class = _transaction_class(type(self))
        else:
            if current.status is not _closed:
                raise TransactionError(
                    f"{type(self).__name__} is already in a transaction "
                    f"({current.status.value}): finish it before opening another one, "
                    f"or give each concurrent task its own unit of work"
                )
            # The class of the previous transaction, if made for this class: a look-up
            # in _TRANSACTION_CLASSES less (a weak reference made each time, -200 ns).
            transaction_class = type(current)
            if transaction_class._made_for() is not type(self):
                transaction_class = _transaction_class(type(self))
        transaction = transaction_class(self)
        object.__setattr__(self, "_transaction", transaction)
        self.metrics_store.inc_beginned_transaction_count()
        return transaction

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Set by __aenter__ (no cast(): a call less on every command).
        transaction: SyncUnitOfWorkTransaction[Any] = self._transaction  # type: ignore[assignment]
        if exc is None and transaction.status is _committed and not transaction._detached:
            # The usual way out: _close() without a coroutine of its own, since most
            # transactions have nothing to release or publish.
            publish = transaction._closing()
            if publish is not None:
                transaction._release_then_publish(publish)
        else:
            transaction._end(exc)

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
_BASE_COLLECT = SyncAbstractUnitOfWork.collect_new_events
_BASE_PUBLISH = SyncAbstractMessageStoreRepository.publish_eventstream
_NULL_TIMER = SinkholeMetricsStore.command_processing_timer
_NULL_COUNT = SinkholeMetricsStore.inc_messages_processed_total


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


def discard_seen(repositories: Iterable[SyncAbstractRepository[Any]]) -> None:
    """Forget the models in the ``seen`` of ``repositories`` and the events they raised."""
    for repository in repositories:
        seen = repository.seen
        for model in seen:
            model.messages.clear()
        seen.clear()


TSyncUow = TypeVar("TSyncUow", bound=SyncAbstractUnitOfWork[Any, Any, Any])
"""The type of a unit of work."""


class SyncUnitOfWorkTransaction(Generic[TSyncUow]):
    """A transaction of a unit of work, what ``with uow`` returns.

    The unit of work is :attr:`uow`, with its own type: ``transaction.uow.books`` is
    the ``books`` repository, checked by mypy. ``transaction.books`` is the same
    repository (the 0.16 way), typed ``Any``; the other attributes of the unit of work
    are reached that way too. End the transaction with :meth:`commit` or
    :meth:`rollback`; for a streaming response, :meth:`detach` it from the block and
    :meth:`close` it when the stream ends.
    """

    uow: TSyncUow
    """The unit of work this transaction belongs to, with its repositories."""
    status: TransactionStatus
    """Where the transaction stands."""

    def __init__(self, uow: TSyncUow) -> None:
        self.uow = uow
        self.status = _running
        self._detached = False
        # A tuple, replaced on add_listener(): most transactions have no listener, and
        # the empty tuple is a constant where an empty list is an allocation.
        self._hooks: tuple[SyncDependency, ...] = ()
        # How the unit of work is set up is read here, once per transaction, and
        # nowhere else. Each answer spares a call that would do nothing:
        # - an override of collect_new_events() is called after each handler, else the
        #   bus reads the repositories' `seen` itself (no generator per handler);
        cls = type(uow)
        self._collects = cls.collect_new_events is not _BASE_COLLECT
        # - release() is called on close only when overridden;
        self._releases = cls.release is not _BASE_RELEASE
        # - the command is timed, and its messages counted, only by a metrics store
        #   that overrides the timer, and the counter;
        metrics = type(uow.metrics_store)
        self._times = metrics.command_processing_timer is not _NULL_TIMER
        self._counts = metrics.inc_messages_processed_total is not _NULL_COUNT
        # - an empty buffer is published only by a store that overrides publishing.
        self._publishes = type(uow.messagestore).publish_eventstream is not _BASE_PUBLISH
        # The repositories are attributes of the transaction too, kept in step by the
        # unit of work's __setattr__: `transaction.books` costs no __getattr__ call.
        # They are set one by one: reading self.__dict__ would make CPython 3.11 turn
        # the instance's inline attributes into a dict, which costs more than this loop
        # and slows every later attribute access.
        found = uow._messagebus_repositories or uow._repositories()
        for name, repository in found.for_transaction:
            setattr(self, name, repository)
        # The repositories the bus looks at after each handler; outdated once an
        # attribute of the unit of work is set (a handler may set a repository): then
        # the bus asks the unit of work again. A read on the transaction costs less
        # than a look in the unit of work's __dict__.
        self._watched = found

    if TYPE_CHECKING:  # the attributes of the unit of work, typed Any (see _transaction_class)

        def __getattr__(self, name: str) -> Any: ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {type(self.uow).__name__} {self.status.value}>"

    _not_copied: frozenset[str] = frozenset()
    """The names of the unit of work that a transaction does not copy (see _transaction_class)."""
    _made_for: Callable[[], type | None] = staticmethod(lambda: None)
    """The unit of work class this transaction class was made for (a weak reference)."""

    def _member_set(self, name: str, value: object) -> None:
        """Follow an attribute of the unit of work set, replaced or deleted (``_DELETED``)."""
        # The unit of work forgot these repositories (see __setattr__): the bus asks again.
        self._watched.first = _LOOK_CLOSER
        if name in self._not_copied:
            return
        if value is _DELETED:
            # Not vars(self): reading it would turn the inline attributes into a dict.
            with contextlib.suppress(AttributeError):
                delattr(self, name)
        else:
            setattr(self, name, value)

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
        self._hooks = (*self._hooks, listener)
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
        self._rollback()

    def _rollback(self) -> None:
        """Roll back; every way a transaction ends without a commit goes through here."""
        uow = self.uow
        uow.messagestore.discard_eventstream()
        discard_seen(uow._repositories().all)
        try:
            uow.rollback()
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

    def _end(self, exc: BaseException | None) -> None:
        """End the ``with`` block, ``exc`` being what it raised, if anything."""
        if exc is not None:
            self.uow.metrics_store.inc_transaction_failed()
        elif self._detached:
            return  # close() ends it
        elif self.status is _running:
            try:
                self._rollback()
            finally:
                self._close()
            raise TransactionError(
                "The transaction was neither committed nor rolled back: call "
                "`transaction.commit()` or `transaction.rollback()` "
                "before the end of the block. It has been rolled back."
            )
        try:
            if exc is not None and (self.status is _running or self.status is _streaming):
                self._rollback()
        finally:
            if self.status is not _closed:
                self._close()

    def _close(self) -> None:
        """Close the transaction: the one place that does, however it ended."""
        publish = self._closing()
        if publish is not None:
            self._release_then_publish(publish)

    def _closing(self) -> bool | None:
        """Mark the transaction closed and count it: the part of :meth:`_close` that awaits nothing.

        Return ``None`` when nothing is left to do, else whether to publish, for
        :meth:`_release_then_publish`.
        """
        status = self.status
        self.status = _closed
        uow = self.uow
        uow.metrics_store.inc_transaction_closed_count(status)
        publish = status is _committed and (self._publishes or bool(uow.messagestore.stream_buffer))
        if self._releases or publish:
            return publish
        return None

    def _release_then_publish(self, publish: bool) -> None:
        try:
            if self._releases:
                self.uow.release()
        finally:
            if publish:
                self.uow.messagestore.publish_eventstream()


# The names of the unit of work that are the bus's bookkeeping, not for a transaction.
_INTERNAL_NAMES = frozenset({"_transaction", _REPOSITORIES, _MEMBERS})
# The names of the transaction itself: an attribute of the unit of work of the same name
# is not copied (`transaction.status` is the transaction's status, whatever the unit of
# work holds); it stays reachable as `transaction.uow.status`.
_OWN_NAMES = frozenset(dir(SyncUnitOfWorkTransaction)) | {
    "uow",
    "status",
    "_detached",
    "_hooks",
    "_collects",
    "_releases",
    "_times",
    "_counts",
    "_publishes",
    "_watched",
    "_made_for",
}


class _FromUnitOfWork:
    """A name of the unit of work's class, read on the transaction: the unit of work's."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, transaction: Any, owner: type | None = None) -> Any:
        if transaction is None:
            return self
        return getattr(transaction.uow, self.name)


def _read_from_unit_of_work(transaction: Any, name: str) -> Any:
    return getattr(transaction.uow, name)


# Weak keys: a unit of work class made at run time (in a test, say) may go away; its
# transaction class holds names only, nothing of it.
_TRANSACTION_CLASSES: weakref.WeakKeyDictionary[type, type[SyncUnitOfWorkTransaction[Any]]] = (
    weakref.WeakKeyDictionary()
)


def _transaction_class(uow_class: type) -> type[SyncUnitOfWorkTransaction[Any]]:
    """Return the class of the transactions of ``uow_class``, made on first use.

    ``transaction.name`` is the unit of work's attribute ``name`` (the 0.16 way), without
    ``__getattr__``: on CPython 3.11 a class that defines one gets none of its attribute
    reads specialized, and the bus reads the transaction's own attributes on every
    command. Instead:

    - the names of the unit of work's class (methods, properties, class attributes)
      are read through :class:`_FromUnitOfWork` descriptors of this subclass;
    - the other attributes of the unit of work (repositories and all) are copied onto
      the transaction when it opens, and kept in step by the unit of work's
      ``__setattr__`` and ``__delattr__`` while it is open.

    A unit of work class with a ``__getattr__`` or ``__getattribute__`` of its own
    keeps it reachable: its transactions forward any other name with ``__getattr__``.
    The transaction's own names always win (``transaction.status``, ``commit``...).
    """
    found = _TRANSACTION_CLASSES.get(uow_class)
    if found is not None:
        return found
    base = SyncUnitOfWorkTransaction
    class_names = {name for name in dir(uow_class) if not name.startswith("__")}
    namespace: dict[str, Any] = {
        name: _FromUnitOfWork(name) for name in class_names if name not in _OWN_NAMES
    }
    namespace["_not_copied"] = frozenset(class_names | _OWN_NAMES | _INTERNAL_NAMES)
    # Weak, as the keys of _TRANSACTION_CLASSES: the unit of work class may go away.
    namespace["_made_for"] = weakref.ref(uow_class)
    if (
        getattr(uow_class, "__getattr__", None) is not None
        or uow_class.__getattribute__ is not object.__getattribute__  # type: ignore[comparison-overlap]
    ):
        namespace["__getattr__"] = _read_from_unit_of_work
    namespace["__module__"] = base.__module__
    namespace["__qualname__"] = base.__qualname__
    found = cast(type[SyncUnitOfWorkTransaction[Any]], type(base.__name__, (base,), namespace))
    _TRANSACTION_CLASSES[uow_class] = found
    return found
