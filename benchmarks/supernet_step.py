"""Time one search step (architecture step + weight step) of a paper-size supernet.

The supernet is built exactly as a trial builds it (``resolve`` with the ``paper`` budget; default the
``darts`` space and ``Darts``; ``--method``/``--space`` choose others, e.g. ``nos``/``hetero``): C=16, 8
cells, batch 64 of 32×32×3 inputs, 10 classes. The data are fixed random tensors (no dataset download), so
the figure is the cost of ``train_step`` alone: the architecture step (first order: one forward/backward on
the architecture batch; second order: the unrolled gradient, four forward/backward passes) followed by the
weight step. For NOS the step includes the teacher's forward pass (an untrained PyramidNet of the
configured size: the cost is the same); ``--set ags=false`` times it without the teacher.

    python benchmarks/supernet_step.py                          # auto device, orders 1 and 2
    python benchmarks/supernet_step.py --device cpu --steps 1 --warmup 0 --threads 2
    python benchmarks/supernet_step.py --device cuda --json step.json
    python benchmarks/supernet_step.py --method nos --space hetero --orders 1 [--set ags=false]
    python benchmarks/supernet_step.py --method eoinas      # GDAS-style: one sampled op per edge, first order
    python benchmarks/supernet_step.py --method agnas       # weight step only: every op, attention over them

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` since a reset after the model is built (the
parameters and optimiser state are included); on CPU the process's peak resident set
(``resource.getrusage``), which is process-wide and never decreases, so the figure of a later order
includes the peak of the earlier ones (run one ``--orders`` value per process for a clean figure).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from harness.config import parse_overrides, resolve
from harness.metrics import peak_memory_mb
from harness.registry import get_method, get_space
from harness.train import seed_everything
from spaces.base import DataInfo

BATCH, CHANNELS, CLASSES, SIZE = 64, 3, 10, 32


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto = cuda when available (default)")
    parser.add_argument("--steps", type=int, help="timed steps per order (default 5 on CUDA, 2 on CPU)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before timing (default 1)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores)")
    parser.add_argument("--orders", default="1,2", help="comma-separated DARTS orders (default 1,2)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--method", default="darts", help="search method (default darts)")
    parser.add_argument("--space", default="darts", help="search space (default darts)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="configuration override, as for 'run' (repeatable)")
    args = parser.parse_args(argv)
    try:
        args.orders = [int(o) for o in args.orders.split(",") if o.strip()]
    except ValueError:
        parser.error(f"--orders '{args.orders}': expected comma-separated integers, e.g. 1,2")
    if not args.orders or any(o not in (1, 2) for o in args.orders):
        parser.error("--orders takes 1 and/or 2")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch sees no CUDA device")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


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


def time_order(order: int, device: torch.device, steps: int, warmup: int, method_name: str = "darts",
               space_name: str = "darts", overrides: list[str] | None = None) -> dict[str, Any]:
    seed_everything(0)  # as a trial does (also: cudnn deterministic, no autotuning)
    method_cls, space_cls = get_method(method_name), get_space(space_name)
    order_set = {"order": str(order)} if "order" in method_cls.defaults else {}  # GDAS and EoiNAS: first order
    cfg = resolve(method_cls, space_cls, "paper", {**order_set, **parse_overrides(overrides or [])}).values
    space = space_cls(cfg)
    method = method_cls(space, cfg, DataInfo(CHANNELS, CLASSES, SIZE), device, seed=0)
    if hasattr(method, "use_untrained_teacher"):
        method.use_untrained_teacher()
    gen = torch.Generator().manual_seed(0)
    batch = cfg["search_batch_size"]
    x_w, x_a = (torch.randn(batch, CHANNELS, SIZE, SIZE, generator=gen).to(device) for _ in range(2))
    y_w, y_a = (torch.randint(0, CLASSES, (batch,), generator=gen).to(device) for _ in range(2))
    params_m = sum(p.numel() for p in method.supernet.parameters()) / 1e6

    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
    epoch = method.timing_epoch()  # EoiNAS: after its weights-only warm-up
    for _ in range(warmup):
        method.train_step((x_w, y_w), (x_a, y_a), epoch)
    sync(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        method.train_step((x_w, y_w), (x_a, y_a), epoch)
        sync(device)
        times.append(time.perf_counter() - start)
    peak = peak_memory_mb(device)
    peak_kind = ("cuda max_memory_allocated" if device.type == "cuda"
                 else "process peak RSS (process-wide, cumulative)")
    result = {
        "order": order, "search_layers": cfg["search_layers"], "search_channels": cfg["search_channels"],
        "batch_size": batch, "supernet_params_m": round(params_m, 4), "warmup": warmup, "steps": steps,
        "step_seconds": times, "seconds_per_step": sum(times) / len(times),
        "steps_per_second": len(times) / sum(times), "peak_mem_mib": peak, "peak_mem_kind": peak_kind,
    }
    del method, x_w, x_a, y_w, y_a
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    want_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if want_cuda else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (5 if device.type == "cuda" else 2)
    console = Console()
    info = {"device": describe(device), "torch": torch.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}
    console.print(f"device {info['device']}, torch {info['torch']}, {info['threads']} threads; "
                  f"{steps} timed step(s) after {args.warmup} warm-up step(s) per order")
    if "order" not in get_method(args.method).defaults:
        args.orders = [1]  # a method without DARTS's order setting has one kind of step
    results = []
    for order in args.orders:
        console.print(f"order {order}: building the supernet and timing …")
        results.append(time_order(order, device, steps, args.warmup, args.method, args.space, args.overrides))

    table = Table(title=f"{args.method}/{args.space} search step (arch + weight), paper size: C=16, 8 cells, "
                        f"batch 64, 32×32×3{' ' + ' '.join(args.overrides) if args.overrides else ''}")
    for col in ("order", "s / step", "steps / s", "peak mem MiB", "steps timed", "supernet params M"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(str(r["order"]), f"{r['seconds_per_step']:.3f}", f"{r['steps_per_second']:.3f}",
                      f"{r['peak_mem_mib']:.0f}", str(r["steps"]), f"{r['supernet_params_m']:.3f}")
    console.print(table)
    if device.type == "cuda":
        console.print("peak mem: torch.cuda.max_memory_allocated after reset_peak_memory_stats (per order)")
    else:
        console.print("peak mem: peak RSS of the whole process (resource.getrusage), cumulative over the "
                      "run: a later order's figure includes the earlier orders' peaks")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**info, "results": results}, indent=2) + "\n")
        console.print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
