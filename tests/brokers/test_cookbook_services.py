"""The two services of cookbook chapter 12, on the real Redis, RabbitMQ and NATS.

The chapter runs them on FastStream's in-memory Redis broker. Here the application the
cookbook builds, exported to a folder, runs against the servers of this machine: the
club's relay sends its outbox through a ``FastStreamTransport``, the catalogue's consumer
reads it into its own database, a row sent twice is listed once, and a message the
catalogue cannot read ends in its dead letters.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import create_async_engine

from cookbook.export import export
from messagebus import AsyncMessageBus
from messagebus.adapters.faststream import FastStreamTransport, broker_from_url, subscribe
from messagebus.adapters.sqlalchemy import AsyncOutboxRelay
from tests.brokers.conftest import Names
from tests.brokers.support import WAIT

PACKAGES = ("reading_club", "catalogue")


def forget(folder: Path | None = None) -> None:
    """Remove the exported packages from ``sys.modules`` (those under ``folder``, if given)."""
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name.split(".")[0] in PACKAGES and (
            folder is None or (file and Path(file).is_relative_to(folder))
        ):
            del sys.modules[name]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    """The modules of the exported application, by name; forgotten after the tests.

    The chapters run later in the same process import the same package names from a
    scratch folder of their own: none of these modules may stay in ``sys.modules``.
    """
    folder = tmp_path_factory.mktemp("reading-club")
    export(folder)
    forget()
    sys.path.insert(0, str(folder))
    try:
        yield {
            name: importlib.import_module(name)
            for name in (
                "reading_club.adapters.sql",
                "reading_club.adapters.tables",
                "reading_club.domain.messages",
                "catalogue.adapters",
                "catalogue.service",
            )
        }
    finally:
        sys.path.remove(str(folder))
        forget(folder)


def unreadable() -> dict[str, Any]:
    """An envelope of a version the catalogue has no class nor upcaster for."""
    return {
        "id": str(uuid.uuid4()),
        "created_at": datetime.now(UTC).isoformat(),
        "type": "book_registered_v9",
        "payload": "{}",
    }


async def test_the_catalogue_lists_each_book_of_the_club_once(
    names: Names, app: dict[str, ModuleType], tmp_path: Path
) -> None:
    tables, catalogue = app["reading_club.adapters.tables"], app["catalogue.adapters"]
    messages = app["reading_club.domain.messages"]
    club_engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'reading-club.db'}")
    await tables.create_tables(club_engine)
    catalogue_engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'catalogue.db'}")
    await catalogue.create_tables(catalogue_engine)
    uow = app["reading_club.adapters.sql"].SqlUnitOfWork(club_engine)
    bus: AsyncMessageBus[Any] = AsyncMessageBus()
    bus.scan("reading_club.service")
    authors = ["T. Pratchett", "N. Gaiman"]
    for command in [
        messages.RegisterBook(id="dune", title="Dune", author="Frank Herbert"),
        messages.RegisterBookV2(id="omens", title="Good Omens", authors=authors),
        messages.ReviewBook(book_id="dune", reviewer="ada", stars=5),
    ]:
        async with uow as transaction:
            await bus.handle(command, transaction)
            await transaction.commit()

    sending = broker_from_url(names.url)
    await sending.connect()
    jetstream = names.jetstream if names.kind == "nats" else None
    transport = FastStreamTransport(
        sending, destination=names.source, jetstream=jetstream, close_broker=True
    )
    relay = AsyncOutboxRelay(club_engine, transport)
    consumer = app["catalogue.service"].make_consumer(catalogue_engine)
    reading = broker_from_url(names.url)
    subscription = subscribe(
        reading, consumer, source=names.source, group=names.group, jetstream=names.source
    )
    outbox = tables.bus_tables.outbox
    # JetStream drops a message sent again with the same Nats-Msg-Id, the message id: the
    # catalogue never sees the second Good Omens there. Elsewhere its inbox skips it.
    duplicates = 0 if names.kind == "nats" else 1
    try:
        delivered = await relay.run_once()
        # A relay that sent Good Omens and died before marking it delivered: sent again.
        async with club_engine.begin() as connection:
            await connection.execute(
                update(outbox).where(outbox.c.id == 2).values(delivered_at=None)
            )
        sent_again = await relay.run_once()
        await transport.send_envelope(unreadable(), stream=None)
        await reading.start()
        async with asyncio.timeout(WAIT):
            while subscription.acknowledged < 4 + duplicates:
                await asyncio.sleep(0.05)
        entries = await catalogue.read_entries(catalogue_engine)
        async with catalogue_engine.connect() as connection:
            reasons = list(await connection.scalars(select(catalogue.dead_letters.c.reason)))
    finally:
        await reading.stop()
        await transport.aclose()
        await club_engine.dispose()
        await catalogue_engine.dispose()

    assert (3, 1) == (delivered, sent_again)
    stats = consumer.stats
    assert (3, duplicates, 1) == (stats.handled, stats.duplicates, stats.dead_lettered)
    assert [
        ("Dune", "Frank Herbert", None, 1, 5),
        ("Good Omens", "T. Pratchett & N. Gaiman", None, 0, 0),
    ] == [(e.title, e.byline, e.isbn, e.reviews, e.stars) for e in entries]
    [reason] = reasons
    assert reason.startswith("unknown_version: 'book_registered' version 9")
