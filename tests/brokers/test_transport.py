"""The transport and the subscriber, in one process, against the real Redis, RabbitMQ, NATS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

from messagebus.adapters.faststream import (
    REASON_HEADER,
    FastStreamDeadLetters,
    FastStreamTransport,
    broker_from_url,
    encode_envelope,
    subscribe,
)
from messagebus.consumer import Outcome
from tests.brokers.conftest import Names
from tests.brokers.support import Recorder, envelope


async def connected(names: Names) -> object:
    broker = broker_from_url(names.url)
    await broker.connect()
    return broker


def transport_for(broker: object, names: Names) -> FastStreamTransport:
    jetstream = names.jetstream if names.kind == "nats" else None
    return FastStreamTransport(
        broker, destination=names.source, jetstream=jetstream, close_broker=True
    )


async def test_a_round_trip_keeps_the_order_of_each_stream(names: Names) -> None:
    transport = transport_for(await connected(names), names)
    sent = {"a": [envelope(i) for i in range(10)], "b": [envelope(i) for i in range(10)]}
    for index in range(10):
        for stream in ("a", "b"):
            await transport.send_envelope(sent[stream][index], stream=stream)
    consumer_broker = broker_from_url(names.url)
    recorder = Recorder(names.group)
    subscription = subscribe(consumer_broker, recorder, source=names.source, jetstream=names.source)
    await consumer_broker.start()
    try:
        await recorder.wait_for(20)
    finally:
        await consumer_broker.stop()
        await transport.aclose()

    for stream in ("a", "b"):
        received = [
            body for body, headers in recorder.received if headers["message-stream"] == stream
        ]
        assert [encode_envelope(item) for item in sent[stream]] == received
    body, headers = recorder.received[0]
    first = json.loads(body)
    assert {
        "message-id": first["id"],
        "message-type": "book_registered_v1",
        "message-created-at": first["created_at"],
        "message-stream": "a",
    }.items() <= headers.items()
    assert 20 == subscription.acknowledged


async def test_a_message_to_retry_later_comes_again_and_nothing_is_lost(names: Names) -> None:
    transport = transport_for(await connected(names), names)
    sent = [envelope(i) for i in range(5)]
    given_back: set[bytes] = set()

    def retry_the_third_once(body: bytes, headers: Mapping[str, str]) -> Outcome:
        if body == encode_envelope(sent[2]) and body not in given_back:
            given_back.add(body)
            return Outcome.retry_later
        return Outcome.handled

    for item in sent:
        await transport.send_envelope(item, stream="s")
    consumer_broker = broker_from_url(names.url)
    recorder = Recorder(names.group, retry_the_third_once)
    subscription = subscribe(
        consumer_broker,
        recorder,
        source=names.source,
        jetstream=names.source,
        redeliver_after=0.5,
        retry_delay=0.1,
    )
    await consumer_broker.start()
    try:
        await recorder.wait_for(6)
        async with asyncio.timeout(30):
            while subscription.acknowledged < 5:
                await asyncio.sleep(0.05)
    finally:
        await consumer_broker.stop()
        await transport.aclose()

    bodies = [body for body, _ in recorder.received]
    assert sorted(encode_envelope(item) for item in sent) == sorted(set(bodies))
    assert 2 == bodies.count(encode_envelope(sent[2]))
    assert (5, 1) == (subscription.acknowledged, subscription.given_back)


async def test_dead_letters_keep_the_bytes_and_the_reason(names: Names) -> None:
    broker = await connected(names)
    dead_letters = FastStreamDeadLetters(
        broker, names.dead, jetstream=f"{names.jetstream}-dead" if names.kind == "nats" else None
    )
    hostile = b"\xff\x00 not json {"
    await dead_letters.put(
        hostile, {"message-id": "x", "content-type": "text/plain"}, "malformed:\nbad"
    )
    await dead_letters.put(hostile, {}, "malformed: again")
    reader = broker_from_url(names.url)
    recorder = Recorder(f"{names.group}-dead")
    subscribe(reader, recorder, source=names.dead, jetstream=f"{names.jetstream}-dead")
    await reader.start()
    try:
        await recorder.wait_for(2)
    finally:
        await reader.stop()
        await broker.stop()

    assert [hostile, hostile] == [body for body, _ in recorder.received]
    first, second = (headers for _, headers in recorder.received)
    assert ("malformed: bad", "x") == (first[REASON_HEADER], first["message-id"])
    assert "text/plain" != first.get("content-type")
    assert "malformed: again" == second[REASON_HEADER]


async def test_each_group_gets_every_message(names: Names) -> None:
    # On RabbitMQ groups need an exchange: each group has its queue bound to it.
    exchange = names.source if names.kind == "rabbit" else None
    jetstream = names.jetstream if names.kind == "nats" else None
    broker = await connected(names)
    transport = FastStreamTransport(
        broker, destination=names.source, exchange=exchange, jetstream=jetstream
    )
    readers = {group: broker_from_url(names.url) for group in ("audit", "search")}
    recorders = {group: Recorder(group) for group in readers}
    for group, reader in readers.items():
        subscribe(
            reader, recorders[group], source=names.source, exchange=exchange,
            jetstream=names.source,
        )  # fmt: skip
        await reader.start()
    sent = [envelope(i) for i in range(5)]
    try:
        for item in sent:
            await transport.send_envelope(item, stream="s")
        for recorder in recorders.values():
            await recorder.wait_for(5)
    finally:
        for reader in readers.values():
            await reader.stop()
        await broker.stop()
        if names.kind == "rabbit":
            await delete_rabbit_group_queues(names, readers)

    for recorder in recorders.values():
        assert [encode_envelope(item) for item in sent] == [body for body, _ in recorder.received]


async def delete_rabbit_group_queues(names: Names, groups: object) -> None:
    import aio_pika

    connection = await aio_pika.connect(names.url)
    async with connection:
        channel = await connection.channel()
        for group in ("audit", "search"):
            await channel.queue_delete(f"{names.source}.{group}")
        await channel.exchange_delete(names.source)
