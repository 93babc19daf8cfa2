"""What the commands of ``messagebus-relay`` share: their errors and their database."""

from __future__ import annotations

import asyncio

from sqlalchemy import Table
from sqlalchemy import inspect as sql_inspect
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, InvalidRequestError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from messagebus.adapters.sqlalchemy.outbox.reasons import error_reason

__all__ = ["RelayConfigurationError", "async_url", "check_table", "open_engine"]

_ASYNC_DRIVERS = {"postgresql": "asyncpg", "postgres": "asyncpg", "sqlite": "aiosqlite"}
_SYNC_DRIVERS = {"", "psycopg2", "pg8000", "pysqlite"}


class RelayConfigurationError(Exception):
    """The command cannot run: the message says what is wrong and how to fix it."""


def async_url(given: URL) -> URL:
    """Return the URL to connect with: a URL without an async driver gets one."""
    backend, _, driver = given.drivername.partition("+")
    if driver in _SYNC_DRIVERS and backend in _ASYNC_DRIVERS:
        backend = "postgresql" if backend == "postgres" else backend
        return given.set(drivername=f"{backend}+{_ASYNC_DRIVERS[backend]}")
    return given


def open_engine(url: URL, shown: str) -> AsyncEngine:
    """Return an engine on ``url``; ``shown`` is the URL as the errors name it."""
    try:
        return create_async_engine(url)
    except ImportError as exc:
        raise RelayConfigurationError(
            f"the driver of {shown} is not installed ({exc}): install it; "
            f"for PostgreSQL, pip install 'messagebus[postgresql]'"
        ) from None
    except (ArgumentError, InvalidRequestError, NoSuchModuleError) as exc:
        raise RelayConfigurationError(f"cannot use {shown}: {exc}") from None


async def check_table(engine: AsyncEngine, outbox: Table, shown: str, timeout: float) -> None:
    """Raise :class:`RelayConfigurationError` unless ``outbox`` exists and answers in time."""
    table = outbox.name
    try:
        async with asyncio.timeout(timeout), engine.connect() as conn:
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
