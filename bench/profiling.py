"""`python -m bench --profile`: where the time of our bus goes, by function and by area."""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.pypi import ROOT

PACKAGE = str(ROOT / "messagebus")
SCENARIO_NAME = "scenario.py"


def area(row: dict[str, Any]) -> str:
    """Name the part of the stack a profiled function belongs to."""
    file = row["file"]
    if file.startswith(PACKAGE):
        return "messagebus: " + file[len(PACKAGE) + 1 :].removesuffix(".py")
    if file.endswith(SCENARIO_NAME):
        return "benchmark: handlers and loop"
    if "pydantic" in file:
        return "pydantic"
    if file == "~":
        name = row["function"]
        if "pydantic_core" in name or "validate_python" in name:
            return "pydantic"
        return "builtins: " + name.strip("<>").split(" of ")[0][:60]
    return "stdlib: " + Path(file).stem


def run(command: list[str], env: dict[str, str], label: str, top: int = 15) -> list[str]:
    """Profile one run of ``command`` (a scenario with ``--profile``); return report lines."""
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    rows: list[dict[str, Any]] = json.loads(done.stdout)["profile"]
    total = sum(row["own_s"] for row in rows)
    by_area: dict[str, float] = defaultdict(float)
    for row in rows:
        by_area[area(row)] += row["own_s"]
    lines = [f"{label}: {total:.3f} s of profiled own time", "  by area (own time):"]
    for name, seconds in sorted(by_area.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"    {seconds / total:6.1%}  {name}")
    ours = [row for row in rows if row["file"].startswith(PACKAGE)]
    lines.append("  messagebus functions (own time, cumulative time, calls):")
    for row in sorted(ours, key=lambda row: -row["own_s"])[:top]:
        where = f"{row['file'][len(PACKAGE) + 1 :]}:{row['line']}"
        lines.append(
            f"    {row['own_s'] / total:6.1%} {row['cumulative_s'] / total:7.1%} "
            f"{row['calls']:>8}  {row['function']} ({where})"
        )
    return lines
