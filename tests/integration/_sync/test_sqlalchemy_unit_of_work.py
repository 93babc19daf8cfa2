# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""The SQL unit of work on a real database: atomic writes, and the connection always released."""

import json
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.exc import IntegrityError

from messagebus import (
    ConfigurationError,
    SyncAbstractEventstreamTransport,
    SyncEventstreamPublisher,
    TransactionError,
    TransactionStatus,
)
from messagebus.adapters.sqlalchemy import DatabaseUnavailableError
from messagebus.adapters.sqlalchemy._compat import SyncConnection, SyncEngine, create_engine
from tests.integration._sync.books import SyncBookUnitOfWork, make_bus
from tests.integration.conftest import (
    UNREACHABLE_DATABASES,
    Database,
    Schema,
    join_threads_started_since,
    new_schema,
)
from tests.integration.model import Book, RegisterBook


def count(engine: SyncEngine, table: Table) -> int:
    with engine.connect() as connection:
        result = connection.execute(select(func.count()).select_from(table))
        return int(result.scalar_one())


def counts(engine: SyncEngine, schema: Schema) -> tuple[int, int, int]:
    return (
        count(engine, schema.books),
        count(engine, schema.messagebus.messages),
        count(engine, schema.messagebus.outbox),
    )


class SyncRecordingTransport(SyncAbstractEventstreamTransport):
    def __init__(self, engine: SyncEngine) -> None:
        self.engine = engine
        self.sent: list[Mapping[str, Any]] = []
        self.checked_out_when_sent: list[int] = []

    def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        self.checked_out_when_sent.append(self.engine.pool.checkedout())  # type: ignore[attr-defined]
        self.sent.append(message)


def checked_out(engine: SyncEngine) -> int:
    return engine.pool.checkedout()  # type: ignore[attr-defined,no-any-return]


def test_a_commit_writes_the_models_the_message_store_and_the_outbox(
    engine: SyncEngine, schema: Schema, uow: SyncBookUnitOfWork
) -> None:
    command = RegisterBook(id="1", title="Dune")
    with uow as transaction:
        assert "1" == make_bus().handle(command, transaction)
        transaction.commit()

    assert (1, 2, 1) == counts(engine, schema)
    assert 0 == checked_out(engine)
    with engine.connect() as connection:
        messages = schema.messagebus.messages
        rows = (connection.execute(select(messages).order_by(messages.c.kind))).all()
        outbox = (connection.execute(select(schema.messagebus.outbox))).one()
    assert [
        ("register_book", 1, "command", {"id": "1", "title": "Dune"}, False),
        ("book_registered", 1, "event", {"id": "1", "title": "Dune"}, True),
    ] == [(r.name, r.schema_version, r.kind, r.payload, r.published) for r in rows]
    assert command.message_id == rows[0].message_id
    assert command.created_at == rows[0].created_at
    event_id = rows[1].message_id
    assert (event_id, "messagebus", "book_registered_v1", 0, None, None) == (
        outbox.message_id,
        outbox.stream,
        outbox.type,
        outbox.attempts,
        outbox.last_error,
        outbox.delivered_at,
    )
    assert outbox.created_at == outbox.available_at
    assert {
        "id": str(event_id),
        "created_at": rows[1].created_at.isoformat(),
        "type": "book_registered_v1",
        "causation_id": str(command.message_id),
        "correlation_id": str(command.message_id),
        "payload": '{"id":"1","title":"Dune"}',
    } == outbox.payload
    # The command began the conversation and caused the event: one query finds both.
    assert [(None, command.message_id), (command.message_id, command.message_id)] == [
        (r.causation_id, r.correlation_id) for r in rows
    ]


def test_the_outbox_rows_go_to_the_configured_stream(engine: SyncEngine, schema: Schema) -> None:
    uow = SyncBookUnitOfWork(engine, schema, stream="library")
    with uow as transaction:
        make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.commit()
    with engine.connect() as connection:
        stream = connection.scalar(select(schema.messagebus.outbox.c.stream))
    assert "library" == stream


def test_the_outbox_keeps_the_order_in_which_the_messages_were_handled(
    engine: SyncEngine, schema: Schema, uow: SyncBookUnitOfWork
) -> None:
    titles = ["Dune", "Hyperion", "Solaris", "Ubik"]
    with uow as transaction:
        for number, title in enumerate(titles):
            make_bus().handle(RegisterBook(id=str(number), title=title), transaction)
        transaction.commit()
    outbox = schema.messagebus.outbox
    with engine.connect() as connection:
        payloads = (connection.scalars(select(outbox.c.payload).order_by(outbox.c.id))).all()
    assert titles == [json.loads(payload["payload"])["title"] for payload in payloads]


def test_a_repository_reads_what_the_transaction_wrote(uow: SyncBookUnitOfWork) -> None:
    with uow as transaction:
        transaction.books.add(Book(id="1", title="Dune"))
        assert Book(id="1", title="Dune") == transaction.books.get("1")
        transaction.commit()
    with uow as transaction:
        assert Book(id="1", title="Dune") == transaction.books.get("1")
        assert None is transaction.books.get("2")
        transaction.rollback()


def test_a_rollback_writes_nothing(
    engine: SyncEngine, schema: Schema, uow: SyncBookUnitOfWork
) -> None:
    with uow as transaction:
        make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.rollback()

    assert (0, 0, 0) == counts(engine, schema)
    assert 0 == checked_out(engine)


def test_an_exception_writes_nothing_and_releases_the_connection(
    engine: SyncEngine, schema: Schema, uow: SyncBookUnitOfWork
) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with uow as transaction:
            make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
            assert 1 == checked_out(engine)
            raise RuntimeError("boom")

    assert TransactionStatus.closed == transaction.status
    assert (0, 0, 0) == counts(engine, schema)
    assert 0 == checked_out(engine)


def test_a_database_error_rolls_back_and_releases_the_connection(
    engine: SyncEngine, schema: Schema, uow: SyncBookUnitOfWork
) -> None:
    with pytest.raises(IntegrityError):
        with uow as transaction:
            transaction.books.add(Book(id="1", title="Dune"))
            transaction.books.add(Book(id="1", title="Dune again"))

    assert (0, 0, 0) == counts(engine, schema)
    assert 0 == checked_out(engine)


def test_a_missing_commit_rolls_back_and_releases_the_connection(
    engine: SyncEngine, schema: Schema, uow: SyncBookUnitOfWork
) -> None:
    with pytest.raises(TransactionError, match="neither committed nor rolled back"):
        with uow as transaction:
            make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)

    assert (0, 0, 0) == counts(engine, schema)
    assert 0 == checked_out(engine)


def test_a_detached_transaction_keeps_its_connection_until_closed(
    engine: SyncEngine, schema: Schema, uow: SyncBookUnitOfWork
) -> None:
    with uow as transaction:
        transaction.books.add(Book(id="1", title="Dune"))
        transaction.detach()

    assert 1 == checked_out(engine)
    assert Book(id="1", title="Dune") == transaction.books.get("1")
    transaction.close()

    assert 0 == checked_out(engine)
    assert (0, 0, 0) == counts(engine, schema)


def test_a_detached_transaction_committed_while_streaming_is_kept(
    engine: SyncEngine, schema: Schema, uow: SyncBookUnitOfWork
) -> None:
    with uow as transaction:
        transaction.detach()
    make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
    transaction.commit()
    assert 1 == checked_out(engine)
    transaction.close()

    assert 0 == checked_out(engine)
    assert (1, 2, 1) == counts(engine, schema)


def test_a_transaction_committed_then_detached_releases_on_close(
    engine: SyncEngine, schema: Schema, uow: SyncBookUnitOfWork
) -> None:
    with uow as transaction:
        make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.commit()
        transaction.detach()

    assert 1 == checked_out(engine)
    transaction.close()
    assert 0 == checked_out(engine)
    assert (1, 2, 1) == counts(engine, schema)


def test_a_connection_that_cannot_be_closed_is_dropped_from_the_pool(
    engine: SyncEngine, schema: Schema, uow: SyncBookUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(OSError, match="the socket is gone"):
        with uow as transaction:
            transaction.books.add(Book(id="1", title="Dune"))
            broken = transaction.connection
            close = type(broken).close

            def close_unless_broken(connection: SyncConnection) -> None:
                if connection is broken:
                    raise OSError("the socket is gone")
                close(connection)

            monkeypatch.setattr(type(broken), "close", close_unless_broken)
            transaction.commit()

    assert broken.invalidated
    assert 0 == checked_out(engine)
    assert 1 == count(engine, schema.books)


def test_the_connection_is_only_available_in_a_transaction(
    uow: SyncBookUnitOfWork,
) -> None:
    with pytest.raises(TransactionError, match="no open transaction"):
        uow.connection
    with uow as transaction:
        assert transaction.connection is uow.connection
        transaction.rollback()
    with pytest.raises(TransactionError, match="no open transaction"):
        uow.books.get("1")


def test_a_second_transaction_is_refused_and_leaves_the_first_one_working(
    engine: SyncEngine, schema: Schema, uow: SyncBookUnitOfWork
) -> None:
    with uow as transaction:
        with pytest.raises(TransactionError, match="already in a transaction"):
            with uow:
                pass  # pragma: no cover
        assert 1 == checked_out(engine)
        transaction.books.add(Book(id="1", title="Dune"))
        transaction.commit()

    assert 0 == checked_out(engine)
    assert 1 == count(engine, schema.books)


def test_without_the_outbox_the_publisher_sends_after_the_connection_is_released(
    engine: SyncEngine, schema: Schema
) -> None:
    transport = SyncRecordingTransport(engine)
    uow = SyncBookUnitOfWork(
        engine, schema, outbox=False, publisher=SyncEventstreamPublisher(transport)
    )
    with uow as transaction:
        make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.commit()
        assert [] == transport.sent

    assert ["book_registered_v1"] == [message["type"] for message in transport.sent]
    assert [0] == transport.checked_out_when_sent
    assert (1, 2, 0) == counts(engine, schema)


def test_with_the_outbox_nothing_is_sent_after_the_commit(
    engine: SyncEngine, schema: Schema, uow: SyncBookUnitOfWork
) -> None:
    with uow as transaction:
        make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.commit()
    assert [] == uow.messagestore.stream_buffer


def test_a_publisher_with_the_outbox_on_is_a_configuration_error(
    engine: SyncEngine, schema: Schema
) -> None:
    publisher = SyncEventstreamPublisher(SyncRecordingTransport(engine))
    with pytest.raises(ConfigurationError, match="outbox=False"):
        SyncBookUnitOfWork(engine, schema, publisher=publisher)


@pytest.mark.parametrize("database", UNREACHABLE_DATABASES, ids=lambda database: database.name)
def test_an_unreachable_database_is_named_without_its_password(database: Database) -> None:
    engine = create_engine(database.sync_url)
    uow = SyncBookUnitOfWork(engine, new_schema()[1])
    threads = set(threading.enumerate())
    try:
        with pytest.raises(DatabaseUnavailableError, match="Cannot connect to the database") as e:
            with uow:
                pass  # pragma: no cover
    finally:
        join_threads_started_since(threads)
        engine.dispose()

    assert "s3cr3t" not in str(e.value)
    assert engine.url.render_as_string(hide_password=True) in str(e.value)
    assert e.value.__cause__ is None
    assert 0 == checked_out(engine)


def test_a_function_names_the_stream_of_each_outbox_row(engine: SyncEngine, schema: Schema) -> None:
    uow = SyncBookUnitOfWork(engine, schema, stream=lambda message: f"book-{message.id}")
    with uow as transaction:
        make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
        make_bus().handle(RegisterBook(id="2", title="Emma"), transaction)
        transaction.commit()
    outbox = schema.messagebus.outbox
    with engine.connect() as connection:
        streams = (connection.scalars(select(outbox.c.stream).order_by(outbox.c.id))).all()
    assert ["book-1", "book-2"] == streams
