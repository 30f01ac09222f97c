"""Leaderboards derived from trial records: never edited by hand, regenerable at any time.

One row per (method, space, dataset, budget, variant), where the variant is the set of ``--set``
overrides: a tuned DARTS is a different entry from paper-default DARTS and must not be averaged with it.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats
from rich import box
from rich.table import Table

from harness.records import atomic_write_many

GROUP_KEYS = ["method", "space", "dataset", "budget", "variant"]
BASE_COLUMNS = GROUP_KEYS + [
    "n_seeds", "seeds",
    "test_acc_mean", "test_acc_std", "test_acc_median", "test_acc_best",
    "search_val_acc_mean", "search_hours_mean", "eval_hours_mean",
    "device_hours_mean", "device_hours_kind",
    "params_m_mean", "madds_m_mean",
    "op_kendall_tau_mean", "op_spearman_rho_mean", "arch_kendall_tau_mean", "arch_spearman_rho_mean",
    "p_vs_darts", "rank",
]
# Record keys already summarised by BASE_COLUMNS (or not metrics); every other numeric key gets <key>_mean.
_SUMMARISED = {"seed", "test_acc", "search_val_acc", "search_seconds", "eval_seconds", "device_hours",
               "params_m", "madds_m", "op_kendall_tau", "op_spearman_rho", "arch_kendall_tau", "arch_spearman_rho"}
BASELINE_METHOD = "darts"
REFERENCE_METHOD = "optimum"
NULL = "—"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _num(value: Any) -> float:
    return float(value) if _is_number(value) else float("nan")


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


def _stats(values: list[float]) -> tuple[float, float, float, float]:
    """Mean, sample std (ddof=1), median and best of the finite values (NaN where undefined)."""
    finite = np.array([v for v in values if math.isfinite(v)], dtype=float)
    nan = float("nan")
    if finite.size == 0:
        return nan, nan, nan, nan
    std = float(np.std(finite, ddof=1)) if finite.size > 1 else nan
    return float(finite.mean()), std, float(np.median(finite)), float(finite.max())


def _mean(values: Iterable[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _flatten_numbers(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten_numbers(value, f"{prefix}{key}_"))
        elif _is_number(value):
            out[f"{prefix}{key}"] = float(value)
    return out


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided Welch t-test p-value; NaN when a side has < 2 values or both have zero variance."""
    a = [v for v in a if math.isfinite(v)]
    b = [v for v in b if math.isfinite(v)]
    if len(a) < 2 or len(b) < 2 or (np.var(a) == 0 and np.var(b) == 0):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(scipy.stats.ttest_ind(a, b, equal_var=False).pvalue)


def _dedupe(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per seed, the newest by ``finished_at`` (a re-run replaces, it does not add a seed)."""
    newest: dict[Any, dict[str, Any]] = {}
    for record in records:  # later wins ties: load order is path order
        seed = record.get("seed")
        if seed not in newest or _finished_at(record) >= _finished_at(newest[seed]):
            newest[seed] = record
    return [newest[s] for s in sorted(newest, key=lambda s: (not _is_number(s), s if _is_number(s) else str(s)))]


def reference_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For every (space, dataset, budget) whose records looked their cells up in a benchmark table, the
    table's optimum as a reference row (method ``optimum``, no seeds, no rank): every benchmark column's
    best over all architectures — the "Optimal" row of AGNAS's Table 3 — and as test accuracy the best
    of the column that stands for the dataset."""
    from harness.benchmarks.nb201 import load_table

    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in records:
        info = record.get("benchmark_info")
        key = tuple(str(record.get(k, "")) for k in ("space", "dataset", "budget"))
        if not isinstance(info, dict) or key in rows:
            continue
        path = (info.get("table") or {}).get("path") or "default"
        table = load_table(path)
        optimum = table.optimum()
        column, _ = table.target_column(str(record.get("dataset")))
        row: dict[str, Any] = {"method": REFERENCE_METHOD, "space": key[0], "dataset": key[1], "budget": key[2],
                               "variant": "", "n_seeds": 0, "seeds": "",
                               "test_acc_mean": optimum.get(column, float("nan")),
                               "test_acc_best": optimum.get(column, float("nan"))}
        row.update({f"benchmark_{k}_mean": v for k, v in optimum.items()})
        rows[key] = row
    return list(rows.values())


def build_leaderboard(records: list[dict[str, Any]], reference: bool = False) -> pd.DataFrame:
    """One row per (method, space, dataset, budget, variant) with seeds, accuracy stats, costs,
    correlations, Welch p-value against the DARTS baseline and rank; columns in ``BASE_COLUMNS`` order,
    then ``<key>_mean`` for every other numeric record key and ``benchmark_<k>_mean/_std``.
    ``reference`` adds the benchmark optimum rows of ``reference_rows`` (unranked).
    """
    extra_keys = sorted({
        key for record in records for key, value in record.items()
        if _is_number(value) and key not in _SUMMARISED and not key.startswith("_")
    })
    bench_keys = sorted({
        key for record in records if isinstance(record.get("benchmark"), dict)
        for key in _flatten_numbers(record["benchmark"])
    })
    bench_columns = [f"benchmark_{k}_{s}" for k in bench_keys for s in ("mean", "std")]
    columns = BASE_COLUMNS + [f"{k}_mean" for k in extra_keys] + bench_columns
    if not records:
        return pd.DataFrame(columns=columns)

    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for record in records:
        key = tuple(str(record.get(k, "")) for k in GROUP_KEYS[:-1]) + (variant_of(record),)
        groups.setdefault(key, []).append(record)

    rows = []
    accs: dict[tuple[str, ...], list[float]] = {}
    for key, group in groups.items():
        group = _dedupe(group)
        test_acc = [_num(r.get("test_acc")) for r in group]
        accs[key] = test_acc
        mean, std, median, best = _stats(test_acc)
        kinds = sorted({str(r["device_hours_kind"]) for r in group if r.get("device_hours_kind")})
        row: dict[str, Any] = dict(zip(GROUP_KEYS, key))
        row.update({
            "n_seeds": len(group),
            "seeds": ",".join(str(r.get("seed")) for r in group),
            "test_acc_mean": mean, "test_acc_std": std, "test_acc_median": median, "test_acc_best": best,
            "search_val_acc_mean": _mean(_num(r.get("search_val_acc")) for r in group),
            "search_hours_mean": _mean(_num(r.get("search_seconds")) for r in group) / 3600,
            "eval_hours_mean": _mean(_num(r.get("eval_seconds")) for r in group) / 3600,
            "device_hours_mean": _mean(_num(r.get("device_hours")) for r in group),
            "device_hours_kind": "/".join(kinds),
            "params_m_mean": _mean(_num(r.get("params_m")) for r in group),
            "madds_m_mean": _mean(_num(r.get("madds_m")) for r in group),
            "op_kendall_tau_mean": _mean(_num(r.get("op_kendall_tau")) for r in group),
            "op_spearman_rho_mean": _mean(_num(r.get("op_spearman_rho")) for r in group),
            "arch_kendall_tau_mean": _mean(_num(r.get("arch_kendall_tau")) for r in group),
            "arch_spearman_rho_mean": _mean(_num(r.get("arch_spearman_rho")) for r in group),
        })
        for extra in extra_keys:
            row[f"{extra}_mean"] = _mean(_num(r.get(extra)) for r in group)
        bench = [_flatten_numbers(r["benchmark"]) if isinstance(r.get("benchmark"), dict) else {} for r in group]
        for bkey in bench_keys:
            bmean, bstd, _, _ = _stats([b.get(bkey, float("nan")) for b in bench])
            row[f"benchmark_{bkey}_mean"], row[f"benchmark_{bkey}_std"] = bmean, bstd
        rows.append(row)

    for row in rows:
        key = tuple(row[k] for k in GROUP_KEYS)
        base = (BASELINE_METHOD, row["space"], row["dataset"], row["budget"], "")
        row["p_vs_darts"] = float("nan") if key == base or base not in accs else welch_p(accs[key], accs[base])

    df = pd.DataFrame(rows)
    df["rank"] = (df.groupby(["space", "dataset", "budget"])["test_acc_mean"]
                  .rank(method="min", ascending=False).astype("Int64"))
    if reference:
        extra = pd.DataFrame(reference_rows(records)).reindex(columns=df.columns)
        if len(extra):
            extra = extra.astype({c: df[c].dtype for c in ("n_seeds", "rank")})
            df = pd.concat([df, extra], ignore_index=True)
    df = df.sort_values(["space", "dataset", "budget", "rank", "method", "variant"], na_position="last")
    return df[columns].reset_index(drop=True)


# --- output -------------------------------------------------------------------------------------
def _digits(column: str) -> int:
    """Correlations and p-values need 3 decimals to be told apart; everything else reads well with 2."""
    return 3 if column.startswith("p_") or any(s in column for s in ("kendall", "spearman", "_tau", "_rho")) else 2


def cell_text(value: Any, digits: int) -> str:
    """A number with ``digits`` decimals; a missing or undefined one (None, NaN, NA) as "—"."""
    if value is None or value is pd.NA:
        return NULL
    if isinstance(value, (float, np.floating)):
        return NULL if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub Markdown table (numeric columns right-aligned); written here to avoid ``tabulate``."""
    columns = list(df.columns)
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in columns]
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for row in df.itertuples(index=False):
        cells = [cell_text(v, _digits(c)).replace("|", "\\|") for c, v in zip(columns, row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_leaderboard(df: pd.DataFrame, folder: Path | str) -> tuple[Path, Path]:
    """Write ``leaderboard.csv`` and ``leaderboard.md`` into ``folder`` as a pair (both complete before
    either replaces its old version); return both paths. A folder that cannot be written is one line."""
    folder = Path(folder)
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
    columns: list[tuple[str, Any]] = [
        ("method", lambda r: str(r["method"])), ("space", lambda r: str(r["space"])),
        ("dataset", lambda r: str(r["dataset"])), ("budget", lambda r: str(r["budget"])),
    ]
    if variants:
        columns.append(("variant", lambda r: str(r["variant"])))
    columns += [
        ("seeds", lambda r: str(r["seeds"])),
        ("test acc %", lambda r: f"{cell_text(r['test_acc_mean'], 2)} ± {cell_text(r['test_acc_std'], 2)}"),
        ("best", lambda r: cell_text(r["test_acc_best"], 2)),
        ("search h", lambda r: cell_text(r["search_hours_mean"], 2)),
        ("params M", lambda r: cell_text(r["params_m_mean"], 2)),
        ("MAdds M", lambda r: cell_text(r["madds_m_mean"], 2)),
        ("op τ", lambda r: cell_text(r["op_kendall_tau_mean"], 3)),
    ]
    if shown("arch_kendall_tau_mean"):
        columns.append(("arch τ", lambda r: cell_text(r["arch_kendall_tau_mean"], 3)))
    columns += [("p vs darts", lambda r: cell_text(r["p_vs_darts"], 3)), ("rank", lambda r: cell_text(r["rank"], 0))]
    for i, (header, _) in enumerate(columns):
        # Never wrap or shorten a header: a number split over two lines is misread. On a terminal narrower
        # than the table rich shortens cells with "…"; the CSV and Markdown keep every column in full.
        table.add_column(header, justify="left" if i < 4 + variants else "right", no_wrap=True,
                         min_width=len(header))
    rows = [[render(row) for _, render in columns] for _, row in df.iterrows()]
    for cells in rows:
        table.add_row(*cells)
    return table
