"""What differs from one FastStream broker to the next: how to publish, where, with what key.

Each supported broker has a :class:`_Binding`; :func:`binding_for` picks it from the broker's
class, importing only that broker's FastStream module, so that an application needs the
extra of its own broker and no other.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Mapping
from typing import Any

from messagebus.service.errors import ConfigurationError

KINDS = ("redis", "rabbit", "nats", "kafka")
"""The brokers the adapter supports, named as FastStream's modules and extras are."""


class _Binding(abc.ABC):
    """One broker: how a body is published to a destination."""

    kind: str

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self._prepared: set[str] = set()
        self._lock = asyncio.Lock()

    async def prepare(self, destination: str) -> None:
        """Create ``destination`` on the broker if it must exist before a publish; once."""
        if destination in self._prepared:
            return
        async with self._lock:
            if destination not in self._prepared:
                await self._prepare(destination)
                self._prepared.add(destination)

    async def _prepare(self, destination: str) -> None:  # noqa: B027 - optional hook
        """Most brokers create a destination on the first publish."""

    @abc.abstractmethod
    async def publish(
        self, body: bytes, destination: str, *, key: str | None, headers: dict[str, str]
    ) -> None:
        """Publish ``body``; return once the broker has it, raise if it refused it."""


class _Redis(_Binding):
    kind = "redis"

    async def publish(
        self, body: bytes, destination: str, *, key: str | None, headers: dict[str, str]
    ) -> None:
        # A Redis stream has no partition: one stream is one ordered log.
        await self.broker.publish(
            body, stream=destination, headers=headers, correlation_id=headers.get("message-id")
        )


class _Rabbit(_Binding):
    kind = "rabbit"

    def __init__(self, broker: Any, *, exchange: str | None = None) -> None:
        super().__init__(broker)
        self.exchange = exchange

    async def _prepare(self, destination: str) -> None:
        from faststream.rabbit import RabbitExchange, RabbitQueue

        # Declared by the sender too, so that what is sent before any consumer
        # started waits in the queue instead of being dropped as unroutable.
        if self.exchange is None:
            await self.broker.declare_queue(RabbitQueue(destination, durable=True))
        else:
            await self.broker.declare_exchange(RabbitExchange(self.exchange, durable=True))

    async def publish(
        self, body: bytes, destination: str, *, key: str | None, headers: dict[str, str]
    ) -> None:
        common: dict[str, Any] = {
            "headers": headers,
            "persist": True,
            "message_id": headers.get("message-id"),
            "correlation_id": headers.get("message-id"),
            "message_type": headers.get("message-type"),
        }
        if self.exchange is None:
            await self.broker.publish(body, queue=destination, **common)
        else:
            await self.broker.publish(
                body, exchange=self.exchange, routing_key=destination, **common
            )


class _Nats(_Binding):
    kind = "nats"

    def __init__(
        self, broker: Any, *, jetstream: str = "messagebus", deduplicate: bool = True
    ) -> None:
        super().__init__(broker)
        self.jetstream = jetstream
        self.deduplicate = deduplicate

    async def _prepare(self, destination: str) -> None:
        from nats.js.errors import NotFoundError

        js = self.broker.connection.jetstream()
        try:
            await js.find_stream_name_by_subject(destination)
        except NotFoundError:
            try:
                info = await js.stream_info(self.jetstream)
            except NotFoundError:
                await js.add_stream(name=self.jetstream, subjects=[destination])
            else:
                config = info.config
                config.subjects = [*(config.subjects or ()), destination]
                await js.update_stream(config)

    async def publish(
        self, body: bytes, destination: str, *, key: str | None, headers: dict[str, str]
    ) -> None:
        message_id = headers.get("message-id")
        if message_id is not None and self.deduplicate:
            # JetStream drops a second send of one message within its duplicate
            # window (a relay that resent a row after a lost acknowledgement).
            headers = {**headers, "Nats-Msg-Id": message_id}
        await self.broker.publish(
            body, destination, headers=headers, correlation_id=message_id, stream=self.jetstream
        )


class _Kafka(_Binding):
    kind = "kafka"

    async def publish(
        self, body: bytes, destination: str, *, key: str | None, headers: dict[str, str]
    ) -> None:
        # The outbox stream is the key: one stream, one partition, its order kept.
        await self.broker.publish(
            body,
            destination,
            key=None if key is None else key.encode(),
            headers=headers,
            correlation_id=headers.get("message-id"),
        )


def broker_kind(broker: object) -> str:
    """Return ``"redis"``, ``"rabbit"``, ``"nats"`` or ``"kafka"`` for a FastStream broker.

    :raises ConfigurationError: when ``broker`` is none of them.
    """
    for cls in type(broker).__mro__:
        parts = cls.__module__.split(".")
        if len(parts) > 1 and parts[0] == "faststream" and parts[1] in KINDS:
            return parts[1]
    raise ConfigurationError(
        f"{type(broker).__name__} is not a FastStream broker this adapter knows: pass a "
        f"RedisBroker, RabbitBroker, NatsBroker or KafkaBroker (from faststream.redis, "
        f"faststream.rabbit, faststream.nats or faststream.kafka)"
    )


def binding_for(broker: object, options: Mapping[str, Any]) -> _Binding:
    """Return the binding of ``broker``, given the options meant for its kind only."""
    kind = broker_kind(broker)
    bindings: dict[str, type[_Binding]] = {
        "redis": _Redis,
        "rabbit": _Rabbit,
        "nats": _Nats,
        "kafka": _Kafka,
    }
    return bindings[kind](broker, **options)
