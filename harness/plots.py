"""Figures of a comparison: every plot as a PDF (vector) and a PNG (``DPI`` = 200), with a CSV of its data.

``write_plots(records, out)`` groups the trial records by (space, dataset, budget) and writes, per group, the
plots that have data (a plot without data is skipped silently; no empty image is ever written):

* ``accuracy_vs_cost`` — test accuracy against search time (``search_seconds``, in seconds, minutes or hours as
  the largest value asks), one point per series (a method, or ``method [variant]``,
  ``harness.leaderboard.variant_of``) at the means over seeds, error bars the intervals of
  ``harness.core.stats.summary`` labelled as the leaderboard labels them (the 95 % bootstrap CI from 5 seeds, the
  range min–max below: ``interval_words``); one panel per source of the test accuracy (in the leaderboard's words,
  ``harness.leaderboard.test_source``: a benchmark look-up or the final network trained on the dataset), a log time
  axis where the
  times span more than two decades. A search that queried the benchmark in place of training (random search on
  NAS-Bench-201) has no search time to be placed at (never drawn as free): its own panel, its cost the number of
  queries (``harness.core.provenance.benchmark_queries``, the leaderboard's "3 queries"), on the accuracy scale of
  the panel beside it;
* ``search_curves`` — the validation accuracy per search epoch (``history`` entries of phase ``search``): the
  mean over seeds as a line, the band from the lowest to the highest seed. Figures measured on the search split
  (a supernet's, a briefly trained candidate's) and figures a method looked up in the benchmark (random search
  on NAS-Bench-201 queries the table instead of training) are never on one axis: each has its own panel, the
  latter titled "queries the benchmark";
* ``anytime`` — where records carry ``benchmark_info``: the benchmark's accuracy (the column the record's
  architecture-level correlation names as its ``target``; else the benchmark's ``target_column``) of the
  genotype of each search epoch, mean over seeds with a min–max band, the benchmark's optimum as a line where
  it knows one;
* ``importance`` — one heatmap per series and importance group: the mean over seeds of ``record["importance"]
  [group]`` (edges × ops), each edge's row as its share of the edge's total over the edge's candidate ops,
  on a diverging scale centred on the uniform share 1/k (k candidates on the edge; where k differs between
  edges, the share × k centred on 1), never narrower than ±``MIN_SPREAD`` of the centre so that noise does not
  look like signal; rows named by their end nodes (the space's ``edge_labels``), the op each seed's genotype
  chose on the edge boxed (``edge_choices``; with the number of seeds that chose it where they differ), ops
  that are not candidates of an edge grey;
* ``correlations`` — op-level, architecture-level and one-shot Kendall τ per series, a point per seed and the
  mean (missing or undefined values skipped);
* ``cells`` — per series, the cells of the seed with the best test accuracy (the space's ``cell_graphs``, nodes
  numbered as ``python -m harness show`` numbers them), drawn by ``cell_layout``: the nodes on a line in
  topological order, every edge an arc above it (the ``concat`` edges into the output below it), so that no
  edge passes through a node, op names at the arcs' tops on white boxes, never over a node or another name;
  a long chain (the ProxylessNAS blocks) snakes over several rows.

Every figure has a human title (the group as ``space · dataset · budget``), axis labels with units, and says
where its figures come from: the records' ``test_acc_source``, "trained on <dataset>", or the benchmark's name
(its space's description, up to its colon), column and table (the record's ``benchmark_info["table"]``, which
is the benchmark's ``describe()``). A series whose search figures are the benchmark's (each search epoch's
``val_acc`` equals the benchmark's figure of that epoch's genotype in its ``valid_column``: found by querying,
not assumed) is named "queries the benchmark" wherever it is drawn.

Names come from the records: the op names of the importance columns (``importance_ops``; a record written
before the field existed: its space's class attribute ``op_names``) and the benchmark column
(``arch_correlation["target"]``). Interpreting a genotype stays the space's (``parse``, ``cell_graphs``,
``edge_choices``, ``edge_labels``, ``candidate_mask``), and the anytime figures are the benchmark's
(``record_benchmark``, through ``Benchmark.query`` and ``optimum``): records do not hold them.

Files are named ``<space>-<dataset>-<budget>-<kind>[-<series>][-<group>].pdf`` (and ``.png``, ``.csv``), every
part made safe for a file name; a name longer than ``MAX_STEM`` is cut and ends in a hash of the whole; a name
that two plots would share gets ``-2``, ``-3``, ... Figures are drawn with matplotlib's non-interactive Agg
backend, every string as plain text (no mathtext), and closed after saving; the PDFs carry no creation date, so
the same records give the same files.
"""

from __future__ import annotations

import csv
import math
import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, Rectangle  # noqa: E402
from matplotlib.path import Path as CurvePath  # noqa: E402
from matplotlib.textpath import TextToPath  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from harness.core.errors import GenotypeError, UserError  # noqa: E402
from harness.core.provenance import benchmark_queries, record_benchmark  # noqa: E402
from harness.core.records import bounded_stem  # noqa: E402
from harness.core.registry import get_space  # noqa: E402
from harness.core.stats import CI_LABEL, MIN_CI_VALUES, RANGE_LABEL, finite, summary  # noqa: E402
from harness.leaderboard import test_source, variant_of  # noqa: E402

KINDS = ("accuracy_vs_cost", "search_curves", "anytime", "importance", "correlations", "cells")
TAUS = (("op_kendall_tau", "op-level"), ("arch_kendall_tau", "architecture-level"),
        ("oneshot_kendall_tau", "one-shot"))
DPI = 200  # of the PNGs (the PDFs are vector)
FORMATS = ("pdf", "png")
MAX_STEM = 150  # characters of a plot's file name before its suffix: file systems allow 255 bytes
MIN_SPREAD = 0.25  # the importance colour scale spans at least ±25 % of the uniform share 1/k
TITLE_SIZE, PANEL_SIZE, NOTE_SIZE = 11.0, 8.5, 7.5  # points: figure titles, panel titles, notes under a figure
NODE_SIZE, OP_SIZE = 8.0, 7.0  # points: the cells' node numbers and op names
CHAIN_ROW = 8  # nodes per row of a drawn chain (the ProxylessNAS blocks) longer than this
GROUP_NAMES = {"normal": "normal cells", "reduce": "reduction cells", "cell": "the cell", "blocks": "the blocks"}
CELL_NAMES = {"normal": "normal cell", "reduce": "reduction cell", "blocks": "choice blocks"}
TIME_UNITS = (("hours", 3600.0, 7200.0), ("minutes", 60.0, 120.0), ("seconds", 1.0, 0.0))  # (unit, s, from s)
PDF_METADATA = {"CreationDate": None}  # no date: the same records give the same PDF


@dataclass(frozen=True)
class PlotFile:
    """One written plot: its ``kind`` (one of ``KINDS``), its record ``group`` (``"nb201 / digits / smoke"``),
    its ``title`` and the paths of its PNG and of the CSV of the data it draws; ``pdf`` is beside the PNG."""

    kind: str
    group: str
    title: str
    png: Path
    csv: Path

    @property
    def pdf(self) -> Path:
        return self.png.with_suffix(".pdf")


@dataclass
class Drawn:
    """A figure drawn and not yet saved (``figures``): its kind, group, title (the report's caption), the parts of
    its file name, the matplotlib figure, and the header and rows of its CSV."""

    kind: str
    group: str
    title: str
    parts: list[str]
    fig: Any
    header: list[str]
    rows: list[list[Any]]


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


def _wrap(text: str, width_in: float, size: float) -> str:
    """``text`` wrapped to lines of about ``width_in`` inches at ``size`` points (a character about 0.55 em)."""
    return textwrap.fill(str(text), max(24, int(width_in * 72 / (0.55 * size))), break_on_hyphens=False)


def time_unit(seconds: float) -> tuple[str, float]:
    """The unit in which times up to ``seconds`` read best, and its length in seconds: seconds below 2 minutes,
    minutes below 2 hours, else hours."""
    for unit, length, start in TIME_UNITS:
        if seconds >= start:
            return unit, length
    return "seconds", 1.0


def _number_text(value: float, _position: Any = None) -> str:
    """A tick label: at most 4 significant digits, no exponent for ordinary values (``0.0005``, ``12.5``)."""
    return f"{value:.4g}"


class _Writer:
    """Writes the plots of one call: unique file names under ``out`` and the list of ``PlotFile``."""

    def __init__(self, out: Path):
        self.out = out
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

    def save(self, drawn: Drawn) -> None:
        """Save the figure as ``<parts joined by ->.pdf`` and ``.png`` and its data as ``.csv``; closes the
        figure whatever happens."""
        try:
            stem = self._stem(drawn.parts)
            png, table = self.out / f"{stem}.png", self.out / f"{stem}.csv"
            fig = drawn.fig
            fig.draw_without_rendering()  # the layout, once: then one tight box for both files
            box = fig.get_tightbbox(fig.canvas.get_renderer()).padded(0.08)
            fig.set_layout_engine("none")
            for suffix in FORMATS:
                fig.savefig(self.out / f"{stem}.{suffix}", dpi=DPI, bbox_inches=box,
                            metadata=PDF_METADATA if suffix == "pdf" else None)
        finally:
            plt.close(drawn.fig)
        with table.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(drawn.header)
            writer.writerows([_cell(value) for value in row] for row in drawn.rows)
        self.files.append(PlotFile(drawn.kind, drawn.group, drawn.title, png, table))


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


def _bounds(low: float, mean: float, high: float) -> tuple[float, float]:
    """Error-bar lengths below and above ``mean`` for the interval [low, high]; zero where it is undefined."""
    return (mean - low if math.isfinite(low) else 0.0), (high - mean if math.isfinite(high) else 0.0)


def _search_entries(record: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The record's ``history`` entries of phase ``search`` by epoch (the last one of an epoch)."""
    entries = {}
    for entry in record.get("history") or []:
        if isinstance(entry, dict) and entry.get("phase") == "search" and isinstance(entry.get("epoch"), int):
            entries[entry["epoch"]] = entry
    return entries


class _Group:
    """The records of one (space, dataset, budget) and what the plots ask of them, asked once: each record's
    space and benchmark table, and which series' search figures are the benchmark's."""

    def __init__(self, key: tuple[str, str, str], records: list[dict[str, Any]], tables: dict[str, Any]):
        self.space_name, self.dataset, self.budget = key
        self.name = " / ".join(key)
        self.heading = f"{self.space_name} · {self.dataset} · {self.budget} budget"
        self.parts = list(key)
        self.series = _by_series(records)
        self.tables = tables
        self._spaces: dict[int, Any] = {}
        self._queried: dict[str, str | None] = {}

    def space(self, record: dict[str, Any]) -> Any:
        if id(record) not in self._spaces:
            self._spaces[id(record)] = _space(record)
        return self._spaces[id(record)]

    def table(self, record: dict[str, Any]) -> Any:
        return record_benchmark(record, self.tables)

    def benchmark_name(self) -> str:
        """The benchmark's name: its space's description up to the colon (``NAS-Bench-201``), else the space."""
        try:
            description = str(get_space(self.space_name).description)
        except UserError:
            description = ""
        return description.split(":", 1)[0].strip() if ":" in description else f"{self.space_name} benchmark"

    def queried(self, label: str) -> str | None:
        """The benchmark column that series ``label``'s search figures were looked up in, or None where they were
        measured: a record's every search epoch has a ``val_acc`` equal to the benchmark's figure of the epoch's
        genotype in the column a search on its dataset may select by (``valid_column``: what random search
        queries)."""
        if label not in self._queried:
            columns = [self._queried_column(record) for record in self.series[label]]
            self._queried[label] = next((c for c in columns if c), None)
        return self._queried[label]

    def _queried_column(self, record: dict[str, Any]) -> str | None:
        table = self.table(record)
        entries = list(_search_entries(record).values())
        if table is None or not entries:
            return None
        space = self.space(record)
        genotypes = [_parse(space, entry.get("genotype")) for entry in entries]
        values = np.array([_number(entry.get("val_acc")) for entry in entries])
        if any(g is None for g in genotypes) or not np.isfinite(values).all():
            return None
        try:
            column = table.valid_column(str(record.get("dataset")))
        except (UserError, ValueError, KeyError, NotImplementedError):
            return None
        looked = np.asarray(table.query(genotypes, column), dtype=np.float64)
        same = looked.shape == values.shape and np.isfinite(looked).all() and np.allclose(looked, values, rtol=0,
                                                                                          atol=1e-9)
        return column if same else None

    def queries(self, label: str) -> list[float] | None:
        """Each seed's number of benchmark queries where series ``label``'s search queried the benchmark in place of
        training: its method's count (``harness.core.provenance.benchmark_queries``, the leaderboard's "3 queries"),
        else, for a series found to query (``queried``), its search steps (one query each); None for a search that
        trains."""
        counts = []
        for record in self.series[label]:
            count = benchmark_queries(record)
            if count is None and self.queried(label):
                count = float(len(_search_entries(record))) or None
            if count is not None:
                counts.append(count)
        return counts or None

    def table_text(self, records: list[dict[str, Any]]) -> str:
        """The benchmark tables of ``records`` as their ``benchmark_info["table"]`` (``describe()``) names them:
        ``table default (from nb201_merged.csv)``."""
        texts = []
        for record in records:
            info = record.get("benchmark_info")
            table = info.get("table") if isinstance(info, dict) else None
            if isinstance(table, dict) and table.get("path"):
                source = f" (from {table['source']})" if table.get("source") else ""
                texts.append(f"table {table['path']}{source}")
        return "; ".join(dict.fromkeys(texts)) or "its table"

    def legend(self, label: str) -> str:
        """A series' legend entry: its label (wrapped: a long name must not squeeze the axes away), and where it
        queries the benchmark, that it does."""
        return _wrap(f"{label} (queries the benchmark)" if self.queried(label) else label, 4.0, 8)


def _finish(fig: Any, title: str, notes: list[str]) -> None:
    """Give ``fig`` its title (wrapped to the figure's width: never cut) and its notes below the axes."""
    width = fig.get_figwidth()
    fig.suptitle(_wrap(title, width, TITLE_SIZE), fontsize=TITLE_SIZE)
    if notes:
        fig.text(0.01, -0.01, "\n".join(_wrap(note, width - 0.2, NOTE_SIZE) for note in notes), fontsize=NOTE_SIZE,
                 color="#333333", ha="left", va="top")


def _panel_title(ax: Any, text: str, panels: int = 1) -> None:
    """A panel's title (where its figures come from), wrapped to its share of the figure's width."""
    ax.set_title(_wrap(text, ax.figure.get_figwidth() / panels - 0.4, PANEL_SIZE), fontsize=PANEL_SIZE, loc="left")


# --- the plots ---------------------------------------------------------------------------------------------

def _time_axis(ax: Any, values: list[float]) -> None:
    """A readable time axis: logarithmic where the positive values span more than two decades (one search looked
    up in milliseconds, another trained for minutes), else linear; plain numbers, at most 6 ticks."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if positive and min(values) > 0 and max(positive) / min(positive) > 100:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, numticks=6))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.xaxis.set_major_formatter(FuncFormatter(_number_text))
    ax.yaxis.set_major_formatter(FuncFormatter(_number_text))


def interval_words(kinds: set[str]) -> tuple[str, str]:
    """What the error bars of series with interval ``kinds`` are (``harness.core.stats.summary``'s ``interval``: the
    leaderboard's labels), short for a title and in full for a figure's note: the 95 % bootstrap CI from
    ``MIN_CI_VALUES`` seeds, below that the range, min to max, labelled so (three seeds' bootstrap interval is their
    range anyway); no bar for a series of one seed."""
    kinds = set(kinds) - {""}
    ci = f"{CI_LABEL} (percentile bootstrap of the mean)"
    span = f"{RANGE_LABEL} (min–max over seeds: fewer than {MIN_CI_VALUES} seeds give no honest 95 % interval)"
    if kinds == {CI_LABEL}:
        return CI_LABEL, ci
    if kinds == {RANGE_LABEL}:
        return f"{RANGE_LABEL}, min–max", span
    if kinds:
        return (f"{CI_LABEL} or {RANGE_LABEL}",
                f"{ci} for a series of {MIN_CI_VALUES} or more seeds, else its {span}")
    return "none: one seed", "none (one seed per series)"


def _accuracy_vs_cost(g: _Group) -> Iterator[Drawn]:
    """Test accuracy against search cost. A search that trains is placed at its search time; one that queried the
    benchmark in place of training (``_Group.queries``) has no time to place it at (its look-ups take milliseconds, and
    the benchmark keeps no training times to simulate it with), so it gets a panel of its own whose axis is its number
    of queries, as the leaderboard's "3 queries": it is never drawn as free on the time axis."""
    rows, kinds = [], set()
    for label, records in g.series.items():
        acc = summary([r.get("test_acc") for r in records])
        queries = g.queries(label)
        cost = summary(queries if queries is not None else [_number(r.get("search_seconds")) / 3600 for r in records])
        if acc["n"] and cost["n"]:
            kinds |= {acc["interval"], cost["interval"]}
            sources = [text for text in (test_source(r, g.tables) for r in records) if text]
            timed = [cost[k] if queries is None else math.nan for k in ("n", "mean", "ci_low", "ci_high")]
            asked = [cost[k] if queries is not None else math.nan for k in ("n", "mean", "ci_low", "ci_high")]
            rows.append([label, records[0].get("method"), variant_of(records[0]), acc["n"], acc["mean"],
                         acc["ci_low"], acc["ci_high"], acc["interval"], *timed, *asked, cost["interval"],
                         sources[0] if sources else "", g.queried(label) or ""])
    if not rows:
        return
    header = ["label", "method", "variant", "n_acc", "test_acc_mean", "test_acc_ci_low", "test_acc_ci_high",
              "test_acc_interval", "n_cost", "search_hours_mean", "search_hours_ci_low", "search_hours_ci_high",
              "n_queries", "benchmark_queries_mean", "benchmark_queries_ci_low", "benchmark_queries_ci_high",
              "cost_interval", "test_acc_source", "queries_benchmark_column"]
    col = {name: k for k, name in enumerate(header)}
    kinds_of_device = sorted({str(r.get("device_hours_kind")).removesuffix("-hours") for recs in g.series.values()
                              for r in recs if r.get("device_hours_kind")})
    seconds = [3600 * row[k] for row in rows for k in (col["search_hours_mean"], col["search_hours_ci_low"],
                                                        col["search_hours_ci_high"]) if math.isfinite(row[k])]
    unit, length = time_unit(max(seconds)) if seconds else ("seconds", 1.0)
    # one panel per source of the test accuracy, searches that train and searches that query apart (those first)
    panels = list(dict.fromkeys((row[col["test_acc_source"]], math.isfinite(row[col["n_queries"]])) for row in rows))
    panels.sort(key=lambda panel: panel[1])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.6), squeeze=False, layout="constrained")
    shared: dict[str, Any] = {}
    for ax, (source, queried) in zip(axes[0], panels):
        if source in shared:  # one accuracy scale for the panels of one source: the points compare across them
            ax.sharey(shared[source])
        shared.setdefault(source, ax)
        mine = [row for row in rows if (row[col["test_acc_source"]], math.isfinite(row[col["n_queries"]]))
                == (source, queried)]
        first = col["benchmark_queries_mean"] if queried else col["search_hours_mean"]
        scale = 1.0 if queried else 3600 / length
        for row in mine:
            x, low, high = (scale * v for v in row[first:first + 3])
            mean, acc_low, acc_high = (row[col[k]] for k in ("test_acc_mean", "test_acc_ci_low", "test_acc_ci_high"))
            ax.errorbar(x, mean, yerr=np.array([_bounds(acc_low, mean, acc_high)]).T,
                        xerr=np.array([_bounds(low, x, high)]).T, fmt="o", capsize=4, color=f"C{rows.index(row)}",
                        label=f"{g.legend(row[0])}, n = {row[col['n_acc']]}")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        what = f"test accuracy: {source or 'as recorded (its source is not in the records)'}"
        if queried:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
            ax.xaxis.set_major_formatter(FuncFormatter(_number_text))
            ax.yaxis.set_major_formatter(FuncFormatter(_number_text))
            top = max(scale * v for row in mine for v in row[first:first + 3] if math.isfinite(v))
            ax.set_xlim(0, top * 1.25 + 1)
            ax.set_xlabel("benchmark queries per seed (nothing trained: no search time)")
            _panel_title(ax, f"searches that query the benchmark, costed in queries — {what}", len(panels))
        else:
            _time_axis(ax, [scale * v for row in mine for v in row[first:first + 3] if math.isfinite(v)])
            ax.set_xlabel(f"search time ({' / '.join(kinds_of_device) or 'device'} time, {unit})")
            beside = any(q for s, q in panels if s == source)  # a panel of queries beside: say which searches are here
            _panel_title(ax, f"searches that train, at their search time — {what}" if beside else what, len(panels))
    short, full = interval_words(kinds)
    notes = [f"Points: means over seeds; error bars: {full}. Search time: the search alone (no correlation "
             "measurement, no final training), on the trial's own device."]
    if any(queried for _, queried in panels):
        notes.append("A search that queries the benchmark in place of training is placed at its number of queries, "
                     "on an axis of its own: the look-ups take milliseconds and the benchmark keeps no training times "
                     "to give it a search time, so it is never drawn as free beside the searches that train.")
    _finish(fig, f"Test accuracy vs search cost — {g.heading}", notes)
    yield Drawn("accuracy_vs_cost", g.name, f"{g.name}: test accuracy vs search cost (error bars: {short})",
                [*g.parts, "accuracy_vs_cost"], fig, header, rows)


def _epoch_rows(series: dict[str, list[dict[str, Any]]],
                value: Callable[[dict[str, Any], dict[str, Any]], float]) -> list[list[Any]]:
    """Per series and search epoch, ``[label, epoch, n, mean, min, max]`` of the finite ``value(record, entry)``
    over the records' ``history`` entries of phase ``search`` (one value per record and epoch: its last entry)."""
    rows = []
    for label, records in series.items():
        per_epoch: dict[int, list[float]] = {}
        for record in records:
            for epoch, entry in _search_entries(record).items():
                number = value(record, entry)
                if math.isfinite(number):
                    per_epoch.setdefault(epoch, []).append(number)
        for epoch in sorted(per_epoch):
            x = np.array(per_epoch[epoch])
            rows.append([label, epoch, int(x.size), float(x.mean()), float(x.min()), float(x.max())])
    return rows


def _draw_bands(ax: Any, rows: list[list[Any]], legend: Callable[[str], str], colours: dict[str, str]) -> None:
    """Mean line and min–max band per series of ``_epoch_rows`` rows."""
    for label in dict.fromkeys(row[0] for row in rows):
        mine = [row for row in rows if row[0] == label]
        epochs = [row[1] for row in mine]
        line, = ax.plot(epochs, [row[3] for row in mine], marker="o", markersize=3, label=legend(label),
                        color=colours.get(label))
        ax.fill_between(epochs, [row[4] for row in mine], [row[5] for row in mine], color=line.get_color(),
                        alpha=0.2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=8))
    ax.yaxis.set_major_formatter(FuncFormatter(_number_text))


def _search_curves(g: _Group) -> Iterator[Drawn]:
    rows = _epoch_rows(g.series, lambda record, entry: _number(entry.get("val_acc")))
    if not rows:
        return
    colours = {label: f"C{k}" for k, label in enumerate(g.series)}
    for row in rows:
        column = g.queried(row[0])
        row.append(f"benchmark look-up: {column}" if column else f"trained on {g.dataset}")
    panels = list(dict.fromkeys(row[6] for row in rows))
    panels.sort(key=lambda source: source.startswith("benchmark"))  # what was trained first
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.6), squeeze=False, layout="constrained")
    for ax, source in zip(axes[0], panels):
        mine = [row for row in rows if row[6] == source]
        _draw_bands(ax, mine, lambda label: _wrap(label, 4.0, 8), colours)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if source.startswith("benchmark"):
            column = source.split(": ", 1)[1]
            members = [r for label in dict.fromkeys(row[0] for row in mine) for r in g.series[label]]
            ax.set_ylabel(f"{g.benchmark_name()} {column} (%)")
            ax.set_xlabel("search step (one benchmark query each)")
            _panel_title(ax, f"queries the benchmark: {g.benchmark_name()} {column}, looked up in "
                             f"{g.table_text(members)} (nothing trained, nothing measured on {g.dataset})",
                         len(panels))
        else:
            ax.set_ylabel(f"validation accuracy on {g.dataset} (%)")
            ax.set_xlabel("search epoch")
            _panel_title(ax, f"trained on {g.dataset}: measured during the search on the validation half of the "
                             "search split", len(panels))
    notes = ["Lines: means over seeds; bands: lowest to highest seed."]
    if len(panels) > 1:
        notes.append("Figures looked up in the benchmark and figures measured on the dataset are on separate axes: "
                     "they are different quantities.")
    _finish(fig, f"Validation accuracy during the search — {g.heading}", notes)
    yield Drawn("search_curves", g.name, f"{g.name}: validation accuracy during the search (mean, min–max over "
                                         "seeds)", [*g.parts, "search_curves"],
                fig, ["label", "epoch", "n", "mean", "min", "max", "source"], rows)


def _anytime(g: _Group) -> Iterator[Drawn]:
    optima: dict[int, dict[str, float]] = {}  # id(table) → table.optimum() ({} where it knows none)
    optimum: dict[str, float] = {}  # series label → the best target figure of its records' benchmarks
    columns: set[str] = set()
    incumbents: dict[int, dict[int, Any]] = {}  # id(record) → its incumbents by epoch (``_incumbents``)

    def value(record: dict[str, Any], entry: dict[str, Any]) -> float:
        table = g.table(record)
        if table is None:
            return math.nan
        if g.queried(series_label(record)):
            if id(record) not in incumbents:
                incumbents[id(record)] = _incumbents(record)
            text = incumbents[id(record)].get(entry["epoch"])
        else:
            text = entry.get("genotype")
        genotype = _parse(g.space(record), text)
        if genotype is None:
            return math.nan
        detail = record.get("arch_correlation")
        column = detail.get("target") if isinstance(detail, dict) else None
        if not isinstance(column, str):
            column = table.target_column(str(record.get("dataset")))[0]
        columns.add(column)
        if id(table) not in optima:
            optima[id(table)] = table.optimum() or {}
        best = _number(optima[id(table)].get(column))
        label = series_label(record)
        if math.isfinite(best):
            optimum[label] = max(optimum.get(label, -math.inf), best)
        return _number(table.query([genotype], column)[0])

    rows = [[*row, optimum.get(row[0], math.nan)] for row in _epoch_rows(g.series, value)]
    if not rows:
        return
    labels = list(dict.fromkeys(row[0] for row in rows))
    costs = {label: _search_costs(g.series[label], bool(g.queried(label))) for label in labels}
    on_cost = all(costs.values())  # every series has a search cost per step: one cost axis for all
    for row in rows:
        row.append(costs[row[0]].get(row[1], math.nan) if on_cost else math.nan)
    colours = {label: f"C{k}" for k, label in enumerate(g.series)}
    fig, ax = plt.subplots(figsize=(7.2, 4.8), layout="constrained")
    _draw_bands(ax, [[row[0], row[7], *row[2:6]] for row in rows] if on_cost else rows, g.legend, colours)
    if on_cost:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(_number_text))
        ax.xaxis.set_minor_formatter(NullFormatter())
    for best in sorted({row[6] for row in rows if math.isfinite(row[6])}):
        ax.axhline(best, color="black", linestyle="--", linewidth=1, label=f"the benchmark's best: {best:.2f} %")
    column_text = ", ".join(sorted(columns))
    queried = [label for label in dict.fromkeys(row[0] for row in rows) if g.queried(label)]
    if on_cost:
        ax.set_xlabel("search cost (hours, mean over seeds)")
    else:
        ax.set_xlabel("search epoch" + (" (a method that queries the benchmark: search step)" if queried else ""))
    ax.set_ylabel(f"{g.benchmark_name()} {column_text} (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    members = [r for label in dict.fromkeys(row[0] for row in rows) for r in g.series[label]]
    _panel_title(ax, f"look-ups: {g.benchmark_name()} {column_text}, {g.table_text(members)}")
    notes = ["Each epoch's genotype (the cell derived after the epoch" + ("; a method that queries the benchmark: "
             "the best candidate so far by its validation figure" if queried else "") + ") looked up in the "
             "benchmark. Lines: means over seeds; bands: lowest to highest seed."]
    if on_cost:
        notes.append("Search cost: the device time a trained search measured; a look-up: the benchmark's training "
                     "time of the network it looked up (simulated, as NAS-Bench-201 draws it).")
    elif queried:
        notes.append("On a step axis: the benchmark table has no training times to put its look-ups on a cost axis "
                     "(an official benchmark file imported with `harness nb201 import` has them).")
    _finish(fig, f"Benchmark accuracy of each search epoch's cell — {g.heading}", notes)
    yield Drawn("anytime", g.name, f"{g.name}: benchmark accuracy of the cell of each search epoch",
                [*g.parts, "anytime"], fig, ["label", "epoch", "n", "mean", "min", "max", "optimum", "cost_hours"],
                rows)


def _incumbents(record: dict[str, Any]) -> dict[int, Any]:
    """Per search epoch, the genotype of a query search's best step so far by its validation figure (``val_acc``;
    ties: the earlier; before any finite figure, the step's own): the search's incumbent there, in one pass."""
    incumbents, best, best_value = {}, None, -math.inf
    for epoch, step in sorted(_search_entries(record).items()):
        number = _number(step.get("val_acc"))
        if math.isfinite(number) and number > best_value:
            best, best_value = step.get("genotype"), number
        incumbents[epoch] = best if math.isfinite(best_value) else step.get("genotype")
    return incumbents


def _search_costs(records: list[dict[str, Any]], queried: bool) -> dict[int, float]:
    """Per search epoch, the mean over ``records`` of the search cost up to it, in hours: the measured ``seconds`` of
    a trained search's epochs, the ``simulated_seconds`` of a query search's look-ups. Empty where a record lacks a
    step's cost (a look-up in a table without training times)."""
    per_epoch: dict[int, list[float]] = {}
    for record in records:
        total = 0.0
        for epoch, entry in sorted(_search_entries(record).items()):
            cost = _number(entry.get("simulated_seconds" if queried else "seconds"))
            if not math.isfinite(cost):
                return {}
            total += cost
            per_epoch.setdefault(epoch, []).append(total / 3600)
    return {epoch: float(np.mean(values)) for epoch, values in per_epoch.items()}


def importance_shares(mean: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Each edge's importance as its share of the edge's total over its candidate ops (``mask``; None: every op),
    NaN off the candidates and on an edge without a positive total, and k, the number of candidates per edge."""
    mask = np.isfinite(mean) if mask is None else (mask & np.isfinite(mean))
    values = np.where(mask, mean, 0.0)
    totals = values.sum(axis=1, keepdims=True)
    shares = np.where(mask & (totals > 0), values / np.where(totals > 0, totals, 1.0), np.nan)
    return shares, mask.sum(axis=1)


def importance_norm(shares: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, TwoSlopeNorm, str]:
    """What the heatmap colours, its norm and the colour bar's label: the shares on a scale centred on the
    uniform share 1/k where every edge has k candidates; else the shares × k (the share relative to uniform)
    centred on 1. The scale reaches the largest deviation from the centre, and at least ``MIN_SPREAD`` × the
    centre each way (from 0 at the lowest)."""
    ks = sorted({int(n) for n in k if n > 0})
    if len(ks) == 1:
        values, centre = shares, 1.0 / ks[0]
        label = f"share of the edge's importance (%)\nwhite: uniform, 1/k = 1/{ks[0]} = {100 * centre:.1f} %"
    else:
        values, centre = shares * k[:, None], 1.0
        label = "share of the edge's importance × k\n(k = the edge's candidate ops; white: uniform, 1)"
    deviation = np.nanmax(np.abs(values - centre)) if np.isfinite(values).any() else 0.0
    spread = max(float(deviation), MIN_SPREAD * centre)
    return values, TwoSlopeNorm(vcenter=centre, vmin=max(0.0, centre - spread), vmax=centre + spread), label


def _chosen(g: _Group, records: list[dict[str, Any]], group: str, shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """How many of ``records``' genotypes chose each (edge, op) of ``group`` (``edge_choices``), and the number of
    genotypes counted; (zeros, 0) where a genotype makes no single choice per edge (its cells differ)."""
    counts = np.zeros(shape, dtype=np.int64)
    counted = 0
    for record in records:
        space = g.space(record)
        genotype = _parse(space, record.get("genotype"))
        if genotype is None:
            continue
        try:
            rows, ops = space.edge_choices([genotype])[group]
        except (ValueError, KeyError, NotImplementedError):
            return np.zeros(shape, dtype=np.int64), 0
        inside = (rows < shape[0]) & (ops < shape[1])
        np.add.at(counts, (rows[inside], ops[inside]), 1)
        counted += 1
    return counts, counted


def _importance(g: _Group) -> Iterator[Drawn]:
    for label, records in g.series.items():
        groups = dict.fromkeys(name for r in records if isinstance(r.get("importance"), dict)
                               for name in r["importance"])
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
            yield _importance_figure(g, label, records, name, mean, len(matrices))


def _importance_figure(g: _Group, label: str, records: list[dict[str, Any]], name: str, mean: np.ndarray,
                       seeds: int) -> Drawn:
    edges, ops = mean.shape
    names = _op_names(records[0], ops)
    space = g.space(records[0])
    try:
        mask = space.candidate_mask()[name] if space is not None else None
        mask = mask if mask is not None and mask.shape == mean.shape else None
    except (KeyError, NotImplementedError, ValueError):
        mask = None
    try:
        rows = space.edge_labels(name) if space is not None else None
    except (KeyError, ValueError):
        rows = None
    rows = rows if isinstance(rows, list) and len(rows) == edges else [f"edge {e}" for e in range(edges)]
    shares, k = importance_shares(mean, mask)
    values, norm, bar_label = importance_norm(shares, k)
    chosen, counted = _chosen(g, records, name, mean.shape)

    fig, ax = plt.subplots(figsize=(max(6.6, 0.62 * ops + 3.2), max(3.6, 0.36 * edges + 2.2)), layout="constrained")
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#d9d9d9")
    image = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, shrink=0.9)
    bar.set_label(bar_label, fontsize=8)
    bar.ax.yaxis.set_major_formatter(FuncFormatter(
        (lambda v, _: f"{100 * v:.3g}") if "%" in bar_label else _number_text))
    bar.ax.tick_params(labelsize=7)
    for e in range(edges):
        for o in range(ops):
            if not math.isfinite(shares[e, o]):
                continue
            dark = abs(norm(values[e, o]) - 0.5) > 0.32
            text = f"{100 * shares[e, o]:.1f}"
            if counted > 1 and 0 < chosen[e, o] < counted:
                text += f"\n{chosen[e, o]}/{counted}"
            ax.text(o, e, text, ha="center", va="center", fontsize=6.5, color="white" if dark else "black",
                    fontweight="bold" if chosen[e, o] else "normal")
            if chosen[e, o]:
                ax.add_patch(Rectangle((o - 0.46, e - 0.46), 0.92, 0.92, fill=False, edgecolor="black",
                                       linewidth=1.8))
    ax.set_xticks(range(ops), names, rotation=35, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_yticks(range(edges), rows, fontsize=8)
    ax.set_xlabel("candidate op")
    ax.set_ylabel("edge (from node → to node)")
    what = GROUP_NAMES.get(name, name)
    marked = ("boxed: the op the derived genotype chose on the edge" + (f" (n/{counted}: chosen by n of the "
              f"{counted} seeds' genotypes where they differ)" if counted > 1 else "")) if counted else \
        "the chosen ops are not marked: the genotypes make no single choice per shared edge (their cells differ)"
    _panel_title(ax, f"mean over {seeds} seed{'s' if seeds > 1 else ''}; numbers: each op's share of its edge "
                     f"(%); {marked}")
    _finish(fig, f"Operation importance of {label}, {what} — {g.heading}",
            ["Importance: the scores the method derives its genotype from (record field importance), each edge's "
             "row divided by its sum over the edge's candidate ops" + ("; grey: not a candidate of the edge"
                                                                       if mask is not None and not mask.all() else "")
             + ". The colour "
             f"scale reaches at least ±{100 * MIN_SPREAD:.0f} % of the uniform share, so that noise around uniform "
             "stays pale. Nodes numbered as in `python -m harness show`."])
    uniform = [1.0 / n if n else math.nan for n in k]
    chosen_text = [" ".join(f"{names[o]}:{chosen[e, o]}" for o in range(ops) if chosen[e, o]) for e in range(edges)]
    return Drawn("importance", g.name, f"{g.name}: operation importance of {label}, {what} (mean of {seeds} seeds)",
                 [*g.parts, "importance", label, name], fig, ["edge", "nodes", *names, "uniform", "chosen"],
                 [[e, rows[e], *(float(v) for v in mean[e]), uniform[e], chosen_text[e]] for e in range(edges)])


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


def _correlation_notes(g: _Group, labels: list[str]) -> list[str]:
    """What each correlation compares, from the records' correlation details (target column, samples)."""
    records = [r for label in labels for r in g.series[label]]
    notes = ["op-level: per sampled edge, the method's op scores against the supernet's accuracy with each op."]
    for key, field, what in (("arch_kendall_tau", "arch_correlation", "architecture-level: the method's scores of "
                                                                     "sampled architectures"),
                             ("oneshot_kendall_tau", "oneshot_correlation", "one-shot: the supernet's accuracy of "
                                                                           "sampled cells")):
        details = [r.get(field) for r in records if math.isfinite(_number(r.get(key)))]
        targets = sorted({str(d["target"]) for d in details if isinstance(d, dict) and d.get("target")})
        samples = sorted({int(d["samples"]) for d in details if isinstance(d, dict) and _number(d.get("samples")) > 0})
        if targets:
            count = f" ({' / '.join(map(str, samples))} cells)" if samples else ""
            notes.append(f"{what}{count} against {g.benchmark_name()} {', '.join(targets)}, "
                         f"{g.table_text(records)}.")
        else:  # undefined for every seed: the records say why
            why = sorted({str(d["undefined"]) for r in records if isinstance(d := r.get(field), dict)
                          and d.get("undefined")})
            if why:
                notes.append(f"{what.split(':')[0]}: not defined here ({'; '.join(why)}).")
    return notes


def _correlations(g: _Group) -> Iterator[Drawn]:
    rows = _correlation_rows(g.series)
    if not rows:
        return
    labels = list(dict.fromkeys(row[0] for row in rows))
    fig, ax = plt.subplots(figsize=(max(6.4, 1.4 * len(labels) + 3), 4.6), layout="constrained")
    for k, (key, name) in enumerate(TAUS):
        offset = (k - 1) * 0.22
        seeds = [row for row in rows if row[1] == key and row[2] == "seed"]
        means = [row for row in rows if row[1] == key and row[2] == "mean"]
        if not seeds:
            continue
        ax.scatter([labels.index(row[0]) + offset for row in seeds], [row[4] for row in seeds], color=f"C{k}",
                   alpha=0.5, s=18, label=f"{name} (seeds)")
        ax.scatter([labels.index(row[0]) + offset for row in means], [row[4] for row in means], color=f"C{k}",
                   marker="_", s=400, linewidths=2, label=f"{name} (mean)")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(labels)), [_wrap(label, 1.6, 8) for label in labels], rotation=20 if len(labels) > 3 else 0,
                  ha="right" if len(labels) > 3 else "center", fontsize=8)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_ylim(-1.08, 1.08)
    ax.set_xlabel("series")
    ax.set_ylabel("Kendall τ (−1 to 1)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _finish(fig, f"Ranking correlations (Kendall τ) — {g.heading}", _correlation_notes(g, labels))
    yield Drawn("correlations", g.name, f"{g.name}: ranking correlations (Kendall τ)", [*g.parts, "correlations"],
                fig, ["label", "metric", "kind", "seed", "value"], rows)


# --- cells -------------------------------------------------------------------------------------------------

_TEXT = TextToPath()


def text_size(text: str, size: float) -> tuple[float, float]:
    """Width and height in inches of ``text`` (lines separated by ``\\n``) at ``size`` points, as drawn in the
    default font."""
    prop = FontProperties(size=size)
    widths, height = [], 0.0
    for line in str(text).split("\n"):
        w, h, _ = _TEXT.get_text_width_height_descent(line or " ", prop, ismath=False)
        widths.append(w)
        height += h * 1.2
    return max(widths) / 72, height / 72


def node_text(label: str) -> str:
    """A node's label as drawn: ``"0 (c_{k-2})"`` in two lines, the number over the name."""
    number, _, name = str(label).partition(" (")
    return f"{number}\n{name[:-1]}" if name.endswith(")") else str(label)


@dataclass
class CellLayout:
    """Where ``draw_cell`` draws a graph, in inches: node centres (``nodes``) and their ``radius``; per edge
    (in the graph's order) its ``(source, target, op)``, the control points ``(p0, p1, p2)`` of the quadratic
    Bézier it follows from centre to centre (a straight edge has p1 halfway), and where its op name goes
    (``(x, y, ha)``; None for a ``concat`` edge, drawn grey without a name); and the drawing's extent
    ``(x0, y0, x1, y1)``, names and nodes included."""

    nodes: dict[str, tuple[float, float]]
    radius: float
    edges: list[tuple[str, str, str]]
    curves: list[tuple[tuple[float, float], tuple[float, float], tuple[float, float]]]
    labels: list[tuple[float, float, str] | None]
    extent: tuple[float, float, float, float]


def _order(edges: list[tuple[str, str, str]]) -> list[str]:
    """The nodes in a topological order (an edge back into the order, from a cycle, is kept as it is) that among
    the nodes ready at a step takes the lowest number first (``2'`` before ``2``), nodes without a number last."""
    nodes = list(dict.fromkeys(n for source, target, _ in edges for n in (source, target)))
    first = {n: k for k, n in enumerate(nodes)}

    def key(node: str) -> tuple[float, int, int]:
        match = re.match(r"(\d+)('?)", node)
        return (int(match.group(1)), 0 if match.group(2) else 1, first[node]) if match else (math.inf, 0, first[node])

    inputs = {n: {s for s, t, _ in edges if t == n and s != n} for n in nodes}
    order: list[str] = []
    while len(order) < len(nodes):
        placed = set(order)
        ready = [n for n in nodes if n not in placed and inputs[n] <= placed]
        order.append(min(ready or [n for n in nodes if n not in placed], key=key))
    return order


def _is_chain(edges: list[tuple[str, str, str]], order: list[str]) -> bool:
    return len(edges) == len(order) - 1 and all(edges[k][:2] == (order[k], order[k + 1]) for k in range(len(edges)))


def cell_layout(edges: list[tuple[str, str, str]]) -> CellLayout:
    """Place a graph for drawing (see ``CellLayout``): the nodes on a line in topological order (``_order``), every
    named edge an arc above the line and every ``concat`` edge one below it, an arc over s positions rising s
    levels (a ``concat`` arc √s levels of its own). A level is higher than a node's radius plus half a name's
    height, and than a name's height, so that no name covers a node or a name at another level; the positions are
    wider apart than any name, so that names of one level do not meet; an arc over s ≥ 2 positions passes the
    nodes between its ends at least 4(s − 1)/s ≥ 2 levels up (a ``concat`` arc 4(s − 1)/s^1.5 ≥ 1.4 of its levels,
    each higher than a node's radius), so that no edge meets a node. A chain of more than ``CHAIN_ROW`` nodes
    snakes over rows instead, its edges straight and named beside them."""
    order = _order(edges)
    radius = max([0.17] + [max(text_size(node_text(n), NODE_SIZE)) / 2 + 0.05 for n in order])
    sizes = [text_size(op, OP_SIZE) for _, _, op in edges if op != "concat"] or [(0.0, 0.0)]
    name_w, name_h = max(w for w, _ in sizes) + 0.12, max(h for _, h in sizes) + 0.06
    if _is_chain(edges, order) and len(order) > CHAIN_ROW:
        return _chain_layout(edges, order, radius, name_w, name_h)
    step = max(2 * radius + 0.3, name_w + 0.12)
    level = max(radius + name_h / 2 + 0.1, name_h + 0.1)
    low_level = radius + 0.1
    index = {n: k for k, n in enumerate(order)}
    nodes = {n: (index[n] * step, 0.0) for n in order}
    curves, labels, taken = [], [], set()
    for source, target, op in edges:
        a, b = index[source], index[target]
        named = op != "concat"
        span = max(1, abs(b - a))
        height = level * span if named else low_level * math.sqrt(span)  # unnamed: nothing to keep apart
        while named and (min(a, b), max(a, b), round(height, 6)) in taken:  # the same pair twice: a level up
            height += level
        taken.add((min(a, b), max(a, b), round(height, 6)))
        sign = 1.0 if named else -1.0
        (x0, _), (x2, _) = nodes[source], nodes[target]
        curves.append(((x0, 0.0), ((x0 + x2) / 2, sign * 2 * height), (x2, 0.0)))  # the top: halfway to p1
        labels.append(((x0 + x2) / 2, sign * height, "center") if named else None)
    tops = [y for _, (_, y), _ in curves if y > 0]
    bottoms = [y for _, (_, y), _ in curves if y < 0]
    extent = (-radius - 0.15, min([-radius] + [y / 2 for y in bottoms]) - 0.15,
              (len(order) - 1) * step + radius + 0.15, max([radius] + [y / 2 + name_h / 2 for y in tops]) + 0.12)
    return CellLayout(nodes, radius, list(edges), curves, labels, extent)


def _chain_layout(edges: list[tuple[str, str, str]], order: list[str], radius: float, name_w: float,
                  name_h: float) -> CellLayout:
    step = 2 * radius + name_w + 0.12
    rise = 2 * radius + max(name_h + 0.35, 0.5)
    nodes = {}
    for k, node in enumerate(order):
        row, col = divmod(k, CHAIN_ROW)
        col = col if row % 2 == 0 else CHAIN_ROW - 1 - col
        nodes[node] = (col * step, -row * rise)
    curves, labels = [], []
    for source, target, _ in edges:
        (x0, y0), (x2, y2) = nodes[source], nodes[target]
        curves.append(((x0, y0), ((x0 + x2) / 2, (y0 + y2) / 2), (x2, y2)))
        if y0 == y2:  # along a row: the name above the edge
            labels.append(((x0 + x2) / 2, y0 + name_h / 2 + 0.05, "center"))
        elif x0 > 0:  # down at the right end: the name to the right
            labels.append((x0 + 0.08, (y0 + y2) / 2, "left"))
        else:  # down at the left end: the name to the left
            labels.append((x0 - 0.08, (y0 + y2) / 2, "right"))
    xs, ys = [x for x, _ in nodes.values()], [y for _, y in nodes.values()]
    extent = (min(xs) - radius - name_w - 0.1, min(ys) - radius - 0.15, max(xs) + radius + name_w + 0.1,
              max(ys) + radius + name_h + 0.1)
    return CellLayout(nodes, radius, list(edges), curves, labels, extent)


def _bezier(p0: tuple[float, float], p1: tuple[float, float], p2: tuple[float, float], t: float) -> np.ndarray:
    p0a, p1a, p2a = np.array(p0), np.array(p1), np.array(p2)
    return (1 - t) ** 2 * p0a + 2 * (1 - t) * t * p1a + t ** 2 * p2a


def curve_points(curve: tuple[tuple[float, float], ...], samples: int = 200) -> np.ndarray:
    """``samples`` points along a ``CellLayout`` curve, from its source's centre to its target's."""
    return np.array([_bezier(*curve, t) for t in np.linspace(0.0, 1.0, samples)])


def _clipped(curve: tuple[tuple[float, float], ...], centre0: tuple[float, float], centre2: tuple[float, float],
             gap: float) -> list[tuple[float, float]]:
    """The control points of the piece of ``curve`` outside the circles of radius ``gap`` around its ends."""

    def leave(centre: tuple[float, float], lo: float, hi: float, outward: bool) -> float:
        for _ in range(40):  # bisection on the distance from the end's centre (monotone near the end)
            mid = (lo + hi) / 2
            inside = np.hypot(*(_bezier(*curve, mid) - np.array(centre))) < gap
            lo, hi = (mid, hi) if inside == outward else (lo, mid)
        return (lo + hi) / 2

    t0, t1 = leave(centre0, 0.0, 0.5, True), leave(centre2, 0.5, 1.0, False)
    p = [np.array(c) for c in curve]

    def blossom(a: float, b: float) -> tuple[float, float]:
        point = (1 - a) * (1 - b) * p[0] + ((1 - a) * b + a * (1 - b)) * p[1] + a * b * p[2]
        return float(point[0]), float(point[1])

    return [blossom(t0, t0), blossom(t0, t1), blossom(t1, t1)]


def draw_cell(ax: Any, layout: CellLayout, title: str) -> None:
    """Draw ``layout`` on ``ax`` (whose data units must be inches, equal in x and y): a circle per node (inputs
    orange, outputs green), an arrow per edge (``concat`` edges grey), op names on white boxes."""
    targets = {t for _, t, _ in layout.edges}
    sources = {s for s, _, _ in layout.edges}
    for node, (x, y) in layout.nodes.items():
        colour = "#fde4c4" if node not in targets else "#d5efd0" if node not in sources else "#dbe9f6"
        ax.add_patch(Circle((x, y), layout.radius, facecolor=colour, edgecolor="black", linewidth=1, zorder=3))
        ax.text(x, y, node_text(node), ha="center", va="center", fontsize=NODE_SIZE, zorder=4, linespacing=1.0)
    for (source, target, op), curve, label in zip(layout.edges, layout.curves, layout.labels):
        points = _clipped(curve, layout.nodes[source], layout.nodes[target], layout.radius + 0.02)
        path = CurvePath(points, [CurvePath.MOVETO, CurvePath.CURVE3, CurvePath.CURVE3])
        grey = op == "concat"
        ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=9, linewidth=1.0, zorder=2,
                                     color="#9a9a9a" if grey else "black"))
        if label is not None:
            x, y, ha = label
            ax.text(x, y, op, ha=ha, va="center", fontsize=OP_SIZE, zorder=5,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "#bbbbbb",
                          "linewidth": 0.5})
    x0, y0, x1, y1 = layout.extent
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title, fontsize=PANEL_SIZE + 0.5, loc="left")


def _best_record(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The record with the highest finite test accuracy (equal ones: the lowest seed), or None."""
    scored = [r for r in records if math.isfinite(_number(r.get("test_acc")))]
    return max(scored, key=lambda r: (_number(r.get("test_acc")), -_number(r.get("seed")))) if scored else None


def cells_figure(graphs: dict[str, list[tuple[str, str, str]]], title: str, notes: list[str]) -> Any:
    """A figure of ``graphs`` (name → edges), one panel under the other, each at 1 inch per layout unit."""
    layouts = {name: cell_layout(edges) for name, edges in graphs.items()}
    widths = [lay.extent[2] - lay.extent[0] for lay in layouts.values()]
    heights = [lay.extent[3] - lay.extent[1] for lay in layouts.values()]
    margin, head = 0.25, 0.35  # inches beside a panel and above it (its title)
    width = max(6.0, max(widths) + 2 * margin)
    title_text = _wrap(title, width, TITLE_SIZE)
    top = 0.15 + 0.2 * (title_text.count("\n") + 1)
    height = top + sum(h + head for h in heights) + 0.1
    fig = plt.figure(figsize=(width, height))
    fig.suptitle(title_text, fontsize=TITLE_SIZE, y=1 - 0.12 / height, va="top")
    y = height - top
    for (name, lay), w, h in zip(layouts.items(), widths, heights):
        y -= head + h
        ax = fig.add_axes(((width - w) / 2 / width, y / height, w / width, h / height))  # centred
        draw_cell(ax, lay, CELL_NAMES.get(name, name))
    if notes:
        fig.text(0.01, 0.0, "\n".join(_wrap(note, width - 0.2, NOTE_SIZE) for note in notes), fontsize=NOTE_SIZE,
                 color="#333333", ha="left", va="top")
    return fig


def _cells(g: _Group) -> Iterator[Drawn]:
    for label, records in g.series.items():
        best = _best_record(records)
        if best is None:
            continue
        space = g.space(best)
        genotype = _parse(space, best.get("genotype"))
        graphs = space.cell_graphs(genotype) if genotype is not None else None
        graphs = {name: edges for name, edges in (graphs or {}).items() if edges}
        if not graphs:
            continue
        seed, acc = best.get("seed"), _number(best.get("test_acc"))
        notes = ["Nodes numbered as in `python -m harness show` (the genotype's sources); orange: inputs, green: "
                 "output; arrows carry the op" + ("; grey arrows below: concatenation into the cell's output."
                                                  if any(op == "concat" for e in graphs.values() for *_, op in e)
                                                  else ".")]
        if best.get("test_acc_source"):
            notes.append(f"Test accuracy: {best['test_acc_source']}.")
        fig = cells_figure(graphs, f"Cells derived by {g.legend(label)}, seed {seed} (the best test accuracy of "
                                   f"the series: {acc:.2f} %) — {g.heading}", notes)
        yield Drawn("cells", g.name, f"{g.name}: cells derived by {label} (seed {seed}, test accuracy {acc:.2f} %)",
                    [*g.parts, "cells", label], fig, ["seed", "cell", "source", "target", "op"],
                    [[seed, name, *edge] for name, edges in graphs.items() for edge in edges])


PLOTS: tuple[Callable[[_Group], Iterator[Drawn]], ...] = (
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


def figures(records: list[dict[str, Any]], tables: dict[str, Any] | None = None) -> Iterator[Drawn]:
    """Every plot of ``KINDS`` that has data, per (space, dataset, budget) group of ``records`` (groups sorted,
    then by kind), drawn and not saved: the caller closes each figure (``write_plots`` saves them). ``tables``:
    the cache of ``harness.core.provenance.record_benchmark``."""
    tables = {} if tables is None else tables
    with plt.rc_context(TEXT_ONLY):
        for key, members in _groups(records):
            group = _Group(key, members, tables)
            for plot in PLOTS:
                yield from plot(group)


def write_plots(records: list[dict[str, Any]], out: Path, tables: dict[str, Any] | None = None) -> list[PlotFile]:
    """Write every plot of ``KINDS`` that has data, per (space, dataset, budget) group of ``records``, into
    folder ``out`` (created when missing) as PDF, PNG and CSV; returns the written plots in order (groups sorted,
    then by kind). ``tables``: the cache of ``harness.core.provenance.record_benchmark`` (shared with the report's
    leaderboard, so a table that is not here is said once)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    writer = _Writer(out)
    drawn = figures(records, tables)
    try:
        with plt.rc_context(TEXT_ONLY):
            for item in drawn:
                writer.save(item)
    finally:
        drawn.close()
    return writer.files
