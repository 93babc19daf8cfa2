"""A class-level default that every instance gets its own copy of."""

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class PerInstance(Generic[T]):
    """A default made for each instance on first access, then stored on it.

    Subclasses often skip ``super().__init__()``; this keeps their instances from
    sharing one mutable default (a ``seen`` list, a message store buffer). Assigning
    the attribute in ``__init__`` simply replaces the default.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self.factory = factory
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> "PerInstance[T]": ...

    @overload
    def __get__(self, instance: object, owner: type) -> T: ...

    def __get__(self, instance: Any, owner: type) -> "T | PerInstance[T]":
        if instance is None:
            return self
        value = self.factory()
        instance.__dict__[self.name] = value
        return value
