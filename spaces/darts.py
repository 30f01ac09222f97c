"""The DARTS cell search space (Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019).

A network is a stack of cells; every normal cell shares one architecture, every reduction cell another.
A cell has two input nodes (the outputs of the previous two cells), four intermediate nodes and an output
that concatenates the intermediate nodes. Intermediate node ``k`` (2..5) may read every earlier node, so a
cell has 2 + 3 + 4 + 5 = 14 edges, numbered in DARTS order: node 2's edges from nodes 0, 1; node 3's from
0, 1, 2; node 4's from 0..3; node 5's from 0..4. A genotype keeps two of a node's incoming edges with one
op each.

The space never knows which method searches it: for every edge of the supernet it calls the method's
``edge_factory`` with the edge's identity and its candidate ops, and uses whatever module comes back.

A final network may also give its cells their own genotypes (``CellsGenotype``), derived from per-cell scores
(``derive_cells``: a method that scores every search cell on its own, such as AGNAS). The space's key
``stage_cells`` (a pair has it when its method scores per cell) says how: one cell per stage — three normal
cells, one for each stage (the normal cells before the first reduction, between the two reductions, after
the second), and the two reduction cells; string ``StagedGenotype(...)`` — or, with ``stage_cells=each``, one
cell per position of the final network (which then has as many cells as the search network); string
``PerCellGenotype(...)``. ``search_stage_cells`` says which search cells supply them.
"""

from __future__ import annotations

import ast
import math
import operator
from collections import namedtuple
from collections.abc import Callable
from functools import reduce
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn

from harness.core.config import Key
from harness.core.data import DataInfo
from harness.core.errors import GenotypeError, UserError
from harness.core.registry import register_space
from spaces.base import CELL_SIZE_KEYS, EdgeFactory, EdgeId, SearchSpace, cell_budgets, cell_size, checked_scores
from spaces.ops import DARTS_OPS, OPS, FactorizedReduce, Identity, ReLUConvBN, drop_path, stem

Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")


class CellsGenotype(NamedTuple):
    """A genotype whose cells have their own architectures: ``normal`` holds normal cells and ``reduce`` the two
    reduction cells, each a list of (op, source) pairs as in ``Genotype`` (concat 2..5). ``per`` says which
    final cells each builds: ``stage`` — ``normal[k]`` builds every normal cell of stage k (three normal
    cells) — or ``cell`` — one per position of the final network, the normal cells in position order (the
    network then has exactly ``len(normal) + 2`` cells). ``repr`` is the string form."""

    normal: list
    reduce: list
    per: str = "stage"

    def __repr__(self) -> str:
        return _format_cells(self)


StagedGenotype = CellsGenotype  # the per-stage form (its default ``per``), by the name of its string
CELL_FORMS = {"stage": "StagedGenotype", "cell": "PerCellGenotype"}  # ``per`` → the string's type name
STAGES = 3
REDUCTIONS = 2
STAGE_RULES = ("first", "last")
EACH = "each"  # the stage rule that gives every position of the final network its own cell


def stage_cells_rule(rule: str) -> str:
    """The form of ``stage_cells`` (``Key.check``): a rule name or three cell indices; whether the indices are
    normal cells of the search network depends on ``search_layers`` (``DartsSpace.validate_config``)."""
    parts = [part.strip() for part in rule.split(",")]
    if rule in (*STAGE_RULES, EACH) or (len(parts) == STAGES and all(part.isdecimal() for part in parts)):
        return rule
    raise ValueError("is not valid")

STEPS = 4  # intermediate nodes per cell
NUM_EDGES = sum(2 + step for step in range(STEPS))  # 14
CONCAT = range(2, 2 + STEPS)  # the intermediate nodes, concatenated into the cell output
# The nodes of a cell as drawn (``cell_graphs``): numbered as a genotype's sources, the inputs named too.
NODE_NAMES = ("0 (c_{k-2})", "1 (c_{k-1})", *(str(n) for n in CONCAT))
STEM_MULTIPLIER = 3

_FIELDS = Genotype._fields
_EXPECTED_FORM = ("expected Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ... 8 (op, source) "
                  "pairs, two per node 2..5, each source < its node, the two distinct], "
                  "normal_concat=range(2, 6), reduce=[... 8 pairs], reduce_concat=range(2, 6))")
_EXPECTED_CELLS = {
    "stage": ("expected StagedGenotype(normal=[[... 8 (op, source) pairs, two per node 2..5, each source < its node, "
              "the two distinct], [... stage 2], [... stage 3]], reduce=[[... first reduction cell], [... second]])"),
    "cell": ("expected PerCellGenotype(normal=[[... 8 (op, source) pairs, two per node 2..5, each source < its node, "
             "the two distinct], ... one per normal cell, in position order], reduce=[[... first reduction cell], "
             "[... second]])"),
}


def edge_sources() -> list[tuple[int, int]]:
    """``(node, source)`` of every edge of a cell, in edge-index order."""
    return [(node, source) for node in range(2, 2 + STEPS) for source in range(node)]


def edge_stride(reduction: bool, source: int) -> int:
    """Stride of an edge: in a reduction cell only edges leaving the two input nodes are strided (the
    intermediate nodes are already reduced)."""
    return 2 if reduction and source < 2 else 1


def reduction_positions(layers: int) -> tuple[int, int]:
    """Positions of the two reduction cells: a third and two thirds of the way up, as in DARTS."""
    return layers // 3, 2 * layers // 3


def search_stage_cells(layers: int, rule: str) -> tuple[list[int], list[int]]:
    """The search cells whose genotypes build a final network of its own cells: (the search cells that supply
    its normal cells, the two that supply its reduction cells) of a search network with ``layers`` cells (at
    least 3).

    ``rule`` picks the normal cells: ``first`` = the first normal search cell of each stage (AGNAS's reference
    assignment: cells 0, 3, 6 of 8), ``last`` = the last one (1, 4, 7 of 8), or three comma-separated indices
    of normal search cells (``"0,3,6"``; any normal cell may serve any stage) — one per stage — or ``each`` =
    every normal search cell in order, one per position (a final network of ``layers`` cells). Below 5 search
    cells a stage can have no normal cell (4 cells: normal, reduction, reduction, normal); ``first`` and
    ``last`` then reuse the cell chosen for the stage before it. The reduction cells are the search
    network's two. Refuses a bad rule with one line (``UserError``).
    """
    if layers < 3:
        raise UserError(f"a final network of its own cells needs search_layers >= 3 (two distinct reduction cells "
                        f"and a normal cell), got {layers}")
    reductions = list(reduction_positions(layers))
    if rule == EACH:
        return [c for c in range(layers) if c not in reductions], reductions
    bounds = [0, *reductions, layers]
    if rule in STAGE_RULES:
        normal: list[int] = []
        for stage in range(STAGES):
            cells = [c for c in range(bounds[stage], bounds[stage + 1]) if c not in reductions]
            normal.append((cells[0] if rule == "first" else cells[-1]) if cells else normal[-1])
        return normal, reductions
    parts = [part.strip() for part in str(rule).split(",")]
    if len(parts) != STAGES or not all(part.isdecimal() for part in parts):
        raise UserError(f"stage_cells must be {', '.join((*STAGE_RULES, EACH))} or {STAGES} comma-separated search "
                        f"cell indices such as 0,3,6, got {rule!r}")
    normal = [int(part) for part in parts]
    for cell in normal:
        if cell >= layers or cell in reductions:
            valid = [c for c in range(layers) if c not in reductions]
            raise UserError(f"stage_cells: search cell {cell} is not a normal cell of the {layers}-cell search "
                            f"network (normal cells: {', '.join(map(str, valid))})")
    return normal, reductions


def check_skeleton_stages(cfg: dict[str, Any], stages: int, what: str) -> None:
    """``check_stage_features`` of a space with DARTS's skeleton: ``SearchNetwork.forward_features`` gives the
    three stage outputs from 3 search cells on."""
    if stages != STAGES or int(cfg["search_layers"]) < STAGES:
        raise UserError(f"{what} needs search_layers >= {STAGES} (three stages to match the teacher's)")


# --- genotype strings ------------------------------------------------------------------------------------

def _bad(problem: str) -> GenotypeError:
    return GenotypeError(f"invalid DARTS genotype: {problem}; {_EXPECTED_FORM}")


def _snippet(node: ast.AST) -> str:
    """A short one-line rendering of a piece of the user's text, for error messages."""
    text = ast.unparse(node).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def _literal_int(node: ast.AST) -> int | None:
    """The value of an integer literal (optionally negated), or None; booleans are not integers here."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1, node.operand
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return sign * node.value
    return None


def parse_call_fields(text: Any, type_name: str, fields: tuple[str, ...],
                      bad: Callable[[str], GenotypeError]) -> dict[str, ast.AST]:
    """The fields of a ``type_name(...)`` call written as text, read with ``ast`` (never evaluated): fields
    as keywords or in order, each exactly once. Every problem raises ``bad(problem)``."""
    if not isinstance(text, str):
        raise bad(f"expected a string, got {type(text).__name__}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise bad(f"the text is not a Python-style {type_name}(...) expression") from None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == type_name):
        raise bad(f"the text must be a single {type_name}(...) call, got {_snippet(call)}")
    if len(call.args) > len(fields):
        raise bad(f"{type_name} takes {len(fields)} fields, got {len(call.args)} positional arguments")
    found: dict[str, ast.AST] = dict(zip(fields, call.args))
    for keyword in call.keywords:
        if keyword.arg not in fields:
            raise bad(f"unknown field {keyword.arg or '**'} (fields: {', '.join(fields)})")
        if keyword.arg in found:
            raise bad(f"field {keyword.arg} given twice")
        found[keyword.arg] = keyword.value
    missing = [field for field in fields if field not in found]
    if missing:
        raise bad(f"missing field(s) {', '.join(missing)}")
    return found


def parse_edges(field: str, node: ast.AST, bad: Callable[[str], GenotypeError] = _bad) -> list[tuple[str, int]]:
    """A list of ``(op, source)`` pairs."""
    if not isinstance(node, ast.List):
        raise bad(f"{field} must be a list of (op, source) pairs, got {_snippet(node)}")
    edges = []
    for item in node.elts:
        if not (isinstance(item, (ast.Tuple, ast.List)) and len(item.elts) == 2):
            raise bad(f"{field} entries must be (op, source) pairs, got {_snippet(item)}")
        op_node, source_node = item.elts
        if not (isinstance(op_node, ast.Constant) and isinstance(op_node.value, str)):
            raise bad(f"op names in {field} must be quoted strings, got {_snippet(op_node)}")
        source = _literal_int(source_node)
        if source is None:
            raise bad(f"sources in {field} must be integers, got {_snippet(source_node)}")
        edges.append((op_node.value, source))
    return edges


def _parse_concat(field: str, node: ast.AST) -> range | list[int]:
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords and 1 <= len(node.args) <= 3):
        bounds = [_literal_int(arg) for arg in node.args]
        if all(bound is not None for bound in bounds) and bounds[-1] != 0:
            return range(*bounds)  # type: ignore[arg-type]
    elif isinstance(node, (ast.List, ast.Tuple)):
        values = [_literal_int(elt) for elt in node.elts]
        if all(value is not None for value in values):
            return values  # type: ignore[return-value]
    raise _bad(f"{field} must be range(2, 6) or a list of node indices, got {_snippet(node)}")


def _bad_cells(per: str) -> Callable[[str], GenotypeError]:
    what = "staged" if per == "stage" else "per-cell"
    return lambda problem: GenotypeError(f"invalid DARTS {what} genotype: {problem}; {_EXPECTED_CELLS[per]}")


def _cell_counts(per: str, normal: int) -> bool:
    """Whether a ``CellsGenotype`` of form ``per`` may hold ``normal`` normal cells (and two reduction cells)."""
    return normal == STAGES if per == "stage" else normal >= 1


def _check_cell(field: str, edges: list[tuple[str, int]], op_names: tuple[str, ...],
                bad: Callable[[str], GenotypeError] = _bad) -> None:
    if len(edges) != 2 * STEPS:
        raise bad(f"{field} has {len(edges)} (op, source) pairs, need {2 * STEPS}")
    for j, (op, source) in enumerate(edges):
        if op == "none":
            raise bad(f"{field}[{j}] uses 'none', which a genotype cannot choose")
        if op not in op_names:
            raise bad(f"{field}[{j}] has unknown op {op!r} (valid: {', '.join(n for n in op_names if n != 'none')})")
        node = 2 + j // 2
        if not 0 <= source < node:
            raise bad(f"{field}[{j}] belongs to node {node}, so its source must be in 0..{node - 1}, "
                      f"got {source}")
    for node in range(2, 2 + STEPS):
        first, second = edges[2 * (node - 2)][1], edges[2 * (node - 2) + 1][1]
        if first == second:
            raise bad(f"node {node} of {field} uses source {first} twice; its two sources must differ")


def _check_concat(field: str, concat: Any) -> None:
    # A range compares with CONCAT without being materialised (the user may write range(0, 10**12)).
    if isinstance(concat, range):
        valid = concat == CONCAT
    else:
        valid = isinstance(concat, (list, tuple)) and list(concat) == list(CONCAT)
    if not valid:
        raise _bad(f"{field} must be the intermediate nodes 2..5, got {concat!r}"[:400])


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_edge_list(field: str, edges: Any, op_names: tuple[str, ...], bad: Callable[[str], GenotypeError]) -> None:
    if not (isinstance(edges, (list, tuple)) and all(
            isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], str) and _is_int(e[1]) for e in edges)):
        raise bad(f"{field} must be a list of (op name, integer source) pairs")
    _check_cell(field, [(op, int(source)) for op, source in edges], op_names, bad)


def _check_genotype(genotype: Any, op_names: tuple[str, ...]) -> None:
    if isinstance(genotype, CellsGenotype):
        if genotype.per not in CELL_FORMS:
            raise _bad(f"a CellsGenotype is per {' or per '.join(CELL_FORMS)}, got per={genotype.per!r}")
        bad = _bad_cells(genotype.per)
        for group in CellsGenotype._fields[:2]:
            cells = getattr(genotype, group)
            if not isinstance(cells, (list, tuple)):
                raise bad(f"{group} must be a list of cells")
            if not (_cell_counts(genotype.per, len(cells)) if group == "normal" else len(cells) == REDUCTIONS):
                raise bad(f"{group} must hold {_count_text(genotype.per, group)}")
            for k, edges in enumerate(cells):
                _check_edge_list(f"{group}[{k}]", edges, op_names, bad)
        return
    if not isinstance(genotype, Genotype):
        raise _bad(f"not a Genotype: {type(genotype).__name__}")
    for group in ("normal", "reduce"):
        _check_edge_list(group, getattr(genotype, group), op_names, _bad)
        _check_concat(f"{group}_concat", getattr(genotype, f"{group}_concat"))


def _count_text(per: str, group: str) -> str:
    if group == "reduce":
        return f"{REDUCTIONS} cells"
    return f"{STAGES} cells" if per == "stage" else "at least 1 cell"


def _parse_cells(text: str, per: str, op_names: tuple[str, ...]) -> CellsGenotype:
    bad = _bad_cells(per)
    fields = parse_call_fields(text, CELL_FORMS[per], CellsGenotype._fields[:2], bad)
    values = {}
    for group in CellsGenotype._fields[:2]:
        node = fields[group]
        count = len(node.elts) if isinstance(node, ast.List) else -1
        if not (_cell_counts(per, count) if group == "normal" else count == REDUCTIONS):
            raise bad(f"{group} must be a list of {_count_text(per, group)}, got {_snippet(node)}")
        cells = []
        for k, cell in enumerate(node.elts):  # type: ignore[attr-defined]
            edges = parse_edges(f"{group}[{k}]", cell, bad)
            _check_cell(f"{group}[{k}]", edges, op_names, bad)
            cells.append(edges)
        values[group] = cells
    return CellsGenotype(**values, per=per)


def check_cells_fit(genotype: Any, layers: int) -> None:
    """Refuse (``GenotypeError``, one line) a per-cell genotype for a network of another number of cells."""
    if isinstance(genotype, CellsGenotype) and genotype.per == "cell":
        cells = len(genotype.normal) + REDUCTIONS
        if layers != cells:
            raise GenotypeError(f"a PerCellGenotype of {cells} cells builds a network of {cells} cells, not {layers}")


def cell_genotype(genotype: Any, position: int, layers: int) -> Any:
    """The genotype that builds the final network's cell at ``position`` of ``layers``.

    For a ``CellsGenotype`` that is a ``Genotype`` whose two cells are both the one of this position (per
    stage — normal cells: the stage's normal cell; a reduction cell: its own — or per cell: its own), so the
    cell reads it whatever its type; any other genotype builds every cell as it is.
    """
    if not isinstance(genotype, CellsGenotype):
        return genotype
    reductions = reduction_positions(layers)
    if position in reductions:
        edges = genotype.reduce[reductions.index(position)]
    elif genotype.per == "stage":
        edges = genotype.normal[sum(position > r for r in set(reductions))]
    else:
        edges = genotype.normal[position - sum(position > r for r in reductions)]  # normal cells in order
    return Genotype(normal=edges, normal_concat=CONCAT, reduce=edges, reduce_concat=CONCAT)


def _format_edges(edges: list[tuple[str, int]]) -> str:
    return "[" + ", ".join(f"({str(op)!r}, {int(source)})" for op, source in edges) + "]"


def _format_cells(genotype: CellsGenotype) -> str:
    def cells(group: str) -> str:
        return "[" + ", ".join(_format_edges(edges) for edges in getattr(genotype, group)) + "]"
    return f"{CELL_FORMS.get(genotype.per, 'CellsGenotype')}(normal={cells('normal')}, reduce={cells('reduce')})"


# --- networks ------------------------------------------------------------------------------------------

def _preprocess(C_prev_prev: int, C_prev: int, C: int, reduction_prev: bool,
                affine: bool) -> tuple[nn.Module, nn.Module]:
    """Bring both cell inputs to ``C`` channels and the same size.

    After a reduction cell the older input (two cells back) is twice as large, so it is factorized-reduced.
    """
    if reduction_prev:
        preprocess0: nn.Module = FactorizedReduce(C_prev_prev, C, affine=affine)
    else:
        preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=affine)
    preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=affine)
    return preprocess0, preprocess1


def _search_candidates(C: int, stride: int, op_names: tuple[str, ...]) -> nn.ModuleList:
    """The candidate ops of one supernet edge, in ``op_names`` order.

    Pooling has no BN of its own; DARTS follows it with BN(affine=False) so its output scale matches the
    conv ops' and the architecture weights compare like with like.
    """
    candidates = []
    for name in op_names:
        op = OPS[name](C, stride, False)
        if "pool" in name:
            op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
        candidates.append(op)
    return nn.ModuleList(candidates)


def edge_id(space: SearchSpace, group: str, index: int, cell: int, channels: int) -> tuple[EdgeId, tuple[str, ...]]:
    """The identity of a supernet edge and the names of its candidates (``space.edge_ops``)."""
    ops = tuple(space.edge_ops(group, index))
    names = tuple(space.op_names[o] for o in ops)
    return EdgeId(group=group, index=index, cell=cell, channels=channels, ops=ops), names


class SearchCell(nn.Module):
    """A supernet cell: every one of the 14 edges carries its candidate ops (``space.edge_ops``: all of them in
    the DARTS space), combined by the method."""

    def __init__(self, edge_factory: EdgeFactory, cell: int, C_prev_prev: int, C_prev: int, C: int,
                 reduction: bool, reduction_prev: bool, space: SearchSpace):
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = _preprocess(C_prev_prev, C_prev, C, reduction_prev, affine=False)
        group = "reduce" if reduction else "normal"
        edges = []
        for index, (_, source) in enumerate(edge_sources()):
            edge, names = edge_id(space, group, index, cell, C)
            edges.append(edge_factory(edge, self.candidates(C, edge_stride(reduction, source), names)))
        self.edges = nn.ModuleList(edges)

    def candidates(self, C: int, stride: int, op_names: tuple[str, ...]) -> nn.ModuleList:
        """The candidate ops of one edge (a subclass may wrap them: the heterogeneous space does)."""
        return _search_candidates(C, stride, op_names)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(STEPS):
            # reduce, not sum: sum would start with 0 + the first edge's output, one tensor addition more
            node = reduce(operator.add, (self.edges[offset + j](h) for j, h in enumerate(states)))
            offset += len(states)
            states.append(node)
        return torch.cat(states[-STEPS:], dim=1)


class SearchNetwork(nn.Module):
    """The DARTS search network: stem, ``layers`` search cells, global average pool, linear classifier.

    The stem BN is affine, as in the DARTS code; every BN inside the cells is affine=False.
    ``forward(x)`` returns logits. ``cell_cls`` (default ``SearchCell``) lets a space with DARTS's skeleton
    but another cell (the heterogeneous space) reuse it.
    """

    def __init__(self, edge_factory: EdgeFactory, info: DataInfo, layers: int, C: int,
                 space: SearchSpace, cell_cls: type[nn.Module] | None = None):
        super().__init__()
        C_curr = STEM_MULTIPLIER * C
        self.stem = stem(info.in_channels, C_curr)
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        reductions = reduction_positions(layers)
        cells = []
        reduction_prev = False
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                C_curr *= 2
            cells.append((cell_cls or SearchCell)(edge_factory, i, C_prev_prev, C_prev, C_curr, reduction,
                                                  reduction_prev, space))
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, STEPS * C_curr
        self.cells = nn.ModuleList(cells)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, info.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and the feature maps at the end of each of the three stages (the last cell before each
        reduction and the last cell), for attention transfer."""
        first, second = reduction_positions(len(self.cells))
        ends = {first - 1, second - 1, len(self.cells) - 1}
        features = []
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i in ends:
                features.append(s1)
        out = self.global_pooling(s1)
        return self.classifier(out.flatten(1)), features


class EvalCell(nn.Module):
    """A final-network cell: each intermediate node sums the two ops the genotype chose for it."""

    def __init__(self, genotype: Genotype, C_prev_prev: int, C_prev: int, C: int, reduction: bool,
                 reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = _preprocess(C_prev_prev, C_prev, C, reduction_prev, affine=True)
        edges = genotype.reduce if reduction else genotype.normal
        self.concat = list(genotype.reduce_concat if reduction else genotype.normal_concat)
        self.sources = [source for _, source in edges]
        self.ops = nn.ModuleList(
            OPS[name](C, edge_stride(reduction, source), True) for name, source in edges)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for step in range(STEPS):
            node = 0
            for j in (2 * step, 2 * step + 1):
                op = self.ops[j]
                h = op(states[self.sources[j]])
                # Identity is never dropped: dropping it would cut the skip path drop-path is meant to keep.
                if self.training and drop_prob > 0.0 and not isinstance(op, Identity):
                    h = drop_path(h, drop_prob)
                node = node + h
            states.append(node)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS's CIFAR auxiliary classifier, made to work for any spatial size.

    DARTS assumes an 8×8 input: ReLU → AvgPool(5, stride 3) → 2×2 → 1×1 conv to 128 → BN → ReLU → 2×2 conv
    to 768 → 1×1 → BN → ReLU → Linear. That exact head is kept whenever the pool yields at least 2×2
    (input ≥ 8×8, e.g. CIFAR). For smaller inputs (the bundled 8×8 digits reach the head at 2×2) the
    AvgPool(5, 3) would yield nothing or a 1×1 map the 2×2 conv cannot take, so it is replaced by
    AdaptiveAvgPool2d(2), which gives the 2×2 map the conv expects from any input ≥ 1×1. An adaptive pool to
    1×1 before the linear layer is a no-op in the CIFAR case and covers larger inputs.
    """

    def __init__(self, C: int, num_classes: int, input_size: int):
        super().__init__()
        if input_size >= 8:
            pool: nn.Module = nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False)
        else:
            pool = nn.AdaptiveAvgPool2d(2)
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            pool,
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class EvalNetwork(nn.Module):
    """The DARTS evaluation network (NetworkCIFAR) for one genotype (or one cell per stage:
    ``StagedGenotype``).

    ``forward(x)`` returns ``(logits, aux_logits)``; ``aux_logits`` is None unless the network has an
    auxiliary head and is training. The trainer sets ``drop_path_prob`` (default 0.0). ``cell_cls`` (default
    ``EvalCell``) builds the cells from the genotype; it must expose ``concat``.
    """

    def __init__(self, genotype: Genotype, info: DataInfo, layers: int, C: int, auxiliary: bool,
                 cell_cls: type[nn.Module] | None = None):
        super().__init__()
        self.layers = layers
        self.auxiliary = auxiliary
        self.drop_path_prob = 0.0
        self.aux_position = 2 * layers // 3
        C_curr = STEM_MULTIPLIER * C
        self.stem = stem(info.in_channels, C_curr)
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        reductions = reduction_positions(layers)
        size = info.image_size  # the stem keeps the size; each reduction halves it, rounding up
        cells = []
        reduction_prev = False
        C_aux, size_aux = C_prev, size
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                C_curr *= 2
                size = math.ceil(size / 2)
            cells.append((cell_cls or EvalCell)(cell_genotype(genotype, i, layers), C_prev_prev, C_prev, C_curr,
                                                reduction, reduction_prev))
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, len(cells[-1].concat) * C_curr
            if i == self.aux_position:
                C_aux, size_aux = C_prev, size
        self.cells = nn.ModuleList(cells)
        if auxiliary:
            self.auxiliary_head = AuxiliaryHead(C_aux, info.num_classes, size_aux)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, info.num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        aux_logits = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_position and self.auxiliary and self.training:
                aux_logits = self.auxiliary_head(s1)
        out = self.global_pooling(s1)
        return self.classifier(out.flatten(1)), aux_logits


# --- the space -----------------------------------------------------------------------------------------

@register_space
class DartsSpace(SearchSpace):
    """The DARTS cell space: shared normal and reduction cells, 14 edges × 8 ops each (or, derived from
    per-cell scores, cells of their own: ``derive_cells``)."""

    name = "darts"
    description = "DARTS cells: 4 nodes, 14 edges x 8 ops, shared normal and reduction cells"
    features = frozenset({"sample", "edges", "tensor-ops", "uniform-ops", "cells", "stage-features",
                          "encoding"})
    op_names = DARTS_OPS
    size_keys = CELL_SIZE_KEYS
    cell_keys: ClassVar[dict[str, Key]] = {
        "stage_cells": Key("first", "darts, per-cell scores (AGNAS): search cell of each stage's normal "
                                    "cells: 'first' (AGNAS's reference: 0,3,6 of 8), 'last', three indices 'a,b,c', "
                                    "or 'each' (one cell per position; eval_layers = search_layers); reduction "
                                    "cells: the two search reduction cells",
                           check=stage_cells_rule,
                           valid=f"{', '.join((*STAGE_RULES, EACH))} or {STAGES} comma-separated indices of normal "
                                 "search cells such as 0,3,6"),
    }
    defaults: ClassVar[dict[str, Any]] = {"search_layers": 8, "search_channels": 16,
                                          "eval_layers": 20, "eval_channels": 36}
    budgets: ClassVar[dict[str, dict[str, Any]]] = cell_budgets()

    @classmethod
    def validate_config(cls, cfg: dict[str, Any]) -> None:
        """The base rule, and the stage rule of a per-cell derivation against the search and final networks."""
        super().validate_config(cfg)
        if "stage_cells" in cfg:
            search_stage_cells(int(cfg["search_layers"]), cfg["stage_cells"])
            if cfg["stage_cells"] == EACH and cfg["eval_layers"] != cfg["search_layers"]:
                raise UserError(f"stage_cells=each gives every cell of the final network its own search cell, so it "
                                f"needs eval_layers = search_layers, got {cfg['eval_layers']} and "
                                f"{cfg['search_layers']}")

    @classmethod
    def check_stage_features(cls, cfg: dict[str, Any], stages: int, what: str) -> None:
        check_skeleton_stages(cfg, stages, what)

    # --- topology -------------------------------------------------------------------------------
    def arch_shape(self) -> dict[str, tuple[int, int]]:
        return {"normal": (NUM_EDGES, len(self.op_names)), "reduce": (NUM_EDGES, len(self.op_names))}

    def choice_units(self, group: str) -> list[tuple[int, ...]]:
        """The incoming edges of each intermediate node (a genotype keeps two of them)."""
        units: dict[int, list[int]] = {}
        for index, (node, _) in enumerate(edge_sources()):
            units.setdefault(node, []).append(index)
        return [tuple(edges) for edges in units.values()]

    def encoding_units(self, group: str) -> list[tuple[str, tuple[int, ...], int]]:
        """Each intermediate node keeps two of its incoming edges (``choice_units``), the node its site: a mutation
        changes one node's inputs or one of its kept ops, as Real et al. (2019) mutate a DARTS-like cell."""
        return [(f"node {2 + k}", unit, 2) for k, unit in enumerate(self.choice_units(group))]

    def choice_ops(self, group: str, index: int) -> tuple[int, ...]:
        """Every candidate but ``none``: choosing it would remove the edge."""
        return tuple(op for op in self.edge_ops(group, index) if self.op_names[op] != "none")

    # --- networks -------------------------------------------------------------------------------
    def build_supernet(self, edge_factory: EdgeFactory, info: DataInfo) -> nn.Module:
        return SearchNetwork(edge_factory, info, *cell_size(self, "search"), self)

    def build_final_supernet(self, edge_factory: EdgeFactory, info: DataInfo) -> nn.Module:
        """``eval_layers`` cells at ``search_channels``: its per-cell genotype (``derive_cells`` without a stage rule)
        builds the final network cell for cell."""
        return SearchNetwork(edge_factory, info, cell_size(self, "eval")[0], cell_size(self, "search")[1], self)

    def build_network(self, genotype: Genotype | CellsGenotype, info: DataInfo, size: str = "eval",
                      auxiliary: bool = False) -> nn.Module:
        """The final network: every cell of a type from the one ``Genotype``, or each cell from its own cell of
        a ``CellsGenotype`` (per stage, or per cell: then the network has the genotype's number of cells)."""
        _check_genotype(genotype, self.op_names)
        layers, channels = cell_size(self, size)
        check_cells_fit(genotype, layers)
        return EvalNetwork(genotype, info, layers, channels, auxiliary)

    # --- genotypes ------------------------------------------------------------------------------
    def derive(self, scores: dict[str, np.ndarray]) -> Genotype:
        """The DARTS derivation rule (``derive_cell``) on the normal and the reduction scores."""
        for group in self.arch_shape():
            if group not in scores:
                raise ValueError(f"derive needs scores for '{group}', got {sorted(scores)}")
        return Genotype(normal=self.derive_cell(scores["normal"], "normal", "normal"), normal_concat=CONCAT,
                        reduce=self.derive_cell(scores["reduce"], "reduce", "reduce"), reduce_concat=CONCAT)

    def stage_rule(self) -> str:
        """The configuration's ``stage_cells``; a pair without the key scores the final network's own cells
        (``build_final_supernet``: ADWPNAS), so every scored cell builds its position (``each``)."""
        return self.cfg.get("stage_cells", EACH)

    def derive_cells(self, scores: dict[int, np.ndarray], groups: dict[int, str]) -> CellsGenotype:
        """Cells of their own: the DARTS rule on each supplying search cell's scores, the supplying cells chosen
        by the stage rule (``search_stage_cells``) — per stage, or per position with ``each``."""
        rule = self.stage_rule()
        normal, reduce = search_stage_cells(len(scores), rule)
        return CellsGenotype(normal=[self.derive_cell(scores[c], f"cell {c}", groups[c]) for c in normal],
                             reduce=[self.derive_cell(scores[c], f"cell {c}", groups[c]) for c in reduce],
                             per="cell" if rule == EACH else "stage")

    def describe_cells(self, scores: dict[int, np.ndarray], groups: dict[int, str]) -> dict[str, Any]:
        """Every search cell's own genotype and the final cells it built, and the stage rule's assignment."""
        rule = self.stage_rule()
        normal, reduce = search_stage_cells(len(scores), rule)
        cells = {}
        for cell in sorted(scores):
            if rule == EACH:
                used = [f"final cell {cell}"] if cell in normal or cell in reduce else []
            else:
                used = ([f"normal cells of stage {k + 1}" for k, c in enumerate(normal) if c == cell]
                        + [f"reduction cell {k + 1}" for k, c in enumerate(reduce) if c == cell])
            cells[cell] = {"genotype": [list(pair) for pair in self.derive_cell(scores[cell], f"cell {cell}",
                                                                                  groups[cell])],
                           "used_for": used}
        return {"cells": cells, "stage_cells": {"rule": rule, "normal": normal, "reduce": reduce}}

    def derive_cell(self, scores: np.ndarray, name: str = "scores", group: str = "normal") -> list[tuple[str, int]]:
        """The DARTS derivation rule for one cell's ``[14, ops]`` scores (of a cell of ``group``), made
        deterministic.

        For each intermediate node, an incoming edge's strength is its highest score over the ops a genotype
        may choose there (``choice_ops``: ``none`` is ignored entirely, choosing it would remove the edge). The
        two strongest edges are kept, strongest first; equal strengths go to the lower source index. On each
        kept edge the op is the best of those ops; equal scores go to the op earlier in ``op_names``.
        """
        matrix = checked_scores(scores, name, (NUM_EDGES, len(self.op_names)))
        edges: list[tuple[str, int]] = []
        start = 0
        for node in range(2, 2 + STEPS):
            choices = [self.choice_ops(group, start + source) for source in range(node)]
            rows = [matrix[start + source, list(ops)] for source, ops in enumerate(choices)]
            strength = [row.max() for row in rows]
            # np.argmax and the stable sort both favour the first index: the tie-breaks documented above.
            ranked = sorted(range(node), key=lambda source: -strength[source])
            for source in ranked[:2]:
                best = choices[source][int(np.argmax(rows[source]))]
                edges.append((self.op_names[best], source))
            start += node
        return edges

    def sample(self, rng: np.random.Generator) -> Genotype:
        """A uniform random genotype: per node two distinct sources, each with a uniform op among those a
        genotype may choose on its edge (``choice_ops``).

        The two entries of a node are ordered by source index. Uses only ``rng``, so equal generator states
        give equal genotypes.
        """
        cells = {}
        for group in ("normal", "reduce"):
            edges = []
            start = 0
            for node in range(2, 2 + STEPS):
                sources = sorted(int(s) for s in rng.choice(node, size=2, replace=False))
                choices = [self.choice_ops(group, start + source) for source in sources]
                ops = rng.integers(0, [len(c) for c in choices])
                edges += [(self.op_names[c[int(op)]], source) for c, op, source in zip(choices, ops, sources)]
                start += node
            cells[group] = edges
        return Genotype(normal=cells["normal"], normal_concat=CONCAT,
                        reduce=cells["reduce"], reduce_concat=CONCAT)

    def parse(self, text: str) -> Genotype | CellsGenotype:
        """Genotype from its DARTS repr form, read with ``ast`` (never evaluated).

        Accepts ``Genotype(normal=[(op, source), ...], normal_concat=range(2, 6), reduce=[...],
        reduce_concat=range(2, 6))`` with the fields as keywords or in order; concat may also be a list of
        node indices. Cells of their own read ``StagedGenotype(normal=[[(op, source), ...], [...], [...]],
        reduce=[[...], [...]])`` (per stage) or ``PerCellGenotype(normal=[[...], ...], reduce=[[...], [...]])``
        (per cell). Every problem raises ``GenotypeError`` with one line.
        """
        if isinstance(text, str):
            for per, type_name in CELL_FORMS.items():
                if text.lstrip().startswith(f"{type_name}("):
                    return _parse_cells(text, per, self.op_names)
        fields = parse_call_fields(text, "Genotype", _FIELDS, _bad)
        values: dict[str, Any] = {}
        for group in ("normal", "reduce"):
            edges = parse_edges(group, fields[group])
            _check_cell(group, edges, self.op_names)
            _check_concat(f"{group}_concat", _parse_concat(f"{group}_concat", fields[f"{group}_concat"]))
            values[group], values[f"{group}_concat"] = edges, CONCAT
        return Genotype(**values)

    def to_str(self, genotype: Genotype | CellsGenotype) -> str:
        """The DARTS repr form, e.g. ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6),
        reduce=[...], reduce_concat=range(2, 6))``, ``StagedGenotype(normal=[[...], [...], [...]],
        reduce=[[...], [...]])`` or ``PerCellGenotype(normal=[[...], ...], reduce=[[...], [...]])``; raises
        ``GenotypeError`` for an invalid genotype."""
        _check_genotype(genotype, self.op_names)
        if isinstance(genotype, CellsGenotype):
            return _format_cells(genotype)
        return (f"Genotype(normal={_format_edges(genotype.normal)}, normal_concat=range(2, 6), "
                f"reduce={_format_edges(genotype.reduce)}, reduce_concat=range(2, 6))")

    def cell_graphs(self, genotype: Genotype | CellsGenotype) -> dict[str, list[tuple[str, str, str]]]:
        """Every distinct cell of the genotype as ``(source, target, op)`` edges, its nodes numbered as the
        genotype's sources and ``python -m harness show`` number them: the inputs ``"0 (c_{k-2})"`` and
        ``"1 (c_{k-1})"``, the intermediate nodes ``"2"``..``"5"`` and the output ``c_{k}``, fed by every
        concatenated node with op ``concat``. A ``Genotype`` gives ``normal`` and ``reduce``; a per-stage
        ``CellsGenotype`` gives ``stage 1 normal``, ``reduction 1``, ``stage 2 normal``, ``reduction 2``,
        ``stage 3 normal``; a per-cell one ``cell 0 (normal)``, ... ``cell i (reduction)`` in network order."""
        _check_genotype(genotype, self.op_names)
        names = NODE_NAMES

        def graph(edges: list[tuple[str, int]], concat: Any) -> list[tuple[str, str, str]]:
            return ([(names[int(source)], names[2 + j // 2], op) for j, (op, source) in enumerate(edges)]
                    + [(names[int(node)], "c_{k}", "concat") for node in concat])

        if not isinstance(genotype, CellsGenotype):
            return {"normal": graph(genotype.normal, genotype.normal_concat),
                    "reduce": graph(genotype.reduce, genotype.reduce_concat)}
        if genotype.per == "stage":
            order = [("stage 1 normal", genotype.normal[0]), ("reduction 1", genotype.reduce[0]),
                     ("stage 2 normal", genotype.normal[1]), ("reduction 2", genotype.reduce[1]),
                     ("stage 3 normal", genotype.normal[2])]
        else:
            layers = len(genotype.normal) + REDUCTIONS
            reductions = reduction_positions(layers)
            order = [(f"cell {p} (reduction)", genotype.reduce[reductions.index(p)]) if p in reductions
                     else (f"cell {p} (normal)", cell_genotype(genotype, p, layers).normal) for p in range(layers)]
        return {name: graph(edges, CONCAT) for name, edges in order}

    def edge_labels(self, group: str) -> list[str]:
        """``"source→node"`` of every edge row (``edge_sources()``): ``0→2``, ``1→2``, ``0→3``, ... ``4→5``."""
        return [f"{source}→{node}" for node, source in edge_sources()]

    # --- genotype choices -----------------------------------------------------------------------
    def edge_choices(self, genotypes: list[Genotype]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per cell type, the 8 (op, source) pairs of each genotype: the j-th pair's edge row is that of
        (node 2 + j // 2, source) in ``edge_sources()``. A ``StagedGenotype`` is refused: its cells differ
        per stage, so it makes no single choice per shared edge."""
        row_of = {pair: row for row, pair in enumerate(edge_sources())}
        choices = {}
        for group in ("normal", "reduce"):
            rows, ops = [], []
            for genotype in genotypes:
                if isinstance(genotype, StagedGenotype):
                    raise ValueError(f"a {CELL_FORMS[genotype.per]} has no single choice per shared edge: its "
                                     "cells differ")
                _check_genotype(genotype, self.op_names)
                cell = getattr(genotype, group)
                rows.append([row_of[(2 + j // 2, int(source))] for j, (_, source) in enumerate(cell)])
                ops.append([self.op_names.index(op) for op, _ in cell])
            shape = (len(genotypes), 2 * STEPS)
            choices[group] = (np.array(rows, dtype=np.int64).reshape(shape),
                              np.array(ops, dtype=np.int64).reshape(shape))
        return choices
