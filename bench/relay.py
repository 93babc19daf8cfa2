"""The relay's part of `python -m bench.sql`: its speed next to a hand-written loop, and
the time from a commit to the transport.

- **relay / loop**: `AsyncOutboxRelay.run()` until the outbox is empty, next to a
  hand-written loop that does the least a relay must (per batch: select the pending rows
  in order, send them, mark them delivered, commit), with the same transport, the same
  rows and the same batch size, each timed from the rows' becoming pending to the last
  one's arrival at the transport. The relay is running and idle before, as a service's
  relay is: its start is not counted. Each first delivers the rows once, untimed: the
  statements are compiled then, as in a service that has been running for a while (each
  round makes new tables, whose statements SQLAlchemy has not seen yet). Both also report
  their round trips per batch (statements, BEGIN and COMMIT), counted by SQLAlchemy's
  events.
- **commit to transport**: a relay runs with its default settings (it polls once a
  second) while one task commits published events through the SQL unit of work, one
  every few milliseconds; the latency of each event is the time from the end of its
  commit to the transport's receipt. *in-process*: the unit of work wakes the relay of
  its process. *NOTIFY* (PostgreSQL): the relay's engine names the server differently
  (``localhost``), so the in-process signal cannot reach it: only ``LISTEN``/``NOTIFY``
  wakes it, as a relay running in another process.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from messagebus import AsyncAbstractEventstreamTransport, AsyncMessageBus
from messagebus.adapters.sqlalchemy import AsyncOutboxRelay, MessagebusTables


class Clock(AsyncAbstractEventstreamTransport):
    """Keeps the ids it was sent, and when each arrived; sleeps ``latency`` per message."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.sent: list[str] = []
        self.arrived: dict[str, float] = {}

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        if self.latency:
            await asyncio.sleep(self.latency)
        self.arrived.setdefault(message["id"], time.perf_counter())
        self.sent.append(message["id"])


class RoundTrips:
    """Counts the statements, BEGINs and COMMITs an engine sends while it is attached."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.sync_engine
        self.count = 0

    def _one(self, *_: Any) -> None:
        self.count += 1

    def __enter__(self) -> RoundTrips:
        for name in ("before_cursor_execute", "begin", "commit"):
            event.listen(self.engine, name, self._one)
        return self

    def __exit__(self, *_: object) -> None:
        for name in ("before_cursor_execute", "begin", "commit"):
            event.remove(self.engine, name, self._one)


async def hand_written_loop(
    engine: AsyncEngine, outbox: Table, transport: Clock, batch: int
) -> int:
    """Deliver the pending rows the simplest way; return the number of batches."""
    pending = (
        select(outbox.c.id, outbox.c.stream, outbox.c.payload)
        .where(outbox.c.delivered_at.is_(None))
        .order_by(outbox.c.id)
        .limit(batch)
    )
    batches = 0
    while True:
        async with engine.begin() as conn:
            rows = (await conn.execute(pending)).all()
            if not rows:
                return batches
            for _, stream, payload in rows:
                await transport.send_envelope(payload, stream=stream)
            mark = update(outbox).where(outbox.c.id.in_([row[0] for row in rows]))
            await conn.execute(
                mark.values(delivered_at=datetime.now(UTC), attempts=outbox.c.attempts + 1)
            )
        batches += 1


async def reset(engine: AsyncEngine, outbox: Table) -> None:
    """Make every row pending again."""
    async with engine.begin() as conn:
        await conn.execute(
            update(outbox).values(
                delivered_at=None, dead_at=None, attempts=0, available_at=outbox.c.created_at
            )
        )


async def drain(
    relay: AsyncOutboxRelay, transport: Clock, rows: int, engine: AsyncEngine, outbox: Table
) -> tuple[float, int]:
    """Make every row pending for a running relay; return the seconds until the last is
    sent, and the round trips of the relay meanwhile.

    The relay is started and idle first, as the relay of a running service is: its start
    (the first look, the LISTEN connection on PostgreSQL) is not part of its speed. The
    rows become pending at once, and the relay is woken as a commit would: naming the
    streams of the rows.
    """
    async with engine.connect() as conn:
        streams = list((await conn.execute(select(outbox.c.stream).distinct())).scalars())
    task = asyncio.create_task(relay.run())

    async def delivered() -> None:
        relay.wake(streams)
        while len(transport.sent) < rows and not task.done():
            await asyncio.sleep(0.001)

    try:
        await asyncio.sleep(0.2)
        await reset(engine, outbox)
        await delivered()  # the warm-up
        await asyncio.sleep(0.05)  # idle again
        transport.sent.clear()
        transport.arrived.clear()
        await reset(engine, outbox)
        with RoundTrips(engine) as trips:
            started = time.perf_counter()
            await delivered()
        return max(transport.arrived.values(), default=started) - started, trips.count
    finally:
        relay.stop()
        await task


async def relay_against_loop(
    engine: AsyncEngine, outbox: Table, expected: list[str], batch: int = 100
) -> dict[str, Any]:
    """Time the relay and the hand-written loop on the same rows; count their round trips."""
    figures: dict[str, Any] = {"errors": []}
    for name in ("loop", "relay"):
        transport = Clock()
        # Both are timed from the rows' becoming pending to the last one's arrival.
        if name == "loop":
            await reset(engine, outbox)
            await hand_written_loop(engine, outbox, Clock(), batch)  # the warm-up
            await reset(engine, outbox)
            with RoundTrips(engine) as trips:
                started = time.perf_counter()
                batches = await hand_written_loop(engine, outbox, transport, batch)
            figures[name] = max(transport.arrived.values(), default=started) - started
            count = trips.count
        else:
            relay = AsyncOutboxRelay(
                engine, transport, outbox=outbox, batch_size=batch, progress_interval=None
            )
            figures[name], count = await drain(relay, transport, len(expected), engine, outbox)
            batches = -(-len(expected) // batch)
        figures[f"{name} round trips per batch"] = count / max(batches, 1)
        if transport.sent != expected:
            figures["errors"].append(
                f"the {name} sent {len(transport.sent)} of {len(expected)} rows, "
                f"{len(set(transport.sent))} distinct, in order: {transport.sent == expected}"
            )
    return figures


async def commit_to_transport(  # noqa: PLR0917 - the parts of one scenario
    engine: AsyncEngine,
    tables: MessagebusTables,
    bus: AsyncMessageBus[Any],
    make_uow: Any,
    make_command: Any,
    events: int,
    relay_url: str,
) -> list[float]:
    """Return the latencies, in seconds, from commits to the transport, for ``events``."""
    relay_engine = create_async_engine(relay_url)
    transport = Clock()
    relay = AsyncOutboxRelay(relay_engine, transport, outbox=tables.outbox)  # defaults
    task = asyncio.create_task(relay.run())
    committed: dict[str, float] = {}
    try:
        await asyncio.sleep(0.3)  # the relay is idle, waiting
        uow = make_uow()
        for n in range(events):
            command = make_command(n)
            async with uow as transaction:
                await bus.handle(command, transaction)
                await transaction.commit()
            committed[command.id] = time.perf_counter()
            await asyncio.sleep(random.uniform(0.002, 0.01))
        deadline = time.perf_counter() + 10
        while len(transport.arrived) < events and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=10)
        await relay_engine.dispose()
    async with engine.connect() as conn:
        outbox = tables.outbox
        result = await conn.execute(select(outbox.c.payload).order_by(outbox.c.id))
        by_envelope = {
            payload["id"]: _book_id(payload)
            for payload in result.scalars()
            if _book_id(payload) in committed
        }
    return [
        arrived - committed[by_envelope[envelope_id]]
        for envelope_id, arrived in transport.arrived.items()
        if envelope_id in by_envelope
    ]


def _book_id(envelope: Mapping[str, Any]) -> str:
    payload = envelope["payload"]
    return str((json.loads(payload) if isinstance(payload, str) else payload)["id"])


def percentiles(latencies: list[float]) -> tuple[float, float]:
    """Return p50 and p99 of ``latencies``, in milliseconds."""
    if len(latencies) < 2:
        return (float("nan"), float("nan"))
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return (cuts[49] * 1000, cuts[98] * 1000)
