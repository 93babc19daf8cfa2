"""Types shared by the async and the sync service layer (the generated code names them)."""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

AsyncHandler = Callable[..., Awaitable[Any]]
"""An async handler: ``async def handler(message, transaction, **dependencies)``."""

SyncHandler = Callable[..., Any]
"""A sync handler: ``def handler(message, transaction, **dependencies)``."""

TAsyncHandler = TypeVar("TAsyncHandler", bound=AsyncHandler)
TSyncHandler = TypeVar("TSyncHandler", bound=SyncHandler)
