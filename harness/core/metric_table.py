"""The metric table: one declaration per metric a trial record carries, and every view derives from it.

A ``Metric`` says what the record key is called, how people read it (label, unit, display format), how
the leaderboard aggregates it over seeds (which statistics, under which column name, in which unit) and
in which views it appears: the trial's flat summary and the run's summary table, the record display
(``python -m harness show``) and the terminal leaderboard. ``harness.trial``, ``harness.core.records``,
``harness.experiment`` and ``harness.leaderboard`` read this table instead of listing names themselves.

This module imports nothing (no torch, no pandas) so that every one of them can import it. A method adds metrics
of its own on its class (``SearchMethod.metrics``); ``all_metrics`` is the whole table, with them.

Order matters: ``all_metrics()`` is the order of the record display's rows, ``METRICS`` that of the leaderboard's
metric columns (where the ranked metric, test accuracy, leads); the run summary has its own order
(``Metric.summary``). A missing or undefined value is shown as ``NULL`` in every view.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

NULL = "—"

# The statistics over seeds that the leaderboard computes (over the finite values; NaN where undefined).
STATISTICS = ("mean", "std", "median", "best")
# The further statistics a reviewer asks for, from ``harness.core.stats.summary`` over the same finite values: the
# interquartile mean and the 95 % percentile-bootstrap interval of the mean (seeded).
EXTRA_STATISTICS = ("iqm", "ci_low", "ci_high")


@dataclass(frozen=True)
class Metric:
    """One metric of a trial record.

    - ``key``: the record's key; ``label``: its name for people; ``unit``: the unit of the record's value
      (``""`` for none); ``unit_key``: a record key whose value is the unit where it varies between
      records (``device_hours_kind``: GPU- or CPU-hours), shown instead of ``unit`` when present.
    - ``decimals``: decimals of a record's value in tables (the run summary); ``significant``: significant
      digits in the record display.
    - ``stats``: the statistics over seeds that are leaderboard columns ``<column>_<stat>`` (from
      ``STATISTICS``, in this order); ``()`` leaves the metric to the leaderboard's trailing
      ``<key>_mean`` columns, where every other numeric record key is averaged too. ``extra_stats``: the
      statistics from ``EXTRA_STATISTICS`` (in the order given) that are further columns ``<column>_<stat>``
      right after those of ``stats`` (a metric with ``extra_stats`` needs ``stats``). ``column``: the
      columns' stem (default ``key``); ``divisor``: a statistic is divided by it (3600: seconds → hours);
      ``board_decimals``: decimals of these columns in the Markdown and terminal tables (default
      ``decimals``). A metric with a ``unit_key`` also gets that column, the units of its seeds joined by ``/``.
    - ``terminal``: columns of the terminal leaderboard as (header, statistics): one statistic, or several
      shown as ``a ± b``; ``terminal_if_any``: those columns only when some row has a value.
    - ``summary``: position (from 1) in the trial's flat summary (what every trial reports when it
      finishes) and in the run's summary table, whose column is headed ``summary_header``; 0 for neither.
    - ``show``: a row of the record display (when the record has the key; a null value shows ``NULL``).
    """

    key: str
    label: str
    unit: str = ""
    unit_key: str = ""
    decimals: int = 2
    significant: int = 4
    stats: tuple[str, ...] = ()
    extra_stats: tuple[str, ...] = ()
    column: str = ""
    divisor: float = 1.0
    board_decimals: int | None = None
    terminal: tuple[tuple[str, tuple[str, ...]], ...] = ()
    terminal_if_any: bool = False
    summary: int = 0
    summary_header: str = ""
    show: bool = True

    def __post_init__(self) -> None:
        unknown = [s for s in self.stats + tuple(s for _, group in self.terminal for s in group)
                   if s not in STATISTICS]
        if unknown:
            raise ValueError(f"metric {self.key}: unknown statistics {unknown}; known: {', '.join(STATISTICS)}")
        unknown = [s for s in self.extra_stats if s not in EXTRA_STATISTICS]
        if unknown:
            raise ValueError(f"metric {self.key}: unknown extra statistics {unknown}; "
                             f"known: {', '.join(EXTRA_STATISTICS)}")
        if self.extra_stats and not self.stats:
            raise ValueError(f"metric {self.key}: extra_stats without stats")
        if any(s not in self.stats for _, group in self.terminal for s in group):
            raise ValueError(f"metric {self.key}: a terminal column shows a statistic that is not in stats")
        if bool(self.summary) != bool(self.summary_header):
            raise ValueError(f"metric {self.key}: summary and summary_header go together")

    @property
    def stem(self) -> str:
        """The stem of the metric's leaderboard columns."""
        return self.column or self.key

    @property
    def board_digits(self) -> int:
        return self.decimals if self.board_decimals is None else self.board_decimals

    def stat_column(self, stat: str) -> str:
        return f"{self.stem}_{stat}"

    @property
    def board_columns(self) -> list[str]:
        """The leaderboard's columns of this metric, in order (none when it has no ``stats``)."""
        if not self.stats:
            return []
        return ([self.stat_column(s) for s in self.stats + self.extra_stats]
                + ([self.unit_key] if self.unit_key else []))


METRICS: tuple[Metric, ...] = (
    Metric("search_val_acc", "supernet val accuracy", "%", stats=("mean",),
           summary=1, summary_header="search val %"),
    Metric("val_acc", "validation accuracy", "%"),
    Metric("test_acc", "test accuracy", "%", stats=("mean", "std", "median", "best"),
           extra_stats=EXTRA_STATISTICS, terminal=(("test acc %", ("mean", "std")), ("best", ("best",))),
           summary=2, summary_header="test %"),
    Metric("search_seconds", "search time", "s", decimals=1, stats=("mean",), extra_stats=("ci_low", "ci_high"),
           column="search_hours", divisor=3600, board_decimals=2, terminal=(("search h", ("mean",)),), summary=5,
           summary_header="search s"),
    Metric("correlation_seconds", "correlation time", "s", decimals=1),
    Metric("eval_seconds", "evaluation time", "s", decimals=1, stats=("mean",), column="eval_hours",
           divisor=3600, board_decimals=2, summary=6, summary_header="eval s"),
    Metric("device_hours", "device time", "hours", unit_key="device_hours_kind", stats=("mean",)),
    # (a method's own metrics follow here: METHOD_METRICS_AFTER)
    Metric("peak_mem_mb", "peak memory", "MB"),
    Metric("params_m", "parameters", "M", decimals=3, stats=("mean",), board_decimals=2,
           terminal=(("params M", ("mean",)),), summary=3, summary_header="params M"),
    Metric("madds_m", "multiply-adds", "M", stats=("mean",), terminal=(("MAdds M", ("mean",)),)),
    # the final network's forward time on the trial's device (median of the timed passes; harness.trial)
    Metric("latency_ms", "latency, batch 1", "ms", stats=("mean", "std"),
           terminal=(("latency ms", ("mean", "std")),), terminal_if_any=True),
    Metric("latency_batch_ms", "latency, eval batch", "ms", stats=("mean", "std")),
    Metric("latency_batch", "latency batch size", decimals=0),
    Metric("op_kendall_tau", "op-level Kendall τ", decimals=3, stats=("mean",),
           terminal=(("op τ", ("mean",)),), summary=4, summary_header="op τ"),
    Metric("op_spearman_rho", "op-level Spearman ρ", decimals=3, stats=("mean",)),
    Metric("op_corr_edges", "op-level edges sampled", decimals=0),
    Metric("arch_kendall_tau", "arch-level Kendall τ", decimals=3, stats=("mean",),
           terminal=(("arch τ", ("mean",)),), terminal_if_any=True),
    Metric("arch_spearman_rho", "arch-level Spearman ρ", decimals=3, stats=("mean",)),
    Metric("oneshot_kendall_tau", "one-shot Kendall τ", decimals=3, stats=("mean",),
           terminal=(("one-shot τ", ("mean",)),), terminal_if_any=True),
    Metric("oneshot_spearman_rho", "one-shot Spearman ρ", decimals=3, stats=("mean",)),
)

BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}
# The trial's flat summary and the run summary's columns, in their order.
SUMMARY: tuple[Metric, ...] = tuple(sorted((m for m in METRICS if m.summary), key=lambda m: m.summary))
SUMMARY_KEYS: tuple[str, ...] = tuple(m.key for m in SUMMARY)

# A method's own metrics (``SearchMethod.metrics``, e.g. the cost of a model it trains) come after this one, among the
# costs, in the order the methods are registered (``all_metrics``).
METHOD_METRICS_AFTER = "device_hours"


def all_metrics() -> tuple[Metric, ...]:
    """``METRICS`` with every registered method's own metrics after ``METHOD_METRICS_AFTER``: the table of the
    record checks and the record display.

    The methods come from the registry (``harness.core.registry.all_methods``), imported here on the first call
    only, so that importing this module stays free of torch and of the plug-ins. A method's metric has no
    leaderboard statistics and no place in the summaries: the leaderboard's columns before the comparison
    (``harness.leaderboard.BASE_COLUMNS``) and the summaries are a fixed interface, the same whichever methods are
    registered; the leaderboard averages a method's metrics in its trailing ``<key>_mean`` columns, as every other
    numeric record key. Declaring such a metric, or one whose key another declaration has otherwise, is a
    programming error (``TypeError``)."""
    from harness.core.registry import all_methods  # a leaf (it imports the plug-ins on its first lookup)

    return _with_method_metrics(tuple(all_methods().values()))


@functools.lru_cache(maxsize=4)
def _with_method_metrics(methods: tuple[type, ...]) -> tuple[Metric, ...]:
    added: dict[str, Metric] = {}
    for cls in methods:
        for m in getattr(cls, "metrics", ()):
            if m.stats or m.summary:
                raise TypeError(f"{cls.__name__}.metrics: {m.key} has leaderboard statistics or a summary place; "
                                "a method's metrics have neither (harness.core.metric_table.all_metrics)")
            if added.setdefault(m.key, m) != m or m.key in BY_KEY:  # a subclass may repeat its parent's
                raise TypeError(f"{cls.__name__}.metrics: {m.key} is declared otherwise elsewhere")
    at = [m.key for m in METRICS].index(METHOD_METRICS_AFTER) + 1
    return METRICS[:at] + tuple(added.values()) + METRICS[at:]


def record_metrics(record: dict[str, Any]) -> tuple[Metric, ...]:
    """The metric table a record needs: ``METRICS`` when each of its numbers other than the seed has a key there, else
    ``all_metrics()``. Only the second imports the plug-ins (and torch, about 2 s), so the views of
    records without a method's own metric (``show``, ``leaderboard``, ``report``) start as fast as before methods
    declared metrics; a record with any unknown number gets the whole table, which is always right. (A method's
    metric that is null in a record without any other number of the method's is shown among the other keys.)"""
    unknown = any(k not in BY_KEY and k != "seed" and isinstance(v, (int, float)) and not isinstance(v, bool)
                  for k, v in record.items())
    return all_metrics() if unknown else METRICS


def shown_metrics(record: dict[str, Any] | None = None) -> tuple[Metric, ...]:
    """The record display's metric rows, in their order (``all_metrics`` with ``show``; for ``record``, the table
    it needs: ``record_metrics``)."""
    return tuple(m for m in (all_metrics() if record is None else record_metrics(record)) if m.show)


def metric(key: str) -> Metric:
    """The declaration of ``key`` (a method's own too: ``all_metrics``); a ``KeyError`` naming the known keys
    otherwise."""
    if key in BY_KEY:
        return BY_KEY[key]
    known = {m.key: m for m in all_metrics()}
    try:
        return known[key]
    except KeyError:
        raise KeyError(f"no metric {key!r}; known: {', '.join(known)}") from None


def board_metrics(ranked: str) -> tuple[Metric, ...]:
    """The metrics with leaderboard columns, ``ranked`` first (the leaderboard ranks by it), then in table order
    (``METRICS`` only: a method's own metrics have no columns of their own, ``all_metrics``)."""
    return tuple(sorted((m for m in METRICS if m.stats), key=lambda m: m.key != ranked))
