"""The pytest fixtures of the testing kit: a bus scanned from your handlers, a unit of work.

A project turns them on with ``messagebus_testing = true`` in its pytest configuration
(or ``pytest_plugins = ["messagebus.testing.fixtures"]`` in its root ``conftest.py``),
names the packages of its handlers in ``messagebus_handlers``, and overrides any fixture
by defining one of the same name, ``messagebus_uow`` first: the kit's unit of work has
no repository.
"""

from typing import Any

import pytest

from messagebus.service._async.registry import AsyncMessageBus
from messagebus.service._async.unit_of_work import AsyncAbstractUnitOfWork
from messagebus.service._sync.registry import SyncMessageBus
from messagebus.service._sync.unit_of_work import SyncAbstractUnitOfWork
from messagebus.testing._async.fakes import AsyncInMemoryTransport, AsyncInMemoryUnitOfWork
from messagebus.testing._async.scenario import AsyncScenario
from messagebus.testing._sync.fakes import SyncInMemoryTransport, SyncInMemoryUnitOfWork
from messagebus.testing._sync.scenario import SyncScenario

__all__ = [
    "messagebus_bus",
    "messagebus_packages",
    "messagebus_scenario",
    "messagebus_sync_bus",
    "messagebus_sync_scenario",
    "messagebus_sync_transport",
    "messagebus_sync_uow",
    "messagebus_transport",
    "messagebus_uow",
]


@pytest.fixture
def messagebus_packages(request: pytest.FixtureRequest) -> list[str]:
    """Return the modules or packages whose handlers the buses scan.

    By default the names in the ini option ``messagebus_handlers``; override this
    fixture to compute them, or to scan other packages in part of a test suite.
    """
    try:
        return list(request.config.getini("messagebus_handlers"))
    except ValueError:  # the fixtures were loaded without the plugin that declares it
        return []


@pytest.fixture
def messagebus_transport() -> AsyncInMemoryTransport:
    """Return the in-memory transport the unit of work publishes to."""
    return AsyncInMemoryTransport()


@pytest.fixture
def messagebus_uow(
    messagebus_transport: AsyncInMemoryTransport,
) -> AsyncAbstractUnitOfWork[Any, Any, Any]:
    """Return an :class:`~messagebus.testing.AsyncInMemoryUnitOfWork` that has no repository.

    It publishes to ``messagebus_transport``. Override this fixture to return yours.
    """
    return AsyncInMemoryUnitOfWork(messagebus_transport)


@pytest.fixture
def messagebus_bus(messagebus_packages: list[str]) -> AsyncMessageBus[Any]:
    """Return an :class:`~messagebus.AsyncMessageBus` of the handlers of ``messagebus_packages``."""
    bus = AsyncMessageBus[Any]()
    bus.scan(*_required(messagebus_packages, "messagebus_bus"))
    return bus


@pytest.fixture
def messagebus_scenario(
    messagebus_bus: AsyncMessageBus[Any], messagebus_uow: AsyncAbstractUnitOfWork[Any, Any, Any]
) -> AsyncScenario[Any]:
    """Return an :class:`~messagebus.testing.AsyncScenario` of the bus and unit of work."""
    return AsyncScenario(messagebus_bus, messagebus_uow)


@pytest.fixture
def messagebus_sync_transport() -> SyncInMemoryTransport:
    """Return the in-memory transport the sync unit of work publishes to."""
    return SyncInMemoryTransport()


@pytest.fixture
def messagebus_sync_uow(
    messagebus_sync_transport: SyncInMemoryTransport,
) -> SyncAbstractUnitOfWork[Any, Any, Any]:
    """Return a :class:`~messagebus.testing.SyncInMemoryUnitOfWork` that has no repository.

    It publishes to ``messagebus_sync_transport``. Override this fixture to return yours.
    """
    return SyncInMemoryUnitOfWork(messagebus_sync_transport)


@pytest.fixture
def messagebus_sync_bus(messagebus_packages: list[str]) -> SyncMessageBus[Any]:
    """Return a :class:`~messagebus.SyncMessageBus` of the handlers of ``messagebus_packages``."""
    bus = SyncMessageBus[Any]()
    bus.scan(*_required(messagebus_packages, "messagebus_sync_bus"))
    return bus


@pytest.fixture
def messagebus_sync_scenario(
    messagebus_sync_bus: SyncMessageBus[Any],
    messagebus_sync_uow: SyncAbstractUnitOfWork[Any, Any, Any],
) -> SyncScenario[Any]:
    """Return a :class:`~messagebus.testing.SyncScenario` of the sync bus and unit of work."""
    return SyncScenario(messagebus_sync_bus, messagebus_sync_uow)


def _required(packages: list[str], fixture: str) -> list[str]:
    if not packages:
        pytest.fail(
            f"The {fixture} fixture scans no package: name the packages of your handlers "
            f"in the ini option messagebus_handlers (messagebus_handlers = myapp.service), "
            f"or override the messagebus_packages fixture",
            pytrace=False,
        )
    return packages
