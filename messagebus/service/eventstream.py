"""Serializers: how a message is turned into plain data for an event-stream transport."""

import abc
from collections.abc import Mapping
from typing import Any

from messagebus.domain.model import Message
from messagebus.domain.model.message import ENVELOPE_FIELDS


class AbstractMessageSerializer(abc.ABC):
    """Turns a message into a mapping of plain Python values that a transport can send."""

    @abc.abstractmethod
    def serialize_message(self, message: Message[Any]) -> Mapping[str, Any]:
        """Return ``message`` as a mapping of JSON-compatible values."""


class MessageSerializer(AbstractMessageSerializer):
    """The default serializer.

    It returns ``id`` (the message id), ``created_at`` (ISO 8601), ``type``
    (``{name}_v{schema_version}``), ``causation_id`` (the id of the message that caused
    it, or ``None``), ``correlation_id`` (its conversation: see
    :attr:`~messagebus.Message.conversation_id`) and ``payload``, the JSON of the
    message's own fields (without its ids, date and metadata).

    >>> from messagebus import Event, Metadata
    >>> class BookRegistered(Event):
    ...     id: str
    ...     metadata: Metadata = Metadata(name="book_registered", schema_version=1)
    >>> envelope = MessageSerializer().serialize_message(BookRegistered(id="42"))
    >>> envelope["type"], envelope["payload"]
    ('book_registered_v1', '{"id":"42"}')

    .. versionchanged:: 0.17
       The ``causation_id`` and ``correlation_id`` keys.
    """

    def serialize_message(self, message: Message[Any]) -> Mapping[str, Any]:
        """Return the envelope of ``message`` with its fields as a JSON string."""
        metadata = message.metadata
        causation = message.causation_id
        return {
            "id": str(message.message_id),
            "created_at": message.created_at.isoformat(),
            "type": f"{metadata.name}_v{metadata.schema_version}",
            "causation_id": None if causation is None else str(causation),
            "correlation_id": str(message.correlation_id or message.message_id),
            "payload": message.model_dump_json(exclude=ENVELOPE_FIELDS),
        }
