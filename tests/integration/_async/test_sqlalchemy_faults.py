"""The SQL unit of work against wrong stream names and a database that drops its connections."""

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from messagebus import ConfigurationError, Message
from messagebus.adapters.sqlalchemy import DatabaseUnavailableError
from messagebus.adapters.sqlalchemy._compat import AsyncEngine, create_async_engine
from tests.integration._async.books import AsyncBookUnitOfWork, make_bus
from tests.integration.conftest import (
    POSTGRESQL_URL,
    Database,
    Schema,
    _postgresql,
    new_schema,
)
from tests.integration.model import RegisterBook


async def outbox_rows(engine: AsyncEngine, schema: Schema) -> list[str]:
    outbox = schema.messagebus.outbox
    async with engine.connect() as connection:
        return list((await connection.scalars(select(outbox.c.stream))).all())


async def message_count(engine: AsyncEngine, schema: Schema) -> int:
    messages = schema.messagebus.messages
    async with engine.connect() as connection:
        return int((await connection.scalar(select(func.count()).select_from(messages))) or 0)


@pytest.mark.parametrize(
    ("stream", "problem"),
    [
        ("s" * 256, "it has 256 characters, and the column holds 255"),
        ("book\x00one", "it holds a NUL character"),
        ("book-\udc80", "it holds a lone surrogate"),
        ("", "it is empty"),
    ],
)
async def test_a_stream_the_outbox_cannot_store_is_refused_when_configured(
    engine: AsyncEngine, schema: Schema, stream: str, problem: str
) -> None:
    with pytest.raises(ConfigurationError, match="cannot be stored in the outbox") as error:
        AsyncBookUnitOfWork(engine, schema, stream=stream)
    assert problem in str(error.value)


async def test_the_longest_stream_the_column_holds_is_stored(
    engine: AsyncEngine, schema: Schema
) -> None:
    longest = "é" * 255
    uow = AsyncBookUnitOfWork(engine, schema, stream=longest)
    async with uow as transaction:
        await make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    assert [longest] == await outbox_rows(engine, schema)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("b" * 300, "it has 300 characters"),
        ("book\x00", "it holds a NUL character"),
        (42, "it is a int, not a str"),
    ],
)
async def test_a_stream_function_is_checked_before_the_message_is_stored(
    engine: AsyncEngine, schema: Schema, name: Any, problem: str
) -> None:
    def stream_of(message: Message[Any]) -> str:
        return name  # type: ignore[no-any-return]

    uow = AsyncBookUnitOfWork(engine, schema, stream=stream_of)
    command = RegisterBook(id="1", title="Dune")
    with pytest.raises(ConfigurationError, match="The stream function") as error:
        async with uow as transaction:
            await make_bus().handle(command, transaction)
            await transaction.commit()  # pragma: no cover

    assert "of BookRegistered " in str(error.value)
    assert problem in str(error.value)
    assert [] == await outbox_rows(engine, schema)
    assert 0 == await message_count(engine, schema)
    assert 0 == engine.pool.checkedout()  # type: ignore[attr-defined]


@pytest.fixture(params=["postgresql", "postgresql-psycopg"])
def own_database(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A PostgreSQL database of the test's own, so that killing its backends harms no one."""
    shared = _postgresql("asyncpg" if request.param == "postgresql" else "psycopg")
    name = f"faults_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRESQL_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Database(
            "postgresql",
            make_url(shared.async_url).set(database=name).render_as_string(False),
            make_url(shared.sync_url).set(database=name).render_as_string(False),
        )
    finally:
        with psycopg.connect(POSTGRESQL_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def kill_backends(database: str) -> int:
    """Terminate every connection to ``database``, as a restart of the server would."""
    with psycopg.connect(POSTGRESQL_URL, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    assert killed is not None
    return int(killed[0])


async def test_after_every_connection_is_killed_one_transaction_fails_then_all_work(
    own_database: Database,
) -> None:
    metadata, schema = new_schema()
    setup = create_sync_engine(own_database.sync_url)
    metadata.create_all(setup)
    setup.dispose()
    engine = create_async_engine(own_database.async_url)
    try:
        # Three connections in the pool, as a service that handled requests at once has.
        uows = [AsyncBookUnitOfWork(engine, schema) for _ in range(3)]
        transactions = [await uow.__aenter__() for uow in uows]
        for number, transaction in enumerate(transactions):
            await make_bus().handle(RegisterBook(id=str(number), title="Dune"), transaction)
            await transaction.commit()
        for uow in uows:
            await uow.__aexit__(None, None, None)
        assert 3 == engine.pool.checkedin()  # type: ignore[attr-defined]

        assert 3 <= kill_backends(make_url(own_database.async_url).database or "")

        uow = uows[0]
        with pytest.raises(DatabaseUnavailableError, match="Lost the connection") as error:
            async with uow as transaction:
                await make_bus().handle(RegisterBook(id="lost", title="Emma"), transaction)
                await transaction.commit()  # pragma: no cover
        assert "run the transaction again" in str(error.value)
        assert error.value.__cause__ is None

        for number in range(3, 6):  # every pooled connection was dropped: none fails
            async with uow as transaction:
                await make_bus().handle(RegisterBook(id=str(number), title="Emma"), transaction)
                await transaction.commit()
        async with engine.connect() as connection:
            ids = await connection.scalars(select(schema.books.c.id).order_by(schema.books.c.id))
            assert ["0", "1", "2", "3", "4", "5"] == list(ids)
        assert 0 == engine.pool.checkedout()  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
