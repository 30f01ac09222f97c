"""ProxylessNAS-G (methods/proxyless.py): one path per weight step, two per architecture step, the binary-gate
α gradient, the rescaling, the zero rule, the cost term, checkpoints, edges with their own candidates and a
tiny NAS-Bench-201 trial."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import TINY_TRIAL, tiny_overrides, trial_records
from helpers import count_op_calls
from torch import nn

from harness import checkpoints
from harness.core.config import resolve
from harness.core.data import DataInfo
from harness.core.errors import UserError
from harness.core.registry import get_method, get_space
from methods.base import ArchState
from methods.proxyless import BinaryGateEdge, GateState, binary_gate_alpha_grad, cost_objective, rescale_pair
from spaces.base import EdgeId

CPU = torch.device("cpu")
INFO = DataInfo(1, 10, 8)
SIZES = {"search_layers": "1", "search_channels": "4"}


def method(seed: int = 0, space=None, **sets: str):
    cfg = resolve(get_method("proxyless"), get_space("nb201"), "smoke", {**SIZES, **sets}).values
    torch.manual_seed(seed)
    return get_method("proxyless")((space or get_space("nb201"))(cfg), cfg, INFO, CPU, seed)


def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(8, 1, 8, 8, generator=generator), torch.randint(0, 10, (8,), generator=generator)


def test_defaults_are_the_papers_and_the_smoke_budget_has_architecture_steps():
    paper = resolve(get_method("proxyless"), get_space("nb201"), "paper", {}).values
    assert (paper["search_epochs"], paper["warmup_epochs"], paper["arch_every"]) == (160, 40, 5)
    assert (paper["arch_lr"], paper["arch_beta1"], paper["arch_beta2"], paper["arch_weight_decay"]) == (
        1e-3, 0.0, 0.999, 0.0)
    assert paper["binary_mode"] == "two" and paper["cost_form"] == "mul_log" and paper["cost_probs"] == "pair"
    assert paper["cost"] == "none"  # the code's default (no target hardware): accuracy alone
    assert "order" not in paper
    smoke = resolve(get_method("proxyless"), get_space("nb201"), "smoke", {}).values
    assert smoke["warmup_epochs"] + 1 < smoke["search_epochs"]
    with pytest.raises(UserError, match="warmup_epochs"):
        resolve(get_method("proxyless"), get_space("nb201"), "smoke", {"search_epochs": "3", "warmup_epochs": "2"})


def test_weight_step_computes_one_path_and_arch_step_two():
    m = method()
    edges = [e for e in m.supernet.modules() if isinstance(e, BinaryGateEdge)]
    calls, handles = count_op_calls(edges)
    try:
        m.weight_step(*batch(0))
        for e in edges:
            ran = [k for k in range(len(e.ops)) if calls.get((e.edge.cell, e.edge.index, k))]
            assert ran == [e.edge.slot(m.gate_state.chosen["cell"][e.edge.index])], e.edge
        calls.clear()
        m.arch_step(*batch(1))
        for e in edges:
            ran = {k for k in range(len(e.ops)) if calls.get((e.edge.cell, e.edge.index, k))}
            involved = m.gate_state.involved["cell"][e.edge.index]
            assert len(set(involved)) == 2
            # the `none` op is never computed when inactive (zeros); the active one always is
            expected = {e.edge.slot(op) for k, op in enumerate(involved) if k == 0 or op != 0}
            assert ran == expected, e.edge
    finally:
        for handle in handles:
            handle.remove()


class Scale(nn.Module):
    def __init__(self, c: float):
        super().__init__()
        self.c = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c * x


def test_alpha_gradient_matches_the_formula_and_finite_differences():
    consts = [1.0, 2.0, -1.5]
    arch = ArchState()
    arch.params["g"] = nn.Parameter(torch.tensor([[0.3, -0.2, 0.5]], dtype=torch.float64))
    state = GateState(arch, {"g": None})
    edge = BinaryGateEdge(EdgeId("g", 0, 0, 1, (0, 1, 2)), nn.ModuleList([Scale(c) for c in consts]), state)
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    w = torch.tensor([1.0, 0.25, -0.5], dtype=torch.float64)

    def loss_of(y: torch.Tensor) -> torch.Tensor:  # linear in the edge's output
        return (y * w).sum()

    # full mode: every candidate involved, the active one (op 1) first
    state.mode, involved = "arch", (1, 0, 2)
    gates = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
    state.involved, state.gates = {"g": [involved]}, {"g": [gates]}
    (gate_grads,) = torch.autograd.grad(loss_of(edge(x)), [gates])
    xw = float((x * w).sum())
    assert gate_grads.tolist() == pytest.approx([consts[op] * xw for op in involved])  # ∂L/∂g_k = Σ o_k ⊙ ∂L/∂y
    alpha = arch.params["g"][0].detach()
    grad = binary_gate_alpha_grad(alpha[list(involved)], gate_grads)
    p = torch.softmax(alpha[list(involved)], -1)
    hand = [sum(gate_grads[j] * p[j] * (float(i == j) - p[i]) for j in range(3)) for i in range(3)]
    assert grad.tolist() == pytest.approx([float(h) for h in hand])
    # = the gradient of the expected (softmax-mixed) loss, by central differences
    eps, numeric = 1e-6, []
    for i in range(3):
        shifted = []
        for sign in (1, -1):
            a = alpha.clone()
            a[involved[i]] += sign * eps
            probs = torch.softmax(a, -1)
            shifted.append(float(loss_of(sum(probs[k] * consts[k] * x for k in range(3)))))
        numeric.append((shifted[0] - shifted[1]) / (2 * eps))
    assert grad.tolist() == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    # two mode: only the pair, p′ = softmax of their two α
    pair = (2, 0)
    gates = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    state.involved, state.gates = {"g": [pair]}, {"g": [gates]}
    (gate_grads,) = torch.autograd.grad(loss_of(edge(x)), [gates])
    q = torch.softmax(alpha[list(pair)], -1)
    expected = [float(q[i] * (gate_grads[i] - (gate_grads * q).sum())) for i in range(2)]
    assert binary_gate_alpha_grad(alpha[list(pair)], gate_grads).tolist() == pytest.approx(expected)
    assert float(gate_grads[0]) == pytest.approx(consts[2] * xw) and float(gate_grads[1]) == pytest.approx(xw)


def test_rescaling_keeps_the_unsampled_probabilities():
    old = torch.tensor([0.1, -0.4, 0.7, 0.2])
    new = old.clone()
    new[[0, 2]] += torch.tensor([0.3, -0.1])
    new[[0, 2]] = rescale_pair(old[[0, 2]], new[[0, 2]])
    assert torch.softmax(new, -1)[[1, 3]].tolist() == pytest.approx(torch.softmax(old, -1)[[1, 3]].tolist())
    # through the method: with cost=none every edge keeps its unsampled ops' probabilities
    m = method(cost="none")
    for step in range(3):
        before = torch.softmax(m.arch.params["cell"].detach().clone(), -1)
        m.arch_step(*batch(step))
        after = torch.softmax(m.arch.params["cell"].detach(), -1)
        for index, involved in enumerate(m.gate_state.involved["cell"]):
            others = [op for op in range(5) if op not in involved]
            assert after[index, others].tolist() == pytest.approx(before[index, others].tolist(), abs=1e-7)


def test_zero_active_edges_get_no_update():
    m = method(cost="macs")  # with the cost term too: it never reaches a row whose active path is `none`
    seen, moved = 0, []
    for step in range(6):
        before = m.arch.params["cell"].detach().clone()
        m.arch_step(*batch(step))
        after = m.arch.params["cell"].detach()
        for index, involved in enumerate(m.gate_state.involved["cell"]):
            if involved[0] == 0:  # `none` active
                seen += 1
                assert torch.equal(after[index], before[index])
            else:
                moved.append(not torch.equal(after[index], before[index]))
    assert seen > 0 and sum(moved) > len(moved) // 2
    m = method(zero_no_update="false", cost="none")
    changed = []
    for step in range(6):
        before = m.arch.params["cell"].detach().clone()
        m.arch_step(*batch(step))
        changed += [not torch.equal(m.arch.params["cell"][i].detach(), before[i])
                    for i, inv in enumerate(m.gate_state.involved["cell"]) if inv[0] == 0]
    assert changed and all(changed)


def crafted_costs(m) -> tuple[np.ndarray, np.ndarray]:
    """Give ``m`` (on the tiny NAS-Bench-201 supernet) crafted costs, α and fixed cost 2; returns (costs, α)."""
    costs = np.arange(30, dtype=np.float64).reshape(6, 5) / 10
    alpha = np.linspace(-1, 1, 30).reshape(6, 5)
    with torch.no_grad():
        m.arch.params["cell"].copy_(torch.as_tensor(alpha))
    m.cost_tensors = {"cell": torch.as_tensor(costs, dtype=torch.float32)}
    m.fixed_cost = 2.0
    return costs, alpha


def test_cost_term_matches_a_hand_computation():
    m = method()
    # measured: conv candidates cost their multiply-adds summed over the 3 cells (4, 8, 16 channels at 8, 4, 2
    # pixels); none, skip and pooling cost nothing
    one = 4 * 4 * 64 + 8 * 8 * 16 + 16 * 16 * 4
    assert m.costs["cell"][:, 2] == pytest.approx([one / 1e6] * 6)
    assert m.costs["cell"][:, 3] == pytest.approx([9 * one / 1e6] * 6)
    assert np.all(m.costs["cell"][:, [0, 1, 4]] == 0)
    assert m.fixed_cost > 0 and m.cost_ref == pytest.approx(m.uniform_cost)
    assert m.uniform_cost == pytest.approx(m.fixed_cost + 6 * 10 * one / 1e6 / 5)
    costs, alpha = crafted_costs(m)
    p = np.exp(alpha) / np.exp(alpha).sum(axis=1, keepdims=True)
    expected = 2.0 + float((p * costs).sum())
    assert float(m.expected_cost().detach()) == pytest.approx(expected, rel=1e-5)
    ce, e, ref = torch.tensor(1.7), torch.tensor(expected), 3.0
    cfg = {**m.cfg, "cost": "macs"}
    mul = cost_objective(ce, e, ref, {**cfg, "cost_form": "mul_log"})
    assert float(mul) == pytest.approx(0.2 * 1.7 * (math.log(expected * 1e6) / math.log(3e6)) ** 0.3, rel=1e-5)
    add = cost_objective(ce, e, ref, {**cfg, "cost_form": "add_linear"})
    assert float(add) == pytest.approx(1.7 + 0.1 * (expected - 3.0) / 3.0, rel=1e-5)
    assert float(cost_objective(ce, e, ref, {**cfg, "cost": "none"})) == pytest.approx(1.7)


def test_full_mode_involves_every_candidate_and_does_not_rescale():
    m = method(binary_mode="full", cost="none")
    m.arch_step(*batch(0))
    for involved in m.gate_state.involved["cell"]:
        assert sorted(involved) == list(range(5))


def test_checkpoint_round_trip_continues_exactly():
    a = method(seed=0)
    for step in range(2):
        a.weight_step(*batch(step))
        a.arch_step(*batch(step + 10))
    b = method(seed=5)
    b.load_state_dict(checkpoints.loads(checkpoints.dumps(a.state_dict())))  # as a trial's checkpoint
    for m in (a, b):
        m.weight_step(*batch(20))
        m.arch_step(*batch(21))
    assert a.gate_state.chosen == b.gate_state.chosen and a.gate_state.involved == b.gate_state.involved
    assert torch.equal(a.arch.params["cell"], b.arch.params["cell"])


def test_ragged_edges_sample_only_their_candidates():
    from test_interface import RaggedSpace

    m = method(space=RaggedSpace)
    seen_w = {e: set() for e in range(6)}
    seen_a = {e: set() for e in range(6)}
    for _ in range(60):
        m.sample_weight_paths()
        m.sample_arch_paths()
        for e in range(6):
            seen_w[e].add(m.gate_state.chosen["cell"][e])
            seen_a[e].update(m.gate_state.involved["cell"][e])
    for e in range(6):
        assert seen_w[e] == seen_a[e] == set(m.space.edge_ops("cell", e)), e
    m.weight_step(*batch(0))
    m.arch_step(*batch(1))
    importance = m.importance()["cell"]
    assert importance[0, 0] == 0 and importance[5, [1, 3]].tolist() == [0, 0]
    assert m.costs["cell"][5, 1] == 0 and m.costs["cell"][5, 2] > 0


def test_tiny_nb201_trial_beats_chance(tmp_path):
    sets = {**tiny_overrides("proxyless", "nb201", TINY_TRIAL), "search_epochs": "2", "eval": "train",
            "cost": "macs"}
    (record,) = trial_records("proxyless", "nb201", tmp_path, "t", 1, *(f"{k}={v}" for k, v in sets.items()))
    assert 10.0 < record["test_acc"] <= 100.0
    assert record["cost"]["kind"] == "macs" and record["arch_steps"] > 0
    assert set(record["cost"]["per_group"]) == {"cell"}


def test_latency_table_is_measured_once_per_device_and_cached(monkeypatch):
    import methods.proxyless as proxyless

    first = method(cost="latency", cost_form="add_linear")
    table = proxyless.LatencyTable(CPU)
    assert table.path.is_file() and table.entries
    assert first.costs["cell"][:, 3].min() > 0 and np.all(first.costs["cell"][:, 0] == 0)  # `none` costs nothing
    calls = []
    monkeypatch.setattr(proxyless, "measure_latency_ms",
                        lambda module, shape, *args, **kwargs: calls.append(module) or 1.0)
    again = method(cost="latency", cost_form="add_linear")
    assert len(calls) == 1 and calls[0] is again.supernet  # only the whole supernet (the fixed part) is re-timed
    assert np.array_equal(again.costs["cell"], first.costs["cell"])
    again.arch_step(*batch(0))
    assert again.record_info()["cost"]["unit"] == "ms"


def test_on_the_chain_space_skipping_costs_nothing_and_each_block_costs_its_multiply_adds():
    """On the proxyless space: the cost matrix has one row per block; `zero` (the identity) costs 0 where it is a
    candidate and nothing is counted where it is not; an MBConv's cost is its whole block's multiply-adds at
    the block's input, and the bigger kernel / expansion costs more."""
    from harness.core.metrics import count_madds_m

    cfg = resolve(get_method("proxyless"), get_space("proxyless"), "smoke").values
    torch.manual_seed(0)
    m = get_method("proxyless")(get_space("proxyless")(cfg), cfg, INFO, CPU, 0)
    costs, mask = m.costs["blocks"], m.space.candidate_mask()["blocks"]
    zero = m.space.op_names.index("zero")
    assert costs.shape == (21, 7) and np.all(costs[~mask] == 0)
    assert mask[:, zero].sum() == 15 and np.all(costs[mask[:, zero], zero] == 0)
    assert np.all(costs[:, :zero] > 0) and np.all(costs[:, 1] > costs[:, 0]) and np.all(costs[:, 5] > costs[:, 0])
    edge = m.edge_modules()[3]  # a skippable block: its candidates are x + mbconv(x)
    shapes = {}
    def record(module, args):  # a pre-hook that returns nothing leaves the input as it is
        shapes.setdefault("x", tuple(args[0].shape))

    handle = edge.register_forward_pre_hook(record)
    m.supernet.eval()
    with torch.no_grad():
        m.supernet(torch.zeros(1, 1, 8, 8))
    handle.remove()
    assert costs[3, 0] == pytest.approx(count_madds_m(edge.ops[0], shapes["x"]), rel=1e-9)  # millions


# --- issue 26: as the code trains (unsampled candidates untouched, the pair's cost, the code's recipe) -----------

def candidate_state(m) -> dict[int, list[torch.Tensor]]:
    """Per candidate module (by id): its parameters and their SGD momentum buffers (where they have one)."""
    out = {}
    for edge in m.edge_modules():
        for module in edge.ops:
            tensors = []
            for p in module.parameters():
                tensors.append(p.detach().clone())
                buffer = m.w_opt.state.get(p, {}).get("momentum_buffer")
                tensors.append(None if buffer is None else buffer.clone())
            out[id(module)] = tensors
    return out


def test_weight_step_leaves_unsampled_candidates_and_their_momentum_bit_identical():
    """The code sets the unsampled candidates' ``.grad`` to None ("avoid over-regularization"): weight decay and
    momentum must not touch them (zero gradients would decay them every step)."""
    m = method(w_weight_decay="0.01")
    m.weight_step(*batch(0))  # the sampled candidates now have momentum buffers
    before = candidate_state(m)
    first = {e: (e.edge.group, e.edge.index) for e in m.edge_modules()}
    sampled_first = {key: m.gate_state.chosen[key[0]][key[1]] for key in first.values()}
    m.weight_step(*batch(1))
    after = candidate_state(m)
    kept_buffer = 0
    for edge in m.edge_modules():
        group, index = edge.edge.group, edge.edge.index
        chosen = m.gate_state.chosen[group][index]
        for op, module in zip(edge.edge.ops, edge.ops):
            old, new = before[id(module)], after[id(module)]
            if op == chosen:
                continue
            for a, b in zip(old, new):
                assert (a is None and b is None) or torch.equal(a, b), (group, index, op)
            kept_buffer += op == sampled_first[(group, index)] and any(t is not None for t in new[1::2])
    assert kept_buffer > 0  # some candidate sampled in the first step and not the second kept its buffer as it was
    moved = [not torch.equal(a, b) for edge in m.edge_modules() for op, module in zip(edge.edge.ops, edge.ops)
             if op == m.gate_state.chosen[edge.edge.group][edge.edge.index]
             for a, b in zip(before[id(module)][::2], after[id(module)][::2])]
    assert moved and any(moved)  # the sampled ones did train


def test_two_path_cost_gradient_is_the_pairs_by_hand_and_moves_only_the_pair():
    """The code's E[cost] in the two-path mode weighs each edge's costs by the softmax over its sampled pair
    (``current_prob_over_ops``): its gradient is p'_a p'_b (c_a − c_b) for α_a, the opposite for α_b, 0 elsewhere."""
    m = method(cost="macs", cost_form="add_linear")
    costs, alpha = crafted_costs(m)
    pairs = [(0, 3), (2, 1), (4, 2), (3, 0), (1, 4), (2, 3)]  # active first
    alpha_param = m.arch.params["cell"]
    expected = m.expected_cost({"cell": pairs})
    (grad,) = torch.autograd.grad(expected, [alpha_param])
    hand_value, hand_grad = 2.0, np.zeros((6, 5))
    for row, (a, b) in enumerate(pairs):
        pa = math.exp(alpha[row, a]) / (math.exp(alpha[row, a]) + math.exp(alpha[row, b]))
        pb = 1.0 - pa
        hand_value += pa * costs[row, a] + pb * costs[row, b]
        hand_grad[row, a] = pa * pb * (costs[row, a] - costs[row, b])
        hand_grad[row, b] = -hand_grad[row, a]
    assert float(expected.detach()) == pytest.approx(hand_value, rel=1e-5)
    assert grad.numpy() == pytest.approx(hand_grad, abs=1e-6)
    outside = np.ones((6, 5), dtype=bool)
    for row, (a, b) in enumerate(pairs):
        outside[row, [a, b]] = False
    assert np.all(grad.numpy()[outside] == 0.0)
    # the paper's Eq. 3 form (every candidate weighted by softmax(α)) reaches every α of the edge
    (full,) = torch.autograd.grad(m.expected_cost(), [alpha_param])
    assert np.all(full.numpy()[outside] != 0.0)

    # through a whole architecture step: the first Adam step of a zero gradient moves nothing, and the rescaling
    # shifts only the pair, so every α outside the pairs is bit-identical with cost_probs=pair, not with full
    for cost_probs, untouched in (("pair", True), ("full", False)):
        m = method(cost="macs", cost_probs=cost_probs)
        before = m.arch.params["cell"].detach().clone()
        m.arch_step(*batch(0))
        after = m.arch.params["cell"].detach()
        same = [torch.equal(after[i, op], before[i, op]) for i, involved in enumerate(m.gate_state.involved["cell"])
                for op in range(5) if op not in involved and involved[0] != 0]
        assert same and all(same) == untouched, cost_probs


def test_the_codes_recipe_on_its_own_space_and_the_shared_one_elsewhere():
    own = resolve(get_method("proxyless"), get_space("proxyless"), "paper", {}).values
    assert (own["search_batch_size"], own["w_lr"], own["w_lr_min"], own["w_momentum"], own["w_nesterov"],
            own["w_weight_decay"], own["grad_clip_mode"], own["w_label_smoothing"], own["warmup_lr"],
            own["w_lr_batch"]) == (256, 0.025, 0.0, 0.9, True, 4e-5, "off", 0.1, 0.05, 256)
    assert resolve(get_method("proxyless"), get_space("proxyless"), "small", {}).values["search_batch_size"] == 64
    elsewhere = resolve(get_method("proxyless"), get_space("darts"), "paper", {}).values
    assert (elsewhere["search_batch_size"], elsewhere["w_weight_decay"], elsewhere["w_nesterov"],
            elsewhere["grad_clip_mode"], elsewhere["w_label_smoothing"], elsewhere["warmup_lr"],
            elsewhere["w_lr_batch"]) == (64, 3e-4, False, "norm", 0.0, 0.0, 0)
    for key in ("w_lr_schedule", "w_decay_params"):  # the code's are the shared ones: not keys of this method
        assert key not in own


def test_warm_up_and_joint_epochs_have_their_own_cosine():
    m = method(search_epochs="6", warmup_epochs="2", warmup_lr="0.05", w_lr="0.025", w_lr_min="0")
    lrs = [m.weight_lr(epoch) for epoch in range(6)]
    assert lrs == pytest.approx([0.05, 0.025, 0.025, 0.025 * (1 + math.cos(math.pi / 4)) / 2, 0.0125,
                                 0.025 * (1 + math.cos(3 * math.pi / 4)) / 2])
    # on its own space at the small budget's batch 64, the code's rates (for 256) scale by a quarter
    cfg = resolve(get_method("proxyless"), get_space("proxyless"), "small", {}).values
    chain = get_method("proxyless")(get_space("proxyless")(cfg), cfg, INFO, CPU, 0)
    assert chain.weight_lr(0) == pytest.approx(0.05 * 64 / 256)
    assert chain.weight_lr(2) == pytest.approx(0.025 * 64 / 256)
    shared = method(search_epochs="6", warmup_epochs="2")
    assert [shared.weight_lr(e) for e in range(6)] == pytest.approx(
        [0.001 + 0.012 * (1 + math.cos(math.pi * e / 6)) for e in range(6)])


def test_validation_uses_batch_statistics_and_leaves_the_running_ones():
    from harness.core.data import SearchData, load_dataset

    cfg = resolve(get_method("proxyless"), get_space("nb201"), "smoke", {**SIZES, "train_limit": "64"}).values
    data = SearchData(load_dataset("digits"), cfg, 0, CPU)
    m = get_method("proxyless")(get_space("nb201")(cfg), cfg, data.info, CPU, 0)
    m.weight_step(*next(iter(data.weight_batches(0))))
    buffers = {k: v.clone() for k, v in m.supernet.state_dict().items() if "running" in k}
    loss, acc = m.validate(data)
    from harness.core.train import evaluate

    assert (loss, acc) == evaluate(m.supernet, data.val_batches(), train_mode_bn=True)
    assert (loss, acc) != evaluate(m.supernet, data.val_batches())  # eval mode would read the running statistics
    assert all(torch.equal(v, m.supernet.state_dict()[k]) for k, v in buffers.items())


def test_weight_step_on_its_own_space_smooths_the_labels_and_does_not_clip():
    """On proxyless the weight step's loss is the code's cross-entropy with label smoothing 0.1, by hand on the
    logits of the very paths the step samples; no gradient clipping (grad_clip_mode=off)."""
    import torch.nn.functional as F

    cfg = resolve(get_method("proxyless"), get_space("proxyless"), "smoke", {}).values
    torch.manual_seed(0)
    m = get_method("proxyless")(get_space("proxyless")(cfg), cfg, INFO, CPU, 0)
    x, y = batch(4)
    state = m.generator.get_state()
    m.supernet.train()
    m.sample_weight_paths()
    m.gate_state.mode = "weight"
    with torch.no_grad():
        logits = m.supernet(x)
    m.gate_state.mode = None
    m.generator.set_state(state)  # the step samples the same paths
    target = 0.9 * F.one_hot(y, 10) + 0.1 / 10
    by_hand = float(-(target * F.log_softmax(logits, dim=1)).sum(1).mean())
    stats = m.weight_step(x, y)
    assert stats["loss"] == pytest.approx(by_hand, rel=1e-5)
    assert cfg["grad_clip_mode"] == "off" and cfg["w_label_smoothing"] == 0.1
