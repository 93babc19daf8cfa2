"""How a relay delivers one stream: lease its head, send its rows in order, mark them.

The fence is a lease kept in the stream's head row (its oldest pending row). Claiming a
stream sets the head's ``available_at`` to the end of a lease (the database's time plus
``lease`` seconds), in one statement that succeeds only if the head is due; no relay
claims a stream whose head is not due, so the rows behind the head need no lease. Each
mark moves the lease to the next row to send, in the same statement, if the holder's head
still has the lease's token; a batch sent whole is marked together with the lease of the
next batch. The relay starts a send only if the send, bounded by ``send_timeout``, ends
before the lease does by its own monotonic clock, which started before the claim: so when
another relay may take the stream, the first has finished its last send. It renews the
lease while it sends, with a statement that checks the token: if another relay took the
stream, the renewal finds nothing and this relay stops before its next send.

No connection is held while the transport works: each step is one autocommitted
statement (one round trip), so a connection that dies (a killed backend, a restarted
server) costs one retry on a fresh connection, never a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from messagebus.adapters.sqlalchemy.outbox.lease import Lease, Row, read_row
from messagebus.adapters.sqlalchemy.outbox.reasons import describe, error_reason

if TYPE_CHECKING:
    from messagebus.adapters.sqlalchemy.outbox.relay import AsyncOutboxRelay

__all__ = ["SendDeadline", "StreamDelivery", "run_to_end"]

logger = logging.getLogger("messagebus.relay")

T = TypeVar("T")

# How long, at most, a cancelled relay tries to mark what it sent before it ends.
_CANCEL_GRACE = 1.0


async def run_to_end(work: Awaitable[T]) -> T:
    """Await ``work``; if cancelled meanwhile, let it end first, then raise the cancellation.

    ``work`` gets at most ``_CANCEL_GRACE`` seconds more: a database call cancelled in the
    middle can leave its connection in a transaction that holds locks (SQLite's file lock).
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            async with asyncio.timeout(_CANCEL_GRACE):
                await task
        task.cancel()
        raise


async def on_a_live_connection(
    connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    work: Callable[[AsyncConnection], Awaitable[T]],
) -> T:
    """Run ``work`` on a connection of ``connect``; once more on a new one if it was dead.

    A connection that died while it waited (in the pool, or kept by the relay) fails
    its first statement: ``work`` runs again on a connection that is new, the dead one
    having been dropped. Only for work that is safe to repeat.
    """
    try:
        async with connect() as conn:
            return await work(conn)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    async with connect() as conn:
        return await work(conn)


class SendDeadline:
    """Cancels the task whose send outlives ``seconds``, with one timer for many sends.

    What :func:`asyncio.timeout` does around each send, without a timer per send (its
    making and cancelling cost a relay about a fifth of its time per row): the timer
    is set at the end of the first send, and when it fires during a later one, it is
    set again at that send's end. Between sends, it does nothing.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._ends: float | None = None
        """When the send under way must have ended, ``None`` between sends."""
        self._cancelling = 0
        self._cancelled = False

    def start(self) -> None:
        """Start timing a send of the current task."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
        assert self._task is not None
        self._cancelling = self._task.cancelling()
        self._ends = ends = loop.time() + self.seconds
        if self._timer is None:
            self._timer = loop.call_at(ends, self._fire)

    def _fire(self) -> None:
        self._timer = None
        ends = self._ends
        if ends is None or self._task is None:
            return  # between two sends: the next one sets the timer again
        assert self._loop is not None
        if self._loop.time() < ends:  # a later send: wait for its end
            self._timer = self._loop.call_at(ends, self._fire)
            return
        self._cancelled = True
        self._task.cancel()

    def expired(self) -> bool:
        """Whether the deadline, and nothing else, cancelled the send that was cancelled.

        ``False`` when the task was cancelled as well: that cancellation goes on.
        """
        assert self._task is not None
        return self._cancelled and self._task.cancelling() <= self._cancelling + 1

    def stop(self) -> None:
        """Stop timing the send that ended; take back the deadline's cancellation."""
        self._ends = None
        if self._cancelled:  # even if the send swallowed it and returned
            self._cancelled = False
            assert self._task is not None
            self._task.uncancel()

    def close(self) -> None:
        """Drop the timer: no send follows."""
        self._ends = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class StreamDelivery:
    """One pass over one stream: claim, send, record. Built by the relay for each pass."""

    def __init__(self, relay: AsyncOutboxRelay, stream: str) -> None:
        self.relay = relay
        self.stream = stream
        self.sql = relay._statements
        self.delivered = 0
        """How many rows this pass marked delivered."""
        self._deadline = SendDeadline(relay.send_timeout)

    async def _transact(
        self,
        work: Callable[[AsyncConnection], Awaitable[T]],
        undo: Callable[[AsyncConnection, T], Awaitable[object]] | None = None,
    ) -> T:
        """Run ``work`` in a transaction; once more on a fresh connection if it died.

        A cancellation lets the transaction end first (for at most ``_CANCEL_GRACE``
        seconds), then calls ``undo`` with its result, then goes on: a statement
        cancelled midway can leave a connection in a transaction that holds locks.
        """
        task = asyncio.ensure_future(self._transact_retrying(work))
        try:
            return await run_to_end(task)
        except asyncio.CancelledError:
            if undo is not None and task.done() and not task.cancelled() and not task.exception():
                result = task.result()
                await run_to_end(self._transact_retrying(lambda conn: undo(conn, result)))
            raise

    async def _transact_retrying(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        # Nearly every write of the relay is one statement, atomic on its own: see
        # AsyncOutboxRelay._connect. Every statement of this module is safe to repeat
        # (each checks the state it changes).
        return await on_a_live_connection(self.relay._connect, work)

    async def run(self, limit: int, *, batches: int = 1) -> int:
        """Deliver up to ``batches`` batches of ``limit`` rows of the stream, in order.

        Return how many rows were marked delivered. A batch sent whole is marked
        together with the lease of the next one, in one statement.
        """
        lease = await self._claim(limit)
        sent: list[int] = []
        try:
            while lease is not None:
                batches -= 1
                if not await self._send_rows(lease, sent):
                    break
                # Even after a short batch: rows committed meanwhile come with the marks.
                if batches <= 0 or self.relay.stopping:
                    break
                lease = await self._continue(lease, sent, limit)
        except asyncio.CancelledError:
            # Cancelled: mark what was sent if the database answers at once, then end.
            if lease is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    async with asyncio.timeout(_CANCEL_GRACE):
                        after = self._first_unsent(lease, sent)
                        await self._settle(lease, sent, after, free=True)
            raise
        if lease is not None:
            await self._settle(lease, sent, self._first_unsent(lease, sent), free=True)
        return self.delivered

    async def _send_rows(self, lease: Lease, sent: list[int]) -> bool:
        """Send the rows of ``lease`` in order; return whether all were sent.

        A failed send is recorded (postponed or dead), and what was sent before it is
        marked; the rows sent since the last mark are left in ``sent``.
        """
        relay = self.relay
        send = relay.transport.send_envelope
        stream = self.stream
        deadline = self._deadline
        clock = time.monotonic
        last_commit = clock()
        rows = lease.rows
        try:
            for index, row in enumerate(rows):
                # A renewal is due when the lease could end during the next send.
                held = lease.head is not None and clock() + 2 * relay.send_timeout < lease.deadline
                if relay.stopping or (not held and not await self._hold(lease)):
                    return False
                if row.unreadable is not None:
                    await self._settle(lease, sent, row.id)
                    await self._bury(lease, row, row.unreadable, tried=0)
                    return False  # the next pass goes on with the next row, if on_dead allows
                assert row.envelope is not None
                error: BaseException | None = None
                relay.in_flight += 1
                deadline.start()
                try:
                    await send(row.envelope, stream=stream)
                except asyncio.CancelledError:
                    if not deadline.expired():
                        raise
                    error = TimeoutError()
                except Exception as exc:  # any failure of the transport is the row's to record
                    error = exc
                finally:
                    deadline.stop()
                    relay.in_flight -= 1
                if error is None:
                    sent.append(row.id)
                    if clock() - last_commit >= relay.commit_interval:
                        after = rows[index + 1].id if index + 1 < len(rows) else None
                        await self._settle(lease, sent, after)
                        last_commit = clock()
                    continue
                relay.failed_attempts += 1
                reason = describe(error)
                await self._settle(lease, sent, row.id)
                if relay.max_attempts is None or row.attempts + 1 < relay.max_attempts:
                    await self._postpone(lease, row, reason)
                else:
                    await self._bury(lease, row, reason, tried=1)
                return False
        finally:
            deadline.close()
        return True

    async def _continue(self, lease: Lease, sent: list[int], limit: int) -> Lease | None:
        """Mark ``sent`` delivered and lease the stream's next rows, at once."""
        relay = self.relay
        sql = self.sql
        started = time.monotonic()
        params = {
            "ids": list(sent) or [-1],
            "the_stream": self.stream,
            "last": lease.rows[-1].id,
            "head": lease.head,
            "token": lease.token,
            "limit": limit,
            "lease": sql.delay(relay.lease),
        }

        async def mark_and_claim(conn: AsyncConnection) -> list[Any]:
            if sql.postgresql:
                return list((await conn.execute(sql.mark_and_continue, params)).all())
            # SQLite: in one transaction, the marks and the lease passed on (it keeps
            # its end and its token: no date to read back), then the rows it covers.
            await conn.execute(sql.mark_and_pass, params)
            rows = (await conn.execute(sql.rows_after, params)).all()
            if not rows or not rows[0][3]:  # nothing more, or the lease was not passed on
                return []
            return [(row_id, text, attempts, lease.token) for row_id, text, attempts, _ in rows]

        rows = await self._transact(mark_and_claim, undo=self._hand_back)
        self._count(sent)
        # On SQLite the lease kept its end; on PostgreSQL it got a new one.
        return self._lease(rows, started + relay.lease if sql.postgresql else lease.deadline)

    def _lease(self, rows: list[Any], deadline: float) -> Lease | None:
        """Return the lease of the rows a claim returned (id, payload, attempts, token)."""
        if not rows:
            return None
        return Lease(
            token=rows[0][3],
            deadline=deadline,
            rows=[read_row(row_id, text, attempts) for row_id, text, attempts, _ in rows],
            head=rows[0][0],
        )

    async def _hand_back(self, conn: AsyncConnection, rows: list[Any]) -> None:
        """Give back the lease a claim took, when its transaction cannot be kept."""
        if rows:
            await conn.execute(self.sql.release, {"head": rows[0][0], "token": rows[0][3]})

    @staticmethod
    def _first_unsent(lease: Lease, sent: list[int]) -> int | None:
        """Return the row of the lease after the last one sent, if the lease has one."""
        if lease.head is None:
            return None
        last = sent[-1] if sent else lease.head - 1
        return next((row.id for row in lease.rows if row.id > last), None)

    async def _claim(self, limit: int) -> Lease | None:
        relay = self.relay
        sql = self.sql
        started = time.monotonic()
        params = {"the_stream": self.stream, "limit": limit, "lease": sql.delay(relay.lease)}

        async def claim(conn: AsyncConnection) -> list[Any]:
            if sql.postgresql:
                return list((await conn.execute(sql.claim, params)).all())
            head = (await conn.execute(sql.claim_head, params)).first()
            if head is None:
                return []
            rows = await conn.execute(sql.rows_from, {**params, "head": head[0]})
            return [(*row, head[1]) for row in rows]

        rows = await self._transact(claim, undo=self._hand_back)
        return self._lease(rows, started + relay.lease)

    async def _hold(self, lease: Lease) -> bool:
        """Whether a send may start now: renew the lease when its end draws near."""
        relay = self.relay
        if lease.head is None:
            return False
        if time.monotonic() + 2 * relay.send_timeout < lease.deadline:
            return True
        started = time.monotonic()
        params = {"head": lease.head, "token": lease.token, "lease": self.sql.delay(relay.lease)}

        async def renew(conn: AsyncConnection) -> list[Any]:
            return list((await conn.execute(self.sql.renew, params)).scalars())

        try:
            tokens = await self._transact(renew)
        except (SQLAlchemyError, OSError) as exc:
            logger.warning(
                "outbox relay: cannot renew the lease of stream %r (%s); it stops until "
                "the lease ends",
                self.stream,
                error_reason(exc),
            )
            return False
        if not tokens:
            self._lost(lease)
            return False
        lease.token = tokens[0]
        lease.deadline = started + relay.lease
        return True

    def _lost(self, lease: Lease) -> None:
        lease.head = None
        logger.warning(
            "outbox relay: stream %r was taken by another relay; this one stops sending it",
            self.stream,
        )

    async def _settle(
        self, lease: Lease, sent: list[int], after: int | None, *, free: bool = False
    ) -> int:
        """Mark the rows of ``sent`` delivered, in one statement that moves the lease on.

        The lease goes to ``after`` (the next row to send, ``None`` if none is left), or,
        with ``free``, ends there: the stream is due at once. Return how many were marked.
        """
        sql = self.sql
        if not sent:
            if free and lease.head is not None:
                params = {"head": lease.head, "token": lease.token}

                async def release(conn: AsyncConnection) -> None:
                    await conn.execute(sql.release, params)

                await self._transact(release)
                lease.head = None
            return 0
        statement = sql.mark_and_release if free else sql.mark_and_hold
        ids = [*sent, after] if after is not None else list(sent)
        params = {"ids": ids, "next": after if after is not None else -1}
        params |= {"head": lease.head, "token": lease.token}

        async def mark(conn: AsyncConnection) -> list[Any]:
            return list((await conn.execute(statement, params)).all())

        result = await self._transact(mark)
        count = self._count(sent)
        if free or after is None:
            lease.head = None
        elif (after, lease.token) in {(row_id, at) for row_id, at in result}:
            lease.head = after
        else:
            self._lost(lease)
        return count

    def _count(self, sent: list[int]) -> int:
        """Count the rows of ``sent`` as delivered, empty it and return how many."""
        count = len(sent)
        self.delivered += count
        self.relay.delivered += count
        sent.clear()
        return count

    async def _postpone(self, lease: Lease, row: Row, reason: str) -> None:
        relay = self.relay
        delay = relay.backoff.delay(row.attempts + 1)
        params = {
            "row_id": row.id,
            "token": lease.token,
            "reason": reason,
            "delay": self.sql.delay(delay),
        }
        if await self._record(self.sql.postpone, params, row, reason):
            logger.warning(
                "outbox relay: sending row %s of stream %r failed (attempt %s): %s; "
                "the stream waits %.1fs",
                row.id,
                self.stream,
                row.attempts + 1,
                reason,
                delay,
            )

    async def _bury(self, lease: Lease, row: Row, reason: str, *, tried: int) -> bool:
        """Set ``row`` dead with ``reason``; return whether that was recorded."""
        relay = self.relay
        params = {"row_id": row.id, "token": lease.token, "reason": reason, "tried": tried}
        buried = await self._record(self.sql.bury, params, row, reason)
        if buried:
            relay.dead += 1
            then = "waits for an operator" if relay.block_on_dead else "goes on"
            logger.error(
                "outbox relay: row %s of stream %r is dead after %s attempts: %s; "
                "its stream %s (list the dead rows with `messagebus-relay dead list`)",
                row.id,
                self.stream,
                row.attempts + tried,
                reason,
                then,
            )
        return buried

    async def _record(self, statement: Any, params: dict[str, Any], row: Row, reason: str) -> bool:
        """Run a statement that records a row's failure; a database error is logged only.

        Recording a failure must never stop the relay: the row keeps its previous state
        and is tried again once the lease ends.
        """

        async def record(conn: AsyncConnection) -> int:
            return (await conn.execute(statement, params)).rowcount

        try:
            recorded = await self._transact(record)
        except (SQLAlchemyError, OSError) as exc:
            logger.error(
                "outbox relay: cannot record the failure of row %s of stream %r (%s): %s",
                row.id,
                self.stream,
                reason,
                error_reason(exc),
            )
            return False
        if not recorded:
            logger.warning(
                "outbox relay: stream %r was taken by another relay; this one stops sending it",
                self.stream,
            )
        return bool(recorded)
