"""What the relay's and the consumer's command lines share.

``messagebus-relay --transport`` and ``messagebus-consume --consumer`` take the same kind of
argument, a callable that makes the object the command runs with (:func:`call_factory`),
and both stop after the work in hand on a first signal, at once on a second
(:func:`stop_on_signals`). Both run on uvloop when it is installed (``messagebus[uvloop]``),
unless ``--loop asyncio`` says not to (:func:`event_loop_factory`).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import inspect
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

__all__ = [
    "LOOPS",
    "add_log_level",
    "add_loop",
    "call_factory",
    "event_loop_factory",
    "loop_name",
    "stop_on_signals",
]

LOOPS = ("auto", "asyncio", "uvloop")
"""The choices of ``--loop``: ``auto`` is uvloop when it is installed, else asyncio's."""


def add_loop(parser: argparse.ArgumentParser) -> None:
    """Add the ``--loop`` option to ``parser`` (see :func:`event_loop_factory`)."""
    parser.add_argument(
        "--loop",
        choices=LOOPS,
        default="auto",
        help="the event loop; auto: uvloop when it is installed (%(default)s)",
    )


def add_log_level(parser: argparse.ArgumentParser) -> None:
    """Add the ``--log-level`` option to ``parser``."""
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="(%(default)s)",
    )


def event_loop_factory(name: str, prog: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Return the ``loop_factory`` of :class:`asyncio.Runner` for ``--loop name``.

    ``None`` is asyncio's own loop. uvloop takes a quarter or more off the CPU time a
    message costs the relay and the consumer (``bench/e2e.py``), so ``auto`` uses it when
    it is installed. ``uvloop`` when it is not installed exits with status 2 and a line
    that says what to install.
    """
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            print(f"{prog}: --loop uvloop: pip install 'messagebus[uvloop]'", file=sys.stderr)
            raise SystemExit(2) from None
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    """Return the name of the running event loop's package: ``asyncio`` or ``uvloop``."""
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


async def call_factory(spec: str, option: str, example: str, error: type[Exception]) -> Any:
    """Import ``spec`` (``module:name``), call it, await what it returns if need be; return that.

    The current directory is importable, as with ``python -m``. Any failure raises ``error``
    with one line naming ``option`` and what to do; a factory that exits the process
    (``builtins:exit``) is a failure too, instead of a silent exit.

    :param option: the command-line option, for the messages (``--transport``).
    :param example: a value of the right form, shown when ``spec`` has not that form.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise error(f"{option} {spec!r} is not MODULE:FACTORY, for example {example}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
        factory: Any = functools.reduce(getattr, attribute.split("."), module)
    except (ImportError, AttributeError) as exc:
        raise error(f"cannot load {option} {spec}: {exc}") from None
    if not callable(factory):
        raise error(f"{option} {spec} is not callable: name a factory")
    try:
        made = factory()
        if inspect.isawaitable(made):
            made = await made
    except (Exception, SystemExit) as exc:
        raise error(
            f"the {option[2:]} factory {spec} failed: {type(exc).__name__}: {exc}"
        ) from None
    return made


def stop_on_signals(stop: Callable[[], None], logger: logging.Logger, message: str) -> list[int]:
    """On the first SIGTERM or SIGINT call ``stop``; on the second, cancel the current task.

    Call it from the command's main task. ``message`` is logged at INFO on the first
    signal, with ``%s`` for the signal's name. Return the list the signals received are
    appended to, so that the command can tell how it was stopped.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        if len(received) == 1:
            logger.info(message, signal.Signals(signum).name)
            stop()
        elif task is not None:
            task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    return received
