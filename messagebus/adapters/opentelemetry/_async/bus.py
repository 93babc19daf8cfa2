"""Tracing an async bus from the outside: spans for ``handle()``, each handler, commit, rollback.

Nothing of the bus's own code changes. :func:`instrument_bus` sets two attributes on the
bus instance, ``handle`` and ``add_listener``, that shadow its methods, and replaces its
registered hooks with hooks that open a span around the handler; a bus never instrumented
runs exactly as before. The unit of work of a transaction the instrumented bus handles
a message in gets the same treatment for ``commit`` and ``rollback``, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Tracer

from messagebus.adapters.opentelemetry._common import (
    HANDLER,
    UNIT_OF_WORK,
    message_attributes,
    operation,
)
from messagebus.domain.model import GenericCommand, GenericEvent, Message
from messagebus.service._async.dependency import AsyncMessageHook
from messagebus.service._async.registry import AsyncMessageBus
from messagebus.service._async.unit_of_work import AsyncAbstractUnitOfWork
from messagebus.service.errors import handler_name

__all__ = ["instrument_bus", "uninstrument_bus"]

# The instance attributes an instrumented bus or unit of work has, and nothing else has.
_SHADOWED = ("handle", "add_listener")
_TRACED_UOW = "_messagebus_tracer"


class AsyncTracedHook(AsyncMessageHook):
    """A registered handler whose calls are spans; it calls the hook it replaced."""

    __slots__ = ("function", "inner", "span_name", "tracer")

    def __init__(self, inner: AsyncMessageHook, tracer: Tracer) -> None:
        super().__init__(inner.callback, inner.dependencies, inner.optional_dependencies)
        self.plain = False  # so that the bus calls __call__, which opens the span
        self.inner = inner
        self.tracer = tracer
        self.function = handler_name(inner.callback)
        self.span_name = f"handler {self.function}"

    async def __call__(
        self, message: Any, transaction: Any, dependencies: Mapping[str, Any]
    ) -> Any:
        """Call the handler in a span of its own."""
        attributes = message_attributes(message)
        attributes[HANDLER] = self.function
        with self.tracer.start_as_current_span(self.span_name, attributes=attributes):
            return await self.inner(message, transaction, dependencies)


def instrument_bus(bus: AsyncMessageBus[Any], tracer: Tracer) -> None:
    """Trace ``bus``: each ``handle()``, handler, commit and rollback is a span."""
    members = vars(bus)
    if "handle" in members:
        return  # already instrumented
    handle = bus.handle
    add_listener = bus.add_listener

    async def traced_handle(
        command: GenericCommand[Any] | GenericEvent[Any], transaction: Any, **transient: Any
    ) -> Any:
        attributes = message_attributes(command) | operation("process")
        with tracer.start_as_current_span(f"handle {command.metadata.name}", attributes=attributes):
            _instrument_unit_of_work(transaction.uow, tracer)
            return await handle(command, transaction, **transient)

    def traced_add_listener(msg_type: type[Message[Any]], callback: Any) -> None:
        add_listener(msg_type, callback)
        _wrap_hooks(bus, tracer, msg_type)

    members["handle"] = traced_handle
    members["add_listener"] = traced_add_listener
    for msg_type in [*bus.commands_registry, *bus.events_registry]:
        _wrap_hooks(bus, tracer, msg_type)


def uninstrument_bus(bus: AsyncMessageBus[Any]) -> None:
    """Undo :func:`instrument_bus`: the bus's own methods and hooks are back."""
    members = vars(bus)
    for name in _SHADOWED:
        members.pop(name, None)
    commands = bus.commands_registry
    for msg_type, hook in commands.items():
        if isinstance(hook, AsyncTracedHook):
            commands[msg_type] = hook.inner
    for hooks in bus.events_registry.values():
        hooks[:] = [hook.inner if isinstance(hook, AsyncTracedHook) else hook for hook in hooks]


def _wrap_hooks(bus: AsyncMessageBus[Any], tracer: Tracer, msg_type: type[Message[Any]]) -> None:
    hook = bus.commands_registry.get(msg_type)
    if hook is not None and not isinstance(hook, AsyncTracedHook):
        bus.commands_registry[msg_type] = AsyncTracedHook(hook, tracer)
    hooks = bus.events_registry.get(msg_type, [])
    hooks[:] = [
        hook if isinstance(hook, AsyncTracedHook) else AsyncTracedHook(hook, tracer)
        for hook in hooks
    ]


def _instrument_unit_of_work(uow: AsyncAbstractUnitOfWork[Any, Any, Any], tracer: Tracer) -> None:
    """Make the commit and the rollback of ``uow`` spans, unless they are already."""
    if getattr(uow, _TRACED_UOW, None) is not None:
        return
    commit = uow.commit
    rollback = uow.rollback
    attributes = {UNIT_OF_WORK: type(uow).__qualname__}

    async def traced_commit() -> None:
        with tracer.start_as_current_span("commit", attributes=attributes):
            await commit()

    async def traced_rollback() -> None:
        with tracer.start_as_current_span("rollback", attributes=attributes):
            await rollback()

    # Quietly: none is a repository, and an open transaction reads them on the unit of work.
    uow._set_quietly("commit", traced_commit)
    uow._set_quietly("rollback", traced_rollback)
    uow._set_quietly(_TRACED_UOW, tracer)
