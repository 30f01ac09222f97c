"""harness.core.stats (summary, bootstrap interval or range, paired comparison, the smallest attainable p-values,
Holm) and its leaderboard columns, checked against hand computations and SciPy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from harness.core.stats import (
    MIN_CI_VALUES,
    MIN_COMMON_SEEDS,
    bootstrap_ci,
    finite,
    holm,
    holm_floor,
    interval_kind,
    min_attainable_p,
    paired_comparison,
    summary,
)
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
    assert (s["ci_low"], s["ci_high"], s["interval"]) == (1.0, 10.0, "range")  # 4 values: their range, not a CI
    five = summary([1.0, 2.0, 4.0, 10.0, 3.0])
    assert (five["ci_low"], five["ci_high"]) == bootstrap_ci(np.array([1.0, 2.0, 4.0, 10.0, 3.0]))
    assert five["interval"] == "95 % CI" and 1.0 <= five["ci_low"] < 4.0 < five["ci_high"] <= 10.0


def test_summary_iqm_of_eight_values():
    x = [8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 100.0]  # sorted 1 2 3 5 6 7 8 100: the middle four 3 5 6 7
    assert summary(x)["iqm"] == pytest.approx((3 + 5 + 6 + 7) / 4)
    assert summary(x)["iqm"] == pytest.approx(scipy.stats.trim_mean(x, 0.25))


def test_summary_single_value_ties_and_empty():
    one = summary([None, 93.5, NAN])
    assert one["n"] == 1 and one["mean"] == one["median"] == one["iqm"] == 93.5
    assert math.isnan(one["std"]) and math.isnan(one["ci_low"]) and math.isnan(one["ci_high"])
    assert one["interval"] == ""

    ties = summary([3.0, 3.0, 3.0])
    assert ties["n"] == 3 and ties["mean"] == ties["median"] == ties["iqm"] == 3.0 and ties["std"] == 0.0
    assert (ties["ci_low"], ties["ci_high"]) == (3.0, 3.0)  # their range

    for empty in ([], [None, NAN, float("-inf")]):
        s = summary(empty)
        assert s["n"] == 0 and all(math.isnan(s[k]) for k in ("mean", "std", "median", "iqm", "ci_low", "ci_high"))
        assert s["interval"] == ""


def test_fewer_than_five_seeds_give_their_range_labelled_so():
    """Three seeds' percentile bootstrap interval is their range anyway (a resample of the lowest value three times
    has probability 1/27 > 2.5 %); below MIN_CI_VALUES the summary says "range" and gives min and max, from
    MIN_CI_VALUES on the bootstrap 95 % CI."""
    assert MIN_CI_VALUES == 5
    assert [interval_kind(n) for n in range(7)] == ["", "", "range", "range", "range", "95 % CI", "95 % CI"]
    three = np.array([90.81, 90.53, 94.71])
    assert bootstrap_ci(three) == pytest.approx((90.53, 94.71))  # the bootstrap of 3 seeds: [min, max], the range
    s = summary(list(three))
    assert (s["ci_low"], s["ci_high"], s["interval"]) == (90.53, 94.71, "range")
    four = summary([1.0, 2.0, 3.0, 7.0])
    assert (four["ci_low"], four["ci_high"], four["interval"]) == (1.0, 7.0, "range")
    assert four["iqm"] == pytest.approx(2.5)  # the middle two of four


# --- the smallest attainable p-value -----------------------------------------------------------
@pytest.mark.parametrize("n, expected", [(1, 1.0), (2, 0.5), (3, 0.25), (4, 0.125), (5, 0.0625), (6, 0.03125),
                                         (10, 2 / 1024)])
def test_min_attainable_p_of_the_rank_tests_against_hand_values_and_scipy(n, expected):
    """Two-sided, exact: every difference of one sign is 1 of the 2**n equally likely signings on each side."""
    assert min_attainable_p("wilcoxon", n) == pytest.approx(expected)
    assert min_attainable_p("sign", n) == pytest.approx(expected)
    extreme = np.arange(1.0, n + 1)  # all positive: the most extreme outcome
    assert scipy.stats.wilcoxon(extreme).pvalue == pytest.approx(expected)
    assert scipy.stats.wilcoxon(np.ones(n)).pvalue == pytest.approx(expected)  # ties among the |d| change nothing
    assert scipy.stats.binomtest(n, n).pvalue == pytest.approx(expected)
    # no signing of these differences gives less
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * min(n, 6))).reshape(min(n, 6), -1).T
    if n <= 6:
        assert min(scipy.stats.wilcoxon(extreme * s).pvalue for s in signs) == pytest.approx(expected)


def test_min_attainable_p_of_the_t_test_and_of_no_data():
    assert min_attainable_p("ttest", 2) == 0.0 and min_attainable_p("ttest", 30) == 0.0
    assert math.isnan(min_attainable_p("ttest", 1)) and math.isnan(min_attainable_p("wilcoxon", 0))
    with pytest.raises(ValueError, match="unknown test"):
        min_attainable_p("anova", 3)


def test_the_paired_comparison_states_the_wilcoxon_floor_of_its_seeds():
    three = paired_comparison({0: 91.0, 1: 93.0, 2: 95.0}, {0: 90.0, 1: 91.0, 2: 92.0})
    assert three["p_wilcoxon"] == three["p_wilcoxon_min"] == 0.25  # the best it can do: not below 0.05
    tied = paired_comparison({s: 90.0 + d for s, d in enumerate([0.0, 1.0, 2.0, 3.0])}, {s: 90.0 for s in range(4)})
    assert tied["n_ties"] == 1 and tied["p_wilcoxon_min"] == 0.25  # the zero is dropped: 3 differences left
    assert paired_comparison({0: 1.0, 1: 1.0}, {0: 1.0, 1: 1.0})["p_wilcoxon_min"] == 1.0  # all zero
    assert math.isnan(paired_comparison({0: 1.0}, {0: 2.0})["p_wilcoxon_min"])  # no p-value at all
    six = paired_comparison({s: 91.0 + s for s in range(6)}, {s: 90.0 for s in range(6)})
    assert six["p_wilcoxon_min"] == pytest.approx(0.03125) and six["p_wilcoxon"] == pytest.approx(0.03125)


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
    assert r["won_share"] == pytest.approx(4 / 5)


def test_paired_comparison_ties_and_zero_differences():
    method = {s: 90.0 + d for s, d in enumerate([1.0, -1.0, 2.0, 0.0, 3.0, 3.0])}
    baseline = {s: 90.0 for s in range(6)}
    d = np.array([1.0, -1.0, 2.0, 0.0, 3.0, 3.0])
    r = paired_comparison(method, baseline)
    assert r["n_common"] == 6
    assert r["p_wilcoxon"] == pytest.approx(scipy.stats.wilcoxon(d, zero_method="wilcox").pvalue)
    assert r["p_ttest"] == pytest.approx(scipy.stats.ttest_rel(list(method.values()), list(baseline.values())).pvalue)
    assert r["effect_size"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert r["won_share"] == pytest.approx((4 + 0.5) / 6)  # four wins, one tie


def test_paired_comparison_all_differences_zero_or_equal():
    same = paired_comparison({0: 90.0, 1: 91.0, 2: 92.0}, {0: 90.0, 1: 91.0, 2: 92.0})
    assert same["p_wilcoxon"] == 1.0 and same["won_share"] == 0.5
    assert math.isnan(same["p_ttest"]) and math.isnan(same["effect_size"]) and same["note"]

    shifted = paired_comparison({0: 91.0, 1: 92.0, 2: 93.0}, {0: 90.0, 1: 91.0, 2: 92.0})  # d = 1, 1, 1
    assert shifted["p_wilcoxon"] == pytest.approx(scipy.stats.wilcoxon([1.0, 1.0, 1.0]).pvalue)
    assert math.isnan(shifted["p_ttest"]) and math.isnan(shifted["effect_size"])  # zero variance of d
    assert shifted["won_share"] == 1.0


def test_paired_comparison_too_few_common_seeds():
    assert MIN_COMMON_SEEDS == 2
    one = paired_comparison({0: 91.0, 1: 95.0}, {0: 92.0, 2: 90.0})
    assert one["n_common"] == 1 and one["note"] == "too few common seeds (1): no p-value"
    assert all(math.isnan(one[k]) for k in ("p_wilcoxon", "p_ttest", "effect_size"))
    assert one["won_share"] == 0.0  # 91 < 92 on seed 0
    none = paired_comparison({0: 91.0}, {1: 92.0, 0: NAN})
    assert none["n_common"] == 0 and none["note"] == "too few common seeds (0): no p-value"
    assert math.isnan(none["won_share"])


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


def test_holm_floor_is_the_smallest_adjusted_p():
    # three rows of 3 common seeds: each at best 0.25, adjusted at best 3 × 0.25
    assert holm_floor([0.25, 0.25, 0.25]) == [0.75, 0.75, 0.75]
    assert holm([0.25, 0.25, 0.25]) == [0.75, 0.75, 0.75]  # attained when every row is as extreme as it can be
    assert holm_floor([0.25, 0.25]) == [0.5, 0.5] and holm_floor([0.03125]) == [0.03125]
    # rows of 6 and of 3 seeds: m × the smallest floor, and never below a row's own
    assert holm_floor([0.03125, 0.25]) == [0.0625, 0.25]
    assert holm_floor([0.5, NAN, 0.5]) == pytest.approx([1.0, NAN, 1.0], nan_ok=True)  # capped at 1; NaN: no row
    assert holm_floor([]) == []


# --- the leaderboard's columns -----------------------------------------------------------------
# The leaderboard's columns before the paired comparison (up to rank), as CSV readers know them.
OLD_BASE_COLUMNS = [
    "method", "space", "dataset", "budget", "variant", "n_seeds", "seeds", "test_acc_mean", "test_acc_std",
    "test_acc_median", "test_acc_best", "search_val_acc_mean", "search_hours_mean", "eval_hours_mean",
    "device_hours_mean", "device_hours_kind", "params_m_mean", "madds_m_mean", "latency_ms_mean", "latency_ms_std",
    "latency_batch_ms_mean", "latency_batch_ms_std", "op_kendall_tau_mean", "op_spearman_rho_mean",
    "arch_kendall_tau_mean", "arch_spearman_rho_mean", "oneshot_kendall_tau_mean", "oneshot_spearman_rho_mean",
    "p_vs_darts", "rank"]
COMPARISON = ["baseline", "n_common_seeds", "p_wilcoxon", "p_wilcoxon_min", "p_ttest", "p_holm", "p_holm_min",
              "effect_size", "seeds_won_share", "comparison_note"]
PROVENANCE = ["test_source", "search_source", "search_queries_mean"]


def test_base_columns_are_the_old_ones_with_the_comparison_the_statistics_and_the_sources():
    expected = list(OLD_BASE_COLUMNS)
    at = expected.index("p_vs_darts")
    expected[at:at + 1] = COMPARISON
    at = expected.index("test_acc_best") + 1
    expected[at:at] = ["test_acc_iqm", "test_acc_ci_low", "test_acc_ci_high", "test_acc_interval"]
    at = expected.index("search_hours_mean") + 1
    expected[at:at] = ["search_hours_ci_low", "search_hours_ci_high", "search_hours_interval"]
    at = expected.index("seeds") + 1
    expected[at:at] = PROVENANCE
    assert BASE_COLUMNS == expected
    new = set(COMPARISON) | set(PROVENANCE)
    assert [c for c in BASE_COLUMNS if c not in new and "_iqm" not in c and "_ci_" not in c
            and not c.endswith("_interval")] == [c for c in OLD_BASE_COLUMNS if c != "p_vs_darts"]


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
    assert a.seeds_won_share == 1.0

    d_b = np.array([-0.5, 1.0, 2.0, 3.0])
    assert b.n_seeds == 6 and b.n_common_seeds == 4 and b.comparison_note == ""
    assert b.p_wilcoxon == pytest.approx(2 * 2 / 16)  # W- = 1: 2 of 16 signings, two-sided
    assert b.p_wilcoxon == pytest.approx(scipy.stats.wilcoxon(d_b).pvalue)
    assert b.p_ttest == pytest.approx(scipy.stats.ttest_rel([89.5, 92.0, 94.0, 96.0], [90.0, 91.0, 92.0, 93.0]).pvalue)
    assert b.effect_size == pytest.approx(d_b.mean() / d_b.std(ddof=1))
    assert b.seeds_won_share == pytest.approx(3 / 4)

    # Holm over a and b (m = 2): a's 0.0625 × 2 = 0.125; b's 0.25 × 1 = 0.25 (not below 0.125)
    assert a.p_holm == pytest.approx(0.125) and b.p_holm == pytest.approx(0.25)
    assert (a.p_holm, b.p_holm) == pytest.approx(tuple(holm([a.p_wilcoxon, b.p_wilcoxon])))
    # the floors: 5 common seeds 2/32, 4 seeds 2/16; after Holm over 2 rows at least 2 × 2/32 (and b its own 1/8)
    assert (a.p_wilcoxon_min, b.p_wilcoxon_min) == pytest.approx((0.0625, 0.125))
    assert (a.p_holm_min, b.p_holm_min) == pytest.approx((0.125, 0.125))

    assert darts.baseline == "darts" and darts.comparison_note == "" and pd.isna(darts.n_common_seeds)
    assert all(math.isnan(v) for v in (darts.p_wilcoxon, darts.p_ttest, darts.p_holm, darts.effect_size,
                                       darts.seeds_won_share))

    # the statistics columns: summary() of the finite values (search hours: seconds / 3600)
    assert a.test_acc_iqm == pytest.approx(95.0)  # the middle three of five: 93, 95, 97
    accs = summary([91.0, 93.0, 95.0, 97.0, 99.0])
    assert (a.test_acc_ci_low, a.test_acc_ci_high) == (accs["ci_low"], accs["ci_high"])
    assert a.test_acc_interval == "95 % CI" and darts.test_acc_interval == "95 % CI"
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
    assert darts.n_common_seeds == 5 and darts.seeds_won_share == 0.0
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
    assert optimum[["p_wilcoxon", "p_ttest", "p_holm", "effect_size", "seeds_won_share"]].isna().all()
    a = df[df["method"] == "a"].iloc[0]  # d = 0, 1: the zero dropped, one positive difference left
    assert a.n_common_seeds == 2 and a.p_wilcoxon == pytest.approx(scipy.stats.wilcoxon([0.0, 1.0]).pvalue)
    assert a.p_holm == a.p_wilcoxon and a.seeds_won_share == pytest.approx(0.75)


@pytest.mark.parametrize("value", [0.1, 91.53, 88.1, 100.0 / 3])
def test_the_interval_of_equal_values_holds_their_mean(value):
    """The mean of equal values can land a rounding step beside the value: the interval holds the mean itself,
    so an error bar (mean − low, high − mean) is never negative."""
    stats = summary([value] * 3)
    assert stats["ci_low"] <= stats["mean"] <= stats["ci_high"]
    low, high = bootstrap_ci(np.array([value] * 3))
    assert low <= float(np.array([value] * 3).mean()) <= high
