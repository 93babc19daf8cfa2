"""The SQL dead letters: a table of the messages a consumer gave up on, with the reason.

``{prefix}dead_letters``, added to your metadata by :func:`dead_letters_table`:

- ``id`` (big integer, autoincrement, primary key): the order they were set aside in.
- ``consumer``: the name of the consumer that gave up, ``NULL`` if not given.
- ``dead_at``: when.
- ``reason``: why, starting with a short code (``malformed: ...``, ``failed: ...``).
- ``headers`` (JSON): the headers the message came with.
- ``body`` (binary): the bytes as received, to replay or inspect.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)

from messagebus.adapters.sqlalchemy._compat import AsyncEngine
from messagebus.adapters.sqlalchemy.tables import UtcDateTime, order_id
from messagebus.ports.dead_letters import AsyncAbstractDeadLetters
from messagebus.service.consumer import AsyncConsumer, Outcome

__all__ = ["AsyncSqlAlchemyDeadLetters", "dead_letters_table"]


def dead_letters_table(metadata: MetaData, *, prefix: str = "messagebus_") -> Table:
    """Add the dead letters table, ``{prefix}dead_letters``, to ``metadata``; return it.

    :param metadata: the metadata of your application, so your migrations create it.
    :param prefix: the start of its name, as given to :func:`messagebus_tables`.

    .. versionadded:: 0.17
    """
    return Table(
        f"{prefix}dead_letters",
        metadata,
        order_id(),
        Column("consumer", String(255), nullable=True),
        Column("dead_at", UtcDateTime(), nullable=False),
        Column("reason", Text, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("body", LargeBinary, nullable=False),
    )


class AsyncSqlAlchemyDeadLetters(AsyncAbstractDeadLetters):
    """Dead letters written to a table, each in a transaction of its own.

    :param engine: the engine to write with.
    :param table: the table made by :func:`dead_letters_table`.
    :param consumer: the name written in the ``consumer`` column.

    .. versionadded:: 0.17
    """

    def __init__(self, engine: AsyncEngine, table: Table, *, consumer: str | None = None) -> None:
        self.engine = engine
        self.table = table
        self.consumer = consumer

    async def put(self, raw: bytes, headers: Mapping[str, str], reason: str) -> None:
        """Insert a row and commit it; raise if the database cannot be written to."""
        row = {
            "consumer": self.consumer,
            "dead_at": datetime.now(UTC),
            "reason": reason,
            "headers": {str(key): str(value) for key, value in headers.items()},
            "body": bytes(raw),
        }
        async with self.engine.begin() as connection:
            await connection.execute(insert(self.table), row)

    async def replay(
        self, consumer: AsyncConsumer[Any], *, ids: Iterable[int] | None = None
    ) -> dict[Outcome, int]:
        """Give the dead letters to ``consumer`` again, oldest first; count the outcomes.

        Once the cause is fixed (a handler, a registered version), an operator replays
        the letters: each one the consumer takes (handled, duplicate, or dead-lettered
        anew, as a new row) is deleted; one it gives back (retry later) stays.

        :param ids: replay only these rows; all of them by default.
        """
        query = select(self.table.c.id, self.table.c.body, self.table.c.headers)
        if ids is not None:
            query = query.where(self.table.c.id.in_(list(ids)))
        async with self.engine.connect() as connection:
            letters = (await connection.execute(query.order_by(self.table.c.id))).all()
        outcomes: Counter[Outcome] = Counter()
        for letter in letters:
            outcome = await consumer.receive(letter.body, letter.headers)
            outcomes[outcome] += 1
            if outcome.acknowledge:
                async with self.engine.begin() as connection:
                    await connection.execute(delete(self.table).where(self.table.c.id == letter.id))
        return outcomes
