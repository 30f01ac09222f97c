"""Architecture-level ranking correlation on NAS-Bench-201: the methods' default architecture score by hand (one
group and two), the fixed sample of architectures, and the correlation on crafted tables (perfect, reversed,
missing figures, no scores)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.core.benchmarks.base import Benchmark, sample_indices
from harness.core.benchmarks.nb201 import NB201Table, load_table
from harness.core.benchmarks.nb201_arch import NB201_OPS
from harness.core.config import resolve
from harness.core.correlation import ARCH_SAMPLE_SEED, arch_level_correlation
from harness.core.data import DataInfo
from harness.core.metrics import rank_correlation
from harness.core.registry import get_method, get_space
from methods.base import SearchMethod, log_normalised
from spaces.darts import CONCAT, Genotype

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


class Crafted(SearchMethod):
    """A method whose importance is given (None: a method without scores); the default architecture score."""

    name = "crafted"

    def __init__(self, space, importance):
        super().__init__(space, {}, None, torch.device("cpu"), 0)
        self.crafted = importance

    def importance(self):
        return self.crafted


def genotypes_of(codes: np.ndarray) -> list[tuple[str, ...]]:
    return [tuple(NB201_OPS[int(c)] for c in row) for row in codes]


def old_arch_scores(importance: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The score as the harness computed it before methods scored architectures (a reference: bit-identical)."""
    return log_normalised(importance)[np.arange(codes.shape[1]), np.asarray(codes, dtype=np.int64)].sum(axis=1)


def test_log_normalised_by_hand():
    log_p = log_normalised(IMPORTANCE)
    assert log_p.shape == (6, 5)
    assert log_p[0] == pytest.approx([log(.1), log(.2), log(.3), log(.4), log(1e-30)], rel=1e-12)
    assert log_p[3] == pytest.approx([log(.1), log(1e-30), log(1e-30), log(1e-30), log(.9)], rel=1e-12)
    zero_row = log_normalised(np.array([[0.0, 0.0], [1.0, 3.0]]))  # an all-zero edge: the same for every op
    assert zero_row.tolist() == [[math.log(1e-30)] * 2, [math.log(.25), math.log(.75)]]


def test_default_score_by_hand(nb201):
    space, _ = nb201
    method = Crafted(space, {"cell": IMPORTANCE})
    scores = method.score_architectures(genotypes_of(CODES))
    assert scores.shape == (3,)
    assert scores == pytest.approx(EXPECTED, rel=1e-12)
    # only the per-edge proportions count: scaling the importance (or one row of it) changes nothing
    scaled = IMPORTANCE * np.array([[7.0], [0.5], [1.0], [3.0], [2.0], [1e-3]])
    assert Crafted(space, {"cell": scaled}).score_architectures(genotypes_of(CODES)) == pytest.approx(EXPECTED,
                                                                                                      rel=1e-12)
    # a single architecture
    assert method.score_architectures(genotypes_of(CODES[:1])) == pytest.approx(EXPECTED[:1], rel=1e-12)
    # no importance: no scores
    assert Crafted(space, None).score_architectures(genotypes_of(CODES)) is None


def test_default_score_zero_importance_is_finite_and_last(nb201):
    space, _ = nb201
    scores = Crafted(space, {"cell": IMPORTANCE}).score_architectures(genotypes_of(CODES))
    assert np.isfinite(scores).all()
    assert scores[1] == pytest.approx(EXPECTED[1])  # log(1e-30) ≈ −69.08 for the pruned op
    assert scores[1] < min(scores[0], scores[2])
    assert list(np.argsort(scores)) == [1, 2, 0]


def test_default_score_is_bit_identical_to_the_edge_indexed_sum_on_every_cell(nb201):
    space, codes = nb201
    genotypes = load_table().genotypes(np.arange(len(codes)))
    scores = Crafted(space, {"cell": POSITIVE}).score_architectures(genotypes)
    assert np.array_equal(scores, old_arch_scores(POSITIVE, codes))


def test_default_score_adds_the_groups_by_hand():
    """DARTS space, two groups: every normal edge uniform over the 8 ops (log 1/8 per choice); on the reduction
    cell edge 0 (node 2 ← 0) gives sep_conv_3x3 half of its weight (7 of 14), every other edge is uniform."""
    space = get_space("darts")({})
    reduce = np.ones((14, 8))
    reduce[0, 4] = 7.0
    method = Crafted(space, {"normal": np.ones((14, 8)), "reduce": reduce})
    cell = [("sep_conv_3x3", 0), ("skip_connect", 1), ("sep_conv_3x3", 0), ("skip_connect", 1),
            ("sep_conv_3x3", 0), ("skip_connect", 1), ("sep_conv_3x3", 0), ("skip_connect", 1)]
    other = [("skip_connect", 0), ("skip_connect", 1)] + cell[2:]  # edge 0 takes skip_connect: 1 of 14
    genotypes = [Genotype(normal=cell, normal_concat=CONCAT, reduce=cell, reduce_concat=CONCAT),
                 Genotype(normal=cell, normal_concat=CONCAT, reduce=other, reduce_concat=CONCAT)]
    scores = method.score_architectures(genotypes)
    assert scores == pytest.approx([8 * log(1 / 8) + log(.5) + 7 * log(1 / 8),
                                    8 * log(1 / 8) + log(1 / 14) + 7 * log(1 / 8)], rel=1e-12)


def sample_archs(count: int, total: int) -> np.ndarray:
    """The architecture-level sample's indices of a finite table."""
    return sample_indices(count, total, ARCH_SAMPLE_SEED)


def test_sample_indices_is_fixed_sorted_and_unique():
    first = sample_archs(300, 15625)
    assert np.array_equal(first, sample_archs(300, 15625))
    assert len(first) == 300 and len(np.unique(first)) == 300
    assert np.all(np.diff(first) > 0)  # sorted, hence unique
    assert first.min() >= 0 and first.max() < 15625
    assert ARCH_SAMPLE_SEED == 0
    assert np.array_equal(sample_archs(5, 5), np.arange(5))
    assert np.array_equal(sample_archs(9, 5), np.arange(5))
    assert len(sample_archs(0, 5)) == 0 and len(sample_archs(-3, 5)) == 0
    # a smaller sample is a different draw, not necessarily a prefix; it is still a subset of the indices
    assert set(sample_archs(10, 100)) <= set(range(100))
    # the draw itself: NumPy's generator of the seed, without replacement, sorted
    assert np.array_equal(sample_indices(4, 50, 7), np.sort(np.random.default_rng(7).choice(50, 4, replace=False)))


def test_nb201_sample_and_query_are_the_tables_rows():
    """``NB201Table.sample`` is the genotypes of the fixed indices, in index order; ``query`` gives the column's
    figures of any genotypes (NaN for an unknown column)."""
    table = load_table()
    picked = sample_archs(300, len(table))
    genotypes = table.sample(300, ARCH_SAMPLE_SEED)
    assert genotypes == table.genotypes(picked)
    assert [table.index_of(g) for g in genotypes] == picked.tolist()
    figures = table.query(genotypes[::-1], "cifar10_test")
    assert np.array_equal(figures, table.column("cifar10_test")[picked[::-1]], equal_nan=True)
    assert np.isnan(table.query(genotypes[:3], "no_such_column")).all()
    assert table.query([], "cifar10_test").shape == (0,)
    assert len(table.sample(20000, 0)) == len(table) and table.sample(0, 0) == []


@pytest.fixture(scope="module")
def nb201():
    cfg = resolve(get_method("gdas"), get_space("nb201"), "smoke").values
    space = get_space("nb201")(cfg)
    return space, load_table().codes


def fake_method(space, importance):
    return Crafted(space, None if importance is None else {"cell": importance})


def crafted_table(codes: np.ndarray, cifar10: np.ndarray, cifar100: np.ndarray) -> NB201Table:
    return NB201Table(codes, np.stack([cifar10, cifar100], axis=1), ["cifar10_test", "cifar100_test"],
                      {"format": "test"})


POSITIVE = np.random.default_rng(3).uniform(0.05, 1.0, size=(6, 5))  # positive, scores almost surely distinct


def test_arch_correlation_is_one_when_accuracy_increases_with_the_score(nb201):
    space, codes = nb201
    score = old_arch_scores(POSITIVE, codes)
    increasing = 50.0 + 10.0 * np.tanh(score / 5.0)  # strictly increasing in the score, for all 15,625 cells
    table = crafted_table(codes, increasing, -increasing)
    method = fake_method(space, POSITIVE)
    cfg = {"arch_corr_samples": 300}
    record = arch_level_correlation(method, table, "digits", cfg)  # digits stands on cifar10_test
    assert record["arch_kendall_tau"] == pytest.approx(1.0)
    assert record["arch_spearman_rho"] == pytest.approx(1.0)
    detail = record["arch_correlation"]
    assert detail.pop("seconds") >= 0.0  # what scoring the sample cost
    assert detail == {"target": "cifar10_test", "sample_seed": 0, "samples": 300}
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
    accs = 50.0 + old_arch_scores(POSITIVE, codes)
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
                    "arch_correlation": {"target": "cifar10_test", "sample_seed": 0, "samples": 0,
                                         "undefined": "crafted has no architecture scores"}}
    zero = arch_level_correlation(fake_method(space, POSITIVE), table, "cifar10", {"arch_corr_samples": 0})
    assert zero["arch_kendall_tau"] is None and zero["arch_correlation"]["samples"] == 0


# --- one-shot correlation ----------------------------------------------------------------------------------

class ConvCounter(torch.nn.Module):
    """A stand-in supernet whose accuracy on 10 images is 10 % per edge discretised to ``nor_conv_3x3``: the
    one-shot accuracy of a cell is 10 × its number of 3×3 convolutions."""

    def __init__(self, arch):
        super().__init__()
        self.arch = arch
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        right = sum(op == NB201_OPS.index("nor_conv_3x3") for op in self.arch.forced.values())
        y = torch.arange(len(x)) % 10
        target = torch.where(torch.arange(len(x)) < right, y, (y + 1) % 10)
        return torch.nn.functional.one_hot(target, 10).float() + 0 * self.unused


def one_shot_case(nb201, allowed=None):
    from types import SimpleNamespace

    from harness.core.correlation import one_shot_correlation

    space, codes = nb201
    convs = (codes == NB201_OPS.index("nor_conv_3x3")).sum(axis=1).astype(float)
    table = crafted_table(codes, 50.0 + convs, 50.0 - convs)  # cifar10: more convs better; cifar100: worse
    method = fake_method(space, POSITIVE)
    method.supernet = ConvCounter(method.arch)
    if allowed is not None:
        method.correlation_ops = lambda group, index: allowed
    data = SimpleNamespace(val_batches=lambda limit_batches: [(torch.zeros(10, 1, 2, 2), torch.arange(10))])
    cfg = {"arch_corr_samples": 300, "oneshot_samples": 40, "corr_batches": 1}
    return one_shot_correlation(method, table, "cifar10", data, cfg), one_shot_correlation(
        method, table, "cifar100", data, cfg), convs


def test_one_shot_correlation_on_a_crafted_supernet(nb201):
    """The supernet's accuracy of a cell is a known function of its ops (10 % per 3×3 conv): against a benchmark
    column that grows with the same count τ = ρ = 1, against one that falls −1; the top-k cells are the ones
    with the most 3×3 convs, and the sample is the fixed subset of the architecture-level sample."""
    from harness.core.correlation import ONE_SHOT_SEED, TOP_K

    rising, falling, convs = one_shot_case(nb201)
    assert rising["oneshot_kendall_tau"] == pytest.approx(1.0)
    assert rising["oneshot_spearman_rho"] == pytest.approx(1.0)
    assert falling["oneshot_kendall_tau"] == pytest.approx(-1.0)
    detail = rising["oneshot_correlation"]
    assert (detail["samples"], detail["batches"], detail["target"]) == (40, 1, "cifar10_test")
    assert detail["seconds"] >= 0
    sample = np.sort(np.random.default_rng(ONE_SHOT_SEED).choice(sample_archs(300, len(convs)), 40, replace=False))
    best = np.sort(convs[sample])[::-1]
    assert detail["top_k"] == {str(k): pytest.approx(50.0 + best[:k].mean()) for k in TOP_K}


def test_one_shot_correlation_leaves_out_cells_a_method_cannot_discretise_to(nb201):
    """A method that kept only some ops (EoiNAS after pruning) is measured on the cells made of them; with no
    such cell the figure is undefined and the record says why; a method without a supernet likewise."""
    from harness.core.correlation import one_shot_correlation

    kept = [NB201_OPS.index(op) for op in ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")]
    rising, _, _ = one_shot_case(nb201, allowed=kept)
    detail = rising["oneshot_correlation"]
    assert 2 <= detail["samples"] < 40 and detail["left_out"].startswith(f"{40 - detail['samples']} cells use ops")
    assert rising["oneshot_kendall_tau"] == pytest.approx(1.0)
    nothing, _, _ = one_shot_case(nb201, allowed=[])
    assert nothing["oneshot_kendall_tau"] is None
    assert nothing["oneshot_correlation"]["undefined"] == "fewer than 2 cells could be evaluated"
    space, codes = nb201
    table = crafted_table(codes, np.ones(len(codes)), np.ones(len(codes)))
    none = one_shot_correlation(fake_method(space, POSITIVE), table, "cifar10", None, {"oneshot_samples": 5})
    assert none["oneshot_correlation"]["undefined"] == "crafted has no supernet"


# --- a benchmark that is no table: the correlations through the query interface -----------------------------

class Surrogate(Benchmark):
    """A stand-in for a surrogate benchmark (NAS-Bench-301): no table, no indices, no optimum; ``query``
    computes a figure from the genotype. ``cifar10_test`` rises with the default architecture score of
    ``POSITIVE`` (50 + 10 tanh(score / 5)) and with the number of 3×3 convs (10 per conv: the one-shot stand-in's
    accuracy); a cell with ``none`` on its first edge is unknown (NaN), as is every other column."""

    def __init__(self, space):
        self.space = space

    def sample(self, n, seed):
        rng, seen = np.random.default_rng(seed), {}
        while len(seen) < n:
            genotype = tuple(NB201_OPS[int(k)] for k in rng.integers(0, len(NB201_OPS), size=6))
            seen.setdefault(genotype, None)
        return list(seen)

    def query(self, genotypes, column):
        if column != "cifar10_test" or not len(genotypes):
            return np.full(len(genotypes), np.nan)
        codes = np.array([[NB201_OPS.index(op) for op in g] for g in genotypes])
        score = old_arch_scores(POSITIVE, codes)
        convs = (codes == NB201_OPS.index("nor_conv_3x3")).sum(axis=1)
        figures = 50.0 + 10.0 * np.tanh(score / 5.0) + 1000.0 * convs  # convs dominate for the one-shot case
        return np.where(codes[:, 0] == 0, np.nan, figures)

    def figures(self, genotype):
        return {"cifar10_test": float(self.query([genotype], "cifar10_test")[0])}

    def locate(self, genotype):
        return {"arch": "|".join(genotype)}

    def target_column(self, dataset):
        return "cifar10_test", "the surrogate's prediction"

    def valid_column(self, dataset):
        return "cifar10_valid"

    def describe(self):
        return {"kind": "surrogate"}

    def network_info(self, column):
        return DataInfo(in_channels=3, num_classes=10, image_size=32)


def test_correlations_run_on_a_benchmark_without_a_table(nb201):
    """The architecture-level correlation needs only ``sample`` and ``query``: on a surrogate whose figure
    rises with the default score (convs fixed) and with the 3×3 convs, the figures it predicts are correlated
    with the method's scores of the genotypes it sampled; the unknown ones are left out; the one-shot
    correlation likewise."""
    from types import SimpleNamespace

    from harness.core.correlation import ONE_SHOT_SEED, one_shot_correlation

    space, _ = nb201
    bench = Surrogate(space)
    assert bench.optimum() is None  # the interface's default: a surrogate does not know its best
    sample = bench.sample(60, ARCH_SAMPLE_SEED)
    assert sample == bench.sample(60, ARCH_SAMPLE_SEED) and len(set(sample)) == 60
    known = [g for g in sample if g[0] != "none"]
    method = fake_method(space, POSITIVE)
    record = arch_level_correlation(method, bench, "digits", {"arch_corr_samples": 60})
    assert record["arch_correlation"]["samples"] == len(known) < 60
    codes = np.array([[NB201_OPS.index(op) for op in g] for g in known])
    scores, figures = old_arch_scores(POSITIVE, codes), bench.query(known, "cifar10_test")
    expected = rank_correlation(scores, figures)
    assert (record["arch_kendall_tau"], record["arch_spearman_rho"]) == pytest.approx(expected)
    # with the convs fixed the figure rises with the score: τ = 1 on the cells of one conv count
    one_conv = [g for g in known if g.count("nor_conv_3x3") == 1]
    only = Surrogate(space)
    only.sample = lambda n, seed: one_conv[:n]
    assert arch_level_correlation(method, only, "digits", {"arch_corr_samples": 60})["arch_kendall_tau"] == 1.0
    # one-shot: the stand-in supernet's accuracy is 10 × the convs, the surrogate's figure rises with them
    method.supernet = ConvCounter(method.arch)
    data = SimpleNamespace(val_batches=lambda limit_batches: [(torch.zeros(10, 1, 2, 2), torch.arange(10))])
    cfg = {"arch_corr_samples": 60, "oneshot_samples": 12, "corr_batches": 1}
    shot = one_shot_correlation(method, bench, "digits", data, cfg)
    picked = np.sort(np.random.default_rng(ONE_SHOT_SEED).choice(len(known), 12, replace=False))
    convs = np.array([known[i].count("nor_conv_3x3") for i in picked])
    assert shot["oneshot_correlation"]["samples"] == 12
    figures = bench.query([known[i] for i in picked], "cifar10_test")
    assert shot["oneshot_kendall_tau"] == pytest.approx(rank_correlation(10.0 * convs, figures)[0])


def test_the_correlations_know_methods_only_through_their_protocol(nb201):
    """``harness.core.correlation`` imports neither ``methods`` nor ``spaces`` (not even for typing: the kernel
    sits below them), and a ``SearchMethod`` has everything its ``CorrelatedMethod`` protocol asks for."""
    import ast

    import harness.core.correlation as correlation

    tree = ast.parse(open(correlation.__file__, encoding="utf-8").read())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in ("methods", "spaces")}
    asked = {n for n in vars(correlation.CorrelatedMethod) if not n.startswith("_")}
    asked |= set(correlation.CorrelatedMethod.__annotations__)
    assert asked == {"name", "space", "supernet", "importance", "correlation_ops", "discretised",
                     "score_architectures", "discrete_accuracies"}
    space, _ = nb201
    method = fake_method(space, POSITIVE)
    assert all(hasattr(method, name) for name in asked)
