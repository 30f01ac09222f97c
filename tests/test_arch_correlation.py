"""Architecture-level ranking correlation on NAS-Bench-201: the architecture score by hand, the fixed sample of
architectures, and the correlation on crafted tables (perfect, reversed, missing figures, no scores)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from harness.benchmarks.nb201 import NB201Table, load_table
from harness.config import resolve
from harness.correlation import ARCH_SAMPLE_SEED, arch_level_correlation, arch_scores, sample_archs
from harness.registry import get_method, get_space

# every row sums to 10, so the normalised importance is I / 10
IMPORTANCE = np.array([[1, 2, 3, 4, 0],
                       [5, 1, 1, 1, 2],
                       [2, 2, 2, 2, 2],
                       [1, 0, 0, 0, 9],
                       [3, 1, 4, 1, 1],
                       [6, 1, 1, 1, 1]])
CODES = np.array([[3, 0, 2, 4, 2, 0],
                  [0, 1, 0, 1, 1, 1],   # edge 3 takes op 1, whose importance is 0
                  [1, 4, 4, 0, 3, 2]], dtype=np.uint8)
log = math.log
EXPECTED = [log(.4) + log(.5) + log(.2) + log(.9) + log(.4) + log(.6),
            log(.1) + log(.1) + log(.2) + log(1e-30) + log(.1) + log(.1),
            log(.2) + log(.2) + log(.2) + log(.1) + log(.1) + log(.1)]


def test_arch_scores_by_hand():
    scores = arch_scores(IMPORTANCE, CODES)
    assert scores.shape == (3,)
    assert scores == pytest.approx(EXPECTED, rel=1e-12)
    # only the per-edge proportions count: scaling the importance (or one row of it) changes nothing
    scaled = IMPORTANCE * np.array([[7.0], [0.5], [1.0], [3.0], [2.0], [1e-3]])
    assert arch_scores(scaled, CODES) == pytest.approx(EXPECTED, rel=1e-12)
    # a single architecture
    assert arch_scores(IMPORTANCE, CODES[:1]) == pytest.approx(EXPECTED[:1], rel=1e-12)


def test_arch_scores_zero_importance_is_finite_and_last():
    scores = arch_scores(IMPORTANCE, CODES)
    assert np.isfinite(scores).all()
    assert scores[1] == pytest.approx(EXPECTED[1])  # log(1e-30) ≈ −69.08 for the pruned op
    assert scores[1] < min(scores[0], scores[2])
    assert list(np.argsort(scores)) == [1, 2, 0]


def test_sample_archs_is_fixed_sorted_and_unique():
    first = sample_archs(300, 15625)
    assert np.array_equal(first, sample_archs(300, 15625))
    assert len(first) == 300 and len(np.unique(first)) == 300
    assert np.all(np.diff(first) > 0)  # sorted, hence unique
    assert first.min() >= 0 and first.max() < 15625
    assert ARCH_SAMPLE_SEED == 0
    assert np.array_equal(sample_archs(5, 5), np.arange(5))
    assert np.array_equal(sample_archs(9, 5), np.arange(5))
    assert len(sample_archs(0, 5)) == 0
    # a smaller sample is a different draw, not necessarily a prefix; it is still a subset of the indices
    assert set(sample_archs(10, 100)) <= set(range(100))


@pytest.fixture(scope="module")
def nb201():
    cfg = resolve(get_method("gdas"), get_space("nb201"), "smoke").values
    space = get_space("nb201")(cfg)
    return space, load_table().codes


def fake_method(space, importance):
    return SimpleNamespace(space=space, importance=lambda: None if importance is None else {"cell": importance})


def crafted_table(codes: np.ndarray, cifar10: np.ndarray, cifar100: np.ndarray) -> NB201Table:
    return NB201Table(codes, np.stack([cifar10, cifar100], axis=1), ["cifar10_test", "cifar100_test"],
                      {"format": "test"})


POSITIVE = np.random.default_rng(3).uniform(0.05, 1.0, size=(6, 5))  # positive, scores almost surely distinct


def test_arch_correlation_is_one_when_accuracy_increases_with_the_score(nb201):
    space, codes = nb201
    score = arch_scores(POSITIVE, codes)
    increasing = 50.0 + 10.0 * np.tanh(score / 5.0)  # strictly increasing in the score, for all 15,625 cells
    table = crafted_table(codes, increasing, -increasing)
    method = fake_method(space, POSITIVE)
    cfg = {"arch_corr_samples": 300}
    record = arch_level_correlation(method, table, "digits", cfg)  # digits stands on cifar10_test
    assert record["arch_kendall_tau"] == pytest.approx(1.0)
    assert record["arch_spearman_rho"] == pytest.approx(1.0)
    assert record["arch_correlation"] == {"target": "cifar10_test", "sample_seed": 0, "samples": 300}
    # the negated column: −1
    reversed_ = arch_level_correlation(method, table, "cifar100", cfg)  # cifar100 stands on cifar100_test
    assert reversed_["arch_correlation"]["target"] == "cifar100_test"
    assert reversed_["arch_kendall_tau"] == pytest.approx(-1.0)
    assert reversed_["arch_spearman_rho"] == pytest.approx(-1.0)
    # the scores are those of the sampled rows: a table with the same values at other rows loses the match
    shuffled = crafted_table(codes, np.roll(increasing, 1), increasing)
    assert arch_level_correlation(method, shuffled, "cifar10", cfg)["arch_kendall_tau"] < 0.5


def test_arch_correlation_leaves_out_missing_figures(nb201):
    space, codes = nb201
    accs = 50.0 + arch_scores(POSITIVE, codes)
    picked = sample_archs(300, len(codes))
    accs[picked[::7]] = np.nan  # 43 of the sampled architectures have no figure
    accs[np.setdiff1d(np.arange(len(codes)), picked)[:50]] = np.nan  # missing outside the sample: no effect
    record = arch_level_correlation(fake_method(space, POSITIVE), crafted_table(codes, accs, accs), "cifar10",
                                    {"arch_corr_samples": 300})
    assert record["arch_correlation"]["samples"] == 300 - len(picked[::7]) == 257
    assert record["arch_kendall_tau"] == pytest.approx(1.0)
    assert record["arch_spearman_rho"] == pytest.approx(1.0)


def test_arch_correlation_without_scores_or_samples_is_none(nb201):
    space, codes = nb201
    accs = np.linspace(0.0, 1.0, len(codes))
    table = crafted_table(codes, accs, accs)
    none = arch_level_correlation(fake_method(space, None), table, "cifar10", {"arch_corr_samples": 300})
    assert none == {"arch_kendall_tau": None, "arch_spearman_rho": None,
                    "arch_correlation": {"target": "cifar10_test", "sample_seed": 0, "samples": 0}}
    zero = arch_level_correlation(fake_method(space, POSITIVE), table, "cifar10", {"arch_corr_samples": 0})
    assert zero["arch_kendall_tau"] is None and zero["arch_correlation"]["samples"] == 0
