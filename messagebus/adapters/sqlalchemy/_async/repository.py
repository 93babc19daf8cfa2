"""The SQL message store, which writes the outbox, and a base class for SQL repositories."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, insert

from messagebus.adapters.sqlalchemy._compat import AsyncConnection
from messagebus.adapters.sqlalchemy.tables import MessagebusTables, messagebus_tables
from messagebus.domain.model import GenericCommand, GenericEvent, Message
from messagebus.service._async.eventstream import AsyncEventstreamPublisher
from messagebus.service._async.repository import (
    AsyncAbstractMessageStoreRepository,
    AsyncAbstractRepository,
    TModel,
)
from messagebus.service.errors import ConfigurationError
from messagebus.service.eventstream import AbstractMessageSerializer, MessageSerializer

if TYPE_CHECKING:
    from messagebus.adapters.sqlalchemy._async.unit_of_work import AsyncSqlAlchemyUnitOfWork

__all__ = ["AsyncSqlAlchemyMessageStoreRepository", "AsyncSqlAlchemyRepository"]

_ENVELOPE_FIELDS = {"message_id", "created_at", "metadata"}


@functools.cache
def _default_tables() -> MessagebusTables:
    # In a metadata of its own: the statements only need the names and the types,
    # whichever metadata created the tables.
    return messagebus_tables(MetaData())


def _kind(message: Message[Any]) -> str:
    if isinstance(message, GenericCommand):
        return "command"
    if isinstance(message, GenericEvent):
        return "event"
    raise TypeError(
        f"{type(message).__name__} is neither a command nor an event: "
        f"subclass messagebus.Command or messagebus.Event"
    )


class AsyncSqlAlchemyRepository(AsyncAbstractRepository[TModel]):
    """A base class for repositories that run their statements in the unit of work.

    Build it with the unit of work, in its ``__init__``; the repository's statements
    then run on :attr:`connection`, in the transaction of the unit of work::

        class BookRepository(AsyncSqlAlchemyRepository[Book]):
            async def add(self, book: Book) -> None:
                await self.connection.execute(insert(books).values(...))
                self.seen.append(book)

    Append to ``seen`` every model you store or load, so that the bus dispatches the
    events it raised.
    """

    uow: AsyncSqlAlchemyUnitOfWork[Any, Any]
    """The unit of work whose transaction the statements run in."""

    def __init__(self, uow: AsyncSqlAlchemyUnitOfWork[Any, Any]) -> None:
        super().__init__()
        self.uow = uow

    @property
    def connection(self) -> AsyncConnection:
        """The connection of the running transaction.

        :raises messagebus.TransactionError: outside of a transaction.
        """
        return self.uow.connection


class AsyncSqlAlchemyMessageStoreRepository(AsyncAbstractMessageStoreRepository):
    """Writes every handled message to the message store table, and published ones to the outbox.

    The rows are written on the unit of work's connection, so they are committed or
    rolled back with the models. The unit of work builds its message store; see
    :class:`~messagebus.adapters.sqlalchemy.AsyncSqlAlchemyUnitOfWork` for the parameters.

    :raises messagebus.ConfigurationError: if ``publisher`` is given with the outbox on:
        the relay publishes the outbox, nothing is sent after the commit.
    """

    tables: MessagebusTables
    """The message store and outbox tables the rows go to."""
    outbox: bool
    """Whether published messages are written to the outbox instead of sent after commit."""
    stream: str | Callable[[Message[Any]], str]
    """The ``stream`` of the outbox rows, or a function that names it for each message."""
    serializer: AbstractMessageSerializer
    """Turns a published message into the ``payload`` of its outbox row."""

    def __init__(
        self,
        uow: AsyncSqlAlchemyUnitOfWork[Any, Any],
        *,
        tables: MessagebusTables | None = None,
        outbox: bool = True,
        stream: str | Callable[[Message[Any]], str] = "messagebus",
        serializer: AbstractMessageSerializer | None = None,
        publisher: AsyncEventstreamPublisher | None = None,
    ) -> None:
        if outbox and publisher is not None:
            raise ConfigurationError(
                "A publisher was given with the outbox on: the outbox relay sends the "
                "published messages, so drop the publisher, or pass outbox=False to "
                "publish after the commit without an outbox"
            )
        super().__init__(publisher)
        self._uow = uow
        self.tables = tables if tables is not None else _default_tables()
        self.outbox = outbox
        self.stream = stream
        self.serializer = serializer if serializer is not None else MessageSerializer()

    async def _add(self, message: Message[Any]) -> None:
        """Insert ``message`` into the message store and, if it is published, the outbox."""
        connection = self._uow.connection
        metadata = message.metadata
        await connection.execute(
            insert(self.tables.messages).values(
                message_id=message.message_id,
                name=metadata.name,
                schema_version=metadata.schema_version,
                kind=_kind(message),
                payload=message.model_dump(mode="json", exclude=_ENVELOPE_FIELDS),
                created_at=message.created_at,
                published=metadata.published,
            )
        )
        if self.outbox and metadata.published:
            now = datetime.now(UTC)
            await connection.execute(
                insert(self.tables.outbox).values(
                    message_id=message.message_id,
                    stream=self.stream if isinstance(self.stream, str) else self.stream(message),
                    type=f"{metadata.name}_v{metadata.schema_version}",
                    payload=dict(self.serializer.serialize_message(message)),
                    created_at=now,
                    available_at=now,
                )
            )
