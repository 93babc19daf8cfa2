"""Generate the sync twins of the ``_async`` packages, or check that they are up to date.

    python scripts/generate_sync.py          # write messagebus/service/_sync and tests/unit/_sync
    python scripts/generate_sync.py --check  # regenerate into a temporary folder and compare

The check fails when a generated file differs from the committed one, when a
committed ``_sync`` file has no ``_async`` source, and when a replacement rule
below matches nothing (a stale rule hides a drift).
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import tokenize_rt
import unasync

ROOT = Path(__file__).resolve().parent.parent

PAIRS = [
    ("messagebus/service/_async", "messagebus/service/_sync"),
    ("tests/unit/_async", "tests/unit/_sync"),
    ("typing_tests/_async", "typing_tests/_sync"),
    ("messagebus/adapters/sqlalchemy/_async", "messagebus/adapters/sqlalchemy/_sync"),
    ("tests/integration/_async", "tests/integration/_sync"),
    ("messagebus/testing/_async", "messagebus/testing/_sync"),
    ("tests/testing/_async", "tests/testing/_sync"),
    ("messagebus/adapters/opentelemetry/_async", "messagebus/adapters/opentelemetry/_sync"),
]

# Names unasync does not rename by itself (it already turns AsyncFoo into SyncFoo).
REPLACEMENTS = {
    "_async": "_sync",
    "async_listen": "sync_listen",
    "async_messagebus": "sync_messagebus",
    "TAsyncUow": "TSyncUow",
    "TAsyncMessageStore": "TSyncMessageStore",
    "TAsyncHandler": "TSyncHandler",
    "create_async_engine": "create_engine",
    "async_url": "sync_url",
}

# Docstrings and comments are prose: unasync leaves them alone, these fix them.
PROSE = [
    (re.compile(r"\bAsync(?=[A-Z])"), "Sync"),
    (re.compile(r"\basync with\b"), "with"),
    (re.compile(r"\basync def\b"), "def"),
    (re.compile(r"\basync for\b"), "for"),
    (re.compile(r"\bawait "), ""),
    (re.compile(r"\bawaited\b"), "called"),
    (re.compile(r"\basync_listen\b"), "sync_listen"),
    (re.compile(r"\b_async\b"), "_sync"),
    (re.compile(r"\basynchronous\b"), "synchronous"),
    (re.compile(r"\bcoroutine function\b"), "function"),
]

HEADER = "# Generated from the _async package by scripts/generate_sync.py: do not edit.\n"


def _sources(source_dir: Path) -> list[Path]:
    return sorted(p for p in source_dir.rglob("*.py") if "__pycache__" not in p.parts)


def _fix_prose(text: str) -> str:
    tokens = tokenize_rt.src_to_tokens(text)
    for index, token in enumerate(tokens):
        if token.name in ("STRING", "COMMENT"):
            src = token.src
            for pattern, replacement in PROSE:
                src = pattern.sub(replacement, src)
            tokens[index] = token._replace(src=src)
    return tokenize_rt.tokens_to_src(tokens)


def _words(source: str) -> set[str]:
    """The names and the one-word strings of ``source``: what a replacement rule can match."""
    words = set()
    for token in tokenize_rt.src_to_tokens(source):
        if token.name == "NAME":
            words.add(token.src)
        elif token.name == "STRING":
            words.add(token.src[1:-1])
    return words


def _write_ruff_config(folder: Path) -> None:
    """Give ruff the project's settings, without the excludes that skip generated code."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    first_party = settings["lint"]["isort"]["known-first-party"]
    (folder / "ruff.toml").write_text(
        f"line-length = {settings['line-length']}\n"
        f"target-version = {settings['target-version']!r}\n"
        f"[lint.isort]\nknown-first-party = {first_party!r}\n"
    )


def _ruff(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "ruff", *args], check=True, cwd=ROOT)


def _relative_sources(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in _sources(folder)} if folder.exists() else set()


def generate(into: Path) -> set[str]:
    """Write every sync twin below ``into``; return the replacement rules that matched."""
    used: set[str] = set()
    for source_rel, target_rel in PAIRS:
        source_dir = ROOT / source_rel
        if not source_dir.exists():
            continue
        rule = unasync.Rule(str(source_dir), str(into / target_rel), REPLACEMENTS)
        files = _sources(source_dir)
        unasync.unasync_files([str(p) for p in files], [rule])
        for path in files:
            used |= _words(path.read_text()) & REPLACEMENTS.keys()
            target = into / target_rel / path.relative_to(source_dir)
            target.write_text(HEADER + _fix_prose(target.read_text()))
    # Format, sort the imports whose names changed, and format again: the same steps as
    # for the source, so that only real differences show.
    _ruff("format", "--quiet", "--no-cache", str(into))
    _ruff("check", "--quiet", "--no-cache", "--fix-only", "--select", "I,F401", str(into))
    _ruff("format", "--quiet", "--no-cache", str(into))
    return used


def check() -> int:
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        _write_ruff_config(out)
        used = generate(out)
        for rule in sorted(REPLACEMENTS.keys() - used):
            problems.append(f"replacement rule {rule!r} matched nothing: remove it")
        for _, target_rel in PAIRS:
            expected_dir, actual_dir = out / target_rel, ROOT / target_rel
            expected = _relative_sources(expected_dir)
            actual = _relative_sources(actual_dir)
            for rel in sorted(actual - expected):
                problems.append(f"{target_rel}/{rel} has no _async source: delete it")
            for rel in sorted(expected):
                want = (expected_dir / rel).read_text()
                have = (actual_dir / rel).read_text() if rel in actual else ""
                if want != have:
                    diff = difflib.unified_diff(
                        have.splitlines(keepends=True),
                        want.splitlines(keepends=True),
                        f"{target_rel}/{rel} (committed)",
                        f"{target_rel}/{rel} (generated)",
                    )
                    problems.append("".join(diff))
    for problem in problems:
        print(problem)
    if problems:
        print("The sync code is stale: regenerate it with `nox -s unasync -- --write`.")
        return 1
    print("The sync code is up to date.")
    return 0


def write() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        _write_ruff_config(out)
        generate(out)
        for _, target_rel in PAIRS:
            if (out / target_rel).exists():
                shutil.rmtree(ROOT / target_rel, ignore_errors=True)
                shutil.copytree(out / target_rel, ROOT / target_rel)
    print("Wrote the sync code.")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    return check() if args.check else write()


if __name__ == "__main__":
    sys.exit(main())
