# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""The event stream: transports that send serialized messages, and the publisher."""

import abc
from collections.abc import Mapping
from typing import Any

from messagebus.domain.model import Message
from messagebus.service.eventstream import AbstractMessageSerializer, MessageSerializer

__all__ = [
    "SyncAbstractEventstreamTransport",
    "SyncEventstreamPublisher",
    "SyncSinkholeEventstreamTransport",
]


class SyncAbstractEventstreamTransport(abc.ABC):
    """Sends serialized messages to an event stream (a broker, a log, a test list).

    Implement :meth:`send_message_serialized`; override :meth:`send_envelope` as well
    when the destination depends on the outbox stream a message belongs to (a
    partitioned broker keys on it).
    """

    @abc.abstractmethod
    def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        """Send one serialized message; raise if the stream did not take it."""

    def send_envelope(self, envelope: Mapping[str, Any], *, stream: str | None) -> None:
        """Send one serialized message of ``stream``; raise if the stream did not take it.

        The outbox relay calls it with the stream of the outbox row; the publisher,
        which sends after the commit without an outbox, with ``stream=None``. By
        default it calls :meth:`send_message_serialized` with ``envelope``, so a
        transport written for 0.16 works unchanged.

        .. versionadded:: 0.17
        """
        self.send_message_serialized(envelope)


class SyncSinkholeEventstreamTransport(SyncAbstractEventstreamTransport):
    """A transport that drops every message: the event stream is off."""

    def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        """Drop the message."""


_BASE_SEND_ENVELOPE = SyncAbstractEventstreamTransport.send_envelope


class SyncEventstreamPublisher:
    """Serializes the published messages and sends them through a transport.

    :param transport: where the serialized messages go.
    :param serializer: how a message becomes plain data; by default
        :class:`~messagebus.MessageSerializer`.
    """

    def __init__(
        self,
        transport: SyncAbstractEventstreamTransport,
        serializer: AbstractMessageSerializer | None = None,
    ) -> None:
        self.transport = transport
        self.serializer = serializer if serializer is not None else MessageSerializer()

    def send_message(self, message: Message[Any]) -> None:
        """Send ``message`` if its metadata says ``published=True``; skip it otherwise."""
        if not message.metadata.published:
            return
        envelope = self.serializer.serialize_message(message)
        transport = self.transport
        if type(transport).send_envelope is _BASE_SEND_ENVELOPE:
            # What the base send_envelope() would do, without its coroutine.
            transport.send_message_serialized(envelope)
        else:
            transport.send_envelope(envelope, stream=None)
