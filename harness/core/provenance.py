"""Where a record's search figures come from: the benchmark table a record names (``record_benchmark``) and whether
its search queried that benchmark in place of training (``benchmark_queries``, ``queried_figure``,
``search_source``).

A search that queries a benchmark (``SearchMethod.benchmark_queries``: random search on NAS-Bench-201) trains and
validates nothing: its "search validation accuracy" is the benchmark's validation figure of the cell it kept, and its
cost is its number of queries. Every view says so in the same words: the leaderboard, the report, the plots and
``show``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from harness.core.errors import UserError, one_line
from harness.core.registry import all_methods, all_spaces, get_space
from harness.core.stats import is_number


def record_benchmark(record: dict[str, Any], tables: dict[str, Any]) -> Any:
    """The benchmark table the record's ``benchmark_info["table"]`` describes, loaded through its space (``tables``
    caches each description); None where the record names none, or its space has none. A table that cannot be
    loaded here (results copied from a machine where it lies elsewhere) is None too, said once per table in one
    warning line: what needs it — the optimum row, the anytime plot — is left out, the rest is shown (the figures'
    sources in the record's own words)."""
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
                  "the anytime plot; the figures' sources are the records' own words)", file=sys.stderr)
            tables[key] = None
    return tables[key]


def benchmark_queries(record: dict[str, Any]) -> float | None:
    """How many times the record's search queried its space's benchmark in place of training (its method's
    ``benchmark_queries`` key of the recorded configuration), where the trial had a benchmark (``benchmark_info``);
    None for a search that trains, or a method not registered here."""
    if not isinstance(record.get("benchmark_info"), dict) or not isinstance(record.get("config"), dict):
        return None
    method = all_methods().get(str(record.get("method")))
    key = getattr(method, "benchmark_queries", None)
    value = record["config"].get(key) if key else None
    return float(value) if is_number(value) else None


def queried_figure(record: dict[str, Any], tables: dict[str, Any]) -> tuple[float, str] | None:
    """For a search that queried its benchmark (``benchmark_queries``): the number of queries and the figure it
    selected by, as the benchmark labels it ("NAS-Bench-201 CIFAR-10 validation (…), 200 epochs":
    ``Benchmark.valid_column``, ``figure_label``; "the benchmark's validation accuracy" where the table is not on
    this machine). None for a search that trains."""
    queries = benchmark_queries(record)
    if queries is None:
        return None
    table = record_benchmark(record, tables)
    what = (table.figure_label(table.valid_column(str(record.get("dataset")))) if table is not None
            else "the benchmark's validation accuracy")
    return queries, what


def search_source(record: dict[str, Any], tables: dict[str, Any]) -> str:
    """How the record's search saw data: "benchmark queries: 3 per seed of NAS-Bench-201 CIFAR-10 validation (…),
    200 epochs; nothing trained" for a search that queries the benchmark (``queried_figure``), else "trained on
    <dataset>"."""
    queried = queried_figure(record, tables)
    if queried is None:
        return f"trained on {record.get('dataset')}"
    return f"benchmark queries: {count_text(queried[0])} per seed of {queried[1]}; nothing trained"


def count_text(value: float) -> str:
    """A count: whole numbers without decimals, a mean over seeds with one."""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
