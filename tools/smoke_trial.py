"""Time one complete trial: search + operation-level correlation + evaluation.

Default: in-process, without Ray — ``build_spec(RunRequest(...))`` into a temporary output folder, then
``execute_trial(spec, seed, report=<no-op>)`` — for DARTS on the DARTS space, smoke budget, digits,
seed 0, one CPU thread. The wall time covers everything ``execute_trial`` does (dataset load, search,
derivation and correlation, final training, test, record); the record's own phase timings are printed
next to it.

``--cli`` instead times the quickstart command as a subprocess, Ray start-up included:

    python -m harness run --method darts --space darts --seeds 3 --budget smoke --dataset digits --out <tmp>

    python tools/smoke_trial.py                    # one in-process smoke trial, 1 thread
    python tools/smoke_trial.py --threads 2 --repeat 3 --set order=2
    python tools/smoke_trial.py --cli              # the quickstart, 3 seeds through Ray

Every run writes into a fresh temporary folder that is deleted afterwards: nothing is left in the repo.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.cli import RAY_ENV  # imports no ray

# Ray reads these at import time (harness.trial imports ray.tune); the --cli subprocess gets them too.
for _key, _value in RAY_ENV.items():
    os.environ.setdefault(_key, _value)

import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="darts")
    parser.add_argument("--space", default="darts")
    parser.add_argument("--budget", default="smoke")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seed", type=int, default=0, help="in-process: the trial's seed (default 0)")
    parser.add_argument("--seeds", type=int, default=3, help="--cli: number of seeds, 0..N-1 (default 3)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="configuration override, as for 'python -m harness run'; repeatable")
    parser.add_argument("--threads", type=int, default=1,
                        help="in-process: CPU threads of the trial (its cpus_per_trial; default 1)")
    parser.add_argument("--gpus-per-trial", type=float,
                        help="in-process: 0 = CPU even where CUDA is available (default: 1 with CUDA, else 0)")
    parser.add_argument("--data-dir", help="dataset folder (default: the harness's)")
    parser.add_argument("--repeat", type=int, default=1, help="time this many runs (default 1)")
    parser.add_argument("--cli", action="store_true",
                        help="time the quickstart command as a subprocess (Ray start-up included)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    return args


def header() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"
    return (f"{platform.node()}: {os.cpu_count()} logical cores, {gpu}; torch {torch.__version__}, "
            f"python {platform.python_version()}")


def in_process(args: argparse.Namespace) -> int:
    from harness.experiment import RunRequest, build_spec
    from harness.trial import execute_trial

    walls = []
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="nas-bench-") as tmp:
            spec = build_spec(RunRequest(
                method=args.method, space=args.space, dataset=args.dataset, budget=args.budget,
                seeds=[args.seed], overrides=args.overrides, out=Path(tmp), name="bench",
                cpus_per_trial=args.threads, gpus_per_trial=args.gpus_per_trial, max_concurrent=None,
                max_failures=0, address=None, data_dir=args.data_dir, resume=False))
            start = time.perf_counter()
            record: dict[str, Any] = execute_trial(spec, args.seed, report=lambda metrics: None)
            wall = time.perf_counter() - start
        walls.append(wall)
        print(f"run {run + 1}/{args.repeat}: wall {wall:.2f} s | search {record['search_seconds']:.2f} s, "
              f"correlation {record['correlation_seconds']:.2f} s, eval {record['eval_seconds']:.2f} s | "
              f"test_acc {record['test_acc']:.2f}% | device {record['device']} | "
              f"peak mem {record['peak_mem_mb']:.0f} MiB")
        print(f"  genotype {record['genotype']}")
    summary(walls)
    return 0


def cli(args: argparse.Namespace) -> int:
    env = {**os.environ, **RAY_ENV}
    walls, status = [], 0
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="nas-bench-") as tmp:
            cmd = [sys.executable, "-m", "harness", "run", "--method", args.method, "--space", args.space,
                   "--seeds", str(args.seeds), "--budget", args.budget, "--dataset", args.dataset,
                   "--out", tmp]
            for item in args.overrides:
                cmd += ["--set", item]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            print("$ " + " ".join(cmd), flush=True)
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=REPO, env=env, check=False)
            wall = time.perf_counter() - start
        walls.append(wall)
        status = status or proc.returncode
        print(f"run {run + 1}/{args.repeat}: wall {wall:.2f} s, exit status {proc.returncode}", flush=True)
    summary(walls)
    return status


def summary(walls: list[float]) -> None:
    if len(walls) > 1:
        print(f"wall over {len(walls)} runs: min {min(walls):.2f} s, mean {sum(walls) / len(walls):.2f} s, "
              f"max {max(walls):.2f} s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = (f"--cli: quickstart subprocess, {args.seeds} seeds through Ray" if args.cli
            else f"in-process trial, seed {args.seed}, {args.threads} thread(s)")
    print(f"{header()}\n{args.method}/{args.space}, budget {args.budget}, dataset {args.dataset}"
          + (f", overrides {args.overrides}" if args.overrides else "") + f"; {mode}", flush=True)
    from harness.core.errors import UserError

    try:
        return cli(args) if args.cli else in_process(args)
    except UserError as exc:
        print(f"smoke_trial: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
