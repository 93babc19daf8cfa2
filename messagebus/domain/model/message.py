"""Messages: the commands that ask the domain to change and the events that say it did."""

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from .ids import MessageId, new_message_id
from .metadata import Metadata, TMetadata

ENVELOPE_FIELDS: set[str] = {
    "message_id",
    "created_at",
    "metadata",
    "causation_id",
    "correlation_id",
}
"""The fields of every message that its envelope carries, outside its payload.

A serializer of your own dumps the payload with ``model_dump(exclude=ENVELOPE_FIELDS)``
and puts these in its envelope (or drops them), so that a field added to every message
by a later version never lands in the payload. It is a ``set``, the type pydantic's
``exclude=`` takes: read it, never change it.

.. versionadded:: 0.17
"""
# What equality and repr leave out: every message has its own, whatever its content.
_VOLATILE_FIELDS = frozenset({"message_id", "created_at", "causation_id", "correlation_id"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Message(BaseModel, Generic[TMetadata]):
    """The base class of commands and events.

    A message class declares its fields and, as the default value of ``metadata``,
    the :class:`Metadata` that names and versions it.

    Two messages are equal when they are of the same class and have the same fields,
    whatever their ``message_id``, ``created_at``, ``causation_id`` and
    ``correlation_id``: a test can compare the events a handler raised with freshly
    built ones.

    >>> from messagebus import Command, Metadata
    >>> class RegisterBook(Command):
    ...     title: str
    ...     metadata: Metadata = Metadata(name="register_book", schema_version=1)
    >>> first, second = RegisterBook(title="Dune"), RegisterBook(title="Dune")
    >>> first.message_id == second.message_id, first == second
    (False, True)
    >>> first
    <RegisterBook title='Dune'>
    """

    message_id: MessageId = Field(default_factory=new_message_id)
    """The unique, time-ordered identifier (a UUID version 7) of this message."""
    created_at: datetime = Field(default_factory=_utcnow)
    """When the message was built, timezone-aware, in UTC."""
    metadata: TMetadata
    """The name, schema version and publication flag of the message type."""
    causation_id: MessageId | None = None
    """The id of the message whose handling raised this one; ``None`` for a first command.

    The bus sets it on every event a model raised while a handler ran: the id of the
    command or event that handler was handling. Set it yourself on a message you build
    in a handler, or in a service that received the cause from another one.

    .. versionadded:: 0.17
    """
    correlation_id: MessageId | None = None
    """The id of the conversation this message belongs to: that of the command it began with.

    The bus gives every event the correlation id of the message whose handling raised
    it, or that message's own id when it had none (the first command of a
    conversation): every message that follows from one command, in this service or
    another, carries the id of that command. :attr:`conversation_id` reads it with
    that default.

    .. versionadded:: 0.17
    """

    @property
    def conversation_id(self) -> MessageId:
        """The conversation this message belongs to: :attr:`correlation_id`, else its own id.

        .. versionadded:: 0.17
        """
        return self.correlation_id or self.message_id

    def __repr__(self) -> str:
        fields = " ".join(
            f"{key}={value!r}"
            for key, value in self.__dict__.items()
            if key not in _VOLATILE_FIELDS and key != "metadata"
        )
        return f"<{type(self).__name__} {fields}>" if fields else f"<{type(self).__name__}>"

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented if not isinstance(other, Message) else False
        mine = self.__dict__
        theirs = other.__dict__
        return all(
            value == theirs.get(key) for key, value in mine.items() if key not in _VOLATILE_FIELDS
        )

    __hash__ = None  # type: ignore[assignment]  # equal messages may differ in id


class GenericCommand(Message[TMetadata]):
    """The base class of commands whose metadata is a custom :class:`Metadata` subclass."""


class GenericEvent(Message[TMetadata]):
    """The base class of events whose metadata is a custom :class:`Metadata` subclass."""


Command = GenericCommand[Metadata]
Command.__doc__ = """The base class of commands: a request to change the domain, handled once.

Subclass it, declare the fields, and give ``metadata`` a :class:`Metadata` default.
"""

Event = GenericEvent[Metadata]
Event.__doc__ = """The base class of events: a fact that happened, for any number of handlers.

Subclass it, declare the fields, and give ``metadata`` a :class:`Metadata` default;
``published=True`` sends the event to the event stream after the commit.
"""

TMessage = TypeVar("TMessage", bound=Message[Any])
"""Any message type."""
