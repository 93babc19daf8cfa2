# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""Dependencies injected into handlers, and the hook that calls a handler with them."""

import abc
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from messagebus.service.errors import MissingDependencyError, handler_name

__all__ = ["SyncDependency", "SyncMessageHook", "MissingDependencyError"]


class SyncDependency(abc.ABC):
    """A dependency that wants to know how the transaction ended.

    Pass the class to the bus, ``SyncMessageBus(name=MyDependency)``: the bus makes
    a new instance on every ``handle()`` and injects it into the handlers that have a
    parameter called ``name``. An instance passed to ``handle()`` as a transient
    dependency is told too. After the transaction, the instance's
    :meth:`on_after_commit` or :meth:`on_after_rollback` is called.
    """

    @abc.abstractmethod
    def on_after_commit(self) -> None:
        """React to the commit of the transaction that used this dependency."""

    @abc.abstractmethod
    def on_after_rollback(self) -> None:
        """React to the rollback of the transaction that used this dependency."""


class SyncMessageHook:
    """A registered handler and the names of the dependencies it takes.

    ``dependencies`` are the parameters without a default, after the message and
    the transaction; ``optional_dependencies`` those with one.
    """

    __slots__ = ("callback", "dependencies", "optional_dependencies", "plain")

    def __init__(
        self,
        callback: Callable[..., Any],
        dependencies: Sequence[str],
        optional_dependencies: Sequence[str],
    ) -> None:
        self.callback = callback
        self.dependencies = tuple(dependencies)
        self.optional_dependencies = tuple(optional_dependencies)
        self.plain = not self.dependencies and not self.optional_dependencies
        """True when the handler takes only the message and the transaction."""

    def __call__(self, message: Any, transaction: Any, dependencies: Mapping[str, Any]) -> Any:
        """Call the handler with the dependencies it asks for."""
        if self.plain:
            return self.callback(message, transaction)
        kwargs: dict[str, Any] = {}
        for name in self.dependencies:
            try:
                kwargs[name] = dependencies[name]
            except KeyError:
                raise MissingDependencyError(
                    f"{handler_name(self.callback)} needs the dependency {name!r}: pass it to "
                    f"the bus, SyncMessageBus({name}=...), or to "
                    f"handle(..., {name}=...)"
                ) from None
        for name in self.optional_dependencies:
            if name in dependencies:
                kwargs[name] = dependencies[name]
        return self.callback(message, transaction, **kwargs)

    def __repr__(self) -> str:
        return f"<SyncMessageHook {handler_name(self.callback)}>"
