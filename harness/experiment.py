"""The driver: validate and plan an experiment or a study, run its seeds as Ray Tune trials, resume, summarise.

An experiment (``run``) is a study of one cell: both go through one pipeline — specs (``build_spec``, one per cell),
resources, data and time estimate, plan, lock, ``experiment.json`` (and a study's files), trials (``run_jobs``),
summary. Each stage lives in its module: ``request`` (what was asked and its checks), ``spec`` (the typed spec and
its JSON), ``estimate`` (the time estimate), ``plan`` (the plan), ``cluster`` (where trials run), ``lock`` (one driver
per experiment), ``runner`` (the Ray Tune experiment), ``progress`` (the display), ``resume`` and ``summary``.

Layout of one experiment (``<out>/<name>/``): ``experiment.json`` (the spec: what was asked and the
resolved configuration), ``trials/*.json`` (one record per finished seed: the source of truth),
``checkpoints/*.pt`` (the last epoch's state of each unfinished trial), ``leaderboard.csv`` /
``leaderboard.md`` (derived from the records, written as a pair), ``tune/`` (Ray Tune's own folder:
one experiment state per driver run) and ``.driver.lock`` (held by the running driver). ``<out>`` is a local folder
or a URI of an object store (``harness.core.storage``): the same layout lies there, except the lock (``lock_file``).
A study's folder holds ``study.toml``, ``study.json``, its leaderboard, ``tune/`` and ``cells/<cell>/``, each an
experiment's folder.

Order of a run: every check that needs no data (options, configuration, name, output folder, resources
of this machine or of the cluster reached with ``--address``) → the data and its split → the time
estimate and the plan → the experiment folder is claimed and locked → trials. A mistake is one line
before anything is written. A resume: ``harness.resume``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from harness.cluster import check_resources, probe
from harness.core.config import config_hash, parse_overrides, resolve
from harness.core.data import check_split, load_dataset, validate_name
from harness.core.errors import UserError
from harness.core.records import check_writable_folder, write_record
from harness.core.registry import check_pair, get_method, get_space
from harness.core.storage import Remote
from harness.estimate import TrialCost, estimate_seconds
from harness.lock import cell_locks, driver_lock, lock_holder, running_note
from harness.plan import print_plan
from harness.progress import job_label
from harness.request import (
    DEFAULT_BUDGET,
    DEFAULT_DATASET,
    DEFAULT_MAX_FAILURES,
    RunOptions,
    RunRequest,
    StudyRequest,
    check_name,
    check_run_options,
    check_seeds,
    confirm_cpu_paper,
    default_name,
)
from harness.resume import check_checkpoints, missing_seeds, resume_spec, resume_study
from harness.runner import run_jobs
from harness.spec import SPEC_FILE, ExperimentSpec
from harness.study import CELLS_DIR, STUDY_FILE, STUDY_SPEC, Study, load_study
from harness.summary import summarise

__all__ = ["DEFAULT_BUDGET", "DEFAULT_DATASET", "SPEC_FILE", "ExperimentSpec", "RunRequest", "StudyRequest",
           "build_spec", "default_name", "estimate_seconds", "resume_spec", "run", "run_study", "summarise"]


def build_spec(req: RunRequest, existing_ok: bool = False) -> ExperimentSpec:
    """Validate a new experiment and resolve everything a trial needs; writes nothing. ``existing_ok``: the
    folder may exist (a study's cell, checked against the stored one on a resume)."""
    seeds = req.seeds if req.seeds is not None else [0]
    check_seeds(seeds)
    check_run_options(req)
    if not req.method or not req.space:
        raise UserError("run needs --method and --space (or --resume --name NAME)")
    dataset, budget = req.dataset or DEFAULT_DATASET, req.budget or DEFAULT_BUDGET
    check_pair(req.method, req.space)
    validate_name(dataset)
    resolved = resolve(get_method(req.method), get_space(req.space), budget, parse_overrides(req.overrides))
    name = req.name if req.name is not None else default_name(req.method, req.space, dataset, budget)
    check_name(name)
    check_writable_folder(req.out, "--out")
    exp_dir = (req.out / name).absolute()
    if exp_dir.exists() and not existing_ok:
        raise UserError(f"experiment '{name}' already exists in '{req.out}'; add --resume to continue it "
                        "or choose another --name" + running_note(exp_dir))
    cpus, gpus = trial_resources(req)
    return ExperimentSpec(
        method=req.method, space=req.space, dataset=dataset, budget=budget, seeds=tuple(seeds), folder=exp_dir,
        config=resolved.values, config_sources=resolved.sources, overrides=resolved.overrides,
        config_hash=config_hash(req.method, req.space, dataset, budget, resolved.values),
        cpus_per_trial=cpus, gpus_per_trial=gpus, max_concurrent=req.max_concurrent,
        max_failures=DEFAULT_MAX_FAILURES if req.max_failures is None else req.max_failures,
        address=req.address, data_dir=req.data_dir, callbacks=tuple(req.callbacks or ()), mlflow_uri=req.mlflow_uri,
        ship_code=req.ship_code, created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))


def trial_resources(req: RunOptions) -> tuple[int, float]:
    """CPUs (torch threads) and GPUs per trial: as asked, else one GPU where CUDA is and the cores shared among the
    GPUs, or one thread on a CPU. Default threads per trial do not depend on how many seeds run at once: torch's CPU
    results depend on the thread count, and seed 0 must give the same record whether it runs alone or beside
    others."""
    cuda = torch.cuda.device_count()
    gpus = req.gpus_per_trial if req.gpus_per_trial is not None else (1 if cuda else 0)
    ncpu = os.cpu_count() or 1
    return req.cpus_per_trial or (max(1, ncpu // max(1, cuda)) if gpus else 1), gpus


def cell_specs(study: Study, req: StudyRequest, study_dir: Path | Remote, existing_ok: bool) -> list[ExperimentSpec]:
    """Every cell's spec (``build_spec``: its pair, configuration keys and dataset checked), as the experiment
    ``cells/<cell>/`` of the study; a problem names the cell."""
    specs = []
    for cell in study.cells:
        run_req = RunRequest(**{**req.options(), "out": study_dir / CELLS_DIR, "name": cell.folder, "resume": False},
                             method=cell.method, space=cell.space, dataset=cell.dataset, budget=study.budget,
                             seeds=study.seeds, overrides=cell.overrides)
        try:
            spec = build_spec(run_req, existing_ok=existing_ok)
        except UserError as err:
            raise UserError(f"study '{study.name}', {cell.name} on {cell.space}/{cell.dataset}: {err}") from None
        specs.append(dataclasses.replace(spec, cell=cell.name, study=study.name))
    return specs


def measured(specs: list[ExperimentSpec], console: Console) -> tuple[list[ExperimentSpec], list[TrialCost]]:
    """The specs with their data's split (checked), and each one's time estimate (its trials load the data too: the
    seconds it took count in their start-up); each dataset is loaded once. An experiment's plan says where its data
    came from."""
    loaded: dict[tuple[Any, ...], tuple[Any, float]] = {}
    out, estimates = [], []
    for spec in specs:
        key = (spec.dataset, spec.data_dir, spec.config["image_size"])
        if key not in loaded:
            start = time.perf_counter()
            dataset = load_dataset(*key)
            loaded[key] = dataset, time.perf_counter() - start
            if dataset.source and spec.cell is None:
                console.print(f"data: {spec.dataset} {dataset.source}")
        dataset, load_seconds = loaded[key]
        train_limit = int(spec.config.get("train_limit", 0))
        spec = dataclasses.replace(spec, split=dataset.limited(train_limit).split_info())
        check_split(spec.split, train_limit)
        out.append(spec)
        estimates.append(estimate_seconds(spec, dataset, load_seconds))
    return out, estimates


def write_specs(specs: list[ExperimentSpec], folder: Path | Remote, study: Study | None) -> None:
    """Every cell's ``experiment.json`` and, for a study, its file as given and ``study.json`` (its cells' folders
    and specs)."""
    for spec in specs:
        spec.write()
    if study is not None:
        write_record(folder / STUDY_SPEC, {"name": study.name, "cells": [s.name for s in specs],
                                           "specs": {s.name: s.to_json() for s in specs}})
        (folder / STUDY_FILE).write_text(study.text, encoding="utf-8")


@contextmanager
def locked(specs: list[ExperimentSpec], folder: Path | Remote, study: Study | None, create: bool) -> Iterator[None]:
    """The locks the driver holds: the experiment's, or the study's and every cell's (a cell is an experiment, and
    ``run --resume`` of one must not run beside its study's driver)."""
    with driver_lock(folder, create=create), (cell_locks(specs, create=create) if study else nullcontext()):
        yield


def run_cells(specs: list[ExperimentSpec], folder: Path | Remote, study: Study | None, todo: dict[str, list[int]],
              console: Console, estimates: list[TrialCost] | None = None, columns: list[str] | None = None) -> int:
    """Run the seeds of ``todo`` (by cell folder name) as one Ray Tune experiment in ``folder`` (``estimates``: each
    spec's trial cost, for the progress display's times left); summarise (the leaderboard's terminal ``columns``:
    ``--columns``)."""
    done = [job_label(s, seed) for s in specs for seed in s.seeds if seed not in todo[s.name]]
    jobs = [(s, seed) for s in specs for seed in todo[s.name]]
    costs = {job_label(s, seed): cost for s, cost in zip(specs, estimates or []) for seed in todo[s.name]}
    errors, interrupted = run_jobs(jobs, done, folder, specs[0], console, costs)
    return summarise(specs, folder, console, errors, interrupted, study, columns)


def launch(specs: list[ExperimentSpec], folder: Path | Remote, study: Study | None, console: Console,
           req: RunOptions) -> int:
    """A new experiment or study: data, plan, claimed folder, specs written, every seed run. A dry run ends after
    the plan."""
    confirm_cpu_paper(specs, req, ask=False)  # refused off a terminal before anything is loaded or written
    checked_resources(specs[0], req)  # before anything is measured or written; every cell asks the same per trial
    specs, estimates = measured(specs, console)
    print_plan(specs, folder, console, estimates, study)
    if req.dry_run:
        return dry_run_end(folder, console)
    confirm_cpu_paper(specs, req, ask=True)
    with locked(specs, folder, study, create=True):
        write_specs(specs, folder, study)
        return run_cells(specs, folder, study, {s.name: list(s.seeds) for s in specs}, console, estimates,
                         req.columns)


def relaunch(specs: list[ExperimentSpec], folder: Path | Remote, study: Study | None, console: Console,
             req: RunOptions) -> int:
    """A resumed experiment or study: every seed without a valid record runs again, from its checkpoint if any. A
    dry run shows what would run, without the lock (and says if a driver holds it)."""
    checked_resources(specs[0], req)
    with nullcontext() if req.dry_run else locked(specs, folder, study, create=False):
        todo = {spec.name: missing_seeds(spec) for spec in specs}  # under the lock: another driver may just have ended
        for spec in specs:
            check_checkpoints(spec, todo[spec.name])
        if not req.dry_run:
            write_specs(specs, folder, study)  # where it lies now, and the seeds added
        left = sum(len(seeds) for seeds in todo.values())
        print_plan(specs, folder, console, None, study, resume_jobs=left)
        if req.dry_run:
            return dry_run_end(folder, console)
        if not left:
            console.print(f"all {len(specs[0].seeds)} seeds have their records; nothing to run" if study is None
                          else "every trial of the study has its record; nothing to run")
            return summarise(specs, folder, console, [], False, study, req.columns)
        return run_cells(specs, folder, study, todo, console, None, req.columns)


def checked_resources(spec: ExperimentSpec, req: RunOptions) -> None:
    """``check_resources``; a dry run starts no Ray, so on ``--address`` it only checks that the head answers."""
    if req.dry_run and spec.address:
        probe(spec.address)
    else:
        check_resources(spec)


def dry_run_end(folder: Path | Remote, console: Console) -> int:
    """The end of a dry run: what it did not do (and who runs the folder now, if a driver does)."""
    holder = lock_holder(folder) if folder.exists() else None
    console.print("dry run: nothing was started or written (drop --dry-run to run it)"
                  + (f"; {folder.name} is being run now by {holder}" if holder else ""))
    return 0


def run(req: RunRequest, console: Console) -> int:
    """``run``: a new experiment, or ``--resume`` of an experiment or of a study (all its cells)."""
    if req.resume and req.name and (req.out / req.name / STUDY_SPEC).is_file():  # a study: resume all its cells
        asked = [option for option, value in (("--method", req.method), ("--space", req.space),
                                              ("--dataset", req.dataset), ("--budget", req.budget),
                                              ("--set", req.overrides), ("--seeds", req.seeds)) if value]
        if asked:  # a study's cells and seeds are its file's
            raise UserError(f"--resume of study '{req.name}' takes no {asked[0]}: its study file says what its cells "
                            f"compute; to add seeds or change it, edit {req.out / req.name / STUDY_FILE} (more seeds "
                            "are added; other changes need a new study) and resume again")
        return run_study(StudyRequest(**req.options(), file=None, study=None), console)
    if req.resume:
        spec = resume_spec(req, console)
        return relaunch([spec], spec.folder, None, console, req)
    spec = build_spec(req)
    return launch([spec], spec.folder, None, console, req)


def run_study(req: StudyRequest, console: Console) -> int:
    """Validate, plan and run a study as one Ray Tune experiment over every (cell, seed); or resume it, running
    every (cell, seed) without a valid record. The study's driver holds the study's lock and every cell's, as
    ``run`` holds an experiment's. Returns the exit status."""
    study = req.study if req.study is not None else (load_study(req.file) if req.file is not None else None)
    name = req.name or (study.name if study is not None else None)
    if not name:
        raise UserError("--resume of a study needs --name (or its study file)")
    check_name(name)
    study_dir = (req.out / name).absolute()
    if req.resume:
        study, specs = resume_study(study, req, study_dir, console)
        return relaunch(specs, study_dir, study, console, req)
    if study is None:
        raise UserError("study run needs a study file")
    check_writable_folder(req.out, "--out")
    if study_dir.exists():
        raise UserError(f"study '{name}' already exists in '{req.out}'; add --resume to continue it or choose "
                        "another --name" + running_note(study_dir))
    return launch(cell_specs(study, req, study_dir, existing_ok=False), study_dir, study, console, req)
