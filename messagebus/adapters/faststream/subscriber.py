"""The consuming side: a FastStream subscriber that hands each message to a consumer.

:func:`subscribe` registers, on a FastStream broker, the subscriber that suits it: a
consumer group on a Redis stream, a durable queue on RabbitMQ, a durable pull consumer on
NATS JetStream, a consumer group on Kafka. Each message's body and headers go to
:meth:`~messagebus.consumer.AsyncConsumer.receive`; the message is acknowledged when the consumer
is done with it (handled, a duplicate, or dead-lettered) and given back to the broker when
it says to retry later. Subscribers of one group share the messages: run as many as the
load needs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Annotated, Any

from faststream import AckPolicy, Context, StreamMessage

from messagebus.service.consumer import AsyncConsumer
from messagebus.service.errors import ConfigurationError

from ._brokers import broker_kind
from .transport import DEFAULT_DESTINATION

__all__ = ["Subscription", "default_member", "subscribe"]

logger = logging.getLogger("messagebus.consumer")


def default_member() -> str:
    """Return this process's name in its group: ``host-pid``."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class Subscription:
    """What :func:`subscribe` registered on the broker, and where it reads.

    .. versionadded:: 0.17
    """

    kind: str
    """The broker: ``"redis"``, ``"rabbit"``, ``"nats"`` or ``"kafka"``."""
    source: str
    """The stream, queue, subject or topic read."""
    group: str
    """The group whose members share the messages."""
    member: str
    """This subscriber's name in the group, where the broker names members."""
    subscribers: list[Any] = field(default_factory=list)
    """FastStream's subscriber objects (two on Redis: new messages, and reclaimed ones)."""
    acknowledged: int = 0
    """Messages acknowledged so far."""
    given_back: int = 0
    """Messages given back to the broker to be delivered again."""


def subscribe(
    broker: Any,
    consumer: AsyncConsumer[Any],
    *,
    source: str = DEFAULT_DESTINATION,
    group: str | None = None,
    member: str | None = None,
    redeliver_after: float = 30.0,
    retry_delay: float = 1.0,
    exchange: str | None = None,
    jetstream: str = "messagebus",
) -> Subscription:
    """Register a subscriber on ``broker`` that feeds ``consumer``; start the broker after.

    Call it before ``await broker.start()`` (or before a FastStream app starts the
    broker). Messages are handled one at a time per subscriber, in the order the broker
    delivers them.

    :param broker: a ``RedisBroker``, ``RabbitBroker``, ``NatsBroker`` or ``KafkaBroker``.
    :param consumer: an :class:`~messagebus.consumer.AsyncConsumer`.
    :param source: the stream (Redis), queue (RabbitMQ), subject (NATS) or topic (Kafka),
        as the transport's ``destination``.
    :param group: the group that shares the messages: the Redis consumer group, the
        JetStream durable consumer, the Kafka group; by default the consumer's name. On
        RabbitMQ the queue is the group, unless ``exchange`` is given: then each group
        has its own queue ``{source}.{group}``, bound to the exchange; what is sent
        before a member of the group first started reaches no queue of it.
    :param member: the name of this subscriber in its group (Redis); ``host-pid`` by
        default. Give each process its own.
    :param redeliver_after: seconds a message may stay unacknowledged before the broker
        gives it to another member: a member that died holding it (Redis: reclaimed by
        the next member that looks, NATS: the consumer's ``ack_wait``). RabbitMQ and
        Kafka redeliver when the connection of the member is gone.
    :param retry_delay: seconds to wait before giving back a message the consumer asked
        to retry later, so that a failing database is not hammered (on Redis, the
        message is reclaimed after ``redeliver_after`` instead).
    :param exchange: RabbitMQ only: the exchange the transport publishes to.
    :param jetstream: NATS only: the JetStream stream to create if none holds
        ``source``.
    :raises ConfigurationError: when ``broker`` is not a supported FastStream broker.

    .. versionadded:: 0.17
    """
    kind = broker_kind(broker)
    if kind != "rabbit" and exchange is not None:
        raise ConfigurationError(f"exchange= is for RabbitMQ, not {kind}: remove it")
    subscription = Subscription(kind, source, group or consumer.name, member or default_member())

    async def give_back(message: StreamMessage[Any]) -> None:
        subscription.given_back += 1
        if kind == "nats":
            await message.nack(delay=retry_delay)  # type: ignore[call-arg]
        elif kind == "redis":
            pass  # left pending: the claiming subscriber takes it after redeliver_after
        else:
            await asyncio.sleep(retry_delay)
            await message.nack()

    async def on_message(message: Annotated[StreamMessage[Any], Context("message")]) -> None:
        headers = {str(key): str(value) for key, value in (message.headers or {}).items()}
        try:
            outcome = await consumer.receive(message.body, headers)
        except Exception:
            # The consumer never raises for a bad message: this is a fault of ours or
            # of the process, so the message may well be fine: have it delivered again.
            logger.exception("%s: receive() failed; the message is given back", consumer.name)
            await give_back(message)
            return
        if outcome.acknowledge:
            await message.ack()
            subscription.acknowledged += 1
        else:
            await give_back(message)

    options: dict[str, Any] = {"ack_policy": AckPolicy.MANUAL, "decoder": _raw_body}
    for target in _targets(subscription, redeliver_after, exchange, jetstream):
        subscriber = broker.subscriber(*target.args, **target.kwargs, **options)
        subscriber(on_message)
        if kind == "redis":
            _create_group_first(broker, subscriber, source, subscription.group)
        subscription.subscribers.append(subscriber)
    return subscription


def _create_group_first(broker: Any, subscriber: Any, stream: str, group: str) -> None:
    """Have the Redis group created at the start of the stream before ``subscriber`` runs.

    FastStream creates a group at the stream's end (``$``): the messages sent before the
    first consumer started would never be read. Whichever subscriber of the group starts
    first creates it at ``0``; FastStream then finds it and reads what is new to it.
    """
    from redis.exceptions import ResponseError

    start = subscriber.start

    async def start_after_the_group() -> None:
        client = await broker.connect()
        try:
            await client.xgroup_create(name=stream, groupname=group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        await start()

    # FastStream's test brokers replace the broker's start, so this only runs on Redis.
    subscriber.start = start_after_the_group


async def _raw_body(message: StreamMessage[Any]) -> bytes:
    """Hand the body over as received: the consumer decodes it, bad bytes included."""
    return message.body


@dataclass
class _Target:
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def _targets(
    subscription: Subscription, redeliver_after: float, exchange: str | None, jetstream: str
) -> list[_Target]:
    kind, source = subscription.kind, subscription.source
    group, member = subscription.group, subscription.member
    if kind == "redis":
        from faststream.redis import StreamSub

        idle_ms = max(1, int(redeliver_after * 1000))
        return [
            # One entry per read: what is read is pending until acknowledged, and a
            # batch handled longer than redeliver_after would be claimed again meanwhile.
            _Target(
                kwargs={"stream": StreamSub(source, group=group, consumer=member, max_records=1)}
            ),
            # XAUTOCLAIM: what a dead member (or this one, told to retry) left pending.
            _Target(
                kwargs={
                    "stream": StreamSub(source, group=group, consumer=member, min_idle_time=idle_ms)
                }
            ),
        ]
    if kind == "rabbit":
        from faststream.rabbit import Channel, RabbitExchange, RabbitQueue

        # aio-pika runs a task per delivered message: one unacknowledged message at a
        # time is what keeps them in order.
        channel = {"channel": Channel(prefetch_count=1)}
        if exchange is None:
            return [_Target((RabbitQueue(source, durable=True),), channel)]
        queue = RabbitQueue(f"{source}.{group}", durable=True, routing_key=source)
        return [_Target((queue, RabbitExchange(exchange, durable=True)), channel)]
    if kind == "nats":
        from faststream.nats import ConsumerConfig, JStream, PullSub

        return [
            _Target(
                (source,),
                {
                    "stream": JStream(jetstream, subjects=[source]),
                    "durable": group,
                    "pull_sub": PullSub(batch_size=1, timeout=1.0),
                    "config": ConsumerConfig(ack_wait=redeliver_after),
                },
            )
        ]
    # With manual acknowledgement FastStream turns auto-commit off: an offset is
    # committed by the acknowledgement only.
    return [_Target((source,), {"group_id": group})]
