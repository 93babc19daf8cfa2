"""`python -m bench`: run the interleaved rounds, print the table and the target checks."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import instructions, metadata_copy, profiling
from bench.pypi import PYPI_VERSION, ROOT, VENV, ensure_venv

SCENARIO = Path(__file__).resolve().with_name("scenario.py")
SCENARIOS = ("simple", "fanout", "recording")
OURS, PYPI, FLOOR = "ours", "pypi", "floor"
LABELS = {
    OURS: "messagebus (this tree)",
    PYPI: f"messagebus {PYPI_VERSION} (PyPI)",
    FLOOR: "floor (hand-written)",
    "transaction": "+ our unit of work",
}
# The throughput targets against 0.16.1; "recording" is reported, not checked.
TARGET_SPEEDUP = {"simple": 2.5, "fanout": 3.5}
TARGET_FLOOR_RATIO = 1.3
TARGET_TAIL_RATIO = 3.0


@dataclass
class Implementation:
    """How to start the scenario script for one implementation, and where its code must be."""

    key: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    package_dir: Path

    def run(self, scenario: str, args: argparse.Namespace) -> Any:
        """Run the scenario once; return its results, checked to come from our package."""
        command = [
            *self.command,
            "--scenario",
            scenario,
            "--commands",
            str(args.commands),
            "--warmup",
            str(args.warmup),
            "--gc",
            args.gc,
        ]
        done = subprocess.run(
            command, env=self.env, cwd=self.cwd, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"{LABELS[self.key]} failed on {scenario}:\n{done.stderr}")
        result = json.loads(done.stdout)
        if not Path(result["messagebus_file"]).resolve().is_relative_to(self.package_dir):
            raise SystemExit(
                f"{LABELS[self.key]} imported messagebus from {result['messagebus_file']}, "
                f"not from {self.package_dir}: check PYTHONPATH and the working directory"
            )
        return result


def this_tree(key: str, implementation: str) -> Implementation:
    """Return how to run ``implementation`` of the scenario on this source tree."""
    # -P keeps the script's folder off sys.path; PYTHONPATH puts this tree's package first.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-P", str(SCENARIO), "--implementation", implementation]
    return Implementation(key, command, env, ROOT, ROOT / "messagebus")


def implementations(pypi_python: Path | None) -> list[Implementation]:
    """Return ours and the floor (this source tree), and the PyPI package if given."""
    found = [this_tree(OURS, "bus"), this_tree(FLOOR, "floor")]
    if pypi_python is not None:
        # -I ignores PYTHONPATH and the user site and keeps the cwd and script folder off
        # sys.path: only the virtualenv's site-packages can provide messagebus.
        clean = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        command = [str(pypi_python), "-I", str(SCENARIO), "--implementation", "bus"]
        found.insert(1, Implementation(PYPI, command, clean, VENV, VENV.resolve()))
    return found


@dataclass
class Series:
    """The runs of one implementation on one scenario, one per round."""

    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cpu_ns(self) -> float:
        """Time per command: the lowest over the rounds of each run's CPU time per command.

        CPU time leaves out the moments when other processes had the core, which on
        a shared machine add milliseconds to a few commands and swamp a mean. Load
        only ever adds time, so the least disturbed round is the best estimate of
        what the code costs (the advice of `timeit`); every statistic here is the
        lowest over the rounds, for every implementation alike.
        """
        return min(self.round_cpu_ns())

    def round_cpu_ns(self) -> list[float]:
        return [run["cpu_ns"] / run["commands"] for run in self.runs]

    @property
    def wall_ns(self) -> float:
        """The lowest over the rounds of each run's wall-clock time per command."""
        return min(run["wall_ns"] / run["commands"] for run in self.runs)

    def percentile(self, fraction: float) -> float:
        """The lowest over the rounds of the latency below which ``fraction`` of a run falls."""
        return min(_percentile(sorted(run["latencies_ns"]), fraction) for run in self.runs)


def _percentile(ordered: list[int], fraction: float) -> int:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the message bus against messagebus 0.16.1 and a hand-written floor.",
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--commands", type=int, default=20_000, help="per run (20000)")
    parser.add_argument("--warmup", type=int, default=2_000, help="untimed, per run (2000)")
    parser.add_argument(
        "--gc",
        choices=["disabled", "enabled"],
        default="disabled",
        help="during the timed loop, for every implementation (disabled, as timeit does)",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--no-pypi", action="store_true", help="skip messagebus 0.16.1")
    parser.add_argument(
        "--core-only", action="store_true", help="skip bench/sql.py and bench/e2e.py"
    )
    parser.add_argument(
        "--no-brokers", action="store_true", help="skip bench/e2e.py (outbox to inbox)"
    )
    parser.add_argument(
        "--brokers",
        action="store_true",
        help="only bench/e2e.py: outbox to inbox over Redis, RabbitMQ, NATS",
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile our bus with cProfile instead"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="instead, count instructions per command with valgrind (load-independent)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="instead, time our bus in stages from the floor up: what each part adds",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.commands, args.warmup = 1, 2_000, 200
    return args


def tree_state() -> str:
    """Return the commit of this tree and whether its package has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "messagebus"],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:  # no git: a source archive
        return "this tree: not a git checkout"
    return f"this tree: commit {commit or '?'}" + (
        ", with uncommitted changes in messagebus/" if dirty else ""
    )


def header(args: argparse.Namespace, impls: list[Implementation]) -> list[str]:
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        tree_state(),
        f"Python {platform.python_version()}, pydantic {version('pydantic')}, "
        f"{os.cpu_count()} CPUs, load average {load}",
        f"Implementations: {', '.join(LABELS[impl.key] for impl in impls)}",
        f"{args.rounds} interleaved round(s) of {args.commands} commands per run after "
        f"{args.warmup} untimed ones; GC {args.gc} during the timed loop for every "
        f"implementation (collected just before it).",
        "Per command, best (lowest) of the rounds: CPU time of the timed loop (cpu µs; cmd/s"
        " is its inverse), wall time (wall µs), each run's latency percentiles (wall clock).",
    ]


def table(series: dict[tuple[str, str], Series], keys: list[str]) -> list[str]:
    lines = [
        f"{'scenario':<8} {'implementation':<27} {'cmd/s':>8} {'cpu µs':>7} {'wall µs':>7} "
        f"{'p50 µs':>7} {'p99 µs':>7} {'p99.9 µs':>8} {'p99/p50':>7} {'x floor':>7}"
    ]
    for scenario in SCENARIOS:
        floor = series[scenario, FLOOR].cpu_ns
        for key in keys:
            one = series[scenario, key]
            p50, p99 = one.percentile(0.50), one.percentile(0.99)
            lines.append(
                f"{scenario:<8} {LABELS[key]:<27} {1e9 / one.cpu_ns:>8,.0f} "
                f"{one.cpu_ns / 1000:>7.2f} {one.wall_ns / 1000:>7.2f} {p50 / 1000:>7.2f} "
                f"{p99 / 1000:>7.2f} {one.percentile(0.999) / 1000:>8.1f} {p99 / p50:>7.2f} "
                f"{one.cpu_ns / floor:>7.2f}"
            )
    return lines


def spread(ratios: list[float]) -> str:
    return f"rounds {min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else "one round"


def checks(series: dict[tuple[str, str], Series], with_pypi: bool) -> list[tuple[bool, str]]:
    """Return (passed, description) for each target."""
    found: list[tuple[bool, str]] = []
    traced = [
        scenario
        for scenario in SCENARIOS
        if any(run.get("opentelemetry_imported") for run in series[scenario, OURS].runs)
    ]
    found.append(
        (
            not traced,
            "tracing off costs nothing: no run of ours imported OpenTelemetry"
            + (f" (it did in {', '.join(traced)})" if traced else ""),
        )
    )
    for scenario in SCENARIOS:
        ours = series[scenario, OURS]
        if with_pypi and scenario in TARGET_SPEEDUP:
            pypi = series[scenario, PYPI]
            speedup = pypi.cpu_ns / ours.cpu_ns
            per_round = [
                p / o for p, o in zip(pypi.round_cpu_ns(), ours.round_cpu_ns(), strict=True)
            ]
            target = TARGET_SPEEDUP[scenario]
            found.append(
                (
                    speedup >= target,
                    f"{scenario}: throughput {speedup:.2f}x messagebus {PYPI_VERSION} "
                    f"(target >= {target}x; {spread(per_round)})",
                )
            )
        floor = series[scenario, FLOOR]
        ratio = ours.cpu_ns / floor.cpu_ns
        per_round = [o / f for o, f in zip(ours.round_cpu_ns(), floor.round_cpu_ns(), strict=True)]
        found.append(
            (
                ratio <= TARGET_FLOOR_RATIO,
                f"{scenario}: time per command {ratio:.2f}x the floor "
                f"(target <= {TARGET_FLOOR_RATIO}x; {spread(per_round)})",
            )
        )
        tail = ours.percentile(0.99) / ours.percentile(0.50)
        floor_tail = floor.percentile(0.99) / floor.percentile(0.50)
        found.append(
            (
                tail < TARGET_TAIL_RATIO,
                f"{scenario}: p99 {tail:.2f}x p50 (target < {TARGET_TAIL_RATIO:.0f}x; "
                f"the floor's: {floor_tail:.2f}x)",
            )
        )
    return found


def run_plugins(args: argparse.Namespace) -> int:
    """Run `bench/sql.py` and `bench/e2e.py`, with the flags they are documented to receive."""
    if args.core_only:
        return 0
    flags = [flag for flag in ("--quick", "--strict") if getattr(args, flag[2:])]
    status = 0
    if Path(__file__).with_name("sql.py").exists():
        print("\n== SQL unit of work (bench/sql.py) ==", flush=True)
        status = int(importlib.import_module("bench.sql").main(flags))
    if not args.no_brokers:
        status = max(status, run_brokers(flags))
    return status


def run_brokers(flags: list[str]) -> int:
    """Run `bench/e2e.py`: outbox to inbox on each broker that answers, against the floor."""
    print("\n== Outbox to inbox over the brokers (bench/e2e.py) ==", flush=True)
    try:
        e2e = importlib.import_module("bench.e2e")
    except ImportError as exc:  # faststream or a broker client missing
        print(f"skipped: {exc}; run it with `nox -s bench`")
        return 0
    return int(e2e.main(flags))


def profile(args: argparse.Namespace) -> int:
    ours = this_tree(OURS, "bus")
    for scenario in SCENARIOS:
        command = [
            *ours.command,
            "--scenario",
            scenario,
            "--commands",
            str(args.commands),
            "--warmup",
            str(args.warmup),
            "--profile",
        ]
        print("\n".join(profiling.run(command, ours.env, f"\n{scenario}")))
    return 0


def measure_rounds(
    impls: list[Implementation], args: argparse.Namespace
) -> dict[tuple[str, str], Series]:
    """Run every implementation on every scenario, ``args.rounds`` times, interleaved."""
    series = {(scenario, impl.key): Series() for scenario in SCENARIOS for impl in impls}
    for index in range(args.rounds):
        # Rotate who goes first, so no implementation always runs on a cold machine.
        order = impls[index % len(impls) :] + impls[: index % len(impls)]
        for scenario in SCENARIOS:
            for impl in order:
                series[scenario, impl.key].runs.append(impl.run(scenario, args))
        print(f"  round {index + 1}/{args.rounds} done", flush=True)
    return series


def stages() -> list[Implementation]:
    """Return our bus in stages, from the floor up."""
    return [
        this_tree(FLOOR, "floor"),
        this_tree("transaction", "transaction"),
        this_tree(OURS, "bus"),
    ]


def breakdown(args: argparse.Namespace) -> int:
    """Print what each layer of our bus adds to the floor's cost per command."""
    steps = stages()
    unit = "instr" if args.instructions else "µs"
    if args.instructions:
        print(f"Instructions per command, counted by valgrind (callgrind); {tree_state()}")
        counts = instructions.count(targets(steps), SCENARIOS)
    else:
        print("\n".join(header(args, steps)), flush=True)
        series = measure_rounds(steps, args)
    print(f"\n{'scenario':<8} {'stage':<30} {unit:>9} {'adds':>9} {'share':>6}")
    for scenario in SCENARIOS:
        if args.instructions:
            costs = [counts[scenario, LABELS[step.key]] for step in steps]
        else:
            costs = [series[scenario, step.key].cpu_ns / 1000 for step in steps]
        overhead = costs[-1] - costs[0]
        previous = costs[0]
        for step, cost in zip(steps, costs, strict=True):
            added = cost - previous
            share = f"{added / overhead:6.0%}" if overhead > 0 and step.key != FLOOR else ""
            digits = 0 if args.instructions else 2
            print(
                f"{scenario:<8} {LABELS[step.key]:<30} {cost:>9,.{digits}f} "
                f"{added:>9,.{digits}f} {share:>6}"
            )
            previous = cost
    print(
        "\nStages: the floor (a hand-written transaction, the handler called as a function,"
        "\nthe events of the seen models dispatched by hand); the same with our unit of"
        "\nwork and transaction instead (`async with uow`, commit, close); then the bus"
        "\n(dispatch, collecting after each handler, message store, metrics). 'share' is the"
        "\npart of the bus's overhead over the floor that the stage adds. The recording"
        "\nscenario's middle stage records nothing: read its bus line against the floor."
    )
    return 0


def targets(impls: list[Implementation]) -> list[instructions.Target]:
    return [
        instructions.Target(LABELS[impl.key], tuple(impl.command), tuple(impl.env.items()))
        for impl in impls
    ]


def count_instructions(args: argparse.Namespace) -> int:
    """Print the instructions per command of ours, 0.16.1 and the floor, and their ratios."""
    impls = implementations(None if args.no_pypi else ensure_venv())
    print(f"Instructions per command, counted by valgrind (callgrind); {tree_state()}")
    counts = instructions.count(targets(impls), SCENARIOS)
    labels = [LABELS[impl.key] for impl in impls]
    print("\n".join(["", *instructions.report(counts, labels, LABELS[FLOOR], SCENARIOS)]))
    print("\nThe same ratios as the targets, in instructions (informative, not checked):")
    for scenario in SCENARIOS:
        ours = counts[scenario, LABELS[OURS]]
        if not args.no_pypi:
            speedup = counts[scenario, LABELS[PYPI]] / ours
            print(f"  {scenario}: {speedup:.2f}x fewer than messagebus {PYPI_VERSION}")
        print(f"  {scenario}: {ours / counts[scenario, LABELS[FLOOR]]:.2f}x the floor")
    return 0


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.brokers:
        return run_brokers([flag for flag in ("--quick", "--strict") if getattr(args, flag[2:])])
    if args.profile:
        return profile(args)
    if args.breakdown:
        return breakdown(args)
    if args.instructions:
        return count_instructions(args)
    pypi_python = None if args.no_pypi else ensure_venv()
    impls = implementations(pypi_python)
    keys = [impl.key for impl in impls]
    print("\n".join(header(args, impls)), flush=True)
    series = measure_rounds(impls, args)

    print()
    print("\n".join(table(series, keys)))
    print("\nBuilding a message, CPU time, GC off (metadata default shared or deep-copied):")
    micro = metadata_copy.measure(count=args.commands, repeats=3 if args.quick else 7)
    print("\n".join(metadata_copy.report(micro)))

    results = checks(series, with_pypi=pypi_python is not None)
    results.append((micro.shared, "a message's frozen Metadata default is shared, not copied"))
    print("\nTargets (this package, measured in this run):")
    for passed, description in results:
        print(f"  {'PASS' if passed else 'FAIL'}  {description}")
    failed = sum(not passed for passed, _ in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    status = 1 if args.strict and failed else 0
    return max(status, run_plugins(args))
