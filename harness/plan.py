"""The plan shown before anything runs: what each experiment (or study cell) will run, on what, and the time it
should take, extrapolated from a few steps measured on this machine."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.core.data import SearchData
from harness.core.records import split_summary
from harness.core.registry import get_method, get_space
from harness.core.storage import Remote
from harness.core.train import seed_everything, time_train_steps
from harness.evaluation import FinalTraining
from harness.spec import ExperimentSpec
from harness.study import Study
from harness.trial import pick_device


def estimate_seconds(spec: ExperimentSpec, dataset: Any) -> tuple[float, float]:
    """Seconds per trial for search and evaluation, extrapolated from a few measured steps (seed 0)."""
    cfg = spec.config
    torch.set_num_threads(min(spec.cpus_per_trial, os.cpu_count() or 1))  # never more than a trial gets
    device = pick_device(spec.gpus_per_trial, strict=False)  # the driver: maybe a cluster's GPU-less head
    seed_everything(0)
    data = SearchData(dataset, cfg, 0, device)
    space = get_space(spec.space)(cfg)
    method = get_method(spec.method)(space, cfg, data.info, device, 0)
    step, steps_per_epoch = method.step_time(data)
    search = step * steps_per_epoch * method.num_epochs()
    if space.evaluates_by_lookup():
        return search, 0.0

    final = FinalTraining(space, space.sample(np.random.default_rng(0)), data, cfg, device)
    eval_step = time_train_steps(final.net, final.opt, data.eval_train_batches(0), cfg["eval_grad_clip"],
                                 cfg["auxiliary_weight"], steps=2)
    evaluation = eval_step * len(data.eval_train_batches(0)) * final.epochs
    return search, evaluation


def parallel_trials(spec: ExperimentSpec) -> int:
    """How many trials of this experiment can run at once on this machine."""
    fits = (os.cpu_count() or 1) // spec.cpus_per_trial
    if spec.gpus_per_trial:
        fits = min(fits, int(torch.cuda.device_count() // spec.gpus_per_trial))
    limit = spec.max_concurrent or len(spec.seeds)
    return max(1, min(fits, limit, len(spec.seeds)))


def _fmt_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def print_plan(specs: list[ExperimentSpec], folder: Path | Remote, console: Console,
               estimates: list[tuple[float, float]] | None, study: Study | None = None,
               resume_jobs: int | None = None) -> None:
    """The plan of an experiment (one spec: its trials, split, budget, device and estimate) or of a study (every
    cell with its configuration and estimated cost, and the total); ``resume_jobs``: a resume's, with the trials left
    (an experiment's plan is then titled so). Ends with a warning when the paper budget would run without a GPU."""
    if study is None:
        experiment_plan(specs[0], folder, console, estimates[0] if estimates else None, resume_jobs is not None)
    else:
        study_plan(study, specs, estimates, console, folder, resume_jobs)
    first = specs[0]
    if first.budget == "paper" and not first.gpus_per_trial:
        console.print(Text("warning:", style="bold yellow"), "the paper budget is about to run without a GPU: "
                      f"expect days per seed; use {'--budget' if study is None else 'budget'} small or smoke on a CPU")


def experiment_plan(spec: ExperimentSpec, folder: Path | Remote, console: Console,
                    estimate: tuple[float, float] | None, resume: bool) -> None:
    device = "GPU" if spec.gpus_per_trial else "CPU"
    table = Table(title="resume" if resume else "plan", show_header=False, box=None)
    table.add_row("experiment", f"{spec.name}  ({folder})")
    table.add_row("trials", f"{len(spec.seeds)}: {spec.method} on {spec.space} / {spec.dataset}, "
                            f"seeds {','.join(map(str, spec.seeds))}")
    if spec.split is not None:  # experiments made before the split was recorded have none
        table.add_row("split", split_summary(spec.split))
    table.add_row("budget", f"{spec.budget}  (config {spec.config_hash}"
                            + (f", overrides {spec.overrides}" if spec.overrides else "") + ")")
    table.add_row("device", f"{device}; per trial {spec.cpus_per_trial} CPU, {spec.gpus_per_trial} GPU"
                            + (f"; at most {spec.max_concurrent} at once" if spec.max_concurrent else ""))
    if estimate is not None:
        search, evaluation = estimate
        waves = -(-len(spec.seeds) // parallel_trials(spec))
        table.add_row("estimate", f"≈ {_fmt_seconds(search + evaluation)} per trial (search "
                                  f"{_fmt_seconds(search)}, evaluation {_fmt_seconds(evaluation)}); "
                                  f"≈ {_fmt_seconds(waves * (search + evaluation))} in all, from a few steps "
                                  "measured on this machine")
    console.print(table)


def study_plan(study: Study, specs: list[ExperimentSpec], estimates: list[tuple[float, float]] | None,
               console: Console, study_dir: Path | Remote, resume_jobs: int | None) -> None:
    """Every cell with its configuration and estimated cost, and the total."""
    table = Table(title=f"study {study.name} ({study_dir})" + (": resume" if resume_jobs is not None else ""))
    for header in ("cell", "method", "space", "dataset", "config", "seeds", "per trial", "cell total"):
        table.add_column(header)
    total = 0.0
    for k, spec in enumerate(specs):
        per = sum(estimates[k]) if estimates else None
        seeds = len(spec.seeds)
        total += (per or 0.0) * seeds
        table.add_row(spec.cell, spec.method, spec.space, spec.dataset,
                      spec.config_hash + (f" {spec.overrides}" if spec.overrides else ""), str(seeds),
                      "—" if per is None else f"≈ {_fmt_seconds(per)}",
                      "—" if per is None else f"≈ {_fmt_seconds(per * seeds)}")
    console.print(table)
    first = specs[0]
    device = "GPU" if first.gpus_per_trial else "CPU"
    jobs = sum(len(s.seeds) for s in specs)
    line = (f"{len(specs)} cells, {jobs} trials ({study.budget} budget), {device}; per trial {first.cpus_per_trial} "
            f"CPU, {first.gpus_per_trial} GPU")
    if estimates:
        slots = max(1, min(parallel_trials(dataclasses.replace(first, seeds=tuple(range(jobs)))), jobs))
        line += f"; ≈ {_fmt_seconds(total / slots)} in all ({slots} at once), from a few steps measured here"
    if resume_jobs is not None:
        line += f"; {resume_jobs} trials left to run"
    console.print(line)
