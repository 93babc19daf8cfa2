"""A thousand hostile inputs: each dead-lettered with a reason, the valid ones around applied once.

One consumer runs in process over a queue for the whole test. Each hypothesis example puts a
valid message, a hostile one, and a second valid one (sometimes a redelivery of the first);
at the end every valid message had its effect once, every hostile one is in the dead letters
with the exact bytes received and a reason, and the consumer is still running.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from messagebus import MessageRegistry
from messagebus.consumer import AsyncConsumer, AsyncInMemoryDeadLetters
from tests.consumer.app import Store, UnitOfWork, make_bus, raw_envelope

MAX_SIZE = 2048
REASONS = {
    "too_large",
    "malformed",
    "missing",
    "conflict",
    "unknown_type",
    "unknown_version",
    "upcast_failed",
    "invalid",
}

Hostile = tuple[bytes, dict[str, str], set[str]]
"""The body, the headers, and the reasons it may be dead-lettered for."""

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
not_a_string = json_values.filter(lambda value: not isinstance(value, str))
not_an_object = json_values.filter(lambda value: not isinstance(value, dict))
not_an_int = (
    st.none()
    | st.lists(json_values, max_size=3)
    | st.dictionaries(st.text(max_size=8), json_values, max_size=3)
)


def envelope_with(**changes: Any) -> bytes:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "created_at": "2025-01-01T00:00:00+00:00",
        "type": "book_registered_v3",
        "payload": json.dumps({"id": "x", "title": "Dune", "pages": 1}),
    }
    for key, value in changes.items():
        if value is _DROP:
            del body[key]
        else:
            body[key] = value
    return json.dumps(body).encode()


_DROP = object()


def payload(**fields: Any) -> str:
    return json.dumps({"id": "x", "title": "Dune", "pages": 1, **fields})


def _random_bytes() -> st.SearchStrategy[Hostile]:
    return st.binary(max_size=300).map(lambda raw: (raw, {}, REASONS))


def _wrong_envelope_types() -> st.SearchStrategy[Hostile]:
    return st.one_of(
        not_a_string.map(lambda v: (envelope_with(id=v), {}, {"missing"})),
        not_a_string.map(lambda v: (envelope_with(type=v), {}, {"missing"})),
        not_an_object.filter(lambda v: not isinstance(v, str)).map(
            lambda v: (envelope_with(payload=v), {}, {"malformed"})
        ),
        not_an_object.map(lambda v: (json.dumps(v).encode(), {}, {"malformed"})),
        st.text(max_size=40)
        .filter(lambda s: not _is_json_object(s))
        .map(lambda s: (envelope_with(payload=s), {}, {"malformed"})),
        st.text(max_size=40)
        .filter(lambda s: not _is_uuid(s))
        .map(lambda s: (envelope_with(id=s), {}, {"invalid"})),
        st.text(max_size=40)
        .filter(lambda s: not _is_date(s))
        .map(lambda s: (envelope_with(created_at=s), {}, {"invalid"})),
    )


def _wrong_payload_types() -> st.SearchStrategy[Hostile]:
    return st.one_of(
        not_a_string.map(lambda v: (envelope_with(payload=payload(title=v)), {}, {"invalid"})),
        not_an_int.map(lambda v: (envelope_with(payload=payload(pages=v)), {}, {"invalid"})),
        st.sampled_from(["id", "title", "pages"]).map(
            lambda field: (
                envelope_with(payload=json.dumps({k: 1 for k in ["id", "title"] if k != field})),
                {},
                {"invalid"},
            )
        ),
        st.sampled_from(["metadata", "message_id", "created_at"]).map(
            lambda field: (envelope_with(payload=payload(**{field: "forged"})), {}, {"invalid"})
        ),
    )


def _huge() -> st.SearchStrategy[Hostile]:
    return st.integers(MAX_SIZE, MAX_SIZE * 20).map(
        lambda size: (envelope_with(payload=payload(title="x" * size)), {}, {"too_large"})
    )


def _unknown() -> st.SearchStrategy[Hostile]:
    unknown = {"unknown_type", "unknown_version"}
    return st.one_of(
        st.integers()
        .filter(lambda v: v not in (1, 2, 3))
        .map(lambda v: (envelope_with(type=f"book_registered_v{v}"), {}, unknown)),
        st.text(max_size=30)
        .filter(lambda s: s not in ("register_book_v1", "book_registered_v3"))
        .filter(lambda s: not s.startswith("book_registered_v"))
        .map(lambda s: (envelope_with(type=s), {}, unknown)),
    )


def _headers() -> st.SearchStrategy[Hostile]:
    return st.one_of(
        # No headers to stand in for a missing id or type.
        st.sampled_from(["id", "type"]).map(
            lambda key: (envelope_with(**{key: _DROP}), {}, {"missing"})
        ),
        st.text(max_size=30)
        .filter(lambda s: s != "book_registered_v3")
        .map(lambda s: (envelope_with(), {"message-type": s}, {"conflict"})),
        st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=5)
        .filter(lambda h: not {"message-id", "message-type", "message-created-at"} & set(h))
        .map(lambda h: (envelope_with(type="book_registered_v9"), h, {"unknown_version"})),
    )


hostile_inputs = st.one_of(
    _random_bytes(),
    _wrong_envelope_types(),
    _wrong_payload_types(),
    _huge(),
    _unknown(),
    _headers(),
)


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _is_date(text: str) -> bool:
    try:
        TypeAdapter(datetime).validate_python(text)
    except ValidationError:
        return False
    return True


def test_hostile_inputs_are_dead_lettered_and_valid_ones_applied_once() -> None:
    store = Store()
    registry = MessageRegistry.from_bus(make_bus())

    @registry.upcaster("book_registered", from_version=1)
    def add_title(old: dict[str, Any]) -> dict[str, Any]:
        return {**old, "title": "untitled"}

    @registry.upcaster("book_registered", from_version=2)
    def add_pages(old: dict[str, Any]) -> dict[str, Any]:
        return {**old, "pages": 0}

    dead_letters = AsyncInMemoryDeadLetters()
    consumer = AsyncConsumer(
        make_bus(),
        lambda: UnitOfWork(store),
        registry,
        name="hostile",
        dead_letters=dead_letters,
        max_size=MAX_SIZE,
        backoff=lambda failures: 0.0,
    )
    queue: asyncio.Queue[tuple[bytes, Mapping[str, str]]] = asyncio.Queue()
    sent: list[tuple[bytes, set[str]]] = []
    valid: list[str] = []
    counter = iter(range(10**9))

    def valid_message() -> bytes:
        number = next(counter)
        valid.append(f"registered:{number}:untitled:0")
        version = 1 + number % 3  # versions 1 and 2 are upcast to 3
        fields = [("id", str(number)), ("title", "untitled"), ("pages", 0)][:version]
        return raw_envelope(f"book_registered_v{version}", dict(fields), str(uuid.uuid4()))

    with asyncio.Runner() as runner:
        task = runner.get_loop().create_task(consumer.run(queue))

        @settings(
            max_examples=1000,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(hostile=hostile_inputs, redeliver=st.booleans())
        def feed(hostile: Hostile, redeliver: bool) -> None:
            body, headers, reasons = hostile
            before = valid_message()
            after = before if redeliver else valid_message()
            for item in [(before, {}), (body, headers), (after, {})]:
                queue.put_nowait(item)
            sent.append((body, reasons))
            runner.run(queue.join())
            assert not task.done()

        feed()
        assert not task.done()
        task.cancel()

    assert 1000 <= len(sent)
    assert len(sent) == len(dead_letters.letters)
    for (body, reasons), letter in zip(sent, dead_letters.letters, strict=True):
        assert body == letter.raw
        code = letter.reason.partition(":")[0]
        assert code in reasons, (body[:200], letter.reason)
    assert dict.fromkeys(valid, 1) == store.applied
    assert (len(valid), len(sent)) == (consumer.stats.handled, consumer.stats.dead_lettered)
