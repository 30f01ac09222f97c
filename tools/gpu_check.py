"""One call on a GPU machine: does every pair run on CUDA, does a seed repeat, and what do search steps cost there.

    python tools/gpu_check.py                          # on one GPU: under 8 minutes, one table
    python tools/gpu_check.py --json gpu-check.json    # also every figure as JSON
    python tools/gpu_check.py --cpu-quick              # the same checks shrunk, on the CPU (seconds)

It prints one table (laid out for the terminal's width, ``COLUMNS`` or 120 columns in a pipe; nothing is cut; progress
lines go to stderr) with a row per check, in five sections, run in this order:

``determinism``  DARTS on the DARTS space, one trial (as in ``pairs``) with ``cudnn_benchmark=false``, twice: PASS
                 when the two records are identical in every field ``pair_records.py --compare`` compares (genotype,
                 accuracies, importance, correlations, benchmark figures, every epoch's loss; never the timings).
``step``         ``supernet_step.time_step`` for its whole table (DARTS first and second order, GDAS, EoiNAS and AGNAS
                 on ``darts``, NOS on ``hetero``) at paper size (C=16, 8 cells, each method's paper batch of
                 32×32×3), in the channels-last and the contiguous layout: seconds per step, images/s (batch ÷ step
                 time) and the peak CUDA memory; 1 warm-up and 5 timed steps, in this process.
``epoch``        one search epoch of first-order DARTS on the paper-size NAS-Bench-201 supernet (C=16, N=5), measured:
                 ``method.train_epoch`` as a trial runs it — 391 steps of batch 64 over a 25,000-image weight half,
                 augmentation, the architecture half's batches and the validation pass over its 25,000 images — on
                 synthetic 32×32×3 tensors (50,000 random images, 10 balanced classes; real data cannot travel to
                 the device), after 2 untimed warm-up steps; beside it, the papers' 50-epoch search at that rate.
``sharing``      1, 2 and 4 trials sharing one GPU through Ray: Ray tasks with ``num_gpus`` 1, 0.5 and 0.25 (what
                 ``--gpus-per-trial 1 / 0.5 / 0.25`` gives each trial), each building the paper-size NB201 supernet
                 and running 3 warm-up and 30 timed first-order DARTS steps (``supernet_step.time_step``); the tasks
                 wait for each other (a barrier of files in a temporary folder) before their timed steps, so those run
                 together. Per row: images/s summed over the trials (each trial's batch ÷ its mean step time), the
                 window from the first trial's first timed step to the last one's end, the group's wall time (worker
                 start-up and building included) and the summed images/s against one trial alone. Not the harness's
                 own launch (``python -m harness run --gpus-per-trial 0.5``): a fixed number of steps measures
                 throughput, where a whole trial would mix in its correlation and evaluation phases. On a machine
                 with several GPUs Ray may spread the trials over them: the row then FAILs and says to set
                 ``CUDA_VISIBLE_DEVICES`` to one GPU.
``pairs``        every registered (method, space) pair (``python -m harness list``) runs one trial in-process
                 (``pair_records.trial_record``: ``build_spec`` + ``execute_trial``, seed 0, digits, one CPU thread)
                 with the GPU as its device: the smoke budget on the first 256 digits images (``train_limit=256``:
                 every epoch and phase of the smoke trial, one or two steps each, so that all pairs fit the time);
                 PASS when the record is written and says the trial ran on CUDA; its wall time and test accuracy.

Every row runs in turn; a failing row is FAIL with its one-line reason and the check goes on. ``--timeout`` (default
450 s) stops starting new rows once that much time has passed since the start (the row then running finishes): the
rows not started are SKIPPED with that reason, and a line under the table gives the command that runs them on their
own (``--only SECTION,...``, with ``--pairs m/s,...`` where only some of the pairs were left). The pairs come last:
their cost on a GPU is the least known, and a cut there leaves the fewest checks undone. The script starts its own
local Ray for the sharing rows (or uses the one this process is connected to already) and stops only what it
started; NOS's teacher goes to a temporary cache removed at the end (a first run's cost). Exit status: 0 when no row
failed, 1 when one did, 2 for a bad option, 130 when interrupted (the table of what ran is printed first).

``--cpu-quick`` shrinks everything and runs on the CPU (one torch thread) even where a GPU is: determinism with
darts/nb201, the step of DARTS first order on a 3-cell C=2 supernet with batch 8 in both layouts (1 timed step), an
epoch of 2 steps (256 synthetic images, C=4, N=1), the sharing rows with Ray tasks of ``num_cpus`` 1, 0.5 and 0.25
(the trials share one CPU as they would share a GPU) running 2 timed steps of a tiny NB201 supernet, and the pairs
darts/nb201 and gdas/nb201. It shows that every row works, in seconds; its figures say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import itertools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TOOLS = Path(__file__).resolve().parent
for _path in (TOOLS.parent, TOOLS):  # the harness of this checkout, and the tools this one reuses (also when it is
    if str(_path) not in sys.path:  # loaded from its file, as the tests do)
        sys.path.insert(0, str(_path))

from harness.cli import RAY_ENV  # noqa: E402  (imports no ray)

for _key, _value in RAY_ENV.items():  # before anything imports ray
    os.environ.setdefault(_key, _value)

import pair_records  # noqa: E402
import supernet_step  # noqa: E402
import torch  # noqa: E402
from rich.table import Table  # noqa: E402
from rich.text import Text  # noqa: E402

from harness.console import make_console  # noqa: E402
from harness.core.config import parse_overrides, resolve  # noqa: E402
from harness.core.data import Dataset, SearchData  # noqa: E402
from harness.core.errors import UserError  # noqa: E402
from harness.core.records import atomic_write, environment_summary, run_environment  # noqa: E402
from harness.core.registry import get_method, get_space  # noqa: E402
from harness.core.stats import duration_text  # noqa: E402
from harness.core.train import configure_backends, seed_everything  # noqa: E402

SECTIONS = ("determinism", "step", "epoch", "sharing", "pairs")  # the order they run and are shown in
DEFAULT_TIMEOUT_S = 450.0  # 7.5 minutes: the rows started before it end well within 8 on one GPU
BARRIER_TIMEOUT_S = 180.0  # sharing: how long a trial waits for the others to be built
SHARES = (1, 2, 4)  # trials sharing the device
PASS, FAIL, SKIP = "PASS", "FAIL", "SKIPPED"
NOT_SELECTED = "not selected (--only)"


@dataclass(frozen=True)
class Plan:
    """What each section runs: the GPU check, or its shrunk form on the CPU (``QUICK``)."""

    name: str
    pairs: tuple[tuple[str, str], ...] | None  # None: every registered pair
    pair_sets: tuple[str, ...]  # --set of every pair row (and of the determinism row)
    determinism_pair: tuple[str, str]
    step_configs: tuple[tuple[str, str, int], ...]  # (method, space, DARTS order) of supernet_step
    step_sets: tuple[str, ...]
    step_steps: int
    step_warmup: int
    epoch_images: int  # synthetic training images (two halves)
    epoch_sets: tuple[str, ...]
    epoch_warmup: int
    sharing_config: tuple[str, str, int]
    sharing_sets: tuple[str, ...]
    sharing_steps: int
    sharing_warmup: int
    threads: int | None  # torch's CPU threads for the rows (a pair's trial takes one); None: the process's own


GPU = Plan(name="gpu", pairs=None, pair_sets=("train_limit=256",), determinism_pair=("darts", "darts"),
           step_configs=supernet_step.TABLE, step_sets=(), step_steps=5, step_warmup=1,
           epoch_images=50_000, epoch_sets=(), epoch_warmup=2,
           sharing_config=("darts", "nb201", 1), sharing_sets=(), sharing_steps=30, sharing_warmup=3, threads=None)
QUICK = Plan(name="cpu-quick", pairs=(("darts", "nb201"), ("gdas", "nb201")), pair_sets=("train_limit=256",),
             determinism_pair=("darts", "nb201"),
             step_configs=(("darts", "darts", 1),),
             step_sets=("search_channels=2", "search_layers=3", "search_batch_size=8"), step_steps=1, step_warmup=1,
             epoch_images=256, epoch_sets=("search_channels=4", "search_layers=1"), epoch_warmup=1,
             sharing_config=("darts", "nb201", 1),
             sharing_sets=("search_channels=4", "search_layers=1", "search_batch_size=16"), sharing_steps=2,
             sharing_warmup=1, threads=1)  # one thread: on 2 busy cores a second one spins and takes 30× longer


class Failed(Exception):
    """A row that ran and failed its check: one line, and the figures it has."""

    def __init__(self, reason: str, figures: dict[str, Any] | None = None):
        super().__init__(reason)
        self.figures = figures or {}


@dataclass
class Row:
    section: str
    name: str
    run: Callable[[], tuple[dict[str, Any], str]] = field(repr=False)  # its figures and their text
    status: str = SKIP
    seconds: float | None = None
    text: str = ""  # the figures as the table shows them
    reason: str = ""  # why it failed or was skipped
    figures: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"section": self.section, "name": self.name, "status": self.status, "seconds": self.seconds,
                "text": self.text, "reason": self.reason, "figures": self.figures}


def one_line(exc: BaseException) -> str:
    """An exception as one line: a UserError's message; otherwise its type and the first line of its message (a Ray
    task's error: that of the exception inside the task)."""
    exc = getattr(exc, "cause", None) or exc  # ray.exceptions.RayTaskError
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    message = lines[0] if lines else ""
    text = message if isinstance(exc, UserError) else f"{type(exc).__name__}{': ' + message if message else ''}"
    return text if len(text) <= 300 else text[:299] + "…"


def mib(value: Any) -> str:
    return f"{value / 1024:.2f} GiB" if value >= 1024 else f"{value:.0f} MiB"


def rate(value: float) -> str:
    return f"{value:,.0f} img/s" if value >= 100 else f"{value:.3g} img/s"


def free_memory(device: torch.device) -> None:
    """Between rows on CUDA: what a row built is garbage, and CUDA's cache of it goes back (the next row's peak is its
    own, and the sharing rows' worker processes find the memory free)."""
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()


# --- the rows ---------------------------------------------------------------------------------------------------

def pair_row(pair: tuple[str, str], plan: Plan, device: torch.device) -> tuple[dict[str, Any], str]:
    record, wall = pair_records.trial_record(pair, plan.pair_sets, gpus_per_trial=1 if device.type == "cuda" else 0)
    figures = {"wall_seconds": wall, "device": record["device"], "test_acc": record["test_acc"],
               "search_seconds": record["search_seconds"], "correlation_seconds": record["correlation_seconds"],
               "eval_seconds": record["eval_seconds"], "peak_mem_mb": record["peak_mem_mb"],
               "genotype": record["genotype"], "overrides": list(plan.pair_sets)}
    if not str(record["device"]).startswith(device.type):
        raise Failed(f"the trial ran on {record['device']}, not {device.type}", figures)
    test = "test —" if record["test_acc"] is None else f"test {record['test_acc']:.1f} %"
    return figures, (f"{test} · search {duration_text(record['search_seconds'])} · peak "
                     f"{'' if device.type == 'cuda' else 'RSS '}{mib(record['peak_mem_mb'])}")


def determinism_row(plan: Plan, device: torch.device) -> tuple[dict[str, Any], str]:
    sets = (*plan.pair_sets, "cudnn_benchmark=false")
    gpus = 1 if device.type == "cuda" else 0
    runs = [pair_records.trial_record(plan.determinism_pair, sets, gpus_per_trial=gpus) for _ in range(2)]
    kept = [pair_records.kept_fields(record, wall) for record, wall in runs]
    differ = pair_records.differing(*kept)
    figures = {"pair": "/".join(plan.determinism_pair), "overrides": list(sets),
               "compared": list(pair_records.COMPARED), "differing": differ,
               "deterministic": [record.get("deterministic") for record, _ in runs],
               "wall_seconds": [wall for _, wall in runs], "test_acc": [record["test_acc"] for record, _ in runs]}
    if differ:
        raise Failed(f"the two records differ in {', '.join(differ)}", figures)
    return figures, (f"cudnn_benchmark=false: identical in all {len(pair_records.COMPARED)} compared fields (test "
                     f"{runs[0][0]['test_acc']:.1f} % both times)")


def step_row(config: tuple[str, str, int], layout: str, plan: Plan, device: torch.device) -> tuple[dict[str, Any], str]:
    method, space, order = config
    result = supernet_step.time_step(method, space, order, layout, device, plan.step_steps, plan.step_warmup,
                                     list(plan.step_sets))
    result["images_per_second"] = result["batch_size"] / result["seconds_per_step"]
    text = f"{duration_text(result['seconds_per_step'])}/step · {rate(result['images_per_second'])}"
    if device.type == "cuda":
        text += f" · peak {mib(result['peak_mem_mib'])}"
    return result, text


def synthetic_dataset(images: int, size: int = 32, classes: int = 10) -> Dataset:
    """Random 32×32×3 uint8 images, labels cycling through the classes (both search halves balanced), with CIFAR-10's
    augmentation (crop padding 4, flips); a test set of one image per class (no search step reads it)."""
    gen = torch.Generator().manual_seed(0)
    train_x = torch.randint(0, 256, (images, 3, size, size), generator=gen, dtype=torch.uint8)
    test_x = torch.randint(0, 256, (classes, 3, size, size), generator=gen, dtype=torch.uint8)
    return Dataset("synthetic", train_x, torch.arange(images) % classes, test_x, torch.arange(classes), classes,
                   crop_padding=4, flip=True, order="synthetic: labels cycle through the classes")


def epoch_row(plan: Plan, device: torch.device) -> tuple[dict[str, Any], str]:
    """One search epoch of first-order DARTS on NAS-Bench-201 at paper size, built as a trial builds it."""
    method_cls, space_cls = get_method("darts"), get_space("nb201")
    cfg = resolve(method_cls, space_cls, "paper",
                  {"order": "1", "train_limit": "0", **parse_overrides(list(plan.epoch_sets))}).values
    seed_everything(0)
    backends = configure_backends(cfg, device)
    data = SearchData(synthetic_dataset(plan.epoch_images, cfg["image_size"]), cfg, 0, device)
    space = space_cls(cfg)
    method = method_cls(space, cfg, data.info, device, 0)
    for weights, arch in itertools.islice(method.step_batches(0, data), plan.epoch_warmup):  # cuDNN's autotuning
        method.train_step(weights, arch, 0)
    supernet_step.sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    metrics = method.train_epoch(0, data)
    supernet_step.sync(device)
    seconds = time.perf_counter() - start
    steps, half = len(data.weight_batches(0)), len(data.train_y) // 2
    epochs = int(resolve(method_cls, space_cls, "paper", {}).values["search_epochs"])  # the papers' search
    figures = {**backends, "search_channels": cfg["search_channels"], "search_layers": cfg["search_layers"],
               "batch_size": cfg["search_batch_size"], "train_images": len(data.train_y), "weight_images": half,
               "steps": steps, "warmup_steps": plan.epoch_warmup, "epoch_seconds": seconds,
               "seconds_per_step": seconds / steps, "weight_images_per_second": half / seconds,
               "paper_search_epochs": epochs, "paper_search_seconds": epochs * seconds,
               "train_loss": metrics["train_loss"], "val_acc": metrics["val_acc"]}
    if device.type == "cuda":
        figures["peak_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    text = (f"{steps} steps of {cfg['search_batch_size']} + validation of {half:,}: {duration_text(seconds)} "
            f"({duration_text(seconds / steps)}/step) · ×{epochs} epochs = {duration_text(epochs * seconds)}")
    return figures, text


def barrier(folder: str, index: int, count: int, timeout: float) -> None:
    """Mark trial ``index`` ready in ``folder`` and wait until all ``count`` are (one machine)."""
    Path(folder, f"ready-{index}").touch()
    deadline = time.monotonic() + timeout
    while len(list(Path(folder).glob("ready-*"))) < count:
        if time.monotonic() > deadline:
            ready = len(list(Path(folder).glob("ready-*")))
            raise TimeoutError(f"only {ready} of {count} trials were built within {timeout:g} s")
        time.sleep(0.01)


def sharing_trial(index: int, count: int, folder: str, device_type: str, config: tuple[str, str, int],
                  sets: list[str], steps: int, warmup: int, paths: list[str]) -> dict[str, Any]:
    """One trial of a sharing row, in a Ray worker: build the supernet, warm up, wait for the others, time the steps.
    Pickled by value (this module is ``__main__``, or registered so), so it imports the tools itself, from ``paths``
    (the checkout and its tools folder)."""
    import importlib
    import sys

    for path in paths:
        if path not in sys.path:
            sys.path.insert(0, path)
    step = importlib.import_module("supernet_step")
    import torch

    torch.set_num_threads(1)
    marks: dict[str, float] = {}

    def ready() -> None:
        barrier(folder, index, count, BARRIER_TIMEOUT_S)
        marks["start"] = time.time()

    result = step.time_step(*config, "channels_last", torch.device(device_type), steps, warmup, sets, ready=ready)
    return {**result, "start": marks["start"], "end": time.time(), "pid": os.getpid(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


class RayForSharing:
    """The Ray the sharing rows run on: the one this process is connected to, or a local one started (once) here and
    stopped by ``close``; a failed start fails every sharing row with its reason, tried once."""

    def __init__(self) -> None:
        self.started_here, self.start_seconds, self.error = False, None, ""

    def ensure(self) -> None:
        import ray

        from harness.cluster import start_local_ray

        if self.error:
            raise Failed(self.error)
        if ray.is_initialized():
            return
        start = time.perf_counter()
        try:
            start_local_ray()
        except Exception as exc:  # Ray's own errors
            self.error = f"Ray did not start: {one_line(exc)}"
            raise Failed(self.error) from None
        self.started_here, self.start_seconds = True, time.perf_counter() - start

    def close(self) -> None:
        if self.started_here:
            import ray

            ray.shutdown()
            self.started_here = False


def sharing_row(count: int, plan: Plan, device: torch.device, pool: RayForSharing,
                deadline: float) -> tuple[dict[str, Any], str]:
    import ray
    from ray.exceptions import GetTimeoutError

    pool.ensure()
    if __name__ != "__main__":  # imported (the tests): the workers cannot import this module, so it travels by value
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    share = 1 / count
    resources = {"num_gpus": share, "num_cpus": 1} if device.type == "cuda" else {"num_gpus": 0, "num_cpus": share}
    task = ray.remote(max_retries=0, **resources)(sharing_trial)
    folder = tempfile.mkdtemp(prefix="gpu-check-barrier-")
    limit = max(120.0, deadline - time.monotonic() + 60.0)
    start = time.perf_counter()
    refs = [task.remote(i, count, folder, device.type, plan.sharing_config, list(plan.sharing_sets),
                        plan.sharing_steps, plan.sharing_warmup, [str(TOOLS.parent), str(TOOLS)])
            for i in range(count)]
    try:
        results = ray.get(refs, timeout=limit)
    except GetTimeoutError:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise Failed(f"the {count} trials did not finish within {limit:.0f} s") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    wall = time.perf_counter() - start
    figures = sharing_figures(results, resources, wall)
    figures.update(config=list(plan.sharing_config), overrides=list(plan.sharing_sets), warmup=plan.sharing_warmup)
    if pool.start_seconds is not None and count == SHARES[0]:
        figures["ray_start_seconds"] = pool.start_seconds
    spread = not_one_gpu(results, device)
    if spread:
        raise Failed(spread, figures)
    text = (f"{rate(figures['images_per_second_total'])} summed "
            f"({', '.join(f'{v:,.0f}' for v in figures['images_per_second_per_trial'])}) · {plan.sharing_steps} steps "
            f"each in {duration_text(figures['window_seconds'])} · group {duration_text(wall)}"
            + (f" · Ray started in {duration_text(pool.start_seconds)}" if "ray_start_seconds" in figures else ""))
    return figures, text


def not_one_gpu(results: list[dict[str, Any]], device: torch.device) -> str:
    """Why a sharing row's trials did not share one GPU (a machine with several: Ray spread them), or ""."""
    gpus = sorted({str(r["cuda_visible_devices"]) for r in results})
    if device.type != "cuda" or len(gpus) == 1:
        return ""
    return (f"Ray gave the {len(results)} trials different GPUs ({', '.join(gpus)}), so they did not share one: run "
            "the check with CUDA_VISIBLE_DEVICES set to one GPU")


def sharing_figures(results: list[dict[str, Any]], resources: dict[str, float], wall: float) -> dict[str, Any]:
    """The figures of a sharing row from its trials' results (``sharing_trial``): each trial's images/s (its batch ÷ its
    mean step time) and their sum; the window from the first timed step of any trial to the end of the last, and the
    images of all timed steps in it per second; the group's wall time (submission to the last result)."""
    per_trial = [r["batch_size"] / r["seconds_per_step"] for r in results]
    window = max(r["end"] for r in results) - min(r["start"] for r in results)
    images = sum(r["batch_size"] * r["steps"] for r in results)
    return {"trials": len(results), "resources_per_trial": resources, "steps": results[0]["steps"],
            "batch_size": results[0]["batch_size"], "images_per_second_per_trial": per_trial,
            "images_per_second_total": sum(per_trial), "images_total": images, "window_seconds": window,
            "images_per_second_window": images / window, "group_wall_seconds": wall,
            "seconds_per_step_per_trial": [r["seconds_per_step"] for r in results],
            "peak_mem_mib_per_trial": [r["peak_mem_mib"] for r in results],
            "peak_mem_kind": results[0]["peak_mem_kind"],
            "pids": [r["pid"] for r in results], "cuda_visible_devices": [r["cuda_visible_devices"] for r in results]}


def add_ratios(rows: list[Row]) -> None:
    """Figures that compare rows: a contiguous step against the same configuration's channels-last one, and the summed
    images/s of shared trials against one trial alone."""
    by_name = {(row.section, row.name): row for row in rows}
    for row in rows:
        if row.status != PASS:
            continue
        if row.section == "step" and row.figures.get("layout") == "contiguous":
            other = by_name.get(("step", row.name.replace("contiguous", "channels_last")))
            if other is not None and other.status == PASS:
                ratio = row.figures["seconds_per_step"] / other.figures["seconds_per_step"]
                row.figures["ratio_to_channels_last"] = ratio
                row.text += f" · {ratio:.2f}× channels-last's step"
        if row.section == "sharing" and row.figures.get("trials", 1) > 1:
            alone = next((r for r in rows if r.section == "sharing" and r.figures.get("trials") == 1
                          and r.status == PASS), None)
            if alone is not None:
                ratio = row.figures["images_per_second_total"] / alone.figures["images_per_second_total"]
                row.figures["throughput_vs_one_trial"] = ratio
                row.text += f" · {ratio:.2f}× one trial's"


# --- the plan, the run and the table ----------------------------------------------------------------------------

def build_rows(plan: Plan, device: torch.device, pairs: list[tuple[str, str]], pool: RayForSharing,
               deadline: Callable[[], float]) -> list[Row]:
    """Every row of the check, in the order they run (``SECTIONS``)."""
    rows = [Row("determinism", f"{'/'.join(plan.determinism_pair)}, twice",
                lambda: determinism_row(plan, device))]
    for config in plan.step_configs:
        for layout in ("channels_last", "contiguous"):
            rows.append(Row("step", f"{supernet_step.label(config)}, {layout}",
                            lambda c=config, lay=layout: step_row(c, lay, plan, device)))
    rows.append(Row("epoch", "DARTS order 1 / nb201" + (", paper size" if plan is GPU else ", shrunk"),
                    lambda: epoch_row(plan, device)))
    for count in SHARES:
        what = f"--gpus-per-trial {1 / count:g}" if device.type == "cuda" else f"{1 / count:g} CPU each"
        rows.append(Row("sharing", f"{count} trial{'s' if count > 1 else ''}, {what}",
                        lambda n=count: sharing_row(n, plan, device, pool, deadline())))
    rows += [Row("pairs", f"{m}/{s}", lambda p=(m, s): pair_row(p, plan, device)) for m, s in pairs]
    return rows


def run_rows(rows: list[Row], selected: set[str], timeout: float, device: torch.device, threads: int,
             progress: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> bool:
    """Run the selected rows in turn, each with ``threads`` torch threads, until ``timeout`` seconds (of ``clock``)
    have passed since the start; False when interrupted."""
    start = clock()
    for index, row in enumerate(rows):
        if row.section not in selected:
            row.reason = NOT_SELECTED
            continue
        if clock() - start >= timeout:
            row.reason = f"--timeout {timeout:g} s reached before it started"
            progress(f"{row.section} {row.name}: SKIPPED ({row.reason})")
            continue
        progress(f"{row.section} {row.name} …")
        torch.set_num_threads(threads)  # a pair's trial sets one thread; the other rows get the process's
        began = time.perf_counter()
        try:
            row.figures, row.text = row.run()
            row.status = PASS
        except Failed as exc:
            row.status, row.reason, row.figures = FAIL, str(exc), exc.figures
        except KeyboardInterrupt:
            row.status, row.reason = SKIP, "interrupted"
            for later in rows[index + 1:]:
                later.reason = later.reason or "interrupted"
            return False
        except Exception as exc:  # any error of the row: its line, and the check goes on
            row.status, row.reason = FAIL, one_line(exc)
        finally:
            row.seconds = time.perf_counter() - began
            free_memory(device)
        progress(f"  {row.status} in {duration_text(row.seconds)}"
                 + (f": {row.reason}" if row.reason else f": {row.text}"))
    return True


def render(rows: list[Row], title: str) -> Table:
    """One table: a row per check, the sections apart; figures and reasons wrap, nothing is cut."""
    table = Table(title=title, title_justify="left")
    table.add_column("check", overflow="fold")
    table.add_column("row", overflow="fold")
    table.add_column("result", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("figures (or why it failed or was skipped)", overflow="fold", ratio=1)
    styles = {PASS: "green", FAIL: "bold red", SKIP: "yellow"}
    for index, row in enumerate(rows):
        first = index == 0 or rows[index - 1].section != row.section
        last = index == len(rows) - 1 or rows[index + 1].section != row.section
        table.add_row(row.section if first else "", row.name, Text(row.status, style=styles[row.status]),
                      duration_text(row.seconds) if row.seconds is not None else "",
                      row.reason if row.reason and row.status != PASS else row.text, end_section=last)
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from harness.cli import _Parser  # one line and exit status 2 for a bad option

    parser = _Parser(prog="gpu_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-quick", action="store_true",
                        help="the shrunk check on the CPU (two pairs, tiny networks, a few steps): seconds")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"start no row after this many seconds (default {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--only", help=f"comma-separated sections to run ({', '.join(SECTIONS)}); the others are "
                                       "listed as not selected")
    parser.add_argument("--pairs", help="comma-separated method/space pairs of the pairs section (default: every "
                                        "registered pair; --cpu-quick: darts/nb201,gdas/nb201)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    if not args.timeout > 0:
        raise UserError(f"--timeout {args.timeout:g}: give a number of seconds above 0")
    args.only = set(SECTIONS) if not args.only else {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = sorted(args.only - set(SECTIONS))
    if unknown or not args.only:
        raise UserError(f"--only {','.join(unknown) or '(empty)'}: the sections are {', '.join(SECTIONS)}")
    if args.json is not None and not args.json.parent.is_dir():
        raise UserError(f"--json {args.json}: the folder {args.json.parent} does not exist")
    return args


def choose_pairs(plan: Plan, text: str | None) -> list[tuple[str, str]]:
    registered = pair_records.pairs()
    if not text:
        return list(plan.pairs) if plan.pairs is not None else registered
    chosen = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        method, _, space = item.replace("-", "/").partition("/")
        if (method, space) not in registered:
            raise UserError(f"--pairs {item}: not a registered pair (python -m harness list shows them, e.g. "
                            "darts/nb201)")
        chosen.append((method, space))
    return chosen


def rerun_command(rows: list[Row], cpu_quick: bool) -> str:
    """The command that runs the rows that were not started: their sections (``--only``) and, where only some of the
    pairs were, those pairs (``--pairs``)."""
    left = [row for row in rows if row.status == SKIP and row.reason != NOT_SELECTED]
    sections = list(dict.fromkeys(row.section for row in left))
    words = ["python", "tools/gpu_check.py", *(["--cpu-quick"] if cpu_quick else []), "--only", ",".join(sections)]
    pairs = [row.name for row in left if row.section == "pairs"]
    if pairs and len(pairs) < sum(row.section == "pairs" for row in rows):
        words += ["--pairs", ",".join(pairs)]
    return " ".join(words)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically (``atomic_write``): a complete file or none."""
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=1, default=str) + "\n"))


def main(argv: list[str] | None = None) -> int:
    console = make_console()
    try:
        args = parse_args(argv)
        plan = QUICK if args.cpu_quick else GPU
        if not args.cpu_quick and not torch.cuda.is_available():
            raise UserError("torch sees no CUDA device: run this on a GPU machine, or use --cpu-quick for the shrunk "
                            "check on the CPU")
        pairs = choose_pairs(plan, args.pairs)
    except UserError as exc:
        print(f"gpu_check: error: {exc}", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.cpu_quick else "cuda")
    started = time.monotonic()
    info = {"device": supernet_step.describe(device), "mode": plan.name, "timeout_s": args.timeout,
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
            "command": " ".join(["gpu_check.py", *(sys.argv[1:] if argv is None else argv)]),
            "environment": run_environment(device), "plan": asdict(plan)}

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    progress(f"gpu_check ({plan.name}): {info['device']}; {environment_summary(info['environment'])}")
    pool = RayForSharing()
    rows = build_rows(plan, device, pairs, pool, lambda: started + args.timeout)
    cache, old_cache = tempfile.mkdtemp(prefix="gpu-check-cache-"), os.environ.get("HARNESS_CACHE_DIR")
    os.environ["HARNESS_CACHE_DIR"] = cache  # NOS's teacher: trained as on a first run, and not left behind
    threads = torch.get_num_threads()
    info["threads"] = plan.threads or threads
    try:
        finished = run_rows(rows, args.only, args.timeout, device, info["threads"], progress)
    finally:
        torch.set_num_threads(threads)
        pool.close()
        shutil.rmtree(cache, ignore_errors=True)
        if old_cache is None:
            os.environ.pop("HARNESS_CACHE_DIR", None)
        else:
            os.environ["HARNESS_CACHE_DIR"] = old_cache
    add_ratios(rows)
    elapsed = time.monotonic() - started
    info.update(elapsed_seconds=elapsed, ray_started_here_seconds=pool.start_seconds)
    title = (f"gpu_check ({plan.name}) on {info['device']}, torch {torch.__version__}: "
             f"{duration_text(elapsed)}, {info['date']}")
    console.print(render(rows, title))
    failed = [row for row in rows if row.status == FAIL]
    left = [row for row in rows if row.status == SKIP and row.reason != NOT_SELECTED]
    console.print(f"{sum(row.status == PASS for row in rows)} passed, {len(failed)} failed, "
                  f"{sum(row.status == SKIP for row in rows)} skipped", soft_wrap=True)
    if left:  # one line each, to copy
        console.print(f"{len(left)} row{'s' if len(left) > 1 else ''} not started ({left[0].reason}); to run them: "
                      f"{rerun_command(rows, args.cpu_quick)}", soft_wrap=True)
    if args.json is not None:
        try:
            write_json(args.json, {**info, "rows": [row.to_json() for row in rows]})
        except UserError as exc:  # atomic_write's one line for an OS error (a full disk, a read-only folder)
            print(f"gpu_check: error: --json: {exc}", file=sys.stderr)
            return 2
        console.print(f"written: {args.json}", soft_wrap=True)
    if not finished:
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
