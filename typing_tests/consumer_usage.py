"""The consuming side as a user writes it, under mypy --strict: registry, upcaster, consumer.

Not generated: the consumer is async only.
"""

import asyncio
import json
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine

from messagebus import (
    AsyncMessageBus,
    AsyncUnitOfWorkTransaction,
    Event,
    MessageRegistry,
    MessageSerializer,
    Metadata,
    SinkholeMetricsStore,
)
from messagebus.adapters.sqlalchemy import (
    AsyncSqlAlchemyDeadLetters,
    AsyncSqlAlchemyInbox,
    AsyncSqlAlchemyRepository,
    AsyncSqlAlchemyUnitOfWork,
    dead_letters_table,
    messagebus_tables,
)
from messagebus.consumer import AsyncConsumer, ConsumerStats, Outcome
from typing_tests.model import Book

registry = MessageRegistry()


@registry.register
class BookRenamed(Event):
    id: str
    title: str
    metadata: Metadata = Metadata(name="book_renamed", schema_version=2)


@registry.upcaster("book_renamed", from_version=1)
def add_a_title(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "title": ""}


class Books(AsyncSqlAlchemyRepository[Book]):
    pass


class UnitOfWork(AsyncSqlAlchemyUnitOfWork[Books, SinkholeMetricsStore]):
    pass


renamed: list[str] = []


async def on_renamed(
    event: BookRenamed, transaction: AsyncUnitOfWorkTransaction[UnitOfWork]
) -> None:
    renamed.append(event.title)


async def main(database: str) -> ConsumerStats:
    """Consume one message twice and one bad body; return the consumer's counts."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
    metadata = MetaData()
    tables = messagebus_tables(metadata, prefix="typed_consumer_")
    letters = dead_letters_table(metadata, prefix="typed_consumer_")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    bus: AsyncMessageBus[UnitOfWork] = AsyncMessageBus()
    bus.add_listener(BookRenamed, on_renamed)
    consumer: AsyncConsumer[UnitOfWork] = AsyncConsumer(
        bus,
        lambda: UnitOfWork(engine, tables=tables),
        registry,
        name="typed",
        inbox=AsyncSqlAlchemyInbox(),
        dead_letters=AsyncSqlAlchemyDeadLetters(engine, letters, consumer="typed"),
    )
    envelope = MessageSerializer().serialize_message(BookRenamed(id="1", title="Dune"))
    body: bytes = json.dumps(dict(envelope)).encode()
    outcomes: list[Outcome] = [await consumer.receive(body, {}) for _ in range(2)]
    assert all(outcome.acknowledge for outcome in outcomes)
    await consumer.receive(b"not json")
    await engine.dispose()
    return consumer.stats


if __name__ == "__main__":
    print(asyncio.run(main("typed_consumer.sqlite")))
