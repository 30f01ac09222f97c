"""The NAS-Bench-201 search space (Dong & Yang, "NAS-Bench-201", ICLR 2020).

A cell has 4 nodes; node ``i`` sums one op applied to every earlier node, so a cell has 6 edges, numbered
in the benchmark's order 1←0, 2←0, 2←1, 3←0, 3←1, 3←2, and its output is node 3. Each edge takes one of 5
ops (``none`` included), so the space has 5^6 = 15,625 cells. A genotype is the tuple of the 6 op names in
edge order; its string form is the benchmark's official architecture string
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (node 1 | node 2 | node 3, ``~j`` the source node), which is the
only form the harness converts through (other tools order edges and ops differently). That encoding is
the benchmark's (``harness.core.benchmarks.nb201_arch``, shared with the table); the space imports the
benchmark, never the other way round.

Macro skeleton (search and final network alike): 3×3 conv stem to C + BN; N cells at C; a residual block
with stride 2 to 2C; N cells; a residual block to 4C; N cells; BN → ReLU → global average pool → linear.
The supernet's cells all share one architecture matrix (group ``"cell"``, 6 × 5) and use BN with
affine=False; the residual blocks and the stem are ordinary affine layers, as in the benchmark's search
code. ``layers`` (``search_layers`` / ``eval_layers``) is N, the number of cells per stage.

Evaluation: by default (``eval=lookup``) the trial does not train the derived cell; it looks up its
figures in the benchmark table (``harness.core.benchmarks.nb201``). ``eval=train`` trains the final network
with the benchmark's own protocol (SGD with Nesterov momentum 0.9, lr 0.1 cosine to 0, weight decay 5e-4,
batch 256, 200 epochs, random crop and flip, no cutout, auxiliary head or drop-path), scaled by the
budget.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from harness.core.benchmarks.nb201 import load_table
from harness.core.benchmarks.nb201_arch import (
    EDGES,
    NB201_OPS,
    NUM_ARCHS,
    NUM_NODES,
    Genotype,
    arch_codes,
    check_genotype,
    format_arch,
    parse_arch,
)
from harness.core.config import Key, existing_file_or
from harness.core.data import DataInfo
from harness.core.registry import register_space
from spaces.base import CELL_SIZE_KEYS, EdgeFactory, EdgeId, SearchSpace, cell_budgets, cell_size
from spaces.ops import OPS, ReLUConvBN

GROUP = "cell"


# --- networks ------------------------------------------------------------------------------------------

class ResidualBlock(nn.Module):
    """NAS-Bench-201's reduction block: ReLU-conv3×3(stride 2)-BN → ReLU-conv3×3-BN, plus a shortcut of
    AvgPool(2) → 1×1 conv (no BN).

    The shortcut's pool rounds up (``ceil_mode``), like the strided conv, so odd sizes (``folder:``
    datasets) work; for the even sizes of CIFAR and digits it is the benchmark's pool exactly."""

    def __init__(self, C_in: int, C_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, 2, 1, affine=True)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, affine=True)
        self.downsample = nn.Sequential(nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True,
                                                     count_include_pad=False),
                                        nn.Conv2d(C_in, C_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def _forward_cell(edges: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    nodes = [x]
    e = 0
    for node in range(1, NUM_NODES):
        total = edges[e](nodes[0])
        for source in range(1, node):
            total = total + edges[e + source](nodes[source])
        e += node
        nodes.append(total)
    return nodes[-1]


class SearchCell(nn.Module):
    """A supernet cell: each of the 6 edges with its candidates (``space.edge_ops``: all 5 ops), BN
    affine=False, combined by the method."""

    def __init__(self, edge_factory: EdgeFactory, cell: int, C: int, space: SearchSpace):
        super().__init__()
        edges = []
        for e in range(len(EDGES)):
            ops = tuple(space.edge_ops(GROUP, e))
            edges.append(edge_factory(EdgeId(group=GROUP, index=e, cell=cell, channels=C, ops=ops),
                                      nn.ModuleList(OPS[space.op_names[o]](C, 1, False) for o in ops)))
        self.edges = nn.ModuleList(edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _forward_cell(self.edges, x)


class EvalCell(nn.Module):
    """A final-network cell: one op per edge (a ``none`` edge contributes zeros, as in the benchmark)."""

    def __init__(self, genotype: Genotype, C: int):
        super().__init__()
        self.edges = nn.ModuleList(OPS[name](C, 1, True) for name in genotype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _forward_cell(self.edges, x)


class Skeleton(nn.Module):
    """Stem, three stages of ``cells_per_stage`` cells joined by residual blocks, and the classifier.

    ``make_cell(position, C)`` builds the cell at ``position`` (0-based among cells) with ``C`` channels.
    ``forward`` returns logits (``with_aux`` False, the supernet) or ``(logits, None)`` (final network;
    NAS-Bench-201 has no auxiliary head, and drop-path is not part of its protocol).
    """

    def __init__(self, make_cell: Any, info: DataInfo, cells_per_stage: int, C: int, with_aux: bool):
        super().__init__()
        self.with_aux = with_aux
        self.drop_path_prob = 0.0  # set by the shared trainer; NAS-Bench-201 never drops paths
        self.stem = nn.Sequential(nn.Conv2d(info.in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        C_prev, position = C, 0
        for stage, C_stage in enumerate((C, 2 * C, 4 * C)):
            if stage:
                layers.append(ResidualBlock(C_prev, C_stage))
            for _ in range(cells_per_stage):
                layers.append(make_cell(position, C_stage))
                position += 1
            C_prev = C_stage
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, info.num_classes)

    def forward(self, x: torch.Tensor) -> Any:
        out = self.stem(x)
        for cell in self.cells:
            out = cell(out)
        logits = self.classifier(self.global_pooling(self.lastact(out)).flatten(1))
        return (logits, None) if self.with_aux else logits


# --- the space -----------------------------------------------------------------------------------------

@register_space
class NB201Space(SearchSpace):
    """NAS-Bench-201: one 6-edge cell × 5 ops shared by all 15 cells; every architecture's accuracy is known."""

    name = "nb201"
    description = "NAS-Bench-201: 6 edges x 5 ops, one cell shared by all cells; 15,625 known architectures"
    features = frozenset({"sample", "edges", "tensor-ops", "uniform-ops", "cells", "encoding"})
    op_names = NB201_OPS
    size_keys = CELL_SIZE_KEYS
    keys: ClassVar[dict[str, Key]] = {
        "eval": Key("lookup", "nb201: 'lookup' = test accuracy from the benchmark table, 'train' = train the derived "
                              "cell", choices=("lookup", "train")),
        "nb201_table": Key("default", "nb201: benchmark table ('default' = the bundled one, or a file from 'nb201 "
                                      "import')", check=existing_file_or("default"),
                           valid="'default' (the bundled table) or the path of a table file from 'nb201 import'"),
        "oneshot_samples": Key(200, "one-shot correlation: cells of the architecture-level sample evaluated with the "
                                    "supernet's weights (fixed subset; 0 = none)", f"[0, {NUM_ARCHS}]"),
        "arch_corr_samples": Key(NUM_ARCHS, "architecture-level correlation: architectures sampled from the "
                                            "benchmark (fixed; 0 = none)", f"[0, {NUM_ARCHS}]"),
    }
    defaults: ClassVar[dict[str, Any]] = {
        # search (NAS-Bench-201 paper, Sec. 5: SGD with Nesterov momentum, weight decay 5e-4)
        "search_layers": 5, "search_channels": 16, "w_weight_decay": 5e-4, "w_nesterov": True,
        # evaluation: look up by default; 'train' uses the benchmark's own 200-epoch protocol
        "eval_layers": 5, "eval_channels": 16, "eval_epochs": 200, "eval_batch_size": 256,
        "eval_lr": 0.1, "eval_lr_min": 0.0, "eval_momentum": 0.9, "eval_nesterov": True,
        "eval_weight_decay": 5e-4, "eval_grad_clip": 0.0, "cutout": 0, "auxiliary_weight": 0.0, "drop_path": 0.0,
    }
    budgets: ClassVar[dict[str, dict[str, Any]]] = cell_budgets(
        # the look-up network is paper size: one timed batch pass (no warm-up) keeps a smoke trial fast
        smoke={"search_layers": 1, "eval_layers": 1, "arch_corr_samples": 1000, "oneshot_samples": 20,
               "latency_runs": 1, "latency_warmup": 0},
        small={"search_layers": 2, "eval_layers": 3, "arch_corr_samples": 5000, "oneshot_samples": 50},
        # small's sizes with one cell per stage (5 cells at 32×32); 1,000 sampled architectures, the size of
        # the sample ADWPNAS scores with predicted weights (a forward pass each) in about a minute
        cpu={"search_layers": 1, "arch_corr_samples": 1000},
    )

    @classmethod
    def validate_config(cls, cfg: dict[str, Any]) -> None:
        """The table's content (its path passed the key's check); no rule of the base class: NAS-Bench-201's
        networks have no auxiliary head."""
        load_table(cfg["nb201_table"])  # an unreadable table is refused before anything runs

    # --- topology -------------------------------------------------------------------------------
    def arch_shape(self) -> dict[str, tuple[int, int]]:
        return {GROUP: (len(EDGES), len(self.op_names))}

    # (every op is a candidate, and a choice, on every edge: the benchmark's cells may use 'none')

    # --- networks -------------------------------------------------------------------------------
    def build_supernet(self, edge_factory: EdgeFactory, info: DataInfo) -> nn.Module:
        return Skeleton(lambda position, C: SearchCell(edge_factory, position, C, self), info,
                        *cell_size(self, "search"), with_aux=False)

    def build_network(self, genotype: Genotype, info: DataInfo, size: str = "eval",
                      auxiliary: bool = False) -> nn.Module:
        """The benchmark's network for ``genotype`` (``*_layers`` cells per stage; ``auxiliary`` is ignored:
        NAS-Bench-201 networks have no auxiliary head). At ``paper`` size it is the network the benchmark
        trained (5 cells per stage, 16 channels)."""
        genotype = check_genotype(genotype)
        return Skeleton(lambda position, C: EvalCell(genotype, C), info, *cell_size(self, size), with_aux=True)

    # --- genotypes ------------------------------------------------------------------------------
    def derive(self, scores: dict[str, np.ndarray]) -> Genotype:
        """Argmax per edge over the edge's choices (all 5 ops, ``none`` allowed, as in the benchmark's search
        code); equal scores go to the op earlier in ``op_names``."""
        return self.argmax_per_edge(scores, GROUP)

    def sample(self, rng: np.random.Generator) -> Genotype:
        """Uniform over the 15,625 cells: an independent uniform op per edge, among the edge's choices."""
        return self.uniform_per_edge(rng, GROUP)

    def parse(self, text: str) -> Genotype:
        return parse_arch(text)

    def to_str(self, genotype: Genotype) -> str:
        return format_arch(genotype)

    def cell_graphs(self, genotype: Genotype) -> dict[str, list[tuple[str, str, str]]]:
        """One cell ``"cell"``: nodes ``"0"``..``"3"`` (node 3 is the output), one edge per genotype edge in the
        benchmark's edge order (1←0, 2←0, 2←1, 3←0, 3←1, 3←2); a ``none`` edge carries nothing and is left out."""
        genotype = check_genotype(genotype)
        return {GROUP: [(str(source), str(node), op) for (node, source), op in zip(EDGES, genotype) if op != "none"]}

    def edge_labels(self, group: str) -> list[str]:
        """``"source→node"`` in the benchmark's edge order: ``0→1``, ``0→2``, ``1→2``, ``0→3``, ``1→3``, ``2→3``
        (the architecture string ``|op~source|`` groups them by node)."""
        return [f"{source}→{node}" for node, source in EDGES]

    def encoding_units(self, group: str) -> list[tuple[str, tuple[int, ...], int]]:
        """Every edge kept, grouped by target node (the site): a mutation picks a node, then one of its edges, as
        the benchmark's REA code does (``mutate_arch_func`` of AutoDL-Projects' ``R_EA.py``)."""
        nodes: dict[int, list[int]] = {}
        for index, (node, _) in enumerate(EDGES):
            nodes.setdefault(node, []).append(index)
        return [(f"node {node}", tuple(edges), len(edges)) for node, edges in nodes.items()]

    # --- benchmark ------------------------------------------------------------------------------
    def benchmark(self) -> Any:
        return load_table(self.cfg["nb201_table"])

    def evaluates_by_lookup(self) -> bool:
        return self.cfg["eval"] == "lookup"

    @classmethod
    def load_benchmark(cls, provenance: dict[str, Any]) -> Any:
        """The table a record's ``benchmark_info["table"]`` describes (its path; the bundled one without)."""
        return load_table(provenance.get("path") or "default")

    # --- genotype choices -----------------------------------------------------------------------
    def edge_choices(self, genotypes: list[Genotype]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every edge, in order, with the genotype's op on it: rows ``[n, 6]`` = 0..5, ops its op codes."""
        codes = np.array([arch_codes(g) for g in genotypes], dtype=np.int64).reshape(len(genotypes), len(EDGES))
        rows = np.broadcast_to(np.arange(len(EDGES)), codes.shape)
        return {GROUP: (rows, codes)}
