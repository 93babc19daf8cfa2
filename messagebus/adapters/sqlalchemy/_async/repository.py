"""The base class of SQL repositories: their statements run in the unit of work's transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from messagebus.adapters.sqlalchemy._compat import AsyncConnection
from messagebus.service._async.repository import AsyncAbstractRepository, TModel

if TYPE_CHECKING:
    from messagebus.adapters.sqlalchemy._async.unit_of_work import AsyncSqlAlchemyUnitOfWork

__all__ = ["AsyncSqlAlchemyRepository"]


class AsyncSqlAlchemyRepository(AsyncAbstractRepository[TModel]):
    """A base class for repositories that run their statements in the unit of work.

    Build it with the unit of work, in its ``__init__``; the repository's statements
    then run on :attr:`connection`, in the transaction of the unit of work::

        class BookRepository(AsyncSqlAlchemyRepository[Book]):
            async def add(self, book: Book) -> None:
                await self.connection.execute(insert(books).values(...))
                self.seen.append(book)

    Append to ``seen`` every model you store or load, so that the bus dispatches the
    events it raised.
    """

    uow: AsyncSqlAlchemyUnitOfWork[Any, Any]
    """The unit of work whose transaction the statements run in."""

    def __init__(self, uow: AsyncSqlAlchemyUnitOfWork[Any, Any]) -> None:
        super().__init__()
        self.uow = uow

    @property
    def connection(self) -> AsyncConnection:
        """The connection of the running transaction.

        :raises messagebus.TransactionError: outside of a transaction.
        """
        return self.uow.connection
