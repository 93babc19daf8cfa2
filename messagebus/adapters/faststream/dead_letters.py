"""Dead letters kept on the broker: the bytes as received, with the reason in a header."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from messagebus.ports.dead_letters import AsyncAbstractDeadLetters

from ._brokers import binding_for, broker_kind

__all__ = ["DEAD_LETTER_DESTINATION", "REASON_HEADER", "FastStreamDeadLetters"]

DEAD_LETTER_DESTINATION = "messagebus.dead"
"""Where dead letters go by default."""

REASON_HEADER = "dead-letter-reason"
"""The header that says why the consumer gave up on the message."""

_MAX_REASON = 1000
# Headers that the broker or FastStream set on the original delivery: copying them onto
# the dead letter would make the broker treat it as that delivery (JetStream's
# deduplication, FastStream's reply and content type).
_DROPPED = {"content-type", "correlation_id", "reply_to", "nats-msg-id", "nats-expected-stream"}


class FastStreamDeadLetters(AsyncAbstractDeadLetters):
    """Publishes what a consumer gave up on to a dead-letter destination on the broker.

    The body is sent as received, byte for byte; the headers received with it go along
    (but those the broker sets on a delivery), plus
    :data:`~messagebus.adapters.faststream.REASON_HEADER`, the reason on one line, cut at
    1,000 characters. The destination is a Redis stream, a durable
    RabbitMQ queue, a NATS subject in JetStream or a Kafka topic, as for
    :class:`~messagebus.adapters.faststream.FastStreamTransport`. Publishing waits for the
    broker; if it fails, the consumer does not acknowledge the message, so it comes again.

    :param broker: the FastStream broker, connected or started.
    :param destination: where the dead letters go.
    :param jetstream: NATS only: the JetStream stream to create if none holds
        ``destination``.

    .. versionadded:: 0.17
    """

    def __init__(
        self,
        broker: Any,
        destination: str = DEAD_LETTER_DESTINATION,
        *,
        jetstream: str | None = None,
    ) -> None:
        options: dict[str, Any] = {}
        if jetstream is not None:
            options["jetstream"] = jetstream
        if broker_kind(broker) == "nats":
            # Two hostile messages may carry one id: both must be kept.
            options["deduplicate"] = False
        self._binding = binding_for(broker, options)
        self.destination = destination

    async def put(self, raw: bytes, headers: Mapping[str, str], reason: str) -> None:
        """Publish ``raw`` with ``headers`` and the ``reason`` to the destination."""
        sent = {
            str(key): str(value)
            for key, value in headers.items()
            if str(key).lower() not in _DROPPED
        }
        sent[REASON_HEADER] = " ".join(reason.split())[:_MAX_REASON]
        await self._binding.prepare(self.destination)
        await self._binding.publish(bytes(raw), self.destination, key=None, headers=sent)
