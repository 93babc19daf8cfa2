"""Identifiers of messages: time-ordered UUIDs (version 7, RFC 9562)."""

import os
import time
from typing import NewType
from uuid import UUID

MessageId = NewType("MessageId", UUID)
"""The identifier of a message, a UUID whose first bits are its creation time."""

_last_ms = 0
_sequence = 0


def uuid7() -> UUID:
    """Return a new UUID version 7, strictly increasing within this process.

    The 48 high bits hold the Unix time in milliseconds; the next 12 bits are a
    counter that starts at a random value every millisecond and increases for each
    UUID made in the same millisecond (RFC 9562, section 6.2, method 1), so sorting
    the ids of one process sorts them by creation; the last 62 bits are random.
    """
    global _last_ms, _sequence  # noqa: PLW0603 - a process-wide monotonic clock
    now_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10))
    if now_ms > _last_ms:
        _last_ms = now_ms
        _sequence = rand >> 69  # 11 random bits: room left to count upwards
    else:
        _sequence += 1
        if _sequence > 0xFFF:  # the counter overflowed: borrow the next millisecond
            _last_ms += 1
            _sequence = 0
    value = (
        (_last_ms << 80)
        | (0x7 << 76)
        | (_sequence << 64)
        | (0b10 << 62)
        | (rand & 0x3FFF_FFFF_FFFF_FFFF)
    )
    return UUID(int=value)


def new_message_id() -> MessageId:
    """Return a new time-ordered message id."""
    return MessageId(uuid7())
