"""The driver's time estimate against the wall time it predicts, for every registered pair and for a study.

Runs ``python -m harness run`` for each (method, space) pair that ``python -m harness list`` shows (one seed each by
default) and for the study ``--method darts,gdas,random --space nb201`` (three seeds), each as a child process whose
output is read line by line as a log, and prints one Markdown table: the plan's estimate ("≈ … from now"), the wall
time from the plan's line to the child's exit, their ratio, the whole command's wall time, and, for the phases the
records time (search, correlation, evaluation), the plan's per-trial figure against the records' mean. The load
average before and after each run says how busy the machine was (the estimate cannot know what others will run).

    python tools/estimate.py                           # every pair and the study, smoke budget, digits
    python tools/estimate.py --pairs darts:darts,gdas:nb201 --no-study
    python tools/estimate.py --only-study --markdown docs/estimate-table.md
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0, "days": 86400.0}
NUMBER = r"([\d.]+) (s|min|h|days)\b"
PHASES = ("search", "correlation", "evaluation")
RECORD_KEYS = {"search": "search_seconds", "correlation": "correlation_seconds", "evaluation": "eval_seconds"}


def seconds(value: str, unit: str) -> float:
    return float(value) * UNITS[unit]


@dataclass
class Outcome:
    """One run: what the plan said and what the clock and the records say."""

    label: str
    trials: int
    status: int = 0
    estimate: float | None = None  # the plan's "≈ … from now"
    per_trial: dict[str, float] = field(default_factory=dict)  # the plan's per-trial phases (an experiment's)
    from_plan: float | None = None  # wall seconds from the plan's line to the exit
    whole: float = 0.0  # wall seconds of the whole command
    measured: dict[str, float] = field(default_factory=dict)  # the records' mean per-trial phase seconds
    load: tuple[float, float] = (0.0, 0.0)
    ray_start: tuple[float | None, float | None] = (None, None)  # the plan's Ray start; the plan to the first trial
    end: tuple[float | None, float | None] = (None, None)  # the plan's end; the last trial's end to the exit


def overheads(text: str) -> tuple[float | None, float | None]:
    """The plan's "Ray's start 9 s" and "end 4 s"."""
    flat = re.sub(r"\s+", " ", text)
    start, end = re.search(rf"Ray's start {NUMBER}", flat), re.search(rf"end {NUMBER}\)", flat)
    return (seconds(*start.groups()) if start else 0.0), (seconds(*end.groups()) if end else None)


def parse_plan(text: str) -> tuple[float | None, dict[str, float]]:
    """The plan's total ("≈ 2.1 min from now") and an experiment's per-trial phases ("search 31 s, …"), from its
    lines joined (a table cell wraps)."""
    flat = re.sub(r"\s+", " ", text)
    total = re.search(rf"≈ {NUMBER} from now", flat)
    phases = {}
    inside = re.search(r"per trial ≈ [^(]*\(([^)]*)\)", flat)
    if inside:
        for phase in PHASES:
            found = re.search(rf"{phase} {NUMBER}", inside.group(1))
            if found:
                phases[phase] = seconds(*found.groups())
    return (seconds(*total.groups()) if total else None), phases


def run_one(label: str, argv: list[str], out: Path, trials: int) -> Outcome:
    """Run ``python -m harness run ARGV`` with its output to a pipe (the log form of the progress display)."""
    outcome = Outcome(label, trials, load=(os.getloadavg()[0], 0.0))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "RAY_CHDIR_TO_TRIAL_DIR": "0"}
    start = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "harness", "run", *argv, "--out", str(out), "--name", label],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    lines, plan_at, first_start, last_end = [], None, None, None
    assert child.stdout is not None
    for line in child.stdout:
        lines.append(line)
        if plan_at is None and "from now" in re.sub(r"\s+", " ", "".join(lines[-3:])):
            plan_at = time.monotonic()
        if first_start is None and re.match(r"\d\d:\d\d:\d\d  .*: starting", line):
            first_start = time.monotonic()
        if re.match(r"\d\d:\d\d:\d\d  .*: (finished|error|diverged)", line):
            last_end = time.monotonic()
    outcome.status = child.wait()
    end = time.monotonic()
    outcome.whole = end - start
    outcome.from_plan = None if plan_at is None else end - plan_at
    outcome.estimate, outcome.per_trial = parse_plan("".join(lines))
    planned_start, planned_end = overheads("".join(lines))
    outcome.ray_start = (planned_start, None if None in (plan_at, first_start) else first_start - plan_at)
    outcome.end = (planned_end, None if last_end is None else end - last_end)
    (out / f"{label}.log").write_text("".join(lines), encoding="utf-8")
    records = [json.loads(p.read_text()) for p in (out / label).rglob("trials/*.json")]
    for phase, key in RECORD_KEYS.items():
        values = [r[key] for r in records if isinstance(r.get(key), (int, float))]
        if values:
            outcome.measured[phase] = sum(values) / len(values)
    outcome.load = (outcome.load[0], os.getloadavg()[0])
    return outcome


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def row(o: Outcome) -> str:
    ratio = "—" if not (o.estimate and o.from_plan) else f"{o.from_plan / o.estimate:.2f}"
    phases = [f"{fmt(o.per_trial.get(p))} / {fmt(o.measured.get(p))}" if o.per_trial else
              f"— / {fmt(o.measured.get(p))}" for p in PHASES]
    status = "" if o.status == 0 else f" (exit {o.status})"
    return (f"| {o.label}{status} | {o.trials} | {fmt(o.estimate)} | {fmt(o.from_plan)} | {ratio} | {fmt(o.whole)} | "
            + " | ".join(phases) + f" | {fmt(o.ray_start[0])} / {fmt(o.ray_start[1])} | "
            f"{fmt(o.end[0])} / {fmt(o.end[1])} | {o.load[0]:.1f} → {o.load[1]:.1f} |")


HEADER = ("| run | trials | estimate | measured (from the plan) | measured / estimate | whole command | "
          "search: plan / records | correlation: plan / records | evaluation: plan / records | "
          "Ray's start: plan / plan to first trial | end: plan / last trial to exit | load average |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def registered_pairs() -> list[tuple[str, str]]:
    sys.path.insert(0, str(ROOT))
    from harness.core.registry import valid_pairs

    return valid_pairs()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", help="method:space,... (default: every registered pair)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per pair (default 1)")
    parser.add_argument("--budget", default="smoke")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--no-study", action="store_true", help="leave out the study")
    parser.add_argument("--only-study", action="store_true", help="the study alone")
    parser.add_argument("--out", type=Path, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="harness-estimate-"))
    out.mkdir(parents=True, exist_ok=True)
    pairs = ([tuple(p.split(":", 1)) for p in args.pairs.split(",")] if args.pairs else registered_pairs())
    runs = [] if args.only_study else [
        (f"{m}-{s}", ["--method", m, "--space", s, "--seeds", str(args.seeds)], args.seeds) for m, s in pairs]
    if not args.no_study:
        runs.append(("study-nb201", ["--method", "darts,gdas,random", "--space", "nb201", "--seeds", "3"], 9))
    print(HEADER, flush=True)
    rows = []
    for label, run_argv, trials in runs:
        outcome = run_one(label, [*run_argv, "--budget", args.budget, "--dataset", args.dataset], out, trials)
        rows.append(row(outcome))
        print(rows[-1], flush=True)
    if args.markdown:
        args.markdown.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    print(f"logs and results: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
