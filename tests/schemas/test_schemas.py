import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import Field

from messagebus import ConfigurationError, Event, MessageRegistry, MessageSerializer, Metadata
from messagebus.schemas import (
    asyncapi_document,
    check_snapshot,
    message_schema,
    message_schemas,
    write_schemas,
)
from tests.schemas.messages import Author, BookLent, BookRegistered, RegisterBook


def test_the_schema_covers_the_payload_only() -> None:
    schema = message_schema(BookRegistered)

    assert "book_registered_v1" == schema["title"]
    assert "https://json-schema.org/draft/2020-12/schema" == schema["$schema"]
    assert ["authors", "id", "title"] == sorted(schema["properties"])
    assert ["id", "title"] == sorted(schema["required"])
    # Metadata was only used by the field the envelope carries.
    assert ["Author"] == sorted(schema["$defs"])


def test_the_schema_describes_what_the_serializer_sends() -> None:
    message = BookRegistered(id="1", title="Dune", authors=[Author(name="Herbert")])
    payload = json.loads(MessageSerializer().serialize_message(message)["payload"])

    assert set(payload) == set(message_schema(BookRegistered)["properties"])


def test_schemas_are_keyed_by_name_and_version() -> None:
    registry = MessageRegistry([RegisterBook, BookRegistered, BookLent])

    assert {("register_book", 1), ("book_registered", 1), ("book_lent", 1)} == set(
        message_schemas(registry)
    )
    assert {("book_registered", 1)} == set(message_schemas(registry, published_only=True))


def _changed(doc: str = "A book is on the shelf.", **fields: Any) -> type[Event]:
    """A book_registered v1 with other fields, as if someone had edited the class."""
    namespace: dict[str, Any] = {"__annotations__": {**fields, "metadata": Metadata}}
    namespace["metadata"] = Metadata(name="book_registered", schema_version=1, published=True)
    namespace["__doc__"] = doc
    if "authors" in fields:
        namespace["authors"] = Field(default_factory=list)
    return type("BookRegistered", (Event,), namespace)


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    assert [] == check_snapshot([BookRegistered], tmp_path, update=True)
    assert ["book_registered_v1.json"] == [path.name for path in tmp_path.iterdir()]
    return tmp_path


def test_an_unchanged_schema_passes(snapshot: Path) -> None:
    assert [] == check_snapshot([BookRegistered, RegisterBook], snapshot)


def test_a_docstring_is_not_a_change(snapshot: Path) -> None:
    reworded = _changed("Reworded.", id=str, title=str, authors=list[Author])
    assert "Reworded." == message_schema(reworded)["description"]

    assert [] == check_snapshot([reworded], snapshot)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"id": str, "title": str, "authors": list[Author], "isbn": str}, id="added"),
        pytest.param({"id": str, "authors": list[Author]}, id="removed"),
        pytest.param({"id": int, "title": str, "authors": list[Author]}, id="retyped"),
    ],
)
def test_a_changed_schema_in_the_same_version_fails(snapshot: Path, fields: Any) -> None:
    problems = check_snapshot([_changed(**fields)], snapshot, update=True)

    assert [("book_registered", 1)] == [(p.name, p.schema_version) for p in problems]
    assert "book_registered version 1" in str(problems[0])
    assert "bump schema_version" in str(problems[0])
    # A changed file is never overwritten, even with update=True.
    assert message_schema(BookRegistered) == json.loads(
        (snapshot / "book_registered_v1.json").read_text()
    )


def test_a_new_version_passes_and_is_written_on_update(snapshot: Path) -> None:
    class BookRegisteredV2(Event):
        id: str
        isbn: str
        metadata: Metadata = Metadata(name="book_registered", schema_version=2, published=True)

    assert [] == check_snapshot([BookRegistered, BookRegisteredV2], snapshot)
    assert not (snapshot / "book_registered_v2.json").exists()
    assert [] == check_snapshot([BookRegistered, BookRegisteredV2], snapshot, update=True)
    assert message_schema(BookRegisteredV2) == json.loads(
        (snapshot / "book_registered_v2.json").read_text()
    )


def test_only_published_messages_are_checked(tmp_path: Path) -> None:
    write_schemas(message_schemas([BookLent]), tmp_path)

    class BookLentChanged(Event):
        id: int
        borrower: str
        metadata: Metadata = Metadata(name="book_lent", schema_version=1)

    assert [] == check_snapshot([BookLentChanged], tmp_path, update=True)
    assert ["book_lent_v1.json"] == [path.name for path in tmp_path.iterdir()]


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [value["$ref"]] if "$ref" in value else [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def test_the_asyncapi_document_has_the_shape_the_specification_requires() -> None:
    """What the specification says in prose, which its JSON Schema cannot check."""
    document = asyncapi_document(
        [RegisterBook, BookRegistered, BookLent],
        [RegisterBook],
        title="reading club",
        version="1.0.0",
        routes={"register_book": "commands"},
    )

    assert "3.0.0" == document["asyncapi"]
    assert {"title": "reading club", "version": "1.0.0"} == document["info"]
    key = re.compile(r"^[a-zA-Z0-9.\-_]+$")
    for section in ("messages", "schemas"):
        assert all(key.match(name) for name in document["components"][section])
    for channel in document["channels"].values():
        assert isinstance(channel["address"], str)
        for message in channel["messages"].values():
            assert {"name", "headers", "payload"} <= set(_resolve(document, message["$ref"]))
    for operation in document["operations"].values():
        assert operation["action"] in {"send", "receive"}
        channel_ref = operation["channel"]["$ref"]
        # The specification: an operation's messages are its channel's.
        assert all(m["$ref"].startswith(f"{channel_ref}/messages/") for m in operation["messages"])
    for ref in _refs(document):
        _resolve(document, ref)


def test_the_asyncapi_document_sends_published_and_receives_consumed() -> None:
    document = asyncapi_document(
        [RegisterBook, BookRegistered, BookLent],
        MessageRegistry([RegisterBook]),
        routes={"register_book": "commands"},
    )

    assert {
        "send_messagebus": ["#/channels/messagebus/messages/book_registered_v1"],
        "receive_commands": ["#/channels/commands/messages/register_book_v1"],
    } == {name: [m["$ref"] for m in op["messages"]] for name, op in document["operations"].items()}
    message = document["components"]["messages"]["book_registered_v1"]
    assert {
        "message-id",
        "message-type",
        "message-created-at",
        "message-causation-id",
        "message-correlation-id",
        "message-stream",
        "traceparent",
        "tracestate",
    } == set(message["headers"]["properties"])
    payload = message["payload"]["properties"]["payload"]
    assert "application/json" == payload["contentMediaType"]
    schema = _resolve(document, payload["contentSchema"]["$ref"])
    assert _resolve(document, schema["properties"]["authors"]["items"]["$ref"])["title"] == "Author"


def test_the_headers_are_those_the_faststream_transport_sends() -> None:
    faststream = pytest.importorskip("messagebus.adapters.faststream")
    document = asyncapi_document([BookRegistered])
    headers = document["components"]["messages"]["book_registered_v1"]["headers"]

    # and the W3C Trace Context headers, sent from the envelope's "trace" when traced
    trace_context = {"traceparent", "tracestate"}
    assert set(faststream.HEADERS.values()) | trace_context == set(headers["properties"])


@pytest.mark.parametrize("cls", [str, Event])
def test_a_class_without_metadata_has_no_schema(cls: Any) -> None:
    with pytest.raises(ConfigurationError, match="has no schema: give a command or event"):
        message_schemas([cls])


ASYNCAPI_SCHEMA = Path(__file__).parent / "asyncapi" / "3.0.0.json"
READING_CLUB = Path(__file__).parents[2] / "docs" / "schemas" / "reading-club" / "asyncapi.json"


def _asyncapi_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(ASYNCAPI_SCHEMA.read_text()))
    return [error.message for error in validator.iter_errors(document)]


@pytest.mark.parametrize("consumes", [[], [RegisterBook], [RegisterBook, BookRegistered]])
def test_the_asyncapi_document_is_valid_under_the_specification_schema(consumes: Any) -> None:
    document = asyncapi_document(
        [RegisterBook, BookRegistered, BookLent], consumes, routes={"register_book": "c/1"}
    )

    assert [] == _asyncapi_errors(document)


def test_the_reading_club_asyncapi_document_is_valid() -> None:
    assert [] == _asyncapi_errors(json.loads(READING_CLUB.read_text()))


def test_the_specification_schema_refuses_a_wrong_document() -> None:
    document = asyncapi_document([BookRegistered])
    document["operations"]["send_messagebus"]["action"] = "publish"  # AsyncAPI 2's word
    del document["info"]["version"]

    assert 2 == len(_asyncapi_errors(document))


@pytest.mark.parametrize("text", ["{not json", "[]"])
def test_a_broken_snapshot_file_is_named(snapshot: Path, text: str) -> None:
    (snapshot / "book_registered_v1.json").write_text(text)

    with pytest.raises(ConfigurationError, match=r"book_registered_v1.json is not a JSON Schema"):
        check_snapshot([BookRegistered], snapshot)
