"""Run the cookbook chapters as tests: every block of every chapter is checked.

A chapter is a MyST Markdown file, ``NN-name.md``. Sybil cuts it into blocks and
runs them in order, in one namespace per chapter:

- a ```` ```{code-block} ```` (of any language) whose caption is a file path, such
  as ``:caption: reading_club/domain/model.py``, is *written* to that path of the
  chapter's scratch project; a later block with the same caption replaces the
  whole file, so a chapter always shows a file in full (``:emphasize-lines:``
  points the reader at what changed);
- a ```` ```python ```` block, visible or in an ``<!-- invisible-code-block: python``
  comment, is run; top-level ``await`` works, as in ``python -m asyncio``;
- a ```` ```{code-block} text ```` block captioned ``Output`` must be exactly what
  the Python block before it printed;
- any other block (``bash``, a plain ``text``) is shown and not run.

The scratch project is a temporary folder put on ``sys.path``. Before a chapter's
first block, the files of every earlier chapter are written to it, so a chapter
starts where the previous one ended and passes when run alone
(``pytest cookbook/05-bus.md``). Invisible blocks reach the project as ``project``:
``project.run_pytest("tests/test_model.py")`` runs the app's own tests in it.
"""

from __future__ import annotations

import ast
import asyncio
import difflib
import importlib
import inspect
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from sybil import Document, Example, Region, Sybil
from sybil.evaluators.python import pad
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, FencedCodeBlockLexer
from sybil.parsers.myst.lexers import DirectiveLexer

COOKBOOK = Path(__file__).parent
CHAPTER_PATTERN = "[0-9][0-9]-*.md"
# A caption that is a relative file path, such as ``tests/test_model.py``.
FILE_CAPTION = re.compile(r"[\w.-]+(/[\w.-]+)*\.\w+")


def chapters() -> list[Path]:
    """Return the chapter files in reading order."""
    return sorted(COOKBOOK.glob(CHAPTER_PATTERN))


class ScratchProject:
    """The folder a chapter builds the app in, and what its blocks share.

    :param root: an empty folder; it is put first on ``sys.path`` by :meth:`open`.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runner = asyncio.Runner()  # one event loop for all blocks of a chapter
        self.last_output = ""

    def write(self, relative_path: str, text: str) -> None:
        """Write a file of the app and make the next import read it."""
        path = self.root / relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        # A rewrite can keep the size and the mtime second of the old file: drop its
        # bytecode, and the modules already imported, so that nothing stale is used.
        shutil.rmtree(path.parent / "__pycache__", ignore_errors=True)
        self.forget_modules()
        importlib.invalidate_caches()

    def forget_modules(self) -> None:
        """Remove from ``sys.modules`` every module imported from this project."""
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None)
            if file and Path(file).is_relative_to(self.root):
                del sys.modules[name]

    def open(self, chapter: Path) -> None:
        """Write the files of the chapters before ``chapter`` and put them on ``sys.path``."""
        for earlier in chapters():
            if earlier.name >= chapter.name:
                break
            for relative_path, text in files_of(earlier):
                self.write(relative_path, text)
        sys.path.insert(0, str(self.root))

    def close(self) -> None:
        """Take the project off ``sys.path`` and out of ``sys.modules``."""
        self.runner.close()
        sys.path.remove(str(self.root))
        self.forget_modules()

    def run_pytest(self, *args: str) -> PytestRun:
        """Run pytest on the app in a fresh interpreter, as a reader would in its folder."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return PytestRun(completed.returncode, completed.stdout + completed.stderr)


@dataclass
class PytestRun:
    """The result of :meth:`ScratchProject.run_pytest`: its exit code and its output."""

    returncode: int
    output: str

    def count(self, outcome: str) -> int:
        """How many tests had ``outcome`` (``passed``, ``failed``, ``error``...)."""
        summary = self.output.strip().splitlines()[-1]
        match = re.search(rf"(\d+) {outcome}", summary)
        return int(match.group(1)) if match else 0


# Parsing: the three kinds of blocks.


def code_blocks(document: Document) -> Iterator[Region]:
    """Yield every code block of a MyST document with its language, options and source."""
    lexers = [
        FencedCodeBlockLexer(r"\w+", mapping={"language": "arguments", "source": "source"}),
        DirectiveLexer(directive="code-block", arguments=r"\w+"),
        DirectiveInHTMLCommentLexer(directive="invisible-code-block", arguments=r"\w+"),
    ]
    for lexer in lexers:
        yield from lexer(document)


def file_caption(region: Region) -> str | None:
    """Return the file path a block is written to, or ``None`` if it is not a file."""
    caption = region.lexemes.get("options", {}).get("caption", "")
    # A caption is Markdown: ``\_\_init\_\_.py`` is how it shows ``__init__.py``.
    caption = caption.replace("\\", "")
    return caption if FILE_CAPTION.fullmatch(caption) else None


def files_of(chapter: Path) -> list[tuple[str, str]]:
    """Return the ``(path, text)`` of the files a chapter writes, in order."""
    document = Document.parse(str(chapter), parse_chapter)
    return [
        (region.parsed[0], region.parsed[1])
        for _, region in document.regions
        if region.evaluator is write_file
    ]


def parse_chapter(document: Document) -> Iterable[Region]:
    """Find the blocks of a chapter and give each the evaluator of its kind."""
    for region in code_blocks(document):
        source = region.lexemes["source"]
        options = region.lexemes.get("options", {})
        path = file_caption(region)
        if path is not None:
            region.parsed, region.evaluator = (path, str(source)), write_file
        elif region.lexemes["arguments"] == "python":
            region.parsed, region.evaluator = source, run_python
        elif options.get("caption") == "Output":
            region.parsed, region.evaluator = source, check_output
        else:
            continue  # shell commands, diffs: shown, not run
        yield region


# Evaluating: what each kind of block does.


def write_file(example: Example) -> None:
    """Write a file block to the chapter's scratch project."""
    path, text = example.parsed
    example.namespace["project"].write(path, text)


def run_python(example: Example) -> None:
    """Run a Python block in the chapter's namespace; record what it printed."""
    project: ScratchProject = example.namespace["project"]
    source = pad(example.parsed, example.line + example.parsed.line_offset)
    code = compile(
        source, example.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            result = eval(code, example.namespace)
            if inspect.iscoroutine(result):  # the block has a top-level await
                project.runner.run(result)
    finally:
        example.namespace.pop("__builtins__", None)
        project.last_output = printed.getvalue()
        print(project.last_output, end="")  # for pytest to show if the chapter fails


def check_output(example: Example) -> str | None:
    """Compare an output block with what the previous Python block printed."""
    expected = example.parsed.rstrip()
    actual = example.namespace["project"].last_output.rstrip()
    if expected == actual:
        return None
    diff = difflib.unified_diff(
        expected.splitlines(), actual.splitlines(), "shown", "printed", lineterm=""
    )
    return "The output shown is not what the code printed:\n" + "\n".join(diff)


@pytest.fixture(scope="module")
def project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScratchProject]:
    """Give a chapter its own scratch project, holding the files of the earlier chapters."""
    chapter = Path(request.path)
    scratch = ScratchProject(tmp_path_factory.mktemp(chapter.stem))
    scratch.open(chapter)
    yield scratch
    scratch.close()


pytest_collect_file = Sybil(
    parsers=[parse_chapter],
    patterns=[CHAPTER_PATTERN],
    fixtures=["project"],
).pytest()
