"""Micro-benchmark: what building a message costs when its metadata default is copied.

pydantic deep-copies a field default that is not hashable, for every instance. Our
`Metadata` is frozen, hence hashable, so every message of a class shares the one
default object. This builds the same command with our `Metadata` and with an
equivalent non-frozen (unhashable) metadata model, and reports both.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

from pydantic import ConfigDict

from messagebus import Command, GenericCommand, Metadata


class UnhashableMetadata(Metadata):
    """`Metadata` as the PyPI package has it: mutable, so not hashable."""

    model_config = ConfigDict(frozen=False)
    __hash__ = None  # type: ignore[assignment]


class WithFrozenMetadata(Command):
    id: str
    title: str
    metadata: Metadata = Metadata(name="register_book", schema_version=1)


class WithUnhashableMetadata(GenericCommand[UnhashableMetadata]):
    id: str
    title: str
    metadata: UnhashableMetadata = UnhashableMetadata(name="register_book", schema_version=1)


@dataclass
class Result:
    frozen_ns: float
    """CPU time to build one message whose metadata default is our frozen `Metadata`."""
    unhashable_ns: float
    """The same with the unhashable metadata model."""
    shared: bool
    """Whether two messages with the frozen default hold the very same metadata object."""
    copied: bool
    """Whether two messages with the unhashable default hold distinct metadata objects."""


def _time_builds(cls: type[Command] | type[WithUnhashableMetadata], count: int) -> float:
    clock = time.thread_time_ns  # CPU time: other processes' load does not count
    started = clock()
    for _ in range(count):
        cls(id="1", title="Dune")
    return (clock() - started) / count


def measure(count: int = 20_000, repeats: int = 7) -> Result:
    """Build ``count`` messages of each kind ``repeats`` times, interleaved, GC off.

    The figures are the best (lowest) of the repeats, in CPU time per message.
    """
    frozen: list[float] = []
    unhashable: list[float] = []
    _time_builds(WithFrozenMetadata, count // 10)
    _time_builds(WithUnhashableMetadata, count // 10)
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            frozen.append(_time_builds(WithFrozenMetadata, count))
            unhashable.append(_time_builds(WithUnhashableMetadata, count))
    finally:
        gc.enable()
    first, second = WithFrozenMetadata(id="1", title="a"), WithFrozenMetadata(id="2", title="b")
    third = WithUnhashableMetadata(id="1", title="a")
    fourth = WithUnhashableMetadata(id="2", title="b")
    return Result(
        frozen_ns=min(frozen),
        unhashable_ns=min(unhashable),
        shared=first.metadata is second.metadata,
        copied=third.metadata is not fourth.metadata,
    )


def report(result: Result) -> list[str]:
    """Return the lines that present ``result``."""
    extra = result.unhashable_ns - result.frozen_ns
    return [
        f"  frozen Metadata (shared default)          {result.frozen_ns / 1000:8.2f} µs/message",
        f"  unhashable metadata (copied per message)  {result.unhashable_ns / 1000:8.2f} µs/message"
        f"  ({result.unhashable_ns / result.frozen_ns:.2f}x)",
        f"  the copy costs {extra / 1000:.2f} µs per message built; "
        f"default shared: {'yes' if result.shared else 'NO'}, "
        f"unhashable default copied: {'yes' if result.copied else 'no'}",
    ]
