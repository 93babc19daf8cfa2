"""The command line of the outbox: ``messagebus-relay`` or ``python -m messagebus.relay``.

``messagebus-relay [run]`` delivers the rows of the outbox table with
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

``run`` runs on uvloop when that is installed (``messagebus[uvloop]``; ``--loop asyncio``
not to).

The operator's commands work on the same database and table options:

- ``messagebus-relay status`` prints the pending, delivered and dead rows and the age of
  the oldest pending row of each stream (``--json`` for a program);
- ``messagebus-relay dead list`` lists the dead rows with their reason;
  ``dead retry`` makes them pending again and ``dead discard`` deletes them, chosen by
  id, by ``--stream`` or ``--all``; they exit 1 when no dead row matched.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import sys
import threading
import traceback
from collections.abc import Coroutine, Sequence
from typing import Any, NoReturn

from messagebus._commands import add_log_level, add_loop, event_loop_factory
from messagebus.adapters.sqlalchemy.outbox.cli_admin import add_commands, administer
from messagebus.adapters.sqlalchemy.outbox.cli_common import RelayConfigurationError
from messagebus.adapters.sqlalchemy.outbox.cli_run import serve
from messagebus.adapters.sqlalchemy.outbox.relay import DEFAULT_MAX_ATTEMPTS
from messagebus.adapters.sqlalchemy.outbox.urls import (
    RedactingFormatter,
    Redactor,
    UrlError,
    read_url,
)

__all__ = ["main"]

PROG = "messagebus-relay"
ENV_DB = "MESSAGEBUS_RELAY_DB"
COMMANDS = ("run", "status", "dead")
_YEAR = 365 * 24 * 3600


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with the command-line arguments ``argv``; return the exit status.

    Without a command name, the command is ``run``. Nothing it prints holds the password
    of the database URL, whatever the URL: a URL that cannot be read safely is refused
    with one line, and every log line, error and traceback is cleaned of its secrets.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in COMMANDS:
        arguments.insert(0, "run")
    args = _parser().parse_args(arguments)
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
    logging.captureWarnings(True)  # through the handler that hides the secrets
    try:
        if args.command == "run":
            with asyncio.Runner(loop_factory=event_loop_factory(args.loop, PROG)) as runner:
                return runner.run(_settled(serve(args, database)))
        return asyncio.run(_settled(administer(args, database)))
    except RelayConfigurationError as exc:
        print(redact(f"{PROG}: {exc}"), file=sys.stderr)
        return 2
    except Exception:  # a bug of ours or of the transport: show it, without the secrets
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
        return 1


async def _settled(command: Coroutine[Any, Any, int]) -> int:
    """Await ``command``, then let the database threads it started end with the loop open.

    aiosqlite leaves the thread of a connection that failed to open running, and that
    thread reports to the loop later (omnilib/aiosqlite#389): closed, it prints a traceback.
    """
    before = set(threading.enumerate())
    try:
        return await command
    finally:
        for thread in set(threading.enumerate()) - before:
            if "_connection_worker_thread" in thread.name:
                await asyncio.to_thread(thread.join, 5)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, without the usage."""

    def error(self, message: str) -> NoReturn:
        """Print ``message`` on one line and exit with status 2."""
        self.exit(2, f"{PROG}: {message}\n")


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--db",
        default=os.environ.get(ENV_DB),
        required=ENV_DB not in os.environ,
        metavar="URL",
        help=f"SQLAlchemy URL of the database holding the outbox (default: ${ENV_DB})",
    )
    common.add_argument("--prefix", default="messagebus_", help="table prefix (%(default)s)")
    common.add_argument(
        "--connect-timeout",
        type=_positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="give up reaching the database at start after this long (%(default)s)",
    )
    add_log_level(common)
    parser = _Parser(prog=PROG, description="The messagebus outbox: its relay and its backlog.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser(
        "run",
        parents=[common],
        prog=PROG,
        description="Deliver the messages of the messagebus outbox table to an event stream. "
        "Other commands: 'messagebus-relay status' shows the backlog, "
        "'messagebus-relay dead list|retry|discard' handles the dead rows.",
    )
    run.add_argument(
        "--transport",
        required=True,
        metavar="MODULE:FACTORY",
        help="zero-argument callable returning an AsyncAbstractEventstreamTransport",
    )
    run.add_argument(
        "--batch-size", type=_positive_int, default=100, help="rows per batch (%(default)s)"
    )
    add_loop(run)
    run.add_argument(
        "--poll-interval",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="sleep when nothing is due (%(default)s)",
    )
    run.add_argument(
        "--commit-interval",
        type=_seconds,
        default=0.1,
        metavar="SECONDS",
        help="commit the delivered marks at least this often; 0: after every row (%(default)s)",
    )
    run.add_argument(
        "--send-timeout",
        type=_positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="a send that has not returned after this long fails; a stream is leased "
        "for three times this long (%(default)s)",
    )
    run.add_argument(
        "--max-attempts",
        type=_attempts,
        default=DEFAULT_MAX_ATTEMPTS,
        metavar="N",
        help="failed sends after which a row is dead; 'forever' never gives up (%(default)s)",
    )
    run.add_argument(
        "--on-dead",
        choices=["block", "skip"],
        default="block",
        help="whether a dead row holds back the rest of its stream (%(default)s)",
    )
    run.add_argument(
        "--concurrency",
        type=_positive_int,
        default=4,
        metavar="N",
        help="how many streams are delivered at once (%(default)s)",
    )
    run.add_argument(
        "--backoff-base",
        type=_positive_seconds,
        default=1.0,
        metavar="SECONDS",
        help="the wait after a row's first failed send, doubled at each failure (%(default)s)",
    )
    run.add_argument(
        "--backoff-cap",
        type=_positive_seconds,
        default=300.0,
        metavar="SECONDS",
        help="the longest wait between two sends of a failing row (%(default)s)",
    )
    run.add_argument(
        "--progress-interval",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="seconds between progress lines; 0: no progress lines (%(default)s)",
    )
    run.add_argument(
        "--keep-delivered",
        type=_days,
        metavar="DAYS",
        help="delete the rows delivered more than DAYS ago (default: keep them)",
    )
    run.add_argument("--once", action="store_true", help="deliver the rows that are due, then exit")
    run.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve Prometheus metrics on this port, 0 for any free one (default: none)",
    )
    run.add_argument(
        "--metrics-address",
        default="0.0.0.0",
        metavar="ADDRESS",
        help="the address the metrics are served on (%(default)s)",
    )
    add_commands(commands, common)
    return parser


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def _port(value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port, from 0 to 65535")
    return int(value)


def _attempts(value: str) -> int | None:
    return None if value == "forever" else _positive_int(value)


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


if __name__ == "__main__":
    sys.exit(main())
