"""Statistics of a comparison over seeds, as a reviewer expects them.

``summary``: the values' count, mean, standard deviation (ddof 1), median, interquartile mean (the mean of the
middle 50 %, ``scipy.stats.trim_mean(x, 0.25)``) and a 95 % bootstrap confidence interval of the mean
(``scipy.stats.bootstrap``, percentile method, seeded: the same records give the same interval). Only finite
values count; a statistic that is undefined (no value; the spread or interval of one value) is NaN.

``paired_comparison``: a method against a baseline over the seeds both have (paired by seed, so the seed's
shared data split and initialisation cancel): the two-sided Wilcoxon signed-rank and paired t-test p-values,
Cohen's d_z and the fraction of seeds the method wins. ``holm``: Holm–Bonferroni adjusted p-values for the
several methods compared with one baseline.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.stats

BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 9999
CONFIDENCE = 0.95
MIN_COMMON_SEEDS = 2  # fewer common seeds than this: no p-value and no effect size


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


def summary(values: Sequence[Any], seed: int = BOOTSTRAP_SEED) -> dict[str, float]:
    """``n``, ``mean``, ``std``, ``median``, ``iqm``, ``ci_low``, ``ci_high`` of the finite ``values``."""
    x = finite(values)
    nan = float("nan")
    if x.size == 0:
        return {"n": 0, "mean": nan, "std": nan, "median": nan, "iqm": nan, "ci_low": nan, "ci_high": nan}
    low, high = bootstrap_ci(x, seed)
    return {"n": int(x.size), "mean": float(x.mean()), "std": float(x.std(ddof=1)) if x.size > 1 else nan,
            "median": float(np.median(x)), "iqm": float(scipy.stats.trim_mean(x, 0.25)), "ci_low": low,
            "ci_high": high}


def paired_comparison(method: Mapping[Hashable, Any], baseline: Mapping[Hashable, Any]) -> dict[str, Any]:
    """Compare ``method`` with ``baseline`` (each seed → test accuracy) over the seeds where both have a
    finite value, by the differences d = method − baseline, one per common seed:

    - ``n_common``: the number of those seeds.
    - ``p_wilcoxon``: two-sided Wilcoxon signed-rank p-value of d (``scipy.stats.wilcoxon``, its defaults:
      zero differences dropped, ``zero_method="wilcox"``); 1.0 when every difference is zero.
    - ``p_ttest``: two-sided paired t-test p-value (``scipy.stats.ttest_rel``); NaN when the differences
      have zero variance (all equal: t is undefined or infinite, and no p-value is meaningful).
    - ``effect_size``: Cohen's d_z = mean(d) / std(d, ddof=1); NaN when that std is 0.
    - ``p_beats``: (number of d > 0 + 0.5 × number of d = 0) / n_common; NaN without a common seed.
    - ``note``: ``""``, or why a statistic is NaN: fewer than ``MIN_COMMON_SEEDS`` common seeds (then every
      p-value and the effect size are NaN; ``p_beats`` is still defined from one common seed), or
      differences of zero variance.

    SciPy's warnings (small samples, ties) are suppressed.
    """
    nan = float("nan")
    common = [seed for seed in method if seed in baseline
              and finite([method[seed]]).size and finite([baseline[seed]]).size]
    d = np.array([float(method[s]) - float(baseline[s]) for s in common], dtype=np.float64)
    n = int(d.size)
    out: dict[str, Any] = {"n_common": n, "p_wilcoxon": nan, "p_ttest": nan, "effect_size": nan,
                           "p_beats": float((np.sum(d > 0) + 0.5 * np.sum(d == 0)) / n) if n else nan, "note": ""}
    if n < MIN_COMMON_SEEDS:
        out["note"] = f"too few common seeds ({n}): no p-value"
        return out
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
