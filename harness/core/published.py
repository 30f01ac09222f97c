"""The papers' published figures (``published.toml`` beside this module), and which of them stands beside a
measured row.

The file holds what the papers report for the methods and spaces the harness runs, copied from their tables, each
figure as the paper states it (a test error stays an error, a search cost stays in GPU-days or seconds) with its
source, its statistic (an average over runs, the best of runs or a single figure) and the paper's budget in words.
``load_published`` reads and checks it (a malformed file is one line naming the row). ``match`` finds the rows that
stand beside a leaderboard row: the same method, space and dataset (searched and measured on that dataset), the
configuration keys of the row's ``variant`` equal to the record's (DARTS's ``order``), the row not marked context
only; of several, the one that names more configuration keys, then the first in the file. ``AS_TEST_ACC`` is the one
place a published figure becomes the harness's test accuracy (a test or top-1 error e: 100 − e).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import tomllib

from harness.core.errors import UserError

PUBLISHED_FILE = Path(__file__).with_name("published.toml")
PAPER_BUDGET = "paper"  # the harness budget that stands for the papers' settings
SPACES = ("darts", "hetero", "nb201", "proxyless")
DATASETS = ("cifar10", "cifar100", "imagenet16-120", "imagenet")
# metric: (its label in tables, what it is)
METRICS: dict[str, tuple[str, str]] = {
    "test_acc": ("test acc %", "test accuracy, %"),
    "valid_acc": ("valid acc %", "validation accuracy, % (NAS-Bench-201's validation split; CIFAR-10's is the "
                                 "cifar10-valid setting's, trained on 25k images)"),
    "test_error": ("test error %", "test error, %"),
    "top1_error": ("top-1 error %", "top-1 test error, %"),
    "top5_error": ("top-5 error %", "top-5 test error, %"),
    "params_m": ("params M", "parameters of the final network, millions"),
    "search_gpu_days": ("search GPU-days", "search cost, GPU-days"),
    "search_seconds": ("search GPU s", "search cost, GPU seconds"),
}
STATISTICS = {"mean": "an average over runs", "best": "the best of runs",
              "single": "one figure (the paper does not say it is an average or a best)"}
# The harness's test accuracy (%) of a published figure: a test or top-1 error e is the accuracy 100 − e (its std
# unchanged). The one place an error becomes an accuracy.
AS_TEST_ACC: dict[str, Callable[[float], float]] = {
    "test_acc": lambda v: v, "test_error": lambda v: 100.0 - v, "top1_error": lambda v: 100.0 - v}
# Hours of a published search cost (the harness's ``search_hours``).
SEARCH_HOURS = {"search_gpu_days": 24.0, "search_seconds": 1.0 / 3600.0}
SEARCH_UNITS = {"search_gpu_days": "GPU-days", "search_seconds": "GPU seconds"}  # as the papers write them
PERCENT = ("test_acc", "valid_acc", "test_error", "top1_error", "top5_error")  # printed with two decimals at least

_REQUIRED = ("method", "name", "space", "dataset", "metric", "mean", "statistic", "budget", "source")
_OPTIONAL = ("search_dataset", "std", "runs", "note", "variant", "compare")
_KEYS = _REQUIRED + _OPTIONAL


@dataclass(frozen=True)
class Published:
    """One published figure (a row of ``published.toml``, its group's keys filled in)."""

    method: str
    name: str  # as the paper names the row
    space: str
    dataset: str  # the dataset the figure is measured on
    search_dataset: str  # the dataset the search ran on
    metric: str
    mean: float
    std: float | None
    statistic: str  # mean, best or single
    runs: int | None
    budget: str  # the paper's budget in words
    source: str  # paper and table
    note: str
    variant: tuple[tuple[str, Any], ...]  # configuration keys a record must have
    compare: bool  # False: context only, never beside a measured row
    where: str  # "group 3 (AGNAS ..., Table 3), row 5": for messages

    @property
    def variant_text(self) -> str:
        """The variant as the leaderboard writes one: ``order=1`` (keys joined by ``,``)."""
        return ",".join(f"{k}={_value_text(v)}" for k, v in self.variant)

    @property
    def label(self) -> str:
        """The method with its variant: ``darts [order=1]``."""
        return self.method + (f" [{self.variant_text}]" if self.variant else "")

    def text(self) -> str:
        """The figure as the paper prints it (``figure_text``): ``3.00 ± 0.14``, ``2.93``; a count or a cost with
        its own decimals (``3.3``, ``4``, ``10889.87``)."""
        return figure_text(self.mean, self.std, 2 if self.metric in PERCENT else 0)

    def statistic_text(self) -> str:
        """``mean of 3 runs``, ``best of 10 runs``, ``mean`` (runs not stated) or ``one figure``."""
        word = "one figure" if self.statistic == "single" else self.statistic
        return f"{word} of {self.runs} runs" if self.runs and self.statistic != "single" else word

    def as_test_acc(self) -> tuple[float, float | None] | None:
        """The figure as the harness's test accuracy in % (``AS_TEST_ACC``), mean and std, each rounded to the
        decimals the paper printed; None for a figure that is no test accuracy or error."""
        convert = AS_TEST_ACC.get(self.metric)
        if convert is None:
            return None
        return round(convert(self.mean), decimals(self.mean)), self.std

    def search_hours(self) -> float | None:
        """A search cost in hours (``SEARCH_HOURS``); None for another metric."""
        scale = SEARCH_HOURS.get(self.metric)
        return None if scale is None else self.mean * scale

    def fits(self, config: dict[str, Any]) -> bool:
        """Whether a record's configuration has every key of the variant at its value (a bool only equals a bool)."""
        return all(key in config and _same(config[key], value) for key, value in self.variant)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def _value_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def decimals(value: float) -> int:
    """The decimals ``value`` needs (``3.0`` → 0, ``54.3`` → 1, ``0.059`` → 3; at most 6)."""
    text = repr(float(value))
    if "e" in text or "." not in text:
        return 0
    return min(6, len(text.split(".")[1].rstrip("0")) or 0)


def figure_text(mean: float, std: float | None = None, least: int = 2) -> str:
    """A published figure as the papers print them: at least ``least`` decimals (an accuracy's two), more where the
    paper gave more (``54.30 ± 0.00``, ``94.05 ± 0.059``); the std after " ± " where there is one."""
    def one(value: float) -> str:
        return f"{value:.{max(least, decimals(value))}f}"

    return one(mean) + (f" ± {one(std)}" if std is not None else "")


# --- reading and checking the file ------------------------------------------------------------------------------
def _problem(where: str, what: str, path: Path) -> UserError:
    return UserError(f"published figures {path}: {where}: {what}")


def _check(entry: dict[str, Any], where: str, path: Path) -> Published:
    """One row of the file (its group's keys filled in) as a ``Published``, or a one-line ``UserError``."""
    unknown = sorted(set(entry) - set(_KEYS))
    if unknown:
        raise _problem(where, f"unknown key '{unknown[0]}' (keys: {', '.join(_KEYS)})", path)
    missing = [key for key in _REQUIRED if key not in entry]
    if missing:
        raise _problem(where, f"no {missing[0]} (every row needs {', '.join(_REQUIRED)})", path)
    for key in ("method", "name", "space", "dataset", "metric", "statistic", "budget", "source", "search_dataset",
                "note"):
        if key in entry and (not isinstance(entry[key], str) or not entry[key].strip()):
            raise _problem(where, f"{key} must be a non-empty string", path)
    for key, valid in (("space", SPACES), ("dataset", DATASETS), ("search_dataset", DATASETS), ("metric", METRICS),
                       ("statistic", STATISTICS)):
        if key in entry and entry[key] not in valid:
            raise _problem(where, f"{key} '{entry[key]}' is not one of {', '.join(valid)}", path)
    for key in ("mean", "std"):
        value = entry.get(key)
        if key in entry and (isinstance(value, bool) or not isinstance(value, (int, float))
                             or not math.isfinite(value) or value < 0):
            raise _problem(where, f"{key} must be a finite number ≥ 0 (got {value!r})", path)
    runs = entry.get("runs")
    if "runs" in entry and (isinstance(runs, bool) or not isinstance(runs, int) or runs < 1):
        raise _problem(where, f"runs must be a whole number ≥ 1 (got {runs!r})", path)
    if not isinstance(entry.get("compare", True), bool):
        raise _problem(where, "compare must be true or false", path)
    variant = entry.get("variant", {})
    if not isinstance(variant, dict) or any(not isinstance(v, (bool, int, float, str)) for v in variant.values()):
        raise _problem(where, "variant must be a table of configuration keys and plain values, e.g. { order = 2 }",
                       path)
    return Published(method=entry["method"], name=entry["name"], space=entry["space"], dataset=entry["dataset"],
                     search_dataset=entry.get("search_dataset", entry["dataset"]), metric=entry["metric"],
                     mean=float(entry["mean"]), std=float(entry["std"]) if "std" in entry else None,
                     statistic=entry["statistic"], runs=runs, budget=entry["budget"], source=entry["source"],
                     note=entry.get("note", ""), variant=tuple(sorted(variant.items())),
                     compare=entry.get("compare", True), where=where)


def _identity(row: Published) -> tuple[Any, ...]:
    """What two rows set beside measured rows must not share: one figure per method, variant, space, datasets,
    metric and kind of statistic (a best beside an average is two figures; an average beside a single one is not)."""
    return (row.method, row.variant, row.space, row.dataset, row.search_dataset, row.metric,
            row.statistic == "best")


@lru_cache(maxsize=8)
def _load(path: Path) -> tuple[Published, ...]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UserError(f"cannot read the published figures {path}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"published figures {path}: not valid TOML: {' '.join(str(err).split())}") from None
    groups = data.get("group")
    if set(data) - {"group"} or not isinstance(groups, list) or not groups:
        raise UserError(f"published figures {path}: expected [[group]] tables only, each with a rows list")
    rows: list[Published] = []
    for g, group in enumerate(groups, 1):
        entries = group.get("rows") if isinstance(group, dict) else None
        name = f"group {g}" + (f" ({group['source']})" if isinstance(group, dict)
                               and isinstance(group.get("source"), str) else "")
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise _problem(name, "needs rows = [ { method = ..., ... }, ... ]", path)
        defaults = {k: v for k, v in group.items() if k != "rows"}
        for r, entry in enumerate(entries, 1):
            label = " ".join(str(entry.get(k, "")) for k in ("method", "dataset", "metric") if entry.get(k))
            rows.append(_check({**defaults, **entry}, f"{name}, row {r}" + (f" ({label})" if label else ""), path))
    seen: dict[tuple[Any, ...], Published] = {}
    for row in rows:
        if not row.compare:
            continue
        if _identity(row) in seen:
            raise _problem(row.where, f"the same figure as {seen[_identity(row)].where}: mark one compare = false or "
                                      "give it a variant", path)
        seen[_identity(row)] = row
    return tuple(rows)


def load_published(path: Path | str | None = None) -> tuple[Published, ...]:
    """Every row of the published-figures file (default: the bundled ``published.toml``), checked: an unreadable
    or malformed file, an unknown key or value, a row without a source, or two rows that would stand beside the
    same measured figure are one line (``UserError``) naming the row."""
    return _load(Path(path) if path is not None else PUBLISHED_FILE)


# --- which rows stand beside a measured row ---------------------------------------------------------------------
@dataclass(frozen=True)
class Match:
    """The published figures of one measured row: its test accuracy as an average or single figure (``figure``)
    and as a best (``best``), the final network's parameters and the search cost."""

    figure: Published | None
    best: Published | None
    params: Published | None
    search: Published | None

    def rows(self) -> list[Published]:
        return [r for r in (self.figure, self.best, self.params, self.search) if r is not None]

    @property
    def test_acc_row(self) -> Published | None:
        """The row the comparison is about: the average or single figure, else the best."""
        return self.figure or self.best


def candidates(method: str, space: str, dataset: str, config: dict[str, Any] | None,
               rows: Iterable[Published] | None = None) -> list[Published]:
    """The rows that may stand beside a measured row of ``method`` on ``space``, searched and tested on ``dataset``,
    whose records share ``config``: not context only, the variant's keys as in ``config``; the more keys a row's
    variant names the earlier it comes, then in file order."""
    rows = load_published() if rows is None else rows
    found = [r for r in rows if r.compare and r.method == method and r.space == space and r.dataset == dataset
             and r.search_dataset == dataset and r.fits(config or {})]
    return sorted(found, key=lambda r: -len(r.variant))  # a stable sort: file order within a specificity


def match(method: str, space: str, dataset: str, config: dict[str, Any] | None = None,
          rows: Iterable[Published] | None = None) -> Match | None:
    """The published figures of a measured row (``candidates``, the first of each kind), or None where the papers
    give no test accuracy or error for it."""
    found = candidates(method, space, dataset, config, rows)

    def first(test: Callable[[Published], bool]) -> Published | None:
        return next((r for r in found if test(r)), None)

    figure = first(lambda r: r.metric in AS_TEST_ACC and r.statistic != "best")
    best = first(lambda r: r.metric in AS_TEST_ACC and r.statistic == "best")
    if figure is None and best is None:
        return None
    return Match(figure, best, first(lambda r: r.metric == "params_m"), first(lambda r: r.metric in SEARCH_HOURS))


def budget_note(budget: str) -> str:
    """What a measured row of ``budget`` must say beside a published figure: "" at the paper budget, else that the
    figures were obtained at different budgets."""
    if budget == PAPER_BUDGET:
        return ""
    return f"published figures are at the papers' budget; this row is budget {budget}"
