"""Ranking correlations of a method's scores: operation level (every space) and architecture level
(spaces with a benchmark table).

**Operation level**: the discretisation protocol of AGNAS (Fig. 3).

For a fixed sample of edges — drawn from a fixed generator (seed 0), so every method and every seed of a
space is measured on the same edges — each edge is discretised in turn to every op the derivation may
choose on that edge (``space.choice_ops``; ``none`` is left out on the DARTS space because no genotype can
contain it; a method that pruned ops offers only those it kept: ``method.correlation_ops``), the
supernet's accuracy on a fixed subset of the architecture half (its first
``corr_batches`` batches, unaugmented) is measured, and the method's importance scores of that edge are
correlated with those accuracies (Kendall τ-b and Spearman ρ). The figures are averaged over the edges on
which they are defined.

BatchNorm uses batch statistics during these measurements (its running statistics are restored after):
the running statistics were accumulated by the mixed supernet and do not describe a discretised one.

**Architecture level** (spaces with a benchmark): for a fixed sample of ``arch_corr_samples``
architectures of the benchmark — ``Benchmark.sample`` with a fixed seed (0), the same for every method and
seed — the method's score of each architecture (``method.score_architectures``) is correlated (Kendall τ-b,
Spearman ρ) with its benchmark accuracy (``Benchmark.query`` of the column that stands for the search dataset,
``Benchmark.target_column``). How a method scores architectures is the method's (by default the sum of the
log normalised importances of the chosen ops, ``methods.base``). Architectures without a figure in the
benchmark are left out.

**One-shot** (spaces with a benchmark table, methods with a supernet): does the supernet rank architectures?
For a fixed subset of ``oneshot_samples`` cells of the architecture-level sample (drawn from it with a fixed
generator, seed 1, the same for every method and seed), each cell is evaluated with the method's final
supernet weights — every edge discretised to the cell's op, on the fixed validation subset of the
operation-level protocol (the first ``corr_batches`` batches of the architecture half, batch statistics), which
the method measures (``method.discrete_accuracies``) — and that accuracy is correlated (Kendall τ-b, Spearman ρ)
with the cell's benchmark accuracy; ``top_k`` gives the mean benchmark accuracy of the k cells the supernet
ranks best. A cell with an op the method cannot discretise to (EoiNAS's pruned ops: NaN from the method) is
left out, and the record says how many were evaluated and what it cost (``seconds``).

This module samples and correlates; what a method's scores and accuracies are is the method's. It knows the
method only through the ``CorrelatedMethod`` protocol below (``methods.base.SearchMethod`` implements it) and
the benchmark only through ``Benchmark``'s queries, so it imports neither ``methods`` nor a table.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from harness.core.benchmarks.base import Benchmark
from harness.core.data import SearchData
from harness.core.metrics import mean_ignoring_nan, rank_correlation
from harness.core.train import evaluate

EDGE_SAMPLE_SEED = 0
ARCH_SAMPLE_SEED = 0
ONE_SHOT_SEED = 1
TOP_K = (1, 5, 10)


class CorrelatedMethod(Protocol):
    """What the correlations ask of a search method (``methods.base.SearchMethod`` has all of it): a protocol,
    so that this kernel module needs no import of ``methods``."""

    name: str
    space: Any  # its ``arch_shape()`` and ``op_names``
    supernet: Any  # None for a method without one

    def importance(self) -> dict[str, np.ndarray] | None:
        """Operation-importance scores per group (``[edges, ops]``), or None."""

    def correlation_ops(self, group: str, index: int) -> list[int]:
        """The ops of edge (group, index) the operation-level correlation discretises to."""

    def discretised(self, group: str, index: int, op: int) -> AbstractContextManager[None]:
        """While active, edge (group, index) computes only ``op``."""

    def score_architectures(self, genotypes: list[Any], data: SearchData | None = None) -> np.ndarray | None:
        """The method's score of each genotype (higher = predicted better; NaN leaves one out), or None."""

    def discrete_accuracies(self, genotypes: list[Any], batches: Any) -> np.ndarray:
        """The supernet's accuracy (percent) on ``batches`` of each genotype, every edge discretised to its op;
        NaN for a genotype with an op the method cannot discretise to."""


def sample_edges(arch_shape: dict[str, tuple[int, int]], count: int) -> list[tuple[str, int]]:
    """A fixed, seed-independent sample of ``count`` (group, edge) pairs, in a stable order."""
    all_edges = [(group, i) for group, (n, _) in arch_shape.items() for i in range(n)]
    if count <= 0:
        return []
    if count >= len(all_edges):
        return all_edges
    rng = np.random.default_rng(EDGE_SAMPLE_SEED)
    picked = sorted(rng.choice(len(all_edges), size=count, replace=False).tolist())
    return [all_edges[i] for i in picked]


def op_level_correlation(method: CorrelatedMethod, data: SearchData, cfg: dict[str, Any]) -> dict[str, Any]:
    """``op_kendall_tau``, ``op_spearman_rho`` (means over edges), ``op_corr_edges`` and per-edge detail."""
    scores = method.importance()
    if scores is None or method.supernet is None:
        return {"op_kendall_tau": None, "op_spearman_rho": None, "op_corr_edges": 0, "op_correlation": []}
    batches = data.val_batches(limit_batches=int(cfg["corr_batches"]))
    detail = []
    for group, index in sample_edges(method.space.arch_shape(), int(cfg["corr_edges"])):
        ops = method.correlation_ops(group, index)
        accs = []
        for op in ops:
            with method.discretised(group, index, op):
                accs.append(evaluate(method.supernet, batches, train_mode_bn=True)[1])
        edge_scores = [float(scores[group][index, op]) for op in ops]
        tau, rho = rank_correlation(edge_scores, accs)
        detail.append({"group": group, "edge": index, "ops": [method.space.op_names[o] for o in ops],
                       "scores": edge_scores, "accs": accs, "kendall_tau": tau, "spearman_rho": rho})
    return {"op_kendall_tau": mean_ignoring_nan([d["kendall_tau"] for d in detail]),
            "op_spearman_rho": mean_ignoring_nan([d["spearman_rho"] for d in detail]),
            "op_corr_edges": len(detail), "op_correlation": detail}


def arch_level_correlation(method: CorrelatedMethod, table: Benchmark, dataset: str, cfg: dict[str, Any],
                           data: SearchData | None = None) -> dict[str, Any]:
    """``arch_kendall_tau``, ``arch_spearman_rho`` and ``arch_correlation`` (sample size, target column, the
    scoring's seconds); ``data`` is for a method whose score measures architectures (ADWPNAS)."""
    target, _ = table.target_column(dataset)
    detail: dict[str, Any] = {"target": target, "sample_seed": ARCH_SAMPLE_SEED, "samples": 0}
    none = {"arch_kendall_tau": None, "arch_spearman_rho": None, "arch_correlation": detail}
    count = int(cfg["arch_corr_samples"])
    if count == 0:
        return none
    genotypes, accs = arch_sample(table, target, count)
    start = time.perf_counter()
    scores = method.score_architectures(genotypes, data)
    if scores is None:  # a method without scores: the record says so
        detail["undefined"] = f"{method.name} has no architecture scores"
        return none
    detail["seconds"] = time.perf_counter() - start
    tau, rho = rank_correlation(scores, accs)
    detail["samples"] = int(np.isfinite(np.asarray(scores, dtype=float)).sum())  # a NaN score leaves its cell out
    return {"arch_kendall_tau": tau, "arch_spearman_rho": rho, "arch_correlation": detail}


def arch_sample(table: Benchmark, target: str, count: int) -> tuple[list[Any], np.ndarray]:
    """The architecture-level sample: the genotypes of ``table.sample(count, ARCH_SAMPLE_SEED)`` that have a
    figure in ``target``, and those figures."""
    genotypes = table.sample(count, ARCH_SAMPLE_SEED)
    figures = np.asarray(table.query(genotypes, target), dtype=np.float64)
    known = np.isfinite(figures)
    return [g for g, k in zip(genotypes, known) if k], figures[known]


def one_shot_correlation(method: CorrelatedMethod, table: Benchmark, dataset: str, data: SearchData,
                         cfg: dict[str, Any]) -> dict[str, Any]:
    """``oneshot_kendall_tau``, ``oneshot_spearman_rho`` and ``oneshot_correlation`` (the module docstring)."""
    target, _ = table.target_column(dataset)
    detail: dict[str, Any] = {"target": target, "sample_seed": ONE_SHOT_SEED, "samples": 0}
    none = {"oneshot_kendall_tau": None, "oneshot_spearman_rho": None, "oneshot_correlation": detail}
    if method.supernet is None:
        detail["undefined"] = f"{method.name} has no supernet"
        return none
    count = int(cfg.get("oneshot_samples", 0))
    genotypes, figures = arch_sample(table, target, int(cfg.get("arch_corr_samples", 0)))
    if count == 0 or len(genotypes) == 0:
        return none
    if len(genotypes) > count:  # positions in the architecture-level sample, kept in its order
        picked = np.sort(np.random.default_rng(ONE_SHOT_SEED).choice(len(genotypes), size=count, replace=False))
        genotypes, figures = [genotypes[i] for i in picked], figures[picked]
    batches = data.val_batches(limit_batches=int(cfg["corr_batches"]))
    start = time.perf_counter()
    accs = np.asarray(method.discrete_accuracies(genotypes, batches), dtype=np.float64)
    usable = np.isfinite(accs)
    scores, bench = accs[usable], figures[usable]
    detail.update(samples=len(scores), batches=len(batches), seconds=time.perf_counter() - start)
    if len(scores) < len(genotypes):
        detail["left_out"] = f"{len(genotypes) - len(scores)} cells use ops {method.name} cannot discretise to"
    if len(scores) < 2:
        detail["undefined"] = "fewer than 2 cells could be evaluated"
        return none
    tau, rho = rank_correlation(scores, bench)
    order = np.argsort(-scores, kind="stable")  # ties: the earlier cell of the sample
    detail["top_k"] = {str(k): float(np.mean(bench[order[:k]])) for k in TOP_K if k <= len(scores)}
    return {"oneshot_kendall_tau": tau, "oneshot_spearman_rho": rho, "oneshot_correlation": detail}
