"""GDAS: the straight-through Gumbel sample, one op per edge and forward, the order and gradients of a search
step, the τ schedule, and reproducibility (same seed, checkpoint resume, discretisation's rewind)."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from helpers import one_line

import methods.gdas as gdas_module
from harness.core.config import resolve
from harness.core.data import DataInfo, SearchData, load_dataset
from harness.core.errors import UserError
from harness.core.registry import get_method, get_space
from methods.gdas import GumbelEdge, gumbel_sample

CPU = torch.device("cpu")
DIGITS = DataInfo(1, 10, 8)  # digits' shape: 1 channel, 10 classes, 8×8
SMOKE = {"search_batch_size": "32"}


def gdas_cfg(overrides: dict[str, str] | None = None) -> dict:
    return resolve(get_method("gdas"), get_space("nb201"), "smoke", {**SMOKE, **(overrides or {})}).values


def make_gdas(overrides: dict[str, str] | None = None, info: DataInfo = DIGITS, seed: int = 0,
              torch_seed: int | None = None):
    cfg = gdas_cfg(overrides)
    torch.manual_seed(seed if torch_seed is None else torch_seed)  # as the trial does (seed_everything)
    space = get_space("nb201")(cfg)
    return get_method("gdas")(space, cfg, info, CPU, seed)


def batch(n: int, info: DataInfo, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, info.in_channels, info.image_size, info.image_size, generator=gen)
    return x, torch.randint(0, info.num_classes, (n,), generator=gen)


def clone_generator(gen: torch.Generator) -> torch.Generator:
    copy = torch.Generator()
    copy.set_state(gen.get_state())
    return copy


def same_state(a: torch.Generator, b: torch.Generator) -> bool:
    return torch.equal(a.get_state(), b.get_state())


def gumbel_edges(method) -> list[GumbelEdge]:
    return [m for m in method.supernet.modules() if isinstance(m, GumbelEdge)]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits").limited(128)  # 64 + 64 images: 2 batches of 32 per half


# --- the sample ------------------------------------------------------------------------------------------

def test_gumbel_sample_is_the_hard_argmax_of_the_perturbed_softmax():
    alpha = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    tau = 0.7
    gen = torch.Generator().manual_seed(3)
    replay = clone_generator(gen)
    hard, index = gumbel_sample(alpha, tau, gen)
    # by hand, from the same generator state: g = −log(Exp(1)), probs = softmax((log_softmax(α) + g) / τ)
    g = -torch.empty(6, 5).exponential_(generator=replay).log()
    probs = torch.softmax((torch.log_softmax(alpha, dim=-1) + g) / tau, dim=-1)
    assert torch.equal(index, probs.argmax(dim=-1))
    assert same_state(gen, replay)  # exactly one draw of noise
    for row in range(6):
        for op in range(5):
            assert hard[row, op].item() == pytest.approx(1.0 if op == index[row] else 0.0, abs=1e-6)
    # the perturbation matters: the sampled ops are not simply argmax(α) for this draw
    assert not torch.equal(index, alpha.argmax(dim=-1))


def test_gumbel_sample_is_reproducible_from_the_generator():
    alpha = torch.randn(6, 5, generator=torch.Generator().manual_seed(2))
    one, two = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    hard_1, index_1 = gumbel_sample(alpha, 1.0, one)
    hard_2, index_2 = gumbel_sample(alpha, 1.0, two)
    assert torch.equal(hard_1, hard_2) and torch.equal(index_1, index_2)
    # the generator moves on: the next draws differ (6 edges × 5 ops: a repeat is unlikely for a fixed seed)
    assert not torch.equal(gumbel_sample(alpha, 1.0, one)[0], hard_1)


def test_gumbel_max_frequencies_follow_softmax_alpha():
    """Gumbel-max: P(index = o) = softmax(α)_o whatever τ is (checks the sign and law of the noise)."""
    alpha = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5])
    expected = torch.softmax(alpha, dim=0)
    rows = 40000
    _, index = gumbel_sample(alpha.expand(rows, 5).contiguous(), 5.0, torch.Generator().manual_seed(0))
    freq = torch.bincount(index, minlength=5).double() / rows
    # standard error ≤ sqrt(0.25 / 40000) = 0.0025; 0.01 is four of them
    assert torch.allclose(freq, expected.double(), atol=0.01)


def test_gumbel_sample_gradient_is_straight_through():
    alpha = torch.randn(6, 5, generator=torch.Generator().manual_seed(4), requires_grad=True)
    c = torch.randn(6, 5, generator=torch.Generator().manual_seed(5))
    tau = 0.5
    gen = torch.Generator().manual_seed(6)
    replay = clone_generator(gen)
    hard, _ = gumbel_sample(alpha, tau, gen)
    (grad,) = torch.autograd.grad((hard * c).sum(), alpha)

    g = -torch.empty(6, 5).exponential_(generator=replay).log()
    probs = torch.softmax((torch.log_softmax(alpha, dim=-1) + g) / tau, dim=-1)
    (expected,) = torch.autograd.grad((probs * c).sum(), alpha)
    assert torch.allclose(grad, expected, atol=1e-6)
    # and in closed form: ∂(p·c)/∂α = p ⊙ (c − p·c) / τ (the log_softmax's Jacobian cancels: rows of it sum to 0)
    p = probs.detach()
    closed = p * (c - (p * c).sum(dim=-1, keepdim=True)) / tau
    assert torch.allclose(grad, closed, atol=1e-6)
    assert grad.abs().sum(dim=1).min() > 0


def test_gumbel_sample_gives_up_on_nan_alpha():
    with pytest.raises(RuntimeError, match="finite"):
        gumbel_sample(torch.full((2, 5), float("nan")), 1.0, torch.Generator().manual_seed(0), max_tries=3)


# --- one op per edge ---------------------------------------------------------------------------------------

def _count_op_calls(method) -> tuple[dict, dict, list]:
    """Hooks on every candidate op of every edge instance: calls[(cell, edge, op)] and the op outputs."""
    calls: dict[tuple[int, int, int], int] = {}
    outputs: dict[tuple[int, int], torch.Tensor] = {}
    handles = []
    for edge in gumbel_edges(method):
        for k, op in enumerate(edge.ops):
            def hook(module, inputs, output, key=(edge.edge.cell, edge.edge.index, k)):
                calls[key] = calls.get(key, 0) + 1
                outputs[key[:2]] = output
            handles.append(op.register_forward_hook(hook))
    return calls, outputs, handles


def test_each_edge_computes_only_the_sampled_op_shared_by_all_cells():
    method = make_gdas()
    edges = gumbel_edges(method)
    cells = sorted({e.edge.cell for e in edges})
    assert len(cells) == 3 and len(edges) == 3 * 6  # smoke nb201: one cell per stage, 6 edges each
    calls, op_outputs, handles = _count_op_calls(method)
    edge_outputs = {}
    handles += [e.register_forward_hook(lambda m, i, o, key=(e.edge.cell, e.edge.index): edge_outputs.__setitem__(
        key, o)) for e in edges]
    x = batch(4, DIGITS, 0)[0]
    seen = []
    for _ in range(3):
        replay = clone_generator(method.generator)
        expected = gumbel_sample(method.arch.params["cell"].detach(), method.tau, replay)[1].tolist()
        calls.clear()
        method.supernet(x)
        # one draw per forward, made before it from the method's generator, shared by every cell
        assert same_state(method.generator, replay)
        assert method.current["cell"][1] == expected
        assert calls == {(cell, e, expected[e]): 1 for cell in cells for e in range(6)}
        # the edge's output is the sampled op's output (hard weight 1, the other weights add 0)
        for key, out in edge_outputs.items():
            assert torch.allclose(out, op_outputs[key], atol=1e-6)
        seen.append(expected)
    assert len({tuple(s) for s in seen}) > 1  # a new sample every forward
    for h in handles:
        h.remove()


def test_gumbel_edge_output_and_gradient_for_given_weights():
    """GDAS's edge: w_c · op_c(x) + Σ_{o≠c} w_o, so every op's weight (value 0 in a hard sample) receives a
    gradient: ∂/∂w_c = ⟨C, op_c(x)⟩ and ∂/∂w_o = Σ C for the others (checked with non-one-hot weights)."""
    method = make_gdas()
    edge = next(e for e in gumbel_edges(method) if e.edge.cell == 0 and e.edge.index == 3)
    inputs = []
    handle = edge.register_forward_hook(lambda m, i, o: inputs.append(i[0]))
    method.supernet(batch(4, DIGITS, 0)[0])
    handle.remove()
    x = inputs[0].detach()
    weights = torch.tensor([[0.1, 0.2, 0.3, 0.15, 0.25]] * 6, requires_grad=True)
    chosen = 2  # nor_conv_1x1
    method.current["cell"] = (weights, [chosen] * 6)
    out = edge(x)
    op_out = edge.ops[chosen](x).detach()
    assert torch.allclose(out, 0.3 * op_out + (0.1 + 0.2 + 0.15 + 0.25), atol=1e-6)
    c = torch.randn(out.shape, generator=torch.Generator().manual_seed(7))
    (grad,) = torch.autograd.grad((out * c).sum(), weights)
    expected = torch.zeros(6, 5)
    expected[3] = c.sum()
    expected[3, chosen] = (c * op_out).sum()
    assert torch.allclose(grad, expected, rtol=1e-5, atol=1e-5)


def test_discretised_edge_runs_the_forced_op_in_every_cell():
    method = make_gdas()
    calls, _, handles = _count_op_calls(method)
    x = batch(4, DIGITS, 0)[0]
    for edge_index, op in ((2, 3), (0, 0), (5, 4)):
        calls.clear()
        with method.discretised("cell", edge_index, op):
            method.supernet(x)
            sample = method.current["cell"][1]
        expected = {(cell, e, op if e == edge_index else sample[e]): 1 for cell in range(3) for e in range(6)}
        assert calls == expected
    for h in handles:
        h.remove()


# --- the search step ---------------------------------------------------------------------------------------

def test_train_step_weight_step_then_straight_through_arch_step():
    method = make_gdas()
    (x_w, y_w), (x_a, y_a) = batch(8, DIGITS, 1), batch(8, DIGITS, 2)
    alpha_0 = [a.detach().clone() for a in method.arch_parameters()]
    weights_0 = [p.detach().clone() for p in method.supernet.parameters()]
    start = method.generator.get_state()
    method.train_step((x_w, y_w), (x_a, y_a), 0)
    alpha_1 = [a.detach().clone() for a in method.arch_parameters()]
    grads = [a.grad.clone() for a in method.arch_parameters()]
    assert all(not torch.equal(a, b) for a, b in zip(alpha_1, alpha_0))
    assert any(not torch.equal(p, b) for p, b in zip(method.supernet.parameters(), weights_0))
    assert all((g.abs().sum(dim=1) > 0).all() for g in grads)  # every edge's row receives a gradient

    # replay the architecture half: α as before the step, the weights after the weight step, the second draw
    with torch.no_grad():
        for a, a0 in zip(method.arch_parameters(), alpha_0):
            a.copy_(a0)
    method.generator.set_state(start)
    method.resample()  # the weight step's draw
    arch_loss = F.cross_entropy(method.supernet(x_a), y_a)
    expected = torch.autograd.grad(arch_loss, method.arch_parameters())
    for g, e in zip(grads, expected):
        assert torch.allclose(g, e, rtol=1e-5, atol=1e-8)

    # the arch step is one Adam step: with weight decay folded into the gradient, the first step is
    # α − lr · g' / (|g'| + eps), g' = g + wd·α
    lr, wd = method.cfg["arch_lr"], method.cfg["arch_weight_decay"]
    for a0, a1, g in zip(alpha_0, alpha_1, grads):
        g_wd = g + wd * a0
        assert torch.allclose(a1, a0 - lr * g_wd / (g_wd.abs() + 1e-8), atol=1e-9, rtol=0)


# --- τ --------------------------------------------------------------------------------------------------------

def test_tau_is_annealed_linearly_per_epoch():
    method = make_gdas({"search_epochs": "5", "tau_max": "10", "tau_min": "0.1"})
    assert method.tau == 10.0  # before the first epoch
    # τ_e = 10 − 9.9 · e / 4
    expected = [10.0, 7.525, 5.05, 2.575, 0.1]
    assert [method.tau_at(e) for e in range(5)] == pytest.approx(expected, rel=1e-12)
    assert method.tau_at(0) == 10.0
    one = make_gdas({"search_epochs": "1", "tau_max": "3", "tau_min": "1"})
    assert one.tau_at(0) == 3.0  # a single epoch stays at tau_max


def test_train_epoch_sets_and_reports_tau_and_samples_with_it(digits, monkeypatch):
    method = make_gdas({"search_epochs": "5", "tau_max": "10", "tau_min": "0.1"})
    data = SearchData(digits, method.cfg, 0, CPU)
    used = []
    real = gdas_module.gumbel_sample

    def spy(alpha, tau, generator=None, max_tries=100):
        used.append(tau)
        return real(alpha, tau, generator, max_tries)

    monkeypatch.setattr(gdas_module, "gumbel_sample", spy)
    stats = method.train_epoch(3, data)
    assert stats["tau"] == pytest.approx(2.575) and method.tau == pytest.approx(2.575)
    # one draw per forward: two per step (weight half, architecture half), one per validation batch
    steps, val = len(data.weight_batches(3)), len(data.val_batches())
    assert (steps, val) == (2, 2)
    assert len(used) == 2 * steps + val
    assert used == pytest.approx([2.575] * len(used))


@pytest.mark.parametrize("overrides", [{"tau_min": "20"}, {"tau_min": "0"}, {"tau_max": "0.05"}])
def test_invalid_tau_range_is_refused(overrides):
    with pytest.raises(UserError) as exc:
        gdas_cfg(overrides)
    assert "tau_min" in one_line(exc)


def test_equal_tau_bounds_are_accepted():
    cfg = gdas_cfg({"tau_min": "2", "tau_max": "2"})
    assert (cfg["tau_min"], cfg["tau_max"]) == (2.0, 2.0)
    assert "order" not in cfg  # GDAS has no second order


# --- reproducibility ---------------------------------------------------------------------------------------

def test_same_seed_same_search(digits):
    cfg = gdas_cfg()
    data = SearchData(digits, cfg, 0, CPU)
    one, two = make_gdas(seed=3), make_gdas(seed=3)
    torch.manual_seed(100)  # the global RNG plays no part in a search epoch
    stats_one = one.train_epoch(0, data)
    torch.manual_seed(200)
    stats_two = two.train_epoch(0, data)
    assert torch.equal(one.arch.params["cell"], two.arch.params["cell"])
    assert one.derive() == two.derive()
    assert stats_one["genotype"] == stats_two["genotype"]
    assert stats_one["val_acc"] == stats_two["val_acc"]
    # the Gumbel noise follows the method's seed: same initialisation, another seed, another search
    other = make_gdas(seed=4, torch_seed=3)
    assert torch.equal(other.arch.params["cell"].detach(), make_gdas(seed=3).arch.params["cell"].detach())
    other.train_epoch(0, data)
    assert not torch.equal(other.arch.params["cell"], one.arch.params["cell"])


def test_resume_from_state_dict_continues_exactly(digits):
    overrides = {"search_epochs": "3"}
    cfg = gdas_cfg(overrides)
    data = SearchData(digits, cfg, 0, CPU)
    original = make_gdas(overrides, seed=0)
    original.train_epoch(1, data)
    assert original.tau == pytest.approx(5.05)  # 10 − 9.9 · 1/2
    blob = io.BytesIO()
    torch.save(original.state_dict(), blob)
    blob.seek(0)
    resumed = make_gdas(overrides, seed=5)  # another initialisation and another generator, then loaded
    resumed.load_state_dict(torch.load(blob, weights_only=False))
    assert resumed.tau == pytest.approx(5.05)
    assert same_state(resumed.generator, original.generator)
    original.train_epoch(2, data)
    resumed.train_epoch(2, data)
    assert torch.equal(original.arch.params["cell"], resumed.arch.params["cell"])
    for a, b in zip(original.supernet.state_dict().values(), resumed.supernet.state_dict().values()):
        assert torch.equal(a, b)
    assert original.tau == resumed.tau == pytest.approx(0.1)


def test_discretised_rewinds_the_generator():
    method = make_gdas()
    x = batch(4, DIGITS, 0)[0]
    method.supernet(x)
    before = method.generator.get_state()
    samples = []
    for op in range(5):  # every op of the edge measured under the same draws of the other edges
        with method.discretised("cell", 1, op):
            method.supernet(x)
            assert not torch.equal(method.generator.get_state(), before)  # it did draw inside
            samples.append(method.current["cell"][1])
            method.supernet(x)
        assert torch.equal(method.generator.get_state(), before)
        assert not method.arch.forced
    assert all(s == samples[0] for s in samples)
    # outside the context the search carries on from where it was
    replay = clone_generator(method.generator)
    method.supernet(x)
    assert method.current["cell"][1] == gumbel_sample(method.arch.params["cell"].detach(), method.tau,
                                                      replay)[1].tolist()
