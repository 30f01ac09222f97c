"""Leaderboards derived from trial records: never edited by hand, regenerable at any time.

One row per (method, space, dataset, budget, variant), where the variant is the set of ``--set``
overrides: a tuned DARTS is a different entry from paper-default DARTS and must not be averaged with it.

Each row is compared with the baseline row (``BASELINE_METHOD`` without overrides) of its space, dataset and
budget on test accuracy, paired by seed (``harness.core.stats.paired_comparison``): the number of common seeds, the
Wilcoxon signed-rank and paired t-test p-values, the Wilcoxon p-value Holm-adjusted over the group's
non-baseline rows (``harness.core.stats.holm``), the smallest value each of those two p-values can take with that
many seeds, Cohen's d_z and the share of the common seeds the row wins.

Every row says where its figures come from (``test_source``: "<benchmark> CIFAR-10 test, 200 epochs, look-up" or
"digits test, network trained 4 epochs"; ``search_source``), and a search that queries the space's benchmark in place
of training (``SearchMethod.benchmark_queries``: random search on a benchmark space) has its queries as its cost
(``harness.core.provenance``, which ``show`` and the plots read too).

The views: the terminal leaderboard (``leaderboard_view``: laid out for the width, never a number or a name cut,
the columns that do not fit in further tables), the Markdown page (``markdown_leaderboard``: one short table per
space, dataset and budget, the full table being the CSV) and the LaTeX tables (``latex_leaderboard``: booktabs).
"""

from __future__ import annotations

import difflib
import html
import io
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich import box
from rich.console import Console, Group, RenderableType
from rich.constrain import Constrain
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from harness.console import layout_width
from harness.core.config import BASELINE_METHOD
from harness.core.errors import UserError
from harness.core.metric_table import METRICS, NULL, board_metrics, metric
from harness.core.provenance import benchmark_queries, count_text, record_benchmark, search_source
from harness.core.published import PAPER_BUDGET, SEARCH_UNITS, budget_note, figure_text, match
from harness.core.records import atomic_write_many
from harness.core.stats import (  # duration_text: the one formatter of times, shared by every view
    MIN_IQM_VALUES,
    SIGNIFICANCE,
    duration_text,
    finite,
    holm,
    holm_floor,
    is_number,
    paired_comparison,
    summary,
)
from harness.core.storage import Remote, location

GROUP_KEYS = ["method", "space", "dataset", "budget", "variant"]
RANKED_BY = "test_acc"  # rows are ranked by its mean and compared with the baseline's by seed
# The metrics with columns of their own, in column order; every other numeric record key gets <key>_mean.
BOARD_METRICS = board_metrics(RANKED_BY)
# The paired comparison with the baseline row (test accuracy, by seed); the order of the columns. ``*_min``: the
# smallest value the p-value can take with the row's common seeds (``harness.core.stats.min_attainable_p``).
COMPARISON_COLUMNS = ["baseline", "n_common_seeds", "p_wilcoxon", "p_wilcoxon_min", "p_ttest", "p_holm",
                      "p_holm_min", "effect_size", "seeds_won_share", "comparison_note"]
# Where the row's figures come from: the test accuracy's source, how the search saw the data, and the number of
# benchmark queries of a search that queries a benchmark in place of training (NaN for one that trains).
PROVENANCE_COLUMNS = ["test_source", "search_source", "search_queries_mean"]


def metric_columns(m: Any) -> list[str]:
    """The leaderboard's columns of metric ``m``: its ``board_columns``, with ``<stem>_interval`` (what the interval is:
    ``harness.core.stats.interval_kind``) after its interval's bounds."""
    columns = list(m.board_columns)
    if "ci_high" in m.extra_stats:
        columns.insert(columns.index(m.stat_column("ci_high")) + 1, f"{m.stem}_interval")
    return columns


BASE_COLUMNS = (GROUP_KEYS + ["n_seeds", "seeds"] + PROVENANCE_COLUMNS
                + [c for m in BOARD_METRICS for c in metric_columns(m)] + COMPARISON_COLUMNS + ["rank"])
# What the papers report for the row (``harness.core.published``; empty where they report nothing): the test
# accuracy (100 − a published test error) as an average or single figure with its std, and as a best; which of those
# the figure is (``published_statistic``: "mean of 3 runs", "one figure"); the row's mean minus it
# (``published_diff``) and whether it lies inside the row's interval of the mean (``published_inside``); the final
# network's parameters; the search cost in hours and as printed ("1.5 GPU-days"); the paper's budget in words, the
# source (paper and table) and what else a reader must know (the error it was converted from, the paper's own note,
# and whether the row's budget is the papers').
PUBLISHED_COLUMNS = ["published_test_acc_mean", "published_test_acc_std", "published_test_acc_best",
                     "published_statistic", "published_diff", "published_inside", "published_params_m",
                     "published_search_hours", "published_search_cost", "published_budget", "published_source",
                     "published_note"]
_PUBLISHED_TEXT = ("published_statistic", "published_search_cost", "published_budget", "published_source",
                   "published_note")
# Record keys already summarised by BASE_COLUMNS (or not metrics).
_SUMMARISED = {"seed"} | {m.key for m in BOARD_METRICS}
# The end of a looked-up record's ``test_acc_source`` (``harness.trial.finish_by_lookup``): the table column.
_LOOKUP_SOURCE = re.compile(r"\(table column ([A-Za-z0-9_]+)\)$")
_RANK_COLUMN = metric(RANKED_BY).stat_column("mean")
REFERENCE_METHOD = "optimum"


def _num(value: Any) -> float:
    return float(value) if is_number(value) else float("nan")


def variant_of(record: dict[str, Any]) -> str:
    """The record's overrides as sorted ``k=v`` joined by ``,`` (``""`` for paper/budget defaults)."""
    overrides = record.get("overrides") or {}
    parts = []
    for key in sorted(overrides):
        value = overrides[key]
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
        parts.append(f"{key}={text}")
    return ",".join(parts)


def _finished_at(record: dict[str, Any]) -> float:
    """Sortable finish time; records without a readable one count as oldest."""
    text = record.get("finished_at")
    if not isinstance(text, str):
        return float("-inf")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return float("-inf")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


# Each statistic over the finite values of the seeds; NaN where undefined (no value; std of one value).
_STATISTICS: dict[str, Any] = {
    "mean": lambda x: float(x.mean()) if x.size else float("nan"),
    "std": lambda x: float(np.std(x, ddof=1)) if x.size > 1 else float("nan"),
    "median": lambda x: float(np.median(x)) if x.size else float("nan"),
    "best": lambda x: float(x.max()) if x.size else float("nan"),
}


def _statistic(stat: str, values: Iterable[float]) -> float:
    return _STATISTICS[stat](finite(values))


def _flatten_numbers(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten_numbers(value, f"{prefix}{key}_"))
        elif is_number(value):
            out[f"{prefix}{key}"] = float(value)
    return out


def _comparison(key: tuple[str, ...], by_seed: dict[tuple[str, ...], dict[Any, float]],
                baseline: str) -> dict[str, Any]:
    """The paired-comparison columns of group ``key`` (all but ``p_holm``) against the ``baseline`` group
    without overrides in the same space, dataset and budget. The baseline row itself: NaN statistics, no
    common-seed count, an empty note; a row whose space, dataset and budget have no baseline row: NaN
    statistics, 0 common seeds and a note that says so."""
    nan = float("nan")
    base = (baseline, *key[1:4], "")
    row: dict[str, Any] = {"baseline": baseline, "n_common_seeds": pd.NA, "p_wilcoxon": nan, "p_wilcoxon_min": nan,
                           "p_ttest": nan, "effect_size": nan, "seeds_won_share": nan, "comparison_note": ""}
    if key == base:
        return row
    if base not in by_seed:
        row.update(n_common_seeds=0, comparison_note=f"no {baseline} row without overrides to compare with")
        return row
    result = paired_comparison(by_seed[key], by_seed[base])
    row.update(n_common_seeds=result["n_common"], p_wilcoxon=result["p_wilcoxon"],
               p_wilcoxon_min=result["p_wilcoxon_min"], p_ttest=result["p_ttest"], effect_size=result["effect_size"],
               seeds_won_share=result["won_share"], comparison_note=result["note"])
    return row


def _dedupe(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per seed, the newest by ``finished_at`` (a re-run replaces, it does not add a seed)."""
    newest: dict[Any, dict[str, Any]] = {}
    for record in records:  # later wins ties: load order is path order
        seed = record.get("seed")
        if seed not in newest or _finished_at(record) >= _finished_at(newest[seed]):
            newest[seed] = record
    return [newest[s] for s in sorted(newest, key=lambda s: (not is_number(s), s if is_number(s) else str(s)))]


def test_source(record: dict[str, Any], tables: dict[str, Any]) -> str:
    """Where the record's test accuracy comes from, in a few words: a benchmark's figure looked up ("<benchmark>
    CIFAR-10 test, 200 epochs, look-up": the table column the trial names in ``test_acc_source``, labelled by the
    table, ``Benchmark.figure_label``), or the trained network's test accuracy on the search dataset ("digits
    test, network trained 4 epochs": the configuration's ``eval_epochs``); the record's own ``test_acc_source``
    where neither can be said (its table is not on this machine; an old record), else ``""``."""
    text = record.get("test_acc_source") if isinstance(record.get("test_acc_source"), str) else ""
    found = _LOOKUP_SOURCE.search(text)
    if found:
        table = record_benchmark(record, tables)
        return f"{table.figure_label(found.group(1))}, look-up" if table is not None else text
    epochs = (record.get("config") if isinstance(record.get("config"), dict) else {}).get("eval_epochs")
    if is_number(epochs):
        return f"{record.get('dataset')} test, network trained {int(epochs)} epochs"
    return text


def reference_rows(records: list[dict[str, Any]], tables: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """For every (space, dataset, budget) whose records looked their cells up in a benchmark table, the
    table's optimum as a reference row (method ``optimum``, no seeds, no rank): every benchmark column's
    best over all architectures — the "Optimal" row of AGNAS's Table 3 — and as test accuracy the best
    of the column that stands for the dataset. Tables come from ``record_benchmark`` (``tables``: its cache)."""
    tables = {} if tables is None else tables
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in records:
        key = tuple(str(record.get(k, "")) for k in ("space", "dataset", "budget"))
        if key in rows:
            continue
        table = record_benchmark(record, tables)  # the record's own table
        if table is None:
            continue
        optimum = table.optimum()
        if optimum is None:  # a benchmark that does not know its best (a surrogate): no reference row
            continue
        column, _ = table.target_column(str(record.get("dataset")))
        row: dict[str, Any] = {"method": REFERENCE_METHOD, "space": key[0], "dataset": key[1], "budget": key[2],
                               "variant": "", "n_seeds": 0, "seeds": "",
                               "test_source": f"{table.figure_label(column)}, the best cell of the table",
                               "search_source": "",
                               _RANK_COLUMN: optimum.get(column, float("nan")),
                               metric(RANKED_BY).stat_column("best"): optimum.get(column, float("nan"))}
        row.update({f"benchmark_{k}_mean": v for k, v in optimum.items()})
        rows[key] = row
    return list(rows.values())


def _numeric_keys(records: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The record keys averaged in the trailing ``<key>_mean`` columns (numeric, not a board metric, not
    private) and the flattened ``benchmark`` keys, each sorted."""
    extra_keys = sorted({
        key for record in records for key, value in record.items()
        if is_number(value) and key not in _SUMMARISED and not key.startswith("_")
    })
    bench_keys = sorted({
        key for record in records if isinstance(record.get("benchmark"), dict)
        for key in _flatten_numbers(record["benchmark"])
    })
    return extra_keys, bench_keys


def _distinct(texts: Iterable[str]) -> str:
    """The distinct non-empty ``texts`` in first-seen order, joined by " / " (a group's seeds share one source)."""
    return " / ".join(dict.fromkeys(t for t in texts if t))


def _group_row(key: tuple[str, ...], group: list[dict[str, Any]], extra_keys: list[str],
               bench_keys: list[str], tables: dict[str, Any]) -> dict[str, Any]:
    """One leaderboard row of one group's records (one per seed): every column but the comparison with the
    baseline and rank (``tables``: the cache of ``record_benchmark``)."""
    row: dict[str, Any] = dict(zip(GROUP_KEYS, key))
    row["n_seeds"] = len(group)
    row["seeds"] = ",".join(str(r.get("seed")) for r in group)
    row["test_source"] = _distinct(test_source(r, tables) for r in group)
    row["search_source"] = _distinct(search_source(r, tables) for r in group)
    queries = [benchmark_queries(r) for r in group]
    row["search_queries_mean"] = _statistic("mean", (q for q in queries if q is not None))
    for m in BOARD_METRICS:
        values = [_num(r.get(m.key)) for r in group]
        for stat in m.stats:
            row[m.stat_column(stat)] = _statistic(stat, values) / m.divisor
        if m.extra_stats:
            extra = summary(values)  # the seeded bootstrap: the same records give the same interval
            for stat in m.extra_stats:
                row[m.stat_column(stat)] = extra[stat] / m.divisor
            if "ci_high" in m.extra_stats:
                row[f"{m.stem}_interval"] = extra["interval"]
        if m.unit_key:
            row[m.unit_key] = "/".join(sorted({str(r[m.unit_key]) for r in group if r.get(m.unit_key)}))
    for extra in extra_keys:
        row[f"{extra}_mean"] = _statistic("mean", (_num(r.get(extra)) for r in group))
    bench = [_flatten_numbers(r["benchmark"]) if isinstance(r.get("benchmark"), dict) else {} for r in group]
    for bkey in bench_keys:
        for stat in ("mean", "std"):
            row[f"benchmark_{bkey}_{stat}"] = _statistic(stat, (b.get(bkey, float("nan")) for b in bench))
    return row


def _holm_adjust(keys: list[tuple[str, ...]], rows: list[dict[str, Any]], baseline: str) -> None:
    """``p_holm`` of every row: ``p_wilcoxon`` Holm-adjusted over the compared rows of each space, dataset and
    budget (NaN p-values do not count), and ``p_holm_min``, the smallest value it can take there
    (``harness.core.stats.holm_floor``); NaN for the baseline's own rows."""
    families: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for key, row in zip(keys, rows):
        if key != (baseline, *key[1:4], ""):
            families.setdefault(key[1:4], []).append(row)
        row["p_holm"] = row["p_holm_min"] = float("nan")
    for family in families.values():
        pvalues = [r["p_wilcoxon"] for r in family]
        floors = holm_floor([m if math.isfinite(p) else float("nan") for p, m in
                             zip(pvalues, (r["p_wilcoxon_min"] for r in family))])
        for row, adjusted, floor in zip(family, holm(pvalues), floors):
            row["p_holm"], row["p_holm_min"] = adjusted, floor


def _with_reference_rows(df: pd.DataFrame, records: list[dict[str, Any]], tables: dict[str, Any] | None
                         ) -> pd.DataFrame:
    """``df`` with the benchmark optimum rows of ``reference_rows`` added (unranked, not compared)."""
    extra = pd.DataFrame(reference_rows(records, tables)).reindex(columns=df.columns)
    if not len(extra):
        return df
    extra[["baseline", "comparison_note"]] = ""  # not compared
    extra[[c for c in df.columns if c.endswith("_interval")]] = ""  # no seeds, no interval
    extra = extra.astype({c: df[c].dtype for c in ("n_seeds", "n_common_seeds", "rank")})
    return pd.concat([df, extra], ignore_index=True)


def shared_config(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The configuration values every one of ``records`` has (a record without a ``config`` object has none): what
    a published row's variant is checked against."""
    configs = [r.get("config") if isinstance(r.get("config"), dict) else {} for r in records]
    if not configs:
        return {}
    return {k: v for k, v in configs[0].items() if all(k in c and c[k] == v for c in configs[1:])}


def published_columns(row: dict[str, Any] | pd.Series, config: dict[str, Any]) -> dict[str, Any]:
    """``PUBLISHED_COLUMNS`` of a leaderboard row whose records share ``config``: the papers' figures that stand
    beside it (``harness.core.published.match``), the difference of the row's mean test accuracy from the published
    one and whether that lies inside the row's interval of the mean. NaN, NA and "" where the papers give nothing
    (never a zero)."""
    out: dict[str, Any] = {c: "" if c in _PUBLISHED_TEXT else float("nan") for c in PUBLISHED_COLUMNS}
    out["published_inside"] = pd.NA
    found = match(str(row["method"]), str(row["space"]), str(row["dataset"]), config)
    if found is None:
        return out
    main = found.test_acc_row
    if found.figure is not None:
        mean, std = found.figure.as_test_acc()
        out.update(published_test_acc_mean=mean, published_test_acc_std=float("nan") if std is None else std,
                   published_statistic=found.figure.statistic_text())
        measured, low, high = (row.get(c) for c in (_RANK_COLUMN, "test_acc_ci_low", "test_acc_ci_high"))
        if _finite(measured):
            out["published_diff"] = float(measured) - mean
        if _finite(low) and _finite(high):
            out["published_inside"] = bool(float(low) <= mean <= float(high))
    if found.best is not None:
        out["published_test_acc_best"] = found.best.as_test_acc()[0]
    if found.params is not None:
        out["published_params_m"] = found.params.mean
    if found.search is not None:
        out["published_search_hours"] = found.search.search_hours()
        out["published_search_cost"] = f"{found.search.text()} {SEARCH_UNITS[found.search.metric]}"
    roles = {id(found.best): "best", id(found.params): "params", id(found.search): "search cost"}
    sources = {main.source: ""}
    for other in found.rows():
        sources.setdefault(other.source, roles.get(id(other), ""))
    out["published_budget"] = main.budget
    out["published_source"] = "; ".join(f"{s} ({role})" if role else s for s, role in sources.items())
    notes = []
    if main.metric != "test_acc":
        notes.append(f"{main.name}: {main.metric.replace('_', ' ')} {main.text()} % as printed, as test accuracy "
                     "100 − error")
    notes += [r.note for r in dict.fromkeys((main, *found.rows())) if r.note]
    if _finite(row.get("n_seeds")) and int(row["n_seeds"]) > 0:  # a measured row, not the benchmark's optimum
        notes.append(budget_note(str(row["budget"])))
    out["published_note"] = "; ".join(dict.fromkeys(n for n in notes if n))
    return out


def _with_published(df: pd.DataFrame, configs: dict[tuple[str, ...], dict[str, Any]]) -> pd.DataFrame:
    """``df`` with ``PUBLISHED_COLUMNS`` (``published_columns``; ``configs``: each group's ``shared_config``)."""
    rows = [published_columns(row, configs.get(tuple(str(row[k]) for k in GROUP_KEYS), {}))
            for _, row in df.iterrows()]
    published = pd.DataFrame(rows, index=df.index, columns=PUBLISHED_COLUMNS)
    published["published_inside"] = published["published_inside"].astype("boolean")
    return pd.concat([df, published], axis=1)


def build_leaderboard(records: list[dict[str, Any]], reference: bool = False,
                      baseline: str = BASELINE_METHOD, tables: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per (method, space, dataset, budget, variant): seeds, the statistics over seeds of every
    metric the metric table gives leaderboard columns, the comparison of the ranked metric (test accuracy)
    with the ``baseline`` method's row without overrides in the same space, dataset and budget (``COMPARISON_COLUMNS``:
    paired by seed, ``harness.core.stats.paired_comparison``; ``p_holm`` is ``p_wilcoxon`` Holm-adjusted over the
    non-baseline rows of the same space, dataset and budget), and rank; columns in ``BASE_COLUMNS`` order, the papers'
    figures beside them (``PUBLISHED_COLUMNS``), then ``<key>_mean`` for every other numeric record key and
    ``benchmark_<k>_mean/_std``.
    ``reference`` adds the benchmark optimum rows of ``reference_rows`` (unranked, not compared; ``tables``: the
    cache of ``record_benchmark``).
    """
    extra_keys, bench_keys = _numeric_keys(records)
    columns = (BASE_COLUMNS + PUBLISHED_COLUMNS + [f"{k}_mean" for k in extra_keys]
               + [f"benchmark_{k}_{s}" for k in bench_keys for s in ("mean", "std")])
    if not records:
        return pd.DataFrame(columns=columns)

    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for record in records:
        key = tuple(str(record.get(k, "")) for k in GROUP_KEYS[:-1]) + (variant_of(record),)
        groups.setdefault(key, []).append(record)
    groups = {key: _dedupe(group) for key, group in groups.items()}
    by_seed = {key: {r.get("seed"): _num(r.get(RANKED_BY)) for r in group} for key, group in groups.items()}

    tables = {} if tables is None else tables
    rows = []
    for key, group in groups.items():
        row = _group_row(key, group, extra_keys, bench_keys, tables)
        row.update(_comparison(key, by_seed, baseline))
        rows.append(row)
    _holm_adjust(list(groups), rows, baseline)

    df = pd.DataFrame(rows)
    df["n_common_seeds"] = df["n_common_seeds"].astype("Int64")
    df["rank"] = (df.groupby(["space", "dataset", "budget"])[_RANK_COLUMN]
                  .rank(method="min", ascending=False).astype("Int64"))
    if reference:
        df = _with_reference_rows(df, records, tables)
    df = _with_published(df, {key: shared_config(group) for key, group in groups.items()})
    df = df.sort_values(["space", "dataset", "budget", "rank", "method", "variant"], na_position="last")
    return df[columns].reset_index(drop=True)


# --- text of numbers ----------------------------------------------------------------------------
_COLUMN_DIGITS = {m.stat_column(stat): m.board_digits for m in BOARD_METRICS for stat in m.stats + m.extra_stats}


def _digits(column: str) -> int:
    """Decimals of a column: the metric table's for a metric's columns; for the others, 3 for
    correlations and p-values (they need 3 to be told apart) and 2 for everything else."""
    if column in _COLUMN_DIGITS:
        return _COLUMN_DIGITS[column]
    return 3 if column.startswith("p_") or any(s in column for s in ("kendall", "spearman", "_tau", "_rho")) else 2


def _finite(value: Any) -> bool:
    return is_number(value) and math.isfinite(float(value))


def cell_text(value: Any, digits: int) -> str:
    """A number with ``digits`` decimals; a missing or undefined one (None, NaN, NA) as "—"."""
    if value is None or value is pd.NA:
        return NULL
    if isinstance(value, (float, np.floating)):
        return NULL if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def p_text(p: Any, p_min: Any, n: Any, compact: bool = False) -> str:
    """A p-value as the views show it: "—" where there is none; where the test cannot reach
    ``SIGNIFICANCE`` with the ``n`` common seeds (its smallest attainable value ``p_min`` is not below it), that
    statement ("n = 3: cannot reach p < 0.05") in place of a number nobody should read as evidence; else the value
    with three decimals. ``compact``: without spaces, for the terminal."""
    if not _finite(p):
        return NULL
    if _finite(p_min) and float(p_min) >= SIGNIFICANCE:
        count = int(n) if _finite(n) else "?"
        return (f"n={count}: cannot reach p<{SIGNIFICANCE:g}" if compact
                else f"n = {count}: cannot reach p < {SIGNIFICANCE:g}")
    return f"{float(p):.3f}"


def won_text(share: Any, n: Any) -> str:
    """The common seeds won as a count of them, "2/3" (a tie counts half: "1.5/3"); "—" where there is none."""
    if not (_finite(share) and _finite(n)) or int(n) == 0:
        return NULL
    return f"{count_text(round(float(share) * int(n) * 2) / 2)}/{int(n)}"


def interval_text(low: Any, high: Any, kind: Any, digits: int = 2, duration: bool = False) -> str:
    """An interval with what it is: "90.81–94.71 (range)" or "91.20–94.40 (95 % CI)"; "—" where there is none."""
    if not (_finite(low) and _finite(high)):
        return NULL
    text = (f"{duration_text(low)}–{duration_text(high)}" if duration
            else f"{float(low):.{digits}f}–{float(high):.{digits}f}")
    return f"{text} ({kind})" if kind else text


def search_cost_text(row: pd.Series) -> str:
    """A row's search cost: its benchmark queries for a search that queries a benchmark ("3 queries": never the
    milliseconds the look-ups took), else the mean search time in readable units."""
    if _finite(row.get("search_queries_mean")):
        return f"{count_text(float(row['search_queries_mean']))} queries"
    return duration_text(float(row["search_hours_mean"]) * 3600.0 if _finite(row.get("search_hours_mean")) else None)


def mean_std_text(row: pd.Series, stem: str, digits: int) -> str:
    return " ± ".join(cell_text(row.get(f"{stem}_{stat}"), digits) for stat in ("mean", "std"))


def iqm_text(row: pd.Series) -> str:
    """A row's interquartile mean of the test accuracy, "(= mean: n < 4)" after it where so few seeds leave nothing to
    trim (``harness.core.stats.MIN_IQM_VALUES``)."""
    text = cell_text(row.get("test_acc_iqm"), metric(RANKED_BY).board_digits)
    seeds = row.get("n_seeds")
    if text != NULL and _finite(seeds) and 0 < int(seeds) < MIN_IQM_VALUES:
        return f"{text} (= mean: n < {MIN_IQM_VALUES})"
    return text


def test_acc_text(row: pd.Series, digits: int = 2) -> str:
    """A row's test accuracy, mean ± std over seeds ("93.50 ± —" for one seed); a reference row's (the benchmark's
    optimum) alone."""
    if row["method"] == REFERENCE_METHOD:
        return cell_text(row.get(_RANK_COLUMN), digits)
    return mean_std_text(row, metric(RANKED_BY).stem, digits)


def is_query_search(row: pd.Series) -> bool:
    return _finite(row.get("search_queries_mean"))


def group_title(space: Any, dataset: Any, budget: Any) -> str:
    """The name of a (space, dataset, budget) group in every view: "darts · search dataset digits · smoke budget"."""
    return f"{space} · search dataset {dataset} · {budget} budget"


def md_text(value: Any) -> str:
    """``value`` as text of a Markdown page, shown as it is: a renderer passes raw HTML through, so ``<``, ``>``
    and ``&`` become entities (as the HTML report escapes them); ``\\``, backticks, brackets (links) and ``|``
    (table cells) are backslash-escaped; a line break becomes a space."""
    text = html.escape(" ".join(str(value).splitlines()), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


_MD_SPECIAL = re.compile(r"([\\`\[\]|])")


# --- notes: where figures come from and what a cell means -----------------------------------------
_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def superscript(number: int) -> str:
    return str(number).translate(_SUPERSCRIPTS)


@dataclass
class Notes:
    """The notes of a set of rows. ``shared_source``: the one test source of every row, where they share one (said
    once, unnumbered: ``lines``); else one numbered note per distinct source (``source``: source → number).
    One numbered note per search that queries a benchmark (``queries``: (method, search source) → number), and one per
    source and budget of the papers' figures beside the rows (``published``: (source, budget) → number).
    ``texts``: number → text. ``published_lines``: what the published columns mean and, where a row's budget is not
    the papers', that it is not (``published_notes``)."""

    source: dict[str, int]
    queries: dict[tuple[str, str], int]
    texts: dict[int, str]
    shared_source: str | None
    published: dict[tuple[str, str], int] = field(default_factory=dict)
    published_lines: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, df: pd.DataFrame) -> Notes:
        source: dict[str, int] = {}
        queries: dict[tuple[str, str], int] = {}
        texts: dict[int, str] = {}
        # the reference rows (the benchmark's optimum) have a source of their own: a note, not a reason to number all
        sources = {str(row.get("test_source") or "") for _, row in df.iterrows() if row["method"] != REFERENCE_METHOD}
        shared = next(iter(sources)) if len(sources) == 1 and "" not in sources else None
        for _, row in df.iterrows():
            text = str(row.get("test_source") or "")
            if text and text not in source and text != shared:
                source[text] = len(texts) + 1
                texts[source[text]] = f"test accuracy: {text}"
            if is_query_search(row):
                key = (str(row["method"]), str(row.get("search_source") or ""))
                if key not in queries:
                    queries[key] = len(texts) + 1
                    texts[queries[key]] = (f"{key[0]} searched by {key[1]}: its cost is its queries, not the "
                                           "time the look-ups took (the benchmark has no training times to "
                                           "simulate it with)")
        published: dict[tuple[str, str], int] = {}
        for _, row in df.iterrows():
            key = published_key(row)
            if key is not None and key not in published:
                published[key] = len(texts) + 1
                texts[published[key]] = f"paper: {key[0]}; the paper's budget: {key[1]}"
        return cls(source, queries, texts, shared, published, published_notes(df))

    def source_mark(self, row: pd.Series) -> int | None:
        """The note number of the row's test source, where the rows do not share one."""
        return self.source.get(str(row.get("test_source") or ""))

    def lines(self) -> list[str]:
        """The notes as lines: the shared source first (unnumbered), then the numbered ones, then the published
        figures' lines."""
        shared = [f"test acc %: {self.shared_source}"] if self.shared_source else []
        return shared + [f"{superscript(n)} {text}" for n, text in self.texts.items()] + self.published_lines

    def published_mark(self, row: pd.Series) -> int | None:
        """The note number of the source and budget of the papers' figure beside the row."""
        key = published_key(row)
        return None if key is None else self.published.get(key)

    def query_mark(self, row: pd.Series) -> int | None:
        if not is_query_search(row):
            return None
        return self.queries.get((str(row["method"]), str(row.get("search_source") or "")))


def published_key(row: pd.Series) -> tuple[str, str] | None:
    """(source, the paper's budget) of the papers' figure beside ``row``; None where the papers give none."""
    source = row.get("published_source")
    if not isinstance(source, str) or not source:
        return None
    return source, str(row.get("published_budget") or "")


PUBLISHED_MEANING = ("paper %: the published test accuracy beside the row (100 − the test error where a paper "
                     "states an error), as printed: mean ± std, one figure, or the best of runs; Δ paper: the row's "
                     "mean − the published mean, and whether the published mean lies inside or outside the row's "
                     "interval of the mean")


def published_notes(df: pd.DataFrame) -> list[str]:
    """The lines the views close with where a row has a published figure beside it: what the columns mean and,
    for the measured rows not at the papers' budget, that they are not ("published figures are at the papers'
    budget; this row is budget cpu")."""
    with_figures = [row for _, row in df.iterrows() if published_key(row) is not None]
    if not with_figures:
        return []
    measured = [row for row in with_figures if _finite(row.get("n_seeds")) and int(row["n_seeds"]) > 0]
    other = [row for row in measured if str(row["budget"]) != PAPER_BUDGET]
    budgets = list(dict.fromkeys(str(row["budget"]) for row in other))
    if not budgets:
        return [PUBLISHED_MEANING]
    if len(other) == 1:
        line = budget_note(budgets[0])
    elif len(other) == len(measured):
        line = (f"published figures are at the papers' budget; these rows are budget {budgets[0]}" if len(budgets) == 1
                else f"published figures are at the papers' budget; these rows are budgets {', '.join(budgets)}")
    else:
        line = (f"published figures are at the papers' budget; the rows of budget {', '.join(budgets)} are not")
    return [PUBLISHED_MEANING, line]


def statistics_notes(df: pd.DataFrame, baseline: str | None = None) -> list[str]:
    """What the comparison cells of ``df``'s rows mean, as the views' closing lines: the test behind the p-value and
    its floor where some row's cannot reach ``SIGNIFICANCE``, and what "seeds won" counts."""
    compared = df[pd.to_numeric(df["n_common_seeds"], errors="coerce").fillna(0) > 0] if len(df) else df
    if not len(compared):
        return []
    baseline = baseline or str(compared["baseline"].iloc[0])
    return [f"p (Wilcoxon, Holm): two-sided Wilcoxon signed-rank test of the test accuracy against {baseline} on "
            "the common seeds, Holm-adjusted within a space, dataset and budget; with n common seeds p cannot go "
            f"below 2/2ⁿ (n = 3: 0.25), so fewer than 6 cannot reach {SIGNIFICANCE:g}.",
            f"seeds won: the common seeds where the row's test accuracy beats {baseline}'s (a tie counts half)."]


# --- the columns of the views ---------------------------------------------------------------------
@dataclass(frozen=True)
class ViewColumn:
    """A column of the terminal leaderboard: its ``--columns`` name, header, how a row's cell reads and whether it
    is a number (right-aligned and never wrapped: a number split over two lines is misread)."""

    name: str
    header: str
    cell: Callable[[pd.Series], str]
    numeric: bool = True


# The columns that stay in the first table whatever the width (the budget too where the rows differ in it): the
# method (with its variant), the space and the search dataset may wrap at a width where nothing else helps, but are
# never cut; the test accuracy never wraps.
ESSENTIAL = ("method", "space", "dataset", "test_acc")
# Shown by default where the board has them (the others on request: --columns).
DEFAULT_COLUMNS = ("rank", "method", "space", "dataset", "budget", "seeds", "test_acc", "paper", "paper_diff", "best",
                   "search", "params", "madds", "latency", "op_tau", "arch_tau", "oneshot_tau", "p", "won")
# Shown by default only when some row has a figure (in one of the board's columns named).
_IF_ANY = {"latency": ("latency_ms_mean",), "arch_tau": ("arch_kendall_tau_mean",),
           "oneshot_tau": ("oneshot_kendall_tau_mean",),
           "paper": ("published_test_acc_mean", "published_test_acc_best"), "paper_diff": ("published_diff",)}


def _metric_cell(column: str) -> Callable[[pd.Series], str]:
    return lambda row: cell_text(row.get(column), _digits(column))


def paper_text(row: pd.Series) -> str:
    """The papers' test accuracy beside a row as printed (``harness.core.published.figure_text``): "97.00 ± 0.14",
    "97.07" (one figure), "97.54 (best)" where the papers give only a best; "—" where they give nothing."""
    mean, std, best = (row.get(f"published_test_acc_{s}") for s in ("mean", "std", "best"))
    if _finite(mean):
        return figure_text(float(mean), float(std) if _finite(std) else None)
    return f"{figure_text(float(best))} (best)" if _finite(best) else NULL


def paper_diff_text(row: pd.Series) -> str:
    """The row's mean minus the published one, and whether the published mean lies inside the row's interval of
    the mean: "-3.21 (outside)"; "—" where there is none."""
    diff, inside = row.get("published_diff"), row.get("published_inside")
    if not _finite(diff):
        return NULL
    where = "" if inside is None or inside is pd.NA else (" (inside)" if bool(inside) else " (outside)")
    return f"{float(diff):+.2f}{where}"


def view_columns(notes: Notes) -> dict[str, ViewColumn]:
    """Every column the terminal leaderboard can show, by ``--columns`` name (any column of the CSV can be named
    too: ``select_columns``)."""
    digits = metric(RANKED_BY).board_digits

    def method(row: pd.Series) -> str:  # with its variant: a tuned DARTS is not DARTS
        mark = notes.query_mark(row)
        variant = f" [{row['variant']}]" if str(row["variant"]) else ""
        return str(row["method"]) + (superscript(mark) if mark else "") + variant

    def test_acc(row: pd.Series) -> str:
        mark = notes.source_mark(row)
        return test_acc_text(row, digits) + (superscript(mark) if mark else "")

    def paper(row: pd.Series) -> str:
        mark = notes.published_mark(row)
        return paper_text(row) + (superscript(mark) if mark else "")

    columns = [
        ViewColumn("rank", "rank", lambda r: cell_text(r["rank"], 0)),
        ViewColumn("method", "method", method, numeric=False),
        ViewColumn("variant", "variant", lambda r: str(r["variant"]), numeric=False),
        ViewColumn("space", "space", lambda r: str(r["space"]), numeric=False),
        ViewColumn("dataset", "search dataset", lambda r: str(r["dataset"]), numeric=False),
        ViewColumn("budget", "budget", lambda r: str(r["budget"]), numeric=False),
        ViewColumn("seeds", "seeds", lambda r: cell_text(r["n_seeds"], 0) if r["n_seeds"] else NULL),
        ViewColumn("seed_list", "seed list", lambda r: str(r["seeds"]), numeric=False),
        ViewColumn("test_acc", "test acc %", test_acc),
        ViewColumn("paper", "paper %", paper),
        ViewColumn("paper_diff", "Δ paper", paper_diff_text),
        ViewColumn("best", "best", _metric_cell("test_acc_best")),
        ViewColumn("median", "median", _metric_cell("test_acc_median")),
        ViewColumn("iqm", "IQM", iqm_text),
        ViewColumn("interval", "interval", lambda r: interval_text(r.get("test_acc_ci_low"), r.get("test_acc_ci_high"),
                                                                   r.get("test_acc_interval"))),
        ViewColumn("search_val", "search val %", _metric_cell("search_val_acc_mean")),
        ViewColumn("search", "search cost", search_cost_text),
        ViewColumn("eval", "eval time", lambda r: duration_text(
            float(r["eval_hours_mean"]) * 3600.0 if _finite(r.get("eval_hours_mean")) else None)),
        ViewColumn("params", "params M", _metric_cell("params_m_mean")),
        ViewColumn("madds", "MAdds M", _metric_cell("madds_m_mean")),
        ViewColumn("latency", "latency ms",
                   lambda r: mean_std_text(r, "latency_ms", metric("latency_ms").board_digits)),
        ViewColumn("op_tau", "op τ", _metric_cell("op_kendall_tau_mean")),
        ViewColumn("arch_tau", "arch τ", _metric_cell("arch_kendall_tau_mean")),
        ViewColumn("oneshot_tau", "one-shot τ", _metric_cell("oneshot_kendall_tau_mean")),
        ViewColumn("p", "p (Wilcoxon, Holm)", lambda r: p_text(r["p_holm"], r["p_holm_min"], r["n_common_seeds"],
                                                               compact=True)),
        ViewColumn("p_wilcoxon", "p Wilcoxon", lambda r: p_text(r["p_wilcoxon"], r["p_wilcoxon_min"],
                                                                r["n_common_seeds"], compact=True)),
        ViewColumn("p_ttest", "p paired t", _metric_cell("p_ttest")),
        ViewColumn("effect", "effect d_z", _metric_cell("effect_size")),
        ViewColumn("won", "seeds won", lambda r: won_text(r["seeds_won_share"], r["n_common_seeds"])),
        ViewColumn("source", "test source", lambda r: str(r.get("test_source") or ""), numeric=False),
        ViewColumn("search_source", "search source", lambda r: str(r.get("search_source") or ""), numeric=False),
    ]
    return {c.name: c for c in columns}


def _has_any(df: pd.DataFrame, column: str) -> bool:
    return bool(pd.to_numeric(df[column], errors="coerce").notna().any()) if column in df else False


def column_names(df: pd.DataFrame | None = None) -> list[str]:
    """The names ``--columns`` takes: the terminal's own (``view_columns``) and every column of ``df``'s CSV; without
    ``df`` (a run's ``--columns``, checked before it starts) the columns every leaderboard can have: ``BASE_COLUMNS``,
    ``PUBLISHED_COLUMNS`` and the trailing ``<key>_mean`` of the metric table's metrics without columns of their
    own."""
    names = list(view_columns(Notes({}, {}, {}, None)))
    csv = (BASE_COLUMNS + PUBLISHED_COLUMNS + [f"{m.key}_mean" for m in METRICS if not m.stats] if df is None
           else list(df.columns))
    return names + [c for c in csv if c not in names]


def parse_columns(text: str | None, df: pd.DataFrame | None = None) -> list[str] | None:
    """The names of ``--columns a,b,c`` (None: not given), each checked against ``column_names(df)``: an unknown one
    is one line (``UserError``) naming the closest valid name."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError("--columns is empty; give comma-separated column names, e.g. --columns method,test_acc,search")
    valid = column_names(df)
    for name in names:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1, cutoff=0.4)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UserError(f"--columns: unknown column '{name[:60]}'; {hint}valid: "
                            f"{', '.join(view_columns(Notes({}, {}, {}, None)))} or any leaderboard.csv column")
    return names


def _chosen(df: pd.DataFrame, notes: Notes, names: list[str] | None) -> tuple[list[ViewColumn], set[str]]:
    """The columns to show, in order, and the essential ones among them: the defaults the board has figures for, or
    ``names`` (the method first, so that every row can be told apart; a CSV column as itself)."""
    catalogue = view_columns(notes)
    if names is None:
        wanted = [n for n in DEFAULT_COLUMNS if n not in _IF_ANY or any(_has_any(df, c) for c in _IF_ANY[n])]
    else:
        wanted = ["method"] + [n for n in dict.fromkeys(names) if n != "method"]
    essential = set(ESSENTIAL) | ({"budget"} if len(df) and df["budget"].nunique() > 1 else set())
    columns = []
    for name in wanted:
        if name in catalogue:
            columns.append(catalogue[name])
        else:  # a CSV column, as the CSV names it
            numeric = pd.api.types.is_numeric_dtype(df[name]) and not pd.api.types.is_bool_dtype(df[name])
            columns.append(ViewColumn(name, name, _metric_cell(name), numeric=numeric))
    return columns, {n for n in essential if n in wanted}


# --- the terminal leaderboard ---------------------------------------------------------------------
def view_width(console: Console) -> int:
    """The width the terminal views lay themselves out for: ``harness.console.layout_width`` (``COLUMNS``, else the
    terminal's width, else ``PIPE_WIDTH`` in a pipe), never wider than ``console`` prints. The commands' console
    (``harness.console.make_console``) is built that wide already."""
    return min(layout_width(console.is_terminal, console.width), console.width)


_MEASURER: list[Console] = []


def _measure(renderable: RenderableType) -> int:
    """The width ``renderable`` takes when nothing limits it."""
    if not _MEASURER:
        _MEASURER.append(Console(width=100_000, markup=False, emoji=False, file=io.StringIO()))
    console = _MEASURER[0]
    return Measurement.get(console, console.options, renderable).maximum


def rich_table(columns: list[ViewColumn], cells: list[dict[str, str]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)  # no vertical rules: more columns fit
    for column in columns:
        # A number never wraps (its header neither: min_width); a name or a dataset may fold onto a second line at
        # a width where nothing else helps, but is never shortened with "…".
        table.add_column(Text(column.header), justify="right" if column.numeric else "left", no_wrap=column.numeric,
                         overflow="fold", min_width=len(column.header) if column.numeric else None)
    for row in cells:  # as Text: a "[lr=0.1]" in a name is no markup on any console
        table.add_row(*(Text(row[c.name]) for c in columns))
    return table


def fit_tables(columns: list[ViewColumn], essential: set[str], key: list[ViewColumn], cells: list[dict[str, str]],
               width: int) -> list[list[ViewColumn]]:
    """``columns`` laid out in tables of at most ``width`` characters, never a cell cut: the first holds the
    ``essential`` columns and as many of the others, in order, as fit; each further table repeats the ``key``
    columns (which rows these are) and takes the next ones that fit (at least one, whatever the width)."""
    order = {c.name: i for i, c in enumerate(columns)}

    def ordered(chosen: list[ViewColumn]) -> list[ViewColumn]:
        return sorted(chosen, key=lambda c: order.get(c.name, -1))

    rest = [c for c in columns if c.name not in essential]
    current = [c for c in columns if c.name in essential]
    tables: list[list[ViewColumn]] = []
    while True:
        added = 0
        while rest and _measure(rich_table(ordered(current + rest[:1]), cells)) <= width:
            current, rest, added = current + rest[:1], rest[1:], added + 1
        if rest and tables and not added:  # nothing fits beside the key: one column anyway (never lost)
            current, rest = current + rest[:1], rest[1:]
        tables.append(ordered(current))
        if not rest:
            return tables
        current = [c for c in key if c.name not in {r.name for r in rest}]


class LeaderboardView:
    """The terminal leaderboard (``leaderboard_table``), laid out when it is printed, for the width it gets."""

    def __init__(self, df: pd.DataFrame, title: str, width: int | None, columns: list[str] | None):
        self.title, self.width = title, width
        self.notes = Notes.of(df)
        self.chosen, self.essential = _chosen(df, self.notes, columns)
        self.cells = [{c.name: c.cell(row) for c in self.chosen} for _, row in df.iterrows()]
        # which row is which in a further table: the method (with its variant); with the space, dataset and budget
        # where they vary and one method is in several of them
        labels = [cells["method"] for cells in self.cells]
        varying = [c for c in self.chosen if c.name in ("space", "dataset", "budget")
                   and len({cells[c.name] for cells in self.cells}) > 1] if len(set(labels)) < len(labels) else []
        self.key = [c for c in self.chosen if c.name == "method"] + varying
        self.lines = self.notes.lines()
        if any(c.name in ("p", "p_wilcoxon", "won") for c in self.chosen):
            self.lines += statistics_notes(df)

    def renderables(self, width: int) -> list[RenderableType]:
        parts: list[RenderableType] = [Text(self.title, style="bold")]
        for k, layout in enumerate(fit_tables(self.chosen, self.essential, self.key, self.cells, width)):
            if k:
                parts.append(Text("(continued: the columns that did not fit beside them)", style="dim"))
            parts.append(rich_table(layout, self.cells))
        return parts + [Text(line, style="dim") for line in self.lines]

    def __rich_console__(self, console: Console, options: Any) -> Any:
        width = min(self.width or options.max_width, options.max_width)
        yield Constrain(Group(*self.renderables(width)), width)  # the title and notes wrap at the width too


def leaderboard_table(df: pd.DataFrame, title: str, width: int | None = None,
                      columns: list[str] | None = None) -> LeaderboardView:
    """The leaderboard for the terminal, laid out for ``width`` characters (None: the width it is printed at;
    the commands give ``view_width``): the title on its own lines; a first table with the essential columns —
    method, variant, space, search dataset, budget, test accuracy mean ± std — and the others that fit, the rest in
    further tables that repeat which row is which; then the notes (where the test accuracy comes from, which
    searches queried a benchmark) and what the comparison cells mean. No number, name or header is ever shortened;
    the CSV keeps every column. ``columns``: the ``--columns`` names (``parse_columns``) in place of the
    defaults."""
    return LeaderboardView(df, title, width, columns)


# --- files: CSV, Markdown, LaTeX -------------------------------------------------------------------
def to_markdown(df: pd.DataFrame) -> str:
    """Every column of ``df`` as a GitHub Markdown table (numeric columns right-aligned); written here to avoid
    ``tabulate``. Every header and cell is ``md_text``."""
    columns = list(df.columns)
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in columns]
    lines = ["| " + " | ".join(md_text(c) for c in columns) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for row in df.itertuples(index=False):
        cells = [md_text(cell_text(v, _digits(c))) for c, v in zip(columns, row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _groups(df: pd.DataFrame) -> list[tuple[tuple[str, str, str], pd.DataFrame]]:
    """``df``'s (space, dataset, budget) groups in the board's order."""
    return [(tuple(str(k) for k in key), group)
            for key, group in df.groupby(["space", "dataset", "budget"], sort=False)]


def _baseline_of(group: pd.DataFrame) -> str:
    names = [str(b) for b in group["baseline"] if isinstance(b, str) and b]
    return names[0] if names else BASELINE_METHOD


# The short table of the Markdown leaderboard and the LaTeX tables: (name, Markdown header); the full table is the CSV.
SHORT_COLUMNS = ("rank", "method", "seeds", "test_acc", "best", "search", "p", "won")


def short_columns(group: pd.DataFrame) -> tuple[str, ...]:
    """``SHORT_COLUMNS``, with the papers' test accuracy after the row's where a row of ``group`` has one."""
    if not any(published_key(row) is not None for _, row in group.iterrows()):
        return SHORT_COLUMNS
    at = SHORT_COLUMNS.index("test_acc") + 1
    return SHORT_COLUMNS[:at] + ("paper",) + SHORT_COLUMNS[at:]


def markdown_leaderboard(df: pd.DataFrame) -> str:
    """The Markdown leaderboard: per space, search dataset and budget, its heading, where the test accuracy comes
    from, one table of ``short_columns`` (eight, readable on a screen; nine with the papers' figure) and the notes;
    every column is in the CSV."""
    lines = ["# Leaderboard", "",
             "One table per space, search dataset and budget: test accuracy mean ± std over seeds. Every column "
             "(median, IQM, intervals, all p-values, costs, sizes, correlations) is in `leaderboard.csv` beside "
             "this file.", ""]
    for (space, dataset, budget), group in _groups(df):
        notes = Notes.of(group)
        catalogue = view_columns(notes)
        baseline = _baseline_of(group)
        lines += [f"## {md_text(group_title(space, dataset, budget))}", ""]
        if notes.shared_source:
            lines += [f"Test accuracy: {md_text(notes.shared_source)}.", ""]
        columns = [catalogue[n] for n in short_columns(group)]
        headers = {"p": f"p vs {baseline} (Wilcoxon, Holm)", "won": f"seeds won vs {baseline}",
                   "test_acc": "test acc %", "paper": "paper test acc %"}
        lines.append("| " + " | ".join(md_text(headers.get(c.name, c.header)) for c in columns) + " |")
        lines.append("|" + "|".join("---:" if c.numeric else "---" for c in columns) + "|")
        for _, row in group.iterrows():
            cells = [p_text(row["p_holm"], row["p_holm_min"], row["n_common_seeds"]) if c.name == "p" else c.cell(row)
                     for c in columns]
            lines.append("| " + " | ".join(md_text(cell) for cell in cells) + " |")
        notes_lines = [f"{superscript(n)} {text}" for n, text in notes.texts.items()] + notes.published_lines
        lines += [""] + [md_text(line) + "  " for line in notes_lines + statistics_notes(group, baseline)] + [""]
    return "\n".join(lines).rstrip() + "\n"


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
          ">": r"\textgreater{}", "|": r"\textbar{}", "±": r"$\pm$", "—": "---", "–": "--", "τ": r"$\tau$",
          "ρ": r"$\rho$", "·": r"$\cdot$", "−": r"$-$", "Δ": r"$\Delta$", "×": r"$\times$", "µ": r"$\mu$",
          "≥": r"$\geq$", "≤": r"$\leq$",
          "ⁿ": r"\textsuperscript{n}", **{sup: rf"\textsuperscript{{{digit}}}" for digit, sup in zip("0123456789",
                                                                                          "⁰¹²³⁴⁵⁶⁷⁸⁹")}}


def latex_text(value: Any) -> str:
    """``value`` as LaTeX text that prints as it reads: every character LaTeX treats specially escaped (``\\ & % $
    # _ { } ~ ^ < > |``), the symbols the views use (± — – − Δ τ ρ · × µ ≥ ≤, superscript digits and n) as LaTeX, a
    line break a space."""
    return "".join(_LATEX.get(ch, ch) for ch in " ".join(str(value).splitlines()))


def _latex_p(row: pd.Series) -> str:
    text = p_text(row["p_holm"], row["p_holm_min"], row["n_common_seeds"])
    if text.startswith("n = "):  # the statement that the test cannot reach the level
        return rf"$n={int(row['n_common_seeds'])}$: cannot reach $p<{SIGNIFICANCE:g}$"
    return latex_text(text)


def latex_leaderboard(df: pd.DataFrame) -> str:
    """The leaderboard as LaTeX: per space, search dataset and budget one ``table`` with a booktabs ``tabular``
    (``\\usepackage{booktabs}``) that fits a page: method, seeds, test accuracy mean ± std (the best mean in bold:
    rank 1), the papers' test accuracy where a row has one (``short_columns``), search cost, p-value and seeds won
    against the baseline; below it the protocol — budget, search dataset, seeds, the test accuracy's source — with
    the notes (benchmark-query searches, the papers' sources and budgets) and what the p-value and "seeds won"
    mean. Every text escaped (``latex_text``)."""
    out = ["% Leaderboard tables of the NAS harness, generated from the trial records; needs \\usepackage{booktabs}.",
           ""]
    for (space, dataset, budget), group in _groups(df):
        notes = Notes.of(group)
        catalogue = view_columns(notes)
        baseline = _baseline_of(group)
        ranked = group[group["method"] != REFERENCE_METHOD]
        papers = "paper" in short_columns(group)  # a column of the papers' test accuracy
        headers = ["Method", "Seeds", r"Test acc.\ (\%)"] + ([r"Paper (\%)"] if papers else []) + [
            "Search cost", rf"$p$ vs {latex_text(baseline)}", "Seeds won"]
        slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{space}-{dataset}-{budget}").strip("-").lower()
        out += [r"\begin{table}[htbp]", r"\centering", r"\small", r"\setlength{\tabcolsep}{4pt}",
                rf"\caption{{{latex_text(group_title(space, dataset, budget))}: test accuracy (\%), mean $\pm$ "
                "std over seeds}", rf"\label{{tab:leaderboard-{slug}}}",
                # a method with its variant and the p cell (which may say why there is no p) wrap: the table fits a page
                r"\begin{tabular}{p{2.4cm}rr" + ("r" if papers else "") + "rp{2cm}r}", r"\toprule",
                " & ".join(headers) + r" \\", r"\midrule"]
        for k, (_, row) in enumerate(group.iterrows()):
            reference = row["method"] == REFERENCE_METHOD
            if reference and k and not (group.iloc[:k]["method"] == REFERENCE_METHOD).any():
                out.append(r"\midrule")
            mark = notes.query_mark(row)
            method = latex_text(row["method"]) + (rf"\textsuperscript{{{mark}}}" if mark else "")
            method += latex_text(f" [{row['variant']}]") if str(row["variant"]) else ""
            acc = latex_text(test_acc_text(row, metric(RANKED_BY).board_digits))
            source_mark = notes.source_mark(row)
            acc += rf"\textsuperscript{{{source_mark}}}" if source_mark else ""
            if not reference and _finite(row["rank"]) and int(row["rank"]) == 1:
                acc = rf"\textbf{{{acc}}}"
            cells = [method, latex_text(catalogue["seeds"].cell(row)), acc] + (
                [latex_text(catalogue["paper"].cell(row))] if papers else []) + [
                latex_text(search_cost_text(row) if not reference else NULL), _latex_p(row),
                latex_text(catalogue["won"].cell(row))]
            out.append(" & ".join(cells) + r" \\")
        seeds = sorted({s for text in ranked["seeds"] for s in str(text).split(",") if s},
                       key=lambda s: (not s.lstrip("-").isdigit(), int(s) if s.lstrip("-").isdigit() else 0, s))
        counts = sorted({int(n) for n in ranked["n_seeds"]})
        protocol = (f"Protocol: {budget} budget; search dataset {dataset}; seeds {', '.join(seeds)} "
                    f"({'/'.join(map(str, counts))} per method)")
        if notes.shared_source:
            protocol += f"; test accuracy: {notes.shared_source}"
        texts = [latex_text(protocol + ". Mean ± std over seeds; the best mean in bold.")]
        texts += [rf"\textsuperscript{{{n}}}{latex_text(text)}." for n, text in notes.texts.items()]
        texts += [latex_text(line) + "." for line in notes.published_lines]
        texts += [latex_text(line) for line in statistics_notes(group, baseline)]
        out += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip",
                r"\parbox{\linewidth}{\footnotesize " + r" \\ ".join(texts) + "}", r"\end{table}", ""]
    return "\n".join(out)


def write_leaderboard(df: pd.DataFrame, folder: Path | Remote | str) -> tuple[Path | Remote, Path | Remote]:
    """Write ``leaderboard.csv`` (every column) and ``leaderboard.md`` (``markdown_leaderboard``) into ``folder``
    (local or on an object store) as a pair (both complete before either replaces its old version); return both
    paths. A folder that cannot be written is one line."""
    folder = location(folder)
    csv_path, md_path = folder / "leaderboard.csv", folder / "leaderboard.md"
    buffer = io.StringIO()
    df.to_csv(buffer, index=False)
    markdown = markdown_leaderboard(df)
    atomic_write_many({csv_path: (lambda f: f.write(buffer.getvalue()), False),
                       md_path: (lambda f: f.write(markdown), False)})
    return csv_path, md_path
