"""Errors raised by the service layer, shared by the async and the sync API."""

from collections.abc import Callable
from typing import Any


def handler_name(function: Callable[..., Any]) -> str:
    """Return ``module.qualname`` of a handler, to name it in an error message."""
    module = getattr(function, "__module__", None)
    name = getattr(function, "__qualname__", repr(function))
    return f"{module}.{name}" if module else name


class ConfigurationError(RuntimeError):
    """A handler or a listener was registered in a way the bus cannot use."""


class MissingDependencyError(RuntimeError):
    """A handler asks for a dependency that neither the bus nor ``handle()`` provides."""
