"""Types shared by the async and the sync service layer (the generated code names them)."""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

AsyncHandler = Callable[..., Awaitable[Any]]
"""An async handler: ``async def handler(message, transaction, **dependencies)``."""

SyncHandler = Callable[..., Any]
"""A sync handler: ``def handler(message, transaction, **dependencies)``."""

TAsyncHandler = TypeVar("TAsyncHandler", bound=AsyncHandler)
TSyncHandler = TypeVar("TSyncHandler", bound=SyncHandler)

AsyncStoreMessage = Callable[[Any], Awaitable[None]]
"""How an async message store stores one message: its ``add`` method."""

SyncStoreMessage = Callable[[Any], None]
"""How a sync message store stores one message: its ``add`` method."""
