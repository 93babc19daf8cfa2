import pytest
from prometheus_client import CollectorRegistry

from messagebus import AsyncMessageBus
from messagebus.adapters.prometheus import MetricsStore
from tests.unit._async.fakes import AsyncInMemoryUnitOfWork
from tests.unit.model import RegisterBook


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def value(registry: CollectorRegistry, metric: str, **labels: str) -> float | None:
    return registry.get_sample_value(metric, labels)


def test_one_store_per_registry(registry: CollectorRegistry) -> None:
    assert MetricsStore(registry=registry) is MetricsStore(registry=registry)
    assert MetricsStore(registry=registry) is not MetricsStore(registry=CollectorRegistry())


async def test_metrics_of_a_committed_and_a_failed_transaction(
    registry: CollectorRegistry,
) -> None:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.scan("tests.unit._async.handlers")
    uow = AsyncInMemoryUnitOfWork()
    uow.metrics_store = MetricsStore(registry=registry)
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    with pytest.raises(RuntimeError):
        async with uow as transaction:
            raise RuntimeError
    assert 2 == value(registry, "messagebus_transactions_started_total")
    assert 0 == value(registry, "messagebus_transactions_in_progress")
    assert 1 == value(registry, "messagebus_transactions_failed_total")
    assert 1 == value(registry, "messagebus_transactions_closed_total", status="committed")
    assert 1 == value(registry, "messagebus_transactions_closed_total", status="rolledback")
    assert 1 == value(
        registry, "messagebus_messages_processed_total", name="book_registered", version="1"
    )
    assert 1 == value(
        registry,
        "messagebus_command_processing_seconds_count",
        name="register_book",
        version="1",
    )
