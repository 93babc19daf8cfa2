"""The unit of work of the tests, once in every configuration a user can have."""

import pytest

from tests.unit._async.fakes import CONFIGURATIONS, AsyncInMemoryUnitOfWork, make_unit_of_work
from tests.unit._async.handlers import books


@pytest.fixture(params=CONFIGURATIONS, ids=str)
def uow(request: pytest.FixtureRequest) -> AsyncInMemoryUnitOfWork:
    books.calls.clear()
    return make_unit_of_work(request.param)
