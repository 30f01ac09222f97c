"""Time one search step of a paper-size supernet in both memory layouts, for every supernet method.

One run prints one table: for DARTS (first and second order), GDAS, EoiNAS and AGNAS on the ``darts`` space
and NOS on ``hetero`` — or only ``--method``, on ``--space`` — the seconds per step in the channels-last
layout (the harness's default, ``memory_format=channels_last``) and in the contiguous one
(``--set memory_format=contiguous``), their ratio (contiguous / channels-last: the speed-up of the default)
and the peak memory of each.

Every supernet is built exactly as a trial builds it: ``resolve`` with the ``paper`` budget (C=16, 8 cells,
batch 64 of 32×32×3 inputs, 10 classes), ``seed_everything(0)`` and ``configure_backends`` (so on CUDA cuDNN
autotunes, as in a trial), the method's constructor (which puts the supernet in the layout), and input
batches in the layout (as ``harness.core.data`` yields them). The data are fixed random tensors (no dataset
download), so the figure is the cost of ``train_step`` alone: DARTS's architecture step (first order: one
forward/backward on the architecture batch; second order: the unrolled gradient, four forward/backward
passes) and weight step; GDAS's and EoiNAS's weight and architecture steps on one sampled op per edge
(EoiNAS at its first epoch after the warm-up); AGNAS's weight step (every op, attention over them); NOS's
DARTS step with the teacher's forward pass (an untrained PyramidNet of the configured size: the cost is the
same; ``--set ags=false`` times it without the teacher).

    python tools/supernet_step.py --device cpu --threads 2 --steps 1 --warmup 1   # the whole table
    python tools/supernet_step.py --json step-gpu.json                        # auto device (cuda)
    python tools/supernet_step.py --method darts --orders 1 --layouts channels_last
    python tools/supernet_step.py --method nos --space hetero --set ags=false

Each (configuration, layout) runs in a fresh subprocess of this script (``--worker``), so that every peak
memory figure is its own: on CUDA ``torch.cuda.max_memory_allocated`` since a reset after the model is built
(parameters and optimiser state included); on CPU the peak resident set of that process
(``resource.getrusage``; Python, torch and the harness's imports included).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from harness.core.config import MEMORY_FORMATS, declarations, parse_overrides, resolve
from harness.core.data import DataInfo
from harness.core.metrics import peak_memory_mb
from harness.core.registry import get_method, get_space
from harness.core.train import configure_backends, memory_format, seed_everything

BATCH, CHANNELS, CLASSES, SIZE = 64, 3, 10, 32
# (method, space, DARTS order) of the whole table, in its order
TABLE: tuple[tuple[str, str, int], ...] = (
    ("darts", "darts", 1), ("darts", "darts", 2), ("gdas", "darts", 1), ("eoinas", "darts", 1),
    ("agnas", "darts", 1), ("nos", "hetero", 1),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto = cuda when available (default)")
    parser.add_argument("--steps", type=int, help="timed steps per configuration (default 5 on CUDA, 2 on CPU)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before timing (default 1)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores)")
    parser.add_argument("--method", help="one search method (default: the whole table)")
    parser.add_argument("--space", help="search space of --method (default darts)")
    parser.add_argument("--orders", default="1,2", help="with --method: comma-separated DARTS orders (default 1,2; "
                                                        "methods without an order setting have one kind of step)")
    parser.add_argument("--layouts", default=",".join(MEMORY_FORMATS),
                        help="comma-separated memory layouts to time (default channels_last,contiguous)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="configuration override for every configuration, as for 'run' (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one configuration, JSON out
    args = parser.parse_args(argv)
    try:
        args.orders = [int(o) for o in args.orders.split(",") if o.strip()]
    except ValueError:
        parser.error(f"--orders '{args.orders}': expected comma-separated integers, e.g. 1,2")
    if not args.orders or any(o not in (1, 2) for o in args.orders):
        parser.error("--orders takes 1 and/or 2")
    args.layouts = [layout.strip() for layout in args.layouts.split(",") if layout.strip()]
    if not args.layouts or any(layout not in MEMORY_FORMATS for layout in args.layouts):
        parser.error(f"--layouts takes {' and/or '.join(MEMORY_FORMATS)}")
    if args.space and not args.method:
        parser.error("--space goes with --method")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch sees no CUDA device")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    if any(item.partition("=")[0].strip() == "memory_format" for item in args.overrides):
        parser.error("choose layouts with --layouts, not --set memory_format")
    return args


def has_order(method: str, space: str) -> bool:
    """Whether the method has DARTS's first/second-order switch (GDAS, EoiNAS and AGNAS do not)."""
    return "order" in declarations(get_method(method), get_space(space))


def configurations(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    if not args.method:
        return list(TABLE)
    space = args.space or "darts"
    orders = args.orders if has_order(args.method, space) else [1]
    return [(args.method, space, order) for order in orders]


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    cpu = platform.processor() or platform.machine()
    try:  # Linux: the model name is more telling than the architecture
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"cpu ({cpu}, {os.cpu_count()} logical cores)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(method_name: str, space_name: str, order: int, layout: str, device: torch.device, steps: int,
              warmup: int, overrides: list[str] | None = None,
              ready: Callable[[], None] | None = None) -> dict[str, Any]:
    """Build one supernet as a trial does and time ``steps`` calls of its ``train_step`` (in this process).
    ``ready``, if given, is called between the warm-up and the timed steps (``gpu_check.py``: a barrier, so that
    trials sharing a device time their steps together)."""
    method_cls, space_cls = get_method(method_name), get_space(space_name)
    order_set = {"order": str(order)} if has_order(method_name, space_name) else {}  # GDAS, EoiNAS, AGNAS: none
    cfg = resolve(method_cls, space_cls, "paper",
                  {**order_set, **parse_overrides(overrides or []), "memory_format": layout}).values
    seed_everything(0)
    backends = configure_backends(cfg, device)
    space = space_cls(cfg)
    method = method_cls(space, cfg, DataInfo(CHANNELS, CLASSES, SIZE), device, seed=0)
    if hasattr(method, "use_untrained_teacher"):
        method.use_untrained_teacher()
    gen = torch.Generator().manual_seed(0)
    batch = cfg["search_batch_size"]
    x_w, x_a = (torch.randn(batch, CHANNELS, SIZE, SIZE, generator=gen).to(device)
                .contiguous(memory_format=memory_format(cfg)) for _ in range(2))  # as harness.core.data yields them
    y_w, y_a = (torch.randint(0, CLASSES, (batch,), generator=gen).to(device) for _ in range(2))
    params_m = sum(p.numel() for p in method.supernet.parameters()) / 1e6

    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
    epoch = method.timing_epoch()  # EoiNAS: after its weights-only warm-up
    for _ in range(warmup):
        method.train_step((x_w, y_w), (x_a, y_a), epoch)
    sync(device)
    if ready is not None:
        ready()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        method.train_step((x_w, y_w), (x_a, y_a), epoch)
        sync(device)
        times.append(time.perf_counter() - start)
    return {
        "method": method_name, "space": space_name, "order": order, "layout": layout, **backends,
        **{key: cfg[key] for key in space_cls.size_keys}, "batch_size": batch,  # the space's network sizes
        "supernet_params_m": round(params_m, 4), "warmup": warmup, "steps": steps, "step_seconds": times,
        "seconds_per_step": sum(times) / len(times), "peak_mem_mib": peak_memory_mb(device),
        "peak_mem_kind": "cuda max_memory_allocated" if device.type == "cuda" else "process peak RSS",
    }


def run_worker(args: argparse.Namespace, device: torch.device, steps: int) -> int:
    method, space, order = configurations(args)[0]
    result = time_step(method, space, order, args.layouts[0], device, steps, args.warmup, args.overrides)
    args.json.write_text(json.dumps(result) + "\n")
    return 0


def run_subprocess(args: argparse.Namespace, config: tuple[str, str, int], layout: str, steps: int,
                   device: torch.device) -> dict[str, Any]:
    """One (configuration, layout) in a fresh process of this script: a clean peak-memory figure."""
    method, space, order = config
    with tempfile.TemporaryDirectory(prefix="supernet-step-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--device", device.type,
               "--steps", str(steps), "--warmup", str(args.warmup), "--method", method, "--space", space,
               "--orders", str(order), "--layouts", layout, "--json", str(out)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        for item in args.overrides:
            cmd += ["--set", item]
        proc = subprocess.run(cmd, check=False)
        if proc.returncode != 0 or not out.is_file():
            raise SystemExit(f"{method}/{space} order {order}, {layout}: the worker failed "
                             f"(exit status {proc.returncode})")
        return json.loads(out.read_text())


def label(config: tuple[str, str, int]) -> str:
    method, space, order = config
    return f"{method}{f' (order {order})' if has_order(method, space) else ''} / {space}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    want_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if want_cuda else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (5 if device.type == "cuda" else 2)
    if args.worker:
        return run_worker(args, device, steps)

    console = Console(width=max(Console().width, 132))  # the table's nine columns, also in a log file
    info = {"device": describe(device), "torch": torch.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(), "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])])}
    console.print(f"device {info['device']}, torch {info['torch']}, {info['threads']} threads; {steps} timed "
                  f"step(s) after {args.warmup} warm-up step(s) per configuration and layout, each in its own process")
    results: list[dict[str, Any]] = []
    configs = configurations(args)
    for config in configs:
        for layout in args.layouts:
            console.print(f"{label(config)}, {layout}: building the supernet and timing …")
            result = run_subprocess(args, config, layout, steps, device)
            console.print(f"  {result['seconds_per_step']:.3f} s/step, peak {result['peak_mem_mib']:.0f} MiB")
            results.append(result)

    title = ("search step (weights and architecture as the method does), paper size: C=16, 8 cells, batch 64, "
             f"32×32×3; {info['threads']} threads{' ' + ' '.join(args.overrides) if args.overrides else ''}")
    table = Table(title=title)
    table.add_column("method / space", justify="left", no_wrap=True)
    for layout in args.layouts:
        table.add_column(f"s / step {layout}", justify="right")
    if len(args.layouts) == 2:
        table.add_column(f"ratio {args.layouts[1]} / {args.layouts[0]}", justify="right")
    for layout in args.layouts:
        table.add_column(f"peak MiB {layout}", justify="right")
    table.add_column("params M", justify="right")
    for config in configs:
        row = {r["layout"]: r for r in results if (r["method"], r["space"], r["order"]) == config}
        cells = [label(config)] + [f"{row[layout]['seconds_per_step']:.2f}" for layout in args.layouts]
        if len(args.layouts) == 2:
            first, second = (row[layout]["seconds_per_step"] for layout in args.layouts)
            cells.append(f"{second / first:.2f}×")
        cells += [f"{row[layout]['peak_mem_mib']:.0f}" for layout in args.layouts]
        cells.append(f"{row[args.layouts[0]]['supernet_params_m']:.3f}")
        table.add_row(*cells)
    console.print(table)
    console.print("peak memory: " + ("torch.cuda.max_memory_allocated after reset_peak_memory_stats"
                                     if device.type == "cuda" else "peak RSS of the configuration's own process"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**info, "results": results}, indent=2) + "\n")
        console.print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
