"""The consuming side, async only: the consumer, its inbox and its dead letters.

A service that reads what another one published builds an :class:`AsyncConsumer` over its
bus, a unit of work and a :class:`~messagebus.MessageRegistry`, and calls
:meth:`AsyncConsumer.receive` for each message a broker delivers (or runs it in process
with :meth:`AsyncConsumer.run`). The SQL inbox and dead letters are in
:mod:`messagebus.adapters.sqlalchemy`.

.. versionadded:: 0.17
"""

from messagebus.ports.dead_letters import (
    AsyncAbstractDeadLetters,
    AsyncInMemoryDeadLetters,
    DeadLetter,
)
from messagebus.ports.inbox import AsyncAbstractInbox, AsyncInMemoryInbox
from messagebus.service.consumer import AsyncConsumer, ConsumerStats, Outcome
from messagebus.service.messages import ENVELOPE_HEADERS

__all__ = [
    "AsyncAbstractDeadLetters",
    "AsyncAbstractInbox",
    "AsyncConsumer",
    "AsyncInMemoryDeadLetters",
    "AsyncInMemoryInbox",
    "ConsumerStats",
    "DeadLetter",
    "ENVELOPE_HEADERS",
    "Outcome",
]
