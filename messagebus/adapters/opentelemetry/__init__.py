"""Tracing of the bus, the relay and the consumer with OpenTelemetry (extra ``opentelemetry``).

Tracing is off until :func:`instrument` is called on a bus, a consumer, a relay or a
publisher: the rest of messagebus never imports OpenTelemetry. The trace context of a
message's creation travels with it through the outbox and the broker when the unit of
work's serializer is a :class:`TraceContextSerializer`, so that one trace goes from the
request of one service to the handlers of another.
"""

from __future__ import annotations

from typing import Any, TypeVar

from opentelemetry.trace import TracerProvider

from messagebus.adapters.opentelemetry._async import bus as async_bus
from messagebus.adapters.opentelemetry._common import DEFAULT_PARENT_WITHIN, TRACE_KEY, get_tracer
from messagebus.adapters.opentelemetry._sync import bus as sync_bus
from messagebus.adapters.opentelemetry.consumer import instrument_consumer, uninstrument_consumer
from messagebus.adapters.opentelemetry.serializer import TraceContextSerializer
from messagebus.adapters.opentelemetry.transport import TracingTransport
from messagebus.service._async.eventstream import AsyncAbstractEventstreamTransport
from messagebus.service._async.registry import AsyncMessageBus
from messagebus.service._sync.registry import SyncMessageBus
from messagebus.service.consumer import AsyncConsumer

__all__ = [
    "DEFAULT_PARENT_WITHIN",
    "TRACE_KEY",
    "TraceContextSerializer",
    "TracingTransport",
    "instrument",
    "uninstrument",
]

TTarget = TypeVar("TTarget")


def instrument(
    target: TTarget,
    *,
    tracer_provider: TracerProvider | None = None,
    parent_within: float | None = DEFAULT_PARENT_WITHIN,
) -> TTarget:
    """Trace ``target`` with OpenTelemetry, and return it.

    - an :class:`~messagebus.AsyncMessageBus` or a :class:`~messagebus.SyncMessageBus`:
      each ``handle()`` is a span ``handle {name}``, each handler a span ``handler
      {module.function}`` inside it, and the ``commit()`` and ``rollback()`` of the unit of
      work of the transaction a message was handled in are spans ``commit`` and
      ``rollback``; handlers registered later are traced too;
    - an :class:`~messagebus.consumer.AsyncConsumer`: each received message is a span
      ``process {consumer name}`` of kind ``CONSUMER``, around the spans of its bus, which
      is instrumented too; it continues the trace the message carries (the
      ``traceparent`` header, or the envelope's ``"trace"``), as its child while the
      message is younger than ``parent_within`` seconds, linked to it always;
    - anything with a ``transport`` attribute, such as an
      :class:`~messagebus.adapters.sqlalchemy.AsyncOutboxRelay` or an
      :class:`~messagebus.AsyncEventstreamPublisher`: its transport is wrapped in a
      :class:`TracingTransport`, so each send is a span.

    A span records the error that escapes it and has the status ``ERROR``; so has the
    span of a message the consumer dead-lettered or gave back. Instrumenting twice
    changes nothing; :func:`uninstrument` undoes it.

    :param tracer_provider: gives the tracer; the global one by default.
    :param parent_within: seconds after a message's creation during which the spans of
        its relay and its consumers are its children; ``None`` for always.
    :raises TypeError: ``target`` is none of the above.

    .. versionadded:: 0.17
    """
    tracer = get_tracer(tracer_provider)
    if isinstance(target, AsyncMessageBus):
        async_bus.instrument_bus(target, tracer)
    elif isinstance(target, SyncMessageBus):
        sync_bus.instrument_bus(target, tracer)
    elif isinstance(target, AsyncConsumer):
        instrument_consumer(target, tracer, parent_within)
    elif isinstance(getattr(target, "transport", None), AsyncAbstractEventstreamTransport):
        holder: Any = target
        if not isinstance(holder.transport, TracingTransport):
            holder.transport = TracingTransport(
                holder.transport, tracer_provider=tracer_provider, parent_within=parent_within
            )
    else:
        raise TypeError(
            f"Cannot instrument {type(target).__name__}: pass a message bus, a consumer, "
            f"or an object with an async transport (a relay, a publisher)"
        )
    return target


def uninstrument(target: object) -> None:
    """Undo :func:`instrument` on ``target``: it no longer makes spans.

    A unit of work that a traced bus used keeps tracing its commits and rollbacks: make
    a new one.

    .. versionadded:: 0.17
    """
    if isinstance(target, AsyncMessageBus):
        async_bus.uninstrument_bus(target)
    elif isinstance(target, SyncMessageBus):
        sync_bus.uninstrument_bus(target)
    elif isinstance(target, AsyncConsumer):
        uninstrument_consumer(target)
    else:
        transport = getattr(target, "transport", None)
        if isinstance(transport, TracingTransport):
            target.transport = transport.transport  # type: ignore[attr-defined]
