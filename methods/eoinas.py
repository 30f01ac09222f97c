"""EoiNAS: exploiting operation importance for differentiable NAS (Zhou et al.), built on GDAS.

Sampling, the two optimisers and their order are GDAS's (``methods/gdas.py``: one hard Gumbel-max sample
per group and forward, only the sampled op computed, weight step then architecture step), with the paper's
settings: α initialised to zero, τ annealed exponentially from 5 towards 0 (``tau_min`` 0.01 is our stand-in
for 0, which an exponential never reaches; τ only scales the straight-through gradient), 160 search epochs.

**Temperature**, as the reference code (ZLab540/EoiNAS, ``EoiNAS_CIFAR/train_search.py``) schedules it: τ is
set once per epoch, τ = τ_max through the warm-up and at the first architecture epoch, then decays from there:
τ_e = τ_max · (τ_min / τ_max)^((e − w) / (E − 1 − w)) for e ≥ w (epochs counted from 0; ``tau_schedule=linear``:
τ_max − (τ_max − τ_min) · (e − w) / (E − 1 − w)), so τ_min is reached at the last epoch. The reference
multiplies by a fixed 0.965 per epoch (τ = 5 · 0.965^(e − w)), which at E = 160, w = 20 ends at
5 · 0.965^139 ≈ 0.035; we keep the end point ``tau_min`` so that the schedule scales with the budget
(``tau_min=0.0354`` reproduces the reference at the paper's budget).

**Indicator** (Eq. 7), per edge e and op o of every architecture group:

    I[e, o] = β[e, o] + λ · C[e, o],   β = softmax(α[e]) over the ops still alive on the edge,
    C[e, o] = A[e, o] / N[e, o],       λ = ``indicator_lambda`` = 0.5

- N, training iterations: +1 for the op that a weight step sampled on the edge. One draw serves all cells of a
  group, so an edge's count is shared by its cells, as its α is. Eq. 7 calls N the op's training iterations;
  when the count starts and whether it restarts is left to the code. The reference code
  (``EoiNAS_CIFAR/train_search.py``, ``train``: ``sampling_frequency`` += 1 for the weight forward's sample,
  inside ``if train_arch``) counts only once the architecture is trained, i.e. from the first epoch after the
  warm-up, and after each pruning step but the last (``if epoch in range(39, 140, 20)``) sets the counts of the
  remaining ops to zero (``sampling_frequency = np.zeros(...)``) while it keeps their validation accuracies
  (``validation_accuracy`` is only compacted to the surviving columns). So every pruning step sees the
  iterations since the previous one and λ·C keeps its weight against β, instead of shrinking as 1/N grows
  over the search. ``count_reset=true`` (default) does this: N counts from epoch w, and after the pruning
  steps of an epoch (several where the schedule crowds them into one epoch, all decided on the same N) every
  N is zeroed, except after the search's last epoch, when nothing follows (the record keeps the last stage's
  counts, as the reference derives from them). A (both ``acc_stat`` kinds) is never zeroed.
  ``count_reset=false`` is the harness's earlier bookkeeping: every weight step counts from epoch 0, warm-up
  included, and N is never reset.
- A, validation accuracy: top-1 in percent of each architecture step's batch (architecture half),
  attributed on every edge to the op sampled *in that step's forward* — the sub-network that produced the
  accuracy. Percent is the unit of the DARTS/GDAS accuracy utilities the reference code builds on (as a
  fraction, λ·C would be 100× smaller). ``acc_stat=mean`` (our default) averages all batches the op was
  sampled in; ``acc_stat=latest`` keeps the last one, as the reference code overwrites it. We average
  because one batch's top-1 is noisy (a few points on 64 images) and the pruning decision is taken once.
- An op that was never validated has C = 0 (no evidence); one validated but never trained counts N = 1.
  Pruned ops have I = 0.

**Gradual operation pruning**: the first ``warmup_epochs`` train the weights only (no architecture step, so
no accuracy is recorded, and with ``count_reset`` no iteration counted); then the steps alternate as in GDAS.
With K ops per edge, K − 1 pruning steps are spread evenly over the epochs after the warm-up: step
j = 1..K−1 runs after epoch w + ⌈j·(E − w)/(K − 1)⌉ (epochs counted from 1, E = ``search_epochs``,
w = ``warmup_epochs``), so the last one closes the search.
For the paper (E = 160, w = 20, K = 8) that is after epochs 40, 60, ..., 160, Algorithm 1's "epoch > 20 and
epoch % 20 == 0"; on NAS-Bench-201 (K = 5) after 55, 90, 125 and 160. Where E − w < K − 1 several steps run
after one epoch, each decided on the indicator the previous one left.

The ops of an edge are its candidates (``space.edge_ops``); pruning keeps every edge at the same number of
ops, so it needs edges with equally many candidates (as on both spaces it supports). A pruning step
removes, on every edge of every group, the op with the lowest I (ties: the later op in the
space's op order, so pruning and derivation agree that earlier ops win ties) — except that when two ops are
left and one of them cannot appear in a genotype (``none`` on the DARTS space), that one goes: by the last
step ``none`` is dropped. The removed op's module is replaced in every cell by a parameter-free
``PrunedOp`` (which refuses to run); its parameters leave the SGD optimiser with their momentum; its α
column is deleted, so α shrinks to [edges, K − 1] and Adam's moments shrink with it. Sampling then covers
the remaining ops only.

**Derivation** by I through the space's rule (DARTS space: edge strength = max over non-``none`` ops, two
strongest edges per node, op = argmax; NAS-Bench-201: argmax, ``none`` allowed). Once one op is left per
edge the softmax over a single column is 1 everywhere and ranks nothing, so the importance is then the
indicator that decided the last pruning step (computed just before it, the removed ops set to 0): the
survivor's I against the last op it beat.

**Architecture score** (the architecture-level correlation, on a space with a benchmark table): the
default Σ-log rule (``SearchMethod.score_architectures``), Σ_e log(I[e, o_e] / Σ_o I[e, o]), on the
indicator of the last state in which every op of every edge had one — the indicator recorded just before the
first pruning step (``history[0]``), or the current indicator when no pruning step ran. The score is how
strongly that evidence (β + λ·C per op, normalised per edge) favours the architecture's ops. It is not the
importance after pruning: that is zero for every op but the survivor, so the same rule would only count the
edges on which an architecture differs from the derived cell (a Hamming distance).

**Ablations** (the paper's Table 3): ``pruning=false`` keeps every op (derivation by I after the search);
``indicator=false`` uses β alone (I = β) for pruning, derivation and the correlations. Both off is GDAS's
sampling and derivation under EoiNAS's schedule (τ, warm-up, zero α, epochs).

**Record** (``record_info``): the pruning schedule and history — per step the epoch, the op removed on every
edge, the indicator matrix that decided it and the operation-level correlation of that indicator over the
ops alive at the time (the harness's protocol: after the search only one op per edge is left, so the trial's
own ``op_kendall_tau`` is undefined when pruning ran to the end) — and the indicator's parts (β, A, N).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.core.config import Key
from harness.core.correlation import op_level_correlation
from harness.core.data import DataInfo, SearchData
from harness.core.errors import UserError
from harness.core.registry import register_method
from methods.base import sum_log_normalised
from methods.gdas import Gdas, GumbelEdge
from spaces.base import EdgeId, SearchSpace

ACC_STATS = ("mean", "latest")


class PrunedOp(nn.Module):
    """Stands in for a pruned candidate: no parameters or buffers, and it refuses to run."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError(f"EoiNAS: candidate '{self.name}' was pruned from this edge")

    def extra_repr(self) -> str:
        return self.name


def indicator_matrix(beta: np.ndarray, accuracy: np.ndarray, iterations: np.ndarray, alive: np.ndarray,
                     lam: float) -> np.ndarray:
    """I = β + λ·A/N per (edge, op): A NaN (never validated) gives C = 0, N below 1 counts as 1, and ops not
    ``alive`` get I = 0."""
    validated = np.isfinite(accuracy)
    c = np.where(validated, np.where(validated, accuracy, 0.0) / np.maximum(iterations, 1.0), 0.0)
    return np.where(alive, beta + lam * c, 0.0)


@register_method
class Eoinas(Gdas):
    name = "eoinas"
    description = "EoiNAS: GDAS sampling, operation-importance indicator, gradual operation pruning"
    needs = frozenset({"edges", "uniform-ops"})  # K - 1 pruning steps, K = len(op_names), on every edge
    excludes = {"hetero": "pruning to one op per edge can leave a block no feature op, which it needs"}
    keys = {
        **Gdas.keys,
        "warmup_epochs": Key(20, "EoiNAS: first epochs train the weights only (no architecture step, no pruning)",
                             "[0, inf)"),
        "pruning": Key(True, "EoiNAS: gradual operation pruning (false = keep every op: the paper's ablation)"),
        "indicator": Key(True, "EoiNAS: rank ops by softmax(alpha) + lambda*C (false = by softmax(alpha) alone)"),
        "indicator_lambda": Key(0.5, "EoiNAS: lambda, the weight of C = validation accuracy / training iterations",
                                "[0, inf)"),
        "count_reset": Key(True, "EoiNAS: N (training iterations) counts from the first architecture epoch and is "
                                 "zeroed after each pruning epoch, as the reference code (false = every weight step "
                                 "from epoch 0, warm-up included, never reset)"),
        "acc_stat": Key("mean", "EoiNAS: an op's validation accuracy, 'mean' over its sampled batches (ours) or the "
                                "'latest'", choices=ACC_STATS),
    }
    defaults = {**Gdas.defaults, "search_epochs": 160, "arch_init_std": 0.0, "tau_max": 5.0, "tau_min": 0.01,
                "tau_schedule": "exponential"}
    # the paper's 20 warm-up epochs of 160, scaled; smoke needs 1 + 7 epochs to prune the DARTS ops one at a time
    budgets = {"smoke": {"search_epochs": 8, "warmup_epochs": 1}, "small": {"warmup_epochs": 1}}

    @classmethod
    def validate_config(cls, cfg: dict[str, Any], space: type[SearchSpace]) -> None:
        super().validate_config(cfg, space)
        if cfg["warmup_epochs"] >= cfg["search_epochs"]:
            raise UserError(f"warmup_epochs ({cfg['warmup_epochs']}) must be below search_epochs "
                            f"({cfg['search_epochs']}): the architecture steps and the pruning come after it")

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], info: DataInfo, device: torch.device,
                 seed: int):
        self.instances: dict[tuple[str, int], list[GumbelEdge]] = {}  # filled while the supernet is built
        super().__init__(space, cfg, info, device, seed)
        shapes = space.arch_shape()
        self.alive = {g: [list(space.edge_ops(g, e)) for e in range(n)] for g, (n, _) in shapes.items()}
        self.iterations = {g: np.zeros(shape) for g, shape in shapes.items()}
        self.acc_sum = {g: np.zeros(shape) for g, shape in shapes.items()}
        self.acc_count = {g: np.zeros(shape) for g, shape in shapes.items()}
        self.acc_latest = {g: np.full(shape, np.nan) for g, shape in shapes.items()}
        self.history: list[dict[str, Any]] = []

    def make_edge(self, edge: EdgeId, candidates: nn.ModuleList) -> nn.Module:
        module = super().make_edge(edge, candidates)
        self.instances.setdefault((edge.group, edge.index), []).append(module)
        return module

    def op_at(self, group: str, index: int, column: int) -> int:
        return self.alive[group][index][column]

    def correlation_ops(self, group: str, index: int) -> list[int]:
        alive = self.alive[group][index]
        return [op for op in self.space.choice_ops(group, index) if op in alive]

    def ops_per_edge(self) -> int:
        return len(next(iter(self.alive.values()))[0])

    # --- search ---------------------------------------------------------------------------------
    def schedule(self) -> list[int]:
        """The epochs (counted from 1) after which a pruning step runs, one entry per step."""
        if not self.cfg["pruning"]:
            return []
        epochs, warmup, steps = self.num_epochs(), int(self.cfg["warmup_epochs"]), len(self.space.op_names) - 1
        return [warmup - (-j * (epochs - warmup) // steps) for j in range(1, steps + 1)]

    def timing_epoch(self) -> int:
        """The first epoch after the warm-up: a weight and an architecture step, as in most epochs."""
        return int(self.cfg["warmup_epochs"])

    def tau_at(self, epoch: int) -> float:
        """τ of epoch ``epoch`` (from 0): τ_max up to the first architecture epoch w, then annealed over w..E − 1."""
        tau_max, tau_min = float(self.cfg["tau_max"]), float(self.cfg["tau_min"])
        warmup = int(self.cfg["warmup_epochs"])
        progress = max(0, epoch - warmup) / max(1, self.num_epochs() - 1 - warmup)
        if self.cfg["tau_schedule"] == "exponential":
            return tau_max * (tau_min / tau_max) ** progress
        return tau_max - (tau_max - tau_min) * progress

    def train_epoch(self, epoch: int, data: SearchData) -> dict[str, Any]:
        metrics = super().train_epoch(epoch, data)
        steps = self.schedule().count(epoch + 1)
        for _ in range(steps):
            self.prune_step(epoch + 1, data)
        if steps:
            metrics["genotype"] = self.space.to_str(self.derive())
            if self.cfg["count_reset"] and epoch + 1 < self.num_epochs():
                self.reset_counts()
        return {**metrics, "ops_per_edge": self.ops_per_edge()}

    def reset_counts(self) -> None:
        """Zero N (training iterations) of every op, as the reference code after a pruning step; A stays."""
        for group in self.iterations:
            self.iterations[group][:] = 0.0

    def train_step(self, weight_batch: Any, arch_batch: Any, epoch: int) -> dict[str, float]:
        stats = self.weight_step(*weight_batch)
        architecture = epoch >= int(self.cfg["warmup_epochs"])
        if architecture or not self.cfg["count_reset"]:  # the reference counts the architecture epochs only
            for group, cells in self.sampled().items():
                self.iterations[group][cells] += 1
        if architecture:
            x, y = arch_batch
            logits = self.arch_step(x, y)
            self.record_accuracy(100.0 * (logits.argmax(1) == y).float().mean().item())
        return stats

    def sampled(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(edge rows, op indices) of the last forward's sample per group, to index [edges, ops] matrices."""
        return {group: (np.arange(len(columns)), np.array([self.op_at(group, e, c) for e, c in enumerate(columns)]))
                for group, (_, columns) in self.current.items()}

    def record_accuracy(self, acc: float) -> None:
        """Attribute one validation batch's top-1 (percent) to the ops of the last forward's sample."""
        for group, cells in self.sampled().items():
            self.acc_sum[group][cells] += acc
            self.acc_count[group][cells] += 1
            self.acc_latest[group][cells] = acc

    # --- the indicator and pruning --------------------------------------------------------------
    def alive_mask(self, group: str) -> np.ndarray:
        mask = np.zeros(self.iterations[group].shape, dtype=bool)
        for e, ops in enumerate(self.alive[group]):
            mask[e, ops] = True
        return mask

    def parts(self, group: str) -> dict[str, np.ndarray]:
        """β (0 for pruned ops), A (NaN where never validated) and N of one group, on the full op axis."""
        beta = np.zeros(self.iterations[group].shape)
        softmax = F.softmax(self.arch.params[group].detach(), dim=-1).double().cpu().numpy()
        for e, ops in enumerate(self.alive[group]):
            beta[e, ops] = softmax[e]
        if self.cfg["acc_stat"] == "latest":
            accuracy = self.acc_latest[group].copy()
        else:
            count = self.acc_count[group]
            accuracy = np.where(count > 0, self.acc_sum[group] / np.maximum(count, 1), np.nan)
        return {"beta": beta, "accuracy": accuracy, "iterations": self.iterations[group].copy()}

    def indicator(self) -> dict[str, np.ndarray]:
        """The current I (or β alone with ``indicator=false``) of every group, pruned ops 0."""
        lam = float(self.cfg["indicator_lambda"]) if self.cfg["indicator"] else 0.0
        out = {}
        for group in self.arch.params:
            p = self.parts(group)
            out[group] = indicator_matrix(p["beta"], p["accuracy"], p["iterations"], self.alive_mask(group), lam)
        return out

    def importance(self) -> dict[str, np.ndarray]:
        if self.history and self.ops_per_edge() == 1:  # the indicator that decided the last step, survivors only
            return {g: np.where(self.alive_mask(g), np.array(m), 0.0) for g, m in self.history[-1]["indicator"].items()}
        return self.indicator()

    def score_architectures(self, genotypes: list[Any], data: SearchData | None = None) -> np.ndarray:
        """Σ_e log(I[e, o_e] / Σ_o I[e, o]) of each genotype over its (group, edge, op) choices, with I the
        indicator of the last state in which every op had one: the indicator that decided the first pruning
        step (``history[0]``, computed before it with every op alive) once pruning ran, else the current one.
        The score is the log-probability of the genotype's ops under the per-edge distributions proportional
        to that indicator: how strongly EoiNAS's evidence favoured them before pruning — not a Hamming
        distance to the derived cell, which the post-pruning importance (survivors only) would give."""
        if self.history:
            indicator = {g: np.array(m, dtype=np.float64) for g, m in self.history[0]["indicator"].items()}
        else:
            indicator = self.indicator()
        return sum_log_normalised(self.space, indicator, genotypes)

    def loser(self, group: str, index: int, scores: np.ndarray) -> int:
        """The op that a pruning step removes from edge (group, index), given the edge's scores."""
        alive = self.alive[group][index]
        unselectable = [op for op in alive if op not in self.space.choice_ops(group, index)]
        if len(alive) == 2 and len(unselectable) == 1:
            return unselectable[0]
        return min(reversed(alive), key=lambda op: scores[op])  # min keeps the first: ties go to the later op

    def prune_step(self, after_epoch: int, data: SearchData) -> dict[str, Any]:
        """Remove the lowest-indicator op from every edge; the step is appended to ``history``."""
        scores = self.indicator()
        corr = op_level_correlation(self, data, self.cfg)
        removed = {g: [self.loser(g, e, matrix[e]) for e in range(len(matrix))] for g, matrix in scores.items()}
        keep = {g: [[op for op in ops if op != removed[g][e]] for e, ops in enumerate(self.alive[g])]
                for g in self.alive}
        self.restrict(keep)
        names = self.space.op_names
        entry = {"after_epoch": after_epoch, "ops_per_edge": self.ops_per_edge(),
                 "removed": {g: [names[op] for op in ops] for g, ops in removed.items()},
                 "indicator": {g: m.tolist() for g, m in scores.items()},
                 "op_kendall_tau": corr["op_kendall_tau"], "op_spearman_rho": corr["op_spearman_rho"],
                 "op_corr_edges": corr["op_corr_edges"]}
        self.history.append(entry)
        return entry

    def restrict(self, keep: dict[str, list[list[int]]]) -> None:
        """Keep only the ops ``keep[group][edge]`` (a subset of the alive ones, equally many per edge): their
        modules, α columns and optimiser state stay; the rest is deleted."""
        removed_params: set[int] = set()
        for group, rows in keep.items():
            old = self.arch.params[group]
            mask = torch.tensor([[op in row for op in ops] for ops, row in zip(self.alive[group], rows)],
                                device=old.device)
            if bool(mask.all()):
                continue
            width = int(mask[0].sum())
            if not (mask.sum(dim=1) == width).all() or width == 0:
                raise ValueError("EoiNAS: every edge must keep the same, positive number of ops")
            for index, (ops, row) in enumerate(zip(self.alive[group], rows)):
                for op in ops:
                    if op in row:
                        continue
                    for edge in self.instances[(group, index)]:
                        slot = edge.edge.slot(op)
                        removed_params.update(id(p) for p in edge.ops[slot].parameters())
                        edge.ops[slot] = PrunedOp(self.space.op_names[op])
                self.alive[group][index] = [op for op in ops if op in row]
            new = nn.Parameter(old.detach()[mask].view(len(rows), width).clone())
            state = self.a_opt.state.pop(old, {})
            self.a_opt.state[new] = {k: v[mask].view(len(rows), width).clone()
                                     if torch.is_tensor(v) and v.shape == old.shape else v for k, v in state.items()}
            params = self.a_opt.param_groups[0]["params"]
            params[next(i for i, p in enumerate(params) if p is old)] = new
            self.arch.params[group] = new
        for p in [p for p in self.w_opt.state if id(p) in removed_params]:
            del self.w_opt.state[p]
        self.w_opt.param_groups[0]["params"] = self.weights()
        self.current = {}  # the last sample indexes the old columns

    # --- results --------------------------------------------------------------------------------
    def record_info(self) -> dict[str, Any]:
        names = self.space.op_names
        return {
            "pruning": {"enabled": bool(self.cfg["pruning"]), "schedule": self.schedule(),
                        "ops_per_edge": self.ops_per_edge(), "history": self.history,
                        "alive": {g: [[names[op] for op in ops] for ops in rows] for g, rows in self.alive.items()}},
            "indicator_parts": {g: {k: v.tolist() for k, v in self.parts(g).items()} for g in self.arch.params},
        }

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "alive": {g: [list(ops) for ops in rows] for g, rows in self.alive.items()},
                "iterations": self.iterations, "acc_sum": self.acc_sum, "acc_count": self.acc_count,
                "acc_latest": self.acc_latest, "history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.restrict(state["alive"])  # shrink to the saved shapes first
        super().load_state_dict(state)
        for key in ("iterations", "acc_sum", "acc_count", "acc_latest"):
            setattr(self, key, {g: np.array(m, dtype=float) for g, m in state[key].items()})
        self.history = list(state["history"])
