"""Tests of the per-stage DARTS final network (``StagedGenotype``): genotype strings, which search cells supply
the stages, which cell builds each final-network position, the network itself, ``derive_cell`` and the
record's readable genotype lines."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import final_network, one_line
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.core.config import SHARED_KEYS
from harness.core.data import DataInfo
from harness.core.errors import GenotypeError, UserError
from harness.core.records import genotype_lines, read_record, write_record
from harness.evaluation import FinalTraining
from spaces.darts import (
    CONCAT,
    DartsSpace,
    EvalNetwork,
    Genotype,
    StagedGenotype,
    cell_genotype,
    reduction_positions,
    search_stage_cells,
)
from spaces.ops import OPS

INFO = DataInfo(in_channels=1, num_classes=10, image_size=8)
SPACE = DartsSpace({"search_layers": 5, "search_channels": 4, "eval_layers": 5, "eval_channels": 4})

# Five different valid cells (two distinct sources < node per node), every op used, skips from the inputs in
# the reduction cells (those become FactorizedReduce) and from intermediate nodes (Identity).
N0 = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_5x5", 2),
      ("dil_conv_3x3", 1), ("max_pool_3x3", 3), ("avg_pool_3x3", 0), ("dil_conv_5x5", 4)]
N1 = [("dil_conv_5x5", 1), ("skip_connect", 0), ("max_pool_3x3", 2), ("sep_conv_3x3", 1),
      ("sep_conv_5x5", 0), ("avg_pool_3x3", 2), ("skip_connect", 3), ("dil_conv_3x3", 1)]
N2 = [("avg_pool_3x3", 0), ("dil_conv_3x3", 1), ("sep_conv_5x5", 1), ("skip_connect", 2),
      ("max_pool_3x3", 3), ("sep_conv_3x3", 0), ("dil_conv_5x5", 2), ("sep_conv_5x5", 4)]
R0 = [("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("skip_connect", 1), ("dil_conv_5x5", 2),
      ("avg_pool_3x3", 0), ("sep_conv_3x3", 3), ("dil_conv_3x3", 4), ("skip_connect", 0)]
R1 = [("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 0), ("max_pool_3x3", 2),
      ("skip_connect", 3), ("dil_conv_5x5", 1), ("sep_conv_5x5", 2), ("sep_conv_3x3", 3)]
STAGED = StagedGenotype(normal=[N0, N1, N2], reduce=[R0, R1])
PLAIN = Genotype(normal=N0, normal_concat=CONCAT, reduce=R0, reduce_concat=CONCAT)

# Written out by hand: the canonical (and repr) form.
STAGED_STR = (
    "StagedGenotype(normal=[[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_5x5', 2), "
    "('dil_conv_3x3', 1), ('max_pool_3x3', 3), ('avg_pool_3x3', 0), ('dil_conv_5x5', 4)], "
    "[('dil_conv_5x5', 1), ('skip_connect', 0), ('max_pool_3x3', 2), ('sep_conv_3x3', 1), "
    "('sep_conv_5x5', 0), ('avg_pool_3x3', 2), ('skip_connect', 3), ('dil_conv_3x3', 1)], "
    "[('avg_pool_3x3', 0), ('dil_conv_3x3', 1), ('sep_conv_5x5', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 3), ('sep_conv_3x3', 0), ('dil_conv_5x5', 2), ('sep_conv_5x5', 4)]], "
    "reduce=[[('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('skip_connect', 1), ('dil_conv_5x5', 2), "
    "('avg_pool_3x3', 0), ('sep_conv_3x3', 3), ('dil_conv_3x3', 4), ('skip_connect', 0)], "
    "[('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 0), ('max_pool_3x3', 2), "
    "('skip_connect', 3), ('dil_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 3)]])"
)


def _text(normal, reduce, extra: str = "") -> str:
    """A StagedGenotype string written from Python lists (their repr is the canonical pair syntax)."""
    return f"StagedGenotype(normal={normal!r}, reduce={reduce!r}{extra})"


def _swap(cell: list, index: int, pair: tuple) -> list:
    return cell[:index] + [pair] + cell[index + 1:]


@st.composite
def staged_genotypes(draw) -> StagedGenotype:
    """Five random cells from ``DartsSpace.sample`` (three normal halves, two reduction halves)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    samples = [SPACE.sample(rng) for _ in range(3)]
    return StagedGenotype(normal=[g.normal for g in samples], reduce=[samples[0].reduce, samples[2].reduce])


# --- genotype strings --------------------------------------------------------------------------------------

def test_canonical_string_is_the_repr_and_parses_to_the_namedtuple():
    assert SPACE.to_str(STAGED) == STAGED_STR == repr(STAGED)
    parsed = SPACE.parse(STAGED_STR)
    assert type(parsed) is StagedGenotype and parsed == STAGED
    assert all(isinstance(cell, list) and all(type(pair) is tuple for pair in cell)
               for cell in parsed.normal + parsed.reduce)
    assert parsed.normal[1] == N1 and parsed.reduce[1] == R1  # stages kept in order


@settings(max_examples=30, deadline=None)
@given(staged_genotypes())
def test_round_trips(staged):
    text = SPACE.to_str(staged)
    assert text == repr(staged)
    parsed = SPACE.parse(text)
    assert type(parsed) is StagedGenotype and parsed == staged
    assert SPACE.to_str(parsed) == text


def test_positional_reordered_and_spaced_spellings_parse_to_the_same_genotype():
    positional = f"StagedGenotype({STAGED.normal!r}, {STAGED.reduce!r})"
    assert SPACE.parse(positional) == STAGED
    assert SPACE.parse(f"StagedGenotype({STAGED.normal!r}, reduce={STAGED.reduce!r})") == STAGED
    assert SPACE.parse(f"StagedGenotype(reduce={STAGED.reduce!r}, normal={STAGED.normal!r})") == STAGED
    assert SPACE.parse("  " + STAGED_STR.replace(", ", ",\n    ") + "\n") == STAGED
    assert SPACE.parse(STAGED_STR.replace("'", '"')) == STAGED


def test_a_plain_genotype_string_still_parses_as_a_genotype():
    text = SPACE.to_str(PLAIN)
    assert text.startswith("Genotype(normal=[('sep_conv_3x3', 0), ")
    parsed = SPACE.parse(text)
    assert type(parsed) is Genotype and parsed == PLAIN


MALFORMED = {
    "two normal cells": _text([N0, N1], [R0, R1]),
    "four normal cells": _text([N0, N1, N2, N0], [R0, R1]),
    "one reduction cell": _text([N0, N1, N2], [R0]),
    "three reduction cells": _text([N0, N1, N2], [R0, R1, R0]),
    "no cells": _text([], []),
    "seven pairs": _text([N0, N1[:7], N2], [R0, R1]),
    "nine pairs": _text([N0, N1, N2], [R0, R1 + [("skip_connect", 4)]]),
    "none op": _text([N0, N1, _swap(N2, 5, ("none", 0))], [R0, R1]),
    "unknown op": _text([N0, N1, N2], [_swap(R0, 0, ("conv_7x7", 0)), R1]),
    "source out of range": _text([N0, _swap(N1, 1, ("skip_connect", 2)), N2], [R0, R1]),
    "negative source": _text([N0, N1, N2], [R0, _swap(R1, 6, ("sep_conv_5x5", -1))]),
    "duplicate source in a node": _text([_swap(N0, 3, ("sep_conv_5x5", 0)), N1, N2], [R0, R1]),
    "bool source": _text([N0, N1, N2], [R0, _swap(R1, 0, ("sep_conv_3x3", True))]),
    "triple": _text([N0, N1, N2], [_swap(R0, 2, ("skip_connect", 1, 0)), R1]),
    "normal not a list": f"StagedGenotype(normal=5, reduce={[R0, R1]!r})",
    "reduce a dict": f"StagedGenotype(normal={[N0, N1, N2]!r}, reduce={{'a': 1}})",
    "a cell not a list": _text([N0, 5, N2], [R0, R1]),
    "flat pair list for normal": _text(N0, [R0, R1]),
    "unknown field": _text([N0, N1, N2], [R0, R1], extra=", stage=1"),
    "missing field": f"StagedGenotype(normal={[N0, N1, N2]!r})",
    "field given twice": _text([N0, N1, N2], [R0, R1], extra=f", normal={[N0, N1, N2]!r}"),
    "too many positionals": f"StagedGenotype({[N0, N1, N2]!r}, {[R0, R1]!r}, [])",
    "garbage": "StagedGenotype(((]]",
    "truncated": STAGED_STR[:-3],
    "trailing expression": STAGED_STR + " + 1",
    "code injection": f"StagedGenotype(normal=__import__('os').getcwd(), reduce={[R0, R1]!r})",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_staged_strings_raise_one_line_genotype_error(case):
    with pytest.raises(GenotypeError) as info:
        SPACE.parse(MALFORMED[case])
    assert isinstance(info.value, UserError)
    message = one_line(info)
    assert message.startswith("invalid DARTS staged genotype: ")
    assert "expected StagedGenotype(normal=[[" in message  # shows the expected form


def test_malformed_messages_name_the_problem():
    def message(text: str) -> str:
        with pytest.raises(GenotypeError) as info:
            SPACE.parse(text)
        return one_line(info)

    assert "normal must be a list of 3 cells" in message(MALFORMED["two normal cells"])
    assert "reduce must be a list of 2 cells" in message(MALFORMED["three reduction cells"])
    assert "normal[1] has 7 (op, source) pairs, need 8" in message(MALFORMED["seven pairs"])
    assert "normal[2][5] uses 'none'" in message(MALFORMED["none op"])
    assert "reduce[0][0] has unknown op 'conv_7x7'" in message(MALFORMED["unknown op"])
    assert "normal[1][1] belongs to node 2, so its source must be in 0..1, got 2" in \
        message(MALFORMED["source out of range"])
    assert "node 3 of normal[0] uses source 0 twice" in message(MALFORMED["duplicate source in a node"])
    assert "unknown field stage" in message(MALFORMED["unknown field"])


BAD_OBJECTS = {
    "two normal cells": StagedGenotype(normal=[N0, N1], reduce=[R0, R1]),
    "one reduction cell": StagedGenotype(normal=[N0, N1, N2], reduce=[R0]),
    "normal is None": StagedGenotype(normal=None, reduce=[R0, R1]),
    "seven pairs": StagedGenotype(normal=[N0, N1, N2], reduce=[R0, R1[:7]]),
    "none op": StagedGenotype(normal=[N0, _swap(N1, 0, ("none", 1)), N2], reduce=[R0, R1]),
    "pairs as lists": StagedGenotype(normal=[N0, N1, [list(pair) for pair in N2]], reduce=[R0, R1]),
    "string source": StagedGenotype(normal=[N0, N1, N2], reduce=[_swap(R0, 7, ("skip_connect", "0")), R1]),
    "duplicate source": StagedGenotype(normal=[N0, N1, N2], reduce=[R0, _swap(R1, 1, ("avg_pool_3x3", 1))]),
}


@pytest.mark.parametrize("case", sorted(BAD_OBJECTS))
def test_to_str_and_build_network_refuse_a_bad_staged_genotype(case):
    with pytest.raises(GenotypeError) as info:
        SPACE.to_str(BAD_OBJECTS[case])
    assert one_line(info).startswith("invalid DARTS staged genotype: ")
    with pytest.raises(GenotypeError) as info:
        final_network(SPACE, BAD_OBJECTS[case], INFO, layers=5, channels=4, auxiliary=False)
    assert one_line(info).startswith("invalid DARTS staged genotype: ")


# --- which search cells supply the stages ----------------------------------------------------------------

# (layers, 'first', 'last', reduction cells), worked out from the stage bounds [0, L//3, 2L//3, L]; a stage
# without a normal cell (3 and 4 layers) reuses the previous stage's.
STAGE_TABLE = [
    (3, [0, 0, 0], [0, 0, 0], [1, 2]),
    (4, [0, 0, 3], [0, 0, 3], [1, 2]),
    (5, [0, 2, 4], [0, 2, 4], [1, 3]),
    (6, [0, 3, 5], [1, 3, 5], [2, 4]),
    (7, [0, 3, 5], [1, 3, 6], [2, 4]),
    (8, [0, 3, 6], [1, 4, 7], [2, 5]),
    (20, [0, 7, 14], [5, 12, 19], [6, 13]),
]


@pytest.mark.parametrize(("layers", "first", "last", "reductions"), STAGE_TABLE)
def test_search_stage_cells_first_and_last(layers, first, last, reductions):
    assert search_stage_cells(layers, "first") == (first, reductions)
    assert search_stage_cells(layers, "last") == (last, reductions)
    assert list(reduction_positions(layers)) == reductions


@pytest.mark.parametrize(("rule", "normal"), [("7,1,4", [7, 1, 4]), ("0, 3, 6", [0, 3, 6]),
                                              (" 1 ,4,7 ", [1, 4, 7]), ("1,1,1", [1, 1, 1])])
def test_search_stage_cells_explicit_indices(rule, normal):
    assert search_stage_cells(8, rule) == (normal, [2, 5])


@pytest.mark.parametrize(("layers", "rule"), [
    (2, "first"), (2, "last"), (0, "first"), (2, "0,0,0"), (8, "x"), (8, ""), (8, "First"), (8, "0,3"),
    (8, "0,3,6,7"), (8, "-1,3,6"), (8, "0;3;6"), (8, "0,,6"), (8, "0,3,9"), (8, "0,3,8"), (8, "2,3,6"),
    (8, "0,5,6"), (4, "0,1,3"),
])
def test_search_stage_cells_refusals(layers, rule):
    with pytest.raises(UserError) as info:
        search_stage_cells(layers, rule)
    one_line(info)


def test_search_stage_cells_messages():
    with pytest.raises(UserError) as info:
        search_stage_cells(8, "2,3,6")
    assert "search cell 2 is not a normal cell" in one_line(info)
    assert "(normal cells: 0, 1, 3, 4, 6, 7)" in one_line(info)
    with pytest.raises(UserError) as info:
        search_stage_cells(8, "0,3")
    assert "'0,3'" in one_line(info)
    with pytest.raises(UserError) as info:
        search_stage_cells(2, "first")
    assert "got 2" in one_line(info)


def test_search_stage_cells_refuses_superscript_digits_with_a_user_error():
    with pytest.raises(UserError):
        search_stage_cells(8, "\u00b2,3,6")


# --- which cell builds each final-network position -------------------------------------------------------

CELLS = {"N0": N0, "N1": N1, "N2": N2, "R0": R0, "R1": R1}
# Final-network position -> the StagedGenotype cell that builds it, by hand.
POSITION_TABLE = {
    1: ["R0"],  # both reductions at position 0
    2: ["R0", "R1"],  # no normal cell at all
    3: ["N0", "R0", "R1"],
    4: ["N0", "R0", "R1", "N2"],  # the middle stage is empty
    5: ["N0", "R0", "N1", "R1", "N2"],
    6: ["N0", "N0", "R0", "N1", "R1", "N2"],
    7: ["N0", "N0", "R0", "N1", "R1", "N2", "N2"],
    20: ["N0"] * 6 + ["R0"] + ["N1"] * 6 + ["R1"] + ["N2"] * 6,
}


@pytest.mark.parametrize("layers", sorted(POSITION_TABLE))
def test_cell_genotype_positions(layers):
    for position, name in enumerate(POSITION_TABLE[layers]):
        genotype = cell_genotype(STAGED, position, layers)
        assert type(genotype) is Genotype, (layers, position)
        assert genotype.normal == CELLS[name] and genotype.reduce == CELLS[name], (layers, position, name)
        assert genotype.normal_concat == CONCAT and genotype.reduce_concat == CONCAT


def test_cell_genotype_passes_a_plain_genotype_through():
    for position in range(20):
        assert cell_genotype(PLAIN, position, 20) is PLAIN


# --- the network -----------------------------------------------------------------------------------------

def _reference_ops(edges: list[tuple[str, int]], C: int, reduction: bool) -> list[tuple[str, list]]:
    """(class name, parameter shapes) of the ops an EvalCell must hold; inputs of a reduction cell stride 2."""
    ops = [OPS[name](C, 2 if reduction and source < 2 else 1, True) for name, source in edges]
    return [(type(op).__name__, [tuple(p.shape) for p in op.parameters()]) for op in ops]


def _cell_ops(cell) -> list[tuple[str, list]]:
    return [(type(op).__name__, [tuple(p.shape) for p in op.parameters()]) for op in cell.ops]


@pytest.mark.parametrize("layers", [1, 2, 3, 4, 5, 6, 7])
def test_every_cell_has_its_stage_cell(layers):
    net = final_network(SPACE, STAGED, INFO, layers=layers, channels=4, auxiliary=False)
    assert isinstance(net, EvalNetwork) and len(net.cells) == layers
    reductions = {layers // 3, 2 * layers // 3}
    C = 4
    for position, (cell, name) in enumerate(zip(net.cells, POSITION_TABLE[layers])):
        reduction = position in reductions
        C = 2 * C if reduction else C
        assert cell.reduction == reduction == name.startswith("R"), (layers, position)
        assert cell.sources == [source for _, source in CELLS[name]], (layers, position, name)
        assert _cell_ops(cell) == _reference_ops(CELLS[name], C, reduction), (layers, position, name)
        assert cell.concat == [2, 3, 4, 5]
    logits, aux = net.eval()(torch.randn(2, 1, 8, 8))
    assert logits.shape == (2, 10) and aux is None


def test_staged_network_forward_and_one_training_step():
    torch.manual_seed(0)
    net = final_network(SPACE, STAGED, INFO, layers=6, channels=4, auxiliary=True)
    plain = final_network(SPACE, PLAIN, INFO, layers=6, channels=4, auxiliary=True)

    def count(module) -> int:
        return sum(p.numel() for p in module.parameters())

    assert count(net) != count(plain)
    # Only the cells built from N1 / R1 / N2 (positions 3, 4, 5) differ from the plain network's.
    assert [count(a) == count(b) for a, b in zip(net.cells, plain.cells)] == [True, True, True, False, False, False]

    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    net.train()
    net.drop_path_prob = 0.2
    logits, aux = net(x)
    assert logits.shape == (4, 10) and aux is not None and aux.shape == (4, 10)
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    loss = torch.nn.functional.cross_entropy(logits, y) + 0.4 * torch.nn.functional.cross_entropy(aux, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    changed = [not torch.equal(b, p) for b, p in zip(before, net.parameters())]
    assert any(changed)
    assert not torch.equal(before[0], net.stem[0].weight)  # gradients reach the stem through every stage
    net.eval()
    with torch.no_grad():
        logits, aux = net(x)
    assert logits.shape == (4, 10) and aux is None and torch.isfinite(logits).all()


@pytest.mark.parametrize("layers", [5, 7])
def test_uniform_staged_genotype_equals_the_plain_network(layers):
    same = StagedGenotype(normal=[N0, N0, N0], reduce=[R0, R0])
    torch.manual_seed(1)
    staged = final_network(SPACE, same, INFO, layers=layers, channels=4, auxiliary=True)
    torch.manual_seed(1)
    plain = final_network(SPACE, PLAIN, INFO, layers=layers, channels=4, auxiliary=True)
    assert repr(staged) == repr(plain)
    assert [cell.sources for cell in staged.cells] == [cell.sources for cell in plain.cells]
    staged_state, plain_state = staged.state_dict(), plain.state_dict()
    assert list(staged_state) == list(plain_state)
    assert all(torch.equal(staged_state[key], plain_state[key]) for key in plain_state)
    x = torch.randn(3, 1, 8, 8)
    for train in (True, False):
        staged.train(train)
        plain.train(train)
        with torch.no_grad():
            (a, a_aux), (b, b_aux) = staged(x), plain(x)
        assert torch.equal(a, b)
        assert (a_aux is None and b_aux is None) if not train else torch.equal(a_aux, b_aux)


# --- derive_cell -----------------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 6))
def test_derive_cell_is_each_half_of_derive(seed, levels):
    rng = np.random.default_rng(seed)
    # Few distinct levels: ties between edges and between ops are frequent.
    normal, reduce = (rng.integers(0, levels, size=(14, 8)).astype(float) for _ in range(2))
    genotype = SPACE.derive({"normal": normal, "reduce": reduce})
    assert SPACE.derive_cell(normal) == genotype.normal
    assert SPACE.derive_cell(reduce, "reduce") == genotype.reduce
    staged = StagedGenotype(normal=[SPACE.derive_cell(m) for m in (normal, reduce, normal)],
                            reduce=[SPACE.derive_cell(reduce), SPACE.derive_cell(normal)])
    assert SPACE.parse(SPACE.to_str(staged)) == staged


def test_derive_cell_on_a_hand_built_matrix():
    scores = np.zeros((14, 8))
    scores[1, 5] = 2.0  # node 2 from 1: sep_conv_5x5, strongest, listed first
    scores[0, 3] = 1.0  # node 2 from 0: skip_connect
    scores[:, 0] = 9.0  # none never wins
    assert SPACE.derive_cell(scores)[:2] == [("sep_conv_5x5", 1), ("skip_connect", 0)]
    assert SPACE.derive_cell(scores)[2:] == [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 3  # ties


@pytest.mark.parametrize("scores", [np.zeros((14, 7)), np.zeros((13, 8)), np.zeros(14 * 8), np.zeros((2, 14, 8))])
def test_derive_cell_rejects_wrong_shapes(scores):
    with pytest.raises(ValueError, match=r"scores\['reduce'\] must have shape \(14, 8\)"):
        SPACE.derive_cell(scores, "reduce")


def test_derive_cell_rejects_nan():
    scores = np.zeros((14, 8))
    scores[9, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SPACE.derive_cell(scores)


# --- the record's genotype lines -------------------------------------------------------------------------

def test_genotype_lines_of_a_staged_genotype():
    lines = genotype_lines(SPACE.to_str(STAGED))
    assert len(lines) == 5 * 5
    assert lines[:5] == [
        "normal cells of stage 1:",
        "  node 2 ← (sep_conv_3x3, 0), (sep_conv_3x3, 1)",
        "  node 3 ← (skip_connect, 0), (sep_conv_5x5, 2)",
        "  node 4 ← (dil_conv_3x3, 1), (max_pool_3x3, 3)",
        "  node 5 ← (avg_pool_3x3, 0), (dil_conv_5x5, 4)",
    ]
    assert lines[20:] == [
        "reduction cell 2:",
        "  node 2 ← (sep_conv_3x3, 1), (avg_pool_3x3, 0)",
        "  node 3 ← (dil_conv_3x3, 0), (max_pool_3x3, 2)",
        "  node 4 ← (skip_connect, 3), (dil_conv_5x5, 1)",
        "  node 5 ← (sep_conv_5x5, 2), (sep_conv_3x3, 3)",
    ]
    headers = ["normal cells of stage 1:", "normal cells of stage 2:", "normal cells of stage 3:",
               "reduction cell 1:", "reduction cell 2:"]
    assert lines[::5] == headers
    for block, cell in enumerate([N0, N1, N2, R0, R1]):
        assert lines[5 * block + 1:5 * block + 5] == [
            f"  node {node} ← ({cell[2 * node - 4][0]}, {cell[2 * node - 4][1]}), "
            f"({cell[2 * node - 3][0]}, {cell[2 * node - 3][1]})" for node in range(2, 6)]


@pytest.mark.parametrize("text", ["StagedGenotype(normal=[[", "StagedGenotype(normal=x, reduce=y)",
                                  "StagedGenotype(((]]", "StagedGenotype()", "StagedGenotype(**cells)"])
def test_genotype_lines_keep_an_unreadable_staged_string_as_one_line(text):
    assert genotype_lines(text) == [text]


@pytest.mark.parametrize("text", ["StagedGenotype(normal=5, reduce=[])", "StagedGenotype(normal=[5], reduce=[])",
                                  "StagedGenotype(normal=[[1, 2]], reduce=[])",
                                  "StagedGenotype(normal=[[('sep_conv_3x3', 0, 1)]], reduce=[])",
                                  "Genotype(normal=[(1, 2, 3)], normal_concat=range(2, 6))"])
def test_genotype_lines_keep_a_wrongly_shaped_staged_string_as_one_line(text):
    assert genotype_lines(text) == [text]


# --- from the record string to the final network (the path of harness.trial) ----------------------------

def test_record_string_to_trained_final_network(tmp_path):
    path = tmp_path / "trials" / "agnas-darts-digits-s0.json"
    write_record(path, {"method": "agnas", "space": "darts", "dataset": "digits", "budget": "smoke", "seed": 0,
                        "genotype": SPACE.to_str(STAGED)})
    text = read_record(path)["genotype"]
    assert text == STAGED_STR
    genotype = SPACE.parse(text)
    assert genotype == STAGED

    cfg = {**{k: key.default for k, key in SHARED_KEYS.items()}, "eval_layers": 7, "eval_channels": 4,
           "eval_epochs": 1}
    torch.manual_seed(0)
    batches = [(torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,)))]
    data = SimpleNamespace(info=INFO, eval_train_batches=lambda epoch: batches, test_batches=lambda: batches)
    final = FinalTraining(type(SPACE)(cfg), genotype, data, cfg, torch.device("cpu"))
    assert [cell.sources for cell in final.net.cells] == \
        [[source for _, source in CELLS[name]] for name in POSITION_TABLE[7]]
    assert final.net.auxiliary  # auxiliary_weight 0.4
    before = [p.detach().clone() for p in final.net.parameters()]
    metrics = final.train_epoch(0)
    assert np.isfinite(metrics["train_loss"])
    assert any(not torch.equal(b, p) for b, p in zip(before, final.net.parameters()))
    test_loss, test_acc = final.test()
    assert np.isfinite(test_loss) and 0.0 <= test_acc <= 100.0
