"""One database per test run of the integration tests: SQLite, then PostgreSQL.

Each test gets tables of its own (a random prefix), created before it and dropped
after it, so these tests and others running against the same server do not collide.
PostgreSQL is skipped when it is not running, unless ``CI=true``: then it fails.
"""

import functools
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, create_engine

from messagebus.adapters.sqlalchemy import MessagebusTables, messagebus_tables
from tests.integration.model import books_table

POSTGRESQL_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Database:
    """Where the tests connect: the same database through an async and a sync driver."""

    name: str
    async_url: str
    sync_url: str


@dataclass(frozen=True)
class Schema:
    """The tables of one test."""

    prefix: str
    messagebus: MessagebusTables
    books: Table


@functools.cache
def _postgresql_unavailable() -> str | None:
    import psycopg

    try:
        psycopg.connect(POSTGRESQL_URL, connect_timeout=2).close()
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        return f"PostgreSQL is not reachable at {POSTGRESQL_URL}: {first_line}"
    return None


def _sqlite(path: Path) -> Database:
    return Database("sqlite", f"sqlite+aiosqlite:///{path}", f"sqlite+pysqlite:///{path}")


def _postgresql(async_driver: str) -> Database:
    reason = _postgresql_unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: a missing server is a failure)")
        pytest.skip(reason)
    rest = POSTGRESQL_URL.removeprefix("postgresql://")
    return Database(
        "postgresql", f"postgresql+{async_driver}://{rest}", f"postgresql+psycopg://{rest}"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the sync tests once on PostgreSQL: they use psycopg whatever the async driver."""
    duplicates = [
        item
        for item in items
        if "_sync" in item.path.parts and item.name.endswith("[postgresql-psycopg]")
    ]
    if duplicates:
        config.hook.pytest_deselected(items=duplicates)
        items[:] = [item for item in items if item not in duplicates]


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-psycopg"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """The database of the test: SQLite, then PostgreSQL through asyncpg and psycopg."""
    if request.param == "sqlite":
        return _sqlite(tmp_path / "test.sqlite")
    return _postgresql("asyncpg" if request.param == "postgresql" else "psycopg")


UNREACHABLE_DATABASES = [
    Database(
        "postgresql on a closed port, with a password",
        "postgresql+asyncpg://reader:s3cr3t@127.0.0.1:1/test",
        "postgresql+psycopg://reader:s3cr3t@127.0.0.1:1/test",
    ),
    Database(
        "sqlite in a missing folder",
        "sqlite+aiosqlite:///no/such/folder/test.sqlite",
        "sqlite+pysqlite:///no/such/folder/test.sqlite",
    ),
]
"""Databases no connection can be opened to."""


def join_threads_started_since(before: set[threading.Thread]) -> None:
    """Wait for the threads started since ``before`` was taken to end.

    aiosqlite stops its worker thread without waiting for it when a connection cannot be
    opened; the thread then reports to the event loop, which must still be open
    (omnilib/aiosqlite#389).
    """
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=5)


def new_schema() -> tuple[MetaData, Schema]:
    """Describe the tables of a test, named with a prefix of their own; create nothing."""
    prefix = f"t{uuid.uuid4().hex[:12]}_"
    metadata = MetaData()
    tables = messagebus_tables(metadata, prefix=prefix)
    return metadata, Schema(prefix, tables, books_table(metadata, prefix))


@pytest.fixture
def schema(database: Database) -> Iterator[Schema]:
    """Create the message store, outbox, inbox and books tables; drop them after the test."""
    metadata, created = new_schema()
    engine = create_engine(database.sync_url)
    try:
        metadata.create_all(engine)
        yield created
        metadata.drop_all(engine)
    finally:
        engine.dispose()
