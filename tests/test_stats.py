"""harness.core.stats (summary, bootstrap interval, paired comparison, Holm) and its leaderboard columns, checked
against hand computations and SciPy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from harness.core.stats import MIN_COMMON_SEEDS, bootstrap_ci, finite, holm, paired_comparison, summary
from harness.leaderboard import BASE_COLUMNS, build_leaderboard

NAN = float("nan")


# --- summary and bootstrap_ci ------------------------------------------------------------------
def test_summary_against_hand_values_and_scipy():
    values = [1.0, None, 2, NAN, 4.0, float("inf"), 10.0, "x", True]  # only 1, 2, 4, 10 are finite numbers
    s = summary(values)
    x = np.array([1.0, 2.0, 4.0, 10.0])
    assert list(finite(values)) == list(x)
    assert s["n"] == 4
    assert s["mean"] == pytest.approx(4.25)
    assert s["std"] == pytest.approx(math.sqrt(48.75 / 3))  # squared deviations 10.5625 + 5.0625 + 0.0625 + 33.0625
    assert s["std"] == pytest.approx(np.std(x, ddof=1))
    assert s["median"] == pytest.approx(3.0)
    assert s["iqm"] == pytest.approx(3.0)  # the middle 50 %: 2 and 4
    assert s["iqm"] == pytest.approx(scipy.stats.trim_mean(x, 0.25))
    assert (s["ci_low"], s["ci_high"]) == bootstrap_ci(x)
    assert 1.0 <= s["ci_low"] < 4.25 < s["ci_high"] <= 10.0


def test_summary_iqm_of_eight_values():
    x = [8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 100.0]  # sorted 1 2 3 5 6 7 8 100: the middle four 3 5 6 7
    assert summary(x)["iqm"] == pytest.approx((3 + 5 + 6 + 7) / 4)
    assert summary(x)["iqm"] == pytest.approx(scipy.stats.trim_mean(x, 0.25))


def test_summary_single_value_ties_and_empty():
    one = summary([None, 93.5, NAN])
    assert one["n"] == 1 and one["mean"] == one["median"] == one["iqm"] == 93.5
    assert math.isnan(one["std"]) and math.isnan(one["ci_low"]) and math.isnan(one["ci_high"])

    ties = summary([3.0, 3.0, 3.0])
    assert ties["n"] == 3 and ties["mean"] == ties["median"] == ties["iqm"] == 3.0 and ties["std"] == 0.0
    assert (ties["ci_low"], ties["ci_high"]) == (3.0, 3.0)  # no resample differs

    for empty in ([], [None, NAN, float("-inf")]):
        s = summary(empty)
        assert s["n"] == 0 and all(math.isnan(s[k]) for k in ("mean", "std", "median", "iqm", "ci_low", "ci_high"))


def test_bootstrap_ci_is_seeded_and_contains_the_mean():
    x = np.array([90.0, 91.5, 92.0, 94.0, 97.0])
    assert bootstrap_ci(x) == bootstrap_ci(x)
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    low, high = bootstrap_ci(x)
    assert x.min() <= low < x.mean() < high <= x.max()
    direct = scipy.stats.bootstrap((x,), np.mean, confidence_level=0.95, n_resamples=9999, method="percentile",
                                   random_state=np.random.default_rng(0))
    assert (low, high) == (direct.confidence_interval.low, direct.confidence_interval.high)
    assert all(math.isnan(v) for v in bootstrap_ci(np.array([1.0])))


# --- paired_comparison -------------------------------------------------------------------------
def test_paired_comparison_against_scipy_on_the_common_seeds():
    # seed 4 only in the baseline, seed 6 only in the method, seed 5 NaN in the method, seed 7 None in the baseline
    method = {0: 92.0, 1: 93.0, 2: 91.0, 3: 95.0, 5: NAN, 6: 99.0, 7: 90.0, 8: 94.5}
    baseline = {0: 90.0, 1: 93.5, 2: 90.0, 3: 92.0, 4: 80.0, 5: 90.0, 7: None, 8: 90.0}
    common = [0, 1, 2, 3, 8]
    m = [method[s] for s in common]
    b = [baseline[s] for s in common]
    d = np.subtract(m, b)  # 2, -0.5, 1, 3, 4.5
    r = paired_comparison(method, baseline)
    assert r["n_common"] == 5 and r["note"] == ""
    assert r["p_wilcoxon"] == pytest.approx(scipy.stats.wilcoxon(d).pvalue)
    assert r["p_wilcoxon"] == pytest.approx(2 * 2 / 32)  # exact: W- = 1 (rank of 0.5); W- <= 1 in 2 of 32 signings
    assert r["p_ttest"] == pytest.approx(scipy.stats.ttest_rel(m, b).pvalue)
    assert r["effect_size"] == pytest.approx(2.0 / np.std(d, ddof=1))  # mean of d is 10 / 5
    assert r["p_beats"] == pytest.approx(4 / 5)


def test_paired_comparison_ties_and_zero_differences():
    method = {s: 90.0 + d for s, d in enumerate([1.0, -1.0, 2.0, 0.0, 3.0, 3.0])}
    baseline = {s: 90.0 for s in range(6)}
    d = np.array([1.0, -1.0, 2.0, 0.0, 3.0, 3.0])
    r = paired_comparison(method, baseline)
    assert r["n_common"] == 6
    assert r["p_wilcoxon"] == pytest.approx(scipy.stats.wilcoxon(d, zero_method="wilcox").pvalue)
    assert r["p_ttest"] == pytest.approx(scipy.stats.ttest_rel(list(method.values()), list(baseline.values())).pvalue)
    assert r["effect_size"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert r["p_beats"] == pytest.approx((4 + 0.5) / 6)  # four wins, one tie


def test_paired_comparison_all_differences_zero_or_equal():
    same = paired_comparison({0: 90.0, 1: 91.0, 2: 92.0}, {0: 90.0, 1: 91.0, 2: 92.0})
    assert same["p_wilcoxon"] == 1.0 and same["p_beats"] == 0.5
    assert math.isnan(same["p_ttest"]) and math.isnan(same["effect_size"]) and same["note"]

    shifted = paired_comparison({0: 91.0, 1: 92.0, 2: 93.0}, {0: 90.0, 1: 91.0, 2: 92.0})  # d = 1, 1, 1
    assert shifted["p_wilcoxon"] == pytest.approx(scipy.stats.wilcoxon([1.0, 1.0, 1.0]).pvalue)
    assert math.isnan(shifted["p_ttest"]) and math.isnan(shifted["effect_size"])  # zero variance of d
    assert shifted["p_beats"] == 1.0


def test_paired_comparison_too_few_common_seeds():
    assert MIN_COMMON_SEEDS == 2
    one = paired_comparison({0: 91.0, 1: 95.0}, {0: 92.0, 2: 90.0})
    assert one["n_common"] == 1 and one["note"] == "too few common seeds (1): no p-value"
    assert all(math.isnan(one[k]) for k in ("p_wilcoxon", "p_ttest", "effect_size"))
    assert one["p_beats"] == 0.0  # 91 < 92 on seed 0
    none = paired_comparison({0: 91.0}, {1: 92.0, 0: NAN})
    assert none["n_common"] == 0 and none["note"] == "too few common seeds (0): no p-value"
    assert math.isnan(none["p_beats"])


# --- holm --------------------------------------------------------------------------------------
def test_holm_known_values():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 → running max 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    assert holm([0.2]) == [0.2] and holm([]) == []


def test_holm_nan_entries_stay_nan_and_do_not_count():
    out = holm([0.01, NAN, 0.04, None, 0.03, 0.005])
    assert math.isnan(out[1]) and math.isnan(out[3])
    assert [out[i] for i in (0, 2, 4, 5)] == pytest.approx([0.03, 0.06, 0.06, 0.02])  # m = 4, as without the NaNs
    assert holm([NAN, 0.02]) == pytest.approx([NAN, 0.02], nan_ok=True)


# --- the leaderboard's columns -----------------------------------------------------------------
# The leaderboard's columns before the paired comparison (up to rank), as CSV readers know them.
OLD_BASE_COLUMNS = [
    "method", "space", "dataset", "budget", "variant", "n_seeds", "seeds", "test_acc_mean", "test_acc_std",
    "test_acc_median", "test_acc_best", "search_val_acc_mean", "search_hours_mean", "eval_hours_mean",
    "device_hours_mean", "device_hours_kind", "params_m_mean", "madds_m_mean", "latency_ms_mean", "latency_ms_std",
    "latency_batch_ms_mean", "latency_batch_ms_std", "op_kendall_tau_mean", "op_spearman_rho_mean",
    "arch_kendall_tau_mean", "arch_spearman_rho_mean", "oneshot_kendall_tau_mean", "oneshot_spearman_rho_mean",
    "p_vs_darts", "rank"]
COMPARISON = ["baseline", "n_common_seeds", "p_wilcoxon", "p_ttest", "p_holm", "effect_size", "p_beats_baseline",
              "comparison_note"]


def test_base_columns_are_the_old_ones_with_the_comparison_and_the_statistics():
    expected = list(OLD_BASE_COLUMNS)
    at = expected.index("p_vs_darts")
    expected[at:at + 1] = COMPARISON
    at = expected.index("test_acc_best") + 1
    expected[at:at] = ["test_acc_iqm", "test_acc_ci_low", "test_acc_ci_high"]
    at = expected.index("search_hours_mean") + 1
    expected[at:at] = ["search_hours_ci_low", "search_hours_ci_high"]
    assert BASE_COLUMNS == expected
    assert [c for c in BASE_COLUMNS if c not in COMPARISON and "_iqm" not in c and "_ci_" not in c] == [
        c for c in OLD_BASE_COLUMNS if c != "p_vs_darts"]


def _record(method, seed, test_acc, **extra):
    record = {"method": method, "space": "darts", "dataset": "digits", "budget": "smoke", "seed": seed,
              "overrides": {}, "test_acc": test_acc, "search_seconds": 3600.0 * (seed + 1), "eval_seconds": 60.0,
              "finished_at": "2025-01-01T00:00:00+00:00"}
    record.update(extra)
    return record


def _comparison_records():
    darts = [_record("darts", s, 90.0 + s) for s in range(5)]  # 90 .. 94
    a = [_record("a", s, acc) for s, acc in enumerate([91.0, 93.0, 95.0, 97.0, 99.0])]  # d = 1, 2, 3, 4, 5
    # b: d = -0.5, 1, 2, 3 on seeds 0-3; seed 4 NaN; seed 7 has no darts record
    b = [_record("b", s, acc) for s, acc in [(0, 89.5), (1, 92.0), (2, 94.0), (3, 96.0), (4, NAN), (7, 99.0)]]
    return darts + a + b


def test_leaderboard_paired_columns_and_holm_across_two_methods():
    df = build_leaderboard(_comparison_records())
    assert list(df.columns[:len(BASE_COLUMNS)]) == BASE_COLUMNS
    rows = {r.method: r for r in df.itertuples(index=False)}
    a, b, darts = rows["a"], rows["b"], rows["darts"]

    d_a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert a.baseline == "darts" and a.n_common_seeds == 5 and a.comparison_note == ""
    assert a.p_wilcoxon == pytest.approx(2 / 32)  # every d positive: the two extreme signings of 32
    assert a.p_wilcoxon == pytest.approx(scipy.stats.wilcoxon(d_a).pvalue)
    assert a.p_ttest == pytest.approx(scipy.stats.ttest_rel([91.0, 93.0, 95.0, 97.0, 99.0],
                                                            [90.0, 91.0, 92.0, 93.0, 94.0]).pvalue)
    assert a.effect_size == pytest.approx(3.0 / math.sqrt(2.5))  # mean 3, variance (4 + 1 + 0 + 1 + 4) / 4
    assert a.p_beats_baseline == 1.0

    d_b = np.array([-0.5, 1.0, 2.0, 3.0])
    assert b.n_seeds == 6 and b.n_common_seeds == 4 and b.comparison_note == ""
    assert b.p_wilcoxon == pytest.approx(2 * 2 / 16)  # W- = 1: 2 of 16 signings, two-sided
    assert b.p_wilcoxon == pytest.approx(scipy.stats.wilcoxon(d_b).pvalue)
    assert b.p_ttest == pytest.approx(scipy.stats.ttest_rel([89.5, 92.0, 94.0, 96.0], [90.0, 91.0, 92.0, 93.0]).pvalue)
    assert b.effect_size == pytest.approx(d_b.mean() / d_b.std(ddof=1))
    assert b.p_beats_baseline == pytest.approx(3 / 4)

    # Holm over a and b (m = 2): a's 0.0625 × 2 = 0.125; b's 0.25 × 1 = 0.25 (not below 0.125)
    assert a.p_holm == pytest.approx(0.125) and b.p_holm == pytest.approx(0.25)
    assert (a.p_holm, b.p_holm) == pytest.approx(tuple(holm([a.p_wilcoxon, b.p_wilcoxon])))

    assert darts.baseline == "darts" and darts.comparison_note == "" and pd.isna(darts.n_common_seeds)
    assert all(math.isnan(v) for v in (darts.p_wilcoxon, darts.p_ttest, darts.p_holm, darts.effect_size,
                                       darts.p_beats_baseline))

    # the statistics columns: summary() of the finite values (search hours: seconds / 3600)
    assert a.test_acc_iqm == pytest.approx(95.0)  # the middle three of five: 93, 95, 97
    accs = summary([91.0, 93.0, 95.0, 97.0, 99.0])
    assert (a.test_acc_ci_low, a.test_acc_ci_high) == (accs["ci_low"], accs["ci_high"])
    assert a.test_acc_ci_low < a.test_acc_mean == 95.0 < a.test_acc_ci_high
    assert b.test_acc_iqm == pytest.approx(scipy.stats.trim_mean([89.5, 92.0, 94.0, 96.0, 99.0], 0.25))
    hours = summary([1.0, 2.0, 3.0, 4.0, 5.0])
    assert a.search_hours_ci_low == pytest.approx(hours["ci_low"])
    assert a.search_hours_ci_high == pytest.approx(hours["ci_high"])
    assert a.search_hours_mean == pytest.approx(3.0) and a.search_hours_ci_low < 3.0 < a.search_hours_ci_high


def test_leaderboard_other_baseline():
    df = build_leaderboard(_comparison_records(), baseline="a")
    rows = {r.method: r for r in df.itertuples(index=False)}
    assert set(df["baseline"]) == {"a"}
    assert math.isnan(rows["a"].p_wilcoxon) and rows["a"].comparison_note == ""
    darts = rows["darts"]  # d = -1 .. -5
    assert darts.n_common_seeds == 5 and darts.p_beats_baseline == 0.0
    assert darts.p_wilcoxon == pytest.approx(scipy.stats.wilcoxon([-1.0, -2.0, -3.0, -4.0, -5.0]).pvalue)
    assert darts.effect_size == pytest.approx(-3.0 / math.sqrt(2.5))


def test_reference_rows_are_not_compared():
    from harness.core.benchmarks.nb201 import load_table

    genotype = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"
    info = {"index": 0, "arch": genotype, "table": load_table().describe()}
    records = [_record(method, s, 90.0 + s + (method == "a") * s, space="nb201", dataset="cifar10",
                       benchmark_info=info) for method in ("darts", "a") for s in range(2)]
    df = build_leaderboard(records, reference=True)
    optimum = df[df["method"] == "optimum"].iloc[0]
    assert optimum.baseline == "" and optimum.comparison_note == "" and pd.isna(optimum.n_common_seeds)
    assert optimum[["p_wilcoxon", "p_ttest", "p_holm", "effect_size", "p_beats_baseline"]].isna().all()
    a = df[df["method"] == "a"].iloc[0]  # d = 0, 1: the zero dropped, one positive difference left
    assert a.n_common_seeds == 2 and a.p_wilcoxon == pytest.approx(scipy.stats.wilcoxon([0.0, 1.0]).pvalue)
    assert a.p_holm == a.p_wilcoxon and a.p_beats_baseline == pytest.approx(0.75)


@pytest.mark.parametrize("value", [0.1, 91.53, 88.1, 100.0 / 3])
def test_the_interval_of_equal_values_holds_their_mean(value):
    """The mean of equal values can land a rounding step beside the value: the interval holds the mean itself,
    so an error bar (mean − low, high − mean) is never negative."""
    stats = summary([value] * 3)
    assert stats["ci_low"] <= stats["mean"] <= stats["ci_high"]
    low, high = bootstrap_ci(np.array([value] * 3))
    assert low <= float(np.array([value] * 3).mean()) <= high
