"""The schemas of the messages a service sends and reads: JSON Schema, AsyncAPI, a snapshot check.

:func:`message_schema` gives the JSON Schema of what travels for one message class: the
``payload`` of the envelope :class:`~messagebus.MessageSerializer` makes, that is the
message's own fields, without ``message_id``, ``created_at`` and ``metadata``, which the
envelope carries as ``id``, ``created_at`` and ``type``. :func:`message_schemas` gives them
all, keyed by ``(name, schema_version)``; :func:`asyncapi_document` describes a service's
channels in AsyncAPI 3.0; :func:`check_snapshot` compares the published messages with a
committed folder of schemas, so that a changed schema cannot ship under an old version.
The ``messagebus schema`` command (:mod:`messagebus.cli`) runs them.

.. versionadded:: 0.17
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from messagebus.domain.model import Message
from messagebus.domain.model.message import ENVELOPE_FIELDS
from messagebus.service.errors import ConfigurationError
from messagebus.service.messages import ENVELOPE_HEADERS, MessageRegistry

__all__ = [
    "ASYNCAPI_VERSION",
    "JSON_SCHEMA_DIALECT",
    "SchemaProblem",
    "asyncapi_document",
    "check_snapshot",
    "dumps",
    "message_schema",
    "message_schemas",
    "schema_file_name",
    "write_schemas",
]

ASYNCAPI_VERSION = "3.0.0"
"""The version of the AsyncAPI specification :func:`asyncapi_document` follows."""

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The ``$schema`` of every schema written here: pydantic generates JSON Schema 2020-12."""

# The relay adds the outbox stream as this header (HEADERS["stream"] of the FastStream
# adapter, which this module must not import: it needs an optional extra).
_STREAM_HEADER = "message-stream"

# Keywords that document a schema without changing what it accepts; a snapshot check that
# counted them would ask for a new version after a reworded docstring.
_ANNOTATIONS = frozenset({"title", "description", "examples", "$comment"})
# Keywords whose value maps names to schemas, or holds data rather than schemas.
_NAMED_SCHEMAS = frozenset({"properties", "$defs", "patternProperties", "dependentSchemas"})
_DATA = frozenset({"enum", "const", "default", "examples"})

Schema = dict[str, Any]
MessageClass = type[Message[Any]]
Messages = MessageRegistry | Iterable[MessageClass]


def message_schema(cls: MessageClass) -> Schema:
    """Return the JSON Schema of the payload of ``cls``, as its publisher sends it.

    It is pydantic's ``model_json_schema(mode="serialization")`` of the class, without
    the fields the envelope carries (``message_id``, ``created_at``, ``metadata``) and
    the definitions only they used; its ``title`` is the message type, ``{name}_v{version}``,
    and its ``$schema`` is :data:`JSON_SCHEMA_DIALECT`.

    :raises ConfigurationError: ``cls`` is not a message class with a default ``metadata``.
    """
    name, version = _key(cls)
    schema = cls.model_json_schema(mode="serialization")
    properties = schema.get("properties", {})
    for field in ENVELOPE_FIELDS:
        properties.pop(field, None)
    if "required" in schema:
        schema["required"] = [f for f in schema["required"] if f not in ENVELOPE_FIELDS]
        if not schema["required"]:
            del schema["required"]
    _drop_unused_definitions(schema)
    return {"$schema": JSON_SCHEMA_DIALECT, **schema, "title": f"{name}_v{version}"}


def message_schemas(
    messages: Messages, *, published_only: bool = False
) -> dict[tuple[str, int], Schema]:
    """Return the payload schema of each message class, keyed by ``(name, schema_version)``.

    :param messages: a :class:`~messagebus.MessageRegistry` or message classes.
    :param published_only: keep only the classes whose metadata says ``published=True``.
    """
    return {
        _key(cls): message_schema(cls)
        for cls in _classes(messages)
        if not published_only or _published(cls)
    }


def schema_file_name(name: str, schema_version: int) -> str:
    """Return the file name of a schema in a folder: ``{name}_v{schema_version}.json``."""
    return f"{name}_v{schema_version}.json"


def write_schemas(schemas: Mapping[tuple[str, int], Schema], folder: Path) -> list[Path]:
    """Write each schema to ``folder`` (created if needed), one file each; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for (name, version), schema in sorted(schemas.items()):
        path = folder / schema_file_name(name, version)
        path.write_text(dumps(schema), encoding="utf-8")
        paths.append(path)
    return paths


def dumps(document: Mapping[str, Any]) -> str:
    """Return ``document`` as the JSON text written to files: indented, keys sorted."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class SchemaProblem:
    """A published message whose schema differs from the one in the snapshot.

    ``str()`` of it is the line :func:`check_snapshot`'s callers print.
    """

    name: str
    """The message's name, from its metadata."""
    schema_version: int
    """The version both the message and the snapshot's file claim."""
    path: Path
    """The snapshot's file for that name and version."""

    def __str__(self) -> str:
        return (
            f"{self.name} version {self.schema_version}: its schema differs from {self.path}; "
            f"bump schema_version (and declare an upcaster from {self.schema_version}), "
            f"or, if this version was never released, delete {self.path.name} and run with --update"
        )


def check_snapshot(
    messages: Messages, snapshot: Path, *, update: bool = False
) -> list[SchemaProblem]:
    """Compare the published messages' schemas with those of the ``snapshot`` folder.

    A published message (``published=True``) whose ``(name, schema_version)`` has a file in
    ``snapshot`` must have the same schema, titles and descriptions aside; each one that
    does not is returned. A message or version with no file yet is new, so it is not a
    problem; with ``update=True`` its file is written. A file that differs is never
    overwritten. Messages that are not published are not checked: they never leave the
    service, so no one else reads their schema.

    :raises ConfigurationError: a file of the snapshot is not a JSON object.
    """
    problems = []
    new = {}
    for key, schema in message_schemas(messages, published_only=True).items():
        path = snapshot / schema_file_name(*key)
        if not path.exists():
            new[key] = schema
        elif _structure(_read(path)) != _structure(schema):
            problems.append(SchemaProblem(key[0], key[1], path))
    if update and new:
        write_schemas(new, snapshot)
    return problems


def _read(path: Path) -> Schema:
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        schema = error
    if not isinstance(schema, dict):
        raise ConfigurationError(
            f"{path} is not a JSON Schema ({schema}): restore it from version control"
        )
    return schema


def asyncapi_document(
    publishes: Messages = (),
    consumes: Messages = (),
    *,
    title: str = "messagebus service",
    version: str = "0.0.0",
    destination: str = "messagebus",
    routes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return an AsyncAPI 3.0 document of what a service sends and receives.

    The messages of ``publishes`` with ``published=True`` are sent, all those of
    ``consumes`` are received. Each message travels as the JSON body
    ``{"id", "created_at", "type", "causation_id", "correlation_id", "payload"}`` whose
    ``payload`` is a string holding the JSON of :func:`message_schema` (said with
    ``contentMediaType`` and a ``contentSchema`` pointing into ``components.schemas``,
    keyed by message type), with the headers ``message-id``, ``message-type``,
    ``message-created-at``, ``message-causation-id`` and ``message-correlation-id`` and,
    when the outbox relay sends it, ``message-stream``; when the message is traced
    (:mod:`messagebus.adapters.opentelemetry`), the envelope's ``trace`` and the
    ``traceparent`` and ``tracestate`` headers.

    A channel is a destination of the broker: ``destination`` unless ``routes`` maps the
    message type (``name_vN``) or its name to another one, as
    :class:`~messagebus.adapters.faststream.FastStreamTransport` does. Each channel with
    messages to send has a ``send`` operation, each with messages to read a ``receive`` one.

    :param publishes: a registry or message classes; only the published ones are sent.
    :param consumes: a registry (a consumer's ``registry``) or message classes.
    :param title: ``info.title``, the service's name.
    :param version: ``info.version``, the version of this API (not of AsyncAPI).
    """
    routes = routes or {}
    sent = [cls for cls in _classes(publishes) if _published(cls)]
    received = list(_classes(consumes))
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for action, classes in (("send", sent), ("receive", received)):
        by_channel: dict[str, list[str]] = {}
        for cls in classes:
            name, schema_version = _key(cls)
            message_type = f"{name}_v{schema_version}"
            messages[message_type] = _asyncapi_message(cls, message_type)
            schemas[message_type] = _rebase(
                message_schema(cls), f"#/components/schemas/{message_type}"
            )
            address = routes.get(message_type, routes.get(name, destination))
            channel = channels.setdefault(
                _identifier(address), {"address": address, "messages": {}}
            )
            channel["messages"][message_type] = {"$ref": f"#/components/messages/{message_type}"}
            by_channel.setdefault(_identifier(address), []).append(message_type)
        for channel_id, types in sorted(by_channel.items()):
            operations[f"{action}_{channel_id}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "messages": [
                    {"$ref": f"#/channels/{channel_id}/messages/{t}"} for t in sorted(set(types))
                ],
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": title, "version": version},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": dict(sorted(messages.items())),
            "schemas": dict(sorted(schemas.items())),
        },
    }


def _asyncapi_message(cls: MessageClass, message_type: str) -> dict[str, Any]:
    name, _ = _key(cls)
    headers = {
        ENVELOPE_HEADERS["id"]: {"type": "string", "format": "uuid"},
        ENVELOPE_HEADERS["type"]: {"type": "string", "const": message_type},
        ENVELOPE_HEADERS["created_at"]: {"type": "string", "format": "date-time"},
        ENVELOPE_HEADERS["causation_id"]: {
            "type": "string",
            "format": "uuid",
            "description": "The id of the message that caused this one, if any.",
        },
        ENVELOPE_HEADERS["correlation_id"]: {
            "type": "string",
            "format": "uuid",
            "description": "The conversation: the id of the command it began with.",
        },
        _STREAM_HEADER: {"type": "string", "description": "The outbox stream, set by the relay."},
        "traceparent": {
            "type": "string",
            "description": "W3C Trace Context of the message's creation, when traced.",
        },
        "tracestate": {
            "type": "string",
            "description": "W3C Trace Context vendor data, when traced and the trace has some.",
        },
    }
    envelope = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "created_at": {"type": "string", "format": "date-time"},
            "type": {"type": "string", "const": message_type},
            "causation_id": {"type": ["string", "null"], "format": "uuid"},
            "correlation_id": {"type": "string", "format": "uuid"},
            "trace": {
                "type": "object",
                "description": "The trace context, when traced: the headers of the same names.",
                "additionalProperties": {"type": "string"},
            },
            "payload": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": f"#/components/schemas/{message_type}"},
            },
        },
        "required": ["id", "created_at", "type", "payload"],
    }
    message: dict[str, Any] = {
        "name": name,
        "title": cls.__name__,
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": headers,
            "required": [ENVELOPE_HEADERS[key] for key in ("id", "type", "created_at")],
        },
        "payload": envelope,
    }
    if cls.__doc__:
        message["summary"] = cls.__doc__.strip().splitlines()[0]
    return message


def _rebase(schema: Any, pointer: str) -> Any:
    # Inside the document, "#/$defs/..." would point at its root, not at the schema's own.
    if isinstance(schema, dict):
        return {
            key: pointer + value[1:]
            if key == "$ref" and isinstance(value, str) and value.startswith("#/")
            else _rebase(value, pointer)
            for key, value in schema.items()
            if key != "$schema"
        }
    if isinstance(schema, list):
        return [_rebase(item, pointer) for item in schema]
    return schema


def _classes(messages: Messages) -> list[MessageClass]:
    if isinstance(messages, MessageRegistry):
        # The registry has no public way to list its classes yet.
        return list(messages.classes())
    return list(messages)


def _key(cls: MessageClass) -> tuple[str, int]:
    is_message = isinstance(cls, type) and issubclass(cls, Message)
    field = cls.model_fields.get("metadata") if is_message else None
    metadata: Any = getattr(field, "default", None)
    if not hasattr(metadata, "schema_version"):
        raise ConfigurationError(
            f"{cls!r} has no schema: give a command or event class whose `metadata` field "
            f"has a default, Metadata(name=..., schema_version=...)"
        )
    return metadata.name, metadata.schema_version


def _published(cls: MessageClass) -> bool:
    _key(cls)
    return bool(cls.model_fields["metadata"].default.published)


def _identifier(address: str) -> str:
    # AsyncAPI keys of channels and operations allow letters, digits, ".", "-" and "_".
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in address)


def _drop_unused_definitions(schema: Schema) -> None:
    definitions = schema.get("$defs")
    if not definitions:
        return
    used: set[str] = set()
    pending = [{k: v for k, v in schema.items() if k != "$defs"}]
    while pending:
        for ref in _refs(pending.pop()):
            name = ref.rpartition("/")[2]
            if name not in used and name in definitions:
                used.add(name)
                pending.append(definitions[name])
    schema["$defs"] = {name: definitions[name] for name in sorted(used)}
    if not used:
        del schema["$defs"]


def _refs(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _structure(value: Any, kind: Literal["schema", "named", "data"] = "schema") -> Any:
    """Return a schema without its annotations: what a payload must be, nothing else."""
    if kind == "data":
        return value
    if isinstance(value, list):
        return [_structure(item, kind) for item in value]
    if not isinstance(value, dict):
        return value
    if kind == "named":
        return {name: _structure(item) for name, item in value.items()}
    return {
        key: _structure(
            item, "named" if key in _NAMED_SCHEMAS else "data" if key in _DATA else "schema"
        )
        for key, item in value.items()
        if key not in _ANNOTATIONS
    }
