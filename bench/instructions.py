"""`python -m bench --instructions`: instructions per command, counted by valgrind.

A shared machine makes times noisy; the number of instructions a command executes
does not depend on the load. Each implementation runs under callgrind twice, with a
short and a long timed loop, and so does the same loop around a command that does
nothing (the harness): the difference between the two lengths leaves out start-up and
warm-up, and subtracting the harness leaves out building the commands and the loop.
What remains is what one command costs, in instructions. Instructions are not time (a
cache miss costs more than an addition), but ratios of instruction counts follow
ratios of CPU time closely for code like this, and are repeatable to the per mille.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

SHORT, LONG = 500, 2_500
"""Timed commands in the short and the long run (after 200 untimed ones)."""

_COLLECTED = re.compile(r"Collected : (\d+)")


@dataclass(frozen=True)
class Target:
    """One implementation's scenario script: the command that starts it, and its env."""

    label: str
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...]


def _count(target: Target, scenario: str, commands: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        *target.command,
        "--scenario",
        scenario,
        "--commands",
        str(commands),
        "--warmup",
        "200",
    ]
    # A fixed hash seed: the same dict layouts, hence the same count, on every run.
    env = {**dict(target.env), "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{target.label} failed under valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def _per_command(target: Target, scenario: str) -> float:
    return (_count(target, scenario, LONG) - _count(target, scenario, SHORT)) / (LONG - SHORT)


def harness_of(target: Target) -> Target:
    """Return ``target`` with its implementation replaced by the do-nothing harness."""
    command = list(target.command)
    command[command.index("--implementation") + 1] = "harness"
    return replace(target, label=f"{target.label} (harness)", command=tuple(command))


def count(targets: list[Target], scenarios: tuple[str, ...]) -> dict[tuple[str, str], float]:
    """Return the instructions per command of each (scenario, target label)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind: install it (apt-get install valgrind)")
    jobs = [(target, scenario) for target in targets for scenario in scenarios]
    harnesses = {target.label: harness_of(target) for target in targets}
    jobs += [(harness, "simple") for harness in harnesses.values()]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = dict(zip(jobs, pool.map(lambda job: _per_command(*job), jobs), strict=True))
    return {
        (scenario, target.label): counts[target, scenario]
        - counts[harnesses[target.label], "simple"]
        for target in targets
        for scenario in scenarios
    }


def report(
    counts: dict[tuple[str, str], float],
    labels: list[str],
    floor: str,
    scenarios: tuple[str, ...],
) -> list[str]:
    """Return the table of instructions per command and their ratio to the floor."""
    lines = [f"{'scenario':<8} {'implementation':<30} {'instr/cmd':>10} {'x floor':>8}"]
    for scenario in scenarios:
        for label in labels:
            value = counts[scenario, label]
            lines.append(
                f"{scenario:<8} {label:<30} {value:>10,.0f} {value / counts[scenario, floor]:>8.2f}"
            )
    return lines
