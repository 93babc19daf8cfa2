"""The relay as a process: ``python -m messagebus.relay``, signals, kills and errors."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.relay_support import (
    HERE,
    OutboxDatabase,
    eventually,
    in_order_per_stream,
    outbox_database,
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OutboxDatabase]:
    async with outbox_database(request.param, tmp_path) as database:
        yield database


class Relay:
    """A relay process whose transport appends the sent ids to ``output``."""

    def __init__(self, db: OutboxDatabase, output: Path, *, delay: float = 0.0) -> None:
        self.db = db
        self.output = output
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            "RELAY_TEST_OUTPUT": str(output),
            "RELAY_TEST_DELAY": str(delay),
        }
        self.process: asyncio.subprocess.Process | None = None

    def command(self, *options: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "messagebus.relay",
            "--db",
            self.db.url,
            "--prefix",
            self.db.prefix,
            "--transport",
            "relay_transports:file_transport",
            "--poll-interval",
            "0.05",
            *options,
        ]

    async def start(self, *options: str) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command(*options),
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def wait(self, timeout: float = 20) -> tuple[int, str]:
        assert self.process is not None
        _, stderr = await asyncio.wait_for(self.process.communicate(), timeout)
        assert self.process.returncode is not None
        return self.process.returncode, stderr.decode()

    async def run(self, *options: str) -> tuple[int, str]:
        await self.start(*options)
        return await self.wait()

    def sent(self) -> list[str]:
        if not self.output.exists():
            return []
        return self.output.read_text().split()

    async def wait_for_sent(self, count: int, timeout: float = 20) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.sent()) < count:
            assert self.process is not None
            if self.process.returncode is not None or loop.time() > deadline:
                _, stderr = await self.wait()
                pytest.fail(f"the relay sent {len(self.sent())} of {count}: {stderr}")
            await asyncio.sleep(0.02)


async def delivered_ids(db: OutboxDatabase) -> list[str]:
    return [str(row["message_id"]) for row in await db.rows() if row["delivered_at"]]


async def all_delivered(db: OutboxDatabase, ids: list[str]) -> bool:
    """Every row was delivered."""
    return len(ids) == len(await delivered_ids(db))


async def test_once_delivers_what_is_due_and_exits_0(db: OutboxDatabase, tmp_path: Path) -> None:
    ids = await db.add({"a": 5, "b": 5})
    relay = Relay(db, tmp_path / "sent.txt")

    status, stderr = await relay.run("--once", "--batch-size", "3")

    assert 0 == status, stderr
    assert sorted(ids) == sorted(relay.sent())
    assert in_order_per_stream(relay.sent(), ids, await db.stream_of())
    assert sorted(ids) == sorted(await delivered_ids(db))
    assert "outbox relay stopped: 10 delivered, 0 failed sends, 0 dead, 0 pending" in stderr


# Each send takes at least 10 ms and the three streams are sent at once: the marks
# committed every 100 ms leave at most 10 rows per stream to send again, and the marks
# committed after each row the row being marked, one per stream.
@pytest.mark.parametrize(("commit_interval", "most_duplicates"), [("0.1", 33), ("0", 3)])
async def test_a_relay_killed_mid_batch_loses_nothing(
    db: OutboxDatabase, tmp_path: Path, commit_interval: str, most_duplicates: int
) -> None:
    ids = await db.add({"a": 40, "b": 40, "c": 40})
    first = Relay(db, tmp_path / "sent.txt", delay=0.01)
    # A short lease (3 x the send timeout) lets the next relay take the streams soon.
    options = ("--batch-size", "50", "--commit-interval", commit_interval, "--send-timeout", "0.2")
    await first.start(*options)
    await first.wait_for_sent(30)

    assert first.process is not None
    first.process.send_signal(signal.SIGKILL)
    status, _ = await first.wait()
    assert -signal.SIGKILL == status
    pending_after_kill = len(ids) - len(await delivered_ids(db))
    assert pending_after_kill > 0, "the relay finished before it was killed"

    second = Relay(db, tmp_path / "sent.txt")
    await second.start("--batch-size", "50")
    await eventually(lambda: all_delivered(db, ids))
    assert second.process is not None
    second.process.send_signal(signal.SIGTERM)
    status, stderr = await second.wait()

    assert 0 == status, stderr
    sent = second.sent()
    assert sorted(ids) == sorted(set(sent))  # nothing lost
    duplicates = len(sent) - len(set(sent))
    assert duplicates <= most_duplicates, f"{duplicates} messages sent twice"
    assert in_order_per_stream(sent, ids, await db.stream_of())
    assert sorted(ids) == sorted(await delivered_ids(db))


async def test_sigterm_finishes_the_row_being_sent_and_exits_0(
    db: OutboxDatabase, tmp_path: Path
) -> None:
    ids = await db.add({"a": 100})
    relay = Relay(db, tmp_path / "sent.txt", delay=0.02)
    await relay.start("--batch-size", "10")
    await relay.wait_for_sent(5)

    assert relay.process is not None
    relay.process.send_signal(signal.SIGTERM)
    status, stderr = await relay.wait(timeout=10)

    assert 0 == status, stderr
    assert "SIGTERM received" in stderr
    assert "Traceback" not in stderr
    sent = relay.sent()
    assert len(sent) < len(ids), "the relay finished before the signal"
    # The row in flight was sent and marked: nothing sent is left pending.
    assert sent == await delivered_ids(db)


async def test_sigint_stops_a_relay_waiting_for_rows(db: OutboxDatabase, tmp_path: Path) -> None:
    await db.add({"a": 1})
    relay = Relay(db, tmp_path / "sent.txt")
    await relay.start("--poll-interval", "30")
    await relay.wait_for_sent(1)
    await asyncio.sleep(0.3)  # nothing is due: it sleeps for 30 seconds

    assert relay.process is not None
    relay.process.send_signal(signal.SIGINT)
    status, stderr = await relay.wait(timeout=10)

    assert 0 == status, stderr
    assert "SIGINT received" in stderr


async def test_once_exits_1_when_sends_fail(db: OutboxDatabase, tmp_path: Path) -> None:
    await db.add({"a": 3})
    relay = Relay(db, tmp_path / "sent.txt")
    command = relay.command("--once")
    command[command.index("relay_transports:file_transport")] = "relay_transports:broken_transport"
    process = await asyncio.create_subprocess_exec(
        *command, env=relay.env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 20)

    assert 1 == process.returncode, stderr.decode()
    assert "ConnectionError: broker down" in stderr.decode()
    [head, *rest] = await db.rows()
    assert 1 == head["attempts"]
    assert [0, 0] == [row["attempts"] for row in rest]


async def run_cli(*options: str) -> tuple[int, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(HERE), "RELAY_TEST_OUTPUT": os.devnull}
    env.pop("MESSAGEBUS_RELAY_DB", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "messagebus.relay",
        *options,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, stderr.decode().splitlines()


async def test_an_unreachable_database_is_one_line_naming_the_url() -> None:
    status, lines = await run_cli(
        "--db",
        "postgresql://app:s3cret@127.0.0.1:1/app",
        "--transport",
        "relay_transports:file_transport",
    )

    assert 2 == status
    [line] = lines
    assert line.startswith(
        "messagebus-relay: cannot reach the database postgresql://app:***@127.0.0.1:1/app: "
    )
    assert "s3cret" not in line


async def test_a_transport_that_cannot_be_loaded_is_one_line(tmp_path: Path) -> None:
    status, lines = await run_cli(
        "--db", f"sqlite:///{tmp_path / 'empty.db'}", "--transport", "relay_transports:nothing"
    )

    assert 2 == status
    assert [
        "messagebus-relay: cannot load --transport relay_transports:nothing: "
        "module 'relay_transports' has no attribute 'nothing'"
    ] == lines


async def test_a_wrong_transport_is_one_line(db: OutboxDatabase) -> None:
    status, lines = await run_cli(
        "--db", db.url, "--prefix", db.prefix, "--transport", "relay_transports:not_a_transport"
    )

    assert 2 == status
    assert [
        "messagebus-relay: relay_transports:not_a_transport returned object, not an "
        "AsyncAbstractEventstreamTransport: return an instance of a subclass of it"
    ] == lines


async def test_the_outbox_table_must_exist(tmp_path: Path) -> None:
    status, lines = await run_cli(
        "--db",
        f"sqlite:///{tmp_path / 'empty.db'}",
        "--transport",
        "relay_transports:file_transport",
    )

    assert 2 == status
    [line] = lines
    assert "the table messagebus_outbox does not exist" in line


async def test_a_second_signal_stops_without_finishing_the_row(
    db: OutboxDatabase, tmp_path: Path
) -> None:
    await db.add({"a": 2})
    relay = Relay(db, tmp_path / "sent.txt", delay=30)
    await relay.start()
    assert relay.process is not None
    assert relay.process.stderr is not None
    line = await asyncio.wait_for(relay.process.stderr.readline(), 10)
    assert b"outbox relay started" in line
    await asyncio.sleep(0.3)  # into the 30-second send of the first row

    relay.process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    relay.process.send_signal(signal.SIGTERM)
    status, stderr = await relay.wait(timeout=10)

    assert 1 == status, stderr
    assert "stopped by a second signal" in stderr
    assert [] == relay.sent()


async def test_the_command_closes_the_transport_when_it_stops() -> None:
    from messagebus.adapters.sqlalchemy.outbox.cli_run import _close

    class Closing:
        closed = False

        async def aclose(self) -> None:
            self.closed = True

    class Plain:
        pass

    transport = Closing()
    await _close(transport)
    await _close(Plain())  # nothing to close: nothing happens
    assert transport.closed


@pytest.mark.parametrize("on_dead", ["block", "skip"])
async def test_a_row_dead_after_max_attempts_is_retried_from_the_command_line(
    db: OutboxDatabase, tmp_path: Path, on_dead: str
) -> None:
    ids = await db.add({"a": 3})
    relay = Relay(db, tmp_path / "sent.txt")
    command = relay.command("--once", "--max-attempts", "1", "--on-dead", on_dead)
    broken = command.index("relay_transports:file_transport")
    command[broken] = "relay_transports:broken_transport"
    process = await asyncio.create_subprocess_exec(
        *command, env=relay.env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert 1 == process.returncode, stderr.decode()
    assert "is dead after 1 attempts" in stderr.decode()

    status, _ = await relay.run("--once", "--on-dead", on_dead)
    assert 0 == status
    rows = await db.rows()
    assert rows[0]["dead_at"] is not None
    if on_dead == "block":  # the rows behind the dead one wait
        assert [] == relay.sent()
        assert [None, None] == [row["dead_at"] or row["delivered_at"] for row in rows[1:]]
    else:  # they go on: each one delivered, or dead too
        assert set(relay.sent()) <= set(ids[1:])
        assert all(row["dead_at"] or row["delivered_at"] for row in rows)

    listed = await run_cli("dead", "list", "--db", db.url, "--prefix", db.prefix)
    assert 0 == listed[0]
    retried = await run_cli("dead", "retry", "--all", "--db", db.url, "--prefix", db.prefix)
    assert 0 == retried[0]
    status, stderr_text = await relay.run("--once", "--on-dead", on_dead)

    assert 0 == status, stderr_text
    assert sorted(ids) == sorted(relay.sent())
    assert sorted(ids) == sorted(await delivered_ids(db))
    if on_dead == "block":
        assert ids == relay.sent()  # the order held


@pytest.mark.parametrize("loop", ["asyncio", "uvloop", "auto without uvloop"])
async def test_the_relay_runs_on_either_event_loop(
    db: OutboxDatabase, tmp_path: Path, loop: str
) -> None:
    """uvloop when it is installed (auto), asyncio's loop when it is not or when asked."""
    ids = await db.add({"a": 3})
    relay = Relay(db, tmp_path / "sent.txt")
    options: tuple[str, ...] = ("--loop", loop)
    if loop == "auto without uvloop":
        blocked = tmp_path / "no-uvloop"
        (blocked / "uvloop").mkdir(parents=True)
        (blocked / "uvloop" / "__init__.py").write_text("raise ImportError('no uvloop here')\n")
        relay.env["PYTHONPATH"] = os.pathsep.join([str(blocked), relay.env["PYTHONPATH"]])
        options, loop = (), "asyncio"

    status, stderr = await relay.run("--once", "--log-level", "DEBUG", *options)

    assert 0 == status, stderr
    assert sorted(ids) == sorted(relay.sent())
    assert f"outbox relay: {loop} event loop" in stderr
