"""The consumer on a real database: the SQL inbox, the SQL dead letters, and races."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, create_engine, func, insert, select, text

from messagebus import (
    AsyncSinkholeMessageStoreRepository,
    AsyncUnitOfWorkTransaction,
    MessageSerializer,
)
from messagebus.adapters.sqlalchemy import (
    AsyncSqlAlchemyDeadLetters,
    AsyncSqlAlchemyInbox,
    dead_letters_table,
)
from messagebus.adapters.sqlalchemy._compat import AsyncEngine, create_async_engine
from messagebus.consumer import AsyncConsumer, Outcome
from tests.integration._async.books import AsyncBookUnitOfWork, make_bus, register_book
from tests.integration.conftest import Database, Schema
from tests.integration.model import BookRegistered, RegisterBook


def no_wait(failures: int) -> float:
    return 0.0


def body_of(command: RegisterBook) -> bytes:
    return json.dumps(dict(MessageSerializer().serialize_message(command))).encode()


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database.async_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def dead_letters(database: Database, schema: Schema) -> Iterator[Table]:
    """The dead letters table of the test, next to its other tables."""
    metadata = MetaData()
    table = dead_letters_table(metadata, prefix=schema.prefix)
    sync_engine = create_engine(database.sync_url)
    try:
        metadata.create_all(sync_engine)
        yield table
        metadata.drop_all(sync_engine)
    finally:
        sync_engine.dispose()


def consumer_of(
    engine: AsyncEngine, schema: Schema, dead_letters: Table, bus: Any = None, **options: Any
) -> AsyncConsumer[AsyncBookUnitOfWork]:
    options.setdefault("backoff", no_wait)
    return AsyncConsumer(
        bus or make_bus(),
        lambda: AsyncBookUnitOfWork(engine, schema),
        name=options.pop("name", "library"),
        inbox=AsyncSqlAlchemyInbox(),
        dead_letters=AsyncSqlAlchemyDeadLetters(engine, dead_letters, consumer="library"),
        **options,
    )


async def rows(engine: AsyncEngine, table: Table) -> list[Any]:
    async with engine.connect() as connection:
        return list(await connection.execute(select(table)))


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_command_received_twice_has_one_effect_and_no_error(
    engine: AsyncEngine, schema: Schema, dead_letters: Table
) -> None:
    consumer = consumer_of(engine, schema, dead_letters)
    command = RegisterBook(id="1", title="Dune")
    assert Outcome.handled == await consumer.receive(body_of(command), {})
    assert Outcome.duplicate == await consumer.receive(body_of(command), {})
    assert 1 == await count(engine, schema.books)
    [inbox_row] = await rows(engine, schema.messagebus.inbox)
    assert (command.message_id, "library") == (inbox_row.message_id, inbox_row.consumer)
    assert inbox_row.received_at <= inbox_row.handled_at
    assert 1 == await count(engine, schema.messagebus.outbox)  # its BookRegistered, once


async def test_a_failing_handler_leaves_no_inbox_row_and_a_dead_letter(
    engine: AsyncEngine, schema: Schema, dead_letters: Table
) -> None:
    bus = make_bus()

    async def broken(command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[Any]) -> None:
        await register_book(command, transaction)
        raise ValueError("no shelf left")

    bus.remove_listener(RegisterBook, register_book)
    bus.add_listener(RegisterBook, broken)
    consumer = consumer_of(engine, schema, dead_letters, bus, retries=1)
    body = body_of(RegisterBook(id="1", title="Dune"))
    assert Outcome.dead_lettered == await consumer.receive(body, {"message-stream": "books"})
    assert 0 == await count(engine, schema.books)
    assert 0 == await count(engine, schema.messagebus.inbox)
    [letter] = await rows(engine, dead_letters)
    assert (body, {"message-stream": "books"}) == (letter.body, letter.headers)
    assert "failed: ValueError: no shelf left (after 2 attempts)" == letter.reason
    assert "library" == letter.consumer


async def test_bad_input_goes_to_the_dead_letters_table(
    engine: AsyncEngine, schema: Schema, dead_letters: Table
) -> None:
    consumer = consumer_of(engine, schema, dead_letters)
    assert Outcome.dead_lettered == await consumer.receive(b"\x00\xff not json", {})
    assert Outcome.handled == await consumer.receive(body_of(RegisterBook(id="1", title="x")))
    [letter] = await rows(engine, dead_letters)
    assert b"\x00\xff not json" == letter.body
    assert letter.reason.startswith("malformed:")


async def test_an_unreachable_dead_letters_table_gives_the_message_back(
    engine: AsyncEngine, schema: Schema
) -> None:
    missing = dead_letters_table(MetaData(), prefix=f"{schema.prefix}missing_")
    consumer = consumer_of(engine, schema, missing)
    assert Outcome.retry_later == await consumer.receive(b"garbage", {})


async def test_two_consumers_of_one_inbox_never_apply_a_message_twice(
    database: Database, engine: AsyncEngine, schema: Schema, dead_letters: Table
) -> None:
    consumers = [consumer_of(engine, schema, dead_letters, retries=10) for _ in range(2)]
    bodies = [body_of(RegisterBook(id=str(n), title="x")) for n in range(30)]

    async def deliver_all(consumer: AsyncConsumer[AsyncBookUnitOfWork]) -> list[Outcome]:
        return [await consumer.receive(body) for body in bodies]

    first, second = await asyncio.gather(*(deliver_all(c) for c in consumers))
    outcomes = [*first, *second]
    assert (30, 30) == (outcomes.count(Outcome.handled), outcomes.count(Outcome.duplicate))
    assert 30 == await count(engine, schema.books)
    assert 30 == await count(engine, schema.messagebus.inbox)
    assert 0 == await count(engine, dead_letters)
    if database.name == "postgresql":  # a duplicate claim waits, then does nothing
        assert 0 == sum(consumer.stats.failures for consumer in consumers)


async def _wait_for_a_blocked_claim(engine: AsyncEngine, inbox: Table) -> None:
    """Return once a transaction waits on a lock to insert into ``inbox`` (PostgreSQL)."""
    query = text(
        "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid) "
        "WHERE NOT pg_locks.granted AND pg_stat_activity.query LIKE :pattern"
    )
    for _ in range(1000):
        async with engine.connect() as connection:
            waiting = (await connection.execute(query, {"pattern": f"%{inbox.name}%"})).scalar()
        if waiting:
            return
        await asyncio.sleep(0.01)
    pytest.fail("the second claim never waited on the first one's row")


@pytest.mark.parametrize("winner_commits", [True, False])
async def test_postgresql_the_loser_of_an_inbox_race_waits_then_reports_duplicate(
    database: Database,
    engine: AsyncEngine,
    schema: Schema,
    dead_letters: Table,
    winner_commits: bool,
) -> None:
    if database.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: no two transactions insert at once")
    first_claimed, calls = asyncio.Event(), []
    bus = make_bus()

    async def held(command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[Any]) -> None:
        calls.append(command.id)
        if len(calls) == 1:
            first_claimed.set()
            # Keep the first transaction open until the second one waits on its row.
            await _wait_for_a_blocked_claim(engine, schema.messagebus.inbox)
            if not winner_commits:
                raise RuntimeError("the winner rolls back")
        await register_book(command, transaction)

    bus.remove_listener(RegisterBook, register_book)
    bus.add_listener(RegisterBook, held)
    winner, loser = (consumer_of(engine, schema, dead_letters, bus) for _ in range(2))
    body = body_of(RegisterBook(id="1", title="Dune"))
    winning = asyncio.create_task(winner.receive(body))
    await first_claimed.wait()
    losing = asyncio.create_task(loser.receive(body))
    won, lost = await asyncio.gather(winning, losing)
    assert 0 == loser.stats.failures  # it waited, then saw the row: no error to retry
    if winner_commits:
        assert (Outcome.handled, Outcome.duplicate) == (won, lost)
    else:  # the loser's waiting insert and the winner's retry race for the row afresh
        assert {Outcome.handled, Outcome.duplicate} == {won, lost}
    assert 1 == await count(engine, schema.books)
    assert 1 == await count(engine, schema.messagebus.inbox)
    assert 0 == await count(engine, dead_letters)


@pytest.mark.parametrize("retries", [3, 0])
async def test_postgresql_a_connection_killed_in_the_handler_is_retried_once_applied(
    database: Database, engine: AsyncEngine, schema: Schema, dead_letters: Table, retries: int
) -> None:
    if database.name != "postgresql":
        pytest.skip("the connection is killed with pg_terminate_backend()")
    bus, calls = make_bus(), []

    async def killed(command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[Any]) -> None:
        calls.append(command.id)
        await register_book(command, transaction)
        if len(calls) == 1:
            await transaction.uow.connection.execute(
                text("SELECT pg_terminate_backend(pg_backend_pid())")
            )

    bus.remove_listener(RegisterBook, register_book)
    bus.add_listener(RegisterBook, killed)
    consumer = consumer_of(engine, schema, dead_letters, bus, retries=retries)
    body = body_of(RegisterBook(id="1", title="Dune"))
    if not retries:  # a lost connection is not the message's fault: the broker keeps it
        assert Outcome.retry_later == await consumer.receive(body)
        assert 0 == await count(engine, dead_letters)
    assert Outcome.handled == await consumer.receive(body)
    assert Outcome.duplicate == await consumer.receive(body)
    assert 2 == len(calls)
    assert 1 == await count(engine, schema.books)
    assert 1 == await count(engine, schema.messagebus.inbox)


async def test_the_savepoint_claim_of_other_databases(
    engine: AsyncEngine, schema: Schema, dead_letters: Table
) -> None:
    consumer = consumer_of(engine, schema, dead_letters)
    inbox = consumer.inbox
    assert isinstance(inbox, AsyncSqlAlchemyInbox)
    # What MariaDB and others get: a plain insert in a savepoint, a conflict read as done.
    table = schema.messagebus.inbox
    inbox._statements[table.name, engine.dialect.name] = (insert(table), False)
    body = body_of(RegisterBook(id="1", title="Dune"))
    assert Outcome.handled == await consumer.receive(body)
    assert Outcome.duplicate == await consumer.receive(body)
    assert 0 == consumer.stats.failures
    assert 1 == await count(engine, schema.books)


async def test_the_inbox_with_its_own_tables_and_no_sql_message_store(
    engine: AsyncEngine, schema: Schema, dead_letters: Table
) -> None:
    def unit_of_work() -> AsyncBookUnitOfWork:
        uow = AsyncBookUnitOfWork(engine, schema)
        uow.messagestore = AsyncSinkholeMessageStoreRepository()  # type: ignore[assignment]
        return uow

    consumer = AsyncConsumer(
        make_bus(),
        unit_of_work,
        name="library",
        inbox=AsyncSqlAlchemyInbox(schema.messagebus),
        backoff=no_wait,
    )
    body = body_of(RegisterBook(id="1", title="Dune"))
    assert [Outcome.handled, Outcome.duplicate] == [await consumer.receive(body) for _ in "12"]
    assert (1, 1, 0) == (
        await count(engine, schema.books),
        await count(engine, schema.messagebus.inbox),
        await count(engine, schema.messagebus.messages),
    )


async def test_three_competing_consumers_with_redeliveries_and_garbage(
    engine: AsyncEngine, schema: Schema, dead_letters: Table
) -> None:
    queue: asyncio.Queue[tuple[bytes, Mapping[str, str]]] = asyncio.Queue()
    bodies = [body_of(RegisterBook(id=str(n), title="x")) for n in range(60)]
    # Every third message is delivered again later, and garbage comes in between.
    for delivery in [*bodies, *bodies[::3], *(b"\xff" * n for n in range(1, 6))]:
        queue.put_nowait((delivery, {}))
    consumers = [consumer_of(engine, schema, dead_letters, retries=10) for _ in range(3)]
    tasks = [asyncio.create_task(consumer.run(queue)) for consumer in consumers]
    await queue.join()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    handled = sum(consumer.stats.handled for consumer in consumers)
    duplicates = sum(consumer.stats.duplicates for consumer in consumers)
    assert (60, 20) == (handled, duplicates)
    assert (60, 60, 5) == (
        await count(engine, schema.books),
        await count(engine, schema.messagebus.inbox),
        await count(engine, dead_letters),
    )


async def test_dead_letters_are_replayed_once_the_cause_is_fixed(
    engine: AsyncEngine, schema: Schema, dead_letters: Table
) -> None:
    bus, shelves = make_bus(), list[str]()

    async def shelved(command: RegisterBook, transaction: AsyncUnitOfWorkTransaction[Any]) -> None:
        if not shelves:
            raise RuntimeError("no shelf yet")
        await register_book(command, transaction)

    bus.remove_listener(RegisterBook, register_book)
    bus.add_listener(RegisterBook, shelved)
    consumer = consumer_of(engine, schema, dead_letters, bus, retries=0)
    for n in range(3):
        await consumer.receive(body_of(RegisterBook(id=str(n), title="x")), {"n": str(n)})
    await consumer.receive(b"garbage", {})
    assert (0, 4) == (await count(engine, schema.books), await count(engine, dead_letters))
    shelves.append("built")  # the operator fixes the cause
    sink = consumer.dead_letters
    assert isinstance(sink, AsyncSqlAlchemyDeadLetters)
    first_id = min(row.id for row in await rows(engine, dead_letters))
    assert {Outcome.handled: 1} == await sink.replay(consumer, ids=[first_id])
    outcomes = await sink.replay(consumer)
    assert {Outcome.handled: 2, Outcome.dead_lettered: 1} == outcomes
    assert 3 == await count(engine, schema.books)
    [garbage] = await rows(engine, dead_letters)  # dead-lettered anew, as a new row
    assert b"garbage" == garbage.body


async def test_old_inbox_rows_are_deleted(
    engine: AsyncEngine, schema: Schema, dead_letters: Table
) -> None:
    consumer = consumer_of(engine, schema, dead_letters)
    other = consumer_of(engine, schema, dead_letters, name="other")
    for n in range(2):
        await consumer.receive(body_of(RegisterBook(id=str(n), title="x")))
        await other.receive(body_of(RegisterBook(id=f"other {n}", title="x")))
    inbox = AsyncSqlAlchemyInbox(schema.messagebus)
    cutoff = max(row.handled_at for row in await rows(engine, schema.messagebus.inbox))
    assert 0 == await inbox.delete_handled_before(engine, cutoff - timedelta(days=1))
    later = cutoff + timedelta(seconds=1)
    assert 2 == await inbox.delete_handled_before(engine, later, consumer="other")
    assert {"library"} == {row.consumer for row in await rows(engine, schema.messagebus.inbox)}
    assert 2 == await inbox.delete_handled_before(engine, later)


@pytest.mark.parametrize("record_received", [False, True])
async def test_the_received_message_is_stored_only_when_asked_and_never_outboxed(
    engine: AsyncEngine, schema: Schema, dead_letters: Table, record_received: bool
) -> None:
    consumer = consumer_of(engine, schema, dead_letters, record_received=record_received)
    command = RegisterBook(id="1", title="Dune")
    assert Outcome.handled == await consumer.receive(body_of(command), {})
    stored = {row.name for row in await rows(engine, schema.messagebus.messages)}
    expected = {"register_book", "book_registered"} if record_received else {"book_registered"}
    assert expected == stored
    [outboxed] = await rows(engine, schema.messagebus.outbox)
    assert "book_registered_v1" == outboxed.type  # what the handler raised, not the command


@pytest.mark.parametrize("record_received", [False, True])
async def test_a_consumer_in_the_tables_of_the_producer(
    engine: AsyncEngine, schema: Schema, dead_letters: Table, record_received: bool
) -> None:
    """By default it shares them; recording the received message there collides."""
    producer = AsyncBookUnitOfWork(engine, schema)
    async with producer as transaction:
        await make_bus().handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    [row] = await rows(engine, schema.messagebus.outbox)
    body = json.dumps(row.payload).encode()
    bus = make_bus()
    seen: list[str] = []

    async def project(event: BookRegistered, transaction: Any) -> None:
        seen.append(event.id)

    bus.add_listener(BookRegistered, project)
    consumer = consumer_of(
        engine, schema, dead_letters, bus, retries=0, record_received=record_received
    )
    outcome = await consumer.receive(body, {})
    if record_received:
        # The producer's message store row has this message_id already.
        assert Outcome.dead_lettered == outcome
        assert 0 == await count(engine, schema.messagebus.inbox)
    else:
        assert Outcome.handled == outcome
        assert ["1"] == seen
        assert 1 == await count(engine, schema.messagebus.inbox)
    assert 1 == await count(engine, schema.messagebus.outbox)  # not sent again
