"""Tests of the NAS-Bench-201 space: official strings of all 15,625 cells, derivation, sampling, the supernet
and the final network (parameter counts against the benchmark), and the space's configuration keys."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import final_network, hand_count, one_line
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from harness.core.benchmarks.nb201 import load_table
from harness.core.benchmarks.nb201_arch import (
    EDGES,
    NB201_OPS,
    NUM_ARCHS,
    arch_codes,
    check_genotype,
    codes_key,
    enumerate_space,
    format_arch,
    genotype_of_key,
    parse_arch,
)
from harness.core.config import resolve
from harness.core.data import DataInfo
from harness.core.errors import GenotypeError, UserError
from harness.core.registry import SPACES, get_method, get_space
from spaces.base import EdgeId
from spaces.nb201 import EvalCell, NB201Space, ResidualBlock, SearchCell
from spaces.ops import Identity, ReLUConvBN, Zero

CIFAR10 = DataInfo(in_channels=3, num_classes=10, image_size=32)
ALL_NONE = ("none",) * 6
ALL_SKIP = ("skip_connect",) * 6
# NAS-Bench-201's architectures 0 and 1, as the official benchmark lists them.
ARCH_0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
ARCH_1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def official(g: tuple[str, ...]) -> str:
    """The official string, written out by hand (edge order 1←0, 2←0, 2←1, 3←0, 3←1, 3←2)."""
    return f"|{g[0]}~0|+|{g[1]}~0|{g[2]}~1|+|{g[3]}~0|{g[4]}~1|{g[5]}~2|"


@pytest.fixture(scope="module")
def table():
    return load_table()


@pytest.fixture(scope="module")
def space() -> NB201Space:
    return NB201Space(dict(NB201Space.defaults))


# --- registration and topology -----------------------------------------------------------------------------

def test_registered_with_the_benchmark_topology(space):
    assert SPACES["nb201"] is NB201Space and get_space("nb201") is NB201Space
    assert NB201Space.description and "\n" not in NB201Space.description
    assert NB201_OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert space.op_names == NB201_OPS
    assert EDGES == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
    assert NUM_ARCHS == 15_625 == 5 ** 6
    assert space.arch_shape() == {"cell": (6, 5)}
    assert all(space.edge_ops("cell", e) == space.choice_ops("cell", e) == (0, 1, 2, 3, 4)  # 'none' included
               for e in range(6))


# --- genotype strings --------------------------------------------------------------------------------------

def test_known_official_strings():
    assert parse_arch(ARCH_0) == ("avg_pool_3x3", "nor_conv_1x1", "skip_connect", "nor_conv_1x1", "skip_connect",
                                  "skip_connect")
    assert parse_arch(ARCH_1) == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3",
                                  "skip_connect")
    assert format_arch(ALL_NONE) == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert format_arch(list(ALL_SKIP)) == official(ALL_SKIP)  # a list is accepted too
    assert parse_arch("  " + ARCH_1 + "\n") == parse_arch(ARCH_1)  # surrounding whitespace is ignored


def test_every_string_of_the_table_round_trips_and_indexes(table):
    strings = [table.arch_str(i) for i in range(NUM_ARCHS)]
    assert strings[0] == ARCH_0 and strings[1] == ARCH_1
    genotypes = [parse_arch(s) for s in strings]
    assert [official(g) for g in genotypes] == strings  # the hand-written form
    assert [format_arch(g) for g in genotypes] == strings
    assert [table.index_of(g) for g in genotypes] == list(range(NUM_ARCHS))
    assert len(set(genotypes)) == NUM_ARCHS
    assert set(genotypes) == set(enumerate_space())
    codes = np.stack([arch_codes(g) for g in genotypes])
    assert np.array_equal(codes, table.codes)


def test_codes_and_keys_are_base_5_numbers():
    assert arch_codes(parse_arch(ARCH_0)).tolist() == [4, 2, 1, 2, 1, 1]
    assert arch_codes(ALL_NONE).dtype == np.uint8
    assert int(codes_key(np.array([1, 0, 0, 0, 0, 0]))) == 1  # edge 0 least significant
    assert int(codes_key(np.array([0, 0, 0, 0, 0, 1]))) == 5 ** 5
    assert int(codes_key(np.array([4, 2, 1, 2, 1, 1]))) == 4 + 2 * 5 + 1 * 25 + 2 * 125 + 1 * 625 + 1 * 3125
    assert int(codes_key(np.full(6, 4, dtype=np.uint8))) == NUM_ARCHS - 1  # no uint8 overflow
    assert genotype_of_key(1) == ("skip_connect",) + ("none",) * 5
    assert genotype_of_key(3125) == ("none",) * 5 + ("skip_connect",)
    genotypes = list(enumerate_space())
    assert len(genotypes) == NUM_ARCHS and genotypes[0] == ALL_NONE and genotypes[-1] == ("avg_pool_3x3",) * 6
    all_codes = np.stack([arch_codes(g) for g in genotypes])
    assert np.array_equal(codes_key(all_codes), np.arange(NUM_ARCHS))  # vectorised, in enumeration order
    assert all(genotype_of_key(codes_key(arch_codes(g))) == g for g in genotypes)


VALID = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
MALFORMED = {
    "two node groups": ("|none~0|+|none~0|none~1|", "need 3"),
    "four node groups": (VALID + "+|none~0|", "need 3"),
    "empty": ("", "need 3"),
    "node 2 with one input": ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must have 2 inputs"),
    "node 3 with four inputs": ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|none~3|", "must have 3 inputs"),
    "sources out of order": ("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|", "in order"),
    "source too high": ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "in order"),
    "unknown op": ("|sep_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'sep_conv_3x3'"),
    "upper-case op": ("|NONE~0|+|none~0|none~1|+|none~0|none~1|none~2|", "is not op~source"),
    "missing outer pipe": ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "must start and end with '|'"),
    "missing inner pipe": ("|none~0|+|none~0none~1|+|none~0|none~1|none~2|", "must have 2 inputs"),
    "no pipes": ("none~0+none~0,none~1+none~0,none~1,none~2", "must start and end with '|'"),
    "no source": ("|none|+|none~0|none~1|+|none~0|none~1|none~2|", "is not op~source"),
    "space inside": ("|none~0|+| none~0|none~1|+|none~0|none~1|none~2|", "is not op~source"),
    "only pipes": ("|+|+|", "must start and end with '|'"),
    "None": (None, "expected a string, got NoneType"),
    "an index": (42, "expected a string, got int"),
    "a genotype tuple": (ALL_NONE, "expected a string, got tuple"),
    "bytes": (VALID.encode(), "expected a string, got bytes"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_strings_raise_one_line_genotype_error(space, case):
    text, problem = MALFORMED[case]
    with pytest.raises(GenotypeError) as info:
        space.parse(text)
    assert isinstance(info.value, UserError)
    msg = one_line(info)
    assert msg.startswith("invalid NAS-Bench-201 architecture string: ")
    assert problem in msg
    assert msg.endswith(f"e.g. {ARCH_1}")  # shows the expected form


@pytest.mark.parametrize("text", ["|none~0\n|+|none~0|none~1|+|none~0|none~1|none~2|",
                                  "|none~\u0660|+|none~0|none~1|+|none~0|none~1|none~2|"])
def test_parser_is_strict_about_newlines_and_digits(text):
    with pytest.raises(GenotypeError):
        parse_arch(text)


@given(st.text(alphabet="|+~_0123noeskipcv", max_size=80))
def test_arbitrary_text_gives_a_round_tripping_genotype_or_a_genotype_error(text):
    try:
        genotype = parse_arch(text)
    except GenotypeError as error:
        assert "\n" not in str(error)
    else:
        assert format_arch(genotype) == text.strip()


@pytest.mark.parametrize("genotype", [ALL_NONE[:5], ALL_NONE + ("none",), ("max_pool_3x3",) + ALL_NONE[1:],
                                      (0, 1, 2, 3, 4, 0), "none", None, {"cell": ALL_NONE}])
def test_invalid_genotypes_are_refused(space, genotype):
    for call in (check_genotype, format_arch, arch_codes, space.to_str):
        with pytest.raises(GenotypeError) as info:
            call(genotype)
        assert "a genotype is a tuple of 6 op names" in one_line(info)
    with pytest.raises(GenotypeError):
        final_network(space, genotype, CIFAR10, 1, 4, False)


def test_check_genotype_returns_a_tuple():
    assert check_genotype(list(ALL_SKIP)) == ALL_SKIP and isinstance(check_genotype(list(ALL_SKIP)), tuple)


# --- derivation --------------------------------------------------------------------------------------------

def op(name: str) -> int:
    return NB201_OPS.index(name)


def test_derive_argmax_per_edge_none_allowed(space):
    expected = ("nor_conv_3x3", "none", "avg_pool_3x3", "skip_connect", "nor_conv_1x1", "none")
    scores = -np.ones((6, 5))
    for edge, name in enumerate(expected):
        scores[edge, op(name)] = 0.1 * edge
    scores[5] = [-1e-3, -2.0, -5.0, -1.0, -7.0]  # all negative: 'none' is still the largest
    assert space.derive({"cell": scores}) == expected
    assert space.derive({"cell": scores.tolist()}) == expected  # any array-like
    assert space.derive({"cell": torch.tensor(scores)}) == expected
    scores[2, op("none")] = np.inf
    assert space.derive({"cell": scores})[2] == "none"


def test_derive_ties_go_to_the_earlier_op(space):
    assert space.derive({"cell": np.zeros((6, 5))}) == ALL_NONE
    scores = np.zeros((6, 5))
    scores[0, [op("avg_pool_3x3"), op("nor_conv_1x1")]] = 1.0
    scores[1, [op("nor_conv_3x3"), op("skip_connect")]] = 2.0
    scores[2, [op("avg_pool_3x3"), op("nor_conv_3x3")]] = 0.5
    scores[3, :] = -3.0
    scores[4, [op("skip_connect"), op("avg_pool_3x3")]] = 1.0
    scores[5, [op("avg_pool_3x3")]] = 1.0
    assert space.derive({"cell": scores}) == ("nor_conv_1x1", "skip_connect", "nor_conv_3x3", "none",
                                              "skip_connect", "avg_pool_3x3")


@given(st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_derive_matches_the_documented_rule(seed, levels):
    space = NB201Space(dict(NB201Space.defaults))
    scores = np.random.default_rng(seed).integers(0, levels, size=(6, 5)).astype(float)  # frequent ties
    expected = tuple(NB201_OPS[max(range(5), key=lambda o, row=row: (row[o], -o))] for row in scores)
    assert space.derive({"cell": scores}) == expected


@pytest.mark.parametrize("scores", [{}, {"normal": np.zeros((6, 5))}, {"cell": np.zeros((5, 6))},
                                    {"cell": np.zeros((6, 4))}, {"cell": np.zeros(30)},
                                    {"cell": np.zeros((1, 6, 5))}])
def test_derive_refuses_wrong_shapes(space, scores):
    with pytest.raises(ValueError, match="must have shape"):
        space.derive(scores)


def test_derive_refuses_nan(space):
    scores = np.zeros((6, 5))
    scores[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        space.derive({"cell": scores})


# --- sampling ----------------------------------------------------------------------------------------------

def test_sample_is_valid_reproducible_and_covers_every_op(space):
    draws = [space.sample(np.random.default_rng(0)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    samples = [space.sample(rng_a) for _ in range(500)]
    assert samples == [space.sample(rng_b) for _ in range(500)]
    assert samples != [space.sample(np.random.default_rng(8)) for _ in range(500)]
    for genotype in samples:
        assert isinstance(genotype, tuple) and all(type(name) is str for name in genotype)
        assert check_genotype(genotype) == genotype and parse_arch(format_arch(genotype)) == genotype
    counts = np.zeros((6, 5), dtype=int)
    for genotype in samples:
        for edge, name in enumerate(genotype):
            counts[edge, op(name)] += 1
    assert (counts.sum(axis=1) == 500).all()
    # Uniform per edge: 100 expected per cell of the count matrix, standard deviation about 9.
    assert counts.min() > 60 and counts.max() < 140, counts
    assert len(set(samples)) > 480  # 500 draws from 15,625 cells: about 500² / (2 · 15,625) = 8 repeats


# --- supernet ----------------------------------------------------------------------------------------------

class SumEdge(nn.Module):
    """A test edge: the plain sum of the candidate ops."""

    def __init__(self, candidates: nn.ModuleList):
        super().__init__()
        self.candidates = candidates

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(candidate(x) for candidate in self.candidates)


def test_supernet_edges_channels_and_forward():
    layers, channels = 2, 4
    space = NB201Space({**NB201Space.defaults, "search_layers": layers, "search_channels": channels})
    calls: list[tuple[EdgeId, nn.ModuleList]] = []

    def factory(edge: EdgeId, candidates: nn.ModuleList) -> nn.Module:
        calls.append((edge, candidates))
        return SumEdge(candidates)

    torch.manual_seed(0)
    net = space.build_supernet(factory, CIFAR10)
    every_op = (0, 1, 2, 3, 4)
    assert [edge for edge, _ in calls] == [EdgeId("cell", index, cell, channels * 2 ** (cell // layers), every_op)
                                           for cell in range(3 * layers) for index in range(6)]
    kinds = [type(m).__name__ for m in net.cells]
    assert kinds == ["SearchCell"] * 2 + ["ResidualBlock"] + ["SearchCell"] * 2 + ["ResidualBlock"] + \
        ["SearchCell"] * 2
    for edge, candidates in calls:
        width = channels * 2 ** (edge.cell // layers)
        assert len(candidates) == 5
        assert isinstance(candidates[0], Zero) and isinstance(candidates[1], Identity)
        assert isinstance(candidates[2], ReLUConvBN) and candidates[2].op[1].kernel_size == (1, 1)
        assert isinstance(candidates[3], ReLUConvBN) and candidates[3].op[1].kernel_size == (3, 3)
        assert isinstance(candidates[4], nn.AvgPool2d) and candidates[4].count_include_pad is False
        assert candidates[3].op[1].in_channels == width == candidates[3].op[1].out_channels
        assert candidates[3].op[1].stride == (1, 1)
    cells = [m for m in net.cells if isinstance(m, SearchCell)]
    cell_bns = [bn for cell in cells for bn in cell.modules() if isinstance(bn, nn.BatchNorm2d)]
    assert len(cell_bns) == 3 * layers * 6 * 2 and all(bn.affine is False for bn in cell_bns)
    other_bns = [net.stem[1], net.lastact[0]] + [bn for m in net.cells if isinstance(m, ResidualBlock)
                                                  for bn in m.modules() if isinstance(bn, nn.BatchNorm2d)]
    assert len(other_bns) == 2 + 2 * 2 and all(bn.affine for bn in other_bns)

    logits = net(torch.randn(2, 3, 32, 32))
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 10)
    logits.sum().backward()
    assert net.stem[0].weight.grad is not None and net.stem[0].weight.grad.abs().sum() > 0
    assert cells[-1].edges[5].candidates[3].op[1].weight.grad is not None


def test_supernet_with_odd_image_size():
    space = NB201Space({**NB201Space.defaults, "search_layers": 1, "search_channels": 4})
    net = space.build_supernet(lambda edge, candidates: SumEdge(candidates), DataInfo(1, 5, 7))
    assert net(torch.randn(2, 1, 7, 7)).shape == (2, 5)


# --- final network -----------------------------------------------------------------------------------------

def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_all_none_network_has_the_hand_counted_parameters(space):
    net = final_network(space, ALL_NONE, CIFAR10, layers=5, channels=16, auxiliary=False)
    assert count(net.stem) == 3 * 16 * 9 + 2 * 16 == 464
    blocks = [m for m in net.cells if isinstance(m, ResidualBlock)]
    # conv_a 3x3 + BN, conv_b 3x3 + BN, 1x1 shortcut conv
    assert [count(b) for b in blocks] == [16 * 32 * 9 + 64 + 32 * 32 * 9 + 64 + 16 * 32,
                                         32 * 64 * 9 + 128 + 64 * 64 * 9 + 128 + 32 * 64] == [14_464, 57_600]
    assert len(net.cells) == 17 and sum(count(m) for m in net.cells if isinstance(m, EvalCell)) == 0
    assert count(net.lastact) == 128 and count(net.classifier) == 64 * 10 + 10 == 650
    assert count(net) == 73_306


def test_parameter_counts_match_the_hand_count_and_the_benchmark(space, table):
    assert hand_count(ALL_NONE) == hand_count(ALL_SKIP) == hand_count(("avg_pool_3x3",) * 6) == 73_306
    assert hand_count(parse_arch(ARCH_1)) == 802_426  # NAS-Bench-201 reports 0.802426 MB for architecture 1
    column = table.column("cifar10_params_m")
    counts = np.array([hand_count(table.genotype(i)) for i in range(NUM_ARCHS)])
    agree = np.abs(counts / 1e6 - column) < 1e-9
    # For 204 cells the source table's params_MB is not the parameter count of their network (a property of
    # the shared data, kept as it is); every other cell agrees.
    assert int((~agree).sum()) == 204
    rng = np.random.default_rng(0)
    for index in rng.choice(np.flatnonzero(agree), size=30, replace=False):
        genotype = table.genotype(int(index))
        net = final_network(space, genotype, CIFAR10, layers=5, channels=16, auxiliary=False)
        assert count(net) == counts[index]
        assert count(net) / 1e6 == pytest.approx(column[index], abs=1e-6)
    odd = int(np.flatnonzero(~agree)[0])
    assert count(final_network(space, table.genotype(odd), CIFAR10, 5, 16, False)) == counts[odd]


@pytest.mark.parametrize("size", [7, 5, 3, 32])
def test_final_network_shapes_and_odd_sizes(space, size):
    info = DataInfo(3, 10, size)
    torch.manual_seed(0)
    net = final_network(space, parse_arch(ARCH_1), info, layers=1, channels=4, auxiliary=True)
    assert not any("aux" in name for name, _ in net.named_parameters())  # no auxiliary head in NAS-Bench-201
    assert net.drop_path_prob == 0.0
    x = torch.randn(2, 3, size, size)
    sizes = []
    out = net.stem(x)
    for module in net.cells:
        out = module(out)
        sizes.append((out.shape[1], out.shape[-1]))
    half, quarter = math.ceil(size / 2), math.ceil(math.ceil(size / 2) / 2)
    assert sizes == [(4, size), (8, half), (8, half), (16, quarter), (16, quarter)]
    for mode in (True, False):
        net.train(mode)
        logits, aux = net(x)
        assert logits.shape == (2, 10) and aux is None
    net.train()
    logits, _ = net(x)
    logits.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_residual_block_rounds_odd_sizes_up():
    block = ResidualBlock(2, 6)
    assert block(torch.randn(1, 2, 7, 9)).shape == (1, 6, 4, 5)
    assert block(torch.randn(1, 2, 8, 8)).shape == (1, 6, 4, 4)


# --- the cell's node sums ----------------------------------------------------------------------------------

def eval_cell(genotype: tuple[str, ...], C: int = 3) -> EvalCell:
    """An EvalCell in eval mode whose convolutions are identities: ReLU → (BN of default statistics)."""
    cell = EvalCell(genotype, C)
    for module in cell.modules():
        if isinstance(module, nn.Conv2d):
            with torch.no_grad():
                module.weight.zero_()
                k = module.kernel_size[0] // 2
                for c in range(C):
                    module.weight[c, c, k, k] = 1.0
    return cell.eval()


def reference_op(name: str, x: torch.Tensor) -> torch.Tensor:
    """The op by hand: the identity convolutions give relu(x) / sqrt(1 + eps); the pool averages the pixels of
    each 3×3 window that lie inside the image."""
    if name == "none":
        return torch.zeros_like(x)
    if name == "skip_connect":
        return x
    if name in ("nor_conv_1x1", "nor_conv_3x3"):
        return x.clamp(min=0) / math.sqrt(1 + 1e-5)
    out = torch.empty_like(x)
    H, W = x.shape[-2:]
    for i in range(H):
        for j in range(W):
            out[..., i, j] = x[..., max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].mean(dim=(-2, -1))
    return out


def test_eval_cell_node_sums_by_hand():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        # node1 = x, node2 = 0 + node1, node3 = 0 + 0 + node2
        assert torch.equal(eval_cell(("skip_connect", "none", "skip_connect", "none", "none", "skip_connect"))(x), x)
        # node1 = x, node2 = x + x, node3 = x + x + 2x
        assert torch.equal(eval_cell(ALL_SKIP)(x), 4 * x)
        assert torch.equal(eval_cell(ALL_NONE)(x), torch.zeros_like(x))
        # node1 = 0, node2 = x + 0, node3 = x + 0 + 0
        assert torch.equal(eval_cell(("none", "skip_connect", "none", "skip_connect", "none", "none"))(x), x)
        # node1 = x, node2 = x + 0 = x, node3 = 0 + x + x
        assert torch.equal(eval_cell(("skip_connect", "skip_connect", "none", "none", "skip_connect",
                                      "skip_connect"))(x), 2 * x)
        # node1 = pool(x), node2 = 0, node3 = 0 + node1 + 0
        pooled = eval_cell(("avg_pool_3x3", "none", "none", "none", "skip_connect", "none"))(x)
        assert torch.allclose(pooled, reference_op("avg_pool_3x3", x), atol=1e-6)
        assert torch.allclose(pooled[..., 0, 0], x[..., :2, :2].mean(dim=(-2, -1)), atol=1e-6)  # corner: 4 pixels


@pytest.mark.parametrize("seed", range(8))
def test_eval_cell_sums_each_edge_at_its_place(seed):
    genotype = NB201Space(dict(NB201Space.defaults)).sample(np.random.default_rng(seed))
    cell = eval_cell(genotype)
    torch.manual_seed(seed)
    x = torch.randn(2, 3, 5, 5)
    nodes = [x]
    for node in (1, 2, 3):
        nodes.append(sum(reference_op(genotype[EDGES.index((node, source))], nodes[source])
                         for source in range(node)))
    with torch.no_grad():
        assert torch.allclose(cell(x), nodes[3], atol=1e-5), genotype


def test_eval_cell_edges_follow_the_genotype():
    cell = EvalCell(parse_arch(ARCH_0), 4)
    assert [type(edge).__name__ for edge in cell.edges] == ["AvgPool2d", "ReLUConvBN", "Identity", "ReLUConvBN",
                                                            "Identity", "Identity"]
    assert all(bn.affine for bn in cell.modules() if isinstance(bn, nn.BatchNorm2d))


# --- configuration -----------------------------------------------------------------------------------------

def darts_nb201(overrides: dict[str, str]):
    return resolve(get_method("darts"), get_space("nb201"), "smoke", overrides)


def test_smoke_config_uses_the_benchmark_protocol():
    cfg = darts_nb201({})
    values, sources = cfg.values, cfg.sources
    assert values["search_layers"] == 1 and sources["search_layers"] == "budget:smoke"
    assert values["eval_layers"] == 1 and values["arch_corr_samples"] == 1000
    assert values["search_channels"] == 4  # the generic smoke preset
    assert values["w_nesterov"] is True and sources["w_nesterov"] == "paper"
    assert values["w_weight_decay"] == 5e-4 and values["eval_weight_decay"] == 5e-4
    assert values["eval"] == "lookup" and values["nb201_table"] == "default"
    assert values["cutout"] == 0 and values["auxiliary_weight"] == 0.0 and values["drop_path"] == 0.0
    paper = resolve(get_method("darts"), get_space("nb201"), "paper", {}).values
    assert paper["search_layers"] == 5 and paper["search_channels"] == 16 and paper["arch_corr_samples"] == NUM_ARCHS
    assert paper["eval_epochs"] == 200 and paper["eval_batch_size"] == 256 and paper["eval_lr"] == 0.1


def test_space_follows_the_eval_key(table):
    space = NB201Space(darts_nb201({}).values)
    assert space.evaluates_by_lookup() is True and space.benchmark() is table
    assert NB201Space(darts_nb201({"eval": "train"}).values).evaluates_by_lookup() is False


@pytest.mark.parametrize("overrides, fragment", [
    ({"eval": "bogus"}, "eval='bogus' is not valid: one of lookup, train"),
    ({"nb201_table": "/nonexistent.npz"}, "does not exist"),
    ({"arch_corr_samples": "15626"}, "arch_corr_samples"),
    ({"arch_corr_samples": "-1"}, "arch_corr_samples"),
    ({"arch_corr_samples": "many"}, "arch_corr_samples"),
])
def test_bad_nb201_settings_are_refused(overrides, fragment):
    with pytest.raises(UserError) as info:
        darts_nb201(overrides)
    assert fragment in one_line(info)


def test_arch_corr_samples_bounds_are_inclusive():
    assert darts_nb201({"arch_corr_samples": "0"}).values["arch_corr_samples"] == 0
    assert darts_nb201({"arch_corr_samples": str(NUM_ARCHS)}).values["arch_corr_samples"] == NUM_ARCHS


def test_a_relative_table_path_is_resolved(table, tmp_path, monkeypatch):
    table.save(tmp_path / "mine.npz")
    monkeypatch.chdir(tmp_path)
    cfg = darts_nb201({"nb201_table": "mine.npz"})
    assert cfg.values["nb201_table"] == str((tmp_path / "mine.npz").resolve())
    loaded = NB201Space(cfg.values).benchmark()
    assert np.array_equal(loaded.codes, table.codes) and loaded.path == cfg.values["nb201_table"]


def test_edge_choices_by_hand():
    space = NB201Space({"nb201_table": "default"})
    genotype = ("nor_conv_3x3", "none", "nor_conv_1x1", "avg_pool_3x3", "nor_conv_1x1", "none")
    choices = space.edge_choices([genotype, ALL_SKIP, ALL_NONE])
    assert set(choices) == {"cell"}
    rows, ops = choices["cell"]
    assert rows.tolist() == [[0, 1, 2, 3, 4, 5]] * 3
    assert ops.tolist() == [[3, 0, 2, 4, 2, 0], [1] * 6, [0] * 6]
    assert [r.shape for r in space.edge_choices([])["cell"]] == [(0, 6), (0, 6)]
    with pytest.raises(GenotypeError):
        space.edge_choices([("skip_connect",) * 5])


def test_load_benchmark_reads_the_table_a_record_describes():
    table = load_table()
    assert NB201Space.load_benchmark(table.describe()) is table  # the cached default table
    assert NB201Space.load_benchmark({}) is table
