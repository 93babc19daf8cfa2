# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""The base class of SQL repositories: their statements run in the unit of work's transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from messagebus.adapters.sqlalchemy._compat import SyncConnection
from messagebus.service._sync.repository import SyncAbstractRepository, TModel

if TYPE_CHECKING:
    from messagebus.adapters.sqlalchemy._sync.unit_of_work import SyncSqlAlchemyUnitOfWork

__all__ = ["SyncSqlAlchemyRepository"]


class SyncSqlAlchemyRepository(SyncAbstractRepository[TModel]):
    """A base class for repositories that run their statements in the unit of work.

    Build it with the unit of work, in its ``__init__``; the repository's statements
    then run on :attr:`connection`, in the transaction of the unit of work::

        class BookRepository(SyncSqlAlchemyRepository[Book]):
            def add(self, book: Book) -> None:
                self.connection.execute(insert(books).values(...))
                self.seen.append(book)

    Append to ``seen`` every model you store or load, so that the bus dispatches the
    events it raised.
    """

    uow: SyncSqlAlchemyUnitOfWork[Any, Any]
    """The unit of work whose transaction the statements run in."""

    def __init__(self, uow: SyncSqlAlchemyUnitOfWork[Any, Any]) -> None:
        super().__init__()
        self.uow = uow

    @property
    def connection(self) -> SyncConnection:
        """The connection of the running transaction.

        :raises messagebus.TransactionError: outside of a transaction.
        """
        return self.uow.connection
