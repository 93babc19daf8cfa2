"""End to end over a real broker: outbox, relay, broker, consumer, inbox, projection.

    python -m bench.e2e [--quick] [--rounds N] [--messages N] [--uvloop] [--loop asyncio|uvloop]
                        [redis rabbit nats]

For each broker listening on loopback (PostgreSQL must answer too), two implementations
do the same work, in interleaved rounds:

- **ours**: a writer commits ``BookRegistered`` events through
  ``AsyncSqlAlchemyUnitOfWork`` (outbox on); ``AsyncOutboxRelay`` sends the outbox rows
  with ``FastStreamTransport``; in another process, ``subscribe()`` feeds an
  ``AsyncConsumer`` (SQL inbox, SQL unit of work) whose handler upserts a projection row.
- **floor**: the same writer; a hand-written publisher that reads the outbox table in
  batches of 100, publishes each row with ``broker.publish()`` and marks the batch
  delivered; in another process, a hand-written FastStream subscriber (same subscription
  options: one message at a time, manual acknowledgement) that, in one PostgreSQL
  transaction per message, validates the event, inserts the inbox row and upserts the
  projection, then acknowledges.

Each round, per implementation: the consumer process starts and subscribes; the writer
commits ``--messages`` events; the publisher starts, and the rate is the messages over the
time from its start to the consumer's last commit (*msg/s*). The consumer's CPU time per
message is its process's CPU time from its first message to its last, over the messages
(*cpu us*). Then, once the consumer has handled them all, at a moderate rate (``--rate``,
150/s), the writer commits ``--latency-messages`` more, one by one, with the publisher
running: the latency of each is
from the writer's commit to the consumer's commit (*p50*, *p99*; perf_counter is
system-wide, so the two processes' clocks agree). The p50 is split in three, each the
median over the messages and then over the rounds: *relay*, from the commit until the
publisher hands the message to the broker's client; *broker*, from then until the
consumer's handler receives it; *consumer*, the rest of the p50, until its commit.

Every run checks that each message was committed once in the projection and the inbox.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from messagebus import AsyncMessageBus, AsyncUnitOfWorkTransaction, Event, Metadata
from messagebus.adapters.sqlalchemy import (
    AsyncOutboxRelay,
    AsyncSqlAlchemyInbox,
    AsyncSqlAlchemyUnitOfWork,
    MessagebusTables,
    messagebus_tables,
)

PG_URL = os.environ.get("MESSAGEBUS_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
URLS = {
    "redis": "redis://127.0.0.1:6379",
    "rabbit": "amqp://guest:guest@127.0.0.1:5672/",
    "nats": "nats://127.0.0.1:4222",
}
IMPLEMENTATIONS = ("ours", "floor", "ours+uvloop")
"""ours+uvloop: ours, with the consumer process on uvloop (the publisher is the same)."""
BATCH = 100


class BookRegistered(Event):
    id: str
    title: str
    metadata: Metadata = Metadata(name="book_registered", schema_version=1, published=True)


def listening(url: str) -> bool:
    host_port = url.rstrip("/").rsplit("@", 1)[-1].split("//")[-1].split("/")[0]
    host, _, port = host_port.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=1).close()
    except OSError:
        return False
    return True


@dataclass
class Names:
    """The tables and broker names of one run, unique so that runs never meet."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def destination(self) -> str:
        return f"bench{self.tag}"

    @property
    def group(self) -> str:
        return f"books{self.tag}"

    def tables(self) -> tuple[MetaData, MessagebusTables, MessagebusTables, Table]:
        metadata = MetaData()
        producer = messagebus_tables(metadata, prefix=f"b{self.tag}p_")
        consumer = messagebus_tables(metadata, prefix=f"b{self.tag}c_")
        projection = Table(
            f"b{self.tag}_books",
            metadata,
            Column("id", String(64), primary_key=True),
            Column("title", String(200), nullable=False),
            Column("versions", Integer, nullable=False),
        )
        return metadata, producer, consumer, projection


def upsert(projection: Table) -> Any:
    statement = postgresql.insert(projection)
    return statement.on_conflict_do_update(
        index_elements=[projection.c.id],
        set_={"title": statement.excluded.title, "versions": projection.c.versions + 1},
    )


# The consumer process ---------------------------------------------------------------


async def consume(  # noqa: PLR0915 - two consumers side by side
    kind: str, impl: str, tag: str, expected: int
) -> None:
    """Subscribe, say ``ready``, handle ``expected`` messages, print the figures as JSON."""
    from faststream import AckPolicy, Context, StreamMessage

    from messagebus.adapters.faststream import broker_from_url, subscribe

    names = Names(tag)
    _, _, consumer_tables, projection = names.tables()
    engine = create_async_engine(PG_URL)
    # FastStream logs each message at INFO, on stdout: the figures go there.
    broker = broker_from_url(URLS[kind], log_level=logging.DEBUG)
    committed: dict[str, float] = {}
    received: dict[str, float] = {}
    cpu: list[float] = []
    done = asyncio.Event()

    def record(message_id: str) -> None:
        committed[message_id] = time.perf_counter()
        if len(committed) == expected:
            cpu.append(time.process_time())
            done.set()

    if impl.startswith("ours"):
        bus: AsyncMessageBus[Any] = AsyncMessageBus()
        statement = upsert(projection)

        async def project(
            event: BookRegistered, transaction: AsyncUnitOfWorkTransaction[Any]
        ) -> None:
            await transaction.uow.connection.execute(
                statement, {"id": event.id, "title": event.title, "versions": 1}
            )

        bus.add_listener(BookRegistered, project)
        from messagebus.consumer import AsyncConsumer

        consumer = AsyncConsumer(
            bus,
            lambda: AsyncSqlAlchemyUnitOfWork(engine, tables=consumer_tables),
            name=names.group,
            inbox=AsyncSqlAlchemyInbox(),
            **_consumer_options(),
        )
        receive = consumer.receive

        async def timed(body: bytes | str, headers: Any = None) -> Any:
            if not cpu:
                cpu.append(time.process_time())
            received[headers["message-id"]] = time.perf_counter()
            outcome = await receive(body, headers)
            record(headers["message-id"])
            return outcome

        consumer.receive = timed  # type: ignore[method-assign]
        subscribe(broker, consumer, source=names.destination, group=names.group, jetstream=tag)
    else:
        inbox = postgresql.insert(consumer_tables.inbox).on_conflict_do_nothing()
        inbox = inbox.returning(consumer_tables.inbox.c.message_id)
        statement = upsert(projection)

        async def on_message(message: Annotated[StreamMessage[Any], Context("message")]) -> None:
            if not cpu:
                cpu.append(time.process_time())
            received[message.headers["message-id"]] = time.perf_counter()
            received_at = datetime.now(UTC)
            envelope = json.loads(message.body)
            event = BookRegistered.model_validate(
                dict(
                    json.loads(envelope["payload"]),
                    message_id=envelope["id"],
                    created_at=envelope["created_at"],
                )
            )
            # What `async with engine.begin()` does, without its shielded task to close.
            connection = await engine.connect()
            try:
                await connection.begin()
                claimed = await connection.execute(
                    inbox,
                    {
                        "message_id": event.message_id,
                        "consumer": names.group,
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
            record(envelope["id"])  # committed: where ours records it too
            await message.ack()

        options: dict[str, Any] = {"ack_policy": AckPolicy.MANUAL}
        args, kwargs = _floor_subscription(kind, names)
        broker.subscriber(*args, **kwargs, **options)(on_message)
    await broker.start()
    print("ready", flush=True)
    await done.wait()
    await broker.stop()
    await engine.dispose()
    times = sorted(committed.values())
    print(
        json.dumps(
            {
                "committed": committed,
                "received": received,
                "cpu": (cpu[-1] - cpu[0]) / max(expected - 1, 1),
                "first": times[0],
            }
        ),
        flush=True,
    )


def _consumer_options() -> dict[str, Any]:
    """The consumer options that the installed version knows of (see ``record``)."""
    import inspect

    from messagebus.consumer import AsyncConsumer

    if "record_received" in inspect.signature(AsyncConsumer).parameters:
        return {"record_received": False}
    return {}


def _floor_subscription(kind: str, names: Names) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """What a FastStream user writes to read the destination one message at a time."""
    if kind == "redis":
        from faststream.redis import StreamSub

        stream = StreamSub(names.destination, group=names.group, consumer="floor", max_records=1)
        return (), {"stream": stream}
    if kind == "rabbit":
        from faststream.rabbit import Channel, RabbitQueue

        return (RabbitQueue(names.destination, durable=True),), {
            "channel": Channel(prefetch_count=1)
        }
    from faststream.nats import JStream, PullSub

    return (names.destination,), {
        "stream": JStream(names.tag, subjects=[names.destination]),
        "durable": names.group,
        "pull_sub": PullSub(batch_size=1, timeout=1.0),
    }


# The writer and the publishers, in this process --------------------------------------


class Writer:
    """Commits ``BookRegistered`` events through the SQL unit of work, one per transaction."""

    def __init__(self, engine: AsyncEngine, tables: MessagebusTables, wake: asyncio.Event) -> None:
        self.uow = AsyncSqlAlchemyUnitOfWork(engine, tables=tables)
        self.bus: AsyncMessageBus[Any] = AsyncMessageBus()
        self.committed: dict[str, float] = {}
        self.wake = wake

    async def write(self, count: int, start: int, interval: float = 0.0) -> None:
        for n in range(start, start + count):
            event = BookRegistered(id=str(n), title=f"Book {n}")
            async with self.uow as transaction:
                await self.bus.handle(event, transaction)
                await transaction.commit()
            self.committed[str(event.message_id)] = time.perf_counter()
            self.wake.set()
            if interval:
                await asyncio.sleep(interval)


async def floor_publisher(
    engine: AsyncEngine, outbox: Table, publish: Callable[..., Awaitable[None]], wake: asyncio.Event
) -> None:
    """Read the pending rows in batches, publish each, mark the batch delivered; repeat."""
    pending = (
        select(outbox.c.id, outbox.c.stream, outbox.c.payload)
        .where(outbox.c.delivered_at.is_(None))
        .order_by(outbox.c.id)
        .limit(BATCH)
    )
    while True:
        wake.clear()  # before reading: a commit from now on wakes the wait below
        async with engine.begin() as connection:
            rows = (await connection.execute(pending)).all()
            for _, stream, payload in rows:
                body = json.dumps(payload, separators=(",", ":")).encode()
                headers = {
                    "message-id": payload["id"],
                    "message-type": payload["type"],
                    "message-created-at": payload["created_at"],
                    "message-stream": stream,
                }
                await publish(body, headers)
            if rows:
                await connection.execute(
                    update(outbox)
                    .where(outbox.c.id.in_([row[0] for row in rows]))
                    .values(delivered_at=datetime.now(UTC), attempts=outbox.c.attempts + 1)
                )
        if len(rows) < BATCH:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), 1.0)


def raw_publisher(
    kind: str, broker: Any, destination: str, jetstream: str
) -> Callable[..., Awaitable[None]]:
    async def publish(body: bytes, headers: dict[str, str]) -> None:
        if kind == "redis":
            await broker.publish(body, stream=destination, headers=headers)
        elif kind == "rabbit":
            await broker.publish(body, queue=destination, headers=headers, persist=True)
        else:
            await broker.publish(body, destination, headers=headers, stream=jetstream)

    return publish


async def prepare_broker(kind: str, broker: Any, names: Names) -> None:
    """Create the destination (and the Redis group at its start) before anything runs."""
    if kind == "redis":
        client = await broker.connect()
        await client.xgroup_create(names.destination, names.group, id="0", mkstream=True)
    elif kind == "rabbit":
        from faststream.rabbit import RabbitQueue

        await broker.declare_queue(RabbitQueue(names.destination, durable=True))
    else:
        await broker.connection.jetstream().add_stream(name=names.tag, subjects=[names.destination])


async def cleanup_broker(kind: str, broker: Any, names: Names) -> None:
    try:
        if kind == "redis":
            await (await broker.connect()).delete(names.destination)
        elif kind == "rabbit":
            import aio_pika

            connection = await aio_pika.connect(URLS["rabbit"])
            async with connection:
                channel = await connection.channel()
                await channel.queue_delete(names.destination)
        else:
            await broker.connection.jetstream().delete_stream(names.tag)
    except Exception as exc:  # a leftover is not worth a failed run
        print(f"  (cleanup of {kind} {names.destination} failed: {exc!r})", file=sys.stderr)


async def wait_until_handled(
    engine: AsyncEngine, projection: Table, count: int, timeout: float
) -> None:
    """Wait until the consumer has written ``count`` rows of the projection."""
    deadline = time.perf_counter() + timeout
    while True:
        async with engine.connect() as connection:
            handled = (
                await connection.execute(select(func.count()).select_from(projection))
            ).scalar_one()
        if handled >= count:
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the consumer handled {handled} of {count} in {timeout} s")
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # its last acknowledgements


def _figures_line(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("{"):
            return line
    raise RuntimeError("the consumer exited without its figures")


@dataclass
class Run:
    published: float
    """The rate at which the publisher emptied the outbox (to 20 ms)."""
    rate: float
    cpu_us: float
    p50_ms: float
    p99_ms: float
    split_ms: list[float]
    """The p50's parts: commit to publish (relay), publish to receipt (broker), the rest."""
    errors: list[str]


async def one_run(  # noqa: PLR0915 - one scenario, step by step
    kind: str, impl: str, args: argparse.Namespace
) -> Run:
    from messagebus.adapters.faststream import FastStreamTransport, broker_from_url

    names = Names()
    metadata, producer, consumer_tables, projection = names.tables()
    engine = create_async_engine(PG_URL)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    broker = broker_from_url(URLS[kind])
    await broker.connect()
    child: subprocess.Popen[str] | None = None
    errors: list[str] = []
    try:
        await prepare_broker(kind, broker, names)
        total = args.messages + args.latency_messages
        loop = "uvloop" if impl.endswith("uvloop") else args.loop
        command = [sys.executable, "-m", "bench.e2e", "--consume", kind, impl, names.tag]
        command += [str(total), "--loop", loop]
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        ready = await asyncio.to_thread(child.stdout.readline)
        while ready and ready.strip() != "ready":
            ready = await asyncio.to_thread(child.stdout.readline)
        if not ready:
            raise RuntimeError(f"the {impl} consumer did not start")
        wake = asyncio.Event()
        writer = Writer(engine, producer, wake)
        await writer.write(args.messages, 0)
        writer.committed.clear()
        sent: dict[str, float] = {}  # when each message was handed to the broker
        if impl != "floor":
            transport = FastStreamTransport(
                broker,
                destination=names.destination,
                jetstream=names.tag if kind == "nats" else None,
            )
            send_envelope = transport.send_envelope

            async def timed_send(envelope: Any, *, stream: str | None) -> None:
                sent[envelope["id"]] = time.perf_counter()
                await send_envelope(envelope, stream=stream)

            transport.send_envelope = timed_send  # type: ignore[method-assign]
            relay = AsyncOutboxRelay(
                engine, transport, outbox=producer.outbox, batch_size=BATCH, progress_interval=None
            )
            started = time.perf_counter()
            task = asyncio.create_task(relay.run())
            stop: Callable[[], None] = relay.stop
        else:
            raw = raw_publisher(kind, broker, names.destination, names.tag)

            async def publish(body: bytes, headers: dict[str, str]) -> None:
                sent[headers["message-id"]] = time.perf_counter()
                await raw(body, headers)

            started = time.perf_counter()
            task = asyncio.create_task(floor_publisher(engine, producer.outbox, publish, wake))
            stop = task.cancel
        # Latency: wait until the consumer caught up (the outbox is empty), then trickle.
        outbox = producer.outbox
        while True:
            async with engine.connect() as connection:
                left = (
                    await connection.execute(
                        select(func.count()).where(outbox.c.delivered_at.is_(None))
                    )
                ).scalar_one()
            if task.done():
                task.result()  # raises what stopped it
                raise RuntimeError("the publisher stopped")
            if not left:
                published = time.perf_counter()
                break
            await asyncio.sleep(0.02)
        # The consumer catches up before the latency part, which would otherwise measure
        # the queue behind the backlog on a slow machine rather than one message's way.
        await wait_until_handled(engine, projection, args.messages, args.timeout)
        await writer.write(args.latency_messages, args.messages, 1 / args.rate)
        line = await asyncio.wait_for(asyncio.to_thread(_figures_line, child), args.timeout)
        stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        figures = json.loads(line)
        committed: dict[str, float] = figures["committed"]
        ordered = sorted(committed.values())
        rate = args.messages / (ordered[args.messages - 1] - started)
        latencies = [
            (committed[message_id] - at) * 1000
            for message_id, at in writer.committed.items()
            if message_id in committed
        ]
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        received: dict[str, float] = figures["received"]
        steps = [
            (sent[message_id] - at, received[message_id] - sent[message_id])
            for message_id, at in writer.committed.items()
            if message_id in committed and message_id in sent
        ]
        split = [statistics.median(step) * 1000 for step in zip(*steps, strict=True)]
        split.append(statistics.median(latencies) - sum(split))
        async with engine.connect() as connection:
            books = (
                await connection.execute(select(func.count()).select_from(projection))
            ).scalar_one()
            inbox = (
                await connection.execute(select(func.count()).select_from(consumer_tables.inbox))
            ).scalar_one()
            twice = (
                await connection.execute(select(func.count()).where(projection.c.versions != 1))
            ).scalar_one()
        if (books, inbox, twice) != (total, total, 0):
            errors.append(f"{books} books, {inbox} inbox rows, {twice} twice, of {total}")
        published_rate = args.messages / (published - started)
        return Run(published_rate, rate, figures["cpu"] * 1e6, cuts[49], cuts[98], split, errors)
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        await cleanup_broker(kind, broker, names)
        await broker.stop()
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await engine.dispose()


@dataclass
class Result:
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def best(self, impl: str, attribute: str, *, lowest: bool) -> float:
        values = [getattr(run, attribute) for run in self.runs[impl]]
        return min(values) if lowest else max(values)

    def ratios(self, attribute: str, impl: str = "ours", to: str = "floor") -> list[float]:
        """``impl`` / ``to`` of each round (same round, same load)."""
        return [
            getattr(mine, attribute) / getattr(theirs, attribute)
            for mine, theirs in zip(self.runs[impl], self.runs[to], strict=True)
        ]


def implementations(args: argparse.Namespace) -> tuple[str, ...]:
    return IMPLEMENTATIONS if args.uvloop else IMPLEMENTATIONS[:2]


async def bench(kind: str, args: argparse.Namespace) -> Result:
    impls = implementations(args)
    result = Result({impl: [] for impl in impls})
    for round_ in range(args.rounds):
        order = impls if round_ % 2 == 0 else impls[::-1]
        for impl in order:
            run = await one_run(kind, impl, args)
            result.runs[impl].append(run)
            for error in run.errors:
                print(f"  CHECK FAILED {kind} {impl}: {error}")
    return result


def check(name: str, ratio: float, target: float, *, at_least: bool, spread: list[float]) -> bool:
    ok = ratio >= target if at_least else ratio <= target
    sign = ">=" if at_least else "<="
    low, high = min(spread), max(spread)
    print(
        f"  {'PASS' if ok else 'MISS'}  {name}: {ratio:.2f} (target {sign} {target}; "
        f"rounds {low:.2f}-{high:.2f})"
    )
    return ok


async def publish_rates(kind: str, args: argparse.Namespace) -> tuple[float, float]:
    from bench import brokers

    rates = await brokers.bench(kind, args.publish_messages, args.rounds)
    return rates["raw"], rates["transport"]


async def broker_section(kind: str, args: argparse.Namespace) -> tuple[bool, bool]:
    """Measure one broker, print its table and checks; return (targets met, no errors)."""
    result = await bench(kind, args)
    print(
        f"{'broker':7} {'impl':12} {'pub/s':>7} {'msg/s':>7} {'cpu us':>7} {'p50 ms':>7} "
        f"{'p99 ms':>7}  p50 split: relay, broker, consumer (ms; median of rounds)"
    )
    for impl, runs in result.runs.items():
        parts = zip(*(run.split_ms for run in runs), strict=True)
        split = [statistics.median(part) for part in parts]
        print(
            f"{kind:7} {impl:12} {result.best(impl, 'published', lowest=False):7.0f} "
            f"{result.best(impl, 'rate', lowest=False):7.0f} "
            f"{result.best(impl, 'cpu_us', lowest=True):7.0f} "
            f"{result.best(impl, 'p50_ms', lowest=True):7.2f} "
            f"{result.best(impl, 'p99_ms', lowest=True):7.2f}  "
            + " / ".join(f"{part:.2f}" for part in split)
        )
    slowest = min(run.rate for runs in result.runs.values() for run in runs)
    if slowest < 2 * args.rate:
        print(
            f"  note: a round ran at {slowest:.0f} msg/s, under twice the latency part's "
            f"{args.rate:.0f}/s: its latencies include queueing (a busy machine?)"
        )
    raw, transport = await publish_rates(kind, args)
    print(f"{kind:7} publish one at a time: raw {raw:.0f} msg/s, transport {transport:.0f} msg/s")
    ok = True
    rates = result.ratios("rate")
    name = f"{kind}: end to end msg/s, x floor"
    ok &= check(name, statistics.median(rates), 0.85, at_least=True, spread=rates)
    p50 = result.ratios("p50_ms")
    name = f"{kind}: p50 latency at {args.rate:.0f} msg/s, x floor"
    ok &= check(name, statistics.median(p50), 1.2, at_least=False, spread=p50)
    name = f"{kind}: transport publish msg/s, x raw FastStream"
    ok &= check(name, transport / raw, 0.9, at_least=True, spread=[transport / raw])
    cpu = result.ratios("cpu_us")
    name = f"{kind}: consumer cpu/msg, x floor"
    ok &= check(name, statistics.median(cpu), 1.2, at_least=False, spread=cpu)
    if "ours+uvloop" in result.runs:
        gain = result.ratios("cpu_us", "ours+uvloop", "ours")
        print(
            f"  info  {kind}: consumer cpu/msg on uvloop, x asyncio: {statistics.median(gain):.2f} "
            f"(rounds {min(gain):.2f}-{max(gain):.2f})"
        )
    clean = not any(run.errors for runs in result.runs.values() for run in runs)
    return ok, clean


# The relay's CPU time per message on each event loop ----------------------------------


async def relay_cpu(kind: str, count: int) -> None:
    """Deliver ``count`` outbox rows with the relay; print its CPU time per message."""
    from messagebus.adapters.faststream import FastStreamTransport, broker_from_url

    names = Names()
    metadata, producer, _, _ = names.tables()
    engine = create_async_engine(PG_URL)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    broker = broker_from_url(URLS[kind])
    await broker.connect()
    try:
        await prepare_broker(kind, broker, names)
        await Writer(engine, producer, asyncio.Event()).write(count, 0)
        done = asyncio.Event()
        sent = 0

        class Counting(FastStreamTransport):
            async def send_envelope(self, envelope: Any, *, stream: str | None) -> None:
                nonlocal sent
                await super().send_envelope(envelope, stream=stream)
                sent += 1
                if sent == count:
                    done.set()

        jetstream = names.tag if kind == "nats" else None
        transport = Counting(broker, destination=names.destination, jetstream=jetstream)
        relay = AsyncOutboxRelay(
            engine, transport, outbox=producer.outbox, batch_size=BATCH, progress_interval=None
        )
        started = time.process_time()
        task = asyncio.create_task(relay.run())
        await done.wait()
        cpu = time.process_time() - started
        relay.stop()
        await task
        print(json.dumps({"cpu": cpu / count}), flush=True)
    finally:
        await cleanup_broker(kind, broker, names)
        await broker.stop()
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await engine.dispose()


def relay_on_loops(kind: str, args: argparse.Namespace) -> None:
    """Print the relay's CPU time per message on asyncio and on uvloop, interleaved."""
    figures: dict[str, list[float]] = {"asyncio": [], "uvloop": []}
    for _ in range(args.rounds):
        for loop in ("asyncio", "uvloop"):
            command = [sys.executable, "-m", "bench.e2e", "--relay-cpu", kind]
            command += [str(args.messages), "--loop", loop]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            line = [line for line in done.stdout.splitlines() if line.startswith("{")][-1]
            figures[loop].append(json.loads(line)["cpu"] * 1e6)
    gain = [uv / plain for plain, uv in zip(figures["asyncio"], figures["uvloop"], strict=True)]
    print(
        f"  info  {kind}: relay cpu/msg asyncio {min(figures['asyncio']):.0f} us, uvloop "
        f"{min(figures['uvloop']):.0f} us: x{statistics.median(gain):.2f} "
        f"(rounds {min(gain):.2f}-{max(gain):.2f})"
    )


async def main_async(args: argparse.Namespace) -> tuple[bool, bool]:
    ok = clean = True
    print(
        f"End to end, outbox to inbox: {args.messages} messages, then {args.latency_messages} "
        f"at {args.rate:.0f}/s; best of {args.rounds} interleaved rounds",
        flush=True,
    )
    for kind in args.brokers:
        if not listening(URLS[kind]):
            print(f"{kind}: skipped, nothing listens on {URLS[kind]}")
            continue
        met, no_errors = await broker_section(kind, args)
        ok &= met
        clean &= no_errors
    return ok, clean


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.e2e", description=__doc__.splitlines()[0]
    )
    parser.add_argument("brokers", nargs="*", default=list(URLS), help="redis, rabbit, nats")
    parser.add_argument("--quick", action="store_true", help="one small round")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--latency-messages", type=int, default=150)
    parser.add_argument("--rate", type=float, default=150.0, help="msg/s of the latency part")
    parser.add_argument("--publish-messages", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="also ours with the consumer on uvloop, and the relay's CPU/msg on each loop",
    )
    parser.add_argument("--consume", nargs=4, metavar=("KIND", "IMPL", "TAG", "COUNT"))
    parser.add_argument("--relay-cpu", nargs=2, metavar=("KIND", "COUNT"))
    return parser


def _runner(loop: str) -> asyncio.Runner:
    if loop == "uvloop":
        import uvloop

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    return asyncio.Runner()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 1 when a check failed, or with ``--strict`` a target was missed."""
    args = parser().parse_args(argv)
    if args.consume:
        kind, impl, tag, count = args.consume
        with _runner(args.loop) as runner:
            runner.run(consume(kind, impl, tag, int(count)))
        return 0
    if args.relay_cpu:
        with _runner(args.loop) as runner:
            runner.run(relay_cpu(args.relay_cpu[0], int(args.relay_cpu[1])))
        return 0
    if args.quick:
        args.rounds, args.messages, args.latency_messages, args.publish_messages = 1, 300, 60, 300
    for kind in args.brokers:
        if kind not in URLS:
            raise SystemExit(f"unknown broker {kind!r}: name redis, rabbit or nats")
    if not listening(PG_URL):
        print(f"skipped: PostgreSQL does not answer at {PG_URL}")
        return 1 if args.strict else 0
    if args.uvloop:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            print("uvloop is not installed: no uvloop figures")
            args.uvloop = False
    with _runner(args.loop) as runner:
        ok, clean = runner.run(main_async(args))
    if args.uvloop:
        reachable = [kind for kind in args.brokers if listening(URLS[kind])]
        if reachable:
            relay_on_loops(reachable[0], args)
    return 0 if clean and (ok or not args.strict) else 1


if __name__ == "__main__":
    sys.exit(main())
