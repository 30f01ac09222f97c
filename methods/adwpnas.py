"""ADWPNAS: architecture-driven weight prediction for neural architecture search (Zhang, Chen and Gu).

The paper has no public code; what it leaves open is designed here, each choice with its reason.

**Phases** (one search epoch each at a time, reported and checkpointed like every method's epochs):

1. *Intensive-space derivation* (``intensive_epochs``, DARTS space only; paper: 30). A DARTS supernet (the
   harness's DARTS, first order, all 8 ops, one α per cell type) is trained. After each epoch t, per
   intermediate node, the K = ``intensive_k`` most likely non-``none`` (edge, op) pairs entering it, ranked by
   the DARTS mixing weight softmax(α) of their edge (ties: the lower edge, then the lower op), form the
   intensive space O*_t of each cell type. Stability (Eq. 2) s(O*_{t−i}, O*_t) = 1 − C/(M·K), C the pairs of
   O*_t not in O*_{t−i}, M = 4 nodes; superiority (Eq. 3) S(O*_t) = Π_{0≤i≤n} s(O*_{t−i}, O*_t)·ε(α_{t−i}),
   n = ``intensive_n``, ε the supernet's validation accuracy (a fraction) after epoch t − i. S is defined
   from epoch n on (it backtracks n epochs); the intensive space of the epoch with the highest S is kept,
   separately for normal and reduction cells (ties: the later epoch, whose α trained longer). *Our rule*:
   a DARTS genotype keeps two distinct inputs per node (the paper's T = 2 of DARTS), so where a node's K
   pairs all leave one edge, the lowest-ranked one is replaced by the most likely pair of another edge.
2. *HyperNetwork training* (``hyper_epochs`` = I_train; paper: 60). The same skeleton, every cell l with its
   own α_l over the pairs of its type's intensive space; node j's output is Σ over the node's K pairs of
   p · o(input), p the softmax of α_l over the node's pairs (Eq. 4). Every candidate op with convolutions
   (DARTS: the separable and dilated convs, and the factorized-reduce skip of reduction cells) has no
   weights of its own: one **GeneratingBlock** per op instance maps the cell's probabilities (the Eq. 4
   probabilities of all its pairs, concatenated) through FC → ``generator_hidden`` (64) → FC to all its
   kernels' entries (C_out·C_in·k·k each, depthwise: C·1·k·k), split and reshaped. The paper names no
   activation between the two FC layers and we add none: a kernel is then an affine function of the
   probabilities (a shared kernel, the second layer's bias, plus an architecture-dependent part W₂W₁p whose rank
   is at most min(64, the code's length): 24 entries on the DARTS space at K = 6, so rank ≤ 24, and the
   probabilities sum to 1 per node, so the kernels span at most 24 − 4 + 1 = 21 dimensions; 30 on NAS-Bench-201).
   Every weight step draws a fresh random α_arch ~ N(0, ``random_alpha_std``²) for every cell; only the
   GeneratingBlocks learn (gate g_G on, g_α off). *Our choice*: the skeleton's own layers — stem, the cells'
   input preprocessing, classifier (and NAS-Bench-201's residual blocks) — are not ops of the intensive space
   and the paper gives them no generator; they learn under the same gate g_G, with the same optimiser,
   rather than staying at their random initialisation.
3. *Search* (epochs I_train..``search_epochs`` = I_total; paper: 120). α_arch (initialised
   ``arch_init_std``·N(0, 1), "randomly") learns by gradient descent on the validation loss (the architecture
   half, Eq. 11) with the GeneratingBlocks frozen (basic search), except in the cross-search window
   [``cross_start``, ``cross_end``) (paper: 90, 100) where the GeneratingBlocks also learn on the weight half,
   one step after each α step. Optimisers (paper): w_G SGD lr 0.025 cosine over the I_total epochs to
   ``w_lr_min`` (the paper anneals to 0; phase 1 uses the same values), momentum 0.9, wd 3e-4; α Adam 3e-4,
   betas (0.5, 0.999), wd 1e-3 (DARTS's keys). Epochs are counted from the start of phase 2, as the paper's.
4. *Derivation*: per node the top T = 2 pairs by α_l, per cell: the final network has one genotype per cell
   (``PerCellGenotype``). As in the paper, the HyperNetwork has the final network's cells (the paper: 8 or 14
   cells for both): it is the space's ``build_final_supernet``, ``eval_layers`` cells at the search width
   ``search_channels``, and every one of its cells builds its own position (``space.derive_cells``). Phase 1's
   DARTS supernet has the same ``eval_layers`` cells (``IntensiveDarts``), as the paper derives O*_8 from an
   8-cell and O*_14 from a 14-cell supernet for its 8- and 14-cell HyperNetworks (Sec. 4.1), so the intensive
   space is found at the depth it is searched at. The final network is the space's evaluation protocol, the
   same for every method (20 cells at ``paper``, so phase 1 and the HyperNetwork have 20 cells there); the
   paper's 8- and 14-cell settings are the recorded variants ``--set eval_layers=8`` / ``14``. The α derived
   from is α*_arch as the paper defines it: the α the search *ends* with ("after the cross-search, close g_G
   and perform basic-search again to obtain the architecture parameters α*_arch", Sec. 3), not the α of the
   epoch with the best validation accuracy. The DARTS rule keeps the two strongest edges of a node and the
   best op on each, which is the top two pairs with distinct inputs; pairs outside the intensive space score
   0 and are never chosen.

**NAS-Bench-201** (our design). The benchmark's cell keeps one op on every edge, ``none`` included, and a cell
of the whole space must be scorable for the benchmark comparison, so the intensive space is the whole cell
(all 6 edges × 5 ops) and phase 1 is not run; the HyperNetwork is the search supernet (its cells share one
architecture in the benchmark); the Eq. 4 softmax is over each edge's five ops (an edge is the
space's unit of choice, ``space.choice_units``). The GeneratingBlocks predict the kernels of the benchmark's
1×1 and 3×3 convs. Every cell has its own α_l; the cell is derived from the mean over cells of their
probabilities, argmax per edge (the space's rule). The method's architecture score — the architecture-level
correlation — is its own claim: a cell's accuracy with predicted weights and no finetuning (every edge of
every cell discretised to the cell's op, the GeneratingBlocks fed that architecture's one-hot
probabilities) on the fixed validation subset of the correlation protocol; the one-shot correlation measures
the same with the harness's own protocol and sample.

**Discretisation** (operation-level and one-shot correlations): a discretised edge computes only its op, and
the cell's probabilities fed to the GeneratingBlocks put 1 on that (edge, op) and 0 on the edge's other ops,
so the predicted weights are those of the discretised architecture. Only ops of the intensive space can be
discretised to (``correlation_ops``).

**Costs**: the record gives every phase's seconds; the paper's headline search cost excludes the intensive
space (0.2 GPU-days plus 0.34 for the intensive space): ``search_seconds_without_intensive`` is that figure.
The shared search batch size is used in every phase (the paper: 98, and 200 for the intensive space), so
every method reads the same batches. The plan's time estimate times a phase-1 step (phase 2 on NAS-Bench-201).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.core.config import Key
from harness.core.data import DataInfo, SearchData
from harness.core.errors import UserError
from harness.core.registry import register_method
from harness.core.train import arch_adam, check_finite, cosine_lr, set_lr, sgd, to_device
from methods.base import ArchState, SearchMethod
from methods.darts import Darts
from spaces.base import EdgeId, SearchSpace, group_means
from spaces.ops import is_zero

Pairs = list[list[tuple[int, int]]]  # per unit (node), its (edge, op) pairs

# --- the intensive space -----------------------------------------------------------------------------------

def intensive_space(probs: np.ndarray, units: list[tuple[int, ...]], choices: Callable[[int], Iterable[int]],
                    k: int) -> Pairs:
    """Per unit (node), the ``k`` most likely (edge, op) pairs entering it by ``probs[edge, op]``, among the ops
    a genotype may choose on each edge (``choices(edge)``); ties: the lower edge, then the lower op. A unit of
    several edges keeps at least two of them (a node keeps two distinct inputs): if its top ``k`` leave one
    edge, the lowest-ranked pair is replaced by the most likely pair of another edge. Pairs sorted."""
    out = []
    for unit in units:
        ranked = sorted(((edge, op) for edge in unit for op in choices(edge)), key=lambda p: (-probs[p], p))
        top = ranked[:k]
        if len(unit) > 1 and len({edge for edge, _ in top}) < 2:
            other = next(pair for pair in ranked if pair[0] != top[0][0])
            top = top[:-1] + [other]
        out.append(sorted(top))
    return out


def stability(old: Pairs, new: Pairs, k: int) -> float:
    """Eq. 2: 1 − C / (M·K), C the pairs of ``new`` that are not in ``old`` (node by node), M the nodes."""
    changed = sum(len(set(n) - set(o)) for o, n in zip(old, new))
    return 1.0 - changed / (len(new) * k)


def superiority(spaces: list[Pairs], accs: list[float], t: int, n: int, k: int) -> float | None:
    """Eq. 3: Π_{0≤i≤n} s(O*_{t−i}, O*_t)·ε(α_{t−i}) (``accs``: fractions); None before epoch n (there are not n
    earlier epochs to backtrack)."""
    if t < n:
        return None
    return math.prod(stability(spaces[t - i], spaces[t], k) * accs[t - i] for i in range(n + 1))


class IntensiveDarts(Darts):
    """Phase 1's first-order DARTS on a supernet of the HyperNetwork's cells (``space.build_final_supernet``): the
    paper derives each HyperNetwork's intensive space from a supernet of its depth (O*_8, O*_14)."""

    def build_search_network(self, info: DataInfo) -> nn.Module:
        return self.space.build_final_supernet(self.make_edge, info)


# --- weight prediction -------------------------------------------------------------------------------------

class GeneratingBlock(nn.Module):
    """The cell's probabilities → FC → ``hidden`` → FC → every kernel of one op, split and reshaped (no
    activation between the layers: the paper names none)."""

    def __init__(self, code_size: int, shapes: list[torch.Size], hidden: int):
        super().__init__()
        self.shapes = [tuple(shape) for shape in shapes]
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.fc1 = nn.Linear(code_size, hidden)
        self.fc2 = nn.Linear(hidden, sum(self.sizes))

    def forward(self, code: torch.Tensor) -> list[torch.Tensor]:
        flat = self.fc2(self.fc1(code))
        return [chunk.reshape(shape) for chunk, shape in zip(flat.split(self.sizes), self.shapes)]


def has_convs(op: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in op.modules())


class GeneratedOp(nn.Module):
    """A candidate op whose convolutions take their kernels from its own GeneratingBlock: the op's stored
    conv weights are removed (they are not parameters: nothing but the generator can learn them)."""

    def __init__(self, op: nn.Module, code_size: int, hidden: int):
        super().__init__()
        self.op = op
        self.convs = [m for m in op.modules() if isinstance(m, nn.Conv2d)]  # not registered twice: a plain list
        shapes = [conv.weight.shape for conv in self.convs]
        for conv in self.convs:
            del conv.weight
            conv.weight = None
        self.generator = GeneratingBlock(code_size, shapes, hidden)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        for conv, kernel in zip(self.convs, self.generator(code)):
            conv.weight = kernel
        try:
            return self.op(x)
        finally:
            for conv in self.convs:
                conv.weight = None


class CellCodes:
    """What the HyperNetwork's edges read: each cell's probability vector of the current forward pass
    (``codes[cell]``) and the method's architecture state (discretisation)."""

    def __init__(self, arch: ArchState, encode: Callable[[], dict[int, torch.Tensor]]):
        self.arch, self.encode = arch, encode
        self.codes: dict[int, torch.Tensor] = {}


class HyperEdge(nn.Module):
    """Σ p · o(x) over the edge's ops in the intensive space, p its pairs' entries of the cell's probabilities
    (Eq. 4); a discretised edge computes only its op. An edge without pairs adds nothing."""

    def __init__(self, edge: EdgeId, candidates: nn.ModuleList, keep: list[int], positions: list[int],
                 code_size: int, hidden: int, state: CellCodes):
        super().__init__()
        self.edge, self.keep, self.positions, self.state = edge, tuple(keep), positions, state
        ops = [candidates[edge.slot(op)] for op in keep]
        self.ops = nn.ModuleList(GeneratedOp(op, code_size, hidden) if has_convs(op) else op for op in ops)

    def run(self, k: int, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        op = self.ops[k]
        return op(x, code) if isinstance(op, GeneratedOp) else op(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = self.state.codes[self.edge.cell]
        forced = self.state.arch.forced.get((self.edge.group, self.edge.index))
        if forced is not None:
            return self.run(self.keep.index(forced), x, code)
        total = None
        for k, op in enumerate(self.ops):
            if is_zero(op):  # adds exactly nothing (as DARTS's weighted sum)
                continue
            term = code[self.positions[k]] * self.run(k, x, code)
            total = term if total is None else total + term
        if total is None:
            return self.ops[0](x) if len(self.ops) else x.new_zeros(())
        return total


class HyperNetwork(nn.Module):
    """The space's supernet with HyperEdges; every forward first computes the cells' probabilities."""

    def __init__(self, body: nn.Module, state: CellCodes):
        super().__init__()
        self.body, self.state = body, state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.state.codes = self.state.encode()
        return self.body(x)


# --- the method --------------------------------------------------------------------------------------------

def _epochs(help_text: str, default: int) -> Key:
    return Key(default, f"ADWPNAS: {help_text}", "[1, inf)")


@register_method
class Adwpnas(SearchMethod):
    name = "adwpnas"
    description = ("ADWPNAS: intensive space, HyperNetwork of GeneratingBlocks trained on random α, α search with "
                   "predicted weights, one genotype per cell")
    needs = frozenset({"edges", "cells"})  # one α and one genotype per cell
    excludes = {"hetero": "no intensive-space design for NOS's two-tier blocks (DARTS's and NB201's only)"}
    keys = {
        **Darts.keys,
        "hyper_epochs": _epochs("HyperNetwork training epochs (I_train; random α, only the GeneratingBlocks learn)",
                                60),
        "cross_start": _epochs("first cross-search epoch (GeneratingBlocks and α learn), counted from the start of "
                               "HyperNetwork training", 90),
        "cross_end": _epochs("end of the cross-search window (exclusive)", 100),
        "random_alpha_std": Key(1.0, "ADWPNAS: std of the random α of HyperNetwork training, N(0, std^2)", "(0, inf)",
                                origin="harness"),
        "generator_hidden": Key(64, "ADWPNAS: units of the GeneratingBlocks' hidden layer", "[1, inf)"),
    }
    space_keys = {"darts": {
        "intensive_epochs": Key(30, "ADWPNAS: epochs of the DARTS supernet that derives the intensive space "
                                    "(more than intensive_n)", "[1, inf)"),
        "intensive_k": Key(6, "ADWPNAS: K, the (edge, op) pairs per node of the intensive space", "[2, inf)"),
        "intensive_n": Key(2, "ADWPNAS: n, the epochs the superiority backtracks", "[0, inf)"),
    }}
    ignored_keys = frozenset({"order"})  # phase 1 is first-order DARTS; the search has no unrolled gradient
    defaults = {"search_epochs": 120, "w_lr_min": 0.0}
    budgets = {
        "smoke": {"intensive_epochs": 3, "search_epochs": 5, "hyper_epochs": 2, "cross_start": 3, "cross_end": 4},
        "small": {"intensive_epochs": 4, "search_epochs": 12, "hyper_epochs": 6, "cross_start": 9, "cross_end": 10},
    }

    @classmethod
    def validate_config(cls, cfg: dict[str, Any], space: type[SearchSpace]) -> None:
        total, hyper, start, end = (int(cfg[k]) for k in ("search_epochs", "hyper_epochs", "cross_start", "cross_end"))
        if hyper >= total:
            raise UserError(f"ADWPNAS needs hyper_epochs < search_epochs (HyperNetwork training, then search), "
                            f"got hyper_epochs={hyper}, search_epochs={total}")
        if not hyper <= start <= end <= total:
            raise UserError(f"ADWPNAS's cross-search window must lie in the search: hyper_epochs <= cross_start <= "
                            f"cross_end <= search_epochs, got {hyper}, {start}, {end}, {total}")
        if "intensive_epochs" in cfg:
            if cfg["intensive_epochs"] <= cfg["intensive_n"]:
                raise UserError(f"the superiority backtracks intensive_n={cfg['intensive_n']} epochs, so "
                                f"intensive_epochs must exceed it, got {cfg['intensive_epochs']}")
            built = space(cfg)
            pairs = min(sum(len(built.choice_ops(group, e)) for e in unit)
                        for group in built.arch_shape() for unit in built.choice_units(group))
            if cfg["intensive_k"] > pairs:
                raise UserError(f"intensive_k={cfg['intensive_k']} exceeds the {pairs} (edge, op) pairs of the "
                                f"smallest node")

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], info: DataInfo, device: torch.device,
                 seed: int):
        super().__init__(space, cfg, info, device, seed)
        self.intensive_epochs = int(cfg.get("intensive_epochs", 0))
        self.seconds = {phase: 0.0 for phase in ("intensive", "hyper", "search")}
        # phase 1's per-epoch intensive spaces, accuracies and superiorities, and the kept spaces
        self.intensive: dict[str, Any] = {"epochs": [], "chosen": {}}
        self.darts: Darts | None = None
        self.state: CellCodes | None = None
        self.random_alpha: torch.Tensor | None = None  # the random α of the current HyperNetwork step
        if self.intensive_epochs:
            self.darts = IntensiveDarts(space, {**cfg, "search_epochs": self.intensive_epochs, "order": 1}, info,
                                        device, seed)
            self.arch, self.supernet, self.w_opt = self.darts.arch, self.darts.supernet, self.darts.w_opt
        else:
            self.build_hypernetwork({group: self.full_space(group) for group in space.arch_shape()})

    # --- the HyperNetwork -----------------------------------------------------------------------------
    def full_space(self, group: str) -> Pairs:
        """Every (edge, op) pair of every unit: the intensive space of a space without phase 1."""
        return [[(e, op) for e in unit for op in self.space.edge_ops(group, e)]
                for unit in self.space.choice_units(group)]

    def build_hypernetwork(self, spaces: dict[str, Pairs]) -> None:
        """The HyperNetwork over the intensive ``spaces`` (per group, per unit its pairs), its α and optimisers;
        phase 1's supernet is dropped."""
        self.darts = None
        self.spaces = {group: [[tuple(pair) for pair in unit] for unit in units] for group, units in spaces.items()}
        self.layout = {group: [pair for unit in units for pair in unit] for group, units in self.spaces.items()}
        sizes = {len(pairs) for pairs in self.layout.values()}
        if len(sizes) != 1:
            raise ValueError(f"every group's intensive space must have the same size, got {sizes}")
        self.code_size = sizes.pop()
        self.arch = ArchState()
        self.state = CellCodes(self.arch, self.encode)
        self.cell_groups: dict[int, str] = {}
        body = self.space.build_final_supernet(self.make_edge, self.info)
        self.cells = sorted(self.cell_groups)
        self.supernet = to_device(HyperNetwork(body, self.state), self.cfg, self.device)
        self.arch.params["alpha"] = nn.Parameter(
            self.cfg["arch_init_std"] * torch.randn(len(self.cells), self.code_size, device=self.device))
        self.w_opt = sgd(self.supernet.parameters(), self.cfg, "w")
        self.a_opt = arch_adam([self.arch.params["alpha"]], self.cfg)
        # per cell: each entry's edge, op and unit (for the per-unit softmax and discretisation)
        rows = [self.layout[self.cell_groups[c]] for c in self.cells]
        self.entry_edge = torch.tensor([[e for e, _ in r] for r in rows], device=self.device)
        self.entry_op = torch.tensor([[o for _, o in r] for r in rows], device=self.device)
        units = [[u for u, unit in enumerate(self.spaces[self.cell_groups[c]]) for _ in unit] for c in self.cells]
        unit_ids = torch.tensor(units, device=self.device)
        unit_range = torch.arange(int(unit_ids.max()) + 1, device=self.device)
        self.unit_mask = unit_ids[:, None, :] == unit_range[None, :, None]  # [cells, units, entries]
        self.cell_group_names = [self.cell_groups[c] for c in self.cells]

    def make_edge(self, edge: EdgeId, candidates: nn.ModuleList) -> nn.Module:
        self.cell_groups[edge.cell] = edge.group
        layout = self.layout[edge.group]
        keep = [op for e, op in layout if e == edge.index]
        positions = [layout.index((edge.index, op)) for op in keep]
        return HyperEdge(edge, candidates, keep, positions, self.code_size, int(self.cfg["generator_hidden"]),
                         self.state)

    def probabilities(self, alpha: torch.Tensor, forced: dict[tuple[str, int], int] | None = None) -> torch.Tensor:
        """[cells, entries]: the softmax of each cell's α over each unit's entries (Eq. 4); a discretised edge's
        entries are 1 for its op and 0 for the others."""
        logits = alpha[:, None, :].masked_fill(~self.unit_mask, float("-inf"))
        probs = (F.softmax(logits, dim=-1) * self.unit_mask).sum(dim=1)
        if forced:
            zero = torch.zeros_like(self.unit_mask[:, 0])
            one = torch.zeros_like(zero)
            for (group, index), op in forced.items():
                rows = torch.tensor([g == group for g in self.cell_group_names], device=alpha.device)[:, None]
                on_edge = rows & (self.entry_edge == index)
                zero, one = zero | on_edge, one | (on_edge & (self.entry_op == op))
            probs = torch.where(zero, one.to(probs.dtype), probs)
        return probs

    def encode(self) -> dict[int, torch.Tensor]:
        """Every cell's probabilities for this forward pass: from the random α of a HyperNetwork step, else
        from α_arch, with the discretised edges' entries one-hot."""
        alpha = self.random_alpha if self.random_alpha is not None else self.arch.params["alpha"]
        probs = self.probabilities(alpha, self.arch.forced)
        return {cell: probs[row] for row, cell in enumerate(self.cells)}

    # --- search ---------------------------------------------------------------------------------------
    def num_epochs(self) -> int:
        return self.intensive_epochs + int(self.cfg["search_epochs"])

    def phase(self, epoch: int) -> str:
        """``intensive``, ``hyper``, ``search`` (basic search) or ``cross`` (cross search) at ``epoch``."""
        if epoch < self.intensive_epochs:
            return "intensive"
        rel = epoch - self.intensive_epochs
        if rel < int(self.cfg["hyper_epochs"]):
            return "hyper"
        return "cross" if int(self.cfg["cross_start"]) <= rel < int(self.cfg["cross_end"]) else "search"

    def train_epoch(self, epoch: int, data: SearchData) -> dict[str, Any]:
        start, phase = time.perf_counter(), self.phase(epoch)
        if phase == "intensive":
            metrics = self.darts.train_epoch(epoch, data)
            metrics.update(self.record_intensive(epoch, float(metrics["val_acc"])))
        else:
            if self.state is None:  # the first epoch after phase 1
                self.build_hypernetwork(self.chosen_spaces())
            set_lr(self.w_opt, cosine_lr(epoch - self.intensive_epochs, int(self.cfg["search_epochs"]),
                                         self.cfg["w_lr"], self.cfg["w_lr_min"]))
            loss_sum, correct, count = 0.0, 0.0, 0
            for weight_batch, arch_batch in self.step_batches(epoch, data):
                stats = self.train_step(weight_batch, arch_batch, epoch)
                self.check_step(stats)
                loss_sum, correct, count = loss_sum + stats["loss"] * stats["n"], correct + stats["correct"], \
                    count + stats["n"]
            val_loss, val_acc = self.validate(data)
            check_finite(val_loss)
            metrics = {"train_loss": loss_sum / count, "train_acc": 100.0 * correct / count, "val_loss": val_loss,
                       "val_acc": val_acc, "lr": self.w_opt.param_groups[0]["lr"],
                       "genotype": self.space.to_str(self.derive())}
        self.seconds["search" if phase == "cross" else phase] += time.perf_counter() - start
        return {**metrics, "adwp_phase": phase}

    def step_batches(self, epoch: int, data: SearchData) -> Iterable[tuple[Any, Any]]:
        """HyperNetwork training: weight-half batches; basic search: architecture-half batches; cross search: both."""
        phase = self.phase(epoch)
        if phase == "hyper":
            return ((batch, None) for batch in data.weight_batches(epoch))
        if phase == "search":
            return ((None, batch) for batch in data.arch_batches(epoch))
        return zip(data.weight_batches(epoch), data.arch_batches(epoch))

    def train_step(self, weight_batch: Any, arch_batch: Any, epoch: int) -> dict[str, float]:
        phase = self.phase(epoch)
        if phase == "intensive":
            return self.darts.train_step(weight_batch, arch_batch, epoch)
        self.supernet.train()
        stats: dict[str, float] = {}
        if phase != "hyper":  # g_α on: α on the architecture half, the GeneratingBlocks frozen
            x, y = arch_batch
            self.a_opt.zero_grad(set_to_none=True)
            logits = self.supernet(x)
            loss = F.cross_entropy(logits, y)
            alpha = self.arch.params["alpha"]
            alpha.grad, = torch.autograd.grad(loss, [alpha])
            self.a_opt.step()
            stats = {"loss": loss.item(), "correct": (logits.argmax(1) == y).sum().item(), "n": len(y)}
        if phase != "search":  # g_G on: the GeneratingBlocks (and the skeleton) on the weight half
            x, y = weight_batch
            if phase == "hyper":
                self.random_alpha = self.cfg["random_alpha_std"] * torch.randn_like(self.arch.params["alpha"])
            try:
                self.w_opt.zero_grad(set_to_none=True)
                logits = self.supernet(x)
                loss = F.cross_entropy(logits, y)
                loss.backward(inputs=[p for p in self.supernet.parameters() if p.requires_grad])
            finally:
                self.random_alpha = None
            nn.utils.clip_grad_norm_(self.supernet.parameters(), self.cfg["grad_clip"])
            self.w_opt.step()
            stats = {"loss": loss.item(), "correct": (logits.argmax(1) == y).sum().item(), "n": len(y)}
        return stats

    # --- phase 1 --------------------------------------------------------------------------------------
    def record_intensive(self, epoch: int, val_acc: float) -> dict[str, Any]:
        """After phase-1 epoch ``epoch`` (validation accuracy ``val_acc``, percent): its intensive spaces and
        superiorities; after the last, the kept spaces."""
        k, n = int(self.cfg["intensive_k"]), int(self.cfg["intensive_n"])
        probs = self.darts.importance()
        entry: dict[str, Any] = {"epoch": epoch, "val_acc": val_acc, "spaces": {}, "superiority": {}}
        history = self.intensive["epochs"]
        for group in self.space.arch_shape():
            entry["spaces"][group] = intensive_space(probs[group], self.space.choice_units(group),
                                                     lambda e, g=group: self.space.choice_ops(g, e), k)
            spaces = [h["spaces"][group] for h in history] + [entry["spaces"][group]]
            accs = [h["val_acc"] / 100.0 for h in history] + [val_acc / 100.0]
            entry["superiority"][group] = superiority(spaces, accs, epoch, n, k)
        history.append(entry)
        if epoch == self.intensive_epochs - 1:
            for group in self.space.arch_shape():
                scored = [(h["superiority"][group], h["epoch"]) for h in history if h["superiority"][group] is not None]
                best, at = max(scored)  # ties: the later epoch
                self.intensive["chosen"][group] = {"epoch": at, "superiority": best,
                                                   "space": history[at]["spaces"][group]}
        return {f"superiority_{group}": s for group, s in entry["superiority"].items() if s is not None}

    def chosen_spaces(self) -> dict[str, Pairs]:
        return {group: chosen["space"] for group, chosen in self.intensive["chosen"].items()}

    # --- results --------------------------------------------------------------------------------------
    def cell_scores(self) -> dict[int, np.ndarray]:
        """Per cell, an ``arch_shape`` matrix: its probabilities on its pairs (Eq. 4), 0 elsewhere; in phase 1
        the DARTS supernet's softmax(α) of the cell's type."""
        if self.state is None:
            shared = self.darts.importance()
            return {m.edge.cell: shared[m.edge.group] for m in self.supernet.modules()
                    if isinstance(getattr(m, "edge", None), EdgeId)}
        probs = self.probabilities(self.arch.params["alpha"].detach()).cpu().numpy()
        shapes = self.space.arch_shape()
        scores = {}
        for row, cell in enumerate(self.cells):
            group = self.cell_groups[cell]
            matrix = np.zeros(shapes[group])
            for (e, op), p in zip(self.layout[group], probs[row]):
                matrix[e, op] = p
            scores[cell] = matrix
        return scores

    def groups(self) -> dict[int, str]:
        if self.state is not None:
            return dict(self.cell_groups)
        return {m.edge.cell: m.edge.group for m in self.supernet.modules() if isinstance(getattr(m, "edge", None),
                                                                                           EdgeId)}

    def importance(self) -> dict[str, np.ndarray]:
        """Per group, the mean over its cells of their probabilities (phase 1: the DARTS supernet's)."""
        if self.state is None:
            return self.darts.importance()
        return group_means(self.cell_scores(), self.cell_groups)

    def derive(self) -> Any:
        """The space's derivation from every cell's own probabilities (``space.derive_cells``)."""
        return self.space.derive_cells(self.cell_scores(), self.groups())

    def correlation_ops(self, group: str, index: int) -> list[int]:
        """The edge's ops in the intensive space (every choice during phase 1)."""
        if self.state is None:
            return super().correlation_ops(group, index)
        choices = set(self.space.choice_ops(group, index))
        return sorted(op for e, op in self.layout[group] if e == index and op in choices)

    def score_architectures(self, genotypes: list[Any], data: SearchData | None = None) -> np.ndarray | None:
        """A cell's accuracy with predicted weights and no finetuning (every edge discretised to the cell's op,
        the GeneratingBlocks fed its one-hot probabilities) on the correlation protocol's fixed validation
        subset; None without data. A cell with an op outside the intensive space scores NaN (left out)."""
        if data is None:
            return None
        return self.discrete_accuracies(genotypes, data.val_batches(limit_batches=int(self.cfg["corr_batches"])))

    def record_info(self) -> dict[str, Any]:
        """The phases and their costs, the intensive spaces with the superiority curve, and every cell's
        probabilities and genotype (``space.describe_cells``)."""
        scores, groups = self.cell_scores(), self.groups()
        described = self.space.describe_cells(scores, groups)
        names = self.space.op_names
        intensive: dict[str, Any]
        if self.intensive_epochs:
            intensive = {
                "k": int(self.cfg["intensive_k"]), "n": int(self.cfg["intensive_n"]),
                "curve": [{"epoch": h["epoch"], "val_acc": h["val_acc"], "superiority": h["superiority"]}
                          for h in self.intensive["epochs"]],
                "chosen": {group: {"epoch": c["epoch"], "superiority": c["superiority"],
                                   "space": [[[e, names[op]] for e, op in unit] for unit in c["space"]]}
                           for group, c in self.intensive["chosen"].items()},
            }
        else:
            intensive = {"space": "the whole cell: every (edge, op) pair (no phase 1 on this space)"}
        generators = [m for m in self.supernet.modules() if isinstance(m, GeneratingBlock)]
        cells = [{"cell": cell, "group": groups[cell], "probabilities": scores[cell].tolist(),
                  **described.get("cells", {}).get(cell, {})} for cell in sorted(scores)]
        return {
            "adwpnas": {
                "phase_epochs": {"intensive": self.intensive_epochs, "hyper": int(self.cfg["hyper_epochs"]),
                                 "cross": [int(self.cfg["cross_start"]), int(self.cfg["cross_end"])],
                                 "total": int(self.cfg["search_epochs"])},
                "phase_seconds": dict(self.seconds),
                "search_seconds_without_intensive": self.seconds["hyper"] + self.seconds["search"],
                "intensive": intensive,
                "generating_blocks": len(generators),
                "generator_params_m": sum(p.numel() for g in generators for p in g.parameters()) / 1e6,
            },
            "cells": cells, **{k: v for k, v in described.items() if k != "cells"},
        }

    # --- checkpoints ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        common = {"seconds": dict(self.seconds), "intensive": self.intensive}
        if self.state is None:
            return {**common, "darts": self.darts.state_dict()}
        spaces = {g: [[list(p) for p in unit] for unit in units] for g, units in self.spaces.items()}
        return {**common, "spaces": spaces,
                "supernet": self.supernet.state_dict(), "alpha": self.arch.params["alpha"].detach().clone(),
                "w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seconds = dict(state["seconds"])
        self.intensive = state["intensive"]
        if "darts" in state:
            self.darts.load_state_dict(state["darts"])
            return
        self.build_hypernetwork(state["spaces"])
        self.supernet.load_state_dict(state["supernet"])
        with torch.no_grad():
            self.arch.params["alpha"].copy_(state["alpha"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
