"""Capabilities, not names: the method × space matrix is computed from what spaces offer and methods need, less
explicit exclusions. Pins today's matrix pair by pair, checks the reasons (``compatible``, ``check_pair``, a
study's refusal, ``list`` at 80 columns) on the registered and on crafted classes, and checks that each space's
declared capabilities are what its code does (stage outputs, candidates per edge, cells, tensor outputs)."""

from __future__ import annotations

import io
import operator
import re
from functools import reduce

import numpy as np
import pytest
import torch
from rich.console import Console
from torch import nn

from harness.cli import cmd_list
from harness.core.config import resolve
from harness.core.data import DataInfo
from harness.core.errors import UserError
from harness.core.registry import (
    METHODS,
    SPACES,
    all_methods,
    all_spaces,
    check_pair,
    compatible,
    get_method,
    get_space,
    spaces_of,
    valid_pairs,
)
from harness.study import parse_study
from methods.base import SearchMethod
from spaces.base import FEATURES, SearchSpace

# Every (method, space) pair's yes/no as the methods' lists of space names gave it before the capabilities.
TODAY = {
    "darts": {"darts", "hetero", "nb201", "proxyless"},
    "adwpnas": {"darts", "nb201"},
    "agnas": {"darts", "nb201", "proxyless"},
    "gdas": {"darts", "nb201", "proxyless"},
    "eoinas": {"darts", "nb201"},
    "nos": {"hetero", "darts"},
    "proxyless": {"proxyless", "darts", "nb201"},
    "random": {"darts", "hetero", "nb201", "proxyless"},
    # the black-box searchers (issue 31): every space offers the categorical encoding
    **{name: {"darts", "hetero", "nb201", "proxyless"} for name in ("rea", "tpe", "bohb", "rs-asha")},
}


def test_the_computed_matrix_is_todays_pair_by_pair():
    assert set(all_methods()) == set(TODAY)
    assert set(all_spaces()) == {"darts", "hetero", "nb201", "proxyless"}
    for method in TODAY:
        for space in all_spaces():
            ok, reason = compatible(method, space)
            assert ok == (space in TODAY[method]), (method, space, reason)
            assert (reason == "") == ok
    assert sorted(valid_pairs()) == sorted((m, s) for m, spaces in TODAY.items() for s in spaces)
    assert spaces_of("nos") == ["darts", "hetero"]  # registration order, not the order a method once listed


def test_every_capability_is_named_and_every_exclusion_is_live():
    for space in all_spaces().values():
        assert space.features <= set(FEATURES), space.name
    for method in all_methods().values():
        assert method.needs and method.needs <= set(FEATURES), method.name
        for space, reason in method.excludes.items():
            # an exclusion of a space that lacks a need would never be read: the missing capability decides
            assert space in all_spaces() and method.needs <= all_spaces()[space].features, (method.name, space)
            assert reason.strip() and "\n" not in reason


def test_the_reasons_of_todays_refusals():
    assert compatible("agnas", "hetero") == (False, "the space lacks tensor-ops")
    assert compatible("eoinas", "proxyless") == (False, "the space lacks uniform-ops")
    assert compatible("adwpnas", "proxyless") == (False, "the space lacks cells")
    assert compatible("nos", "nb201") == (False, "the space lacks stage-features")
    assert compatible("gdas", "hetero") == (False, "the method excludes it: " + get_method("gdas").excludes["hetero"])


@pytest.fixture
def crafted(monkeypatch):
    """A space offering edges and sample, and three methods: one it serves, one that needs more, one that excludes it
    (and also needs more, so the missing capability must win)."""

    class Plain(SearchSpace):
        name = "plain"
        features = frozenset({"edges", "sample"})

    def method(name: str, needs: set[str], excludes: dict[str, str] | None = None) -> type[SearchMethod]:
        return type(name, (SearchMethod,), {"name": name, "needs": frozenset(needs), "excludes": excludes or {}})

    monkeypatch.setitem(SPACES, "plain", Plain)
    for cls in (method("fits", {"edges"}), method("greedy", {"edges", "cells", "stage-features"}),
                method("picky", {"sample"}, {"plain": "never tried there"}),
                method("both", {"cells"}, {"plain": "never tried there"})):
        monkeypatch.setitem(METHODS, cls.name, cls)


def test_compatibility_of_crafted_classes(crafted):
    assert compatible("fits", "plain") == (True, "")
    assert compatible("greedy", "plain") == (False, "the space lacks cells, stage-features")
    assert compatible("picky", "plain") == (False, "the method excludes it: never tried there")
    assert compatible("both", "plain") == (False, "the space lacks cells")
    assert "plain" in spaces_of("fits") and "plain" not in spaces_of("picky")
    check_pair("fits", "plain")
    with pytest.raises(UserError) as refused:
        check_pair("picky", "plain")
    assert str(refused.value).startswith("method 'picky' does not run on space 'plain': the method excludes it: "
                                         "never tried there (it runs on: darts, hetero, nb201, proxyless;")


def test_check_pair_names_the_reason_in_one_line():
    with pytest.raises(UserError) as refused:
        check_pair("agnas", "hetero")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("method 'agnas' does not run on space 'hetero': the space lacks tensor-ops (it runs on: "
                              "darts, nb201, proxyless;")
    with pytest.raises(UserError, match="the method excludes it: not validated"):
        check_pair("proxyless", "hetero")


def test_a_study_refusal_names_the_reason():
    text = 'budget = "smoke"\nseeds = 1\ndatasets = ["digits"]\nspaces = ["proxyless"]\nmethods = ["eoinas"]\n'
    with pytest.raises(UserError) as refused:
        parse_study(text, "s.toml", "s")
    assert ("'eoinas' (eoinas) does not run on space 'proxyless' (the space lacks uniform-ops; it runs on darts, "
            "nb201)") in str(refused.value)


def test_list_shows_the_matrix_and_every_reason_at_80_columns():
    out = io.StringIO()
    assert cmd_list(Console(file=out, width=80, markup=False, emoji=False)) == 0
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    spaces = list(all_spaces())
    for method in all_methods():
        (row,) = [line for line in lines if re.match(rf"│ {method} +│ +[✓·] ", line)]
        marks = re.findall(r"[✓·]", row)
        assert marks == ["✓" if compatible(method, s)[0] else "·" for s in spaces], method
        for space in spaces:
            ok, reason = compatible(method, space)
            if not ok:  # the reason's start on the pair's row (a long one wraps below it)
                assert [line for line in lines if re.match(rf"│ {method} +│ {space} +│ {re.escape(reason[:30])}",
                                                           line)], (method, space)
    for feature in FEATURES:
        assert any(line.startswith(f"│ {feature} ") for line in lines)


# --- the declared capabilities are what each space's code does ---------------------------------------------------

INFO = DataInfo(1, 10, 8)


def smoke_space(name: str) -> SearchSpace:
    return get_space(name)(resolve(get_method("random"), get_space(name), "smoke", {}).values)


class Probe(nn.Module):
    """An edge module that adds its candidates' outputs and notes the edge and whether every output was a plain
    tensor of the edge's channels."""

    def __init__(self, edge, candidates, seen):
        super().__init__()
        self.edge, self.ops, self.seen = edge, candidates, seen

    def forward(self, x):
        outs = [op(x) for op in self.ops]
        plain = all(isinstance(out, torch.Tensor) and out.shape[1] == self.edge.channels for out in outs)
        self.seen.append((self.edge.cell, plain))
        return reduce(operator.add, outs)


@pytest.mark.parametrize("name", ["darts", "hetero", "nb201", "proxyless"])
def test_a_space_offers_what_its_code_does(name):
    space, cls = smoke_space(name), get_space(name)
    overrides = cls.check_stage_features.__func__ is not SearchSpace.check_stage_features.__func__
    assert ("stage-features" in cls.features) == overrides
    assert ("uniform-ops" in cls.features) == all(mask.all() for mask in space.candidate_mask().values())
    seen: list[tuple[int, bool]] = []
    torch.manual_seed(0)
    net = space.build_supernet(lambda edge, candidates: Probe(edge, candidates, seen), INFO).eval()
    with torch.no_grad():
        net(torch.randn(2, 1, 8, 8))
    assert seen
    assert ("cells" in cls.features) == (len({cell for cell, _ in seen}) > 1)
    assert ("tensor-ops" in cls.features) == all(plain for _, plain in seen)
    assert {"sample", "edges"} <= cls.features
    space.build_network(space.sample(np.random.default_rng(0)), INFO, "search")
