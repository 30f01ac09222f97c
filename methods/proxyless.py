"""ProxylessNAS-G: direct neural architecture search with binary gates (Cai, Zhu & Han, ICLR 2019).

Facts from the authors' public search code (``search/modules/mix_op.py``, ``search/nas_manager.py``) as
``shared/METHODS.md`` gives them; everything below goes through the generic space/method interface only
(``EdgeId.ops``, ``space.op_names``, ``space.candidate_mask``), so a chain space whose blocks have their own
candidates works unchanged.

- α: one ``[edges, ops]`` matrix per architecture group, initialised ``arch_init_std`` · N(0, 1) (1e-3);
  p = softmax(α) over each edge's candidates (the other columns are never read). Adam (lr 1e-3, betas
  (0, 0.999), no weight decay).
- **Weight step** (every batch of the weight half): each edge samples ONE candidate from multinomial(p) and
  computes only it (its output is the edge's output). Only the sampled candidates' weights get gradients; the
  others' ``.grad`` stays None, as the code sets it ("avoid over-regularization"), so SGD leaves them
  untouched: no weight decay and no momentum for a candidate that was not sampled (zero gradients would shrink
  a rarely sampled op every step and favour the ops that are already likely). The loss is the search recipe's
  ``weight_loss`` (cross-entropy with ``w_label_smoothing``), the gradients clipped by ``clip_gradients``.
- **The weight optimiser**: on ``proxyless`` the authors' code's (``space_defaults``): SGD, momentum 0.9,
  Nesterov, weight decay 4e-5 on every weight, batch 256, no gradient clipping (``grad_clip_mode=off``), label
  smoothing 0.1; the warm-up epochs anneal ``warmup_lr`` 0.05 to 0 (cosine), the joint epochs 0.025 to
  ``w_lr_min`` 0 (cosine over the joint epochs alone). Those rates belong to the batch of 256
  (``w_lr_batch``): the ``smoke`` and ``small`` budgets set 128 and 64 for every method, and the rates then
  scale by batch / 256 (the linear scaling rule), so an image moves the weights as much as in the code. The
  code steps the learning rate every batch; here it is set once per epoch, as for every method. On ``darts`` and
  ``nb201``, where ProxylessNAS has no reference code, the space's shared search
  protocol (``warmup_lr`` 0: one cosine over all epochs).
- **Architecture step** (on the architecture-half batch of every ``arch_every``-th weight step of an epoch,
  from epoch ``warmup_epochs`` + 1 on — the code skips the first joint epoch —, network in train mode):
  ``binary_mode=two`` (the paper's, default): two distinct candidates sampled from p without replacement,
  p′ = softmax of their two α, one of them active, drawn from p′ (gate 1, the other gate 0); the edge outputs
  g_a·o_a(x) + g_b·o_b(x).detach(), so only these two run. ∂L/∂g_j (j in the pair) come from autograd;
  ∂L/∂α_i = Σ_j ∂L/∂g_j · p′_j(δ_ij − p′_i) = p′_i(∂L/∂g_i − Σ_j p′_j ∂L/∂g_j) for i in the pair, 0 elsewhere.
  After the Adam step both pair entries are shifted by −log(Σ_pair e^{α_new} / Σ_pair e^{α_old}), so the
  probabilities of the unsampled candidates stay as they were (the cost term, too, moves only the pair's α:
  ``cost_probs=pair`` below). ``binary_mode=full``: one active
  candidate drawn from p, every candidate is involved (the same formula over all of them with p′ = p);
  the inactive candidates are computed without grad (their outputs are constants, so ∂L/∂g_k = Σ o_k ⊙
  ∂L/∂y as the code's ``full_v2``, which recomputes them in the backward pass instead); no rescaling.
- **Zero rule**: when the active candidate of an edge is named ``zero`` or ``none`` in ``space.op_names``
  (the code's ZeroLayer; the DARTS/NAS-Bench-201 ``none`` outputs zeros likewise), that edge's α row gets no
  update in that step (``zero_no_update``, default true as in the code): it is put back after the Adam
  step (its Adam moments still see the zero gradient the row was given) and not rescaled.
- **Sampling granularity (ours)**: one draw per (group, edge) and step, shared by every cell of the group,
  as GDAS here: all cells of a group share α, and on a chain space every block is its own row anyway. The
  gates of an edge are one tensor shared by its instances, so ∂L/∂g sums over them. Draws come from the
  method's own ``torch.Generator``, seeded from the trial seed and checkpointed.
- **Cost term** (architecture step only): each candidate's multiply-adds (``harness.core.metrics.count_madds_m``,
  millions, batch 1) at the input shape its edge sees, measured once at construction (one forward of the
  supernet with each edge computing its argmax candidate records every edge's input shape), summed over a
  group's instances; ``zero``/``none`` cost 0. The fixed part (the layers that are not searched) is the
  supernet's total multiply-adds in that forward minus its chosen candidates'. E[cost] = fixed +
  Σ_edges Σ_j p_j·cost_j, differentiable in α. In the two-path mode p is, as in the code
  (``current_prob_over_ops``, the other ops ``None`` in ``expected_flops``), the softmax over each edge's
  sampled pair and 0 for the rest (``cost_probs=pair``, default), so the cost gradient moves only the pair's
  α, like the gate gradient; ``cost_probs=full`` weighs every candidate by softmax(α) (the paper's Eq. 3 form:
  every α of the edge moves each step). ``binary_mode=full`` uses the full softmax either way. The E[cost]
  an epoch and the record report (``expected_cost_m``, ``cost.expected``) is under the full p.
  ``cost_form=mul_log`` (the code's default form):
  loss = a·CE·(log E / log ref)^b, the logarithms of the multiply-add counts themselves (not millions, so
  both are positive at any network size), a = ``cost_a`` 0.2, b = ``cost_b`` 0.3; ``add_linear``:
  CE + λ(E − ref)/ref, λ = ``cost_lambda`` 0.1. ``cost_ref`` in millions of multiply-adds; 0 (default) =
  E[cost] of the supernet under uniform p (the code's 300M is a 224×224 ImageNet figure at width 1.0, out of
  scale for the harness's small inputs; give ``cost_ref=300`` for the paper's budget). ``cost=latency``: the
  released latency table is not public, so each candidate's median latency (``measure_latency_ms``, batch 1,
  ms) is measured on the trial's device once and cached on disk (``LatencyTable``, keyed by the device, the
  candidate and its input shape); the fixed part is the measured supernet latency (argmax path) minus its
  chosen candidates' (clamped at 0); mul_log then takes logs of microseconds. ``cost=none`` (the default)
  gives plain CE: the code's default (``target_hardware=None``) searches for accuracy alone, and so does the
  method's plain row, comparable with every other method's accuracy-only search. The cost-aware searches are
  named variants, so that no table mixes them silently: ``proxyless-macs`` (``--set cost=macs``) and
  ``proxyless-latency`` (``--set cost=latency``) in the study files; a run's leaderboard row names its
  ``--set`` in its ``variant`` column.
- **Evaluation**: outside the training steps (validation, the correlation protocol, the record) each edge
  computes its argmax candidate, as the code's validation (``set_chosen_op_active``); under
  ``discretised`` only the forced candidate. The epoch's validation (``val_acc``, hence ``search_val_acc``)
  runs BatchNorm on batch statistics, as the code's (``use_train_mode=True``: the supernet's running
  statistics mix every sampled path), the running statistics restored after; the operation-level correlation
  is the shared protocol (eval mode), the same for every method. Importance = softmax(α) over the candidates
  (DARTS's); derivation = the space's rule (argmax per block on a chain).
- **Schedule**: ``search_epochs`` 160 with ``warmup_epochs`` 40 (the ImageNet schedule, 40 + 120).
- **Remaining differences from the code** (each kept for the shared protocol or the harness's structure): the
  architecture step reads a batch of the architecture half, augmented (the code holds out 50 images per class
  of the training set, unaugmented); the learning rate changes per epoch, not per
  batch; when the active path is ``zero`` the α row's Adam moments see a zero gradient (the code's α of a
  block is its own tensor whose ``.grad`` is None, so Adam skips it); and the harness's data split, search
  epochs and evaluation protocol are the shared ones (the code searches ImageNet at 224×224).
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.core.cache import key_lock
from harness.core.config import SEARCH_RECIPE_KEYS, Key
from harness.core.data import DataInfo, SearchData
from harness.core.errors import UserError
from harness.core.metrics import count_madds_m, measure_latency_ms
from harness.core.records import atomic_write
from harness.core.registry import register_method
from harness.core.storage import default_cache_dir
from harness.core.train import clip_gradients, cosine_lr, evaluate, lr_scale, memory_format, weight_loss
from methods.base import ArchState
from methods.darts import Darts, _grads, masked_softmax
from spaces.base import EdgeId, SearchSpace
from spaces.ops import is_zero

ZERO_NAMES = ("zero", "none")  # candidates that stand for "no block" / a zero output: cost 0, the zero rule
BINARY_MODES = ("two", "full")
COSTS = ("macs", "latency", "none")
UNIT_SCALE = {"macs": 1e6, "latency": 1e3}  # mul_log takes logs of multiply-adds and of microseconds
LATENCY_WARMUP, LATENCY_RUNS = 3, 20
COST_FORMS = ("mul_log", "add_linear")
COST_PROBS = ("pair", "full")


def device_description(device: torch.device) -> str:
    """The device a latency table belongs to: the GPU's name, or the CPU's model and torch's thread count."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.machine()}:{platform.processor()}:{torch.get_num_threads()} threads"


class LatencyTable:
    """Candidate latencies (ms, ``measure_latency_ms`` at batch 1) on one device, cached on disk under the
    harness cache (``<cache>/latency/<device key>.json``), keyed by the candidate module's description (its
    ``repr``: type, channels, kernel, stride), its input shape and the memory layout it runs in (the
    configuration's: a channels-last network timed on a contiguous input misstates its speed). Measured once
    per device; entries are added under the cache's lock."""

    def __init__(self, device: torch.device, layout: torch.memory_format = torch.contiguous_format):
        self.layout = layout
        self.description = device_description(device)
        self.key = hashlib.sha256(self.description.encode()).hexdigest()[:24]
        self.folder = default_cache_dir() / "latency"
        self.path = self.folder / f"{self.key}.json"
        self.entries = self._read(self.path)
        self.added: dict[str, float] = {}

    @staticmethod
    def _read(path: Path) -> dict[str, float]:
        try:
            return dict(json.loads(path.read_text())["entries"])
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def measure(self, module: nn.Module, shape: tuple[int, ...], cached: bool = True) -> float:
        if not cached:
            return measure_latency_ms(module, shape, LATENCY_WARMUP, LATENCY_RUNS, layout=self.layout)
        entry = json.dumps([repr(module), list(shape), str(self.layout)])
        if entry not in self.entries:
            self.entries[entry] = self.added[entry] = measure_latency_ms(module, shape, LATENCY_WARMUP, LATENCY_RUNS,
                                                                         layout=self.layout)
        return self.entries[entry]

    def save(self) -> None:
        if not self.added:
            return
        with key_lock(self.folder, self.key, "latency table cache"):
            entries = {**self._read(self.path), **self.added}
            blob = json.dumps({"device": self.description, "entries": entries}, indent=0)
            atomic_write(self.path, lambda f: f.write(blob))


class GateState:
    """What the edges of one supernet read: the mode of the current forward pass and its samples.

    ``mode`` None: each edge computes its argmax candidate (evaluation); ``"weight"``: ``chosen[group][index]``,
    the one sampled op; ``"arch"``: ``involved[group][index]``, the involved ops (active first) and
    ``gates[group][index]``, their gate tensor (value 1 for the active one, 0 for the others)."""

    def __init__(self, arch: ArchState, masks: dict[str, torch.Tensor | None]):
        self.arch, self.masks = arch, masks
        self.mode: str | None = None
        self.chosen: dict[str, list[int]] = {}
        self.involved: dict[str, list[tuple[int, ...]]] = {}
        self.gates: dict[str, list[torch.Tensor]] = {}

    def argmax(self, group: str, index: int) -> int:
        mask = self.masks.get(group)
        row = self.arch.params[group][index].detach()
        if mask is not None:
            row = row.masked_fill(~mask[index], float("-inf"))
        return int(row.argmax())


class BinaryGateEdge(nn.Module):
    """One edge's candidates behind binary gates: computes only the sampled candidate (weight step), only
    the involved ones (architecture step; the inactive ones without grad), the argmax or the forced one."""

    def __init__(self, edge: EdgeId, candidates: nn.ModuleList, state: GateState):
        super().__init__()
        self.edge, self.ops = edge, candidates
        self._state = [state]  # a list, so that the state is not taken for a submodule
        self.last_op: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state, group, index = self._state[0], self.edge.group, self.edge.index
        forced = state.arch.forced.get((group, index))
        if forced is not None:
            self.last_op = forced
            return self.ops[self.edge.slot(forced)](x)
        if state.mode == "arch":
            involved, gates = state.involved[group][index], state.gates[group][index]
            self.last_op = involved[0]
            out = gates[0] * self.ops[self.edge.slot(involved[0])](x)
            for k, op in enumerate(involved[1:], start=1):
                module = self.ops[self.edge.slot(op)]
                if is_zero(module):  # zeros: nothing to the output, ∂L/∂g = ⟨∂L/∂y, 0⟩ = 0
                    continue
                with torch.no_grad():
                    other = module(x)
                out = out + gates[k] * other
            return out
        op = state.chosen[group][index] if state.mode == "weight" else state.argmax(group, index)
        self.last_op = op
        return self.ops[self.edge.slot(op)](x)


def binary_gate_alpha_grad(alpha_involved: torch.Tensor, gate_grads: torch.Tensor) -> torch.Tensor:
    """∂L/∂α_i = Σ_j ∂L/∂g_j · p′_j(δ_ij − p′_i), p′ = softmax(α of the involved ops), for the involved ops."""
    p = F.softmax(alpha_involved.detach(), dim=-1)
    return p * (gate_grads - (gate_grads * p).sum())


def rescale_pair(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """``new`` − log(Σ e^new / Σ e^old): the pair's total e^α (hence every other op's probability) unchanged."""
    return new - (torch.logsumexp(new, dim=-1) - torch.logsumexp(old, dim=-1))


def cost_objective(ce: torch.Tensor, expected: torch.Tensor, ref: float, cfg: dict[str, Any]) -> torch.Tensor:
    """The architecture loss from the cross-entropy and E[cost] (millions of multiply-adds or milliseconds),
    ``ref`` likewise."""
    if cfg["cost"] == "none":
        return ce
    if cfg["cost_form"] == "mul_log":
        scale = UNIT_SCALE[cfg["cost"]]
        ratio = torch.log(expected * scale) / math.log(ref * scale)
        return cfg["cost_a"] * ce * ratio ** cfg["cost_b"]
    return ce + cfg["cost_lambda"] * (expected - ref) / ref


@register_method
class Proxyless(Darts):
    name = "proxyless"
    description = "ProxylessNAS-G: binary gates (one path per weight step, two per architecture step), cost term"
    needs = frozenset({"edges"})
    excludes = {"hetero": "not validated on NOS's two-tier blocks (no paper pairs them)"}
    keys = {
        **Darts.keys,
        "warmup_epochs": Key(None, "ProxylessNAS: first epochs train the weights only (the architecture steps start "
                                   "one epoch later, as the code skips the first joint epoch)", "[0, inf)", kind=int),
        "arch_every": Key(5, "ProxylessNAS: one architecture step every this many weight steps of an epoch",
                          "[1, inf)"),
        "binary_mode": Key("two", "ProxylessNAS: 'two' = two sampled paths per architecture step (paper), 'full' = "
                                  "all candidates involved (the code's full_v2 formula)", choices=BINARY_MODES),
        "zero_no_update": Key(True, "ProxylessNAS: an edge whose active path is 'zero'/'none' gets no alpha update "
                                    "in that step (the code's rule)"),
        "cost": Key("none", "ProxylessNAS: the cost term, none (accuracy alone: the code's default, no target "
                            "hardware), expected multiply-adds ('macs', the variant proxyless-macs) or expected "
                            "latency from a table measured on this device ('latency', cached; proxyless-latency)",
                    choices=COSTS),
        "cost_probs": Key("pair", "ProxylessNAS: with binary_mode=two, E[cost] of the architecture step weighs each "
                                  "edge's costs by the softmax over its sampled pair ('pair', the code's "
                                  "current_prob_over_ops) or over all its candidates ('full', the paper's Eq. 3)",
                          choices=COST_PROBS),
        "cost_form": Key("mul_log", "ProxylessNAS: 'mul_log' = a*CE*(log E/log ref)^b, 'add_linear' = "
                                    "CE + lambda*(E-ref)/ref", choices=COST_FORMS),
        "cost_ref": Key(0.0, "ProxylessNAS: reference cost, millions of multiply-adds or ms (0 = E[cost] of the "
                             "supernet under uniform p; the paper's is 300M MACs or 80 ms at 224x224)", "[0, inf)",
                        origin="harness"),
        "cost_a": Key(0.2, "ProxylessNAS: a of mul_log", "(0, inf)"),
        "cost_b": Key(0.3, "ProxylessNAS: b of mul_log", "[0, inf)"),
        "cost_lambda": Key(0.1, "ProxylessNAS: lambda of add_linear", "[0, inf)"),
        "warmup_lr": Key(0.0, "ProxylessNAS: weight learning rate of the warm-up epochs, cosine-annealed to 0 over "
                              "them, the joint epochs then following w_lr's schedule on their own (the code's 0.05 "
                              "on proxyless); 0 = one schedule over all epochs", "[0, inf)"),
        **{name: SEARCH_RECIPE_KEYS[name] for name in ("grad_clip_mode", "w_label_smoothing", "w_lr_batch")},
    }
    ignored_keys = frozenset({"order"})
    defaults = {**Darts.defaults, "search_epochs": 160, "warmup_epochs": 40, "arch_lr": 1e-3, "arch_beta1": 0.0,
                "arch_beta2": 0.999, "arch_weight_decay": 0.0, "arch_init_std": 1e-3}
    # on its own space, the search recipe of the authors' code (search/imagenet_arch_search.py, nas_manager.py):
    # SGD with Nesterov momentum 0.9, weight decay 4e-5 on every weight, lr 0.025 cosine to 0 over the joint
    # epochs after a warm-up at 0.05 cosine to 0, no gradient clipping, label smoothing 0.1, batch 256
    space_defaults = {"proxyless": {"search_batch_size": 256, "w_nesterov": True, "w_weight_decay": 4e-5,
                                    "w_lr_min": 0.0, "warmup_lr": 0.05, "grad_clip_mode": "off",
                                    "w_label_smoothing": 0.1, "w_lr_batch": 256}}
    # smoke: no warm-up, so that the second epoch has architecture steps, one per weight step
    budgets = {"smoke": {"warmup_epochs": 0, "arch_every": 1}, "small": {"warmup_epochs": 2}}

    @classmethod
    def validate_config(cls, cfg: dict[str, Any], space: type[SearchSpace]) -> None:
        super().validate_config(cfg, space)
        if cfg["warmup_epochs"] + 1 >= cfg["search_epochs"]:
            raise UserError(f"ProxylessNAS takes architecture steps from epoch warmup_epochs + 1 on: need "
                            f"warmup_epochs + 1 < search_epochs, got warmup_epochs={cfg['warmup_epochs']}, "
                            f"search_epochs={cfg['search_epochs']}")

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], info: DataInfo, device: torch.device,
                 seed: int):
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.batch_in_epoch = 0
        self.arch_steps = 0
        self.gate_state: GateState | None = None
        super().__init__(space, cfg, info, device, seed)
        self.zero_ops = {i for i, name in enumerate(space.op_names) if name in ZERO_NAMES}
        self.measure_costs()

    def make_edge(self, edge: EdgeId, candidates: nn.ModuleList) -> nn.Module:
        if self.gate_state is None:
            self.gate_state = GateState(self.arch, self.masks)
        return BinaryGateEdge(edge, candidates, self.gate_state)

    def edge_modules(self) -> list[BinaryGateEdge]:
        return [m for m in self.supernet.modules() if isinstance(m, BinaryGateEdge)]

    # --- cost ----------------------------------------------------------------------------------
    def measure_costs(self) -> None:
        """Per group, the ``[edges, ops]`` cost of every candidate at its input shape (millions of multiply-adds;
        with ``cost=latency`` milliseconds from the device's cached table), summed over the group's instances;
        the fixed part; the reference."""
        edges = self.edge_modules()
        shapes: dict[int, tuple[int, ...]] = {}

        def record(module: nn.Module, args: tuple[Any, ...]) -> None:
            shapes.setdefault(id(module), tuple(args[0].shape))

        handles = [e.register_forward_pre_hook(record) for e in edges]
        input_shape = (1, self.info.in_channels, self.info.image_size, self.info.image_size)
        try:
            total = count_madds_m(self.supernet, input_shape)
        finally:
            for handle in handles:
                handle.remove()
        latency = self.cfg["cost"] == "latency"
        table = LatencyTable(self.device, memory_format(self.cfg)) if latency else None
        if latency:
            total = table.measure(self.supernet, input_shape, cached=False)
        costs = {g: np.zeros(shape) for g, shape in self.space.arch_shape().items()}
        macs: dict[tuple[str, tuple[int, ...]], float] = {}
        chosen = 0.0
        for e in edges:
            for op, module in zip(e.edge.ops, e.ops):
                if op in self.zero_ops or id(e) not in shapes:
                    continue
                if latency:
                    cost = table.measure(module, shapes[id(e)])
                else:  # candidates alike in structure (their repr) and input cost alike: counted once
                    key = (repr(module), shapes[id(e)])
                    cost = macs[key] if key in macs else macs.setdefault(key, count_madds_m(module, key[1]))
                costs[e.edge.group][e.edge.index, op] += cost
                if op == e.last_op:
                    chosen += cost
        if latency:
            table.save()
        self.costs = costs
        self.cost_tensors = {g: torch.as_tensor(c, dtype=torch.float32, device=self.device) for g, c in costs.items()}
        self.fixed_cost = max(0.0, total - chosen)
        mask = self.space.candidate_mask()
        self.uniform_cost = self.fixed_cost + sum(float((c * m / m.sum(axis=1, keepdims=True)).sum())
                                                  for c, m in ((costs[g], mask[g]) for g in costs))
        self.cost_ref = float(self.cfg["cost_ref"]) or self.uniform_cost
        if (self.cfg["cost"] != "none" and self.cfg["cost_form"] == "mul_log"
                and self.cost_ref * UNIT_SCALE[self.cfg["cost"]] <= 1.0):
            raise UserError(f"ProxylessNAS: the reference cost ({self.cost_ref}) is too small for cost_form=mul_log; "
                            "set cost_ref, cost_form=add_linear or cost=none")

    def expected_cost(self, involved: dict[str, list[tuple[int, ...]]] | None = None) -> torch.Tensor:
        """E[cost] = fixed + Σ_groups Σ_edges Σ_j p_j·cost_j (millions of multiply-adds, or ms), differentiable in
        α: p = softmax(α) over each edge's candidates, or with ``involved`` (per group, each edge's sampled ops)
        the softmax over the edge's involved ops alone, 0 for the others (the code's ``current_prob_over_ops`` of
        the two-path mode)."""
        total = torch.tensor(self.fixed_cost, device=self.device)
        for group, alpha in self.arch.params.items():
            mask = self.masks[group]
            if involved is not None:
                mask = torch.zeros(alpha.shape, dtype=torch.bool, device=alpha.device)
                for index, ops in enumerate(involved[group]):
                    mask[index, list(ops)] = True
            total = total + (masked_softmax(alpha, mask) * self.cost_tensors[group]).sum()
        return total

    # --- sampling --------------------------------------------------------------------------------
    def probabilities(self, group: str) -> torch.Tensor:
        return masked_softmax(self.arch.params[group].detach(), self.masks[group])

    def sample_weight_paths(self) -> None:
        """One candidate per (group, edge) from multinomial(p)."""
        state = self.gate_state
        state.chosen = {g: torch.multinomial(self.probabilities(g), 1, generator=self.generator)[:, 0].tolist()
                        for g in self.arch.params}

    def sample_arch_paths(self) -> None:
        """Per (group, edge) the involved candidates, the active one first, and their gates (1, then 0s)."""
        state, two = self.gate_state, self.cfg["binary_mode"] == "two"
        state.involved, state.gates = {}, {}
        for group, alpha in self.arch.params.items():
            probs = self.probabilities(group)
            involved, gates = [], []
            for index in range(alpha.shape[0]):
                candidates = int((probs[index] > 0).sum())
                if two:
                    ops = torch.multinomial(probs[index], min(2, candidates), replacement=False,
                                            generator=self.generator).tolist()
                    within = F.softmax(alpha[index, ops].detach(), dim=-1)
                else:
                    ops = torch.nonzero(probs[index] > 0)[:, 0].tolist()
                    within = probs[index, ops]
                active = int(torch.multinomial(within, 1, generator=self.generator))
                ops = [ops[active]] + [op for k, op in enumerate(ops) if k != active]
                gate = torch.zeros(len(ops), device=self.device)
                gate[0] = 1.0
                involved.append(tuple(ops))
                gates.append(gate.requires_grad_())
            state.involved[group], state.gates[group] = involved, gates

    # --- search ---------------------------------------------------------------------------------
    def weight_lr(self, epoch: int) -> float:
        """With ``warmup_lr``: the warm-up epochs anneal it to 0 (cosine), the joint epochs follow the shared cosine
        from ``w_lr`` to ``w_lr_min`` over themselves alone (the code's two schedules); else the shared cosine.
        Scaled to the search batch (``lr_scale``)."""
        warmup = int(self.cfg["warmup_epochs"])
        if not self.cfg["warmup_lr"]:
            lr = super().weight_lr(epoch)
        elif epoch < warmup:
            lr = cosine_lr(epoch, warmup, self.cfg["warmup_lr"], 0.0)
        else:
            lr = cosine_lr(epoch - warmup, self.num_epochs() - warmup, self.cfg["w_lr"], self.cfg["w_lr_min"])
        return lr_scale(self.cfg) * lr

    def validate(self, data: SearchData) -> tuple[float, float]:
        """The argmax path on the architecture half with BatchNorm on batch statistics, as the code validates
        (``use_train_mode=True``: the supernet's running statistics mix every sampled path); restored after."""
        return evaluate(self.supernet, data.val_batches(), train_mode_bn=True)

    def train_epoch(self, epoch: int, data: SearchData) -> dict[str, Any]:
        self.batch_in_epoch = 0
        before = self.arch_steps
        metrics = super().train_epoch(epoch, data)
        return {**metrics, "arch_steps": self.arch_steps - before,
                "expected_cost_m": float(self.expected_cost().detach())}

    def train_step(self, weight_batch: Any, arch_batch: Any, epoch: int) -> dict[str, float]:
        stats = self.weight_step(*weight_batch)
        self.batch_in_epoch += 1
        if epoch > self.cfg["warmup_epochs"] and self.batch_in_epoch % self.cfg["arch_every"] == 0:
            self.arch_step(*arch_batch)
        return stats

    def weight_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One SGD step of the weights of one sampled path per edge. The unsampled candidates' weights get no
        gradient (``.grad`` None, as the code sets it "to avoid over-regularization"), so SGD skips them: no
        weight decay, no momentum, their momentum buffers untouched."""
        self.supernet.train()
        self.sample_weight_paths()
        self.gate_state.mode = "weight"
        try:
            logits = self.supernet(x)
        finally:
            self.gate_state.mode = None
        loss = weight_loss(logits, y, self.cfg)
        self.w_opt.zero_grad(set_to_none=True)
        weights = self.weights()
        for w, g in zip(weights, torch.autograd.grad(loss, weights, allow_unused=True)):
            w.grad = g  # None where the weight was not used
        clip_gradients(self.supernet.parameters(), self.cfg)
        self.w_opt.step()
        return {"loss": loss.item(), "correct": (logits.argmax(1) == y).sum().item()}

    def arch_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """One Adam step of α through the binary gates (and the cost term); returns the architecture loss."""
        self.supernet.train()
        self.sample_arch_paths()
        state = self.gate_state
        state.mode = "arch"
        try:
            logits = self.supernet(x)
        finally:
            state.mode = None
        pair_cost = self.cfg["binary_mode"] == "two" and self.cfg["cost_probs"] == "pair"
        expected = self.expected_cost(state.involved if pair_cost else None)
        loss = cost_objective(F.cross_entropy(logits, y), expected, self.cost_ref, self.cfg)
        groups = list(self.arch.params)
        gate_list = [g for group in groups for g in state.gates[group]]
        grads = _grads(loss, gate_list + self.arch_parameters())
        gate_grads, alpha_grads = grads[:len(gate_list)], grads[len(gate_list):]
        frozen: dict[str, list[int]] = {}
        k = 0
        self.a_opt.zero_grad(set_to_none=True)
        for group, alpha, grad in zip(groups, self.arch_parameters(), alpha_grads):
            grad = grad.clone()
            frozen[group] = []
            for index, ops in enumerate(state.involved[group]):
                gate_grad = gate_grads[k]
                k += 1
                if self.cfg["zero_no_update"] and ops[0] in self.zero_ops:
                    grad[index] = 0.0
                    frozen[group].append(index)
                    continue
                grad[index, list(ops)] += binary_gate_alpha_grad(alpha[index, list(ops)], gate_grad)
            alpha.grad = grad
        old = {g: a.detach().clone() for g, a in self.arch.params.items()}
        self.a_opt.step()
        with torch.no_grad():
            for group, alpha in self.arch.params.items():
                for index, ops in enumerate(state.involved[group]):
                    if index in frozen[group]:
                        alpha[index] = old[group][index]
                    elif self.cfg["binary_mode"] == "two":
                        cols = list(ops)
                        alpha[index, cols] = rescale_pair(old[group][index, cols], alpha[index, cols])
        self.arch_steps += 1  # the step's sample stays in ``gate_state`` (read by the tests), unused until the next
        return float(loss.detach())

    # --- results --------------------------------------------------------------------------------
    def record_info(self) -> dict[str, Any]:
        unit = "ms" if self.cfg["cost"] == "latency" else "M multiply-adds"
        return {"cost": {"kind": self.cfg["cost"], "form": self.cfg["cost_form"], "unit": unit,
                         "reference": self.cost_ref, "uniform": self.uniform_cost, "fixed": self.fixed_cost,
                         "expected": float(self.expected_cost().detach()),
                         "per_group": {g: c.tolist() for g, c in self.costs.items()}},
                "arch_steps": self.arch_steps}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "generator": self.generator.get_state(),
                "batch_in_epoch": self.batch_in_epoch, "arch_steps": self.arch_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state["generator"])
        self.batch_in_epoch, self.arch_steps = int(state["batch_in_epoch"]), int(state["arch_steps"])
