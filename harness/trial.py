"""One trial, end to end: one (method, space, dataset, seed) as a Ray Tune function trainable.

1. The trial's job arrives in ``params["job"]``, as JSON text ``{"spec": ..., "seed": ...}`` (one of the
   grid of a Ray Tune experiment: the seeds of one experiment, or every (cell, seed) of a study): Ray Tune's
   variant generator would otherwise interpret parts of the resolved configuration (a config key named
   ``eval`` is its legacy ``sample_from`` marker). The configuration is stored in the record with its hash.
2. Everything is seeded from the trial's seed.
3. Data: the fixed search split; the test set is kept for the evaluation.
4. Search, one ``tune.report`` and one checkpoint per epoch (a restarted trial continues from it); the
   seconds an epoch spends on what its method declares not search (``excluded_seconds``: NOS's teacher) are left out of
   ``search_seconds`` and recorded in the epoch's history entry. The checkpoint is the harness's own file,
   ``<experiment>/checkpoints/<trial>.pt``, not Ray's: a resumed experiment starts fresh Ray trials wherever
   the folder now lies, and the file is loaded without running code (``harness.checkpoints``). It is removed
   once the record is written.
5. Derive the genotype and the operation-importance scores.
6. Operation-level ranking correlation.
   On a space with a benchmark table: the derived cell's benchmark figures, the architecture-level
   correlation and the one-shot correlation (the supernet's accuracy of a fixed sample of cells against the
   benchmark's); elsewhere those figures are null and the record says why.
7. Evaluate: train the derived network from scratch (one report and checkpoint per epoch), test once —
   or, where the space evaluates by look-up, take the test accuracy from the benchmark table.
8. Write the record atomically; report the flat summary.

A trial whose valid record already exists with the same configuration hash reports it and returns: a
resumed experiment never runs a finished seed twice. A record that is corrupt or of another setting does
not count: the seed runs (again) and its new record replaces that file.

A trial whose training diverges (``harness.core.train.Diverged``: NaN or infinite loss or architecture parameter)
ends at that step without a record or a checkpoint; ``run_trial`` reports the one line (``DIVERGED``) and returns,
so that Ray Tune does not retry it (a retry diverges the same way), and the driver's summary prints it as a failed
trial.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from ray import tune

from harness import __version__
from harness.checkpoints import load_checkpoint, save_checkpoint
from harness.core.benchmarks.base import Benchmark
from harness.core.correlation import arch_level_correlation, one_shot_correlation, op_level_correlation
from harness.core.data import SearchData, load_dataset
from harness.core.errors import UserError
from harness.core.metric_table import SUMMARY_KEYS  # the trial's flat summary
from harness.core.metrics import (
    count_madds_m,
    count_params_m,
    describe_device,
    device_hours_kind,
    measure_latency_ms,
    peak_memory_mb,
)
from harness.core.records import json_safe, read_record, run_environment, write_record
from harness.core.registry import get_method, get_space
from harness.core.stats import is_number
from harness.core.train import (
    Diverged,
    check_finite,
    configure_backends,
    memory_format,
    rng_state,
    seed_everything,
    set_rng_state,
    to_device,
)
from harness.evaluation import FinalTraining
from harness.spec import ExperimentSpec

EVAL_SEED_OFFSET = 7919  # the final network's initialisation gets its own stream, fixed per trial seed


def finished_record(spec: ExperimentSpec, seed: int) -> dict[str, Any] | None:
    """The seed's record if it exists, reads as a record and belongs to this setting; else None."""
    path = spec.record_path(seed)
    if not path.exists():
        return None
    try:
        record = read_record(path)
    except UserError:
        return None
    return record if record.get("config_hash") == spec.config_hash else None


def pick_device(gpus_per_trial: float, strict: bool = True) -> torch.device:
    """CUDA when the work was given a GPU (``gpus_per_trial`` > 0), else the CPU.

    ``strict`` (a trial): a trial given a GPU on a node whose torch sees no CUDA device is one line naming the
    node and its torch build, instead of a silent run on the CPU. Not strict (the driver's time estimate, which
    may run on the GPU-less head node of a cluster): the CPU."""
    if gpus_per_trial <= 0:
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if not strict:
        return torch.device("cpu")
    cpu_only = torch.version.cuda is None
    build = f"torch {torch.__version__} ({'a CPU-only build' if cpu_only else f'built for CUDA {torch.version.cuda}'})"
    fix = ("install a CUDA build of torch on the GPU nodes" if cpu_only else
           "check that node's NVIDIA driver (nvidia-smi) and CUDA_VISIBLE_DEVICES")
    raise UserError(f"the trial was given {gpus_per_trial:g} GPU(s) but {build} on node '{socket.gethostname()}' "
                    f"sees no CUDA device: {fix}, or run with --gpus-per-trial 0")


def job_text(spec: ExperimentSpec, seed: int) -> str:
    """The JSON text of one trial's job (``params["job"]`` of ``run_trial``; read back by ``read_job``)."""
    return json.dumps({"spec": spec.to_json(), "seed": seed})


def read_job(text: str) -> tuple[ExperimentSpec, int]:
    """The spec and seed of a trial's job (``job_text``)."""
    job = json.loads(text)
    return ExperimentSpec.from_json(job["spec"]), int(job["seed"])


# What Ray Tune's own results (result.json, progress.csv, TensorBoard, MLflow, W&B) say of each trial: its
# identifiers in every report (JSON and CSV keep strings; TensorBoard and MLflow keep the numbers only), the
# summary's keys in every report (None until the last: progress.csv takes its columns from the first report) and,
# in the last report, every numeric figure of its record (``record_figures``).
NOT_FIGURES = ("config", "config_sources", "overrides", "split", "importance", "history", "environment")


def record_figures(record: dict[str, Any]) -> dict[str, Any]:
    """The record's numbers: top-level ones, and those one level down (``benchmark/...``, ...)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in NOT_FIGURES:
            continue
        if is_number(value):
            out[key] = value
        elif isinstance(value, dict):
            inner = {k: v for k, v in value.items() if is_number(v)}
            if inner:
                out[key] = inner
    return out


def run_trial(params: dict[str, Any]) -> None:
    """The Ray Tune function trainable: ``execute_trial`` with reports that name the trial (``ExperimentSpec.ids``
    and the seed) and carry the summary's keys; the last one, held back until the trial returns its record,
    also carries the record's figures (``record_figures``)."""
    spec, seed = read_job(params["job"])
    ids = {**spec.ids(), "seed": seed}
    last: dict[str, Any] = {}

    def report(metrics: dict[str, Any]) -> None:
        if metrics.get("phase") == "done":
            last.update(metrics)
        else:
            tune.report({**ids, **dict.fromkeys(SUMMARY_KEYS), **metrics})

    try:
        record = execute_trial(spec, seed, report)
    except Diverged as exc:  # not a crash: the trial ends without a record and without Ray Tune's retries
        tune.report({**ids, **dict.fromkeys(SUMMARY_KEYS), "phase": "diverged", DIVERGED: str(exc)})
        return
    tune.report({**ids, **dict.fromkeys(SUMMARY_KEYS), **record_figures(json_safe(record)), **last})


Reporter = Callable[[dict[str, Any]], None]
DIVERGED = "diverged"  # the key of a diverged trial's last report: its one line, for the driver's summary


@contextmanager
def diverging(spec: ExperimentSpec, seed: int, where: str, lr_keys: tuple[str, ...]) -> Iterator[None]:
    """A ``Diverged`` inside names ``where`` (the phase's epoch) and the learning rates to lower (those of
    ``lr_keys`` the configuration has), and the trial's checkpoint goes: a retry or a resume from it diverges the same
    way (a resume keeps the configuration)."""
    try:
        yield
    except Diverged as exc:
        spec.checkpoint_path(seed).unlink(missing_ok=True)
        rates = ", ".join(f"{key}={spec.config[key]:g}" for key in lr_keys if key in spec.config)
        raise Diverged(exc.value, exc.what, where, rates) from None


def execute_trial(spec: ExperimentSpec, seed: int, report: Reporter) -> dict[str, Any]:
    """Run one trial, continuing from its checkpoint if it has one; ``report(metrics)`` is called once per
    epoch (with the phase's ``epochs`` and ``phase_seconds`` so far), when the correlation and the latency timing
    begin (for the progress display), and once at the end. Returns the record (also written to the experiment's
    ``trials/`` folder)."""
    cfg = spec.config
    done = finished_record(spec, seed)
    if done is not None:
        report({**{k: done.get(k) for k in SUMMARY_KEYS}, "phase": "done", "progress": 1.0})
        return done
    saved = spec.checkpoint_path(seed)
    checkpoint = load_checkpoint(saved) if saved.exists() else None

    torch.set_num_threads(max(1, int(spec.cpus_per_trial)))
    device = pick_device(spec.gpus_per_trial)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seed_everything(seed)
    backends = configure_backends(cfg, device)  # memory_format, cudnn_benchmark, deterministic: recorded
    data = SearchData(load_dataset(spec.dataset, spec.data_dir, cfg["image_size"]), cfg, seed, device)
    space = get_space(spec.space)(cfg)
    method = get_method(spec.method)(space, cfg, data.info, device, seed)
    table, lookup = space.benchmark(), space.evaluates_by_lookup()
    search_epochs = method.num_epochs()
    total_epochs = search_epochs + (0 if lookup else int(cfg["eval_epochs"]))

    state, saved_rng = trial_state(checkpoint, method)

    def checkpoint_state(extra: dict[str, Any]) -> dict[str, Any]:
        return {**state, **extra, "rng": rng_state()}

    # 4. search
    while state["phase"] == "search" and state["epoch"] < search_epochs:
        metrics = search_epoch(spec, seed, method, data, state, search_epochs)
        save_checkpoint(saved, checkpoint_state({"method": method.state_dict()}))
        report({"phase": "search", "epoch": state["epoch"] - 1, "epochs": search_epochs,
                "phase_seconds": state["search_seconds"], "progress": state["epoch"] / total_epochs,
                **{k: v for k, v in metrics.items() if isinstance(v, (int, float))}})

    # 5-6. derive and correlate (deterministic given the search state, so not checkpointed separately)
    if state["phase"] == "search":
        report({"phase": "correlation", "progress": search_epochs / total_epochs})  # the progress display's phase
        start = time.perf_counter()
        genotype = method.derive()
        findings = trial_findings(spec, method, space, table, genotype, data)
        network = space.describe_network(data.info)
        parallel = method.parallel_device_seconds()
        state["results"] = {"genotype": space.to_str(genotype), "split": data.split, **backends,
                            **({"space_info": network} if network else {}),
                            **({"parallel_device_seconds": parallel} if parallel else {}),
                            "search_val_acc": method.search_val_acc(state["history"][-1]),
                            "correlation_seconds": time.perf_counter() - start, **findings}
        state.update(phase="eval", epoch=0)

    # 7. evaluate
    genotype = space.parse(state["results"]["genotype"])
    if lookup:
        return finish_by_lookup(spec, seed, space, table, genotype, state, device, report)
    torch.manual_seed(seed + EVAL_SEED_OFFSET)
    final = FinalTraining(space, genotype, data, cfg, device)
    if "final" in state:  # resumed mid-evaluation
        final.load_state_dict(state.pop("final"))
        set_rng_state(saved_rng)
    while state["epoch"] < final.epochs:
        metrics = eval_epoch(spec, seed, final, state)
        save_checkpoint(saved, checkpoint_state({"final": final.state_dict()}))
        report({"phase": "eval", "epoch": state["epoch"] - 1, "epochs": final.epochs,
                "phase_seconds": state["eval_seconds"], "progress": (search_epochs + state["epoch"]) / total_epochs,
                **metrics})
    start = time.perf_counter()
    test_loss, test_acc = final.test()
    state["eval_seconds"] += time.perf_counter() - start

    # 8. record
    return finish(spec, seed, state, device, report, final.net, data.info, test_acc, test_loss,
                  f"the final network trained from scratch ({final.epochs} epochs), tested once on "
                  f"{spec.dataset}")


def trial_state(checkpoint: dict[str, Any] | None, method: Any) -> tuple[dict[str, Any], Any]:
    """The trial's state and the random state it was saved with: a fresh one, or the checkpoint's (the method
    restored into and the random state set when it stopped in the search; an evaluation restores its own)."""
    if checkpoint is None:
        return {"phase": "search", "epoch": 0, "history": [], "search_seconds": 0.0, "eval_seconds": 0.0,
                "results": {}}, None
    state, saved_rng = checkpoint, checkpoint.pop("rng")
    # where a retried or resumed trial picked up (the record keeps it: a lost node, an interrupted driver)
    state.setdefault("resumed_at", []).append({"phase": state["phase"], "epoch": state["epoch"]})
    if state["phase"] == "search":
        method.load_state_dict(state.pop("method"))
        set_rng_state(saved_rng)
    return state, saved_rng


def search_epoch(spec: ExperimentSpec, seed: int, method: Any, data: SearchData, state: dict[str, Any],
                 search_epochs: int) -> dict[str, Any]:
    """One search epoch: trains, appends the epoch to ``state``'s history and counts its seconds; the epoch's
    metrics. The seconds the epoch spent on what the method declares is not search (``excluded_seconds``; NOS:
    obtaining its teacher, whose cost the record states beside it) are left out, and named in the epoch's history
    where there are any."""
    epoch, start = state["epoch"], time.perf_counter()
    excluded_before = method.excluded_seconds()
    with diverging(spec, seed, f"search epoch {epoch + 1} of {search_epochs}", ("w_lr", "arch_lr")):
        metrics = method.train_epoch(epoch, data)
        check_finite(metrics.get("train_loss"), metrics.get("val_loss"))  # a method with a loop of its own
    excluded = {name: total - excluded_before.get(name, 0.0) for name, total in method.excluded_seconds().items()}
    excluded = {name: value for name, value in excluded.items() if value}
    seconds = time.perf_counter() - start - sum(excluded.values())
    state["search_seconds"] += seconds
    state["history"].append({"phase": "search", "epoch": epoch, **metrics, "seconds": seconds, **excluded})
    state["epoch"] = epoch + 1
    return metrics


def eval_epoch(spec: ExperimentSpec, seed: int, final: FinalTraining, state: dict[str, Any]) -> dict[str, Any]:
    """One epoch of the final network's training: appends it to ``state``'s history and counts its seconds."""
    epoch, start = state["epoch"], time.perf_counter()
    with diverging(spec, seed, f"evaluation epoch {epoch + 1} of {final.epochs}", ("eval_lr",)):
        metrics = final.train_epoch(epoch)
    seconds = time.perf_counter() - start
    state["eval_seconds"] += seconds
    state["history"].append({"phase": "eval", "epoch": epoch, **metrics, "seconds": seconds})
    state["epoch"] = epoch + 1
    return metrics


def trial_findings(spec: ExperimentSpec, method: Any, space: Any, table: Benchmark | None, genotype: Any,
                   data: SearchData) -> dict[str, Any]:
    """What the trial finds about the derived genotype and the method's scores: the correlations, the benchmark's
    figures (where the space has a table; else the record says why they are null), the method's own information
    and its importance with the op names of its columns."""
    cfg = spec.config
    findings = op_level_correlation(method, data, cfg)
    if table is not None:
        findings.update(benchmark_figures(table, genotype, spec.dataset))
        findings.update(arch_level_correlation(method, table, spec.dataset, cfg, data))
        findings.update(one_shot_correlation(method, table, spec.dataset, data, cfg))
    else:
        why = {"samples": 0, "undefined": f"the {spec.space} space has no table of known results"}
        findings.update(arch_kendall_tau=None, arch_spearman_rho=None, arch_correlation=why,
                        oneshot_kendall_tau=None, oneshot_spearman_rho=None, oneshot_correlation=dict(why))
    findings.update(method.record_info())
    importance = method.importance()
    if importance is not None:  # the scores behind the genotype and the correlations, for tracing
        findings["importance"] = {group: matrix.tolist() for group, matrix in importance.items()}
        findings["importance_ops"] = list(space.op_names)  # their columns, named for readers (the plots)
    return findings


def benchmark_figures(table: Benchmark, genotype: Any, dataset: str) -> dict[str, Any]:
    """The derived cell's benchmark figures and where they come from."""
    return {"benchmark": table.figures(genotype),
            "benchmark_info": {**table.locate(genotype), "table": table.describe()}}


def finish_by_lookup(spec: ExperimentSpec, seed: int, space: Any, table: Benchmark, genotype: Any,
                     state: dict[str, Any], device: torch.device, report: Reporter) -> dict[str, Any]:
    """Evaluation by look-up: the test accuracy is the table's figure for the search dataset; parameters
    and multiply-adds are those of the benchmark's own network (paper size) for that dataset."""
    column, source = table.target_column(spec.dataset)
    info = table.network_info(column)
    net = space.build_network(genotype, info, "paper", auxiliary=False)
    test_acc = state["results"]["benchmark"].get(column)
    return finish(spec, seed, state, device, report, net, info, test_acc, None, f"{source} (table column {column})")


def finish(spec: ExperimentSpec, seed: int, state: dict[str, Any], device: torch.device, report: Reporter,
           net: torch.nn.Module, info: Any, test_acc: float | None, test_loss: float | None,
           test_acc_source: str) -> dict[str, Any]:
    """Write the trial's record atomically and report the flat summary."""
    # the teacher's cost (NOS) is not in it: the record states it beside (teacher_seconds, teacher_device_hours)
    # candidates a black-box search trained beside the trial (parallel_device_seconds) are device time too
    hours = (state["search_seconds"] + state["results"]["correlation_seconds"] + state["eval_seconds"]
             + state["results"].get("parallel_device_seconds", 0.0)) / 3600
    peak_mem_mb = peak_memory_mb(device)  # the trial's own peak, before the latency's batch pass adds to it
    report({"phase": "latency"})  # the progress display's phase (timed passes of the final network)
    latency = network_latency(net, info, spec.config, device)
    record = {
        "method": spec.method, "space": spec.space, "dataset": spec.dataset,
        "budget": spec.budget, "seed": seed, "experiment": spec.name,
        "config": spec.config, "config_hash": spec.config_hash, "overrides": spec.overrides,
        **state["results"],
        "test_acc": test_acc, "test_loss": test_loss, "test_acc_source": test_acc_source,
        "search_seconds": state["search_seconds"], "eval_seconds": state["eval_seconds"],
        "device_hours": hours, "device_hours_kind": device_hours_kind(device),
        "device": describe_device(device), "peak_mem_mb": peak_mem_mb,
        "params_m": count_params_m(net),
        "madds_m": count_madds_m(net, (1, info.in_channels, info.image_size, info.image_size)),
        **latency,
        "history": state["history"], "resumed_at": state.get("resumed_at", []), "harness_version": __version__,
        "runner": runner_info(), "environment": run_environment(device),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    write_record(spec.record_path(seed), record)
    spec.checkpoint_path(seed).unlink(missing_ok=True)  # the record is the result; the state is spent
    report({**{k: record[k] for k in SUMMARY_KEYS}, "phase": "done", "progress": 1.0})
    return record


def runner_info() -> dict[str, Any]:
    """Where the trial ran: the Ray node's id (None outside Ray), whether the driver shipped the harness's code
    to it through Ray's runtime_env (``code_shipped``: the job's ``py_modules``), and the folder the harness was
    imported from (a shipped copy, unless an installed one takes precedence on that node)."""
    import ray

    import harness

    node, shipped = None, False
    if ray.is_initialized():
        context = ray.get_runtime_context()
        node, shipped = context.get_node_id(), bool((context.runtime_env or {}).get("py_modules"))
    return {"node": node, "code_shipped": shipped, "harness_from": str(Path(harness.__file__).parent)}


def network_latency(net: torch.nn.Module, info: Any, cfg: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The final network's forward latency on the trial's device (``harness.core.metrics.measure_latency_ms``: the
    median of ``latency_runs`` timed passes after ``latency_warmup``): ``latency_ms`` at batch 1 and
    ``latency_batch_ms`` at ``latency_batch`` = ``eval_batch_size``, network and input in the configuration's
    memory format. A look-up network is built on the CPU, so it is moved first (the trained one is there)."""
    net = to_device(net, cfg, device)
    batch = int(cfg["eval_batch_size"])
    runs, warmup, layout = int(cfg["latency_runs"]), int(cfg["latency_warmup"]), memory_format(cfg)

    def latency(size: int) -> float:
        shape = (size, info.in_channels, info.image_size, info.image_size)
        return measure_latency_ms(net, shape, warmup, runs, layout=layout)

    return {"latency_ms": latency(1), "latency_batch_ms": latency(batch), "latency_batch": batch}
