"""Errors raised by the service layer, shared by the async and the sync API."""


class ConfigurationError(RuntimeError):
    """A handler or a listener was registered in a way the bus cannot use."""


class MissingDependencyError(RuntimeError):
    """A handler asks for a dependency that neither the bus nor ``handle()`` provides."""
