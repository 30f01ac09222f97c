"""AGNAS: attention-guided micro and macro neural architecture search (Sun et al., ICML 2022).

No architecture parameters and no bilevel step. Every searchable edge concatenates the outputs of its m
candidate ops, F_con = [o_1(x), ..., o_m(x)] ∈ R^{B×mC×H×W}, and applies an SE-style attention module to it
(Eqs. 4–8):

    Atten = σ(W_2 ReLU(W_1 GAP(F_con))),   W_1 ∈ R^{(mC/r)×mC}, W_2 ∈ R^{mC×(mC/r)} (no biases)
    F_out = Σ_k (F_con ⊗ Atten)[kC:(k+1)C]

so the edge outputs the sum of its m re-weighted C-channel blocks. The attention modules train with the
network weights: one SGD step per batch of the weight half. On ``darts`` and ``nb201`` the optimiser is the
shared search protocol (AGNAS's micro code is DARTS's: lr cosine from ``w_lr`` to ``w_lr_min``, momentum,
weight decay on every weight, gradient-norm clip, plain cross-entropy); on ``proxyless`` it is the macro code's
(below). r = ``attention_reduction`` (8, the reference code's value on the DARTS space); mC/r is rounded down,
and at least 1.

**Operation importance** (Eq. 6): the importance of candidate k on an edge is the sum of its C attention
values, accumulated over every image of the architecture half (forward only, no gradients, BatchNorm on
its running statistics, so an image's attention does not depend on its batch). That pass is the search's
per-epoch validation pass, so every epoch's importance (and genotype) comes at no extra cost; the last
epoch's is the one derived from. Importance is a sum over images (not a mean), as in the paper.

The pass reads the architecture half with the training augmentation (random crop, and flip where the
dataset allows it), as the reference code does: its validation loader samples the training set built with
the training transform, a new random draw every epoch. Epoch e's pass reads ``SearchData.arch_batches(e)``,
the architecture half augmented and shuffled with a generator seeded by the trial's seed and e, so a seed
sees the same images every run, the same images as every other method's architecture step of epoch e (at
the same batch size); the order changes the sums only by rounding. The epoch's reported ``val_loss`` and ``val_acc``
come from the same pass, so they are measured on augmented images, as the reference code's validation
accuracy is (a second, unaugmented pass would add about a quarter to an epoch: a forward over one half next
to a forward and backward over the other), and are not on the same images as the other methods' validation
accuracy. ``importance_augment=false`` reads the unaugmented architecture half in fixed order
(``SearchData.val_batches``) for both, as before; it is the default of the macro search (space
``proxyless``), whose reference pass reads unaugmented images (resized and centre-cropped ImageNet
validation images).

Each search cell has its own importance matrix; the genotype is the space's derivation from per-cell scores
(``space.derive_cells``). **DARTS space**: each search cell gets its own genotype (the DARTS rule: top-2
incoming edges per node, ``none`` excluded), and the final network has its own cell per stage: the space's
``stage_cells`` picks the search cell of each stage's normal cells — ``first`` (AGNAS's reference
assignment: search cells 0, 3, 6 of 8), ``last``, three indices, or ``each`` (one per position) — and the
reduction cells are the two search reduction cells. The record lists every search cell's genotype and what
it was used for (``space.describe_cells``). **NAS-Bench-201**: the importance of an edge position is
averaged over all cells (the benchmark's cell is shared), and the cell is the argmax per edge with ``none``
allowed (the space's rule).

**Macro search** (the ProxylessNAS chain, space ``proxyless``): every choice block is an edge whose candidates
are whole blocks — the six MBConvs, each with its residual where the block can be skipped, plus the block's
input itself (``zero``: the block skipped) — so the same module concatenates "the candidate blocks plus the
input" as the paper says, with r = 16 (``space_defaults``), and an op's importance is its attention sum
divided by the block's output channels (``importance_norm=per_channel``, the reference code's block
importance); the space derives the chain by argmax per block. The weights and attention train with the macro
code's recipe (``attention_search/train.py`` and ``utils.py``; the search recipe keys, ``space_defaults``): SGD,
momentum 0.9 (no Nesterov), lr 0.25 decayed linearly to 5e-4 (``w_lr_schedule=linear``), weight decay 4e-5 on
the 4-D convolution kernels and the classifier's weight and bias only (``w_decay_params=conv_classifier``: not on
BatchNorm, and not on the attention's linear layers, whose decay would pull the sigmoids towards ½ and narrow
the importance margins), label smoothing 0.1 (``w_label_smoothing``), every gradient entry clipped to ±5
(``grad_clip_mode=value``), batch 512 at the ``paper`` budget; ``smoke`` and ``small`` set one batch size for
every method (128, 64), and the rates, the code's for 512 images (``w_lr_batch``), then scale by batch / 512
(the linear scaling rule: at 64 the code's 0.25 becomes 0.031; unscaled, the small budget's supernet ended
at 15.7 % validation accuracy on digits, against 95.7 % scaled). Remaining differences from the macro code: the
learning rate changes per epoch, not per step;
the weights train on the weight half of the shared split for the shared number of search epochs (50, the
paper's; the code: 120 epochs on its whole ImageNet subset); BatchNorm is the space's (momentum 0.1, eps 1e-3;
the code's PyTorch defaults) and the widths the space's size setting (the code: the ProxylessNAS-GPU widths).

**Ranking correlations**: the harness's operation-level protocol (discretise an edge position in every cell
of its group, measure the supernet's accuracy on the fixed subset of the architecture half) is the paper's
Fig. 3 protocol, run on the same sampled edges and batches as every other method. AGNAS's score for an edge
position is its importance averaged over the cells of the group (the same averaging as on NAS-Bench-201);
``importance()`` returns those group averages. A discretised edge computes only the kept op and passes zeros
for the others through the attention module (the removed candidates contribute nothing, the module stays).
The ``none`` op's block is zeros as well, so it is never computed: it enters the attention's pooling as
zeros and adds nothing to the output (the same math as concatenating its zeros).

Our choices: the candidates are concatenated in the space's op order (the reference code puts ``none``
last; the module is the same up to a permutation of its units' random initialisation); r = 8 on
NAS-Bench-201 too (no public script); the per-epoch genotype in the history comes from the per-epoch
importance. Paper settings: 50 search epochs, batch 64.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.core.config import SEARCH_RECIPE_KEYS, Key
from harness.core.data import DataInfo, SearchData
from harness.core.registry import register_method
from harness.core.train import (
    LR_SCHEDULES,
    clip_gradients,
    decay_groups,
    evaluate,
    lr_scale,
    sgd,
    to_device,
    weight_loss,
)
from methods.base import ArchState, SearchMethod
from spaces.base import EdgeId, SearchSpace, group_means
from spaces.ops import is_zero


class AttentionTally:
    """Per (cell, edge): the sum over images of each candidate's attention sum, while ``collecting`` (in the
    order of the edge's candidates, ``edges[key].ops``)."""

    def __init__(self) -> None:
        self.active = False
        self.sums: dict[tuple[int, int], torch.Tensor] = {}
        self.images: dict[tuple[int, int], int] = {}
        self.edges: dict[tuple[int, int], EdgeId] = {}

    def add(self, edge: EdgeId, attention: torch.Tensor) -> None:
        """``attention``: [B, m, C] of one forward pass."""
        key = (edge.cell, edge.index)
        self.edges[key] = edge
        per_op = attention.detach().to(torch.float64).sum(dim=(0, 2))  # stays on the device: no sync per edge
        self.sums[key] = self.sums[key] + per_op if key in self.sums else per_op
        self.images[key] = self.images.get(key, 0) + attention.shape[0]

    @contextmanager
    def collecting(self) -> Iterator[None]:
        """Start from zero and accumulate during the block."""
        self.sums, self.images, self.active = {}, {}, True
        try:
            yield
        finally:
            self.active = False


class AttentionEdge(nn.Module):
    """The candidates' outputs concatenated, re-weighted channel-wise by SE attention, and summed per block."""

    def __init__(self, edge: EdgeId, candidates: nn.ModuleList, reduction_ratio: int, arch: ArchState,
                 tally: AttentionTally):
        super().__init__()
        self.edge, self.ops, self.arch, self.tally = edge, candidates, arch, tally
        width = len(candidates) * edge.channels
        hidden = max(1, width // reduction_ratio)
        self.fc1 = nn.Linear(width, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, width, bias=False)

    def attention(self, pooled: torch.Tensor) -> torch.Tensor:
        """σ(W_2 ReLU(W_1 GAP(F_con))) from ``pooled`` = GAP(F_con) as [B, m, C]; returns [B, m, C]."""
        b, m, c = pooled.shape
        return torch.sigmoid(self.fc2(F.relu(self.fc1(pooled.reshape(b, m * c))))).reshape(b, m, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F_con is never materialised: each block is pooled and re-weighted on its own, so every op's output
        # keeps its memory layout and no [B, m, C, H, W] copy is made. A block known to be zero — a ``none``
        # op, or an op removed by discretisation — is not computed: it pools to zeros for the attention and
        # adds nothing to the sum.
        forced = self.arch.forced.get((self.edge.group, self.edge.index))
        if forced is None:
            outs = [None if is_zero(op) else op(x) for op in self.ops]
        else:  # discretised: only the kept op runs; the removed ones contribute zeros
            outs = [self.ops[k](x) if op == forced else None for k, op in enumerate(self.edge.ops)]
        if all(out is None for out in outs):  # every candidate is `none`: compute one for its shape
            outs[0] = self.ops[0](x)
        ref = next(out for out in outs if out is not None)
        zeros = ref.new_zeros(ref.shape[:2])
        pooled = torch.stack([zeros if out is None else out.mean(dim=(2, 3)) for out in outs], dim=1)
        attention = self.attention(pooled)
        if self.tally.active:
            self.tally.add(self.edge, attention)
        total = None
        for k, out in enumerate(outs):
            if out is not None:
                term = out * attention[:, k, :, None, None]
                total = term if total is None else total + term
        return total


@register_method
class Agnas(SearchMethod):
    name = "agnas"
    description = "AGNAS: attention over the concatenated candidates, importance = summed attention (micro, macro)"
    needs = frozenset({"edges", "tensor-ops"})  # it pools and concatenates the candidates' outputs
    keys = {
        **SearchMethod.keys,
        # the bottleneck has max(1, mC // r) units, so every r >= 1 builds
        "attention_reduction": Key(8, "AGNAS: reduction ratio r of the attention module's bottleneck "
                                      "(mC -> mC/r -> mC)", "[1, inf)"),
        "importance_norm": Key("sum", "AGNAS: an op's importance is its attention 'sum' (micro search, Eq. 6) or the "
                                      "sum divided by the edge's output channels, 'per_channel' (macro search)",
                               choices=("sum", "per_channel")),
        **SEARCH_RECIPE_KEYS,
        "importance_augment": Key(True, "AGNAS: the importance (validation) pass reads the architecture half with "
                                        "the training augmentation, seeded per epoch (the reference code's); "
                                        "false: unaugmented"),
    }
    # macro search (the ProxylessNAS chain): r = 16, importance = attention sum ÷ C_out and an unaugmented
    # importance pass, and the training recipe of AGNAS's macro code (attention_search/train.py, utils.py): SGD
    # lr 0.25 decayed linearly to 5e-4, momentum 0.9, weight decay 4e-5 on the conv kernels and the classifier
    # only, label smoothing 0.1, each gradient entry clipped to 5, batch 512
    space_defaults = {"proxyless": {"attention_reduction": 16, "importance_norm": "per_channel",
                                    "importance_augment": False, "search_batch_size": 512, "w_lr": 0.25,
                                    "w_lr_min": 5e-4, "w_weight_decay": 4e-5, "w_lr_schedule": "linear",
                                    "w_decay_params": "conv_classifier", "grad_clip_mode": "value",
                                    "w_label_smoothing": 0.1, "w_lr_batch": 512}}
    scores_per_cell = True  # the pair has the space's per-cell derivation keys (the DARTS space's stage_cells)
    defaults = {"search_epochs": 50}

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], info: DataInfo, device: torch.device,
                 seed: int):
        super().__init__(space, cfg, info, device, seed)
        self.tally = AttentionTally()
        self.cell_groups: dict[int, str] = {}  # search cell → its group
        self.cell_scores: dict[int, np.ndarray] = {}  # search cell → [edges, ops] importance
        self.importance_images = 0  # images the importance was accumulated over
        self.epoch = 0  # the epoch being searched (its augmentation is the importance pass's)
        self.supernet = to_device(space.build_supernet(self.make_edge, info), cfg, device)
        self.w_opt = sgd(decay_groups(self.supernet, cfg["w_decay_params"]), cfg, "w")

    def make_edge(self, edge: EdgeId, candidates: nn.ModuleList) -> nn.Module:
        self.cell_groups[edge.cell] = edge.group
        return AttentionEdge(edge, candidates, int(self.cfg["attention_reduction"]), self.arch, self.tally)

    # --- search ---------------------------------------------------------------------------------
    def step_batches(self, epoch: int, data: SearchData) -> Iterable[tuple[Any, Any]]:
        """Weight-half batches only: the architecture half is not trained on."""
        return ((weight_batch, None) for weight_batch in data.weight_batches(epoch))

    def weight_lr(self, epoch: int) -> float:
        """``w_lr`` to ``w_lr_min`` by the search recipe's ``w_lr_schedule`` (cosine, or the macro code's linear),
        scaled to the search batch (``lr_scale``)."""
        schedule = LR_SCHEDULES[self.cfg["w_lr_schedule"]]
        return lr_scale(self.cfg) * schedule(epoch, self.num_epochs(), self.cfg["w_lr"], self.cfg["w_lr_min"])

    def train_epoch(self, epoch: int, data: SearchData) -> dict[str, Any]:
        self.epoch = epoch  # the importance pass's augmentation is the epoch's
        return super().train_epoch(epoch, data)

    def importance_batches(self, data: SearchData) -> Any:
        """The whole architecture half for the importance pass: the epoch's augmented batches (the reference
        code's), or unaugmented in fixed order with ``importance_augment=false``."""
        return data.arch_batches(self.epoch) if self.cfg["importance_augment"] else data.val_batches()

    def validate(self, data: SearchData) -> tuple[float, float]:
        """The validation pass over the whole architecture half, which also accumulates the importance."""
        return self.measure_importance(self.importance_batches(data))

    def train_step(self, weight_batch: Any, arch_batch: Any, epoch: int) -> dict[str, float]:
        """One SGD step of the weights and attention modules (AGNAS has no architecture step)."""
        x, y = weight_batch
        self.supernet.train()
        self.w_opt.zero_grad(set_to_none=True)
        logits = self.supernet(x)
        loss = weight_loss(logits, y, self.cfg)
        loss.backward()
        clip_gradients(self.supernet.parameters(), self.cfg)
        self.w_opt.step()
        return {"loss": loss.item(), "correct": (logits.argmax(1) == y).sum().item()}

    def measure_importance(self, batches: Any) -> tuple[float, float]:
        """Forward ``batches`` (eval mode, no gradients) and set every cell's importance to the attention
        accumulated over them; returns their loss and accuracy."""
        with self.tally.collecting():
            val_loss, val_acc = evaluate(self.supernet, batches)
        shapes = self.space.arch_shape()
        scores = {cell: np.zeros(shapes[group]) for cell, group in self.cell_groups.items()}
        per_channel = self.cfg["importance_norm"] == "per_channel"
        for (cell, index), sums in self.tally.sums.items():
            edge = self.tally.edges[(cell, index)]
            scores[cell][index, list(edge.ops)] = sums.cpu().numpy() / (edge.channels if per_channel else 1)
        self.cell_scores = scores
        self.importance_images = next(iter(self.tally.images.values()), 0)
        return val_loss, val_acc

    # --- results --------------------------------------------------------------------------------
    def importance(self) -> dict[str, np.ndarray] | None:
        """Per group, the importance averaged over the group's cells (None before the first measurement)."""
        return group_means(self.cell_scores, self.cell_groups) if self.cell_scores else None

    def derive(self) -> Any:
        """The space's derivation from the per-cell importance (``space.derive_cells``)."""
        return self.space.derive_cells(self.cell_scores, self.cell_groups)

    def record_info(self) -> dict[str, Any]:
        """Every search cell's importance, and what the space's per-cell derivation did with it
        (``space.describe_cells``: on the DARTS space each cell's genotype and the final cells it built)."""
        described = self.space.describe_cells(self.cell_scores, self.cell_groups)
        cells = [{"cell": cell, "group": self.cell_groups[cell], "importance": self.cell_scores[cell].tolist(),
                  **described.get("cells", {}).get(cell, {})} for cell in sorted(self.cell_scores)]
        return {"attention": {"reduction_ratio": int(self.cfg["attention_reduction"]),
                              "importance_images": self.importance_images},
                "cells": cells, **{k: v for k, v in described.items() if k != "cells"}}

    # --- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"supernet": self.supernet.state_dict(), "w_opt": self.w_opt.state_dict(),
                "cell_scores": {cell: m.copy() for cell, m in self.cell_scores.items()},
                "importance_images": self.importance_images}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.supernet.load_state_dict(state["supernet"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.cell_scores = {int(cell): np.asarray(m) for cell, m in state["cell_scores"].items()}
        self.importance_images = int(state["importance_images"])
