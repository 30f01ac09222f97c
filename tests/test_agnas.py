"""AGNAS (micro search): the SE attention edge by hand, the importance tally (sum over images, eval-mode BN,
only while collecting), discretised edges, weight-only training, per-cell derivation and the per-stage final
network on the DARTS space, averaging on NAS-Bench-201, the shared operation-level correlation protocol, the
configuration, checkpoints and reproducibility (``methods/agnas.py``'s docstring is the specification)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import count_op_calls, final_network, one_line
from torch import nn

import harness.core.correlation as correlation
from harness import checkpoints
from harness.core.config import resolve
from harness.core.correlation import op_level_correlation, sample_edges
from harness.core.data import DataInfo, SearchData, load_dataset
from harness.core.errors import UserError
from harness.core.registry import get_method, get_space
from methods.agnas import AttentionEdge, AttentionTally
from methods.base import ArchState
from spaces.base import EdgeId
from spaces.darts import StagedGenotype, edge_stride
from spaces.ops import OPS

CPU = torch.device("cpu")
DIGITS = DataInfo(1, 10, 8)  # digits' shape: 1 channel, 10 classes, 8×8
DARTS_OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5")
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
TINY_DARTS = {"search_layers": "3", "search_channels": "2", "search_batch_size": "16"}


def agnas_cfg(space: str = "darts", overrides: dict[str, str] | None = None) -> dict:
    base = TINY_DARTS if space == "darts" else {"search_channels": "2", "search_batch_size": "16"}
    return resolve(get_method("agnas"), get_space(space), "smoke", {**base, **(overrides or {})}).values


def make(space: str = "darts", overrides: dict[str, str] | None = None, seed: int = 0, torch_seed: int | None = None):
    cfg = agnas_cfg(space, overrides)
    torch.manual_seed(seed if torch_seed is None else torch_seed)  # as the trial does (seed_everything)
    return get_method("agnas")(get_space(space)(cfg), cfg, DIGITS, CPU, seed)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def small_data(digits, cfg: dict, images: int = 64, seed: int = 0) -> SearchData:
    """``images`` / 2 per half: with batch 16, two batches per half."""
    return SearchData(digits.limited(images), cfg, seed, CPU)


def attention_edges(method) -> list[AttentionEdge]:
    return [m for m in method.supernet.modules() if isinstance(m, AttentionEdge)]


def random_images(n: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=gen, dtype=dtype)


def labels(n: int) -> torch.Tensor:
    return torch.arange(n) % 10


def hand_attention(fc1: np.ndarray, fc2: np.ndarray, blocks: list[np.ndarray]) -> np.ndarray:
    """σ(W2 ReLU(W1 GAP([o_1, ..., o_m]))) with numpy: [B, m*C] for the candidates' outputs ``blocks``."""
    concat = np.concatenate(blocks, axis=1)  # [B, mC, H, W], block k = channels kC..(k+1)C-1
    pooled = concat.mean(axis=(2, 3))
    hidden = np.maximum(pooled @ fc1.T, 0.0)
    return 1.0 / (1.0 + np.exp(-(hidden @ fc2.T)))


def hand_edge_output(fc1, fc2, blocks):
    att = hand_attention(fc1, fc2, blocks)
    c = blocks[0].shape[1]
    return sum(blocks[k] * att[:, k * c:(k + 1) * c, None, None] for k in range(len(blocks))), att


def np64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).numpy()


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


class Shift(nn.Module):
    def forward(self, x):
        return x.flip(1) + 0.5  # channel order reversed: a block-order mix-up shows


class Zeros(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)


def crafted_edge(reduction: int = 4, channels: int = 4):
    """An AttentionEdge over (identity, 2x, channel-flip + 0.5, zeros) with known float64 fc weights."""
    candidates = nn.ModuleList([nn.Identity(), Scale(2.0), Shift(), Zeros()])
    arch, tally = ArchState(), AttentionTally()
    edge_id = EdgeId(group="normal", index=5, cell=2, channels=channels, ops=tuple(range(len(candidates))))
    edge = AttentionEdge(edge_id, candidates, reduction, arch, tally).double()
    width = 4 * channels
    hidden = edge.fc1.out_features
    with torch.no_grad():
        w1 = torch.linspace(-1.0, 1.0, hidden * width, dtype=torch.float64).reshape(hidden, width)
        w1 = w1 * torch.cos(torch.arange(hidden * width, dtype=torch.float64)).reshape(hidden, width)
        w2 = torch.linspace(1.5, -0.7, width * hidden, dtype=torch.float64).reshape(width, hidden)
        edge.fc1.weight.copy_(w1)
        edge.fc2.weight.copy_(w2)
    return edge, arch, tally


# --- 1. the attention edge by hand -------------------------------------------------------------------------

def test_attention_edge_matches_hand_computation():
    edge, arch, tally = crafted_edge()
    x = random_images(3, 0).repeat(1, 4, 1, 1) + torch.arange(4, dtype=torch.float64)[None, :, None, None]
    with torch.no_grad():
        out = edge(x)
    xs = np64(x)
    blocks = [xs, 2 * xs, xs[:, ::-1] + 0.5, np.zeros_like(xs)]
    expected, att = hand_edge_output(np64(edge.fc1.weight), np64(edge.fc2.weight), blocks)
    assert out.shape == x.shape
    assert np.allclose(np64(out), expected, rtol=1e-12, atol=1e-12)
    pooled = torch.stack([torch.as_tensor(b.copy()).mean(dim=(2, 3)) for b in blocks], dim=1)  # GAP per block
    assert np.allclose(np64(edge.attention(pooled)), att.reshape(3, 4, 4), rtol=1e-12, atol=1e-12)
    assert 0.01 < att.min() and att.max() < 0.999 and att.std() > 0.05  # the crafted weights are not degenerate
    assert not tally.sums and not tally.active  # nothing recorded outside ``collecting``


@pytest.mark.parametrize("reduction, channels, hidden", [(4, 4, 4), (5, 4, 3), (3, 2, 2), (100, 4, 1), (1, 2, 8)])
def test_attention_hidden_width_and_no_biases(reduction, channels, hidden):
    edge, _, _ = crafted_edge(reduction, channels)
    assert hidden == max(1, 4 * channels // reduction)
    assert (edge.fc1.in_features, edge.fc1.out_features) == (4 * channels, hidden)
    assert (edge.fc2.in_features, edge.fc2.out_features) == (hidden, 4 * channels)
    assert edge.fc1.bias is None and edge.fc2.bias is None
    assert sorted(n for n, _ in edge.named_parameters()) == ["fc1.weight", "fc2.weight"]


def test_supernet_edges_are_sized_by_the_edge_channels():
    method = make("darts", {"attention_reduction": "3"})
    edges = attention_edges(method)
    assert len(edges) == 3 * 14
    for edge in edges:
        c = edge.edge.channels
        assert c == {0: 2, 1: 4, 2: 8}[edge.edge.cell]  # search_channels 2, doubled at each reduction cell
        assert tuple(edge.fc1.weight.shape) == (max(1, 8 * c // 3), 8 * c)
        assert tuple(edge.fc2.weight.shape) == (8 * c, max(1, 8 * c // 3))
        assert edge.fc1.bias is None and edge.fc2.bias is None


# --- 2. the tally --------------------------------------------------------------------------------------------

def test_tally_records_per_op_attention_sums_over_images():
    edge, _, tally = crafted_edge()
    x1, x2 = random_images(2, 1).repeat(1, 4, 1, 1), random_images(3, 2).repeat(1, 4, 1, 1)
    w1, w2 = np64(edge.fc1.weight), np64(edge.fc2.weight)
    expected = np.zeros(4)
    for x in (x1, x2):
        xs = np64(x)
        att = hand_attention(w1, w2, [xs, 2 * xs, xs[:, ::-1] + 0.5, np.zeros_like(xs)])
        expected += att.reshape(len(xs), 4, 4).sum(axis=(0, 2))  # per op: Σ images Σ its C channels
    with tally.collecting(), torch.no_grad():
        edge(x1)
        edge(x2)
    assert list(tally.sums) == [(2, 5)]  # keyed by (cell, edge index)
    assert np.allclose(tally.sums[(2, 5)].numpy(), expected, rtol=1e-12)
    assert tally.images == {(2, 5): 5}
    assert not tally.active
    with torch.no_grad():
        edge(x1)  # outside the block: nothing changes
    assert np.allclose(tally.sums[(2, 5)].numpy(), expected, rtol=1e-12)
    with tally.collecting(), torch.no_grad():  # a new block starts from zero
        edge(x1)
    assert tally.images == {(2, 5): 2}


def test_measure_importance_is_hand_summed_attention_in_eval_mode():
    method = make("darts")
    method.supernet.double()
    x = random_images(12, 3)
    captured: dict[tuple[int, int], list[torch.Tensor]] = {}
    handles = [e.register_forward_pre_hook(
        lambda m, inp: captured.setdefault((m.edge.cell, m.edge.index), []).append(inp[0].detach()))
        for e in attention_edges(method)]
    method.supernet.train()
    running = {k: v.clone() for k, v in method.supernet.state_dict().items() if "running" in k}
    method.measure_importance([(x[:5], labels(5)), (x[5:], labels(7))])
    for h in handles:
        h.remove()
    assert method.supernet.training  # evaluate restores the mode
    after = method.supernet.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in running.items())  # eval-mode BN: running stats untouched
    assert sorted(method.cell_scores) == [0, 1, 2]
    assert method.cell_groups == {0: "normal", 1: "reduce", 2: "reduce"}
    assert method.importance_images == 12
    method.supernet.eval()
    with torch.no_grad():
        for edge in attention_edges(method):
            key = (edge.edge.cell, edge.edge.index)
            assert len(captured[key]) == 2
            expected = np.zeros(8)
            for inp in captured[key]:
                blocks = [np64(op(inp)) for op in edge.ops]
                att = hand_attention(np64(edge.fc1.weight), np64(edge.fc2.weight), blocks)
                expected += att.reshape(len(inp), 8, -1).sum(axis=(0, 2))
            assert np.allclose(method.cell_scores[edge.edge.cell][edge.edge.index], expected, rtol=1e-10), key


def test_importance_is_a_sum_over_images_independent_of_batching():
    method = make("darts")
    method.supernet.double()
    x = random_images(13, 4)
    y = labels(13)
    method.measure_importance([(x, y)])
    whole = {c: m.copy() for c, m in method.cell_scores.items()}
    assert method.importance_images == 13
    assert all(m.shape == (14, 8) and (m > 0).all() for m in whole.values())
    method.measure_importance([(x[:2], y[:2]), (x[2:9], y[2:9]), (x[9:], y[9:])])
    for c in whole:
        assert np.allclose(method.cell_scores[c], whole[c], rtol=1e-10, atol=0)
    method.measure_importance([(x, y)])  # a new measurement starts from zero
    for c in whole:
        assert np.allclose(method.cell_scores[c], whole[c], rtol=1e-10, atol=0)
    method.measure_importance([(x, y), (x, y)])  # the same images twice: twice the importance
    assert method.importance_images == 26
    for c in whole:
        assert np.allclose(method.cell_scores[c], 2 * whole[c], rtol=1e-10, atol=0)
    # one image's importance is its attention: every op's sum lies in (0, C)
    method.measure_importance([(x[:1], y[:1])])
    for c, m in method.cell_scores.items():
        channels = {0: 2, 1: 4, 2: 8}[c]
        assert (m > 0).all() and (m < channels).all()


# --- 3. discretised edges --------------------------------------------------------------------------------------

def test_discretised_edge_runs_only_the_kept_op_and_zeroes_the_others():
    method = make("darts")
    method.supernet.double().eval()
    x = random_images(4, 5)
    group, index, kept = "reduce", 3, 5
    calls, handles = count_op_calls(attention_edges(method))
    with torch.no_grad(), method.discretised(group, index, kept):
        method.supernet(x)
    for h in handles:
        h.remove()
    for edge in attention_edges(method):
        e = edge.edge
        ran = sorted(k for (c, i, k) in calls if (c, i) == (e.cell, e.index))
        if (e.group, e.index) == (group, index):  # every instance of the edge: cells 1 and 2
            assert ran == [kept]
        else:
            assert ran == list(range(1, 8))  # every op but `none` (0), whose zeros are not computed
    assert not method.arch.forced
    # the output of one instance by hand: attention over [0, ..., kept output, ..., 0], times the kept output
    edge = next(e for e in attention_edges(method) if (e.edge.cell, e.edge.index) == (1, index))
    inp = random_images(3, 6).repeat(1, 4, 1, 1) * torch.arange(1, 5, dtype=torch.float64)[None, :, None, None]
    with torch.no_grad():
        kept_out = edge.ops[kept](inp)
        with method.discretised(group, index, kept):
            out = edge(inp)
        mixed = edge(inp)
    blocks = [np.zeros_like(np64(kept_out)) for _ in range(8)]
    blocks[kept] = np64(kept_out)
    att = hand_attention(np64(edge.fc1.weight), np64(edge.fc2.weight), blocks)
    c = edge.edge.channels
    expected = np64(kept_out) * att[:, kept * c:(kept + 1) * c, None, None]
    assert np.allclose(np64(out), expected, rtol=1e-12, atol=1e-14)
    assert not np.allclose(np64(mixed), expected)  # outside the context the edge mixes all ops again


# --- 4. only weights train -------------------------------------------------------------------------------------

def test_only_weights_train_and_the_arch_half_is_unused(digits):
    method = make("darts")
    assert method.arch.params == {}
    optimised = {id(p) for g in method.w_opt.param_groups for p in g["params"]}
    assert optimised == {id(p) for p in method.supernet.parameters()}
    data = small_data(digits, method.cfg, 32)
    before = {n: p.detach().clone() for n, p in method.supernet.named_parameters()}
    sums_before = dict(method.tally.sums)
    stats = method.train_step(next(iter(data.weight_batches(0))), None, 0)
    assert np.isfinite(stats["loss"]) and 0 <= stats["correct"] <= 16
    assert method.tally.sums == sums_before and not method.tally.active and method.cell_scores == {}
    named = dict(method.supernet.named_parameters())
    fc = [n for n in named if n.endswith(("fc1.weight", "fc2.weight"))]
    convs = [n for n in named if "ops" in n and named[n].dim() == 4]
    assert len(fc) == 2 * 3 * 14 and convs
    for n in fc + convs:  # every attention module and conv received a gradient and moved
        assert named[n].grad is not None and named[n].grad.abs().sum() > 0, n
        assert not torch.equal(named[n], before[n]), n

    # the architecture half is read once per epoch, by the importance pass after every weight step
    reads, steps, train_step, arch_batches = [], [], method.train_step, data.arch_batches
    method.train_step = lambda *args: (steps.append(len(reads)), train_step(*args))[1]
    data.arch_batches = lambda epoch: (reads.append(epoch), arch_batches(epoch))[1]
    record = method.train_epoch(1, data)
    assert reads == [1] and steps == [0]  # one weight step (16 images), then the importance pass
    assert record["genotype"].startswith("StagedGenotype(")
    # the shared search optimiser: epoch 1 of 2 (smoke) is half-way down the cosine, (0.025 + 0.001) / 2
    assert record["lr"] == pytest.approx(0.013)
    group = method.w_opt.param_groups[0]
    assert (group["momentum"], group["weight_decay"]) == (0.9, 3e-4)
    assert method.importance_images == 16  # the whole architecture half of 32 images


# --- 5. per-cell derivation and stages on the DARTS space ------------------------------------------------------

def one_op_scores(op: int) -> np.ndarray:
    """Scores where ``op`` is the only selectable op with weight, strength growing with the edge index, and
    ``none`` dominating (it must be ignored)."""
    scores = np.zeros((14, 8))
    scores[:, op] = np.arange(1, 15)
    scores[:, 0] = 100.0
    return scores


def hand_cell(op: int) -> list[tuple[str, int]]:
    """Per node the two highest sources (strongest first), all with ``op``."""
    name = DARTS_OPS[op]
    return [(name, s) for node in range(2, 6) for s in (node - 1, node - 2)]


def cell_op(cell: int) -> int:
    return 1 + cell % 7


_BUILT: dict[int, object] = {}


def crafted_darts(layers: int, rule: str = "first"):
    """An AGNAS method of ``layers`` search cells with crafted per-cell importance (cell c: op 1 + c % 7). The
    supernets are built once per size (derivation never touches them); the validated cfg is fresh."""
    cfg = agnas_cfg("darts", {"search_layers": str(layers), "stage_cells": rule})
    if layers not in _BUILT:
        _BUILT[layers] = make("darts", {"search_layers": str(layers)})
    method = _BUILT[layers]
    method.cfg = method.space.cfg = cfg  # the space reads its stage rule
    method.cell_scores = {c: one_op_scores(cell_op(c)) for c in range(layers)}
    return method


@pytest.mark.parametrize("layers, rule, normal, reduce", [
    (8, "first", [0, 3, 6], [2, 5]),
    (8, "last", [1, 4, 7], [2, 5]),
    (8, "7,1,4", [7, 1, 4], [2, 5]),
    (8, " 0, 0 ,7", [0, 0, 7], [2, 5]),
    (4, "first", [0, 0, 3], [1, 2]),  # no normal cell in stage 2: stage 1's is reused
    (4, "last", [0, 0, 3], [1, 2]),
    (5, "first", [0, 2, 4], [1, 3]),
    (3, "last", [0, 0, 0], [1, 2]),
])
def test_derive_uses_each_stage_cell_own_genotype(layers, rule, normal, reduce):
    method = crafted_darts(layers, rule)
    genotype = method.derive()
    assert isinstance(genotype, StagedGenotype)
    assert genotype.normal == [hand_cell(cell_op(c)) for c in normal]
    assert genotype.reduce == [hand_cell(cell_op(c)) for c in reduce]
    assert genotype.normal == [method.space.derive_cell(method.cell_scores[c]) for c in normal]
    info = method.record_info()
    assert info["stage_cells"] == {"rule": rule, "normal": normal, "reduce": reduce}
    assert [e["cell"] for e in info["cells"]] == list(range(layers))
    for entry in info["cells"]:
        c = entry["cell"]
        assert entry["group"] == ("reduce" if c in reduce else "normal")
        assert entry["importance"] == one_op_scores(cell_op(c)).tolist()
        assert entry["genotype"] == [list(p) for p in hand_cell(cell_op(c))]
        assert entry["used_for"] == ([f"normal cells of stage {k + 1}" for k, n in enumerate(normal) if n == c]
                                     + [f"reduction cell {k + 1}" for k, r in enumerate(reduce) if r == c])
    json.dumps(info)  # goes into the trial record
    assert info["attention"]["reduction_ratio"] == 8


def test_record_info_used_for_by_hand():
    info = crafted_darts(8, "first").record_info()
    used = {e["cell"]: e["used_for"] for e in info["cells"]}
    assert used == {0: ["normal cells of stage 1"], 1: [], 2: ["reduction cell 1"], 3: ["normal cells of stage 2"],
                    4: [], 5: ["reduction cell 2"], 6: ["normal cells of stage 3"], 7: []}
    used = {e["cell"]: e["used_for"] for e in crafted_darts(4, "first").record_info()["cells"]}
    assert used == {0: ["normal cells of stage 1", "normal cells of stage 2"], 1: ["reduction cell 1"],
                    2: ["reduction cell 2"], 3: ["normal cells of stage 3"]}


def test_importance_is_the_group_mean_over_cells():
    method = make("darts", {"search_layers": "5"})  # reductions at 1 and 3
    assert method.importance() is None
    rng = np.random.default_rng(0)
    method.cell_scores = {c: rng.random((14, 8)) * (c + 1) for c in range(5)}
    got = method.importance()
    assert sorted(got) == ["normal", "reduce"]
    s = method.cell_scores
    assert np.allclose(got["normal"], (s[0] + s[2] + s[4]) / 3, rtol=1e-12)
    assert np.allclose(got["reduce"], (s[1] + s[3]) / 2, rtol=1e-12)


# --- 6. NAS-Bench-201 -----------------------------------------------------------------------------------------

def test_nb201_importance_is_averaged_over_cells_and_argmaxed_with_none():
    method = make("nb201")  # smoke: one cell per stage, three cells
    assert method.cell_groups == {0: "cell", 1: "cell", 2: "cell"}
    assert "stage_cells" not in method.cfg
    base = np.tile([1.0, 2.0, 3.0, 4.0, 5.0], (6, 1))  # avg_pool wins unless an edge is crafted
    cells = {c: base.copy() for c in range(3)}
    # edge 0: skip, conv1x1, conv3x3 win in single cells; the mean (avg_pool) wins in none of them
    cells[0][0] = [0, 10, 0, 0, 6]
    cells[1][0] = [0, 0, 7, 0, 6]
    cells[2][0] = [0, 0, 0, 8, 6]
    # edge 2: none wins on average (and in no single cell either)
    cells[0][2] = [5, 9, 0, 0, 0]
    cells[1][2] = [5, 0, 9, 0, 0]
    cells[2][2] = [5, 0, 0, 0, 9]
    # edge 4: none wins in every cell
    for c in cells:
        cells[c][4] = [7, 1, 1, 1, 1]
    method.cell_scores = cells
    mean = (cells[0] + cells[1] + cells[2]) / 3
    assert np.allclose(method.importance()["cell"], mean, rtol=1e-12)
    assert list(method.importance()) == ["cell"]
    assert [NB201_OPS[int(np.argmax(cells[c][0]))] for c in range(3)] == ["skip_connect", "nor_conv_1x1",
                                                                            "nor_conv_3x3"]
    assert method.derive() == ("avg_pool_3x3", "avg_pool_3x3", "none", "avg_pool_3x3", "none", "avg_pool_3x3")
    info = method.record_info()
    assert "stage_cells" not in info and [e["cell"] for e in info["cells"]] == [0, 1, 2]
    assert all("genotype" not in e for e in info["cells"])


def test_nb201_epoch_gives_finite_importance_and_a_genotype(digits):
    method = make("nb201")
    data = small_data(digits, method.cfg, 32)
    record = method.train_epoch(0, data)
    assert method.space.parse(record["genotype"]) == method.derive()
    assert method.importance()["cell"].shape == (6, 5) and np.isfinite(method.importance()["cell"]).all()
    assert method.importance_images == 16


# --- 7. the per-stage final network ---------------------------------------------------------------------------

def test_staged_final_network_follows_the_stage_genotypes_and_trains(digits):
    method = crafted_darts(8, "first")
    genotype = method.derive()
    assert len({str(g) for g in genotype.normal + genotype.reduce}) == 5  # five different cells
    assert method.space.parse(method.space.to_str(genotype)) == genotype
    torch.manual_seed(0)
    net = final_network(method.space, genotype, DIGITS, layers=5, channels=4, auxiliary=True)
    # 5 cells: normal (stage 1), reduce 1, normal (stage 2), reduce 2, normal (stage 3)
    plan = [(genotype.normal[0], False), (genotype.reduce[0], True), (genotype.normal[1], False),
            (genotype.reduce[1], True), (genotype.normal[2], False)]
    for cell, (edges, reduction) in zip(net.cells, plan):
        assert cell.reduction == reduction
        assert cell.sources == [s for _, s in edges]
        got = [type(op).__name__ for op in cell.ops]
        want = [type(OPS[name](4, edge_stride(reduction, s), True)).__name__ for name, s in edges]
        assert got == want
    assert [type(net.cells[0].ops[0]).__name__, type(net.cells[2].ops[0]).__name__,
            type(net.cells[4].ops[0]).__name__] == ["MaxPool2d", "SepConv", "DilConv"]
    data = small_data(digits, method.cfg, 32)
    x, y = next(iter(data.eval_train_batches(0)))
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    before = [p.detach().clone() for p in net.parameters()]
    logits, aux = net(x)
    assert aux is not None
    loss = F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux, y)
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    assert any(not torch.equal(p, b) for p, b in zip(net.parameters(), before))
    assert all(torch.isfinite(p).all() for p in net.parameters())


# --- 8. operation-level correlation ------------------------------------------------------------------------------

def test_op_correlation_samples_the_same_edges_and_batches_as_darts(digits, monkeypatch):
    overrides = {**TINY_DARTS, "search_batch_size": "8", "corr_edges": "2", "corr_batches": "1"}
    agnas_cfg_ = resolve(get_method("agnas"), get_space("darts"), "smoke", overrides).values
    darts_cfg = resolve(get_method("darts"), get_space("darts"), "smoke", overrides).values
    torch.manual_seed(0)
    agnas = get_method("agnas")(get_space("darts")(agnas_cfg_), agnas_cfg_, DIGITS, CPU, 0)
    darts = get_method("darts")(get_space("darts")(darts_cfg), darts_cfg, DIGITS, CPU, 0)
    rng = np.random.default_rng(1)
    agnas.cell_scores = {c: rng.random((14, 8)) for c in range(3)}
    scores_before = {c: m.copy() for c, m in agnas.cell_scores.items()}
    data = small_data(digits, agnas_cfg_)

    real = correlation.evaluate
    calls: dict[str, list] = {"agnas": [], "darts": []}
    current = []

    def recording(model, batches, train_mode_bn=False):
        method = current[0]
        calls[method.name].append((dict(method.arch.forced), [x.clone() for x, _ in batches], train_mode_bn))
        if method is darts:  # only the inputs matter here; DARTS's accuracies are not (saves half the time)
            return 0.0, float(len(calls["darts"]))
        return real(model, batches, train_mode_bn=train_mode_bn)  # AGNAS: real forwards through its edges

    monkeypatch.setattr(correlation, "evaluate", recording)
    results = {}
    for method in (agnas, darts):
        current[:] = [method]
        results[method.name] = op_level_correlation(method, data, method.cfg)
    edges = [(d["group"], d["edge"]) for d in results["agnas"]["op_correlation"]]
    assert edges == [(d["group"], d["edge"]) for d in results["darts"]["op_correlation"]]
    assert edges == sample_edges({"normal": (14, 8), "reduce": (14, 8)}, 2)
    assert len(calls["agnas"]) == len(calls["darts"]) == 2 * 7  # 'none' is not selectable on the DARTS space
    for (fa, ba, ta), (fd, bd, td) in zip(calls["agnas"], calls["darts"]):
        assert fa == fd and ta and td
        assert len(ba) == len(bd) == 1 and len(ba[0]) == 8 and torch.equal(ba[0], bd[0])
    assert torch.equal(calls["agnas"][0][1][0], next(iter(data.val_batches()))[0])  # the architecture half's first
    # AGNAS's per-edge scores are the means over the group's cells (reduce: cells 1 and 2)
    members = {"normal": [0], "reduce": [1, 2]}
    for d in results["agnas"]["op_correlation"]:
        ops = [DARTS_OPS.index(n) for n in d["ops"]]
        assert ops == list(range(1, 8))
        want = np.mean([scores_before[c][d["edge"], ops] for c in members[d["group"]]], axis=0)
        assert np.allclose(d["scores"], want, rtol=1e-12)
    # the correlation's forwards recorded nothing and changed no importance
    assert not agnas.tally.active and agnas.tally.sums == {}
    assert all(np.array_equal(agnas.cell_scores[c], scores_before[c]) for c in scores_before)


# --- 9. configuration ---------------------------------------------------------------------------------------------

def test_config_stage_cells_exists_on_darts_only():
    darts = resolve(get_method("agnas"), get_space("darts"), "smoke", {}).values
    assert darts["stage_cells"] == "first" and darts["attention_reduction"] == 8
    paper = resolve(get_method("agnas"), get_space("darts"), "paper", {}).values
    assert paper["search_epochs"] == 50 and paper["search_batch_size"] == 64 and paper["search_layers"] == 8
    nb201 = resolve(get_method("agnas"), get_space("nb201"), "smoke", {}).values
    assert "stage_cells" not in nb201 and nb201["attention_reduction"] == 8
    with pytest.raises(UserError) as err:
        resolve(get_method("agnas"), get_space("nb201"), "smoke", {"stage_cells": "first"})
    assert "unknown configuration key 'stage_cells'" in one_line(err)
    assert resolve(get_method("agnas"), get_space("darts"), "smoke",
                   {"search_layers": "8", "stage_cells": "7,1,4"}).values["stage_cells"] == "7,1,4"


@pytest.mark.parametrize("overrides, fragment", [
    ({"stage_cells": "2,3"}, "stage_cells='2,3' is not valid: first, last, each or 3 comma-separated"),
    ({"stage_cells": "x"}, "stage_cells='x' is not valid"),
    ({"stage_cells": "0,3,-1"}, "stage_cells='0,3,-1' is not valid"),
    ({"stage_cells": "0,\u00b2,3"}, "stage_cells='0,\u00b2,3' is not valid"),  # a Unicode digit is no index
    ({"search_layers": "8", "stage_cells": "0,2,6"}, "search cell 2 is not a normal cell"),  # a reduction cell
    ({"search_layers": "8", "stage_cells": "0,3,8"}, "search cell 8 is not a normal cell"),  # out of range
    ({"attention_reduction": "0"}, "attention_reduction=0 is out of range: int >= 1"),
    ({"attention_reduction": "-2"}, "attention_reduction"),
    ({"search_layers": "2"}, "search_layers >= 3"),
])
def test_bad_configuration_is_refused_with_one_line(overrides, fragment):
    with pytest.raises(UserError) as err:
        resolve(get_method("agnas"), get_space("darts"), "smoke", overrides)
    assert fragment in one_line(err)


# --- 10, 11. checkpoints and reproducibility ---------------------------------------------------------------------

def test_checkpoint_resumes_identically(digits):
    """NAS-Bench-201 (the checkpoint code is the same for both spaces; its supernet is ten times cheaper)."""
    method = make("nb201")
    data = small_data(digits, method.cfg)
    method.train_epoch(0, data)
    blob = checkpoints.dumps(method.state_dict())
    method.train_epoch(1, data)
    resumed = make("nb201", torch_seed=123)  # different initial weights: everything must come from the state
    resumed.load_state_dict(checkpoints.loads(blob))
    assert resumed.importance_images == 32 and sorted(resumed.cell_scores) == [0, 1, 2]
    resumed.train_epoch(1, data)
    assert sorted(resumed.cell_scores) == sorted(method.cell_scores) == [0, 1, 2]
    for c in method.cell_scores:
        assert np.array_equal(resumed.cell_scores[c], method.cell_scores[c])
    for (k, a), (_, b) in zip(method.supernet.state_dict().items(), resumed.supernet.state_dict().items()):
        assert torch.equal(a, b), k
    assert resumed.importance_images == method.importance_images == 32
    assert resumed.derive() == method.derive()


def test_checkpoint_restores_importance_without_training():
    method = crafted_darts(3)
    method.importance_images = 7
    state = method.state_dict()
    state["cell_scores"] = {str(c): m.tolist() for c, m in state["cell_scores"].items()}  # as read back from JSON-ish
    fresh = make("darts")
    fresh.load_state_dict(state)
    assert sorted(fresh.cell_scores) == [0, 1, 2] and fresh.importance_images == 7
    assert fresh.derive() == method.derive()


def test_same_seed_same_search_and_importance_is_the_last_validation_pass(digits):
    runs = []
    for _ in range(2):
        method = make("darts", seed=3)
        data = small_data(digits, method.cfg, 32, seed=3)
        record = method.train_epoch(0, data)
        runs.append((method, record))
    (a, ra), (b, rb) = runs
    assert ra["genotype"] == rb["genotype"] == a.space.to_str(a.derive())
    assert sorted(a.cell_scores) == sorted(b.cell_scores) == [0, 1, 2]
    for c in a.cell_scores:
        assert np.array_equal(a.cell_scores[c], b.cell_scores[c])
    # the epoch's importance is the validation pass over the whole architecture half after the weight steps
    final = {c: m.copy() for c, m in a.cell_scores.items()}
    val_loss, val_acc = a.measure_importance(data.arch_batches(0))  # epoch 0's augmented architecture half
    assert (val_loss, val_acc) == (ra["val_loss"], ra["val_acc"])
    for c in final:
        assert np.allclose(a.cell_scores[c], final[c], rtol=1e-6)
    assert a.importance_images == 16


def first_edge_inputs(method, data: SearchData, epoch: int) -> list[torch.Tensor]:
    """The input of the supernet's first attention edge in every batch of the epoch's importance pass."""
    seen = []
    handle = attention_edges(method)[0].register_forward_hook(lambda mod, inp, out: seen.append(inp[0].clone()))
    try:
        method.train_epoch(epoch, data)
    finally:
        handle.remove()
    return seen[-len(method.importance_batches(data)):]  # the weight steps' passes come first


def stem_inputs(method, batches) -> list[torch.Tensor]:
    """The first edge's input for ``batches`` (eval mode, as in the importance pass)."""
    seen = []
    handle = attention_edges(method)[0].register_forward_hook(lambda mod, inp, out: seen.append(inp[0].clone()))
    method.supernet.eval()
    with torch.no_grad():
        for x, _ in batches:
            method.supernet(x)
    handle.remove()
    return seen


def test_importance_pass_reads_the_epochs_augmented_architecture_half(digits):
    """By default the importance (validation) pass sees the architecture half with the training augmentation
    (the reference code's loader): the epoch's seeded ``arch_batches``, not the unaugmented ``val_batches``;
    the same images for two runs of a seed, other images for another epoch or seed."""
    runs = []
    for _ in range(2):
        method = make("nb201", seed=3)
        data = small_data(digits, method.cfg, 32, seed=3)
        runs.append((method, data, first_edge_inputs(method, data, 0)))
    (a, data, seen_a), (b, _, seen_b) = runs
    assert len(seen_a) == len(seen_b) == 1 and a.importance_images == 16
    assert torch.equal(seen_a[0], seen_b[0])  # the same seed sees the same images
    assert torch.equal(seen_a[0], stem_inputs(a, data.arch_batches(0))[0])  # the epoch's augmented half
    plain = stem_inputs(a, data.val_batches())[0]
    assert seen_a[0].shape == plain.shape and not torch.equal(seen_a[0], plain)
    # augmented, not merely shuffled: most images of the pass are none of the unaugmented half's (digits' crop
    # padding is 1, so the centred crop, one offset of 9, leaves about one image in 9 as it was)
    augmented = next(iter(data.arch_batches(0)))[0]
    unaugmented = next(iter(data.val_batches()))[0]
    assert sum(any(torch.equal(x, u) for u in unaugmented) for x in augmented) < len(augmented) // 2
    assert not torch.equal(next(iter(data.arch_batches(1)))[0], augmented)  # a new draw every epoch
    other = small_data(digits, a.cfg, 32, seed=4)
    assert not torch.equal(next(iter(other.arch_batches(0)))[0], augmented)


def test_importance_augment_defaults_follow_the_reference_per_space():
    assert agnas_cfg("darts")["importance_augment"] is True and agnas_cfg("nb201")["importance_augment"] is True
    proxyless = resolve(get_method("agnas"), get_space("proxyless"), "smoke", {}).values
    assert proxyless["importance_augment"] is False  # the macro search's reference pass is unaugmented


def test_importance_augment_false_reads_the_unaugmented_half(digits):
    method = make("nb201", {"importance_augment": "false"}, seed=3)
    data = small_data(digits, method.cfg, 32, seed=3)
    seen = first_edge_inputs(method, data, 0)
    assert torch.equal(seen[0], stem_inputs(method, data.val_batches())[0])
    record_loss, record_acc = method.measure_importance(data.val_batches())
    assert method.importance_images == 16 and 0 <= record_acc <= 100 and np.isfinite(record_loss)


def test_per_channel_importance_is_the_attention_sum_divided_by_the_edge_channels():
    """importance_norm=per_channel (macro search's block importance) divides each edge's attention sums by its
    output channels; the attention itself is the same (same seed, same weights)."""
    batches = [(torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(3)), torch.arange(6))]
    summed = make("nb201", {"search_layers": "1"}, torch_seed=5)
    per_channel = make("nb201", {"search_layers": "1", "importance_norm": "per_channel"}, torch_seed=5)
    summed.measure_importance(batches)
    per_channel.measure_importance(batches)
    channels = {edge.cell: edge.channels for edge in per_channel.tally.edges.values()}
    assert sorted(set(channels.values())) == [2, 4, 8]  # three stages of the 1-cell-per-stage supernet
    for cell, matrix in summed.cell_scores.items():
        np.testing.assert_allclose(per_channel.cell_scores[cell], matrix / channels[cell], rtol=1e-12)
    cfg = resolve(get_method("agnas"), get_space("nb201"), "smoke").values
    assert (cfg["attention_reduction"], cfg["importance_norm"]) == (8, "sum")


def test_macro_search_on_the_proxyless_chain():
    """AGNAS on the ProxylessNAS chain: a skippable block concatenates its six candidate blocks and its input
    (the `zero` candidate is the identity), r = 16, and a block's importance is its attention sum ÷ C_out;
    the chain is derived by argmax per block."""
    cfg = resolve(get_method("agnas"), get_space("proxyless"), "smoke").values
    assert (cfg["attention_reduction"], cfg["importance_norm"]) == (16, "per_channel")
    torch.manual_seed(0)
    method = get_method("agnas")(get_space("proxyless")(cfg), cfg, DIGITS, CPU, 0)
    edges = [m for m in method.supernet.modules() if isinstance(m, AttentionEdge)]
    space = method.space
    zero = space.op_names.index("zero")
    skippable = [e for e in edges if zero in e.edge.ops]
    assert len(edges) == 21 and len(skippable) == 15
    edge = skippable[0]
    assert len(edge.ops) == 7 and edge.fc1.out_features == max(1, 7 * edge.edge.channels // 16)
    x = torch.randn(2, edge.edge.channels, 4, 4)
    assert torch.equal(edge.ops[edge.edge.slot(zero)](x), x)  # the block skipped: its input
    batches = [(torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(1)), torch.arange(5))]
    method.measure_importance(batches)
    (cell,) = method.cell_scores  # the chain is one cell
    scores = method.cell_scores[cell]
    for e in edges:
        sums = method.tally.sums[(cell, e.edge.index)].numpy()
        np.testing.assert_allclose(scores[e.edge.index, list(e.edge.ops)], sums / e.edge.channels, rtol=1e-12)
    genotype = method.derive()
    for index, op in enumerate(genotype):
        ops = space.choice_ops("blocks", index)
        assert op == space.op_names[ops[int(np.argmax(scores[index, list(ops)]))]]


# --- issue 26: the macro code's training recipe on proxyless, the shared protocol elsewhere ---------------------

def macro(overrides: dict[str, str] | None = None):
    cfg = resolve(get_method("agnas"), get_space("proxyless"), "smoke", overrides or {}).values
    torch.manual_seed(0)
    return get_method("agnas")(get_space("proxyless")(cfg), cfg, DIGITS, CPU, 0)


def test_macro_recipe_is_the_codes_and_micro_keeps_the_shared_protocol():
    paper = resolve(get_method("agnas"), get_space("proxyless"), "paper", {}).values
    assert (paper["search_batch_size"], paper["w_lr"], paper["w_lr_min"], paper["w_momentum"], paper["w_nesterov"],
            paper["w_weight_decay"], paper["w_lr_schedule"], paper["w_decay_params"], paper["grad_clip_mode"],
            paper["grad_clip"], paper["w_label_smoothing"], paper["w_lr_batch"]) == (
        512, 0.25, 5e-4, 0.9, False, 4e-5, "linear", "conv_classifier", "value", 5.0, 0.1, 512)
    micro = resolve(get_method("agnas"), get_space("darts"), "paper", {}).values
    assert (micro["search_batch_size"], micro["w_lr"], micro["w_weight_decay"], micro["w_lr_schedule"],
            micro["w_decay_params"], micro["grad_clip_mode"], micro["w_label_smoothing"], micro["w_lr_batch"]) == (
        64, 0.025, 3e-4, "cosine", "all", "norm", 0.0, 0)


def test_macro_weight_decay_groups_follow_the_codes_rule():
    """AGNAS's ``get_optimizer_schedule``: weight decay on 4-D weights and the classifier's weight and bias only;
    BatchNorm, the attention's linear layers and every other parameter without."""
    m = macro()
    names = {id(p): name for name, p in m.supernet.named_parameters()}
    reference = {name for name, p in m.supernet.named_parameters()
                 if p.ndim == 4 or name in ("classifier.weight", "classifier.bias")}
    groups = m.w_opt.param_groups
    assert len(groups) == 2 and groups[0]["weight_decay"] == 0.0 and groups[1]["weight_decay"] == 4e-5
    decayed = {names[id(p)] for p in groups[1]["params"]}
    free = {names[id(p)] for p in groups[0]["params"]}
    assert decayed == reference and not decayed & free and decayed | free == set(names.values())
    assert any(".fc1." in n for n in free) and any(".fc2." in n for n in free)  # the attention is not decayed
    assert any("body.1.weight" in n for n in free)  # nor BatchNorm
    micro = make("darts")  # the micro search: every weight decayed alike, as DARTS's code
    assert len(micro.w_opt.param_groups) == 1 and micro.w_opt.param_groups[0]["weight_decay"] == 3e-4


def test_macro_weight_step_smooths_the_labels_and_clips_each_gradient_entry():
    m = macro({"grad_clip": "0.001"})
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    m.supernet.train()
    logits = m.supernet(x).detach()  # train-mode BN: the same logits as the step's forward
    log_p = F.log_softmax(logits, dim=1)
    target = 0.9 * F.one_hot(y, 10) + 0.1 / 10
    by_hand = float(-(target * log_p).sum(1).mean())
    stats = m.train_step((x, y), None, 0)
    assert stats["loss"] == pytest.approx(by_hand, rel=1e-5)
    grads = [p.grad for p in m.supernet.parameters() if p.grad is not None]
    assert max(float(g.abs().max()) for g in grads) == pytest.approx(0.001)  # every entry clipped to ±grad_clip


def test_macro_learning_rate_decays_linearly_and_scales_with_the_batch():
    """The code's rates (0.25 → 5e-4) belong to its batch of 512: a budget's smaller batch scales them (the
    linear scaling rule), the paper budget takes them as they are."""
    m = macro({"search_epochs": "4"})
    assert m.cfg["search_batch_size"] == 128 and m.cfg["w_lr_batch"] == 512  # smoke
    assert [m.weight_lr(e) for e in range(4)] == pytest.approx(
        [(0.25 - (0.25 - 5e-4) * e / 4) * 128 / 512 for e in range(4)])
    m = macro({"search_epochs": "4", "search_batch_size": "512"})
    assert [m.weight_lr(e) for e in range(4)] == pytest.approx([0.25 - (0.25 - 5e-4) * e / 4 for e in range(4)])
    assert macro({"w_lr_batch": "0"}).weight_lr(0) == pytest.approx(0.25)  # 0: as given
    micro = make("darts", {"search_epochs": "4"})
    assert micro.weight_lr(2) == pytest.approx(0.001 + 0.012 * (1 + np.cos(np.pi / 2)))
