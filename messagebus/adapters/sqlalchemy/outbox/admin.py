"""What an operator does with an outbox: see its backlog, and list, retry or discard dead rows.

A row is *pending* while it is neither delivered nor dead; it is *dead* once the relay
gave up on it (``dead_at`` set, the reason in ``last_error``). :class:`AsyncOutboxAdmin`
reads and changes the table with short transactions of its own, so it can run next to
the relays, from a maintenance script or from ``messagebus-relay dead|status``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, MetaData, Table, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from messagebus.adapters.sqlalchemy.tables import messagebus_tables

__all__ = ["AsyncOutboxAdmin", "DeadRow", "OutboxStatus", "StreamStatus"]


@dataclass(frozen=True)
class DeadRow:
    """An outbox row the relay gave up on."""

    id: int
    """The row's id: its place in the order of delivery."""
    message_id: uuid.UUID
    """The id of the message."""
    stream: str
    """The stream the row belongs to."""
    type: str
    """The message type, ``{name}_v{schema_version}``."""
    attempts: int
    """How many times the relay tried to send it."""
    reason: str | None
    """Why the last attempt failed (``last_error``)."""
    created_at: datetime
    """When the row was written."""
    dead_at: datetime
    """When the relay gave up on it."""


@dataclass(frozen=True)
class StreamStatus:
    """The backlog of one stream: its pending rows and its dead rows."""

    stream: str
    """The name of the stream."""
    pending: int
    """How many of its rows wait to be delivered."""
    oldest_pending_age: timedelta | None
    """How long ago its oldest pending row was written; ``None`` if none is pending."""
    dead: int
    """How many of its rows are dead."""


@dataclass(frozen=True)
class OutboxStatus:
    """A snapshot of an outbox table: what waits, what was delivered, what is dead."""

    pending: int
    """Rows waiting to be delivered, due or in their backoff."""
    delivered: int | None
    """Rows delivered and still in the table (see ``keep_delivered``); ``None`` if not counted."""
    dead: int
    """Rows the relay gave up on."""
    streams: tuple[StreamStatus, ...]
    """One entry per stream with a pending or a dead row, by name."""

    @property
    def oldest_pending_age(self) -> timedelta | None:
        """The age of the oldest pending row of all streams: the delay of the pipeline."""
        ages = [s.oldest_pending_age for s in self.streams if s.oldest_pending_age is not None]
        return max(ages, default=None)


class AsyncOutboxAdmin:
    """Reads the backlog of an outbox table and lists, retries or discards its dead rows.

    :param engine: an async engine on the database of the outbox.
    :param outbox: the outbox table; by default the one
        :func:`~messagebus.adapters.sqlalchemy.messagebus_tables` makes with ``prefix``.
    :param prefix: the table prefix, when ``outbox`` is not given.

    Retrying makes rows pending again, with their attempts counted from zero, due at
    once; ``last_error`` stays, as a record, until a later attempt fails. Discarding
    deletes them: the message is then never sent. Both only ever touch dead rows, so a
    mistyped id cannot delete a pending or a delivered row.
    """

    def __init__(
        self, engine: AsyncEngine, *, outbox: Table | None = None, prefix: str = "messagebus_"
    ) -> None:
        self.engine = engine
        self.outbox = (
            outbox if outbox is not None else messagebus_tables(MetaData(), prefix=prefix).outbox
        )

    @property
    def _dead(self) -> ColumnElement[bool]:
        return self.outbox.c.dead_at.is_not(None)

    async def dead_rows(
        self, *, stream: str | None = None, limit: int | None = None
    ) -> list[DeadRow]:
        """Return the dead rows, of ``stream`` or of every stream, oldest first."""
        o = self.outbox.c
        query = (
            select(
                o.id,
                o.message_id,
                o.stream,
                o.type,
                o.attempts,
                o.last_error,
                o.created_at,
                o.dead_at,
            )
            .where(self._dead)
            .order_by(o.id)
            .limit(limit)
        )
        if stream is not None:
            query = query.where(o.stream == stream)
        async with self.engine.connect() as connection:
            return [DeadRow(*row) for row in await connection.execute(query)]

    async def retry(self, *ids: int, stream: str | None = None) -> int:
        """Make the dead rows ``ids``, or those of ``stream``, pending again; return how many.

        :raises ValueError: if neither ids nor a stream are given: :meth:`retry_all`
            retries every dead row.
        """
        return await self._retry(self._chosen("retry", ids, stream))

    async def retry_all(self) -> int:
        """Make every dead row pending again; return how many."""
        return await self._retry(self._dead)

    async def discard(self, *ids: int, stream: str | None = None) -> int:
        """Delete the dead rows ``ids``, or those of ``stream``; return how many.

        :raises ValueError: if neither ids nor a stream are given: :meth:`discard_all`
            deletes every dead row.
        """
        return await self._discard(self._chosen("discard", ids, stream))

    async def discard_all(self) -> int:
        """Delete every dead row; return how many."""
        return await self._discard(self._dead)

    def _chosen(self, verb: str, ids: Sequence[int], stream: str | None) -> ColumnElement[bool]:
        if not ids and stream is None:
            raise ValueError(
                f"Name the dead rows to {verb} (their ids) or a stream; "
                f"{verb}_all() {verb}s every dead row"
            )
        chosen = self._dead
        if ids:
            chosen &= self.outbox.c.id.in_(ids)
        if stream is not None:
            chosen &= self.outbox.c.stream == stream
        return chosen

    async def _retry(self, chosen: ColumnElement[bool]) -> int:
        o = self.outbox.c
        # Due at once whatever the clocks say: the row was written before now.
        statement = (
            update(self.outbox)
            .where(chosen)
            .values(dead_at=None, attempts=0, available_at=o.created_at)
        )
        async with self.engine.begin() as connection:
            return int((await connection.execute(statement)).rowcount)

    async def _discard(self, chosen: ColumnElement[bool]) -> int:
        async with self.engine.begin() as connection:
            return int((await connection.execute(delete(self.outbox).where(chosen))).rowcount)

    async def status(self, *, count_delivered: bool = True) -> OutboxStatus:
        """Count the pending, delivered and dead rows, and the backlog of each stream.

        The ages are measured from the ``created_at`` of the rows to this host's clock.
        Counting the delivered rows reads all of them: on a table that keeps millions,
        pass ``count_delivered=False`` for a frequent look (the metrics do).
        """
        o = self.outbox.c
        alive = o.dead_at.is_(None)
        per_stream = (
            select(
                o.stream,
                func.count(case((alive, 1))),
                func.min(case((alive, o.created_at))),
                func.count(case((self._dead, 1))),
            )
            .where(o.delivered_at.is_(None))
            .group_by(o.stream)
            .order_by(o.stream)
        )
        delivered = select(func.count()).select_from(self.outbox).where(o.delivered_at.is_not(None))
        async with self.engine.connect() as connection:
            rows: list[Any] = list(await connection.execute(per_stream))
            delivered_count = (
                int((await connection.execute(delivered)).scalar_one()) if count_delivered else None
            )
        now = datetime.now(UTC)
        streams = tuple(
            StreamStatus(
                stream=stream,
                pending=int(pending),
                oldest_pending_age=None if oldest is None else max(now - oldest, timedelta(0)),
                dead=int(dead),
            )
            for stream, pending, oldest, dead in rows
        )
        return OutboxStatus(
            pending=sum(s.pending for s in streams),
            delivered=delivered_count,
            dead=sum(s.dead for s in streams),
            streams=streams,
        )
