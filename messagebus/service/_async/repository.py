"""Repositories: the collections of models a unit of work hands to handlers.

A repository remembers in ``seen`` the models it stored or loaded, so that the bus
can collect the events they raised. The message store is the repository of the
messages the bus handled; it buffers the published ones until the commit.
"""

import abc
from collections.abc import MutableSequence
from typing import Any, Generic, Self, TypeVar

from messagebus.domain.model import GenericModel, Message
from messagebus.service._async.eventstream import AsyncEventstreamPublisher

__all__ = [
    "AsyncAbstractMessageStoreRepository",
    "AsyncAbstractRepository",
    "AsyncSinkholeMessageStoreRepository",
    "TModel",
]

TModel = TypeVar("TModel", bound=GenericModel[Any])


class AsyncAbstractRepository(abc.ABC, Generic[TModel]):
    """The base class of repositories.

    Append to ``seen`` every model the repository stores or loads: the bus then
    dispatches the events in their ``messages`` once the handler returns.
    """

    seen: MutableSequence[TModel]
    """The models touched in this transaction whose events are not collected yet."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        repository = super().__new__(cls)
        # Every repository gets its own `seen` here, even one whose __init__ skips
        # super().__init__(). An instance attribute with no class-level default (such
        # as a descriptor) is one that CPython 3.11 loads fast, and the bus reads
        # `seen` after every handler.
        repository.seen = []
        return repository

    def __init__(self) -> None:
        self.seen = []


class AsyncAbstractMessageStoreRepository(abc.ABC):
    """The base class of message stores: implement :meth:`_add` to keep messages.

    :param publisher: sends the published messages to the event stream once the
        transaction is committed; ``None`` publishes nothing.
    """

    received: Message[Any] | None
    """The message a consumer received from another service and is handling in this
    transaction: :meth:`add` skips it (the consumer records it with
    :meth:`add_received`, or not at all), so that it is not published again. ``None``
    by default."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        store = super().__new__(cls)
        # Set here, not as a class-level default: the bus reads it on every command, and
        # CPython 3.11 loads an instance attribute fast only when the class has none of
        # that name (-300 instructions per command).
        store.received = None
        return store

    def __init__(self, publisher: AsyncEventstreamPublisher | None = None) -> None:
        self.publisher = publisher
        self.stream_buffer: MutableSequence[Message[Any]] = []

    @abc.abstractmethod
    async def _add(self, message: Message[Any]) -> None:
        """Store ``message`` in the transaction of the unit of work."""

    async def add(self, message: Message[Any]) -> None:
        """Store ``message`` and, if it is published, keep it for the event stream."""
        if message is self.received:
            return
        await self._add(message)
        if message.metadata.published:
            self.stream_buffer.append(message)

    async def add_received(self, message: Message[Any]) -> None:
        """Store ``message``, received from another service, without publishing it again.

        .. versionadded:: 0.17
        """
        await self._add(message)

    async def publish_eventstream(self) -> None:
        """Send the buffered messages to the event stream, then forget them."""
        buffer, self.stream_buffer = self.stream_buffer, []
        if self.publisher is None:
            return
        for message in buffer:
            await self.publisher.send_message(message)

    def discard_eventstream(self) -> None:
        """Forget the buffered messages: their transaction rolled back."""
        self.stream_buffer = []


class AsyncSinkholeMessageStoreRepository(AsyncAbstractMessageStoreRepository):
    """A message store that keeps nothing, the default of every unit of work."""

    async def add(self, message: Message[Any]) -> None:
        """Keep ``message`` for the publisher if it is published; store nothing."""
        if message is self.received:
            return
        if self.publisher is not None and message.metadata.published:
            self.stream_buffer.append(message)

    async def _add(self, message: Message[Any]) -> None:
        """Drop the message."""

    async def add_received(self, message: Message[Any]) -> None:
        """Drop the message."""
