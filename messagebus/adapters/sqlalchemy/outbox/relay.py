"""The outbox relay: delivers the rows of the outbox table to an event-stream transport.

The unit of work writes each published message to ``{prefix}outbox`` in the transaction
of the models; :class:`AsyncOutboxRelay` reads the pending rows and sends them, at least
once, in ``id`` order per stream. Run it in your service as an asyncio task, or as a
process with ``messagebus-relay`` (see :mod:`messagebus.adapters.sqlalchemy.outbox.cli`).

How it works:

1. It looks for the streams whose head (oldest pending row) is due, by the database's
   clock, and delivers up to ``concurrency`` of them at once, each on its own.
2. Delivering a stream leases its head (see
   :mod:`~messagebus.adapters.sqlalchemy.outbox.delivery`): no other relay sends the
   stream while the lease lasts, and this one stops before a send that could outlast it.
   A busy stream keeps its relay for up to ten batches, each marked with the lease of the
   next in one statement, then yields its place.
3. It sends each row and, once the transport returned, marks it delivered. The marks are
   committed together, at most ``commit_interval`` seconds apart, and always before the
   relay leaves the stream. No transaction is open while the transport works.
4. A row whose send failed gets ``attempts`` + 1, ``last_error`` and an ``available_at``
   postponed by an exponential backoff; the rest of its stream waits behind it. After
   ``max_attempts`` attempts the row is **dead**: ``dead_at`` is set, its reason stays in
   ``last_error``, and its stream waits for an operator (``on_dead="block"``) or goes on
   with the rows after it (``on_dead="skip"``). A row whose payload cannot be read is dead
   at once.
5. A commit wakes it (in the process, and on PostgreSQL through ``LISTEN``/``NOTIFY``, see
   :mod:`~messagebus.adapters.sqlalchemy.outbox.wakeup`); it polls every
   ``poll_interval`` as well.

No row is skipped but a dead one: a row is pending until a send of it succeeded and was
marked. A relay killed between a send and the commit of its mark sends that row again:
consumers see duplicates (at most the rows of one ``commit_interval``), never gaps; the
inbox removes the duplicates. Several relays may run at once, on PostgreSQL and SQLite;
a stream is sent by one relay at a time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from types import TracebackType
from typing import Literal

from sqlalchemy import MetaData, Table, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import Pool

from messagebus.adapters.sqlalchemy.outbox.backoff import Backoff
from messagebus.adapters.sqlalchemy.outbox.delivery import (
    StreamDelivery,
    on_a_live_connection,
    run_to_end,
)
from messagebus.adapters.sqlalchemy.outbox.reasons import error_reason
from messagebus.adapters.sqlalchemy.outbox.statements import RelayStatements
from messagebus.adapters.sqlalchemy.outbox.wakeup import listen
from messagebus.adapters.sqlalchemy.tables import messagebus_tables
from messagebus.service._async.eventstream import AsyncAbstractEventstreamTransport

__all__ = ["DEFAULT_MAX_ATTEMPTS", "AsyncOutboxRelay", "Backoff"]

logger = logging.getLogger("messagebus.relay")

DEFAULT_MAX_ATTEMPTS = 30
"""How many times a row is tried before it is dead, by default: with the default
:class:`~messagebus.adapters.sqlalchemy.Backoff`, one to two hours of failures."""

_PURGE_INTERVAL = 60.0
# A stream with many rows keeps its relay for this many batches, then yields its place.
_PASS_BATCHES = 10
_WINDOW = 10


class AsyncOutboxRelay:
    """Sends the pending rows of an outbox table through a transport, in order per stream.

    :param engine: an async engine on the database of the outbox (``sqlite+aiosqlite``,
        ``postgresql+asyncpg``, ``postgresql+psycopg``).
    :param transport: where the messages go; a row is delivered once ``send_envelope``
        returned without raising; it receives the row's stream.
    :param outbox: the outbox table; by default the one
        :func:`~messagebus.adapters.sqlalchemy.messagebus_tables` makes with ``prefix``.
    :param prefix: the table prefix, when ``outbox`` is not given.
    :param batch_size: the most rows one stream's turn sends, and one :meth:`run_once`.
    :param poll_interval: seconds between two looks for due rows when no commit woke the
        relay; also how soon a postponed row is retried after its backoff.
    :param backoff: the waits between the attempts to send a failing row, and between
        the retries of :meth:`run` when the database fails.
    :param send_timeout: seconds after which a send that did not return counts as a
        failure. It also bounds the lease: a stream is held for ``3 * send_timeout``
        seconds at a time (renewed while sending), the longest a crashed relay keeps
        others off its streams.
    :param max_attempts: how many failed sends make a row dead; ``None`` tries forever.
    :param on_dead: what a dead row does to its stream: ``"block"`` (the default) keeps
        the rows after it waiting until an operator retries or discards the dead row, so
        the order always holds; ``"skip"`` goes on with the next row.
    :param concurrency: how many streams are delivered at once: a slow or hung send holds
        its own stream only. Each one uses a connection of the engine's pool while it
        writes, plus one for ``LISTEN`` on PostgreSQL.
    :param commit_interval: the longest time, in seconds, that sent rows wait to be marked
        delivered; the marks are always committed before the relay leaves a stream.
    :param progress_interval: seconds between two progress lines logged by :meth:`run`
        at INFO level; ``None`` logs none.
    :param keep_delivered: how long to keep the delivered rows: :meth:`run` deletes the
        older ones after its first batch, then about once a minute (see :meth:`purge`).
        ``None``, the default, keeps them all.
    :raises ValueError: if a number is out of its range or ``on_dead`` is unknown.

    Start it with ``task = asyncio.create_task(relay.run())`` and end it with
    :meth:`stop` then ``await task`` (the rows being sent are finished first), or with
    ``task.cancel()``, which ends it at once.

    .. versionchanged:: 0.17
       Fenced by a lease, several relays work on SQLite too; ``max_attempts``,
       ``on_dead`` and ``concurrency``; woken by commits; the database's clock.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        transport: AsyncAbstractEventstreamTransport,
        *,
        outbox: Table | None = None,
        prefix: str = "messagebus_",
        batch_size: int = 100,
        poll_interval: float = 1.0,
        backoff: Backoff | None = None,
        send_timeout: float = 10.0,
        max_attempts: int | None = DEFAULT_MAX_ATTEMPTS,
        on_dead: Literal["block", "skip"] = "block",
        concurrency: int = 4,
        commit_interval: float = 0.1,
        progress_interval: float | None = 10.0,
        keep_delivered: timedelta | None = None,
    ) -> None:
        _check(batch_size >= 1, "batch_size", batch_size, "must be 1 or more")
        _check(0 <= poll_interval < math.inf, "poll_interval", poll_interval, "must be >= 0")
        _check(
            0 < send_timeout < math.inf, "send_timeout", send_timeout, "must be a positive number"
        )
        _check(
            max_attempts is None or max_attempts >= 1,
            "max_attempts",
            max_attempts,
            "must be 1 or more, or None to try forever",
        )
        _check(on_dead in ("block", "skip"), "on_dead", on_dead, 'must be "block" or "skip"')
        _check(concurrency >= 1, "concurrency", concurrency, "must be 1 or more")
        _check(0 <= commit_interval < math.inf, "commit_interval", commit_interval, "must be >= 0")
        self.engine = engine
        self.transport = transport
        self.outbox = outbox if outbox is not None else _default_outbox(prefix)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.backoff = backoff if backoff is not None else Backoff()
        self.send_timeout = send_timeout
        self.lease = 3 * send_timeout
        """Seconds a stream is held per claim or renewal."""
        self.max_attempts = max_attempts
        self.on_dead = on_dead
        self.concurrency = concurrency
        self.commit_interval = commit_interval
        self.progress_interval = progress_interval
        self.keep_delivered = keep_delivered
        self.delivered = 0
        """How many rows this relay marked delivered since it was made."""
        self.failed_attempts = 0
        """How many sends failed since the relay was made."""
        self.dead = 0
        """How many rows this relay set dead since it was made."""
        self.in_flight = 0
        """How many sends are under way right now."""
        # Each statement of the relay is atomic on its own. On PostgreSQL it runs in
        # autocommit: one round trip, no BEGIN nor COMMIT. On SQLite a transaction
        # costs less: aiosqlite's thread would be called twice more per connection
        # to set the isolation level and to reset it, against once for the COMMIT.
        self._connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]] = (
            self._kept_connection if engine.dialect.name == "postgresql" else engine.begin
        )
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        # While run() runs on PostgreSQL, the connection of the last statement is kept
        # for the next one (see _KeptConnection).
        self._keeping = False
        self._kept: AsyncConnection | None = None
        self._statements = RelayStatements(
            self.outbox, engine.dialect.name, block_on_dead=on_dead == "block"
        )
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        # What woke it: the streams commits named, and whether to look at every stream
        # (at start, at each poll, when a delivery ends, for a commit that named none).
        self._named: set[str] = set()
        self._look_all = True
        self._last_report = time.monotonic()
        self._last_purge = -_PURGE_INTERVAL
        self._purged_delivered = False
        self._reported = 0

    @property
    def failed(self) -> int:
        """The same as :attr:`failed_attempts` (its name before 0.17)."""
        return self.failed_attempts

    @property
    def block_on_dead(self) -> bool:
        """Whether a dead row keeps the rest of its stream waiting (``on_dead="block"``)."""
        return self.on_dead == "block"

    def stop(self) -> None:
        """Ask :meth:`run` to return once the rows being sent are done.

        Call it from the event loop's thread, for example from a handler installed with
        :meth:`asyncio.loop.add_signal_handler`, as ``messagebus-relay`` does.
        """
        self._stopping.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping.is_set()

    def wake(self, streams: Collection[str] | None = None) -> None:
        """Look for due rows now rather than at the next poll (call it from the loop).

        :param streams: the streams that got rows, if known: the relay claims them at
            once, without asking the database which streams are due first. ``None``
            looks at every stream.

        .. versionchanged:: 0.17
           ``streams``.
        """
        if streams is None:
            self._look_all = True
        else:
            self._named.update(streams)
        self._wake.set()

    async def pending(self) -> int:
        """Return the number of pending rows (neither delivered nor dead), due or not."""
        return await run_to_end(self._count_pending())

    async def _count_pending(self) -> int:
        async def count(conn: AsyncConnection) -> int:
            return int((await conn.execute(self._statements.count_pending())).scalar_one())

        return await on_a_live_connection(self._connect, count)

    async def run(self) -> None:
        """Deliver rows until :meth:`stop` is called, or the task is cancelled.

        It waits for a commit, or ``poll_interval``, when nothing is due; logs database
        errors and retries after a backoff (a database error never ends it); returns once
        the rows being sent are done when stopped (at once if :meth:`stop` was called
        before). Cancelling its task ends it promptly, whatever it was doing.
        """
        self._look_all = True
        self._keeping = True
        try:
            async with listen(self.engine, self.outbox.name, self.wake) as keep_listening:
                await self._serve(keep_listening)
        finally:
            self._stopping.clear()  # a stopped relay can be run again
            self._keeping = False
            kept, self._kept = self._kept, None
            if kept is not None:
                await kept.close()

    async def _serve(self, keep_listening: Callable[[], Awaitable[None]]) -> None:
        active: dict[str, asyncio.Task[int]] = {}
        errors = 0
        try:
            while not self.stopping:
                self._wake.clear()
                try:
                    await self._start_streams(active)
                    await self._chores()
                    await keep_listening()
                except (SQLAlchemyError, OSError) as exc:
                    errors += 1
                    self._look_all = True  # what woke it may not have been looked at
                    delay = self.backoff.delay(errors)
                    logger.warning(
                        "outbox relay: database error (%s), retrying in %.1fs",
                        error_reason(exc),
                        delay,
                    )
                    await self._wait(active.values(), delay, wakeable=False)
                    continue
                errors = 0
                # Even after starting streams: looking again at once would find nothing
                # new but compete with their claims. A commit, a delivery that ends (a
                # free slot, maybe more rows of its stream) or the poll ends the wait.
                await self._wait(active.values(), self.poll_interval, wakeable=True)
                if not self._wake.is_set():  # the poll: rows may have become due
                    self._look_all = True
                _reap(active)
            await asyncio.gather(*active.values(), return_exceptions=True)
        finally:
            for task in active.values():
                task.cancel()
            # Each task gives its marks a short, bounded chance, then ends.
            await asyncio.gather(*active.values(), return_exceptions=True)

    async def _start_streams(self, active: dict[str, asyncio.Task[int]]) -> None:
        """Start the due streams that free slots allow.

        When only commits that named their streams woke it, it starts those: a claim
        checks that the stream is due, so asking the database first would cost a round
        trip for nothing. A named stream being delivered already needs nothing: its
        delivery reads the rows committed meanwhile, and its end wakes a full look.
        """
        _reap(active)
        named, self._named = self._named, set()
        if len(active) >= self.concurrency:
            self._look_all = True  # a slot to free first; its delivery's end looks again
            return
        if not self._look_all:
            streams: Iterable[str] = sorted(named)
        else:
            self._look_all = False
            streams = await self._due_streams(exclude=active)
        for stream in streams:
            if stream in active:
                continue
            if len(active) >= self.concurrency:
                break
            active[stream] = asyncio.create_task(self._deliver_logged(stream))

    async def _deliver_logged(self, stream: str) -> int:
        try:
            return await StreamDelivery(self, stream).run(self.batch_size, batches=_PASS_BATCHES)
        except (SQLAlchemyError, OSError) as exc:
            logger.warning(
                "outbox relay: database error on stream %r (%s); it is tried again later",
                stream,
                error_reason(exc),
            )
            return 0
        finally:
            self.wake()  # a freed slot, and maybe more rows: look again

    async def _wait(
        self, tasks: Iterable[asyncio.Task[int]], seconds: float, *, wakeable: bool
    ) -> None:
        """Wait ``seconds``, or less: until a task ends, a commit wakes it, or stop()."""
        signal = self._wake if wakeable else self._stopping
        waiter = asyncio.ensure_future(signal.wait())
        try:
            await asyncio.wait(
                [waiter, *tasks], timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()

    def _kept_connection(self) -> _KeptConnection:
        return _KeptConnection(self)

    async def run_once(self) -> int:
        """Deliver the due streams once; return how many rows were delivered.

        At most ``batch_size`` rows, shared among the due streams, ``concurrency`` streams
        at a time. Database errors propagate; a transport error is recorded on its row and the rest
        of that row's stream waits for a later turn.
        """
        streams = await self._due_streams(exclude=())
        if not streams:
            return 0
        share = max(1, math.ceil(self.batch_size / len(streams)))
        budget = self.batch_size
        slots = asyncio.Semaphore(self.concurrency)

        async def deliver(stream: str) -> int:
            nonlocal budget
            async with slots:
                limit = min(share, budget)
                if limit <= 0 or self.stopping:
                    return 0
                budget -= limit
                delivered = await StreamDelivery(self, stream).run(limit)
                budget += limit - delivered
                return delivered

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(deliver(stream)) for stream in streams]
        return sum(task.result() for task in tasks)

    async def _due_streams(self, exclude: Iterable[str]) -> list[str]:
        """Return the streams whose head is due, the oldest head first, but ``exclude``.

        It looks at the oldest pending rows first (a window of ``_WINDOW * batch_size``
        rows, read through the index of pending rows) and groups every pending row only
        when that window is full of streams that wait.
        """
        return await run_to_end(self._read_due_streams(set(exclude)))

    async def _read_due_streams(self, skip: set[str]) -> list[str]:
        size = _WINDOW * self.batch_size

        async def read(conn: AsyncConnection) -> list[str]:
            heads = (await conn.execute(self._statements.due_streams(size))).all()
            due = [stream for stream, _, is_due in heads if is_due and stream not in skip]
            if not due and sum(rows for _, rows, _ in heads) >= size:
                heads = (await conn.execute(self._statements.due_streams(None))).all()
                due = [stream for stream, _, is_due in heads if is_due and stream not in skip]
            return due

        return (await on_a_live_connection(self._connect, read))[: self.batch_size]

    async def _chores(self) -> None:
        """Log the progress and purge the delivered rows, when their time has come."""
        now = time.monotonic()
        interval = self.progress_interval
        if interval is not None and now - self._last_report >= interval:
            self._last_report = now
            if self._reported != self.delivered:
                self._reported = self.delivered
                logger.info(
                    "outbox relay: %s delivered, %s failed sends, %s dead, %s pending",
                    self.delivered,
                    self.failed_attempts,
                    self.dead,
                    await self.pending(),
                )
        # Purge at start, once the first rows are delivered, then once a minute.
        first_delivered = self.delivered and not self._purged_delivered
        if self.keep_delivered is not None and (
            first_delivered or now - self._last_purge >= _PURGE_INTERVAL
        ):
            self._last_purge = now
            self._purged_delivered = bool(self.delivered)
            purged = await run_to_end(self.purge(self.keep_delivered))
            if purged:
                logger.info("outbox relay: purged %s delivered rows", purged)

    async def purge(self, older_than: timedelta, *, chunk: int = 1000) -> int:
        """Delete the rows delivered more than ``older_than`` ago; return how many.

        It deletes ``chunk`` rows per transaction, so that no long transaction holds the
        table. Pending and dead rows are never deleted.
        """
        outbox = self.outbox
        sql = self._statements
        cutoff = sql.later("age")  # the database's clock, as for every time of the relay
        oldest = (
            select(outbox.c.id)
            .where(outbox.c.delivered_at.is_not(None), outbox.c.delivered_at < cutoff)
            .order_by(outbox.c.id)
            .limit(chunk)
        )
        purged = 0
        while not self.stopping:
            async with self.engine.begin() as conn:
                # A subquery: neither SQLite nor PostgreSQL take a LIMIT on a DELETE.
                deleted = await conn.execute(
                    delete(outbox).where(outbox.c.id.in_(oldest)),
                    {"age": sql.delay(-older_than.total_seconds())},
                )
            purged += deleted.rowcount
            if deleted.rowcount < chunk:
                break
        return purged


class _KeptConnection:
    """A connection for one statement of the relay on PostgreSQL, kept for the next one.

    ``async with`` takes the connection the relay kept, or a new one from the engine's
    pool (in autocommit). After a statement that succeeded, while :meth:`~AsyncOutboxRelay.run`
    runs, the relay keeps the connection if it keeps none yet and the pool has room left
    within its size (an application that shares a small pool with the relay is not kept
    waiting): the next statement, often the next claim, is sent at once, with no pool
    checkout nor checkin before it (about a quarter of a millisecond of the time from a
    commit to the send, measured with asyncpg). Other connections, and any after an error
    or a cancellation, are closed as usual. A kept connection that died meanwhile fails
    its next statement, which the relay runs again on a new one (see
    ``on_a_live_connection``).
    """

    __slots__ = ("conn", "relay")

    def __init__(self, relay: AsyncOutboxRelay) -> None:
        self.relay = relay
        self.conn: AsyncConnection | None = None

    async def __aenter__(self) -> AsyncConnection:
        relay = self.relay
        conn, relay._kept = relay._kept, None
        if conn is None:
            conn = await relay._autocommit.connect()
        self.conn = conn
        return conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self.conn
        assert conn is not None  # set by __aenter__
        self.conn = None
        relay = self.relay
        if (
            exc_type is None
            and relay._keeping
            and relay._kept is None
            and not conn.invalidated
            and _room_left(relay.engine.pool)
        ):
            # Each statement committed on its own (autocommit): nothing is left open.
            relay._kept = conn
            return
        await conn.__aexit__(exc_type, exc, tb)


def _room_left(pool: Pool) -> bool:
    """Whether the pool can hand out a connection more within its size (not its overflow).

    A pool without a size (``NullPool``) opens a connection per checkout: always.
    """
    size = getattr(pool, "size", None)
    return size is None or pool.checkedout() < size()  # type: ignore[attr-defined]


def _reap(active: dict[str, asyncio.Task[int]]) -> None:
    """Forget the streams whose delivery ended; log the errors nobody expected."""
    for stream in [stream for stream, task in active.items() if task.done()]:
        task = active.pop(stream)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "outbox relay: delivering stream %r failed", stream, exc_info=task.exception()
            )


def _check(ok: bool, name: str, value: object, rule: str) -> None:
    if not ok:
        raise ValueError(f"{name} {rule}, not {value!r}")


def _default_outbox(prefix: str) -> Table:
    return messagebus_tables(MetaData(), prefix=prefix).outbox
