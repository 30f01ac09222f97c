"""Statistics of a comparison over seeds, as a reviewer expects them.

``summary``: the values' count, mean, standard deviation (ddof 1), median, interquartile mean (the mean of the
middle 50 %, ``scipy.stats.trim_mean(x, 0.25)``: with fewer than ``MIN_IQM_VALUES`` values nothing is trimmed and it
is the mean) and an interval of the mean: from ``MIN_CI_VALUES`` values on a 95 % bootstrap confidence interval
(``scipy.stats.bootstrap``, percentile method, seeded: the same records give the same interval), below that the
values' range, min to max (three seeds' percentile bootstrap interval *is* their range: a resample of the smallest
value three times has probability 1/27 > 2.5 %), labelled by ``interval``. Only finite values count; a statistic
that is undefined (no value; the spread or interval of one value) is NaN.

``paired_comparison``: a method against a baseline over the seeds both have (paired by seed, so the seed's
shared data split and initialisation cancel): the two-sided Wilcoxon signed-rank and paired t-test p-values, the
smallest p-value the Wilcoxon test can give with that many seeds (``min_attainable_p``), Cohen's d_z and the share
of the common seeds the method wins. ``holm``: Holm–Bonferroni adjusted p-values for the several methods compared
with one baseline; ``holm_floor``: the smallest adjusted p-value a row can get.

``duration_text``: a time in the unit that reads best, the one formatter of times and costs in every view.

These numbers state their limits: with 3 seeds no outcome gives a Wilcoxon (or sign-test) p-value below 0.25, so
the views print that limit instead of a bare p-value (``harness.leaderboard.p_text``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.stats

from harness.core.metric_table import NULL

BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 9999
CONFIDENCE = 0.95
MIN_COMMON_SEEDS = 2  # fewer common seeds than this: no p-value and no effect size
MIN_CI_VALUES = 5  # fewer values than this: the interval is their range (min, max), not a bootstrap 95 % CI
MIN_IQM_VALUES = 4  # fewer values than this: trim_mean(x, 0.25) trims nothing, so the IQM is the mean
SIGNIFICANCE = 0.05  # the level the views measure the smallest attainable p-value against
CI_LABEL, RANGE_LABEL = "95 % CI", "range"  # the two kinds of interval ``summary`` gives


def is_number(value: Any) -> bool:
    """An int or float (Python's or NumPy's), not a boolean."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def finite(values: Iterable[Any]) -> np.ndarray:
    """The finite numbers among ``values`` (None, NaN, ±inf and non-numbers dropped), as float64."""
    return np.array([float(v) for v in values if is_number(v) and math.isfinite(float(v))], dtype=np.float64)


def bootstrap_ci(x: np.ndarray, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean of ``x``; NaN below two values; the value itself when
    every value is equal (no resample differs).

    The interval always holds ``x.mean()`` itself: the mean of equal values (or the resamples' means) can land
    a rounding step past a bound (three seeds of 91.53 have the mean 91.53000000000002), and an error bar drawn
    from it, mean − low or high − mean, must never be negative."""
    nan = float("nan")
    if x.size < 2:
        return nan, nan
    mean = float(x.mean())
    if np.all(x == x[0]):
        low = high = float(x[0])
    else:
        res = scipy.stats.bootstrap((x,), np.mean, confidence_level=CONFIDENCE, n_resamples=BOOTSTRAP_RESAMPLES,
                                    method="percentile", random_state=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return min(low, mean), max(high, mean)


def value_range(x: np.ndarray) -> tuple[float, float]:
    """The range (min, max) of ``x``, widened to hold ``x.mean()`` (equal values' mean can land a rounding step
    past them, ``bootstrap_ci``); NaN below two values."""
    if x.size < 2:
        return float("nan"), float("nan")
    mean = float(x.mean())
    return min(float(x.min()), mean), max(float(x.max()), mean)


def interval_kind(n: int) -> str:
    """What ``summary``'s interval of ``n`` finite values is: ``CI_LABEL`` from ``MIN_CI_VALUES`` values,
    ``RANGE_LABEL`` from 2, ``""`` below (no interval)."""
    return CI_LABEL if n >= MIN_CI_VALUES else RANGE_LABEL if n >= 2 else ""


def summary(values: Sequence[Any], seed: int = BOOTSTRAP_SEED) -> dict[str, Any]:
    """``n``, ``mean``, ``std``, ``median``, ``iqm``, ``ci_low``, ``ci_high`` of the finite ``values``, and
    ``interval``: what ``ci_low``/``ci_high`` are (``interval_kind``: the bootstrap 95 % CI from ``MIN_CI_VALUES``
    values, the range below)."""
    x = finite(values)
    nan = float("nan")
    if x.size == 0:
        return {"n": 0, "mean": nan, "std": nan, "median": nan, "iqm": nan, "ci_low": nan, "ci_high": nan,
                "interval": ""}
    low, high = bootstrap_ci(x, seed) if x.size >= MIN_CI_VALUES else value_range(x)
    return {"n": int(x.size), "mean": float(x.mean()), "std": float(x.std(ddof=1)) if x.size > 1 else nan,
            "median": float(np.median(x)), "iqm": float(scipy.stats.trim_mean(x, 0.25)), "ci_low": low,
            "ci_high": high, "interval": interval_kind(int(x.size))}


def min_attainable_p(test: str, n: int) -> float:
    """The smallest two-sided p-value ``test`` can give on ``n`` paired differences, whatever they are (exact):

    - ``"wilcoxon"`` (signed-rank, zero differences dropped: ``n`` counts the non-zero ones) and ``"sign"``: under
      the null hypothesis each of the 2**n signings of the differences is equally likely, and the most extreme
      outcome (every difference of one sign) has probability 1 / 2**n on each side, so p ≥ 2 / 2**n (n = 3:
      0.25; n = 5: 0.0625; n = 6: 0.03125, the first below 0.05), at most 1. Ties among the differences do not
      change it (the all-one-sign signing stays the only most extreme one).
    - ``"ttest"`` (paired t-test): 0 from two differences on (t grows without bound as the differences' spread
      shrinks); the bound says nothing about whether its normality assumption holds.

    NaN where the test gives no p-value at all (no difference; the t-test with fewer than two)."""
    if test in ("wilcoxon", "sign"):
        return min(1.0, 2.0 ** (1 - n)) if n >= 1 else float("nan")
    if test == "ttest":
        return 0.0 if n >= 2 else float("nan")
    raise ValueError(f"unknown test {test!r}; known: wilcoxon, sign, ttest")


def paired_comparison(method: Mapping[Hashable, Any], baseline: Mapping[Hashable, Any]) -> dict[str, Any]:
    """Compare ``method`` with ``baseline`` (each seed → test accuracy) over the seeds where both have a
    finite value, by the differences d = method − baseline, one per common seed:

    - ``n_common``: the number of those seeds.
    - ``p_wilcoxon``: two-sided Wilcoxon signed-rank p-value of d (``scipy.stats.wilcoxon``, its defaults:
      zero differences dropped, ``zero_method="wilcox"``); 1.0 when every difference is zero.
    - ``p_ttest``: two-sided paired t-test p-value (``scipy.stats.ttest_rel``); NaN when the differences
      have zero variance (all equal: t is undefined or infinite, and no p-value is meaningful).
    - ``effect_size``: Cohen's d_z = mean(d) / std(d, ddof=1); NaN when that std is 0.
    - ``p_wilcoxon_min``: the smallest p-value the Wilcoxon test can give on these seeds
      (``min_attainable_p("wilcoxon", number of non-zero d)``); NaN with the p-value.
    - ``n_ties``: the number of zero differences (dropped by the Wilcoxon test).
    - ``won_share``: the share of the common seeds the method wins, (number of d > 0 + 0.5 × number of d = 0) /
      n_common — a count, not a probability; NaN without a common seed.
    - ``note``: ``""``, or why a statistic is NaN: fewer than ``MIN_COMMON_SEEDS`` common seeds (then every
      p-value and the effect size are NaN; ``won_share`` is still defined from one common seed), or
      differences of zero variance.

    SciPy's warnings (small samples, ties) are suppressed.
    """
    nan = float("nan")
    common = [seed for seed in method if seed in baseline
              and finite([method[seed]]).size and finite([baseline[seed]]).size]
    d = np.array([float(method[s]) - float(baseline[s]) for s in common], dtype=np.float64)
    n = int(d.size)
    ties = int(np.sum(d == 0))
    out: dict[str, Any] = {"n_common": n, "p_wilcoxon": nan, "p_wilcoxon_min": nan, "p_ttest": nan,
                           "effect_size": nan, "n_ties": ties,
                           "won_share": float((np.sum(d > 0) + 0.5 * ties) / n) if n else nan, "note": ""}
    if n < MIN_COMMON_SEEDS:
        out["note"] = f"too few common seeds ({n}): no p-value"
        return out
    out["p_wilcoxon_min"] = min_attainable_p("wilcoxon", n - ties) if ties < n else 1.0
    if np.all(d == 0):
        out["p_wilcoxon"] = 1.0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["p_wilcoxon"] = float(scipy.stats.wilcoxon(d).pvalue)
    std = float(d.std(ddof=1))
    if std == 0:
        out["note"] = "differences of zero variance: no t-test or effect size"
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["p_ttest"] = float(scipy.stats.ttest_rel(d, np.zeros_like(d)).pvalue)
    out["effect_size"] = float(d.mean()) / std
    return out


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni step-down adjusted p-values, in the input order. With the m finite p-values sorted
    ascending p_(1) ≤ … ≤ p_(m), the adjusted p_(i) is max over j ≤ i of min(1, (m − j + 1) · p_(j)):
    monotone in the raw p-values and at most 1. NaN (or None) entries stay NaN and do not count in m."""
    values = [float(p) if p is not None else float("nan") for p in pvalues]
    ranked = sorted((i for i, p in enumerate(values) if math.isfinite(p)), key=lambda i: values[i])
    m = len(ranked)
    out = [float("nan")] * len(values)
    running = 0.0
    for j, i in enumerate(ranked):
        running = max(running, min(1.0, (m - j) * values[i]))
        out[i] = running
    return out


def holm_floor(min_pvalues: Sequence[float]) -> list[float]:
    """The smallest Holm-adjusted p-value each of m compared rows can get (in input order), given the smallest raw
    p-value each can get (``min_attainable_p``; NaN entries: rows without a p-value, not counted in m): a row's
    adjusted p is at least its own raw p and at least m times the smallest raw p of the family, so at least
    min(1, max(own floor, m × the family's smallest floor)) — exactly attainable when the rows share one floor
    (the same number of common seeds, the usual case: 3 rows × 0.25 → 0.75)."""
    values = [float(p) if p is not None else float("nan") for p in min_pvalues]
    known = [p for p in values if math.isfinite(p)]
    if not known:
        return values
    lowest = min(known) * len(known)
    return [min(1.0, max(p, lowest)) if math.isfinite(p) else p for p in values]


# --- durations as people read them ------------------------------------------------------------------
# (the largest duration shown in a unit, the unit, seconds per unit), smallest first; beyond the last: days
_DURATION_UNITS = ((1e-3, "µs", 1e-6), (1.0, "ms", 1e-3), (60.0, "s", 1.0), (3600.0, "min", 60.0),
                   (48 * 3600.0, "h", 3600.0))


def _significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, never in exponent form (0.000442 → "0.000442", 1234 →
    "1234")."""
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def duration_text(seconds: Any) -> str:
    """A duration in the unit that reads best — µs, ms, s, min, h or d — with three significant digits
    ("442 µs", "0.957 s"→"957 ms", "1.50 min", "2.35 h"); "—" for a missing one. The one formatter of times and
    costs in every view (the leaderboard, the report, the run's summary, ``show``)."""
    if not (is_number(seconds) and math.isfinite(float(seconds))):
        return NULL
    if float(seconds) == 0:
        return "0 s"
    seconds = float(seconds)
    rounded = abs(float(f"{seconds:.3g}"))  # the unit by the rounded figure: 59.96 s reads "0.999 min", not "60.0 s"
    for limit, unit, scale in (*_DURATION_UNITS, (math.inf, "d", 86400.0)):
        if rounded < limit:  # the figure rounded in its own unit: 3007 s is "50.1 min" and 36 h "36.0 h"
            return f"{_significant(float(f'{seconds / scale:.3g}'))} {unit}"
    raise AssertionError("unreachable: the last unit has no limit")
