"""The testing kit: in-memory adapters, assertions and scenarios for the tests of a service.

Everything here is public and comes in both flavours, ``Async*`` and ``Sync*``; the
assertions take either. The pytest fixtures are in :mod:`messagebus.testing.fixtures`,
which a project turns on as the how-to guide "Test a service" says.
"""

from messagebus.testing._async.fakes import (
    AsyncInMemoryMessageStore,
    AsyncInMemoryRepository,
    AsyncInMemoryTransport,
    AsyncInMemoryUnitOfWork,
)
from messagebus.testing._async.scenario import AsyncScenario
from messagebus.testing._common import SentEnvelope
from messagebus.testing._sync.fakes import (
    SyncInMemoryMessageStore,
    SyncInMemoryRepository,
    SyncInMemoryTransport,
    SyncInMemoryUnitOfWork,
)
from messagebus.testing._sync.scenario import SyncScenario
from messagebus.testing.assertions import assert_handled, assert_published

__all__ = [
    "AsyncInMemoryMessageStore",
    "AsyncInMemoryRepository",
    "AsyncInMemoryTransport",
    "AsyncInMemoryUnitOfWork",
    "AsyncScenario",
    "SentEnvelope",
    "SyncInMemoryMessageStore",
    "SyncInMemoryRepository",
    "SyncInMemoryTransport",
    "SyncInMemoryUnitOfWork",
    "SyncScenario",
    "assert_handled",
    "assert_published",
]
