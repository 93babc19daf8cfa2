"""The machinery that runs the docs can fail, and the application the cookbook builds works.

Each test writes throwaway chapters next to a copy of ``cookbook/conftest.py`` and runs
pytest on them in a fresh interpreter, as a contributor would run the real cookbook; the
conftest imports ``docs_testing`` from the root of the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COOKBOOK = ROOT / "cookbook"

FILE_CHAPTER = """\
# A file

```{code-block} python
:caption: club/greeting.py

WORD = "hello"
```

```python
from club.greeting import WORD

print(WORD)
```

```{code-block} text
:caption: Output

hello
```
"""


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def cookbook(tmp_path: Path) -> Path:
    """A folder with the cookbook's conftest and no chapter yet."""
    shutil.copy(COOKBOOK / "conftest.py", tmp_path / "conftest.py")
    return tmp_path


def write_chapter(cookbook: Path, name: str, text: str) -> Path:
    path = cookbook / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_good_chapter_passes(cookbook: Path) -> None:
    write_chapter(cookbook, "01-file.md", FILE_CHAPTER)
    write_chapter(
        cookbook,
        "02-await.md",
        """\
        # Top-level await

        ```python
        import asyncio

        await asyncio.sleep(0)
        answer = 42
        ```

        <!-- invisible-code-block: python
        assert answer == 42
        -->
        """,
    )

    result = run_pytest(cookbook)

    assert 0 == result.returncode, result.stdout
    assert "5 passed" in result.stdout


def test_a_wrong_assertion_fails(cookbook: Path) -> None:
    write_chapter(cookbook, "01-wrong.md", "```python\nassert 1 + 1 == 3\n```\n")

    result = run_pytest(cookbook)

    assert 1 == result.returncode
    assert "1 failed" in result.stdout
    assert "AssertionError" in result.stdout


def test_a_broken_import_fails(cookbook: Path) -> None:
    write_chapter(
        cookbook,
        "01-import.md",
        """\
        ```{code-block} python
        :caption: club/model.py

        from club.missing import Nothing
        ```

        ```python
        import club.model
        ```
        """,
    )

    result = run_pytest(cookbook)

    assert 1 == result.returncode
    assert "1 failed, 1 passed" in result.stdout
    assert "ModuleNotFoundError: No module named 'club.missing'" in result.stdout


def test_an_output_that_differs_fails(cookbook: Path) -> None:
    write_chapter(cookbook, "01-file.md", FILE_CHAPTER.replace("\nhello\n", "\ngoodbye\n"))

    result = run_pytest(cookbook)

    assert 1 == result.returncode
    assert "The output shown is not what the code printed" in result.stdout
    assert "+hello" in result.stdout


def test_a_chapter_run_alone_starts_from_the_files_of_the_earlier_ones(cookbook: Path) -> None:
    write_chapter(cookbook, "01-file.md", FILE_CHAPTER)
    write_chapter(
        cookbook,
        "02-more.md",
        """\
        ```python
        from club.greeting import WORD

        assert "hello" == WORD
        ```

        ```{code-block} python
        :caption: club/greeting.py

        WORD = "goodbye"
        ```

        <!-- invisible-code-block: python
        project.restart(globals())
        -->

        ```python
        from club.greeting import WORD as NEW_WORD

        assert "goodbye" == NEW_WORD
        assert "WORD" not in globals()  # a new console starts with no names
        ```
        """,
    )

    result = run_pytest(cookbook, "02-more.md")

    assert 0 == result.returncode, result.stdout
    assert "4 passed" in result.stdout


def test_a_chapter_does_not_see_the_modules_of_another(cookbook: Path) -> None:
    write_chapter(cookbook, "01-file.md", FILE_CHAPTER)
    write_chapter(
        cookbook,
        "02-fresh.md",
        """\
        ```python
        import sys

        assert "club.greeting" not in sys.modules
        ```
        """,
    )

    result = run_pytest(cookbook)

    assert 0 == result.returncode, result.stdout


def test_a_module_changed_after_its_import_needs_a_new_console(cookbook: Path) -> None:
    write_chapter(cookbook, "01-file.md", FILE_CHAPTER)
    changed = """\
        ```python
        import club.greeting
        ```

        ```{code-block} python
        :caption: club/greeting.py

        WORD = "goodbye"
        ```

        RESTART
        ```python
        from club.greeting import WORD

        assert "goodbye" == WORD
        ```
        """
    write_chapter(cookbook, "02-change.md", changed.replace("RESTART", ""))

    result = run_pytest(cookbook)

    assert 1 == result.returncode
    assert "club.greeting changed after the console imported it" in result.stdout

    restart = "<!-- invisible-code-block: python\n        project.restart(globals())\n        -->"
    write_chapter(cookbook, "02-change.md", changed.replace("RESTART", restart))
    result = run_pytest(cookbook)

    assert 0 == result.returncode, result.stdout


def test_a_block_that_cannot_be_pasted_into_the_console_fails(cookbook: Path) -> None:
    write_chapter(
        cookbook,
        "01-class.md",
        """\
        ```python
        class Shelf:
            size = 3

            def count(self):
                return self.size
        ```
        """,
    )

    result = run_pytest(cookbook)

    assert 1 == result.returncode
    assert "fails when pasted into the console: line 4, unexpected indent" in result.stdout


def test_a_console_command_runs_and_its_output_is_checked(cookbook: Path) -> None:
    command = """\
        ```{code-block} console
        $ python -c "print('from a command')"
        ```

        ```{code-block} text
        :caption: Output

        SHOWN
        ```
        """
    write_chapter(cookbook, "01-command.md", command.replace("SHOWN", "from a ..."))
    assert 0 == run_pytest(cookbook).returncode, run_pytest(cookbook).stdout

    write_chapter(cookbook, "01-command.md", command.replace("SHOWN", "from another"))
    result = run_pytest(cookbook)

    assert 1 == result.returncode
    assert "+from a command" in result.stdout


def test_a_warning_logged_with_nothing_configured_is_printed(cookbook: Path) -> None:
    write_chapter(
        cookbook,
        "01-log.md",
        """\
        ```python
        import logging

        logging.getLogger("club").warning("the broker is down")
        ```

        ```{code-block} text
        :caption: Output

        ```
        """,
    )

    result = run_pytest(cookbook)

    assert 1 == result.returncode
    assert "+the broker is down" in result.stdout


def test_the_exported_application_passes_its_own_tests(tmp_path: Path) -> None:
    app = tmp_path / "reading-club"
    export = subprocess.run(
        [sys.executable, str(COOKBOOK / "export.py"), str(app)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 0 == export.returncode, export.stderr
    assert "It needs: messagebus[sqlalchemy,redis], pytest" in export.stdout

    result = run_pytest(app)

    assert 0 == result.returncode, result.stdout
    assert " passed" in result.stdout
    assert "failed" not in result.stdout


def test_the_export_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")

    export = subprocess.run(
        [sys.executable, str(COOKBOOK / "export.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert 2 == export.returncode
    assert "is not empty" in export.stderr
    assert ["notes.txt"] == [path.name for path in tmp_path.iterdir()]


def test_the_demo_runs_end_to_end(tmp_path: Path) -> None:
    app = tmp_path / "reading-club"
    subprocess.run(
        [sys.executable, str(COOKBOOK / "export.py"), str(app)], capture_output=True, check=True
    )

    demo = subprocess.run(
        [sys.executable, "-m", "reading_club.demo"],
        cwd=app,
        capture_output=True,
        text=True,
        check=False,
    )

    assert 0 == demo.returncode, demo.stderr
    assert "rolled back: No book 'solaris' on the shelf" in demo.stdout
    assert "Message store: 10 rows in messagebus_messages" in demo.stdout
    assert "last error: ConnectionError: the broker is down" in demo.stdout
    assert "Event stream: 5 messages received by the broker" in demo.stdout
    assert "Catalogue: 5 messages received from the broker, 5 handled" in demo.stdout
    assert "" == demo.stderr


def test_a_page_that_scans_itself_fails_as_in_the_console(tmp_path: Path) -> None:
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "messagebus").mkdir()
    (tmp_path / "docs").mkdir()
    page = """\
        ```python
        from messagebus import AsyncMessageBus, Command, Metadata, async_listen

        class Hello(Command):
            metadata: Metadata = Metadata(name="hello", schema_version=1)

        @async_listen
        async def hello(command: Hello, transaction) -> None:
            pass

        bus = AsyncMessageBus()
        REGISTER
        assert Hello in bus.commands_registry
        ```
        """
    write_chapter(tmp_path / "docs", "page.md", page.replace("REGISTER", "bus.scan(__name__)"))

    result = run_pytest(tmp_path)

    assert 1 == result.returncode
    assert "1 failed" in result.stdout  # scan() found nothing, or said so

    register = "bus.add_listener(Hello, hello)"
    write_chapter(tmp_path / "docs", "page.md", page.replace("REGISTER", register))
    result = run_pytest(tmp_path)

    assert 0 == result.returncode, result.stdout
