"""The SQL inbox: a consumer's handled message ids, claimed in the unit of work's transaction.

A claim is one ``INSERT`` into the inbox table (:func:`messagebus_tables`), on the
connection of the running :class:`AsyncSqlAlchemyUnitOfWork` transaction, so the row is
committed with the handlers' writes or not at all. On PostgreSQL and SQLite the insert
does nothing on a conflict, and a transaction inserting an id that another one holds
waits for it: if the other commits, the claim fails cleanly (no error, nothing to roll
back but the caller's own transaction); if it rolls back, the claim succeeds. Other
databases claim in a savepoint and read an integrity error as "already handled".
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy.exc
from sqlalchemy import Insert, MetaData, Table, delete, insert
from sqlalchemy.dialects import postgresql, sqlite

from messagebus.adapters.sqlalchemy._async.unit_of_work import AsyncSqlAlchemyUnitOfWork
from messagebus.adapters.sqlalchemy._compat import AsyncEngine
from messagebus.adapters.sqlalchemy.tables import MessagebusTables, messagebus_tables
from messagebus.ports.inbox import AsyncAbstractInbox
from messagebus.service._async.unit_of_work import AsyncUnitOfWorkTransaction

__all__ = ["AsyncSqlAlchemyInbox"]


@functools.cache
def _default_tables() -> MessagebusTables:
    return messagebus_tables(MetaData())


class AsyncSqlAlchemyInbox(AsyncAbstractInbox):
    """An inbox in the inbox table, written in the SQL unit of work's transaction.

    :param tables: the tables whose inbox to use; by default those of the unit of work
        of each transaction (its ``messagestore.tables``), so one prefix serves both, or
        the ``messagebus_`` ones if its message store is not a SQL one.

    .. versionadded:: 0.17
    """

    def __init__(self, tables: MessagebusTables | None = None) -> None:
        self.tables = tables
        self._statements: dict[tuple[str, str], tuple[Insert, bool]] = {}

    async def claim(
        self,
        transaction: AsyncUnitOfWorkTransaction[Any],
        message_id: UUID,
        *,
        consumer: str,
        received_at: datetime,
    ) -> bool:
        """Insert the inbox row of ``message_id``; ``False`` if ``consumer`` has it already.

        :raises TypeError: the transaction is not one of a SQL unit of work.
        """
        uow = transaction.uow
        if not isinstance(uow, AsyncSqlAlchemyUnitOfWork):
            raise TypeError(
                f"AsyncSqlAlchemyInbox writes in a SQL transaction, not in one of "
                f"{type(uow).__name__}: use an AsyncSqlAlchemyUnitOfWork, or "
                f"AsyncInMemoryInbox with an in-memory unit of work"
            )
        connection = uow.connection
        tables = self.tables or getattr(uow.messagestore, "tables", None) or _default_tables()
        table = tables.inbox
        statement, returns = self._statement(table, connection.dialect.name)
        row = {
            "message_id": message_id,
            "consumer": consumer,
            "received_at": received_at,
            # The row is only seen once the handlers' transaction commits.
            "handled_at": datetime.now(UTC),
        }
        if returns:
            result = await connection.execute(statement, row)
            return result.first() is not None
        try:
            async with connection.begin_nested():
                await connection.execute(statement, row)
        except sqlalchemy.exc.IntegrityError:
            return False
        return True

    async def delete_handled_before(
        self, engine: AsyncEngine, before: datetime, *, consumer: str | None = None
    ) -> int:
        """Delete the rows of messages handled before ``before``; return how many.

        Run it now and then, with a date older than the longest time the broker may
        deliver a message again: a message redelivered after its row is gone would be
        handled a second time.

        :param engine: the engine of the database of the inbox.
        :param before: an aware datetime.
        :param consumer: only this consumer's rows; every consumer's by default.

        The rows are those of the ``tables`` given to the inbox, or of the default
        ``messagebus_`` tables.
        """
        table = (self.tables or _default_tables()).inbox
        statement = delete(table).where(table.c.handled_at < before)
        if consumer is not None:
            statement = statement.where(table.c.consumer == consumer)
        async with engine.begin() as connection:
            result = await connection.execute(statement)
        return result.rowcount

    def _statement(self, table: Table, dialect: str) -> tuple[Insert, bool]:
        key = (table.name, dialect)
        cached = self._statements.get(key)
        if cached is not None:
            return cached
        statement: Insert
        if dialect == "postgresql":
            statement = postgresql.insert(table).on_conflict_do_nothing()
        elif dialect == "sqlite":
            statement = sqlite.insert(table).on_conflict_do_nothing()
        else:
            self._statements[key] = (insert(table), False)
            return self._statements[key]
        self._statements[key] = (statement.returning(table.c.message_id), True)
        return self._statements[key]
