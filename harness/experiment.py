"""The driver: validate and plan an experiment, run its seeds as Ray Tune trials, resume, summarise.

Layout of one experiment (``<out>/<name>/``): ``experiment.json`` (the spec: what was asked and the
resolved configuration), ``trials/*.json`` (one record per finished seed: the source of truth),
``leaderboard.csv`` / ``leaderboard.md`` (derived from the records), and ``tune/`` (Ray Tune's own
experiment folder, used to resume).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ray import tune
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.config import config_hash, parse_overrides, resolve
from harness.data import SearchData, check_split, load_dataset, validate_name
from harness.errors import UserError
from harness.evaluation import FinalTraining
from harness.leaderboard import build_leaderboard, leaderboard_table, write_leaderboard
from harness.records import load_records, record_filename, split_summary, write_record
from harness.registry import check_pair, get_method, get_space
from harness.train import seed_everything, time_train_steps
from harness.trial import pick_device, record_path, run_trial

SPEC_FILE = "experiment.json"
TUNE_DIR = "tune"


@dataclass
class RunRequest:
    method: str
    space: str
    dataset: str
    budget: str
    seeds: list[int]
    overrides: list[str]
    out: Path
    name: str | None
    cpus_per_trial: int | None
    gpus_per_trial: float | None
    max_concurrent: int | None
    max_failures: int
    address: str | None
    data_dir: str | None
    resume: bool


def default_name(method: str, space: str, dataset: str, budget: str) -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    data = record_filename("x", "x", dataset, 0)[len("x-x-"):-len("-s0.json")]
    return f"{method}-{space}-{data}-{budget}-{stamp}"


def build_spec(req: RunRequest) -> dict[str, Any]:
    """Validate a new experiment and resolve everything a trial needs; writes nothing."""
    if not req.seeds:
        raise UserError("no seeds: give --seeds N (N ≥ 1) or --seed-list 0,1,2")
    if len(set(req.seeds)) != len(req.seeds):
        raise UserError(f"--seed-list repeats a seed: {','.join(map(str, req.seeds))}")
    if any(s < 0 for s in req.seeds):
        raise UserError("seeds must be non-negative integers")
    check_pair(req.method, req.space)
    validate_name(req.dataset)
    resolved = resolve(get_method(req.method), get_space(req.space), req.budget, parse_overrides(req.overrides))
    name = req.name or default_name(req.method, req.space, req.dataset, req.budget)
    if "/" in name or name in ("", ".", ".."):
        raise UserError(f"--name '{name}' must be a plain folder name")
    exp_dir = (req.out / name).resolve()
    if exp_dir.exists():
        raise UserError(f"experiment '{name}' already exists in '{req.out}'; add --resume to continue it "
                        "or choose another --name")
    cuda = torch.cuda.device_count()
    gpus = req.gpus_per_trial if req.gpus_per_trial is not None else (1 if cuda else 0)
    if gpus > 0 and not cuda and req.address is None:
        raise UserError(f"--gpus-per-trial {gpus} but this machine has no CUDA GPU; use --gpus-per-trial 0 "
                        "(or --address of a cluster with GPUs)")
    # Default threads per trial do not depend on how many seeds run at once: torch's CPU results depend on
    # the thread count, and seed 0 must give the same record whether it runs alone or beside others.
    if req.cpus_per_trial is not None and req.cpus_per_trial < 1:
        raise UserError("--cpus-per-trial must be at least 1")
    ncpu = os.cpu_count() or 1
    cpus = req.cpus_per_trial or (max(1, ncpu // max(1, cuda)) if gpus else 1)
    values = resolved.values
    return {
        "method": req.method, "space": req.space, "dataset": req.dataset, "budget": req.budget,
        "seeds": list(req.seeds), "experiment": name, "out": str(req.out.resolve()),
        "records_dir": str(exp_dir / "trials"), "config": values, "config_sources": resolved.sources,
        "overrides": resolved.overrides,
        "config_hash": config_hash(req.method, req.space, req.dataset, req.budget, values),
        "cpus_per_trial": cpus, "gpus_per_trial": gpus, "max_concurrent": req.max_concurrent,
        "max_failures": req.max_failures, "address": req.address, "data_dir": req.data_dir,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def load_spec(out: Path, name: str | None) -> dict[str, Any]:
    if not name:
        raise UserError("--resume needs the experiment's --name (and the same --out)")
    path = out / name / SPEC_FILE
    if not path.is_file():
        raise UserError(f"no experiment '{name}' in '{out}' to resume (missing {path})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise UserError(f"'{path}' is corrupt; cannot resume this experiment") from None


def estimate_seconds(spec: dict[str, Any], dataset: Any) -> tuple[float, float]:
    """Seconds per trial for search and evaluation, extrapolated from a few measured steps (seed 0)."""
    cfg = spec["config"]
    torch.set_num_threads(spec["cpus_per_trial"])
    device = pick_device(spec["gpus_per_trial"])
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
    table.add_row("experiment", f"{spec['experiment']}  ({Path(spec['out']) / spec['experiment']})")
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
        console.print("[bold yellow]warning:[/] the paper budget is about to run without a GPU: expect days "
                      "per seed; use --budget small or smoke on a CPU")


def resume_command(spec: dict[str, Any]) -> str:
    return f"python -m harness run --resume --name {spec['experiment']} --out {spec['out']}"


class _ProgressCallback:
    """Feeds Ray Tune's per-trial results into a rich progress display (driver side)."""

    def __init__(self, progress: Progress, seeds: list[int]):
        self.progress = progress
        self.tasks = {s: progress.add_task(f"seed {s}", total=1.0, status="pending") for s in seeds}

    def update(self, seed: int, result: dict[str, Any] | None, status: str | None = None) -> None:
        task = self.tasks.get(seed)
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
                                        # Ray can pickle it into the experiment state and restore it


class RichProgressCallback(tune.Callback):
    def on_trial_result(self, iteration, trials, trial, result, **info):
        if _SINK is not None:
            _SINK.update(int(trial.config["seed"]), result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if _SINK is not None:
            _SINK.update(int(trial.config["seed"]), {"progress": 1.0}, status="finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        if _SINK is not None:
            _SINK.update(int(trial.config["seed"]), None, status="[red]error[/]")


def trial_name(trial: Any) -> str:
    spec = json.loads(trial.config["spec"])
    return Path(record_filename(spec["method"], spec["space"], spec["dataset"], trial.config["seed"])).stem


def init_ray(spec: dict[str, Any]) -> None:
    import ray

    if ray.is_initialized():
        return
    if spec.get("address"):
        try:
            ray.init(address=spec["address"], logging_level="ERROR", log_to_driver=False)
        except Exception as exc:  # ConnectionError and Ray's own errors
            raise UserError(f"cannot reach the Ray cluster at '{spec['address']}' ({exc.__class__.__name__}); "
                            "start it with 'ray up' / 'ray start --head' or check --address") from None
        return
    ray.init(address="local", num_cpus=os.cpu_count() or 1, num_gpus=torch.cuda.device_count(),
             include_dashboard=False, logging_level="ERROR", log_to_driver=False)


def check_resources(spec: dict[str, Any]) -> None:
    """Ray waits forever for a trial that asks for more than the local Ray has: refuse it instead. (A
    cluster reached with --address may add nodes as it autoscales, so it is not checked.)"""
    import ray

    if spec.get("address"):
        return
    have = ray.cluster_resources()
    for kind, key in (("CPU", "cpus_per_trial"), ("GPU", "gpus_per_trial")):
        if spec[key] > have.get(kind, 0):
            raise UserError(f"each trial asks for {spec[key]} {kind} but the Ray cluster has {have.get(kind, 0):g}; "
                            f"lower --{key.replace('_', '-')}")


def run_experiment(spec: dict[str, Any], resume: bool, console: Console) -> int:
    """Run (or resume) the trials; write the leaderboard; return the exit status."""
    global _SINK
    exp_dir = Path(spec["out"]) / spec["experiment"]
    init_ray(spec)
    check_resources(spec)
    if not resume:
        write_record(exp_dir / SPEC_FILE, spec)
    trainable = tune.with_resources(run_trial, {"cpu": spec["cpus_per_trial"], "gpu": spec["gpus_per_trial"]})
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
                        TimeElapsedColumn(), console=console, transient=False)
    cb = _SINK = _ProgressCallback(progress, spec["seeds"])
    for seed in spec["seeds"]:
        if record_path(spec, seed).exists():
            cb.update(seed, {"progress": 1.0}, status="finished earlier")
    tune_path = exp_dir / TUNE_DIR
    interrupted = False
    with progress:
        try:
            if resume and tune.Tuner.can_restore(str(tune_path)):
                tuner = tune.Tuner.restore(str(tune_path), trainable, resume_errored=True)
            else:
                tuner = tune.Tuner(
                    trainable,
                    param_space={"seed": tune.grid_search(spec["seeds"]), "spec": json.dumps(spec)},
                    tune_config=tune.TuneConfig(max_concurrent_trials=spec["max_concurrent"],
                                                trial_name_creator=trial_name,
                                                trial_dirname_creator=trial_name),
                    run_config=tune.RunConfig(
                        name=TUNE_DIR, storage_path=str(exp_dir), verbose=0,
                        failure_config=tune.FailureConfig(max_failures=spec["max_failures"]),
                        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                        callbacks=[RichProgressCallback()]),
                )
            grid = tuner.fit()
            errors = [str(e).strip().splitlines()[-1] for e in grid.errors] if grid.errors else []
        except KeyboardInterrupt:
            interrupted, errors = True, []
        finally:
            _SINK = None
    return summarise(spec, console, errors, interrupted)


def summarise(spec: dict[str, Any], console: Console, errors: list[str], interrupted: bool) -> int:
    exp_dir = Path(spec["out"]) / spec["experiment"]
    records = [r for r in load_records(exp_dir) if r.get("config_hash") == spec["config_hash"]]
    table = Table(title=f"trials of {spec['experiment']}")
    for col in ("seed", "record", "search val %", "test %", "params M", "op τ", "search s", "eval s"):
        table.add_column(col)
    for r in sorted(records, key=lambda r: r["seed"]):
        tau = r.get("op_kendall_tau")
        table.add_row(str(r["seed"]), Path(r["_path"]).name, f"{r['search_val_acc']:.2f}", f"{r['test_acc']:.2f}",
                      f"{r['params_m']:.3f}", "—" if tau is None else f"{tau:.3f}",
                      f"{r['search_seconds']:.1f}", f"{r['eval_seconds']:.1f}")
    console.print(table)
    if records:
        board = build_leaderboard(records)
        csv_path, _ = write_leaderboard(board, exp_dir)
        console.print(leaderboard_table(board, f"leaderboard ({spec['budget']} budget, {spec['dataset']})"))
        console.print(f"records: {exp_dir / 'trials'} (python -m harness show RECORD)\nleaderboard: {csv_path}")
    missing = sorted(set(spec["seeds"]) - {r["seed"] for r in records})
    for line in errors:
        print(f"trial error: {line}", file=sys.stderr)
    if missing:
        what = "interrupted" if interrupted or not errors else "failed"
        print(f"{what}: {len(spec['seeds']) - len(missing)} of {len(spec['seeds'])} trials finished "
              f"(missing seeds {','.join(map(str, missing))}); resume with: {resume_command(spec)}",
              file=sys.stderr)
        return 130 if what == "interrupted" else 1
    return 0


def run(req: RunRequest, console: Console) -> int:
    if req.resume:
        spec = load_spec(req.out, req.name)
        check_pair(spec["method"], spec["space"])
        print_plan(spec, console, None, resume=True)
        return run_experiment(spec, resume=True, console=console)
    spec = build_spec(req)
    dataset = load_dataset(spec["dataset"], spec["data_dir"], spec["config"]["image_size"])
    train_limit = int(spec["config"].get("train_limit", 0))
    spec["split"] = dataset.limited(train_limit).split_info()
    check_split(spec["split"], train_limit)
    if dataset.source:
        console.print(f"data: {spec['dataset']} {dataset.source}")
    print_plan(spec, console, estimate_seconds(spec, dataset), resume=False)
    return run_experiment(spec, resume=False, console=console)
