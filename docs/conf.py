"""Sphinx configuration of the messagebus documentation (MyST Markdown, furo theme).

Built by ``nox -s docs`` with ``-n -W``: every reference must resolve, every warning fails.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.errors import PycodeError
from sphinx.pycode import ModuleAnalyzer

import messagebus

DOCS = Path(__file__).parent

project = "messagebus"
author = "The messagebus developers"
copyright = "the messagebus developers"
release = messagebus.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.graphviz",
    "sphinx.ext.viewcode",
]

# The diagrams are Graphviz sources beside the pages (docs/diagrams/*.dot), drawn as SVG at
# build time by the `dot` program: no network, no JavaScript.
graphviz_output_format = "svg"

source_suffix = {".md": "markdown"}
root_doc = "index"
# Only the pages of the site: the cookbook folder (a symlink to ../cookbook) also holds
# the tutorial's helpers and scratch files, which are not pages.
include_patterns = [
    "*.md",
    "howto/*.md",
    "api/*.md",
    "cookbook/index.md",
    "cookbook/[0-9][0-9]-*.md",
]
exclude_patterns = ["_build"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"messagebus {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = True

nitpicky = True
# What no page of this site documents and no inventory supplies: the build is offline, so
# intersphinx cannot fetch the inventories of Python, SQLAlchemy and prometheus_client.
nitpick_ignore_regex = [
    # The standard library, in signatures and docstrings.
    (
        r"py:(class|exc|meth|func|data)",
        r"(abc|asyncio|collections\.abc|contextlib|datetime|enum|logging|pathlib|types"
        r"|typing|uuid)\..*",
    ),
    # SQLAlchemy's engines, connections, tables and errors, in the SQL adapter's signatures.
    (r"py:(class|exc)", r"sqlalchemy\..*"),
    (r"py:class", r"prometheus_client\..*"),
    (r"py:class", r"opentelemetry\..*"),
    # pytest's request object, in the signature of a fixture of messagebus.testing.
    (r"py:class", r"_pytest\..*"),
]
nitpick_ignore = [
    # Private type variables, shown in signatures: a TypeVar is not a documented object.
    ("py:class", "messagebus.ports.observability.TMetricsStore"),
    ("py:class", "messagebus.service._async.repository.TModel"),
    ("py:class", "messagebus.service._sync.repository.TModel"),
    ("py:class", "messagebus.service._types.TAsyncHandler"),
    ("py:class", "messagebus.service._types.TSyncHandler"),
    ("py:class", "messagebus.service.messages.TMessageClass"),
    ("py:class", "messagebus.adapters.opentelemetry.TTarget"),
]


def _public_names() -> dict[str, str]:
    names: dict[str, str] = {}
    # Later modules win: a name both in messagebus and messagebus.typing is the former's.
    for module_name in ("messagebus.adapters.prometheus", "messagebus.typing", "messagebus"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # the extra is not installed: its page says so
            continue
        names.update({name: f"{module_name}.{name}" for name in module.__all__})
    return names


PUBLIC_NAMES = _public_names()


def resolve_public_name(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.TextElement
) -> nodes.reference | None:
    """Point ``messagebus.<private module>.Name`` at the documented ``messagebus.Name``.

    Signatures name a class by the module that defines it (``messagebus.service._async
    .registry.AsyncMessageBus``); the reference documents it where users import it.
    """
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("messagebus."):
        return None
    # A parametrized base class (``GenericCommand[Metadata]``) links to the generic class.
    public = PUBLIC_NAMES.get(target.partition("[")[0].rpartition(".")[2])
    if public is None or public == target:
        return None
    return env.get_domain("py").resolve_xref(  # type: ignore[no-any-return]
        env, node["refdoc"], app.builder, node["reftype"], public, node, contnode
    )


# pydantic's InstanceOf validator, which keeps each event's own class in
# ``GenericModel.messages``, is shown by its static type: ``list[Message]``.
INSTANCE_OF = re.compile(r"~?[\w.]*Annotated\[([^,\[\]]+), ~?[\w.]*InstanceOf\(\)\]")


def simplify_signature(  # noqa: PLR0917 - the signature of Sphinx's event
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: object,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None]:
    """Show the static type of fields validated with pydantic's ``InstanceOf``."""
    if signature:
        signature = INSTANCE_OF.sub(r"\1", signature)
    return signature, return_annotation


def alias_docstring(  # noqa: PLR0917 - the signature of Sphinx's event
    app: Sphinx, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    """Give a public alias documented in its own module (``MessageId``) its docstring.

    ``MessageId = NewType(...)`` is documented by the string that follows it in the module
    that defines it; autodoc, documenting ``messagebus.MessageId``, would show the docstring
    of ``NewType`` instead.
    """
    short = name.rpartition(".")[2]
    module = getattr(obj, "__module__", None)
    if what != "data" or not module or not name.startswith("messagebus."):
        return
    try:
        attribute_docs = ModuleAnalyzer.for_module(module).find_attr_docs()
    except PycodeError:
        return
    doc = attribute_docs.get(("", short))
    if doc:
        lines[:] = list(doc)


def setup(app: Sphinx) -> dict[str, Any]:
    """Wire the reference fallback and the signature and docstring fixes."""
    app.connect("missing-reference", resolve_public_name)
    app.connect("autodoc-process-signature", simplify_signature)
    app.connect("autodoc-process-docstring", alias_docstring)
    return {"parallel_read_safe": True}
