"""EoiNAS: the indicator I = β + λ·A/N and its bookkeeping, gradual operation pruning (modules, α, optimiser
state, the schedule, ``none`` on the DARTS space), derivation by I, the ablation flags, checkpoints and the
configuration (``methods/eoinas.py``'s docstring is the specification)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import count_op_calls, one_line

from harness import checkpoints
from harness.core.config import resolve
from harness.core.data import DataInfo, SearchData, load_dataset
from harness.core.errors import UserError
from harness.core.registry import get_method, get_space
from methods.eoinas import PrunedOp, indicator_matrix
from methods.gdas import GumbelEdge

CPU = torch.device("cpu")
DIGITS = DataInfo(1, 10, 8)  # digits' shape: 1 channel, 10 classes, 8×8
SMOKE = {"search_batch_size": "32"}
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
DARTS_OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5")
FAST_PRUNE = {"corr_edges": "0"}  # no operation-level correlation inside prune_step (DARTS space: seconds)


def eoinas_cfg(space: str = "nb201", overrides: dict[str, str] | None = None, budget: str = "smoke") -> dict:
    return resolve(get_method("eoinas"), get_space(space), budget, {**SMOKE, **(overrides or {})}).values


def make(space: str = "nb201", overrides: dict[str, str] | None = None, seed: int = 0):
    cfg = eoinas_cfg(space, overrides)
    torch.manual_seed(seed)  # as the trial does (seed_everything)
    return get_method("eoinas")(get_space(space)(cfg), cfg, DIGITS, CPU, seed)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits").limited(128)  # 64 + 64 images: 2 batches of 32 per half


def first_batches(data: SearchData, epoch: int = 0):
    return next(iter(data.weight_batches(epoch))), next(iter(data.arch_batches(epoch)))


def set_alpha(method, group: str, values) -> None:
    with torch.no_grad():
        method.arch.params[group].copy_(torch.as_tensor(np.asarray(values), dtype=torch.float32))


def set_evidence(method, group: str, acc, iterations=None) -> None:
    """One validation batch of accuracy ``acc`` (NaN: never validated) per (edge, op), N = ``iterations``."""
    acc = np.asarray(acc, dtype=float)
    method.acc_sum[group] = np.nan_to_num(acc, nan=0.0)
    method.acc_count[group] = np.isfinite(acc).astype(float)
    method.acc_latest[group] = acc.copy()
    method.iterations[group] = np.ones(acc.shape) if iterations is None else np.asarray(iterations, dtype=float)


def prune_losers(method, data: SearchData, losers: dict[str, list[int]], after_epoch: int = 2) -> dict:
    """A pruning step crafted so that ``losers[group][edge]`` has the lowest I (A = 0 against A = 50)."""
    for group, ops in losers.items():
        acc = np.full(method.iterations[group].shape, 50.0)
        acc[np.arange(len(ops)), ops] = 0.0
        set_evidence(method, group, acc)
    entry = method.prune_step(after_epoch, data)
    assert entry["removed"] == {g: [method.space.op_names[o] for o in ops] for g, ops in losers.items()}
    return entry


def record_forwards(method):
    """The sample (columns per group) and the logits of every supernet forward, in order."""
    samples, outputs = [], []
    handles = [  # registered after the method's own pre-hook, so the draw of this forward is already made
        method.supernet.register_forward_pre_hook(
            lambda m, i: samples.append({g: list(c[1]) for g, c in method.current.items()})),
        method.supernet.register_forward_hook(lambda m, i, o: outputs.append(o.detach())),
    ]
    return samples, outputs, handles


def one_hot(shape, columns_to_ops) -> np.ndarray:
    out = np.zeros(shape)
    out[np.arange(len(columns_to_ops)), columns_to_ops] = 1.0
    return out


def ops_of(method, group: str, columns: list[int]) -> list[int]:
    return [method.alive[group][e][c] for e, c in enumerate(columns)]


def softmax_rows(a) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- the indicator --------------------------------------------------------------------------------------

def test_indicator_matrix_by_hand():
    nan = float("nan")
    beta = np.array([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.0, 0.0]])
    accuracy = np.array([[50, nan, 80, 20], [10, 30, nan, 0], [60, 40, 70, 90]], dtype=float)
    iterations = np.array([[5, 3, 0, 4], [2, 0, 6, 1], [3, 4, 1, 2]], dtype=float)
    alive = np.array([[True] * 4, [True] * 4, [True, True, False, False]])
    got = indicator_matrix(beta, accuracy, iterations, alive, 0.5)
    expected = [[0.1 + 0.5 * 50 / 5, 0.2, 0.3 + 0.5 * 80 / 1, 0.4 + 0.5 * 20 / 4],   # N = 0 counts as 1
                [0.25 + 0.5 * 10 / 2, 0.25 + 0.5 * 30 / 1, 0.25, 0.25],             # NaN: C = 0
                [0.5 + 0.5 * 60 / 3, 0.5 + 0.5 * 40 / 4, 0.0, 0.0]]                 # not alive: 0
    assert got == pytest.approx(np.array(expected), abs=1e-12)
    assert np.allclose(got, [[5.1, 0.2, 40.3, 2.9], [2.75, 15.25, 0.25, 0.25], [10.5, 5.5, 0, 0]])
    assert np.array_equal(indicator_matrix(beta, accuracy, iterations, alive, 0.0), np.where(alive, beta, 0.0))


# α = log(w) per edge, so β = w / Σw by hand: [0.1, 0.1, 0.2, 0.4, 0.2]
W = np.array([1.0, 1.0, 2.0, 4.0, 2.0])
BETA = W / W.sum()


@pytest.mark.parametrize("acc_stat", ["mean", "latest"])
def test_method_indicator_from_crafted_counts(acc_stat):
    method = make("nb201", {"acc_stat": acc_stat})
    set_alpha(method, "cell", np.log(np.tile(W, (6, 1))))
    # per op: two batches (30 and 10 → mean 20, latest 10), ..., op 3 never validated
    sums, counts, latest = [40.0, 60.0, 100.0, 0.0, 30.0], [2, 2, 2, 0, 1], [10.0, 50.0, 40.0, np.nan, 30.0]
    n = np.add.outer(np.arange(6), np.arange(5)).astype(float)  # N[e, o] = e + o: N[0, 0] = 0 counts as 1
    method.iterations["cell"] = n
    method.acc_sum["cell"] = np.tile(sums, (6, 1))
    method.acc_count["cell"] = np.tile(np.array(counts, dtype=float), (6, 1))
    method.acc_latest["cell"] = np.tile(latest, (6, 1))
    acc = [20.0, 30.0, 50.0, 0.0, 30.0] if acc_stat == "mean" else [10.0, 50.0, 40.0, 0.0, 30.0]
    expected = BETA + 0.5 * np.array(acc) / np.maximum(n, 1)
    got = method.indicator()["cell"]
    assert got.shape == (6, 5)
    assert np.allclose(got, expected, atol=1e-6)
    if acc_stat == "mean":
        assert got[0, 0] == pytest.approx(0.1 + 0.5 * 20 / 1, abs=1e-6)
        assert got[2, 2] == pytest.approx(0.2 + 0.5 * 50 / 4, abs=1e-6)
    else:
        assert got[0, 0] == pytest.approx(0.1 + 0.5 * 10 / 1, abs=1e-6)
        assert got[2, 2] == pytest.approx(0.2 + 0.5 * 40 / 4, abs=1e-6)
    assert got[5, 3] == pytest.approx(0.4, abs=1e-6)  # never validated: β alone
    assert np.allclose(method.importance()["cell"], got)  # before any pruning the importance is I


@pytest.mark.parametrize("indicator", [True, False])
def test_indicator_flag_decides_what_is_pruned(digits, indicator):
    """β and I disagree on the loser: by β it is op 1 (tied with op 0 at 0.1, the later op goes), by I op 4
    (the only op never validated). ``indicator=false`` scores by softmax(α) alone, pruned ops 0."""
    method = make("nb201", {"indicator": str(indicator).lower()})
    data = SearchData(digits, method.cfg, 0, CPU)
    set_alpha(method, "cell", np.log(np.tile(W, (6, 1))))
    set_evidence(method, "cell", np.tile([30.0, 30.0, 30.0, 30.0, np.nan], (6, 1)))
    before = method.indicator()["cell"]
    if indicator:
        assert np.allclose(before, np.tile([15.1, 15.1, 15.2, 15.4, 0.2], (6, 1)), atol=1e-6)
    else:
        assert np.allclose(before, np.tile(BETA, (6, 1)), atol=1e-6)
    entry = method.prune_step(3, data)
    loser = 4 if indicator else 1
    assert entry["removed"] == {"cell": [NB201_OPS[loser]] * 6}
    assert method.alive["cell"] == [[o for o in range(5) if o != loser]] * 6
    after = method.importance()["cell"]
    if indicator:  # β renormalised over ops 0..3: [1, 1, 2, 4] / 8, plus λ·30
        expected = [0.125 + 15, 0.125 + 15, 0.25 + 15, 0.5 + 15, 0.0]
    else:  # β over ops 0, 2, 3, 4: [1, 2, 4, 2] / 9
        expected = [1 / 9, 0.0, 2 / 9, 4 / 9, 2 / 9]
    assert np.allclose(after, np.tile(expected, (6, 1)), atol=1e-6)


# --- bookkeeping of N and A -----------------------------------------------------------------------------

def test_train_step_counts_the_weight_sample_and_credits_the_arch_sample(digits):
    """DARTS space (two groups): N +1 on the weight step's ops, the architecture batch's top-1 (percent) on
    the ops of the architecture step's own forward; two steps accumulate."""
    method = make("darts", {"search_layers": "3", "search_channels": "2"})
    data = SearchData(digits, method.cfg, 0, CPU)
    batches = list(zip(data.weight_batches(1), data.arch_batches(1)))
    assert len(batches) == 2
    samples, outputs, handles = record_forwards(method)
    alpha_0 = {g: a.detach().clone() for g, a in method.arch.params.items()}
    accs = []
    for (wb, ab) in batches:
        method.train_step(wb, ab, 1)  # warmup_epochs is 1 at smoke: an architecture step
        accs.append(100.0 * (outputs[-1].argmax(1) == ab[1]).float().mean().item())
    for h in handles:
        h.remove()
    assert len(samples) == 4  # weight, arch, weight, arch
    assert all(not torch.equal(method.arch.params[g], alpha_0[g]) for g in alpha_0)
    assert 0.0 < max(accs)  # the credited numbers are not all zero
    shape = (14, 8)
    for group in ("normal", "reduce"):
        w1, a1, w2, a2 = (s[group] for s in samples)
        assert w1 != a1 or w2 != a2  # weight and arch samples differ somewhere: the attribution is visible
        assert np.array_equal(method.iterations[group], one_hot(shape, w1) + one_hot(shape, w2))
        assert np.allclose(method.acc_sum[group], accs[0] * one_hot(shape, a1) + accs[1] * one_hot(shape, a2))
        assert np.array_equal(method.acc_count[group], one_hot(shape, a1) + one_hot(shape, a2))
        latest = np.full(shape, np.nan)
        latest[np.arange(14), a1] = accs[0]
        latest[np.arange(14), a2] = accs[1]
        assert np.array_equal(method.acc_latest[group], latest, equal_nan=True)
        mean = method.parts(group)["accuracy"]
        for e in range(14):
            if a1[e] == a2[e]:
                assert mean[e, a1[e]] == pytest.approx((accs[0] + accs[1]) / 2)
            assert np.isnan(mean[e]).sum() == 8 - len({a1[e], a2[e]})


@pytest.mark.parametrize("count_reset", [True, False])
def test_warmup_trains_weights_only(digits, count_reset):
    """No architecture step in the warm-up; N counts its weight steps only with the old bookkeeping."""
    method = make("nb201", {"count_reset": str(count_reset).lower()})  # smoke: warmup_epochs 1
    data = SearchData(digits, method.cfg, 0, CPU)
    samples, _, handles = record_forwards(method)
    weights_0 = [p.detach().clone() for p in method.weights()]
    method.train_step(*first_batches(data, 0), 0)
    for h in handles:
        h.remove()
    assert len(samples) == 1  # the weight step's forward only
    assert torch.equal(method.arch.params["cell"], torch.zeros(6, 5))  # α untouched (initialised to zero)
    assert not method.a_opt.state  # no Adam step was taken
    assert any(not torch.equal(p, q) for p, q in zip(method.weights(), weights_0))
    expected = one_hot((6, 5), samples[0]["cell"]) if not count_reset else np.zeros((6, 5))  # reference: not counted
    assert np.array_equal(method.iterations["cell"], expected)
    assert not method.acc_count["cell"].any() and not method.acc_sum["cell"].any()
    assert np.isnan(method.acc_latest["cell"]).all()


def crafted_search(count_reset: bool, digits):
    """A 5-epoch search (w = 1, pruning after epochs 2, 3, 4, 5) whose weight and architecture steps are stubs
    that set a crafted sample: at the search's step t (2 per epoch) edge e samples column (t + e) mod width for
    the weight step, (t + e + 1) mod width for the architecture step (logits 0: the batch's share of class 0).
    Returns, per pruning step, the alive ops and N just before it and N just after the epoch's bookkeeping."""
    method = make("nb201", {"search_epochs": "5", "count_reset": str(count_reset).lower(), **FAST_PRUNE})
    data = SearchData(digits, method.cfg, 0, CPU)
    step = [0]

    def sample(offset: int) -> None:
        width = method.ops_per_edge()
        method.current = {"cell": (None, [(step[0] + e + offset) % width for e in range(6)])}

    def weight_step(x, y):
        sample(0)
        return {"loss": 0.0, "correct": 0}

    def arch_step(x, y):
        sample(1)
        return torch.zeros(len(y), 10)

    train_step, prune_step, before = method.train_step, method.prune_step, []

    def counting_train_step(wb, ab, epoch):
        stats = train_step(wb, ab, epoch)
        step[0] += 1
        return stats

    def recording_prune_step(after_epoch, data):
        before.append(([list(ops) for ops in method.alive["cell"]], method.iterations["cell"].copy()))
        return prune_step(after_epoch, data)

    method.weight_step, method.arch_step = weight_step, arch_step
    method.train_step, method.prune_step = counting_train_step, recording_prune_step
    after = []
    for epoch in range(5):
        method.train_epoch(epoch, data)
        after.append(method.iterations["cell"].copy())
    assert step[0] == 10 and method.schedule() == [2, 3, 4, 5] and len(before) == 4
    return method, before, after


def test_iterations_follow_the_reference_bookkeeping(digits):
    """count_reset (default): N counts the weight samples from the first architecture epoch (epoch 1; steps
    t = 2, 3) and restarts at 0 after each pruning epoch but the last; A is kept across the reset."""
    method, before, after = crafted_search(True, digits)
    assert not after[0].any()  # the warm-up's steps t = 0, 1 are not counted
    for k, (alive, n) in enumerate(before):  # step k closes epoch k + 1: its steps t = 2k + 2, 2k + 3
        width = 5 - k
        expected = np.zeros((6, 5))
        for t in (2 * k + 2, 2 * k + 3):
            for e in range(6):
                expected[e, alive[e][(t + e) % width]] += 1
        assert np.array_equal(n, expected), k
        assert n.sum() == 12  # 2 steps × 6 edges: only the epoch since the last pruning step
    for k in range(3):
        assert not after[k + 1].any()  # zeroed after the pruning steps of epochs 2, 3, 4
    assert np.array_equal(after[4], before[3][1])  # not after the last one: the final stage's counts stay
    # the first step (all five ops alive): edge 0 sampled columns 2 and 3, edge 5 columns 7 % 5 and 8 % 5
    assert before[0][1][0].tolist() == [0, 0, 1, 1, 0] and before[0][1][5].tolist() == [0, 0, 1, 1, 0]
    assert method.acc_count["cell"].sum() == 6 * 8  # 8 architecture steps on 6 edges, none forgotten


def test_iterations_without_count_reset_are_the_old_bookkeeping(digits):
    """count_reset=false: every weight step counts, warm-up included, and N only grows."""
    _, before, after = crafted_search(False, digits)
    assert [n.sum() for _, n in before] == [24, 36, 48, 60]  # 12 per epoch from epoch 0
    assert after[0].sum() == 12 and after[4].sum() == 60
    # the first step: steps t = 0..3 with all five ops alive, edge e sampled columns e, e + 1, e + 2, e + 3
    expected = np.zeros((6, 5))
    for t in range(4):
        for e in range(6):
            expected[e, (t + e) % 5] += 1
    assert np.array_equal(before[0][1], expected)
    for k in range(1, 4):  # N only grows by the sampled ops of each epoch
        grown = before[k][1] - before[k - 1][1]
        assert (grown >= 0).all() and grown.sum() == 12


# --- pruning ----------------------------------------------------------------------------------------------

PRUNE_ALPHA = 0.1 * np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [1, 1, 1, 1, 1],
                              [2, 0, 2, 0, 2], [0, 0, 3, 0, 0], [3, 2, 1, 2, 0]])
PRUNE_ACC = np.array([[10, 50, 60, 70, 80], [50, 10, 60, 70, 80], [50, 60, 10, 70, 80],
                      [50, 60, 70, 10, 80], [50, 60, 70, 80, 10], [50, 10, 60, 10, 80]], dtype=float)
PRUNE_LOSERS = [0, 1, 2, 3, 4, 3]  # edge 5: ops 1 and 3 tie exactly (same α, same A): the later one goes


def test_prune_step_removes_the_lowest_indicator_op_on_every_edge(digits):
    method = make("nb201")
    data = SearchData(digits, method.cfg, 0, CPU)
    method.train_step(*first_batches(data, 1), 1)  # Adam moments and SGD momentum exist
    set_alpha(method, "cell", PRUNE_ALPHA)
    set_evidence(method, "cell", PRUNE_ACC)
    expected_i = softmax_rows(PRUNE_ALPHA) + 0.5 * PRUNE_ACC
    assert np.allclose(method.indicator()["cell"], expected_i, atol=1e-6)
    assert method.indicator()["cell"][5, 1] == method.indicator()["cell"][5, 3]

    old_alpha = method.arch.params["cell"]
    adam = {k: v.clone() for k, v in method.a_opt.state[old_alpha].items()}
    assert set(adam) >= {"exp_avg", "exp_avg_sq", "step"}
    old_ops = {key: [list(edge.ops) for edge in edges] for key, edges in method.instances.items()}
    assert all(len(edges) == 3 for edges in method.instances.values())  # smoke nb201: 3 cells
    removed = [p for (g, e), edges in method.instances.items() for edge in edges
               for p in edge.ops[PRUNE_LOSERS[e]].parameters()]
    removed_ids = {id(p) for p in removed}
    assert removed and all(p in method.w_opt.state for p in removed)  # conv ops on edges 2, 3 and 5
    kept = [p for p in method.weights() if id(p) not in removed_ids]
    momentum = {id(p): method.w_opt.state[p]["momentum_buffer"].clone() for p in kept}

    entry = method.prune_step(3, data)

    keep_cols = [[o for o in range(5) if o != PRUNE_LOSERS[e]] for e in range(6)]
    assert method.alive["cell"] == keep_cols
    assert method.ops_per_edge() == 4
    new_alpha = method.arch.params["cell"]
    assert new_alpha.shape == (6, 4) and new_alpha is not old_alpha and new_alpha.requires_grad
    expected_alpha = np.array([[PRUNE_ALPHA[e, o] for o in keep_cols[e]] for e in range(6)])
    assert np.allclose(new_alpha.detach().numpy(), expected_alpha, atol=1e-7)
    # Adam: the same parameter list slot holds the new α, its moments are the kept columns, the step stays
    assert method.a_opt.param_groups[0]["params"] == [new_alpha]
    assert method.a_opt.param_groups[0]["params"][0] is new_alpha
    assert old_alpha not in method.a_opt.state
    state = method.a_opt.state[new_alpha]
    for key in ("exp_avg", "exp_avg_sq"):
        expected = torch.stack([adam[key][e, keep_cols[e]] for e in range(6)])
        assert torch.equal(state[key], expected)
    assert torch.equal(torch.as_tensor(state["step"]), torch.as_tensor(adam["step"]))
    # modules: the loser is a PrunedOp in every cell, the other candidates are the same modules as before
    x = torch.randn(2, 4, 8, 8)
    for (group, e), edges in method.instances.items():
        for edge, before in zip(edges, old_ops[(group, e)]):
            for o in range(5):
                if o == PRUNE_LOSERS[e]:
                    assert isinstance(edge.ops[o], PrunedOp)
                    assert not list(edge.ops[o].parameters()) and not list(edge.ops[o].buffers())
                else:
                    assert edge.ops[o] is before[o]
        with pytest.raises(RuntimeError, match="pruned"):
            edges[0].ops[PRUNE_LOSERS[e]](x)
    # SGD: the removed parameters and their momentum are gone, the others keep theirs
    group_ids = {id(p) for p in method.w_opt.param_groups[0]["params"]}
    assert group_ids == {id(p) for p in method.supernet.parameters()} == {id(p) for p in kept}
    assert not removed_ids & {id(p) for p in method.w_opt.state}
    for p in kept:
        assert torch.equal(method.w_opt.state[p]["momentum_buffer"], momentum[id(p)])
    # the history entry
    assert method.history == [entry]
    assert entry["after_epoch"] == 3 and entry["ops_per_edge"] == 4
    assert entry["removed"] == {"cell": ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3",
                                         "nor_conv_3x3"]}
    assert np.allclose(entry["indicator"]["cell"], expected_i, atol=1e-6)
    assert entry["op_corr_edges"] == 2  # smoke: corr_edges 2
    # the indicator now: pruned ops 0, β renormalised over the kept columns
    beta = softmax_rows(expected_alpha)
    now = np.zeros((6, 5))
    for e in range(6):
        now[e, keep_cols[e]] = beta[e] + 0.5 * PRUNE_ACC[e, keep_cols[e]]
    assert np.allclose(method.indicator()["cell"], now, atol=1e-6)


def test_train_step_after_pruning_samples_counts_and_updates_only_alive_ops(digits):
    method = make("nb201")
    data = SearchData(digits, method.cfg, 0, CPU)
    method.train_step(*first_batches(data, 1), 1)
    prune_losers(method, data, {"cell": [0, 1, 2, 3, 4, 0]})
    prune_losers(method, data, {"cell": [4, 3, 1, 0, 2, 2]})
    alive = [[1, 2, 3], [0, 2, 4], [0, 3, 4], [1, 2, 4], [0, 1, 3], [1, 3, 4]]
    assert method.alive["cell"] == alive
    n_before = method.iterations["cell"].copy()
    count_before = method.acc_count["cell"].copy()
    alpha_before = method.arch.params["cell"].detach().clone()
    samples, outputs, handles = record_forwards(method)
    wb, ab = first_batches(data, 2)
    method.train_step(wb, ab, 2)
    for h in handles:
        h.remove()
    alpha_after = method.arch.params["cell"]
    assert alpha_after.shape == (6, 3)
    assert (alpha_after.detach() != alpha_before).all()  # Adam moves every remaining entry
    w_ops, a_ops = ops_of(method, "cell", samples[0]["cell"]), ops_of(method, "cell", samples[1]["cell"])
    assert all(o in alive[e] for e, o in enumerate(w_ops))
    assert all(o in alive[e] for e, o in enumerate(a_ops))
    assert np.array_equal(method.iterations["cell"] - n_before, one_hot((6, 5), w_ops))
    assert np.array_equal(method.acc_count["cell"] - count_before, one_hot((6, 5), a_ops))
    acc = 100.0 * (outputs[1].argmax(1) == ab[1]).float().mean().item()
    assert np.allclose(method.acc_latest["cell"][np.arange(6), a_ops], acc)


def test_only_the_sampled_op_runs_before_and_after_pruning(digits):
    method = make("nb201")
    data = SearchData(digits, method.cfg, 0, CPU)
    calls, call_handles = count_op_calls([m for m in method.supernet.modules() if isinstance(m, GumbelEdge)])
    samples, _, handles = record_forwards(method)
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    method.supernet(x)
    assert calls == {(cell, e, c): 1 for cell in range(3) for e, c in enumerate(samples[-1]["cell"])}
    prune_losers(method, data, {"cell": [0, 1, 2, 3, 4, 0]})
    prune_losers(method, data, {"cell": [4, 3, 1, 0, 2, 2]})
    alive = method.alive["cell"]
    assert alive == [[1, 2, 3], [0, 2, 4], [0, 3, 4], [1, 2, 4], [0, 1, 3], [1, 3, 4]]
    seen = set()
    for _ in range(6):
        calls.clear()
        method.supernet(x)
        columns = samples[-1]["cell"]
        assert all(0 <= c < 3 for c in columns)  # the sample indexes the 3 remaining columns
        ops = [alive[e][c] for e, c in enumerate(columns)]
        assert calls == {(cell, e, o): 1 for cell in range(3) for e, o in enumerate(ops)}
        seen.update(zip(range(6), columns, ops))
    assert any(c != o for _, c, o in seen)  # the column → op map was exercised, not the identity
    for h in call_handles + handles:
        h.remove()


def test_darts_none_goes_when_two_ops_are_left_and_survivors_are_derived(digits):
    """Six crafted steps bring every edge to two ops (``none`` among them on the even normal edges and on
    every reduce edge); the last step drops ``none`` although its I is the highest, elsewhere the lower I."""
    method = make("darts", {"search_layers": "3", "search_channels": "2", **FAST_PRUNE})
    data = SearchData(digits, method.cfg, 0, CPU)
    assert method.schedule() == [2, 3, 4, 5, 6, 7, 8]
    order = {"normal": [[1, 2, 3, 5, 6, 7] if e % 2 == 0 else [0, 1, 2, 4, 6, 7] for e in range(14)],
             "reduce": [[1, 2, 3, 4, 5, 7]] * 14}
    for step in range(6):
        prune_losers(method, data, {g: [rows[e][step] for e in range(14)] for g, rows in order.items()},
                     after_epoch=2 + step)
    assert method.alive["normal"] == [[0, 4] if e % 2 == 0 else [3, 5] for e in range(14)]
    assert method.alive["reduce"] == [[0, 6]] * 14
    assert [tuple(a.shape) for a in method.arch_parameters()] == [(14, 2), (14, 2)]

    # none (column 0 where alive): α 2 against 0 and A 99; the survivor A = 2(e + 1); odd normal edges:
    # skip_connect A = 2(e + 1) against sep_conv_5x5 A = 0
    small = 2.0 * (np.arange(14) + 1)
    for group in ("normal", "reduce"):
        with_none = [e for e in range(14) if 0 in method.alive[group][e]]
        alpha = np.zeros((14, 2))
        alpha[with_none, 0] = 2.0
        set_alpha(method, group, alpha)
        acc = np.zeros((14, 8))
        for e in range(14):
            first, second = method.alive[group][e]
            acc[e, first], acc[e, second] = (99.0, small[e]) if first == 0 else (small[e], 0.0)
        set_evidence(method, group, acc)
    scores = method.indicator()
    beta_none = math.e ** 2 / (math.e ** 2 + 1)
    for e in range(0, 14, 2):
        assert scores["normal"][e, 0] == pytest.approx(beta_none + 49.5, abs=1e-6)
        assert scores["normal"][e, 0] > scores["normal"][e, 4]  # none would survive on I alone
    entry = method.prune_step(8, data)
    assert entry["removed"] == {"normal": ["none" if e % 2 == 0 else "sep_conv_5x5" for e in range(14)],
                                "reduce": ["none"] * 14}
    assert entry["ops_per_edge"] == 1 and entry["after_epoch"] == 8
    assert method.alive["normal"] == [[4] if e % 2 == 0 else [3] for e in range(14)]
    assert method.alive["reduce"] == [[6]] * 14
    assert len(method.history) == 7
    # importance = the decisive indicator: the survivor's I, 0 elsewhere
    beta_survivor = 1 / (math.e ** 2 + 1)
    for group, survivor in (("normal", lambda e: 4 if e % 2 == 0 else 3), ("reduce", lambda e: 6)):
        expected = np.zeros((14, 8))
        for e in range(14):
            beta = 0.5 if group == "normal" and e % 2 else beta_survivor
            expected[e, survivor(e)] = beta + 0.5 * small[e]
        assert np.allclose(method.importance()[group], expected, atol=1e-6)
    # the two strongest edges per node are the two with the highest index (I grows with e)
    op = {"normal": lambda e: "sep_conv_3x3" if e % 2 == 0 else "skip_connect", "reduce": lambda e: "dil_conv_3x3"}
    picks = [(1, 1), (0, 0), (4, 2), (3, 1), (8, 3), (7, 2), (13, 4), (12, 3)]  # (edge, source), strongest first
    genotype = method.derive()
    assert genotype.normal == [(op["normal"](e), s) for e, s in picks]
    assert genotype.reduce == [(op["reduce"](e), s) for e, s in picks]


# --- the schedule and a whole search ---------------------------------------------------------------------

@pytest.mark.parametrize("space, overrides, expected", [
    ("darts", {"search_epochs": "160", "warmup_epochs": "20"}, [40, 60, 80, 100, 120, 140, 160]),
    ("nb201", {"search_epochs": "160", "warmup_epochs": "20"}, [55, 90, 125, 160]),
    ("darts", {"search_epochs": "160", "warmup_epochs": "20", "pruning": "false"}, []),
    ("darts", {"search_epochs": "4", "warmup_epochs": "1"}, [2, 2, 3, 3, 4, 4, 4]),  # w + ⌈3j/7⌉
])
def test_schedule(space, overrides, expected):
    method = make(space, {"search_layers": "3", "search_channels": "2", **overrides} if space == "darts"
                  else overrides)
    assert method.schedule() == expected


def test_full_search_prunes_to_one_op_per_edge(digits):
    method = make("nb201")  # smoke: 8 epochs, 1 of warm-up: steps after epochs 3, 5, 7, 8
    data = SearchData(digits, method.cfg, 0, CPU)
    assert method.schedule() == [3, 5, 7, 8]
    metrics = [method.train_epoch(epoch, data) for epoch in range(8)]
    assert [m["ops_per_edge"] for m in metrics] == [5, 5, 4, 4, 3, 3, 2, 1]
    assert metrics[0]["tau"] == metrics[1]["tau"] == 5.0  # τ_max in the warm-up and the first architecture epoch
    assert metrics[-1]["tau"] == pytest.approx(0.01) and metrics[2]["tau"] < 5.0
    assert [h["after_epoch"] for h in method.history] == [3, 5, 7, 8]
    assert [h["ops_per_edge"] for h in method.history] == [4, 3, 2, 1]
    # every step removed the lowest I of the ops alive then (ties: the later op), each op at most once
    alive = [list(range(5)) for _ in range(6)]
    for h in method.history:
        scores = np.array(h["indicator"]["cell"])
        for e in range(6):
            assert all(scores[e, o] == 0 for o in range(5) if o not in alive[e])
            low = min(scores[e, o] for o in alive[e])
            loser = max(o for o in alive[e] if scores[e, o] == low)
            assert h["removed"]["cell"][e] == NB201_OPS[loser]
            alive[e].remove(loser)
    assert method.alive["cell"] == alive and all(len(ops) == 1 for ops in alive)
    assert method.arch.params["cell"].shape == (6, 1)
    # N: 2 weight steps per architecture epoch, zeroed after the steps at 3, 5, 7 but not after the last one
    # (epoch 8): epoch 8's 2; A: 2 architecture batches per epoch after the warm-up, never zeroed
    assert np.array_equal(method.iterations["cell"].sum(axis=1), [2] * 6)
    assert np.array_equal(method.acc_count["cell"].sum(axis=1), [14] * 6)
    # importance = the indicator that decided the last step, kept for the survivor only
    last = np.array(method.history[-1]["indicator"]["cell"])
    survivors = [ops[0] for ops in alive]
    expected = np.zeros((6, 5))
    expected[np.arange(6), survivors] = last[np.arange(6), survivors]
    assert np.array_equal(method.importance()["cell"], expected)
    assert (expected[np.arange(6), survivors] > 0).all()
    assert method.derive() == tuple(NB201_OPS[o] for o in survivors)
    assert metrics[-1]["genotype"] == method.space.to_str(method.derive())
    info = method.record_info()["pruning"]
    assert info["schedule"] == [3, 5, 7, 8] and info["ops_per_edge"] == 1
    assert info["alive"] == {"cell": [[NB201_OPS[o]] for o in survivors]}


def test_crowded_schedule_prunes_twice_after_one_epoch_on_the_indicator_left(digits):
    """E = 3, w = 1, four steps: after epochs 2, 2, 3, 3. With arch_lr 0 α stays 0, so β is uniform over the
    alive ops: the second step of an epoch sees I raised by 1/4 − 1/5 (then 1/2 − 1/3) on the remaining ops."""
    method = make("nb201", {"search_epochs": "3", "arch_lr": "0"})
    data = SearchData(digits, method.cfg, 0, CPU)
    assert method.schedule() == [2, 2, 3, 3]
    for epoch in range(3):
        method.train_epoch(epoch, data)
    assert [h["after_epoch"] for h in method.history] == [2, 2, 3, 3]
    assert [h["ops_per_edge"] for h in method.history] == [4, 3, 2, 1]
    assert torch.equal(method.arch.params["cell"], torch.zeros(6, 1))
    for first, second, raised in ((0, 1, 1 / 4 - 1 / 5), (2, 3, 1 / 2 - 1 / 3)):
        one, two = (np.array(method.history[i]["indicator"]["cell"]) for i in (first, second))
        for e in range(6):
            gone = NB201_OPS.index(method.history[first]["removed"]["cell"][e])
            assert two[e, gone] == 0.0
            remaining = [o for o in range(5) if two[e, o] != 0.0]
            assert len(remaining) == 4 - first
            assert np.allclose(two[e, remaining] - one[e, remaining], raised, atol=1e-6)


# --- derivation by I -------------------------------------------------------------------------------------

def test_darts_derivation_by_indicator_ignores_none():
    """none has A = 99 on every edge (it would win every edge and tie all strengths); on edge e the best
    non-none op is op 1 + (e mod 7) with A = 10 + e (normal) or op 1 + (3e mod 7) with A = 30 − e (reduce);
    α favours dil_conv_5x5 everywhere, which I outweighs."""
    method = make("darts", {"search_layers": "3", "search_channels": "2"})
    best = {"normal": lambda e: 1 + e % 7, "reduce": lambda e: 1 + (3 * e) % 7}
    strength = {"normal": lambda e: 10.0 + e, "reduce": lambda e: 30.0 - e}
    for group in ("normal", "reduce"):
        alpha = np.zeros((14, 8))
        alpha[:, 7] = 1.0
        set_alpha(method, group, alpha)
        acc = np.ones((14, 8))
        acc[:, 0] = 99.0
        for e in range(14):
            acc[e, best[group](e)] = strength[group](e)
        set_evidence(method, group, acc)
    genotype = method.derive()
    # normal: strength grows with e, so the last two edges of every node; reduce: the first two
    normal_picks = [(1, 1), (0, 0), (4, 2), (3, 1), (8, 3), (7, 2), (13, 4), (12, 3)]
    reduce_picks = [(0, 0), (1, 1), (2, 0), (3, 1), (5, 0), (6, 1), (9, 0), (10, 1)]
    assert genotype.normal == [(DARTS_OPS[best["normal"](e)], s) for e, s in normal_picks]
    assert genotype.reduce == [(DARTS_OPS[best["reduce"](e)], s) for e, s in reduce_picks]
    assert genotype.normal[:2] == [("avg_pool_3x3", 1), ("max_pool_3x3", 0)]


def test_nb201_derivation_by_indicator_allows_none():
    method = make("nb201")
    set_alpha(method, "cell", np.tile([0.0, 0.0, 0.0, 0.0, 3.0], (6, 1)))  # β alone would pick avg_pool_3x3
    set_evidence(method, "cell", [[90, 10, 20, 30, 40], [10, 20, 90, 30, 40], [10, 20, 30, 40, 90],
                                  [10, 90, 20, 30, 40], [10, 20, 30, 90, 40], [10, 70, 20, 70, 40]])
    # edge 5: skip_connect and nor_conv_3x3 tie (equal α, equal A): the earlier op wins
    assert method.derive() == ("none", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "nor_conv_3x3",
                               "skip_connect")


# --- ablations, checkpoints ----------------------------------------------------------------------------------

def test_pruning_false_keeps_every_op(digits):
    method = make("nb201", {"search_epochs": "3", "pruning": "false"})
    data = SearchData(digits, method.cfg, 0, CPU)
    assert method.schedule() == []
    metrics = [method.train_epoch(epoch, data) for epoch in range(3)]
    assert [m["ops_per_edge"] for m in metrics] == [5, 5, 5]
    assert method.history == []
    assert method.alive["cell"] == [list(range(5))] * 6
    assert method.arch.params["cell"].shape == (6, 5)
    assert not any(isinstance(m, PrunedOp) for m in method.supernet.modules())
    assert np.array_equal(method.iterations["cell"].sum(axis=1), [4] * 6)  # epochs 1 and 2: 2 weight steps each
    assert np.array_equal(method.acc_count["cell"].sum(axis=1), [4] * 6)
    assert np.array_equal(method.importance()["cell"], method.indicator()["cell"])
    assert (method.importance()["cell"] > 0).all()


def test_checkpoint_after_pruning_resumes_identically(digits):
    method = make("nb201", seed=1)
    data = SearchData(digits, method.cfg, 1, CPU)
    batches = list(zip(data.weight_batches(1), data.arch_batches(1)))
    method.train_step(*batches[0], 1)
    prune_losers(method, data, {"cell": [0, 1, 2, 3, 4, 3]})
    method.train_step(*batches[1], 1)
    prune_losers(method, data, {"cell": [4, 2, 3, 1, 0, 2]}, after_epoch=3)
    method.iterations["cell"][0, 1] += 7  # distinct from what set_evidence left, so the load is visible
    blob = checkpoints.dumps(method.state_dict())
    resumed = make("nb201", seed=1)
    resumed.load_state_dict(checkpoints.loads(blob))

    assert resumed.alive == method.alive == {"cell": [[1, 2, 3], [0, 3, 4], [0, 1, 4], [0, 2, 4], [1, 2, 3],
                                                      [0, 1, 4]]}
    assert resumed.arch.params["cell"].shape == (6, 3)
    assert torch.equal(resumed.arch.params["cell"], method.arch.params["cell"])
    assert resumed.a_opt.param_groups[0]["params"][0] is resumed.arch.params["cell"]
    for key in ("exp_avg", "exp_avg_sq"):
        assert torch.equal(resumed.a_opt.state[resumed.arch.params["cell"]][key],
                           method.a_opt.state[method.arch.params["cell"]][key])
    for key in ("iterations", "acc_sum", "acc_count", "acc_latest"):
        assert np.array_equal(getattr(resumed, key)["cell"], getattr(method, key)["cell"], equal_nan=True)
    assert resumed.history == method.history and len(resumed.history) == 2
    assert np.array_equal(resumed.indicator()["cell"], method.indicator()["cell"])
    for key, edges in resumed.instances.items():
        for edge in edges:
            assert [isinstance(op, PrunedOp) for op in edge.ops] == [o not in resumed.alive["cell"][key[1]]
                                                                     for o in range(5)]
    assert len(resumed.w_opt.param_groups[0]["params"]) == len(method.w_opt.param_groups[0]["params"])

    wb, ab = first_batches(data, 2)
    method.train_step(wb, ab, 2)
    resumed.train_step(wb, ab, 2)
    assert torch.equal(resumed.arch.params["cell"], method.arch.params["cell"])
    assert not torch.equal(resumed.arch.params["cell"], checkpoints.loads(blob)["alphas"]["cell"])
    for a, b in zip(method.supernet.state_dict().values(), resumed.supernet.state_dict().values()):
        assert torch.equal(a, b)
    assert np.array_equal(resumed.iterations["cell"], method.iterations["cell"])


# --- configuration -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, key", [
    ({"acc_stat": "bogus"}, "acc_stat"),
    ({"warmup_epochs": "8"}, "warmup_epochs"),  # smoke: search_epochs 8
    ({"search_epochs": "5", "warmup_epochs": "9"}, "warmup_epochs"),
    ({"tau_schedule": "bogus"}, "tau_schedule"),
])
def test_invalid_configuration_is_refused(overrides, key):
    with pytest.raises(UserError) as exc:
        eoinas_cfg("nb201", overrides)
    assert key in one_line(exc)


def test_defaults_are_the_papers():
    for space in ("darts", "nb201"):
        cfg = eoinas_cfg(space, budget="paper")
        assert {k: cfg[k] for k in ("tau_max", "tau_min", "tau_schedule", "arch_init_std", "search_epochs",
                                    "warmup_epochs", "indicator_lambda", "acc_stat", "pruning", "indicator",
                                    "count_reset")} == {
            "tau_max": 5.0, "tau_min": 0.01, "tau_schedule": "exponential", "arch_init_std": 0.0,
            "search_epochs": 160, "warmup_epochs": 20, "indicator_lambda": 0.5, "acc_stat": "mean",
            "pruning": True, "indicator": True, "count_reset": True}
    smoke = eoinas_cfg("nb201")
    assert (smoke["search_epochs"], smoke["warmup_epochs"]) == (8, 1)
    assert eoinas_cfg("nb201", {"warmup_epochs": "7"})["warmup_epochs"] == 7  # just below search_epochs
    method = make("darts", {"search_layers": "3", "search_channels": "2"}, seed=3)
    assert all(torch.equal(a, torch.zeros(14, 8)) for a in method.arch_parameters())
    assert method.tau == 5.0


def test_tau_is_annealed_exponentially_from_the_first_architecture_epoch():
    """As the reference code: τ_max through the warm-up and at the first architecture epoch w, then
    τ_e = 5 · (0.01 / 5)^((e − w) / (E − 1 − w)); here E = 5, w = 1 (smoke)."""
    method = make("nb201", {"search_epochs": "5"})
    # e = 0, 1: 5; e = 2: 5 · 0.002^(1/3); e = 3: 5 · 0.002^(2/3); e = 4: 0.01
    expected = [5.0, 5.0, 0.6299605249474366, 0.07937005259841, 0.01]
    assert [method.tau_at(e) for e in range(5)] == pytest.approx(expected, rel=1e-12)
    assert method.tau_at(int(method.cfg["warmup_epochs"])) == method.cfg["tau_max"]
    late = make("nb201", {"search_epochs": "5", "warmup_epochs": "3"})
    assert [late.tau_at(e) for e in range(5)] == pytest.approx([5.0, 5.0, 5.0, 5.0, 0.01], rel=1e-12)
    linear = make("nb201", {"search_epochs": "5", "tau_schedule": "linear"})
    assert linear.tau_at(1) == 5.0
    assert linear.tau_at(2) == pytest.approx(5.0 - 4.99 / 3)


def test_step_time_measures_a_step_with_the_architecture_step(digits):
    method = make("nb201")
    data = SearchData(digits, method.cfg, 0, CPU)
    samples, _, handles = record_forwards(method)
    method.step_time(data, steps=1)
    for h in handles:
        h.remove()
    assert len(samples) == 4  # a warm-up call and a timed call, each a weight and an architecture forward


# --- the architecture score ------------------------------------------------------------------------------

def test_architecture_score_is_the_sum_log_of_the_last_complete_indicator(digits):
    """Before pruning: Σ_e log(I[e, o_e] / Σ_o I[e, o]) of the current indicator. After full pruning: of the
    indicator that decided the first step (every op alive) — not of the importance, which keeps the survivor
    only and would score a Hamming distance to the derived cell."""
    method = make("nb201", FAST_PRUNE)
    data = SearchData(digits, method.cfg, 0, CPU)
    alpha = np.linspace(-1.0, 1.0, 30).reshape(6, 5)
    set_alpha(method, "cell", alpha)
    cells = [("skip_connect",) + ("none",) * 5, ("avg_pool_3x3",) + ("none",) * 5,  # both 1 edge from all-none
             ("nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1", "none"), ("none",) * 6]
    codes = np.array([[NB201_OPS.index(op) for op in cell] for cell in cells])

    def sum_log(indicator):  # the score by hand: per edge, log of the chosen op's share of the edge's indicator
        shares = indicator / indicator.sum(axis=1, keepdims=True)
        return np.array([sum(math.log(max(shares[e, c], 1e-30)) for e, c in enumerate(row)) for row in codes])

    set_evidence(method, "cell", np.full((6, 5), 50.0))
    current = method.indicator()["cell"]
    assert np.allclose(current, softmax_rows(alpha) + 25.0, atol=1e-6)
    assert method.score_architectures(cells) == pytest.approx(sum_log(current), rel=1e-12)

    for loser in (4, 3, 2, 1):  # avg_pool_3x3 first, ..., skip_connect last: `none` survives on every edge
        prune_losers(method, data, {"cell": [loser] * 6})
    assert method.ops_per_edge() == 1 and method.derive() == ("none",) * 6
    first = np.array(method.history[0]["indicator"]["cell"])
    assert (first > 0).all() and np.allclose(first[:, :4], softmax_rows(alpha)[:, :4] + 25.0, atol=1e-6)
    assert np.allclose(first[:, 4], softmax_rows(alpha)[:, 4], atol=1e-6)  # the first loser had A = 0
    scores = method.score_architectures(cells)
    assert scores == pytest.approx(sum_log(first), rel=1e-12)
    # not a function of the Hamming distance to the derived cell: cells 0 and 1 both differ on one edge
    assert scores[0] != pytest.approx(scores[1], rel=1e-6)
    assert scores[1] < scores[0]  # avg_pool_3x3 had the lowest indicator before pruning
    # ... which the Σ-log of the post-pruning importance would be: −69.08 per edge away from the derived cell
    hamming = sum_log(method.importance()["cell"])
    assert hamming[0] == hamming[1] == pytest.approx(math.log(1e-30)) and hamming[3] == 0.0
    # the importance (derivation, op-level correlation) is unchanged: the last step's indicator, survivors only
    last = np.array(method.history[-1]["indicator"]["cell"])
    assert np.array_equal(method.importance()["cell"][:, 0], last[:, 0])
    assert not method.importance()["cell"][:, 1:].any()
