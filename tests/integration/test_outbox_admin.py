"""Dead rows and the backlog, from Python (AsyncOutboxAdmin) and from the command line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from messagebus.adapters.sqlalchemy.outbox.admin import AsyncOutboxAdmin, StreamStatus
from messagebus.adapters.sqlalchemy.outbox.cli import main
from messagebus.adapters.sqlalchemy.outbox.cli_admin import format_age
from tests.integration.relay_support import OutboxDatabase, outbox_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OutboxDatabase]:
    async with outbox_database(request.param, tmp_path) as database:
        yield database


async def kill(db: OutboxDatabase, *ids: int, reason: str = "ValueError: refused") -> None:
    """Set rows aside as dead, as the relay does once they used up their attempts."""
    outbox = db.outbox
    async with db.engine.begin() as conn:
        await conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids))
            .values(
                dead_at=datetime.now(UTC),
                attempts=5,
                last_error=reason,
                available_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )


async def deliver(db: OutboxDatabase, *ids: int) -> None:
    outbox = db.outbox
    async with db.engine.begin() as conn:
        await conn.execute(
            update(outbox).where(outbox.c.id.in_(ids)).values(delivered_at=datetime.now(UTC))
        )


async def states(db: OutboxDatabase) -> dict[int, str]:
    """Each row's state: pending, delivered or dead."""
    return {
        row["id"]: "dead" if row["dead_at"] else "delivered" if row["delivered_at"] else "pending"
        for row in await db.rows()
    }


@pytest.fixture
async def admin(db: OutboxDatabase) -> AsyncOutboxAdmin:
    # Interleaved: a has rows 1, 4, 6; b has 2, 5, 7; c has 3.
    await db.add({"a": 3, "b": 3, "c": 1})
    await deliver(db, 1, 2)
    await kill(db, 3, 4, 5, reason="ValueError: the broker refused it")
    return AsyncOutboxAdmin(db.engine, prefix=db.prefix)


async def test_status_counts_the_rows_and_ages_the_oldest_pending_row_per_stream(
    db: OutboxDatabase, admin: AsyncOutboxAdmin
) -> None:
    before = datetime.now(UTC)
    status = await admin.status()
    after = datetime.now(UTC)

    assert (2, 2, 3) == (status.pending, status.delivered, status.dead)
    assert ["a", "b", "c"] == [s.stream for s in status.streams]
    assert StreamStatus("c", 0, None, 1) == status.streams[2]
    created = {row["id"]: row["created_at"] for row in await db.rows()}
    for stream, oldest_pending in (("a", 6), ("b", 7)):
        [entry] = [s for s in status.streams if s.stream == stream]
        assert (1, 1) == (entry.pending, entry.dead)
        assert entry.oldest_pending_age is not None
        age_low, age_high = before - created[oldest_pending], after - created[oldest_pending]
        assert age_low <= entry.oldest_pending_age <= age_high
    assert status.oldest_pending_age == status.streams[0].oldest_pending_age
    light = await admin.status(count_delivered=False)
    assert (2, None, 3) == (light.pending, light.delivered, light.dead)


async def test_an_empty_outbox_has_no_streams(tmp_path: Path) -> None:
    async with outbox_database("sqlite", tmp_path) as db:
        status = await AsyncOutboxAdmin(db.engine, outbox=db.outbox).status()
    assert (0, 0, 0, (), None) == (
        status.pending,
        status.delivered,
        status.dead,
        status.streams,
        status.oldest_pending_age,
    )


async def test_dead_rows_are_listed_with_their_reason(admin: AsyncOutboxAdmin) -> None:
    rows = await admin.dead_rows()
    assert [3, 4, 5] == [row.id for row in rows]
    assert {"ValueError: the broker refused it"} == {row.reason for row in rows}
    assert {5} == {row.attempts for row in rows}
    assert ["c", "a", "b"] == [row.stream for row in rows]
    assert [5] == [row.id for row in await admin.dead_rows(stream="b")]
    assert [3] == [row.id for row in await admin.dead_rows(limit=1)]


async def test_retry_makes_only_the_chosen_dead_rows_pending_and_due(
    db: OutboxDatabase, admin: AsyncOutboxAdmin
) -> None:
    # 1 is delivered and 6 pending: naming them changes nothing.
    assert 1 == await admin.retry(4, 1, 6)
    assert {1: "delivered", 3: "dead", 4: "pending", 5: "dead", 6: "pending"}.items() <= (
        await states(db)
    ).items()
    row = next(row for row in await db.rows() if row["id"] == 4)
    assert (0, row["created_at"]) == (row["attempts"], row["available_at"])
    assert "ValueError: the broker refused it" == row["last_error"]  # kept as a record

    assert 1 == await admin.retry(stream="b")
    assert 0 == await admin.retry(stream="b")
    assert 1 == await admin.retry_all()
    assert [] == await admin.dead_rows()
    assert {"delivered": 2, "pending": 5} == count_states(await states(db))


async def test_discard_deletes_only_dead_rows(db: OutboxDatabase, admin: AsyncOutboxAdmin) -> None:
    assert 1 == await admin.discard(1, 4, 6)
    assert [1, 2, 3, 5, 6, 7] == sorted(await states(db))
    assert 1 == await admin.discard(stream="c")
    assert 1 == await admin.discard_all()
    assert {"delivered": 2, "pending": 2} == count_states(await states(db))


def count_states(states: dict[int, str]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for state in states.values():
        counted[state] = counted.get(state, 0) + 1
    return counted


async def test_retry_and_discard_need_a_choice(admin: AsyncOutboxAdmin) -> None:
    with pytest.raises(ValueError, match="retry_all"):
        await admin.retry()
    with pytest.raises(ValueError, match="discard_all"):
        await admin.discard()


async def cli(
    capsys: pytest.CaptureFixture[str], db: OutboxDatabase, *argv: str
) -> tuple[int, str]:
    """Run ``messagebus-relay argv`` on ``db`` in this process; return its status and stdout."""
    command, *rest = argv
    status = await asyncio.to_thread(
        main, [*command.split(), "--db", db.url, "--prefix", db.prefix, *rest]
    )
    out, err = capsys.readouterr()
    if status == 2:
        return status, err
    return status, out


async def test_the_command_line_shows_the_status(
    capsys: pytest.CaptureFixture[str], db: OutboxDatabase, admin: AsyncOutboxAdmin
) -> None:
    status, out = await cli(capsys, db, "status")
    assert 0 == status
    lines = out.splitlines()
    assert lines[0].startswith("pending    2  (oldest ")
    assert ["delivered  2", "dead       3", ""] == lines[1:4]
    assert "stream   pending    oldest    dead" == lines[4]
    assert lines[5].startswith("a              1")
    assert lines[5].endswith("     1")
    assert "c              0         -       1" == lines[7]

    status, out = await cli(capsys, db, "status", "--json")
    shown = json.loads(out)
    assert (2, 2, 3) == (shown["pending"], shown["delivered"], shown["dead"])
    assert {"pending": 0, "oldest_pending_seconds": None, "dead": 1} == shown["streams"]["c"]
    assert 0 <= shown["streams"]["a"]["oldest_pending_seconds"] < 600


async def test_the_command_line_lists_retries_and_discards_dead_rows(
    capsys: pytest.CaptureFixture[str], db: OutboxDatabase, admin: AsyncOutboxAdmin
) -> None:
    status, out = await cli(capsys, db, "dead list", "--stream", "a")
    assert 0 == status
    header, row = out.splitlines()
    assert header.split() == ["id", "stream", "type", "attempts", "dead", "since", "reason"]
    assert row.split()[:4] == ["4", "a", "Numbered_v1", "5"]
    assert row.endswith("  ValueError: the broker refused it")

    assert (0, "1 dead row made pending again\n") == await cli(capsys, db, "dead retry", "4")
    assert (1, "0 dead rows made pending again\n") == await cli(capsys, db, "dead retry", "4")
    assert (0, "1 dead row discarded\n") == await cli(capsys, db, "dead discard", "--stream", "b")
    assert (0, "1 dead row discarded\n") == await cli(capsys, db, "dead discard", "--all")
    assert (0, "no dead rows\n") == await cli(capsys, db, "dead list")
    assert [1, 2, 4, 6, 7] == sorted(await states(db))


@pytest.mark.parametrize("choice", [(), ("3", "--all"), ("--stream", "a", "--all")])
async def test_retry_needs_exactly_one_choice(
    capsys: pytest.CaptureFixture[str],
    db: OutboxDatabase,
    admin: AsyncOutboxAdmin,
    choice: tuple[str, ...],
) -> None:
    status, err = await cli(capsys, db, "dead retry", *choice)
    assert 2 == status
    assert [
        "messagebus-relay: dead retry: name the rows, by id or with --stream, or pass --all "
        "for every dead row, not both"
    ] == err.splitlines()
    assert 3 == len(await admin.dead_rows())


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (4.25, "4.2s"), (125, "2m05s"), (7260, "2h01m"), (3 * 86400 + 7200, "3d02h")],
)
def test_ages_read_as_an_operator_reads_them(seconds: float | None, shown: str) -> None:
    assert shown == format_age(None if seconds is None else timedelta(seconds=seconds))
