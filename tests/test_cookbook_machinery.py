"""The machinery that runs the cookbook can fail, and the application it builds works.

Each test writes throwaway chapters next to a copy of ``cookbook/conftest.py`` and runs
pytest on them in a fresh interpreter, as a contributor would run the real cookbook.
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
        ```

        ```{code-block} python
        :caption: club/greeting.py

        WORD = "goodbye"
        ```

        ```python
        from club.greeting import WORD as NEW_WORD

        assert (WORD, NEW_WORD) == ("hello", "goodbye")
        ```
        """,
    )

    result = run_pytest(cookbook, "02-more.md")

    assert 0 == result.returncode, result.stdout
    assert "3 passed" in result.stdout


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


def test_the_exported_application_passes_its_own_tests(tmp_path: Path) -> None:
    app = tmp_path / "reading-club"
    export = subprocess.run(
        [sys.executable, str(COOKBOOK / "export.py"), str(app)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 0 == export.returncode, export.stderr
    assert "It needs: messagebus[sqlalchemy], pytest" in export.stdout

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
    assert "" == demo.stderr
