"""The SQLAlchemy adapter: a SQL unit of work, message store and transactional outbox.

Install it with ``pip install messagebus[sqlalchemy]`` (SQLite) or
``messagebus[sqlalchemy,postgresql]``.
"""

from .tables import MessagebusTables, messagebus_tables

__all__ = ["MessagebusTables", "messagebus_tables"]
