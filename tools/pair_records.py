"""Record (or check) what every registered (method, space) pair computes: a behaviour baseline for refactors.

For every pair that ``python -m harness list`` shows, one complete trial in-process without Ray —
``build_spec(RunRequest(...))`` into a temporary folder, then ``execute_trial`` — at the smoke budget, on
digits, seed 0, one CPU thread, on the CPU. Of each record it keeps what a refactor must not change: the
genotype, the test and search accuracies, the importance matrices, the operation- and architecture-level
correlations, the benchmark figures, parameters and multiply-adds, and every epoch's training loss.

    python tools/pair_records.py --out tools/baselines/smoke-digits-s0   # write the baseline
    python tools/pair_records.py --compare tools/baselines/smoke-digits-s0   # rerun and compare

``--compare`` prints one row per pair (identical, or the fields that differ) and exits with status 1 if
any differ. The configuration hash is shown but not compared (a refactor may rename keys). Same device
and thread count → same figures, bit for bit; another machine type may differ in the last digits.
``--jobs N`` runs N pairs at once (each with one thread).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from harness.cli import RAY_ENV  # imports no ray

for _key, _value in RAY_ENV.items():  # harness.trial imports ray.tune
    os.environ.setdefault(_key, _value)

KEPT = ("genotype", "test_acc", "search_val_acc", "importance", "op_kendall_tau", "op_spearman_rho",
        "arch_kendall_tau", "arch_spearman_rho", "benchmark", "params_m", "madds_m")


def pairs() -> list[tuple[str, str]]:
    from harness.core.registry import valid_pairs

    return valid_pairs()


def run_pair(pair: tuple[str, str]) -> dict[str, Any]:
    """The kept fields of one smoke trial of ``pair`` (seed 0, digits, one thread, CPU)."""
    import torch

    from harness.core.records import json_safe
    from harness.experiment import RunRequest, build_spec
    from harness.trial import execute_trial

    torch.set_num_threads(1)
    method, space = pair
    with tempfile.TemporaryDirectory(prefix="nas-pairs-") as tmp:
        spec = build_spec(RunRequest(method=method, space=space, dataset="digits", budget="smoke", seeds=[0],
                                     overrides=[], out=Path(tmp), name="pair", cpus_per_trial=1, gpus_per_trial=0,
                                     max_concurrent=None, max_failures=0, address=None, data_dir=None,
                                     resume=False))
        start = time.perf_counter()
        record = execute_trial(spec, 0, report=lambda metrics: None)
        wall = time.perf_counter() - start
    kept = {key: record.get(key) for key in KEPT}
    kept["train_losses"] = [h.get("train_loss") for h in record["history"]]
    kept["config_hash"] = record["config_hash"]
    kept["wall_seconds"] = round(wall, 1)
    return json.loads(json.dumps(json_safe(kept)))  # as the record file holds it: tuples are lists, NaN is null


def _name(pair: tuple[str, str]) -> str:
    return f"{pair[0]}-{pair[1]}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--out", type=Path, help="write one file per pair into this folder")
    what.add_argument("--compare", type=Path, help="rerun every pair and compare with the files in this folder")
    parser.add_argument("--jobs", type=int, default=1, help="pairs run at once (default 1)")
    parser.add_argument("--only", help="comma-separated method-space names, e.g. darts-nb201,random-hetero")
    args = parser.parse_args(argv)
    todo = pairs()
    if args.only:
        wanted = set(args.only.split(","))
        todo = [p for p in todo if f"{p[0]}-{p[1]}" in wanted]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=get_context("spawn")) as pool:
        results = dict(zip(todo, pool.map(run_pair, todo)))
    status = 0
    for pair, kept in results.items():
        label = f"{pair[0]}/{pair[1]}"
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / _name(pair)).write_text(json.dumps(kept, indent=1, sort_keys=True, allow_nan=False) + "\n")
            print(f"{label:16} test {kept['test_acc']:.2f} %  genotype {str(kept['genotype'])[:60]}  "
                  f"({kept['wall_seconds']} s)")
            continue
        path = args.compare / _name(pair)
        if not path.is_file():
            print(f"{label:16} no baseline ({path})")
            status = 1
            continue
        before = json.loads(path.read_text())
        differ = [k for k in (*KEPT, "train_losses") if before.get(k) != kept.get(k)]
        hashes = "same config hash" if before.get("config_hash") == kept["config_hash"] else "config hash changed"
        print(f"{label:16} {'identical' if not differ else 'DIFFERS in ' + ', '.join(differ)}  "
              f"(test {kept['test_acc']:.2f} %; {hashes}; {kept['wall_seconds']} s)")
        status = status or (1 if differ else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
