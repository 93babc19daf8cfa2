"""What both flavours of the testing kit share: the record of an envelope a transport sent."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SentEnvelope"]


@dataclass(frozen=True)
class SentEnvelope:
    """One envelope an in-memory transport received, with the outbox stream it belongs to.

    ``stream`` is ``None`` when the publisher sent it after a commit, and the stream of
    the outbox row when the outbox relay did.
    """

    envelope: Mapping[str, Any]
    """The serialized message, as the serializer made it (``id``, ``type``, ``payload``...)."""
    stream: str | None
    """The outbox stream of the message, or ``None`` without an outbox."""
