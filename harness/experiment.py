"""The driver: validate and plan an experiment, run its seeds as Ray Tune trials, resume, summarise.

Layout of one experiment (``<out>/<name>/``): ``experiment.json`` (the spec: what was asked and the
resolved configuration), ``trials/*.json`` (one record per finished seed: the source of truth),
``checkpoints/*.pt`` (the last epoch's state of each unfinished trial), ``leaderboard.csv`` /
``leaderboard.md`` (derived from the records, written as a pair), ``tune/`` (Ray Tune's own folder:
one experiment state per driver run) and ``.driver.lock`` (held by the running driver). ``<out>`` is a local folder
or a URI of an object store (``harness.core.storage``): the same layout lies there, except the lock (``lock_file``).

Order of a run: every check that needs no data (options, configuration, name, output folder, resources
of this machine or of the cluster reached with ``--address``) → the data and its split → the time
estimate and the plan → the experiment folder is claimed and locked → trials. A mistake is one line
before anything is written.

Resume. A resume runs every seed of the experiment that has no valid record of its setting (never
finished, interrupted, or its record deleted or corrupt) as a fresh Ray Tune trial that continues from
the harness's own checkpoint — not by restoring Ray Tune's pickled experiment state, which would run
code from the results folder and point at the folder's old absolute path. It runs where ``--out`` points
now, so a moved experiment folder resumes in place.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import math
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ray import tune
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from harness.checkpoints import load_checkpoint
from harness.core.config import (
    MAX_NAME,
    MAX_SEED,
    MAX_SEEDS,
    NAME_PATTERN,
    check_count,
    config_hash,
    parse_overrides,
    resolve,
)
from harness.core.data import SearchData, check_split, default_cache_dir, load_dataset, validate_name
from harness.core.errors import UserError, one_line
from harness.core.metric_table import SUMMARY
from harness.core.places import is_remote
from harness.core.records import (
    check_writable_folder,
    load_records,
    os_error_line,
    record_filename,
    split_summary,
    write_record,
)
from harness.core.registry import check_pair, get_method, get_space
from harness.core.storage import Remote, StoreError, check_no_credentials, location, uri
from harness.core.train import seed_everything, time_train_steps
from harness.evaluation import FinalTraining
from harness.interrupts import sigterm_deferred
from harness.leaderboard import build_leaderboard, cell_text, leaderboard_table, write_leaderboard
from harness.study import CELLS_DIR, STUDY_FILE, STUDY_SPEC, Study, load_study, parse_study
from harness.trial import (
    DIVERGED,
    TRIAL_IDS,
    checkpoint_path,
    finished_record,
    job_text,
    pick_device,
    run_trial,
)

SPEC_FILE = "experiment.json"
TUNE_DIR = "tune"


DEFAULT_DATASET = "cifar10"
DEFAULT_BUDGET = "paper"
DEFAULT_MAX_FAILURES = 2


@dataclass
class RunRequest:
    """What ``run`` was asked. ``None`` means "not given": a new experiment takes the default, a resume
    the experiment's own value."""

    method: str | None
    space: str | None
    dataset: str | None
    budget: str | None
    seeds: list[int] | None
    overrides: list[str]
    out: Path | Remote
    name: str | None
    cpus_per_trial: int | None
    gpus_per_trial: float | None
    max_concurrent: int | None
    max_failures: int | None
    address: str | None
    data_dir: str | None
    resume: bool
    callbacks: list[str] | None = None  # extra Ray Tune loggers: mlflow, wandb (they change nothing a trial computes)
    mlflow_uri: str | None = None  # MLflow's tracking URI (default: a file store in the experiment folder)
    ship_code: bool = True  # on --address: the trial workers get the harness's code through Ray's runtime_env


def default_name(method: str, space: str, dataset: str, budget: str) -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    data = record_filename("x", "x", dataset, 0)[len("x-x-"):-len("-s0.json")][:40]  # a folder's name may be long
    return f"{method}-{space}-{data}-{budget}-{stamp}"


# --- checks of the request (nothing is written) ---------------------------------------------------------
def check_name(name: str) -> None:
    """An experiment name is a folder name: letters, digits and ``._+=-``, not starting with a dot or a
    dash, at most ``MAX_NAME`` characters."""
    if not name:
        raise UserError("--name is empty; give a folder name such as darts-cifar10 (or leave --name out)")
    if len(name) > MAX_NAME:
        raise UserError(f"--name is {len(name)} characters long; at most {MAX_NAME} (a folder name)")
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(f"--name '{name}' must be a plain folder name: letters, digits and . _ + = -, "
                        "starting with a letter or digit")


def check_seeds(seeds: list[int]) -> None:
    if not seeds:
        raise UserError("no seeds: give --seeds N (N ≥ 1) or --seed-list 0,1,2")
    check_count("seeds of one experiment", len(seeds), MAX_SEEDS, "run the seeds as several experiments")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seed-list repeats a seed: {','.join(map(str, seeds))}")
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise UserError(f"seed {bad[0]} is out of range: seeds are integers in 0..{MAX_SEED}")


def check_run_options(req: RunRequest) -> None:
    """The options that say how trials run (not what they compute)."""
    if req.cpus_per_trial is not None and req.cpus_per_trial < 1:
        raise UserError(f"--cpus-per-trial must be at least 1 (got {req.cpus_per_trial})")
    gpus = req.gpus_per_trial
    if gpus is not None:
        if not math.isfinite(gpus) or gpus < 0:
            raise UserError(f"--gpus-per-trial must be a number ≥ 0 (got {gpus})")
        if gpus > 1 and gpus != int(gpus):
            raise UserError(f"--gpus-per-trial {gpus}: more than one GPU per trial must be a whole number")
    if req.max_concurrent is not None and req.max_concurrent < 1:
        raise UserError(f"--max-concurrent must be at least 1 (got {req.max_concurrent})")
    if req.max_failures is not None and req.max_failures < 0:
        raise UserError(f"--max-failures must be 0 or more (got {req.max_failures}); it counts retries")
    if req.address is not None:
        _host_port(req.address)
    if req.mlflow_uri:  # stored in the spec and handed to MLflow, like --out: no credentials in it
        check_no_credentials(req.mlflow_uri, "--mlflow-uri")
    if "mlflow" in (req.callbacks or []) and is_remote(req.out) and not req.mlflow_uri:
        raise UserError(f"--callback mlflow with --out {req.out}: MLflow's default file store cannot live on an "
                        "object store; give --mlflow-uri (a tracking server, or file:/a/local/folder)")


def check_resources(spec: dict[str, Any]) -> None:
    """A trial must fit: on the cluster of ``--address`` (joined here), else on this machine."""
    if spec["address"]:
        connect_cluster(spec)
    else:
        check_machine(spec["cpus_per_trial"], spec["gpus_per_trial"])


def check_machine(cpus: int, gpus: float) -> None:
    """A trial must fit on this machine (local Ray has its cores and GPUs and waits forever otherwise)."""
    ncpu, cuda = os.cpu_count() or 1, torch.cuda.device_count()
    if cpus > ncpu:
        raise UserError(f"--cpus-per-trial {cpus} but this machine has {ncpu} CPU cores; use at most {ncpu}")
    if gpus > 0 and not cuda:
        raise UserError(f"--gpus-per-trial {gpus:g} but this machine has no CUDA GPU; use --gpus-per-trial 0 "
                        "(or --address of a cluster with GPUs)")
    if gpus > cuda:
        raise UserError(f"--gpus-per-trial {gpus:g} but this machine has {cuda} GPUs; use at most {cuda}")


def build_spec(req: RunRequest, existing_ok: bool = False) -> dict[str, Any]:
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
    cuda = torch.cuda.device_count()
    gpus = req.gpus_per_trial if req.gpus_per_trial is not None else (1 if cuda else 0)
    # Default threads per trial do not depend on how many seeds run at once: torch's CPU results depend on
    # the thread count, and seed 0 must give the same record whether it runs alone or beside others.
    ncpu = os.cpu_count() or 1
    cpus = req.cpus_per_trial or (max(1, ncpu // max(1, cuda)) if gpus else 1)
    values = resolved.values
    return {
        "method": req.method, "space": req.space, "dataset": dataset, "budget": budget,
        "seeds": list(seeds), "experiment": name, "out": uri(req.out),
        "records_dir": uri(exp_dir / "trials"), "config": values, "config_sources": resolved.sources,
        "overrides": resolved.overrides,
        "config_hash": config_hash(req.method, req.space, dataset, budget, values),
        "cpus_per_trial": cpus, "gpus_per_trial": gpus, "max_concurrent": req.max_concurrent,
        "max_failures": DEFAULT_MAX_FAILURES if req.max_failures is None else req.max_failures,
        "address": req.address, "data_dir": req.data_dir,
        "callbacks": list(req.callbacks or []), "mlflow_uri": req.mlflow_uri, "ship_code": req.ship_code,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


# --- resuming -------------------------------------------------------------------------------------------
SPEC_KEYS = ("method", "space", "dataset", "budget", "seeds", "experiment", "config", "config_hash", "overrides",
             "cpus_per_trial", "gpus_per_trial", "max_concurrent", "max_failures", "address", "data_dir")


def exp_folder(spec: dict[str, Any]) -> Path | Remote:
    """The experiment's folder: ``<out>/<experiment>``, local or on an object store."""
    return location(spec["out"]) / spec["experiment"]


def load_spec(out: Path | Remote, name: str | None) -> dict[str, Any]:
    if not name:
        raise UserError("--resume needs the experiment's --name (and the same --out)")
    path = out / name / SPEC_FILE
    if not path.is_file():
        raise UserError(f"no experiment '{name}' in '{out}' to resume (missing {path})")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"'{path}' is corrupt; cannot resume this experiment") from None
    except OSError as err:
        raise UserError(os_error_line("read", path, err)) from None
    missing = [k for k in SPEC_KEYS if not isinstance(spec, dict) or k not in spec]
    if missing:
        raise UserError(f"'{path}' is not an experiment made by the harness (no {', '.join(missing)}); "
                        "cannot resume it")
    return spec


def changed_overrides(spec: dict[str, Any], overrides: list[str]) -> list[str]:
    """The keys on which the ``--set`` of ``overrides`` differ from the experiment's own (a resume keeps them)."""
    resolved = resolve(get_method(spec["method"]), get_space(spec["space"]), spec["budget"], parse_overrides(overrides))
    return sorted(k for k in {*resolved.overrides, *spec["overrides"]}
                  if resolved.overrides.get(k) != spec["overrides"].get(k))


def resume_spec(req: RunRequest, console: Console) -> dict[str, Any]:
    """The experiment's spec for this resume, where the folder now lies (``resumed_spec``); its notes printed."""
    spec, notes, made_in = resumed_spec(req)
    exp_dir = (req.out / req.name).absolute()
    if made_in != exp_dir:
        notes.append(f"the experiment was made in {made_in}; it continues in {exp_dir}")
    for note in notes:
        console.print(f"resume: {note}")
    return spec


def resumed_spec(req: RunRequest) -> tuple[dict[str, Any], list[str], Path | Remote]:
    """The experiment's spec for this resume, where the folder now lies; the lines that say what changed; the folder
    the experiment was made in (or last resumed in).

    What a trial computes cannot change on a resume: a differing method, space, dataset, budget,
    ``--set``, data folder or threads/GPUs per trial (torch's results depend on them) is refused, naming
    the option. What is safe changes and is said: more seeds (the new ones join the experiment), and how
    trials are scheduled (``--max-concurrent``, ``--max-failures``, ``--address``) for this run.
    """
    check_run_options(req)
    spec = load_spec(req.out, req.name)
    check_pair(spec["method"], spec["space"])
    given = {"--method": (req.method, spec["method"]), "--space": (req.space, spec["space"]),
             "--dataset": (req.dataset, spec["dataset"]), "--budget": (req.budget, spec["budget"]),
             "--cpus-per-trial": (req.cpus_per_trial, spec["cpus_per_trial"]),
             "--gpus-per-trial": (req.gpus_per_trial, spec["gpus_per_trial"]),
             "--data-dir": (req.data_dir, spec["data_dir"])}
    for option, (asked, had) in given.items():
        if asked is not None and asked != had:
            raise UserError(f"--resume with {option} {asked}, but experiment '{req.name}' has {had}; a resume "
                            "keeps what its trials compute (start a new --name to change it)")
    if req.overrides:
        changed = changed_overrides(spec, req.overrides)
        if changed:
            raise UserError(f"--resume with --set that differs from experiment '{req.name}' on "
                            f"{', '.join(changed)} (it has {spec['overrides'] or 'no overrides'}); a resume keeps "
                            "what its trials compute (start a new --name to change it)")
    notes = []
    if req.seeds is not None:
        check_seeds(req.seeds)
        dropped = sorted(set(spec["seeds"]) - set(req.seeds))
        if dropped:
            raise UserError(f"--resume would leave out seeds {','.join(map(str, dropped))} of experiment "
                            f"'{req.name}'; a resume runs all its seeds (give more seeds to add some)")
        added = [s for s in req.seeds if s not in spec["seeds"]]
        if added:
            spec["seeds"] = spec["seeds"] + added
            notes.append(f"adding seeds {','.join(map(str, added))} to the experiment")
    spec.setdefault("callbacks", [])  # an experiment made before --callback
    spec.setdefault("mlflow_uri", None)
    for option, key, value in (("--max-concurrent", "max_concurrent", req.max_concurrent),
                               ("--max-failures", "max_failures", req.max_failures),
                               ("--address", "address", req.address), ("--callback", "callbacks", req.callbacks),
                               ("--mlflow-uri", "mlflow_uri", req.mlflow_uri)):
        if value is not None and value != spec[key]:
            notes.append(f"this run uses {option} {value} (before: {spec[key]})")
            spec[key] = value
    made_in, exp_dir = exp_folder(spec), (req.out / req.name).absolute()
    spec.update(out=uri(req.out), experiment=req.name, records_dir=uri(exp_dir / "trials"),
                ship_code=req.ship_code)  # how the code reaches a cluster is this run's choice
    return spec, notes, made_in


def missing_seeds(spec: dict[str, Any]) -> list[int]:
    """The seeds without a valid record of this setting: a resume runs exactly these."""
    return [s for s in spec["seeds"] if finished_record(spec, s) is None]


def check_checkpoints(spec: dict[str, Any], seeds: list[int]) -> None:
    """Every checkpoint a resumed trial would continue from loads safely (refused before anything runs)."""
    for seed in seeds:
        path = checkpoint_path(spec, seed)
        if path.exists():
            load_checkpoint(path)


# --- one driver per experiment --------------------------------------------------------------------------
LOCK_FILE = ".driver.lock"


def lock_file(exp_dir: Path | Remote) -> Path:
    """The experiment's lock file: ``<experiment>/.driver.lock``; for an experiment on an object store (which has no
    locks) a file of this machine's cache named by the experiment's URI."""
    if is_remote(exp_dir):
        return default_cache_dir() / "locks" / f"{hashlib.sha256(exp_dir.uri.encode()).hexdigest()[:20]}.lock"
    return exp_dir / LOCK_FILE


def running_note(exp_dir: Path | Remote) -> str:
    """``"; it is being run by …"`` when a driver holds the experiment's lock, else ``""``."""
    path = lock_file(exp_dir)
    if not path.is_file():
        return ""
    try:
        with open(path, "a+") as fh:
            holder = _lock_or_holder(fh)
            if holder is None:
                fcntl.flock(fh, fcntl.LOCK_UN)
                return ""
            return f"; it is being run now by {holder}"
    except OSError:
        return ""


def _lock_or_holder(fh: Any) -> str | None:
    """Take the lock of the open lock file ``fh`` without waiting: None when taken, else who holds it."""
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        return _holder(fh.read())
    return None


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"process {info['pid']} on {info['host']} (started {info['started']})"
    except (json.JSONDecodeError, KeyError, TypeError):
        return "another driver"


@contextmanager
def driver_lock(exp_dir: Path | Remote, create: bool) -> Iterator[None]:
    """Hold the experiment for this driver's lifetime.

    ``create`` claims a new experiment folder atomically (``mkdir`` fails if it exists). The lock is an
    ``flock`` on ``<experiment>/.driver.lock``, which the kernel releases when the driver ends however it
    ends, so a crashed driver never leaves the experiment locked; the file names the holder for the
    refusal of a second driver. (``flock`` is per host on most network file systems: two drivers of one
    experiment on different hosts are not caught.) An object store has neither an atomic ``mkdir`` nor locks: a new
    experiment there is refused if anything lies at its URI, and the lock is a file of this machine's cache named by
    the URI (``lock_file``), so two drivers on one machine are caught, two on different machines are not.
    """
    if create and is_remote(exp_dir):
        if exp_dir.exists():
            raise UserError(f"experiment '{exp_dir.name}' was just created by another driver in "
                            f"'{exp_dir.parent}'; choose another --name" + running_note(exp_dir))
    elif create:
        try:
            exp_dir.mkdir(parents=True)
        except FileExistsError:
            raise UserError(f"experiment '{exp_dir.name}' was just created by another driver in "
                            f"'{exp_dir.parent}'; choose another --name" + running_note(exp_dir)) from None
        except OSError as err:
            raise UserError(os_error_line("create", exp_dir, err)) from None
    path = lock_file(exp_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+")
    except OSError as err:
        raise UserError(os_error_line("write", path, err)) from None
    with fh:
        holder = _lock_or_holder(fh)
        if holder is not None:
            raise UserError(f"experiment '{exp_dir.name}' is being run now by {holder}; wait for it to end or stop "
                            "it before resuming")
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": dt.datetime.now().isoformat(timespec="seconds")}))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def estimate_seconds(spec: dict[str, Any], dataset: Any) -> tuple[float, float]:
    """Seconds per trial for search and evaluation, extrapolated from a few measured steps (seed 0)."""
    cfg = spec["config"]
    torch.set_num_threads(min(spec["cpus_per_trial"], os.cpu_count() or 1))  # never more than a trial gets
    device = pick_device(spec["gpus_per_trial"], strict=False)  # the driver: maybe a cluster's GPU-less head
    seed_everything(0)
    data = SearchData(dataset, cfg, 0, device)
    space = get_space(spec["space"])(cfg)
    method = get_method(spec["method"])(space, cfg, data.info, device, 0)
    step, steps_per_epoch = method.step_time(data)
    search = step * steps_per_epoch * method.num_epochs()
    if space.evaluates_by_lookup():
        return search, 0.0

    final = FinalTraining(space, space.sample(np.random.default_rng(0)), data, cfg, device)
    eval_step = time_train_steps(final.net, final.opt, data.eval_train_batches(0), cfg["eval_grad_clip"],
                                 cfg["auxiliary_weight"], steps=2)
    evaluation = eval_step * len(data.eval_train_batches(0)) * final.epochs
    return search, evaluation


def parallel_trials(spec: dict[str, Any]) -> int:
    """How many trials of this experiment can run at once on this machine."""
    fits = (os.cpu_count() or 1) // spec["cpus_per_trial"]
    if spec["gpus_per_trial"]:
        fits = min(fits, int(torch.cuda.device_count() // spec["gpus_per_trial"]))
    limit = spec["max_concurrent"] or len(spec["seeds"])
    return max(1, min(fits, limit, len(spec["seeds"])))


def _fmt_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def print_plan(spec: dict[str, Any], console: Console, estimate: tuple[float, float] | None,
               resume: bool) -> None:
    device = "GPU" if spec["gpus_per_trial"] else "CPU"
    table = Table(title="resume" if resume else "plan", show_header=False, box=None)
    table.add_row("experiment", f"{spec['experiment']}  ({exp_folder(spec)})")
    table.add_row("trials", f"{len(spec['seeds'])}: {spec['method']} on {spec['space']} / {spec['dataset']}, "
                            f"seeds {','.join(map(str, spec['seeds']))}")
    if "split" in spec:  # experiments made before the split was recorded have none
        table.add_row("split", split_summary(spec["split"]))
    table.add_row("budget", f"{spec['budget']}  (config {spec['config_hash']}"
                            + (f", overrides {spec['overrides']}" if spec["overrides"] else "") + ")")
    table.add_row("device", f"{device}; per trial {spec['cpus_per_trial']} CPU, {spec['gpus_per_trial']} GPU"
                            + (f"; at most {spec['max_concurrent']} at once" if spec["max_concurrent"] else ""))
    if estimate is not None:
        search, evaluation = estimate
        waves = -(-len(spec["seeds"]) // parallel_trials(spec))
        table.add_row("estimate", f"≈ {_fmt_seconds(search + evaluation)} per trial (search "
                                  f"{_fmt_seconds(search)}, evaluation {_fmt_seconds(evaluation)}); "
                                  f"≈ {_fmt_seconds(waves * (search + evaluation))} in all, from a few steps "
                                  "measured on this machine")
    console.print(table)
    if spec["budget"] == "paper" and not spec["gpus_per_trial"]:
        console.print(Text("warning:", style="bold yellow"), "the paper budget is about to run without a GPU: "
                      "expect days per seed; use --budget small or smoke on a CPU")


def resume_command(spec: dict[str, Any]) -> str:
    return f"python -m harness run --resume --name {spec['experiment']} --out {shlex.quote(spec['out'])}"


def job_label(spec: dict[str, Any], seed: int) -> str:
    """How the progress display names a trial: ``seed 3``, or in a study ``nos-noags hetero digits seed 3``."""
    if spec.get("cell"):
        return f"{spec['cell']} {spec['space']} {spec['dataset']} seed {seed}"
    return f"seed {seed}"


def _trial_label(trial: Any) -> str:
    """``job_label`` of a Ray Tune trial (or of a trial's result)."""
    job = json.loads(trial.config["job"])
    return job_label(job["spec"], int(job["seed"]))


class _ProgressCallback:
    """Feeds Ray Tune's per-trial results into a rich progress display (driver side)."""

    def __init__(self, progress: Progress, labels: list[str]):
        self.progress = progress
        self.tasks = {label: progress.add_task(label, total=1.0, status="pending") for label in labels}

    def update(self, label: str, result: dict[str, Any] | None, status: str | None = None) -> None:
        task = self.tasks.get(label)
        if task is None:
            return
        if result is not None:
            phase, epoch = result.get("phase", ""), result.get("epoch")
            text = phase if epoch is None or phase == "done" else f"{phase} epoch {epoch + 1}"
            acc = result.get("val_acc")
            if acc is not None and phase == "search":
                text += f"  val {acc:.1f}%"
            if result.get("test_acc") is not None:
                text += f"  test {result['test_acc']:.2f}%"
            self.progress.update(task, completed=float(result.get("progress", 0.0)), status=text)
        if status is not None:
            self.progress.update(task, status=status)


_SINK: _ProgressCallback | None = None  # the driver's live display; the callback below is stateless so
                                        # Ray can pickle it into the experiment state


class RichProgressCallback(tune.Callback):
    def on_trial_result(self, iteration, trials, trial, result, **info):
        if _SINK is not None:
            _SINK.update(_trial_label(trial), result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if _SINK is not None:
            diverged = (trial.last_result or {}).get(DIVERGED)
            _SINK.update(_trial_label(trial), None if diverged else {"progress": 1.0},
                         status="[red]diverged[/]" if diverged else "finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        if _SINK is not None:
            _SINK.update(_trial_label(trial), None, status="[red]error[/]")


def trial_name(trial: Any) -> str:
    """The trial's folder in Ray Tune's: its record's name, or in a study ``<cell folder>-s<seed>``."""
    job = json.loads(trial.config["job"])
    spec, seed = job["spec"], int(job["seed"])
    if spec.get("cell"):
        return f"{spec['experiment']}-s{seed}"
    return Path(record_filename(spec["method"], spec["space"], spec["dataset"], seed)).stem


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port`` or ``ray://host:port``; None for ``auto``/``local`` (Ray finds, or
    fails at once to find, a cluster started on this machine); one line for anything else."""
    if address in ("auto", "local"):
        return None
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit() or not host or not 0 < int(port) < 65536:
        raise UserError(f"--address '{address}': expected host:port (e.g. 10.0.0.1:6379), ray://host:port "
                        "or auto")
    return host.strip("[]"), int(port)


def _probe(address: str, timeout: float = 10.0) -> None:
    """Refuse an address where nothing answers within ``timeout`` seconds: Ray itself keeps retrying for
    many minutes."""
    target = _host_port(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=timeout).close()
    except OSError as err:
        raise UserError(f"cannot reach the Ray cluster at '{address}' within {timeout:g} s "
                        f"({err.strerror or err.__class__.__name__}); start it with 'ray up' / "
                        "'ray start --head' or check --address") from None


CONNECT_TIMEOUT_S = 60


def _join_within_time_limit(address: str) -> None:
    """Join the cluster once from a child process that is killed after ``CONNECT_TIMEOUT_S``: something
    that answers on the port but is not a healthy Ray head makes ``ray.init`` retry for many minutes, and a
    retry loop inside Ray cannot be interrupted from the driver itself."""
    code = ("import sys, ray; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); "
            "ray.shutdown()")
    try:
        done = subprocess.run([sys.executable, "-c", code, address], capture_output=True, text=True,
                              timeout=CONNECT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UserError(f"cannot join the Ray cluster at '{address}' within {CONNECT_TIMEOUT_S} s (something answers "
                        "there, but not a working Ray head); check --address and 'ray status' on the head") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1].strip()[:200] if lines else f"exit status {done.returncode}"
        raise UserError(f"cannot join the Ray cluster at '{address}' ({reason}); check --address") from None


SHIPPED_PACKAGES = ("harness", "methods", "spaces")


def shipped_code() -> dict[str, Any]:
    """Ray's ``runtime_env`` that ships the harness to a cluster's trial workers: its own packages
    (``SHIPPED_PACKAGES``, with the bundled benchmark table; not the results folder, datasets or caches, which
    lie outside them), uploaded once per driver and put first on every worker's import path, so a cluster
    needs only Ray and the dependencies installed (``--no-ship-code`` when its image has the harness)."""
    import importlib

    folders = [str(Path(importlib.import_module(name).__file__).parent) for name in SHIPPED_PACKAGES]
    return {"py_modules": folders, "excludes": ["__pycache__", "*.pyc"]}


def connect_cluster(spec: dict[str, Any]) -> None:
    """Join the Ray cluster at ``spec["address"]`` (one line if it cannot be reached), shipping the harness's
    code to its workers unless the spec says not to (``shipped_code``), and check that a trial fits on one of
    its nodes."""
    import ray

    _probe(spec["address"])
    if not ray.is_initialized():
        _join_within_time_limit(spec["address"])
        try:
            with sigterm_deferred():
                ray.init(address=spec["address"], logging_level="ERROR", log_to_driver=False,
                         runtime_env=shipped_code() if spec.get("ship_code", True) else None)
        except Exception as exc:  # ConnectionError and Ray's own errors
            raise UserError(f"cannot reach the Ray cluster at '{spec['address']}' ({exc.__class__.__name__}); "
                            "start it with 'ray up' / 'ray start --head' or check --address") from None
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    for kind, key in (("CPU", "cpus_per_trial"), ("GPU", "gpus_per_trial")):
        largest = max((n.get(kind, 0) for n in nodes), default=0)
        if spec[key] > largest:
            raise UserError(f"each trial asks for {spec[key]:g} {kind} but the largest node of the Ray cluster at "
                            f"'{spec['address']}' has {largest:g}; lower --{key.replace('_', '-')}")


def start_local_ray() -> None:
    import ray

    if not ray.is_initialized():
        with sigterm_deferred():  # a SIGTERM meanwhile is a KeyboardInterrupt once Ray has started
            ray.init(address="local", num_cpus=os.cpu_count() or 1, num_gpus=torch.cuda.device_count(),
                     include_dashboard=False, logging_level="ERROR", log_to_driver=False)


def run_experiment(spec: dict[str, Any], seeds: list[int], console: Console) -> int:
    """Run the trials of ``seeds`` as one fresh Ray Tune experiment; write the leaderboard; return the exit
    status. Each trial continues from its own checkpoint, if any, wherever the folder lies now."""
    done = [job_label(spec, s) for s in spec["seeds"] if s not in seeds]
    errors, interrupted = run_jobs([(spec, s) for s in seeds], done, exp_folder(spec),
                                   spec, console)
    return summarise(spec, console, errors, interrupted)


def logger_callbacks(options: dict[str, Any], exp_dir: Path | Remote) -> list[tune.Callback]:
    """The extra loggers asked with ``--callback`` (Ray's own JSON, CSV and TensorBoard loggers always run): MLflow
    (``--mlflow-uri``, default the file store ``<exp_dir>/mlruns``) and W&B (offline without ``WANDB_API_KEY``),
    both under the experiment's (or study's) name."""
    out: list[tune.Callback] = []
    names = options.get("callbacks") or []
    if "mlflow" in names:
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        class HarnessMLflowCallback(MLflowLoggerCallback):
            """Logs the trial's identifiers and configuration as parameters, not its job's JSON text (too long
            for an MLflow parameter)."""

            def log_trial_start(self, trial: Any) -> None:
                if trial in self._trial_runs:
                    return
                run = self.mlflow_util.start_run(tags={**self.tags, "trial_name": str(trial)}, run_name=str(trial))
                self._trial_runs[trial] = run.info.run_id
                job = json.loads(trial.config["job"])
                spec = job["spec"]
                params = {**{k: spec[k] for k in (*TRIAL_IDS, "cell") if spec.get(k) is not None},
                          "seed": job["seed"], **{f"config.{k}": str(v)[:500] for k, v in spec["config"].items()}}
                self.mlflow_util.log_params(run_id=run.info.run_id, params_to_log=params)

        tracking = options.get("mlflow_uri") or (exp_dir / "mlruns").absolute().as_uri()
        if tracking.startswith("file:"):  # MLflow 3 keeps the file store only when asked
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        out.append(HarnessMLflowCallback(tracking_uri=tracking, experiment_name=exp_dir.name))
    if "wandb" in names:
        from ray.air.integrations.wandb import WandbLoggerCallback

        if not os.environ.get("WANDB_API_KEY"):
            os.environ.setdefault("WANDB_MODE", "offline")
        # W&B keeps its files in a local folder: the experiment's, or W&B's default (./wandb) for an object store
        out.append(WandbLoggerCallback(project=exp_dir.name, **({} if is_remote(exp_dir) else {"dir": str(exp_dir)})))
    return out


def tune_storage(exp_dir: Path | Remote) -> dict[str, Any]:
    """Ray Tune's ``storage_path`` (and ``storage_filesystem`` on an object store: the harness's own, so that Tune
    reaches the store with the same options)."""
    if is_remote(exp_dir):
        return {"storage_path": exp_dir.fs_path, "storage_filesystem": exp_dir.filesystem}
    return {"storage_path": str(exp_dir)}


# What Ray Tune copies from the driver's environment into every trial actor's runtime_env (Ray 2.60:
# ray.tune.execution.class_cache.ENV_VARS_TO_PROPAGATE) that is a credential.
CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN")


def keep_credentials_out_of_ray() -> None:
    """Stop Ray Tune copying the driver's AWS credentials into each trial's ``runtime_env``: Ray's runtime-env agent
    logs every ``runtime_env`` at INFO, secrets included, in a world-readable ``/tmp/ray/session_*/logs/
    runtime_env_agent.log`` on every node. A trial opens the store as the driver does, with its node's own
    credentials (the environment its Ray node was started with, a profile or an instance role): on a local Ray,
    started by this driver or beside it, the driver's environment; on a cluster, the nodes' own (cluster/README.md)."""
    try:
        from ray.tune.execution import class_cache
    except ImportError:  # another Ray: tests/test_storage.py scans Ray's files for the credentials
        return
    class_cache.ENV_VARS_TO_PROPAGATE = set(class_cache.ENV_VARS_TO_PROPAGATE) - set(CREDENTIAL_ENV)


# The driver looks at an object store every STORE_PROBE_S seconds while trials run; STORE_PROBES failed looks in a row
# (each already retried by the store's client) mean the store is lost and the run stops as if interrupted.
STORE_PROBE_S = 10.0
STORE_PROBES = 3


class StoreWatch(tune.Stopper):
    """Stops the whole Ray Tune experiment once the object store of ``place`` stops answering: its trials could only
    fail and be retried, and Ray Tune would keep its own writes failing for minutes. ``lost``: why (None: it answers).
    """

    def __init__(self, place: Remote):
        self.place, self.failures, self.lost, self.next_look = place, 0, None, 0.0

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        if self.lost is None and time.monotonic() >= self.next_look:
            self.next_look = time.monotonic() + STORE_PROBE_S
            try:
                self.place.filesystem.get_file_info(self.place.fs_path)
                self.failures = 0
            except OSError as err:
                self.failures += 1
                if self.failures >= STORE_PROBES:
                    self.lost = one_line(err, 300)
        return self.lost is not None


def _store_fault(exc: BaseException | None) -> BaseException | None:
    """The store's error behind ``exc`` (itself, or the cause of a trial's ``RayTaskError``), else None."""
    for candidate in (getattr(exc, "cause", None), exc):
        if isinstance(candidate, (OSError, StoreError)):
            return candidate
    return None


class _StoreFaultsInOneLine(logging.Filter):
    """Ray logs a failed write of its own to the store, and a trial that failed on the store, with a traceback; the
    harness says such an error in one line (the trial's full traceback stays in its ``error.txt``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fault = _store_fault(record.exc_info[1] if record.exc_info else None)
        if fault is not None:
            record.msg, record.args = f"{record.getMessage()} {type(fault).__name__}: {one_line(fault, 300)}", None
            record.exc_info = record.exc_text = None
        return True


@contextmanager
def store_faults_in_one_line() -> Iterator[None]:
    """``_StoreFaultsInOneLine`` on the handlers Ray's log records reach (Ray's own on the ``ray`` logger, the root's)
    while the block runs."""
    only = _StoreFaultsInOneLine()
    handlers = [*logging.getLogger("ray").handlers, *logging.getLogger().handlers]
    for handler in handlers:
        handler.addFilter(only)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(only)


def run_jobs(jobs: list[tuple[dict[str, Any], int]], done: list[str], exp_dir: Path | Remote, options: dict[str, Any],
             console: Console) -> tuple[list[str], bool]:
    """Run every (spec, seed) of ``jobs`` as one fresh Ray Tune experiment stored in ``exp_dir/tune``, with the
    resources, concurrency, retries and cluster of ``options`` (a spec); ``done`` are the labels shown as
    finished earlier. Returns the trials' errors (last lines) and whether the driver was interrupted."""
    global _SINK
    if not options["address"]:  # a cluster was joined by check_resources
        try:
            start_local_ray()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM while Ray started: the summary says how to resume
            return [], True
    keep_credentials_out_of_ray()
    # A trial stopped while it failed (the store lost, an interruption) leaves an error nobody reads; Ray would print it
    # with the trial's traceback when its reference goes. The trial's error is Ray Tune's to report (error.txt).
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    trainable = tune.with_resources(run_trial, {"cpu": options["cpus_per_trial"], "gpu": options["gpus_per_trial"]})
    progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(),  # a label names a dataset
                        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console, transient=False)
    cb = _SINK = _ProgressCallback(progress, done + [job_label(spec, seed) for spec, seed in jobs])
    for label in done:
        cb.update(label, {"progress": 1.0}, status="finished earlier")
    interrupted, errors, lost = False, [], None
    watch = StoreWatch(exp_dir) if is_remote(exp_dir) else None
    with progress, store_faults_in_one_line():
        try:
            tuner = tune.Tuner(
                trainable,
                param_space={"job": tune.grid_search([job_text(spec, seed) for spec, seed in jobs])},
                tune_config=tune.TuneConfig(max_concurrent_trials=options["max_concurrent"],
                                            trial_name_creator=trial_name, trial_dirname_creator=trial_name),
                run_config=tune.RunConfig(
                    name=TUNE_DIR, verbose=0, **tune_storage(exp_dir), stop=watch,
                    failure_config=tune.FailureConfig(max_failures=options["max_failures"]),
                    callbacks=[RichProgressCallback(), *logger_callbacks(options, exp_dir)]),
            )
            grid = tuner.fit()
            errors = [str(e).strip().splitlines()[-1] for e in grid.errors] if grid.errors else []
            # a diverged trial ends without an error (so that Ray Tune does not retry it): its last report says so
            errors += [f"{_trial_label(r)}: {r.metrics[DIVERGED]}" for r in grid if (r.metrics or {}).get(DIVERGED)]
        except KeyboardInterrupt:
            interrupted = True
        except OSError as err:  # Ray Tune's own reads and writes of its storage: the results' store (or disk) is lost
            lost = one_line(err, 300)
        finally:
            _SINK = None
    lost = lost or (watch.lost if watch is not None else None)
    if lost:  # ends as an interruption: the summary's resume line (or, if the store is still away, its error)
        interrupted = True
        print(f"results storage lost ({exp_dir}): {lost}", file=sys.stderr)
    return errors, interrupted


def own_records(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of the experiment (or study cell) of ``spec``: its own ``trials/`` only, of its setting; an
    experiment nested in its folder lends it no seed."""
    return [r for r in load_records(exp_folder(spec), nested=False) if r.get("config_hash") == spec["config_hash"]]


def summarise(spec: dict[str, Any], console: Console, errors: list[str], interrupted: bool) -> int:
    exp_dir = exp_folder(spec)
    try:
        records = own_records(spec)
    except StoreError as err:  # the store was lost (run_jobs): end as the interruption it was
        if not interrupted:
            raise
        return exit_status(errors, True, True, f"{err}; resume with: {resume_command(spec)}")
    table = Table(title=f"trials of {spec['experiment']}")
    for header in ("seed", "record", *(m.summary_header for m in SUMMARY)):
        table.add_column(header)
    for r in sorted(records, key=lambda r: r["seed"]):
        table.add_row(str(r["seed"]), Path(r["_path"]).name, *(cell_text(r.get(m.key), m.decimals) for m in SUMMARY))
    console.print(table)
    if records:
        board = build_leaderboard(records)
        csv_path, _ = write_leaderboard(board, exp_dir)
        console.print(leaderboard_table(board, f"leaderboard ({spec['budget']} budget, {spec['dataset']})"))
        console.print(f"records: {exp_dir / 'trials'} (python -m harness show RECORD)\nleaderboard: {csv_path}")
    missing = sorted(set(spec["seeds"]) - {r["seed"] for r in records})
    total = len(spec["seeds"])
    return exit_status(errors, interrupted, bool(missing), f"{total - len(missing)} of {total} trials finished "
                       f"(missing seeds {','.join(map(str, missing))}); resume with: {resume_command(spec)}")


def exit_status(errors: list[str], interrupted: bool, missing: bool, progress: str) -> int:
    """The end of a run or study: the trials' errors on stderr and, when trials are ``missing``, the line
    ``interrupted: <progress>`` (exit 130: the driver was stopped, or nothing failed) or ``failed: <progress>``
    (exit 1); 0 when none is missing."""
    for line in errors:
        print(f"trial error: {line}", file=sys.stderr)
    if not missing:
        return 0
    what = "interrupted" if interrupted or not errors else "failed"
    print(f"{what}: {progress}", file=sys.stderr)
    return 130 if what == "interrupted" else 1


def run(req: RunRequest, console: Console) -> int:
    if req.resume and req.name and (req.out / req.name / STUDY_SPEC).is_file():  # a study: resume all its cells
        asked = [option for option, value in (("--method", req.method), ("--space", req.space),
                                              ("--dataset", req.dataset), ("--budget", req.budget),
                                              ("--set", req.overrides), ("--seeds", req.seeds)) if value]
        if asked:  # a study's cells and seeds are its file's
            raise UserError(f"--resume of study '{req.name}' takes no {asked[0]}: its study file says what its cells "
                            f"compute; to add seeds or change it, edit {req.out / req.name / STUDY_FILE} (more seeds "
                            "are added; other changes need a new study) and resume again")
        return run_study(StudyRequest(file=None, study=None, out=req.out, name=req.name, resume=True,
                                      cpus_per_trial=req.cpus_per_trial, gpus_per_trial=req.gpus_per_trial,
                                      max_concurrent=req.max_concurrent, max_failures=req.max_failures,
                                      address=req.address, data_dir=req.data_dir, callbacks=req.callbacks,
                                      mlflow_uri=req.mlflow_uri, ship_code=req.ship_code), console)
    if req.resume:
        spec = resume_spec(req, console)
        check_checkpoints(spec, missing_seeds(spec))
        check_resources(spec)
        exp_dir = exp_folder(spec)
        with driver_lock(exp_dir, create=False):
            seeds = missing_seeds(spec)  # again: another driver may have ended just before the lock
            print_plan(spec, console, None, resume=True)
            write_record(exp_dir / SPEC_FILE, spec)  # the seeds added and where the experiment lies now
            if not seeds:
                console.print(f"all {len(spec['seeds'])} seeds have their records; nothing to run")
                return summarise(spec, console, [], False)
            return run_experiment(spec, seeds, console)
    spec = build_spec(req)
    check_resources(spec)  # before anything is measured or written
    dataset = load_dataset(spec["dataset"], spec["data_dir"], spec["config"]["image_size"])
    train_limit = int(spec["config"].get("train_limit", 0))
    spec["split"] = dataset.limited(train_limit).split_info()
    check_split(spec["split"], train_limit)
    if dataset.source:
        console.print(f"data: {spec['dataset']} {dataset.source}")
    print_plan(spec, console, estimate_seconds(spec, dataset), resume=False)
    exp_dir = exp_folder(spec)
    with driver_lock(exp_dir, create=True):
        write_record(exp_dir / SPEC_FILE, spec)
        return run_experiment(spec, list(spec["seeds"]), console)


# --- studies ----------------------------------------------------------------------------------------------
@dataclass
class StudyRequest:
    """What ``study run`` (or ``run --method a,b,c``) was asked: a study file or a study already parsed, and
    how its trials run (``None``: the default, or on a resume the study's own value)."""

    file: Path | None
    study: Study | None
    out: Path | Remote
    name: str | None
    resume: bool
    cpus_per_trial: int | None = None
    gpus_per_trial: float | None = None
    max_concurrent: int | None = None
    max_failures: int | None = None
    address: str | None = None
    data_dir: str | None = None
    callbacks: list[str] | None = None
    mlflow_uri: str | None = None
    ship_code: bool = True


def cell_specs(study: Study, req: StudyRequest, study_dir: Path | Remote, existing_ok: bool) -> list[dict[str, Any]]:
    """Every cell's spec (``build_spec``: its pair, configuration keys and dataset checked), as the experiment
    ``cells/<cell>/`` of the study; a problem names the cell."""
    specs = []
    for cell in study.cells:
        run_req = RunRequest(method=cell.method, space=cell.space, dataset=cell.dataset, budget=study.budget,
                             seeds=study.seeds, overrides=cell.overrides, out=study_dir / CELLS_DIR,
                             name=cell.folder, cpus_per_trial=req.cpus_per_trial, gpus_per_trial=req.gpus_per_trial,
                             max_concurrent=req.max_concurrent, max_failures=req.max_failures,
                             address=req.address, data_dir=req.data_dir, resume=False, callbacks=req.callbacks,
                             mlflow_uri=req.mlflow_uri, ship_code=req.ship_code)
        try:
            spec = build_spec(run_req, existing_ok=existing_ok)
        except UserError as err:
            raise UserError(f"study '{study.name}', {cell.name} on {cell.space}/{cell.dataset}: {err}") from None
        spec.update(cell=cell.name, study=study.name)
        specs.append(spec)
    return specs


def print_study_plan(study: Study, specs: list[dict[str, Any]], estimates: list[tuple[float, float]] | None,
                     console: Console, study_dir: Path | Remote, resume_jobs: int | None = None) -> None:
    """Every cell with its configuration and estimated cost, and the total."""
    table = Table(title=f"study {study.name} ({study_dir})" + (": resume" if resume_jobs is not None else ""))
    for header in ("cell", "method", "space", "dataset", "config", "seeds", "per trial", "cell total"):
        table.add_column(header)
    total = 0.0
    for k, spec in enumerate(specs):
        per = sum(estimates[k]) if estimates else None
        seeds = len(spec["seeds"])
        total += (per or 0.0) * seeds
        table.add_row(spec["cell"], spec["method"], spec["space"], spec["dataset"],
                      spec["config_hash"] + (f" {spec['overrides']}" if spec["overrides"] else ""), str(seeds),
                      "—" if per is None else f"≈ {_fmt_seconds(per)}",
                      "—" if per is None else f"≈ {_fmt_seconds(per * seeds)}")
    console.print(table)
    first = specs[0]
    device = "GPU" if first["gpus_per_trial"] else "CPU"
    jobs = sum(len(s["seeds"]) for s in specs)
    line = (f"{len(specs)} cells, {jobs} trials ({study.budget} budget), {device}; per trial {first['cpus_per_trial']} "
            f"CPU, {first['gpus_per_trial']} GPU")
    if estimates:
        slots = max(1, min(parallel_trials({**first, "seeds": list(range(jobs))}), jobs))
        line += f"; ≈ {_fmt_seconds(total / slots)} in all ({slots} at once), from a few steps measured here"
    if resume_jobs is not None:
        line += f"; {resume_jobs} trials left to run"
    console.print(line)
    if study.budget == "paper" and not first["gpus_per_trial"]:
        console.print(Text("warning:", style="bold yellow"), "the paper budget is about to run without a GPU: "
                      "expect days per seed; use budget small or smoke on a CPU")


def study_resume_command(study_dir: Path | Remote) -> str:
    return (f"python -m harness run --resume --name {shlex.quote(study_dir.name)} "
            f"--out {shlex.quote(uri(study_dir.parent))}")


def load_study_specs(study_dir: Path | Remote) -> tuple[str, dict[tuple[str, str, str], str]]:
    """The stored study: the text of its file as it was last run, and the folder of each of its cells by (cell,
    space, dataset) (one line if they cannot be read). A study whose cells share a folder (made before cell folders
    carried a hash) is refused: one cell's records overwrote the other's."""
    path = study_dir / STUDY_SPEC
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        folders = [str(f) for f in stored["cells"]]
        cells = {(stored["specs"][f]["cell"], stored["specs"][f]["space"], stored["specs"][f]["dataset"]): f
                 for f in folders}
        text = (study_dir / STUDY_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"'{path}' (or its {STUDY_FILE}) is missing or corrupt; cannot resume this study") from None
    shared = sorted({f for f in folders if folders.count(f) > 1})
    if shared:
        raise UserError(f"study '{study_dir.name}' cannot be resumed: two of its cells share the folder "
                        f"'{CELLS_DIR}/{shared[0]}' (made by an older harness), so their records cannot be told apart; "
                        "run the study again under a new --name")
    return text, cells


def resume_study(given: Study | None, req: StudyRequest, study_dir: Path | Remote,
                 console: Console) -> tuple[Study, list[dict[str, Any]]]:
    """The study and its cells' specs for this resume, where the study's folder lies now: each cell is resumed as an
    experiment (``resumed_spec``: its checks, the options of this run, its folder where ``--out`` points now).

    The study file (``given``, else the one kept in the folder, which the user may have edited) must still describe
    the study's cells: a cell added or gone, or a cell's method, budget or ``--set`` changed, is refused; seeds it
    adds join every cell (said in one line); seeds it leaves out are refused."""
    text, folders = load_study_specs(study_dir)
    kept = study_dir / STUDY_FILE
    where = f"study file '{req.file}'" if given is not None else f"'{kept}'"
    study = given if given is not None else parse_study(text, str(kept), study_dir.name)

    def refuse(problem: str) -> UserError:
        return UserError(f"{where} no longer describes study '{study_dir.name}' ({problem}); a resume keeps what its "
                         "trials compute: run the changed study under a new --name")

    asked = {(c.name, c.space, c.dataset): c for c in study.cells}
    for key in [*folders, *asked]:
        if (key in folders) != (key in asked):
            raise refuse(f"cell {key[0]} on {key[1]}/{key[2]} is {'gone' if key in folders else 'new'}")
    had: dict[str, dict[str, Any]] = {}
    for key, folder in folders.items():
        spec = had[folder] = load_spec(study_dir / CELLS_DIR, folder)
        cell = asked[key]
        if (cell.method, study.budget) != (spec["method"], spec["budget"]):
            raise refuse(f"cell {cell.name} on {cell.space}/{cell.dataset} was {spec['method']} at budget "
                         f"{spec['budget']}, the file says {cell.method} at budget {study.budget}")
        changed = changed_overrides(spec, cell.overrides)
        if changed:
            raise refuse(f"cell {cell.name} on {cell.space}/{cell.dataset} changes --set {', '.join(changed)}")
    dropped = sorted({s for spec in had.values() for s in spec["seeds"]} - set(study.seeds))
    if dropped:
        raise UserError(f"{where} leaves out seeds {','.join(map(str, dropped))} of study '{study_dir.name}'; a resume "
                        "runs all its seeds (list them in 'seeds', with more to add some)")
    specs, notes, made_in = [], [], None
    for key, folder in folders.items():
        cell = asked[key]
        run_req = RunRequest(method=None, space=None, dataset=None, budget=None, seeds=study.seeds, overrides=[],
                             out=study_dir / CELLS_DIR, name=folder, cpus_per_trial=req.cpus_per_trial,
                             gpus_per_trial=req.gpus_per_trial, max_concurrent=req.max_concurrent,
                             max_failures=req.max_failures, address=req.address, data_dir=req.data_dir, resume=True,
                             callbacks=req.callbacks, mlflow_uri=req.mlflow_uri, ship_code=req.ship_code)
        try:
            spec, cell_notes, cell_made_in = resumed_spec(run_req)
        except UserError as err:
            raise UserError(f"study '{study_dir.name}', {cell.name} on {cell.space}/{cell.dataset}: {err}") from None
        spec.update(cell=cell.name, study=study.name)
        specs.append(spec)
        notes += [n for n in cell_notes if n not in notes]
        made_in = cell_made_in.parent.parent  # <study>/cells/<cell>
    if made_in is not None and made_in != study_dir:
        notes.append(f"the study was made in {made_in}; it continues in {study_dir}")
    for note in notes:
        console.print(f"resume: {note}")
    return study, specs


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
        check_resources(specs[0])
        with driver_lock(study_dir, create=False), cell_locks(specs, create=False):
            todo = {spec["experiment"]: missing_seeds(spec) for spec in specs}
            jobs = [(spec, s) for spec in specs for s in todo[spec["experiment"]]]
            for spec in specs:
                check_checkpoints(spec, todo[spec["experiment"]])
            write_study(study, specs, study_dir)  # where the study lies now, and the seeds added
            print_study_plan(study, specs, None, console, study_dir, resume_jobs=len(jobs))
            if not jobs:
                console.print("every trial of the study has its record; nothing to run")
                return summarise_study(study, specs, study_dir, console, [], False)
            done = [job_label(spec, s) for spec in specs for s in spec["seeds"] if s not in todo[spec["experiment"]]]
            errors, interrupted = run_jobs(jobs, done, study_dir, specs[0], console)
            return summarise_study(study, specs, study_dir, console, errors, interrupted)
    if study is None:
        raise UserError("study run needs a study file")
    check_writable_folder(req.out, "--out")
    if study_dir.exists():
        raise UserError(f"study '{name}' already exists in '{req.out}'; add --resume to continue it or choose "
                        "another --name" + running_note(study_dir))
    specs = cell_specs(study, req, study_dir, existing_ok=False)
    check_resources(specs[0])  # every cell asks for the same resources per trial
    loaded: dict[tuple[Any, ...], Any] = {}
    estimates = []
    for spec in specs:
        key = (spec["dataset"], spec["data_dir"], spec["config"]["image_size"])
        if key not in loaded:
            loaded[key] = load_dataset(*key)
        train_limit = int(spec["config"].get("train_limit", 0))
        spec["split"] = loaded[key].limited(train_limit).split_info()
        check_split(spec["split"], train_limit)
        estimates.append(estimate_seconds(spec, loaded[key]))
    print_study_plan(study, specs, estimates, console, study_dir)
    with driver_lock(study_dir, create=True), cell_locks(specs, create=True):
        write_study(study, specs, study_dir)
        errors, interrupted = run_jobs([(spec, s) for spec in specs for s in spec["seeds"]], [], study_dir, specs[0],
                                       console)
        return summarise_study(study, specs, study_dir, console, errors, interrupted)


@contextmanager
def cell_locks(specs: list[dict[str, Any]], create: bool) -> Iterator[None]:
    """Every cell's ``driver_lock``: a cell is an experiment, and ``run --resume`` of one must not run beside its
    study's driver (nor a study's driver beside it)."""
    with ExitStack() as stack:
        for spec in specs:
            stack.enter_context(driver_lock(exp_folder(spec), create=create))
        yield


def write_study(study: Study, specs: list[dict[str, Any]], study_dir: Path | Remote) -> None:
    """The study's file as given, ``study.json`` (its cells' folders and specs) and every cell's
    ``experiment.json``."""
    for spec in specs:
        write_record(exp_folder(spec) / SPEC_FILE, spec)
    write_record(study_dir / STUDY_SPEC, {"name": study.name, "cells": [s["experiment"] for s in specs],
                                          "specs": {s["experiment"]: s for s in specs}})
    (study_dir / STUDY_FILE).write_text(study.text, encoding="utf-8")


def summarise_study(study: Study, specs: list[dict[str, Any]], study_dir: Path | Remote, console: Console,
                    errors: list[str], interrupted: bool) -> int:
    """The study's leaderboard (every cell's own records of its setting, as ``summarise`` takes an experiment's:
    nothing nested inside a cell's folder), written beside ``study.json``."""
    try:
        records = [r for spec in specs for r in own_records(spec)]
    except StoreError as err:  # the store was lost (run_jobs): end as the interruption it was
        if not interrupted:
            raise
        return exit_status(errors, True, True, f"{err}; resume with: {study_resume_command(study_dir)}")
    if records:
        board = build_leaderboard(records)
        csv_path, _ = write_leaderboard(board, study_dir)
        console.print(leaderboard_table(board, f"study {study.name} ({study.budget} budget)"))
        console.print(f"records: {study_dir / CELLS_DIR}/*/trials\nleaderboard: {csv_path}\n"
                      f"report: python -m harness report {shlex.quote(uri(study_dir))}")
    have = {(r.get("config_hash"), r.get("seed")) for r in records}
    missing = [(s["experiment"], seed) for s in specs for seed in s["seeds"] if (s["config_hash"], seed) not in have]
    total = sum(len(s["seeds"]) for s in specs)
    return exit_status(errors, interrupted, bool(missing), f"{total - len(missing)} of {total} trials of study "
                       f"'{study.name}' finished; resume with: {study_resume_command(study_dir)}")
