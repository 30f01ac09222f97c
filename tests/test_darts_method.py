"""DARTS method: mixed edges, discretisation, first/second-order architecture gradients, checkpoints;
random search; the operation-level correlation protocol."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness import checkpoints
from harness.core.config import resolve
from harness.core.correlation import op_level_correlation, sample_edges
from harness.core.data import DataInfo, SearchData, load_dataset
from harness.core.registry import get_method, get_space

CPU = torch.device("cpu")
TINY = DataInfo(1, 3, 4)


def make_darts(overrides: dict[str, str] | None = None, info: DataInfo = TINY, seed: int = 0):
    cfg = resolve(get_method("darts"), get_space("darts"), "smoke",
                  {"search_layers": "3", "search_channels": "2", **(overrides or {})}).values
    torch.manual_seed(seed)
    space = get_space("darts")(cfg)
    return get_method("darts")(space, cfg, info, CPU, seed)


def batch(n: int, info: DataInfo, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, info.in_channels, info.image_size, info.image_size, generator=gen,
                    dtype=torch.get_default_dtype())
    return x, torch.randint(0, info.num_classes, (n,), generator=gen)


def test_mixed_edge_is_softmax_weighted_sum_and_discretises():
    method = make_darts()
    edge = next(m for m in method.supernet.modules() if type(m).__name__ == "MixedEdge")
    captured = []
    handle = edge.register_forward_hook(lambda mod, inp, out: captured.append(inp[0]))
    method.supernet.eval()
    with torch.no_grad():
        method.supernet(batch(2, method.info, 0)[0])
    handle.remove()
    x = captured[0]
    with torch.no_grad():
        method.arch.params[edge.edge.group][edge.edge.index].copy_(torch.arange(8.0) / 3)
        weights = F.softmax(torch.arange(8.0) / 3, dim=-1)
        expected = sum(w * op(x) for w, op in zip(weights, edge.ops))
        assert torch.allclose(edge(x), expected, atol=1e-6)
        with method.discretised(edge.edge.group, edge.edge.index, 4):
            assert torch.equal(edge(x), edge.ops[4](x))
        assert not method.arch.forced  # the context restores the mixed edge
        assert torch.allclose(edge(x), expected, atol=1e-6)


def test_architecture_parameters_are_not_supernet_weights():
    method = make_darts()
    weight_ids = {id(p) for p in method.supernet.parameters()}
    assert all(id(a) not in weight_ids for a in method.arch_parameters())
    assert [tuple(a.shape) for a in method.arch_parameters()] == [(14, 8), (14, 8)]
    assert method.arch_parameters()[0].abs().max() < 0.01  # 1e-3 · N(0, 1)


def test_first_order_step_uses_validation_gradient_and_moves_both_levels():
    method = make_darts()
    info = method.info
    wb, ab = batch(4, info, 1), batch(4, info, 2)
    alphas_before = [a.detach().clone() for a in method.arch_parameters()]
    weights_before = [p.detach().clone() for p in method.supernet.parameters()]
    method.train_step(wb, ab, 0)
    assert any(not torch.equal(a, b) for a, b in zip(method.arch_parameters(), alphas_before))
    assert any(not torch.equal(p, b) for p, b in zip(method.supernet.parameters(), weights_before))


def _unrolled_objective(method, x_w, y_w, x_a, y_a, eta):
    """L_val(w − η(momentum·buffer + ∇w L_train(w, α) + wd·w), α), computed directly."""
    net = method.supernet
    weights = [p for p in net.parameters()]
    backup = [w.detach().clone() for w in weights]
    grads = torch.autograd.grad(F.cross_entropy(net(x_w), y_w), weights)
    with torch.no_grad():
        for w, g in zip(weights, grads):
            buf = method.w_opt.state[w]["momentum_buffer"]
            w.sub_(eta * (method.cfg["w_momentum"] * buf + g + method.cfg["w_weight_decay"] * w))
        loss = F.cross_entropy(net(x_a), y_a).item()
        for w, b in zip(weights, backup):
            w.copy_(b)
    return loss


def test_second_order_gradient_matches_finite_differences():
    """The unrolled gradient equals the derivative of the unrolled objective, estimated by central
    differences in α. DARTS's Hessian-vector radius R = 0.01/‖v‖ is itself a finite difference whose error
    is large on a tiny network with batch-statistics BN over 6 images, so the check uses a small radius
    (r_scale 1e-6) in float64, where the implementation must agree to ~1e-5."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        method = make_darts({"order": "2"})
        info = method.info
        x_w, y_w = batch(6, info, 1)
        x_a, y_a = batch(6, info, 2)
        method.train_step((x_w, y_w), (x_a, y_a), 0)  # creates momentum buffers
        method.supernet.train()
        eta = 0.1
        weights_before = [p.detach().clone() for p in method.supernet.parameters()]
        analytic = method.unrolled_arch_grads(x_w, y_w, x_a, y_a, eta, r_scale=1e-6)
        assert all(torch.equal(p, b) for p, b in zip(method.supernet.parameters(), weights_before))

        rng = np.random.default_rng(0)
        eps = 1e-6
        for group_index, alpha in enumerate(method.arch_parameters()):
            for flat in rng.choice(alpha.numel(), size=4, replace=False):
                i, j = divmod(int(flat), alpha.shape[1])
                with torch.no_grad():
                    alpha[i, j] += eps
                plus = _unrolled_objective(method, x_w, y_w, x_a, y_a, eta)
                with torch.no_grad():
                    alpha[i, j] -= 2 * eps
                minus = _unrolled_objective(method, x_w, y_w, x_a, y_a, eta)
                with torch.no_grad():
                    alpha[i, j] += eps
                numeric = (plus - minus) / (2 * eps)
                assert analytic[group_index][i, j].item() == pytest.approx(numeric, rel=1e-4, abs=1e-7)
    finally:
        torch.set_default_dtype(previous)


def test_default_finite_difference_radius_is_darts():
    assert inspect.signature(get_method("darts").unrolled_arch_grads).parameters["r_scale"].default == 0.01


def test_second_order_differs_from_first_order():
    torch.manual_seed(0)
    method = make_darts({"order": "2"})
    info = method.info
    x_w, y_w = batch(6, info, 1)
    x_a, y_a = batch(6, info, 2)
    method.train_step((x_w, y_w), (x_a, y_a), 0)
    second = method.unrolled_arch_grads(x_w, y_w, x_a, y_a, 0.5)
    first = torch.autograd.grad(F.cross_entropy(method.supernet(x_a), y_a), method.arch_parameters())
    assert not all(torch.allclose(a, b) for a, b in zip(first, second))


def _buffers(method) -> dict[str, torch.Tensor]:
    return {n: b.detach().clone() for n, b in method.supernet.named_buffers()}


def _assert_same_buffers(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys() and any(n.endswith("running_var") for n in a)
    for n in a:
        assert torch.equal(a[n], b[n]), n


def test_second_order_leaves_batchnorm_statistics_as_the_first_order_does():
    """The unrolled step's virtual passes (w, w′, w ± R·v, in place on the live supernet) leave no running
    statistics behind: after a whole train_step the buffers are those of a first-order train_step from the
    same state and batches (α kept equal by arch_lr=0, so that the weight steps match too)."""
    wb, ab = batch(6, TINY, 1), batch(6, TINY, 2)
    wb2, ab2 = batch(6, TINY, 3), batch(6, TINY, 4)
    states = {}
    for order in ("1", "2"):
        method = make_darts({"order": order, "arch_lr": "0"})
        start = _buffers(method)
        method.train_step(wb, ab, 0)
        method.train_step(wb2, ab2, 0)  # with momentum buffers
        assert any(not torch.equal(start[n], b) for n, b in _buffers(method).items())  # the steps moved them
        states[order] = (_buffers(method), [p.detach().clone() for p in method.supernet.parameters()])
    _assert_same_buffers(states["1"][0], states["2"][0])
    assert all(torch.equal(a, b) for a, b in zip(states["1"][1], states["2"][1]))


def test_unrolled_gradient_updates_statistics_as_one_forward_of_the_architecture_batch():
    """The second-order architecture gradient leaves the buffers exactly as the first order's architecture
    step leaves them: one train-mode forward of the architecture batch at the current weights."""
    (x_w, y_w), (x_a, y_a) = batch(6, TINY, 1), batch(6, TINY, 2)
    first, second = make_darts({"order": "2"}), make_darts({"order": "2"})
    for method in (first, second):
        method.train_step((x_w, y_w), (x_a, y_a), 0)
        method.supernet.train()
    _assert_same_buffers(_buffers(first), _buffers(second))
    first.loss(x_a, y_a)  # what the first-order step does to the buffers
    second.unrolled_arch_grads(x_w, y_w, x_a, y_a, 0.5)
    _assert_same_buffers(_buffers(first), _buffers(second))


def _unrolled_grads_in_place(method, x_w, y_w, x_a, y_a, eta, r_scale=0.01):
    """The unrolled gradient as computed before the buffers were restored (every pass in place on the live
    supernet, the running statistics left as the last pass set them)."""
    alphas, weights = method.arch_parameters(), method.weights()
    momentum, wd = method.cfg["w_momentum"], method.cfg["w_weight_decay"]
    backup = [w.detach().clone() for w in weights]
    g_train = torch.autograd.grad(method.loss(x_w, y_w)[0], weights)
    with torch.no_grad():
        for w, g in zip(weights, g_train):
            buf = method.w_opt.state.get(w, {}).get("momentum_buffer")
            w.sub_(eta * (g + wd * w + (momentum * buf if buf is not None else 0.0)))
    g_val = torch.autograd.grad(method.loss(x_a, y_a)[0], alphas + weights)
    d_alpha, v = g_val[:len(alphas)], g_val[len(alphas):]
    r = r_scale / torch.cat([t.reshape(-1) for t in v]).norm()
    terms = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            for w, b, vi in zip(weights, backup, v):
                w.copy_(b + sign * r * vi)
        terms.append(torch.autograd.grad(method.loss(x_w, y_w)[0], alphas))
    with torch.no_grad():
        for w, b in zip(weights, backup):
            w.copy_(b)
    return [da - eta * (gp - gn) / (2 * r) for da, gp, gn in zip(d_alpha, *terms)]


def test_restoring_the_statistics_does_not_change_the_unrolled_gradient():
    """Train-mode BatchNorm normalises with the batch's statistics: the α gradient is the in-place formula's."""
    (x_w, y_w), (x_a, y_a) = batch(6, TINY, 1), batch(6, TINY, 2)
    old, new = make_darts({"order": "2"}), make_darts({"order": "2"})
    for method in (old, new):
        method.train_step((x_w, y_w), (x_a, y_a), 0)
        method.supernet.train()
    expected = _unrolled_grads_in_place(old, x_w, y_w, x_a, y_a, 0.5)
    found = new.unrolled_arch_grads(x_w, y_w, x_a, y_a, 0.5)
    assert all(torch.equal(a, b) for a, b in zip(expected, found))
    assert not all(torch.equal(a, b) for a, b in zip(_buffers(old).values(), _buffers(new).values()))


def test_importance_is_softmax_and_derive_uses_space_rule():
    method = make_darts()
    with torch.no_grad():
        method.arch.params["normal"].copy_(torch.randn(14, 8))
    scores = method.importance()
    assert np.allclose(scores["normal"].sum(1), 1.0)
    assert method.derive() == method.space.derive(scores)


def test_state_dict_round_trip_continues_identically():
    info = DataInfo(1, 3, 4)
    a = make_darts(seed=0)
    wb, ab = batch(4, info, 1), batch(4, info, 2)
    a.train_step(wb, ab, 0)
    b = make_darts(seed=5)  # different initialisation, then loaded through a serialised checkpoint
    blob = checkpoints.dumps(a.state_dict())
    b.load_state_dict(checkpoints.loads(blob))
    a.train_step(wb, ab, 0)
    b.train_step(wb, ab, 0)
    for x, y in zip(a.arch_parameters(), b.arch_parameters()):
        assert torch.equal(x, y)
    for x, y in zip(a.supernet.state_dict().values(), b.supernet.state_dict().values()):
        assert torch.equal(x, y)


@pytest.fixture(scope="module")
def digits_data():
    cfg = resolve(get_method("darts"), get_space("darts"), "smoke",
                  {"search_layers": "2", "search_channels": "2", "search_batch_size": "64"}).values
    return cfg, load_dataset("digits")


def test_random_search_is_seeded_and_keeps_the_best(digits_data):
    cfg, dataset = digits_data
    rcfg = resolve(get_method("random"), get_space("darts"), "smoke",
                   {"search_layers": "2", "search_channels": "2", "rs_candidates": "2"}).values
    assert "corr_edges" not in rcfg
    space = get_space("darts")(rcfg)
    data = SearchData(dataset.limited(256), rcfg, 0, CPU)
    one = get_method("random")(space, rcfg, data.info, CPU, 3)
    two = get_method("random")(space, rcfg, data.info, CPU, 3)
    other = get_method("random")(space, rcfg, data.info, CPU, 4)
    assert one.candidates == two.candidates != other.candidates
    for epoch in range(one.num_epochs()):
        one.train_epoch(epoch, data)
    best = int(np.argmax(one.val_accs))
    assert one.derive() == one.candidates[best]
    assert one.search_val_acc({}) == max(one.val_accs)
    assert one.importance() is None


def test_sample_edges_is_fixed_and_seed_independent():
    shape = {"normal": (14, 8), "reduce": (14, 8)}
    first = sample_edges(shape, 5)
    assert first == sample_edges(shape, 5)
    assert len(set(first)) == 5 and all(g in shape and 0 <= i < 14 for g, i in first)
    assert sample_edges(shape, 100) == [(g, i) for g in shape for i in range(14)]
    assert sample_edges(shape, 0) == []


@pytest.mark.slow
def test_op_correlation_is_one_when_scores_are_the_accuracies(digits_data):
    cfg, dataset = digits_data
    cfg = {**cfg, "corr_edges": 2, "corr_batches": 1}
    data = SearchData(dataset.limited(256), cfg, 0, CPU)
    method = make_darts(info=data.info)
    method.cfg = cfg
    method.train_epoch(0, data)
    first = op_level_correlation(method, data, cfg)
    assert first["op_corr_edges"] == 2
    assert [d["ops"] for d in first["op_correlation"]] == [list(method.space.op_names[1:])] * 2
    # feed the measured accuracies back as the method's scores: a perfect ranking
    scores = {g: np.zeros(s) for g, s in method.space.arch_shape().items()}
    for d in first["op_correlation"]:
        scores[d["group"]][d["edge"], 1:] = d["accs"]
    method.importance = lambda: scores
    again = op_level_correlation(method, data, cfg)
    assert [d["accs"] for d in again["op_correlation"]] == [d["accs"] for d in first["op_correlation"]]
    assert again["op_kendall_tau"] == pytest.approx(1.0)
    assert again["op_spearman_rho"] == pytest.approx(1.0)
    # reversed scores: −1
    for g in scores:
        scores[g] = -scores[g]
    assert op_level_correlation(method, data, cfg)["op_kendall_tau"] == pytest.approx(-1.0)
