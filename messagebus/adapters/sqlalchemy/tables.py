"""The tables of the SQLAlchemy adapter: message store, outbox and inbox.

:func:`messagebus_tables` adds them to *your* :class:`~sqlalchemy.MetaData`, so that
``metadata.create_all()`` or an Alembic autogenerate creates them next to the tables of
your models. Every name starts with a prefix (``messagebus_`` by default). The dates are
:class:`UtcDateTime` columns: ``DateTime(timezone=True)`` that read back aware UTC datetimes
on SQLite too.

``{prefix}messages``, the message store: one row per message the bus handled.

- ``message_id`` (UUID, primary key): the id of the message.
- ``name``: the message type's ``Metadata.name``.
- ``schema_version``: the message type's ``Metadata.schema_version``.
- ``kind``: ``"command"`` or ``"event"``.
- ``payload`` (JSON): the message's own fields, without its id, date and metadata.
- ``created_at``: when the message was built.
- ``published``: whether the message type is sent to the event stream.
- ``causation_id`` (UUID, nullable): the id of the message whose handling raised this
  one; ``NULL`` for a command that began a conversation.
- ``correlation_id`` (UUID, indexed): the conversation, the id of the command it began
  with (:attr:`~messagebus.Message.conversation_id`), so that everything a command led
  to is one query: ``WHERE correlation_id = :command_id``.

``{prefix}outbox``: one row per published message, written in the same transaction as
the models, that a relay reads in ``id`` order and sends to the event stream.

- ``id`` (big integer, autoincrement, primary key): the order of delivery.
- ``message_id`` (UUID, unique): the id of the message, so a message is queued once.
- ``stream``: the stream the message goes to, a name the unit of work is configured with
  (``"messagebus"`` by default); the order is kept per stream.
- ``type``: ``{name}_v{schema_version}``, the type a consumer dispatches on.
- ``payload`` (JSON): the envelope the serializer returned (``id``, ``created_at``,
  ``type``, ``payload``), sent as is by the relay.
- ``created_at``: when the row was written, by the database's clock on PostgreSQL (the
  start of the writing transaction), by the writer's on SQLite.
- ``available_at``: the earliest time the relay may try (again); ``created_at`` at first,
  later after a failure, to back off.
- ``attempts``: how many times the relay tried to send the row.
- ``last_error``: why the last failed attempt failed, ``NULL`` if none did; it stays
  on the row once a later attempt delivers it, as a record.
- ``delivered_at``: when the stream took the message; ``NULL`` while it is pending.

The index on ``(delivered_at, stream, id)`` lets the relay find the pending rows of a
stream in order without scanning the delivered ones.

``{prefix}inbox``: the messages a consumer already handled, so that a redelivered message
has no second effect.

- ``message_id`` (UUID) and ``consumer`` (the consumer's name): the primary key.
- ``received_at``: when the consumer first received the message.
- ``handled_at``: when its handler committed; ``NULL`` while it has not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["MessagebusTables", "UtcDateTime", "messagebus_tables"]

LONGEST_NAME = 63
"""The longest name PostgreSQL keeps for a table or an index; it refuses longer ones."""


class UtcDateTime(TypeDecorator[datetime]):
    """A ``DateTime(timezone=True)`` that always returns an aware datetime in UTC.

    SQLite has no time zones: SQLAlchemy stores the wall-clock time and reads it back
    naive. This type converts every aware datetime to UTC before storing it (so that
    comparing the stored strings compares instants) and marks what it reads as UTC, so
    code gets the same aware values from SQLite and PostgreSQL. A naive datetime is
    refused: its time zone is unknown.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert ``value`` to UTC; raise :class:`ValueError` if it is naive."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(
                f"{value!r} has no time zone: pass an aware datetime, such as datetime.now(UTC)"
            )
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return the stored datetime as an aware one, in UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class MessagebusTables:
    """The three tables of the adapter, as added to one :class:`~sqlalchemy.MetaData`."""

    messages: Table
    """The message store: every message the bus handled."""
    outbox: Table
    """The published messages waiting for, or done with, the relay."""
    inbox: Table
    """The message ids each consumer already handled."""


def order_id() -> Column[int]:
    """Return an ``id`` column that numbers the rows in the order they were written.

    A big integer that autoincrements, as an INTEGER on SQLite, which only
    autoincrements an INTEGER PRIMARY KEY, not a BIGINT one.
    """
    return Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


def messagebus_tables(metadata: MetaData, *, prefix: str = "messagebus_") -> MessagebusTables:
    """Add the message store, outbox and inbox tables to ``metadata`` and return them.

    :param metadata: the metadata of your application, so that your migrations
        (``create_all()``, Alembic) create these tables too.
    :param prefix: the start of the three table names; change it to keep two message
        buses apart in one schema.
    :raises sqlalchemy.exc.InvalidRequestError: if ``metadata`` already holds tables of
        these names; call this function once per metadata and prefix.
    :raises ValueError: if ``prefix`` makes a table or index name longer than
        PostgreSQL's 63 characters: the longest suffix, ``outbox_pending_id``, leaves
        46 characters to the prefix. ``metadata`` is then left as it was.
    """
    scratch = _build(MetaData(), prefix)
    names = [table.name for table in (scratch.messages, scratch.outbox, scratch.inbox)]
    names += [
        index.name
        for table in (scratch.messages, scratch.outbox)
        for index in table.indexes
        if isinstance(index.name, str)
    ]
    longest = max(names, key=len)
    if len(longest) > LONGEST_NAME:
        room = LONGEST_NAME - (len(longest) - len(prefix))
        raise ValueError(
            f"The table prefix {prefix[:60]!r} is {len(prefix)} characters long: the name "
            f"{longest[:20]}...{longest[-20:]} would be {len(longest)}, and PostgreSQL "
            f"keeps {LONGEST_NAME}; use a prefix of at most {room} characters"
        )
    return _build(metadata, prefix)


def _build(metadata: MetaData, prefix: str) -> MessagebusTables:
    messages = Table(
        f"{prefix}messages",
        metadata,
        Column("message_id", Uuid, primary_key=True),
        Column("name", String(255), nullable=False),
        Column("schema_version", Integer, nullable=False),
        Column("kind", String(16), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("published", Boolean, nullable=False),
        Column("causation_id", Uuid, nullable=True),
        # Nullable so that rows written before 0.17 added the column stay valid.
        Column("correlation_id", Uuid, nullable=True),
    )
    # A short name: the longest name, and so the room left to the prefix, stays that
    # of the outbox's index.
    Index(f"{prefix}correlation", messages.c.correlation_id)
    outbox = Table(
        f"{prefix}outbox",
        metadata,
        order_id(),
        Column("message_id", Uuid, nullable=False, unique=True),
        Column("stream", String(255), nullable=False, default="messagebus"),
        Column("type", String(255), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("available_at", UtcDateTime(), nullable=False),
        Column("attempts", Integer, nullable=False, default=0, server_default="0"),
        Column("last_error", Text, nullable=True),
        Column("delivered_at", UtcDateTime(), nullable=True),
        # Set when the relay gave up on the row (see max_attempts); last_error says why.
        Column("dead_at", UtcDateTime(), nullable=True),
    )
    Index(f"{prefix}outbox_pending", outbox.c.delivered_at, outbox.c.stream, outbox.c.id)
    # The relay looks for the oldest pending rows: an index of only those keeps the
    # lookup fast however many delivered rows the table holds.
    pending = outbox.c.delivered_at.is_(None) & outbox.c.dead_at.is_(None)
    Index(
        f"{prefix}outbox_pending_id",
        outbox.c.id,
        postgresql_where=pending,
        sqlite_where=pending,
    )
    inbox = Table(
        f"{prefix}inbox",
        metadata,
        Column("message_id", Uuid, primary_key=True),
        Column("consumer", String(255), primary_key=True),
        Column("received_at", UtcDateTime(), nullable=False),
        Column("handled_at", UtcDateTime(), nullable=True),
    )
    return MessagebusTables(messages=messages, outbox=outbox, inbox=inbox)
