"""The outbox's Prometheus metrics: scraped in-process and from ``--metrics-port``."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from messagebus.adapters.sqlalchemy import AsyncOutboxAdmin, AsyncOutboxRelay, Backoff
from messagebus.adapters.sqlalchemy.outbox.metrics import OutboxMetrics
from tests.integration.relay_support import (
    HERE,
    OutboxDatabase,
    RecordingTransport,
    eventually,
    outbox_database,
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OutboxDatabase]:
    async with outbox_database(request.param, tmp_path) as database:
        yield database


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Map (sample name, labels) to value, from the text a scrape returns."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("messagebus_outbox")
    }


def refuses_b(message: Mapping[str, Any]) -> bool:
    return '"stream":"b"' in message["payload"]


async def test_a_scrape_reports_the_backlog_and_the_relay_counters(db: OutboxDatabase) -> None:
    await db.add({"a": 2, "b": 3})
    transport = RecordingTransport(fails=refuses_b)
    relay = AsyncOutboxRelay(
        db.engine,
        transport,
        outbox=db.outbox,
        max_attempts=1,
        on_dead="block",
        backoff=Backoff(jitter=0),
    )
    registry = CollectorRegistry()
    OutboxMetrics(AsyncOutboxAdmin(db.engine, outbox=db.outbox), relay, registry=registry)
    while await relay.run_once():
        pass

    # From another thread, as prometheus_client's HTTP server scrapes.
    scraped = samples((await asyncio.to_thread(generate_latest, registry)).decode())

    assert 2 == scraped[("messagebus_outbox_pending_rows", ())]
    assert 1 == scraped[("messagebus_outbox_dead_rows", ())]
    assert 2 == scraped[("messagebus_outbox_delivered_total", ())]
    assert 1 == scraped[("messagebus_outbox_failed_attempts_total", ())]
    assert 1 == scraped[("messagebus_outbox_dead_total", ())]
    assert 0 == scraped[("messagebus_outbox_sends_in_flight", ())]
    ages = {
        labels: value
        for (name, labels), value in scraped.items()
        if name == "messagebus_outbox_oldest_pending_age_seconds"
    }
    # Stream a is empty; b waits behind its dead head.
    assert [(("stream", "b"),)] == list(ages)
    assert 0 <= ages[(("stream", "b"),)] < 600


async def test_a_scrape_from_the_loop_thread_reports_the_last_refresh(db: OutboxDatabase) -> None:
    registry = CollectorRegistry()
    metrics = OutboxMetrics(AsyncOutboxAdmin(db.engine, outbox=db.outbox), registry=registry)
    assert ("messagebus_outbox_pending_rows", ()) not in samples(generate_latest(registry).decode())

    await db.add({"a": 3})
    await metrics.refresh()
    assert 3 == samples(generate_latest(registry).decode())[("messagebus_outbox_pending_rows", ())]


async def test_a_database_that_fails_leaves_the_table_figures_out(tmp_path: Path) -> None:
    async with outbox_database("sqlite", tmp_path) as db:
        registry = CollectorRegistry()
        relay = AsyncOutboxRelay(db.engine, RecordingTransport(), outbox=db.outbox)
        missing = AsyncOutboxAdmin(db.engine, prefix="missing_")
        OutboxMetrics(missing, relay, registry=registry)

        scraped = samples((await asyncio.to_thread(generate_latest, registry)).decode())

    assert ("messagebus_outbox_pending_rows", ()) not in scraped
    assert 0 == scraped[("messagebus_outbox_delivered_total", ())]


async def test_the_command_serves_the_metrics(db: OutboxDatabase, tmp_path: Path) -> None:
    await db.add({"a": 3, "b": 2})
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "RELAY_TEST_OUTPUT": str(tmp_path / "sent.txt"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "messagebus.relay",
        "--db",
        db.url,
        "--prefix",
        db.prefix,
        "--transport",
        "relay_transports:file_transport",
        "--poll-interval",
        "0.05",
        "--metrics-port",
        "0",
        "--metrics-address",
        "127.0.0.1",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        port = None
        async with asyncio.timeout(20):
            while port is None:
                line = (await process.stderr.readline()).decode()
                assert line, "the relay ended before serving its metrics"
                if found := re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", line):
                    port = int(found.group(1))

        def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
                return samples(page.read().decode())

        async def all_delivered() -> bool:
            """The scrape shows the five rows delivered and none pending."""
            scraped = await asyncio.to_thread(scrape)
            return (5, 0) == (
                scraped[("messagebus_outbox_delivered_total", ())],
                scraped[("messagebus_outbox_pending_rows", ())],
            )

        await eventually(all_delivered)
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), 20)
    assert 0 == process.returncode, rest.decode()
    # The server stopped with the relay.
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        await asyncio.to_thread(urllib.request.urlopen, f"http://127.0.0.1:{port}/metrics", None, 2)
