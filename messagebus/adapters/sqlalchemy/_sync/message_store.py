# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""The SQL message store: every handled message in one table, the published ones in the outbox.

The two ``INSERT`` statements are built once per message store and run with a dictionary
of values per message: building ``insert(table).values(...)`` for every message costs more
than the database round trip on a fast connection, since SQLAlchemy must then rebuild and
look up the statement's cache key each time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Insert, MetaData, Select, func, insert

from messagebus.adapters.sqlalchemy._compat import SyncConnection
from messagebus.adapters.sqlalchemy.outbox.wakeup import (
    NOTIFIED_STREAMS,
    notify_statement,
    outbox_committed,
)
from messagebus.adapters.sqlalchemy.tables import MessagebusTables, messagebus_tables
from messagebus.domain.model import GenericCommand, GenericEvent, Message
from messagebus.domain.model.message import ENVELOPE_FIELDS
from messagebus.service._sync.eventstream import SyncEventstreamPublisher
from messagebus.service._sync.repository import SyncAbstractMessageStoreRepository
from messagebus.service.errors import ConfigurationError
from messagebus.service.eventstream import AbstractMessageSerializer, MessageSerializer

if TYPE_CHECKING:  # the unit of work imports this module: no import when running
    from messagebus.adapters.sqlalchemy._sync.unit_of_work import SyncSqlAlchemyUnitOfWork

__all__ = ["SyncSqlAlchemyMessageStoreRepository"]


@functools.cache
def _default_tables() -> MessagebusTables:
    # In a metadata of its own: the statements only need the names and the types,
    # whichever metadata created the tables.
    return messagebus_tables(MetaData())


class _Statements(NamedTuple):
    insert_message: Insert
    insert_outbox: Insert
    # On PostgreSQL a row is due from the database's now(), the clock the relays compare
    # with: a writer whose clock runs ahead would otherwise hold its rows back by as
    # much. (SQLite is a file of this host: its clock is the writer's.)
    insert_outbox_pg: Insert
    notify: Select[Any]
    longest_stream: int | None
    """The length of the outbox's ``stream`` column."""


@functools.lru_cache(maxsize=64)
def _statements(tables: MessagebusTables) -> _Statements:
    """Build the message store's statements once per tables, for all its stores.

    A consumer builds a unit of work, hence a message store, per message: building the
    statements anew each time would cost SQLAlchemy a cache key per statement too.
    """
    now = func.now()
    return _Statements(
        insert_message=insert(tables.messages),
        insert_outbox=insert(tables.outbox),
        insert_outbox_pg=insert(tables.outbox).values(created_at=now, available_at=now),
        notify=notify_statement(tables.outbox.name),
        longest_stream=getattr(tables.outbox.c.stream.type, "length", None),
    )


def _kind(message: Message[Any]) -> str:
    if isinstance(message, GenericCommand):
        return "command"
    if isinstance(message, GenericEvent):
        return "event"
    raise TypeError(
        f"{type(message).__name__} is neither a command nor an event: "
        f"subclass messagebus.Command or messagebus.Event"
    )


def stream_problem(stream: object, longest: int | None) -> str | None:
    """Return why ``stream`` cannot be stored in the outbox's ``stream`` column, or ``None``."""
    if not isinstance(stream, str):
        return f"it is a {type(stream).__name__}, not a str"
    if not stream:
        return "it is empty"
    if longest is not None and len(stream) > longest:
        return f"it has {len(stream)} characters, and the column holds {longest}"
    if "\x00" in stream:
        return "it holds a NUL character, which PostgreSQL cannot store"
    try:
        stream.encode()
    except UnicodeEncodeError:
        return "it holds a lone surrogate, which no database can store"
    return None


class SyncSqlAlchemyMessageStoreRepository(SyncAbstractMessageStoreRepository):
    """Writes every handled message to the message store table, and published ones to the outbox.

    The rows are written on the unit of work's connection, so they are committed or
    rolled back with the models. The unit of work builds its message store; see
    :class:`~messagebus.adapters.sqlalchemy.SyncSqlAlchemyUnitOfWork` for the parameters.

    :raises messagebus.ConfigurationError: if ``publisher`` is given with the outbox on:
        the relay publishes the outbox, nothing is sent after the commit; or if
        ``stream`` is a name that the outbox table cannot store (empty, too long for
        its column, holding a NUL character or a lone surrogate).
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
        uow: SyncSqlAlchemyUnitOfWork[Any, Any],
        *,
        tables: MessagebusTables | None = None,
        outbox: bool = True,
        stream: str | Callable[[Message[Any]], str] = "messagebus",
        serializer: AbstractMessageSerializer | None = None,
        publisher: SyncEventstreamPublisher | None = None,
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
        statements = _statements(self.tables)
        self._insert_message = statements.insert_message
        self._insert_outbox = statements.insert_outbox
        self._insert_outbox_pg = statements.insert_outbox_pg
        self._notify = statements.notify
        self._longest_stream = statements.longest_stream
        if not callable(stream):
            problem = stream_problem(stream, self._longest_stream)
            if problem is not None:
                raise ConfigurationError(
                    f"The stream {stream[:60]!r} cannot be stored in the outbox: {problem}; "
                    f"name it with at most {self._longest_stream} printable characters"
                )
        self.stream = stream
        self.serializer = serializer if serializer is not None else MessageSerializer()
        self._outbox_written_on: SyncConnection | None = None
        # The streams that got rows in that transaction; None once there are too many
        # to name (see NOTIFIED_STREAMS): the relays then look at every stream.
        self._outbox_streams: set[str] | None = None

    def _stream_of(self, message: Message[Any]) -> str:
        stream = self.stream
        if isinstance(stream, str):
            return stream
        name = stream(message)
        problem = stream_problem(name, self._longest_stream)
        if problem is not None:
            raise ConfigurationError(
                f"The stream function {getattr(stream, '__qualname__', stream)!r} named the "
                f"stream of {type(message).__name__} {message.message_id} "
                f"{str(name)[:60]!r}, which the outbox cannot store: {problem}; "
                f"return at most {self._longest_stream} printable characters"
            )
        return name

    def _add(self, message: Message[Any]) -> None:
        """Insert ``message`` into the message store and, if it is published, the outbox."""
        self._store(message, outboxed=self.outbox and message.metadata.published)

    def add_received(self, message: Message[Any]) -> None:
        """Insert ``message``, received from another service, into the message store only.

        Its producer published it; it gets no outbox row here. Its ``message_id`` is the
        producer's: in a message store table that the producer writes too, the insert
        fails on the primary key, so give the consumer's unit of work tables of its own.

        .. versionadded:: 0.17
        """
        self._store(message, outboxed=False)

    def _store(self, message: Message[Any], *, outboxed: bool) -> None:
        connection = self._uow.connection
        metadata = message.metadata
        # Named before any write, so that a wrong stream leaves no row of this message.
        stream = self._stream_of(message) if outboxed else ""
        connection.execute(
            self._insert_message,
            {
                "message_id": message.message_id,
                "name": metadata.name,
                "schema_version": metadata.schema_version,
                "kind": _kind(message),
                "payload": message.model_dump(mode="json", exclude=ENVELOPE_FIELDS),
                "created_at": message.created_at,
                "published": metadata.published,
                "causation_id": message.causation_id,
                "correlation_id": message.correlation_id or message.message_id,
            },
        )
        if outboxed:
            if self._outbox_written_on is not connection:  # its first outbox row
                self._outbox_written_on = connection
                self._outbox_streams = set()
            streams = self._outbox_streams
            if streams is not None and stream not in streams:
                # A stream new to the transaction: on PostgreSQL, the relays listening
                # elsewhere learn of it at commit (never after a rollback); past a few
                # streams, the last notification asks them to look at every stream.
                streams.add(stream)
                if len(streams) > NOTIFIED_STREAMS:
                    streams = self._outbox_streams = None
                if connection.dialect.name == "postgresql":
                    named = stream if streams is not None else ""
                    connection.execute(self._notify, {"stream": named})
            row = {
                "message_id": message.message_id,
                "stream": stream,
                "type": f"{metadata.name}_v{metadata.schema_version}",
                "payload": dict(self.serializer.serialize_message(message)),
            }
            if connection.dialect.name == "postgresql":
                connection.execute(self._insert_outbox_pg, row)
            else:
                row["created_at"] = row["available_at"] = datetime.now(UTC)
                connection.execute(self._insert_outbox, row)

    def wake_relays(self, connection: SyncConnection) -> None:
        """Wake this process's relays if the just committed ``connection`` wrote outbox rows."""
        if self._outbox_written_on is connection:
            self._outbox_written_on = None
            outbox_committed(connection.engine.url, self.tables.outbox.name, self._outbox_streams)
