"""A cancelled task rolls its transaction back and returns the connection (async only)."""

import asyncio
import gc
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text

from messagebus import TransactionStatus
from messagebus.adapters.sqlalchemy._compat import AsyncEngine, create_async_engine
from tests.integration._async.books import AsyncBookUnitOfWork
from tests.integration.conftest import Database, Schema
from tests.integration.model import Book

# A statement that runs for about a second or more, long enough to be cancelled.
SLOW_QUERY = {
    "sqlite": (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
        "SELECT count(*) FROM n"
    ),
    "postgresql": "SELECT pg_sleep(5)",
}


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    # aiosqlite cannot interrupt a statement: after a cancellation its thread finishes
    # the slow query before closing, holding the write lock; on a loaded machine that
    # outlasts sqlite3's default 5 s wait for a lock.
    connect_args = {"timeout": 60} if database.name == "sqlite" else {}
    engine = create_async_engine(database.async_url, connect_args=connect_args)
    yield engine
    await engine.dispose()


@pytest.fixture
def uow(engine: AsyncEngine, schema: Schema) -> AsyncBookUnitOfWork:
    return AsyncBookUnitOfWork(engine, schema)


async def books_count(engine: AsyncEngine, schema: Schema) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(schema.books)) or 0)


async def test_a_task_cancelled_in_the_block_rolls_back_and_releases_the_connection(
    engine: AsyncEngine, schema: Schema, uow: AsyncBookUnitOfWork
) -> None:
    inside = asyncio.Event()

    async def register() -> None:
        async with uow as transaction:
            await transaction.books.add(Book(id="1", title="Dune"))
            inside.set()
            await asyncio.sleep(60)
            await transaction.commit()  # pragma: no cover

    task = asyncio.create_task(register())
    await inside.wait()
    assert 1 == engine.pool.checkedout()  # type: ignore[attr-defined]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert 0 == engine.pool.checkedout()  # type: ignore[attr-defined]
    assert TransactionStatus.closed == uow._transaction.status
    assert 0 == await books_count(engine, schema)


async def test_a_statement_cancelled_by_a_timeout_leaves_a_usable_pool(
    database: Database, engine: AsyncEngine, schema: Schema, uow: AsyncBookUnitOfWork
) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2), uow as transaction:
            await transaction.books.add(Book(id="1", title="Dune"))
            await transaction.connection.execute(text(SLOW_QUERY[database.name]))
            await transaction.commit()  # pragma: no cover
    if database.name == "sqlite":
        # A known limit of SQLite through aiosqlite: the cursor of the cancelled statement
        # stays in a reference cycle, and sqlite3 keeps a closed connection with an
        # unfinalized statement alive, write lock included, until the cursor is collected.
        gc.collect()

    assert 0 == engine.pool.checkedout()  # type: ignore[attr-defined]
    assert 0 == await books_count(engine, schema)
    async with uow as transaction:
        await transaction.books.add(Book(id="2", title="Hyperion"))
        await transaction.commit()
    assert 1 == await books_count(engine, schema)
