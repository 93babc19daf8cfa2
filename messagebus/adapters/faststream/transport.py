"""The event-stream transport over a FastStream broker: Redis Streams, RabbitMQ, NATS, Kafka."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from messagebus.service._async.eventstream import AsyncAbstractEventstreamTransport
from messagebus.service.errors import ConfigurationError

from ._brokers import binding_for

__all__ = ["DEFAULT_DESTINATION", "HEADERS", "FastStreamTransport", "encode_envelope"]

DEFAULT_DESTINATION = "messagebus"
"""Where a message goes when no route names its type."""

HEADERS = {
    "id": "message-id",
    "type": "message-type",
    "created_at": "message-created-at",
    "causation_id": "message-causation-id",
    "correlation_id": "message-correlation-id",
    "stream": "message-stream",
}
"""The header that carries each envelope field, and ``stream`` for the outbox stream.

``message-causation-id`` and ``message-correlation-id`` are sent when the envelope has
them (an envelope serialized by 0.16 code has neither).
"""
# Sent when the envelope has them, not null.
_OPTIONAL_HEADERS = ("causation_id", "correlation_id")


def encode_envelope(envelope: Mapping[str, Any]) -> bytes:
    """Return the body sent for ``envelope``: its JSON, UTF-8 encoded, compact."""
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


class FastStreamTransport(AsyncAbstractEventstreamTransport):
    """Publishes serialized messages through a FastStream broker.

    The body is the envelope as JSON (:func:`encode_envelope`); the message id, type,
    creation date, causation and correlation ids travel as headers too
    (:data:`~messagebus.adapters.faststream.HEADERS`), and so does the outbox stream
    when the relay sends the message. A send returns once the broker has the message
    (RabbitMQ's publisher confirm, JetStream's acknowledgement, Kafka's record metadata)
    and raises otherwise, so the relay retries it.

    The trace context in an envelope's ``"trace"`` key travels as headers of its own
    names (``traceparent``, ``tracestate``), for the consumer to continue the trace (see
    :mod:`messagebus.adapters.opentelemetry`).

    Where a message goes, per broker, with ``destination`` the name chosen for its type:

    - Redis: appended to the stream ``destination``;
    - RabbitMQ: to the durable queue ``destination`` (declared on the first send, so
      messages wait there until a consumer comes), persistent; with ``exchange``, to that
      exchange with ``destination`` as the routing key;
    - NATS: to the subject ``destination`` through JetStream, into the stream that holds
      the subject or else the stream ``jetstream`` (created or extended on the first
      send); ``Nats-Msg-Id`` is the message id, so JetStream drops a message sent twice
      within its duplicate window;
    - Kafka: to the topic ``destination``, keyed on the outbox stream, so that the
      messages of one stream land in one partition, in order.

    :param broker: a ``RedisBroker``, ``RabbitBroker``, ``NatsBroker`` or ``KafkaBroker``;
        it must be connected (``await broker.connect()``) or started before the first send.
    :param destination: where a message goes when ``routes`` does not name its type.
    :param routes: destinations by message type: the key is the envelope's type with its
        version (``book_registered_v2``) or without it (``book_registered``), the first
        that matches wins. Keep the messages of one outbox stream on one destination:
        order is kept per destination only.
    :param exchange: RabbitMQ only: publish to this exchange (declared durable) instead
        of straight to queues.
    :param jetstream: NATS only: the JetStream stream to create or extend when no stream
        holds the subject.
    :param close_broker: stop the broker when the transport is closed (:meth:`aclose`).
    :raises ConfigurationError: when ``broker`` is not a supported FastStream broker or an
        option does not apply to it.

    .. versionadded:: 0.17
    """

    def __init__(
        self,
        broker: Any,
        *,
        destination: str = DEFAULT_DESTINATION,
        routes: Mapping[str, str] | None = None,
        exchange: str | None = None,
        jetstream: str | None = None,
        close_broker: bool = False,
    ) -> None:
        options: dict[str, Any] = {}
        if exchange is not None:
            options["exchange"] = exchange
        if jetstream is not None:
            options["jetstream"] = jetstream
        try:
            self._binding = binding_for(broker, options)
        except TypeError:
            raise ConfigurationError(
                f"{type(broker).__name__} takes neither exchange= (RabbitMQ only) nor "
                f"jetstream= (NATS only): remove them"
            ) from None
        if not destination:
            raise ConfigurationError("destination is empty: name a stream, queue or subject")
        self.broker = broker
        self.destination = destination
        self.routes = dict(routes or {})
        self.close_broker = close_broker

    @property
    def kind(self) -> str:
        """The broker: ``"redis"``, ``"rabbit"``, ``"nats"`` or ``"kafka"``."""
        return self._binding.kind

    def destination_for(self, message_type: str) -> str:
        """Return where a message of ``message_type`` (``name_vN``) is sent."""
        route = self.routes.get(message_type)
        if route is None:
            name, _, version = message_type.rpartition("_v")
            if name and version.isdigit():
                route = self.routes.get(name)
        return self.destination if route is None else route

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        """Send one envelope that belongs to no outbox stream."""
        await self.send_envelope(message, stream=None)

    async def send_envelope(self, envelope: Mapping[str, Any], *, stream: str | None) -> None:
        """Send one envelope of the outbox ``stream``; raise if the broker did not take it."""
        headers = {HEADERS[field]: str(envelope[field]) for field in ("id", "type", "created_at")}
        for field in _OPTIONAL_HEADERS:
            value = envelope.get(field)
            if value is not None:
                headers[HEADERS[field]] = str(value)
        if stream is not None:
            headers[HEADERS["stream"]] = stream
        trace = envelope.get("trace")  # the trace context TraceContextSerializer wrote
        if isinstance(trace, Mapping):
            headers = {str(key): str(value) for key, value in trace.items()} | headers
        destination = self.destination_for(headers[HEADERS["type"]])
        await self._binding.prepare(destination)
        await self._binding.publish(
            encode_envelope(envelope), destination, key=stream, headers=headers
        )

    async def aclose(self) -> None:
        """Stop the broker if the transport owns it (``close_broker=True``)."""
        if self.close_broker:
            await self.broker.stop()
