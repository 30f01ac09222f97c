"""DARTS: differentiable architecture search (Liu et al., ICLR 2019), first and second order.

Every searchable edge is a mixed edge Σ_o softmax(α)_o · o(x); one α matrix per architecture group of the
space (DARTS space: one for all normal cells, one for all reduction cells), initialised as
``arch_init_std`` · N(0, 1). Bilevel optimisation, each iteration the architecture step first, then the
weight step:

- weights: SGD (lr cosine-annealed from ``w_lr`` to ``w_lr_min`` per epoch, momentum, weight decay,
  gradient-norm clip) on batches of the weight half;
- architecture: Adam on batches of the architecture half, with the gradient of the validation loss at the
  current weights (``order=1``) or the unrolled gradient (``order=2``):
  w' = w − η(momentum·buffer + ∇w L_train(w) + wd·w);
  ∇α L_val(w', α) − η · (∇α L_train(w + R·v) − ∇α L_train(w − R·v)) / 2R, v = ∇w' L_val(w', α),
  R = 0.01 / ‖v‖, η the current weight learning rate.

Operation importance = softmax(α) over each edge's candidate ops; the genotype is the space's derivation rule on it.

With Nesterov momentum (the NAS-Bench-201 search protocol) the virtual step of the second order keeps the
DARTS formula above, as the benchmark's own DARTS-V2 code does.

BatchNorm running statistics (the supernet's buffers, used only in eval mode: validation, correlation) are
updated by the architecture step exactly as the first order's step updates them, whatever the order: once,
by a train-mode forward of the architecture batch at the current (w, α). The second order's virtual passes
(at w, w′ and w ± R·v, run in place on the live supernet) leave no trace: every buffer is saved before them
and restored after, and one forward of the architecture batch at w, without gradients, then updates the
statistics as the first order's forward does (the second order has no pass at w on that batch; this
forward adds under a tenth to its step). Train-mode BatchNorm normalises with the batch's statistics, so
the buffers do not enter the gradient: the α gradient is the same with or without the restore. (The
reference code builds w′ in a copy of the model, but its passes at w and w ± R·v run on the model itself and
move its running statistics with the weight batch.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.core.config import Key
from harness.core.data import DataInfo
from harness.core.registry import register_method
from harness.core.train import arch_adam, sgd, to_device
from methods.base import ArchState, SearchMethod
from spaces.base import EdgeId, SearchSpace
from spaces.ops import is_zero


def _grads(loss: torch.Tensor, wrt: list[torch.Tensor]) -> list[torch.Tensor]:
    """Gradients of ``loss``; zeros for tensors it does not use (e.g. a group with no cell of its type)."""
    found = torch.autograd.grad(loss, wrt, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(wrt, found)]


def weighted_sum(weights: torch.Tensor, ops: nn.ModuleList, x: Any) -> Any:
    """Σ_o weights[o] · o(x), without computing the ``none`` op.

    ``none`` outputs zeros: its term w·0 adds exactly nothing to the sum (the result is the same, bit for
    bit) and its weight's gradient ⟨∂L/∂out, 0⟩ is zero either way; its α still gets the gradient of the
    softmax that couples it with the other weights. The sum starts from the first term, not from 0 (one
    tensor addition fewer). Only when every candidate is ``none`` is one of them computed (for its shape).
    """
    total = None
    for w, op in zip(weights, ops):
        if is_zero(op):
            continue
        term = w * op(x)
        total = term if total is None else total + term
    return weights[0] * ops[0](x) if total is None else total


def masked_softmax(alpha: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """softmax(α) per row over the row's candidates (``mask``; None = every column is one): 0 elsewhere."""
    if mask is None:
        return F.softmax(alpha, dim=-1)
    return F.softmax(alpha.masked_fill(~mask, float("-inf")), dim=-1)


class MixedEdge(nn.Module):
    """Σ_o softmax(α[group][index])_o · o(x) over the candidates of one edge (the softmax over the α columns of
    its candidates, ``edge.ops``; ``none`` not computed)."""

    def __init__(self, edge: EdgeId, candidates: nn.ModuleList, arch: ArchState):
        super().__init__()
        self.edge, self.ops, self.arch = edge, candidates, arch
        # every column of the α row is a candidate (a rectangular space), or the candidates' columns
        self.columns = None if edge.ops == tuple(range(arch.params[edge.group].shape[-1])) else list(edge.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        forced = self.arch.forced.get((self.edge.group, self.edge.index))
        if forced is not None:
            return self.ops[self.edge.slot(forced)](x)
        row = self.arch.params[self.edge.group][self.edge.index]
        weights = F.softmax(row if self.columns is None else row[self.columns], dim=-1)
        return weighted_sum(weights, self.ops, x)


@register_method
class Darts(SearchMethod):
    name = "darts"
    description = "DARTS: softmax-relaxed mixed edges, bilevel search (first or second order)"
    needs = frozenset({"edges"})
    # Adam (torch.optim.Adam) refuses betas outside [0, 1) and a negative learning rate or weight decay; a
    # learning rate of 0 keeps α at its initialisation (an ablation the EoiNAS tests use).
    keys = {
        **SearchMethod.keys,
        "order": Key(1, "DARTS: 1 = first-order, 2 = second-order (unrolled) architecture gradient", choices=(1, 2)),
        "arch_lr": Key(3e-4, "architecture Adam learning rate (0 = α stays at its initialisation)", "[0, inf)"),
        "arch_beta1": Key(0.5, "architecture Adam beta1", "[0, 1)"),
        "arch_beta2": Key(0.999, "architecture Adam beta2", "[0, 1)"),
        "arch_weight_decay": Key(1e-3, "architecture Adam weight decay", "[0, inf)"),
        "arch_init_std": Key(1e-3, "architecture parameters initialised as std * N(0, 1)", "[0, inf)"),
    }
    defaults = {"search_epochs": 50}

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], info: DataInfo, device: torch.device,
                 seed: int):
        super().__init__(space, cfg, info, device, seed)
        for group, shape in space.arch_shape().items():
            self.arch.params[group] = nn.Parameter(cfg["arch_init_std"] * torch.randn(*shape, device=device))
        # per group, the candidates of each edge among the α columns (None: every column, on every edge)
        self.masks = {group: None if mask.all() else torch.as_tensor(mask, device=device)
                      for group, mask in space.candidate_mask().items()}
        self.supernet = to_device(self.build_search_network(info), cfg, device)
        self.w_opt = sgd(self.supernet.parameters(), cfg, "w")
        self.a_opt = arch_adam(self.arch_parameters(), cfg)

    def build_search_network(self, info: DataInfo) -> nn.Module:
        """The supernet the search trains: the space's (``build_supernet``) with this method's edges."""
        return self.space.build_supernet(self.make_edge, info)

    def make_edge(self, edge: EdgeId, candidates: nn.ModuleList) -> nn.Module:
        return MixedEdge(edge, candidates, self.arch)

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.arch.params.values())

    def weights(self) -> list[nn.Parameter]:
        """The supernet's trainable weights (α is not among them: it lives outside the module tree)."""
        return [p for p in self.supernet.parameters() if p.requires_grad]

    # --- search ---------------------------------------------------------------------------------
    def train_step(self, weight_batch: Any, arch_batch: Any, epoch: int) -> dict[str, float]:
        (x_w, y_w), (x_a, y_a) = weight_batch, arch_batch
        self.supernet.train()
        self.a_opt.zero_grad(set_to_none=True)
        if self.cfg["order"] == 2:
            grads = self.unrolled_arch_grads(x_w, y_w, x_a, y_a, self.w_opt.param_groups[0]["lr"])
        else:
            grads = _grads(self.loss(x_a, y_a)[0], self.arch_parameters())
        for alpha, grad in zip(self.arch_parameters(), grads):
            alpha.grad = grad
        self.a_opt.step()

        self.w_opt.zero_grad(set_to_none=True)
        loss, logits = self.loss(x_w, y_w)
        loss.backward(inputs=self.weights())  # not into α
        nn.utils.clip_grad_norm_(self.supernet.parameters(), self.cfg["grad_clip"])
        self.w_opt.step()
        return {"loss": loss.item(), "correct": (logits.argmax(1) == y_w).sum().item()}

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The search loss of both levels and the logits (DARTS: cross-entropy; NOS adds its attention
        transfer term here, so that the first- and second-order steps use it alike)."""
        logits = self.supernet(x)
        return F.cross_entropy(logits, y), logits

    def unrolled_arch_grads(self, x_w: torch.Tensor, y_w: torch.Tensor, x_a: torch.Tensor,
                            y_a: torch.Tensor, eta: float, r_scale: float = 0.01) -> list[torch.Tensor]:
        """Second-order (unrolled) architecture gradient; the weights are left as they were, and the buffers
        (BatchNorm running statistics) as a first-order step leaves them (the module docstring).

        ``r_scale`` is the DARTS finite-difference radius: R = r_scale / ‖v‖."""
        alphas = self.arch_parameters()
        weights = self.weights()
        momentum, wd = self.cfg["w_momentum"], self.cfg["w_weight_decay"]
        backup = [w.detach().clone() for w in weights]
        buffers = [(b, b.detach().clone()) for b in self.supernet.buffers()]
        g_train = _grads(self.loss(x_w, y_w)[0], weights)
        with torch.no_grad():  # one virtual SGD step: w' = w − η(momentum·buffer + ∇w L_train + wd·w)
            for w, g in zip(weights, g_train):
                buf = self.w_opt.state.get(w, {}).get("momentum_buffer")
                step = g + wd * w + (momentum * buf if buf is not None else 0.0)
                w.sub_(eta * step)
        g_val = _grads(self.loss(x_a, y_a)[0], alphas + weights)
        d_alpha, v = g_val[:len(alphas)], g_val[len(alphas):]

        r = r_scale / torch.cat([t.reshape(-1) for t in v]).norm().clamp_min(1e-12)
        hessian_terms = []
        for sign in (1.0, -1.0):  # finite-difference Hessian-vector product around w
            with torch.no_grad():
                for w, b, vi in zip(weights, backup, v):
                    w.copy_(b + sign * r * vi)
            hessian_terms.append(_grads(self.loss(x_w, y_w)[0], alphas))
        with torch.no_grad():
            for w, b in zip(weights, backup):
                w.copy_(b)
            for buffer, saved in buffers:  # the virtual passes leave no running statistics behind
                buffer.copy_(saved)
            self.supernet(x_a)  # the first order's update of the statistics: the architecture batch at w
        return [da - eta * (gp - gn) / (2 * r) for da, gp, gn in zip(d_alpha, *hessian_terms)]

    # --- results --------------------------------------------------------------------------------
    def importance(self) -> dict[str, np.ndarray]:
        """softmax(α) of every edge over its candidates (0 for an op that is not one)."""
        return {g: masked_softmax(a.detach(), self.masks[g]).cpu().numpy() for g, a in self.arch.params.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"supernet": self.supernet.state_dict(),
                "alphas": {g: a.detach().clone() for g, a in self.arch.params.items()},
                "w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.supernet.load_state_dict(state["supernet"])
        with torch.no_grad():
            for g, a in self.arch.params.items():
                a.copy_(state["alphas"][g])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
