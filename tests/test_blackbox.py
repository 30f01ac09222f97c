"""Tests of the black-box methods (``methods/blackbox.py``: REA, TPE, BOHB, random search with ASHA) and of the
spaces' categorical genotype encoding (``SearchSpace.encoding``/``encode``/``decode``), in-process and fast.

REA's tournament, mutation and ageing against a hand trace on a tiny three-edge space, driven by a scripted
generator; ASHA's cutoff and BOHB's HyperBand schedule against hand computations; every searcher's proposals
valid on every space; encode/decode round trips; a resumed search equal to an uninterrupted one (look-ups and one
trained case); the one-line errors of a missing extra and of a checkpoint that does not replay; the look-ups'
simulated cost (``NB201Table.cost_column``).
"""

from __future__ import annotations

import builtins
import math
import sys
import zlib
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from conftest import tiny_overrides
from helpers import one_line
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import checkpoints
from harness.core.benchmarks.nb201 import NB201Table, load_table
from harness.core.config import resolve
from harness.core.data import DataInfo, SearchData
from harness.core.errors import GenotypeError, UserError
from harness.core.registry import get_method, get_space
from harness.core.train import rng_state, seed_everything, set_rng_state
from harness.spec import ExperimentSpec
from methods import blackbox
from methods.blackbox import BOHB, TPE, Evolution, RandomWithASHA, mutate
from spaces.base import SearchSpace
from spaces.ops import OP_FAMILY

# hpbandster's calls of ConfigSpace's deprecated API, and statsmodels' notice about its KDE's future default
# generator (hpbandster's normal-reference bandwidths draw nothing from it), once per KDE fit
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:hpbandster"),
              pytest.mark.filterwarnings("ignore:After 0.17 or January 2028:FutureWarning")]

CPU = torch.device("cpu")
CIFAR10 = DataInfo(3, 10, 32, name="cifar10")  # a look-up reads the dataset's name only
SPACES = ("nb201", "darts", "hetero", "proxyless")
METHODS = ("rea", "tpe", "bohb", "rs-asha")


# --- a tiny space and a scripted generator ------------------------------------------------------------------

class Tiny(SearchSpace):
    """Three edges, three ops, one group; every genotype is a choice of op per edge ("a-b-c"). The base class's
    encoding: one op choice per edge, each its own site."""

    op_names = ("a", "b", "c")

    def __init__(self, cfg: dict[str, Any] | None = None):
        super().__init__(cfg or {})

    def arch_shape(self) -> dict[str, tuple[int, int]]:
        return {"cell": (3, 3)}

    def derive(self, scores: dict[str, np.ndarray]) -> tuple[str, ...]:
        return self.argmax_per_edge(scores, "cell")

    def sample(self, rng: Any) -> tuple[str, ...]:
        return self.uniform_per_edge(rng, "cell")

    def edge_choices(self, genotypes: list[tuple[str, ...]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        ops = np.array([[self.op_names.index(op) for op in g] for g in genotypes], dtype=np.int64)
        return {"cell": (np.broadcast_to(np.arange(3), ops.shape), ops)}

    def to_str(self, genotype: tuple[str, ...]) -> str:
        return "-".join(genotype)

    def parse(self, text: str) -> tuple[str, ...]:
        ops = tuple(text.split("-"))
        if len(ops) != 3 or not set(ops) <= set(self.op_names):
            raise GenotypeError(f"bad tiny genotype {text!r}")
        return ops


class Script:
    """A generator whose draws are scripted: ``integers(n)`` returns the next value (which must lie in [0, n)), a
    vector draw ``integers(0, highs)`` the next ``len(highs)`` values. ``bounds`` lists the n of every draw."""

    def __init__(self, *values: int):
        self.values, self.bounds = list(values), []

    def integers(self, low: Any, high: Any = None) -> Any:
        if high is None:
            low, high = 0, low
        if np.ndim(high):
            return np.array([self.integers(low, h) for h in high])
        assert self.values, "the script ran out of draws"
        value = self.values.pop(0)
        assert low <= value < high, f"scripted draw {value} outside [{low}, {high})"
        self.bounds.append(int(high))
        return value


def smoke_cfg(method: str, space: str, **overrides: Any) -> dict[str, Any]:
    return resolve(get_method(method), get_space(space), "smoke", {k: str(v) for k, v in overrides.items()}).values


def smoke_space(space: str) -> SearchSpace:
    return get_space(space)(smoke_cfg("rea", space))


_SPACES: dict[str, SearchSpace] = {}


def space_of(name: str) -> SearchSpace:
    if name not in _SPACES:
        _SPACES[name] = smoke_space(name)
    return _SPACES[name]


def genotype_str(space: SearchSpace, config: dict[str, str]) -> str:
    return space.to_str(space.decode(config))


def differing(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return [name for name in a if a[name] != b[name]]


# --- 1. REA: tournament, mutation, ageing against a hand trace ----------------------------------------------

def test_tiny_space_encoding_is_one_op_choice_per_edge():
    space = Tiny()
    assert [(c.name, c.values, c.site, c.is_inputs) for c in space.encoding()] == [
        (f"cell.e{e}", ("a", "b", "c"), f"cell edge {e}", False) for e in range(3)]
    assert space.encode(("c", "a", "b")) == {"cell.e0": "c", "cell.e1": "a", "cell.e2": "b"}
    assert genotype_str(space, {"cell.e0": "c", "cell.e1": "a", "cell.e2": "b"}) == "c-a-b"


def test_rea_tournament_mutation_and_ageing_follow_the_hand_trace():
    space = Tiny()
    rea = Evolution(space, {"rea_population": 3, "rea_sample_size": 2}, seed=0)
    population = lambda: [(genotype_str(space, c), v) for c, v in rea.population]  # noqa: E731

    # the first rea_population proposals are the space's samples (one vectorised draw of three ops each)
    rea.rng = Script(0, 0, 0, 1, 1, 1, 2, 2, 2)
    for index, (genotype, value) in enumerate([("a-a-a", 90.0), ("b-b-b", 70.0), ("c-c-c", 60.0)]):
        config, budget = rea.suggest(index)
        assert (genotype_str(space, config), budget) == (genotype, None)
        rea.complete(index, config, value, 0)
    assert rea.rng.bounds == [3] * 9 and population() == [("a-a-a", 90.0), ("b-b-b", 70.0), ("c-c-c", 60.0)]

    # cycle 1: the tournament draws members 2 and 1 (two draws over the whole population); the parent is the better
    # drawn (b, 70), not the population's best (a, 90). Mutation: site 1 of 3, its only choice, value 0 of the
    # two others of 'b' (a, c) -> b-a-b.
    rea.rng = Script(2, 1, 1, 0, 0)
    child, _ = rea.suggest(3)
    assert rea.rng.bounds == [3, 3, 3, 1, 2] and not rea.rng.values
    assert genotype_str(space, child) == "b-a-b"
    assert differing(child, space.encode(("b", "b", "b"))) == ["cell.e1"]
    # ageing: the oldest member (a, the best) leaves, not the worst (the child, 40)
    rea.complete(3, child, 40.0, 0)
    assert population() == [("b-b-b", 70.0), ("c-c-c", 60.0), ("b-a-b", 40.0)]

    # cycle 2: with replacement, the same member twice (c); site 2, value 1 of (a, b) -> c-c-b
    rea.rng = Script(1, 1, 2, 0, 1)
    child, _ = rea.suggest(4)
    assert genotype_str(space, child) == "c-c-b" and rea.rng.bounds == [3, 3, 3, 1, 2]
    rea.complete(4, child, 60.0, 0)
    assert population() == [("c-c-c", 60.0), ("b-a-b", 40.0), ("c-c-b", 60.0)]

    # cycle 3: a tie (c-c-b and c-c-c, both 60) goes to the first drawn, c-c-b; site 0, value 0 of (a, b) -> a-c-b
    # (the second drawn would have given a-c-c)
    rea.rng = Script(2, 0, 0, 0, 0)
    child, _ = rea.suggest(5)
    assert genotype_str(space, child) == "a-c-b"
    rea.complete(5, child, math.nan, 0)
    assert [g for g, _ in population()] == ["b-a-b", "c-c-b", "a-c-b"]

    # cycle 4: a member without a figure (NaN) loses to every known one, even drawn first: parent b-a-b (40);
    # site 0, value 1 of (a, c) -> c-a-b
    rea.rng = Script(2, 0, 0, 0, 1)
    child, _ = rea.suggest(6)
    assert genotype_str(space, child) == "c-a-b"


def test_rea_first_proposals_are_the_space_samples_of_its_seed():
    space = space_of("nb201")
    cfg = smoke_cfg("rea", "nb201", rea_population=4)
    rea, rng = Evolution(space, cfg, seed=7), np.random.default_rng(7)
    for index in range(4):
        config, _ = rea.suggest(index)
        assert genotype_str(space, config) == space.to_str(space.sample(rng))
        rea.complete(index, config, float(index), 0)


@pytest.mark.parametrize("seed", range(20))
def test_nb201_mutation_changes_exactly_one_edge_op(seed):
    space = space_of("nb201")
    encoding = space.encoding()
    rng = np.random.default_rng(seed)
    parent = space.encode(space.sample(rng))
    for _ in range(5):
        child = mutate(space, encoding, parent, rng)
        before, after = space.decode(parent), space.decode(child)
        assert sum(x != y for x, y in zip(before, after)) == 1, (before, after)
        assert len(differing(parent, child)) == 1
        parent = child


@pytest.mark.parametrize("space_name", SPACES)
def test_a_mutation_changes_one_active_choice_and_the_genotype(space_name):
    space = space_of(space_name)
    encoding = space.encoding()
    rng = np.random.default_rng(5)
    parent = space.encode(space.sample(rng))
    for _ in range(20):
        child = mutate(space, encoding, parent, rng)
        changed = differing(parent, child)
        assert len(changed) == 1 and changed[0] in {c.name for c in space.active_choices(parent)}
        assert genotype_str(space, child) != genotype_str(space, parent)
        assert_valid(space, child)
        parent = child


def test_mutation_draws_again_when_the_child_decodes_to_the_parent():
    """On the heterogeneous space a node whose two tier-1 ops would both be non-feature decodes to the rule's best
    valid pair: mutating a parent's (sep_conv_3x3 on source 0, channel_attention on source 1) at source 0 to
    spatial_attention gives the parent again (the rule puts the first feature op, sep_conv_3x3, back on source 0),
    so the mutation draws again."""
    space = space_of("hetero")
    encoding = space.encoding()
    parent = space.encode(space.sample(np.random.default_rng(0)))
    parent.update({"normal.e0": "sep_conv_3x3", "normal.e1": "channel_attention"})
    values = space.op_names
    # the first draw: site 0 (normal node 2), its first choice (normal.e0), spatial_attention among the others
    back = {**parent, "normal.e0": "spatial_attention"}
    assert genotype_str(space, back) == genotype_str(space, parent)
    others = [v for v in values if v != "sep_conv_3x3"]
    # the second draw: the same site and choice, dil_conv_3x3
    script = Script(0, 0, others.index("spatial_attention"), 0, 0, others.index("dil_conv_3x3"))
    child = mutate(space, encoding, parent, script)
    assert not script.values and script.bounds[:2] == [8, 3]  # 8 sites (4 nodes × 2 cells); e0, e1, e14
    assert differing(parent, child) == ["normal.e0"] and child["normal.e0"] == "dil_conv_3x3"


# --- 2. every searcher proposes valid genotypes of every space ----------------------------------------------

def assert_valid(space: SearchSpace, config: dict[str, str]) -> None:
    encoding = space.encoding()
    assert set(config) == {c.name for c in encoding}
    for choice in encoding:
        assert config[choice.name] in choice.values, (choice.name, config[choice.name])
    genotype = space.decode(config)
    text = space.to_str(genotype)
    assert space.to_str(space.parse(text)) == text
    space.edge_choices([space.parse(text)])  # one choice per edge (else ValueError)


def make_searcher(kind: str, space: SearchSpace, cfg: dict[str, Any], seed: int) -> Any:
    if kind == "bohb":  # on nb201 as on its look-ups: one budget, so that the model gets enough results to fit
        return BOHB(space, cfg, seed, lookup=space.name == "nb201")
    return {"rea": Evolution, "tpe": TPE, "rs-asha": RandomWithASHA}[kind](space, cfg, seed)


def drive(searcher: Any, values: list[float], epochs: int) -> list[tuple[dict[str, str], int | None]]:
    """Evaluations of the searcher with the figures ``values`` (each reported after every epoch of its budget,
    stopping when the searcher says so); the proposals."""
    proposals = []
    for index, value in enumerate(values):
        config, budget = searcher.suggest(index)
        proposals.append((config, budget))
        trained = 0
        for epoch in range(1, (budget or epochs) + 1):
            trained = epoch
            if searcher.report(index, epoch, value * epoch):
                break
        searcher.complete(index, config, value * trained, trained)
    return proposals


# the model phases: TPE's after its 10 random start-up trials, BOHB's once a budget has 2 (d + 1) results
# (hpbandster's rule: d + 1 good and d + 1 bad ones); nb201's six choices get there within 20 evaluations, the larger
# spaces are driven for fewer (their proposals are the searchers' random start there)
EVALUATIONS = {"nb201": 20, "darts": 6, "hetero": 6, "proxyless": 6}


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("kind", METHODS)
@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")  # Tune's ASHA cutoff of a rung of NaN figures
def test_every_searcher_proposes_valid_genotypes(kind, space_name):
    space = space_of(space_name)
    cfg = smoke_cfg(kind, space_name, rs_epochs=3)

    @settings(max_examples=8 if space_name != "nb201" else 15, deadline=None, derandomize=True)
    @given(seed=st.integers(0, 2**31 - 1),
           values=st.lists(st.one_of(st.floats(0, 100), st.integers(0, 100).map(float), st.just(math.nan)),
                           min_size=EVALUATIONS[space_name], max_size=EVALUATIONS[space_name]))
    def check(seed, values):
        for config, budget in drive(make_searcher(kind, space, cfg, seed), values, 3):
            assert budget is None or 1 <= budget <= 3
            assert_valid(space, config)

    check()


@pytest.mark.parametrize("space_name", SPACES)
def test_random_configurations_decode_to_valid_genotypes(space_name):
    space = space_of(space_name)
    encoding = space.encoding()

    @settings(max_examples=25, deadline=None, derandomize=True)
    @given(st.data())
    def check(data):
        config = {c.name: data.draw(st.sampled_from(c.values), label=c.name) for c in encoding}
        assert_valid(space, config)

    check()


# --- 3. the encoding round trip -----------------------------------------------------------------------------

@pytest.mark.parametrize("space_name", SPACES)
def test_decode_of_encode_is_the_genotype(space_name):
    space = space_of(space_name)
    rng = np.random.default_rng(0)
    for _ in range(30):
        genotype = space.sample(rng)
        config = space.encode(genotype)
        assert_valid(space, config)
        assert space.to_str(space.decode(config)) == space.to_str(genotype)


def non_feature_nodes(space: SearchSpace, config: dict[str, str]) -> set[str]:
    """The sites of the heterogeneous space's nodes whose two kept tier-1 ops are both non-feature."""
    if space.name != "hetero":
        return set()
    ops: dict[str, list[str]] = {}
    for choice in space.active_choices(config):
        if not choice.is_inputs and choice.edges[0] < 14:  # a kept tier-1 edge
            ops.setdefault(choice.site, []).append(config[choice.name])
    assert all(len(pair) == 2 for pair in ops.values())
    return {site for site, pair in ops.items() if all(OP_FAMILY[op] != "feature" for op in pair)}


@pytest.mark.parametrize("space_name", SPACES)
def test_encode_of_decode_agrees_on_the_active_choices(space_name):
    """Except, on the heterogeneous space, at a node whose two kept tier-1 ops are both non-feature: the rule gives
    its best valid pair there (``derive_node``): one of the two chosen (edge, op) pairs and a feature op."""
    space = space_of(space_name)
    encoding = space.encoding()
    rng = np.random.default_rng(1)
    seen_rule = 0
    for _ in range(40):
        config = {c.name: c.values[int(rng.integers(len(c.values)))] for c in encoding}
        again = space.encode(space.decode(config))
        exempt = non_feature_nodes(space, config)
        for choice in space.active_choices(config):
            if choice.site not in exempt:
                assert again[choice.name] == config[choice.name], choice.name
        for site in exempt:
            seen_rule += 1
            chosen = {(c.edges[0], config[c.name]) for c in space.active_choices(config)
                      if c.site == site and not c.is_inputs and c.edges[0] < 14}
            kept = {(c.edges[0], again[c.name]) for c in space.active_choices(again)
                    if c.site == site and not c.is_inputs and c.edges[0] < 14}
            assert len(kept) == 2 and len(kept & chosen) == 1, (site, chosen, kept)
            assert any(OP_FAMILY[op] == "feature" for _, op in kept)
    assert (seen_rule > 0) == (space_name == "hetero")


@pytest.mark.parametrize("space_name", ["nb201", "darts"])
def test_bad_configurations_are_one_line_value_errors(space_name):
    space = space_of(space_name)
    config = space.encode(space.sample(np.random.default_rng(0)))
    inputs = next((c.name for c in space.encoding() if c.is_inputs), None)
    bad = [{k: v for k, v in config.items() if k != next(iter(config))},  # a missing choice
           {**config, next(iter(config)): "no_such_op"}]  # an unknown value
    if inputs:
        bad += [{k: v for k, v in config.items() if k != inputs}, {**config, inputs: "0+0"}]
    for wrong in bad:
        with pytest.raises(ValueError) as err:
            space.decode(wrong)
        one_line(err)


def test_every_choice_of_the_encoding_is_checked_even_an_inactive_one():
    """A configuration of the encoding names every choice with one of its values: a missing or unknown op choice
    of an edge the configuration does not keep, or a name the encoding does not have, is refused too."""
    space = space_of("darts")
    config = space.encode(space.sample(np.random.default_rng(0)))
    inactive = next(c for c in space.encoding() if not c.is_inputs and c not in space.active_choices(config))
    for wrong in ({k: v for k, v in config.items() if k != inactive.name}, {**config, inactive.name: "bogus"},
                  {**config, "normal.e99": "sep_conv_3x3"}):
        with pytest.raises(ValueError) as err:
            space.decode(wrong)
        one_line(err)


# --- 4. ASHA ------------------------------------------------------------------------------------------------

def test_asha_stops_the_worst_candidate_at_its_rung_against_a_hand_cutoff():
    """Rungs at 1 and 3 epochs of 9 (grace 1, η 3); a candidate stops at a rung when its figure is below the
    (1 - 1/η)·100th percentile of the figures recorded there before it (Tune's ``_Bracket.cutoff``)."""
    eta, epochs = 3, 9
    space = Tiny()
    asha = RandomWithASHA(space, {"rs_epochs": epochs, "asha_eta": eta, "asha_grace": 1}, seed=0)
    recorded: dict[int, list[float]] = {1: [], 3: []}

    def hand_cutoff(rung: int) -> float | None:
        return float(np.nanpercentile(recorded[rung], (1 - 1 / eta) * 100)) if recorded[rung] else None

    def candidate(index: int, curve: list[float]) -> tuple[int, bool]:
        """Report ``curve`` epoch by epoch as the method does; (epochs trained, stopped), checked against the hand
        rule at every rung."""
        config, _ = asha.suggest(index)
        for epoch, value in enumerate(curve, start=1):
            stop = asha.report(index, epoch, value)
            if epoch in recorded:
                cutoff = hand_cutoff(epoch)
                assert stop == (cutoff is not None and value < cutoff), (index, epoch, value, cutoff)
                recorded[epoch].append(value)
            else:
                assert not stop
            if stop:
                asha.complete(index, config, value, epoch)
                return epoch, True
        asha.complete(index, config, curve[-1], len(curve))
        return len(curve), False

    good = [[50 + 5 * k + e for e in range(epochs)] for k in range(3)]
    for index, curve in enumerate(good):
        assert candidate(index, curve) == (epochs, False)
    # Tune's scheduler said STOP at each one's last epoch (max_t); the method does not count that as stopped
    assert asha.scheduler._num_stopped == 3
    assert hand_cutoff(1) == pytest.approx(np.percentile([50, 55, 60], 200 / 3)) == pytest.approx(56.6666667)
    # the worst curve stops at the first rung
    assert candidate(3, [10.0] * epochs) == (1, True)
    # the cutoff at rung 1 now: the 66.7th percentile of 10, 50, 55, 60 (linear interpolation: position 2) = 55
    cutoff = hand_cutoff(1)
    assert cutoff == pytest.approx(55.0)
    # just above it continues past rung 1, and is stopped at rung 3 (55 < the cutoff of 52, 57, 62: 58.67)
    assert candidate(4, [cutoff + 0.01] + [cutoff] * (epochs - 1)) == (3, True)
    # just below it stops at rung 1
    assert candidate(5, [hand_cutoff(1) - 0.01] * epochs) == (1, True)
    # a candidate that stays at the top is never stopped, even where Tune says STOP (its last epoch, max_t)
    assert candidate(6, [100.0] * epochs) == (epochs, False)


def test_asha_grace_beyond_the_candidates_epochs_is_one_line():
    with pytest.raises(UserError) as err:
        smoke_cfg("rs-asha", "darts", rs_epochs=3, asha_grace=4)
    assert "asha_grace (4) must be at most rs_epochs (3)" in one_line(err)
    assert smoke_cfg("rs-asha", "darts", rs_epochs=3, asha_grace=3)["asha_grace"] == 3


def test_asha_on_a_look_up_is_random_search():
    space = space_of("nb201")
    asha = RandomWithASHA(space, smoke_cfg("rs-asha", "nb201"), seed=3)
    rng = np.random.default_rng(3)
    for index in range(5):
        config, budget = asha.suggest(index)
        assert budget is None and genotype_str(space, config) == space.to_str(space.sample(rng))
        asha.complete(index, config, 50.0, 0)  # a look-up: the scheduler forgets the candidate
    assert not asha.scheduler._trial_info


# --- 5. BOHB's brackets -------------------------------------------------------------------------------------

def hyperband(top: int, low: int, eta: int = 3) -> list[list[tuple[int, int]]]:
    """HyperBand's brackets (Li et al. 2018, Algorithm 1) by hand: s_max = ⌊log_η(R/r)⌋; bracket s has
    n = ⌈(s_max + 1) / (s + 1) · η^s⌉ configurations at R·η^-s epochs, then ⌊n·η^-i⌋ at R·η^(i-s)."""
    s_max = 0
    while low * eta ** (s_max + 1) <= top:
        s_max += 1
    brackets = []
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) / (s + 1) * eta ** s)
        brackets.append([(max(n // eta ** i, 1), round(top / eta ** (s - i))) for i in range(s + 1)])
    return brackets


def test_hand_hyperband_schedule():
    assert hyperband(9, 1) == [[(9, 1), (3, 3), (1, 9)], [(5, 3), (1, 9)], [(3, 9)]]
    assert hyperband(3, 1) == [[(3, 1), (1, 3)], [(2, 3)]]


@pytest.mark.parametrize("top", [9, 3])
def test_bohb_runs_hyperband_brackets_and_promotes_the_best_third(top):
    space = space_of("nb201")
    bohb = BOHB(space, smoke_cfg("bohb", "nb201", rs_epochs=top, bohb_min_epochs=1), seed=0, lookup=False)
    rng = np.random.default_rng(0)
    index = 0
    for bracket in hyperband(top, 1) * 2:  # every bracket, then again from the first
        promoted: list[dict[str, str]] | None = None
        for count, budget in bracket:
            configs = []
            values = list(rng.permutation(count) * 1.0)  # distinct figures; one NaN below
            if count > 2:
                values[0] = math.nan  # a missing figure: never promoted
            for k in range(count):
                config, suggested = bohb.suggest(index)
                assert suggested == budget, (index, bracket)
                configs.append(config)
                bohb.complete(index, config, values[k], budget)
                index += 1
            if promoted is not None:  # this rung's configurations are the previous rung's best, in their order
                assert configs == promoted
            keep = sorted(sorted(range(count), key=lambda k: -(values[k] if not math.isnan(values[k]) else -1))
                          [:max(count // 3, 1)])
            promoted = [configs[k] for k in keep]


def test_bohb_promotes_the_earlier_of_equal_figures():
    space = space_of("nb201")
    bohb = BOHB(space, smoke_cfg("bohb", "nb201", rs_epochs=3, bohb_min_epochs=1), seed=1, lookup=False)
    configs = []
    for index in range(3):  # bracket s=1: three configurations at 1 epoch, one promoted to 3
        config, _ = bohb.suggest(index)
        configs.append(config)
        bohb.complete(index, config, [20.0, 50.0, 50.0][index], 1)
    assert configs[1] != configs[2] and bohb.suggest(3) == (configs[1], 3)


def test_bohb_on_a_look_up_has_no_budgets():
    space = space_of("nb201")
    bohb = BOHB(space, smoke_cfg("bohb", "nb201", rs_epochs=9), seed=0, lookup=True)
    for index in range(12):
        config, budget = bohb.suggest(index)
        assert budget is None
        bohb.complete(index, config, float(index % 5), 0)


# --- 6. a resumed search equals an uninterrupted one ---------------------------------------------------------

def lookup_method(name: str, seed: int = 0, **overrides: Any) -> Any:
    cfg = smoke_cfg(name, "nb201", **overrides)
    return get_method(name)(get_space("nb201")(cfg), cfg, CIFAR10, CPU, seed)


def without_seconds(evaluations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "seconds"} for e in evaluations]


def resumed_at(build: Any, stop: int, data: Any = None) -> Any:
    """A method run for ``stop`` evaluations, its checkpoint (through the checkpoint file's serialisation) loaded
    into a new one."""
    first = build()
    for i in range(stop):
        first.train_epoch(i, data)
    resumed = build()
    resumed.load_state_dict(checkpoints.loads(checkpoints.dumps(first.state_dict())))
    assert without_seconds(resumed.evaluations) == without_seconds(first.evaluations)
    return resumed


@pytest.mark.parametrize("name", METHODS)
def test_a_resumed_lookup_search_equals_an_uninterrupted_one(name):
    """20 look-ups, resumed after 16: past REA's population, TPE's 10 start-up trials and BOHB's first model (14
    results on nb201)."""
    overrides = {"rs_candidates": 20, "rs_epochs": 9, "rea_population": 4, "rea_sample_size": 3}
    overrides = {k: v for k, v in overrides.items() if k in smoke_cfg(name, "nb201")}
    whole = lookup_method(name, **overrides)
    metrics = [whole.train_epoch(i, None) for i in range(whole.num_epochs())]
    assert whole.num_epochs() == 20
    if name == "bohb":
        assert whole.searcher.search.bohber.kde_models  # the model proposed the last ones

    resumed = resumed_at(lambda: lookup_method(name, **overrides), 16)
    for i in range(16, 20):
        assert resumed.train_epoch(i, None) == metrics[i], i
    assert without_seconds(resumed.evaluations) == without_seconds(whole.evaluations)
    assert resumed.space.to_str(resumed.derive()) == whole.space.to_str(whole.derive())
    assert resumed.search_val_acc({}) == whole.search_val_acc({})
    # a search proposes more than one genotype, and its result is the best figure it saw
    genotypes = {e["genotype"] for e in whole.evaluations}
    assert len(genotypes) > 3
    assert whole.search_val_acc({}) == max(e["val_acc"] for e in whole.evaluations)


def test_a_checkpoint_that_does_not_replay_is_one_line():
    method = lookup_method("rea")
    for i in range(4):
        method.train_epoch(i, None)
    state = method.state_dict()
    other = dict(state["evaluations"][2]["config"])
    first = next(iter(other))
    other[first] = next(v for v in ("none", "skip_connect") if v != other[first])
    state["evaluations"][2]["config"] = other
    fresh = lookup_method("rea")
    with pytest.raises(UserError) as err:
        fresh.load_state_dict(state)
    assert "evaluation 3" in one_line(err)


class ScriptedTrainer:
    """``CandidateTrainer`` without training: a candidate's figure after epoch e is a fixed function of its genotype
    (crc32 of its string, mod 50) plus e."""

    def __init__(self, space: str, cfg: Any, data: Any, seed: int, device: Any = None, threads: Any = None):
        pass

    def start(self, index: int, genotype: str, epochs: int) -> None:
        self.base, self.done = zlib.crc32(genotype.encode()) % 50, 0

    def epoch(self) -> tuple[float, float]:
        self.done += 1
        return float(self.base + self.done), 0.0


@pytest.mark.parametrize("name, evaluations, stops", [("rs-asha", 12, (3, 7)), ("bohb", 22, (5, 11, 15))])
def test_a_resumed_trained_search_replays_curves_and_budgets(monkeypatch, name, evaluations, stops):
    """On a trained space (DARTS) the replay feeds back every recorded epoch: ASHA's rungs and BOHB's brackets are
    rebuilt, so the candidates after the resume are stopped and promoted as in the uninterrupted run (resumed
    within a bracket's first rung, its second and a later bracket)."""
    monkeypatch.setattr(blackbox, "CandidateTrainer", ScriptedTrainer)
    cfg = smoke_cfg(name, "darts", rs_candidates=evaluations, rs_epochs=9 if name == "bohb" else 4,
                    **({"asha_eta": 2} if name == "rs-asha" else {}))

    def build() -> Any:
        return get_method(name)(get_space("darts")(cfg), cfg, DataInfo(1, 10, 8), CPU, 0)

    data = object()  # never read by the scripted training
    whole = build()
    metrics = [whole.train_epoch(i, data) for i in range(evaluations)]
    fidelities = [e["fidelity"] for e in whole.evaluations]
    if name == "bohb":
        assert fidelities == [1] * 9 + [3] * 3 + [9] + [3] * 5 + [9] + [9] * 3
    for stop in stops:
        resumed = resumed_at(build, stop, data)
        for i in range(stop, evaluations):
            assert resumed.train_epoch(i, data) == metrics[i], (stop, i)
        assert without_seconds(resumed.evaluations) == without_seconds(whole.evaluations)
        assert resumed.space.to_str(resumed.derive()) == whole.space.to_str(whole.derive())
    if name == "rs-asha":  # candidates after the first resume point were stopped by rungs recorded before it
        assert any(e["stopped"] for e in whole.evaluations[stops[0]:])


def test_a_resumed_trained_search_equals_an_uninterrupted_one(digits_dataset):
    """ASHA on the DARTS space at conftest's tiny size on digits, really trained: the resumed search trains the same
    candidates with the same curves (the trial's random state restored, as its checkpoint does)."""
    cfg = resolve(get_method("rs-asha"), get_space("darts"), "smoke",
                  {**tiny_overrides("rs-asha", "darts"), "rs_candidates": "4", "rs_epochs": "3",
                   "asha_eta": "2"}).values
    seed_everything(0)
    data = SearchData(digits_dataset, cfg, 0, CPU)

    def build() -> Any:
        return get_method("rs-asha")(get_space("darts")(cfg), cfg, data.info, CPU, 0)

    seed_everything(0)
    whole = build()
    metrics = [whole.train_epoch(i, data) for i in range(4)]
    seed_everything(0)
    first = build()
    for i in range(2):
        assert first.train_epoch(i, data) == metrics[i]
    blob, saved = checkpoints.dumps(first.state_dict()), rng_state()
    torch.manual_seed(123)
    resumed = build()
    resumed.load_state_dict(checkpoints.loads(blob))
    set_rng_state(saved)
    for i in range(2, 4):
        assert resumed.train_epoch(i, data) == metrics[i]
    assert without_seconds(resumed.evaluations) == without_seconds(whole.evaluations)
    assert resumed.space.to_str(resumed.derive()) == whole.space.to_str(whole.derive())
    curves = [e["curve"] for e in whole.evaluations]
    assert all(1 <= len(c) <= 3 for c in curves) and any(len(c) == 3 for c in curves)


# --- 7. a missing extra is one line -------------------------------------------------------------------------

@pytest.mark.parametrize("name, module", [("tpe", "optuna"), ("bohb", "hpbandster"), ("bohb", "ConfigSpace")])
def test_a_missing_extra_is_one_line(monkeypatch, name, module):
    import hpbandster  # noqa: F401  (imported whole first: hpbandster itself imports ConfigSpace)

    monkeypatch.setitem(sys.modules, module, None)  # import fails
    with pytest.raises(UserError) as err:
        lookup_method(name)
    msg = one_line(err)
    assert f"'{module}'" in msg and 'pip install -e ".[blackbox]"' in msg and f"--method {name}" in msg


def test_a_missing_extra_seen_through_the_import_hook(monkeypatch):
    real_import = builtins.__import__

    def no_optuna(name, *args, **kwargs):
        if name.split(".")[0] == "optuna":
            raise ModuleNotFoundError("No module named 'optuna'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optuna)
    with pytest.raises(UserError) as err:
        lookup_method("tpe")
    assert "optuna" in one_line(err)
    lookup_method("rea")  # needs nothing extra


# --- 8. the look-ups' simulated cost -------------------------------------------------------------------------

def test_cost_column_on_the_bundled_and_on_a_table_with_training_times(tmp_path):
    bundled = load_table()
    assert bundled.cost_column("cifar10_valid_valid") is None
    seconds = 1000.0 + np.arange(len(bundled)) / 4
    timed = NB201Table(bundled.codes, np.column_stack([bundled.values, seconds]),
                       [*bundled.columns, "cifar10_valid_train_seconds"], dict(bundled.meta))
    assert timed.cost_column("cifar10_valid_valid") == "cifar10_valid_train_seconds"
    assert timed.cost_column("cifar100_valid") is None  # no CIFAR-100 training times
    path = tmp_path / "timed.npz"
    timed.save(path)

    method = lookup_method("rea", nb201_table=path)
    metrics = [method.train_epoch(i, None) for i in range(method.num_epochs())]
    for entry, m in zip(method.evaluations, metrics):
        genotype = method.space.parse(entry["genotype"])
        assert entry["simulated_seconds"] == m["simulated_seconds"] == 1000.0 + bundled.index_of(genotype) / 4
        assert entry["val_acc"] == bundled.query([genotype], "cifar10_valid_valid")[0]
    info = method.record_info()["blackbox"]
    assert info["simulated_seconds"] == pytest.approx(sum(e["simulated_seconds"] for e in method.evaluations))
    assert "cifar10_valid_train_seconds" in info["simulated_cost"]

    plain = lookup_method("rea")
    metrics = [plain.train_epoch(i, None) for i in range(plain.num_epochs())]
    assert all("simulated_seconds" not in m for m in metrics)
    assert all(e["simulated_seconds"] is None for e in plain.evaluations)
    assert plain.record_info()["blackbox"]["simulated_seconds"] is None


# --- candidates trained side by side (bb_workers) -------------------------------------------------------------

@pytest.mark.parametrize("name", METHODS)
def test_rounds_of_side_by_side_candidates_resume_as_they_ran(monkeypatch, name):
    """bb_workers = 3 on a trained space: each search epoch is a round of three evaluations, proposed before any
    result (BOHB hands out a new bracket's configurations while a rung waits), reported in proposal order; a search
    resumed after a round equals the uninterrupted one."""
    monkeypatch.setattr(blackbox, "CandidateTrainer", ScriptedTrainer)
    cfg = smoke_cfg(name, "darts", rs_candidates=14, rs_epochs=9 if name == "bohb" else 4, bb_workers=3,
                    **({"asha_eta": 2} if name == "rs-asha" else {}))

    def build() -> Any:
        return get_method(name)(get_space("darts")(cfg), cfg, DataInfo(1, 10, 8), CPU, 0)

    whole = build()
    assert whole.num_epochs() == 5  # ⌈14 / 3⌉ rounds, the last of two
    metrics = [whole.train_epoch(i, object()) for i in range(5)]
    assert [m["evaluations"] for m in metrics] == [3, 3, 3, 3, 2]  # the rounds' sizes (bb_workers = 1: no column)
    assert [e["index"] for e in whole.evaluations] == list(range(14))
    for m, first in zip(metrics, range(0, 14, 3)):  # each round's figure is its best evaluation's
        round_ = whole.evaluations[first:first + 3]
        assert m["val_acc"] == max(e["val_acc"] for e in round_)
    if name == "bohb":  # brackets side by side: 9 at 1 epoch, then the next bracket's 5 at 3 while rung 1 waits
        assert [e["fidelity"] for e in whole.evaluations] == [1] * 9 + [3] * 3 + [9] + [3]
    for stop in (1, 3):
        resumed = resumed_at(build, stop, object())
        for i in range(stop, 5):
            assert resumed.train_epoch(i, object()) == metrics[i], (stop, i)
        assert without_seconds(resumed.evaluations) == without_seconds(whole.evaluations)


def test_side_by_side_candidates_train_as_they_would_alone(digits_dataset):
    """A candidate's training is a function of the seed, its index, its genotype and its budget: without Ray the
    round's trainers run in this process one after another, and rs-asha with bb_workers = 2 trains every candidate of
    the first round exactly as bb_workers = 1 does (ASHA's first rung sees them in the same order)."""
    runs = {}
    for workers in (1, 2):
        cfg = resolve(get_method("rs-asha"), get_space("darts"), "smoke",
                      {**tiny_overrides("rs-asha", "darts"), "rs_candidates": "2", "rs_epochs": "2",
                       "bb_workers": str(workers)}).values
        seed_everything(0)
        data = SearchData(digits_dataset, cfg, 0, CPU)
        method = get_method("rs-asha")(get_space("darts")(cfg), cfg, data.info, CPU, 0)
        for epoch in range(method.num_epochs()):
            method.train_epoch(epoch, data)
        assert method.parallel_device_seconds() == 0.0  # no actor outside a Ray trial
        assert {e["trainer"] for e in method.evaluations} == {"trial"}
        runs[workers] = [(e["genotype"], e["curve"]) for e in method.evaluations]
    assert runs[1] == runs[2]


def test_a_trial_asks_for_one_bundle_per_worker():
    """The runner's placement group and the plan's words: bb_workers bundles of the trial's resources on a trained
    space, one on a look-up space (nothing to train) and for every other method."""
    from harness.plan import resources_text
    from harness.runner import trial_resources

    def spec(method: str, space: str, workers: int) -> Any:
        cfg = smoke_cfg(method, space, **({"bb_workers": workers} if method in METHODS else {}))
        return SimpleNamespace(method=method, space=space, config=cfg, cpus_per_trial=2, gpus_per_trial=0.5,
                               bundles=ExperimentSpec.bundles.fget(SimpleNamespace(method=method, space=space,
                                                                                   config=cfg)))

    darts = spec("bohb", "darts", 3)
    assert darts.bundles == 3
    assert trial_resources(darts).bundles == [{"CPU": 2, "GPU": 0.5}] * 3
    assert resources_text(darts) == "3 bundles of 2 CPU, 0.5 GPU (candidates trained side by side)"
    assert spec("bohb", "nb201", 3).bundles == 1 and spec("gdas", "darts", 1).bundles == 1
    assert trial_resources(spec("gdas", "darts", 1)).bundles == [{"CPU": 2, "GPU": 0.5}]
    assert resources_text(spec("random", "darts", 1)) == "2 CPU, 0.5 GPU"


def test_show_says_what_the_black_box_search_did():
    """``harness show``'s line on a record's ``blackbox``: evaluations, how, budgets, stops, workers, simulated cost."""
    from harness.core.records import blackbox_summary

    trained = {"searcher": "BOHB", "evaluation": "trained", "device_seconds": 12.0, "stopped_early": 2, "workers": 3,
               "evaluations": [{"fidelity": 1}, {"fidelity": 3}, {"fidelity": 1}], "simulated_cost": None}
    assert blackbox_summary(trained) == ("black-box search (BOHB): 3 evaluations, trained; budgets 1, 3 epochs; 2 "
                                         "stopped early; 3 side by side")
    looked_up = {"searcher": "Evolution", "evaluation": "look-up of the benchmark's cifar10_valid_valid",
                 "device_seconds": None, "evaluations": [{"fidelity": "look-up"}] * 100,
                 "simulated_cost": "none: the table has no training times (one query per evaluation)"}
    assert blackbox_summary(looked_up) == (
        "black-box search (Evolution): 100 evaluations, look-up of the benchmark's cifar10_valid_valid; simulated "
        "cost: none: the table has no training times (one query per evaluation)")
