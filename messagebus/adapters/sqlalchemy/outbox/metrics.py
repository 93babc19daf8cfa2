"""Prometheus metrics of the outbox and its relay (extras ``messagebus[prometheus,sqlalchemy]``).

:class:`OutboxMetrics` is a Prometheus collector: at each scrape it reads the backlog of
the outbox table (:meth:`AsyncOutboxAdmin.status
<messagebus.adapters.sqlalchemy.AsyncOutboxAdmin.status>`) and the counters of a relay,
and exports:

- ``messagebus_outbox_pending_rows`` (gauge): rows waiting to be delivered;
- ``messagebus_outbox_oldest_pending_age_seconds{stream}`` (gauge): how long ago the oldest
  pending row of each stream that has one was written; the largest is the delay of the
  whole pipeline, the value to alert on;
- ``messagebus_outbox_dead_rows`` (gauge): rows the relays gave up on;
- ``messagebus_outbox_delivered_total``, ``messagebus_outbox_failed_attempts_total``,
  ``messagebus_outbox_dead_total`` (counters): the rows this relay delivered, its failed
  sends, the rows it set dead, since it started;
- ``messagebus_outbox_sends_in_flight`` (gauge): the sends of this relay under way.

The table figures are the same for every relay on the database; the counters are this
relay's own, so sum them over the relays. ``messagebus-relay --metrics-port PORT`` serves
them over HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeoutError

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from messagebus.adapters.sqlalchemy.outbox.admin import AsyncOutboxAdmin, OutboxStatus
from messagebus.adapters.sqlalchemy.outbox.reasons import error_reason
from messagebus.adapters.sqlalchemy.outbox.relay import AsyncOutboxRelay

__all__ = ["OutboxMetrics"]

logger = logging.getLogger("messagebus.relay")


class OutboxMetrics(Collector):
    """Exports the backlog of an outbox table and the counters of its relay to Prometheus.

    Build it inside the event loop that runs the relay: a scrape, which the HTTP server
    of ``prometheus_client`` serves from a thread of its own, runs the backlog queries on
    that loop and waits for them at most ``timeout`` seconds. When the database does not
    answer in time, the scrape leaves out the table figures (a warning is logged) rather
    than report old ones; the relay's counters are always there.

    A scrape made from the loop's own thread cannot wait for the loop: it reports the
    figures of the last :meth:`refresh` (none before the first).

    :param admin: reads the backlog of the outbox table.
    :param relay: the relay whose counters are exported; ``None`` for none, say in a
        process that only watches the table.
    :param registry: where the collector is registered; the global registry by default,
        ``None`` to register it yourself.
    :param timeout: the longest wait, in seconds, for the backlog queries of a scrape.
    """

    def __init__(
        self,
        admin: AsyncOutboxAdmin,
        relay: AsyncOutboxRelay | None = None,
        *,
        registry: CollectorRegistry | None = REGISTRY,
        timeout: float = 5.0,
    ) -> None:
        self.admin = admin
        self.relay = relay
        self.timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._last: OutboxStatus | None = None
        if registry is not None:
            registry.register(self)

    async def refresh(self) -> OutboxStatus:
        """Read the backlog now, keep it for the scrapes made from the loop's thread."""
        # Not the delivered rows: counting them reads them all, at every scrape.
        self._last = await self.admin.status(count_delivered=False)
        return self._last

    def describe(self) -> Iterator[Metric]:
        """Name the metrics without querying the database (what a registry asks first)."""
        yield from self._families(None)

    def collect(self) -> Iterator[Metric]:
        """Return the metrics, reading the backlog of the table on the relay's loop."""
        yield from self._families(self._status())

    def _status(self) -> OutboxStatus | None:
        try:
            in_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            in_loop = False
        if in_loop or self._loop.is_closed():
            return self._last
        future = asyncio.run_coroutine_threadsafe(self.refresh(), self._loop)
        try:
            return future.result(self.timeout)
        except FutureTimeoutError:
            future.cancel()
            reason = f"no answer in {self.timeout:g}s"
        except Exception as exc:  # a scrape must never fail: it reports what it can
            reason = error_reason(exc)
        logger.warning("outbox metrics: cannot read the outbox table (%s)", reason)
        return None

    def _families(self, status: OutboxStatus | None) -> Iterator[Metric]:
        pending = GaugeMetricFamily(
            "messagebus_outbox_pending_rows", "Outbox rows waiting to be delivered."
        )
        age = GaugeMetricFamily(
            "messagebus_outbox_oldest_pending_age_seconds",
            "How long ago the oldest pending outbox row of the stream was written.",
            labels=["stream"],
        )
        dead = GaugeMetricFamily(
            "messagebus_outbox_dead_rows", "Outbox rows the relays gave up on."
        )
        if status is not None:
            pending.add_metric([], status.pending)
            dead.add_metric([], status.dead)
            for stream in status.streams:
                if stream.oldest_pending_age is not None:
                    age.add_metric([stream.stream], stream.oldest_pending_age.total_seconds())
        yield from (pending, age, dead)
        relay = self.relay
        if relay is None:
            return
        for name, documentation, value in (
            ("delivered", "Outbox rows this relay delivered.", relay.delivered),
            ("failed_attempts", "Sends of this relay that failed.", relay.failed_attempts),
            ("dead", "Outbox rows this relay set dead.", relay.dead),
        ):
            yield CounterMetricFamily(f"messagebus_outbox_{name}", documentation, value=value)
        yield GaugeMetricFamily(
            "messagebus_outbox_sends_in_flight",
            "Sends of this relay under way.",
            value=relay.in_flight,
        )
