"""The consumer's CPU per message, without a broker: decode, upcast, inbox, dispatch, commit.

    python -m bench.consumer [--messages N] [--rounds N] [--instructions] [--loop uvloop]

On PostgreSQL (``MESSAGEBUS_BENCH_PG``), the same envelopes of ``BookRegistered`` version 1
are handled, one transaction each, by:

- **ours**: ``AsyncConsumer.receive()`` with ``AsyncSqlAlchemyInbox`` and
  ``AsyncSqlAlchemyUnitOfWork``; the registry upcasts version 1 to version 2; the event's
  handler upserts a projection row;
- **ours, recorded**: the same with ``record_received=True`` (the received message is
  written to the consumer's message store too: one more ``INSERT``);
- **floor**: hand-written: ``json.loads``, the same upcast as a function, the same
  pydantic class validated, then ``engine.begin()``: the inbox ``INSERT ... ON CONFLICT
  DO NOTHING RETURNING``, the upsert, the commit.

Timed: the process's CPU time per message, best of interleaved rounds. With
``--instructions``: the instructions per message counted by callgrind, each
implementation run with a short and a long loop, the difference kept (start-up,
warm-up left out), minus the same for a do-nothing receiver (building the envelopes,
the loop); they repeat to the per mille whatever the
load. ``--profile`` prints where ours spends its time (cProfile).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import json
import pstats
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import create_async_engine

from bench.e2e import PG_URL, Names, listening, upsert
from messagebus import (
    AsyncMessageBus,
    AsyncUnitOfWorkTransaction,
    Event,
    MessageRegistry,
    MessageSerializer,
    Metadata,
)
from messagebus.adapters.sqlalchemy import AsyncSqlAlchemyInbox, AsyncSqlAlchemyUnitOfWork
from messagebus.consumer import AsyncConsumer

IMPLEMENTATIONS = ("ours", "ours-recorded", "floor")
SHORT, LONG = 300, 1300
_COLLECTED = re.compile(r"Collected : (\d+)")


class BookRegisteredV1(Event):
    id: str
    title: str
    metadata: Metadata = Metadata(name="book_registered", schema_version=1, published=True)


class BookRegistered(Event):
    """Version 2: the title is split into a title and an author."""

    id: str
    title: str
    author: str
    metadata: Metadata = Metadata(name="book_registered", schema_version=2, published=True)


def to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    title, _, author = payload["title"].partition(" by ")
    return {**payload, "title": title, "author": author or "unknown"}


def envelopes(count: int, start: int) -> list[tuple[bytes, dict[str, str]]]:
    serializer = MessageSerializer()
    found = []
    for n in range(start, start + count):
        envelope = dict(
            serializer.serialize_message(BookRegisteredV1(id=str(n), title=f"Book {n} by Me"))
        )
        headers = {
            "message-id": envelope["id"],
            "message-type": envelope["type"],
            "message-created-at": envelope["created_at"],
            "message-stream": "books",
        }
        found.append((json.dumps(envelope).encode(), headers))
    return found


Receive = Callable[[bytes, dict[str, str]], Awaitable[Any]]


def receivers(engine: Any, names: Names) -> dict[str, Receive]:
    _, _, tables, projection = names.tables()
    statement = upsert(projection)

    async def project(event: BookRegistered, transaction: AsyncUnitOfWorkTransaction[Any]) -> None:
        await transaction.uow.connection.execute(
            statement, {"id": event.id, "title": event.title, "versions": 1}
        )

    bus: AsyncMessageBus[Any] = AsyncMessageBus()
    bus.add_listener(BookRegistered, project)
    registry = MessageRegistry()
    registry.register(BookRegistered)
    registry.upcaster("book_registered", from_version=1)(to_v2)

    def consumer(**options: Any) -> AsyncConsumer[Any]:
        return AsyncConsumer(
            bus,
            lambda: AsyncSqlAlchemyUnitOfWork(engine, tables=tables),
            registry,
            name="books",
            inbox=AsyncSqlAlchemyInbox(),
            **options,
        )

    inbox = postgresql.insert(tables.inbox).on_conflict_do_nothing()
    inbox = inbox.returning(tables.inbox.c.message_id)

    async def floor(body: bytes, headers: dict[str, str]) -> None:
        received_at = datetime.now(UTC)
        envelope = json.loads(body)
        payload = json.loads(envelope["payload"])
        if envelope["type"] == "book_registered_v1":
            payload = to_v2(payload)
        payload.update(message_id=envelope["id"], created_at=envelope["created_at"])
        event = BookRegistered.model_validate(payload)
        # What `async with engine.begin()` does, without its shielded task to close.
        connection = await engine.connect()
        try:
            await connection.begin()
            claimed = await connection.execute(
                inbox,
                {
                    "message_id": event.message_id,
                    "consumer": "books",
                    "received_at": received_at,
                    "handled_at": datetime.now(UTC),
                },
            )
            if claimed.first() is not None:
                await connection.execute(
                    statement, {"id": event.id, "title": event.title, "versions": 1}
                )
            await connection.commit()
        finally:
            await connection.close()

    async def harness(body: bytes, headers: dict[str, str]) -> None:
        """Nothing: what the loop and building the envelopes cost, subtracted."""

    return {
        "harness": harness,
        "ours": consumer().receive,
        "ours-recorded": consumer(record_received=True).receive,
        "floor": floor,
    }


async def run(impl: str, warmup: int, count: int, profile: bool) -> float:
    """Handle ``count`` messages after ``warmup``; return the CPU seconds per message."""
    names = Names()
    metadata, *_ = names.tables()
    engine = create_async_engine(PG_URL)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    try:
        receive = receivers(engine, names)[impl]
        for body, headers in envelopes(warmup, 0):
            await receive(body, headers)
        timed = envelopes(count, warmup)
        profiler = cProfile.Profile() if profile else None
        started = time.process_time()
        if profiler is not None:
            profiler.enable()
        for body, headers in timed:
            await receive(body, headers)
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
        return (time.process_time() - started) / count
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await engine.dispose()


def child(args: argparse.Namespace, impl: str, count: int, loop: str | None = None) -> list[str]:
    command = [sys.executable, "-m", "bench.consumer", "--run", impl, str(count)]
    return [*command, "--loop", loop or args.loop]


def instructions(impl: str, args: argparse.Namespace, loop: str | None = None) -> float:
    counts = []
    for count in (SHORT, LONG):
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        command += child(args, impl, count, loop)
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, env={"PYTHONHASHSEED": "0"}
        )
        found = _COLLECTED.search(done.stderr)
        if done.returncode or found is None:
            raise SystemExit(f"{impl} failed under valgrind:\n{done.stderr[-2000:]}")
        counts.append(int(found.group(1)))
    return (counts[1] - counts[0]) / (LONG - SHORT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.consumer", description=__doc__)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--run", nargs=2, metavar=("IMPL", "COUNT"))
    args = parser.parse_args(argv)
    if not listening(PG_URL):
        print(f"skipped: PostgreSQL does not answer at {PG_URL}")
        return 0
    if args.run:
        if args.loop == "uvloop":
            import uvloop

            runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        else:
            runner = asyncio.Runner()
        with runner:
            cpu = runner.run(run(args.run[0], 100, int(args.run[1]), args.profile))
        print(json.dumps({"cpu": cpu}))
        return 0
    if args.instructions:
        if shutil.which("valgrind") is None:
            raise SystemExit("--instructions needs valgrind")
        harness = instructions("harness", args)
        counts = {impl: instructions(impl, args) - harness for impl in IMPLEMENTATIONS}
        print(f"{'implementation':15} {'instr/msg':>10} {'x floor':>8}  ({args.loop})")
        for impl, value in counts.items():
            print(f"{impl:15} {value:10,.0f} {value / counts['floor']:8.2f}")
        if args.loop == "asyncio" and importlib.util.find_spec("uvloop") is not None:
            # The same two, on uvloop: what the event loop costs a message.
            for impl in ("ours", "floor"):
                other = instructions(impl, args, "uvloop") - instructions("harness", args, "uvloop")
                print(
                    f"{impl + ' (uvloop)':15} {other:10,.0f} {other / counts['floor']:8.2f}"
                    f"  uvloop x asyncio: {other / counts[impl]:.2f}"
                )
        return 0
    figures: dict[str, list[float]] = {impl: [] for impl in IMPLEMENTATIONS}
    for _ in range(args.rounds):
        for impl in IMPLEMENTATIONS:
            done = subprocess.run(
                child(args, impl, args.messages), capture_output=True, text=True, check=True
            )
            figures[impl].append(json.loads(done.stdout.splitlines()[-1])["cpu"] * 1e6)
    print(f"{'implementation':15} {'cpu us/msg':>10} {'x floor':>8}  ({args.loop}, best of rounds)")
    for impl, values in figures.items():
        print(f"{impl:15} {min(values):10.0f} {min(values) / min(figures['floor']):8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
