"""Load the ``MODULE:FACTORY`` a command line is given, and call it: one helper for both commands.

``messagebus-relay --transport`` and ``messagebus-consume --consumer`` take the same kind of
argument: a callable that makes the object the command runs with.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
from typing import Any

__all__ = ["call_factory"]


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
