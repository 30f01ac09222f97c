"""Tests of NOS's heterogeneous space (spaces/hetero.py): the residual block of Eqs. 2–9 in the final network
and in the supernet, computed by hand from the cells' own submodules; contributions; the derivation rule on
crafted matrices; genotype strings and sampling; networks; the pairing with the DARTS method."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import final_network, one_line
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

import spaces.hetero as hetero
from harness.core.config import resolve
from harness.core.correlation import op_level_correlation
from harness.core.data import DataInfo, SearchData, load_dataset
from harness.core.errors import GenotypeError, UserError
from harness.core.registry import SPACES, compatible, get_method, get_space
from spaces.base import EdgeId
from spaces.hetero import (
    NUM_ROWS,
    TIER2_OFFSET,
    Contribution,
    EvalCell,
    FamilyOp,
    HeteroGenotype,
    HeteroSpace,
    SearchCell,
    derive_node,
)
from spaces.ops import (
    HETERO_OPS,
    OP_FAMILY,
    ChannelAttention,
    DilConv,
    DynamicConv,
    FactorizedReduce,
    Identity,
    SepConv,
    SpatialAttention,
    dynamic_depthwise,
)

CPU = torch.device("cpu")
FEATURE_OPS = HETERO_OPS[:7]

# The genotype of the brief: every family in tier 1 and tier 2, both attention kinds, both dynamic sizes.
G = HeteroGenotype(
    normal=[("sep_conv_3x3", 0), ("channel_attention", 1), ("identity", 0), ("dynamic_conv_5x5", 2),
            ("avg_pool_3x3", 1), ("spatial_attention", 3), ("max_pool_3x3", 2), ("dil_conv_3x3", 4)],
    normal_tier2=["dynamic_conv_3x3", "spatial_attention", "sep_conv_5x5", "identity"],
    reduce=[("spatial_attention", 0), ("sep_conv_3x3", 1), ("dynamic_conv_3x3", 1), ("max_pool_3x3", 2),
            ("identity", 0), ("channel_attention", 3), ("dynamic_conv_5x5", 1), ("identity", 4)],
    reduce_tier2=["channel_attention", "dynamic_conv_5x5", "avg_pool_3x3", "spatial_attention"],
)
G_STR = (
    "HeteroGenotype(normal=[('sep_conv_3x3', 0), ('channel_attention', 1), ('identity', 0), "
    "('dynamic_conv_5x5', 2), ('avg_pool_3x3', 1), ('spatial_attention', 3), ('max_pool_3x3', 2), "
    "('dil_conv_3x3', 4)], normal_tier2=['dynamic_conv_3x3', 'spatial_attention', 'sep_conv_5x5', 'identity'], "
    "reduce=[('spatial_attention', 0), ('sep_conv_3x3', 1), ('dynamic_conv_3x3', 1), ('max_pool_3x3', 2), "
    "('identity', 0), ('channel_attention', 3), ('dynamic_conv_5x5', 1), ('identity', 4)], "
    "reduce_tier2=['channel_attention', 'dynamic_conv_5x5', 'avg_pool_3x3', 'spatial_attention'])"
)

SPACE = HeteroSpace({"search_layers": 5, "search_channels": 4, "eval_layers": 5, "eval_channels": 8})
ALL = tuple(range(len(HETERO_OPS)))  # every op is a candidate of every edge


@pytest.fixture(autouse=True)
def _float64_restored():
    before = torch.get_default_dtype()
    yield
    torch.set_default_dtype(before)


def _randomise_bns(module: nn.Module, seed: int) -> None:
    """Running statistics (and affine parameters) far from the identity, so eval-mode BN is not a no-op."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in module.modules():
            if isinstance(bn, nn.BatchNorm2d):
                n = bn.num_features
                bn.running_mean.copy_(torch.rand(n, generator=gen, dtype=torch.float64) - 0.5)
                bn.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=gen, dtype=torch.float64))
                if bn.affine:
                    bn.weight.copy_(0.5 + torch.rand(n, generator=gen, dtype=torch.float64))
                    bn.bias.copy_(0.4 * torch.rand(n, generator=gen, dtype=torch.float64) - 0.2)


def depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """F ⊗ D written sample by sample: each sample's channels convolved with that sample's own kernels."""
    k = kernel.shape[-1]
    return torch.cat([F.conv2d(x[n:n + 1], kernel[n].unsqueeze(1), padding=k // 2, groups=x.shape[1])
                      for n in range(x.shape[0])])


def _row(node: int, source: int) -> int:
    """Row of the tier-1 edge ``source -> node`` (DARTS order)."""
    return sum(range(2, node)) + source


def _op(name: str) -> int:
    return HETERO_OPS.index(name)


# --- registration and topology -------------------------------------------------------------------------

def test_registered_with_18_by_11_matrices():
    assert SPACES["hetero"] is HeteroSpace and get_space("hetero") is HeteroSpace
    assert HeteroSpace.name == "hetero" and HeteroSpace.description and "\n" not in HeteroSpace.description
    assert HeteroSpace.op_names == HETERO_OPS and len(HETERO_OPS) == 11 and "none" not in HETERO_OPS
    assert TIER2_OFFSET == 14 and NUM_ROWS == 18
    assert SPACE.arch_shape() == {"normal": (18, 11), "reduce": (18, 11)}
    assert all(SPACE.edge_ops(g, e) == SPACE.choice_ops(g, e) == tuple(range(11))
               for g, (n, _) in SPACE.arch_shape().items() for e in range(n))
    assert HeteroSpace.defaults == {"search_layers": 8, "search_channels": 16, "eval_layers": 20,
                                    "eval_channels": 36}
    assert [_row(2, 0), _row(3, 0), _row(4, 0), _row(5, 0), _row(5, 4)] == [0, 2, 5, 9, 13]


# --- contributions ---------------------------------------------------------------------------------------

def test_contribution_scaling_scales_every_part():
    f, a, k1, k2 = torch.tensor([1.0, 2.0]), torch.tensor([3.0]), torch.tensor([4.0]), torch.tensor([5.0])
    c = Contribution(f, a, [k1, k2])
    for scaled in (c * 2.0, 2.0 * c, torch.tensor(2.0) * c, c * torch.tensor(2.0)):
        assert isinstance(scaled, Contribution)
        assert scaled.feature.tolist() == [2.0, 4.0] and scaled.attention.tolist() == [6.0]
        assert [k.tolist() for k in scaled.kernels] == [[8.0], [10.0]]
    assert c.feature.tolist() == [1.0, 2.0] and len(c.kernels) == 2  # the original is untouched
    only_attention = 0.5 * Contribution(attention=a)
    assert only_attention.feature is None and only_attention.kernels == []
    assert only_attention.attention.tolist() == [1.5]


def test_contributions_add_family_by_family_and_collect_kernels():
    k1, k2, k3 = torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([3.0])
    a = Contribution(feature=torch.tensor([1.0]), kernels=[k1])
    b = Contribution(attention=torch.tensor([10.0]), kernels=[k2, k3])
    total = a + b
    assert total.feature.tolist() == [1.0] and total.attention.tolist() == [10.0]
    assert [k.item() for k in total.kernels] == [1.0, 2.0, 3.0]
    both = total + Contribution(torch.tensor([5.0]), torch.tensor([0.5]))
    assert both.feature.tolist() == [6.0] and both.attention.tolist() == [10.5] and len(both.kernels) == 3
    assert len(a.kernels) == 1 and len(b.kernels) == 2  # adding does not mutate the operands
    # spatial [N, 1, H, W] and channel [N, C, 1, 1] maps add by broadcasting
    spatial, channel = torch.rand(2, 1, 3, 3), torch.rand(2, 4, 1, 1)
    mixed = Contribution(attention=spatial) + Contribution(attention=channel)
    assert mixed.attention.shape == (2, 4, 3, 3) and torch.equal(mixed.attention, spatial + channel)


def test_adding_a_plain_tensor_adds_to_the_feature():
    a = Contribution(feature=torch.tensor([1.0, 2.0]), attention=torch.tensor([7.0]), kernels=[torch.ones(1)])
    for total in (a + torch.tensor([10.0, 20.0]), torch.tensor([10.0, 20.0]) + a):
        assert isinstance(total, Contribution)
        assert total.feature.tolist() == [11.0, 22.0] and total.attention.tolist() == [7.0]
        assert len(total.kernels) == 1
    no_feature = Contribution(attention=torch.tensor([7.0])) + torch.tensor([3.0])
    assert no_feature.feature.tolist() == [3.0] and no_feature.attention.tolist() == [7.0]
    summed = sum([a, a])  # Python's sum starts from 0
    assert summed.feature.tolist() == [2.0, 4.0] and summed.attention.tolist() == [14.0]


def test_combine_is_residual_attention_and_dynamic_convolution():
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    assert torch.equal(Contribution(feature=x).combine(), x)
    # F ⊕ F ⊙ A with A = 0.5: 1.5 F
    assert torch.equal(Contribution(x, torch.full((1, 1, 1, 1), 0.5)).combine(), 1.5 * x)
    # a kernel with a single 1 above the centre shifts the map down by one row (cross-correlation)
    shift = torch.zeros(1, 1, 3, 3)
    shift[0, 0, 0, 1] = 1.0
    centre = torch.zeros(1, 1, 3, 3)
    centre[0, 0, 1, 1] = 2.0
    out = Contribution(x, torch.full((1, 1, 1, 1), 0.5), [shift, centre]).combine()
    shifted = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert torch.equal(out[0, 0], 1.5 * x[0, 0] + shifted + 2.0 * x[0, 0])


@pytest.mark.parametrize("contribution", [
    Contribution(),
    Contribution(attention=torch.ones(1, 1, 1, 1)),
    Contribution(kernels=[torch.ones(1, 1, 3, 3)]),
    0 + Contribution(attention=torch.ones(1, 1, 1, 1)),  # the sum over a node's edges starts from 0
])
def test_combine_without_a_feature_raises(contribution):
    with pytest.raises(ValueError, match="at least one feature op"):
        contribution.combine()


def test_family_op_wraps_each_family():
    x = torch.randn(2, 4, 5, 5)
    pool = FamilyOp(nn.AvgPool2d(3, 1, 1), "feature", carries_input=True)
    out = pool(x)
    assert torch.equal(out.feature, F.avg_pool2d(x, 3, 1, 1)) and out.attention is None and out.kernels == []
    attention = ChannelAttention(4)
    tier1 = FamilyOp(attention, "attention", carries_input=False)(x)
    assert tier1.feature is None and torch.equal(tier1.attention, attention(x)) and tier1.kernels == []
    tier2 = FamilyOp(attention, "attention", carries_input=True)(x)
    assert tier2.feature is x and torch.equal(tier2.attention, attention(x))
    dynamic = DynamicConv(4, 3).eval()
    d1 = FamilyOp(dynamic, "dynamic", carries_input=False)(x)
    assert d1.feature is None and d1.attention is None and len(d1.kernels) == 1
    assert torch.equal(d1.kernels[0], dynamic(x)) and d1.kernels[0].shape == (2, 4, 3, 3)
    assert FamilyOp(dynamic, "dynamic", carries_input=True)(x).feature is x


def test_reference_depthwise_agrees_with_dynamic_depthwise():
    gen = torch.Generator().manual_seed(0)
    x, kernel = torch.randn(3, 2, 5, 4, generator=gen), torch.randn(3, 2, 5, 5, generator=gen)
    assert torch.allclose(depthwise(x, kernel), dynamic_depthwise(x, kernel), atol=1e-5)


# --- the residual block in the final network (Eqs. 2–9) -------------------------------------------------

def _eval_cell(reduction: bool, reduction_prev: bool, seed: int) -> EvalCell:
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(seed)
    cell = EvalCell(G, C_prev_prev=6, C_prev=5, C=4, reduction=reduction, reduction_prev=reduction_prev)
    _randomise_bns(cell, seed + 1)
    return cell.eval()


@pytest.mark.parametrize("reduction_prev", [False, True])
def test_normal_eval_cell_is_the_residual_block_by_hand(reduction_prev):
    cell = _eval_cell(False, reduction_prev, seed=1)
    ops, t2 = cell.ops, cell.tier2
    assert [type(m.op) for m in ops] == [SepConv, ChannelAttention, Identity, DynamicConv, nn.AvgPool2d,
                                         SpatialAttention, nn.MaxPool2d, DilConv]
    assert [type(m.op) for m in t2] == [DynamicConv, SpatialAttention, SepConv, Identity]
    assert [m.family for m in ops] == [OP_FAMILY[name] for name, _ in G.normal]
    assert not any(m.carries_input for m in ops) and all(m.carries_input for m in t2)
    gen = torch.Generator().manual_seed(2)
    s0 = torch.randn(2, 6, 12 if reduction_prev else 6, 12 if reduction_prev else 6, generator=gen)
    s1 = torch.randn(2, 5, 6, 6, generator=gen)
    with torch.no_grad():
        h0, h1 = cell.preprocess0(s0), cell.preprocess1(s1)
        assert h0.shape == h1.shape == (2, 4, 6, 6)
        # node 2: sep_conv_3x3(h0) with channel attention of h1; tier 2: dynamic_conv_3x3 on F_2'
        f = ops[0].op(h0)
        a = ops[1].op(h1)
        assert a.shape == (2, 4, 1, 1)
        surrogate = f + f * a
        d2 = t2[0].op(surrogate)
        assert d2.shape == (2, 4, 3, 3)
        n2 = surrogate + depthwise(surrogate, d2)  # F2 = F_2' (dynamic tier-2 op)
        # node 3: identity(h0) with a 5×5 dynamic kernel from node 2; tier 2: spatial attention
        f = h0
        d = ops[3].op(n2)
        assert d.shape == (2, 4, 5, 5)
        surrogate = f + depthwise(f, d)
        a2 = t2[1].op(surrogate)
        assert a2.shape == (2, 1, 6, 6)
        n3 = surrogate + surrogate * a2
        # node 4: avg_pool(h1) with spatial attention of node 3; tier 2: sep_conv_5x5 (a feature op)
        f = ops[4].op(h1)
        a = ops[5].op(n3)
        assert a.shape == (2, 1, 6, 6)
        n4 = t2[2].op(f + f * a)
        # node 5: max_pool(node 2) + dil_conv(node 4), no attention or kernel; tier 2: identity
        n5 = ops[6].op(n2) + ops[7].op(n4)
        expected = torch.cat([n2, n3, n4, n5], dim=1)
        out = cell(s0, s1, 0.0)
    assert out.shape == (2, 16, 6, 6)
    assert torch.allclose(out, expected, atol=1e-10)
    assert not torch.allclose(out[:, :4], out[:, 4:8])  # the nodes are not trivially equal


def test_reduction_eval_cell_is_the_residual_block_by_hand():
    cell = _eval_cell(True, False, seed=3)
    ops, t2 = cell.ops, cell.tier2
    # stride 2 exactly on the edges from nodes 0 and 1; identity from node 0 becomes a factorized reduce
    assert isinstance(ops[4].op, FactorizedReduce) and isinstance(ops[7].op, Identity)
    assert ops[0].op.conv_1.stride == (2, 2) and ops[2].op.conv_1.stride == (2, 2)
    assert ops[1].op.op[1].stride == (2, 2) and ops[6].op.conv_1.stride == (2, 2)
    assert ops[3].op.stride == 1 and t2[1].op.stride == 1 and t2[2].op.stride == 1
    gen = torch.Generator().manual_seed(4)
    s0, s1 = torch.randn(2, 6, 5, 5, generator=gen), torch.randn(2, 5, 5, 5, generator=gen)
    with torch.no_grad():
        h0, h1 = cell.preprocess0(s0), cell.preprocess1(s1)
        # node 2: spatial attention of h0 (stride 2) on sep_conv_3x3(h1) (stride 2); tier 2: channel attention
        a = ops[0].op(h0)
        f = ops[1].op(h1)
        assert a.shape == (2, 1, 3, 3) and f.shape == (2, 4, 3, 3)
        surrogate = f + f * a
        a2 = t2[0].op(surrogate)
        n2 = surrogate + surrogate * a2
        # node 3: dynamic 3×3 kernel of h1 (stride 2) applied to max_pool(node 2); tier 2: dynamic 5×5
        d = ops[2].op(h1)
        f = ops[3].op(n2)
        assert d.shape == (2, 4, 3, 3) and f.shape == (2, 4, 3, 3)
        surrogate = f + depthwise(f, d)
        n3 = surrogate + depthwise(surrogate, t2[1].op(surrogate))
        # node 4: factorized reduce of h0 with channel attention of node 3; tier 2: avg_pool
        f = ops[4].op(h0)
        a = ops[5].op(n3)
        n4 = t2[2].op(f + f * a)
        # node 5: dynamic 5×5 kernel of h1 (stride 2) on identity(node 4); tier 2: spatial attention
        d = ops[6].op(h1)
        f = n4
        surrogate = f + depthwise(f, d)
        n5 = surrogate + surrogate * t2[3].op(surrogate)
        expected = torch.cat([n2, n3, n4, n5], dim=1)
        out = cell(s0, s1, 0.0)
    assert out.shape == (2, 16, 3, 3)
    assert torch.allclose(out, expected, atol=1e-10)


# --- the residual block in the supernet ---------------------------------------------------------------------

class WeightedSum(nn.Module):
    """A test edge: Σ_o w[o] · candidates[o](x) with fixed weights."""

    def __init__(self, candidates: nn.ModuleList, weights: torch.Tensor):
        super().__init__()
        self.candidates = candidates
        self.register_buffer("w", weights)

    def forward(self, x: torch.Tensor):
        return sum(self.w[o] * op(x) for o, op in enumerate(self.candidates))


class Recorder:
    """An edge factory that gives every edge its own distinct, non-uniform weights and records the calls."""

    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(seed)
        self.calls: list[tuple[EdgeId, nn.ModuleList]] = []
        self.weights: dict[EdgeId, torch.Tensor] = {}

    def __call__(self, edge: EdgeId, candidates: nn.ModuleList) -> nn.Module:
        self.calls.append((edge, candidates))
        w = 0.1 + torch.rand(len(candidates), generator=self.gen, dtype=torch.float64)
        self.weights[edge] = w / w.sum()
        return WeightedSum(candidates, self.weights[edge])


def _family_parts(candidates: nn.ModuleList, w: torch.Tensor, x: torch.Tensor):
    """(Σ_feature w·o(x), Σ_attention w·o(x), [w·o(x) for dynamic o]) from the raw candidate modules."""
    feature = sum(w[o] * candidates[o].op(x) for o, name in enumerate(HETERO_OPS) if OP_FAMILY[name] == "feature")
    attention = sum(w[o] * candidates[o].op(x) for o, name in enumerate(HETERO_OPS)
                    if OP_FAMILY[name] == "attention")
    kernels = [w[o] * candidates[o].op(x) for o, name in enumerate(HETERO_OPS) if OP_FAMILY[name] == "dynamic"]
    return feature, attention, kernels


def _block(feature, attention, kernels):
    return feature + feature * attention + sum(depthwise(feature, k) for k in kernels)


@pytest.mark.parametrize("reduction", [False, True])
def test_search_cell_is_the_family_weighted_block_by_hand(reduction):
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(5)
    factory = Recorder(seed=6)
    cell = SearchCell(factory, 3, 6, 5, 4, reduction, False, SPACE)
    _randomise_bns(cell, 7)
    cell.eval()
    group = "reduce" if reduction else "normal"
    assert [edge for edge, _ in factory.calls] == [EdgeId(group, index, 3, 4, ALL) for index in range(18)]
    for edge, candidates in factory.calls:
        assert len(candidates) == 11
        assert all(isinstance(c, FamilyOp) for c in candidates)
        assert [c.family for c in candidates] == [OP_FAMILY[name] for name in HETERO_OPS]
        assert all(c.carries_input == (edge.index >= TIER2_OFFSET) for c in candidates)
        assert all(not bn.affine for bn in candidates.modules() if isinstance(bn, nn.BatchNorm2d))
    weights = [factory.weights[EdgeId(group, index, 3, 4, ALL)] for index in range(18)]
    assert len({tuple(w.tolist()) for w in weights}) == 18  # distinct and non-uniform
    tier1 = [c for edge, c in factory.calls[:14]]
    tier2 = [c for edge, c in factory.calls[14:]]

    gen = torch.Generator().manual_seed(8)
    s0, s1 = torch.randn(2, 6, 6, 6, generator=gen), torch.randn(2, 5, 6, 6, generator=gen)
    with torch.no_grad():
        states = [cell.preprocess0(s0), cell.preprocess1(s1)]
        row = 0
        for step in range(4):
            feature, attention, kernels = 0, 0, []
            for h in states:  # Eqs. 2–4 with each op weighted inside its family's sum
                f, a, k = _family_parts(tier1[row], weights[row], h)
                feature, attention, kernels = feature + f, attention + a, kernels + k
                row += 1
            surrogate = _block(feature, attention, kernels)  # Eq. 5
            f2, a2, k2 = _family_parts(tier2[step], weights[14 + step], surrogate)
            carried = sum(weights[14 + step][o] for o in range(7, 11))  # non-feature ops carry F_k'
            f2 = f2 + carried * surrogate
            states.append(_block(f2, a2, k2))  # Eqs. 6–9
        expected = torch.cat(states[2:], dim=1)
        out = cell(s0, s1)
    size = 3 if reduction else 6
    assert out.shape == (2, 16, size, size)
    assert torch.allclose(out, expected, atol=1e-10)


def test_search_cell_node_2_without_the_non_feature_ops_changes():
    """The attention and dynamic ops do reach the output: giving them zero weight changes node 2."""
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(9)
    factory = Recorder(seed=10)
    cell = SearchCell(factory, 0, 4, 4, 4, False, False, SPACE).eval()
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        before = cell(x, x)[:, :4]
        for index in (0, 1):
            cell.edges[index].w[7:] = 0.0
        after = cell(x, x)[:, :4]
    assert not torch.allclose(before, after)


# --- derivation ------------------------------------------------------------------------------------------

def _derive(normal: np.ndarray, reduce: np.ndarray | None = None) -> HeteroGenotype:
    return SPACE.derive({"normal": normal, "reduce": np.zeros((18, 11)) if reduce is None else reduce})


def test_all_ties_give_the_first_pair_and_first_op():
    genotype = _derive(np.zeros((18, 11)))
    assert genotype.normal == [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 4
    assert genotype.normal_tier2 == ["sep_conv_3x3"] * 4 and genotype.reduce == genotype.normal


def test_two_non_feature_choices_give_way_to_the_best_pair_with_a_feature_op():
    m = np.zeros((18, 11))
    # node 2: the two strongest choices are a dynamic conv on edge 0 and spatial attention on edge 1;
    # the best pair with a feature op keeps the dynamic conv and identity on edge 1 (0.9 + 0.5 > 0.2 + 0.8)
    m[_row(2, 0), [_op("dynamic_conv_3x3"), _op("sep_conv_3x3")]] = [0.9, 0.2]
    m[_row(2, 1), [_op("spatial_attention"), _op("identity")]] = [0.8, 0.5]
    # node 3: greedy (keep the strongest, spatial attention on 0, then the best feature op elsewhere,
    # dil_conv on 2) gives 1.0 + 0.1; the joint optimum drops the strongest: 0.9 + 0.95
    m[_row(3, 0), [_op("spatial_attention"), _op("sep_conv_5x5")]] = [1.0, 0.9]
    m[_row(3, 1), _op("channel_attention")] = 0.95
    m[_row(3, 2), _op("dil_conv_3x3")] = 0.1
    # node 4: the unconstrained best pair already has a feature op
    m[_row(4, 3), _op("dynamic_conv_5x5")] = 2.0
    m[_row(4, 1), _op("max_pool_3x3")] = 1.5
    m[_row(4, 2), _op("channel_attention")] = 1.9
    # node 5: every edge's best op is non-feature; two dynamic convs are worth more than anything with a feature
    m[_row(5, 0):_row(5, 5), _op("dynamic_conv_5x5")] = [3.0, 3.0, 3.0, 3.0, 3.0]
    m[_row(5, 2), _op("avg_pool_3x3")] = 1.0
    m[_row(5, 4), _op("identity")] = 1.2
    genotype = _derive(m)
    assert genotype.normal == [("dynamic_conv_3x3", 0), ("identity", 1),
                               ("sep_conv_5x5", 0), ("channel_attention", 1),
                               ("max_pool_3x3", 1), ("dynamic_conv_5x5", 3),
                               ("dynamic_conv_5x5", 0), ("identity", 4)]
    assert SPACE.parse(SPACE.to_str(genotype)) == genotype


def test_the_two_choices_are_on_distinct_edges_in_source_order():
    m = np.zeros((18, 11))
    m[_row(4, 1), [_op("sep_conv_3x3"), _op("max_pool_3x3")]] = [5.0, 4.0]  # the two best scores, one edge
    m[_row(4, 3), _op("identity")] = 1.0
    m[_row(5, 4), _op("dil_conv_5x5")] = 3.0  # the stronger choice on the later source
    m[_row(5, 2), _op("avg_pool_3x3")] = 2.0
    genotype = _derive(m)
    assert genotype.normal[4:] == [("sep_conv_3x3", 1), ("identity", 3), ("avg_pool_3x3", 2), ("dil_conv_5x5", 4)]


def test_ties_go_to_the_earlier_pair_of_edges_then_the_earlier_op():
    m = np.zeros((18, 11))
    # node 2: one pair of edges; equal sums (sep_conv_5x5 or dil_conv_3x3) × (avg_pool or max_pool)
    m[_row(2, 0), [_op("dil_conv_3x3"), _op("sep_conv_5x5")]] = 1.0
    m[_row(2, 1), [_op("max_pool_3x3"), _op("avg_pool_3x3")]] = 1.0
    # node 3: pairs (0, 2) and (1, 2) tie at 3.0, (0, 1) is 2.0
    m[_row(3, 0), _op("identity")] = 1.0
    m[_row(3, 1), _op("sep_conv_3x3")] = 1.0
    m[_row(3, 2), _op("dil_conv_5x5")] = 2.0
    # node 4: a feature and an attention op tie on edge 0; the feature op comes first
    m[_row(4, 0), [_op("channel_attention"), _op("identity")]] = 1.0
    m[_row(4, 1), _op("spatial_attention")] = 1.0
    # node 5: every pair of edges ties; on edge 1 a later op ties with sep_conv_3x3 (0 vs 0)
    genotype = _derive(m)
    assert genotype.normal == [("sep_conv_5x5", 0), ("avg_pool_3x3", 1),
                               ("identity", 0), ("dil_conv_5x5", 2),
                               ("identity", 0), ("spatial_attention", 1),
                               ("sep_conv_3x3", 0), ("sep_conv_3x3", 1)]


def test_tier2_is_the_argmax_of_rows_14_to_17_with_ties_to_the_earlier_op():
    m = -np.ones((18, 11))
    m[:14, _op("sep_conv_5x5")] = 10.0  # tier-1 rows do not influence tier 2
    m[14, _op("channel_attention")] = 0.5
    m[15, _op("dynamic_conv_5x5")] = -0.5  # all negative: the largest still wins
    m[15, _op("dynamic_conv_5x5") - 1] = -0.6
    m[16, [_op("spatial_attention"), _op("identity")]] = 2.0  # tie: identity comes first
    m[17] = 0.25  # all equal
    reduce = np.zeros((18, 11))
    reduce[14:, _op("dynamic_conv_3x3")] = 1.0
    genotype = _derive(m, reduce)
    assert genotype.normal_tier2 == ["channel_attention", "dynamic_conv_5x5", "identity", "sep_conv_3x3"]
    assert genotype.reduce_tier2 == ["dynamic_conv_3x3"] * 4
    assert genotype.normal == [("sep_conv_5x5", 0), ("sep_conv_5x5", 1)] * 4  # and tier 2 not in tier 1
    changed = m.copy()
    changed[14:] = 0.0
    assert _derive(changed, reduce).normal == genotype.normal


def test_derive_accepts_array_likes_and_the_groups_are_independent():
    normal, reduce = np.zeros((18, 11)), np.zeros((18, 11))
    reduce[_row(2, 0), _op("max_pool_3x3")] = 1.0
    genotype = SPACE.derive({"normal": torch.tensor(normal), "reduce": reduce.tolist()})
    assert genotype.normal[:2] == [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)]
    assert genotype.reduce[:2] == [("max_pool_3x3", 0), ("sep_conv_3x3", 1)]


@pytest.mark.parametrize("scores", [
    {"normal": np.zeros((14, 11)), "reduce": np.zeros((18, 11))},
    {"normal": np.zeros((18, 8)), "reduce": np.zeros((18, 11))},
    {"normal": np.zeros((18, 11)), "reduce": np.zeros((18, 11, 1))},
    {"normal": np.zeros((18, 11))},
    {"normal": np.zeros((18, 11)), "reduce": np.where(np.eye(18, 11) > 0, np.nan, 0.0)},
])
def test_derive_refuses_wrong_shapes_and_nan(scores):
    with pytest.raises(ValueError) as info:
        SPACE.derive(scores)
    one_line(info)


def test_derive_node_directly():
    tier1 = np.zeros((3, 11))
    tier1[0, [_op("spatial_attention"), _op("sep_conv_5x5")]] = [1.0, 0.9]
    tier1[1, _op("channel_attention")] = 0.95
    tier1[2, _op("dil_conv_3x3")] = 0.1
    tier2 = np.zeros(11)
    tier2[_op("dynamic_conv_3x3")] = 0.3
    assert derive_node(tier1, tier2, 3) == ([(0, _op("sep_conv_5x5")), (1, _op("channel_attention"))],
                                            _op("dynamic_conv_3x3"))
    pairs, op = derive_node(np.zeros((2, 11)), np.zeros(11), 2)
    assert pairs == [(0, 0), (1, 0)] and op == 0
    assert all(isinstance(v, int) for pair in pairs for v in pair) and isinstance(op, int)


def test_infinite_scores_are_refused():
    m = np.zeros((18, 11))
    m[_row(2, 0), _op("sep_conv_3x3")] = -np.inf  # e.g. the log of a zero importance
    m[_row(2, 1), _op("sep_conv_3x3")] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        _derive(m)


def _brute_force(matrix: np.ndarray) -> tuple[list[tuple[str, int]], list[str]]:
    """The rule, written differently: the best of all (edge, op) × (edge, op) choices on distinct edges with
    a feature op, ranked by (−sum, lower source, higher source, its op, the other op)."""
    edges, tier2, start = [], [], 0
    for step, node in enumerate(range(2, 6)):
        choices = []
        for (a, op_a), (b, op_b) in itertools.product(itertools.product(range(node), range(11)), repeat=2):
            if a < b and "feature" in (OP_FAMILY[HETERO_OPS[op_a]], OP_FAMILY[HETERO_OPS[op_b]]):
                choices.append((-(matrix[start + a, op_a] + matrix[start + b, op_b]), a, b, op_a, op_b))
        _, a, b, op_a, op_b = min(choices)
        edges += [(HETERO_OPS[op_a], a), (HETERO_OPS[op_b], b)]
        row = matrix[14 + step]
        tier2.append(HETERO_OPS[min(range(11), key=lambda o: (-row[o], o))])
        start += node
    return edges, tier2


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.int64, (18, 11), elements=st.integers(0, 3)),
       hnp.arrays(np.float64, (18, 11), elements=st.floats(-5, 5, allow_nan=False, width=32)))
def test_derive_matches_a_brute_force_rule(small_ints, floats):
    genotype = SPACE.derive({"normal": small_ints.astype(float), "reduce": floats})
    assert (genotype.normal, genotype.normal_tier2) == _brute_force(small_ints.astype(float))
    assert (genotype.reduce, genotype.reduce_tier2) == _brute_force(floats)
    assert SPACE.parse(SPACE.to_str(genotype)) == genotype


# --- genotype strings and sampling -------------------------------------------------------------------------

def test_canonical_string():
    assert SPACE.to_str(G) == G_STR
    parsed = SPACE.parse(G_STR)
    assert parsed == G and isinstance(parsed, HeteroGenotype) and isinstance(parsed.normal[0], tuple)


def test_non_canonical_spellings_parse_to_the_same_genotype():
    assert SPACE.parse(G_STR.replace("'", '"')) == G
    assert SPACE.parse("  " + G_STR.replace(", ", ",\n  ") + "\n") == G
    positional = G_STR
    for field in ("normal=", "normal_tier2=", "reduce=", "reduce_tier2="):
        positional = positional.replace(field, "")
    assert SPACE.parse(positional) == G
    reordered = (f"HeteroGenotype(reduce_tier2={G.reduce_tier2!r}, reduce={G.reduce!r}, "
                 f"normal_tier2={G.normal_tier2!r}, normal={G.normal!r})")
    assert SPACE.parse(reordered) == G
    assert SPACE.parse(G_STR.replace("('sep_conv_3x3', 0)", "['sep_conv_3x3', 0]")) == G


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_strings_round_trip_on_sampled_genotypes(seed):
    genotype = SPACE.sample(np.random.default_rng(seed))
    text = SPACE.to_str(genotype)
    assert SPACE.parse(text) == genotype
    assert SPACE.to_str(SPACE.parse(text)) == text


def _assert_valid(genotype: HeteroGenotype) -> None:
    assert isinstance(genotype, HeteroGenotype)
    for group in ("normal", "reduce"):
        edges, tier2 = getattr(genotype, group), getattr(genotype, f"{group}_tier2")
        assert len(edges) == 8 and len(tier2) == 4 and all(op in HETERO_OPS for op in tier2)
        for node in range(2, 6):
            (op_a, src_a), (op_b, src_b) = edges[2 * node - 4: 2 * node - 2]
            assert 0 <= src_a < src_b < node
            assert op_a in HETERO_OPS and op_b in HETERO_OPS and (op_a in FEATURE_OPS or op_b in FEATURE_OPS)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_sampler_is_valid_and_deterministic_per_seed(seed):
    genotype = SPACE.sample(np.random.default_rng(seed))
    _assert_valid(genotype)
    assert SPACE.sample(np.random.default_rng(seed)) == genotype


def test_sampler_covers_every_op_and_source():
    rng = np.random.default_rng(0)
    draws = [SPACE.sample(rng) for _ in range(400)]
    assert len(set(map(SPACE.to_str, draws))) == 400
    tier2 = Counter(op for g in draws for op in g.normal_tier2 + g.reduce_tier2)
    assert set(tier2) == set(HETERO_OPS)
    assert min(tier2.values()) > 400 * 8 / 11 * 0.7  # about uniform (3200 draws, 291 expected per op)
    tier1_ops = Counter(op for g in draws for op, _ in g.normal + g.reduce)
    assert set(tier1_ops) == set(HETERO_OPS)
    for node in range(2, 6):
        sources = {src for g in draws for op, src in (g.normal + g.reduce)[2 * node - 4: 2 * node - 2]}
        assert sources == set(range(node))
        # both entries of a node are non-feature never; both feature often
        pairs = [(g.normal[2 * node - 4][0], g.normal[2 * node - 3][0]) for g in draws]
        assert any(a in FEATURE_OPS and b in FEATURE_OPS for a, b in pairs)
        assert any(a not in FEATURE_OPS for a, b in pairs) and any(b not in FEATURE_OPS for a, b in pairs)


def _with(field: str, value: str) -> str:
    """G_STR with one field's text replaced."""
    start = G_STR.index(field + "=") + len(field) + 1
    end = G_STR.index("]", start) + 1
    return G_STR[:start] + value + G_STR[end:]


NORMAL = [f"({op!r}, {src})" for op, src in G.normal]


def _normal(pairs: list[str]) -> str:
    return _with("normal", "[" + ", ".join(pairs) + "]")


MALFORMED = {
    "unknown op": (_normal(NORMAL[:7] + ["('conv_7x7', 4)"]), "unknown op 'conv_7x7'"),
    "DARTS none op": (_normal(["('none', 0)"] + NORMAL[1:]), "unknown op 'none'"),
    "DARTS skip_connect name": (_normal(NORMAL[:2] + ["('skip_connect', 0)"] + NORMAL[3:]), "unknown op"),
    "two attention ops": (_normal(["('spatial_attention', 0)"] + NORMAL[1:]), "at least one feature op"),
    "attention and dynamic": (_normal(NORMAL[:2] + ["('dynamic_conv_3x3', 0)"] + NORMAL[3:]),
                              "at least one feature op"),
    "equal sources": (_normal(NORMAL[:1] + ["('channel_attention', 0)"] + NORMAL[2:]), "distinct sources"),
    "decreasing sources": (_normal(["('channel_attention', 1)", "('sep_conv_3x3', 0)"] + NORMAL[2:]),
                           "increasing order"),
    "source not before node": (_normal(NORMAL[:1] + ["('channel_attention', 2)"] + NORMAL[2:]),
                               "source must be in 0..1"),
    "negative source": (_normal(["('sep_conv_3x3', -1)"] + NORMAL[1:]), "got -1"),
    "bool source": (_normal(["('sep_conv_3x3', False)"] + NORMAL[1:]), "integers"),
    "too few pairs": (_normal(NORMAL[:7]), "7 (op, source) pairs, need 8"),
    "too many pairs": (_normal(NORMAL + ["('identity', 0)"]), "9 (op, source) pairs, need 8"),
    "too few tier-2 ops": (_with("normal_tier2", "['identity', 'identity', 'identity']"), "3 ops, need 4"),
    "tier2 an expression": (_with("reduce_tier2", "['identity'] * 5"), "reduce_tier2 must be a list"),
    "five tier-2 ops": (_with("reduce_tier2", str(["identity"] * 5)), "5 ops, need 4"),
    "tier2 a tuple": (_with("normal_tier2", "('identity', 'identity', 'identity', 'identity')"),
                      "normal_tier2 must be a list"),
    "tier2 a string": (_with("normal_tier2", "'identity'"), "normal_tier2 must be a list"),
    "tier2 unknown op": (_with("normal_tier2", "['identity', 'identity', 'none', 'identity']"),
                         "normal_tier2[2] has unknown op 'none'"),
    "tier2 of pairs": (_with("normal_tier2", "[('identity', 5)] * 4"), "normal_tier2 must be a list"),
    "normal not a list": (_with("normal", "{'a': 1}"), "normal must be a list"),
    "missing field": (G_STR.replace(", reduce_tier2=['channel_attention', 'dynamic_conv_5x5', 'avg_pool_3x3', "
                                    "'spatial_attention']", ""), "missing field"),
    "unknown field": (G_STR[:-1] + ", extra=1)", "unknown field extra"),
    "DARTS genotype": ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), "
                       "reduce=[], reduce_concat=range(2, 6))", "single HeteroGenotype(...) call"),
    "attribute call": ("spaces." + G_STR, "single HeteroGenotype(...) call"),
    "syntax error": (G_STR[:-1], "not a Python-style"),
    "empty": ("", "not a Python-style"),
    "code": ("__import__('os').getcwd()", "single HeteroGenotype(...) call"),
    "None": (None, "expected a string, got NoneType"),
    "a genotype object": (G, "expected a string, got HeteroGenotype"),
    "bytes": (G_STR.encode(), "expected a string, got bytes"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_strings_raise_one_line_genotype_error(case):
    text, problem = MALFORMED[case]
    with pytest.raises(GenotypeError) as info:
        SPACE.parse(text)
    assert isinstance(info.value, UserError)
    message = one_line(info)
    assert message.startswith("invalid heterogeneous genotype: ")
    assert problem in message
    assert "expected HeteroGenotype(normal=" in message


def test_the_malformed_cases_differ_from_the_valid_string_only_where_intended():
    assert SPACE.parse(_normal(NORMAL)) == G  # the helpers rebuild G_STR exactly
    assert _normal(NORMAL) == G_STR and _with("normal_tier2", str(G.normal_tier2)) == G_STR


@pytest.mark.parametrize("bad", [
    G._replace(normal=G.normal[:7]),
    G._replace(normal=[("spatial_attention", 0), ("channel_attention", 1)] + G.normal[2:]),
    G._replace(normal=[list(pair) for pair in G.normal]),
    G._replace(normal_tier2="identity" * 4),
    G._replace(normal_tier2=dict.fromkeys(["identity", "sep_conv_3x3", "max_pool_3x3", "avg_pool_3x3"])),
    G._replace(reduce_tier2=G.reduce_tier2[:3]),
    G._replace(reduce=[("sep_conv_3x3", 1), ("identity", 0)] + G.reduce[2:]),
    G._replace(reduce=[("sep_conv_3x3", 0), ("identity", True)] + G.reduce[2:]),
    tuple(G),
    G_STR,
])
def test_invalid_genotypes_are_refused_by_to_str_and_build_network(bad):
    with pytest.raises(GenotypeError) as info:
        SPACE.to_str(bad)
    assert one_line(info).startswith("invalid heterogeneous genotype")
    with pytest.raises(GenotypeError):
        final_network(SPACE, bad, DataInfo(3, 10, 8), layers=2, channels=4, auxiliary=False)


# --- networks ----------------------------------------------------------------------------------------------

def test_supernet_forward_edge_ids_and_affine_free_cells():
    calls: list[EdgeId] = []

    def factory(edge: EdgeId, candidates: nn.ModuleList) -> nn.Module:
        calls.append(edge)
        return WeightedSum(candidates, torch.full((len(candidates),), 1.0 / len(candidates)))

    torch.manual_seed(0)
    net = SPACE.build_supernet(factory, DataInfo(3, 10, 16))
    reductions = {1, 3}  # 5 layers: a third and two thirds of the way up
    channels = [4, 8, 8, 16, 16]  # C = 4, doubled at each reduction cell
    assert calls == [EdgeId("reduce" if cell in reductions else "normal", index, cell, channels[cell], ALL)
                     for cell in range(5) for index in range(18)]
    assert [cell.reduction for cell in net.cells] == [False, True, False, True, False]
    assert all(isinstance(cell, SearchCell) for cell in net.cells)
    cell_bns = [bn for cell in net.cells for bn in cell.modules() if isinstance(bn, nn.BatchNorm2d)]
    assert cell_bns and all(not bn.affine for bn in cell_bns)
    assert net.stem[1].affine
    logits = net(torch.randn(2, 3, 16, 16))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    logits.sum().backward()
    attention = net.cells[0].edges[0].candidates[_op("channel_attention")].op
    assert attention.conv_1.weight.grad is not None and attention.conv_1.weight.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def final_net():
    torch.manual_seed(0)
    return final_network(SPACE, G, DataInfo(3, 10, 16), layers=5, channels=8, auxiliary=True)


def test_final_network_outputs_and_one_training_step(final_net):
    net = final_net
    assert all(isinstance(cell, EvalCell) for cell in net.cells)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(bn.affine for bn in bns)  # the final network's BN are affine, cells included
    assert [cell.reduction for cell in net.cells] == [False, True, False, True, False]
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(4, 3, 16, 16, generator=gen), torch.randint(0, 10, (4,), generator=gen)
    net.train()
    net.drop_path_prob = 0.2
    logits, aux = net(x)
    assert logits.shape == (4, 10) and aux is not None and aux.shape == (4, 10)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    optimizer.zero_grad()
    (F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux, y)).backward()
    optimizer.step()
    changed = {name for name, p in net.named_parameters() if not torch.equal(p, before[name])}
    assert len(changed) > 0.9 * len(before)
    # the non-feature ops of both tiers learn too
    for prefix in ("cells.0.ops.1.op.conv_1", "cells.0.ops.3.op.conv_3", "cells.0.ops.5.op.conv_2",
                   "cells.0.tier2.0.op.conv_2", "cells.0.tier2.1.op.conv_1", "cells.1.ops.0.op.conv_2"):
        assert prefix + ".weight" in changed
    net.eval()
    with torch.no_grad():
        logits, aux = net(x[:2])
    assert logits.shape == (2, 10) and aux is None
    net.drop_path_prob = 0.0


def _dropped_per_cell(edges: list[tuple[str, int]], reduction: bool) -> int:
    """Tier-1 feature ops that are not the stride-1 identity (a strided identity is a factorized reduce)."""
    return sum(1 for op, src in edges if op in FEATURE_OPS and not (op == "identity" and not (reduction and src < 2)))


def test_drop_path_only_on_non_identity_tier1_feature_ops(final_net, monkeypatch):
    net = final_net
    calls: list[tuple[tuple[int, ...], float]] = []
    real = hetero.drop_path

    def counting(x, drop_prob, *args, **kwargs):
        calls.append((tuple(x.shape), drop_prob))
        return real(x, drop_prob, *args, **kwargs)

    monkeypatch.setattr(hetero, "drop_path", counting)
    assert _dropped_per_cell(G.normal, False) == 4  # sep_conv_3x3, avg_pool, max_pool, dil_conv
    assert _dropped_per_cell(G.reduce, True) == 3  # sep_conv_3x3, max_pool, identity from node 0
    expected = 3 * 4 + 2 * 3  # three normal cells and two reduction cells
    x = torch.randn(2, 3, 16, 16)
    net.train()
    net.drop_path_prob = 0.3
    net(x)
    assert len(calls) == expected
    assert all(p == 0.3 for _, p in calls)
    assert all(len(shape) == 4 and shape[0] == 2 for shape, _ in calls)  # feature tensors
    calls.clear()
    net.drop_path_prob = 0.0
    net(x)
    net.eval()
    net.drop_path_prob = 0.3
    with torch.no_grad():
        net(x)
    assert calls == []
    net.drop_path_prob = 0.0


def test_drop_path_on_the_lone_feature_op_zeros_the_whole_node():
    """Documents a consequence of the design: when a node's only tier-1 feature op is dropped, F = 0, so
    F ⊙ A and F ⊗ D vanish too and the surrogate is zero for that sample."""
    torch.manual_seed(0)
    cell = EvalCell(G, 4, 4, 4, reduction=False, reduction_prev=False).train()
    s = torch.randn(16, 4, 5, 5)
    with torch.no_grad():
        nodes = cell(s, s, 0.9).view(16, 4, -1)  # node 2: sep_conv_3x3 ⊙ channel attention, then ⊗ D2
        kept = cell(s, s, 0.0).view(16, 4, -1)
    zero = [bool((nodes[n, 0] == 0).all()) for n in range(16)]
    assert any(zero) and not all(zero)
    assert all((kept[n, 0] != 0).any() for n in range(16))


# --- pairing with the DARTS method -------------------------------------------------------------------------

def test_darts_config_resolves_on_hetero():
    resolved = resolve(get_method("darts"), get_space("hetero"), "smoke", {})
    cfg = resolved.values
    # the space's own smoke values (3 cells, 1 correlation edge) win over the generic preset (4, 2)
    assert (cfg["search_layers"], cfg["eval_layers"], cfg["search_channels"], cfg["corr_edges"]) == (3, 3, 4, 1)
    assert resolved.sources["search_layers"] == resolved.sources["corr_edges"] == "budget:smoke"
    assert compatible("darts", "hetero") == (True, "")


def test_darts_searches_hetero_and_measures_op_correlation():
    cfg = resolve(get_method("darts"), get_space("hetero"), "smoke",
                  {"search_layers": "3", "search_channels": "2", "search_batch_size": "8",
                   "corr_edges": "1", "corr_batches": "1"}).values
    data = SearchData(load_dataset("digits").limited(64), cfg, 0, CPU)
    torch.manual_seed(0)
    space = get_space("hetero")(cfg)
    method = get_method("darts")(space, cfg, data.info, CPU, 0)
    assert [tuple(a.shape) for a in method.arch_parameters()] == [(18, 11), (18, 11)]
    weight_batch = next(iter(data.weight_batches(0)))
    arch_batch = next(iter(data.arch_batches(0)))
    method.supernet.train()
    grads = torch.autograd.grad(F.cross_entropy(method.supernet(arch_batch[0]), arch_batch[1]),
                                method.arch_parameters())
    for grad in grads:  # every row, tier 2 included, and every family gets a gradient
        assert grad.abs().sum(1).gt(0).all() and grad.abs().sum(0).gt(0).all()
    alphas = [a.detach().clone() for a in method.arch_parameters()]
    weights = [p.detach().clone() for p in method.supernet.parameters()]
    stats = method.train_step(weight_batch, arch_batch, 0)
    assert np.isfinite(stats["loss"])
    assert all(not torch.equal(a, b) for a, b in zip(method.arch_parameters(), alphas))
    assert any(not torch.equal(p, b) for p, b in zip(method.supernet.parameters(), weights))
    genotype = method.derive()
    _assert_valid(genotype)
    assert genotype == space.derive(method.importance())
    assert space.parse(space.to_str(genotype)) == genotype
    result = op_level_correlation(method, data, cfg)
    assert result["op_corr_edges"] == cfg["corr_edges"] == 1
    for detail in result["op_correlation"]:
        assert detail["ops"] == list(HETERO_OPS)
        assert len(detail["scores"]) == len(detail["accs"]) == 11
        assert all(0.0 <= acc <= 100.0 for acc in detail["accs"])


def test_edge_choices_by_hand():
    """Tier-1 pairs on the DARTS rows of (node 2 + j // 2, source), then the tier-2 rows 14..17."""
    choices = SPACE.edge_choices([G, G])
    assert set(choices) == {"normal", "reduce"}
    expected = {"normal": ([0, 1, 2, 4, 6, 8, 11, 13, 14, 15, 16, 17], [0, 8, 6, 10, 4, 7, 5, 2, 9, 7, 1, 6]),
                "reduce": ([0, 1, 3, 4, 5, 8, 10, 13, 14, 15, 16, 17], [7, 0, 9, 5, 6, 8, 10, 6, 8, 10, 4, 7])}
    for group, (rows, ops) in expected.items():
        assert choices[group][0].tolist() == [rows, rows] and choices[group][1].tolist() == [ops, ops]
    assert TIER2_OFFSET == 14 and NUM_ROWS == 18
    assert {g: (r.shape, o.shape) for g, (r, o) in SPACE.edge_choices([]).items()} == {
        "normal": ((0, 12), (0, 12)), "reduce": ((0, 12), (0, 12))}
