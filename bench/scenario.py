"""One measured run: handle `RegisterBook` commands and print the latencies as JSON.

This file is a standalone script, not a module of the `bench` package: the parent runs
it once with the interpreter of this source tree and once with the interpreter of a
virtualenv holding `messagebus` 0.16.1 from PyPI. It only uses the public API the two
share, so the same code measures both. `--implementation floor` runs the same work
(same message classes, same handler bodies) written by hand, without the framework.

Per command the timed region is: open the transaction (`async with uow`), handle the
command (its handler stores a `Book` in an in-memory repository and the book raises
`BookRegistered`, which one or ten event handlers receive), commit, close. The
command objects are built before the timed loop.
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

import messagebus
from messagebus import (
    AsyncAbstractRepository,
    AsyncAbstractUnitOfWork,
    AsyncMessageBus,
    AsyncUnitOfWorkTransaction,
    Command,
    Event,
    Metadata,
    Model,
)

FAN_OUT = {"simple": 1, "fanout": 10}
"""How many event handlers receive `BookRegistered`, per scenario."""


class RegisterBook(Command):
    id: str
    title: str
    author: str
    metadata: Metadata = Metadata(name="register_book", schema_version=1)


class BookRegistered(Event):
    id: str
    title: str
    metadata: Metadata = Metadata(name="book_registered", schema_version=1)


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


class InMemoryUnitOfWork(AsyncAbstractUnitOfWork):
    def __init__(self) -> None:
        self.books = InMemoryBookRepository()

    async def commit(self) -> None:
        # The repository writes through: there is nothing left to make durable.
        pass

    async def rollback(self) -> None:
        pass


async def register_book(command: RegisterBook, transaction: AsyncUnitOfWorkTransaction) -> str:
    book = Book(id=command.id, title=command.title, author=command.author)
    book.messages.append(BookRegistered(id=command.id, title=command.title))
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


def bus_runner(
    handlers: list[Callable[..., Awaitable[None]]],
) -> tuple[Callable[[RegisterBook], Awaitable[None]], dict[str, Book]]:
    """Return the per-command coroutine of the framework and its book storage."""
    bus: AsyncMessageBus[Any] = AsyncMessageBus()
    bus.add_listener(RegisterBook, register_book)
    for handler in handlers:
        bus.add_listener(BookRegistered, handler)
    uow = InMemoryUnitOfWork()

    async def run_one(command: RegisterBook) -> None:
        async with uow as transaction:
            await bus.handle(command, transaction)
            await transaction.commit()

    return run_one, uow.books.books


def floor_runner(
    handlers: list[Callable[..., Awaitable[None]]],
) -> tuple[Callable[[RegisterBook], Awaitable[None]], dict[str, Book]]:
    """Return the hand-written equivalent: the same work, called directly."""
    books: dict[str, Book] = {}

    async def run_one(command: RegisterBook) -> None:
        book = Book(id=command.id, title=command.title, author=command.author)
        book.messages.append(BookRegistered(id=command.id, title=command.title))
        books[book.id] = book
        messages = book.messages
        while messages:
            event = messages.pop(0)
            for handler in handlers:
                await handler(event, None)

    return run_one, books


def transaction_runner(
    handlers: list[Callable[..., Awaitable[None]]],
) -> tuple[Callable[[RegisterBook], Awaitable[None]], dict[str, Book]]:
    """The floor inside a transaction of the unit of work: what opening and committing cost."""
    uow = InMemoryUnitOfWork()
    books = uow.books.books

    async def run_one(command: RegisterBook) -> None:
        async with uow as transaction:
            book = Book(id=command.id, title=command.title, author=command.author)
            book.messages.append(BookRegistered(id=command.id, title=command.title))
            books[book.id] = book
            messages = book.messages
            while messages:
                event = messages.pop(0)
                for handler in handlers:
                    await handler(event, transaction)
            await transaction.commit()

    return run_one, books


def repository_runner(
    handlers: list[Callable[..., Awaitable[None]]],
) -> tuple[Callable[[RegisterBook], Awaitable[None]], dict[str, Book]]:
    """Then the command handler stores the book through the transaction's repository.

    The events are taken by hand from the one repository's ``seen``, as a program
    that knows its repositories would: finding them and collecting after every
    handler is left to the bus, the next stage.
    """
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

    return run_one, uow.books.books


def harness_runner(
    handlers: list[Callable[..., Awaitable[None]]],
) -> tuple[Callable[[RegisterBook], Awaitable[None]], dict[str, Book]]:
    """Do nothing per command: what the measuring loop itself costs, to subtract it."""

    async def run_one(command: RegisterBook) -> None:
        pass

    return run_one, {}


RUNNERS = {
    "harness": harness_runner,
    "bus": bus_runner,
    "floor": floor_runner,
    "transaction": transaction_runner,
    "repository": repository_runner,
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
    handlers, calls = make_event_handlers(FAN_OUT[args.scenario])
    run_one, books = RUNNERS[args.implementation](handlers)
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
    result: dict[str, Any] = {
        "implementation": args.implementation,
        "scenario": args.scenario,
        "gc": args.gc,
        "messagebus_version": version("messagebus"),
        "messagebus_file": messagebus.__file__,
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
