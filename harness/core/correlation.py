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

**Architecture level** (spaces with a benchmark table): for a fixed sample of ``arch_corr_samples``
architectures of the table — drawn from a fixed generator (seed 0), the same for every method and seed — the
method's score of each architecture (``method.score_architectures``) is correlated (Kendall τ-b, Spearman ρ)
with its benchmark accuracy (the column that stands for the search dataset, ``Benchmark.target_column``).
By default the score of an architecture is the sum over its chosen edges of the log of the chosen op's
importance normalised over the edge's ops, Σ_e log(I[e, o_e] / Σ_o I[e, o]) (``log_normalised``): for DARTS
and GDAS (I = softmax(α)) that is the sum of the log softmax weights of the chosen ops. A method may define
its own score (EoiNAS does). Architectures without a figure in the table are left out.

**One-shot** (spaces with a benchmark table, methods with a supernet): does the supernet rank architectures?
For a fixed subset of ``oneshot_samples`` cells of the architecture-level sample (drawn from it with a fixed
generator, seed 1, the same for every method and seed), each cell is evaluated with the method's final
supernet weights — every edge discretised to the cell's op (``method.discretised``), on the fixed validation
subset of the operation-level protocol (the first ``corr_batches`` batches of the architecture half, batch
statistics) — and that accuracy is correlated (Kendall τ-b, Spearman ρ) with the cell's benchmark accuracy;
``top_k`` gives the mean benchmark accuracy of the k cells the supernet ranks best. A cell with an op the
method cannot discretise to (EoiNAS's pruned ops: ``method.correlation_ops``) is left out, and the record says
how many were evaluated and what it cost (``seconds``).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.core.data import SearchData
from harness.core.metrics import mean_ignoring_nan, rank_correlation
from harness.core.train import batch_statistics, evaluate, measure

if TYPE_CHECKING:  # methods import this module (EoiNAS measures its indicator at every pruning step)
    from harness.core.benchmarks.base import Benchmark
    from methods.base import SearchMethod

EDGE_SAMPLE_SEED = 0
ARCH_SAMPLE_SEED = 0
ONE_SHOT_SEED = 1
TOP_K = (1, 5, 10)


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


def op_level_correlation(method: SearchMethod, data: SearchData, cfg: dict[str, Any]) -> dict[str, Any]:
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


def sample_archs(count: int, total: int) -> np.ndarray:
    """A fixed, seed-independent sample of ``count`` of ``total`` architecture indices, sorted."""
    if count >= total:
        return np.arange(total)
    rng = np.random.default_rng(ARCH_SAMPLE_SEED)
    return np.sort(rng.choice(total, size=max(0, count), replace=False))


def log_normalised(importance: np.ndarray) -> np.ndarray:
    """log(I[e, o] / Σ_o' I[e, o']) for every entry of an ``[edges, ops]`` importance (which must be ≥ 0).

    A zero importance counts as 1e-30 (log ≈ −69) so that a pruned op ranks last without producing NaN; an
    edge whose importances are all zero gets log(1e-30) for every op, so it adds the same constant to every
    architecture.
    """
    importance = np.asarray(importance, dtype=np.float64)
    totals = importance.sum(axis=1, keepdims=True)
    normalised = importance / np.where(totals > 0, totals, 1.0)  # an all-zero edge ranks nothing
    return np.log(np.clip(normalised, 1e-30, None))


def arch_level_correlation(method: SearchMethod, table: Benchmark, dataset: str, cfg: dict[str, Any],
                           data: SearchData | None = None) -> dict[str, Any]:
    """``arch_kendall_tau``, ``arch_spearman_rho`` and ``arch_correlation`` (sample size, target column, the
    scoring's seconds); ``data`` is for a method whose score measures architectures (ADWPNAS)."""
    target, _ = table.target_column(dataset)
    detail: dict[str, Any] = {"target": target, "sample_seed": ARCH_SAMPLE_SEED, "samples": 0}
    none = {"arch_kendall_tau": None, "arch_spearman_rho": None, "arch_correlation": detail}
    count = int(cfg["arch_corr_samples"])
    if count == 0:
        return none
    indices = arch_sample(table, target, count)
    accs = table.column(target)[indices]
    start = time.perf_counter()
    scores = method.score_architectures(table.genotypes(indices), data)
    if scores is None:  # a method without scores: the record says so
        detail["undefined"] = f"{method.name} has no architecture scores"
        return none
    detail["seconds"] = time.perf_counter() - start
    tau, rho = rank_correlation(scores, accs)
    detail["samples"] = int(np.isfinite(np.asarray(scores, dtype=float)).sum())  # a NaN score leaves its cell out
    return {"arch_kendall_tau": tau, "arch_spearman_rho": rho, "arch_correlation": detail}


def arch_sample(table: Benchmark, target: str, count: int) -> np.ndarray:
    """The architecture-level sample: ``count`` fixed indices (``sample_archs``), those with a figure in
    ``target``."""
    indices = sample_archs(count, len(table))
    return indices[np.isfinite(table.column(target)[indices])]


def genotype_edges(space: Any, genotypes: list[Any]) -> list[list[tuple[str, int, int]]]:
    """Every genotype's (group, edge, op) choices (``space.edge_choices``), one list per genotype."""
    choices = space.edge_choices(genotypes)
    return [[(g, int(e), int(o)) for g, (rows, ops) in choices.items() for e, o in zip(rows[i], ops[i])]
            for i in range(len(genotypes))]


def discrete_accuracies(method: SearchMethod, cells: list[list[tuple[str, int, int]]], batches: Any) -> list[float]:
    """The supernet's accuracy (percent, batch statistics: the running ones are restored once, after the last
    cell, as they do not enter a pass) on ``batches`` of each cell, every one of its (group, edge, op) choices
    discretised (``method.discretised``)."""
    accs = []
    with batch_statistics(method.supernet):
        for cell in cells:
            with ExitStack() as stack:
                for group, edge, op in cell:
                    stack.enter_context(method.discretised(group, edge, op))
                accs.append(measure(method.supernet, batches)[1])
    return accs


def one_shot_correlation(method: SearchMethod, table: Benchmark, dataset: str, data: SearchData,
                         cfg: dict[str, Any]) -> dict[str, Any]:
    """``oneshot_kendall_tau``, ``oneshot_spearman_rho`` and ``oneshot_correlation`` (the module docstring)."""
    target, _ = table.target_column(dataset)
    detail: dict[str, Any] = {"target": target, "sample_seed": ONE_SHOT_SEED, "samples": 0}
    none = {"oneshot_kendall_tau": None, "oneshot_spearman_rho": None, "oneshot_correlation": detail}
    if method.supernet is None:
        detail["undefined"] = f"{method.name} has no supernet"
        return none
    count = int(cfg.get("oneshot_samples", 0))
    indices = arch_sample(table, target, int(cfg.get("arch_corr_samples", 0)))
    if count == 0 or len(indices) == 0:
        return none
    if len(indices) > count:
        indices = np.sort(np.random.default_rng(ONE_SHOT_SEED).choice(indices, size=count, replace=False))
    cells = genotype_edges(method.space, table.genotypes(indices))
    allowed = {(g, e): set(method.correlation_ops(g, e)) for g, (n, _) in method.space.arch_shape().items()
               for e in range(n)}
    usable = [i for i, cell in enumerate(cells) if all(o in allowed[(g, e)] for g, e, o in cell)]
    batches = data.val_batches(limit_batches=int(cfg["corr_batches"]))
    start = time.perf_counter()
    scores = discrete_accuracies(method, [cells[i] for i in usable], batches)
    bench = table.column(target)[indices[usable]]
    detail.update(samples=len(usable), batches=len(batches), seconds=time.perf_counter() - start)
    if len(usable) < len(indices):
        detail["left_out"] = f"{len(indices) - len(usable)} cells use ops {method.name} cannot discretise to"
    if len(usable) < 2:
        detail["undefined"] = "fewer than 2 cells could be evaluated"
        return none
    tau, rho = rank_correlation(scores, bench)
    order = np.argsort(-np.asarray(scores), kind="stable")  # ties: the earlier cell of the sample
    detail["top_k"] = {str(k): float(np.mean(bench[order[:k]])) for k in TOP_K if k <= len(usable)}
    return {"oneshot_kendall_tau": tau, "oneshot_spearman_rho": rho, "oneshot_correlation": detail}
