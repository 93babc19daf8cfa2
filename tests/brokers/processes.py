"""Relay and consumer processes on a real broker, and the PostgreSQL tables they share."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from messagebus.adapters.sqlalchemy import MessagebusTables, messagebus_tables
from tests.brokers.conftest import URLS, delete, require
from tests.brokers.conftest import Names as BrokerNames
from tests.brokers.consumer_app import applied_table
from tests.brokers.support import WAIT
from tests.integration.relay_support import PG_ASYNC_URL, PG_URL, OutboxDatabase, postgres_or_skip

ROOT = Path(__file__).parents[2]


@dataclass
class Process:
    """A command line started by a test; its stderr is collected when it ends."""

    name: str
    process: asyncio.subprocess.Process
    stderr: str = ""
    stopped: bool = False

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` and return the exit status, the stderr collected."""
        self.stopped = True
        if self.process.returncode is None:
            self.process.send_signal(signum)
        async with asyncio.timeout(WAIT):
            _, err = await self.process.communicate()
        self.stderr += err.decode()
        assert self.process.returncode is not None
        return self.process.returncode


@dataclass
class Scenario:
    """One test's broker names and tables, and the processes it started."""

    kind: str
    url: str
    source: str
    prefix: str
    engine: AsyncEngine
    tables: MessagebusTables
    applied: object
    tmp: Path
    processes: list[Process] = field(default_factory=list)

    @property
    def outbox(self) -> OutboxDatabase:
        return OutboxDatabase("postgresql", PG_URL, self.engine, self.tables, self.prefix)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "MESSAGEBUS_BROKER_URL": self.url,
            "MESSAGEBUS_DESTINATION": self.source,
            "MESSAGEBUS_NATS_JETSTREAM": self.source,
            "BROKER_TEST_DB": PG_ASYNC_URL,
            "BROKER_TEST_PREFIX": self.prefix,
            **extra,
        }

    async def start(self, name: str, *command: str, **extra: str) -> Process:
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=ROOT,
            env=self.env(**extra),
            stdout=subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        started = Process(name, process)
        self.processes.append(started)
        return started

    async def start_relay(self) -> Process:
        return await self.start(
            "relay",
            sys.executable, "-m", "messagebus.relay", "--db", PG_URL, "--prefix", self.prefix,
            "--transport", "messagebus.adapters.faststream:transport_from_env",
            "--poll-interval", "0.05", "--progress-interval", "0",
        )  # fmt: skip

    async def start_consumer(self, *options: str, **extra: str) -> Process:
        return await self.start(
            "consumer",
            sys.executable, "-m", "messagebus.adapters.faststream",
            "--consumer", "tests.brokers.consumer_app:make_consumer",
            "--source", self.source, "--jetstream", self.source,
            "--redeliver-after", "1", "--retry-delay", "0.1",
            *(options or ("--progress-interval", "0")),
            **extra,
        )  # fmt: skip

    async def wait_for_line(self, started: Process, text: str) -> None:
        """Read the stderr of ``started`` until a line contains ``text``; fail after a bound.

        What is read is kept in ``started.stderr``.
        """
        stream = started.process.stderr
        assert stream is not None
        async with asyncio.timeout(WAIT):
            while text not in started.stderr:
                line = await stream.readline()
                if not line:
                    raise AssertionError(f"{started.name} ended without {text!r}: {started.stderr}")
                started.stderr += line.decode()

    async def applied_rows(self) -> list[tuple[str, int, int]]:
        """``(stream, n, pid)`` of each applied message, in the order they were applied."""
        table = self.applied
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(table.c.stream, table.c.n, table.c.pid).order_by(table.c.id)  # type: ignore[attr-defined]
            )
            return [tuple(row) for row in result]  # type: ignore[misc]

    async def wait_until_applied(self, count: int) -> None:
        """Poll the applied rows until there are ``count``; fail after a bound."""
        table = self.applied
        async with asyncio.timeout(WAIT * 2):
            while True:
                async with self.engine.connect() as conn:
                    found = await conn.scalar(select(func.count()).select_from(table))  # type: ignore[arg-type]
                if found is not None and found >= count:
                    return
                for started in self.processes:
                    if started.process.returncode is not None and not started.stopped:
                        await started.stop()
                        raise AssertionError(f"{started.name} exited: {started.stderr}")
                await asyncio.sleep(0.1)


def assert_once(rows: list[tuple[str, int, int]], streams: Mapping[str, int]) -> None:
    """Each message of each stream applied exactly once, whatever the order."""
    expected = sorted((stream, n) for stream, count in streams.items() for n in range(count))
    assert expected == sorted((stream, n) for stream, n, _ in rows)


def assert_once_in_order(rows: list[tuple[str, int, int]], streams: Mapping[str, int]) -> None:
    """Each message of each stream applied exactly once, in its order within the stream."""
    for stream, count in streams.items():
        assert list(range(count)) == [n for s, n, _ in rows if s == stream]


@asynccontextmanager
async def scenario(kind: str, tmp_path: Path) -> AsyncIterator[Scenario]:
    """Tables in PostgreSQL and names on the broker ``kind``, all removed at the end."""
    require(kind)
    postgres_or_skip()
    unique = f"b{uuid.uuid4().hex[:10]}"
    url = URLS[kind]
    if kind == "redis":
        url = f"{url}?client_name={unique}"  # so that the test kills only its connections
    elif kind == "rabbit":
        rabbitmqctl("add_vhost", unique)
        rabbitmqctl("set_permissions", "-p", unique, "guest", ".*", ".*", ".*")
        url = f"{url}{unique}"
    metadata = MetaData()
    prefix = f"{unique}_"
    tables = messagebus_tables(metadata, prefix=prefix)
    applied = applied_table(metadata, prefix)
    engine = create_async_engine(PG_ASYNC_URL)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    found = Scenario(kind, url, unique, prefix, engine, tables, applied, tmp_path)
    try:
        yield found
    finally:
        for started in found.processes:
            if started.process.returncode is None:
                started.process.kill()
                await started.process.wait()
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await engine.dispose()
        if kind == "rabbit":
            rabbitmqctl("delete_vhost", unique)
        else:
            await delete(BrokerNames(kind, URLS[kind], unique, f"{unique}-dead", ""))


def rabbitmqctl(*args: str) -> str:
    """Run ``rabbitmqctl``; return its output."""
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


async def cut_connections(found: Scenario) -> int:
    """Close the broker connections of the test's processes, server side; return how many."""
    if found.kind == "redis":
        from redis.asyncio import Redis

        client = Redis.from_url(URLS["redis"])
        killed = 0
        for connection in await client.client_list():
            if connection["name"] == found.source:
                killed += await client.client_kill_filter(_id=connection["id"])
        await client.aclose()
        return killed
    listed = await asyncio.to_thread(
        rabbitmqctl, "list_connections", "-p", found.source, "--no-table-headers", "-q", "pid"
    )
    await asyncio.to_thread(
        rabbitmqctl, "close_all_connections", "-p", found.source, "cut by the test"
    )
    return len(listed.split())
