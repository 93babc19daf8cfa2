"""What the broker tests share: a receiver that records, envelopes, a bounded wait."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from messagebus.consumer import Outcome

WAIT = 30.0
"""The longest a test waits for messages before it fails: a bound, not a measure."""


def envelope(index: int, *, message_type: str = "book_registered_v1") -> dict[str, Any]:
    """An envelope as the serializer makes it, numbered ``index`` in its payload."""
    return {
        "id": str(uuid.uuid4()),
        "created_at": datetime.now(UTC).isoformat(),
        "type": message_type,
        "payload": f'{{"id":"{index}","title":"Book {index}"}}',
    }


class Recorder:
    """A consumer that records each body and headers it receives and answers ``outcome``."""

    def __init__(
        self, name: str, outcome: Callable[[bytes, Mapping[str, str]], Outcome] | None = None
    ) -> None:
        self.name = name
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.outcome = outcome or (lambda body, headers: Outcome.handled)
        self._changed = asyncio.Condition()

    async def receive(self, body: bytes | str, headers: Mapping[str, str] | None = None) -> Outcome:
        raw = body.encode() if isinstance(body, str) else body
        self.received.append((raw, dict(headers or {})))
        async with self._changed:
            self._changed.notify_all()
        return self.outcome(raw, headers or {})

    async def wait_for(self, count: int) -> None:
        """Wait until ``count`` messages were received; fail after :data:`WAIT` seconds."""
        async with asyncio.timeout(WAIT), self._changed:
            await self._changed.wait_for(lambda: len(self.received) >= count)
