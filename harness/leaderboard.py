"""Leaderboards derived from trial records: never edited by hand, regenerable at any time.

One row per (method, space, dataset, budget, variant), where the variant is the set of ``--set``
overrides: a tuned DARTS is a different entry from paper-default DARTS and must not be averaged with it.

Each row is compared with the baseline row (``BASELINE_METHOD`` without overrides) of its space, dataset and
budget on test accuracy, paired by seed (``harness.core.stats.paired_comparison``): the number of common seeds, the
Wilcoxon signed-rank and paired t-test p-values, the Wilcoxon p-value Holm-adjusted over the group's
non-baseline rows (``harness.core.stats.holm``), Cohen's d_z and the fraction of seeds the row beats the baseline.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich import box
from rich.table import Table

from harness.core.config import BASELINE_METHOD
from harness.core.errors import UserError, one_line
from harness.core.metric_table import NULL, board_metrics, metric
from harness.core.records import atomic_write_many
from harness.core.registry import all_spaces, get_space
from harness.core.stats import finite, holm, is_number, paired_comparison, summary
from harness.core.storage import Remote, location

GROUP_KEYS = ["method", "space", "dataset", "budget", "variant"]
RANKED_BY = "test_acc"  # rows are ranked by its mean and compared with the baseline's by seed
# The metrics with columns of their own, in column order; every other numeric record key gets <key>_mean.
BOARD_METRICS = board_metrics(RANKED_BY)
# The paired comparison with the baseline row (test accuracy, by seed); the order of the columns.
COMPARISON_COLUMNS = ["baseline", "n_common_seeds", "p_wilcoxon", "p_ttest", "p_holm", "effect_size",
                      "p_beats_baseline", "comparison_note"]
BASE_COLUMNS = (GROUP_KEYS + ["n_seeds", "seeds"] + [c for m in BOARD_METRICS for c in m.board_columns]
                + COMPARISON_COLUMNS + ["rank"])
# Record keys already summarised by BASE_COLUMNS (or not metrics).
_SUMMARISED = {"seed"} | {m.key for m in BOARD_METRICS}
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
    row: dict[str, Any] = {"baseline": baseline, "n_common_seeds": pd.NA, "p_wilcoxon": nan, "p_ttest": nan,
                           "effect_size": nan, "p_beats_baseline": nan, "comparison_note": ""}
    if key == base:
        return row
    if base not in by_seed:
        row.update(n_common_seeds=0, comparison_note=f"no {baseline} row without overrides to compare with")
        return row
    result = paired_comparison(by_seed[key], by_seed[base])
    row.update(n_common_seeds=result["n_common"], p_wilcoxon=result["p_wilcoxon"], p_ttest=result["p_ttest"],
               effect_size=result["effect_size"], p_beats_baseline=result["p_beats"],
               comparison_note=result["note"])
    return row


def _dedupe(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per seed, the newest by ``finished_at`` (a re-run replaces, it does not add a seed)."""
    newest: dict[Any, dict[str, Any]] = {}
    for record in records:  # later wins ties: load order is path order
        seed = record.get("seed")
        if seed not in newest or _finished_at(record) >= _finished_at(newest[seed]):
            newest[seed] = record
    return [newest[s] for s in sorted(newest, key=lambda s: (not is_number(s), s if is_number(s) else str(s)))]


def record_benchmark(record: dict[str, Any], tables: dict[str, Any]) -> Any:
    """The benchmark table the record's ``benchmark_info["table"]`` describes, loaded through its space (``tables``
    caches each description); None where the record names none, or its space has none. A table that cannot be
    loaded here (results copied from a machine where it lies elsewhere) is None too, said once per table in one
    warning line: what needs it — the optimum row, the anytime plot — is left out, the rest is shown."""
    info = record.get("benchmark_info")
    space = record.get("space")
    if not isinstance(info, dict) or space not in all_spaces():
        return None
    description = info.get("table") or {}
    key = json.dumps([space, description], sort_keys=True, default=str)
    if key not in tables:
        try:
            tables[key] = get_space(space).load_benchmark(description)
        except UserError as err:
            print(f"warning: {one_line(err)}; what needs that table is left out (the optimum row, "
                  "the anytime plot)", file=sys.stderr)
            tables[key] = None
    return tables[key]


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


def _group_row(key: tuple[str, ...], group: list[dict[str, Any]], extra_keys: list[str],
               bench_keys: list[str]) -> dict[str, Any]:
    """One leaderboard row of one group's records (one per seed): every column but the comparison with the
    baseline and rank."""
    row: dict[str, Any] = dict(zip(GROUP_KEYS, key))
    row["n_seeds"] = len(group)
    row["seeds"] = ",".join(str(r.get("seed")) for r in group)
    for m in BOARD_METRICS:
        values = [_num(r.get(m.key)) for r in group]
        for stat in m.stats:
            row[m.stat_column(stat)] = _statistic(stat, values) / m.divisor
        if m.extra_stats:
            extra = summary(values)  # the seeded bootstrap: the same records give the same interval
            for stat in m.extra_stats:
                row[m.stat_column(stat)] = extra[stat] / m.divisor
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
    budget (NaN p-values do not count); NaN for the baseline's own rows."""
    families: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for key, row in zip(keys, rows):
        if key != (baseline, *key[1:4], ""):
            families.setdefault(key[1:4], []).append(row)
        row["p_holm"] = float("nan")
    for family in families.values():
        for row, adjusted in zip(family, holm([r["p_wilcoxon"] for r in family])):
            row["p_holm"] = adjusted


def _with_reference_rows(df: pd.DataFrame, records: list[dict[str, Any]], tables: dict[str, Any] | None
                         ) -> pd.DataFrame:
    """``df`` with the benchmark optimum rows of ``reference_rows`` added (unranked, not compared)."""
    extra = pd.DataFrame(reference_rows(records, tables)).reindex(columns=df.columns)
    if not len(extra):
        return df
    extra[["baseline", "comparison_note"]] = ""  # not compared
    extra = extra.astype({c: df[c].dtype for c in ("n_seeds", "n_common_seeds", "rank")})
    return pd.concat([df, extra], ignore_index=True)


def build_leaderboard(records: list[dict[str, Any]], reference: bool = False,
                      baseline: str = BASELINE_METHOD, tables: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per (method, space, dataset, budget, variant): seeds, the statistics over seeds of every
    metric the metric table gives leaderboard columns, the comparison of the ranked metric (test accuracy)
    with the ``baseline`` method's row without overrides in the same space, dataset and budget (``COMPARISON_COLUMNS``:
    paired by seed, ``harness.core.stats.paired_comparison``; ``p_holm`` is ``p_wilcoxon`` Holm-adjusted over the
    non-baseline rows of the same space, dataset and budget), and rank; columns in ``BASE_COLUMNS`` order, then
    ``<key>_mean`` for every other numeric record key and ``benchmark_<k>_mean/_std``.
    ``reference`` adds the benchmark optimum rows of ``reference_rows`` (unranked, not compared; ``tables``: the
    cache of ``record_benchmark``).
    """
    extra_keys, bench_keys = _numeric_keys(records)
    columns = (BASE_COLUMNS + [f"{k}_mean" for k in extra_keys]
               + [f"benchmark_{k}_{s}" for k in bench_keys for s in ("mean", "std")])
    if not records:
        return pd.DataFrame(columns=columns)

    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for record in records:
        key = tuple(str(record.get(k, "")) for k in GROUP_KEYS[:-1]) + (variant_of(record),)
        groups.setdefault(key, []).append(record)
    groups = {key: _dedupe(group) for key, group in groups.items()}
    by_seed = {key: {r.get("seed"): _num(r.get(RANKED_BY)) for r in group} for key, group in groups.items()}

    rows = []
    for key, group in groups.items():
        row = _group_row(key, group, extra_keys, bench_keys)
        row.update(_comparison(key, by_seed, baseline))
        rows.append(row)
    _holm_adjust(list(groups), rows, baseline)

    df = pd.DataFrame(rows)
    df["n_common_seeds"] = df["n_common_seeds"].astype("Int64")
    df["rank"] = (df.groupby(["space", "dataset", "budget"])[_RANK_COLUMN]
                  .rank(method="min", ascending=False).astype("Int64"))
    if reference:
        df = _with_reference_rows(df, records, tables)
    df = df.sort_values(["space", "dataset", "budget", "rank", "method", "variant"], na_position="last")
    return df[columns].reset_index(drop=True)


# --- output -------------------------------------------------------------------------------------
_COLUMN_DIGITS = {m.stat_column(stat): m.board_digits for m in BOARD_METRICS for stat in m.stats + m.extra_stats}


def _digits(column: str) -> int:
    """Decimals of a column: the metric table's for a metric's columns; for the others, 3 for
    correlations and p-values (they need 3 to be told apart) and 2 for everything else."""
    if column in _COLUMN_DIGITS:
        return _COLUMN_DIGITS[column]
    return 3 if column.startswith("p_") or any(s in column for s in ("kendall", "spearman", "_tau", "_rho")) else 2


def cell_text(value: Any, digits: int) -> str:
    """A number with ``digits`` decimals; a missing or undefined one (None, NaN, NA) as "—"."""
    if value is None or value is pd.NA:
        return NULL
    if isinstance(value, (float, np.floating)):
        return NULL if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def md_text(value: Any) -> str:
    """``value`` as text of a Markdown page, shown as it is: a renderer passes raw HTML through, so ``<``, ``>``
    and ``&`` become entities (as the HTML report escapes them); ``\\``, backticks, brackets (links) and ``|``
    (table cells) are backslash-escaped; a line break becomes a space."""
    text = html.escape(" ".join(str(value).splitlines()), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


_MD_SPECIAL = re.compile(r"([\\`\[\]|])")


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub Markdown table (numeric columns right-aligned); written here to avoid ``tabulate``. Every header
    and cell is ``md_text``."""
    columns = list(df.columns)
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in columns]
    lines = ["| " + " | ".join(md_text(c) for c in columns) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for row in df.itertuples(index=False):
        cells = [md_text(cell_text(v, _digits(c))) for c, v in zip(columns, row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_leaderboard(df: pd.DataFrame, folder: Path | Remote | str) -> tuple[Path | Remote, Path | Remote]:
    """Write ``leaderboard.csv`` and ``leaderboard.md`` into ``folder`` (local or on an object store) as a pair
    (both complete before either replaces its old version); return both paths. A folder that cannot be written
    is one line."""
    folder = location(folder)
    csv_path, md_path = folder / "leaderboard.csv", folder / "leaderboard.md"
    buffer = io.StringIO()
    df.to_csv(buffer, index=False)
    markdown = to_markdown(df)
    atomic_write_many({csv_path: (lambda f: f.write(buffer.getvalue()), False),
                       md_path: (lambda f: f.write(markdown), False)})
    return csv_path, md_path


def leaderboard_table(df: pd.DataFrame, title: str) -> Table:
    """The leaderboard as a rich table for the terminal (the CSV keeps every column)."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)  # no vertical rules: 15 columns are wide

    def shown(column: str) -> bool:
        return bool(pd.to_numeric(df[column], errors="coerce").notna().any()) if column in df else False

    variants = bool(df["variant"].astype(str).str.len().gt(0).any()) if len(df) else False
    columns: list[tuple[str, Any]] = [(key, lambda r, key=key: str(r[key]))
                                      for key in GROUP_KEYS if key != "variant" or variants]
    columns.append(("seeds", lambda r: str(r["seeds"])))
    for m in BOARD_METRICS:
        if m.terminal_if_any and not shown(m.stat_column(m.stats[0])):
            continue
        for header, stats in m.terminal:
            columns.append((header, lambda r, m=m, stats=stats: " ± ".join(
                cell_text(r[m.stat_column(stat)], m.board_digits) for stat in stats)))
    columns += [("p (Wilcoxon, Holm)", lambda r: cell_text(r["p_holm"], 3)),
                ("rank", lambda r: cell_text(r["rank"], 0))]
    for i, (header, _) in enumerate(columns):
        # Never wrap or shorten a header: a number split over two lines is misread. On a terminal narrower
        # than the table rich shortens cells with "…"; the CSV and Markdown keep every column in full.
        table.add_column(header, justify="left" if i < 4 + variants else "right", no_wrap=True,
                         min_width=len(header))
    rows = [[render(row) for _, render in columns] for _, row in df.iterrows()]
    for cells in rows:
        table.add_row(*cells)
    return table
