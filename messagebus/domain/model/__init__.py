"""Messages, models, metadata and transaction status: the pure domain, no I/O."""

from .ids import MessageId, uuid7
from .message import (
    ENVELOPE_FIELDS,
    Command,
    Event,
    GenericCommand,
    GenericEvent,
    Message,
    TMessage,
)
from .metadata import Metadata, TMetadata
from .model import GenericModel, Model
from .transaction import TransactionError, TransactionStatus

__all__ = [
    "ENVELOPE_FIELDS",
    "Command",
    "Event",
    "GenericCommand",
    "GenericEvent",
    "GenericModel",
    "Message",
    "MessageId",
    "Metadata",
    "Model",
    "TMessage",
    "TMetadata",
    "TransactionError",
    "TransactionStatus",
    "uuid7",
]
