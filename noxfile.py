"""Every check a contributor runs, one session each: `nox -l` lists them.

`nox` alone runs the default sessions, the same as CI (`.ci/run`).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2024.4.15"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["tests", "lint", "typecheck", "unasync", "docs", "cookbook"]

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")


def install(session: nox.Session, *groups: str, extras: str = "") -> None:
    """Install the package (editable, with ``extras``) and the dependency ``groups``."""
    requirements = [
        requirement
        for group in groups
        for requirement in nox.project.dependency_groups(PYPROJECT, group)
    ]
    session.install("--upgrade", "pip")
    session.install("-e", f".[{extras}]" if extras else ".", *requirements)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite: unit tests, integration tests, docs and cookbook."""
    install(session, "test", extras="prometheus,postgresql,redis,rabbit,nats,kafka,opentelemetry")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Run mypy --strict on the package, the typed usage files and the cookbook's two services.

    Then check that mypy refuses the mistakes of ``typing_tests/*/must_fail``.
    """
    install(
        session,
        "typecheck",
        "export",
        extras="prometheus,postgresql,redis,rabbit,nats,kafka,opentelemetry",
    )
    session.run("mypy")
    session.run("mypy", "--strict", "typing_tests", "--exclude", "must_fail")
    session.run("python", "scripts/check_must_fail.py")
    app = Path(session.create_tmp()) / "reading-club"
    shutil.rmtree(app, ignore_errors=True)
    session.run("python", "cookbook/export.py", str(app), silent=True)
    if not app.exists():  # --install-only runs nothing, so exported nothing
        return
    with session.chdir(app):
        session.run("mypy", "--strict", "reading_club", "catalogue")


@nox.session
def unasync(session: nox.Session) -> None:
    """Check that the generated sync code is up to date (`-- --write` regenerates it)."""
    install(session, "unasync")
    if "--write" in session.posargs:
        session.run("python", "scripts/generate_sync.py")
    else:
        session.run("python", "scripts/generate_sync.py", "--check")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark the bus against messagebus 0.16.1 from PyPI and a hand-written floor."""
    install(session, "bench")
    session.run("python", "-m", "bench", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site; a warning or a broken reference fails the build.

    ``nox -s docs -- --serve`` builds it the same way, serves it on http://127.0.0.1:8000,
    and rebuilds it whenever a page, a diagram or a docstring changes (sphinx-autobuild).
    """
    install(session, "docs", extras="prometheus,sqlalchemy,redis,rabbit,nats,kafka,opentelemetry")
    require_graphviz(session)
    build = ["-n", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html"]
    if "--serve" in session.posargs:
        # The pages read the docstrings of the package and the chapters through a link.
        watch = ["--watch", "messagebus", "--watch", "cookbook", "--ignore", "*/_build/*"]
        session.run("sphinx-autobuild", *build, *watch, "--port", "8000")
    else:
        session.run("sphinx-build", *build)


def require_graphviz(session: nox.Session) -> None:
    """Make sure Graphviz's ``dot``, which draws the diagrams of the site, is installed."""
    if shutil.which("dot"):
        return
    # A CI machine or a container runs as root with apt: install it as a documentation host
    # does (.readthedocs.yaml lists it too).
    if shutil.which("apt-get") and getattr(os, "geteuid", lambda: -1)() == 0:
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "graphviz", external=True)
        return
    session.error(
        "The diagrams need Graphviz's `dot` program: install the graphviz package "
        "(apt-get install graphviz, dnf install graphviz, brew install graphviz), then retry"
    )


@nox.session
def cookbook(session: nox.Session) -> None:
    """Run the cookbook's chapters and the tests of the machinery that runs them."""
    install(session, "test", extras="sqlalchemy,redis")
    session.run("pytest", "cookbook", "tests/test_cookbook_machinery.py", *session.posargs)


@nox.session
def export(session: nox.Session) -> None:
    """Write the application the cookbook builds to a folder: ``nox -s export -- DIR``."""
    if not session.posargs:
        session.error("Name the folder to write to: nox -s export -- DIR")
    session.install(*nox.project.dependency_groups(PYPROJECT, "export"))
    session.run("python", "cookbook/export.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Run the application the cookbook builds, end to end on SQLite, and print what happened.

    The application runs in a virtualenv of its own, as a reader's would, with nothing but
    messagebus and its ``sqlalchemy`` and ``redis`` extras; this session's own only reads the
    chapters. Its broker is FastStream's in-memory one: no server is needed.
    """
    session.install(*nox.project.dependency_groups(PYPROJECT, "export"))
    app = Path(session.create_tmp()).resolve() / "reading-club"
    shutil.rmtree(app, ignore_errors=True)  # no file left over from an older cookbook
    session.run("python", "cookbook/export.py", str(app), silent=True)
    session.run("python", "-m", "venv", str(app / ".venv"), silent=True)
    python = str(app / ".venv" / ("Scripts" if sys.platform == "win32" else "bin") / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    session.run(*pip, f"{ROOT}[sqlalchemy,redis]", external=True, silent=True)
    session.chdir(app)
    session.run(python, "-m", "reading_club.demo", external=True)
