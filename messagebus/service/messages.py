"""Reading messages back: the registry of message classes, upcasters and decoding.

A consumer receives envelopes made by :class:`~messagebus.MessageSerializer`
(``{"id", "created_at", "type": "{name}_v{schema_version}", "causation_id",
"correlation_id", "payload"}``) and needs
instances of its own classes. The :class:`MessageRegistry` maps each
``(name, schema_version)`` to one class, migrates older payloads with upcasters, and
builds only the classes registered in it: no pickle, no import by name.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Self, TypeVar

import pydantic
import pydantic_core

from messagebus.domain.model import Message
from messagebus.domain.model.message import ENVELOPE_FIELDS
from messagebus.service.errors import ConfigurationError, handler_name

__all__ = ["DEFAULT_MAX_SIZE", "ENVELOPE_HEADERS", "DecodeError", "MessageRegistry", "Upcaster"]

DEFAULT_MAX_SIZE = 1024 * 1024
"""The largest envelope decoded by default, in bytes (1 MiB)."""

TMessageClass = TypeVar("TMessageClass", bound=type[Message[Any]])

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""A function that turns the payload of one schema version into that of the next."""

_Route = tuple[type[Message[Any]], tuple[Upcaster, ...]]
# The envelope keys that may be null: a message that no other one caused, or an
# envelope of 0.16, which has neither.
_NULLABLE_KEYS = ("causation_id", "correlation_id")

ENVELOPE_HEADERS = {
    "id": "message-id",
    "type": "message-type",
    "created_at": "message-created-at",
    "causation_id": "message-causation-id",
    "correlation_id": "message-correlation-id",
}
"""The header that may carry each envelope key, as the broker transports send them.

.. versionchanged:: 0.17
   ``message-causation-id`` and ``message-correlation-id``.
"""


class DecodeError(ValueError):
    """An incoming envelope cannot become a registered message; :attr:`reason` says why.

    The reasons are ``"too_large"``, ``"malformed"`` (not JSON, or not a JSON object),
    ``"missing"`` (no ``id`` or ``type``), ``"conflict"`` (a header disagrees with the
    envelope), ``"unknown_type"``, ``"unknown_version"``, ``"upcast_failed"`` and
    ``"invalid"`` (the payload fails the class's validation). The message says what was
    wrong; a consumer sends the envelope to its dead letters with both.
    """

    reason: str
    """A short code for the kind of problem, listed above."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


class MessageRegistry:
    """The message classes a service can read, by ``(name, schema_version)``.

    Fill it from the classes a bus has handlers for (:meth:`from_bus`,
    :meth:`register_bus`) or one class at a time (:meth:`register`, also a class
    decorator). Declare upcasters with :meth:`upcaster`; :meth:`check` (called by the
    consumer when it is built) raises on a gap in a chain of upcasters.

    >>> from messagebus import Event, Metadata
    >>> registry = MessageRegistry()
    >>> @registry.register
    ... class BookRegistered(Event):
    ...     id: str
    ...     title: str
    ...     metadata: Metadata = Metadata(name="book_registered", schema_version=2)
    >>> @registry.upcaster("book_registered", from_version=1)
    ... def add_title(payload: dict) -> dict:
    ...     return {**payload, "title": "unknown"}
    >>> registry.decode(
    ...     b'{"id": "0193b3c4-3c4a-7f5e-8d1a-2b3c4d5e6f70", "type": "book_registered_v1",'
    ...     b' "created_at": "2025-01-01T00:00:00+00:00", "payload": {"id": "42"}}'
    ... )
    <BookRegistered id='42' title='unknown'>

    .. versionadded:: 0.17
    """

    def __init__(self, classes: Iterable[type[Message[Any]]] = ()) -> None:
        self._classes: dict[tuple[str, int], type[Message[Any]]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        # "{name}_v{version}" -> the class to build and the upcasters to apply first;
        # computed by check(), forgotten on any change.
        self._routes: dict[str, _Route] | None = None
        for cls in classes:
            self.register(cls)

    @classmethod
    def from_bus(cls, bus: Any) -> Self:
        """Return a registry of the commands and events ``bus`` has handlers for.

        :param bus: an :class:`~messagebus.AsyncMessageBus` or a
            :class:`~messagebus.SyncMessageBus`.
        :raises ConfigurationError: two of those classes share a name and version.
        """
        registry = cls()
        registry.register_bus(bus)
        return registry

    def register_bus(self, bus: Any) -> None:
        """Register the commands and events ``bus`` has handlers for.

        :raises ConfigurationError: two classes share a name and version.
        """
        for message_class in [*bus.commands_registry, *bus.events_registry]:
            self.register(message_class)

    def register(self, cls: TMessageClass) -> TMessageClass:
        """Register ``cls`` under its metadata's name and schema version; return it.

        Registering a class twice is harmless, so it can be used as a class decorator
        and also come from a bus.

        :raises ConfigurationError: ``cls`` is not a message class, or another class
            has the same name and schema version.
        """
        if not (isinstance(cls, type) and issubclass(cls, Message)):
            raise ConfigurationError(
                f"Cannot register {cls!r}: only command and event classes can be read back"
            )
        message_class: type[Message[Any]] = cls
        metadata = message_class.model_fields["metadata"].default
        if metadata is None or not hasattr(metadata, "schema_version"):
            raise ConfigurationError(
                f"Cannot register {handler_name(cls)}: give its `metadata` field a default, "
                f"Metadata(name=..., schema_version=...)"
            )
        key = (metadata.name, metadata.schema_version)
        existing = self._classes.get(key)
        if existing is not None and existing is not cls:
            raise ConfigurationError(
                f"{handler_name(existing)} and {handler_name(cls)} are both "
                f"{metadata.name!r} version {metadata.schema_version}: a consumer could not "
                f"tell which to build; bump the schema_version of one or rename it"
            )
        self._classes[key] = cls
        self._routes = None
        return cls

    def upcaster(self, name: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Declare the decorated function as the upcaster of ``name`` from ``from_version``.

        The function takes the payload (a dict of the message's fields, without its id,
        date and metadata) of version ``from_version`` and returns that of version
        ``from_version + 1``. Upcasters chain: a version 1 payload goes through the
        upcasters from 1, 2, ... until a version with a registered class.

        :raises ConfigurationError: ``name`` already has an upcaster from that version.
        """

        def decorate(function: Upcaster) -> Upcaster:
            key = (name, from_version)
            existing = self._upcasters.get(key)
            if existing is not None and existing is not function:
                raise ConfigurationError(
                    f"{name!r} has two upcasters from version {from_version}, "
                    f"{handler_name(existing)} and {handler_name(function)}: keep one"
                )
            self._upcasters[key] = function
            self._routes = None
            return function

        return decorate

    def check(self) -> None:
        """Check that every chain of upcasters leads to a registered class.

        :raises ConfigurationError: naming each gap: an upcaster for a name with no
            registered class, or a version reached by an upcaster that has neither a
            class nor an upcaster to the next version.
        """
        self._routes = None
        self._build_routes()

    def get(self, name: str, schema_version: int) -> type[Message[Any]] | None:
        """Return the class registered for ``name`` and ``schema_version``, if any."""
        return self._classes.get((name, schema_version))

    def __contains__(self, key: object) -> bool:
        return key in self._classes

    def __len__(self) -> int:
        return len(self._classes)

    def classes(self) -> list[type[Message[Any]]]:
        """Return the registered classes, in the order they were registered."""
        return list(self._classes.values())

    def decode(
        self,
        body: bytes | str | Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
        *,
        max_size: int | None = DEFAULT_MAX_SIZE,
    ) -> Message[Any]:
        """Build the registered message an envelope holds, upcast to a registered version.

        The message keeps the envelope's ``id``, ``created_at``, ``causation_id`` and
        ``correlation_id``. The headers of :data:`messagebus.consumer.ENVELOPE_HEADERS`
        (``message-id``, ``message-type``, ``message-created-at``, ...) stand in for those
        keys when the envelope lacks them, and must agree with them otherwise.

        :param body: the envelope as JSON (bytes or text), or already parsed.
        :param headers: the headers the message came with.
        :param max_size: the largest JSON body accepted, in bytes; ``None`` for no limit.
        :raises DecodeError: with the reason the envelope cannot be read.
        :raises ConfigurationError: the upcasters have a gap (see :meth:`check`).
        """
        routes = self._build_routes()
        envelope = _parse_envelope(body, max_size)
        if headers:
            for key, header in ENVELOPE_HEADERS.items():
                if header in headers:
                    _merge_header(envelope, key, header, str(headers[header]))
        message_type = envelope.get("type")
        message_id = envelope.get("id")
        if not isinstance(message_type, str) or not isinstance(message_id, str):
            raise DecodeError("missing", "the envelope needs an `id` and a `type`, both strings")
        route = routes.get(message_type)
        if route is None:
            raise self._unknown(message_type)
        cls, upcasters = route
        payload = _parse_payload(envelope.get("payload"))
        for upcast in upcasters:
            try:
                payload = upcast(payload)
            except Exception as error:
                raise DecodeError(
                    "upcast_failed",
                    f"{handler_name(upcast)} failed on a {message_type} payload: {error!r}",
                ) from error
            if not isinstance(payload, dict):
                raise DecodeError(
                    "upcast_failed",
                    f"{handler_name(upcast)} returned {type(payload).__name__}, not a dict",
                )
        reserved = ENVELOPE_FIELDS.intersection(payload)
        if reserved:
            raise DecodeError(
                "invalid", f"the payload sets {sorted(reserved)}, which the envelope owns"
            )
        fields = _message_fields(envelope, payload, message_id)
        try:
            return cls.model_validate(fields)
        except pydantic.ValidationError as error:
            raise DecodeError(
                "invalid",
                f"{message_type} fails the validation of {cls.__name__}: {_summary(error)}",
            ) from None

    def _unknown(self, message_type: str) -> DecodeError:
        name, _, version = message_type.rpartition("_v")
        known = sorted(v for n, v in self._classes if n == name)
        if name and version.isdigit() and known:
            return DecodeError(
                "unknown_version",
                f"{name!r} version {version} is not registered (versions: {known}); "
                f"declare an upcaster from it, or register its class",
            )
        return DecodeError(
            "unknown_type",
            f"{message_type[:100]!r} is not a registered message type: register its class",
        )

    def _build_routes(self) -> dict[str, _Route]:
        if self._routes is not None:
            return self._routes
        routes: dict[str, _Route] = {
            f"{name}_v{version}": (cls, ()) for (name, version), cls in self._classes.items()
        }
        problems = []
        for name, from_version in sorted(self._upcasters):
            # Each upcaster must lead to a class, even one from a registered version
            # (unused while that class is registered, but wrong all the same).
            chain = [self._upcasters[name, from_version]]
            version = from_version + 1
            while (name, version) not in self._classes:
                upcast = self._upcasters.get((name, version))
                if upcast is None:
                    problems.append(_gap(name, from_version, version, self._classes))
                    break
                chain.append(upcast)
                version += 1
            else:
                routes.setdefault(
                    f"{name}_v{from_version}", (self._classes[name, version], tuple(chain))
                )
        if problems:
            raise ConfigurationError("The upcasters have gaps: " + "; ".join(problems))
        self._routes = routes
        return routes


def _gap(
    name: str,
    from_version: int,
    version: int,
    classes: Mapping[tuple[str, int], type[Message[Any]]],
) -> str:
    known = sorted(v for n, v in classes if n == name)
    if not known:
        return (
            f"{name!r} has an upcaster from version {from_version} but no registered class: "
            f"register the class the upcasters lead to"
        )
    return (
        f"{name!r} from version {from_version} reaches version {version}, which has neither "
        f"a registered class (registered: {known}) nor an upcaster: declare "
        f"@registry.upcaster({name!r}, from_version={version})"
    )


def _parse_envelope(body: bytes | str | Mapping[str, Any], max_size: int | None) -> dict[str, Any]:
    if isinstance(body, Mapping):
        return dict(body)
    if max_size is not None and len(body) > max_size:
        raise DecodeError(
            "too_large", f"the envelope is {len(body)} bytes, over the limit of {max_size}"
        )
    try:
        envelope = pydantic_core.from_json(body)
    except ValueError as error:
        raise DecodeError("malformed", f"the envelope is not JSON: {error}") from None
    if not isinstance(envelope, dict):
        raise DecodeError(
            "malformed", f"the envelope is a JSON {type(envelope).__name__}, not an object"
        )
    return envelope


def _parse_payload(payload: Any) -> dict[str, Any]:
    if isinstance(payload, str | bytes):
        try:
            payload = pydantic_core.from_json(payload)
        except ValueError as error:
            raise DecodeError("malformed", f"the payload is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise DecodeError(
            "malformed", f"the payload is {type(payload).__name__}, not a JSON object"
        )
    return payload


def _message_fields(
    envelope: dict[str, Any], payload: dict[str, Any], message_id: str
) -> dict[str, Any]:
    """Return the fields of the message: the payload's, and those the envelope carries."""
    fields = dict(payload, message_id=message_id)
    if "created_at" in envelope:
        fields["created_at"] = envelope["created_at"]
    for key in _NULLABLE_KEYS:
        if envelope.get(key) is not None:
            fields[key] = envelope[key]
    return fields


def _merge_header(envelope: dict[str, Any], key: str, header: str, value: str) -> None:
    if key not in envelope or (key in _NULLABLE_KEYS and envelope[key] is None):
        envelope[key] = value
    elif str(envelope[key]) != value:
        raise DecodeError(
            "conflict",
            f"the {header!r} header ({value[:100]!r}) disagrees with the envelope's "
            f"{key!r} ({str(envelope[key])[:100]!r})",
        )


def _summary(error: pydantic.ValidationError) -> str:
    parts = [
        f"{'.'.join(str(loc) for loc in item['loc']) or '(root)'}: {item['msg']}"
        for item in error.errors()[:3]
    ]
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
