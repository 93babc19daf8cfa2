"""The real brokers on this machine: Redis, RabbitMQ and NATS (JetStream), on loopback.

A broker that is not listening skips its tests with a one-line reason, or fails them when
``CI=true``. Each test gets names of its own (:func:`names`), and what it created on the
brokers under them is deleted after it, so parallel runs never share a stream or a queue.
Kafka has no server here: its tests use FastStream's in-memory ``TestKafkaBroker``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

URLS = {
    "redis": "redis://127.0.0.1:6379",
    "rabbit": "amqp://guest:guest@127.0.0.1:5672/",
    "nats": "nats://127.0.0.1:4222",
}


def unavailable(kind: str) -> str | None:
    """Return why the broker ``kind`` cannot be used, or ``None``."""
    port = int(URLS[kind].rsplit(":", 1)[1].strip("/"))
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as exc:
        return f"{kind} is not listening on 127.0.0.1:{port}: {exc}"
    return None


def require(kind: str) -> str:
    """Return the URL of the broker ``kind``; skip (or fail under CI) when it is absent."""
    reason = unavailable(kind)
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: a missing server is a failure)")
        pytest.skip(reason)
    return URLS[kind]


@dataclass(frozen=True)
class Names:
    """The names one test uses on a broker."""

    kind: str
    url: str
    source: str
    dead: str
    group: str

    @property
    def jetstream(self) -> str:
        return self.source


@pytest.fixture(params=["redis", "rabbit", "nats"])
async def names(request: pytest.FixtureRequest) -> AsyncIterator[Names]:
    """Names for one test on one real broker; what the test made there is deleted after."""
    url = require(request.param)
    unique = f"t{uuid.uuid4().hex[:12]}"
    created = Names(request.param, url, unique, f"{unique}-dead", f"{unique}-group")
    yield created
    await delete(created)


async def delete(names: Names) -> None:
    """Delete the streams and queues of ``names``."""
    if names.kind == "redis":
        from redis.asyncio import Redis

        client = Redis.from_url(names.url)
        await client.delete(names.source, names.dead)
        await client.aclose()
    elif names.kind == "rabbit":
        import aio_pika

        connection = await aio_pika.connect(names.url)
        async with connection:
            channel = await connection.channel()
            for queue in (names.source, names.dead):
                await channel.queue_delete(queue)
    else:
        import nats
        from nats.js.errors import NotFoundError

        client = await nats.connect(names.url)
        js = client.jetstream()
        for stream in (names.jetstream, f"{names.jetstream}-dead"):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(stream)
        await client.close()
