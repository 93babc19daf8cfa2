"""One trace across two services: A's request, its outbox, the relay, the broker, B's handler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import create_engine

from messagebus import AsyncMessageBus, AsyncUnitOfWorkTransaction
from messagebus.adapters.faststream import FastStreamTransport, broker_from_url, subscribe
from messagebus.adapters.opentelemetry import TraceContextSerializer, TracingTransport, instrument
from messagebus.adapters.sqlalchemy import AsyncOutboxRelay
from messagebus.adapters.sqlalchemy._compat import AsyncEngine, create_async_engine
from messagebus.consumer import AsyncConsumer
from messagebus.testing import AsyncInMemoryUnitOfWork
from tests.brokers.conftest import Names
from tests.brokers.support import WAIT
from tests.integration._async.books import AsyncBookUnitOfWork, make_bus
from tests.integration.conftest import Schema, new_schema
from tests.integration.model import BookRegistered, RegisterBook


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture
def schema(tmp_path: Path) -> Schema:
    metadata, created = new_schema()
    engine = create_engine(f"sqlite:///{tmp_path / 'a.sqlite'}")
    metadata.create_all(engine)
    engine.dispose()
    return created


@pytest.fixture
async def engine(tmp_path: Path, schema: Schema) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.sqlite'}")
    yield engine
    await engine.dispose()


class Shelf:
    """Service B's handler: it records the books it was told about."""

    def __init__(self) -> None:
        self.titles: list[str] = []

    async def on_book_registered(
        self, event: BookRegistered, transaction: AsyncUnitOfWorkTransaction[Any]
    ) -> None:
        self.titles.append(event.title)


def service_b(shelf: Shelf, provider: TracerProvider, name: str) -> AsyncConsumer[Any]:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.add_listener(BookRegistered, shelf.on_book_registered)
    return instrument(
        AsyncConsumer(bus, AsyncInMemoryUnitOfWork, name=name), tracer_provider=provider
    )


async def service_a_handles(engine: AsyncEngine, schema: Schema, provider: TracerProvider) -> None:
    bus = instrument(make_bus(), tracer_provider=provider)
    uow = AsyncBookUnitOfWork(engine, schema, serializer=TraceContextSerializer())
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()


def spans_by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


@pytest.mark.parametrize("names", ["redis"], indirect=True)
async def test_one_trace_from_service_a_through_the_relay_and_redis_to_service_b(
    names: Names,
    engine: AsyncEngine,
    schema: Schema,
    exporter: InMemorySpanExporter,
    provider: TracerProvider,
) -> None:
    await service_a_handles(engine, schema, provider)

    sender = broker_from_url(names.url)
    await sender.connect()
    transport = FastStreamTransport(sender, destination=names.source, close_broker=True)
    relay = AsyncOutboxRelay(
        engine,
        TracingTransport(transport, tracer_provider=provider),
        outbox=schema.messagebus.outbox,
    )
    try:
        assert 1 == await relay.run_once()
    finally:
        await transport.aclose()

    shelf = Shelf()
    consumer = service_b(shelf, provider, names.group)
    receiver = broker_from_url(names.url)
    subscribe(receiver, consumer, source=names.source)
    await receiver.start()
    try:
        async with asyncio.timeout(WAIT):
            while consumer.stats.handled < 1:
                await asyncio.sleep(0.02)
    finally:
        await receiver.stop()

    assert ["Dune"] == shelf.titles
    spans = spans_by_name(exporter)
    a_handle = spans["handle register_book"]
    send = spans[f"send {names.source}"]
    process = spans[f"process {names.group}"]
    b_handle = spans["handle book_registered"]
    b_handler = next(span for name, span in spans.items() if name.endswith("on_book_registered"))
    trace_ids = {span.context.trace_id for span in (a_handle, send, process, b_handle, b_handler)}
    assert {a_handle.context.trace_id} == trace_ids
    # The relay's send and B's receipt are children of the handle() that stored the event,
    # and linked to it.
    assert [a_handle.context.span_id] * 2 == [parent_of(send), parent_of(process)]
    assert [a_handle.context.span_id] == [link.context.span_id for link in send.links]
    assert [a_handle.context.span_id] == [link.context.span_id for link in process.links]
    assert [process.context.span_id, b_handle.context.span_id] == [
        parent_of(b_handle),
        parent_of(b_handler),
    ]
    assert trace.SpanKind.PRODUCER == send.kind
    assert trace.SpanKind.CONSUMER == process.kind
    assert {
        "messaging.operation.type": "send",
        "messaging.system": "redis",
        "messaging.destination.name": names.source,
        "messagebus.stream": "messagebus",
        "messagebus.message.name": "book_registered",
        "messagebus.message.schema_version": 1,
    }.items() <= dict(send.attributes or {}).items()
    assert {
        "messaging.operation.type": "process",
        "messaging.consumer.group.name": names.group,
        "messaging.message.id": (b_handle.attributes or {})["messaging.message.id"],
        "messagebus.outcome": "handled",
    }.items() <= dict(process.attributes or {}).items()


async def test_the_trace_context_travels_as_kafka_headers(
    engine: AsyncEngine, schema: Schema, exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    await service_a_handles(engine, schema, provider)
    broker = KafkaBroker("127.0.0.1:9092")
    shelf = Shelf()
    consumer = service_b(shelf, provider, "shelf")
    received: list[dict[str, str]] = []
    receive = consumer.receive

    async def spy(body: bytes | str, headers: Any = None) -> Any:
        received.append(dict(headers or {}))
        return await receive(body, headers)

    consumer.receive = spy  # type: ignore[method-assign]
    subscribe(broker, consumer, source="books")
    transport = FastStreamTransport(broker, destination="books")
    relay = AsyncOutboxRelay(engine, transport, outbox=schema.messagebus.outbox)
    instrument(relay, tracer_provider=provider)
    async with TestKafkaBroker(broker):
        assert 1 == await relay.run_once()

    spans = spans_by_name(exporter)
    a_handle = spans["handle register_book"]
    traceparent = received[0]["traceparent"]
    assert trace.format_trace_id(a_handle.context.trace_id) == traceparent.split("-")[1]
    assert trace.format_span_id(a_handle.context.span_id) == traceparent.split("-")[2]
    assert ["Dune"] == shelf.titles
    assert {a_handle.context.trace_id} == {
        spans[name].context.trace_id
        for name in ("send books", "process shelf", "handle book_registered")
    }
