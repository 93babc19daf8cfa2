"""Tracing a consumer: each received message is a span of kind ``CONSUMER``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic_core
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from messagebus.adapters.opentelemetry._async.bus import instrument_bus, uninstrument_bus
from messagebus.adapters.opentelemetry._common import (
    CONSUMER_GROUP,
    MESSAGE_ID,
    OUTCOME,
    STREAM,
    TRACE_KEY,
    creation_context,
    operation,
    type_attributes,
)
from messagebus.service.consumer import AsyncConsumer, Outcome
from messagebus.service.messages import ENVELOPE_HEADERS

__all__ = ["instrument_consumer", "uninstrument_consumer"]

_TRACEPARENT = "traceparent"
_STREAM_HEADER = "message-stream"


def instrument_consumer(
    consumer: AsyncConsumer[Any], tracer: Tracer, parent_within: float | None
) -> None:
    """Trace ``consumer``: a span per received message, around those of its bus."""
    members = vars(consumer)
    instrument_bus(consumer.bus, tracer)
    if "receive" in members:
        return
    receive = consumer.receive

    async def traced_receive(
        body: bytes | str, headers: Mapping[str, str] | None = None
    ) -> Outcome:
        headers = headers if headers is not None else {}
        facts = _facts_of(body, headers, consumer.max_size)
        context, links = creation_context(facts["trace"], facts["created_at"], parent_within)
        attributes = type_attributes(facts["type"]) | operation("process")
        attributes[CONSUMER_GROUP] = consumer.name
        if isinstance(facts["id"], str):
            attributes[MESSAGE_ID] = facts["id"]
        stream = headers.get(_STREAM_HEADER)
        if stream is not None:
            attributes[STREAM] = stream
        with tracer.start_as_current_span(
            f"process {consumer.name}",
            context=context,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
        ) as span:
            outcome = await receive(body, headers)
            span.set_attribute(OUTCOME, outcome.value)
            if outcome is Outcome.dead_lettered or outcome is Outcome.retry_later:
                span.set_status(Status(StatusCode.ERROR, f"the message was {outcome.value}"))
            return outcome

    members["receive"] = traced_receive


def uninstrument_consumer(consumer: AsyncConsumer[Any]) -> None:
    """Undo :func:`instrument_consumer`, on the consumer and its bus."""
    vars(consumer).pop("receive", None)
    uninstrument_bus(consumer.bus)


def _facts_of(
    body: bytes | str, headers: Mapping[str, str], max_size: int | None
) -> dict[str, Any]:
    """Return the trace context, creation date, id and type of a message, where known.

    The headers come first; the envelope itself is read only when they have no trace
    context, as for a message handed over in process with the body alone.
    """
    facts: dict[str, Any] = {key: headers.get(header) for key, header in ENVELOPE_HEADERS.items()}
    if _TRACEPARENT in headers:
        facts["trace"] = headers
        return facts
    facts["trace"] = None
    if max_size is not None and len(body) > max_size:
        return facts  # the consumer refuses it unread; so does its span
    try:
        envelope = pydantic_core.from_json(body)
    except ValueError:
        return facts  # the consumer dead-letters it
    if isinstance(envelope, dict):
        facts["trace"] = envelope.get(TRACE_KEY)
        for key in ENVELOPE_HEADERS:
            if facts[key] is None:
                facts[key] = envelope.get(key)
    return facts
