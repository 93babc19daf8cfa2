"""In-memory adapters for tests: a repository base, a message store, a transport, a unit of work.

They behave like a database where a test can see it: what a transaction writes is kept
only if it commits, and a rollback forgets it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, Protocol, runtime_checkable

from messagebus.domain.model import Message
from messagebus.ports.observability import AbstractMetricsStore
from messagebus.service._async.eventstream import (
    AsyncAbstractEventstreamTransport,
    AsyncEventstreamPublisher,
)
from messagebus.service._async.repository import (
    AsyncAbstractMessageStoreRepository,
    AsyncAbstractRepository,
    TModel,
)
from messagebus.service._async.unit_of_work import AsyncAbstractUnitOfWork
from messagebus.service.errors import ConfigurationError
from messagebus.testing._common import SentEnvelope

__all__ = [
    "AsyncInMemoryMessageStore",
    "AsyncInMemoryRepository",
    "AsyncInMemoryTransport",
    "AsyncInMemoryUnitOfWork",
]


class AsyncInMemoryRepository(AsyncAbstractRepository[TModel], Generic[TModel]):
    """A repository of models in a dict by id, the base of a test's repositories.

    The id is the model's attribute named by :attr:`id_field` (``"id"`` by default).
    :meth:`add` and :meth:`get` put the model in ``seen``, so the bus dispatches the
    events it raised. What a transaction adds or loads waits in ``pending`` until the
    :class:`AsyncInMemoryUnitOfWork` commits; a rollback forgets it, and a loaded model
    is a copy, so a rolled-back change never reaches :attr:`models`.
    """

    id_field: ClassVar[str] = "id"
    """The name of the attribute that identifies a model."""

    def __init__(self, *models: TModel) -> None:
        super().__init__()
        self.models: dict[Any, TModel] = {getattr(model, self.id_field): model for model in models}
        """The committed models, by id: what a test checks."""
        self.pending: dict[Any, TModel] = {}
        """The models the running transaction added or loaded, by id."""

    async def add(self, model: TModel) -> None:
        """Store ``model`` in the transaction, replacing the model of the same id."""
        await self._add(model)
        self.seen.append(model)

    async def _add(self, model: TModel) -> None:
        self.pending[getattr(model, self.id_field)] = model

    async def get(self, model_id: Any) -> TModel | None:
        """Return the model of id ``model_id``, or ``None`` if there is none."""
        model = await self._get(model_id)
        if model is not None:
            self.seen.append(model)
        return model

    async def _get(self, model_id: Any) -> TModel | None:
        if model_id not in self.pending:
            if model_id not in self.models:
                return None
            self.pending[model_id] = self.models[model_id].model_copy(deep=True)
        return self.pending[model_id]

    def commit(self) -> None:
        """Keep what the transaction added or changed; the unit of work calls it."""
        self.models.update(self.pending)
        self.pending = {}

    def rollback(self) -> None:
        """Forget what the transaction added or changed; the unit of work calls it."""
        self.pending = {}


class AsyncInMemoryMessageStore(AsyncAbstractMessageStoreRepository):
    """A message store that keeps, in order, every message of the committed transactions.

    :attr:`messages` holds the commands and events the bus handled, :attr:`published`
    the messages sent to the event stream after a commit. A rolled-back transaction
    leaves nothing in either, with any unit of work.
    """

    def __init__(self, publisher: AsyncEventstreamPublisher | None = None) -> None:
        super().__init__(publisher)
        self.messages: list[Message[Any]] = []
        """The messages the bus handled, in the order it handled them."""
        self.published: list[Message[Any]] = []
        """The messages published after a commit, in the order they were sent."""
        self._uncommitted = 0

    async def _add(self, message: Message[Any]) -> None:
        self.messages.append(message)
        self._uncommitted += 1

    async def publish_eventstream(self) -> None:
        """Send the buffered messages, then record them in :attr:`published`.

        The unit of work calls it when a committed transaction closes.
        """
        self._uncommitted = 0
        sent = list(self.stream_buffer)
        await super().publish_eventstream()
        self.published.extend(sent)

    def discard_eventstream(self) -> None:
        """Forget the messages of the transaction that rolls back."""
        super().discard_eventstream()
        if self._uncommitted:
            del self.messages[-self._uncommitted :]
            self._uncommitted = 0


class AsyncInMemoryTransport(AsyncAbstractEventstreamTransport):
    """A transport that records every envelope it is sent, with its outbox stream.

    Give it to a publisher (:class:`~messagebus.AsyncEventstreamPublisher`) or to the
    outbox relay, then check :attr:`sent`.
    """

    def __init__(self) -> None:
        self.sent: list[SentEnvelope] = []
        """What the transport received, in order."""

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        """Record ``message``, sent without a stream."""
        self.sent.append(SentEnvelope(message, None))

    async def send_envelope(self, envelope: Mapping[str, Any], *, stream: str | None) -> None:
        """Record ``envelope`` with its ``stream``."""
        self.sent.append(SentEnvelope(envelope, stream))


class AsyncInMemoryUnitOfWork(
    AsyncAbstractUnitOfWork[Any, AsyncInMemoryMessageStore, AbstractMetricsStore]
):
    """A unit of work in memory, with a recording message store and transport.

    Pass the repositories by name (``AsyncInMemoryUnitOfWork(books=BookRepository())``)
    or subclass it and set them in ``__init__``, which types ``transaction.uow.books``.
    :meth:`commit` and :meth:`rollback` end the transaction of every repository among its
    attributes that has plain methods ``commit()`` and ``rollback()``: each
    :class:`AsyncInMemoryRepository`, and the in-memory repositories a project wrote
    itself with such methods, so a project's fakes need no unit of work of their own.

    :param transport: where the published messages go; a new
        :class:`AsyncInMemoryTransport` by default, kept as :attr:`transport`.
    :raises ~messagebus.ConfigurationError: from :meth:`commit` and :meth:`rollback`, when
        a repository's ``commit()`` or ``rollback()`` is a coroutine function.
    """

    def __init__(
        self,
        transport: AsyncInMemoryTransport | None = None,
        **repositories: AsyncAbstractRepository[Any],
    ) -> None:
        self.transport = transport if transport is not None else AsyncInMemoryTransport()
        """The transport the published messages are sent to."""
        self.messagestore = AsyncInMemoryMessageStore(AsyncEventstreamPublisher(self.transport))
        self.commits = 0
        """How many transactions committed."""
        self.rollbacks = 0
        """How many transactions rolled back."""
        for name, repository in repositories.items():
            setattr(self, name, repository)

    def _in_memory_repositories(self) -> list[_InMemory]:
        repositories: list[_InMemory] = [
            member
            for member in vars(self).values()
            if isinstance(member, AsyncAbstractRepository) and isinstance(member, _InMemory)
        ]
        for repository in repositories:
            for method in (repository.commit, repository.rollback):
                if inspect.iscoroutinefunction(method):
                    # Called as a plain method, it would end nothing and warn later.
                    raise ConfigurationError(
                        f"{type(repository).__name__}.{method.__name__}() is a coroutine "
                        f"function: the in-memory unit of work calls commit() and "
                        f"rollback() of its repositories as plain methods; make them plain "
                        f"(def), or end their transaction in a commit() of your unit of work"
                    )
        return repositories

    async def commit(self) -> None:
        """Keep the writes of every in-memory repository."""
        for repository in self._in_memory_repositories():
            repository.commit()
        self.commits += 1

    async def rollback(self) -> None:
        """Forget the writes of every in-memory repository."""
        for repository in self._in_memory_repositories():
            repository.rollback()
        self.rollbacks += 1


@runtime_checkable
class _InMemory(Protocol):
    """A repository that ends its transaction itself, as an in-memory one does."""

    def commit(self) -> None: ...

    def rollback(self) -> None: ...
