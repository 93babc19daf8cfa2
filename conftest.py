"""Run the examples of the documentation as tests, with sybil.

Two collectors:

- the Markdown pages of ``docs/``: every ```` ```python ```` block runs, in order, in one
  namespace per page; ``<!-- invisible-code-block: python -->`` blocks run without being
  shown (they check what the page claims) and ``<!-- skip: next -->`` skips a block.
  Top-level ``await`` works, as in ``python -m asyncio``;
- the docstrings of the package: ``>>>`` examples run as doctests.

The cookbook is not collected here: ``cookbook/conftest.py`` runs it (``docs/cookbook`` is a
link to it, for the Sphinx site only).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import sys
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE
from pathlib import Path
from types import ModuleType
from typing import Any

from sybil import Document, Example, Sybil
from sybil.evaluators.python import pad
from sybil.parsers.myst import CodeBlockParser, PythonCodeBlockParser, SkipParser
from sybil.parsers.rest import DocTestParser

# Not tests: the Sphinx configuration, the built site, and the cookbook seen through the link.
collect_ignore = ["docs/conf.py", "docs/_build", "docs/cookbook"]


class PageDocument(Document):
    """A documentation page whose blocks run as the body of a module of their own.

    Classes and functions defined on the page then belong to a real module, as in a
    script: pydantic resolves their annotations and ``bus.scan(__name__)`` finds handlers.
    """

    def __init__(self, text: str, path: str) -> None:
        super().__init__(text, path)
        relative = Path(path).resolve().relative_to(Path(__file__).parent / "docs")
        # docs/howto/from-0.16.md runs as the module docs_howto_from_0_16
        name = re.sub(r"\W", "_", "_".join(("docs", *relative.with_suffix("").parts)))
        module = ModuleType(name)
        module.__file__ = path
        self.namespace = module.__dict__
        PAGES[module.__name__] = module


PAGES: dict[str, ModuleType] = {}
"""The module of each page, by name, to put in ``sys.modules`` while the page runs."""


def awaiting_evaluator(example: Example) -> None:
    """Run a Python block; a block with top-level ``await`` runs on the page's event loop."""
    __tracebackhide__ = True
    source = pad(example.parsed, example.line + example.parsed.line_offset)
    code = compile(source, example.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if code.co_flags & inspect.CO_COROUTINE:
        example.namespace["__runner__"].run(eval(code, example.namespace))
    else:
        exec(code, example.namespace)


def open_page(namespace: dict[str, Any]) -> None:
    """Register the page's module and give it an event loop."""
    sys.modules[namespace["__name__"]] = PAGES[namespace["__name__"]]
    namespace["__runner__"] = asyncio.Runner()


def close_page(namespace: dict[str, Any]) -> None:
    """Close the page's event loop and forget its module."""
    namespace.pop("__runner__").close()
    sys.modules.pop(namespace["__name__"], None)


class MarkdownPythonParser(PythonCodeBlockParser):
    """MyST ```` ```python ```` blocks and ``>>>`` sessions, with top-level ``await``."""

    def __init__(self) -> None:
        super().__init__(doctest_optionflags=ELLIPSIS | NORMALIZE_WHITESPACE)
        self.codeblock_parser = CodeBlockParser("python", awaiting_evaluator)


docs = Sybil(
    name="docs",
    parsers=[MarkdownPythonParser(), SkipParser()],
    path="docs",
    patterns=["*.md"],
    excludes=["cookbook/*", "_build/*"],
    document_types={".md": PageDocument},
    setup=open_page,
    teardown=close_page,
)

docstrings = Sybil(
    name="docstrings",
    parsers=[DocTestParser(optionflags=ELLIPSIS | NORMALIZE_WHITESPACE)],
    path="messagebus",
    patterns=["*.py"],
)

pytest_collect_file = (docs + docstrings).pytest()
