"""The message bus: it finds the handler of a command and the handlers of each event.

Handlers are registered with :func:`async_listen` and found by
:meth:`AsyncMessageBus.scan`, or added with :meth:`AsyncMessageBus.add_listener`.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import typing
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType, SimpleNamespace
from typing import Any, Generic

import venusian

from messagebus.domain.model import Command, Event, GenericCommand, GenericEvent, Message
from messagebus.service._async.dependency import AsyncDependency, AsyncMessageHook
from messagebus.service._async.repository import (
    AsyncAbstractMessageStoreRepository,
    AsyncAbstractRepository,
    AsyncSinkholeMessageStoreRepository,
)
from messagebus.service._async.unit_of_work import (
    _LOOK_CLOSER,
    AsyncUnitOfWorkTransaction,
    TAsyncUow,
)
from messagebus.service._types import TAsyncHandler
from messagebus.service.errors import ConfigurationError, handler_name

__all__ = ["AsyncMessageBus", "ConfigurationError", "async_listen"]

_CATEGORY = "async_messagebus"
_NO_DEPENDENCIES: dict[str, Any] = {}
_BASE_ADD = AsyncAbstractMessageStoreRepository.add
_SINKHOLE_ADD = AsyncSinkholeMessageStoreRepository.add
# What the bus watches for a unit of work that collects its events itself.
_COLLECTING = SimpleNamespace(first=_LOOK_CLOSER, others=(), all=())
# Never the class of a message: listening to one of them would never be called.
_BASE_MESSAGES = frozenset({Message, GenericCommand, GenericEvent, Command, Event})


def async_listen(wrapped: TAsyncHandler) -> TAsyncHandler:
    """Mark a coroutine function as the handler of the message its first parameter names.

    The first parameter is annotated with a command or event class, the second
    receives the transaction, the others are dependencies, injected by name.
    ``bus.scan()`` registers the handlers of the scanned modules; the function
    itself is returned unchanged. A command has one handler, an event any number.
    """

    def register(scanner: Any, name: str, handler: Any) -> None:
        bus = getattr(scanner, _CATEGORY, None)
        if bus is not None:
            bus.add_listener(_message_type(handler), handler)

    venusian.attach(wrapped, register, category=_CATEGORY)
    return wrapped


class AsyncMessageBus(Generic[TAsyncUow]):
    """Dispatches commands and events to their handlers within a transaction.

    :param dependencies: dependencies injected by parameter name into the handlers;
        each value is a class (or any factory) called on every :meth:`handle`. An
        :class:`AsyncDependency` made this way is told how the transaction ended.
    """

    def __init__(self, **dependencies: Any) -> None:
        self.commands_registry: dict[type[Message[Any]], AsyncMessageHook] = {}
        self.events_registry: dict[type[Message[Any]], list[AsyncMessageHook]] = {}
        self.dependencies: dict[str, Callable[[], Any]] = dict(dependencies)

    def add_listener(self, msg_type: type[Message[Any]], callback: Callable[..., Any]) -> None:
        """Register ``callback`` as a handler of ``msg_type``.

        :raises ConfigurationError: ``msg_type`` is not a message class, or is a
            command that already has a handler.
        """
        if not (isinstance(msg_type, type) and issubclass(msg_type, Message)):
            raise ConfigurationError(
                f"{handler_name(callback)} listens to {msg_type!r}, which is not a command "
                f"or an event class"
            )
        if msg_type in _BASE_MESSAGES:
            raise ConfigurationError(
                f"{handler_name(callback)} listens to {msg_type.__name__}, a base class: the "
                f"bus dispatches a message to the handlers of its own class only, so listen "
                f"to a concrete command or event class"
            )
        hook = _make_hook(callback)
        if issubclass(msg_type, GenericCommand):
            existing = self.commands_registry.get(msg_type)
            if existing is not None:
                raise ConfigurationError(
                    f"{msg_type.__name__} has two handlers, {handler_name(existing.callback)} and "
                    f"{handler_name(callback)}: a command has exactly one handler"
                )
            self.commands_registry[msg_type] = hook
        else:
            self.events_registry.setdefault(msg_type, []).append(hook)

    def remove_listener(self, msg_type: type[Message[Any]], callback: Callable[..., Any]) -> None:
        """Unregister ``callback`` as a handler of ``msg_type``.

        :raises ConfigurationError: ``callback`` is not a handler of ``msg_type``.
        """
        command_hook = self.commands_registry.get(msg_type)
        if command_hook is not None and command_hook.callback == callback:
            del self.commands_registry[msg_type]
            return
        hooks = self.events_registry.get(msg_type, [])
        for hook in hooks:
            if hook.callback == callback:
                hooks.remove(hook)
                if not hooks:
                    del self.events_registry[msg_type]
                return
        message_name = getattr(msg_type, "__name__", msg_type)
        raise ConfigurationError(f"{handler_name(callback)} is not a handler of {message_name}")

    async def handle(  # noqa: PLR0912, PLR0915 - one coroutine: see the comment below
        self,
        command: GenericCommand[Any] | GenericEvent[Any],
        transaction: AsyncUnitOfWorkTransaction[TAsyncUow],
        **transient_dependencies: Any,
    ) -> Any:
        """Handle ``command`` and the events it causes; return the command handler's result.

        Given an event instead (one received from another service, say), every handler
        of the event runs, none being fine, and the result is ``None``.

        The command's handler runs first; then, after each handler, the events raised
        by the models in the repositories' ``seen`` are handled in order, cascading.
        Every message processed goes to the message store.

        :param transient_dependencies: dependencies for this call only, by name.
        :raises ConfigurationError: the command has no handler.
        :raises MissingDependencyError: a handler needs a dependency nobody gave.
        """
        hook = self.commands_registry.get(type(command))
        hooks: Sequence[AsyncMessageHook]
        if hook is not None:
            hooks = (hook,)
        elif isinstance(command, GenericEvent):  # an event received from elsewhere, as in 0.16
            hooks = self.events_registry.get(type(command), ())
        else:
            raise ConfigurationError(
                f"{type(command).__name__} has no handler: decorate a function with "
                f"@async_listen and pass its module to bus.scan()"
            )
        if self.dependencies or transient_dependencies:
            dependencies = self._resolve(transaction, transient_dependencies)
        else:
            dependencies = _NO_DEPENDENCIES
        # One coroutine per handle(): on CPython 3.11 each coroutine awaited costs about
        # as much as the bus's own work for a message. So the loop is here rather than in
        # a helper, and the `with` of the command timer is written out (the same calls,
        # the same handling of an exception), to serve the timed and the untimed command.
        uow = transaction.uow
        timer = None
        if transaction._times:  # the metrics store times commands
            timer = uow.metrics_store.command_processing_timer(command)
            timer.__enter__()
        try:
            count = uow.metrics_store.inc_messages_processed_total if transaction._counts else None
            collects = transaction._collects
            # The message store's add() is inlined when it is the base class's or the
            # sinkhole's (the same statements): one coroutine less per message.
            store = uow.messagestore
            adds = type(store).add
            sinkhole = adds is _SINKHOLE_ADD
            base = adds is _BASE_ADD
            # What a consumer received: neither stored nor published again (see add()).
            received = store.received
            result = returned = None
            # The repositories whose `seen` the bus reads after each handler; a unit of
            # work that collects its events itself has none, the bus asks it each time.
            watched = _COLLECTING if collects else transaction._watched
            queue: list[Message[Any]] = [command]
            index = 0
            # A list read with an index is the FIFO: the events raised while handling are
            # appended, and handled in the order they were raised.
            while index < len(queue):
                message = queue[index]
                if index:
                    hooks = self.events_registry.get(type(message)) or self._command_hooks(message)
                index += 1
                if count is not None:
                    count(message.metadata)
                for message_hook in hooks:
                    if message_hook.plain:
                        callback = message_hook.callback  # a slot: a fast load, unlike a method
                        returned = await callback(message, transaction)
                    else:
                        returned = await message_hook(message, transaction, dependencies)
                    # After each handler, the events of the models the repositories saw.
                    # Most handlers raise nothing: look first, at the first repository
                    # without a loop (no tuple iterator per handler: -280 instr each). Its
                    # stand-in _LOOK_CLOSER takes the rare cases out of the way (-100).
                    if watched.first.seen:
                        if collects:  # a call keeps the loop short: no EXTENDED_ARG (-20)
                            _collect(uow, message, queue)
                            continue
                        if watched.first is _LOOK_CLOSER:  # a handler set an attribute
                            watched = transaction._watched = uow._repositories()
                        _take_new_events(watched.all, message, queue)
                    elif watched.others:
                        for repository in watched.others:
                            if repository.seen:
                                _take_new_events(watched.all, message, queue)
                                break
                if message is command:  # its one handler's result (an event's last one's)
                    result = returned
                if message is received:
                    pass
                elif sinkhole:
                    if store.publisher is not None and message.metadata.published:
                        store.stream_buffer.append(message)
                elif base:
                    await store._add(message)
                    if message.metadata.published:
                        store.stream_buffer.append(message)
                else:
                    await store.add(message)
        except BaseException as error:
            if timer is None or not timer.__exit__(type(error), error, error.__traceback__):
                raise
            return None  # the timer suppressed the error, as a `with` block would
        if timer is not None:
            timer.__exit__(None, None, None)
        return result

    def _command_hooks(self, message: Message[Any]) -> list[AsyncMessageHook]:
        hook = self.commands_registry.get(type(message))
        return [hook] if hook is not None else []

    def _resolve(
        self,
        transaction: AsyncUnitOfWorkTransaction[Any],
        transient_dependencies: dict[str, Any],
    ) -> dict[str, Any]:
        dependencies = {name: factory() for name, factory in self.dependencies.items()}
        dependencies.update(transient_dependencies)
        for dependency in dependencies.values():
            if isinstance(dependency, AsyncDependency):
                transaction.add_listener(dependency)
        return dependencies

    def scan(self, *mods: str | ModuleType, stack_depth: int = 1) -> None:
        """Register the handlers decorated with :func:`async_listen` in ``mods``.

        Each name is a module or a package, scanned with its subpackages; a
        relative name (``".handlers"``) is resolved against the caller's package.
        A scan that registers no handler warns (:class:`UserWarning`), naming what
        it scanned: a handler defined in ``python -m asyncio`` or in a script run as
        ``__main__`` is not found by ``scan(__name__)``; register it with
        :meth:`add_listener`, or put it in a module of its own.

        :param stack_depth: how many frames up the caller is, for relative names.

        .. versionchanged:: 0.17
           Warns when nothing was registered.
        """
        before = self._registered()
        caller = sys._getframe(stack_depth).f_globals
        package = caller.get("__package__") or caller.get("__name__")
        scanner = venusian.Scanner(**{_CATEGORY: self})
        for mod in mods:
            if isinstance(mod, ModuleType):
                module = mod
            elif mod.startswith(".") and not package:
                raise ConfigurationError(
                    f"Cannot scan {mod!r}: a relative name needs a calling package; "
                    f"use the absolute module name"
                )
            else:
                module = importlib.import_module(mod, package)
            scanner.scan(module, categories=(_CATEGORY,))
        if self._registered() == before:
            names = ", ".join(repr(getattr(mod, "__name__", mod)) for mod in mods)
            warnings.warn(
                f"bus.scan({names}) registered no handler: decorate the handlers with "
                f"@async_listen in the scanned modules; in `python -m asyncio` or a script "
                f"run as __main__, scan() finds none, so call bus.add_listener() instead",
                stacklevel=stack_depth + 1,
            )

    def _registered(self) -> int:
        """Return how many handlers are registered, of commands and events."""
        return len(self.commands_registry) + sum(map(len, self.events_registry.values()))


def _collect(uow: Any, cause: Message[Any], queue: list[Message[Any]]) -> None:
    """Append to ``queue`` the events ``uow.collect_new_events()`` yields, caused by ``cause``."""
    raised = len(queue)
    queue.extend(uow.collect_new_events())
    if len(queue) > raised:
        _caused_by(cause, queue, raised)


def _caused_by(cause: Message[Any], queue: list[Message[Any]], start: int) -> None:
    """Record ``cause`` as the cause of the messages of ``queue`` from ``start`` on.

    Each keeps a causation or correlation id it was given. The fields are written in
    the instance's ``__dict__``, as pydantic keeps them: a frozen message class
    accepts them too, and no validation runs on ids the bus made.
    """
    causation = cause.message_id
    correlation = cause.correlation_id or causation
    for index in range(start, len(queue)):
        fields = queue[index].__dict__
        if fields["causation_id"] is None:
            fields["causation_id"] = causation
        if fields["correlation_id"] is None:
            fields["correlation_id"] = correlation


def _take_new_events(
    repositories: tuple[AsyncAbstractRepository[Any], ...],
    cause: Message[Any],
    queue: list[Message[Any]],
) -> None:
    """Append to ``queue`` the events of the models in the ``seen`` of ``repositories``.

    Each is caused by ``cause``. This is :func:`take_new_events` then :func:`_caused_by`
    in one pass, emptying ``seen`` and the models' ``messages`` the same way: the bus
    does it after each handler that raised events, and one call costs less than two
    and the list between them.
    """
    causation = cause.message_id
    correlation = cause.correlation_id or causation
    for repository in repositories:
        seen = repository.seen
        if seen:
            for model in seen:
                messages = model.messages
                if messages:
                    for event in messages:
                        fields = event.__dict__  # as in _caused_by
                        if fields["causation_id"] is None:
                            fields["causation_id"] = causation
                        if fields["correlation_id"] is None:
                            fields["correlation_id"] = correlation
                    queue.extend(messages)
                    messages.clear()
            seen.clear()


def _make_hook(callback: Callable[..., Any]) -> AsyncMessageHook:
    parameters = list(inspect.signature(callback).parameters.values())[2:]
    required = [p.name for p in parameters if p.default is p.empty and _is_named(p)]
    optional = [p.name for p in parameters if p.default is not p.empty and _is_named(p)]
    return AsyncMessageHook(callback, required, optional)


def _is_named(parameter: inspect.Parameter) -> bool:
    return parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)


def _message_type(handler: Callable[..., Any]) -> type[Message[Any]]:
    """Return the message class the first parameter of ``handler`` is annotated with."""
    parameters = list(inspect.signature(handler).parameters)
    if not parameters:
        raise ConfigurationError(
            f"{handler_name(handler)} takes no parameter: a handler's first parameter is "
            f"the message, annotated with its class"
        )
    try:
        hints = typing.get_type_hints(handler)
    except Exception as error:
        raise ConfigurationError(
            f"Cannot read the annotations of {handler_name(handler)}: {error}"
        ) from error
    annotation = hints.get(parameters[0])
    if not (isinstance(annotation, type) and issubclass(annotation, Message)):
        raise ConfigurationError(
            f"The first parameter of {handler_name(handler)}, {parameters[0]!r}, must be "
            f"annotated with a command or event class, not {annotation!r}"
        )
    return annotation
