"""The ``messagebus`` command (also ``python -m messagebus``); its one command is ``schema``.

``messagebus schema TARGET...`` writes the JSON Schema of every message of the targets and
an AsyncAPI document, to standard output or to a folder (``--out``), and checks the
published messages against a committed snapshot (``--check``). A target is
``module:attribute`` naming a bus, a :class:`~messagebus.MessageRegistry` or a consumer
(its registry), or ``module``: the message classes that module defines. See
:mod:`messagebus.schemas` for what each schema covers.

.. versionadded:: 0.17
"""

import argparse
import functools
import importlib
import inspect
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from messagebus.domain.model import Message
from messagebus.schemas import (
    asyncapi_document,
    check_snapshot,
    dumps,
    message_schemas,
    write_schemas,
)
from messagebus.service.errors import ConfigurationError
from messagebus.service.messages import MessageRegistry

__all__ = ["load_messages", "main"]


def load_messages(*targets: str) -> MessageRegistry:
    """Return a registry of the message classes the targets name.

    :param targets: ``module:attribute`` for a bus (the messages it has handlers for), a
        :class:`~messagebus.MessageRegistry` or an object with a ``registry`` (a
        consumer); ``module`` alone for every message class defined in that module.
    :raises ConfigurationError: a target cannot be imported or holds no messages, or two
        classes share a name and version.
    """
    # Like `python -m`, let the targets live in the current directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    registry = MessageRegistry()
    for target in targets:
        module_name, _, attribute = target.partition(":")
        try:
            module = importlib.import_module(module_name)
            found: Any = (
                functools.reduce(getattr, attribute.split("."), module) if attribute else module
            )
        except (ImportError, AttributeError) as error:
            raise ConfigurationError(f"cannot load {target}: {error}") from None
        if isinstance(getattr(found, "registry", None), MessageRegistry):
            found = found.registry
        if isinstance(found, MessageRegistry):
            for cls in found.classes():
                registry.register(cls)
        elif hasattr(found, "commands_registry") and hasattr(found, "events_registry"):
            registry.register_bus(found)
        elif inspect.ismodule(found):
            for cls in vars(found).values():
                if _defined_message_class(cls, found.__name__):
                    registry.register(cls)
        else:
            raise ConfigurationError(
                f"{target} is a {type(found).__name__}: name a bus, a MessageRegistry, a "
                f"consumer, or a module that defines message classes"
            )
    if not len(registry):
        raise ConfigurationError(
            f"{' '.join(targets)} holds no message classes: a bus knows only the messages "
            f"it has handlers for; name the module that defines them"
        )
    return registry


def _defined_message_class(value: Any, module_name: str) -> bool:
    if not (isinstance(value, type) and issubclass(value, Message)):
        return False
    metadata = value.model_fields["metadata"].default
    return value.__module__ == module_name and hasattr(metadata, "schema_version")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return its exit status (0 ok, 1 a changed schema, 2 a usage error)."""
    parser = argparse.ArgumentParser(prog="messagebus", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    schema = commands.add_parser(
        "schema",
        help="write the messages' JSON Schemas and AsyncAPI document, check a snapshot",
        description="Write the JSON Schema of every message and an AsyncAPI 3.0 document of "
        "what the service sends (its published messages) and receives (--consumes).",
    )
    schema.add_argument("targets", nargs="+", metavar="TARGET", help="module:attribute or module")
    schema.add_argument(
        "--consumes", nargs="+", default=[], metavar="TARGET", help="what the service reads"
    )
    schema.add_argument("--out", type=Path, help="write NAME_vN.json and asyncapi.json here")
    schema.add_argument(
        "--check", type=Path, metavar="SNAPSHOT", help="fail if a published schema differs"
    )
    schema.add_argument("--update", action="store_true", help="with --check: write new schemas")
    schema.add_argument("--title", default="messagebus service", help="the AsyncAPI info.title")
    schema.add_argument("--api-version", default="0.0.0", help="the AsyncAPI info.version")
    schema.add_argument("--destination", default="messagebus", help="the default channel")
    schema.add_argument(
        "--route", action="append", default=[], metavar="TYPE=DEST", help="a message's channel"
    )
    args = parser.parse_args(argv)
    if args.out is not None and args.check is not None:
        parser.error("--out writes the schemas, --check compares them: run one at a time")
    if args.update and args.check is None:
        parser.error("--update writes new schemas to the snapshot: give it with --check SNAPSHOT")
    routes = dict(route.partition("=")[::2] for route in args.route)
    if any(not type_ or not where for type_, where in routes.items()):
        parser.error("--route takes TYPE=DESTINATION, for example book_registered=books")
    try:
        messages = load_messages(*args.targets)
        consumes = load_messages(*args.consumes) if args.consumes else MessageRegistry()
        if args.check is not None:
            return _check(messages, args.check, update=args.update)
        schemas = message_schemas(messages)
        document = asyncapi_document(
            messages,
            consumes,
            title=args.title,
            version=args.api_version,
            destination=args.destination,
            routes=routes,
        )
    except ConfigurationError as error:
        print(f"messagebus schema: {error}", file=sys.stderr)
        return 2
    if args.out is None:
        by_type = {f"{name}_v{version}": s for (name, version), s in sorted(schemas.items())}
        sys.stdout.write(dumps({"schemas": by_type, "asyncapi": document}))
        return 0
    written = write_schemas(schemas, args.out)
    (args.out / "asyncapi.json").write_text(dumps(document), encoding="utf-8")
    print(f"wrote {len(written)} schemas and asyncapi.json to {args.out}")
    return 0


def _check(messages: MessageRegistry, snapshot: Path, *, update: bool) -> int:
    before = set(snapshot.glob("*.json")) if snapshot.is_dir() else set()
    problems = check_snapshot(messages, snapshot, update=update)
    for problem in problems:
        print(problem, file=sys.stderr)
    written = sorted(set(snapshot.glob("*.json")) - before) if snapshot.is_dir() else []
    for path in written:
        print(f"new: {path}")
    if problems:
        return 1
    print(f"the published messages match {snapshot}")
    return 0
