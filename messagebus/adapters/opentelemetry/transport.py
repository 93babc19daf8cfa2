"""The transport that makes each send a span, for the outbox relay and the publisher."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import SpanKind, TracerProvider

from messagebus.adapters.opentelemetry._common import (
    CONVERSATION_ID,
    DEFAULT_PARENT_WITHIN,
    DESTINATION,
    MESSAGE_ID,
    STREAM,
    SYSTEM,
    TRACE_KEY,
    creation_context,
    get_tracer,
    operation,
    type_attributes,
)
from messagebus.service._async.eventstream import AsyncAbstractEventstreamTransport

__all__ = ["TracingTransport"]

# The values of messaging.system for the brokers of FastStreamTransport.kind.
_SYSTEMS = {"redis": "redis", "rabbit": "rabbitmq", "nats": "nats", "kafka": "kafka"}


class TracingTransport(AsyncAbstractEventstreamTransport):
    """Sends through another transport, each send in a span of kind ``PRODUCER``.

    The span is named ``send {destination}``; it carries the message's id, name and
    schema version, the outbox stream, the broker (``messaging.system``, when the
    transport has a ``kind``, as ``FastStreamTransport`` does), and the destination (the
    one the transport names for the message's type if it can, else the stream).
    It links to the context the message was created in, which
    :class:`~messagebus.adapters.opentelemetry.TraceContextSerializer` wrote in the
    envelope, and is its child too while the message is younger than ``parent_within``
    seconds: so a relay that sends at once shows in the trace of the request that made
    the message, and one that sends a message of yesterday starts a trace of its own,
    linked to yesterday's. A failed send records its error on the span.

    Every other attribute is the wrapped transport's (``transport.kind``, ``aclose()``).

    :param transport: sends the messages.
    :param tracer_provider: gives the tracer; the global one by default.
    :param parent_within: seconds during which the send span is a child of the message's
        creation; ``None`` for always.

    .. versionadded:: 0.17
    """

    def __init__(
        self,
        transport: AsyncAbstractEventstreamTransport,
        *,
        tracer_provider: TracerProvider | None = None,
        parent_within: float | None = DEFAULT_PARENT_WITHIN,
    ) -> None:
        self.transport = transport
        self.parent_within = parent_within
        self._tracer = get_tracer(tracer_provider)

    def __getattr__(self, name: str) -> Any:
        # Only called for names this class lacks: those of the wrapped transport.
        return getattr(self.transport, name)

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        """Send one envelope that belongs to no outbox stream, in a span."""
        await self.send_envelope(message, stream=None)

    async def send_envelope(self, envelope: Mapping[str, Any], *, stream: str | None) -> None:
        """Send one envelope of ``stream`` through the wrapped transport, in a span."""
        context, links = creation_context(
            envelope.get(TRACE_KEY), envelope.get("created_at"), self.parent_within
        )
        destination = self._destination(envelope.get("type"), stream)
        attributes = type_attributes(envelope.get("type")) | operation("send")
        attributes[MESSAGE_ID] = str(envelope.get("id"))
        conversation = envelope.get("correlation_id")
        if conversation is not None:
            attributes[CONVERSATION_ID] = str(conversation)
        if destination is not None:
            attributes[DESTINATION] = destination
        if stream is not None:
            attributes[STREAM] = stream
        system = _SYSTEMS.get(str(getattr(self.transport, "kind", "")))
        if system is not None:
            attributes[SYSTEM] = system
        with self._tracer.start_as_current_span(
            f"send {destination or 'messages'}",
            context=context,
            kind=SpanKind.PRODUCER,
            attributes=attributes,
            links=links,
        ):
            await self.transport.send_envelope(envelope, stream=stream)

    def _destination(self, message_type: object, stream: str | None) -> str | None:
        destination_for = getattr(self.transport, "destination_for", None)
        if callable(destination_for) and isinstance(message_type, str):
            return str(destination_for(message_type))
        return stream
