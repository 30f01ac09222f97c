"""Figures of a comparison: one PNG per plot, each with a CSV of exactly the data it draws.

``write_plots(records, out)`` groups the trial records by (space, dataset, budget) and writes, per group, the
plots that have data (a plot without data is skipped silently; no empty PNG is ever written):

* ``accuracy_vs_cost`` — test accuracy against search cost (``search_seconds`` in device-hours), one point per
  series (a method, or ``method [variant]`` for a variant, ``harness.leaderboard.variant_of``) at the means over
  seeds, error bars the 95 % bootstrap intervals of ``harness.core.stats.summary``;
* ``search_curves`` — the supernet's validation accuracy per search epoch (``history`` entries of phase
  ``search``): the mean over seeds as a line, the band from the lowest to the highest seed;
* ``anytime`` — where records carry ``benchmark_info``: the benchmark's accuracy (the column the record's
  architecture-level correlation names as its ``target``) of the genotype derived after each search epoch, mean
  over seeds with a min–max band, the benchmark's optimum as a horizontal line where it knows one;
* ``importance`` — one heatmap per series and importance group: the mean over seeds of ``record["importance"]
  [group]`` (edges × ops), its columns named by the record's ``importance_ops``;
* ``correlations`` — op-level, architecture-level and one-shot Kendall τ per series, a point per seed and
  the mean (missing or undefined values skipped);
* ``cells`` — per series, the cells of the seed with the best test accuracy, drawn from the space's
  ``cell_graphs``: node circles, arrows and op labels.

Names come from the records: the op names of the importance columns (``importance_ops``; a record written
before the field existed: its space's class attribute ``op_names``, no space is built) and the benchmark
column (``arch_correlation["target"]``; else the benchmark's ``target_column``). Interpreting a genotype stays
the space's (``parse`` for the anytime plot's benchmark queries, ``cell_graphs`` for the cells), and the anytime
figures are the benchmark's (``record_benchmark``, through ``Benchmark.query`` and ``optimum``): records do not
hold them.

Files are named ``<space>-<dataset>-<budget>-<kind>[-<series>][-<group>].png`` (and ``.csv``), every part made
safe for a file name; a name longer than ``MAX_STEM`` is cut and ends in a hash of the whole; a name that two plots
would share gets ``-2``, ``-3``, ... Figures are drawn with
matplotlib's non-interactive Agg backend and closed after saving.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from harness.core.errors import GenotypeError, UserError  # noqa: E402
from harness.core.records import bounded_stem  # noqa: E402
from harness.core.registry import get_space  # noqa: E402
from harness.core.stats import finite, summary  # noqa: E402
from harness.leaderboard import record_benchmark, variant_of  # noqa: E402

KINDS = ("accuracy_vs_cost", "search_curves", "anytime", "importance", "correlations", "cells")
TAUS = (("op_kendall_tau", "op-level"), ("arch_kendall_tau", "architecture-level"),
        ("oneshot_kendall_tau", "one-shot"))
DPI = 100
MAX_STEM = 150  # characters of a plot's file name before its suffix: file systems allow 255 bytes
INCH_PER_UNIT = 0.75  # the cells' drawing scale: inches per unit of graph_layout


@dataclass(frozen=True)
class PlotFile:
    """One written plot: its ``kind`` (one of ``KINDS``), its record ``group`` (``"nb201 / digits / smoke"``),
    its ``title`` and the paths of its image and of the CSV of the data it draws."""

    kind: str
    group: str
    title: str
    png: Path
    csv: Path


def series_label(record: dict[str, Any]) -> str:
    """A record's series: the name its study gave it (``_label``, set by the report: ``nos-noags``), else its
    method, with its variant in brackets when it has one (``darts [arch_lr=0.001]``)."""
    if record.get("_label"):
        return str(record["_label"])
    variant = variant_of(record)
    return f"{record.get('method')} [{variant}]" if variant else str(record.get("method"))


def _slug(text: str) -> str:
    """A file-name-safe form of ``text``: runs of other characters than letters, digits, ``_``, ``.``, ``-``
    become ``_``; no leading dot."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_").lstrip(".") or "_"


def _number(value: Any) -> float:
    """``value`` as a float; NaN for None, non-numbers and booleans."""
    values = finite([value])
    return float(values[0]) if values.size else math.nan


def _cell(value: Any) -> Any:
    """A CSV cell: NaN becomes an empty cell, other values are written as they are (floats in full precision)."""
    return "" if isinstance(value, float) and math.isnan(value) else value


class _Writer:
    """Writes the plots of one call: unique file names under ``out`` and the list of ``PlotFile``."""

    def __init__(self, out: Path, tables: dict[str, Any]):
        self.out = out
        self.tables = tables  # the benchmark tables of the records (``record_benchmark``'s cache)
        self.used: set[str] = set()
        self.files: list[PlotFile] = []

    def _stem(self, parts: list[str]) -> str:
        base = "-".join(_slug(part) for part in parts)
        base = bounded_stem(base, MAX_STEM)  # a long name (a dataset's path, a variant of many keys)
        stem, number = base, 1
        while stem in self.used:
            number += 1
            stem = f"{base}-{number}"
        self.used.add(stem)
        return stem

    def save(self, fig: Any, kind: str, group: str, title: str, parts: list[str], header: list[str],
             rows: list[list[Any]]) -> None:
        """Save ``fig`` and its data (``header``, ``rows``) as ``<parts joined by ->.png`` / ``.csv``; closes
        ``fig`` whatever happens."""
        try:
            stem = self._stem(parts)
            png, table = self.out / f"{stem}.png", self.out / f"{stem}.csv"
            fig.suptitle(title, fontsize=10)
            fig.savefig(png, dpi=DPI, bbox_inches="tight")
        finally:
            plt.close(fig)
        with table.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows([_cell(value) for value in row] for row in rows)
        self.files.append(PlotFile(kind, group, title, png, table))


def _by_series(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The records per series label, labels sorted, each series' records sorted by seed."""
    series: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        series.setdefault(series_label(record), []).append(record)
    return {label: sorted(series[label], key=lambda r: _number(r.get("seed"))) for label in sorted(series)}


def _space(record: dict[str, Any]) -> Any:
    """An instance of the record's space with the record's configuration; None for an unknown space."""
    try:
        return get_space(str(record.get("space")))(record.get("config") or {})
    except (UserError, TypeError, ValueError, KeyError, AttributeError):  # a configuration the space cannot take
        return None


def _parse(space: Any, text: Any) -> Any:
    """The genotype of string ``text`` in ``space``; None when it is missing or not a valid genotype."""
    if space is None or not isinstance(text, str):
        return None
    try:
        return space.parse(text)
    except (GenotypeError, UserError, ValueError):
        return None


def _op_names(record: dict[str, Any], ops: int) -> list[str]:
    """The names of the ``ops`` columns of the record's importance matrices: its ``importance_ops``; for a record
    without them (written before the field), the op names of its space's class; else the column numbers."""
    names = record.get("importance_ops")
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        try:
            names = list(get_space(str(record.get("space"))).op_names)
        except UserError:  # a space this installation does not have
            names = []
    return names if len(names) == ops else [str(k) for k in range(ops)]


def _target(record: dict[str, Any], table: Any) -> str:
    """The benchmark column that stands for the record's dataset: the one its architecture-level correlation
    names, else the benchmark's ``target_column``."""
    detail = record.get("arch_correlation")
    target = detail.get("target") if isinstance(detail, dict) else None
    return target if isinstance(target, str) else table.target_column(str(record.get("dataset")))[0]


def _bounds(low: float, mean: float, high: float) -> tuple[float, float]:
    """Error-bar lengths below and above ``mean`` for the interval [low, high]; zero where it is undefined."""
    return (mean - low if math.isfinite(low) else 0.0), (high - mean if math.isfinite(high) else 0.0)


# --- the plots ---------------------------------------------------------------------------------------------

def _accuracy_vs_cost(w: _Writer, group: str, parts: list[str], series: dict[str, list[dict[str, Any]]]) -> None:
    rows = []
    for label, records in series.items():
        acc = summary([r.get("test_acc") for r in records])
        hours = summary([_number(r.get("search_seconds")) / 3600 for r in records])
        if acc["n"] and hours["n"]:
            rows.append([label, records[0].get("method"), variant_of(records[0]), acc["n"], acc["mean"],
                         acc["ci_low"], acc["ci_high"], hours["n"], hours["mean"], hours["ci_low"], hours["ci_high"]])
    if not rows:
        return
    kinds = sorted({str(r.get("device_hours_kind")) for recs in series.values() for r in recs
                    if r.get("device_hours_kind")})
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for row in rows:
        yerr = np.array([_bounds(row[5], row[4], row[6])]).T
        xerr = np.array([_bounds(row[9], row[8], row[10])]).T
        ax.errorbar(row[8], row[4], xerr=xerr, yerr=yerr, fmt="o", capsize=4, label=f"{row[0]} (n={row[3]})")
    ax.set_xlabel(f"search cost ({' / '.join(kinds) or 'device-hours'})")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    w.save(fig, "accuracy_vs_cost", group, f"{group}: test accuracy vs search cost (95 % bootstrap CI)",
           [*parts, "accuracy_vs_cost"],
           ["label", "method", "variant", "n_acc", "test_acc_mean", "test_acc_ci_low", "test_acc_ci_high",
            "n_cost", "search_hours_mean", "search_hours_ci_low", "search_hours_ci_high"], rows)


def _epoch_rows(series: dict[str, list[dict[str, Any]]],
                value: Callable[[dict[str, Any], dict[str, Any]], float]) -> list[list[Any]]:
    """Per series and search epoch, ``[label, epoch, n, mean, min, max]`` of the finite ``value(record, entry)``
    over the records' ``history`` entries of phase ``search`` (one value per record and epoch: its last entry)."""
    rows = []
    for label, records in series.items():
        per_epoch: dict[int, list[float]] = {}
        for record in records:
            seen: dict[int, float] = {}
            for entry in record.get("history") or []:
                if isinstance(entry, dict) and entry.get("phase") == "search" and isinstance(entry.get("epoch"), int):
                    seen[entry["epoch"]] = value(record, entry)
            for epoch, number in seen.items():
                if math.isfinite(number):
                    per_epoch.setdefault(epoch, []).append(number)
        for epoch in sorted(per_epoch):
            x = np.array(per_epoch[epoch])
            rows.append([label, epoch, int(x.size), float(x.mean()), float(x.min()), float(x.max())])
    return rows


def _draw_bands(ax: Any, rows: list[list[Any]]) -> None:
    """Mean line and min–max band per series of ``_epoch_rows`` rows."""
    for label in dict.fromkeys(row[0] for row in rows):
        mine = [row for row in rows if row[0] == label]
        epochs = [row[1] for row in mine]
        line, = ax.plot(epochs, [row[3] for row in mine], marker="o", markersize=3, label=label)
        ax.fill_between(epochs, [row[4] for row in mine], [row[5] for row in mine], color=line.get_color(),
                        alpha=0.2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _search_curves(w: _Writer, group: str, parts: list[str], series: dict[str, list[dict[str, Any]]]) -> None:
    rows = _epoch_rows(series, lambda record, entry: _number(entry.get("val_acc")))
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    _draw_bands(ax, rows)
    ax.set_xlabel("search epoch")
    ax.set_ylabel("supernet validation accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    w.save(fig, "search_curves", group, f"{group}: supernet validation accuracy (mean, min–max over seeds)",
           [*parts, "search_curves"], ["label", "epoch", "n", "mean", "min", "max"], rows)


def _anytime(w: _Writer, group: str, parts: list[str], series: dict[str, list[dict[str, Any]]]) -> None:
    tables = w.tables
    instances: dict[int, Any] = {}  # id(record) → its space
    optima: dict[int, dict[str, float]] = {}  # id(table) → table.optimum() ({} where it knows none)
    optimum: dict[str, float] = {}  # series label → the best target figure of its records' benchmarks
    columns: set[str] = set()

    def value(record: dict[str, Any], entry: dict[str, Any]) -> float:
        table = record_benchmark(record, tables)
        if table is None:
            return math.nan
        if id(record) not in instances:
            instances[id(record)] = _space(record)
        genotype = _parse(instances[id(record)], entry.get("genotype"))
        if genotype is None:
            return math.nan
        column = _target(record, table)
        columns.add(column)
        if id(table) not in optima:
            optima[id(table)] = table.optimum() or {}
        best = _number(optima[id(table)].get(column))
        label = series_label(record)
        if math.isfinite(best):
            optimum[label] = max(optimum.get(label, -math.inf), best)
        return _number(table.query([genotype], column)[0])

    rows = [[*row, optimum.get(row[0], math.nan)] for row in _epoch_rows(series, value)]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    _draw_bands(ax, rows)
    for best in sorted({row[6] for row in rows if math.isfinite(row[6])}):
        ax.axhline(best, color="black", linestyle="--", linewidth=1, label=f"optimum {best:.2f}")
    ax.set_xlabel("search epoch")
    ax.set_ylabel(f"benchmark accuracy of the derived cell ({', '.join(sorted(columns))}, %)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    w.save(fig, "anytime", group, f"{group}: benchmark accuracy of the cell derived after each search epoch",
           [*parts, "anytime"], ["label", "epoch", "n", "mean", "min", "max", "optimum"], rows)


def _importance(w: _Writer, group: str, parts: list[str], series: dict[str, list[dict[str, Any]]]) -> None:
    for label, records in series.items():
        groups = dict.fromkeys(g for r in records if isinstance(r.get("importance"), dict) for g in r["importance"])
        for name in groups:
            matrices = []
            for record in records:
                try:
                    matrix = np.asarray(record["importance"].get(name), dtype=np.float64)
                except (TypeError, ValueError, AttributeError, KeyError):
                    continue
                if matrix.ndim == 2 and matrix.size:
                    matrices.append(matrix)
            shapes = {m.shape for m in matrices}
            if len(shapes) != 1:  # none, or matrices that cannot be averaged
                continue
            stack = np.stack(matrices)
            counts = np.isfinite(stack).sum(axis=0)
            if not counts.any():
                continue
            mean = np.where(counts > 0, np.nansum(stack, axis=0) / np.maximum(counts, 1), np.nan)
            edges, ops = mean.shape
            names = _op_names(records[0], ops)
            fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * ops + 2), max(3.0, 0.35 * edges + 1.5)))
            image = ax.imshow(mean, aspect="auto", cmap="viridis")
            fig.colorbar(image, ax=ax)
            ax.set_xticks(range(ops), names, rotation=45, ha="right", fontsize=8)
            ax.set_yticks(range(edges), [str(e) for e in range(edges)], fontsize=8)
            ax.set_xlabel("op")
            ax.set_ylabel("edge")
            w.save(fig, "importance", group, f"{group}: {label} importance '{name}' (mean of {len(matrices)} seeds)",
                   [*parts, "importance", label, name], ["edge", *names],
                   [[e, *(float(v) for v in mean[e])] for e in range(edges)])


def _correlation_rows(series: dict[str, list[dict[str, Any]]]) -> list[list[Any]]:
    """The correlations figure's data: per label and correlation, each seed's finite value and their mean."""
    rows = []
    for label, records in series.items():
        for key, _ in TAUS:
            values = [(r.get("seed"), _number(r.get(key))) for r in records]
            values = [(seed, v) for seed, v in values if math.isfinite(v)]
            rows += [[label, key, "seed", seed, v] for seed, v in values]
            if values:
                rows.append([label, key, "mean", "", float(np.mean([v for _, v in values]))])
    return rows


def _correlations(w: _Writer, group: str, parts: list[str], series: dict[str, list[dict[str, Any]]]) -> None:
    rows = _correlation_rows(series)
    if not rows:
        return
    labels = list(dict.fromkeys(row[0] for row in rows))
    fig, ax = plt.subplots(figsize=(max(6.4, 1.6 * len(labels) + 2), 4.8))
    for k, (key, name) in enumerate(TAUS):
        offset = (k - 1) * 0.25
        color = f"C{k}"
        seeds = [row for row in rows if row[1] == key and row[2] == "seed"]
        means = [row for row in rows if row[1] == key and row[2] == "mean"]
        if not seeds:
            continue
        ax.scatter([labels.index(row[0]) + offset for row in seeds], [row[4] for row in seeds], color=color,
                   alpha=0.5, s=18, label=f"{name} (seeds)")
        ax.scatter([labels.index(row[0]) + offset for row in means], [row[4] for row in means], color=color,
                   marker="_", s=400, linewidths=2, label=f"{name} (mean)")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("Kendall τ")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    w.save(fig, "correlations", group, f"{group}: ranking correlations (Kendall τ)", [*parts, "correlations"],
           ["label", "metric", "kind", "seed", "value"], rows)


def graph_layout(edges: list[tuple[str, str, str]]) -> dict[str, tuple[float, float]]:
    """Positions of a graph's nodes for drawing: x = 3 × the node's depth (longest path from a node without
    incoming edges), y = the nodes of one depth 1.8 apart around 0, in order of first appearance (top down)."""
    nodes = list(dict.fromkeys(n for source, target, _ in edges for n in (source, target)))
    inputs: dict[str, list[str]] = {n: [] for n in nodes}
    for source, target, _ in edges:
        inputs[target].append(source)
    depth: dict[str, int] = {}

    def depth_of(node: str, seen: frozenset[str] = frozenset()) -> int:
        if node not in depth:
            parents = [p for p in inputs[node] if p not in seen]  # a cycle is cut rather than followed
            depth[node] = 1 + max((depth_of(p, seen | {node}) for p in parents), default=-1)
        return depth[node]

    columns: dict[int, list[str]] = {}
    for node in nodes:
        columns.setdefault(depth_of(node), []).append(node)
    return {n: (3.0 * d, 1.8 * ((len(col) - 1) / 2 - k)) for d, col in columns.items() for k, n in enumerate(col)}


def draw_graph(ax: Any, edges: list[tuple[str, str, str]], title: str) -> None:
    """Draw one cell on ``ax``: a circle per node, an arrow per edge (curved when it skips a depth) with its
    op name at the middle of the arrow."""
    pos = graph_layout(edges)
    radius = 0.4
    circles = {}
    for node, (x, y) in pos.items():
        circles[node] = Circle((x, y), radius, facecolor="#dbe9f6", edgecolor="black", linewidth=1, zorder=2)
        ax.add_patch(circles[node])
        ax.text(x, y, node, ha="center", va="center", fontsize=7, zorder=3)
    for k, (source, target, op) in enumerate(edges):
        (x1, y1), (x2, y2) = pos[source], pos[target]
        rad = 0.0 if abs(x2 - x1) <= 3.0 or y1 != y2 else (0.3 if k % 2 else -0.3)
        arrow = FancyArrowPatch((x1, y1), (x2, y2), patchA=circles[source], patchB=circles[target],
                                arrowstyle="-|>", mutation_scale=10, connectionstyle=f"arc3,rad={rad}",
                                color="grey" if op == "concat" else "black", linewidth=1, zorder=1)
        ax.add_patch(arrow)
        # the middle of the arc3 curve: the chord's midpoint moved by rad/2 × (dy, -dx) (equal axis scales)
        mx, my = (x1 + x2) / 2 + rad / 2 * (y2 - y1), (y1 + y2) / 2 - rad / 2 * (x2 - x1)
        if op != "concat":
            ax.text(mx, my, op, ha="center", va="center", fontsize=6, zorder=4,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 1, max(xs) + 1)
    ax.set_ylim(min(ys) - 1.5, max(ys) + 1.5)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)


def _best_record(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The record with the highest finite test accuracy (equal ones: the lowest seed), or None."""
    scored = [r for r in records if math.isfinite(_number(r.get("test_acc")))]
    return max(scored, key=lambda r: (_number(r.get("test_acc")), -_number(r.get("seed")))) if scored else None


def _cells(w: _Writer, group: str, parts: list[str], series: dict[str, list[dict[str, Any]]]) -> None:
    for label, records in series.items():
        best = _best_record(records)
        if best is None:
            continue
        space = _space(best)
        genotype = _parse(space, best.get("genotype"))
        graphs = space.cell_graphs(genotype) if genotype is not None else None
        graphs = {name: edges for name, edges in (graphs or {}).items() if edges}
        if not graphs:
            continue
        spans = [np.ptp(np.array(list(graph_layout(edges).values())), axis=0) for edges in graphs.values()]
        heights = [float(span[1]) + 3.0 for span in spans]  # the axis limits of draw_graph
        width = min(30.0, INCH_PER_UNIT * (max(float(span[0]) for span in spans) + 2.0))
        fig, axes = plt.subplots(len(graphs), 1, squeeze=False, gridspec_kw={"height_ratios": heights},
                                 figsize=(max(4.0, width), INCH_PER_UNIT * sum(heights) + 0.6))
        for ax, (name, edges) in zip(axes[:, 0], graphs.items()):
            draw_graph(ax, edges, name)
        seed = best.get("seed")
        w.save(fig, "cells", group, f"{group}: {label} cells (seed {seed}, test accuracy "
                                    f"{_number(best.get('test_acc')):.2f})",
               [*parts, "cells", label], ["seed", "cell", "source", "target", "op"],
               [[seed, name, *edge] for name, edges in graphs.items() for edge in edges])


PLOTS: tuple[Callable[[_Writer, str, list[str], dict[str, list[dict[str, Any]]]], None], ...] = (
    _accuracy_vs_cost, _search_curves, _anytime, _importance, _correlations, _cells)


def _groups(records: list[dict[str, Any]]) -> Iterator[tuple[tuple[str, str, str], list[dict[str, Any]]]]:
    """The records per (space, dataset, budget), sorted."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for record in records:
        key = (str(record.get("space")), str(record.get("dataset")), str(record.get("budget")))
        groups.setdefault(key, []).append(record)
    for key in sorted(groups):
        yield key, groups[key]


# Every string a plot draws (titles, series labels, op names) comes from records: drawn as text, never parsed as
# mathtext ("$\\foo$" in a method's name would stop the report) or TeX.
TEXT_ONLY = {"text.parse_math": False, "text.usetex": False}


def write_plots(records: list[dict[str, Any]], out: Path, tables: dict[str, Any] | None = None) -> list[PlotFile]:
    """Write every plot of ``KINDS`` that has data, per (space, dataset, budget) group of ``records``, into
    folder ``out`` (created when missing); returns the written plots in order (groups sorted, then by kind).
    ``tables``: the cache of ``harness.leaderboard.record_benchmark`` (shared with the report's leaderboard, so
    a table that is not here is said once)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    writer = _Writer(out, {} if tables is None else tables)
    with plt.rc_context(TEXT_ONLY):
        for (space, dataset, budget), members in _groups(records):
            group = f"{space} / {dataset} / {budget}"
            series = _by_series(members)
            for plot in PLOTS:
                plot(writer, group, [space, dataset, budget], series)
    return writer.files
