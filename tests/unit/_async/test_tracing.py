"""The spans of an instrumented bus: handle, handlers, commit and rollback."""

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from messagebus import AsyncEventstreamPublisher, AsyncMessageBus, AsyncUnitOfWorkTransaction
from messagebus.adapters.opentelemetry import TraceContextSerializer, instrument, uninstrument
from messagebus.testing import (
    AsyncInMemoryMessageStore,
    AsyncInMemoryRepository,
    AsyncInMemoryUnitOfWork,
)
from tests.unit.model import Book, BookRegistered, RegisterBook

Transaction = AsyncUnitOfWorkTransaction[AsyncInMemoryUnitOfWork]


class AsyncBooks(AsyncInMemoryRepository[Book]):
    pass


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


async def register(command: RegisterBook, transaction: Transaction) -> str:
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=command.id, title=command.title))
    await transaction.uow.books.add(book)
    return command.id


async def shelve(event: BookRegistered, transaction: Transaction) -> None:
    if event.title == "boom":
        raise ValueError("no shelf for boom")


def make_bus(provider: TracerProvider) -> AsyncMessageBus[AsyncInMemoryUnitOfWork]:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.add_listener(RegisterBook, register)
    return instrument(bus, tracer_provider=provider)


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


async def test_handle_each_handler_and_the_commit_are_spans(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    bus = make_bus(provider)
    bus.add_listener(BookRegistered, shelve)  # added after instrument(): traced too
    uow = AsyncInMemoryUnitOfWork(books=AsyncBooks())
    command = RegisterBook(id="1", title="Dune")
    async with uow as transaction:
        assert "1" == await bus.handle(command, transaction)
        await transaction.commit()

    spans = by_name(exporter)
    handle = spans["handle register_book"]
    handler = spans["handler tests.unit._async.test_tracing.register"]
    event_handler = spans["handler tests.unit._async.test_tracing.shelve"]
    assert [handle.context.span_id] * 2 == [
        handler.parent.span_id if handler.parent else None,
        event_handler.parent.span_id if event_handler.parent else None,
    ]
    assert {
        "messaging.message.id": str(command.message_id),
        "messaging.message.conversation_id": str(command.message_id),
        "messaging.operation.type": "process",
        "messaging.operation": "process",
        "messagebus.message.name": "register_book",
        "messagebus.message.schema_version": 1,
        "messagebus.message.kind": "command",
    } == dict(handle.attributes or {})
    assert "event" == (event_handler.attributes or {})["messagebus.message.kind"]
    # The event continues the command's conversation.
    conversation = (event_handler.attributes or {})["messaging.message.conversation_id"]
    assert str(command.message_id) == conversation
    assert (
        "tests.unit._async.test_tracing.register"
        == (handler.attributes or {})["code.function.name"]
    )
    commit = spans["commit"]
    assert None is commit.parent  # committed after handle(), outside its span
    assert {"messagebus.unit_of_work": "AsyncInMemoryUnitOfWork"} == dict(commit.attributes or {})
    assert 1 == uow.commits


async def test_an_error_is_recorded_on_the_spans_it_leaves_and_the_rollback_is_one(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    bus = make_bus(provider)
    bus.add_listener(BookRegistered, shelve)
    uow = AsyncInMemoryUnitOfWork(books=AsyncBooks())
    with pytest.raises(ValueError, match="no shelf"):
        async with uow as transaction:
            await bus.handle(RegisterBook(id="1", title="boom"), transaction)

    spans = by_name(exporter)
    for name in ["handle register_book", "handler tests.unit._async.test_tracing.shelve"]:
        span = spans[name]
        assert StatusCode.ERROR == span.status.status_code
        assert ["exception"] == [event.name for event in span.events]
        assert "ValueError" == (span.events[0].attributes or {})["exception.type"]
    assert (
        StatusCode.UNSET
        == spans["handler tests.unit._async.test_tracing.register"].status.status_code
    )
    assert "rollback" in spans
    assert "commit" not in spans
    assert 1 == uow.rollbacks


async def test_a_handler_that_takes_dependencies_is_traced_and_gets_them(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus(clock=lambda: "noon")
    seen: list[str] = []

    async def with_clock(command: RegisterBook, transaction: Transaction, clock: str) -> None:
        seen.append(clock)

    bus.add_listener(RegisterBook, with_clock)
    instrument(bus, tracer_provider=provider)
    async with AsyncInMemoryUnitOfWork() as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.rollback()

    assert ["noon"] == seen
    assert {"handle register_book", "rollback"} <= set(by_name(exporter))
    assert any(name.endswith("with_clock") for name in by_name(exporter))


async def test_uninstrument_gives_the_bus_back_as_it_was(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    bus = make_bus(provider)
    instrument(bus, tracer_provider=provider)  # twice changes nothing
    uninstrument(bus)
    assert {"commands_registry", "events_registry", "dependencies"} == set(vars(bus))
    assert type(bus.commands_registry[RegisterBook]).__name__ == "AsyncMessageHook"
    bus.remove_listener(RegisterBook, register)  # the hook still knows its handler
    bus.add_listener(RegisterBook, register)
    async with AsyncInMemoryUnitOfWork(books=AsyncBooks()) as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    assert () == exporter.get_finished_spans()


async def test_the_serializer_writes_the_trace_context_of_the_current_span(
    provider: TracerProvider,
) -> None:
    bus = make_bus(provider)
    uow = AsyncInMemoryUnitOfWork(books=AsyncBooks())
    uow.messagestore = AsyncInMemoryMessageStore(
        AsyncEventstreamPublisher(uow.transport, TraceContextSerializer())
    )
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        async with uow as transaction:
            await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
            await transaction.commit()
    async with uow as transaction:  # outside any span: no trace context
        await bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        await transaction.commit()

    first, second = (sent.envelope for sent in uow.transport.sent)
    trace_id = trace.format_trace_id(request.get_span_context().trace_id)
    traceparent: Any = first["trace"]["traceparent"]
    assert trace_id == traceparent.split("-")[1]
    assert "trace" not in second
    assert {"id", "created_at", "type", "causation_id", "correlation_id", "payload"} == set(second)
