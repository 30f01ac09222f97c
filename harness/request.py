"""What the driver was asked: ``RunRequest`` (``run``: one experiment) and ``StudyRequest`` (``study run``, ``run
--method a,b,c``), which share how trials run (``RunOptions``); and the checks of a request that need nothing else."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cluster import host_port
from harness.core.config import MAX_NAME, MAX_SEED, MAX_SEEDS, NAME_PATTERN, check_count
from harness.core.errors import UserError
from harness.core.places import place
from harness.core.records import record_filename
from harness.core.storage import Remote, check_no_credentials
from harness.spec import ExperimentSpec
from harness.study import Study

DEFAULT_DATASET = "cifar10"
DEFAULT_BUDGET = "paper"
DEFAULT_MAX_FAILURES = 2


@dataclass(kw_only=True)
class RunOptions:
    """Where an experiment or a study lies and how its trials run (not what they compute). ``None`` means "not
    given": a new experiment takes the default, a resume the experiment's own value."""

    out: Path | Remote
    name: str | None
    resume: bool
    cpus_per_trial: int | None = None
    gpus_per_trial: float | None = None
    max_concurrent: int | None = None
    max_failures: int | None = None
    address: str | None = None
    data_dir: str | None = None
    callbacks: list[str] | None = None  # extra Ray Tune loggers: mlflow, wandb (they change nothing a trial computes)
    mlflow_uri: str | None = None  # MLflow's tracking URI (default: a file store in the experiment folder)
    ship_code: bool = True  # on --address: the trial workers get the harness's code through Ray's runtime_env
    dry_run: bool = False  # show the plan and the estimate, then stop: no Ray, nothing written
    yes: bool = False  # run the paper budget without a GPU without asking (``confirm_cpu_paper``)
    columns: list[str] | None = None  # the end-of-run leaderboard's terminal columns (checked: ``parse_columns``)

    def options(self) -> dict[str, Any]:
        """These options alone, to make another request of them (a study's cell is asked as a run)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(RunOptions)}


@dataclass(kw_only=True)
class RunRequest(RunOptions):
    """What ``run`` was asked: one experiment."""

    method: str | None
    space: str | None
    dataset: str | None
    budget: str | None
    seeds: list[int] | None
    overrides: list[str]


@dataclass(kw_only=True)
class StudyRequest(RunOptions):
    """What ``study run`` (or ``run --method a,b,c``) was asked: a study file or a study already parsed."""

    file: Path | None
    study: Study | None


def default_name(method: str, space: str, dataset: str, budget: str) -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    data = record_filename("x", "x", dataset, 0)[len("x-x-"):-len("-s0.json")][:40]  # a folder's name may be long
    return f"{method}-{space}-{data}-{budget}-{stamp}"



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


def check_run_options(req: RunOptions) -> None:
    """The options that say how trials run (not what they compute)."""
    check_trial_resources(req.cpus_per_trial, req.gpus_per_trial)
    if req.max_concurrent is not None and req.max_concurrent < 1:
        raise UserError(f"--max-concurrent must be at least 1 (got {req.max_concurrent})")
    if req.max_failures is not None and req.max_failures < 0:
        raise UserError(f"--max-failures must be 0 or more (got {req.max_failures}); it counts retries")
    if req.address is not None:
        host_port(req.address)
    if req.mlflow_uri:  # stored in the spec and handed to MLflow, like --out: no credentials in it
        check_no_credentials(req.mlflow_uri, "--mlflow-uri")
    if "mlflow" in (req.callbacks or []) and place(req.out).local is None and not req.mlflow_uri:
        raise UserError(f"--callback mlflow with --out {req.out}: MLflow's default file store cannot live on an "
                        "object store; give --mlflow-uri (a tracking server, or file:/a/local/folder)")


def check_trial_resources(cpus: int | None, gpus: float | None) -> None:
    """``--cpus-per-trial`` and ``--gpus-per-trial`` where given: at least one CPU; a GPU count ≥ 0, whole above 1."""
    if cpus is not None and cpus < 1:
        raise UserError(f"--cpus-per-trial must be at least 1 (got {cpus})")
    if gpus is not None:
        if not math.isfinite(gpus) or gpus < 0:
            raise UserError(f"--gpus-per-trial must be a number ≥ 0 (got {gpus})")
        if gpus > 1 and gpus != int(gpus):
            raise UserError(f"--gpus-per-trial {gpus}: more than one GPU per trial must be a whole number")


def confirm_cpu_paper(specs: list[ExperimentSpec], req: RunOptions, ask: bool) -> None:
    """The paper budget takes days per seed without a GPU: a run whose trials get none (``gpus_per_trial`` 0:
    this machine has no CUDA GPU, or ``--gpus-per-trial 0``; on ``--address`` the trials get the GPUs they ask for)
    and train something (``ExperimentSpec.trains``: look-ups alone take minutes) goes ahead only with ``--yes`` or a
    "y" typed in a terminal. Off a terminal (a pipe, a batch job) it is refused in one line before anything is
    loaded or written (``ask`` False: the first check); in a terminal the question comes after the plan and its
    estimate (``ask`` True). A dry run asks nothing: it starts nothing."""
    spec = specs[0]
    if req.yes or req.dry_run or spec.budget != "paper" or spec.gpus_per_trial or not any(s.trains for s in specs):
        return
    how = ("set budget = \"smoke\" (seconds) or \"small\" (minutes) in the study file"
           if isinstance(req, StudyRequest) and req.file is not None else "use --budget smoke (seconds) or --budget "
           "small (minutes)")
    default = " (the default)" if isinstance(req, RunRequest) and req.budget is None else ""
    gpus = "; with --address, --gpus-per-trial 1 gives each trial a GPU of the cluster" if spec.address else ""
    if not (sys.stdin is not None and sys.stdin.isatty()):
        raise UserError(f"the paper budget{default} would run without a GPU, which can take days per seed; {how} on "
                        f"a CPU, or add --yes to run it anyway{gpus} (--dry-run shows the time estimate)")
    if not ask:
        return
    print("run the paper budget without a GPU (the estimate is above)? [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = input().strip().lower()
    except EOFError:  # Ctrl-D: no answer, and the error goes on a line of its own
        print(file=sys.stderr)
        answer = ""
    if answer not in ("y", "yes"):
        raise UserError(f"not started: the paper budget{default} was not confirmed; {how} on a CPU, or add --yes to "
                        f"run it without asking{gpus}")
