"""The Ray Tune runner: the jobs of an experiment or a study as one Tune experiment in ``<folder>/tune``, with the
harness's callbacks (progress, MLflow, W&B), the watch of an object store and Ray's store errors in one line."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ray import tune
from rich.console import Console

from harness.cluster import start_local_ray
from harness.core.errors import one_line
from harness.core.places import Place, place
from harness.core.storage import Remote, StoreError
from harness.estimate import TrialCost
from harness.progress import RichProgressCallback, job_label, live_progress, trial_label
from harness.spec import TUNE_DIR, ExperimentSpec
from harness.trial import DIVERGED, job_text, read_job, run_trial


def trial_name(trial: Any) -> str:
    """The trial's folder in Ray Tune's: its record's name, or in a study ``<cell folder>-s<seed>``."""
    spec, seed = read_job(trial.config["job"])
    if spec.cell:
        return f"{spec.name}-s{seed}"
    return spec.record_path(seed).stem


def logger_callbacks(options: ExperimentSpec, exp_dir: Path | Remote) -> list[tune.Callback]:
    """The extra loggers asked with ``--callback`` (Ray's own JSON, CSV and TensorBoard loggers always run): MLflow
    (``--mlflow-uri``, default the file store ``<exp_dir>/mlruns``) and W&B (offline without ``WANDB_API_KEY``),
    both under the experiment's (or study's) name."""
    out: list[tune.Callback] = []
    names = options.callbacks
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
                spec, seed = read_job(trial.config["job"])
                params = {**spec.ids(), "seed": seed, **{f"config.{k}": str(v)[:500] for k, v in spec.config.items()}}
                self.mlflow_util.log_params(run_id=run.info.run_id, params_to_log=params)

        tracking = options.mlflow_uri or (exp_dir / "mlruns").absolute().as_uri()
        if tracking.startswith("file:"):  # MLflow 3 keeps the file store only when asked
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        out.append(HarnessMLflowCallback(tracking_uri=tracking, experiment_name=exp_dir.name))
    if "wandb" in names:
        from ray.air.integrations.wandb import WandbLoggerCallback

        if not os.environ.get("WANDB_API_KEY"):
            os.environ.setdefault("WANDB_MODE", "offline")
        # W&B keeps its files in a local folder: the experiment's, or W&B's default (./wandb) for an object store
        local = place(exp_dir).local
        out.append(WandbLoggerCallback(project=exp_dir.name, **({} if local is None else {"dir": str(local)})))
    return out


def tune_storage(exp_dir: Path | Remote) -> dict[str, Any]:
    """Ray Tune's ``storage_path`` (and ``storage_filesystem`` on an object store: the harness's own, so that Tune
    reaches the store with the same options; ``Place.tune_storage``)."""
    return place(exp_dir).tune_storage()


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


class StoreLost(OSError):
    """The results' object store stopped answering mid-run (``StoreWatch``)."""


class StoreWatch(tune.Stopper):
    """Ends the whole Ray Tune experiment once the object store of ``place`` stops answering: its trials could only
    fail and be retried, and Ray Tune would keep its own writes failing for minutes. ``lost``: why (None: it answers).

    It ends it by raising ``StoreLost`` (an ``OSError``, as Ray Tune's own failed writes to the store are) from
    ``stop_all``, not by returning True: on an exception Ray Tune stops the trials and returns at once, where a stop
    would first write its experiment state to the dead store, each file retried for 6 s (30 s measured)."""

    def __init__(self, store: Place):
        self.place, self.failures, self.lost, self.next_look = store, 0, None, 0.0

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        if self.lost is None and time.monotonic() >= self.next_look:
            self.next_look = time.monotonic() + STORE_PROBE_S
            try:
                self.place.ping()
                self.failures = 0
            except OSError as err:
                self.failures += 1
                if self.failures >= STORE_PROBES:
                    self.lost = one_line(err, 300)
        if self.lost is not None:
            raise StoreLost(self.lost)
        return False


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


def run_jobs(jobs: list[tuple[ExperimentSpec, int]], done: list[str], exp_dir: Path | Remote,
             options: ExperimentSpec, console: Console,
             costs: dict[str, TrialCost] | None = None) -> tuple[list[str], bool]:
    """Run every (spec, seed) of ``jobs`` as one fresh Ray Tune experiment stored in ``exp_dir/tune``, with the
    resources, concurrency, retries and cluster of ``options`` (a spec); ``done`` are the labels shown as
    finished earlier, ``costs`` the plan's estimate of each trial by label (the progress display's ETA). Returns the
    trials' errors (last lines) and whether the driver was interrupted."""
    if not options.address:  # a cluster was joined by check_resources
        try:
            start_local_ray()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM while Ray started: the summary says how to resume
            return [], True
    keep_credentials_out_of_ray()
    # A trial stopped while it failed (the store lost, an interruption) leaves an error nobody reads; Ray would print it
    # with the trial's traceback when its reference goes. The trial's error is Ray Tune's to report (error.txt).
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    interrupted, errors, lost = False, [], None
    results = place(exp_dir)
    watch = StoreWatch(results) if results.needs_watch else None
    labels = done + [job_label(spec, seed) for spec, seed in jobs]
    with live_progress(console, labels, done, costs), store_faults_in_one_line():
        try:
            errors = trial_errors(tuner(jobs, exp_dir, options, watch).fit())
        except KeyboardInterrupt:
            interrupted = True
        except OSError as err:  # StoreWatch's StoreLost, or Ray Tune's own reads and writes of its storage failed:
            lost = one_line(err, 300)  # the results' store (or disk) is lost
    if lost:  # ends as an interruption: the summary's resume line (or, if the store is still away, its error)
        interrupted = True
        print(f"results storage lost ({exp_dir}): {lost}", file=sys.stderr)
    return errors, interrupted


def tuner(jobs: list[tuple[ExperimentSpec, int]], exp_dir: Path | Remote, options: ExperimentSpec,
          watch: StoreWatch | None) -> tune.Tuner:
    """The Ray Tune experiment of ``jobs``: a grid of their jobs' texts, stored in ``<exp_dir>/tune``."""
    trainable = tune.with_resources(run_trial, lambda config: trial_resources(read_job(config["job"])[0]))
    return tune.Tuner(
        trainable,
        param_space={"job": tune.grid_search([job_text(spec, seed) for spec, seed in jobs])},
        tune_config=tune.TuneConfig(max_concurrent_trials=options.max_concurrent,
                                    trial_name_creator=trial_name, trial_dirname_creator=trial_name),
        run_config=tune.RunConfig(
            name=TUNE_DIR, verbose=0, **tune_storage(exp_dir), stop=watch,
            failure_config=tune.FailureConfig(max_failures=options.max_failures),
            callbacks=[RichProgressCallback(), *logger_callbacks(options, exp_dir)]),
    )


def trial_resources(spec: ExperimentSpec) -> tune.PlacementGroupFactory:
    """A trial's placement group: ``trial_bundles`` bundles of ``--cpus-per-trial`` CPUs and ``--gpus-per-trial`` GPUs
    (one but for a black-box search that trains ``bb_workers`` candidates side by side)."""
    bundle = {"CPU": spec.cpus_per_trial, **({"GPU": spec.gpus_per_trial} if spec.gpus_per_trial else {})}
    return tune.PlacementGroupFactory([dict(bundle) for _ in range(spec.bundles)])


def trial_errors(grid: Any) -> list[str]:
    """The last line of each failed trial's error, and each diverged trial's line: a diverged trial ends without an
    error (so that Ray Tune does not retry it), its last report says so."""
    errors = [str(e).strip().splitlines()[-1] for e in grid.errors] if grid.errors else []
    return errors + [f"{trial_label(r)}: {r.metrics[DIVERGED]}" for r in grid if (r.metrics or {}).get(DIVERGED)]
