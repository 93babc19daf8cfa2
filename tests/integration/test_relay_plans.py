"""Every query of the relay reads the outbox through an index, with 100,000 pending rows.

The plans come from the databases themselves: ``EXPLAIN`` on PostgreSQL (after
``ANALYZE``), ``EXPLAIN QUERY PLAN`` on SQLite. A full scan of the outbox table in any of
them fails the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, text

from messagebus.adapters.sqlalchemy import AsyncOutboxRelay, messagebus_tables
from messagebus.adapters.sqlalchemy.outbox.statements import RelayStatements
from tests.integration.relay_support import OutboxDatabase, RecordingTransport, outbox_database

ROWS = 100_000
STREAMS = 100


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OutboxDatabase]:
    async with outbox_database(request.param, tmp_path) as database:
        await fill(database)
        yield database


async def fill(db: OutboxDatabase) -> None:
    """Insert ROWS delivered rows, then ROWS pending rows over STREAMS streams.

    As in a table that keeps its delivered rows a while: the oldest rows are delivered.
    """
    table = db.outbox.name
    async with db.engine.begin() as conn:
        if db.kind == "postgresql":
            await conn.execute(
                text(
                    f"INSERT INTO {table} (message_id, stream, type, payload, created_at, "
                    f"available_at, attempts, delivered_at) SELECT gen_random_uuid(), "
                    f"'s' || (i % {STREAMS}), 't', '{{}}'::json, now(), now(), 0, "
                    f"CASE WHEN i <= {ROWS} THEN now() END "
                    f"FROM generate_series(1, {2 * ROWS}) AS i"
                )
            )
            await conn.execute(text(f"ANALYZE {table}"))
        else:
            await conn.execute(
                text(
                    f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                    f"WHERE i < {2 * ROWS}) INSERT INTO {table} (message_id, stream, type, "
                    f"payload, created_at, available_at, attempts, delivered_at) "
                    f"SELECT lower(hex(randomblob(16))), 's' || (i % {STREAMS}), 't', '{{}}', "
                    f"strftime('%Y-%m-%d %H:%M:%f000', 'now'), "
                    f"strftime('%Y-%m-%d %H:%M:%f000', 'now'), 0, "
                    f"CASE WHEN i <= {ROWS} THEN strftime('%Y-%m-%d %H:%M:%f000', 'now') END "
                    f"FROM n"
                )
            )
            await conn.execute(text(f"ANALYZE {table}"))


def statements(
    relay: AsyncOutboxRelay, db: OutboxDatabase
) -> dict[str, tuple[Any, dict[str, Any]]]:
    """The relay's statements, with representative values."""
    sql = relay._statements
    token: Any = datetime.now(UTC) + timedelta(seconds=30)
    if db.kind == "sqlite":
        token = token.strftime("%Y-%m-%d %H:%M:%S.%f")
    common = {
        "the_stream": "s7",
        "limit": 100,
        "lease": sql.delay(30),
        "delay": sql.delay(5),
        "head": 700,
        "token": token,
        "ids": [700, 800, 900],
        "next": 1000,
        "last": 900,
        "row_id": 700,
        "reason": "r",
        "tried": 1,
    }
    found = {
        "due streams, window": sql.due_streams(1000),
        "due streams, all": sql.due_streams(None),
        "pending count": sql.count_pending(),
        "claim head": sql.claim_head,
        "rows from head": sql.rows_from,
        "rows after": sql.rows_after,
        "mark and pass": sql.mark_and_pass,
        "mark and hold": sql.mark_and_hold,
        "mark and release": sql.mark_and_release,
        "deliver": sql.deliver,
        "move head": sql.move_head,
        "release": sql.release,
        "renew": sql.renew,
        "postpone": sql.postpone,
        "bury": sql.bury,
    }
    if db.kind == "postgresql":
        found["claim"] = sql.claim
        found["mark and continue"] = sql.mark_and_continue
    return {name: (statement, common) for name, statement in found.items()}


async def plan(db: OutboxDatabase, statement: Any, values: dict[str, Any]) -> str:
    """Return the database's plan of ``statement`` with ``values``, as text."""
    async with db.engine.connect() as conn:
        compiled = statement.compile(dialect=conn.dialect)
        wanted = {k: v for k, v in values.items() if k in compiled.binds}
        state = compiled.construct_expanded_state(wanted)
        order = state.positiontup
        arguments = tuple(state.parameters[name] for name in order) if order else state.parameters
        explain = "EXPLAIN" if db.kind == "postgresql" else "EXPLAIN QUERY PLAN"
        rows = await conn.exec_driver_sql(f"{explain} {state.statement}", arguments)
        return "\n".join(str(row[-1]) for row in rows)


def full_scans(db: OutboxDatabase, text_plan: str) -> list[str]:
    """The lines of a plan that read the whole outbox table, not through an index."""
    table = db.outbox.name
    lines = text_plan.splitlines()
    if db.kind == "postgresql":
        return [line for line in lines if "Seq Scan" in line and table in line]
    return [
        line
        for line in lines
        if line.startswith("SCAN ")
        and (table in line or " dead" in line or " held" in line)
        and "INDEX" not in line
    ]


async def test_every_query_of_the_relay_uses_an_index(db: OutboxDatabase) -> None:
    relay = AsyncOutboxRelay(db.engine, RecordingTransport(), outbox=db.outbox)
    plans = {
        name: await plan(db, statement, values)
        for name, (statement, values) in statements(relay, db).items()
    }

    scans = {name: full_scans(db, text_plan) for name, text_plan in plans.items()}
    assert {} == {name: lines for name, lines in scans.items() if lines}, plans
    assert ROWS == await relay.pending()


def test_the_due_streams_query_is_built_once_per_window() -> None:
    """The relay runs it on every wake-up, and building it costs more than running it."""
    sql = RelayStatements(messagebus_tables(MetaData()).outbox, "postgresql", block_on_dead=True)
    assert sql.due_streams(1000) is sql.due_streams(1000)
    assert sql.due_streams(None) is sql.due_streams(None)
    assert sql.due_streams(1000) is not sql.due_streams(None)
