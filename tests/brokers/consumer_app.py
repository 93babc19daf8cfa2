"""The consumer that the process tests start with ``messagebus-consume``.

It handles the ``Numbered`` events of the relay tests into PostgreSQL: each one inserts a
row into ``{prefix}applied`` (no unique key, so a message applied twice shows as two rows)
in the transaction that claims its id in the SQL inbox. Configured by environment:

- ``BROKER_TEST_DB``: the database's async URL; ``BROKER_TEST_PREFIX``: the tables' prefix;
- ``BROKER_TEST_HANG_AFTER``: after the handler of the message of rank ``n`` (``stream:n``)
  committed, write ``BROKER_TEST_MARK`` and hang before the acknowledgement, so that the
  test kills the process right there.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.ext.asyncio import create_async_engine

from messagebus import AsyncMessageBus, AsyncUnitOfWorkTransaction, SinkholeMetricsStore
from messagebus.adapters.sqlalchemy import (
    AsyncSqlAlchemyInbox,
    AsyncSqlAlchemyUnitOfWork,
    messagebus_tables,
)
from messagebus.consumer import AsyncConsumer, Outcome
from tests.integration.relay_support import Numbered


def applied_table(metadata: MetaData, prefix: str) -> Table:
    """One row per handled message: a message applied twice has two."""
    return Table(
        f"{prefix}applied",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("stream", String(64), nullable=False),
        Column("n", Integer, nullable=False),
        Column("pid", Integer, nullable=False),
    )


class HangingConsumer(AsyncConsumer[Any]):
    """Hangs, its transaction committed, before the message named by ``hang_after``."""

    def __init__(self, *args: Any, hang_after: str, mark: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hang_after = hang_after
        self.mark = mark

    async def receive(self, body: bytes | str, headers: Mapping[str, str] | None = None) -> Outcome:
        outcome = await super().receive(body, headers)
        event = self.registry.decode(body, headers)
        assert isinstance(event, Numbered)
        if f"{event.stream}:{event.n}" == self.hang_after and outcome is Outcome.handled:
            self.mark.write_text("committed\n")
            await asyncio.Event().wait()  # until the test kills the process
        return outcome


def make_consumer() -> AsyncConsumer[Any]:
    prefix = os.environ["BROKER_TEST_PREFIX"]
    engine = create_async_engine(os.environ["BROKER_TEST_DB"])
    metadata = MetaData()
    tables = messagebus_tables(metadata, prefix=prefix)
    applied = applied_table(metadata, prefix)

    async def apply(
        event: Numbered,
        transaction: AsyncUnitOfWorkTransaction[AsyncSqlAlchemyUnitOfWork[Any, Any]],
    ) -> None:
        await transaction.uow.connection.execute(
            insert(applied).values(stream=event.stream, n=event.n, pid=os.getpid())
        )

    bus: AsyncMessageBus[AsyncSqlAlchemyUnitOfWork[Any, SinkholeMetricsStore]] = AsyncMessageBus()
    bus.add_listener(Numbered, apply)

    def uow() -> AsyncSqlAlchemyUnitOfWork[Any, SinkholeMetricsStore]:
        return AsyncSqlAlchemyUnitOfWork(engine, tables=tables, outbox=False)

    options: dict[str, Any] = {"name": "projector", "inbox": AsyncSqlAlchemyInbox(tables)}
    hang_after = os.environ.get("BROKER_TEST_HANG_AFTER")
    if hang_after:
        mark = Path(os.environ["BROKER_TEST_MARK"])
        return HangingConsumer(bus, uow, hang_after=hang_after, mark=mark, **options)
    return AsyncConsumer(bus, uow, **options)
