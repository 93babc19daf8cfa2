"""Publish rate of FastStreamTransport against FastStream's own publish, on the same broker.

    python -m bench.brokers [--messages 2000] [--rounds 5] [redis rabbit nats]

For each broker listening on loopback, it sends the same envelopes one at a time, waiting
for each send, in rounds that alternate between the two ways:

- ``raw``: ``broker.publish()`` of the envelope's JSON bytes with the same headers, to
  the same destination: what hand-written FastStream code does;
- ``transport``: ``FastStreamTransport.send_envelope(envelope, stream=...)``, which also
  builds the headers, encodes the JSON and picks the destination.

It prints the median rate of each, in messages per second, and their ratio (the target is
0.9 or more). The streams and queues it creates are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from messagebus.adapters.faststream import FastStreamTransport, broker_from_url

URLS = {
    "redis": "redis://127.0.0.1:6379",
    "rabbit": "amqp://guest:guest@127.0.0.1:5672/",
    "nats": "nats://127.0.0.1:4222",
}


def listening(url: str) -> bool:
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def envelopes(count: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "id": str(uuid.uuid4()),
            "created_at": now,
            "type": "book_registered_v1",
            "payload": json.dumps({"id": str(n), "title": f"Book {n}"}),
        }
        for n in range(count)
    ]


def raw_publisher(kind: str, broker: Any, destination: str) -> Any:
    """The hand-written publish each broker's FastStream user would write."""

    async def publish(body: bytes, headers: dict[str, str]) -> None:
        if kind == "redis":
            await broker.publish(body, stream=destination, headers=headers)
        elif kind == "rabbit":
            await broker.publish(body, queue=destination, headers=headers, persist=True)
        else:
            await broker.publish(body, destination, headers=headers, stream=destination)

    return publish


async def bench(kind: str, messages: int, rounds: int) -> dict[str, float]:
    destination = f"bench{uuid.uuid4().hex[:8]}"
    broker = broker_from_url(URLS[kind])
    await broker.connect()
    jetstream = destination if kind == "nats" else None
    transport = FastStreamTransport(broker, destination=destination, jetstream=jetstream)
    raw = raw_publisher(kind, broker, destination)
    await transport.send_envelope(envelopes(1)[0], stream="warm-up")  # declares the queue
    rates: dict[str, list[float]] = {"raw": [], "transport": []}
    try:
        for _ in range(rounds):
            batch = envelopes(messages)
            started = time.perf_counter()
            for item in batch:
                body = json.dumps(item, separators=(",", ":")).encode()
                headers = {
                    "message-id": item["id"],
                    "message-type": item["type"],
                    "message-created-at": item["created_at"],
                    "message-stream": "books",
                }
                await raw(body, headers)
            rates["raw"].append(messages / (time.perf_counter() - started))
            batch = envelopes(messages)
            started = time.perf_counter()
            for item in batch:
                await transport.send_envelope(item, stream="books")
            rates["transport"].append(messages / (time.perf_counter() - started))
    finally:
        await cleanup(kind, broker, destination)
        await broker.stop()
    return {name: statistics.median(values) for name, values in rates.items()}


async def cleanup(kind: str, broker: Any, destination: str) -> None:
    if kind == "redis":
        await (await broker.connect()).delete(destination)
    elif kind == "rabbit":
        import aio_pika

        connection = await aio_pika.connect(URLS["rabbit"])
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(destination)
    else:
        await broker.connection.jetstream().delete_stream(destination)


async def main(args: argparse.Namespace) -> None:
    print(f"{'broker':8} {'raw msg/s':>10} {'transport msg/s':>16} {'ratio':>6}")
    for kind in args.brokers:
        if kind not in URLS:
            raise SystemExit(f"unknown broker {kind!r}: name redis, rabbit or nats")
        if not listening(URLS[kind]):
            print(f"{kind:8} not listening on {URLS[kind]}: skipped")
            continue
        rates = await bench(kind, args.messages, args.rounds)
        ratio = rates["transport"] / rates["raw"]
        print(f"{kind:8} {rates['raw']:10.0f} {rates['transport']:16.0f} {ratio:6.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("brokers", nargs="*", default=list(URLS), help="redis, rabbit, nats")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
