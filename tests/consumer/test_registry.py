"""The message registry: one class per (name, version), upcasters, and decoding envelopes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from messagebus import (
    ConfigurationError,
    DecodeError,
    Event,
    MessageRegistry,
    MessageSerializer,
    Metadata,
)
from tests.consumer.app import BookRegistered, RegisterBook, envelope, make_bus, raw_envelope


class OtherBookRegistered(Event):
    id: str
    metadata: Metadata = Metadata(name="book_registered", schema_version=3)


class BookRegisteredV2(Event):
    id: str
    title: str
    metadata: Metadata = Metadata(name="book_registered", schema_version=2)


def registry_v3() -> MessageRegistry:
    """BookRegistered v3, with upcasters from v1 (adds a title) and v2 (adds pages)."""
    registry = MessageRegistry([BookRegistered])

    @registry.upcaster("book_registered", from_version=1)
    def add_title(payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "title": f"untitled {payload['id']}"}

    @registry.upcaster("book_registered", from_version=2)
    def add_pages(payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "pages": 0}

    return registry


def test_from_bus_registers_the_classes_with_handlers() -> None:
    registry = MessageRegistry.from_bus(make_bus())
    assert BookRegistered is registry.get("book_registered", 3)
    assert RegisterBook is registry.get("register_book", 1)
    assert 2 == len(registry)


def test_classes_lists_the_registered_classes_in_order() -> None:
    registry = MessageRegistry([BookRegistered, BookRegisteredV2])
    registry.register(RegisterBook)
    assert [BookRegistered, BookRegisteredV2, RegisterBook] == registry.classes()


def test_registering_a_class_twice_is_harmless() -> None:
    registry = MessageRegistry([BookRegistered])
    assert BookRegistered is registry.register(BookRegistered)
    registry.register_bus(make_bus())
    assert 2 == len(registry)


def test_two_classes_with_one_key_are_an_error_naming_both() -> None:
    registry = MessageRegistry([BookRegistered])
    with pytest.raises(ConfigurationError) as caught:
        registry.register(OtherBookRegistered)
    text = str(caught.value)
    assert "tests.consumer.app.BookRegistered" in text
    assert "test_registry.OtherBookRegistered" in text
    assert "'book_registered' version 3" in text


def test_only_message_classes_are_registered() -> None:
    with pytest.raises(ConfigurationError, match="only command and event classes"):
        MessageRegistry().register(dict)  # type: ignore[type-var]


def test_a_class_without_default_metadata_cannot_be_registered() -> None:
    class Nameless(Event):
        id: str

    with pytest.raises(ConfigurationError, match="give its `metadata` field a default"):
        MessageRegistry().register(Nameless)


def test_a_message_is_decoded_with_its_id_and_date() -> None:
    sent = BookRegistered(id="1", title="Dune", pages=412)
    received = MessageRegistry([BookRegistered]).decode(envelope(sent))
    assert isinstance(received, BookRegistered)
    assert sent == received
    assert (sent.message_id, sent.created_at) == (received.message_id, received.created_at)


def test_an_envelope_already_parsed_is_decoded() -> None:
    sent = RegisterBook(id="1", title="Dune")
    body = json.loads(envelope(sent))
    assert sent == MessageRegistry([RegisterBook]).decode(body)


def test_upcasters_chain_from_version_1_to_3() -> None:
    registry = registry_v3()
    registry.check()
    v1 = registry.decode(raw_envelope("book_registered_v1", {"id": "7"}))
    v2 = registry.decode(raw_envelope("book_registered_v2", {"id": "8", "title": "Emma"}))
    assert BookRegistered(id="7", title="untitled 7", pages=0) == v1
    assert BookRegistered(id="8", title="Emma", pages=0) == v2


def test_a_registered_older_version_is_built_as_it_is() -> None:
    registry = registry_v3()
    registry.register(BookRegisteredV2)
    v2 = registry.decode(raw_envelope("book_registered_v2", {"id": "8", "title": "Emma"}))
    v1 = registry.decode(raw_envelope("book_registered_v1", {"id": "7"}))
    assert BookRegisteredV2(id="8", title="Emma") == v2
    assert BookRegisteredV2(id="7", title="untitled 7") == v1


def test_a_gap_in_the_chain_is_named_at_check() -> None:
    registry = MessageRegistry([BookRegistered])
    registry.upcaster("book_registered", from_version=1)(lambda payload: payload)
    with pytest.raises(ConfigurationError) as caught:
        registry.check()
    assert "reaches version 2" in str(caught.value)
    assert "@registry.upcaster('book_registered', from_version=2)" in str(caught.value)


def test_an_upcaster_without_a_class_is_named_at_check() -> None:
    registry = MessageRegistry([BookRegistered])
    registry.upcaster("book_removed", from_version=1)(lambda payload: payload)
    with pytest.raises(ConfigurationError, match="'book_removed' has an upcaster from version 1"):
        registry.check()


def test_an_upcaster_past_the_last_version_leads_nowhere() -> None:
    registry = MessageRegistry([BookRegistered])
    registry.upcaster("book_registered", from_version=3)(lambda payload: payload)
    with pytest.raises(ConfigurationError, match="reaches version 4"):
        registry.check()


def test_two_upcasters_from_one_version_are_an_error() -> None:
    registry = registry_v3()
    with pytest.raises(ConfigurationError, match="two upcasters from version 1"):
        registry.upcaster("book_registered", from_version=1)(lambda payload: payload)


def test_headers_stand_in_for_missing_keys() -> None:
    message_id = str(uuid.uuid4())
    body = json.dumps({"payload": json.dumps({"id": "1", "title": "Dune"})}).encode()
    headers = {"message-id": message_id, "message-type": "register_book_v1"}
    received = MessageRegistry([RegisterBook]).decode(body, headers)
    assert message_id == str(received.message_id)


def reason(registry: MessageRegistry, body: Any, headers: Any = None, **kwargs: Any) -> str:
    with pytest.raises(DecodeError) as caught:
        registry.decode(body, headers, **kwargs)
    assert str(caught.value)
    return caught.value.reason


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json", "malformed"),
        (b"\xff\xfe\x00", "malformed"),
        (b"[1, 2]", "malformed"),
        (b"[" * 100_000, "malformed"),
        (b'{"type": "register_book_v1", "payload": "{}"}', "missing"),
        (b'{"id": 42, "type": "register_book_v1", "payload": "{}"}', "missing"),
        (raw_envelope("book_removed_v1", {}), "unknown_type"),
        (raw_envelope("register_book", {}), "unknown_type"),
        (raw_envelope("register_book_v2", {}), "unknown_version"),
        (raw_envelope("register_book_v1", "{oops"), "malformed"),
        (raw_envelope("register_book_v1", [1]), "malformed"),
        (raw_envelope("register_book_v1", {"id": "1"}), "invalid"),
        (raw_envelope("register_book_v1", {"id": 1, "title": "Dune"}), "invalid"),
        (raw_envelope("register_book_v1", {"id": "1", "title": "x"}, "not-a-uuid"), "invalid"),
    ],
)
def test_each_bad_envelope_has_its_reason(body: bytes, expected: str) -> None:
    assert expected == reason(MessageRegistry([RegisterBook]), body)


def test_the_payload_cannot_set_the_metadata() -> None:
    forged = {"id": "1", "title": "x", "metadata": {"name": "x", "schema_version": 9}}
    body = raw_envelope("register_book_v1", forged)
    assert "invalid" == reason(MessageRegistry([RegisterBook]), body)


def test_headers_that_are_not_strings_are_compared_as_text() -> None:
    sent = RegisterBook(id="1", title="Dune")
    headers: Any = {"message-id": sent.message_id, "message-type": 7}
    assert "conflict" == reason(MessageRegistry([RegisterBook]), envelope(sent), headers)
    del headers["message-type"]
    assert sent == MessageRegistry([RegisterBook]).decode(envelope(sent), headers)


def test_a_header_that_disagrees_is_a_conflict() -> None:
    body = envelope(RegisterBook(id="1", title="Dune"))
    headers = {"message-type": "book_registered_v3"}
    assert "conflict" == reason(MessageRegistry([RegisterBook, BookRegistered]), body, headers)


def test_an_envelope_over_the_limit_is_too_large() -> None:
    body = envelope(RegisterBook(id="1", title="x" * 2000))
    assert "too_large" == reason(MessageRegistry([RegisterBook]), body, max_size=1000)
    assert MessageRegistry([RegisterBook]).decode(body, max_size=None)


def test_a_failing_upcaster_is_a_decode_error() -> None:
    registry = MessageRegistry([BookRegistered])
    registry.upcaster("book_registered", from_version=2)(lambda payload: payload["nope"])
    assert "upcast_failed" == reason(registry, raw_envelope("book_registered_v2", {"id": "1"}))
    other = MessageRegistry([BookRegistered])
    other.upcaster("book_registered", from_version=2)(lambda payload: [payload])  # type: ignore[arg-type,return-value]
    assert "upcast_failed" == reason(other, raw_envelope("book_registered_v2", {"id": "1"}))


def test_the_created_date_is_read_back_aware() -> None:
    received = MessageRegistry([RegisterBook]).decode(
        raw_envelope("register_book_v1", {"id": "1", "title": "Dune"})
    )
    assert datetime(2025, 1, 1, tzinfo=UTC) == received.created_at


def test_what_the_faststream_transport_sends_decodes_with_its_headers() -> None:
    """The transport and the registry agree on the headers; a drift would be a conflict."""
    pytest.importorskip("faststream")
    from messagebus.adapters.faststream import HEADERS, encode_envelope
    from messagebus.consumer import ENVELOPE_HEADERS

    assert ENVELOPE_HEADERS == {key: HEADERS[key] for key in ENVELOPE_HEADERS}
    sent = BookRegistered(id="1", title="Dune", pages=412)
    envelope = MessageSerializer().serialize_message(sent)
    headers = {HEADERS[key]: str(envelope[key]) for key in ("id", "type", "created_at")}
    received = MessageRegistry([BookRegistered]).decode(encode_envelope(envelope), headers)
    assert (sent, sent.message_id, sent.created_at) == (
        received,
        received.message_id,
        received.created_at,
    )


def test_the_causation_and_correlation_ids_survive_the_trip() -> None:
    conversation, cause = uuid.uuid4(), uuid.uuid4()
    sent = RegisterBook(id="1", title="Dune", causation_id=cause, correlation_id=conversation)
    received = MessageRegistry([RegisterBook]).decode(envelope(sent))
    assert (cause, conversation) == (received.causation_id, received.correlation_id)


def test_a_first_command_arrives_as_the_start_of_its_conversation() -> None:
    sent = RegisterBook(id="1", title="Dune")
    received = MessageRegistry([RegisterBook]).decode(envelope(sent))
    assert received.causation_id is None
    assert sent.message_id == received.correlation_id == received.conversation_id


def test_an_envelope_without_the_ids_decodes_as_a_message_without_a_cause() -> None:
    """As 0.16's serializer made them, and as the headers alone may carry them."""
    body = raw_envelope("register_book_v1", {"id": "1", "title": "Dune"})
    registry = MessageRegistry([RegisterBook])
    received = registry.decode(body)
    assert (None, None) == (received.causation_id, received.correlation_id)
    assert received.message_id == received.conversation_id

    conversation = "0193b3c4-3c4a-7f5e-8d1a-2b3c4d5e6f99"
    headed = registry.decode(body, {"message-correlation-id": conversation})
    assert uuid.UUID(conversation) == headed.correlation_id


def test_a_causation_id_that_is_not_a_uuid_is_invalid() -> None:
    body = json.loads(raw_envelope("register_book_v1", {"id": "1", "title": "Dune"}))
    body["causation_id"] = "yesterday"
    with pytest.raises(DecodeError) as error:
        MessageRegistry([RegisterBook]).decode(json.dumps(body))
    assert "invalid" == error.value.reason
    assert "causation_id" in str(error.value)


def test_a_payload_may_not_set_the_ids_of_the_envelope() -> None:
    body = raw_envelope("register_book_v1", {"id": "1", "title": "D", "correlation_id": "x"})
    with pytest.raises(DecodeError) as error:
        MessageRegistry([RegisterBook]).decode(body)
    assert "invalid" == error.value.reason


def test_a_null_date_or_type_is_not_filled_in_but_a_null_cause_is() -> None:
    registry = MessageRegistry([RegisterBook])
    body = json.loads(raw_envelope("register_book_v1", {"id": "1", "title": "Dune"}))
    with pytest.raises(DecodeError) as error:
        registry.decode(json.dumps({**body, "created_at": None}))
    assert "invalid" == error.value.reason
    with pytest.raises(DecodeError) as error:
        registry.decode(json.dumps({**body, "type": None}), {"message-type": "register_book_v1"})
    assert "conflict" == error.value.reason
    conversation = "0193b3c4-3c4a-7f5e-8d1a-2b3c4d5e6f99"
    nulls = {**body, "causation_id": None, "correlation_id": None}
    received = registry.decode(json.dumps(nulls), {"message-correlation-id": conversation})
    assert (None, uuid.UUID(conversation)) == (received.causation_id, received.correlation_id)
