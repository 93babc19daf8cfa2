"""Run the examples of the documentation as tests, with sybil.

Two collectors:

- the Markdown pages of ``docs/``: their blocks run in order, in one namespace per page, as
  ``docs_testing`` describes (top-level ``await`` works, as in ``python -m asyncio``);
  ``<!-- invisible-code-block: python -->`` blocks run without being shown (they check what
  the page says) and ``<!-- skip: next -->`` skips a block;
- the docstrings of the package: ``>>>`` examples run as doctests.

The cookbook is not collected here: ``cookbook/conftest.py`` runs it (``docs/cookbook`` is a
link to it, for the Sphinx site only).
"""

from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

from sybil import Sybil
from sybil.parsers.myst import SkipParser
from sybil.parsers.rest import DocTestParser

import docs_testing

# Not tests: the Sphinx configuration, the built site, and the cookbook seen through the link.
collect_ignore = ["docs/conf.py", "docs/_build", "docs/cookbook"]

docs = Sybil(
    name="docs",
    parsers=[docs_testing.parse_blocks, SkipParser()],
    path="docs",
    patterns=["*.md"],
    excludes=["cookbook/*", "_build/*"],
    document_types={".md": docs_testing.PageDocument},
    setup=docs_testing.open_page,
    teardown=docs_testing.close_page,
)

docstrings = Sybil(
    name="docstrings",
    parsers=[DocTestParser(optionflags=ELLIPSIS | NORMALIZE_WHITESPACE)],
    path="messagebus",
    patterns=["*.py"],
)

pytest_collect_file = (docs + docstrings).pytest()
