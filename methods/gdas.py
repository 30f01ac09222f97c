"""GDAS: searching for a robust neural architecture in four GPU hours (Dong & Yang, CVPR 2019).

On the DARTS space (normal and reduction cells both searched: GDAS's searched-reduction variant, the
baseline of EoiNAS's Table 3, not GDAS-FRC's fixed reduction cell) and on NAS-Bench-201.

Differentiable sampling with the Gumbel-max trick. Every forward pass of the supernet draws one op per
edge of every architecture group — one draw per group and forward, shared by all cells of the group, as in
GDAS's code where one sample drives the whole network:

    probs = softmax((log_softmax(α) + g) / τ),  g = −log(Exp(1)) noise,  index = argmax(probs),
    hard = one_hot(index) − probs.detach() + probs      (straight-through)

An edge computes only its sampled op, multiplied by its hard weight (value 1), and adds the other ops' hard
weights (value 0): the forward pass costs one op per edge while α receives the straight-through gradient
through every op's probability. When the sampled op is ``none`` its output (zeros) is not multiplied by its
hard weight: the product is zero and its gradient ⟨∂L/∂out, 0⟩ too. Draws with infinite or NaN values are
redrawn, as in GDAS.

τ is annealed per epoch from ``tau_max`` to ``tau_min``, linearly (GDAS: 10 → 0.1),
τ_e = tau_max − (tau_max − tau_min) · e / (E − 1), or exponentially (``tau_schedule=exponential``, EoiNAS),
τ_e = tau_max · (tau_min / tau_max)^(e / (E − 1)). The hard sample's argmax does not depend on τ (dividing
by τ > 0 keeps the order), so τ shapes only the straight-through gradient: a small τ saturates the softmax.

GDAS's epoch count on the DARTS space is not in our sources; the default (250) is the NAS-Bench-201
protocol's, used on both spaces.

Each iteration follows GDAS's code: the weight step (shared search SGD, on a weight-half batch), then the
architecture step (Adam on the first-order gradient of the architecture-half loss). Architecture
parameters, optimisers, importance (softmax(α)) and derivation (the space's rule) are DARTS's.

Our choices: the Gumbel noise comes from the method's own generator, seeded from the trial seed and
checkpointed, so a resumed trial draws the same noise. For the operation-level correlation one edge is
discretised while the others keep sampling; the generator is rewound for every op of that edge, so each op
is measured under the same draws of the other edges (common random numbers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.core.config import Key
from harness.core.data import DataInfo, SearchData
from harness.core.errors import UserError
from harness.core.registry import register_method
from methods.darts import Darts, _grads
from spaces.base import EdgeId, SearchSpace
from spaces.ops import is_zero

TAU_SCHEDULES = ("linear", "exponential")
TAU_INTERVAL = "[1e-30, inf)"


def gumbel_sample(alpha: torch.Tensor, tau: float, generator: torch.Generator | None = None,
                  max_tries: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """GDAS's hard straight-through sample of one op per row of ``alpha``: (hard weights, indices)."""
    for _ in range(max_tries):
        gumbels = -torch.empty_like(alpha).exponential_(generator=generator).log()
        probs = F.softmax((F.log_softmax(alpha, dim=-1) + gumbels) / tau, dim=-1)
        if torch.isfinite(gumbels).all() and torch.isfinite(probs).all():
            break
    else:
        raise RuntimeError("GDAS: could not draw finite Gumbel noise")
    index = probs.argmax(dim=-1)
    one_hot = torch.zeros_like(probs).scatter_(-1, index.unsqueeze(-1), 1.0)
    return one_hot - probs.detach() + probs, index


class GumbelEdge(nn.Module):
    """Computes only the op the current sample chose for this edge (or the forced op, when discretised).

    The sample indexes the columns of the edge's α row; ``method.op_at`` maps a column to the candidate
    (the identity for GDAS; EoiNAS prunes columns)."""

    def __init__(self, edge: EdgeId, candidates: nn.ModuleList, method: Gdas):
        super().__init__()
        self.edge, self.ops = edge, candidates
        self._method = [method]  # a list, so the method is not mistaken for a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        method = self._method[0]
        forced = method.arch.forced.get((self.edge.group, self.edge.index))
        if forced is not None:
            return self.ops[self.edge.slot(forced)](x)
        hard, index = method.current[self.edge.group]
        weights, column = hard[self.edge.index], index[self.edge.index]
        op = self.ops[self.edge.slot(method.op_at(self.edge.group, self.edge.index, column))]
        if is_zero(op):  # weights[column] · 0 adds nothing, to the output or to any gradient
            return op(x) + (weights.sum() - weights[column])
        return weights[column] * op(x) + (weights.sum() - weights[column])


@register_method
class Gdas(Darts):
    name = "gdas"
    description = "GDAS: Gumbel-max sampling of one op per edge, straight-through gradient"
    needs = frozenset({"edges"})
    excludes = {"hetero": "not validated on NOS's two-tier blocks (no paper pairs them)"}
    # τ divides the Gumbel logits in float32: below about 1e-38 they overflow and no finite sample can be drawn
    # (gumbel_sample raises); 1e-30 leaves the logits a margin of 10^8.
    keys = {
        **Darts.keys,
        "tau_max": Key(10.0, "GDAS: initial Gumbel-softmax temperature", TAU_INTERVAL),
        "tau_min": Key(0.1, "GDAS, EoiNAS: final temperature, reached at the last epoch (EoiNAS's paper anneals to "
                            "0, which an exponential never reaches: its 0.01 is ours)", TAU_INTERVAL),
        "tau_schedule": Key("linear", "GDAS: temperature schedule per epoch, 'linear' (GDAS) or 'exponential' "
                                      "(EoiNAS)", choices=TAU_SCHEDULES),
    }
    ignored_keys = frozenset({"order"})  # GDAS's architecture step is first order
    defaults = {**Darts.defaults, "search_epochs": 250}

    @classmethod
    def validate_config(cls, cfg: dict[str, Any], space: type[SearchSpace]) -> None:
        super().validate_config(cfg, space)
        if cfg["tau_min"] > cfg["tau_max"]:
            raise UserError(f"need tau_min <= tau_max, got tau_min={cfg['tau_min']}, tau_max={cfg['tau_max']}")

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], info: DataInfo, device: torch.device,
                 seed: int):
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.tau = float(cfg["tau_max"])
        self.current: dict[str, tuple[torch.Tensor, list[int]]] = {}
        super().__init__(space, cfg, info, device, seed)
        self.supernet.register_forward_pre_hook(lambda module, inputs: self.resample())

    def make_edge(self, edge: EdgeId, candidates: nn.ModuleList) -> nn.Module:
        return GumbelEdge(edge, candidates, self)

    def resample(self) -> None:
        """Draw the sample of every group for the next forward pass (on each edge among its candidates: the
        other columns of its α row are masked out)."""
        for group, alpha in self.arch.params.items():
            mask = self.masks[group]
            hard, index = gumbel_sample(alpha if mask is None else alpha.masked_fill(~mask, float("-inf")), self.tau,
                                        self.generator)
            self.current[group] = (hard, index.tolist())

    def op_at(self, group: str, index: int, column: int) -> int:
        """The candidate op that column ``column`` of edge (group, index)'s α row stands for."""
        return column

    def tau_at(self, epoch: int) -> float:
        tau_max, tau_min = float(self.cfg["tau_max"]), float(self.cfg["tau_min"])
        progress = epoch / max(1, self.num_epochs() - 1)
        if self.cfg["tau_schedule"] == "exponential":
            return tau_max * (tau_min / tau_max) ** progress
        return tau_max - (tau_max - tau_min) * progress

    def train_epoch(self, epoch: int, data: SearchData) -> dict[str, Any]:
        self.tau = self.tau_at(epoch)
        return {**super().train_epoch(epoch, data), "tau": self.tau}

    def train_step(self, weight_batch: Any, arch_batch: Any, epoch: int) -> dict[str, float]:
        stats = self.weight_step(*weight_batch)
        self.arch_step(*arch_batch)
        return stats

    def weight_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One SGD step of the weights on a freshly sampled sub-network; loss and correct count."""
        self.supernet.train()
        self.w_opt.zero_grad(set_to_none=True)
        logits = self.supernet(x)
        loss = F.cross_entropy(logits, y)
        weights = self.weights()
        for w, g in zip(weights, _grads(loss, weights)):
            w.grad = g
        nn.utils.clip_grad_norm_(self.supernet.parameters(), self.cfg["grad_clip"])
        self.w_opt.step()
        return {"loss": loss.item(), "correct": (logits.argmax(1) == y).sum().item()}

    def arch_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One Adam step of α on a freshly sampled sub-network (first order); returns its logits."""
        self.supernet.train()
        self.a_opt.zero_grad(set_to_none=True)
        logits = self.supernet(x)
        arch_loss = F.cross_entropy(logits, y)
        for alpha, grad in zip(self.arch_parameters(), _grads(arch_loss, self.arch_parameters())):
            alpha.grad = grad
        self.a_opt.step()
        return logits.detach()

    @contextmanager
    def discretised(self, group: str, index: int, op: int) -> Iterator[None]:
        state = self.generator.get_state()
        try:
            with super().discretised(group, index, op):
                yield
        finally:
            self.generator.set_state(state)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "generator": self.generator.get_state(), "tau": self.tau}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state["generator"])
        self.tau = state["tau"]
