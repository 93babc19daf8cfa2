"""The virtualenv that holds `messagebus` 0.16.1 from PyPI, made on first use."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

PYPI_VERSION = "0.16.1"
ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench" / f"pypi-{PYPI_VERSION}"


def venv_python(venv: Path = VENV) -> Path:
    """Return the interpreter of ``venv``."""
    if sys.platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def _installed(python: Path) -> str:
    """Return "messagebus pydantic prometheus-client" versions as seen by ``python``, or ""."""
    probe = (
        "from importlib.metadata import version as v; "
        "print(v('messagebus'), v('pydantic'), v('prometheus-client'))"
    )
    done = subprocess.run(
        [str(python), "-I", "-c", probe], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def ensure_venv(venv: Path = VENV) -> Path:
    """Make ``venv`` with messagebus 0.16.1 unless it is there already; return its python.

    The PyPI package gets the same pydantic and prometheus-client versions as this
    interpreter, so the two implementations are compared on the same libraries.
    """
    pydantic, prometheus = version("pydantic"), version("prometheus-client")
    python = venv_python(venv)
    wanted = f"{PYPI_VERSION} {pydantic} {prometheus}"
    if python.exists() and _installed(python) == wanted:
        return python
    if not python.exists():
        print(f"Creating {venv} for messagebus {PYPI_VERSION} from PyPI...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    print(f"Installing messagebus=={PYPI_VERSION} and its libraries in {venv}...", flush=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"messagebus=={PYPI_VERSION}",
            f"pydantic=={pydantic}",
            f"prometheus-client=={prometheus}",
        ],
        check=True,
    )
    found = _installed(python)
    if found != wanted:
        raise SystemExit(
            f"{venv} has messagebus/pydantic/prometheus-client {found or 'missing'}, "
            f"expected {wanted}: "
            f"delete the folder and run the benchmark again"
        )
    return python
