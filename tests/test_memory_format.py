"""Performance settings that must not change the math: the memory layout of every network (channels-last by
default, ``memory_format=contiguous`` for the old one), the ``none`` op left uncomputed in every weighted sum
of candidates, and the backend switches a trial records (``harness/core/train.py``'s docstring)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.core.config import resolve
from harness.core.data import DataInfo, SearchData, load_dataset
from harness.core.registry import get_method, get_space
from harness.core.train import configure_backends, memory_format, seed_everything
from harness.evaluation import FinalTraining
from methods.agnas import AttentionEdge, AttentionTally
from methods.base import ArchState
from methods.darts import MixedEdge
from methods.nos.teacher import TEACHER_DEFAULTS, PyramidNet, get_teacher
from spaces.base import EdgeId
from spaces.ops import OPS, Zero

CPU = torch.device("cpu")
INFO = DataInfo(3, 4, 8)
LAYOUTS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
OTHER = {"channels_last": torch.contiguous_format, "contiguous": torch.channels_last}
# every supernet method on every space it searches (hetero: NOS and DARTS; nb201: its 5-op cell)
PAIRS = [("darts", "darts"), ("gdas", "darts"), ("eoinas", "darts"), ("agnas", "darts"), ("nos", "hetero"),
         ("darts", "hetero"), ("darts", "nb201"), ("gdas", "nb201"), ("agnas", "nb201")]


@functools.lru_cache(maxsize=1)
def digits():
    return load_dataset("digits", None, 32)


def config(method: str, space: str, layout: str | None = None, **extra: str) -> dict:
    overrides = {"search_layers": "3", "search_channels": "4", **extra}
    if layout is not None:
        overrides["memory_format"] = layout
    return resolve(get_method(method), get_space(space), "smoke", overrides).values


def build(method: str, space: str, layout: str | None = None, seed: int = 0, **extra: str):
    cfg = config(method, space, layout, **extra)
    torch.manual_seed(seed)
    return get_method(method)(get_space(space)(cfg), cfg, INFO, CPU, seed)


def assert_layout(net: nn.Module, layout: str) -> None:
    """Every 4-D weight is in ``layout``, and at least one of them is not also in the other one (a 1×1 or
    depthwise kernel is both, so those alone would prove nothing)."""
    weights = [(name, p) for name, p in net.named_parameters() if p.dim() == 4]
    assert weights
    for name, p in weights:
        assert p.is_contiguous(memory_format=LAYOUTS[layout]), name
    assert any(not p.is_contiguous(memory_format=OTHER[layout]) for _, p in weights)


def images(n: int, seed: int, info: DataInfo = INFO) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, info.in_channels, info.image_size, info.image_size, generator=gen)
    return x, torch.randint(0, info.num_classes, (n,), generator=gen)


# --- configuration and backends --------------------------------------------------------------------------

def test_memory_format_maps_the_configuration():
    assert memory_format({"memory_format": "channels_last"}) is torch.channels_last
    assert memory_format({"memory_format": "contiguous"}) is torch.contiguous_format
    assert memory_format({}) is torch.channels_last  # the default
    with pytest.raises(ValueError):
        memory_format({"memory_format": "nhwc"})


def test_configure_backends_says_whether_results_are_deterministic():
    cfg = config("darts", "darts")
    try:
        assert configure_backends(cfg, CPU) == {"memory_format": "channels_last", "cudnn_benchmark": False,
                                                "deterministic": True}
        assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
        cuda = torch.device("cuda")  # only the switches are set: no CUDA device is needed
        assert configure_backends(cfg, cuda) == {"memory_format": "channels_last", "cudnn_benchmark": True,
                                                 "deterministic": False}
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
        off = config("darts", "darts", "contiguous", cudnn_benchmark="false")
        assert configure_backends(off, cuda) == {"memory_format": "contiguous", "cudnn_benchmark": False,
                                                 "deterministic": True}
    finally:
        seed_everything(0)  # back to deterministic kernels for the tests that follow


# --- every network of the harness is in the configured layout --------------------------------------------

@pytest.mark.parametrize("layout", [None, "contiguous"])
@pytest.mark.parametrize("method,space", PAIRS)
def test_supernets_are_channels_last_by_default(method, space, layout):
    assert_layout(build(method, space, layout).supernet, layout or "channels_last")


@pytest.mark.parametrize("layout", [None, "contiguous"])
def test_final_network_random_candidates_and_teacher_follow_the_layout(layout, tmp_path):
    expected = layout or "channels_last"
    cfg = config("darts", "darts", layout, eval_layers="3", eval_channels="4", train_limit="200")
    data = SearchData(digits(), cfg, 0, CPU)
    space = get_space("darts")(cfg)
    final = FinalTraining(space, space.sample(np.random.default_rng(0)), data, cfg, CPU)
    assert_layout(final.net, expected)

    rs_cfg = config("random", "darts", layout)
    rs = get_method("random")(get_space("darts")(rs_cfg), rs_cfg, INFO, CPU, 0)  # 3 channels: a 3×3×3 stem
    assert_layout(rs._build_candidate(0)[0], expected)

    teacher_cfg = {**cfg, **TEACHER_DEFAULTS, "teacher_depth": 11, "teacher_alpha": 4}
    torch.save(PyramidNet(11, 4, 10, in_channels=1).state_dict(), tmp_path / "teacher.pt")
    net, _ = get_teacher(data, teacher_cfg, CPU, "digits", user_path=tmp_path / "teacher.pt",
                         cache_root=tmp_path / "cache")
    assert_layout(net, expected)


# --- the layout does not change the math ------------------------------------------------------------------

@pytest.mark.parametrize("method,space", [("darts", "darts"), ("gdas", "darts"), ("agnas", "darts"),
                                          ("darts", "hetero"), ("darts", "nb201")])
def test_both_layouts_give_the_same_outputs_and_gradients(method, space):
    x, y = images(4, 1)
    results = {}
    for layout in LAYOUTS:
        m = build(method, space, layout)
        m.supernet.train()
        xin = x.contiguous(memory_format=LAYOUTS[layout])
        logits = m.supernet(xin)
        loss = F.cross_entropy(logits, y)
        params = [p for p in m.supernet.parameters()] + list(m.arch.params.values())
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        results[layout] = (logits.detach(), [None if g is None else g.contiguous() for g in grads])
    (la, ga), (lb, gb) = results["channels_last"], results["contiguous"]
    torch.testing.assert_close(la, lb, rtol=1e-4, atol=1e-5)
    assert len(ga) == len(gb)
    for a, b in zip(ga, gb):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


def test_same_seed_same_search_steps_in_channels_last():
    """Two DARTS searches from the same seed on the same device, channels-last, agree bit for bit."""
    runs = []
    for _ in range(2):
        seed_everything(0)
        m = build("darts", "darts")
        for step in range(2):
            w, a = images(8, 10 + step), images(8, 20 + step)
            m.train_step(tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in w),
                         tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in a), 0)
        runs.append([t.detach().clone() for t in [*m.supernet.state_dict().values(), *m.arch.params.values()]])
    assert all(torch.equal(a, b) for a, b in zip(*runs))


# --- the `none` op is never computed in a weighted sum -----------------------------------------------------

def candidates(C: int, stride: int) -> nn.ModuleList:
    torch.manual_seed(5)
    names = ("none", "max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3")
    return nn.ModuleList(OPS[name](C, stride, False) for name in names)


def forbid_zero(ops: nn.ModuleList) -> list:
    """Make every ``none`` op fail the test if it runs; returns the hook handles."""
    def fail(module, inputs):
        raise AssertionError("the none op was computed")
    return [op.register_forward_pre_hook(fail) for op in ops if isinstance(op, Zero)]


@pytest.mark.parametrize("stride", [1, 2])
def test_mixed_edge_skips_none_with_the_same_output_and_alpha_gradient(stride):
    C = 4
    ops = candidates(C, stride)
    arch = ArchState()
    alpha = nn.Parameter(torch.randn(1, len(ops), generator=torch.Generator().manual_seed(0)))
    arch.params["normal"] = alpha
    edge = MixedEdge(EdgeId("normal", 0, 0, C, tuple(range(len(ops)))), ops, arch).train()
    x = torch.randn(2, C, 7, 7, generator=torch.Generator().manual_seed(1), requires_grad=True)
    target = torch.randn(2, C, 4 if stride == 2 else 7, 4 if stride == 2 else 7,
                         generator=torch.Generator().manual_seed(2))

    # reference by hand: every candidate, none included, as the DARTS formula reads
    weights = F.softmax(alpha[0], dim=-1)
    expected = sum(w * op(x) for w, op in zip(weights, ops))
    ref_grads = torch.autograd.grad((expected * target).sum(), [alpha, x])

    handles = forbid_zero(ops)
    out = edge(x)
    grads = torch.autograd.grad((out * target).sum(), [alpha, x])
    for h in handles:
        h.remove()
    torch.testing.assert_close(out, expected, rtol=0, atol=0)  # adding exact zeros changes nothing
    torch.testing.assert_close(grads[0], ref_grads[0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grads[1], ref_grads[1], rtol=1e-6, atol=1e-7)
    assert grads[0][0, 0] != 0  # none's α still learns, through the softmax


@pytest.mark.parametrize("forced", [None, 3])
def test_attention_edge_skips_none_with_the_same_output_and_gradients(forced):
    C = 4
    ops = candidates(C, 1)
    arch, tally = ArchState(), AttentionTally()
    torch.manual_seed(3)
    edge = AttentionEdge(EdgeId("normal", 0, 0, C, tuple(range(len(ops)))), ops, 2, arch, tally).train()
    x = torch.randn(2, C, 6, 6, generator=torch.Generator().manual_seed(1), requires_grad=True)
    target = torch.randn(2, C, 6, 6, generator=torch.Generator().manual_seed(2))

    # reference: the paper's F_con (zeros for none and for ops removed by discretisation), GAP, SE, block sum
    blocks = [op(x) if forced in (None, k) else torch.zeros_like(x) for k, op in enumerate(ops)]
    stacked = torch.stack(blocks, dim=1)
    att = torch.sigmoid(edge.fc2(F.relu(edge.fc1(stacked.mean(dim=(3, 4)).reshape(2, -1))))).reshape(2, len(ops), C)
    expected = (stacked * att[..., None, None]).sum(dim=1)
    wrt = [x, edge.fc1.weight, edge.fc2.weight]
    ref_grads = torch.autograd.grad((expected * target).sum(), wrt)

    handles = forbid_zero(ops)
    if forced is not None:
        arch.forced[("normal", 0)] = forced
    out = edge(x)
    grads = torch.autograd.grad((out * target).sum(), wrt)
    for h in handles:
        h.remove()
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    for got, ref in zip(grads, ref_grads):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)


def test_gdas_edge_with_none_sampled_keeps_output_and_straight_through_gradient():
    method = build("gdas", "darts")
    edge = next(m for m in method.supernet.modules() if type(m).__name__ == "GumbelEdge")
    group, n_ops = edge.edge.group, len(edge.ops)
    assert isinstance(edge.ops[0], Zero)
    x = torch.randn(2, edge.edge.channels, 4, 4, generator=torch.Generator().manual_seed(1))
    probs = F.softmax(torch.randn(n_ops, generator=torch.Generator().manual_seed(2)), dim=-1).requires_grad_()
    one_hot = torch.zeros(n_ops)
    one_hot[0] = 1.0
    rows = method.space.arch_shape()[group][0]
    hard = (one_hot - probs.detach() + probs).expand(rows, n_ops)
    method.current[group] = (hard, [0] * rows)  # `none` sampled on every edge of the group
    target = torch.randn_like(edge.ops[0](x))
    out = edge(x)
    grad = torch.autograd.grad((out * target).sum(), probs)[0]
    weights = hard[edge.edge.index]
    expected = weights[0] * edge.ops[0](x) + (weights.sum() - weights[0])  # GDAS's formula, none computed
    ref = torch.autograd.grad((expected * target).sum(), probs)[0]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.testing.assert_close(grad, ref, rtol=1e-6, atol=1e-7)


# --- the heterogeneous block applies its dynamic kernels in one convolution ---------------------------------

def test_combine_applies_the_summed_padded_kernels_once_with_the_same_result():
    from spaces.hetero import Contribution
    from spaces.ops import dynamic_depthwise

    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 6, 5, generator=gen, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    attention = torch.rand(2, 3, 1, 1, generator=gen, dtype=torch.float64)
    kernels = [torch.randn(2, 3, k, k, generator=gen, dtype=torch.float64) for k in (3, 5, 3, 1)]
    expected = x + x * attention + sum(dynamic_depthwise(x, k) for k in kernels)  # one convolution per kernel
    torch.testing.assert_close(Contribution(x, attention, kernels).combine(), expected, rtol=1e-12, atol=1e-12)
