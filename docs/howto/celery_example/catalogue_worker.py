"""A Celery worker that hands each event-stream task to a messagebus consumer.

Started by ``celery -A catalogue_worker worker --pool=solo``; configured by the
environment: ``CELERY_BROKER_URL`` (Redis or RabbitMQ), ``CATALOGUE_QUEUE`` (the queue
the tasks come through) and ``CATALOGUE_DB`` (the SQLite file of the projection).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from celery import Celery, Task
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.ext.asyncio import create_async_engine

from messagebus import AsyncMessageBus, AsyncUnitOfWorkTransaction, Event, Metadata
from messagebus.adapters.sqlalchemy import (
    AsyncSqlAlchemyInbox,
    AsyncSqlAlchemyUnitOfWork,
    messagebus_tables,
)
from messagebus.consumer import AsyncConsumer, Outcome

app = Celery("catalogue", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.task_default_queue = os.environ.get("CATALOGUE_QUEUE", "catalogue")
# Acknowledge a task once it ran, not when it arrives: a worker that dies in the middle
# leaves it to another one, and the inbox skips it if its transaction had committed.
app.conf.task_acks_late = True
app.conf.task_reject_on_worker_lost = True
app.conf.worker_prefetch_multiplier = 1


class BookRegistered(Event):
    id: str
    title: str
    metadata: Metadata = Metadata(name="book_registered", schema_version=1)


metadata = MetaData()
tables = messagebus_tables(metadata, prefix="catalogue_")
# No unique key on the book id: a message applied twice would show as two rows.
titles = Table(
    "catalogue_titles",
    metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False),
    Column("title", String(255), nullable=False),
)
engine = create_async_engine(
    f"sqlite+aiosqlite:///{os.environ.get('CATALOGUE_DB', 'catalogue.db')}"
)


async def add_title(
    event: BookRegistered,
    transaction: AsyncUnitOfWorkTransaction[AsyncSqlAlchemyUnitOfWork[Any, Any]],
) -> None:
    await transaction.uow.connection.execute(insert(titles).values(id=event.id, title=event.title))


bus: AsyncMessageBus[AsyncSqlAlchemyUnitOfWork[Any, Any]] = AsyncMessageBus()
bus.add_listener(BookRegistered, add_title)
consumer = AsyncConsumer(
    bus,
    lambda: AsyncSqlAlchemyUnitOfWork(engine, tables=tables, outbox=False),
    name="catalogue",
    inbox=AsyncSqlAlchemyInbox(tables),
)
# One event loop for the life of the worker process, so that the engine's connections
# stay on the loop they were opened on.
runner = asyncio.Runner()


async def create_tables() -> None:
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)


runner.run(create_tables())


@app.task(name="messagebus.receive", bind=True, max_retries=None)
def receive(self: Task, body: str, headers: dict[str, str]) -> str:
    """Handle one message of the event stream; retry it later if the consumer says so."""
    outcome = runner.run(consumer.receive(body.encode(), headers))
    if outcome is Outcome.retry_later:
        raise self.retry(countdown=1)
    return outcome.value
