"""What only the async kit can meet: a repository whose commit() is a coroutine function."""

import pytest

from messagebus import AsyncAbstractRepository, ConfigurationError
from messagebus.testing import AsyncInMemoryUnitOfWork
from tests.unit.model import Book


class AsyncCommittingShelf(AsyncAbstractRepository[Book]):
    """Ends its transaction with coroutines: the kit cannot call them as plain methods."""

    async def add(self, model: Book) -> None:
        self.seen.append(model)

    async def get(self, model_id: str) -> Book | None:
        return None

    async def commit(self) -> None:
        """Never called: the unit of work refuses it first."""

    async def rollback(self) -> None:
        """Never called: the unit of work refuses it first."""


async def test_a_repository_whose_commit_is_a_coroutine_function_is_refused() -> None:
    uow = AsyncInMemoryUnitOfWork(books=AsyncCommittingShelf())
    with pytest.raises(ConfigurationError, match=r"AsyncCommittingShelf.commit\(\) is a coroutine"):
        async with uow as transaction:
            await transaction.commit()
