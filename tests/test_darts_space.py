"""Tests of the DARTS cell space: genotype strings, derivation, sampling, supernet and final network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import final_network
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from harness.core.data import DataInfo
from harness.core.errors import GenotypeError, UserError
from harness.core.registry import SPACES
from spaces.base import EdgeId
from spaces.darts import DartsSpace, EvalNetwork, Genotype
from spaces.ops import DARTS_OPS

SELECTABLE = DARTS_OPS[1:]


INFO = DataInfo(in_channels=1, num_classes=10, image_size=8)

# The DARTS (second order) cell from the DARTS repository's genotypes.py, concat written as lists there.
DARTS_V2 = Genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=range(2, 6),
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=range(2, 6),
)
DARTS_V2_STR = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
    "normal_concat=range(2, 6), "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
    "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
    "reduce_concat=range(2, 6))"
)
ALL_SKIP = Genotype(
    normal=[("skip_connect", s) for node in range(2, 6) for s in (0, 1)], normal_concat=range(2, 6),
    reduce=[("skip_connect", s) for node in range(2, 6) for s in (0, 1)], reduce_concat=range(2, 6),
)


@pytest.fixture(scope="module")
def space() -> DartsSpace:
    return DartsSpace({"search_layers": 5, "search_channels": 4, "eval_layers": 5, "eval_channels": 4})


SPACE = DartsSpace(dict(DartsSpace.defaults))  # for hypothesis tests, which cannot take fixtures


@st.composite
def genotypes(draw) -> Genotype:
    cells = {}
    for group in ("normal", "reduce"):
        edges = []
        for node in range(2, 6):
            sources = draw(st.lists(st.integers(0, node - 1), min_size=2, max_size=2, unique=True))
            edges += [(draw(st.sampled_from(SELECTABLE)), source) for source in sources]
        cells[group] = edges
    return Genotype(cells["normal"], range(2, 6), cells["reduce"], range(2, 6))


# --- registration and topology -----------------------------------------------------------------------------

def test_registered_with_paper_defaults(space):
    assert SPACES["darts"] is DartsSpace
    assert DartsSpace.name == "darts" and DartsSpace.description and "\n" not in DartsSpace.description
    assert DartsSpace.op_names == DARTS_OPS
    assert DartsSpace.defaults == {"search_layers": 8, "search_channels": 16, "eval_layers": 20,
                                   "eval_channels": 36}
    assert space.arch_shape() == {"normal": (14, 8), "reduce": (14, 8)}
    assert all(space.edge_ops(g, e) == tuple(range(8)) and space.choice_ops(g, e) == (1, 2, 3, 4, 5, 6, 7)
               for g in ("normal", "reduce") for e in range(14))


# --- genotype strings --------------------------------------------------------------------------------------

@given(genotypes())
def test_parse_inverts_to_str(genotype):
    assert SPACE.parse(SPACE.to_str(genotype)) == genotype


@given(genotypes())
def test_to_str_inverts_parse_on_canonical_strings(genotype):
    text = SPACE.to_str(genotype)
    assert SPACE.to_str(SPACE.parse(text)) == text


def test_canonical_string_parses_to_expected_namedtuple(space):
    parsed = space.parse(DARTS_V2_STR)
    assert parsed == DARTS_V2
    assert isinstance(parsed.normal_concat, range) and isinstance(parsed.normal[0], tuple)
    assert space.to_str(DARTS_V2) == DARTS_V2_STR
    assert repr(parsed) == DARTS_V2_STR  # the DARTS repr form exactly


def test_non_canonical_spellings_parse_to_the_same_genotype(space):
    as_lists = DARTS_V2_STR.replace("range(2, 6)", "[2, 3, 4, 5]")
    assert space.parse(as_lists) == DARTS_V2
    assert space.parse("  " + DARTS_V2_STR.replace(", ", ",\n   ") + "\n") == DARTS_V2
    assert space.parse(DARTS_V2_STR.replace("'", '"')) == DARTS_V2
    positional = DARTS_V2_STR.replace("normal=", "").replace("normal_concat=", "")
    positional = positional.replace("reduce=", "").replace("reduce_concat=", "")
    assert space.parse(positional) == DARTS_V2
    reordered = (f"Genotype(reduce_concat=range(2, 6), reduce={DARTS_V2.reduce!r}, "
                 f"normal_concat=range(2, 6), normal={DARTS_V2.normal!r})")
    assert space.parse(reordered) == DARTS_V2


def _replace_normal(text: str, normal: str) -> str:
    head, rest = text.split("normal=", 1)
    return head + "normal=" + normal + rest[rest.index("], normal_concat") + 1:]


NORMAL_OK = ("[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
             "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)]")


def _with_pair(old: str, new: str) -> str:
    """DARTS_V2_STR with the first ``old`` in its normal list replaced by ``new``."""
    return _replace_normal(DARTS_V2_STR, NORMAL_OK.replace(old, new, 1))


MALFORMED = {
    "unknown op": _replace_normal(DARTS_V2_STR, NORMAL_OK.replace("dil_conv_3x3", "conv_7x7")),
    "none op": _with_pair("('skip_connect', 0)", "('none', 0)"),
    "too few pairs": _replace_normal(DARTS_V2_STR, NORMAL_OK.replace(", ('dil_conv_3x3', 2)", "")),
    "too many pairs": _replace_normal(DARTS_V2_STR, NORMAL_OK[:-1] + ", ('sep_conv_3x3', 3)]"),
    "source not before node": _with_pair("('sep_conv_3x3', 1)", "('sep_conv_3x3', 2)"),
    "negative source": _with_pair("('sep_conv_3x3', 0)", "('sep_conv_3x3', -1)"),
    "repeated source": _with_pair("('sep_conv_3x3', 1)", "('sep_conv_3x3', 0)"),
    "bool source": _with_pair("('sep_conv_3x3', 1)", "('sep_conv_3x3', True)"),
    "float source": _with_pair("('sep_conv_3x3', 1)", "('sep_conv_3x3', 1.0)"),
    "op not a string": _with_pair("'sep_conv_3x3'", "sep_conv_3x3"),
    "triple": _with_pair("('sep_conv_3x3', 0)", "('sep_conv_3x3', 0, 1)"),
    "normal not a list": _replace_normal(DARTS_V2_STR, "{'a': 1}"),
    "wrong concat": DARTS_V2_STR.replace("normal_concat=range(2, 6)", "normal_concat=range(2, 5)"),
    "concat with zero step": DARTS_V2_STR.replace("normal_concat=range(2, 6)", "normal_concat=range(2, 6, 0)"),
    "huge concat": DARTS_V2_STR.replace("normal_concat=range(2, 6)", "normal_concat=range(1000000000000000)"),
    "concat of names": DARTS_V2_STR.replace("normal_concat=range(2, 6)", "normal_concat=[a, b]"),
    "missing field": DARTS_V2_STR.replace(", reduce_concat=range(2, 6)", ""),
    "unknown field": DARTS_V2_STR[:-1] + ", extra=1)",
    "duplicate field": DARTS_V2_STR[:-1] + ", normal=[])",
    "too many positionals": "Genotype(1, 2, 3, 4, 5)",
    "not a Genotype call": DARTS_V2_STR.replace("Genotype(", "Phenotype(", 1),
    "attribute call": "genotypes." + DARTS_V2_STR,
    "a list": "[('sep_conv_3x3', 0)]",
    "syntax error": DARTS_V2_STR[:-1],
    "empty": "",
    "statement": "import os",
    "two expressions": DARTS_V2_STR + "; 1",
    "null byte": "Genotype(\x00)",
    "code injection": "__import__('os').system('echo pwned')",
    "injection inside a pair": _with_pair("'sep_conv_3x3'", "__import__('os').getcwd()"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_strings_raise_one_line_genotype_error(space, case):
    with pytest.raises(GenotypeError) as info:
        space.parse(MALFORMED[case])
    assert isinstance(info.value, UserError)
    message = str(info.value)
    assert "\n" not in message and message.startswith("invalid DARTS genotype")
    assert "expected Genotype(normal=" in message  # shows the expected form
    assert len(message) < 700


def test_parse_never_evaluates_code(space, tmp_path):
    marker = tmp_path / "pwned"
    payloads = [
        f"__import__('pathlib').Path({str(marker)!r}).touch()",
        _replace_normal(DARTS_V2_STR, NORMAL_OK.replace(
            "'sep_conv_3x3'", f"__import__('pathlib').Path({str(marker)!r}).touch() or 'sep_conv_3x3'", 1)),
        DARTS_V2_STR.replace("range(2, 6)", f"range(2, 6 + __import__('pathlib').Path({str(marker)!r}).touch())"),
    ]
    for payload in payloads:
        with pytest.raises(GenotypeError):
            space.parse(payload)
    assert not marker.exists()


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_arbitrary_text_gives_a_genotype_or_a_genotype_error(text):
    try:
        genotype = SPACE.parse(text)
    except GenotypeError as error:
        assert "\n" not in str(error)
    else:
        assert SPACE.parse(SPACE.to_str(genotype)) == genotype


@given(genotypes(), st.integers(0, 400), st.integers(1, 30))
def test_damaged_canonical_strings_never_escape_as_other_errors(genotype, start, length):
    text = SPACE.to_str(genotype)
    damaged = text[:start] + text[start + length:]
    try:
        SPACE.parse(damaged)
    except GenotypeError:
        pass


def test_to_str_refuses_invalid_genotypes(space):
    bad = DARTS_V2._replace(normal=DARTS_V2.normal[:-1])
    with pytest.raises(GenotypeError):
        space.to_str(bad)
    with pytest.raises(GenotypeError):
        space.to_str(DARTS_V2._replace(reduce_concat=range(2, 5)))
    with pytest.raises(GenotypeError):
        space.to_str(("not", "a", "genotype", "tuple"))


# --- derivation --------------------------------------------------------------------------------------------

def _edge(node: int, source: int) -> int:
    """Edge index of ``source -> node`` in DARTS order."""
    return sum(range(2, node)) + source


def _op(name: str) -> int:
    return DARTS_OPS.index(name)


def test_edge_index_order():
    assert [_edge(2, 0), _edge(2, 1), _edge(3, 0), _edge(3, 2), _edge(4, 0), _edge(5, 0), _edge(5, 4)] == \
        [0, 1, 2, 4, 5, 9, 13]


def test_derive_hand_built_matrix(space):
    normal = np.zeros((14, 8))
    normal[_edge(2, 0), _op("sep_conv_3x3")] = 0.9
    normal[_edge(2, 1), _op("skip_connect")] = 0.5
    normal[_edge(3, 2), _op("dil_conv_3x3")] = 0.8  # strongest first: source 2 is listed before 0
    normal[_edge(3, 0), _op("max_pool_3x3")] = 0.7
    normal[_edge(3, 1), _op("sep_conv_5x5")] = 0.1
    normal[_edge(4, 3), _op("avg_pool_3x3")] = 0.6
    normal[_edge(4, 1), _op("dil_conv_5x5")] = 0.4
    normal[_edge(4, 1), _op("sep_conv_3x3")] = 0.3
    normal[_edge(5, 4), _op("sep_conv_5x5")] = 0.2
    normal[_edge(5, 2), _op("skip_connect")] = 0.3
    reduce = -np.ones((14, 8))
    for node in range(2, 6):
        reduce[_edge(node, node - 1), _op("max_pool_3x3")] = 2.0
        reduce[_edge(node, 0), _op("dil_conv_5x5")] = 1.0
    genotype = space.derive({"normal": normal, "reduce": reduce})
    assert genotype.normal == [("sep_conv_3x3", 0), ("skip_connect", 1),
                               ("dil_conv_3x3", 2), ("max_pool_3x3", 0),
                               ("avg_pool_3x3", 3), ("dil_conv_5x5", 1),
                               ("skip_connect", 2), ("sep_conv_5x5", 4)]
    assert genotype.reduce == [("max_pool_3x3", 1), ("dil_conv_5x5", 0)] + [
        pair for node in range(3, 6) for pair in (("max_pool_3x3", node - 1), ("dil_conv_5x5", 0))]
    assert genotype.normal_concat == range(2, 6) and genotype.reduce_concat == range(2, 6)
    assert space.parse(space.to_str(genotype)) == genotype


def test_derive_ignores_none_even_when_it_scores_highest(space):
    rng = np.random.default_rng(3)
    scores = {"normal": rng.normal(size=(14, 8)), "reduce": rng.normal(size=(14, 8))}
    expected = space.derive(scores)
    for matrix in scores.values():
        matrix[:, _op("none")] = 100.0
    genotype = space.derive(scores)
    assert genotype == expected
    assert all(op != "none" for op, _ in genotype.normal + genotype.reduce)


def test_derive_ties_lower_source_and_earlier_op_win(space):
    genotype = space.derive({"normal": np.zeros((14, 8)), "reduce": np.zeros((14, 8))})
    assert genotype.normal == [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4
    scores = np.zeros((14, 8))
    # node 4: sources 1 and 3 tie for strongest; source 2 is weaker; on each edge two ops tie.
    for source in (1, 3):
        scores[_edge(4, source), [_op("dil_conv_5x5"), _op("sep_conv_5x5")]] = 1.0
    scores[_edge(4, 2), _op("skip_connect")] = 0.5
    genotype = space.derive({"normal": scores, "reduce": scores})
    assert genotype.normal[4:6] == [("sep_conv_5x5", 1), ("sep_conv_5x5", 3)]


def _reference_derive(matrix: np.ndarray) -> list[tuple[str, int]]:
    """The documented rule, written out longhand."""
    edges = []
    for node in range(2, 6):
        candidates = []
        for source in range(node):
            row = matrix[_edge(node, source)]
            best_op = max(range(1, 8), key=lambda o: (row[o], -o))
            candidates.append((row[best_op], -source, best_op))
        candidates.sort(reverse=True)
        edges += [(DARTS_OPS[op], -neg_source) for _, neg_source, op in candidates[:2]]
    return edges


@given(st.integers(0, 2**32 - 1), st.integers(2, 6))
def test_derive_matches_the_documented_rule(seed, levels):
    rng = np.random.default_rng(seed)
    # Few distinct values, so ties between edges and between ops are frequent.
    scores = {g: rng.integers(0, levels, size=(14, 8)).astype(float) for g in ("normal", "reduce")}
    genotype = SPACE.derive(scores)
    assert genotype.normal == _reference_derive(scores["normal"])
    assert genotype.reduce == _reference_derive(scores["reduce"])
    assert SPACE.parse(SPACE.to_str(genotype)) == genotype


def test_derive_rejects_bad_scores(space):
    with pytest.raises(ValueError):
        space.derive({"normal": np.zeros((14, 8))})
    with pytest.raises(ValueError):
        space.derive({"normal": np.zeros((14, 7)), "reduce": np.zeros((14, 8))})
    with pytest.raises(ValueError):
        space.derive({"normal": np.full((14, 8), np.nan), "reduce": np.zeros((14, 8))})


# --- sampling ----------------------------------------------------------------------------------------------

@given(st.integers(0, 2**32 - 1))
def test_sample_is_valid_ordered_and_reproducible(seed):
    genotype = SPACE.sample(np.random.default_rng(seed))
    assert SPACE.parse(SPACE.to_str(genotype)) == genotype
    for edges in (genotype.normal, genotype.reduce):
        sources = [source for _, source in edges]
        assert all(sources[2 * i] < sources[2 * i + 1] for i in range(4))
        assert all(type(source) is int and type(op) is str for op, source in edges)
    assert SPACE.sample(np.random.default_rng(seed)) == genotype


def test_sample_covers_the_space(space):
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(300)]
    assert len({space.to_str(g) for g in samples}) == 300
    ops = {op for g in samples for op, _ in g.normal}
    assert ops == set(SELECTABLE)
    node5_sources = {tuple(s for _, s in g.normal[6:8]) for g in samples}
    assert len(node5_sources) == 10  # all C(5, 2) pairs


# --- supernet ----------------------------------------------------------------------------------------------

class UniformSum(nn.Module):
    """A test edge: the plain mean of the candidate ops."""

    def __init__(self, candidates: nn.ModuleList):
        super().__init__()
        self.candidates = candidates

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(op(x) for op in self.candidates) / len(self.candidates)


def test_supernet_forward_and_edge_factory_calls(space):
    calls: list[tuple[EdgeId, nn.ModuleList]] = []

    def factory(edge: EdgeId, candidates: nn.ModuleList) -> nn.Module:
        calls.append((edge, candidates))
        return UniformSum(candidates)

    torch.manual_seed(0)
    net = space.build_supernet(factory, INFO)
    layers = 5
    assert len(calls) == 14 * layers
    reductions = {layers // 3, 2 * layers // 3}
    channels = [4, 8, 8, 16, 16]  # C = 4, doubled at each reduction cell
    expected_ids = [EdgeId("reduce" if cell in reductions else "normal", index, cell, channels[cell], tuple(range(8)))
                    for cell in range(layers) for index in range(14)]
    assert [edge for edge, _ in calls] == expected_ids

    sources = [source for node in range(2, 6) for source in range(node)]
    for edge, candidates in calls:
        assert len(candidates) == len(DARTS_OPS)
        assert all(bn.affine is False for bn in candidates.modules() if isinstance(bn, nn.BatchNorm2d))
        for name, op in zip(DARTS_OPS, candidates):
            if "pool" in name:  # pooling is followed by BN(affine=False)
                assert isinstance(op, nn.Sequential) and isinstance(op[1], nn.BatchNorm2d)
        channels = candidates[1][1].num_features
        expected_channels = 4 * 2 ** sum(edge.cell >= r for r in sorted(reductions))
        assert channels == expected_channels
        strided = edge.group == "reduce" and sources[edge.index] < 2
        with torch.no_grad():
            outs = [op(torch.randn(2, channels, 8, 8)) for op in candidates]
        assert all(out.shape == (2, channels, 4 if strided else 8, 4 if strided else 8) for out in outs)

    x = torch.randn(2, 1, 8, 8)
    logits = net(x)
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert net.stem[0].weight.grad is not None
    assert all(bn.affine is False for cell in net.cells for bn in cell.modules()
               if isinstance(bn, nn.BatchNorm2d))


def test_supernet_with_odd_image_size(space):
    net = space.build_supernet(lambda edge, candidates: UniformSum(candidates), DataInfo(3, 5, 7))
    assert net(torch.randn(2, 3, 7, 7)).shape == (2, 5)


# --- final network -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("image_size", [8, 32])
@pytest.mark.parametrize("layers", [5, 8])
def test_eval_network_shapes(space, image_size, layers):
    info = DataInfo(in_channels=3, num_classes=10, image_size=image_size)
    torch.manual_seed(0)
    net = final_network(space, DARTS_V2, info, layers=layers, channels=4, auxiliary=True)
    assert net.drop_path_prob == 0.0
    x = torch.randn(2, 3, image_size, image_size)
    net.train()
    net.drop_path_prob = 0.2
    logits, aux_logits = net(x)
    assert logits.shape == (2, 10) and aux_logits is not None and aux_logits.shape == (2, 10)
    (logits.sum() + 0.4 * aux_logits.sum()).backward()
    net.eval()
    with torch.no_grad():
        logits, aux_logits = net(x)
    assert logits.shape == (2, 10) and aux_logits is None


def test_eval_network_without_auxiliary_head(space):
    net = final_network(space, DARTS_V2, INFO, layers=5, channels=4, auxiliary=False).train()
    logits, aux_logits = net(torch.randn(2, 1, 8, 8))
    assert logits.shape == (2, 10) and aux_logits is None
    assert not any(name.startswith("auxiliary") for name, _ in net.named_parameters())


def test_auxiliary_parameters_live_under_auxiliary_head(space):
    net = final_network(space, DARTS_V2, INFO, layers=5, channels=4, auxiliary=True)
    aux_names = [name for name, _ in net.named_parameters() if "auxiliary" in name]
    assert aux_names and all(name.startswith("auxiliary_head.") for name in aux_names)


def test_auxiliary_head_is_the_darts_head_on_cifar_sizes(space):
    net = final_network(space, DARTS_V2, DataInfo(3, 10, 32), layers=8, channels=4, auxiliary=True)
    pool = net.auxiliary_head.features[1]
    assert isinstance(pool, nn.AvgPool2d) and pool.kernel_size == 5 and pool.stride == 3
    small = final_network(space, DARTS_V2, INFO, layers=8, channels=4, auxiliary=True)
    assert isinstance(small.auxiliary_head.features[1], nn.AdaptiveAvgPool2d)


def test_darts_v2_parameter_count_matches_the_paper(space):
    # DARTS reports 3.3M parameters for its CIFAR-10 network (20 cells, C=36); its logs print 3.349342 MB.
    net = final_network(space, DARTS_V2, DataInfo(3, 10, 32), layers=20, channels=36, auxiliary=True)
    count = sum(p.numel() for name, p in net.named_parameters() if not name.startswith("auxiliary"))
    assert count == 3_349_342


def test_reduction_cells_halve_and_double(space):
    net = final_network(space, DARTS_V2, DataInfo(3, 10, 7), layers=5, channels=4, auxiliary=False).eval()
    s0 = s1 = net.stem(torch.randn(1, 3, 7, 7))
    sizes, channels = [], []
    for cell in net.cells:
        s0, s1 = s1, cell(s0, s1, 0.0)
        sizes.append(s1.shape[-1])
        channels.append(s1.shape[1])
    assert sizes == [7, 4, 4, 2, 2]
    assert channels == [16, 32, 32, 64, 64]


def test_build_network_refuses_invalid_genotype(space):
    with pytest.raises(GenotypeError):
        final_network(space, DARTS_V2._replace(normal=[("none", 0)] * 8), INFO, 5, 4, False)


def test_drop_path_never_drops_identity(space):
    torch.manual_seed(0)
    net = final_network(space, ALL_SKIP, INFO, layers=5, channels=4, auxiliary=True).train()
    normal_cell = net.cells[0]
    assert not normal_cell.reduction
    s = net.stem(torch.randn(8, 1, 8, 8))
    # Every op of an all-skip normal cell is an Identity: a drop probability of 0.99 must change nothing,
    # and the output (sums of the preprocessed inputs) keeps its signal in every sample.
    kept = normal_cell(s, s, 0.99)
    assert torch.equal(kept, normal_cell(s, s, 0.0))
    assert (kept.flatten(1).abs().sum(1) > 0).all()
    net.drop_path_prob = 0.99
    logits, aux_logits = net(torch.randn(8, 1, 8, 8))
    assert torch.isfinite(logits).all() and torch.isfinite(aux_logits).all()


def test_drop_path_drops_other_ops_only_in_training(space):
    torch.manual_seed(0)
    net = final_network(space, DARTS_V2, INFO, layers=5, channels=4, auxiliary=False)
    net.train()
    s = net.stem(torch.randn(16, 1, 8, 8)).detach()
    cell = net.cells[0]
    out = cell(s, s, 0.99)
    # Node 2 of DARTS_V2's normal cell is two sep convs: with p = 0.99 most samples lose both.
    node2 = out[:, :4].flatten(1)
    assert (node2.abs().sum(1) == 0).any()
    net.eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        net.drop_path_prob = 0.0
        reference, _ = net(x)
        net.drop_path_prob = 0.99
        evaluated, _ = net(x)
    assert torch.equal(reference, evaluated)


def test_eval_network_class(space):
    assert isinstance(final_network(space, DARTS_V2, INFO, 5, 4, True), EvalNetwork)


def test_edge_choices_by_hand():
    """The j-th (op, source) pair sits on the row of (node 2 + j // 2, source): rows 0-1 feed node 2, 2-4 node 3,
    5-8 node 4, 9-13 node 5; its op is the index into DARTS_OPS."""
    from spaces.darts import CONCAT, StagedGenotype

    normal = [("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 0), ("dil_conv_3x3", 2),
              ("max_pool_3x3", 3), ("skip_connect", 0), ("avg_pool_3x3", 4), ("sep_conv_5x5", 1)]
    genotype = Genotype(normal=normal, normal_concat=CONCAT, reduce=ALL_SKIP.reduce, reduce_concat=CONCAT)
    choices = SPACE.edge_choices([genotype, ALL_SKIP])
    all_skip_rows = [0, 1, 2, 3, 5, 6, 9, 10]  # sources 0 and 1 of nodes 2, 3, 4, 5
    assert set(choices) == {"normal", "reduce"}
    rows, ops = choices["normal"]
    assert rows.tolist() == [[1, 0, 2, 4, 8, 5, 13, 10], all_skip_rows]
    assert ops.tolist() == [[4, 3, 4, 6, 1, 3, 2, 5], [3] * 8]
    assert choices["reduce"][0].tolist() == [all_skip_rows] * 2 and choices["reduce"][1].tolist() == [[3] * 8] * 2
    staged = StagedGenotype(normal=[normal] * 3, reduce=[normal] * 2)
    with pytest.raises(ValueError, match="no single choice per shared edge") as info:
        SPACE.edge_choices([genotype, staged])
    assert "\n" not in str(info.value)
    assert DartsSpace.load_benchmark({"path": "default"}) is None  # no benchmark table for this space
