"""ADWPNAS: stability and superiority on hand-made sequences, the intensive space and the kept epoch, the
GeneratingBlock and a conv that uses exactly its generated kernels, the gates of each phase counted on a tiny
network, the probabilities (Eq. 4) and their discretisation, per-cell derivation, the architecture score with
predicted weights, the configuration's rules and a checkpoint across the phase change
(``methods/adwpnas.py``'s docstring is the specification)."""

from __future__ import annotations

import math
from contextlib import ExitStack

import numpy as np
import pytest
import torch
from helpers import one_line
from torch import nn

from harness import checkpoints
from harness.core.config import resolve
from harness.core.data import DataInfo, SearchData, load_dataset
from harness.core.errors import UserError
from harness.core.registry import get_method, get_space
from harness.core.train import batch_statistics, measure, rng_state, set_rng_state
from methods.adwpnas import GeneratedOp, GeneratingBlock, HyperEdge, intensive_space, stability, superiority
from methods.base import genotype_edges
from spaces.darts import CellsGenotype
from spaces.ops import OPS, DilConv, SepConv

CPU = torch.device("cpu")
DIGITS = DataInfo(1, 10, 8)
TINY = {"search_layers": "3", "eval_layers": "3", "search_channels": "2", "search_batch_size": "16",
        "intensive_epochs": "1", "intensive_n": "0", "hyper_epochs": "1", "cross_start": "2", "cross_end": "3",
        "search_epochs": "4"}


def adwp_cfg(space: str = "darts", overrides: dict[str, str] | None = None) -> dict:
    base = TINY if space == "darts" else {k: v for k, v in TINY.items() if not k.startswith("intensive")
                                         and k != "eval_layers"}
    return resolve(get_method("adwpnas"), get_space(space), "smoke", {**base, **(overrides or {})}).values


def make(space: str = "darts", overrides: dict[str, str] | None = None, seed: int = 0):
    cfg = adwp_cfg(space, overrides)
    torch.manual_seed(seed)
    return get_method("adwpnas")(get_space(space)(cfg), cfg, DIGITS, CPU, seed)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def data_for(digits, cfg: dict, images: int = 64) -> SearchData:
    return SearchData(digits.limited(images), cfg, 0, CPU)


# --- stability and superiority ------------------------------------------------------------------------------

A = [[(0, 1), (0, 2), (1, 3)], [(2, 1), (3, 1), (4, 1)]]  # two nodes, K = 3
B = [[(0, 1), (0, 2), (1, 4)], [(2, 1), (3, 1), (4, 1)]]  # one pair of node 0 changed
C = [[(0, 1), (1, 5), (1, 4)], [(2, 1), (3, 2), (4, 1)]]  # against A: 2 + 1 changed; against B: 1 + 1


def test_stability_counts_the_changed_pairs_over_m_times_k():
    assert stability(A, A, 3) == 1.0
    assert stability(A, B, 3) == pytest.approx(1 - 1 / 6)
    assert stability(A, C, 3) == pytest.approx(1 - 3 / 6)
    assert stability(B, C, 3) == pytest.approx(1 - 2 / 6)
    assert stability(A, [list(reversed(A[0])), A[1]], 3) == 1.0  # a set: the order of the pairs is no change


def test_superiority_backtracks_n_epochs():
    spaces, accs = [A, B, C], [0.5, 0.6, 0.8]
    assert superiority(spaces, accs, 0, 2, 3) is None and superiority(spaces, accs, 1, 2, 3) is None
    # S(O*_2) = s(O2, O2)·ε2 · s(O1, O2)·ε1 · s(O0, O2)·ε0
    assert superiority(spaces, accs, 2, 2, 3) == pytest.approx((1 * 0.8) * (4 / 6 * 0.6) * (3 / 6 * 0.5))
    assert superiority(spaces, accs, 2, 1, 3) == pytest.approx(0.8 * (4 / 6 * 0.6))
    assert superiority(spaces, accs, 1, 0, 3) == pytest.approx(0.6)  # n = 0: the accuracy alone
    # the paper's property: 1 when nothing changed and the accuracy is 100 %
    assert superiority([A, A, A], [1.0, 1.0, 1.0], 2, 2, 3) == 1.0


def test_intensive_space_takes_the_k_most_likely_pairs_of_each_node():
    space = get_space("darts")(adwp_cfg())
    units = space.choice_units("normal")
    assert units == [(0, 1), (2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12, 13)]
    probs = np.zeros((14, 8))
    probs[0, 1:] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]  # node 2: edge 0 holds its 7 best pairs ...
    probs[1, 4] = 0.05  # ... edge 1 a weaker one
    probs[0, 0] = probs[2, 0] = 9.0  # `none` is never part of the intensive space
    probs[2:5, 1:] = 0.2  # node 3: all equal: the lower edge, then the lower op (and a second edge)
    probs[9:14, 7] = [0.1, 0.9, 0.8, 0.3, 0.2]
    spaces = intensive_space(probs, units, lambda e: space.choice_ops("normal", e), 3)
    # node 2: the top 3 leave one edge, so the lowest-ranked (0, 5) gives way to edge 1's best pair
    assert spaces[0] == [(0, 6), (0, 7), (1, 4)]
    assert spaces[1] == [(2, 1), (2, 2), (3, 1)]
    assert spaces[3] == [(10, 7), (11, 7), (12, 7)]
    assert all(op != 0 for unit in spaces for _, op in unit)


def test_the_kept_intensive_space_is_the_epoch_with_the_highest_superiority():
    method = make(overrides={"intensive_epochs": "3", "intensive_n": "1", "intensive_k": "2"})
    rng = np.random.default_rng(0)
    probs = [{g: rng.uniform(size=(14, 8)) for g in ("normal", "reduce")} for _ in range(3)]
    probs[2]["reduce"] = probs[1]["reduce"]  # reduce: epoch 2 = epoch 1, fully stable
    accs = [40.0, 50.0, 45.0]
    for epoch in range(3):
        method.darts.importance = lambda epoch=epoch: probs[epoch]
        metrics = method.record_intensive(epoch, accs[epoch])
    curve = method.intensive["epochs"]
    assert curve[0]["superiority"] == {"normal": None, "reduce": None}
    for group in ("normal", "reduce"):
        s = [None] + [stability(curve[t - 1]["spaces"][group], curve[t]["spaces"][group], 2)
                      * accs[t] / 100 * accs[t - 1] / 100 for t in (1, 2)]
        assert [c["superiority"][group] for c in curve] == [None, pytest.approx(s[1]), pytest.approx(s[2])]
        best = 1 if s[1] > s[2] else 2
        assert method.intensive["chosen"][group]["epoch"] == best
        assert method.intensive["chosen"][group]["space"] == curve[best]["spaces"][group]
    assert method.intensive["chosen"]["reduce"]["epoch"] == 2  # 0.45·0.5·1 > 0.5·0.4·s ≤ 0.2
    assert metrics == {f"superiority_{g}": curve[2]["superiority"][g] for g in ("normal", "reduce")}


# --- the GeneratingBlock and its conv ------------------------------------------------------------------------

def test_generating_block_gives_every_kernel_its_shape():
    shapes = [torch.Size([4, 1, 3, 3]), torch.Size([6, 4, 1, 1])]
    block = GeneratingBlock(24, shapes, 64)
    assert (block.fc1.in_features, block.fc1.out_features) == (24, 64)
    assert (block.fc2.in_features, block.fc2.out_features) == (64, 4 * 9 + 6 * 4)
    code = torch.softmax(torch.randn(24), 0)
    kernels = block(code)
    assert [k.shape for k in kernels] == shapes
    flat = block.fc2(block.fc1(code))  # two FC layers, no activation between them
    assert torch.equal(torch.cat([k.reshape(-1) for k in kernels]), flat)


@pytest.mark.parametrize("make_op", [lambda: DilConv(4, 4, 3, 1, 2, 2, affine=False),
                                     lambda: SepConv(4, 4, 3, 2, 1, affine=False)])
def test_a_generated_conv_uses_exactly_the_generated_kernels(make_op):
    torch.manual_seed(0)
    plain = make_op()
    op = GeneratedOp(make_op(), 10, 8)
    convs = [m for m in op.op.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(conv.weight is None for conv in convs)
    assert not [name for name, _ in op.op.named_parameters()]  # no stored kernel: nothing else can learn
    code = torch.softmax(torch.randn(10), 0)
    x = torch.randn(2, 4, 8, 8)
    kernels = op.generator(code)
    # the same op with its convs given those kernels by hand
    for conv, kernel in zip([m for m in plain.modules() if isinstance(m, nn.Conv2d)], kernels):
        conv.weight = nn.Parameter(kernel.detach().clone())
    plain.train(), op.train()
    out = op(x, code)
    assert torch.allclose(out, plain(x), atol=1e-6)
    assert all(conv.weight is None for conv in convs)  # nothing kept after the pass
    out.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in op.generator.parameters())


def test_the_gradient_of_the_code_reaches_alpha_through_the_generator():
    op = GeneratedOp(OPS["nor_conv_3x3"](3, 1, False), 5, 4)
    alpha = torch.zeros(5, requires_grad=True)
    op(torch.randn(2, 3, 6, 6), torch.softmax(alpha * 3, 0)).sum().backward()
    assert alpha.grad is not None and alpha.grad.abs().sum() > 0


# --- phases and gates ----------------------------------------------------------------------------------------

def snapshot(method) -> dict[str, dict[str, torch.Tensor]]:
    """The HyperNetwork's parameters by kind: the GeneratingBlocks, the skeleton's own layers, and α."""
    kinds = {"generators": {}, "skeleton": {}}
    for name, p in method.supernet.named_parameters():
        kinds["generators" if ".generator." in name else "skeleton"][name] = p.detach().clone()
    kinds["alpha"] = {"alpha": method.arch.params["alpha"].detach().clone()}
    return kinds


def changed(before, after) -> dict[str, int]:
    return {kind: sum(not torch.equal(before[kind][n], after[kind][n]) for n in before[kind]) for kind in before}


def test_each_phase_trains_what_the_paper_says(digits):
    method = make()
    data = data_for(digits, method.cfg)
    assert [method.phase(e) for e in range(method.num_epochs())] == ["intensive", "hyper", "search", "cross", "search"]
    weight, arch = next(iter(data.weight_batches(0))), next(iter(data.arch_batches(0)))
    darts_alpha = {g: a.detach().clone() for g, a in method.darts.arch.params.items()}
    method.train_epoch(0, data)  # phase 1: DARTS, both levels
    assert all(not torch.equal(darts_alpha[g], a) for g, a in method.darts.arch.params.items())
    method.train_epoch(1, data)  # builds the HyperNetwork over the kept intensive spaces
    assert method.darts is None and method.state is not None
    generators = [m for m in method.supernet.modules() if isinstance(m, GeneratingBlock)]
    edges = [m for m in method.supernet.modules() if isinstance(m, HyperEdge)]
    assert len(generators) == sum(isinstance(op, GeneratedOp) for e in edges for op in e.ops) > 0
    n_gen, n_skel = len(snapshot(method)["generators"]), len(snapshot(method)["skeleton"])
    for epoch, expected in ((1, {"generators": n_gen, "skeleton": n_skel, "alpha": 0}),
                            (2, {"generators": 0, "skeleton": 0, "alpha": 1}),
                            (3, {"generators": n_gen, "skeleton": n_skel, "alpha": 1})):
        before = snapshot(method)
        method.train_step(weight, arch, epoch)
        assert changed(before, snapshot(method)) == expected, method.phase(epoch)


def test_hypernetwork_training_draws_a_new_random_alpha_every_step(digits, monkeypatch):
    method = make("nb201")
    data = data_for(digits, method.cfg)
    seen = []
    original = method.encode
    monkeypatch.setattr(method.state, "encode", lambda: seen.append(method.random_alpha) or original())
    weight = next(iter(data.weight_batches(0)))
    method.train_step(weight, None, 0)
    method.train_step(weight, None, 0)
    assert len(seen) == 2 and all(a is not None for a in seen) and not torch.equal(seen[0], seen[1])
    assert method.random_alpha is None  # α_arch is what every other pass reads


# --- probabilities, discretisation, derivation ----------------------------------------------------------------

def test_probabilities_are_a_softmax_per_node_and_discretisation_makes_an_edge_one_hot(digits):
    method = make()
    method.train_epoch(0, data_for(digits, method.cfg))
    method.build_hypernetwork(method.chosen_spaces())
    with torch.no_grad():
        method.arch.params["alpha"].normal_()
    alpha = method.arch.params["alpha"].detach()
    probs = method.probabilities(alpha)
    for row, cell in enumerate(method.cells):
        units = method.spaces[method.cell_groups[cell]]
        start = 0
        for unit in units:
            block = slice(start, start + len(unit))
            assert torch.allclose(probs[row, block], torch.softmax(alpha[row, block], 0))
            start += len(unit)
    group, (edge, op) = "normal", method.layout["normal"][0]
    forced = method.probabilities(alpha, {(group, edge): op})
    for row, cell in enumerate(method.cells):
        for k, (e, o) in enumerate(method.layout[method.cell_groups[cell]]):
            if method.cell_groups[cell] == group and e == edge:
                assert forced[row, k] == (1.0 if o == op else 0.0)
            else:
                assert forced[row, k] == probs[row, k]


def test_each_cell_gets_its_own_genotype_from_its_own_alpha(digits):
    method = make()
    method.train_epoch(0, data_for(digits, method.cfg))
    method.build_hypernetwork(method.chosen_spaces())
    rng = np.random.default_rng(1)
    with torch.no_grad():
        method.arch.params["alpha"].copy_(torch.as_tensor(rng.normal(size=method.arch.params["alpha"].shape) * 3))
    genotype = method.derive()
    assert isinstance(genotype, CellsGenotype) and genotype.per == "cell"
    scores = method.cell_scores()
    by_cell = {c: method.space.derive_cell(scores[c], group=method.cell_groups[c]) for c in method.cells}
    normal = [c for c in method.cells if method.cell_groups[c] == "normal"]
    reduce = [c for c in method.cells if method.cell_groups[c] == "reduce"]
    assert genotype.normal == [by_cell[c] for c in normal] and genotype.reduce == [by_cell[c] for c in reduce]
    for c in method.cells:  # per node: the two most likely pairs with distinct inputs, all in the intensive space
        pairs = method.layout[method.cell_groups[c]]
        row = method.cells.index(c)
        p = method.probabilities(method.arch.params["alpha"].detach())[row].numpy()
        chosen, start = by_cell[c], 0
        for node, unit in enumerate(method.spaces[method.cell_groups[c]]):
            ranked = sorted(range(start, start + len(unit)), key=lambda k: -p[k])
            first = pairs[ranked[0]]
            second = next(pairs[k] for k in ranked if pairs[k][0] != first[0])
            sources = [e - sum(range(2, 2 + node)) for e, _ in (first, second)]
            names = [method.space.op_names[o] for _, o in (first, second)]
            assert chosen[2 * node:2 * node + 2] == list(zip(names, sources))
            start += len(unit)
    text = method.space.to_str(genotype)
    assert text.startswith("PerCellGenotype(") and method.space.to_str(method.space.parse(text)) == text


def test_architecture_score_is_the_accuracy_with_predicted_weights(digits):
    method = make("nb201")
    data = data_for(digits, method.cfg, 128)
    method.train_epoch(0, data)
    table = method.space.benchmark()
    genotypes = table.genotypes(np.array([0, 7000, 15624]))
    scores = method.score_architectures(genotypes, data)
    batches = data.val_batches(limit_batches=int(method.cfg["corr_batches"]))
    expected = []  # by hand: every edge discretised to the cell's op, batch statistics
    for cell in genotype_edges(method.space, genotypes):
        with batch_statistics(method.supernet), ExitStack() as stack:
            for group, edge, op in cell:
                stack.enter_context(method.discretised(group, edge, op))
            expected.append(measure(method.supernet, batches)[1])
    assert scores.tolist() == expected
    assert method.score_architectures(genotypes) is None  # no data, no measurement
    # under full discretisation the GeneratingBlocks read the cell's one-hot encoding
    cell = method.space.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|")
    seen = []
    hooks = [m.register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone()))
             for m in method.supernet.modules() if isinstance(m, GeneratingBlock)]
    method.discrete_accuracies([cell], [next(iter(batches))])
    for hook in hooks:
        hook.remove()
    expected = torch.zeros(6, 5)
    for _, edge, op in genotype_edges(method.space, [cell])[0]:
        expected[edge, op] = 1.0
    assert len(seen) == 3 * 9  # the cell's three convs, in each of the 9 cells (3 per stage)
    assert all(torch.equal(code, expected.reshape(-1)) for code in seen)


# --- configuration and checkpoints ---------------------------------------------------------------------------

@pytest.mark.parametrize("overrides,words", [
    ({"hyper_epochs": "4"}, "hyper_epochs < search_epochs"),
    ({"hyper_epochs": "0"}, "hyper_epochs=0 is out of range: int >= 1"),
    ({"hyper_epochs": "2", "cross_start": "1"}, "cross-search window"),
    ({"cross_end": "5"}, "cross-search window"),
    ({"intensive_n": "1"}, "must exceed it"),
    ({"intensive_k": "15"}, "exceeds the 14 (edge, op) pairs"),
])
def test_impossible_settings_are_refused_with_one_line(overrides, words):
    with pytest.raises(UserError) as exc:
        adwp_cfg("darts", overrides)
    assert words in one_line(exc)


def test_paper_values_and_the_spaces_own_network_sizes():
    paper = resolve(get_method("adwpnas"), get_space("darts"), "paper", {}).values
    assert {k: paper[k] for k in ("intensive_epochs", "intensive_k", "intensive_n", "hyper_epochs", "cross_start",
                                  "cross_end", "search_epochs", "generator_hidden", "arch_lr", "arch_beta1",
                                  "arch_weight_decay", "w_lr")} == {
        "intensive_epochs": 30, "intensive_k": 6, "intensive_n": 2, "hyper_epochs": 60, "cross_start": 90,
        "cross_end": 100, "search_epochs": 120, "generator_hidden": 64, "arch_lr": 3e-4, "arch_beta1": 0.5,
        "arch_weight_decay": 1e-3, "w_lr": 0.025}
    darts = resolve(get_method("darts"), get_space("darts"), "paper", {}).values
    for key in ("search_layers", "search_channels", "eval_layers", "eval_channels", "eval_epochs", "drop_path"):
        assert paper[key] == darts[key], key  # the evaluation protocol and network sizes are the space's
    assert "stage_cells" not in paper  # no stage rule: every HyperNetwork cell is a final cell
    nb201 = resolve(get_method("adwpnas"), get_space("nb201"), "small", {}).values
    assert "intensive_epochs" not in nb201


def test_the_intensive_space_and_the_hypernetwork_have_the_final_networks_cells(digits):
    """The paper derives O*_8 from an 8-cell and O*_14 from a 14-cell supernet for its 8- and 14-cell
    HyperNetworks: phase 1's DARTS supernet has ``eval_layers`` cells (reductions at its 1/3 and 2/3), at the
    search width, whatever ``search_layers`` says."""
    method = make(overrides={"search_layers": "3", "eval_layers": "5", "search_channels": "3"})
    cells = method.supernet.cells  # phase 1
    assert len(cells) == 5 and [c.reduction for c in cells] == [False, True, False, True, False]
    assert cells[0].preprocess1.op[1].out_channels == 3
    method.train_epoch(0, data_for(digits, method.cfg))
    method.build_hypernetwork(method.chosen_spaces())
    cells = method.supernet.body.cells
    assert len(cells) == 5 and method.cells == [0, 1, 2, 3, 4]
    assert cells[0].preprocess1.op[1].out_channels == 3  # the search width
    genotype = method.derive()
    assert genotype.per == "cell" and (len(genotype.normal), len(genotype.reduce)) == (3, 2)
    net = method.space.build_network(genotype, DIGITS, "eval")
    assert len(net.cells) == 5
    assert [method.cell_groups[c] for c in method.cells] == ["normal", "reduce", "normal", "reduce", "normal"]


def test_checkpoint_across_the_phase_change_continues_exactly(digits):
    method = make()
    data = data_for(digits, method.cfg)
    method.train_epoch(0, data)
    blob, rng = checkpoints.dumps(method.state_dict()), rng_state()
    first = [method.train_epoch(e, data) for e in (1, 2)]
    resumed = make(seed=5)
    resumed.load_state_dict(checkpoints.loads(blob))
    set_rng_state(rng)
    again = [resumed.train_epoch(e, data) for e in (1, 2)]
    assert [{k: v for k, v in m.items()} for m in again] == first
    blob2 = checkpoints.dumps(method.state_dict())  # a HyperNetwork state loads into a fresh (phase 1) method
    fresh = make(seed=9)
    fresh.load_state_dict(checkpoints.loads(blob2))
    assert torch.equal(fresh.arch.params["alpha"], method.arch.params["alpha"])
    assert fresh.space.to_str(fresh.derive()) == method.space.to_str(method.derive())
    assert fresh.intensive["chosen"] == method.intensive["chosen"]


def test_record_info_carries_phases_costs_and_spaces(digits):
    method = make()
    data = data_for(digits, method.cfg)
    for epoch in range(method.num_epochs()):
        method.train_epoch(epoch, data)
    info = method.record_info()["adwpnas"]
    assert info["phase_epochs"] == {"intensive": 1, "hyper": 1, "cross": [2, 3], "total": 4}
    assert all(info["phase_seconds"][p] > 0 for p in ("intensive", "hyper", "search"))
    assert info["search_seconds_without_intensive"] == pytest.approx(info["phase_seconds"]["hyper"]
                                                                      + info["phase_seconds"]["search"])
    chosen = info["intensive"]["chosen"]
    assert sorted(chosen) == ["normal", "reduce"]
    for group in chosen:
        assert [len(unit) for unit in chosen[group]["space"]] == [6, 6, 6, 6]
        assert all(op != "none" for unit in chosen[group]["space"] for _, op in unit)
    assert info["generating_blocks"] > 0 and info["generator_params_m"] > 0
    assert len(method.record_info()["cells"]) == 3 and math.isfinite(info["intensive"]["curve"][0]["val_acc"])
