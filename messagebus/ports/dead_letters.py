"""Dead letters: where a consumer sets aside what it could not handle, with the reason."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["AsyncAbstractDeadLetters", "AsyncInMemoryDeadLetters", "DeadLetter"]


class AsyncAbstractDeadLetters(abc.ABC):
    """Keeps the messages a consumer gave up on, as received, for an operator to look at.

    .. versionadded:: 0.17
    """

    @abc.abstractmethod
    async def put(self, raw: bytes, headers: Mapping[str, str], reason: str) -> None:
        """Keep ``raw``, the bytes as received, with their ``headers`` and the ``reason``.

        It is called outside of any unit of work's transaction. If it raises, the
        consumer does not acknowledge the message, so the broker delivers it again.
        """


@dataclass(frozen=True)
class DeadLetter:
    """A message set aside by a consumer.

    .. versionadded:: 0.17
    """

    raw: bytes
    """The bytes as received."""
    headers: Mapping[str, str]
    """The headers received with them."""
    reason: str
    """Why the consumer gave up, starting with a short code (``"malformed: ..."``)."""
    dead_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When it was set aside."""


class AsyncInMemoryDeadLetters(AsyncAbstractDeadLetters):
    """Dead letters in a list, for tests and for the in-process consumer.

    .. versionadded:: 0.17
    """

    letters: list[DeadLetter]
    """The dead letters, oldest first."""

    def __init__(self) -> None:
        self.letters = []

    async def put(self, raw: bytes, headers: Mapping[str, str], reason: str) -> None:
        """Append a :class:`DeadLetter` to :attr:`letters`."""
        self.letters.append(DeadLetter(bytes(raw), dict(headers), reason))
