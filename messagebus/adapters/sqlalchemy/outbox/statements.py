"""The SQL of the relay, built once per relay, with the database's clock.

Every time the relay compares or sets is the database's: ``now()`` on PostgreSQL, the
``'now'`` of SQLite (written in the format SQLAlchemy stores, so that dates compare as
text). A relay host whose clock is behind or ahead of the database's changes nothing.

A pending row is one with ``delivered_at`` and ``dead_at`` both ``NULL``. The head of a
stream is its pending row of smallest ``id``; the stream is due when its head's
``available_at`` has passed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import (
    Interval,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.sql.elements import BindParameter, ColumnElement

__all__ = ["RelayStatements"]

# SQLAlchemy stores a SQLite datetime as text with six decimals; 'now' has three.
_SQLITE_FORMAT = "%Y-%m-%d %H:%M:%f000"


class RelayStatements:
    """The statements one relay runs on ``outbox``, for the database of ``dialect``.

    :param block_on_dead: whether a dead row stops its stream (the streams that hold one
        are never due), or the stream goes on with the rows after it.
    """

    def __init__(self, outbox: Table, dialect: str, *, block_on_dead: bool) -> None:
        self.outbox = outbox
        self.dialect = dialect
        self.postgresql = dialect == "postgresql"
        o = outbox.c
        now = self.now()
        self.pending = and_(o.delivered_at.is_(None), o.dead_at.is_(None))
        self.block_on_dead = block_on_dead

        stream = bindparam("the_stream", type_=o.stream.type)
        head = outbox.alias("head")
        head_due = (
            select(head.c.available_at)
            .where(head.c.stream == stream, head.c.delivered_at.is_(None), head.c.dead_at.is_(None))
            .order_by(head.c.id)
            .limit(1)
            .scalar_subquery()
            <= now
        )
        first_rows = (
            select(o.id)
            .where(o.stream == stream, self.pending)
            .order_by(o.id)
            .limit(bindparam("limit"))
        )
        claim_where = [o.id.in_(first_rows.scalar_subquery()), head_due]
        if block_on_dead:
            claim_where.append(~self._blocked_by(stream))
        self.claim = (
            update(outbox)
            .where(*claim_where)
            .values(available_at=self.later("lease"))
            .returning(o.id, cast(o.payload, Text), o.attempts, o.available_at)
        )
        """Lease the first ``limit`` pending rows of ``stream`` if its head is due.

        The new ``available_at`` of the rows is the lease's end: no relay claims them
        before it, and the value is the token that the owner's later statements check.
        """
        ids: BindParameter[Any] = bindparam("ids", expanding=True)
        token = bindparam("token", type_=o.available_at.type)
        self.deliver = (
            update(outbox)
            .where(o.id.in_(ids), o.delivered_at.is_(None))
            .values(delivered_at=now, attempts=o.attempts + 1)
        )
        """Mark the rows of ``ids`` delivered."""
        self.release = (
            update(outbox)
            .where(o.id.in_(ids), self.pending, o.available_at == token)
            .values(available_at=now)
        )
        """End the lease ``token`` on the rows of ``ids``: they are due at once."""
        self.renew = (
            update(outbox)
            .where(o.id.in_(ids), self.pending, o.available_at == token)
            .values(available_at=self.later("lease"))
            .returning(o.available_at)
        )
        """Extend the lease ``token`` on the rows of ``ids``; returns the rows still held."""
        one = bindparam("row_id", type_=o.id.type)
        self.postpone = (
            update(outbox)
            .where(o.id == one, self.pending, o.available_at == token)
            .values(
                attempts=o.attempts + 1,
                last_error=bindparam("reason", type_=o.last_error.type),
                available_at=self.later("delay"),
            )
        )
        """Record a failed attempt of a held row: its reason, and when to try again."""
        self.bury = (
            update(outbox)
            .where(o.id == one, self.pending, o.available_at == token)
            .values(
                attempts=o.attempts + bindparam("tried"),
                last_error=bindparam("reason", type_=o.last_error.type),
                dead_at=now,
                available_at=now,  # the lease ends: a retry only has to clear dead_at
            )
        )
        """Set a held row dead, with its reason; ``tried`` is 1 if it was sent, 0 if not."""
        self.lock = select(func.pg_try_advisory_xact_lock(bindparam("key")))
        """Take the stream's claim lock for the transaction (PostgreSQL only)."""

    def _blocked_by(self, stream: ColumnElement[Any]) -> ColumnElement[bool]:
        """Whether ``stream`` holds a dead row that is not discarded."""
        dead = self.outbox.alias("dead")
        return exists().where(
            dead.c.stream == stream,
            dead.c.delivered_at.is_(None),
            dead.c.dead_at.is_not(None),
        )

    def now(self) -> ColumnElement[Any]:
        """Return the database's current time, comparable with the stored dates."""
        if self.postgresql:
            return func.now()
        return func.strftime(_SQLITE_FORMAT, "now")

    def later(self, name: str) -> ColumnElement[Any]:
        """Return the database's time plus the bound parameter ``name`` (see :meth:`delay`)."""
        if self.postgresql:
            return func.now() + bindparam(name, type_=Interval())
        return func.strftime(_SQLITE_FORMAT, "now", bindparam(name))

    def delay(self, seconds: float) -> Any:
        """Return the value of a :meth:`later` parameter that adds ``seconds``."""
        if self.postgresql:
            return timedelta(seconds=seconds)
        return f"+{seconds:.6f} seconds"

    def due_streams(self, window: int | None) -> Any:
        """Return the query of the streams and whether their heads are due.

        Per stream with a pending row among the ``window`` oldest ones (``None``: all):
        the stream, its number of rows in the window and whether its head is due, the
        oldest head first.
        """
        o = self.outbox.c
        rows = select(o.stream, o.id).where(self.pending).order_by(o.id)
        if window is not None:
            rows = rows.limit(window)
        sub = rows.subquery()
        heads = (
            select(sub.c.stream, func.min(sub.c.id).label("head"), func.count().label("rows"))
            .group_by(sub.c.stream)
            .subquery()
        )
        query = (
            select(heads.c.stream, heads.c.rows, (o.available_at <= self.now()).label("due"))
            .join(self.outbox, o.id == heads.c.head)
            .order_by(heads.c.head)
        )
        if self.block_on_dead:
            query = query.where(~self._blocked_by(heads.c.stream))
        return query

    def count_pending(self) -> Any:
        """Return the query of the number of pending rows."""
        return select(func.count()).select_from(self.outbox).where(self.pending)
