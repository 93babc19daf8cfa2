"""The SQL unit of work on a real database: atomic writes, and the connection always released."""

import json
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.exc import IntegrityError

from messagebus import (
    AsyncAbstractEventstreamTransport,
    AsyncEventstreamPublisher,
    ConfigurationError,
    TransactionError,
    TransactionStatus,
)
from messagebus.adapters.sqlalchemy import DatabaseUnavailableError
from messagebus.adapters.sqlalchemy._compat import AsyncConnection, AsyncEngine, create_async_engine
from tests.integration._async.books import AsyncBookUnitOfWork, make_bus
from tests.integration.conftest import (
    UNREACHABLE_DATABASES,
    Database,
    Schema,
    join_threads_started_since,
    new_schema,
)
from tests.integration.model import Book, RegisterBook


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as connection:
        result = await connection.execute(select(func.count()).select_from(table))
        return int(result.scalar_one())


async def counts(engine: AsyncEngine, schema: Schema) -> tuple[int, int, int]:
    return (
        await count(engine, schema.books),
        await count(engine, schema.messagebus.messages),
        await count(engine, schema.messagebus.outbox),
    )


class AsyncRecordingTransport(AsyncAbstractEventstreamTransport):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sent: list[Mapping[str, Any]] = []
        self.checked_out_when_sent: list[int] = []

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        self.checked_out_when_sent.append(self.engine.pool.checkedout())  # type: ignore[attr-defined]
        self.sent.append(message)


def checked_out(engine: AsyncEngine) -> int:
    return engine.pool.checkedout()  # type: ignore[attr-defined,no-any-return]


async def test_a_commit_writes_the_models_the_message_store_and_the_outbox(
    engine: AsyncEngine, schema: Schema, uow: AsyncBookUnitOfWork
) -> None:
    command = RegisterBook(id="1", title="Dune")
    async with uow as transaction:
        assert "1" == await make_bus().handle(command, transaction)
        await transaction.commit()

    assert (1, 2, 1) == await counts(engine, schema)
    assert 0 == checked_out(engine)
    async with engine.connect() as connection:
        messages = schema.messagebus.messages
        rows = (await connection.execute(select(messages).order_by(messages.c.kind))).all()
        outbox = (await connection.execute(select(schema.messagebus.outbox))).one()
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


async def test_the_outbox_rows_go_to_the_configured_stream(
    engine: AsyncEngine, schema: Schema
) -> None:
    uow = AsyncBookUnitOfWork(engine, schema, stream="library")
    async with uow as transaction:
        await make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    async with engine.connect() as connection:
        stream = await connection.scalar(select(schema.messagebus.outbox.c.stream))
    assert "library" == stream


async def test_the_outbox_keeps_the_order_in_which_the_messages_were_handled(
    engine: AsyncEngine, schema: Schema, uow: AsyncBookUnitOfWork
) -> None:
    titles = ["Dune", "Hyperion", "Solaris", "Ubik"]
    async with uow as transaction:
        for number, title in enumerate(titles):
            await make_bus().handle(RegisterBook(id=str(number), title=title), transaction)
        await transaction.commit()
    outbox = schema.messagebus.outbox
    async with engine.connect() as connection:
        payloads = (await connection.scalars(select(outbox.c.payload).order_by(outbox.c.id))).all()
    assert titles == [json.loads(payload["payload"])["title"] for payload in payloads]


async def test_a_repository_reads_what_the_transaction_wrote(uow: AsyncBookUnitOfWork) -> None:
    async with uow as transaction:
        await transaction.books.add(Book(id="1", title="Dune"))
        assert Book(id="1", title="Dune") == await transaction.books.get("1")
        await transaction.commit()
    async with uow as transaction:
        assert Book(id="1", title="Dune") == await transaction.books.get("1")
        assert None is await transaction.books.get("2")
        await transaction.rollback()


async def test_a_rollback_writes_nothing(
    engine: AsyncEngine, schema: Schema, uow: AsyncBookUnitOfWork
) -> None:
    async with uow as transaction:
        await make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.rollback()

    assert (0, 0, 0) == await counts(engine, schema)
    assert 0 == checked_out(engine)


async def test_an_exception_writes_nothing_and_releases_the_connection(
    engine: AsyncEngine, schema: Schema, uow: AsyncBookUnitOfWork
) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with uow as transaction:
            await make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
            assert 1 == checked_out(engine)
            raise RuntimeError("boom")

    assert TransactionStatus.closed == transaction.status
    assert (0, 0, 0) == await counts(engine, schema)
    assert 0 == checked_out(engine)


async def test_a_database_error_rolls_back_and_releases_the_connection(
    engine: AsyncEngine, schema: Schema, uow: AsyncBookUnitOfWork
) -> None:
    with pytest.raises(IntegrityError):
        async with uow as transaction:
            await transaction.books.add(Book(id="1", title="Dune"))
            await transaction.books.add(Book(id="1", title="Dune again"))

    assert (0, 0, 0) == await counts(engine, schema)
    assert 0 == checked_out(engine)


async def test_a_missing_commit_rolls_back_and_releases_the_connection(
    engine: AsyncEngine, schema: Schema, uow: AsyncBookUnitOfWork
) -> None:
    with pytest.raises(TransactionError, match="neither committed nor rolled back"):
        async with uow as transaction:
            await make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)

    assert (0, 0, 0) == await counts(engine, schema)
    assert 0 == checked_out(engine)


async def test_a_detached_transaction_keeps_its_connection_until_closed(
    engine: AsyncEngine, schema: Schema, uow: AsyncBookUnitOfWork
) -> None:
    async with uow as transaction:
        await transaction.books.add(Book(id="1", title="Dune"))
        await transaction.detach()

    assert 1 == checked_out(engine)
    assert Book(id="1", title="Dune") == await transaction.books.get("1")
    await transaction.close()

    assert 0 == checked_out(engine)
    assert (0, 0, 0) == await counts(engine, schema)


async def test_a_detached_transaction_committed_while_streaming_is_kept(
    engine: AsyncEngine, schema: Schema, uow: AsyncBookUnitOfWork
) -> None:
    async with uow as transaction:
        await transaction.detach()
    await make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
    await transaction.commit()
    assert 1 == checked_out(engine)
    await transaction.close()

    assert 0 == checked_out(engine)
    assert (1, 2, 1) == await counts(engine, schema)


async def test_a_transaction_committed_then_detached_releases_on_close(
    engine: AsyncEngine, schema: Schema, uow: AsyncBookUnitOfWork
) -> None:
    async with uow as transaction:
        await make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
        await transaction.detach()

    assert 1 == checked_out(engine)
    await transaction.close()
    assert 0 == checked_out(engine)
    assert (1, 2, 1) == await counts(engine, schema)


async def test_a_connection_that_cannot_be_closed_is_dropped_from_the_pool(
    engine: AsyncEngine, schema: Schema, uow: AsyncBookUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(OSError, match="the socket is gone"):
        async with uow as transaction:
            await transaction.books.add(Book(id="1", title="Dune"))
            broken = transaction.connection
            close = type(broken).close

            async def close_unless_broken(connection: AsyncConnection) -> None:
                if connection is broken:
                    raise OSError("the socket is gone")
                await close(connection)

            monkeypatch.setattr(type(broken), "close", close_unless_broken)
            await transaction.commit()

    assert broken.invalidated
    assert 0 == checked_out(engine)
    assert 1 == await count(engine, schema.books)


async def test_the_connection_is_only_available_in_a_transaction(
    uow: AsyncBookUnitOfWork,
) -> None:
    with pytest.raises(TransactionError, match="no open transaction"):
        uow.connection
    async with uow as transaction:
        assert transaction.connection is uow.connection
        await transaction.rollback()
    with pytest.raises(TransactionError, match="no open transaction"):
        await uow.books.get("1")


async def test_a_second_transaction_is_refused_and_leaves_the_first_one_working(
    engine: AsyncEngine, schema: Schema, uow: AsyncBookUnitOfWork
) -> None:
    async with uow as transaction:
        with pytest.raises(TransactionError, match="already in a transaction"):
            async with uow:
                pass  # pragma: no cover
        assert 1 == checked_out(engine)
        await transaction.books.add(Book(id="1", title="Dune"))
        await transaction.commit()

    assert 0 == checked_out(engine)
    assert 1 == await count(engine, schema.books)


async def test_without_the_outbox_the_publisher_sends_after_the_connection_is_released(
    engine: AsyncEngine, schema: Schema
) -> None:
    transport = AsyncRecordingTransport(engine)
    uow = AsyncBookUnitOfWork(
        engine, schema, outbox=False, publisher=AsyncEventstreamPublisher(transport)
    )
    async with uow as transaction:
        await make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
        assert [] == transport.sent

    assert ["book_registered_v1"] == [message["type"] for message in transport.sent]
    assert [0] == transport.checked_out_when_sent
    assert (1, 2, 0) == await counts(engine, schema)


async def test_with_the_outbox_nothing_is_sent_after_the_commit(
    engine: AsyncEngine, schema: Schema, uow: AsyncBookUnitOfWork
) -> None:
    async with uow as transaction:
        await make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    assert [] == uow.messagestore.stream_buffer


async def test_a_publisher_with_the_outbox_on_is_a_configuration_error(
    engine: AsyncEngine, schema: Schema
) -> None:
    publisher = AsyncEventstreamPublisher(AsyncRecordingTransport(engine))
    with pytest.raises(ConfigurationError, match="outbox=False"):
        AsyncBookUnitOfWork(engine, schema, publisher=publisher)


@pytest.mark.parametrize("database", UNREACHABLE_DATABASES, ids=lambda database: database.name)
async def test_an_unreachable_database_is_named_without_its_password(database: Database) -> None:
    engine = create_async_engine(database.async_url)
    uow = AsyncBookUnitOfWork(engine, new_schema()[1])
    threads = set(threading.enumerate())
    try:
        with pytest.raises(DatabaseUnavailableError, match="Cannot connect to the database") as e:
            async with uow:
                pass  # pragma: no cover
    finally:
        join_threads_started_since(threads)
        await engine.dispose()

    assert "s3cr3t" not in str(e.value)
    assert engine.url.render_as_string(hide_password=True) in str(e.value)
    assert e.value.__cause__ is None
    assert 0 == checked_out(engine)


async def test_a_function_names_the_stream_of_each_outbox_row(
    engine: AsyncEngine, schema: Schema
) -> None:
    uow = AsyncBookUnitOfWork(engine, schema, stream=lambda message: f"book-{message.id}")
    async with uow as transaction:
        await make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
        await make_bus().handle(RegisterBook(id="2", title="Emma"), transaction)
        await transaction.commit()
    outbox = schema.messagebus.outbox
    async with engine.connect() as connection:
        streams = (await connection.scalars(select(outbox.c.stream).order_by(outbox.c.id))).all()
    assert ["book-1", "book-2"] == streams
