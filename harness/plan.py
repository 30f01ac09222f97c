"""The plan shown before anything runs: what each experiment (or study cell) will run, on what, and the time it
should take (``harness.estimate``: every phase of a trial measured on a few steps, and the run's concurrency)."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.core.records import split_summary
from harness.core.storage import Remote
from harness.estimate import (
    PHASE_LABELS,
    RunCost,
    TrialCost,
    contention,
    node_resources,
    run_seconds,
    trial_slots,
)
from harness.spec import ExperimentSpec
from harness.study import Study


def _fmt_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def run_cost(specs: list[ExperimentSpec], estimates: list[TrialCost], jobs: list[int] | None = None) -> RunCost:
    """The whole run of every seed of ``specs`` (``jobs``: how many of each spec's trials run, default all), each trial
    taking what its spec's estimate says, on the slots the cluster or this machine offers at once."""
    counts = jobs if jobs is not None else [len(s.seeds) for s in specs]
    costs = [cost for cost, count in zip(estimates, counts) for _ in range(count)]
    first = specs[0]
    bundles = max(spec.bundles for spec in specs)  # a black-box search's bb_workers: more resources per trial
    cpus, gpus = first.cpus_per_trial * bundles, first.gpus_per_trial * bundles
    slots = trial_slots(cpus, gpus, node_resources(first), first.max_concurrent, len(costs))
    slowdown = 1.0
    if not first.address and not first.gpus_per_trial:  # CPU trials on this machine share its cores
        slowdown = contention(slots, cpus, os.cpu_count() or 1, os.getloadavg()[0])
    return run_seconds(costs, slots, joined_cluster=bool(first.address), slowdown=slowdown)


def resources_text(spec: ExperimentSpec) -> str:
    """``1 CPU, 0 GPU``; a trial of several bundles (``bb_workers``): ``4 bundles of 1 CPU, 0 GPU``."""
    bundle = f"{spec.cpus_per_trial} CPU, {spec.gpus_per_trial} GPU"
    return bundle if spec.bundles == 1 else f"{spec.bundles} bundles of {bundle} (candidates trained side by side)"


def phase_text(cost: TrialCost) -> str:
    """``start-up 9 s, search 31 s, correlation 16 s, evaluation 23 s, latency 1 s`` (phases that take time)."""
    return ", ".join(f"{PHASE_LABELS[name]} {_fmt_seconds(seconds)}" for name, seconds in cost.phases().items()
                     if seconds >= 0.5)


def run_text(run: RunCost) -> str:
    """``≈ 2.1 min from now (2 at once; Ray's start 7 s, end 4 s)``."""
    parts = [f"{run.slots} at once" + (f", ×{run.slowdown:.2f} for sharing the cores" if run.slowdown > 1.01 else "")]
    parts += ([f"Ray's start {_fmt_seconds(run.start)}"] if run.start else []) + [f"end {_fmt_seconds(run.end)}"]
    return f"≈ {_fmt_seconds(run.total)} from now ({'; '.join(parts)})"


def print_plan(specs: list[ExperimentSpec], folder: Path | Remote, console: Console,
               estimates: list[TrialCost] | None, study: Study | None = None,
               resume_jobs: int | None = None) -> None:
    """The plan of an experiment (one spec: its trials, split, budget, device and estimate) or of a study (every
    cell with its configuration and estimated cost, and the total); ``resume_jobs``: a resume's, with the trials left
    (an experiment's plan is then titled so). Ends with a warning when the paper budget would run without a GPU."""
    if study is None:
        experiment_plan(specs[0], folder, console, estimates[0] if estimates else None, resume_jobs is not None)
    else:
        study_plan(study, specs, estimates, console, folder, resume_jobs)
    first = specs[0]
    if first.budget == "paper" and not first.gpus_per_trial and any(spec.trains for spec in specs):
        console.print(Text("warning:", style="bold yellow"), "the paper budget is about to run without a GPU (its "
                      "time is the estimate above, measured on this CPU; the papers ran on GPUs): use "
                      f"{'--budget' if study is None else 'budget'} small or smoke on a CPU")


def experiment_plan(spec: ExperimentSpec, folder: Path | Remote, console: Console,
                    estimate: TrialCost | None, resume: bool) -> None:
    device = "GPU" if spec.gpus_per_trial else "CPU"
    table = Table(title="resume" if resume else "plan", show_header=False, box=None)
    table.add_row("experiment", f"{spec.name}  ({folder})")
    table.add_row("trials", f"{len(spec.seeds)}: {spec.method} on {spec.space} / {spec.dataset}, "
                            f"seeds {','.join(map(str, spec.seeds))}")
    if spec.split is not None:  # experiments made before the split was recorded have none
        table.add_row("split", split_summary(spec.split))
    table.add_row("budget", f"{spec.budget}  (config {spec.config_hash}"
                            + (f", overrides {spec.overrides}" if spec.overrides else "") + ")")
    table.add_row("device", f"{device}; per trial {resources_text(spec)}"
                            + (f"; at most {spec.max_concurrent} at once" if spec.max_concurrent else ""))
    if estimate is not None:
        run = run_cost([spec], [estimate])
        table.add_row("estimate", f"{run_text(run)}; per trial ≈ {_fmt_seconds(estimate.total)} "
                                  f"({phase_text(estimate)}), from a few steps measured on {estimate.where}")
    console.print(table)


def study_plan(study: Study, specs: list[ExperimentSpec], estimates: list[TrialCost] | None,
               console: Console, study_dir: Path | Remote, resume_jobs: int | None) -> None:
    """Every cell with its configuration and estimated cost, and the total."""
    table = Table(title=f"study {study.name} ({study_dir})" + (": resume" if resume_jobs is not None else ""))
    for header in ("cell", "method", "space", "dataset", "config", "seeds", "per trial", "cell total"):
        table.add_column(header)
    for k, spec in enumerate(specs):
        per = estimates[k].total if estimates else None
        seeds = len(spec.seeds)
        table.add_row(spec.cell, spec.method, spec.space, spec.dataset,
                      spec.config_hash + (f" {spec.overrides}" if spec.overrides else ""), str(seeds),
                      "—" if per is None else f"≈ {_fmt_seconds(per)}",
                      "—" if per is None else f"≈ {_fmt_seconds(per * seeds)}")
    console.print(table)
    first = specs[0]
    device = "GPU" if first.gpus_per_trial else "CPU"
    jobs = sum(len(s.seeds) for s in specs)
    line = f"{len(specs)} cells, {jobs} trials ({study.budget} budget), {device}; per trial {resources_text(first)}"
    if estimates:
        line += f"; {run_text(run_cost(specs, estimates))}, from a few steps measured on {estimates[0].where}"
    if resume_jobs is not None:
        line += f"; {resume_jobs} trials left to run"
    console.print(line)
