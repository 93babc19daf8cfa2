"""The names users of the PyPI messagebus 0.16 import are all here, documented."""

import importlib

import pytest

import messagebus

# The `__all__` of messagebus 0.16.1 on PyPI.
PYPI_0_16_NAMES = [
    "AbstractMessageSerializer",
    "AsyncAbstractEventstreamTransport",
    "AsyncAbstractRepository",
    "AsyncAbstractUnitOfWork",
    "TAsyncMessageStore",
    "AsyncAbstractMessageStoreRepository",
    "AsyncEventstreamPublisher",
    "AsyncMessageBus",
    "AsyncSinkholeMessageStoreRepository",
    "AsyncSinkholeEventstreamTransport",
    "AsyncUnitOfWorkTransaction",
    "Command",
    "Event",
    "Field",
    "GenericCommand",
    "GenericEvent",
    "GenericModel",
    "Message",
    "TMetadata",
    "Metadata",
    "Model",
    "SyncAbstractEventstreamTransport",
    "SyncAbstractRepository",
    "SyncAbstractUnitOfWork",
    "TSyncMessageStore",
    "SyncAbstractMessageStoreRepository",
    "SyncEventstreamPublisher",
    "SyncMessageBus",
    "SyncSinkholeMessageStoreRepository",
    "SyncSinkholeEventstreamTransport",
    "SyncUnitOfWorkTransaction",
    "TransactionStatus",
    "async_listen",
    "sync_listen",
    "AsyncDependency",
    "SyncDependency",
]

# Module paths of 0.16 that users import errors and helpers from.
PYPI_0_16_PATHS = [
    ("messagebus.domain.model", "Metadata"),
    ("messagebus.domain.model.transaction", "TransactionError"),
    ("messagebus.service._async.registry", "ConfigurationError"),
    ("messagebus.service._sync.registry", "ConfigurationError"),
    ("messagebus.service._async.dependency", "MissingDependencyError"),
    ("messagebus.service._sync.dependency", "MissingDependencyError"),
    ("messagebus.service.eventstream", "MessageSerializer"),
    ("messagebus.ports.observability", "AbstractMetricsStore"),
    ("messagebus.adapters.prometheus.metrics_store", "MetricsStore"),
    ("messagebus.typing", "AsyncMessageHandler"),
]


@pytest.mark.parametrize("name", PYPI_0_16_NAMES)
def test_every_name_of_pypi_0_16_is_exported(name: str) -> None:
    assert name in messagebus.__all__
    assert hasattr(messagebus, name)


@pytest.mark.parametrize(("module", "name"), PYPI_0_16_PATHS)
def test_pypi_0_16_module_paths_still_work(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name)


@pytest.mark.parametrize("name", sorted(set(messagebus.__all__) - {"__version__", "TMetadata"}))
def test_every_public_name_has_a_docstring(name: str) -> None:
    obj = getattr(messagebus, name)
    doc = getattr(obj, "__doc__", None)
    assert doc, f"{name} has no docstring"
    assert doc.strip(), f"{name} has an empty docstring"


def test_every_async_name_has_a_sync_twin() -> None:
    for name in messagebus.__all__:
        if name.startswith("Async"):
            assert "Sync" + name[5:] in messagebus.__all__
        if name.startswith("TAsync"):
            assert "TSync" + name[6:] in messagebus.__all__
