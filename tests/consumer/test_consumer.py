"""The consumer with the in-memory inbox and dead letters: once each, bad input set aside."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from messagebus import (
    AsyncAbstractEventstreamTransport,
    AsyncAbstractMessageStoreRepository,
    AsyncEventstreamPublisher,
    AsyncSinkholeMessageStoreRepository,
    AsyncUnitOfWorkTransaction,
    ConfigurationError,
    Event,
    Message,
    MessageRegistry,
    Metadata,
)
from messagebus.consumer import (
    AsyncConsumer,
    AsyncInMemoryDeadLetters,
    AsyncInMemoryInbox,
    Outcome,
)
from tests.consumer.app import (
    BookRegistered,
    RegisterBook,
    Store,
    UnitOfWork,
    envelope,
    make_bus,
    raw_envelope,
)


def no_wait(failures: int) -> float:
    return 0.0


def make_consumer(store: Store, **kwargs: Any) -> AsyncConsumer[UnitOfWork]:
    kwargs.setdefault("backoff", no_wait)
    return AsyncConsumer(make_bus(), lambda: UnitOfWork(store), name="projection", **kwargs)


async def test_a_message_is_handled_and_committed() -> None:
    store = Store()
    consumer = make_consumer(store)
    event = BookRegistered(id="1", title="Dune", pages=412)
    assert Outcome.handled == await consumer.receive(envelope(event), {})
    assert {"registered:1:Dune:412": 1} == store.applied
    assert 1 == consumer.stats.handled


async def test_a_command_received_twice_has_one_effect_and_no_error() -> None:
    store = Store()
    consumer = make_consumer(store)
    body = envelope(RegisterBook(id="1", title="Dune"))
    assert Outcome.handled == await consumer.receive(body, {})
    assert Outcome.duplicate == await consumer.receive(body, {})
    assert {"register:1": 1} == store.applied
    assert (1, 1) == (consumer.stats.handled, consumer.stats.duplicates)


async def test_consumers_of_different_names_each_handle_the_message() -> None:
    store, inbox = Store(), AsyncInMemoryInbox()
    bus = make_bus()
    first = AsyncConsumer(bus, lambda: UnitOfWork(store), name="a", inbox=inbox)
    second = AsyncConsumer(bus, lambda: UnitOfWork(store), name="b", inbox=inbox)
    body = envelope(RegisterBook(id="1", title="Dune"))
    assert Outcome.handled == await first.receive(body)
    assert Outcome.handled == await second.receive(body)
    assert {"register:1": 2} == store.applied


class BookShelved(Event):
    id: str
    metadata: Metadata = Metadata(name="book_shelved", schema_version=1)


async def test_an_event_without_handlers_is_handled_as_nothing_to_do() -> None:
    store = Store()
    registry = MessageRegistry.from_bus(make_bus())
    registry.register(BookShelved)
    consumer = make_consumer(store, registry=registry)
    assert Outcome.handled == await consumer.receive(raw_envelope("book_shelved_v1", {"id": "1"}))
    assert not store.applied
    assert 1 == store.commits


async def test_bad_input_is_dead_lettered_and_the_consumer_goes_on() -> None:
    store = Store()
    dead_letters = AsyncInMemoryDeadLetters()
    consumer = make_consumer(store, dead_letters=dead_letters)
    headers = {"message-type": "?"}
    assert Outcome.dead_lettered == await consumer.receive(b"{not json", headers)
    good = envelope(RegisterBook(id="1", title="Dune"))
    assert Outcome.handled == await consumer.receive(good)
    [letter] = dead_letters.letters
    assert (b"{not json", headers) == (letter.raw, letter.headers)
    assert letter.reason.startswith("malformed: the envelope is not JSON")
    assert {"register:1": 1} == store.applied


async def test_a_failing_handler_is_retried_then_succeeds() -> None:
    store, calls = Store(), []
    bus = make_bus()

    async def flaky(command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[Any]) -> None:
        calls.append(command.id)
        transaction.uow.staged.append(f"attempt:{len(calls)}")
        if len(calls) < 3:
            raise RuntimeError("not yet")

    bus.commands_registry.clear()
    bus.add_listener(RegisterBook, flaky)
    waits: list[int] = []
    consumer = AsyncConsumer(
        bus,
        lambda: UnitOfWork(store),
        name="c",
        retries=3,
        backoff=lambda n: float(waits.append(n) or 0),  # type: ignore[func-returns-value]
    )
    assert Outcome.handled == await consumer.receive(envelope(RegisterBook(id="1", title="x")))
    assert ["1", "1", "1"] == calls
    assert [1, 2] == waits
    assert {"attempt:3": 1} == store.applied  # the failed attempts were rolled back
    assert 2 == consumer.stats.failures


async def test_each_attempt_gets_the_message_as_received() -> None:
    store, titles = Store(), []
    bus = make_bus()

    async def meddling(command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[Any]) -> None:
        titles.append(command.title)
        command.title = "changed"
        if len(titles) < 2:
            raise RuntimeError("try again")

    bus.commands_registry.clear()
    bus.add_listener(RegisterBook, meddling)
    consumer = AsyncConsumer(bus, lambda: UnitOfWork(store), name="c", backoff=no_wait)
    assert Outcome.handled == await consumer.receive(envelope(RegisterBook(id="1", title="x")))
    assert ["x", "x"] == titles


async def test_a_handler_that_keeps_failing_is_dead_lettered_after_the_retries() -> None:
    store, calls = Store(), []
    bus = make_bus()

    async def broken(command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[Any]) -> None:
        calls.append(command.id)
        raise ValueError("the shelf is full")

    bus.commands_registry.clear()
    bus.add_listener(RegisterBook, broken)
    inbox = AsyncInMemoryInbox()
    consumer = AsyncConsumer(
        bus, lambda: UnitOfWork(store), name="c", retries=2, backoff=no_wait, inbox=inbox
    )
    body = envelope(RegisterBook(id="1", title="x"))
    assert Outcome.dead_lettered == await consumer.receive(body, {"k": "v"})
    assert 3 == len(calls)
    [letter] = consumer.dead_letters.letters  # type: ignore[attr-defined]
    assert body == letter.raw
    assert "failed: ValueError: the shelf is full (after 3 attempts)" == letter.reason
    assert not inbox.handled  # never committed: a redelivery would be tried again


async def test_a_transient_error_gives_the_message_back() -> None:
    store = Store()

    class DownUnitOfWork(UnitOfWork):
        async def __aenter__(self) -> Any:
            raise ConnectionError("the database is down")

    consumer = AsyncConsumer(
        make_bus(), lambda: DownUnitOfWork(store), name="c", retries=1, backoff=no_wait
    )
    outcome = await consumer.receive(envelope(RegisterBook(id="1", title="x")))
    assert Outcome.retry_later == outcome
    assert not outcome.acknowledge
    assert not consumer.dead_letters.letters  # type: ignore[attr-defined]


async def test_an_error_that_invalidated_its_connection_is_transient() -> None:
    class LostConnection(Exception):
        connection_invalidated = True

    class LostUnitOfWork(UnitOfWork):
        async def __aenter__(self) -> Any:
            raise LostConnection("server closed the connection unexpectedly")

    consumer = AsyncConsumer(
        make_bus(), lambda: LostUnitOfWork(Store()), name="c", retries=0, backoff=no_wait
    )
    assert Outcome.retry_later == await consumer.receive(envelope(RegisterBook(id="1", title="x")))


async def test_dead_letters_that_cannot_be_written_give_the_message_back() -> None:
    class Unwritable(AsyncInMemoryDeadLetters):
        async def put(self, raw: bytes, headers: Mapping[str, str], reason: str) -> None:
            raise OSError("disk full")

    consumer = make_consumer(Store(), dead_letters=Unwritable())
    assert Outcome.retry_later == await consumer.receive(b"garbage")


async def test_a_cancelled_receive_rolls_back_and_records_nothing() -> None:
    store, inbox, started = Store(), AsyncInMemoryInbox(), asyncio.Event()
    bus = make_bus()

    async def slow(command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[Any]) -> None:
        transaction.uow.staged.append("slow")
        started.set()
        await asyncio.Event().wait()

    bus.commands_registry.clear()
    bus.add_listener(RegisterBook, slow)
    consumer = AsyncConsumer(bus, lambda: UnitOfWork(store), name="c", inbox=inbox)
    task = asyncio.create_task(consumer.receive(envelope(RegisterBook(id="1", title="x"))))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not store.applied
    assert not inbox.handled


async def test_two_consumers_of_one_name_never_apply_a_message_twice() -> None:
    store, inbox = Store(), AsyncInMemoryInbox()
    bus = make_bus()
    consumers = [
        AsyncConsumer(bus, lambda: UnitOfWork(store), name="shared", inbox=inbox) for _ in range(2)
    ]
    bodies = [envelope(RegisterBook(id=str(n), title="x")) for n in range(50)]

    async def deliver(consumer: AsyncConsumer[UnitOfWork]) -> list[Outcome]:
        outcomes = []
        for body in bodies:  # both get every message, as after a redelivery storm
            outcomes.append(await consumer.receive(body))
            await asyncio.sleep(0)
        return outcomes

    first, second = await asyncio.gather(*(deliver(c) for c in consumers))
    assert {f"register:{n}": 1 for n in range(50)} == store.applied
    assert 50 == [*first, *second].count(Outcome.handled)
    assert 50 == [*first, *second].count(Outcome.duplicate)


async def test_a_gap_in_the_upcasters_stops_the_consumer_at_start() -> None:
    registry = MessageRegistry.from_bus(make_bus())
    registry.upcaster("book_registered", from_version=1)(lambda payload: payload)
    with pytest.raises(ConfigurationError, match="from_version=2"):
        make_consumer(Store(), registry=registry)


async def test_run_reads_a_queue_until_cancelled() -> None:
    store = Store()
    consumer = make_consumer(store)
    queue: asyncio.Queue[tuple[bytes, Mapping[str, str]]] = asyncio.Queue()
    task = asyncio.create_task(consumer.run(queue))
    for n in range(3):
        queue.put_nowait((envelope(RegisterBook(id=str(n), title="x")), {}))
    queue.put_nowait((b"garbage", {}))
    await queue.join()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert {"register:0": 1, "register:1": 1, "register:2": 1} == store.applied
    assert 1 == consumer.stats.dead_lettered


async def test_a_message_being_handled_when_run_is_cancelled_is_put_back() -> None:
    store, started = Store(), asyncio.Event()
    bus = make_bus()

    async def slow_once(
        command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[Any]
    ) -> None:
        transaction.uow.staged.append(f"register:{command.id}")
        if not started.is_set():
            started.set()
            await asyncio.Event().wait()

    bus.commands_registry.clear()
    bus.add_listener(RegisterBook, slow_once)
    consumer = AsyncConsumer(bus, lambda: UnitOfWork(store), name="c")
    queue: asyncio.Queue[tuple[bytes, Mapping[str, str]]] = asyncio.Queue()
    queue.put_nowait((envelope(RegisterBook(id="1", title="x")), {}))
    first = asyncio.create_task(consumer.run(queue))
    await started.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert not store.applied
    second = asyncio.create_task(consumer.run(queue))
    await queue.join()
    second.cancel()
    assert {"register:1": 1} == store.applied


async def test_run_retries_a_message_given_back_before_the_next_one() -> None:
    store, failures = Store(), [ConnectionError("down"), ConnectionError("down")]

    class FlakyUnitOfWork(UnitOfWork):
        async def __aenter__(self) -> Any:
            if failures:
                raise failures.pop()
            return await super().__aenter__()

    consumer = AsyncConsumer(
        make_bus(), lambda: FlakyUnitOfWork(store), name="c", retries=0, backoff=no_wait
    )

    async def source() -> AsyncIterator[tuple[bytes, Mapping[str, str]]]:
        for n in range(2):
            yield envelope(RegisterBook(id=str(n), title="x")), {}

    await consumer.run(source())
    assert {"register:0": 1, "register:1": 1} == store.applied
    assert 2 == consumer.stats.retry_later


def test_retries_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="retries is -1"):
        make_consumer(Store(), retries=-1)


class _Sent(AsyncAbstractEventstreamTransport):
    def __init__(self) -> None:
        self.sent: list[Mapping[str, Any]] = []

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        self.sent.append(message)


class _KeepingStore(AsyncSinkholeMessageStoreRepository):
    """Keeps what it is given to store, and publishes with ``publisher``."""

    def __init__(self, publisher: AsyncEventstreamPublisher) -> None:
        super().__init__(publisher)
        self.kept: list[Message[Any]] = []

    async def add(self, message: Message[Any]) -> None:
        if message is not self.received:
            self.kept.append(message)
        await super().add(message)

    async def add_received(self, message: Message[Any]) -> None:
        self.kept.append(message)


@pytest.mark.parametrize("record_received", [False, True])
async def test_the_received_message_is_never_published_again(record_received: bool) -> None:
    """Its producer published it: the consumer's unit of work sends only what it raised."""
    transport = _Sent()
    stores: list[_KeepingStore] = []

    def uow() -> UnitOfWork:
        unit = UnitOfWork(Store())
        unit.messagestore = _KeepingStore(AsyncEventstreamPublisher(transport))
        stores.append(unit.messagestore)
        return unit

    bus = make_bus()

    async def raise_one(
        event: BookRegistered, transaction: AsyncUnitOfWorkTransaction[Any]
    ) -> None:
        await transaction.uow.messagestore.add(Shelved(id=event.id))

    bus.add_listener(BookRegistered, raise_one)
    consumer = AsyncConsumer(bus, uow, name="projection", record_received=record_received)
    event = BookRegistered(id="1", title="Dune", pages=412)
    assert Outcome.handled == await consumer.receive(envelope(event), {})
    assert ["shelved_v1"] == [sent["type"] for sent in transport.sent]
    [store] = stores
    kept = [type(message).__name__ for message in store.kept]
    assert (["BookRegistered", "Shelved"] if record_received else ["Shelved"]) == kept
    assert store.received is None


class Shelved(Event):
    id: str
    metadata: Metadata = Metadata(name="shelved", schema_version=1, published=True)


class _StoringStore(AsyncAbstractMessageStoreRepository):
    """Overrides _add() only: the bus stores with the base class's add(), inlined."""

    def __init__(self, publisher: AsyncEventstreamPublisher) -> None:
        super().__init__(publisher)
        self.stored: list[Message[Any]] = []

    async def _add(self, message: Message[Any]) -> None:
        self.stored.append(message)


@pytest.mark.parametrize("kind", ["sinkhole", "base"])
async def test_the_stores_whose_add_the_bus_inlines_skip_the_received_message(kind: str) -> None:
    transport = _Sent()
    stores: list[AsyncAbstractMessageStoreRepository] = []

    def uow() -> UnitOfWork:
        unit = UnitOfWork(Store())
        publisher = AsyncEventstreamPublisher(transport)
        unit.messagestore = (
            AsyncSinkholeMessageStoreRepository(publisher)
            if kind == "sinkhole"
            else _StoringStore(publisher)
        )
        stores.append(unit.messagestore)
        return unit

    bus = make_bus()

    async def raise_one(
        event: BookRegistered, transaction: AsyncUnitOfWorkTransaction[Any]
    ) -> None:
        await transaction.uow.messagestore.add(Shelved(id=event.id))

    bus.add_listener(BookRegistered, raise_one)
    consumer = AsyncConsumer(bus, uow, name="projection")
    event = BookRegistered(id="1", title="Dune", pages=412)
    assert Outcome.handled == await consumer.receive(envelope(event), {})
    assert ["shelved_v1"] == [sent["type"] for sent in transport.sent]
    [store] = stores
    if isinstance(store, _StoringStore):
        assert ["Shelved"] == [type(message).__name__ for message in store.stored]
