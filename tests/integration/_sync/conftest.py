# Generated from the _async package by scripts/generate_sync.py: do not edit.
from collections.abc import Iterator

import pytest

from messagebus.adapters.sqlalchemy._compat import SyncEngine, create_engine
from tests.integration._sync.books import SyncBookUnitOfWork
from tests.integration.conftest import Database, Schema


@pytest.fixture
def engine(database: Database) -> Iterator[SyncEngine]:
    engine = create_engine(database.sync_url)
    yield engine
    engine.dispose()


@pytest.fixture
def uow(engine: SyncEngine, schema: Schema) -> SyncBookUnitOfWork:
    return SyncBookUnitOfWork(engine, schema)
