"""The tracing of what is async only: the transport's sends and the consumer's receipts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from messagebus import AsyncEventstreamPublisher, AsyncMessageBus, AsyncUnitOfWorkTransaction
from messagebus.adapters.opentelemetry import (
    TraceContextSerializer,
    TracingTransport,
    instrument,
    uninstrument,
)
from messagebus.consumer import AsyncConsumer, Outcome
from messagebus.testing import AsyncInMemoryTransport, AsyncInMemoryUnitOfWork
from tests.unit.model import BookRegistered


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def envelope_in_span(provider: TracerProvider, title: str = "Dune") -> tuple[Any, Any]:
    """An envelope made inside a span ``create``, with that span's context."""
    with provider.get_tracer("test").start_as_current_span("create") as span:
        envelope = TraceContextSerializer().serialize_message(BookRegistered(id="1", title=title))
    return dict(envelope), span.get_span_context()


def named(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    return next(span for span in exporter.get_finished_spans() if span.name == name)


class FailingTransport(AsyncInMemoryTransport):
    async def send_envelope(self, envelope: Mapping[str, Any], *, stream: str | None) -> None:
        raise ConnectionError("the broker is away")


async def test_a_fresh_message_is_sent_in_a_child_span_of_its_creation(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    envelope, created = envelope_in_span(provider)
    inner = AsyncInMemoryTransport()
    transport = TracingTransport(inner, tracer_provider=provider)
    await transport.send_envelope(envelope, stream="book-1")

    send = named(exporter, "send book-1")
    assert SpanKind.PRODUCER == send.kind
    assert (created.trace_id, created.span_id) == (send.context.trace_id, send.parent.span_id)  # type: ignore[union-attr]
    assert [created.span_id] == [link.context.span_id for link in send.links]
    assert {
        "messaging.message.id": envelope["id"],
        "messaging.message.conversation_id": envelope["correlation_id"],
        "messaging.destination.name": "book-1",
        "messagebus.stream": "book-1",
        "messagebus.message.name": "book_registered",
    }.items() <= dict(send.attributes or {}).items()
    assert [envelope] == [sent.envelope for sent in inner.sent]


async def test_an_old_message_is_sent_in_a_trace_of_its_own_linked_to_its_creation(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    envelope, created = envelope_in_span(provider)
    envelope["created_at"] = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    transport = TracingTransport(AsyncInMemoryTransport(), tracer_provider=provider)
    await transport.send_message_serialized(envelope)

    send = named(exporter, "send messages")
    assert None is send.parent
    assert created.trace_id != send.context.trace_id
    assert [created.span_id] == [link.context.span_id for link in send.links]
    always = TracingTransport(
        AsyncInMemoryTransport(), tracer_provider=provider, parent_within=None
    )
    await always.send_envelope(envelope, stream="s")
    assert created.span_id == named(exporter, "send s").parent.span_id  # type: ignore[union-attr]


async def test_a_failed_send_records_its_error(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    envelope, _ = envelope_in_span(provider)
    transport = TracingTransport(FailingTransport(), tracer_provider=provider)
    with pytest.raises(ConnectionError):
        await transport.send_envelope(envelope, stream="s")
    send = named(exporter, "send s")
    assert StatusCode.ERROR == send.status.status_code
    assert "ConnectionError" == (send.events[0].attributes or {})["exception.type"]
    assert [] == transport.sent  # the wrapped transport's attributes show through


async def test_instrument_wraps_the_transport_of_a_publisher_once_and_uninstrument_unwraps_it(
    provider: TracerProvider,
) -> None:
    inner = AsyncInMemoryTransport()
    publisher = instrument(AsyncEventstreamPublisher(inner), tracer_provider=provider)
    instrument(publisher, tracer_provider=provider)
    assert isinstance(publisher.transport, TracingTransport)
    assert inner is publisher.transport.transport
    uninstrument(publisher)
    assert inner is publisher.transport
    with pytest.raises(TypeError, match="Cannot instrument str"):
        instrument("bus")


class Shelf:
    def __init__(self) -> None:
        self.titles: list[str] = []

    async def on_registered(
        self, event: BookRegistered, transaction: AsyncUnitOfWorkTransaction[Any]
    ) -> None:
        if event.title == "boom":
            raise ValueError("no shelf for boom")
        self.titles.append(event.title)


def consumer_of(shelf: Shelf) -> AsyncConsumer[AsyncInMemoryUnitOfWork]:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.add_listener(BookRegistered, shelf.on_registered)
    return AsyncConsumer(
        bus, AsyncInMemoryUnitOfWork, name="shelf", retries=0, backoff=lambda failures: 0.0
    )


async def test_a_consumer_run_in_process_continues_the_trace_of_the_envelope(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    envelope, created = envelope_in_span(provider)
    shelf = Shelf()
    consumer = instrument(consumer_of(shelf), tracer_provider=provider)
    queue: asyncio.Queue[tuple[bytes, Mapping[str, str]]] = asyncio.Queue()
    queue.put_nowait((json.dumps(envelope).encode(), {}))
    task = asyncio.create_task(consumer.run(queue))
    await queue.join()
    task.cancel()

    process = named(exporter, "process shelf")
    assert SpanKind.CONSUMER == process.kind
    assert {  # read from the envelope, as the message came without headers
        "messaging.message.id": envelope["id"],
        "messagebus.message.name": "book_registered",
        "messagebus.message.schema_version": 1,
    }.items() <= dict(process.attributes or {}).items()
    assert created.span_id == process.parent.span_id  # type: ignore[union-attr]
    handle = named(exporter, "handle book_registered")
    assert process.context.span_id == handle.parent.span_id  # type: ignore[union-attr]
    assert process.context.span_id == named(exporter, "commit").parent.span_id  # type: ignore[union-attr]
    assert ["Dune"] == shelf.titles


async def test_a_dead_lettered_message_makes_an_error_span(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    envelope, _ = envelope_in_span(provider, title="boom")
    consumer = instrument(consumer_of(Shelf()), tracer_provider=provider)
    assert Outcome.dead_lettered == await consumer.receive(json.dumps(envelope))
    assert Outcome.dead_lettered == await consumer.receive(b"not json", {"message-id": "x"})

    first, second = (span for span in exporter.get_finished_spans() if span.name == "process shelf")
    for span in (first, second):
        assert StatusCode.ERROR == span.status.status_code
        assert "dead_lettered" == (span.attributes or {})["messagebus.outcome"]
    assert None is second.parent  # a body that is not JSON carries no trace
    assert "x" == (second.attributes or {})["messaging.message.id"]
    handle = named(exporter, "handle book_registered")
    assert StatusCode.ERROR == handle.status.status_code
    assert "rollback" in {span.name for span in exporter.get_finished_spans()}


async def test_uninstrument_a_consumer_and_its_bus(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    envelope, _ = envelope_in_span(provider)
    exporter.clear()
    consumer = instrument(consumer_of(Shelf()), tracer_provider=provider)
    uninstrument(consumer)
    assert "receive" not in vars(consumer)
    assert "handle" not in vars(consumer.bus)
    assert Outcome.handled == await consumer.receive(json.dumps(envelope))
    assert () == exporter.get_finished_spans()


def test_nothing_imports_opentelemetry_until_the_adapter_is_imported() -> None:
    # FastStream imports OpenTelemetry's semantic conventions for its own middleware: the
    # API (trace, propagate) and our adapter must stay out.
    code = (
        "import sys, messagebus, messagebus.consumer, messagebus.testing, "
        "messagebus.adapters.sqlalchemy, messagebus.adapters.faststream\n"
        "print(sorted(name for name in sys.modules if name.startswith("
        "('opentelemetry.trace', 'opentelemetry.propagate', 'messagebus.adapters.opentelemetry'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "[]\n" == done.stdout
