"""Event streams over real brokers through FastStream (extra ``messagebus[faststream]``).

Add the extra of your broker too: ``messagebus[redis]`` (Redis Streams), ``messagebus[rabbit]``
(RabbitMQ), ``messagebus[nats]`` (NATS JetStream) or ``messagebus[kafka]``. The sending side
is :class:`FastStreamTransport`; the receiving side is :func:`subscribe`, which feeds an
:class:`~messagebus.consumer.AsyncConsumer`, with :class:`FastStreamDeadLetters` to keep what it
gives up on; ``messagebus-consume`` runs them as a process.
"""

from .config import broker_from_url, transport_from_env
from .dead_letters import DEAD_LETTER_DESTINATION, REASON_HEADER, FastStreamDeadLetters
from .subscriber import Subscription, subscribe
from .transport import DEFAULT_DESTINATION, HEADERS, FastStreamTransport, encode_envelope

__all__ = [
    "DEAD_LETTER_DESTINATION",
    "DEFAULT_DESTINATION",
    "HEADERS",
    "REASON_HEADER",
    "FastStreamDeadLetters",
    "FastStreamTransport",
    "Subscription",
    "broker_from_url",
    "encode_envelope",
    "subscribe",
    "transport_from_env",
]
