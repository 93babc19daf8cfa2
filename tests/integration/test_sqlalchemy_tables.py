"""The adapter's tables: their names, and a unit of work on the default ones (SQLite)."""

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, insert, inspect, select
from sqlalchemy.exc import StatementError

from messagebus import SinkholeMetricsStore
from messagebus.adapters.sqlalchemy import (
    SyncSqlAlchemyRepository,
    SyncSqlAlchemyUnitOfWork,
    messagebus_tables,
)
from tests.integration.model import Book, BookRegistered


def test_the_tables_are_named_with_the_prefix_and_added_to_the_given_metadata() -> None:
    metadata = MetaData()
    tables = messagebus_tables(metadata)
    assert ["messagebus_inbox", "messagebus_messages", "messagebus_outbox"] == sorted(
        metadata.tables
    )
    assert ["messagebus_outbox_pending", "messagebus_outbox_pending_id"] == sorted(
        index.name for index in tables.outbox.indexes
    )
    other = messagebus_tables(metadata, prefix="billing_")
    assert "billing_outbox" == other.outbox.name


def test_a_naive_datetime_is_refused(tmp_path: Path) -> None:
    metadata = MetaData()
    tables = messagebus_tables(metadata)
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    metadata.create_all(engine)
    with engine.begin() as connection, pytest.raises(StatementError, match="no time zone"):
        connection.execute(
            insert(tables.inbox).values(
                message_id=BookRegistered(id="1", title="Dune").message_id,
                consumer="tests",
                received_at=datetime(2026, 1, 1),
            )
        )
    engine.dispose()


class BookRepository(SyncSqlAlchemyRepository[Book]):
    pass


class UnitOfWork(SyncSqlAlchemyUnitOfWork[BookRepository, SinkholeMetricsStore]):
    def __init__(self, url: str) -> None:
        super().__init__(create_engine(url))
        self.books = BookRepository(self)


def test_by_default_the_unit_of_work_writes_to_the_messagebus_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    metadata = MetaData()
    tables = messagebus_tables(metadata)
    uow = UnitOfWork(url)
    metadata.create_all(uow.engine)
    event = BookRegistered(id="1", title="Dune")
    with uow as transaction:
        transaction.messagestore.add(event)
        transaction.commit()
    with uow.engine.connect() as connection:
        assert [event.message_id] == list(connection.scalars(select(tables.outbox.c.message_id)))
        assert {"messagebus_messages", "messagebus_outbox", "messagebus_inbox"} <= set(
            inspect(connection).get_table_names()
        )
    uow.engine.dispose()


def test_a_prefix_too_long_for_postgresql_is_refused_and_leaves_the_metadata_alone() -> None:
    metadata = MetaData()
    with pytest.raises(ValueError, match="use a prefix of at most 46 characters"):
        messagebus_tables(metadata, prefix="p" * 47)
    assert {} == dict(metadata.tables)


def test_the_longest_prefix_allowed_creates_the_tables_on_postgresql() -> None:
    import uuid

    from tests.integration.conftest import _postgresql

    database = _postgresql("psycopg")
    prefix = f"t{uuid.uuid4().hex}".ljust(46, "x")
    metadata = MetaData()
    tables = messagebus_tables(metadata, prefix=prefix)
    engine = create_engine(database.sync_url)
    try:
        metadata.create_all(engine)
        try:
            with engine.connect() as connection:
                names = inspect(connection).get_table_names()
                indexes = {
                    index["name"] for index in inspect(connection).get_indexes(tables.outbox.name)
                }
            assert {f"{prefix}messages", f"{prefix}outbox", f"{prefix}inbox"} <= set(names)
            assert f"{prefix}outbox_pending_id" in indexes
        finally:
            metadata.drop_all(engine)
    finally:
        engine.dispose()
