"""The serializer that writes the trace context of a message's creation into its envelope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from messagebus.adapters.opentelemetry._common import TRACE_KEY, inject
from messagebus.domain.model import Message
from messagebus.service.eventstream import AbstractMessageSerializer, MessageSerializer

__all__ = ["TraceContextSerializer"]


class TraceContextSerializer(AbstractMessageSerializer):
    """Adds the current trace context to the envelopes another serializer makes.

    Give it to the unit of work, ``AsyncSqlAlchemyUnitOfWork(engine,
    serializer=TraceContextSerializer())``, or to a publisher: the envelope, hence the
    outbox row's payload, gets a ``"trace"`` key holding what the global propagator
    writes for the current span (``traceparent``, ``tracestate``, W3C Trace Context by
    default). The broker transport sends it as headers of the same names, and an
    instrumented consumer continues the trace from them. Outside a span, the envelope is
    left as it is. Readers that do not trace ignore the key.

    :param serializer: makes the envelope; :class:`~messagebus.MessageSerializer` by
        default.

    .. versionadded:: 0.17
    """

    def __init__(self, serializer: AbstractMessageSerializer | None = None) -> None:
        self.serializer = serializer if serializer is not None else MessageSerializer()

    def serialize_message(self, message: Message[Any]) -> Mapping[str, Any]:
        """Return the envelope of ``message``, with the current trace context if any."""
        envelope = self.serializer.serialize_message(message)
        carrier = inject()
        if not carrier:
            return envelope
        return {**envelope, TRACE_KEY: carrier}
