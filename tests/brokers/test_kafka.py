"""Kafka goes through the same transport and subscriber: tested on FastStream's in-memory
``TestKafkaBroker``, as there is no Kafka server on the project's machines."""

from __future__ import annotations

from typing import Annotated, Any

from faststream import Context
from faststream.kafka import KafkaBroker, TestKafkaBroker

from messagebus.adapters.faststream import FastStreamTransport, encode_envelope, subscribe
from messagebus.consumer import Outcome
from tests.brokers.support import Recorder, envelope


async def test_the_outbox_stream_is_the_kafka_key() -> None:
    broker = KafkaBroker("127.0.0.1:9092")
    keys: list[bytes | None] = []

    @broker.subscriber("books", group_id="keys")
    async def record(message: Annotated[Any, Context("message")]) -> None:
        keys.append(message.raw_message.key)

    transport = FastStreamTransport(broker, destination="books")
    async with TestKafkaBroker(broker):
        await transport.send_envelope(envelope(1), stream="book-1")
        await transport.send_message_serialized(envelope(2))

    # No stream, no key (the in-memory broker shows a missing key as b"").
    assert [b"book-1", False] == [keys[0], bool(keys[1])]


async def test_a_kafka_subscriber_feeds_the_consumer_and_acknowledges() -> None:
    broker = KafkaBroker("127.0.0.1:9092")
    recorder = Recorder("projector")
    subscription = subscribe(broker, recorder, source="books")
    transport = FastStreamTransport(broker, destination="books")
    sent = [envelope(i) for i in range(3)]
    async with TestKafkaBroker(broker):
        for item in sent:
            await transport.send_envelope(item, stream="s")

    assert [encode_envelope(item) for item in sent] == [body for body, _ in recorder.received]
    assert {"message-stream": "s", "message-type": "book_registered_v1"}.items() <= (
        recorder.received[0][1].items()
    )
    assert (3, 0) == (subscription.acknowledged, subscription.given_back)
    assert ("kafka", "projector") == (subscription.kind, subscription.group)


async def test_routes_choose_the_topic_by_type_with_or_without_version() -> None:
    broker = KafkaBroker("127.0.0.1:9092")
    transport = FastStreamTransport(
        broker, routes={"member_joined": "members", "book_registered_v2": "books-v2"}
    )
    seen: dict[str, list[bytes]] = {"messagebus": [], "members": [], "books-v2": []}
    for topic, bodies in seen.items():
        broker.subscriber(topic, group_id=topic)(_appender(bodies))
    items = [
        envelope(1, message_type="book_registered_v1"),
        envelope(2, message_type="book_registered_v2"),
        envelope(3, message_type="member_joined_v7"),
    ]
    async with TestKafkaBroker(broker):
        for item in items:
            await transport.send_envelope(item, stream=None)

    assert {
        "messagebus": [encode_envelope(items[0])],
        "books-v2": [encode_envelope(items[1])],
        "members": [encode_envelope(items[2])],
    } == seen


def _appender(bodies: list[bytes]) -> Any:
    async def append(message: Annotated[Any, Context("message")]) -> None:
        bodies.append(message.body)

    return append


async def test_retry_later_on_kafka_is_given_back() -> None:
    broker = KafkaBroker("127.0.0.1:9092")
    answers = iter([Outcome.retry_later, Outcome.handled])
    recorder = Recorder("projector", lambda body, headers: next(answers))
    subscription = subscribe(broker, recorder, source="books", retry_delay=0.01)
    async with TestKafkaBroker(broker):
        await FastStreamTransport(broker, destination="books").send_envelope(
            envelope(1), stream="s"
        )

    assert (0, 1) == (subscription.acknowledged, subscription.given_back)
