"""Record (or check) what every registered (method, space) pair computes: a behaviour baseline for refactors.

For every pair that ``python -m harness list`` shows, one complete trial in-process without Ray —
``build_spec(RunRequest(...))`` into a temporary folder, then ``execute_trial`` — at the smoke budget, on
digits, seed 0, one CPU thread, on the CPU. Of each record it keeps what a refactor must not change: the
genotype, the test and search accuracies, the importance matrices, the operation- and architecture-level
correlations, the benchmark figures, parameters and multiply-adds, and every epoch's training loss — and the
record's ``environment`` (torch and its build, BLAS, SIMD level, NumPy, Python, CPU: ``run_environment``).

    python tools/pair_records.py --out tools/baselines/smoke-digits-s0   # write the baseline
    python tools/pair_records.py --compare tools/baselines/smoke-digits-s0   # rerun and compare

``--compare`` first says how this run's environment differs from the baseline's (each difference once, with the
pairs it concerns), then prints one row per pair (identical, or the fields that differ) and exits with status 1 if
any differ. The environment is never one of those fields, and the configuration hash is shown but not compared (a
refactor may rename keys). Same environment (the lock, ``constraints.txt``), device and thread count → same figures,
bit for bit; another torch build, BLAS or CPU may differ in the last digits. ``--jobs N`` runs N pairs at once (each
with one thread).
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
from harness.core.records import environment_differences, environment_summary

for _key, _value in RAY_ENV.items():  # harness.trial imports ray.tune
    os.environ.setdefault(_key, _value)

KEPT = ("genotype", "test_acc", "search_val_acc", "importance", "op_kendall_tau", "op_spearman_rho",
        "arch_kendall_tau", "arch_spearman_rho", "benchmark", "params_m", "madds_m")
COMPARED = (*KEPT, "train_losses")  # not the environment: it says why figures may differ, and is shown first


def pairs() -> list[tuple[str, str]]:
    from harness.core.registry import valid_pairs

    return valid_pairs()


def trial_record(pair: tuple[str, str], overrides: tuple[str, ...] = (), gpus_per_trial: float = 0,
                 budget: str = "smoke") -> tuple[dict[str, Any], float]:
    """One complete trial of ``pair`` in-process without Ray (digits, seed 0, one CPU thread; on the CPU unless
    ``gpus_per_trial`` > 0), ``--set`` ``overrides`` applied: its record and its wall seconds."""
    import torch

    from harness.experiment import RunRequest, build_spec
    from harness.trial import execute_trial

    torch.set_num_threads(1)
    method, space = pair
    with tempfile.TemporaryDirectory(prefix="nas-pairs-") as tmp:
        spec = build_spec(RunRequest(method=method, space=space, dataset="digits", budget=budget, seeds=[0],
                                     overrides=list(overrides), out=Path(tmp), name="pair", cpus_per_trial=1,
                                     gpus_per_trial=gpus_per_trial, max_concurrent=None, max_failures=0,
                                     address=None, data_dir=None, resume=False))
        start = time.perf_counter()
        record = execute_trial(spec, 0, report=lambda metrics: None)
        return record, time.perf_counter() - start


def kept_fields(record: dict[str, Any], wall: float) -> dict[str, Any]:
    """What the baseline keeps of a trial's record (``COMPARED``, the configuration hash, the environment and the wall
    time), as the record file holds it: tuples are lists, NaN is null."""
    from harness.core.records import json_safe

    kept = {key: record.get(key) for key in KEPT}
    kept["train_losses"] = [h.get("train_loss") for h in record["history"]]
    kept["config_hash"] = record["config_hash"]
    kept["environment"] = record["environment"]
    kept["wall_seconds"] = round(wall, 1)
    return json.loads(json.dumps(json_safe(kept)))


def differing(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The fields of ``COMPARED`` in which two kept trials differ (never the timings, the environment or the hash)."""
    return [key for key in COMPARED if before.get(key) != now.get(key)]


def run_pair(pair: tuple[str, str]) -> dict[str, Any]:
    """The kept fields of one smoke trial of ``pair`` (seed 0, digits, one thread, CPU)."""
    return kept_fields(*trial_record(pair))


def _name(pair: tuple[str, str]) -> str:
    return f"{pair[0]}-{pair[1]}.json"


def _label(pair: tuple[str, str]) -> str:
    return f"{pair[0]}/{pair[1]}"


def environment_lines(results: dict[tuple[str, str], dict[str, Any]],
                      baseline: dict[tuple[str, str], dict[str, Any] | None]) -> list[str]:
    """How this run's environment differs from the baseline's: each distinct set of differences once, with the pairs
    it concerns (all of them, as a rule: one run, one baseline), one line per differing key (``before → now``); the
    same environment is one line that says what it is. A baseline file without an environment (written before records
    carried one) is said as such. Pairs without a baseline file are left to ``record_lines``."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for pair, kept in results.items():
        before = baseline.get(pair)
        if before is not None:
            env = before.get("environment")
            key = json.dumps(environment_differences(env, kept.get("environment"))) if isinstance(env, dict) else ""
            groups.setdefault(key, []).append(pair)
    lines = []
    for key, group in groups.items():
        which = f"all {len(group)} pairs" if len(groups) == 1 and len(group) > 1 else ", ".join(map(_label, group))
        now = environment_summary(results[group[0]].get("environment") or {})
        if not key:
            lines += [f"environment: the baseline does not say its environment ({which}; written before records "
                      f"carried one); this run: {now}"]
        elif key == "[]":
            lines.append(f"environment: the baseline's ({which}): {now}")
        else:
            lines.append(f"environment: differs from the baseline's ({which}):")
            lines += [f"  {name:15} {_text(old)} → {_text(new)}" for name, old, new in json.loads(key)]
    return lines


def _text(value: Any) -> str:
    return "(none)" if value is None else str(value)


def record_lines(results: dict[tuple[str, str], dict[str, Any]],
                 baseline: dict[tuple[str, str], dict[str, Any] | None], folder: Path) -> tuple[list[str], int]:
    """One row per pair: identical, or the fields of ``COMPARED`` that differ; status 1 if any differ or a pair
    has no baseline file in ``folder``."""
    lines, status = [], 0
    for pair, kept in results.items():
        label, before = _label(pair), baseline.get(pair)
        if before is None:
            lines.append(f"{label:16} no baseline ({folder / _name(pair)})")
            status = 1
            continue
        differ = differing(before, kept)
        hashes = "same config hash" if before.get("config_hash") == kept["config_hash"] else "config hash changed"
        lines.append(f"{label:16} {'identical' if not differ else 'DIFFERS in ' + ', '.join(differ)}  "
                     f"(test {kept['test_acc']:.2f} %; {hashes}; {kept['wall_seconds']} s)")
        status = status or (1 if differ else 0)
    return lines, status


def read_baseline(folder: Path, todo: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any] | None]:
    """Each pair's baseline file in ``folder``, parsed; None where there is none."""
    return {pair: json.loads((folder / _name(pair)).read_text()) if (folder / _name(pair)).is_file() else None
            for pair in todo}


def compare(results: dict[tuple[str, str], dict[str, Any]], folder: Path) -> tuple[list[str], int]:
    """What ``--compare`` prints — the environment's differences, then each pair's row — and its exit status (1 if a
    record differs or has no baseline; a different environment alone is not a failure: it explains one)."""
    baseline = read_baseline(folder, list(results))
    rows, status = record_lines(results, baseline, folder)
    return [*environment_lines(results, baseline), "records:", *rows], status


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
    if args.compare is not None:
        lines, status = compare(results, args.compare)
        print("\n".join(lines))
        return status
    args.out.mkdir(parents=True, exist_ok=True)
    for pair, kept in results.items():
        (args.out / _name(pair)).write_text(json.dumps(kept, indent=1, sort_keys=True, allow_nan=False) + "\n")
        print(f"{_label(pair):16} test {kept['test_acc']:.2f} %  genotype {str(kept['genotype'])[:60]}  "
              f"({kept['wall_seconds']} s)")
    if results:
        print(f"environment: {environment_summary(next(iter(results.values()))['environment'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
