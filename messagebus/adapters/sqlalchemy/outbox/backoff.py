"""How long a relay waits before the next attempt: exponential backoff with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: how long to wait before the next attempt.

    The ``n``-th consecutive failure waits ``min(cap, base * factor ** (n - 1))`` seconds,
    minus up to ``jitter`` of it at random, so that relays and rows that failed together
    do not retry together.

    :param base: the wait after the first failure, in seconds.
    :param factor: how much each further failure multiplies the wait by.
    :param cap: the longest wait, in seconds.
    :param jitter: the fraction of the wait drawn at random, from 0 (none) to 1.
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base or self.factor < 1:
            raise ValueError(
                f"Invalid {self!r}: base must be positive, cap at least base, factor at least 1"
            )
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"Invalid {self!r}: jitter is a fraction between 0 and 1")

    def delay(self, failures: int) -> float:
        """Return the wait, in seconds, after ``failures`` consecutive failures (1 or more)."""
        exponent = min(max(failures, 1) - 1, 64)  # 2.0 ** 64 seconds is already past any cap
        ceiling = min(self.cap, self.base * self.factor**exponent)
        return ceiling * (1 - self.jitter * random.random())
