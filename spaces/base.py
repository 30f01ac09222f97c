"""The search-space side of the narrow space/method interface.

A space owns the topology (cells, edges, stages), the candidate ops on each searchable edge, the genotype
type and its string form, the supernet and final-network builders, the derivation rule from per-edge op
scores, and random sampling. It never knows a method by name: for every searchable edge of the supernet
it calls the ``edge_factory`` it is given, and the method decides how the candidates are combined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from torch import nn

from harness.config import Key
from harness.data import DataInfo
from harness.errors import UserError

if TYPE_CHECKING:
    from harness.benchmarks.base import Benchmark


@dataclass(frozen=True)
class EdgeId:
    """Identity of one searchable edge instance in a supernet.

    ``group`` names the architecture matrix the edge belongs to (e.g. ``"normal"`` / ``"reduce"`` in the
    DARTS space, where all cells of a type share one matrix); ``index`` is its row in that matrix;
    ``cell`` is the position of the cell holding this instance (methods that keep per-cell state, such
    as AGNAS, key on it); ``channels`` is the number of channels every candidate op of the edge outputs
    (a method that builds layers over the candidates' outputs, such as AGNAS's attention, sizes them by it).
    """

    group: str
    index: int
    cell: int
    channels: int


# edge_factory(edge, candidates) -> module combining the candidate ops (ordered as the space's op_names)
EdgeFactory = Callable[[EdgeId, nn.ModuleList], nn.Module]


class SearchSpace:
    """Base class of a search space. Subclasses are registered with ``@register_space``.

    Configuration (``harness.config``): ``keys`` declares the space's configuration keys — here the network
    sizes every space has, valued per space in ``defaults``; a space extends them with its own
    (``{**SearchSpace.keys, ...}``). ``defaults`` holds the space's paper values of keys declared elsewhere
    (its network sizes; NAS-Bench-201's own search and evaluation protocol). The budget presets and
    ``--set`` overrides act on them through ``harness.config``. ``budgets`` holds the space's own values of
    a budget preset where the generic ones do not fit its networks (they win over the generic preset for
    this space only).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    op_names: ClassVar[tuple[str, ...]] = ()
    keys: ClassVar[dict[str, Key]] = {
        "search_layers": Key(None, "cells in the search supernet (nb201: cells per stage)", "[1, inf)", kind=int),
        "search_channels": Key(None, "initial channels of the search supernet", "[1, inf)", kind=int),
        "eval_layers": Key(None, "cells in the final network (nb201: cells per stage)", "[1, inf)", kind=int),
        "eval_channels": Key(None, "initial channels of the final network", "[1, inf)", kind=int),
    }
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

    # --- benchmark ------------------------------------------------------------------------------
    def benchmark(self) -> Any:
        """The space's table of known accuracies (NAS-Bench-201), or None for spaces without one."""
        return None

    def evaluates_by_lookup(self) -> bool:
        """True when the trial's test accuracy is looked up in ``benchmark()`` instead of trained."""
        return False

    # --- topology -------------------------------------------------------------------------------
    def arch_shape(self) -> dict[str, tuple[int, int]]:
        """Shape (edges, ops) of every architecture-matrix group, e.g. ``{"normal": (14, 8), ...}``."""
        raise NotImplementedError

    def selectable_ops(self) -> list[int]:
        """Indices (into ``op_names``) of the ops the derivation may choose on an edge."""
        raise NotImplementedError

    # --- networks -------------------------------------------------------------------------------
    def build_supernet(self, edge_factory: EdgeFactory, info: DataInfo) -> nn.Module:
        """The search network; ``forward(x)`` returns logits."""
        raise NotImplementedError

    def build_network(self, genotype: Any, info: DataInfo, layers: int, channels: int,
                      auxiliary: bool) -> nn.Module:
        """The final (evaluation) network for ``genotype``.

        ``forward(x)`` returns ``(logits, aux_logits)``; ``aux_logits`` is None unless the network has an
        auxiliary head and is in training mode. The trainer sets ``drop_path_prob`` on the module.
        """
        raise NotImplementedError

    # --- genotypes ------------------------------------------------------------------------------
    def derive(self, scores: dict[str, np.ndarray]) -> Any:
        """The space's derivation rule applied to per-edge op scores (one matrix per group)."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> Any:
        """A uniformly random valid genotype."""
        raise NotImplementedError

    def parse(self, text: str) -> Any:
        """Genotype from its string form; raises ``GenotypeError`` with one clear line."""
        raise NotImplementedError

    def to_str(self, genotype: Any) -> str:
        """String form of a genotype; ``to_str(parse(s)) == s`` for every canonical string."""
        raise NotImplementedError

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
