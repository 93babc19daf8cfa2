from typing import Any

from messagebus import AsyncMessageBus, SyncMessageBus
from tests.unit.mixed import handlers
from tests.unit.model import BookRegistered, RegisterBook


def test_async_and_sync_handlers_do_not_leak_into_each_other() -> None:
    async_bus: AsyncMessageBus[Any] = AsyncMessageBus()
    sync_bus: SyncMessageBus[Any] = SyncMessageBus()
    async_bus.scan("tests.unit.mixed")
    sync_bus.scan("tests.unit.mixed")
    assert handlers.register_async is async_bus.commands_registry[RegisterBook].callback
    assert {} == async_bus.events_registry
    assert handlers.register_sync is sync_bus.commands_registry[RegisterBook].callback
    assert [handlers.on_registered_sync] == [
        hook.callback for hook in sync_bus.events_registry[BookRegistered]
    ]
