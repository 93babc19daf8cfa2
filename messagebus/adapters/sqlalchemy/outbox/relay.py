"""The outbox relay: delivers the rows of the outbox table to an event-stream transport.

The unit of work writes each published message to ``{prefix}outbox`` in the transaction
of the models; :class:`AsyncOutboxRelay` reads the pending rows and sends them, at least
once, in ``id`` order per stream. Run it in your service as an asyncio task, or as a
process with ``messagebus-relay`` (see :mod:`messagebus.adapters.sqlalchemy.outbox.cli`).

How it works, per batch:

1. It lists the streams whose oldest pending row is due (``available_at`` passed).
2. For each stream it takes a lock on the stream (on PostgreSQL a session advisory lock,
   ``pg_try_advisory_lock``; a stream locked by another relay is skipped), then reads the
   stream's pending rows in ``id`` order.
3. It sends each row and, once the transport returned, marks it delivered. The marks are
   committed together, in a short transaction, at most ``commit_interval`` seconds apart
   (a commit per row would cost a disk flush per row) and always before the relay leaves
   the stream. No transaction is open while the transport works.
4. A row whose send raised gets ``attempts`` + 1, ``last_error`` and an ``available_at``
   postponed by an exponential backoff with jitter
   (:class:`~messagebus.adapters.sqlalchemy.Backoff`); the rest of its
   stream waits behind it, other streams go on.

No row is skipped: a row is pending until a send of it succeeded and was marked. A relay
killed between a send and the commit of its mark sends that row again: consumers see
duplicates (at most the rows of one ``commit_interval``), never gaps; the inbox removes
the duplicates. A row that the transport refuses forever blocks its stream, retried every
``Backoff.cap`` seconds with its error in ``last_error``: fix the cause, or set its
``delivered_at`` by hand to skip it on purpose.

Several relays may run at once on PostgreSQL: a stream is sent by one relay at a time and
a row by one relay in the normal path; the work spreads over relays only when there are
several streams. On SQLite run a single relay: SQLite has no lock that a relay could hold
while it sends, so two relays would send the same rows.

Order is ``id`` order among the committed rows. Two transactions that write to the same
stream concurrently are delivered in the order their rows become visible, which may differ
from their ``id`` order; the rows of one transaction keep theirs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import MetaData, Table, delete, func, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Subquery

from messagebus.adapters.sqlalchemy.outbox.backoff import Backoff
from messagebus.adapters.sqlalchemy.outbox.reasons import describe, error_reason
from messagebus.adapters.sqlalchemy.tables import messagebus_tables
from messagebus.service._async.eventstream import AsyncAbstractEventstreamTransport

__all__ = ["AsyncOutboxRelay", "Backoff"]

logger = logging.getLogger("messagebus.relay")

_MAX_ERROR_LENGTH = 2000
_PURGE_INTERVAL = 60.0
_WINDOW = 10


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Row:
    id: int
    stream: str
    payload: Mapping[str, Any]
    attempts: int
    available_at: datetime


class AsyncOutboxRelay:
    """Sends the pending rows of an outbox table through a transport, in order per stream.

    :param engine: an async engine on the database of the outbox (``sqlite+aiosqlite``,
        ``postgresql+asyncpg``, ``postgresql+psycopg``).
    :param transport: where the messages go; a row is delivered once
        ``send_envelope`` (by default ``send_message_serialized``) returned without
        raising; it receives the row's stream.
    :param outbox: the outbox table; by default the one
        :func:`~messagebus.adapters.sqlalchemy.messagebus_tables` makes with ``prefix``.
    :param prefix: the table prefix, when ``outbox`` is not given.
    :param batch_size: the most rows one :meth:`run_once` sends.
    :param poll_interval: how long :meth:`run` sleeps, in seconds, when nothing was due.
    :param backoff: the waits between the attempts to send a failing row, and between
        the retries of :meth:`run` when the database fails.
    :param send_timeout: seconds after which a send that did not return counts as a
        failure; ``None`` waits as long as the transport does.
    :param commit_interval: the longest time, in seconds, that sent rows wait to be marked
        delivered: the marks of the rows sent meanwhile are committed together. A relay
        killed in that window sends those rows again; ``0`` commits after every row, at
        the price of a commit (a disk flush) per row. The marks are always committed
        before the relay leaves a stream: after a failure, at the end of a batch, on
        :meth:`stop`.
    :param progress_interval: seconds between two progress lines logged by :meth:`run`
        (delivered count, pending count) at INFO level; ``None`` logs none.
    :param keep_delivered: how long to keep the delivered rows: :meth:`run` deletes the
        older ones after its first batch, then about once a minute (see :meth:`purge`).
        ``None``, the default, keeps them all: the table grows until you delete them.

    Start it with ``task = asyncio.create_task(relay.run())`` and end it with
    :meth:`stop` then ``await task``: the row being sent is finished first.
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
        send_timeout: float | None = 60.0,
        commit_interval: float = 0.1,
        progress_interval: float | None = 10.0,
        keep_delivered: timedelta | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be 1 or more, not {batch_size}")
        if poll_interval < 0:
            raise ValueError(f"poll_interval must be 0 or more, not {poll_interval}")
        self.engine = engine
        self.transport = transport
        self.outbox = outbox if outbox is not None else _default_outbox(prefix)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.backoff = backoff if backoff is not None else Backoff()
        self.send_timeout = send_timeout
        self.commit_interval = commit_interval
        self.progress_interval = progress_interval
        self.delivered = 0
        """How many rows this relay delivered since it was made."""
        self.failed = 0
        """How many sends failed since the relay was made."""
        self.keep_delivered = keep_delivered
        self._stopping = asyncio.Event()
        self._locks = engine.dialect.name == "postgresql"
        self._last_report = time.monotonic()
        self._last_purge = -_PURGE_INTERVAL  # the first batch of run() purges
        self._reported = 0

    def stop(self) -> None:
        """Ask :meth:`run` to return once the row being sent is done.

        Call it from the event loop's thread, for example from a handler installed with
        :meth:`asyncio.loop.add_signal_handler`, as ``messagebus-relay`` does.
        """
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping.is_set()

    async def pending(self) -> int:
        """Return the number of rows not delivered yet, due or postponed."""
        outbox = self.outbox
        query = select(func.count()).select_from(outbox).where(outbox.c.delivered_at.is_(None))
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def run(self) -> None:
        """Deliver rows until :meth:`stop` is called.

        It sleeps ``poll_interval`` when nothing is due, logs database errors and retries
        after a backoff, and returns after the row being sent when stopped (at once if
        :meth:`stop` was called before). A database error never ends it; cancel the task
        to end it without waiting.
        """
        try:
            await self._run()
        finally:
            self._stopping.clear()  # a stopped relay can be run again

    async def _run(self) -> None:
        errors = 0
        while not self.stopping:
            try:
                sent = await self.run_once()
                await self._chores()
            except (SQLAlchemyError, OSError) as exc:
                errors += 1
                delay = self.backoff.delay(errors)
                logger.warning(
                    "outbox relay: database error (%s), retrying in %.1fs", error_reason(exc), delay
                )
                await self._sleep(delay)
                continue
            errors = 0
            if not sent:
                await self._sleep(self.poll_interval)

    async def _chores(self) -> None:
        """Log the progress and purge the delivered rows, when their time has come."""
        now = time.monotonic()
        interval = self.progress_interval
        if interval is not None and now - self._last_report >= interval:
            self._last_report = now
            if self._reported != self.delivered:
                self._reported = self.delivered
                await self._report_progress()
        if self.keep_delivered is not None and now - self._last_purge >= _PURGE_INTERVAL:
            self._last_purge = now
            purged = await self.purge(self.keep_delivered)
            if purged:
                logger.info("outbox relay: purged %s delivered rows", purged)

    async def purge(self, older_than: timedelta, *, chunk: int = 1000) -> int:
        """Delete the rows delivered more than ``older_than`` ago; return how many.

        It deletes ``chunk`` rows per transaction, so that no long transaction holds the
        table. Pending rows are never deleted.
        """
        outbox = self.outbox
        cutoff = _utcnow() - older_than
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
                deleted = await conn.execute(delete(outbox).where(outbox.c.id.in_(oldest)))
            purged += deleted.rowcount
            if deleted.rowcount < chunk:
                break
        return purged

    async def run_once(self) -> int:
        """Send one batch of due rows and return how many were delivered.

        Database errors propagate; a transport error is recorded on its row and the
        rest of that row's stream waits for a later batch.
        """
        now = _utcnow()
        budget = self.batch_size
        delivered = 0
        for stream in await self._due_streams(now):
            if budget <= 0 or self.stopping:
                break
            async with self._stream(stream) as conn:
                if conn is None:
                    continue  # another relay is sending this stream
                sent = await self._send_stream(conn, stream, budget, now)
            delivered += sent
            budget -= sent
        return delivered

    async def _due_streams(self, now: datetime) -> list[str]:
        """Return the streams whose oldest pending row is due, oldest first.

        It looks at the oldest pending rows first (a window of ``_WINDOW * batch_size``
        rows, read through an index on the pending ids when there is one) and only groups
        every pending row when that window is full of streams that wait for a backoff.
        """
        outbox = self.outbox
        pending = outbox.c.delivered_at.is_(None)
        size = _WINDOW * self.batch_size
        window = select(outbox.c.stream, outbox.c.id).where(pending).order_by(outbox.c.id)
        async with self.engine.connect() as conn:
            # A stream with a row in a window of the oldest rows has its head there too.
            heads = await self._heads(conn, window.limit(size).subquery())
            due = [stream for stream, _, available_at in heads if available_at <= now]
            if not due and sum(rows for _, rows, _ in heads) >= size:
                heads = await self._heads(conn, window.subquery())
                due = [stream for stream, _, available_at in heads if available_at <= now]
        return due[: self.batch_size]

    async def _heads(
        self, conn: AsyncConnection, rows: Subquery
    ) -> list[tuple[str, int, datetime]]:
        """Return, per stream of ``rows``, its number of rows and its head's ``available_at``."""
        outbox = self.outbox
        heads = (
            select(rows.c.stream, func.min(rows.c.id).label("head"), func.count().label("rows"))
            .group_by(rows.c.stream)
            .subquery()
        )
        query = (
            select(heads.c.stream, heads.c.rows, outbox.c.available_at)
            .join(outbox, outbox.c.id == heads.c.head)
            .order_by(heads.c.head)
        )
        result = await conn.execute(query)
        return [(stream, count, available_at) for stream, count, available_at in result]

    @asynccontextmanager
    async def _stream(self, stream: str) -> AsyncIterator[AsyncConnection | None]:
        """Yield a connection that holds the stream's lock, or ``None`` if it is taken."""
        async with self.engine.connect() as conn:
            if not self._locks:
                yield conn
                return
            key = _lock_key(self.outbox.name, stream)
            locked = (
                await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
            ).scalar_one()
            await conn.commit()
            if not locked:
                yield None
                return
            try:
                yield conn
            finally:
                await self._unlock(conn, key)

    async def _unlock(self, conn: AsyncConnection, key: int) -> None:
        # A session lock outlives transactions: a connection that goes back to the pool
        # still holding it would block the stream until the connection is closed.
        try:
            await conn.rollback()
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            await conn.commit()
        except BaseException:
            await conn.invalidate()
            raise

    async def _send_stream(
        self, conn: AsyncConnection, stream: str, budget: int, now: datetime
    ) -> int:
        outbox = self.outbox
        query = (
            select(
                outbox.c.id,
                outbox.c.stream,
                outbox.c.payload,
                outbox.c.attempts,
                outbox.c.available_at,
            )
            .where(outbox.c.stream == stream, outbox.c.delivered_at.is_(None))
            .order_by(outbox.c.id)
            .limit(budget)
        )
        rows = [_Row(*row) for row in (await conn.execute(query)).all()]
        # No transaction stays open while the transport works.
        await conn.commit()
        sent: list[int] = []
        delivered = 0
        last_commit = time.monotonic()
        try:
            for row in rows:
                if self.stopping or row.available_at > now:
                    break
                error = await self._send(row)
                if error is not None:
                    await self._postpone(conn, row, error)
                    break
                sent.append(row.id)
                if time.monotonic() - last_commit >= self.commit_interval:
                    delivered += await self._mark_delivered(conn, sent)
                    last_commit = time.monotonic()
        finally:
            # Also on a cancellation: what was sent is marked, unless the database fails.
            delivered += await self._mark_delivered(conn, sent)
        return delivered

    async def _mark_delivered(self, conn: AsyncConnection, sent: list[int]) -> int:
        """Mark the rows of ``sent`` delivered in one transaction, empty it, return how many."""
        if not sent:
            return 0
        outbox = self.outbox
        await conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(sent))
            .values(delivered_at=_utcnow(), attempts=outbox.c.attempts + 1)
        )
        await conn.commit()
        count = len(sent)
        self.delivered += count
        sent.clear()
        return count

    async def _send(self, row: _Row) -> BaseException | None:
        """Send ``row``; return the error if the transport did not take it."""
        try:
            if self.send_timeout is None:
                await self.transport.send_envelope(row.payload, stream=row.stream)
            else:
                async with asyncio.timeout(self.send_timeout):
                    await self.transport.send_envelope(row.payload, stream=row.stream)
        except Exception as exc:  # any failure of the transport is the row's to record
            return exc
        return None

    async def _postpone(self, conn: AsyncConnection, row: _Row, error: BaseException) -> None:
        self.failed += 1
        attempts = row.attempts + 1
        delay = self.backoff.delay(attempts)
        description = describe(error)
        outbox = self.outbox
        await conn.execute(
            update(outbox)
            .where(outbox.c.id == row.id)
            .values(
                attempts=outbox.c.attempts + 1,
                last_error=description[:_MAX_ERROR_LENGTH],
                available_at=_utcnow() + timedelta(seconds=delay),
            )
        )
        await conn.commit()
        logger.warning(
            "outbox relay: sending row %s of stream %r failed (attempt %s): %s; "
            "the stream waits %.1fs",
            row.id,
            row.stream,
            attempts,
            description,
            delay,
        )

    async def _report_progress(self) -> None:
        logger.info(
            "outbox relay: %s delivered, %s failed sends, %s pending",
            self.delivered,
            self.failed,
            await self.pending(),
        )

    async def _sleep(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


def _default_outbox(prefix: str) -> Table:
    return messagebus_tables(MetaData(), prefix=prefix).outbox


def _lock_key(table: str, stream: str) -> int:
    """Return the advisory lock key of ``stream``: 64 signed bits of a hash."""
    digest = hashlib.blake2b(f"{table}\x00{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
