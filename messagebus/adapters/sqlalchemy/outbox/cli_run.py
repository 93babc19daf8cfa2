"""``messagebus-relay`` (``run``, the default command): the relay as a process.

It loads the transport, opens the engine, checks the outbox table, then runs the relay
until SIGTERM or SIGINT (or, with ``--once``, until nothing is due), and closes the
transport and the engine however it ended.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from messagebus._commands import call_factory, loop_name, stop_on_signals
from messagebus.adapters.sqlalchemy.outbox.admin import AsyncOutboxAdmin
from messagebus.adapters.sqlalchemy.outbox.backoff import Backoff
from messagebus.adapters.sqlalchemy.outbox.cli_common import (
    RelayConfigurationError,
    async_url,
    check_table,
    open_engine,
)
from messagebus.adapters.sqlalchemy.outbox.reasons import error_reason
from messagebus.adapters.sqlalchemy.outbox.relay import AsyncOutboxRelay
from messagebus.adapters.sqlalchemy.outbox.urls import DatabaseUrl
from messagebus.service._async.eventstream import AsyncAbstractEventstreamTransport

__all__ = ["serve"]

logger = logging.getLogger("messagebus.relay")


async def serve(args: argparse.Namespace, database: DatabaseUrl) -> int:
    """Run the relay as ``args`` say; return the exit status."""
    if args.backoff_cap < args.backoff_base:
        raise RelayConfigurationError(
            f"--backoff-cap {args.backoff_cap:g} is below --backoff-base "
            f"{args.backoff_base:g}: the longest wait cannot be shorter than the first"
        )
    shown = database.shown
    transport = await _load_transport(args.transport)
    engine = open_engine(async_url(database.url), shown)
    relay = AsyncOutboxRelay(
        engine,
        transport,
        prefix=args.prefix,
        batch_size=args.batch_size,
        poll_interval=args.poll_interval,
        backoff=Backoff(base=args.backoff_base, cap=args.backoff_cap),
        send_timeout=args.send_timeout,
        max_attempts=args.max_attempts,
        on_dead=args.on_dead,
        concurrency=args.concurrency,
        commit_interval=args.commit_interval,
        progress_interval=args.progress_interval or None,
        keep_delivered=None if args.keep_delivered is None else timedelta(args.keep_delivered),
    )
    # From now on a signal stops the relay, even one that comes during the checks.
    signals = _stop_on_signals(relay)
    stack = _Cleanup()
    try:
        try:
            await check_table(engine, relay.outbox, shown, args.connect_timeout)
            if args.metrics_port is not None:
                stack.callback(_serve_metrics(relay, args.metrics_address, args.metrics_port))
            pending = await relay.pending()
            logger.info(
                "outbox relay started on %s, table %s, %s pending",
                shown,
                relay.outbox.name,
                pending,
            )
            logger.debug("outbox relay: %s event loop", loop_name())
            if args.once:
                status = await _deliver_due(relay)
            else:
                await relay.run()
                status = 0
        except asyncio.CancelledError:
            if len(signals) < 2:
                raise
            logger.warning("outbox relay: stopped by a second signal, a row may be sent again")
            return 1
        except (SQLAlchemyError, OSError) as exc:
            raise RelayConfigurationError(
                f"database error on {shown}: {error_reason(exc)}"
            ) from None
        try:
            left: object = await relay.pending()
        except (SQLAlchemyError, OSError):
            left = "unknown"
        logger.info(
            "outbox relay stopped: %s delivered, %s failed sends, %s dead, %s pending",
            relay.delivered,
            relay.failed_attempts,
            relay.dead,
            left,
        )
        return status
    finally:
        try:
            await stack.run()
            await _close(transport)
        finally:
            await engine.dispose()


class _Cleanup:
    """What to stop when the command ends, such as the metrics server."""

    def __init__(self) -> None:
        self._stops: list[Callable[[], None]] = []

    def callback(self, stop: Callable[[], None]) -> None:
        self._stops.append(stop)

    async def run(self) -> None:
        # In a thread: a scrape under way waits for this loop, which must keep running.
        for stop in reversed(self._stops):
            await asyncio.to_thread(stop)


def _serve_metrics(relay: AsyncOutboxRelay, address: str, port: int) -> Callable[[], None]:
    """Serve the relay's metrics over HTTP; return what stops the server."""
    try:
        from prometheus_client import REGISTRY, start_http_server

        from messagebus.adapters.sqlalchemy.outbox.metrics import OutboxMetrics
    except ImportError as exc:
        raise RelayConfigurationError(
            f"--metrics-port needs prometheus_client ({exc}): pip install 'messagebus[prometheus]'"
        ) from None
    OutboxMetrics(AsyncOutboxAdmin(relay.engine, outbox=relay.outbox), relay, registry=REGISTRY)
    try:
        server, _ = start_http_server(port, address, registry=REGISTRY)
    except OSError as exc:
        raise RelayConfigurationError(
            f"cannot serve the metrics on {address}:{port}: {exc.strerror or exc}"
        ) from None
    logger.info("outbox relay: metrics on http://%s:%s/metrics", address, server.server_address[1])

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop


async def _close(transport: object) -> None:
    """Close the transport if it can be: a broker client flushes what it holds."""
    for name in ("aclose", "close"):
        method = getattr(transport, name, None)
        if callable(method):
            result = method()
            if inspect.isawaitable(result):
                await result
            return


async def _load_transport(spec: str) -> AsyncAbstractEventstreamTransport:
    transport = await call_factory(
        spec, "--transport", "myapp.relay:make_transport", RelayConfigurationError
    )
    if not isinstance(transport, AsyncAbstractEventstreamTransport):
        raise RelayConfigurationError(
            f"{spec} returned {type(transport).__name__}, not an "
            f"AsyncAbstractEventstreamTransport: return an instance of a subclass of it"
        )
    return transport


async def _deliver_due(relay: AsyncOutboxRelay) -> int:
    while not relay.stopping and await relay.run_once():
        pass
    return 1 if relay.failed_attempts else 0


def _stop_on_signals(relay: AsyncOutboxRelay) -> list[int]:
    """Stop the relay on the first SIGTERM or SIGINT, cancel it on the second."""
    return stop_on_signals(
        relay.stop, logger, "outbox relay: %s received, stopping after the row being sent"
    )
