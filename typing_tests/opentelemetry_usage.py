"""Tracing as a user turns it on, under mypy --strict: instrument() keeps the types it is given.

Not generated: it instruments an async and a sync bus side by side.
"""

import json
from typing import Any, assert_type

from opentelemetry.sdk.trace import TracerProvider

from messagebus import (
    AsyncEventstreamPublisher,
    AsyncMessageBus,
    AsyncUnitOfWorkTransaction,
    SyncMessageBus,
    SyncUnitOfWorkTransaction,
)
from messagebus.adapters.opentelemetry import (
    TraceContextSerializer,
    TracingTransport,
    instrument,
    uninstrument,
)
from messagebus.consumer import AsyncConsumer, Outcome
from messagebus.testing import (
    AsyncInMemoryTransport,
    AsyncInMemoryUnitOfWork,
    SyncInMemoryUnitOfWork,
)
from typing_tests.model import BookRegistered, RegisterBook


async def register(
    command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[AsyncInMemoryUnitOfWork]
) -> str:
    return command.id


def register_sync(
    command: RegisterBook, transaction: SyncUnitOfWorkTransaction[SyncInMemoryUnitOfWork]
) -> str:
    return command.id


async def noted(
    event: BookRegistered, transaction: AsyncUnitOfWorkTransaction[AsyncInMemoryUnitOfWork]
) -> None:
    pass


async def main(provider: TracerProvider) -> tuple[str, str, Outcome]:
    bus = AsyncMessageBus[AsyncInMemoryUnitOfWork]()
    bus.add_listener(RegisterBook, register)
    traced = instrument(bus, tracer_provider=provider)
    assert_type(traced, AsyncMessageBus[AsyncInMemoryUnitOfWork])
    sync_bus = instrument(SyncMessageBus[SyncInMemoryUnitOfWork](), parent_within=None)
    assert_type(sync_bus, SyncMessageBus[SyncInMemoryUnitOfWork])
    sync_bus.add_listener(RegisterBook, register_sync)

    transport = TracingTransport(AsyncInMemoryTransport(), tracer_provider=provider)
    uow = AsyncInMemoryUnitOfWork()
    publisher = AsyncEventstreamPublisher(transport, TraceContextSerializer())
    assert_type(instrument(publisher), AsyncEventstreamPublisher)
    async with uow as transaction:
        result: Any = await traced.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    with SyncInMemoryUnitOfWork() as sync_transaction:
        sync_result: Any = sync_bus.handle(RegisterBook(id="2", title="Emma"), sync_transaction)
        sync_transaction.commit()

    events = AsyncMessageBus[AsyncInMemoryUnitOfWork]()
    events.add_listener(BookRegistered, noted)
    consumer = instrument(AsyncConsumer(events, AsyncInMemoryUnitOfWork, name="notes"))
    assert_type(consumer, AsyncConsumer[AsyncInMemoryUnitOfWork])
    envelope = TraceContextSerializer().serialize_message(BookRegistered(id="1"))
    outcome = await consumer.receive(json.dumps(dict(envelope)))
    uninstrument(consumer)
    uninstrument(traced)
    uninstrument(sync_bus)
    return result, sync_result, outcome
