from collections.abc import AsyncIterator

import pytest

from messagebus.adapters.sqlalchemy._compat import AsyncEngine, create_async_engine
from tests.integration._async.books import AsyncBookUnitOfWork
from tests.integration.conftest import Database, Schema


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database.async_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def uow(engine: AsyncEngine, schema: Schema) -> AsyncBookUnitOfWork:
    return AsyncBookUnitOfWork(engine, schema)
