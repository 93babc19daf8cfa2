"""The scenario helper: given these messages, when this command, then these events."""

from __future__ import annotations

from typing import Any, Generic, Self

from messagebus.domain.model import GenericCommand, GenericEvent, Message
from messagebus.service._async.registry import AsyncMessageBus
from messagebus.service._async.unit_of_work import TAsyncUow
from messagebus.testing._async.fakes import AsyncInMemoryMessageStore
from messagebus.testing.assertions import compare

__all__ = ["AsyncScenario"]


class AsyncScenario(Generic[TAsyncUow]):
    """A test told as given, when, then, through a bus and a unit of work.

    ``await scenario.given(...)`` handles messages to build the state the test starts
    from, each in a committed transaction; ``await scenario.when(command)`` handles the
    command under test, in one committed transaction, and keeps its result in
    :attr:`result`; :meth:`then` and :meth:`then_published` check what followed it.
    Every method returns the scenario. The unit of work's message store must be the
    kit's, :class:`AsyncInMemoryMessageStore` (that of :class:`AsyncInMemoryUnitOfWork` is).

    An exception in a handler propagates from :meth:`given` or :meth:`when`, after the
    transaction rolled back: check it with ``pytest.raises``.
    """

    def __init__(self, bus: AsyncMessageBus[TAsyncUow], uow: TAsyncUow) -> None:
        store = uow.messagestore
        if not isinstance(store, AsyncInMemoryMessageStore):
            raise TypeError(
                f"A scenario reads what the bus did from the message store of "
                f"{type(uow).__name__}, a {type(store).__name__}: set its messagestore to "
                f"the kit's AsyncInMemoryMessageStore, or use AsyncInMemoryUnitOfWork"
            )
        self.bus = bus
        self.uow = uow
        self.result: Any = None
        """What the handler of the command given to :meth:`when` returned."""
        self._store = store
        self._handled_from: int | None = None
        self._published_from = 0

    async def given(self, *messages: GenericCommand[Any] | GenericEvent[Any]) -> Self:
        """Handle ``messages`` in order, each in a transaction that commits."""
        for message in messages:
            await self._handle(message)
        return self

    async def when(self, command: GenericCommand[Any] | GenericEvent[Any]) -> Self:
        """Handle ``command`` in a transaction that commits; keep the result in :attr:`result`."""
        handled_from, self._published_from = len(self._store.messages), len(self._store.published)
        self._handled_from = None  # a command that raises leaves nothing to check
        self.result = await self._handle(command)
        self._handled_from = handled_from
        return self

    def then(self, *events: Message[Any]) -> Self:
        """Check that the command of :meth:`when` led to exactly ``events``, in order.

        They are the messages the bus handled after the command: the events its
        handler raised, and the ones theirs raised in turn.

        :raises AssertionError: showing the difference.
        """
        start = self._started("then")
        compare("handled", list(events), self._store.messages[start + 1 :])
        return self

    def then_published(self, *messages: Message[Any]) -> Self:
        """Check that the command of :meth:`when` published exactly ``messages``, in order.

        :raises AssertionError: showing the difference.
        """
        self._started("then_published")
        compare("published", list(messages), self._store.published[self._published_from :])
        return self

    def _started(self, method: str) -> int:
        if self._handled_from is None:
            raise RuntimeError(
                f"{method}() checks what the command of when() caused, and no command "
                f"was handled: await scenario.when(command) first, and if it raised, "
                f"check the exception with pytest.raises instead"
            )
        return self._handled_from

    async def _handle(self, message: GenericCommand[Any] | GenericEvent[Any]) -> Any:
        async with self.uow as transaction:
            result = await self.bus.handle(message, transaction)
            await transaction.commit()
        return result
