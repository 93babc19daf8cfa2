"""How a commit wakes the relay, so that it does not have to poll hard.

Two signals, both best effort (the relay still polls every ``poll_interval``):

- **in the process**: the unit of work calls :func:`outbox_committed` after a commit that
  wrote outbox rows; every relay of the same process running on the same database and
  table is woken at once. This is what wakes a relay on SQLite.
- **across processes, on PostgreSQL**: the unit of work runs :func:`notify_statement` in
  the transaction that wrote outbox rows (``pg_notify``, delivered by PostgreSQL at
  commit, never for a rolled back transaction); the relay listens on the channel named
  after the outbox table with a connection of its own (``LISTEN``, asyncpg or psycopg).

Both name the streams that got rows, when they are few (at most
:data:`NOTIFIED_STREAMS`): the relay then claims those streams at once, without first
asking the database which streams are due. An empty payload, or no streams, means "look
at every stream".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, String, bindparam, func, select
from sqlalchemy.engine import URL

from messagebus.adapters.sqlalchemy.outbox.reasons import error_reason

if TYPE_CHECKING:  # the unit of work imports this module, sync ones too
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["NOTIFIED_STREAMS", "listen", "notify_statement", "outbox_committed"]

logger = logging.getLogger("messagebus.relay")

NOTIFIED_STREAMS = 4
"""The most streams a transaction names in its wake-up; with more, it asks for a full look."""

Wake = Callable[[Collection[str] | None], None]
"""Wakes a relay: with the streams that got rows, or ``None`` for "look at every stream"."""

_Key = tuple[str, str]
_waiting: dict[_Key, set[Wake]] = {}


def _key(url: URL, table: str) -> _Key:
    # Two engines on one database are one key: the URL without its password.
    return (url.render_as_string(hide_password=True), table)


def outbox_committed(url: URL, table: str, streams: Collection[str] | None = None) -> None:
    """Wake the relays of this process that deliver ``table`` on the database at ``url``.

    Call it after the commit of a transaction that wrote rows to the outbox table
    ``table``, with the streams of those rows if you know them (``None``: the relays look
    at every stream); it returns at once, from any thread.

    .. versionchanged:: 0.17
       ``streams``.
    """
    for wake in tuple(_waiting.get(_key(url, table), ())):
        wake(streams)


def notify_statement(table: str) -> Select[Any]:
    """Return the statement that tells the relays listening on PostgreSQL about new rows.

    Run it in a transaction that wrote rows to the outbox table ``table``, with the
    parameter ``stream`` set to the stream of the rows, once per stream (PostgreSQL
    delivers each notification at commit only, and once per transaction); without the
    parameter, the relays look at every stream.

    .. versionchanged:: 0.17
       The ``stream`` parameter.
    """
    return select(func.pg_notify(table, bindparam("stream", "", type_=String())))


def _streams_of(payload: str) -> Collection[str] | None:
    """Return the stream a notification names, or ``None`` if it names none."""
    return (payload,) if payload else None


@contextlib.asynccontextmanager
async def listen(
    engine: AsyncEngine, table: str, wake: Wake
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Call ``wake`` (from the event loop) whenever rows are committed to ``table``.

    ``wake`` receives the streams that got rows, or ``None`` when they are not known.

    In the process always; on PostgreSQL also from other processes, through ``LISTEN``
    on a connection of its own that is dropped at the end. A listener that cannot start
    is logged: the relay then only polls. It yields a function to await now and then
    (the relay does at each poll): it listens again if the connection was lost.
    """
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()

    def threadsafe_wake(streams: Collection[str] | None) -> None:
        if threading.get_ident() == loop_thread:
            # A commit in the relay's own loop (the usual case): no need to write to the
            # loop's self-pipe, and to read it back, to wake it.
            loop.call_soon(wake, streams)
        else:
            loop.call_soon_threadsafe(wake, streams)

    key = _key(engine.url, table)
    _waiting.setdefault(key, set()).add(threadsafe_wake)
    listener: _Listener | None = None

    async def keep_listening() -> None:
        if listener is not None and not listener.alive:
            await listener.stop()
            await listener.start()

    try:
        if engine.dialect.name == "postgresql":
            listener = _Listener(engine, table, wake)
            await listener.start()
        yield keep_listening
    finally:
        _waiting[key].discard(threadsafe_wake)
        if not _waiting[key]:
            del _waiting[key]
        if listener is not None:
            await listener.stop()


class _Listener:
    """A connection that LISTENs on the outbox table's channel, asyncpg or psycopg."""

    def __init__(self, engine: AsyncEngine, channel: str, wake: Wake) -> None:
        self.engine = engine
        self.channel = channel
        self.wake = wake
        self.conn: Any = None
        self.raw: Any = None
        self.task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        """Whether the listening connection is still open."""
        raw = self.raw
        if raw is None:
            return False
        if self.task is None:
            return not raw.is_closed()  # asyncpg
        return not self.task.done() and not raw.closed  # psycopg

    async def start(self) -> None:
        """Open the connection and listen; log, and leave it to polling, if that fails."""
        try:
            self.conn = await self.engine.connect()
            await self.conn.execution_options(isolation_level="AUTOCOMMIT")
            self.raw = raw = (await self.conn.get_raw_connection()).driver_connection
            if self.engine.dialect.driver == "asyncpg":
                await raw.add_listener(self.channel, lambda *args: self.wake(_streams_of(args[-1])))
            else:
                await self.conn.exec_driver_sql(f'LISTEN "{self.channel}"')
                self.task = asyncio.create_task(self._notifies(raw))
        except Exception as exc:  # the driver's own errors too: listening is best effort
            logger.warning(
                "outbox relay: cannot LISTEN for new rows (%s); it polls every poll_interval",
                error_reason(exc),
            )
            await self.stop()

    async def _notifies(self, raw: Any) -> None:
        with contextlib.suppress(Exception):
            async for notify in raw.notifies():
                self.wake(_streams_of(notify.payload))

    async def stop(self) -> None:
        """Stop listening and drop the connection (it is not worth resetting)."""
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        conn, self.conn, self.raw = self.conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()
