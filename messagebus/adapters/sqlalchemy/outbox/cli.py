"""The outbox relay as a process: ``messagebus-relay`` or ``python -m messagebus.relay``.

It delivers the rows of the outbox table with
:class:`~messagebus.adapters.sqlalchemy.AsyncOutboxRelay` until it gets SIGTERM or
SIGINT, then finishes the row being sent and exits with status 0::

    messagebus-relay --db postgresql://app@db/app --transport myapp.relay:make_transport

``--transport`` names a zero-argument callable, ``module:attribute``, that returns an
:class:`~messagebus.AsyncAbstractEventstreamTransport` (or an awaitable of one); the
current directory is importable. ``--db`` takes a SQLAlchemy URL, or the environment
variable ``MESSAGEBUS_RELAY_DB`` so the password stays out of the process list; a URL
without an async driver gets one (``postgresql`` uses asyncpg, ``sqlite`` aiosqlite).
Run one relay per SQLite database; on PostgreSQL run as many as you like.

Exit status: 0 when stopped by a signal, or with ``--once`` when every due row was
delivered; 1 with ``--once`` when a send failed (the row waits for its backoff) or on a
second signal, which stops without finishing the row; 2 when the configuration is wrong
or the database cannot be reached, with one line on stderr that says why.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import inspect
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine

    from messagebus.adapters.sqlalchemy.outbox.relay import AsyncOutboxRelay
    from messagebus.service._async.eventstream import AsyncAbstractEventstreamTransport

__all__ = ["main"]

PROG = "messagebus-relay"
ENV_DB = "MESSAGEBUS_RELAY_DB"
_ASYNC_DRIVERS = {"postgresql": "asyncpg", "postgres": "asyncpg", "sqlite": "aiosqlite"}
_SYNC_DRIVERS = {"", "psycopg2", "pg8000", "pysqlite"}

logger = logging.getLogger("messagebus.relay")


class RelayConfigurationError(Exception):
    """The relay cannot start: the message says what is wrong and how to fix it."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the relay with the command-line arguments ``argv``; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return asyncio.run(_serve(args))
    except RelayConfigurationError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Deliver the messages of the messagebus outbox table to an event stream.",
    )
    parser.add_argument(
        "--db",
        default=os.environ.get(ENV_DB),
        required=ENV_DB not in os.environ,
        metavar="URL",
        help=f"SQLAlchemy URL of the database holding the outbox (default: ${ENV_DB})",
    )
    parser.add_argument(
        "--transport",
        required=True,
        metavar="MODULE:FACTORY",
        help="zero-argument callable returning an AsyncAbstractEventstreamTransport",
    )
    parser.add_argument("--prefix", default="messagebus_", help="table prefix (%(default)s)")
    parser.add_argument(
        "--batch-size", type=_positive_int, default=100, help="rows per batch (%(default)s)"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="sleep when nothing is due (%(default)s)",
    )
    parser.add_argument(
        "--commit-interval",
        type=float,
        default=0.1,
        metavar="SECONDS",
        help="commit the delivered marks at least this often; 0: after every row (%(default)s)",
    )
    parser.add_argument(
        "--progress-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds between progress lines; 0: no progress lines (%(default)s)",
    )
    parser.add_argument(
        "--keep-delivered",
        type=float,
        metavar="DAYS",
        help="delete the rows delivered more than DAYS ago (default: keep them)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="give up reaching the database at start after this long (%(default)s)",
    )
    parser.add_argument(
        "--once", action="store_true", help="deliver the rows that are due, then exit"
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="(%(default)s)",
    )
    return parser


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


async def _serve(args: argparse.Namespace) -> int:
    try:
        from sqlalchemy.exc import SQLAlchemyError

        from messagebus.adapters.sqlalchemy.outbox.reasons import error_reason
        from messagebus.adapters.sqlalchemy.outbox.relay import AsyncOutboxRelay
    except ImportError as exc:
        raise RelayConfigurationError(
            f"{exc}: install the SQLAlchemy adapter, pip install 'messagebus[sqlalchemy]'"
        ) from None

    given, url = _urls(args.db)
    shown = given.render_as_string(hide_password=True)
    transport = await _load_transport(args.transport)
    engine = _engine(url, shown)
    relay = AsyncOutboxRelay(
        engine,
        transport,
        prefix=args.prefix,
        batch_size=args.batch_size,
        poll_interval=args.poll_interval,
        commit_interval=args.commit_interval,
        progress_interval=args.progress_interval or None,
        keep_delivered=None if args.keep_delivered is None else timedelta(args.keep_delivered),
    )
    # From now on a signal stops the relay, even one that comes during the checks.
    signals = _stop_on_signals(relay)
    try:
        try:
            await _check_database(relay, shown, args.connect_timeout)
            pending = await relay.pending()
            logger.info(
                "outbox relay started on %s, table %s, %s pending",
                shown,
                relay.outbox.name,
                pending,
            )
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
            "outbox relay stopped: %s delivered, %s failed sends, %s pending",
            relay.delivered,
            relay.failed,
            left,
        )
        return status
    finally:
        try:
            await _close(transport)
        finally:
            await engine.dispose()


async def _close(transport: object) -> None:
    """Close the transport if it can be: a broker client flushes what it holds."""
    for name in ("aclose", "close"):
        method = getattr(transport, name, None)
        if callable(method):
            result = method()
            if inspect.isawaitable(result):
                await result
            return


def _urls(raw: str) -> tuple[URL, URL]:
    """Return the URL as given, to show, and the one to connect with, async."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        given = make_url(raw)
    except ArgumentError:
        raise RelayConfigurationError(
            "--db is not a database URL: write it like postgresql://user@host/db "
            "or sqlite:///path/to/file.db"
        ) from None
    backend, _, driver = given.drivername.partition("+")
    if driver in _SYNC_DRIVERS and backend in _ASYNC_DRIVERS:
        backend = "postgresql" if backend == "postgres" else backend
        return given, given.set(drivername=f"{backend}+{_ASYNC_DRIVERS[backend]}")
    return given, given


def _engine(url: URL, shown: str) -> AsyncEngine:
    from sqlalchemy.exc import ArgumentError, InvalidRequestError, NoSuchModuleError
    from sqlalchemy.ext.asyncio import create_async_engine

    try:
        return create_async_engine(url)
    except ImportError as exc:
        raise RelayConfigurationError(
            f"the driver of {shown} is not installed ({exc}): install it; "
            f"for PostgreSQL, pip install 'messagebus[postgresql]'"
        ) from None
    except (ArgumentError, InvalidRequestError, NoSuchModuleError) as exc:
        raise RelayConfigurationError(f"cannot use {shown}: {exc}") from None


async def _check_database(relay: AsyncOutboxRelay, shown: str, timeout: float) -> None:
    from sqlalchemy import inspect as sql_inspect
    from sqlalchemy.exc import SQLAlchemyError

    from messagebus.adapters.sqlalchemy.outbox.reasons import error_reason

    table = relay.outbox.name
    try:
        async with asyncio.timeout(timeout), relay.engine.connect() as conn:
            exists = await conn.run_sync(lambda sync: sql_inspect(sync).has_table(table))
    except TimeoutError:
        raise RelayConfigurationError(
            f"cannot reach the database {shown}: no answer in {timeout:g}s"
        ) from None
    except (SQLAlchemyError, OSError) as exc:
        raise RelayConfigurationError(
            f"cannot reach the database {shown}: {error_reason(exc)}"
        ) from None
    if not exists:
        raise RelayConfigurationError(
            f"the table {table} does not exist in {shown}: create the messagebus tables "
            f"(messagebus_tables(metadata).outbox) or pass the --prefix they were made with"
        )


async def _load_transport(spec: str) -> AsyncAbstractEventstreamTransport:
    from messagebus.service._async.eventstream import AsyncAbstractEventstreamTransport

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise RelayConfigurationError(
            f"--transport {spec!r} is not MODULE:FACTORY, for example myapp.relay:make_transport"
        )
    # Like `python -m`, let the transport live in the current directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
        factory: Any = functools.reduce(getattr, attribute.split("."), module)
    except (ImportError, AttributeError) as exc:
        raise RelayConfigurationError(f"cannot load --transport {spec}: {exc}") from None
    if not callable(factory):
        raise RelayConfigurationError(f"--transport {spec} is not callable: name a factory")
    try:
        transport = factory()
        if inspect.isawaitable(transport):
            transport = await transport
    except Exception as exc:
        raise RelayConfigurationError(
            f"the transport factory {spec} failed: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(transport, AsyncAbstractEventstreamTransport):
        raise RelayConfigurationError(
            f"{spec} returned {type(transport).__name__}, not an "
            f"AsyncAbstractEventstreamTransport: return an instance of a subclass of it"
        )
    return transport


async def _deliver_due(relay: AsyncOutboxRelay) -> int:
    while not relay.stopping and await relay.run_once():
        pass
    return 1 if relay.failed else 0


def _stop_on_signals(relay: AsyncOutboxRelay) -> list[int]:
    """Stop the relay on the first SIGTERM or SIGINT, cancel it on the second."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        if len(received) == 1:
            logger.info(
                "outbox relay: %s received, stopping after the row being sent",
                signal.Signals(signum).name,
            )
            relay.stop()
        elif task is not None:
            task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    return received


if __name__ == "__main__":
    sys.exit(main())
