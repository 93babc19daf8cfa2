"""Type aliases for handlers, for annotating code that registers them by hand."""

from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

from messagebus.domain.model import Message
from messagebus.service._async.unit_of_work import AsyncAbstractUnitOfWork, TAsyncUow
from messagebus.service._sync.unit_of_work import SyncAbstractUnitOfWork, TSyncUow

P = ParamSpec("P")
"""The dependencies a handler takes after the message and the transaction."""

TMessage = TypeVar("TMessage", bound=Message[Any])
"""The message a handler handles."""

AsyncMessageHandler = Callable[Concatenate[TMessage, TAsyncUow, P], Coroutine[Any, Any, Any]]
"""An async handler: ``async def handler(message, transaction, **dependencies)``."""

SyncMessageHandler = Callable[Concatenate[TMessage, TSyncUow, P], Any]
"""A sync handler: ``def handler(message, transaction, **dependencies)``."""

__all__ = [
    "AsyncAbstractUnitOfWork",
    "AsyncMessageHandler",
    "P",
    "SyncAbstractUnitOfWork",
    "SyncMessageHandler",
    "TAsyncUow",
    "TMessage",
    "TSyncUow",
]
