# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""The unit of work of the tests, once in every configuration a user can have."""

import pytest

from tests.unit._sync.fakes import CONFIGURATIONS, SyncInMemoryUnitOfWork, make_unit_of_work
from tests.unit._sync.handlers import books


@pytest.fixture(params=CONFIGURATIONS, ids=str)
def uow(request: pytest.FixtureRequest) -> SyncInMemoryUnitOfWork:
    books.calls.clear()
    return make_unit_of_work(request.param)
