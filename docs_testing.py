"""Run the documentation as tests, with sybil: the evaluators, the chapter parser, the files.

The root ``conftest.py`` (the pages of ``docs/``) and ``cookbook/conftest.py`` (the chapters)
wire these into sybil in a few lines; ``cookbook/export.py`` reads the chapters' files with
:func:`files_of`. What a block does depends on its kind:

- a ```` ```python ```` block, visible or in an ``<!-- invisible-code-block: python`` comment,
  runs in the page's namespace, as if typed into ``python -m asyncio``: top-level ``await``
  works, and what it prints (standard output, standard error, the warnings that logging prints
  when nothing is configured) is kept for the next ``Output`` block;
- a ```` ```{code-block} console ```` block holds commands, each after a ``$ ``; a ``python``
  command is run in the page's folder and what it prints is kept as well;
- a ```` ```{code-block} text ```` block captioned ``Output`` must be what the block before
  printed, where a ``...`` stands for any text (as in a doctest);
- in a cookbook chapter, a ```` ```{code-block} ```` whose caption is a file path, such as
  ``:caption: reading_club/domain/model.py``, is *written* to that path of the chapter's
  scratch project, replacing the whole file;
- any other block (``bash``, a plain ``text``) is shown and not run.
"""

from __future__ import annotations

import ast
import asyncio
import codeop
import difflib
import doctest
import importlib
import inspect
import io
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sybil import Document, Example, Region
from sybil.evaluators.python import pad
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, FencedCodeBlockLexer
from sybil.parsers.myst.lexers import DirectiveLexer

CONSOLE = "__console__"
"""The key of the page's :class:`Console` in the namespace its blocks share."""

CHAPTER_PATTERN = "[0-9][0-9]-*.md"
# A caption that is a relative file path, such as ``tests/test_model.py``.
FILE_CAPTION = re.compile(r"[\w.-]+(/[\w.-]+)*\.\w+")


class Console:
    """What the blocks of one page share: an event loop, a folder, the last thing printed.

    :param folder: where ``console`` commands run.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runner = asyncio.Runner()  # one event loop for all blocks, as in one console
        self.last_output = ""

    def close(self) -> None:
        """Close the event loop."""
        self.runner.close()

    def run_command(self, command: str) -> subprocess.CompletedProcess[str]:
        """Run a ``python ...`` command line in :attr:`folder`, as a reader would."""
        words = shlex.split(command)
        if words[0] not in {"python", "python3"}:
            raise ValueError(f"{command!r}: only python commands run here; show it as bash")
        # pytest passes its state to children through PYTEST_* variables: a fresh run is wanted.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        return subprocess.run(
            [sys.executable, *words[1:]],
            cwd=self.folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # interleaved, as in a terminal
            text=True,
            check=False,
        )


def open_console(namespace: dict[str, Any]) -> None:
    """Give a page a :class:`Console` in the folder of the page."""
    namespace[CONSOLE] = Console(Path(namespace["__file__"]).parent)


def close_console(namespace: dict[str, Any]) -> None:
    """Close the page's :class:`Console`."""
    namespace.pop(CONSOLE).close()


# Evaluating: what each kind of block does.


def run_python(example: Example) -> None:
    """Run a Python block as the console would; keep what it printed."""
    __tracebackhide__ = True
    console: Console = example.namespace[CONSOLE]
    if isinstance(console, ScratchProject) and "project.restart(" not in example.parsed:
        console.check_fresh()
    source = pad(example.parsed, example.line + example.parsed.line_offset)
    # dont_inherit: the `from __future__` imports of this module must not leak into the page.
    code = compile(
        source, example.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    printed = io.StringIO()
    # A fresh console has no logging handler: a warning goes to stderr through
    # logging.lastResort. pytest puts its own handlers on the root logger; set them aside.
    root = logging.getLogger()
    handlers, root.handlers = root.handlers, []
    try:
        with redirect_stdout(printed), redirect_stderr(printed):
            result = eval(code, example.namespace)
            if inspect.iscoroutine(result):  # the block has a top-level await
                console.runner.run(result)
    finally:
        root.handlers = handlers
        example.namespace.pop("__builtins__", None)  # eval() adds it; the page did not
        console.last_output = printed.getvalue()
        print(console.last_output, end="")  # for pytest to show if the page fails


def run_pasted_python(example: Example) -> None:
    """Run a Python block the reader sees, after checking that it can be pasted as it is."""
    __tracebackhide__ = True
    problem = paste_problem(str(example.parsed))
    if problem is not None:
        raise SyntaxError(f"this block fails when pasted into the console: {problem}")
    run_python(example)


def paste_problem(source: str) -> str | None:
    """Say why ``source`` fails when pasted into ``python -m asyncio``, or return ``None``.

    The console compiles the lines it has read after each one, as a single statement: a
    blank line ends the statement, even inside a class body, and a statement after an
    indented block needs a blank line before it.
    """
    compiler = codeop.CommandCompiler()
    compiler.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    lines: list[str] = []
    for number, line in enumerate([*source.splitlines(), ""], start=1):
        lines.append(line)
        try:
            code = compiler("\n".join(lines), "<console>", "single")
        except SyntaxError as error:
            return f"line {number}, {error.msg}: {line.strip()!r}"
        if code is not None:
            lines = []
    return None


def run_console(example: Example) -> None:
    """Run the ``$ python ...`` commands of a console block; keep what they printed."""
    console: Console = example.namespace[CONSOLE]
    outputs = [console.run_command(command).stdout for command in example.parsed]
    console.last_output = "".join(outputs)
    print(console.last_output, end="")


def check_output(example: Example) -> str | None:
    """Compare an output block with what the block before it printed (``...``: anything)."""
    expected = example.parsed.rstrip() + "\n"
    actual = example.namespace[CONSOLE].last_output.rstrip() + "\n"
    if doctest.OutputChecker().check_output(expected, actual, doctest.ELLIPSIS):
        return None
    diff = difflib.unified_diff(
        expected.splitlines(), actual.splitlines(), "shown", "printed", lineterm=""
    )
    return "The output shown is not what the code printed:\n" + "\n".join(diff)


# Parsing: the kinds of blocks.


def code_blocks(document: Document) -> Iterator[Region]:
    """Yield every code block of a MyST document with its language, options and source."""
    lexers = [
        FencedCodeBlockLexer(r"\w+", mapping={"language": "arguments", "source": "source"}),
        DirectiveLexer(directive="code-block", arguments=r"\w+"),
        DirectiveInHTMLCommentLexer(directive="invisible-code-block", arguments=r"\w+"),
    ]
    for lexer in lexers:
        for region in lexer(document):
            region.lexemes["visible"] = not isinstance(lexer, DirectiveInHTMLCommentLexer)
            yield region


def console_commands(source: str) -> list[str]:
    """Return the commands of a console block: each after a ``$ ``; a backslash continues."""
    joined = re.sub(r"\\\n\s*", " ", str(source))
    return [line[2:] for line in joined.splitlines() if line.startswith("$ ")]


def file_caption(region: Region) -> str | None:
    """Return the file path a block is written to, or ``None`` if it is not a file."""
    caption = region.lexemes.get("options", {}).get("caption", "")
    # A caption is Markdown: ``\_\_init\_\_.py`` is how it shows ``__init__.py``.
    caption = caption.replace("\\", "")
    return caption if FILE_CAPTION.fullmatch(caption) else None


def parse_blocks(document: Document) -> Iterable[Region]:
    """Find the blocks of a page or chapter and give each the evaluator of its kind."""
    for region in code_blocks(document):
        source = region.lexemes["source"]
        options = region.lexemes.get("options", {})
        language = region.lexemes["arguments"]
        path = file_caption(region)
        if path is not None:
            region.parsed, region.evaluator = (path, str(source)), write_file
        elif language == "python" and region.lexemes["visible"]:
            region.parsed, region.evaluator = source, run_pasted_python
        elif language == "python":
            region.parsed, region.evaluator = source, run_python
        elif language == "console":
            region.parsed, region.evaluator = console_commands(source), run_console
        elif options.get("caption") == "Output":
            region.parsed, region.evaluator = str(source), check_output
        else:
            continue  # shell commands to type by hand, diffs: shown, not run
        yield region


def write_file(example: Example) -> None:
    """Write a file block to the chapter's scratch project."""
    path, text = example.parsed
    project = example.namespace[CONSOLE]
    if not isinstance(project, ScratchProject):
        raise TypeError(f"{path}: a block captioned with a file path belongs in a chapter")
    project.write(path, text)


# The pages of docs/: each runs as if pasted into the console.


class PageDocument(Document):
    """A documentation page whose blocks run as in ``python -m asyncio``, named ``__main__``.

    In that console, ``__name__`` is ``"__main__"`` and names another module than the
    console's own namespace, so ``bus.scan(__name__)`` finds nothing there: a page that
    scans itself fails here as it would for a reader.
    """

    def __init__(self, text: str, path: str) -> None:
        super().__init__(text, path)
        self.namespace["__name__"] = "__main__"
        self.namespace["__file__"] = path


def open_page(namespace: dict[str, Any]) -> None:
    """Give the page a :class:`Console`."""
    open_console(namespace)


def close_page(namespace: dict[str, Any]) -> None:
    """Close the page's :class:`Console`."""
    close_console(namespace)


# The cookbook: chapters that build an application in a scratch project.


def chapters(folder: Path) -> list[Path]:
    """Return the chapter files of ``folder`` in reading order."""
    return sorted(folder.glob(CHAPTER_PATTERN))


def files_of(chapter: Path) -> list[tuple[str, str]]:
    """Return the ``(path, text)`` of the files a chapter writes, in order."""
    document = Document.parse(str(chapter), parse_blocks)
    return [
        (region.parsed[0], region.parsed[1])
        for _, region in document.regions
        if region.evaluator is write_file
    ]


class ScratchProject(Console):
    """The folder a chapter builds the application in, its current folder while it runs.

    :param root: an empty folder; :meth:`open` puts it first on ``sys.path``.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.root = root
        self.previous_folder = Path.cwd()
        self.stale: set[str] = set()

    def write(self, relative_path: str, text: str) -> None:
        """Write a file of the app; a module already imported from it is now stale."""
        path = self.root / relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        # A rewrite can keep the size and the mtime second of the old file: drop its bytecode.
        shutil.rmtree(path.parent / "__pycache__", ignore_errors=True)
        importlib.invalidate_caches()
        self.stale |= {
            name
            for name, module in sys.modules.items()
            if getattr(module, "__file__", None) and Path(module.__file__) == path
        }

    def check_fresh(self) -> None:
        """Refuse to go on with a module that changed since it was imported.

        In the console a reader keeps using the module Python imported first: the page must
        tell them to start a new console, and call :meth:`restart` in an invisible block.
        """
        if self.stale:
            raise RuntimeError(
                f"{', '.join(sorted(self.stale))} changed after the console imported it: "
                f"tell the reader to start a new console, and call project.restart() in an "
                f"invisible block before the next Python block"
            )

    def restart(self, namespace: dict[str, Any]) -> None:
        """Do what a new console does: forget the imported modules, the names, the loop."""
        self.forget_modules()
        self.stale.clear()
        self.runner.close()
        self.runner = asyncio.Runner()
        kept = {"__name__", "__file__", "project", CONSOLE}
        for name in set(namespace) - kept:
            del namespace[name]

    def forget_modules(self) -> None:
        """Remove from ``sys.modules`` every module imported from this project."""
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None)
            if file and Path(file).is_relative_to(self.root):
                del sys.modules[name]

    def open(self, chapter: Path) -> None:
        """Write the files of the chapters before ``chapter``, and step into the project."""
        for earlier in chapters(chapter.parent):
            if earlier.name >= chapter.name:
                break
            for relative_path, text in files_of(earlier):
                self.write(relative_path, text)
        self.forget_modules()  # modules of an earlier chapter, imported by another test
        sys.path.insert(0, str(self.root))
        os.chdir(self.root)  # a reader runs the chapter in the application's folder

    def close(self) -> None:
        """Step out of the project, and take it off ``sys.path`` and out of ``sys.modules``."""
        super().close()
        os.chdir(self.previous_folder)
        sys.path.remove(str(self.root))
        self.forget_modules()
        shutil.rmtree(self.root, ignore_errors=True)

    def run_pytest(self, *args: str) -> PytestRun:
        """Run pytest on the app in a fresh interpreter, as a reader would in its folder."""
        completed = self.run_command(shlex.join(["python", "-m", "pytest", *args]))
        return PytestRun(completed.returncode, completed.stdout)


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


class ChapterDocument(Document):
    """A cookbook chapter: its namespace knows the chapter's path, to find the earlier ones."""

    def __init__(self, text: str, path: str) -> None:
        super().__init__(text, path)
        self.namespace["__file__"] = path


def open_chapter(namespace: dict[str, Any]) -> None:
    """Give a chapter its scratch project, holding the files of the earlier chapters.

    The blocks reach it as ``project``: ``project.run_pytest("tests/test_model.py")``.
    """
    project = ScratchProject(Path(tempfile.mkdtemp(prefix="cookbook-")))
    project.open(Path(namespace["__file__"]))
    namespace["project"] = namespace[CONSOLE] = project


def close_chapter(namespace: dict[str, Any]) -> None:
    """Close the chapter's scratch project and delete it."""
    namespace.pop("project", None)
    close_console(namespace)
