"""The search-space side of the narrow space/method interface.

A space owns the topology (cells, edges, stages), the candidate ops on each searchable edge (they may
differ from edge to edge), the genotype type and its string form, the network sizes and the supernet and
final-network builders, the derivation rule from per-edge op scores (shared by a group's cells, or one set
of scores per cell), random sampling, and its table of known results where it has one. It never knows a
method by name: for every searchable edge of the supernet it calls the ``edge_factory`` it is given, and the
method decides how the candidates are combined.

**Capabilities.** A space declares what it offers (``SearchSpace.features``), a method what it needs
(``SearchMethod.needs``); the registry computes from them which pairs run (``harness.core.registry.compatible``),
so a new space runs every method whose needs it meets, and no method lists spaces by name. The names
(``FEATURES``) are the requirements the methods' code really has:

- ``sample``: ``sample(rng)`` draws a uniform random genotype and ``build_network`` builds it at every size
  (random search needs nothing else).
- ``edges``: ``build_supernet`` asks the method's ``edge_factory`` for one module per searchable edge, given the
  edge's candidate modules (every supernet method: DARTS, GDAS, NOS, EoiNAS, AGNAS, ADWPNAS, ProxylessNAS).
- ``tensor-ops``: every candidate module returns a plain tensor of ``EdgeId.channels`` channels, which an edge
  may pool and concatenate (AGNAS's attention over the concatenated candidates). The heterogeneous space's
  candidates return ``Contribution``s, which only add and scale.
- ``uniform-ops``: every searchable edge has every op of ``op_names`` as a candidate (EoiNAS prunes one op per
  step from every edge, ``len(op_names) - 1`` steps). The proxyless chain's blocks differ (``zero`` on some).
- ``cells``: the supernet repeats cells, each with its own edge instances (``EdgeId.cell`` takes several
  values), so per-cell architecture state means something (ADWPNAS: one α and one genotype per cell). The
  proxyless chain is one cell.
- ``stage-features``: the supernet's ``forward_features(x)`` gives the outputs of its stages, and
  ``check_stage_features`` accepts the configuration (NOS's attention transfer).

- ``encoding``: the genotypes are categorical choices (``encoding``, ``encode``, ``decode``, built from
  ``encoding_units``), so a black-box searcher (``methods/blackbox.py``: REA, TPE, BOHB, random search with ASHA)
  can propose them. Every space here offers it: the default units (one op per edge) and the space's own
  derivation rule (``decode``) need nothing else.

A benchmark table is not a capability: no method needs one (random search queries it where the space has one,
``benchmark()``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from torch import nn

from harness.core.config import Key
from harness.core.data import DataInfo
from harness.core.errors import UserError

if TYPE_CHECKING:
    from harness.core.benchmarks.base import Benchmark


@dataclass(frozen=True)
class EdgeId:
    """Identity of one searchable edge instance in a supernet.

    ``group`` names the architecture matrix the edge belongs to (e.g. ``"normal"`` / ``"reduce"`` in the
    DARTS space, where all cells of a type share one matrix); ``index`` is its row in that matrix;
    ``cell`` is the position of the cell holding this instance (methods that keep per-cell state, such
    as AGNAS, key on it); ``channels`` is the number of channels every candidate op of the edge outputs
    (a method that builds layers over the candidates' outputs, such as AGNAS's attention, sizes them by it);
    ``ops`` are the candidates' indices into the space's ``op_names``, in the order of the candidate modules
    the edge factory receives (``space.edge_ops(group, index)``).
    """

    group: str
    index: int
    cell: int
    channels: int
    ops: tuple[int, ...]

    def slot(self, op: int) -> int:
        """The position among the edge's candidate modules of op ``op`` (an index into ``op_names``)."""
        return self.ops.index(op)


# edge_factory(edge, candidates) -> module combining the candidate ops (ordered as ``edge.ops``)
EdgeFactory = Callable[[EdgeId, nn.ModuleList], nn.Module]

NETWORK_SIZES = ("search", "eval", "paper")  # the sizes ``build_network`` builds

# The capability names of ``SearchSpace.features`` and ``SearchMethod.needs`` (the module docstring says who needs
# each and why), with the one line ``python -m harness list`` shows for each.
FEATURES: dict[str, str] = {
    "sample": "a uniform random genotype (sample) and its network at every size",
    "edges": "a supernet whose searchable edges the method's edge_factory builds",
    "tensor-ops": "candidates that return plain tensors (to pool and concatenate)",
    "uniform-ops": "every op of op_names a candidate of every edge",
    "cells": "repeated cells, each with its own edge instances (EdgeId.cell)",
    "stage-features": "stage outputs of the supernet (forward_features)",
    "encoding": "genotypes as categorical choices (encode, decode)",
}


@dataclass(frozen=True)
class Choice:
    """One categorical dimension of a space's genotype encoding (``SearchSpace.encoding``).

    ``name`` is unique and plain ASCII (searchers key on it); ``values`` are strings; ``site`` names the node or
    block the choice belongs to (a mutation picks a site, then one of its choices). An op choice sets the op of
    edge ``edges[0]`` of ``group`` (``keep`` 0); an inputs choice picks which ``keep`` of its unit's ``edges`` the
    genotype keeps, each value the kept edge rows joined by ``+`` (``"0+2"``)."""

    name: str
    values: tuple[str, ...]
    site: str
    group: str
    edges: tuple[int, ...]
    keep: int = 0

    @property
    def is_inputs(self) -> bool:
        return self.keep > 0

# The size keys of the cell spaces (DARTS, heterogeneous, NAS-Bench-201), valued per space in ``defaults`` and
# in its ``budgets`` (``cell_budgets``).
CELL_SIZE_KEYS: dict[str, Key] = {
    "search_layers": Key(None, "cells in the search supernet (nb201: cells per stage)", "[1, inf)", kind=int),
    "search_channels": Key(None, "initial channels of the search supernet", "[1, inf)", kind=int),
    "eval_layers": Key(None, "cells in the final network (nb201: cells per stage)", "[1, inf)", kind=int),
    "eval_channels": Key(None, "initial channels of the final network", "[1, inf)", kind=int),
}
_CELL_BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": {"search_layers": 4, "search_channels": 4, "eval_layers": 4, "eval_channels": 8},
    "small": {"search_layers": 5, "search_channels": 8, "eval_layers": 8, "eval_channels": 16},
}


def group_means(scores: dict[int, np.ndarray], groups: dict[int, str]) -> dict[str, np.ndarray]:
    """Per group, the mean of its cells' score matrices (``scores[cell]``, ``groups[cell]``), in cell order."""
    by_group: dict[str, list[np.ndarray]] = {}
    for cell in sorted(scores):
        by_group.setdefault(groups[cell], []).append(scores[cell])
    return {group: np.mean(matrices, axis=0) for group, matrices in by_group.items()}


def checked_scores(values: Any, name: str, shape: tuple[int, int], finite: bool = False) -> np.ndarray:
    """``values`` as a float64 score matrix of ``shape``; a one-line ``ValueError`` for another shape or a NaN
    (with ``finite``, any value that is not finite)."""
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.shape != tuple(shape):
        raise ValueError(f"scores['{name}'] must have shape {tuple(shape)}, got {matrix.shape}")
    if finite and not np.isfinite(matrix).all():
        raise ValueError(f"scores['{name}'] contains NaN or infinite values")
    if np.isnan(matrix).any():
        raise ValueError(f"scores['{name}'] contains NaN")
    return matrix


def cell_size(space: SearchSpace, size: str) -> tuple[int, int]:
    """(cells, initial channels) of a cell space's network at ``size`` (``NETWORK_SIZES``): the configuration's
    ``search_*`` or ``eval_*`` keys, or for ``paper`` the space's own ``eval_*`` defaults."""
    values = space.size_values(size)
    prefix = "search" if size == "search" else "eval"
    return int(values[f"{prefix}_layers"]), int(values[f"{prefix}_channels"])


def cell_budgets(**own: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A cell space's budget presets: the cell networks' smoke and small sizes, updated by the space's own
    values (``cell_budgets(smoke={"search_layers": 3})``)."""
    names = sorted(set(_CELL_BUDGETS) | set(own))
    return {name: {**_CELL_BUDGETS.get(name, {}), **own.get(name, {})} for name in names}


class SearchSpace:
    """Base class of a search space. Subclasses are registered with ``@register_space``.

    Configuration (``harness.core.config``): ``size_keys`` declares the keys that size the space's networks (the
    cell spaces: ``CELL_SIZE_KEYS``; a chain space has its own), valued in ``defaults`` — nothing outside
    ``spaces/`` reads them: the space builds its networks from them (``build_supernet``, ``build_network``).
    ``keys`` declares the space's other keys. ``cell_keys`` declares keys of the per-cell derivation
    (``derive_cells``), which a pair has only when its method keeps scores per cell
    (``SearchMethod.scores_per_cell``). ``defaults`` holds the space's paper values of keys declared
    elsewhere (its network sizes; NAS-Bench-201's own search and evaluation protocol). The budget presets
    and ``--set`` overrides act on them through ``harness.core.config``. ``budgets`` holds the space's own values
    of a budget preset (its network sizes, and values where the generic ones do not fit its networks: they
    win over the generic preset for this space only).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    features: ClassVar[frozenset[str]] = frozenset()  # the capabilities it offers (names of ``FEATURES``)
    op_names: ClassVar[tuple[str, ...]] = ()
    size_keys: ClassVar[dict[str, Key]] = {}
    keys: ClassVar[dict[str, Key]] = {}
    cell_keys: ClassVar[dict[str, Key]] = {}
    defaults: ClassVar[dict[str, Any]] = {}
    budgets: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, cfg: dict[str, Any]):
        self.cfg = cfg

    @classmethod
    def validate_config(cls, cfg: dict[str, Any]) -> None:
        """Refuse impossible combinations of values with one line (``UserError``), after every value passed its
        own declaration. The default is the rule of DARTS's final network (the cell spaces): its auxiliary
        head ends in a BatchNorm over a 1×1 map, which cannot train on a one-image batch."""
        if cfg.get("auxiliary_weight", 0) > 0 and cfg.get("eval_batch_size", 2) < 2:
            raise UserError(f"the auxiliary head (auxiliary_weight={cfg['auxiliary_weight']}) needs eval_batch_size "
                            f">= 2 (its BatchNorm cannot train on one image), got {cfg['eval_batch_size']}")

    @classmethod
    def check_stage_features(cls, cfg: dict[str, Any], stages: int, what: str) -> None:
        """Refuse with one line (``UserError``) unless the supernet of ``cfg`` gives ``stages`` stage feature
        maps through ``forward_features(x)`` (``what`` needs them, e.g. NOS's attention transfer). The
        default: the space's supernet gives none."""
        raise UserError(f"{what} needs a supernet with {stages} stage outputs; the {cls.name} space's supernet has "
                        "none")

    # --- benchmark ------------------------------------------------------------------------------
    def benchmark(self) -> Any:
        """The space's table of known accuracies (NAS-Bench-201), or None for spaces without one."""
        return None

    def evaluates_by_lookup(self) -> bool:
        """True when the trial's test accuracy is looked up in ``benchmark()`` instead of trained."""
        return False

    # --- topology -------------------------------------------------------------------------------
    def arch_shape(self) -> dict[str, tuple[int, int]]:
        """Shape (edges, ops) of every architecture-matrix group, e.g. ``{"normal": (14, 8), ...}``: one row per
        searchable edge (or choice block), one column per op of ``op_names``. Score matrices have this shape
        whatever an edge's candidates; a column that is not a candidate of its edge is never read."""
        raise NotImplementedError

    def edge_ops(self, group: str, index: int) -> tuple[int, ...]:
        """The candidate ops of edge (group, index): indices into ``op_names``, in the order the supernet gives
        the candidate modules to the edge factory. The default: every op, on every edge."""
        return tuple(range(len(self.op_names)))

    def choice_ops(self, group: str, index: int) -> tuple[int, ...]:
        """The candidates of edge (group, index) that a genotype may choose there (the derivation, the sampler
        and the operation-level correlation use these). The default: every candidate."""
        return self.edge_ops(group, index)

    def choice_units(self, group: str) -> list[tuple[int, ...]]:
        """The edges of ``group`` among which a genotype chooses together, in edge order: a space whose genotype
        keeps some of a node's incoming edges (DARTS: two per intermediate node) gives each node's edges; the
        default, a space with one op on every edge, gives every edge alone."""
        return [(index,) for index in range(self.arch_shape()[group][0])]

    def candidate_mask(self, choices: bool = False) -> dict[str, np.ndarray]:
        """Per group, a boolean ``arch_shape`` matrix: True where the op is a candidate of the edge (with
        ``choices``: one a genotype may choose there, ``choice_ops``)."""
        ops_of = self.choice_ops if choices else self.edge_ops
        masks = {}
        for group, (edges, ops) in self.arch_shape().items():
            mask = np.zeros((edges, ops), dtype=bool)
            for index in range(edges):
                mask[index, list(ops_of(group, index))] = True
            masks[group] = mask
        return masks

    # --- networks -------------------------------------------------------------------------------
    def size_values(self, size: str) -> dict[str, Any]:
        """Where the size keys of a network at ``size`` (``NETWORK_SIZES``) are read: the configuration, or for
        ``paper`` the space's own ``defaults`` (whatever the budget)."""
        if size not in NETWORK_SIZES:
            raise ValueError(f"unknown network size {size!r}; valid: {', '.join(NETWORK_SIZES)}")
        return self.defaults if size == "paper" else self.cfg

    def build_supernet(self, edge_factory: EdgeFactory, info: DataInfo) -> nn.Module:
        """The search network at the size the configuration gives; ``forward(x)`` returns logits."""
        raise NotImplementedError

    def build_final_supernet(self, edge_factory: EdgeFactory, info: DataInfo) -> nn.Module:
        """The supernet of a method whose every search cell becomes one cell of the final network (ADWPNAS's macro
        search): the final network's cells at the search network's width. The default is ``build_supernet``: a
        space whose cells share one architecture (NAS-Bench-201), or a chain of blocks, has no other."""
        return self.build_supernet(edge_factory, info)

    def build_network(self, genotype: Any, info: DataInfo, size: str = "eval", auxiliary: bool = False) -> nn.Module:
        """The final network for ``genotype``, at one of the space's ``NETWORK_SIZES``: ``search`` (the search
        network's size: random search trains its candidates at it), ``eval`` (the evaluation protocol's) or
        ``paper`` (the space's paper size whatever the budget: the network a benchmark table describes).

        ``forward(x)`` returns ``(logits, aux_logits)``; ``aux_logits`` is None unless the network has an
        auxiliary head and is in training mode. The trainer sets ``drop_path_prob`` on the module.
        """
        raise NotImplementedError

    # --- genotypes ------------------------------------------------------------------------------
    def derive(self, scores: dict[str, np.ndarray]) -> Any:
        """The space's derivation rule applied to per-edge op scores (one matrix per group)."""
        raise NotImplementedError

    def derive_cells(self, scores: dict[int, np.ndarray], groups: dict[int, str]) -> Any:
        """The genotype from per-cell scores: ``scores[cell]`` is the ``arch_shape`` matrix of search cell
        ``cell``, ``groups[cell]`` its group. The default averages the cells of each group (in cell order)
        and applies ``derive``: a space whose cells share one architecture; a space that can give cells their
        own genotypes overrides it."""
        return self.derive(group_means(scores, groups))

    def describe_cells(self, scores: dict[int, np.ndarray], groups: dict[int, str]) -> dict[str, Any]:
        """For the record, what ``derive_cells`` did with each search cell: ``{"cells": {cell: facts}, ...}``
        (the DARTS space: each cell's genotype and the positions it built). The default: nothing."""
        return {}

    def describe_network(self, info: DataInfo) -> dict[str, Any]:
        """For the record (``space_info``), what the space chose for the trial's data when building its networks
        (the proxyless chain: the strides it fitted to the image size). The default: nothing."""
        return {}

    def sample(self, rng: np.random.Generator) -> Any:
        """A uniformly random valid genotype."""
        raise NotImplementedError

    def argmax_per_edge(self, scores: dict[str, np.ndarray], group: str) -> tuple[str, ...]:
        """The rule of a space with one op per edge: on every edge of ``group`` the best of its ``choice_ops``
        by ``scores[group]`` (equal scores: the op earlier in ``op_names``), as op names in edge order."""
        shape = self.arch_shape()[group]
        matrix = checked_scores(scores.get(group), group, shape)
        choices = [self.choice_ops(group, e) for e in range(shape[0])]
        return tuple(self.op_names[ops[int(np.argmax(matrix[e, list(ops)]))]] for e, ops in enumerate(choices))

    def uniform_per_edge(self, rng: np.random.Generator, group: str) -> tuple[str, ...]:
        """The sampler of a space with one op per edge: an independent uniform op per edge of ``group`` among its
        ``choice_ops`` (one vectorised draw from ``rng``), as op names in edge order."""
        choices = [self.choice_ops(group, e) for e in range(self.arch_shape()[group][0])]
        draws = rng.integers(0, [len(ops) for ops in choices])
        return tuple(self.op_names[ops[int(k)]] for ops, k in zip(choices, draws))

    def parse(self, text: str) -> Any:
        """Genotype from its string form; raises ``GenotypeError`` with one clear line."""
        raise NotImplementedError

    def to_str(self, genotype: Any) -> str:
        """String form of a genotype; ``to_str(parse(s)) == s`` for every canonical string."""
        raise NotImplementedError

    def cell_graphs(self, genotype: Any) -> dict[str, list[tuple[str, str, str]]] | None:
        """The genotype as graphs to draw (``harness.plots``): per cell name, its edges as ``(source label,
        target label, op name)``, in the genotype's order; the node labels are the space's own, numbered as its
        genotype strings (and ``python -m harness show``) number them. None (the default): the space's genotypes
        are not drawn."""
        return None

    def edge_labels(self, group: str) -> list[str] | None:
        """The rows of ``group``'s architecture matrix named by their end nodes, ``"source→target"``, numbered as
        in ``cell_graphs`` (the plots' importance heatmaps name their rows so). None (the default): the rows are
        numbered."""
        return None

    # --- the categorical encoding (black-box searchers) ------------------------------------------
    def encoding_units(self, group: str) -> list[tuple[str, tuple[int, ...], int]]:
        """The genotype's units of choice in ``group``, in edge order: ``(site, edges, keep)``: a genotype keeps
        ``keep`` of the unit's edges, each with one of its ``choice_ops``; ``site`` names where a mutation acts (a
        node, a block). The default: every edge alone, kept, its own site (named by ``edge_labels``)."""
        labels = self.edge_labels(group) or [f"edge {e}" for e in range(self.arch_shape()[group][0])]
        return [(labels[e], (e,), 1) for e in range(self.arch_shape()[group][0])]

    def encoding(self) -> list[Choice]:
        """The genotypes as categorical choices: per unit of ``encoding_units`` that keeps fewer edges than it has,
        one inputs choice over the combinations of ``keep`` edges (in edge order), and per edge one op choice over
        its ``choice_ops`` (by name). An op choice of an edge its unit does not keep is inactive: it changes
        nothing (``active_choices``)."""
        choices = []
        for group in self.arch_shape():
            for unit, (site, edges, keep) in enumerate(self.encoding_units(group)):
                where = f"{group} {site}"
                if keep < len(edges):
                    values = tuple("+".join(map(str, combo)) for combo in itertools.combinations(edges, keep))
                    choices.append(Choice(f"{group}.u{unit}.inputs", values, where, group, tuple(edges), keep))
                for edge in edges:
                    values = tuple(self.op_names[op] for op in self.choice_ops(group, edge))
                    choices.append(Choice(f"{group}.e{edge}", values, where, group, (edge,)))
        return choices

    def kept_edges(self, config: Mapping[str, str]) -> set[tuple[str, int]]:
        """The (group, edge) pairs a configuration of ``encoding`` keeps: the edges an inputs choice names, and every
        edge of a unit without one (``ValueError``, one line, for an inputs choice missing or not one of its
        values)."""
        encoding = self.encoding()
        kept, chosen_among = set(), set()
        for choice in encoding:
            if choice.is_inputs:
                value = config.get(choice.name)
                if value not in choice.values:
                    raise ValueError(f"choice '{choice.name}' must be one of {', '.join(choice.values)}, got "
                                     f"{value!r}")
                chosen_among.update((choice.group, edge) for edge in choice.edges)
                kept.update((choice.group, int(edge)) for edge in value.split("+"))
        kept.update((c.group, c.edges[0]) for c in encoding
                    if not c.is_inputs and (c.group, c.edges[0]) not in chosen_among)
        return kept

    def active_choices(self, config: Mapping[str, str]) -> list[Choice]:
        """The choices of ``encoding`` that decide the genotype ``config`` decodes to: every inputs choice and the
        op choices of the kept edges."""
        kept = self.kept_edges(config)
        return [c for c in self.encoding() if c.is_inputs or (c.group, c.edges[0]) in kept]

    def decode(self, config: Mapping[str, str]) -> Any:
        """The genotype of a configuration of ``encoding``: a score matrix per group with 1 at every kept edge's
        chosen op and 0 elsewhere, given to the space's own derivation rule (``derive``), so a decoded genotype is
        always one the space can build. Where the rule cannot honour the choices (the heterogeneous space's node
        whose two tier-1 ops are both non-feature) it gives its best valid genotype for them. Every choice of the
        encoding, active or not, must have one of its values, and no other name may appear (``ValueError``, one
        line): a searcher's slip is caught where it happens, not when the inactive choice becomes active."""
        encoding = self.encoding()
        unknown = sorted(set(config) - {c.name for c in encoding})
        if unknown:
            raise ValueError(f"the {self.name or type(self).__name__} encoding has no choice '{unknown[0]}'")
        for choice in encoding:
            value = config.get(choice.name)
            if value not in choice.values:
                raise ValueError(f"choice '{choice.name}' must be one of {', '.join(choice.values)}, got {value!r}")
        scores = {group: np.zeros(shape) for group, shape in self.arch_shape().items()}
        for choice in self.active_choices(config):
            if not choice.is_inputs:
                scores[choice.group][choice.edges[0], self.op_names.index(config[choice.name])] = 1.0
        return self.derive(scores)

    def encode(self, genotype: Any) -> dict[str, str]:
        """The configuration of ``encoding`` for ``genotype`` (its ``edge_choices``); an op choice of an edge the
        genotype does not keep takes its first value. ``decode(encode(g))`` is ``g`` for every genotype the
        space's ``sample`` and ``decode`` give."""
        chosen = {}
        for group, (rows, ops) in self.edge_choices([genotype]).items():
            chosen.update({(group, int(r)): self.op_names[int(o)] for r, o in zip(rows[0], ops[0])})
        config = {}
        for choice in self.encoding():
            if choice.is_inputs:
                kept = [e for e in choice.edges if (choice.group, e) in chosen]
                if len(kept) != choice.keep:
                    raise ValueError(f"the genotype keeps {len(kept)} of edges {choice.edges} of '{choice.group}', "
                                     f"the encoding {choice.keep}")
                config[choice.name] = "+".join(map(str, kept))
            else:
                config[choice.name] = chosen.get((choice.group, choice.edges[0]), choice.values[0])
        return config

    # --- benchmark provenance and genotype choices ----------------------------------------------
    @classmethod
    def load_benchmark(cls, provenance: dict[str, Any]) -> Benchmark | None:
        """The benchmark a record's ``benchmark_info["table"]`` (a ``Benchmark.describe()``) came from, loaded
        again; None for spaces without a benchmark."""
        return None

    def edge_choices(self, genotypes: list[Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The (edge, op) choices of ``n`` genotypes, per group of ``arch_shape()``: ``(rows, ops)``, two
        ``[n, k]`` integer arrays, ``rows[i, j]`` an edge row of the group's matrix and ``ops[i, j]`` the index
        (into ``op_names``) of the op genotype ``i`` takes on it. ``matrix[rows, ops]`` is then every
        genotype's chosen entries of a ``[edges, ops]`` matrix. Raises ``ValueError`` (one line) for a genotype
        that makes no single choice per edge."""
        raise NotImplementedError
