"""``messagebus-relay status`` and ``messagebus-relay dead list|retry|discard``.

They print to stdout, once, and exit: 0 when done, 1 when ``dead retry`` or
``dead discard`` matched no dead row (a mistyped id, a stream without dead rows), 2 when
the configuration is wrong or the database cannot be reached.
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from messagebus.adapters.sqlalchemy.outbox.admin import AsyncOutboxAdmin, OutboxStatus
from messagebus.adapters.sqlalchemy.outbox.cli_common import (
    RelayConfigurationError,
    async_url,
    check_table,
    open_engine,
)
from messagebus.adapters.sqlalchemy.outbox.reasons import error_reason
from messagebus.adapters.sqlalchemy.outbox.urls import DatabaseUrl

__all__ = ["add_commands", "administer", "format_age"]


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``status`` and ``dead`` to the subcommands of the parser."""
    status = commands.add_parser(
        "status",
        parents=[common],
        description="Print the pending, delivered and dead rows of the outbox, "
        "and the age of the oldest pending row of each stream.",
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")
    dead = commands.add_parser(
        "dead",
        description="The rows the relay gave up on: list them, retry them, discard them.",
    )
    actions = dead.add_subparsers(dest="action", required=True, parser_class=type(dead))
    listing = actions.add_parser("list", parents=[common], description="List the dead rows.")
    listing.add_argument("--stream", help="only the dead rows of this stream")
    listing.add_argument(
        "--limit", type=_positive_int, default=100, help="at most this many (%(default)s)"
    )
    for name, does in (
        ("retry", "Make dead rows pending again, their attempts counted from zero."),
        ("discard", "Delete dead rows: their messages are never sent."),
    ):
        action = actions.add_parser(name, parents=[common], description=does)
        action.add_argument("ids", nargs="*", type=_positive_int, metavar="ID", help="row ids")
        action.add_argument("--stream", help="the dead rows of this stream")
        action.add_argument("--all", action="store_true", help="every dead row")


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number, 1 or more")
    return int(value)


async def administer(args: argparse.Namespace, database: DatabaseUrl) -> int:
    """Run ``status`` or ``dead ...`` as ``args`` say; return the exit status."""
    engine = open_engine(async_url(database.url), database.shown)
    try:
        admin = AsyncOutboxAdmin(engine, prefix=args.prefix)
        await check_table(engine, admin.outbox, database.shown, args.connect_timeout)
        try:
            if args.command == "status":
                status = await admin.status()
                print(json.dumps(_as_json(status)) if args.json else _as_text(status))
                return 0
            if args.action == "list":
                return await _list(admin, args)
            return await _change(admin, args)
        except (SQLAlchemyError, OSError) as exc:
            raise RelayConfigurationError(
                f"database error on {database.shown}: {error_reason(exc)}"
            ) from None
    finally:
        await engine.dispose()


async def _list(admin: AsyncOutboxAdmin, args: argparse.Namespace) -> int:
    rows = await admin.dead_rows(stream=args.stream, limit=args.limit)
    if not rows:
        print("no dead rows")
        return 0
    print(f"{'id':>8}  {'stream':<20} {'type':<24} {'attempts':>8}  {'dead since':<19}  reason")
    for row in rows:
        print(
            f"{row.id:>8}  {row.stream:<20} {row.type:<24} {row.attempts:>8}  "
            f"{row.dead_at:%Y-%m-%d %H:%M:%S}  {row.reason or ''}"
        )
    return 0


async def _change(admin: AsyncOutboxAdmin, args: argparse.Namespace) -> int:
    if args.all == bool(args.ids or args.stream is not None):
        raise RelayConfigurationError(
            f"dead {args.action}: name the rows, by id or with --stream, or pass --all "
            f"for every dead row, not both"
        )
    retry = args.action == "retry"
    if args.all:
        count = await (admin.retry_all() if retry else admin.discard_all())
    else:
        method = admin.retry if retry else admin.discard
        count = await method(*args.ids, stream=args.stream)
    done = "made pending again" if retry else "discarded"
    print(f"{count} dead row{'' if count == 1 else 's'} {done}")
    return 0 if count else 1


def format_age(age: timedelta | None) -> str:
    """Return ``age`` as an operator reads it: ``42s``, ``3m05s``, ``2h07m``, ``3d04h``."""
    if age is None:
        return "-"
    seconds = int(age.total_seconds())
    if seconds < 60:
        return f"{age.total_seconds():.1f}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def _as_text(status: OutboxStatus) -> str:
    lines = [
        f"pending    {status.pending}  (oldest {format_age(status.oldest_pending_age)})",
        f"delivered  {status.delivered}",
        f"dead       {status.dead}",
    ]
    if status.streams:
        lines.append("")
        width = max(len("stream"), *(len(s.stream) for s in status.streams))
        lines.append(f"{'stream':<{width}}  {'pending':>8}  {'oldest':>8}  {'dead':>6}")
        for s in status.streams:
            age = format_age(s.oldest_pending_age)
            lines.append(f"{s.stream:<{width}}  {s.pending:>8}  {age:>8}  {s.dead:>6}")
    return "\n".join(lines)


def _as_json(status: OutboxStatus) -> dict[str, Any]:
    def seconds(age: timedelta | None) -> float | None:
        return None if age is None else round(age.total_seconds(), 3)

    return {
        "pending": status.pending,
        "delivered": status.delivered,
        "dead": status.dead,
        "oldest_pending_seconds": seconds(status.oldest_pending_age),
        "streams": {
            s.stream: {
                "pending": s.pending,
                "oldest_pending_seconds": seconds(s.oldest_pending_age),
                "dead": s.dead,
            }
            for s in status.streams
        },
    }
