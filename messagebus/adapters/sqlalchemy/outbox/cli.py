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
import math
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from messagebus.adapters.sqlalchemy.outbox.urls import (
    DatabaseUrl,
    RedactingFormatter,
    Redactor,
    UrlError,
    read_url,
)

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
_YEAR = 365 * 24 * 3600

logger = logging.getLogger("messagebus.relay")


class RelayConfigurationError(Exception):
    """The relay cannot start: the message says what is wrong and how to fix it."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with the command-line arguments ``argv``; return the exit status.

    Nothing it prints holds the password of the database URL, whatever the URL: a URL
    that cannot be read safely is refused with one line, and every log line and error is
    cleaned of the URL's secrets.
    """
    args = _parser().parse_args(argv)
    try:
        database = read_url(args.db)
    except UrlError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    redact = Redactor(database.secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", redact)
    )
    logging.basicConfig(level=args.log_level, handlers=[handler])
    try:
        return asyncio.run(_serve(args, database))
    except RelayConfigurationError as exc:
        print(redact(f"{PROG}: {exc}"), file=sys.stderr)
        return 2
    except Exception:  # a bug of ours or of the transport: show it, without the secrets
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
        return 1


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, without the usage."""

    def error(self, message: str) -> NoReturn:
        """Print ``message`` on one line and exit with status 2."""
        self.exit(2, f"{PROG}: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="sleep when nothing is due (%(default)s)",
    )
    parser.add_argument(
        "--commit-interval",
        type=_seconds,
        default=0.1,
        metavar="SECONDS",
        help="commit the delivered marks at least this often; 0: after every row (%(default)s)",
    )
    parser.add_argument(
        "--send-timeout",
        type=_positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="a send that has not returned after this long fails (%(default)s)",
    )
    parser.add_argument(
        "--backoff-base",
        type=_positive_seconds,
        default=1.0,
        metavar="SECONDS",
        help="the wait after a row's first failed send, doubled at each failure (%(default)s)",
    )
    parser.add_argument(
        "--backoff-cap",
        type=_positive_seconds,
        default=300.0,
        metavar="SECONDS",
        help="the longest wait between two sends of a failing row (%(default)s)",
    )
    parser.add_argument(
        "--progress-interval",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="seconds between progress lines; 0: no progress lines (%(default)s)",
    )
    parser.add_argument(
        "--keep-delivered",
        type=_days,
        metavar="DAYS",
        help="delete the rows delivered more than DAYS ago (default: keep them)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=_positive_seconds,
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
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def _seconds(value: str) -> float:
    """Read a number of seconds from 0 to a year.

    nan compares false with everything and inf never ends; past a year, dates computed
    from it leave what datetime can hold.
    """
    return _bounded(value, _YEAR, "a year")


def _days(value: str) -> float:
    return _bounded(value, 365_000, "1000 years")


def _bounded(value: str, most: float, said: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not (math.isfinite(number) and 0 <= number <= most):
        raise argparse.ArgumentTypeError(
            f"must be a number from 0 to {most:g} ({said}), not {value}"
        )
    return number


def _positive_seconds(value: str) -> float:
    number = _seconds(value)
    if number == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return number


async def _serve(args: argparse.Namespace, database: DatabaseUrl) -> int:
    try:
        from sqlalchemy.exc import SQLAlchemyError

        from messagebus.adapters.sqlalchemy.outbox.backoff import Backoff
        from messagebus.adapters.sqlalchemy.outbox.reasons import error_reason
        from messagebus.adapters.sqlalchemy.outbox.relay import AsyncOutboxRelay
    except ImportError as exc:
        raise RelayConfigurationError(
            f"{exc}: install the SQLAlchemy adapter, pip install 'messagebus[sqlalchemy]'"
        ) from None

    if args.backoff_cap < args.backoff_base:
        raise RelayConfigurationError(
            f"--backoff-cap {args.backoff_cap:g} is below --backoff-base "
            f"{args.backoff_base:g}: the longest wait cannot be shorter than the first"
        )
    shown = database.shown
    transport = await _load_transport(args.transport)
    engine = _engine(_async_url(database.url), shown)
    relay = AsyncOutboxRelay(
        engine,
        transport,
        prefix=args.prefix,
        batch_size=args.batch_size,
        poll_interval=args.poll_interval,
        backoff=Backoff(base=args.backoff_base, cap=args.backoff_cap),
        send_timeout=args.send_timeout,
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


def _async_url(given: URL) -> URL:
    """Return the URL to connect with: a URL without an async driver gets one."""
    backend, _, driver = given.drivername.partition("+")
    if driver in _SYNC_DRIVERS and backend in _ASYNC_DRIVERS:
        backend = "postgresql" if backend == "postgres" else backend
        return given.set(drivername=f"{backend}+{_ASYNC_DRIVERS[backend]}")
    return given


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
    # SystemExit too: `builtins:exit` would end the process with status 0, silently.
    except (Exception, SystemExit) as exc:
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
