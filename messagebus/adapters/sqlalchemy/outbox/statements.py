"""The SQL of the relay, built once per relay, with the database's clock.

Every time the relay compares or sets is the database's: ``now()`` on PostgreSQL, the
``'now'`` of SQLite (written in the format SQLAlchemy stores, so that dates compare as
text). A relay host whose clock is behind or ahead of the database's changes nothing.

A pending row is one with ``delivered_at`` and ``dead_at`` both ``NULL``. The head of a
stream is its pending row of smallest ``id``; the stream is due when its head's
``available_at`` has passed.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    Interval,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.sql.elements import BindParameter, ColumnElement

__all__ = ["RelayStatements"]

# SQLAlchemy stores a SQLite datetime as text with six decimals; 'now' has three.
_SQLITE_FORMAT = "%Y-%m-%d %H:%M:%f000"
# Its now rounds up to the end of its millisecond: a row written by Python a few
# microseconds ago is due at once, not a poll later.
_SQLITE_NOW = "%Y-%m-%d %H:%M:%f999"


class RelayStatements:
    """The statements one relay runs on ``outbox``, for the database of ``dialect``.

    :param block_on_dead: whether a dead row stops its stream (the streams that hold one
        are never due), or the stream goes on with the rows after it.
    """

    def __init__(self, outbox: Table, dialect: str, *, block_on_dead: bool) -> None:  # noqa: PLR0915 - one per statement
        self.outbox = outbox
        self.dialect = dialect
        self.postgresql = dialect == "postgresql"
        o = outbox.c
        now = self.now()
        self.pending = and_(o.delivered_at.is_(None), o.dead_at.is_(None))
        self.block_on_dead = block_on_dead

        stream = bindparam("the_stream", type_=o.stream.type)
        token = bindparam("token", type_=o.available_at.type)
        head_id = bindparam("head", type_=o.id.type)
        stream_head = (
            select(o.id).where(o.stream == stream, self.pending).order_by(o.id).limit(1)
        ).scalar_subquery()
        claim_where = [o.id == stream_head, self.pending, o.available_at <= now]
        if block_on_dead:
            claim_where.append(~self._blocked_by(stream))
        # On PostgreSQL a relay that claims the same head at the same time waits for the
        # first one's commit, then checks the head again, leased: not due, no claim.
        self.claim_head = (
            update(outbox)
            .where(*claim_where)
            .values(available_at=self.later("lease"))
            .returning(o.id, o.available_at)
        )
        """Lease the head of ``stream`` if it is due: its ``available_at`` becomes the
        lease's end, the token the holder's later statements check. The rows behind the
        head need no lease: no relay claims a stream whose head is not due."""
        self.rows_from = (
            select(o.id, cast(o.payload, Text), o.attempts)
            .where(o.stream == stream, self.pending, o.id >= head_id)
            .order_by(o.id)
            .limit(bindparam("limit"))
        )
        """The first ``limit`` pending rows of ``stream`` from the leased head on."""
        claimed = self.claim_head.cte("claimed")
        self.claim = (
            select(o.id, cast(o.payload, Text), o.attempts, claimed.c.available_at)
            .join(claimed, o.id >= claimed.c.id)
            .where(o.stream == stream, self.pending)
            .order_by(o.id)
            .limit(bindparam("limit"))
        )
        """Both at once, in one round trip (PostgreSQL, whose CTEs may write)."""

        ids: BindParameter[Any] = bindparam("ids", expanding=True)
        after = bindparam("next", type_=o.id.type)
        held = outbox.alias("held")
        head_at = select(held.c.available_at).where(held.c.id == head_id).scalar_subquery()
        still_held = head_at == token

        def mark(next_available_at: Any) -> Any:
            moving = o.id == after
            return (
                update(outbox)
                .where(o.id.in_(ids), o.delivered_at.is_(None))
                .values(
                    delivered_at=case((moving, o.delivered_at), else_=now),
                    attempts=case((moving, o.attempts), else_=o.attempts + 1),
                    available_at=case(
                        (and_(moving, still_held), next_available_at), else_=o.available_at
                    ),
                )
                # The new head's available_at (the lease, if it moved), NULL for the
                # rows marked: no date to read back for each of them.
                .returning(o.id, case((moving, o.available_at)))
            )

        self.mark_and_hold = mark(token)
        """Mark the rows of ``ids`` delivered but ``next``, which gets the lease ``token``
        if the holder's ``head`` still has it: the lease moves to the new head."""
        self.mark_and_release = mark(now)
        """Mark the rows of ``ids`` delivered but ``next``, due at once: the stream is free."""
        self.release = (
            update(outbox)
            .where(o.id == head_id, self.pending, o.available_at == token)
            .values(available_at=now)
        )
        """End the lease ``token`` held by ``head``: the stream is due at once."""
        self.deliver = (
            update(outbox)
            .where(o.id.in_(ids), o.delivered_at.is_(None))
            .values(delivered_at=now, attempts=o.attempts + 1)
        )
        """Mark the rows of ``ids`` delivered."""
        last = bindparam("last", type_=o.id.type)
        next_head = (
            select(func.min(o.id)).where(o.stream == stream, self.pending, o.id > last)
        ).scalar_subquery()
        self.move_head = (
            update(outbox)
            .where(o.id == next_head, o.available_at <= now, still_held)
            .values(available_at=self.later("lease"))
            .returning(o.id, o.available_at)
        )
        """Lease the stream's next head, after ``last``, if ``head`` still holds ``token``."""
        passing = o.id == next_head
        self.mark_and_pass = (
            update(outbox)
            .where(or_(and_(o.id.in_(ids), o.delivered_at.is_(None)), passing))
            .values(
                delivered_at=case((passing, o.delivered_at), else_=now),
                attempts=case((passing, o.attempts), else_=o.attempts + 1),
                available_at=case(
                    (and_(passing, o.available_at <= now, still_held), token),
                    else_=o.available_at,
                ),
            )
        )
        """Mark the rows of ``ids`` delivered, and pass the lease ``token`` on to the
        stream's next row after ``last`` if it is due and ``head`` still holds the lease:
        the lease keeps its end. With :attr:`rows_after`, in the same transaction, what
        :attr:`mark_and_continue` does in one statement on PostgreSQL (SQLite's CTEs
        cannot write), with no date to read back."""
        self.rows_after = (
            select(o.id, cast(o.payload, Text), o.attempts, o.available_at == token)
            .where(o.stream == stream, self.pending, o.id > last)
            .order_by(o.id)
            .limit(bindparam("limit"))
        )
        """The first ``limit`` pending rows of ``stream`` after ``last``, each with whether
        it holds the lease ``token``: the first one does if :attr:`mark_and_pass` passed
        the lease on to it."""
        marked = self.deliver.returning(o.id).cte("marked")
        moved = self.move_head.cte("moved")
        self.mark_and_continue = (
            select(o.id, cast(o.payload, Text), o.attempts, moved.c.available_at)
            .add_cte(marked)
            .join(moved, o.id >= moved.c.id)
            .where(o.stream == stream, self.pending)
            .order_by(o.id)
            .limit(bindparam("limit"))
        )
        """Mark ``ids`` delivered and lease the next rows, in one statement (PostgreSQL):
        a stream that keeps a relay busy costs one round trip and one commit per batch."""
        self.renew = (
            update(outbox)
            .where(o.id == head_id, self.pending, o.available_at == token)
            .values(available_at=self.later("lease"))
            .returning(o.available_at)
        )
        """Extend the lease ``token`` held by ``head``; returns nothing if it was lost."""
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

    def _blocked_by(
        self, stream: ColumnElement[Any], before: ColumnElement[Any] | None = None
    ) -> ColumnElement[bool]:
        """Whether ``stream`` holds a dead row that is not discarded (before ``before``).

        A scalar subquery with a LIMIT, not an EXISTS: the databases then probe the index
        of undelivered rows once per stream, instead of joining every undelivered row.
        """
        dead = self.outbox.alias("dead")
        conditions = [
            dead.c.delivered_at.is_(None),
            dead.c.stream == stream,
            dead.c.dead_at.is_not(None),
        ]
        if before is not None:
            conditions.append(dead.c.id < before)
        probe = select(dead.c.id).where(*conditions).limit(1).scalar_subquery()
        return probe.is_not(None)

    def now(self) -> ColumnElement[Any]:
        """Return the database's current time, comparable with the stored dates."""
        if self.postgresql:
            return func.now()
        return func.strftime(_SQLITE_NOW, "now")

    def later(self, name: str) -> ColumnElement[Any]:
        """Return the database's time plus the bound parameter ``name`` (see :meth:`delay`)."""
        if self.postgresql:
            return func.now() + bindparam(name, type_=Interval())
        return func.strftime(_SQLITE_FORMAT, "now", bindparam(name))

    def delay(self, seconds: float) -> Any:
        """Return the value of a :meth:`later` parameter that adds ``seconds``."""
        if self.postgresql:
            return timedelta(seconds=seconds)
        return f"{seconds:+.6f} seconds"

    def due_streams(self, window: int | None) -> Any:
        """Return the query of the streams and whether their heads are due.

        Per stream with a pending row among the ``window`` oldest ones (``None``: all):
        the stream, its number of rows in the window and whether its head is due, the
        oldest head first. Built once per window: building it takes longer than the
        database takes to run it, and the relay runs it on every wake-up.
        """
        built = self._built_due_streams
        query = built.get(window)
        if query is None:
            query = built[window] = self._build_due_streams(window)
        return query

    @functools.cached_property
    def _built_due_streams(self) -> dict[int | None, Any]:
        return {}

    def _build_due_streams(self, window: int | None) -> Any:
        o = self.outbox.c
        rows = select(o.stream, o.id).where(self.pending).order_by(o.id)
        index = next(
            (i.name for i in self.outbox.indexes if str(i.name).endswith("pending_id")), None
        )
        if not self.postgresql and index is not None:
            # SQLite would read the table in id order, the delivered rows first; the
            # ids come from the index of pending rows (SQLAlchemy has no construct for
            # its INDEXED BY), then the streams of those ids, by primary key.
            indexed = text(f'"{self.outbox.name}" INDEXED BY "{index}"')
            id_ = literal_column("id", o.id.type)
            ids = (
                select(id_)
                .select_from(indexed)
                .where(literal_column("delivered_at").is_(None))
                .where(literal_column("dead_at").is_(None))
                .order_by(id_)
            )
            window_ids = (ids.limit(window) if window is not None else ids).subquery()
            rows = select(o.stream, o.id).join(window_ids, o.id == window_ids.c.id)
        elif window is not None:
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
            query = query.where(~self._blocked_by(heads.c.stream, heads.c.head))
        return query

    def count_pending(self) -> Any:
        """Return the query of the number of pending rows."""
        return select(func.count()).select_from(self.outbox).where(self.pending)
