"""One measured run: handle `RegisterBook` commands and print the latencies as JSON.

This file is a standalone script, not a module of the `bench` package: the parent runs
it once with the interpreter of this source tree and once with the interpreter of a
virtualenv holding `messagebus` 0.16.1 from PyPI. It only uses the public API the two
share, so the same code measures both. `--implementation floor` runs the same work
(same message classes, same handler bodies) written by hand, without the framework.

Per command the timed region is: open the transaction (`async with uow`), handle the
command (its handler stores a `Book` in an in-memory repository and the book raises
`BookRegistered`, which one or ten event handlers receive), commit, close. In the
*recording* scenario the unit of work also keeps every message in a list, publishes
the published ones to an in-memory transport after the commit, and counts in Prometheus
metrics. The command objects are built before the timed loop.

The floor is the least hand-written code with the same semantics: a transaction context
manager that must be committed, the same command handler called as a function, the
events of the models its repository saw dispatched to their handlers in order, then the
commit; in *recording*, it keeps, serializes and counts the same messages by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import platform
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

from prometheus_client import CollectorRegistry

import messagebus
from messagebus import (
    AsyncAbstractEventstreamTransport,
    AsyncAbstractMessageStoreRepository,
    AsyncAbstractRepository,
    AsyncAbstractUnitOfWork,
    AsyncEventstreamPublisher,
    AsyncMessageBus,
    AsyncUnitOfWorkTransaction,
    Command,
    Event,
    Metadata,
    Model,
)
from messagebus.adapters.prometheus.metrics_store import MetricsStore
from messagebus.service.eventstream import MessageSerializer

FAN_OUT = {"simple": 1, "fanout": 10, "recording": 1}
"""How many event handlers receive `BookRegistered`, per scenario."""
RECORDING = {"recording"}
"""The scenarios whose unit of work records messages, publishes and counts metrics."""


class RegisterBook(Command):
    id: str
    title: str
    author: str
    metadata: Metadata = Metadata(name="register_book", schema_version=1)


class BookRegistered(Event):
    id: str
    title: str
    metadata: Metadata = Metadata(name="book_registered", schema_version=1)


class BookRegisteredPublished(Event):
    """The event of the *recording* scenario: published, so it goes to the transport."""

    id: str
    title: str
    metadata: Metadata = Metadata(name="book_registered", schema_version=1, published=True)


EVENTS: dict[str, type[Event]] = {
    "simple": BookRegistered,
    "fanout": BookRegistered,
    "recording": BookRegisteredPublished,
}
"""The event the command handler raises, per scenario."""
event_class: type[Event] = BookRegistered
"""The event of the scenario being run, set by `measure()` before the runners are built."""


class Book(Model):
    id: str
    title: str
    author: str


class InMemoryBookRepository(AsyncAbstractRepository[Book]):
    def __init__(self) -> None:
        super().__init__()
        self.books: dict[str, Book] = {}

    async def add(self, book: Book) -> None:
        self.books[book.id] = book
        self.seen.append(book)


class ListTransport(AsyncAbstractEventstreamTransport):
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send_message_serialized(self, message: Any) -> None:
        self.sent.append(message)


class ListMessageStore(AsyncAbstractMessageStoreRepository):
    def __init__(self, publisher: AsyncEventstreamPublisher) -> None:
        super().__init__(publisher)
        self.messages: list[Any] = []

    async def _add(self, message: Any) -> None:
        self.messages.append(message)


class InMemoryUnitOfWork(AsyncAbstractUnitOfWork):
    def __init__(self, recording: bool = False) -> None:
        self.books = InMemoryBookRepository()
        if recording:
            self.transport = ListTransport()
            self.messagestore = ListMessageStore(AsyncEventstreamPublisher(self.transport))
            self.metrics_store = MetricsStore(registry=CollectorRegistry())

    async def commit(self) -> None:
        # The repository writes through: there is nothing left to make durable.
        pass

    async def rollback(self) -> None:
        pass


async def register_book(command: RegisterBook, transaction: AsyncUnitOfWorkTransaction) -> str:
    book = Book(id=command.id, title=command.title, author=command.author)
    book.messages.append(event_class(id=command.id, title=command.title))  # type: ignore[call-arg]
    await transaction.books.add(book)
    return book.id


def make_event_handlers(count: int) -> tuple[list[Callable[..., Awaitable[None]]], list[int]]:
    """Return `count` distinct event handlers and the list of how often each ran."""
    calls = [0] * count

    def make(index: int) -> Callable[..., Awaitable[None]]:
        async def on_book_registered(event: BookRegistered, transaction: Any) -> None:
            calls[index] += 1

        on_book_registered.__qualname__ = f"on_book_registered_{index}"
        return on_book_registered

    return [make(index) for index in range(count)], calls


Runner = tuple[Callable[[RegisterBook], Awaitable[None]], dict[str, Book], Callable[[], int]]
"""The per-command coroutine, the books it stored, and how many messages it recorded."""


def bus_runner(handlers: list[Callable[..., Awaitable[None]]], recording: bool) -> Runner:
    """Return the per-command coroutine of the framework and its book storage."""
    bus: AsyncMessageBus[Any] = AsyncMessageBus()
    bus.add_listener(RegisterBook, register_book)
    for handler in handlers:
        bus.add_listener(event_class, handler)
    uow = InMemoryUnitOfWork(recording)

    async def run_one(command: RegisterBook) -> None:
        async with uow as transaction:
            await bus.handle(command, transaction)
            await transaction.commit()

    def recorded() -> int:
        return len(uow.messagestore.messages) + len(uow.transport.sent) if recording else 0

    return run_one, uow.books.books, recorded


class FloorTransaction:
    """The least a transaction is: it holds the repository and must be committed."""

    __slots__ = ("books", "committed")

    def __init__(self, books: InMemoryBookRepository) -> None:
        self.books = books
        self.committed = False

    async def __aenter__(self) -> FloorTransaction:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if not self.committed and exc_info[0] is None:
            raise RuntimeError("the transaction was not committed")

    async def commit(self) -> None:
        self.committed = True


def floor_runner(handlers: list[Callable[..., Awaitable[None]]], recording: bool) -> Runner:
    """Return the hand-written equivalent: the same semantics, without the framework."""
    repository = InMemoryBookRepository()
    seen = repository.seen
    if recording:
        return recording_floor_runner(handlers, repository)

    async def run_one(command: RegisterBook) -> None:
        async with FloorTransaction(repository) as transaction:
            await register_book(command, transaction)  # type: ignore[arg-type]
            conversation = command.correlation_id or command.message_id
            for book in seen:
                for event in book.messages:
                    # The command caused the event: what the bus records, by hand.
                    fields = event.__dict__
                    fields["causation_id"] = command.message_id
                    fields["correlation_id"] = conversation
                    for handler in handlers:
                        await handler(event, transaction)
                book.messages.clear()
            seen.clear()
            await transaction.commit()

    return run_one, repository.books, lambda: 0


def recording_floor_runner(
    handlers: list[Callable[..., Awaitable[None]]], repository: InMemoryBookRepository
) -> Runner:
    """The floor that also keeps, publishes and counts the messages, by hand."""
    seen = repository.seen
    stored: list[Any] = []
    sent: list[Any] = []
    serialize = MessageSerializer().serialize_message
    metrics = MetricsStore(registry=CollectorRegistry())
    started, in_progress = metrics.transactions_started_total, metrics.transactions_in_progress
    committed = metrics.transactions_closed_total.labels(status="committed")
    processed = {
        cls: metrics.messages_processed_total.labels(
            name=cls.model_fields["metadata"].default.name, version=1
        )
        for cls in (RegisterBook, event_class)
    }
    timer = metrics.command_processing_seconds.labels(name="register_book", version=1)

    async def run_one(command: RegisterBook) -> None:
        started.inc()
        in_progress.inc()
        published = []
        async with FloorTransaction(repository) as transaction:
            with timer.time():
                processed[RegisterBook].inc()
                await register_book(command, transaction)  # type: ignore[arg-type]
                conversation = command.correlation_id or command.message_id
                for book in seen:
                    for event in book.messages:
                        fields = event.__dict__
                        fields["causation_id"] = command.message_id
                        fields["correlation_id"] = conversation
                        processed[type(event)].inc()
                        for handler in handlers:
                            await handler(event, transaction)
                        stored.append(event)
                        published.append(event)
                    book.messages.clear()
                seen.clear()
                stored.append(command)
            await transaction.commit()
        committed.inc()
        in_progress.dec()
        for event in published:
            sent.append(serialize(event))

    return run_one, repository.books, lambda: len(stored) + len(sent)


def transaction_runner(handlers: list[Callable[..., Awaitable[None]]], recording: bool) -> Runner:
    """Our unit of work and transaction, with the events dispatched by hand: no bus."""
    uow = InMemoryUnitOfWork()
    seen = uow.books.seen

    async def run_one(command: RegisterBook) -> None:
        async with uow as transaction:
            await register_book(command, transaction)
            for book in seen:
                for event in book.messages:
                    for handler in handlers:
                        await handler(event, transaction)
                book.messages.clear()
            seen.clear()
            await transaction.commit()

    return run_one, uow.books.books, lambda: 0


def harness_runner(handlers: list[Callable[..., Awaitable[None]]], recording: bool) -> Runner:
    """Do nothing per command: what the measuring loop itself costs, to subtract it."""

    async def run_one(command: RegisterBook) -> None:
        pass

    return run_one, {}, lambda: 0


RUNNERS: dict[str, Callable[[list[Callable[..., Awaitable[None]]], bool], Runner]] = {
    "harness": harness_runner,
    "bus": bus_runner,
    "floor": floor_runner,
    "transaction": transaction_runner,
}


async def drive(
    run_one: Callable[[RegisterBook], Awaitable[None]],
    prefix: str,
    count: int,
    profiler: cProfile.Profile | None = None,
) -> tuple[list[int], int, int]:
    """Run `count` commands; return each one's latency, the wall and the CPU time (ns).

    The commands are built first, so the loop holds only the measured work. The CPU
    time is this thread's (nothing else runs in it): unlike the wall time, it does not
    count the moments when the process was preempted by others.
    """
    commands = [
        RegisterBook(id=f"{prefix}{index}", title="Dune", author="Frank Herbert")
        for index in range(count)
    ]
    clock = time.perf_counter_ns
    latencies = [0] * count
    if profiler is not None:
        profiler.enable()
    cpu_started = time.thread_time_ns()
    started = clock()
    for index, command in enumerate(commands):
        before = clock()
        await run_one(command)
        latencies[index] = clock() - before
    wall_ns = clock() - started
    cpu_ns = time.thread_time_ns() - cpu_started
    if profiler is not None:
        profiler.disable()
    return latencies, wall_ns, cpu_ns


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    global event_class
    event_class = EVENTS[args.scenario]
    handlers, calls = make_event_handlers(FAN_OUT[args.scenario])
    recording = args.scenario in RECORDING
    run_one, books, recorded = RUNNERS[args.implementation](handlers, recording)
    await drive(run_one, "warmup-", args.warmup)

    gc.collect()
    if args.gc == "disabled":
        gc.disable()
    else:
        gc.freeze()  # what was built before the clock starts is not scanned again
    profiler = cProfile.Profile() if args.profile else None
    latencies, wall_ns, cpu_ns = await drive(run_one, "book-", args.commands, profiler)
    gc.enable()
    gc.unfreeze()

    expected = args.warmup + args.commands
    if args.implementation == "harness":
        pass
    elif len(books) != expected or any(count != expected for count in calls):
        raise SystemExit(
            f"{args.implementation} did not do the work: {len(books)} books stored and "
            f"event handler calls {sorted(set(calls))}, expected {expected} of each"
        )
    elif recording and args.implementation != "transaction" and recorded() != 3 * expected:
        raise SystemExit(
            f"{args.implementation} did not record the work: {recorded()} messages stored "
            f"and sent, expected {3 * expected} (a command and an event stored, one sent)"
        )
    result: dict[str, Any] = {
        "implementation": args.implementation,
        "scenario": args.scenario,
        "gc": args.gc,
        "messagebus_version": version("messagebus"),
        "messagebus_file": messagebus.__file__,
        # Tracing is off unless instrument() is called: the API is not even imported.
        "opentelemetry_imported": any(
            name == "opentelemetry" or name.startswith("opentelemetry.") for name in sys.modules
        ),
        "pydantic_version": version("pydantic"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "commands": args.commands,
        "wall_ns": wall_ns,
        "cpu_ns": cpu_ns,
        "latencies_ns": latencies,
    }
    if profiler is not None:
        result["profile"] = profile_rows(profiler)
    return result


def profile_rows(profiler: cProfile.Profile) -> list[dict[str, Any]]:
    """Return the profile as rows: function, file, calls, own and cumulative time (s)."""
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (filename, line, function), (_, calls, own, cumulative, _) in stats.stats.items():
        rows.append(
            {
                "function": function,
                "file": filename,
                "line": line,
                "calls": calls,
                "own_s": own,
                "cumulative_s": cumulative,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--implementation", choices=sorted(RUNNERS), default="bus")
    parser.add_argument("--scenario", choices=sorted(FAN_OUT), default="simple")
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--gc", choices=["disabled", "enabled"], default="disabled")
    parser.add_argument("--profile", action="store_true", help="add a cProfile of the run")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
