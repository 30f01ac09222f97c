"""NOS's heterogeneous operator space (Neural Operator Search, journal version, Sec. 3 and Fig. 2).

DARTS's skeleton (stem, cells with two input nodes and four inner nodes, reductions at 1/3 and 2/3,
output = concat of the inner nodes, auxiliary head and drop-path in the final network) with a different
cell: each inner node k is a **heterogeneous residual block** over 11 ops in three families (``OP_FAMILY``:
7 feature ops, 2 attention ops, 2 dynamic convolutions; no ``none``).

- Tier 1 (individual), one edge i→k' from every earlier node i (14 edges, DARTS order and strides):
  F = Σ_i o_f(F_i) (Eq. 2), A = Σ_i o_a(F_i) (Eq. 3), D = {o_d(F_i)} (Eq. 4), and the surrogate node
  F_k' = F ⊕ (F ⊙ A) ⊕ Σ_D F ⊗ D (Eq. 5).
- Tier 2 (collective), one edge k'→k (4 edges, stride 1): the same three families on F_k' alone and
  F_k = F2 ⊕ (F2 ⊙ A2) ⊕ Σ F2 ⊗ D2 (Eqs. 6–9).

The architecture matrix of a cell type is 18 × 11 (rows 0–13 the tier-1 edges in DARTS order, rows 14–17
the tier-2 edges of nodes 2–5); normal and reduction cells each have one.

Our choices (the papers leave them open):

- **Every candidate op returns a ``Contribution``** (feature, attention, weighted kernels), so that the
  method's edge combination — DARTS's Σ_o w_o·o(x), GDAS's one sampled op — works unchanged: weighting a
  contribution weights each of its parts, and contributions add family by family. In the supernet each
  op's output is therefore weighted by its softmax weight inside its own family's sum: F = Σ w·o_f,
  A = Σ w·o_a, and each dynamic kernel enters as w·D, i.e. w·(F ⊗ D) since ⊗ is linear in the kernel.
- **Tier-2 non-feature ops carry their input as the feature.** Eq. 9 calibrates a feature F2, but a
  tier-2 edge keeps one op: when it is an attention or dynamic op there is no o_f. We take F2 = F_k' then
  (F_k = F_k' ⊕ F_k' ⊙ A2, a residual attention), and in the supernet an attention or dynamic op on a tier-2
  edge adds w·F_k' to the feature sum, so discretising the edge to that op gives exactly the derived block.
  Tier-1 attention and dynamic ops carry no feature (Eq. 2 sums feature ops only).
- **Spatial and channel attention add by broadcasting** ([N, 1, H, W] + [N, C, 1, 1] → [N, C, H, W]).
- **Drop-path** (final network) applies to the outputs of the tier-1 feature ops except identity, as in
  DARTS; attention maps, kernels and the tier-2 op are not dropped. (When a node's only tier-1 feature op is
  dropped, its attention and dynamic terms vanish with it: they calibrate that feature.)
- **Derivation** (paper: "top-2 strongest incoming operations with at least one feature operation for the
  first tier, the top-1 for the second"): for each inner node, the two tier-1 choices are on two distinct
  edges (Fig. 4: a block takes two inputs F_i, F_j), one op each, maximising the sum of their scores
  subject to at least one being a feature op; ties go to the earlier pair of edges (then the earlier op).
  Tier 2: the best op on the node's tier-2 edge (ties: earlier op).

Genotype string: ``HeteroGenotype(normal=[(op, source) × 8], normal_tier2=[op × 4], reduce=[...],
reduce_tier2=[...])``, two (op, source) pairs per node in source order, read with ``ast``.
"""

from __future__ import annotations

import ast
import itertools
import operator
from collections import namedtuple
from functools import reduce
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.core.data import DataInfo
from harness.core.errors import GenotypeError
from harness.core.registry import register_space
from spaces.base import CELL_SIZE_KEYS, EdgeFactory, SearchSpace, cell_budgets, cell_size, checked_scores
from spaces.darts import (
    CONCAT,
    NODE_NAMES,
    NUM_EDGES,
    STEPS,
    EvalNetwork,
    SearchNetwork,
    _preprocess,
    _search_candidates,
    _snippet,
    check_skeleton_stages,
    edge_id,
    edge_sources,
    edge_stride,
    parse_call_fields,
    parse_edges,
)
from spaces.darts import SearchCell as DartsSearchCell
from spaces.ops import HETERO_OPS, OP_FAMILY, OPS, Identity, drop_path, dynamic_depthwise

HeteroGenotype = namedtuple("HeteroGenotype", "normal normal_tier2 reduce reduce_tier2")
_FIELDS = HeteroGenotype._fields
TIER2_OFFSET = NUM_EDGES  # rows 14..17: the tier-2 edges of nodes 2..5
NUM_ROWS = NUM_EDGES + STEPS  # 18
_EXPECTED = ("expected HeteroGenotype(normal=[('sep_conv_3x3', 0), ('channel_attention', 1), ... 8 (op, source) "
             "pairs, two per node 2..5 with distinct sources < the node in increasing order, at least one a feature "
             "op], normal_tier2=['identity', ... 4 ops], reduce=[...], reduce_tier2=[...])")


def _bad(problem: str) -> GenotypeError:
    return GenotypeError(f"invalid heterogeneous genotype: {problem}; {_EXPECTED}")


# --- contributions ---------------------------------------------------------------------------------------

class Contribution:
    """What one op (or a weighted sum of ops) adds to a block: a feature tensor, an attention tensor and a
    list of dynamic kernels, each possibly absent. Scaling by a weight scales every part; adding adds the
    parts family by family (kernels are collected, since each is applied to the feature separately).
    A plain tensor or number added to a contribution is added to its feature (GDAS adds its zero-valued
    straight-through terms that way)."""

    __slots__ = ("feature", "attention", "kernels")

    def __init__(self, feature: torch.Tensor | None = None, attention: torch.Tensor | None = None,
                 kernels: list[torch.Tensor] | None = None):
        self.feature, self.attention, self.kernels = feature, attention, kernels or []

    def __mul__(self, weight: Any) -> Contribution:
        return Contribution(None if self.feature is None else self.feature * weight,
                            None if self.attention is None else self.attention * weight,
                            [k * weight for k in self.kernels])

    __rmul__ = __mul__

    def __add__(self, other: Any) -> Contribution:
        if isinstance(other, Contribution):
            return Contribution(_add(self.feature, other.feature), _add(self.attention, other.attention),
                                self.kernels + other.kernels)
        return Contribution(_add(self.feature, other), self.attention, self.kernels)

    __radd__ = __add__

    def combine(self) -> torch.Tensor:
        """F ⊕ (F ⊙ A) ⊕ Σ_D F ⊗ D (Eqs. 5 and 9).

        ⊗ is linear in the kernel, so Σ_D F ⊗ D is computed as F ⊗ Σ_D D, every kernel zero-padded to the
        largest size first (a k×k kernel padded to K×K, applied with padding K // 2, is the k×k convolution
        exactly): one depthwise convolution per block instead of one per kernel — a supernet node collects
        two kernels per incoming edge, up to ten.
        """
        if not isinstance(self.feature, torch.Tensor):
            raise ValueError("a heterogeneous block needs at least one feature op")
        out = self.feature
        if self.attention is not None:
            out = out + self.feature * self.attention
        if self.kernels:
            size = max(kernel.size(-1) for kernel in self.kernels)
            total = None
            for kernel in self.kernels:
                pad = (size - kernel.size(-1)) // 2
                kernel = F.pad(kernel, (pad, pad, pad, pad)) if pad else kernel
                total = kernel if total is None else total + kernel
            out = out + dynamic_depthwise(self.feature, total)
        return out


def _add(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


class FamilyOp(nn.Module):
    """Wraps a candidate op so that it returns its ``Contribution`` (see the module docstring)."""

    def __init__(self, op: nn.Module, family: str, carries_input: bool):
        super().__init__()
        self.op, self.family, self.carries_input = op, family, carries_input

    def forward(self, x: torch.Tensor) -> Contribution:
        out = self.op(x)
        if self.family == "feature":
            return Contribution(feature=out)
        carried = x if self.carries_input else None
        if self.family == "attention":
            return Contribution(feature=carried, attention=out)
        return Contribution(feature=carried, kernels=[out])


def _family_ops(ops: list[nn.Module] | nn.ModuleList, names: tuple[str, ...], tier2: bool) -> nn.ModuleList:
    return nn.ModuleList(FamilyOp(op, OP_FAMILY[name], carries_input=tier2) for op, name in zip(ops, names))


# --- cells -------------------------------------------------------------------------------------------

class SearchCell(DartsSearchCell):
    """A supernet cell: DARTS's 14 edges (tier 1) plus 4 tier-2 edges, each with all 11 candidates,
    combined by the method's edge modules into contributions."""

    def __init__(self, edge_factory: EdgeFactory, cell: int, C_prev_prev: int, C_prev: int, C: int,
                 reduction: bool, reduction_prev: bool, space: SearchSpace):
        super().__init__(edge_factory, cell, C_prev_prev, C_prev, C, reduction, reduction_prev, space)
        group = "reduce" if reduction else "normal"
        tier2 = []
        for step in range(STEPS):
            edge, names = edge_id(space, group, TIER2_OFFSET + step, cell, C)
            tier2.append(edge_factory(edge, _family_ops(_search_candidates(C, 1, names), names, tier2=True)))
        self.tier2 = nn.ModuleList(tier2)

    def candidates(self, C: int, stride: int, op_names: tuple[str, ...]) -> nn.ModuleList:
        return _family_ops(_search_candidates(C, stride, op_names), op_names, tier2=False)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for step in range(STEPS):
            surrogate = reduce(operator.add, (self.edges[offset + j](h) for j, h in enumerate(states))).combine()
            offset += len(states)
            states.append(self.tier2[step](surrogate).combine())
        return torch.cat(states[-STEPS:], dim=1)


class EvalCell(nn.Module):
    """A final-network cell: per inner node, the two tier-1 ops of the genotype and its tier-2 op."""

    def __init__(self, genotype: HeteroGenotype, C_prev_prev: int, C_prev: int, C: int, reduction: bool,
                 reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = _preprocess(C_prev_prev, C_prev, C, reduction_prev, affine=True)
        edges = genotype.reduce if reduction else genotype.normal
        tier2 = genotype.reduce_tier2 if reduction else genotype.normal_tier2
        self.concat = list(CONCAT)
        self.sources = [source for _, source in edges]
        names = tuple(name for name, _ in edges)
        self.ops = _family_ops([OPS[name](C, edge_stride(reduction, source), True) for name, source in edges],
                               names, tier2=False)
        self.tier2 = _family_ops([OPS[name](C, 1, True) for name in tier2], tuple(tier2), tier2=True)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for step in range(STEPS):
            parts = []
            for j in (2 * step, 2 * step + 1):
                part = self.ops[j](states[self.sources[j]])
                if (self.training and drop_prob > 0.0 and self.ops[j].family == "feature"
                        and not isinstance(self.ops[j].op, Identity)):
                    part = Contribution(drop_path(part.feature, drop_prob), part.attention, part.kernels)
                parts.append(part)
            surrogate = (parts[0] + parts[1]).combine()
            states.append(self.tier2[step](surrogate).combine())
        return torch.cat(states[-STEPS:], dim=1)


# --- genotypes --------------------------------------------------------------------------------------------

def _check_cell(field: str, edges: list[tuple[str, int]], tier2: list[str]) -> None:
    if len(edges) != 2 * STEPS:
        raise _bad(f"{field} has {len(edges)} (op, source) pairs, need {2 * STEPS}")
    for j, (op, source) in enumerate(edges):
        if op not in HETERO_OPS:
            raise _bad(f"{field}[{j}] has unknown op {op!r} (valid: {', '.join(HETERO_OPS)})")
        node = 2 + j // 2
        if not 0 <= source < node:
            raise _bad(f"{field}[{j}] belongs to node {node}, so its source must be in 0..{node - 1}, got {source}")
    for node in range(2, 2 + STEPS):
        (op_a, src_a), (op_b, src_b) = edges[2 * (node - 2)], edges[2 * (node - 2) + 1]
        if src_a >= src_b:
            raise _bad(f"node {node} of {field} must read two distinct sources in increasing order, "
                       f"got {src_a} and {src_b}")
        if "feature" not in (OP_FAMILY[op_a], OP_FAMILY[op_b]):
            raise _bad(f"node {node} of {field} needs at least one feature op in tier 1, got {op_a} and {op_b}")
    if len(tier2) != STEPS:
        raise _bad(f"{field}_tier2 has {len(tier2)} ops, need {STEPS}")
    for j, op in enumerate(tier2):
        if op not in HETERO_OPS:
            raise _bad(f"{field}_tier2[{j}] has unknown op {op!r} (valid: {', '.join(HETERO_OPS)})")


def _check_genotype(genotype: Any) -> None:
    if not isinstance(genotype, HeteroGenotype):
        raise _bad(f"not a HeteroGenotype: {type(genotype).__name__}")
    for group in ("normal", "reduce"):
        edges, tier2 = getattr(genotype, group), getattr(genotype, f"{group}_tier2")
        if not (isinstance(edges, (list, tuple)) and all(
                isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], str) and isinstance(e[1], int)
                and not isinstance(e[1], bool) for e in edges)):
            raise _bad(f"{group} must be a list of (op name, integer source) pairs")
        if not (isinstance(tier2, (list, tuple)) and all(isinstance(op, str) for op in tier2)):
            raise _bad(f"{group}_tier2 must be a list of op names")
        _check_cell(group, list(edges), list(tier2))


def _parse_names(field: str, node: ast.AST) -> list[str]:
    if not (isinstance(node, ast.List) and all(isinstance(e, ast.Constant) and isinstance(e.value, str)
                                               for e in node.elts)):
        raise _bad(f"{field} must be a list of quoted op names, got {_snippet(node)}")
    return [e.value for e in node.elts]  # type: ignore[attr-defined]


def derive_node(tier1: np.ndarray, tier2: np.ndarray, node: int) -> tuple[list[tuple[int, int]], int]:
    """The rule of the module docstring for one node: ``tier1`` is its [node, 11] score block (one row per
    source), ``tier2`` its 11 tier-2 scores. Returns ([(source, op), (source, op)] in source order, op)."""
    is_feature = np.array([OP_FAMILY[name] == "feature" for name in HETERO_OPS])
    best: tuple[float, tuple[int, int], tuple[int, int]] | None = None
    for a, b in itertools.combinations(range(node), 2):
        for op_a, op_b in itertools.product(range(len(HETERO_OPS)), repeat=2):
            if not (is_feature[op_a] or is_feature[op_b]):
                continue
            total = float(tier1[a, op_a] + tier1[b, op_b])
            if best is None or total > best[0]:  # strict: the first pair (in this order) wins ties
                best = (total, (a, op_a), (b, op_b))
    assert best is not None
    return [best[1], best[2]], int(np.argmax(tier2))


# --- the space -----------------------------------------------------------------------------------------

@register_space
class HeteroSpace(SearchSpace):
    """NOS's heterogeneous cells: 18 edges (14 tier-1, 4 tier-2) × 11 ops, shared normal and reduction cells."""

    name = "hetero"
    description = "NOS heterogeneous cells: residual blocks of feature, attention and dynamic-conv ops, 18 x 11"
    # its ops give Contributions
    features = frozenset({"sample", "edges", "uniform-ops", "cells", "stage-features", "encoding"})
    op_names = HETERO_OPS
    size_keys = CELL_SIZE_KEYS
    defaults: ClassVar[dict[str, Any]] = {"search_layers": 8, "search_channels": 16,
                                          "eval_layers": 20, "eval_channels": 36}
    # Each heterogeneous edge carries 11 ops (about 2.5× a DARTS edge's cost on a CPU, where these tiny ops
    # are overhead-bound): the smoke budget keeps a seed near a minute with the fewest cells that still have
    # three stages (normal, reduction, reduction) and one sampled edge for the operation-level correlation.
    budgets: ClassVar[dict[str, dict[str, Any]]] = cell_budgets(
        smoke={"search_layers": 3, "eval_layers": 3, "corr_edges": 1})

    @classmethod
    def check_stage_features(cls, cfg: dict[str, Any], stages: int, what: str) -> None:
        check_skeleton_stages(cfg, stages, what)

    def arch_shape(self) -> dict[str, tuple[int, int]]:
        return {"normal": (NUM_ROWS, len(self.op_names)), "reduce": (NUM_ROWS, len(self.op_names))}

    def encoding_units(self, group: str) -> list[tuple[str, tuple[int, ...], int]]:
        """Per inner node (its site): two of its tier-1 edges kept, and its tier-2 edge."""
        units, start = [], 0
        for step, node in enumerate(range(2, 2 + STEPS)):
            units += [(f"node {node}", tuple(range(start, start + node)), 2),
                      (f"node {node}", (TIER2_OFFSET + step,), 1)]
            start += node
        return units

    def build_supernet(self, edge_factory: EdgeFactory, info: DataInfo) -> nn.Module:
        return SearchNetwork(edge_factory, info, *cell_size(self, "search"), self, cell_cls=SearchCell)

    def build_network(self, genotype: HeteroGenotype, info: DataInfo, size: str = "eval",
                      auxiliary: bool = False) -> nn.Module:
        _check_genotype(genotype)
        return EvalNetwork(genotype, info, *cell_size(self, size), auxiliary, cell_cls=EvalCell)

    def derive(self, scores: dict[str, np.ndarray]) -> HeteroGenotype:
        cells: dict[str, Any] = {}
        choice = self.candidate_mask(choices=True)
        for group, shape in self.arch_shape().items():
            matrix = checked_scores(scores.get(group), group, shape, finite=True)
            matrix = np.where(choice[group], matrix, -np.inf)  # not a choice: never chosen
            edges, tier2, start = [], [], 0
            for step, node in enumerate(range(2, 2 + STEPS)):
                pairs, op2 = derive_node(matrix[start:start + node], matrix[TIER2_OFFSET + step], node)
                edges += [(self.op_names[op], source) for source, op in pairs]
                tier2.append(self.op_names[op2])
                start += node
            cells[group], cells[f"{group}_tier2"] = edges, tier2
        return HeteroGenotype(**cells)

    def sample(self, rng: np.random.Generator) -> HeteroGenotype:
        """Uniform over valid cells: per node two distinct sources (in order) and a uniform pair of ops (each
        among its edge's ``choice_ops``) with at least one feature op (rejection), and a uniform tier-2 op."""
        names = self.op_names
        cells: dict[str, Any] = {}
        for group in ("normal", "reduce"):
            edges, tier2 = [], []
            start = 0
            for step, node in enumerate(range(2, 2 + STEPS)):
                sources = sorted(int(s) for s in rng.choice(node, size=2, replace=False))
                choices = [self.choice_ops(group, start + source) for source in sources]
                while True:
                    draws = rng.integers(0, [len(c) for c in choices])
                    ops = [names[c[int(i)]] for c, i in zip(choices, draws)]
                    if "feature" in (OP_FAMILY[ops[0]], OP_FAMILY[ops[1]]):
                        break
                edges += list(zip(ops, sources))
                last = self.choice_ops(group, TIER2_OFFSET + step)
                tier2.append(names[last[int(rng.integers(0, len(last)))]])
                start += node
            cells[group], cells[f"{group}_tier2"] = edges, tier2
        return HeteroGenotype(**cells)

    def parse(self, text: str) -> HeteroGenotype:
        fields = parse_call_fields(text, "HeteroGenotype", _FIELDS, _bad)
        values: dict[str, Any] = {}
        for group in ("normal", "reduce"):
            edges = parse_edges(group, fields[group], _bad)
            tier2 = _parse_names(f"{group}_tier2", fields[f"{group}_tier2"])
            _check_cell(group, edges, tier2)
            values[group], values[f"{group}_tier2"] = edges, tier2
        return HeteroGenotype(**values)

    def to_str(self, genotype: HeteroGenotype) -> str:
        _check_genotype(genotype)

        def pairs(edges: list[tuple[str, int]]) -> str:
            return "[" + ", ".join(f"({op!r}, {int(source)})" for op, source in edges) + "]"

        return (f"HeteroGenotype(normal={pairs(genotype.normal)}, normal_tier2={list(genotype.normal_tier2)!r}, "
                f"reduce={pairs(genotype.reduce)}, reduce_tier2={list(genotype.reduce_tier2)!r})")

    # --- genotype choices -----------------------------------------------------------------------
    def cell_graphs(self, genotype: HeteroGenotype) -> dict[str, list[tuple[str, str, str]]]:
        """The normal and the reduction cell as ``(source, target, op)`` edges, nodes numbered as the genotype's
        sources: each inner node j (``"2"``..``"5"``) is a two-tier block — its two tier-1 ops from the inputs
        ``"0 (c_{k-2})"``, ``"1 (c_{k-1})"`` or an earlier inner node into the surrogate node ``j'``, then its
        tier-2 op ``j'`` → ``j`` — and the output ``c_{k}`` concatenates the inner nodes (op ``concat``)."""
        _check_genotype(genotype)
        names = NODE_NAMES

        def graph(edges: list[tuple[str, int]], tier2: list[str]) -> list[tuple[str, str, str]]:
            first = [(names[int(source)], f"{2 + j // 2}'", op) for j, (op, source) in enumerate(edges)]
            second = [(f"{2 + j}'", str(2 + j), op) for j, op in enumerate(tier2)]
            return first + second + [(str(2 + j), "c_{k}", "concat") for j in range(STEPS)]

        return {"normal": graph(genotype.normal, genotype.normal_tier2),
                "reduce": graph(genotype.reduce, genotype.reduce_tier2)}

    def edge_labels(self, group: str) -> list[str]:
        """The tier-1 rows ``"source→node'"`` (``0→2'``, ... ``4→5'``), then the tier-2 rows ``"node'→node"``."""
        return ([f"{source}→{node}'" for node, source in edge_sources()]
                + [f"{node}'→{node}" for node in range(2, 2 + STEPS)])

    def edge_choices(self, genotypes: list[HeteroGenotype]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per cell type, the 8 tier-1 (op, source) pairs of each genotype (edge rows 0–13, as in the DARTS
        space: the j-th pair's row is that of (node 2 + j // 2, source) in ``edge_sources()``), then the 4
        tier-2 ops (rows ``TIER2_OFFSET + step``)."""
        row_of = {pair: row for row, pair in enumerate(edge_sources())}
        choices = {}
        for group in ("normal", "reduce"):
            rows, ops = [], []
            for genotype in genotypes:
                _check_genotype(genotype)
                cell, tier2 = getattr(genotype, group), getattr(genotype, f"{group}_tier2")
                rows.append([row_of[(2 + j // 2, int(source))] for j, (_, source) in enumerate(cell)]
                            + [TIER2_OFFSET + step for step in range(STEPS)])
                ops.append([self.op_names.index(op) for op, _ in cell] + [self.op_names.index(op) for op in tier2])
            shape = (len(genotypes), 2 * STEPS + STEPS)
            choices[group] = (np.array(rows, dtype=np.int64).reshape(shape),
                              np.array(ops, dtype=np.int64).reshape(shape))
        return choices
