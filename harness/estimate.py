"""The time estimate of a run: every phase a trial goes through, measured on a few steps, and the run's concurrency.

A trial's wall time is the sum of its phases (``TrialCost``), each measured where the trial will run and extrapolated
to the configured counts:

- ``startup``: the trial's worker starts and imports torch, Ray Tune and the harness (on this machine
  ``WORKER_STARTUPS`` × how long this driver took to start and import them, ``import_seconds``; on a cluster, the round
  trip of the measuring task beyond its own work: scheduling, the worker's start and imports, the shipped code),
  loads its data and builds its search split, space and method;
- ``search``: after a few steps timed (``method.step_time``: the warm-up), a dry run of every epoch in order with each
  batch stream cut to two batches (``search_timings``): each stream's batches at the pace of its second one (its
  steps, or its validation pass), and the rest of the epoch once, so that a method whose epochs differ (ADWPNAS's
  phases, EoiNAS's pruning, random search's candidates) is timed epoch by epoch;
- ``correlation``: on the method as the dry run left it, the operation-level correlation (one supernet forward timed ×
  every sampled edge's ops × ``corr_batches``), the one-shot correlation (the method's accuracy of 2 cells on one
  batch timed × ``oneshot_samples`` × ``corr_batches``) and the architecture-level correlation (the method's scores
  of 2 cells timed × ``arch_corr_samples``: by default a sum of log-importances, ADWPNAS measures every cell);
- ``evaluation``: the final network's training (two steps timed, on a sampled cell of the space, × batches × epochs)
  and its test pass (one batch timed × test batches); nothing where the space evaluates by look-up;
- ``latency``: the record's multiply-add count and the latency passes (one pass at batch 1 and one at the evaluation
  batch timed, × ``latency_warmup + latency_runs``) on the final network (the benchmark's own at paper size for a
  look-up).

The run (``run_seconds``): Ray's start on this machine (``RAY_START_STARTUPS`` × ``import_seconds``; nothing when a
cluster was joined with ``--address``), then the trials in their order, each taking the first free slot
(``makespan``) of ``trial_slots`` (what fits on the nodes at once, by the CPUs and GPUs a trial asks, capped by
``--max-concurrent``) and, for CPU trials on this machine, slowed by sharing its cores (``contention``), then the end
(``END_STARTUPS`` × ``import_seconds``: Ray Tune's last writes, the summary, Ray's stop).

On a cluster (``--address``) the trial's phases are measured by a Ray task that asks for the trial's own resources
(``measure_on_cluster``): it runs on a node where a trial can run (with its GPU), not on the driver's head node, which
often has none. What is not counted: NOS's teacher when it is not cached yet (trained once per dataset and
configuration), the per-epoch checkpoints (written to the results' storage), and other work sharing the machine.
"""

from __future__ import annotations

import dataclasses
import heapq
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.core.correlation import arch_sample, sample_edges
from harness.core.data import SearchData, load_dataset
from harness.core.metrics import count_madds_m
from harness.core.registry import get_method, get_space
from harness.core.train import Diverged, evaluate, seed_everything, time_train_steps
from harness.evaluation import FinalTraining
from harness.spec import ExperimentSpec
from harness.trial import network_latency, pick_device

PHASES = ("startup", "search", "correlation", "evaluation", "latency")
PHASE_LABELS = {"startup": "start-up", "search": "search", "correlation": "correlation", "evaluation": "evaluation",
                "latency": "latency"}


@dataclass(frozen=True)
class TrialCost:
    """Seconds one trial spends in each phase (``PHASES``), and where they were measured."""

    startup: float = 0.0
    search: float = 0.0
    correlation: float = 0.0
    evaluation: float = 0.0
    latency: float = 0.0
    where: str = ""
    launch: float = 0.0  # of ``startup``: the worker's start and imports, before Ray Tune says the trial started

    @property
    def total(self) -> float:
        return sum(self.phases().values())

    def phases(self) -> dict[str, float]:
        return {phase: getattr(self, phase) for phase in PHASES}

    def after(self, phase: str) -> float:
        """Seconds of the phases after ``phase``."""
        return sum(seconds for name, seconds in self.phases().items() if PHASES.index(name) > PHASES.index(phase))


def process_age() -> float | None:
    """Seconds since this process started (Linux: ``/proc``); None where it cannot be read."""
    try:
        started = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - started / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


# How long this interpreter took to start and import torch, Ray Tune and the driver's modules (this module is imported
# after them): what a trial's worker pays again before its first step. None where the process's age is unknown.
IMPORT_SECONDS = process_age()


def import_seconds() -> float:
    """``IMPORT_SECONDS``, or where the process's age is unknown the time a fresh interpreter takes to import the
    trial's modules (measured once)."""
    global IMPORT_SECONDS
    if IMPORT_SECONDS is None:
        import subprocess
        import sys

        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import harness.trial"], check=False, capture_output=True)
        IMPORT_SECONDS = time.perf_counter() - start
    return IMPORT_SECONDS


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


@dataclass(frozen=True)
class Timings:
    """What a trial's phases are made of: the seconds of one unit of work, measured on a few steps, and how many
    units the trial's configuration asks for (``trial_cost`` multiplies them out)."""

    startup: float = 0.0  # imports, data, the split, space and method built
    search_fixed: float = 0.0  # the search's epochs apart from their batches (set-up, derivation, one-time costs)
    search_streams: tuple[tuple[float, int], ...] = ()  # every batch stream of every epoch: (seconds a batch, batches)
    corr_pass: float = 0.0  # the operation-level correlation: one supernet pass (batch statistics) on one batch
    corr_ops: int = 0  # the ops of every sampled edge
    corr_batches: int = 0
    arch_score: float = 0.0  # the architecture-level correlation: the method's score of one cell
    arch_cells: int = 0
    one_shot_pass: float = 0.0  # the one-shot correlation: one cell, one batch
    one_shot_cells: int = 0
    eval_build: float = 0.0  # the final network and its optimiser
    eval_step: float = 0.0
    eval_steps: int = 0  # per epoch
    eval_epochs: int = 0
    test_batch: float = 0.0
    test_batches: int = 0
    net_build: float = 0.0  # a look-up's network (the benchmark's own, at paper size)
    madds: float = 0.0  # the record's multiply-add count
    latency_pass: float = 0.0  # one pass at batch 1 plus one at the evaluation batch
    latency_passes: int = 0  # latency_warmup + latency_runs


def trial_cost(t: Timings, where: str = "") -> TrialCost:
    """A trial's phases from its ``Timings`` (the module docstring)."""
    return TrialCost(
        startup=t.startup,
        search=t.search_fixed + sum(seconds * count for seconds, count in t.search_streams),
        correlation=(t.corr_pass * t.corr_ops * t.corr_batches + t.arch_score * t.arch_cells
                     + t.one_shot_pass * t.one_shot_cells * t.corr_batches),
        evaluation=t.eval_build + t.eval_step * t.eval_steps * t.eval_epochs + t.test_batch * t.test_batches,
        latency=t.net_build + t.madds + t.latency_pass * t.latency_passes,
        where=where)


def measure_trial(spec: ExperimentSpec, dataset: Any, startup: float = 0.0, steps: int = 2,
                  launch: float = 0.0) -> TrialCost:
    """The phases of one trial of ``spec`` measured here (``measure_timings``), said where; ``launch``: the worker's
    start, counted in the start-up."""
    timings, where = measure_timings(spec, dataset, startup + launch, steps)
    return dataclasses.replace(trial_cost(timings, where), launch=launch)


def measure_timings(spec: ExperimentSpec, dataset: Any, startup: float = 0.0, steps: int = 2) -> tuple[Timings, str]:
    """Every unit of a trial of ``spec`` timed here (seed 0; ``steps`` timed steps after a warm-up one) with its
    count, and the device in words; ``startup``: seconds already known of the start-up (imports, data loading), to
    which building the split, space and method is added."""
    cfg = spec.config
    torch.set_num_threads(min(spec.cpus_per_trial, os.cpu_count() or 1))  # never more than a trial gets
    device = pick_device(spec.gpus_per_trial, strict=False)  # the driver: maybe a cluster's GPU-less head
    built = time.perf_counter()
    seed_everything(0)
    data = SearchData(dataset, cfg, 0, device)
    space = get_space(spec.space)(cfg)
    method = get_method(spec.method)(space, cfg, data.info, device, 0)
    parts: dict[str, Any] = {"startup": startup + time.perf_counter() - built}
    parts.update(search_timings(method, data, steps))
    parts.update(correlation_timings(spec, method, data))  # on the method as the dry run of its search left it

    genotype = space.sample(np.random.default_rng(0))  # a cell of the space stands for the one the search derives
    if space.evaluates_by_lookup():
        column, _ = space.benchmark().target_column(spec.dataset)
        info = space.benchmark().network_info(column)
        net, parts["net_build"] = _timed(space.build_network, genotype, info, "paper", auxiliary=False)
    else:
        final, parts["eval_build"] = _timed(FinalTraining, space, genotype, data, cfg, device)
        parts.update(eval_step=time_train_steps(final.net, final.opt, data.eval_train_batches(0), cfg["eval_grad_clip"],
                                                cfg["auxiliary_weight"], steps=steps),
                     eval_steps=len(data.eval_train_batches(0)), eval_epochs=final.epochs,
                     test_batch=batch_seconds(final.net, data.test_batches()), test_batches=len(data.test_batches()))
        net, info = final.net, data.info
    parts.update(latency_timings(net, info, cfg, device))
    return Timings(**parts), f"this machine, {device_words(device)}"


def device_words(device: torch.device) -> str:
    """``CPU, 1 thread`` or the GPU's name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device.index if device.index is not None else torch.cuda.current_device())
    threads = torch.get_num_threads()
    return f"CPU, {threads} thread{'s' if threads != 1 else ''}"


class TimedBatches:
    """A batch stream cut to ``limit`` batches that notes when each batch is asked for: the time between the second
    and the third ask is one batch's work (its consumer's step on it and the next batch's preparation)."""

    def __init__(self, batches: Any, limit: int):
        self.batches, self.full = batches, len(batches)
        batches.limit_batches = min(limit, batches.limit_batches) if batches.limit_batches else limit
        self.asked: list[float] = []  # of the first pass over it
        self.passes = self.yielded = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.batches, name)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Any:
        first, self.passes = not self.passes, self.passes + 1
        for batch in self.batches:
            if first:
                self.asked.append(time.perf_counter())
            self.yielded += 1
            yield batch
        if first:
            self.asked.append(time.perf_counter())

    def per_batch(self) -> float | None:
        """Seconds of one batch's work, once a second batch was worked through (None before)."""
        return self.asked[2] - self.asked[1] if len(self.asked) >= 3 else None


class DryRunData:
    """A trial's data whose every batch stream stops after ``DRY_RUN_BATCHES`` batches and is timed (``TimedBatches``):
    the search runs every epoch in order, each on two batches of each stream (``search_timings``)."""

    def __init__(self, data: SearchData):
        self.data, self.streams = data, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.data, name)

    def timed(self, batches: Any) -> TimedBatches:
        self.streams.append(TimedBatches(batches, DRY_RUN_BATCHES))
        return self.streams[-1]

    def weight_batches(self, epoch: int, phase: str = "weights") -> TimedBatches:
        return self.timed(self.data.weight_batches(epoch, phase))

    def arch_batches(self, epoch: int) -> TimedBatches:
        return self.timed(self.data.arch_batches(epoch))

    def val_batches(self, limit_batches: int = 0) -> TimedBatches:
        return self.timed(self.data.val_batches(limit_batches))


DRY_RUN_BATCHES = 2
DRY_RUN_LIMIT_S = 60.0  # the dry run of the search stops after this long: the epochs left are like its last


def search_timings(method: Any, data: SearchData, steps: int) -> dict[str, Any]:
    """The search's epochs: after ``steps`` timed steps (``method.step_time``: the warm-up, and NOS's untrained
    teacher), a dry run of every epoch in order with each batch stream cut to two batches (``DryRunData``), so that a
    method whose epochs differ (phases, pruned operations, candidates trained) is timed epoch by epoch. An epoch
    counts each stream's batches at the pace of its second batch, and the rest of its time once. Once the dry run has
    taken ``DRY_RUN_LIMIT_S`` (a large budget on a slow device), the epochs left are taken to be like its last. A dry
    run that diverges (a learning rate too high: the trial will say so) ends there too, its last epoch as far as it
    got: the estimate is not the place to refuse a configuration."""
    method.step_time(data, steps)
    fixed, streams, started, diverged = [], [], time.perf_counter(), False
    for epoch in range(method.num_epochs()):
        if fixed and (diverged or time.perf_counter() - started > DRY_RUN_LIMIT_S):
            fixed.append(fixed[-1])
            streams.append(streams[-1])
            continue
        dry = DryRunData(data)
        start = time.perf_counter()
        try:
            method.train_epoch(epoch, dry)
        except Diverged:
            diverged = True
        took, paced = time.perf_counter() - start, []
        for stream in dry.streams:
            pace = stream.per_batch()
            if pace is not None:  # a stream worked through: its batches at that pace, the ones it ran taken out
                paced.append((pace, stream.full * stream.passes))
                took -= pace * stream.yielded
        fixed.append(max(0.0, took))
        streams.append(paced)
    return {"search_fixed": sum(fixed), "search_streams": tuple(pair for epoch in streams for pair in epoch)}


def batch_seconds(net: torch.nn.Module, batches: Any, train_mode_bn: bool = False) -> float:
    """Seconds of ``net``'s forward pass over one of ``batches`` (after an untimed one); 0 for no batches."""
    if not len(batches):
        return 0.0
    batches.limit_batches = 1
    evaluate(net, batches, train_mode_bn)
    return _timed(evaluate, net, batches, train_mode_bn)[1]


def correlation_timings(spec: ExperimentSpec, method: Any, data: SearchData) -> dict[str, Any]:
    """The correlations after the search (``harness.core.correlation``): the operation level's supernet passes
    (where the method has a supernet and scores), and where the space has a table the method's scores of its cells
    and the one-shot passes (2 cells timed)."""
    cfg, space = spec.config, method.space
    out: dict[str, Any] = {"corr_batches": len(data.val_batches(limit_batches=int(cfg.get("corr_batches", 0))))}
    if method.supernet is not None and method.importance() is not None and cfg.get("corr_edges"):  # as the trial
        out["corr_pass"] = batch_seconds(method.supernet, data.val_batches(), train_mode_bn=True)
        out["corr_ops"] = sum(len(method.correlation_ops(group, index))
                              for group, index in sample_edges(space.arch_shape(), int(cfg["corr_edges"])))
    table = space.benchmark()
    count = int(cfg.get("arch_corr_samples", 0))
    cells = arch_sample(table, table.target_column(spec.dataset)[0], min(2, count))[0] if table and count else []
    if not cells:
        return out
    out.update(arch_score=_timed(method.score_architectures, cells, data)[1] / len(cells), arch_cells=count)
    one_shot = min(int(cfg.get("oneshot_samples", 0)), count)
    if method.supernet is not None and one_shot:
        batch = data.val_batches(limit_batches=1)
        method.discrete_accuracies(cells[:1], batch)  # warm-up
        out.update(one_shot_pass=_timed(method.discrete_accuracies, cells, batch)[1] / len(cells),
                   one_shot_cells=one_shot)
    return out


def latency_timings(net: torch.nn.Module, info: Any, cfg: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The record's multiply-add count and latency passes on the final network (``harness.trial.finish``): one pass
    at batch 1 and one at the evaluation batch timed (after an untimed one each)."""
    _, madds = _timed(count_madds_m, net, (1, info.in_channels, info.image_size, info.image_size))
    once = network_latency(net, info, {**cfg, "latency_runs": 1, "latency_warmup": 1}, device)
    return {"madds": madds, "latency_pass": (once["latency_ms"] + once["latency_batch_ms"]) / 1000,
            "latency_passes": int(cfg["latency_runs"]) + int(cfg["latency_warmup"])}


def _measure_task(spec_json: dict[str, Any]) -> tuple[TrialCost, float]:
    """The Ray task of ``measure_on_cluster``: loads the data as a trial does and measures; its own seconds."""
    import ray

    start = time.perf_counter()
    spec = ExperimentSpec.from_json(spec_json)
    dataset, load = _timed(load_dataset, spec.dataset, spec.data_dir, spec.config["image_size"])
    cost = measure_trial(spec, dataset, startup=load)
    node = ray.util.get_node_ip_address()
    return dataclasses.replace(cost, where=cost.where.replace("this machine", f"cluster node {node}")), \
        time.perf_counter() - start


CLUSTER_MEASURE_TIMEOUT_S = 600.0


def measure_on_cluster(spec: ExperimentSpec, timeout: float = CLUSTER_MEASURE_TIMEOUT_S) -> TrialCost:
    """The phases measured by a Ray task that asks for a trial's CPUs and GPUs, so that it runs on a node where a
    trial can run (the driver's head node often has no GPU); the task's round trip beyond its own work (scheduling,
    the worker's start and imports, the shipped code) counts as start-up. ``ray`` must be initialised."""
    import ray

    task = ray.remote(_measure_task).options(num_cpus=spec.cpus_per_trial, num_gpus=spec.gpus_per_trial,
                                             max_retries=0)
    start = time.perf_counter()
    ref = task.remote(spec.to_json())
    try:
        cost, inside = ray.get(ref, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        ray.cancel(ref, force=True)
        raise
    overhead = max(0.0, time.perf_counter() - start - inside)
    return dataclasses.replace(cost, startup=cost.startup + overhead, launch=overhead)


def estimate_seconds(spec: ExperimentSpec, dataset: Any, load_seconds: float = 0.0) -> TrialCost:
    """One trial's phases: on a cluster (``--address``), measured by a task on one of its nodes; else here, with its
    worker's start (``WORKER_STARTUPS`` of this driver's) and the data's loading (``load_seconds``) as the start-up's
    known part."""
    launch = WORKER_STARTUPS * import_seconds()
    if spec.address:
        import ray

        if ray.is_initialized():
            try:
                return measure_on_cluster(spec)
            except ray.exceptions.GetTimeoutError:
                pass  # no node was free for it: measured here, and said so
            cost = measure_trial(spec, dataset, load_seconds, launch=launch)
            return dataclasses.replace(cost, where=f"{cost.where}: no node of the cluster was free to measure on")
    return measure_trial(spec, dataset, load_seconds, launch=launch)


# --- the run: concurrency and overheads -----------------------------------------------------------------------------

def node_resources(spec: ExperimentSpec) -> list[dict[str, float]]:
    """The CPUs and GPUs of every node trials can run on: the joined cluster's live nodes, or this machine (the local
    Ray the driver starts gets all its cores and GPUs)."""
    if spec.address:
        import ray

        if ray.is_initialized():
            return [{"CPU": float(n["Resources"].get("CPU", 0)), "GPU": float(n["Resources"].get("GPU", 0))}
                    for n in ray.nodes() if n.get("Alive")]
    return [{"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}]


def trial_slots(cpus: float, gpus: float, nodes: Sequence[dict[str, float]], max_concurrent: int | None,
                trials: int) -> int:
    """How many trials run at once: on each node as many as its CPUs and (when a trial asks for GPUs) its GPUs hold,
    summed over the nodes, capped by ``max_concurrent`` and the number of trials (at least one)."""
    fits = 0
    for node in nodes:
        here = int(node.get("CPU", 0) // cpus) if cpus > 0 else trials
        if gpus > 0:
            here = min(here, int(node.get("GPU", 0) // gpus))
        fits += here
    return max(1, min(fits, max_concurrent or trials, trials))


def makespan(durations: Sequence[float], slots: int) -> float:
    """Seconds until the last of ``durations`` ends when each starts, in order, on the first of ``slots`` free (how
    Ray Tune starts a grid's trials)."""
    free = [0.0] * max(1, slots)
    for seconds in durations:
        heapq.heapreplace(free, free[0] + seconds)
    return max(free)


# The overheads of Ray on this machine, in this driver's Python start-ups (``import_seconds``), as measured on the
# 2-core machine (docs/estimate.md): a trial's worker starts Python, imports and connects Ray, then imports the trial's
# modules (1.25-2 ×, between two trials of the quickstart and of a study); Ray's local start launches its own
# processes and Ray Tune sets up the experiment (about 2 ×, from the plan to the first trial less that trial's
# worker); the end is Ray Tune's last writes, the summary and Ray's stop (about 1 ×, from the last trial's end to the
# driver's exit).
WORKER_STARTUPS = 1.5
RAY_START_STARTUPS = 2.0
END_STARTUPS = 1.0


def contention(slots: int, cpus_per_trial: float, cores: int, load: float) -> float:
    """How much slower a CPU trial runs when ``slots`` of them share this machine's ``cores`` with the work already
    there than the measurement did, which ran one trial's threads beside it. ``load``: the 1-minute load average when
    measured, of which this driver (busy measuring) is taken as one; each thread beyond the cores waits its turn."""
    background = max(0.0, load - 1.0)
    alone = max(1.0, (cpus_per_trial + background) / cores)
    together = max(1.0, (slots * cpus_per_trial + background) / cores)
    return together / alone


@dataclass(frozen=True)
class RunCost:
    """The whole run from the plan on: Ray's start, the trials (``slots`` at once, each ``slowdown`` × its
    estimate for sharing the machine's cores) and the end."""

    start: float
    trials: float
    end: float
    slots: int
    slowdown: float = 1.0

    @property
    def total(self) -> float:
        return self.start + self.trials + self.end


def run_seconds(costs: Sequence[TrialCost], slots: int, joined_cluster: bool, slowdown: float = 1.0,
                startup: float | None = None) -> RunCost:
    """The run of the trials of ``costs`` (in their order) on ``slots``, each taking ``slowdown`` × its estimate;
    ``startup``: the Python start-up that Ray's start and stop are modelled on (default ``import_seconds()``; the module
    docstring); no Ray start for a cluster already joined."""
    startup = import_seconds() if startup is None else startup
    return RunCost(start=0.0 if joined_cluster else RAY_START_STARTUPS * startup,
                   trials=makespan([c.total * slowdown for c in costs], slots), end=END_STARTUPS * startup, slots=slots,
                   slowdown=slowdown)
