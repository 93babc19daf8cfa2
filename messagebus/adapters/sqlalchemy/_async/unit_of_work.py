"""The SQL unit of work: one connection and one database transaction per ``async with``.

``async with uow as transaction`` checks a connection out of the engine's pool and
begins a transaction on it; the repositories and the message store run their
statements on that connection (``transaction.connection``), so the models, the message
store and the outbox are committed, or rolled back, together.

The connection goes back to the pool when the transaction closes, however it ended
(commit, rollback, exception, cancellation): at the end of the block or, for a
detached transaction, on ``close()``, and before the published messages are sent
when the outbox is off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import sqlalchemy.exc

from messagebus.adapters.sqlalchemy._async.message_store import (
    AsyncSqlAlchemyMessageStoreRepository,
)
from messagebus.adapters.sqlalchemy._compat import AsyncConnection, AsyncEngine
from messagebus.adapters.sqlalchemy.errors import DatabaseUnavailableError
from messagebus.adapters.sqlalchemy.tables import MessagebusTables
from messagebus.domain.model import Message, TransactionError
from messagebus.ports.observability import AbstractMetricsStore, TMetricsStore
from messagebus.service._async.eventstream import AsyncEventstreamPublisher
from messagebus.service._async.unit_of_work import (
    AsyncAbstractUnitOfWork,
    AsyncUnitOfWorkTransaction,
    TRepositories,
)
from messagebus.service.eventstream import AbstractMessageSerializer

__all__ = ["AsyncSqlAlchemyUnitOfWork"]


class AsyncSqlAlchemyUnitOfWork(
    AsyncAbstractUnitOfWork[TRepositories, AsyncSqlAlchemyMessageStoreRepository, TMetricsStore]
):
    """A unit of work over a SQLAlchemy engine, with a SQL message store and an outbox.

    Subclass it and set your repositories in ``__init__``, built with the unit of
    work (see :class:`~messagebus.adapters.sqlalchemy.AsyncSqlAlchemyRepository`)::

        class UnitOfWork(AsyncSqlAlchemyUnitOfWork[BookRepository, SinkholeMetricsStore]):
            def __init__(self, engine) -> None:
                super().__init__(engine)
                self.books = BookRepository(self)

    Every handled message is written to the message store table; with the outbox on
    (the default), a published message is also written to the outbox table in the same
    transaction and nothing is sent after the commit: a relay sends the outbox rows.
    With ``outbox=False``, the published messages are sent by ``publisher`` after the
    commit, as with any unit of work: best effort.

    :param engine: the engine whose pool gives one connection per transaction.
    :param tables: the tables of the message store and outbox, as returned by
        :func:`~messagebus.adapters.sqlalchemy.messagebus_tables` for your metadata;
        by default tables named with the ``messagebus_`` prefix.
    :param outbox: write the published messages to the outbox table.
    :param stream: the stream the outbox rows are for: the relay delivers each stream
        in order, and on PostgreSQL several relays share the streams between them. A
        function of the message names one per message, say per aggregate
        (``lambda message: f"book-{message.id}"``): the order then holds within each.
        A name must fit the outbox's ``stream`` column (255 characters, no NUL): a
        wrong name is refused here, a wrong name returned by the function when the
        message is stored, before any of its rows is written.
    :param serializer: how a published message becomes the outbox row's payload; by
        default :class:`~messagebus.MessageSerializer`.
    :param publisher: sends the published messages after the commit; only with
        ``outbox=False``.
    :param metrics_store: counts transactions and messages; records nothing by default.
    :raises messagebus.ConfigurationError: if ``publisher`` is given with the outbox on,
        or if ``stream`` is a name the outbox cannot store.

    A transaction whose connection turns out to be dead (the database restarted, or
    closed it) raises :class:`~messagebus.adapters.sqlalchemy.DatabaseUnavailableError`
    instead of the driver's error: SQLAlchemy then drops every connection of the pool,
    so the next transaction connects anew and works. To have that first transaction
    work too, make the engine test each connection it hands out,
    ``create_async_engine(url, pool_pre_ping=True)``, at the price of a round trip to
    the database per transaction.
    """

    engine: AsyncEngine
    """The engine the connections come from."""
    _connection: AsyncConnection | None

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        tables: MessagebusTables | None = None,
        outbox: bool = True,
        stream: str | Callable[[Message[Any]], str] = "messagebus",
        serializer: AbstractMessageSerializer | None = None,
        publisher: AsyncEventstreamPublisher | None = None,
        metrics_store: AbstractMetricsStore | None = None,
    ) -> None:
        # None of these is a repository: set quietly (a consumer builds a unit of work
        # per message).
        self._set_quietly("engine", engine)
        self._set_quietly("_connection", None)
        self._set_quietly(
            "messagestore",
            AsyncSqlAlchemyMessageStoreRepository(
                self,
                tables=tables,
                outbox=outbox,
                stream=stream,
                serializer=serializer,
                publisher=publisher,
            ),
        )
        if metrics_store is not None:
            self.metrics_store = metrics_store  # type: ignore[assignment]

    @property
    def connection(self) -> AsyncConnection:
        """The connection of the running transaction, for the repositories' statements.

        :raises messagebus.TransactionError: outside of a transaction.
        """
        if self._connection is None:
            raise TransactionError(
                f"{type(self).__name__} has no open transaction: use its repositories "
                f"inside `async with uow as transaction`, before the transaction ends"
            )
        return self._connection

    async def _connect(self) -> AsyncConnection:
        try:
            connection = await self.engine.connect()
        except (sqlalchemy.exc.DBAPIError, OSError) as exc:
            raise DatabaseUnavailableError(self.engine.url, exc) from None
        try:
            await connection.begin()
        except BaseException:
            await connection.close()
            raise
        return connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the transaction; a lost connection raises :class:`DatabaseUnavailableError`."""
        await super().__aexit__(exc_type, exc, tb)
        if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
            raise DatabaseUnavailableError(self.engine.url, exc, lost=True) from None

    async def __aenter__(self) -> AsyncUnitOfWorkTransaction[Self]:
        """Check a connection out, begin a database transaction and return the transaction.

        :raises DatabaseUnavailableError: if the database cannot be reached.
        :raises messagebus.TransactionError: if a transaction of this unit of work is
            still open.
        """
        connection = await self._connect()
        try:
            transaction = await super().__aenter__()
        except BaseException:
            await connection.close()
            raise
        self._set_quietly("_connection", connection)
        return transaction

    async def commit(self) -> None:
        """Commit the database transaction; wake the outbox relays if it wrote outbox rows."""
        connection = self.connection
        await connection.commit()
        store = self.messagestore
        # Only the SQL message store writes outbox rows; another one (a sinkhole, for a
        # consumer that keeps no messages) has no relay to wake.
        if isinstance(store, AsyncSqlAlchemyMessageStoreRepository):
            store.wake_relays(connection)

    async def rollback(self) -> None:
        """Roll back the database transaction."""
        if self._connection is not None:
            await self._connection.rollback()

    async def release(self) -> None:
        """Return the connection to the pool: the transaction is closed, however it ended."""
        connection = self._connection
        self._set_quietly("_connection", None)
        if connection is None:
            return
        try:
            await connection.close()
        except BaseException:
            # A connection that cannot even be closed (a broken socket, a cancellation)
            # must not go back to the pool as it is: drop it, and report the first error.
            if not connection.closed:
                with contextlib.suppress(Exception):
                    await connection.invalidate()
            raise
