"""The SQLAlchemy adapter: a SQL unit of work, a message store and a transactional outbox.

Install it with ``pip install messagebus[sqlalchemy]`` (SQLite through aiosqlite and
sqlite3), and add ``messagebus[postgresql]`` for PostgreSQL (asyncpg, psycopg 3).

- :func:`messagebus_tables` adds the message store, outbox and inbox tables to your
  metadata;
- :class:`AsyncSqlAlchemyUnitOfWork` / :class:`SyncSqlAlchemyUnitOfWork` open one
  connection and transaction per ``async with`` / ``with`` and write the handled messages,
  and the outbox, in it;
- :class:`AsyncSqlAlchemyRepository` / :class:`SyncSqlAlchemyRepository` are the base
  classes of your repositories, which run their statements on that connection;
- :class:`AsyncOutboxRelay` sends the outbox rows through an event-stream transport, at
  least once and in order per stream (``python -m messagebus.relay`` runs it as a process);
- :class:`AsyncSqlAlchemyInbox` and :class:`AsyncSqlAlchemyDeadLetters` (with
  :func:`dead_letters_table`) are the consumer's inbox and dead letters.
- :class:`AsyncOutboxAdmin` shows the backlog of the outbox and lists, retries or
  discards its dead rows (``messagebus-relay status``, ``messagebus-relay dead``).
"""

from ._async.message_store import AsyncSqlAlchemyMessageStoreRepository
from ._async.repository import AsyncSqlAlchemyRepository
from ._async.unit_of_work import AsyncSqlAlchemyUnitOfWork
from ._sync.message_store import SyncSqlAlchemyMessageStoreRepository
from ._sync.repository import SyncSqlAlchemyRepository
from ._sync.unit_of_work import SyncSqlAlchemyUnitOfWork
from .dead_letters import AsyncSqlAlchemyDeadLetters, dead_letters_table
from .errors import DatabaseUnavailableError
from .inbox import AsyncSqlAlchemyInbox
from .outbox import AsyncOutboxRelay, Backoff
from .outbox.admin import AsyncOutboxAdmin, DeadRow, OutboxStatus, StreamStatus
from .tables import MessagebusTables, UtcDateTime, messagebus_tables

__all__ = [
    "AsyncOutboxAdmin",
    "AsyncOutboxRelay",
    "AsyncSqlAlchemyDeadLetters",
    "AsyncSqlAlchemyInbox",
    "AsyncSqlAlchemyMessageStoreRepository",
    "AsyncSqlAlchemyRepository",
    "AsyncSqlAlchemyUnitOfWork",
    "Backoff",
    "DatabaseUnavailableError",
    "DeadRow",
    "MessagebusTables",
    "OutboxStatus",
    "StreamStatus",
    "SyncSqlAlchemyMessageStoreRepository",
    "SyncSqlAlchemyRepository",
    "SyncSqlAlchemyUnitOfWork",
    "UtcDateTime",
    "dead_letters_table",
    "messagebus_tables",
]
