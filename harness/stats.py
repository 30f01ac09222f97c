"""Statistics of a comparison over seeds, as a reviewer expects them.

``summary``: the values' count, mean, standard deviation (ddof 1), median, interquartile mean (the mean of the
middle 50 %, ``scipy.stats.trim_mean(x, 0.25)``) and a 95 % bootstrap confidence interval of the mean
(``scipy.stats.bootstrap``, percentile method, seeded: the same records give the same interval). Only finite
values count; a statistic that is undefined (no value; the spread or interval of one value) is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.stats

BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 9999
CONFIDENCE = 0.95


def finite(values: Sequence[Any]) -> np.ndarray:
    """The finite numbers among ``values`` (None, NaN, ±inf and non-numbers dropped), as float64."""
    out = []
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            continue
        if math.isfinite(float(value)):
            out.append(float(value))
    return np.array(out, dtype=np.float64)


def bootstrap_ci(x: np.ndarray, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean of ``x``; NaN below two values; the value itself when
    every value is equal (no resample differs)."""
    nan = float("nan")
    if x.size < 2:
        return nan, nan
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = scipy.stats.bootstrap((x,), np.mean, confidence_level=CONFIDENCE, n_resamples=BOOTSTRAP_RESAMPLES,
                                method="percentile", random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


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
