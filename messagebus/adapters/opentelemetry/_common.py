"""What the spans share: the names of their attributes, the trace context of a message.

The attributes follow the OpenTelemetry semantic conventions for messaging; those named
``messagebus.*`` are the library's own. The trace context travels in the envelope under
:data:`TRACE_KEY`, as the propagator writes it (``traceparent``, ``tracestate``), and as
broker headers of the same names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Tracer, TracerProvider

from messagebus.domain.model import GenericCommand, Message

TRACE_KEY = "trace"
"""The envelope key that holds the trace context of the message's creation."""

DEFAULT_PARENT_WITHIN = 60.0
"""Seconds after its creation during which the spans of a message are children of it.

A relay or a consumer that deals with an older message starts a trace of its own, linked
to the message's creation: that trace ended long ago.
"""

MESSAGE_ID = "messaging.message.id"
# The conventions' name for what messagebus calls the correlation id.
CONVERSATION_ID = "messaging.message.conversation_id"
OPERATION_TYPE = "messaging.operation.type"
# The name of the operation before the semantic conventions 1.26, still read by backends.
OPERATION = "messaging.operation"
DESTINATION = "messaging.destination.name"
SYSTEM = "messaging.system"
CONSUMER_GROUP = "messaging.consumer.group.name"
MESSAGE_NAME = "messagebus.message.name"
SCHEMA_VERSION = "messagebus.message.schema_version"
MESSAGE_KIND = "messagebus.message.kind"
STREAM = "messagebus.stream"
OUTCOME = "messagebus.outcome"
HANDLER = "code.function.name"
UNIT_OF_WORK = "messagebus.unit_of_work"

Attributes = dict[str, str | int]


def get_tracer(tracer_provider: TracerProvider | None) -> Tracer:
    """Return the library's tracer, from ``tracer_provider`` or the global one."""
    from messagebus import __version__

    return trace.get_tracer("messagebus", __version__, tracer_provider)


def operation(name: str) -> Attributes:
    """Return the attributes that name the messaging operation, by both its names."""
    return {OPERATION_TYPE: name, OPERATION: name}


def message_attributes(message: Message[Any]) -> Attributes:
    """Return the attributes that describe ``message``: ids, name, version and kind."""
    metadata = message.metadata
    return {
        MESSAGE_ID: str(message.message_id),
        CONVERSATION_ID: str(message.conversation_id),
        MESSAGE_NAME: metadata.name,
        SCHEMA_VERSION: metadata.schema_version,
        MESSAGE_KIND: "command" if isinstance(message, GenericCommand) else "event",
    }


def type_attributes(message_type: object) -> Attributes:
    """Return the name and version attributes of an envelope's ``type`` (``name_vN``)."""
    if not isinstance(message_type, str):
        return {}
    name, _, version = message_type.rpartition("_v")
    if not name or not version.isdigit():
        return {MESSAGE_NAME: message_type}
    return {MESSAGE_NAME: name, SCHEMA_VERSION: int(version)}


def inject() -> dict[str, str]:
    """Return the current trace context as the global propagator writes it; empty if none."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def creation_context(
    carrier: object, created_at: object, parent_within: float | None
) -> tuple[Context | None, list[Link]]:
    """Return the parent context and the links of a span about a received or sent message.

    ``carrier`` is the trace context the message carries (``traceparent``...), if any.
    The span always links to the context of the message's creation; it is also its child
    while the message is younger than ``parent_within`` seconds (always with ``None``).
    An older one starts a trace of its own: its creation's trace ended long ago. Without a
    carrier, the span has the current context as parent, as any other.
    """
    if not isinstance(carrier, Mapping) or not carrier:
        return None, []
    context = propagate.extract({str(key): str(value) for key, value in carrier.items()})
    span_context = trace.get_current_span(context).get_span_context()
    if not span_context.is_valid:
        return None, []
    links = [Link(span_context)]
    if parent_within is None or _age(created_at) <= parent_within:
        return context, links
    return Context(), links  # a root span: the creation is too far back to be a parent


def _age(created_at: object) -> float:
    """Return how many seconds ago ``created_at`` (ISO 8601) was; 0 if it cannot be read."""
    if not isinstance(created_at, str):
        return 0.0
    try:
        moment = datetime.fromisoformat(created_at)
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (datetime.now(UTC) - moment).total_seconds()
