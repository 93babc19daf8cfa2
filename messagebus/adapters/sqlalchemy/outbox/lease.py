"""What a relay holds while it delivers a stream: the lease, and the rows it read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from messagebus.adapters.sqlalchemy.outbox.reasons import describe

__all__ = ["Lease", "Row", "read_row"]


@dataclass
class Row:
    """An outbox row as the relay read it; ``unreadable`` says why it cannot be sent."""

    id: int
    attempts: int
    envelope: Mapping[str, Any] | None
    unreadable: str | None = None


def read_row(row_id: int, text: str | None, attempts: int) -> Row:
    """Decode a row's payload; a payload that is not a JSON object makes the row unreadable."""
    try:
        envelope = json.loads(text) if text is not None else None
    except ValueError as exc:
        return Row(row_id, attempts, None, f"unreadable payload, not JSON: {describe(exc)}")
    if not isinstance(envelope, dict):
        kind = type(envelope).__name__
        return Row(row_id, attempts, None, f"unreadable payload: a JSON {kind}, not an object")
    return Row(row_id, attempts, envelope)


@dataclass
class Lease:
    """A relay's claim on a stream: its token, its end, and the rows it covers."""

    token: datetime
    deadline: float
    """The lease's end on this host's monotonic clock: never later than in the database."""
    rows: list[Row]
    head: int | None
    """The row that holds the lease (the first not marked yet), ``None`` once it ended."""
