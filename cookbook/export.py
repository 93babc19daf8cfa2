"""Write the application the cookbook builds to a folder, ready to run.

``python cookbook/export.py DIR`` (or ``python -m cookbook.export DIR``, or
``nox -s export -- DIR``) writes the last version of every file the chapters show to
``DIR``. There, ``python -m pytest`` runs the application's tests and
``python -m reading_club.demo`` runs it end to end, on SQLite and FastStream's in-memory
Redis broker: the application (the reading club and the catalogue of chapter 12) needs
``messagebus[sqlalchemy,redis]``, and its tests pytest and pytest-asyncio, as its
``pyproject.toml`` says.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

COOKBOOK = Path(__file__).resolve().parent
# Run as a script, this folder is on sys.path, not the repository's root where docs_testing is.
sys.path.insert(0, str(COOKBOOK.parent))

from docs_testing import chapters, files_of  # noqa: E402


def export(destination: Path) -> list[str]:
    """Write the files of all chapters to ``destination``; return their paths, sorted.

    A file shown in several chapters is written as the last chapter shows it.
    """
    files: dict[str, str] = {}
    for chapter in chapters(COOKBOOK):
        files.update(files_of(chapter))
    for relative_path, text in files.items():
        path = destination / relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return sorted(files)


def requirements(destination: Path) -> list[str]:
    """Return what the exported application and its tests need, from its ``pyproject.toml``."""
    pyproject = tomllib.loads((destination / "pyproject.toml").read_text(encoding="utf-8"))
    return [*pyproject["project"]["dependencies"], *pyproject["dependency-groups"]["test"]]


def main(argv: list[str] | None = None) -> int:
    """Export to the folder named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("destination", type=Path, help="the folder to write the application to")
    parser.add_argument(
        "--force", action="store_true", help="write even if the folder is not empty"
    )
    args = parser.parse_args(argv)
    destination: Path = args.destination
    if destination.exists() and any(destination.iterdir()) and not args.force:
        parser.error(
            f"{destination} is not empty: choose a new folder, or pass --force to "
            f"overwrite the application's files in it"
        )
    written = export(destination)
    print(f"Wrote {len(written)} files to {destination}:")
    for relative_path in written:
        print(f"  {relative_path}")
    print(f"It needs: {', '.join(requirements(destination))}")
    print(f"Next: cd {destination} && python -m pytest && python -m reading_club.demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
