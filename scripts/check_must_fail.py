"""Check that mypy --strict refuses the code of ``typing_tests/*/must_fail``, as marked.

    python scripts/check_must_fail.py

Each line of those files that ends with ``# error: TEXT`` must get a mypy error whose
message contains TEXT; a line without the mark must get none. The files are what a user
gets wrong: a check that passed them would make the typed API a promise on paper.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent
MARK = re.compile(r"#\s*error:\s*(.+?)\s*$")
REPORTED = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")


def expected_errors(path: Path) -> dict[int, str]:
    """Return the marked lines of ``path`` and the text their error must contain."""
    found: dict[int, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = MARK.search(line)
        if match:
            found[number] = match.group(1)
    return found


def check(path: Path) -> list[str]:
    """Return what is wrong with how mypy judged ``path``; nothing if it judged as marked."""
    relative = path.relative_to(ROOT)
    stdout, _, _ = api.run(["--strict", "--no-error-summary", str(relative)])
    reported: dict[int, list[str]] = {}
    for line in stdout.splitlines():
        match = REPORTED.match(line)
        if match and Path(match["path"]) == relative:
            reported.setdefault(int(match["line"]), []).append(match["message"])
    expected = expected_errors(path)
    problems = [
        f"{relative}:{number}: expected an error containing {text!r}, got "
        f"{reported.get(number) or 'none'}"
        for number, text in expected.items()
        if not any(text in message for message in reported.get(number, []))
    ]
    problems += [
        f"{relative}:{number}: unexpected error: {'; '.join(messages)}"
        for number, messages in reported.items()
        if number not in expected
    ]
    if not expected:
        problems.append(f"{relative}: marks no line with '# error:'")
    return problems


def main() -> int:
    paths = sorted(ROOT.glob("typing_tests/*/must_fail/*.py"))
    paths = [path for path in paths if path.name != "__init__.py"]
    if not paths:
        print("check_must_fail: no file under typing_tests/*/must_fail", file=sys.stderr)
        return 1
    problems = [problem for path in paths for problem in check(path)]
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"mypy refused each of the {len(paths)} must-fail files where marked")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
