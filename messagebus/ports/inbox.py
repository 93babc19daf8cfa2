"""The inbox: the message ids a consumer already handled, so a redelivery has no effect.

The consumer claims a message id in the transaction that handles the message: the claim
is kept if the transaction commits and forgotten if it rolls back, so "handled" and
"recorded in the inbox" are one and the same.
"""

import abc
import asyncio
from datetime import datetime
from typing import Any
from uuid import UUID

from messagebus.service._async.dependency import AsyncDependency
from messagebus.service._async.unit_of_work import AsyncUnitOfWorkTransaction

__all__ = ["AsyncAbstractInbox", "AsyncInMemoryInbox"]


class AsyncAbstractInbox(abc.ABC):
    """Records, in a unit of work's transaction, which messages each consumer handled.

    .. versionadded:: 0.17
    """

    @abc.abstractmethod
    async def claim(
        self,
        transaction: AsyncUnitOfWorkTransaction[Any],
        message_id: UUID,
        *,
        consumer: str,
        received_at: datetime,
    ) -> bool:
        """Record ``message_id`` as handled by ``consumer`` in ``transaction``.

        Return ``False``, recording nothing, when ``consumer`` already handled it in a
        committed transaction. While another transaction holds a claim on the same id,
        wait for it to end: the claim then succeeds if that one rolled back.
        """


class AsyncInMemoryInbox(AsyncAbstractInbox):
    """An inbox in a dict, for tests and for units of work that keep state in memory.

    It follows the transaction through its listeners: a claim becomes ``handled`` on
    commit and is dropped on rollback.

    .. versionadded:: 0.17
    """

    handled: dict[tuple[str, UUID], datetime]
    """When each ``(consumer, message_id)`` of a committed transaction was received."""

    def __init__(self) -> None:
        self.handled = {}
        self._pending: dict[tuple[str, UUID], asyncio.Future[None]] = {}

    async def claim(
        self,
        transaction: AsyncUnitOfWorkTransaction[Any],
        message_id: UUID,
        *,
        consumer: str,
        received_at: datetime,
    ) -> bool:
        """Claim ``message_id`` for ``consumer``; ``False`` if it was handled already."""
        key = (consumer, message_id)
        while (pending := self._pending.get(key)) is not None:
            # Like a database unique index: wait for the transaction holding it to end.
            await asyncio.shield(pending)
        if key in self.handled:
            return False
        self._pending[key] = asyncio.get_running_loop().create_future()
        transaction.add_listener(_Claim(self, key, received_at))
        return True

    def _settle(self, key: tuple[str, UUID], received_at: datetime | None) -> None:
        if received_at is not None:
            self.handled[key] = received_at
        future = self._pending.pop(key, None)
        if future is not None and not future.done():
            future.set_result(None)


class _Claim(AsyncDependency):
    """Tells the inbox how the transaction that claimed a message id ended."""

    def __init__(
        self, inbox: "AsyncInMemoryInbox", key: tuple[str, UUID], received_at: datetime
    ) -> None:
        self.inbox = inbox
        self.key = key
        self.received_at = received_at

    async def on_after_commit(self) -> None:
        self.inbox._settle(self.key, self.received_at)

    async def on_after_rollback(self) -> None:
        self.inbox._settle(self.key, None)
