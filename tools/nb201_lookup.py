"""Cost of NAS-Bench-201 look-ups: what a trial pays to load the benchmark table, look up one cell, and
compute the architecture-level correlation over all 15,625 cells.

    python tools/nb201_lookup.py                       # the bundled table
    python tools/nb201_lookup.py --table PATH          # an imported one

Run it in a fresh process (the table is cached per process): the load time is the first ``load_table``
call, and the memory is the growth of the process's peak RSS across it (``resource.getrusage``, Linux KiB).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", default="default")
    parser.add_argument("--repeat", type=int, default=1000, help="look-ups to time (default 1000)")
    args = parser.parse_args()

    from harness.core.benchmarks.base import sample_indices
    from harness.core.benchmarks.nb201 import load_table  # imported here so its import cost is not counted
    from harness.core.correlation import ARCH_SAMPLE_SEED
    from harness.core.metrics import rank_correlation
    from methods.base import log_normalised

    before = peak_rss_mb()
    start = time.perf_counter()
    table = load_table(args.table)
    load = time.perf_counter() - start
    grown = peak_rss_mb() - before

    rng = np.random.default_rng(0)
    genotypes = [table.genotype(int(i)) for i in rng.integers(0, len(table), size=args.repeat)]
    start = time.perf_counter()
    for genotype in genotypes:
        table.figures(genotype)
    lookup = (time.perf_counter() - start) / args.repeat

    importance = rng.random((6, 5)) + 0.1
    start = time.perf_counter()
    indices = sample_indices(len(table), len(table), ARCH_SAMPLE_SEED)
    scores = log_normalised(importance)[np.arange(6), table.codes[indices]].sum(axis=1)  # the default Σ-log score
    tau, _ = rank_correlation(scores, table.column("cifar10_test")[indices])
    corr = time.perf_counter() - start

    print(f"table: {table.path} ({len(table)} architectures, {len(table.columns)} columns)")
    print(f"load: {load * 1000:.1f} ms, peak RSS growth {grown:.1f} MB")
    print(f"one look-up (figures of a genotype): {lookup * 1e6:.1f} µs (mean of {args.repeat})")
    print(f"architecture-level correlation over all {len(indices)} cells: {corr * 1000:.1f} ms (τ={tau:.3f} for a "
          "random importance)")


if __name__ == "__main__":
    main()
