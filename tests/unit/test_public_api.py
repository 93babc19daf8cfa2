"""The names users of the PyPI messagebus 0.16 import are all here, documented."""

import ast
import importlib
import inspect
import itertools
import re
from pathlib import Path
from typing import TypeVar

import pytest

import messagebus

# The `__all__` of messagebus 0.16.1 on PyPI.
PYPI_0_16_NAMES = [
    "AbstractMessageSerializer",
    "AsyncAbstractEventstreamTransport",
    "AsyncAbstractRepository",
    "AsyncAbstractUnitOfWork",
    "TAsyncMessageStore",
    "AsyncAbstractMessageStoreRepository",
    "AsyncEventstreamPublisher",
    "AsyncMessageBus",
    "AsyncSinkholeMessageStoreRepository",
    "AsyncSinkholeEventstreamTransport",
    "AsyncUnitOfWorkTransaction",
    "Command",
    "Event",
    "Field",
    "GenericCommand",
    "GenericEvent",
    "GenericModel",
    "Message",
    "TMetadata",
    "Metadata",
    "Model",
    "SyncAbstractEventstreamTransport",
    "SyncAbstractRepository",
    "SyncAbstractUnitOfWork",
    "TSyncMessageStore",
    "SyncAbstractMessageStoreRepository",
    "SyncEventstreamPublisher",
    "SyncMessageBus",
    "SyncSinkholeMessageStoreRepository",
    "SyncSinkholeEventstreamTransport",
    "SyncUnitOfWorkTransaction",
    "TransactionStatus",
    "async_listen",
    "sync_listen",
    "AsyncDependency",
    "SyncDependency",
]

# Module paths of 0.16 that users import errors and helpers from.
PYPI_0_16_PATHS = [
    ("messagebus.domain.model", "Metadata"),
    ("messagebus.domain.model.transaction", "TransactionError"),
    ("messagebus.service._async.registry", "ConfigurationError"),
    ("messagebus.service._sync.registry", "ConfigurationError"),
    ("messagebus.service._async.dependency", "MissingDependencyError"),
    ("messagebus.service._sync.dependency", "MissingDependencyError"),
    ("messagebus.service.eventstream", "MessageSerializer"),
    ("messagebus.ports.observability", "AbstractMetricsStore"),
    ("messagebus.adapters.prometheus.metrics_store", "MetricsStore"),
    ("messagebus.typing", "AsyncMessageHandler"),
]


@pytest.mark.parametrize("name", PYPI_0_16_NAMES)
def test_every_name_of_pypi_0_16_is_exported(name: str) -> None:
    assert name in messagebus.__all__
    assert hasattr(messagebus, name)


@pytest.mark.parametrize(("module", "name"), PYPI_0_16_PATHS)
def test_pypi_0_16_module_paths_still_work(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name)


def attribute_docstrings() -> set[str]:
    """Return the names bound in the package with a docstring right after the binding.

    That is how a module documents what has no docstring of its own: a type alias, a
    type variable, a re-exported function (``Field = ...`` then a string).
    """
    names: set[str] = set()
    for path in Path(messagebus.__file__).parent.rglob("*.py"):
        body = ast.parse(path.read_text()).body
        for statement, following in itertools.pairwise(body):
            documented = (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
                and following.value.value.strip()
            )
            if not documented:
                continue
            if isinstance(statement, ast.Assign):
                names |= {t.id for t in statement.targets if isinstance(t, ast.Name)}
            elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                names.add(statement.target.id)
            elif isinstance(statement, ast.ImportFrom):
                names |= {alias.asname or alias.name for alias in statement.names}
    return names


def written_in_the_api_reference() -> set[str]:
    """Return the names the API reference documents by hand (``.. py:function::`` + text).

    That is how a name re-exported from another library gets documentation of ours.
    """
    docs = Path(messagebus.__file__).parent.parent / "docs" / "api"
    text = "\n".join(page.read_text() for page in docs.glob("*.md"))
    entries = re.findall(r"^\.\. py:\w+:: messagebus\.(\w+).*\n\n?   \S", text, re.MULTILINE)
    return set(entries)


def own_docstring(obj: object) -> str | None:
    """Return the docstring ``obj`` itself has, not the one of its class or of a parent."""
    if isinstance(obj, type):
        doc = vars(obj).get("__doc__")
        return doc if isinstance(doc, str) else None
    if inspect.isfunction(obj) and obj.__module__.startswith("messagebus"):
        return obj.__doc__
    return None  # an instance (a TypeVar, a NewType) or a third-party function


@pytest.mark.parametrize("name", sorted(set(messagebus.__all__) - {"__version__"}))
def test_every_public_name_has_its_own_documentation(name: str) -> None:
    doc = own_docstring(getattr(messagebus, name))
    assert (
        (doc and doc.strip())
        or name in attribute_docstrings()
        or name in written_in_the_api_reference()
    ), (
        f"{name} has no documentation of its own: give it a docstring, put one right "
        f"after the line that binds it, or write its entry in docs/api"
    )


def test_an_inherited_docstring_is_not_documentation() -> None:
    class Undocumented(messagebus.Command):
        pass

    alias = TypeVar("alias")
    assert None is own_docstring(Undocumented)  # pydantic gives it BaseModel's
    assert None is own_docstring(alias)  # TypeVar's own class docstring
    assert None is own_docstring(messagebus.Field)  # pydantic's, not ours
    assert "MessageId" in attribute_docstrings()
    assert "Undocumented" not in attribute_docstrings()
    assert "Field" in written_in_the_api_reference()
    assert "Command" not in written_in_the_api_reference()  # autodoc: its own docstring


def test_every_async_name_has_a_sync_twin() -> None:
    for name in messagebus.__all__:
        if name.startswith("Async"):
            assert "Sync" + name[5:] in messagebus.__all__
        if name.startswith("TAsync"):
            assert "TSync" + name[6:] in messagebus.__all__
