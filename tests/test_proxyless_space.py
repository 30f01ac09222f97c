"""Tests of the ProxylessNAS space: genotype strings, which blocks may be skipped, the released architectures'
parameter and multiply-add counts (the authors' figures), derivation and sampling, the supernet with a tiny
edge factory, and the final network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import one_line
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from harness.core.config import resolve
from harness.core.data import DataInfo
from harness.core.errors import GenotypeError, UserError
from harness.core.metrics import count_madds_m
from harness.core.registry import SPACES, compatible, get_method, get_space
from spaces.base import EdgeId
from spaces.ops import is_zero
from spaces.proxyless import (
    AUTHORS_STRIDES,
    MIN_BLOCK_INPUT,
    NUM_BLOCKS,
    OP_NAMES,
    MBConv,
    ProxylessSpace,
    Residual,
    Skip,
    block_inputs,
    fitted_strides,
    make_divisible,
    scaled_widths,
)

IMAGENET = DataInfo(3, 1000, 224)
CIFAR = DataInfo(3, 10, 32)
MOBILE = ("k5e3 k3e3 zero zero | k7e3 k3e3 k5e3 k5e3 | k7e6 k5e3 k5e3 k5e3 | k5e6 k5e3 k5e3 k5e3 | "
          "k7e6 k7e6 k7e3 k7e3 | k7e6")
GPU = ("k5e3 zero zero zero | k7e3 zero zero k3e3 | k7e6 zero zero k5e3 | k5e6 zero k3e3 k5e3 | "
       "k7e6 k7e6 k7e6 k5e6 | k7e6")
CPU = ("k3e6 k3e3 k3e3 k3e3 | k3e6 k3e3 k3e3 k5e3 | k3e6 zero zero k3e3 | k5e6 k3e3 k3e3 k3e3 | "
       "k5e6 k5e3 k5e3 k3e3 | k5e6")
AGNAS = ("k3e6 k3e6 zero k5e3 | k3e6 zero k7e6 k3e6 | k3e6 zero k7e6 k3e6 | k3e6 zero k3e6 k7e3 | "
         "k5e6 zero k7e6 k7e6 | k7e6")
MOBILE_WIDTHS = "32,16,32,40,80,96,192,320,1280"
GPU_WIDTHS = "40,24,32,56,112,128,256,432,1728"
CPU_WIDTHS = "40,24,32,48,88,104,216,360,1432"
# every non-first block of the first five stages
DEFAULT_SKIPPABLE = tuple(i for i in range(20) if i % 4)


def space_with(**values) -> ProxylessSpace:
    return ProxylessSpace({**ProxylessSpace.defaults, **values})


@pytest.fixture(scope="module")
def space() -> ProxylessSpace:
    return space_with()


@pytest.fixture(scope="module")
def smoke() -> ProxylessSpace:
    return ProxylessSpace(resolve(get_method("darts"), get_space("proxyless"), "smoke", {}).values)


def skippable_blocks(space: ProxylessSpace) -> tuple[int, ...]:
    return tuple(i for i in range(NUM_BLOCKS) if OP_NAMES.index("zero") in space.edge_ops("blocks", i))


# --- registration, candidates ------------------------------------------------------------------------------

def test_registered_with_its_op_names_and_shape(space):
    assert SPACES["proxyless"] is ProxylessSpace
    assert OP_NAMES == ("k3e3", "k3e6", "k5e3", "k5e6", "k7e3", "k7e6", "zero")
    assert space.arch_shape() == {"blocks": (21, 7)}
    assert space.benchmark() is None and not space.evaluates_by_lookup()
    for method in ("darts", "gdas", "random", "agnas"):
        assert compatible(method, "proxyless") == (True, "")


@pytest.mark.parametrize("widths", [None, MOBILE_WIDTHS, GPU_WIDTHS, CPU_WIDTHS])
def test_fifteen_blocks_may_be_skipped_at_the_default_and_released_widths(widths):
    space = space_with(**({"widths": widths} if widths else {}))
    assert skippable_blocks(space) == DEFAULT_SKIPPABLE and len(DEFAULT_SKIPPABLE) == 15
    for i in range(NUM_BLOCKS):
        assert space.edge_ops("blocks", i)[:6] == tuple(range(6))
        assert space.choice_ops("blocks", i) == space.edge_ops("blocks", i)


def test_skippable_blocks_follow_the_widths_and_strides():
    # stage 1 as wide as the first block, and its stride dropped: its first block may be skipped too
    space = space_with(widths="32,24,24,40,80,96,192,320,1280", strides="2,1,2,2,1,2,1")
    assert skippable_blocks(space) == (0, *DEFAULT_SKIPPABLE)
    # stage 4 as wide as stage 3 (stride 1): its first block may be skipped
    space = space_with(widths="32,16,24,40,80,80,192,320,1280")
    assert skippable_blocks(space) == tuple(sorted((12, *DEFAULT_SKIPPABLE)))
    # ... but not with stride 2
    space = space_with(widths="32,16,24,40,80,80,192,320,1280", strides="2,2,2,2,2,2,1")
    assert skippable_blocks(space) == DEFAULT_SKIPPABLE


def test_width_rounding_is_the_authors():
    assert [make_divisible(v) for v in (4, 10, 12, 20, 36, 100)] == [8, 16, 16, 24, 40, 104]
    base = (32, 16, 24, 40, 80, 96, 192, 320, 1280)
    assert scaled_widths(base, 1.0) == base
    assert scaled_widths(base, 0.25) == (8, 8, 8, 16, 24, 24, 48, 80, 1280)  # the last width stays 1280
    assert scaled_widths(base, 1.4)[-1] == 1792


# --- genotype strings -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [MOBILE, GPU, CPU, AGNAS])
def test_canonical_strings_round_trip(space, text):
    genotype = space.parse(text)
    assert len(genotype) == 21 and space.to_str(genotype) == text


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_sampled_genotypes_round_trip(seed):
    space = space_with()
    genotype = space.sample(np.random.default_rng(seed))
    assert space.parse(space.to_str(genotype)) == genotype


@pytest.mark.parametrize("text, problem", [
    ("k3e3 " * 21, "expected 6 stages"),
    (MOBILE.replace(" | k7e6", ""), "expected 6 stages"),
    (MOBILE.replace("k5e3 k3e3 zero zero", "k5e3 k3e3 zero"), "expected 6 stages"),
    (MOBILE.replace("k7e6 k5e3", "k9e6 k5e3", 1), "unknown op 'k9e6' at block 8"),
    (MOBILE.replace("k7e3 k3e3", "zero k3e3", 1), "block 4 (stage 2, position 1) cannot be skipped ('zero'): stride 2"),
    (MOBILE[:-len("k7e6")] + "zero", "block 20 (stage 6, position 1) cannot be skipped ('zero'): its input "
                                         "width 192 differs from its output 320"),
])
def test_bad_strings_are_refused_with_one_line(space, text, problem):
    with pytest.raises(GenotypeError) as err:
        space.parse(text)
    assert problem in one_line(err)


def test_wrong_genotypes_are_refused_by_the_builders(space):
    with pytest.raises(GenotypeError) as err:
        space.build_network(("k3e3",) * 20, DataInfo(3, 10, 32))
    assert "20 blocks, expected 21" in one_line(err)
    with pytest.raises(GenotypeError):
        space.to_str(("zero",) * 21)


# --- released architectures: the authors' counts ------------------------------------------------------------

@pytest.mark.parametrize("widths, text, params, madds", [
    (MOBILE_WIDTHS, MOBILE, 4_080_512, 320.4),
    (GPU_WIDTHS, GPU, 7_119_848, 465.3),
    (CPU_WIDTHS, CPU, 4_361_648, 439.2),
])
def test_released_architectures_have_the_authors_counts(widths, text, params, madds):
    space = space_with(widths=widths)
    net = space.build_network(space.parse(text), IMAGENET, "eval")
    assert sum(p.numel() for p in net.parameters()) == params
    assert count_madds_m(net, (1, 3, 224, 224)) == pytest.approx(madds, rel=0.005)


def test_agnas_released_macro_architecture_has_about_6_73m_parameters():
    space = space_with(widths=GPU_WIDTHS)
    net = space.build_network(space.parse(AGNAS), IMAGENET, "eval")
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(6.73e6, rel=0.005)


def test_paper_size_is_the_class_defaults_whatever_the_configuration(smoke):
    genotype = smoke.parse(MOBILE)
    paper = smoke.build_network(genotype, IMAGENET, "paper")
    default = space_with().build_network(genotype, IMAGENET, "eval")
    assert sum(p.numel() for p in paper.parameters()) == sum(p.numel() for p in default.parameters())
    assert paper.stem[0].stride == (2, 2) and smoke.build_network(genotype, IMAGENET, "eval").stem[0].stride == (2, 2)
    assert smoke.build_network(genotype, CIFAR, "eval").stem[0].stride == (1, 1)  # auto strides fit 32x32
    with pytest.raises(ValueError, match="unknown network size"):
        smoke.build_network(genotype, IMAGENET, "huge")


# --- derivation and sampling --------------------------------------------------------------------------------

def test_derive_is_argmax_over_each_blocks_choices(space):
    scores = np.zeros((21, 7))
    scores[:, 3] = 1.0  # k5e6 everywhere ...
    scores[0, 6] = 5.0  # ... zero is not a choice of block 0: ignored
    scores[1, 6] = 5.0  # block 1 may be skipped
    scores[2, [0, 4]] = 2.0  # a tie: the earlier op
    genotype = space.derive({"blocks": scores})
    assert genotype[0] == "k5e6" and genotype[1] == "zero" and genotype[2] == "k3e3"
    assert set(genotype[3:]) == {"k5e6"}
    with pytest.raises(ValueError, match="shape"):
        space.derive({"blocks": np.zeros((21, 6))})


def test_sample_is_uniform_over_each_blocks_choices(space):
    rng = np.random.default_rng(0)
    genotypes = [space.sample(rng) for _ in range(700)]
    rows, ops = space.edge_choices(genotypes)["blocks"]
    assert rows.shape == ops.shape == (700, 21) and (rows[0] == np.arange(21)).all()
    zero = OP_NAMES.index("zero")
    skippable = list(DEFAULT_SKIPPABLE)
    fixed = [i for i in range(21) if i not in skippable]
    assert not (ops[:, fixed] == zero).any()
    assert abs((ops[:, skippable] == zero).mean() - 1 / 7) < 0.02
    assert abs((ops[:, fixed] == 0).mean() - 1 / 6) < 0.03


# --- networks ------------------------------------------------------------------------------------------------

class SumEdge(nn.Module):
    """A tiny edge factory's module: the sum of its candidates."""

    def __init__(self, edge: EdgeId, candidates: nn.ModuleList):
        super().__init__()
        self.edge, self.ops = edge, candidates

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(op(x) for op in self.ops)


@pytest.mark.parametrize("image_size", [8, 32])
def test_supernet_gives_every_block_its_whole_candidates(smoke, image_size):
    edges: list[EdgeId] = []

    def factory(edge: EdgeId, candidates: nn.ModuleList) -> nn.Module:
        edges.append(edge)
        assert len(candidates) == len(edge.ops)
        skip = edge.index in DEFAULT_SKIPPABLE
        for op, module in zip(edge.ops, candidates):
            expected = Skip if OP_NAMES[op] == "zero" else Residual if skip else MBConv
            assert type(module) is expected and not is_zero(module)
        return SumEdge(edge, candidates)

    net = smoke.build_supernet(factory, DataInfo(1, 10, image_size))
    assert [(e.group, e.index, e.cell) for e in edges] == [("blocks", i, 0) for i in range(21)]  # one cell: the chain
    assert [e.channels for e in edges] == [8] * 4 + [16] * 4 + [24] * 4 + [24] * 4 + [48] * 4 + [80]
    assert net(torch.randn(2, 1, image_size, image_size)).shape == (2, 10)


def test_skip_candidate_outputs_its_input():
    x = torch.randn(2, 8, 4, 4)
    assert torch.equal(Skip()(x), x)


@pytest.mark.parametrize("image_size", [8, 16, 32, 224])
def test_final_network_builds_and_runs_at_every_image_size(smoke, image_size):
    net = smoke.build_network(smoke.parse(GPU), DataInfo(3, 10, image_size))
    assert net.drop_path_prob == 0.0
    net.eval()
    with torch.no_grad():
        logits, aux = net(torch.randn(1, 3, image_size, image_size))
    assert logits.shape == (1, 10) and aux is None


@pytest.mark.parametrize("image_size, strides, last", [(224, "2,2,2,2,1,2,1", 7), (32, "1,1,2,2,1,2,1", 4),
                                                      (16, "1,1,1,2,1,2,1", 4), (8, "1,1,1,1,1,2,1", 4)])
def test_auto_strides_drop_the_first_stride_twos_until_every_block_sees_four_pixels(image_size, strides, last):
    fitted = fitted_strides(image_size)
    assert ",".join(map(str, fitted)) == strides
    sides = block_inputs(image_size, fitted)
    assert min(sides) == sides[-1] == last >= MIN_BLOCK_INPUT
    if image_size < 224:  # one stride-2 fewer dropped would leave a block under 4 pixels
        kept = list(fitted)
        kept[max(i for i, (a, b) in enumerate(zip(AUTHORS_STRIDES, fitted)) if a != b)] = 2
        assert min(block_inputs(image_size, tuple(kept))) < MIN_BLOCK_INPUT


def test_the_paper_budget_at_32x32_adapts_the_strides_and_every_block_sees_four_pixels():
    """Issue 26: ``paper`` on CIFAR-sized inputs kept the ImageNet strides, so blocks 9–20 saw 2×2 or 1×1 inputs
    where k3, k5 and k7 are one function. ``auto`` (the default) fits the strides; the set of architectures (the
    skippable blocks) stays the authors'."""
    cfg = resolve(get_method("darts"), get_space("proxyless"), "paper", {}).values
    assert cfg["strides"] == "auto"
    space = ProxylessSpace(cfg)
    assert space.skippable() == space_with(strides="2,2,2,2,1,2,1").skippable()
    inputs = []
    net = space.build_network(space.parse(MOBILE), CIFAR, "eval")
    hooks = [m.register_forward_pre_hook(lambda m, args: inputs.append(args[0].shape[-1]))
             for block in net.blocks for m in block.modules()
             if isinstance(m, nn.Conv2d) and m.groups > 1]
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    assert len(inputs) == 21 - MOBILE.split().count("zero") and min(inputs) == 4
    assert space.describe_network(CIFAR) == {"strides": "1,1,2,2,1,2,1", "strides_setting": "auto",
                                             "block_inputs": block_inputs(32, (1, 1, 2, 2, 1, 2, 1))}


def test_explicit_strides_that_leave_a_block_under_four_pixels_are_refused():
    space = space_with(strides="2,2,2,2,1,2,1")
    with pytest.raises(UserError) as err:
        space.build_supernet(lambda edge, candidates: candidates[0], CIFAR)
    message = one_line(err)
    assert "blocks 9–20" in message and "down to 1x1" in message and "strides=auto (1,1,2,2,1,2,1 here)" in message
    with pytest.raises(UserError, match="blocks 17–20 inputs smaller than 4x4 pixels \\(down to 2x2\\)"):
        space_with(strides="1,1,2,2,2,2,1").build_network(space.parse(MOBILE), CIFAR, "eval")
    assert space.build_network(space.parse(MOBILE), IMAGENET, "eval").stem[0].stride == (2, 2)  # 224: fine


def test_final_network_omits_skipped_blocks_and_trains_one_step(smoke):
    genotype = smoke.parse(GPU)
    net = smoke.build_network(genotype, DataInfo(1, 10, 8), auxiliary=True)  # no head: auxiliary is ignored
    assert len(net.blocks) == 21 - genotype.count("zero")
    assert not any(isinstance(m, Skip) for m in net.modules())
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    net.train()
    logits, aux = net(x)
    assert aux is None
    loss = F.cross_entropy(logits, y)
    loss.backward()
    before = net.classifier.weight.detach().clone()
    opt.step()
    assert not torch.equal(before, net.classifier.weight)


# --- configuration ------------------------------------------------------------------------------------------

def test_budgets_and_paper_defaults():
    darts, proxyless = get_method("darts"), get_space("proxyless")
    paper = resolve(darts, proxyless, "paper", {}).values
    assert (paper["widths"], paper["strides"], paper["width_mult"], paper["eval_width_mult"]) == \
        ("32,16,24,40,80,96,192,320,1280", "auto", 1.0, 1.0)
    assert (paper["auxiliary_weight"], paper["drop_path"], paper["cutout"]) == (0.0, 0.0, 0)
    for budget, mult in (("smoke", 0.25), ("small", 0.5)):
        cfg = resolve(darts, proxyless, budget, {}).values
        assert (cfg["strides"], cfg["width_mult"], cfg["eval_width_mult"]) == ("auto", mult, mult)


@pytest.mark.parametrize("key, value, problem", [
    ("widths", "32,16,24", "3 values, expected 9"),
    ("widths", "32,16,a,40,80,96,192,320,1280", "not a comma-separated list of integers"),
    ("strides", "2,2,2,2,1,2,3", "every stride must be 1 or 2"),
    ("width_mult", "0", "width_mult"),
])
def test_bad_size_keys_are_refused_with_one_line(key, value, problem):
    with pytest.raises(UserError) as err:
        resolve(get_method("darts"), get_space("proxyless"), "smoke", {key: value})
    assert problem in one_line(err)
