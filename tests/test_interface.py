"""The space/method interface itself: candidates per edge on a space whose edges differ, genotypes with cells of
their own (per stage and per cell), network sizes owned by the space, and the layering rules (no method imports
a space, no generic harness module names a benchmark)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_TRIAL, tiny_overrides, trial_records
from helpers import one_line

from harness.core.config import resolve
from harness.core.data import DataInfo
from harness.core.errors import GenotypeError, UserError
from harness.core.registry import get_method, get_space
from spaces.darts import CellsGenotype, DartsSpace, reduction_positions
from spaces.nb201 import NB201Space
from spaces.ops import OPS

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
INFO = DataInfo(1, 10, 8)
SIZES = {"search_layers": "1", "search_channels": "4", "search_batch_size": "8"}


# --- layering --------------------------------------------------------------------------------------------

def test_no_method_imports_a_space_and_no_generic_module_names_a_benchmark():
    space_modules = {path.stem for path in (ROOT / "spaces").glob("*.py")} - {"__init__", "base", "ops"}
    for path in (ROOT / "methods").rglob("*.py"):
        imports = re.findall(r"^\s*(?:from|import)\s+spaces\.(\w+)", path.read_text(), flags=re.M)
        assert not set(imports) & space_modules, f"{path.name} imports a space: {imports}"
    for name in ("trial.py", "core/correlation.py", "leaderboard.py"):
        text = (ROOT / "harness" / name).read_text()
        assert not re.search(r"nb201|nas-bench", text, flags=re.I), f"harness/{name} names NAS-Bench-201"


def test_only_spaces_read_the_network_size_keys():
    for folder in ("harness", "methods"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            assert not re.search(r"\[[\"'](search|eval)_(layers|channels)[\"']\]", text), path


# --- candidates per edge ----------------------------------------------------------------------------------

class RaggedSpace(NB201Space):
    """NAS-Bench-201 with edges of their own candidates: edge 0 without ``none``, edge 5 with three ops, and
    ``none`` never a choice of edge 3 (a candidate that a genotype cannot keep, like DARTS's)."""

    CANDIDATES = {0: (1, 2, 3, 4), 5: (0, 2, 4)}

    def edge_ops(self, group: str, index: int) -> tuple[int, ...]:
        return self.CANDIDATES.get(index, (0, 1, 2, 3, 4))

    def choice_ops(self, group: str, index: int) -> tuple[int, ...]:
        return tuple(op for op in self.edge_ops(group, index) if not (index == 3 and op == 0))


def ragged_method(method: str, seed: int = 0):
    cfg = resolve(get_method(method), get_space("nb201"), "smoke", SIZES).values
    torch.manual_seed(seed)
    return get_method(method)(RaggedSpace(cfg), cfg, INFO, CPU, seed)


def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(8, 1, 8, 8, generator=generator), torch.randint(0, 10, (8,), generator=generator)


def candidate_modules(method) -> dict[int, int]:
    """Edge index → number of candidate modules, over every edge module of the supernet."""
    return {m.edge.index: len(m.ops) for m in method.supernet.modules() if hasattr(m, "edge")}


@pytest.mark.parametrize("name", ["darts", "gdas", "agnas", "proxyless"])
def test_methods_combine_only_each_edge_candidates(name):
    method = ragged_method(name)
    space = method.space
    assert candidate_modules(method) == {e: len(space.edge_ops("cell", e)) for e in range(6)}
    for step in range(2):
        method.train_step(batch(step), batch(step + 10), 0)
    if name == "agnas":
        method.measure_importance([batch(20)])
    importance = method.importance()["cell"]
    mask = space.candidate_mask()["cell"]
    assert mask.sum(axis=1).tolist() == [4, 5, 5, 5, 5, 3]
    assert np.all(importance[~mask] == 0) and np.all(importance[mask] > 0)
    if name != "agnas":  # softmax over the candidates
        assert importance.sum(axis=1) == pytest.approx(np.ones(6))
    genotype = method.derive()
    for e, op in enumerate(genotype):
        assert space.op_names.index(op) in space.choice_ops("cell", e)
    assert method.correlation_ops("cell", 3) == [1, 2, 3, 4] and method.correlation_ops("cell", 5) == [0, 2, 4]
    x, _ = batch(30)
    with method.discretised("cell", 5, 4):  # op 4 is the third candidate module of edge 5
        out = method.supernet(x)
    assert torch.isfinite(out[0] if isinstance(out, tuple) else out).all()


def test_gdas_samples_only_candidates():
    method = ragged_method("gdas")
    seen = {e: set() for e in range(6)}
    for _ in range(200):
        method.resample()
        for e, column in enumerate(method.current["cell"][1]):
            seen[e].add(method.op_at("cell", e, column))
    assert seen[0] == {1, 2, 3, 4} and seen[5] == {0, 2, 4} and seen[1] == {0, 1, 2, 3, 4}


def test_derivation_and_sampler_use_the_edge_choices():
    space = RaggedSpace(resolve(get_method("darts"), get_space("nb201"), "smoke").values)
    scores = np.zeros((6, 5))
    scores[:, 0] = 10.0  # 'none' best everywhere: kept only where it is a choice
    scores[:, 3] = 5.0
    # edge 0 has no 'none'; on edge 3 it is a candidate but no choice
    assert space.derive({"cell": scores}) == ("nor_conv_3x3", "none", "none", "nor_conv_3x3", "none", "none")
    scores[5] = 0.0
    scores[5, 1] = 20.0  # op 1 (skip_connect) is no candidate of edge 5: its candidates tie, the first wins
    assert space.derive({"cell": scores})[5] == "none"
    rng = np.random.default_rng(0)
    drawn = [space.sample(rng) for _ in range(300)]
    for e in range(6):
        assert {space.op_names.index(g[e]) for g in drawn} == set(space.choice_ops("cell", e))


# --- cells of their own -----------------------------------------------------------------------------------

def darts_space(**values) -> DartsSpace:
    cfg = resolve(get_method("agnas"), get_space("darts"), "smoke",
                  {key: str(value) for key, value in values.items()}).values
    return DartsSpace(cfg)


def one_op_cell(op: str) -> list[tuple[str, int]]:
    return [(op, s) for node in range(2, 6) for s in (0, 1)]


def per_cell_scores(layers: int) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Search cell c prefers op 1 + c % 7 everywhere."""
    reductions = reduction_positions(layers)
    scores = {}
    for c in range(layers):
        matrix = np.zeros((14, 8))
        matrix[:, 1 + c % 7] = 1.0
        matrix[[0, 1, 2, 3, 5, 6, 9, 10], 1 + c % 7] = 2.0  # sources 0 and 1 strongest
        scores[c] = matrix
    return scores, {c: "reduce" if c in reductions else "normal" for c in range(layers)}


def test_stage_cells_each_derives_one_cell_per_position_with_an_exact_string_round_trip():
    space = darts_space(search_layers=5, eval_layers=5, stage_cells="each")
    scores, groups = per_cell_scores(5)
    genotype = space.derive_cells(scores, groups)
    names = space.op_names
    assert genotype == CellsGenotype(normal=[one_op_cell(names[1]), one_op_cell(names[3]), one_op_cell(names[5])],
                                     reduce=[one_op_cell(names[2]), one_op_cell(names[4])], per="cell")
    text = space.to_str(genotype)
    assert text.startswith("PerCellGenotype(normal=[[") and space.to_str(space.parse(text)) == text
    assert space.parse(text) == genotype and repr(genotype) == text
    described = space.describe_cells(scores, groups)
    assert described["stage_cells"] == {"rule": "each", "normal": [0, 2, 4], "reduce": [1, 3]}
    assert [described["cells"][c]["used_for"] for c in range(5)] == [[f"final cell {c}"] for c in range(5)]


def test_a_per_cell_network_builds_each_position_from_its_own_cell():
    space = darts_space(search_layers=5, eval_layers=5, stage_cells="each")
    genotype = space.derive_cells(*per_cell_scores(5))
    net = space.build_network(genotype, INFO, "eval", auxiliary=False)
    reductions = reduction_positions(5)
    built = [type(cell.ops[0]).__name__ for cell in net.cells]  # each cell's first op (on source 0)
    chosen = [type(OPS[space.op_names[1 + p % 7]](4, 2 if p in reductions else 1, True)).__name__ for p in range(5)]
    assert built == chosen  # position p is built by search cell p (op 1 + p)
    assert net(torch.randn(2, 1, 8, 8))[0].shape == (2, 10)
    with pytest.raises(GenotypeError) as err:
        darts_space(search_layers=5, eval_layers=6, stage_cells="first").build_network(genotype, INFO, "eval")
    assert "builds a network of 5 cells, not 6" in one_line(err)


SKIPS = [("skip_connect", 0), ("skip_connect", 1)] * 4


@pytest.mark.parametrize("text, problem", [
    (f"PerCellGenotype(normal=[], reduce={[SKIPS] * 2!r})", "normal must be a list of at least 1 cell"),
    (f"PerCellGenotype(normal={[SKIPS]!r}, reduce={[SKIPS]!r})", "reduce must be a list of 2 cells"),
    (f"PerCellGenotype(normal={[[('none', 0)] + SKIPS[1:]]!r}, reduce={[SKIPS] * 2!r})", "uses 'none'"),
])
def test_malformed_per_cell_strings_are_refused_with_one_line(text, problem):
    with pytest.raises(GenotypeError) as err:
        darts_space().parse(text)
    assert problem in one_line(err) and "PerCellGenotype(normal=" in one_line(err)


def test_stage_cells_each_needs_as_many_final_cells_as_search_cells():
    with pytest.raises(UserError) as err:
        darts_space(search_layers=5, eval_layers=8, stage_cells="each")
    assert "stage_cells=each" in one_line(err) and "eval_layers = search_layers" in one_line(err)
    assert "stage_cells" not in resolve(get_method("darts"), get_space("darts"), "smoke").values  # shared α


# --- sizes -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("space_name", ["darts", "hetero", "nb201"])
def test_build_network_sizes(space_name):
    cfg = resolve(get_method("darts"), get_space(space_name), "smoke",
                  {"search_layers": "3", "search_channels": "2", "eval_layers": "4", "eval_channels": "3"}).values
    space = get_space(space_name)(cfg)
    genotype = space.sample(np.random.default_rng(0))

    def cells_and_stem(size: str) -> tuple[int, int]:
        net = space.build_network(genotype, INFO, size)
        convs = [m for m in net.stem.modules() if isinstance(m, torch.nn.Conv2d)]
        return len(net.cells), convs[0].out_channels

    per_stage = space_name == "nb201"  # its layers are cells per stage, plus two residual blocks
    stem = 1 if per_stage else 3  # the DARTS skeleton's stem has 3 × C channels

    def expect(layers: int, channels: int) -> tuple[int, int]:
        return (3 * layers + 2 if per_stage else layers), stem * channels
    paper = space.defaults
    assert cells_and_stem("search") == expect(3, 2)
    assert cells_and_stem("eval") == expect(4, 3)
    assert cells_and_stem("paper") == expect(paper["eval_layers"], paper["eval_channels"])
    with pytest.raises(ValueError, match="unknown network size"):
        space.build_network(genotype, INFO, "huge")


def test_agnas_trial_with_one_cell_per_position_trains_its_per_cell_network(tmp_path):
    """stage_cells=each end to end, in-process: the record's genotype is a PerCellGenotype of the search network's
    cells built from each search cell's own importance, and the final network learns (digits, 10 classes)."""
    sets = {**tiny_overrides("agnas", "darts", TINY_TRIAL), "search_layers": "3", "eval_layers": "3",
            "stage_cells": "each"}
    (record,) = trial_records("agnas", "darts", tmp_path, "each", 1, *(f"{k}={v}" for k, v in sets.items()))
    space = DartsSpace(record["config"])
    genotype = space.parse(record["genotype"])
    assert genotype.per == "cell" and record["genotype"].startswith("PerCellGenotype(")
    cells = {c["cell"]: c for c in record["cells"]}
    assert genotype.normal == [[tuple(p) for p in cells[0]["genotype"]]]  # 3 cells: normal, reduce, reduce
    assert genotype.reduce == [[tuple(p) for p in cells[c]["genotype"]] for c in (1, 2)]
    assert [cells[c]["used_for"] for c in range(3)] == [["final cell 0"], ["final cell 1"], ["final cell 2"]]
    assert record["stage_cells"] == {"rule": "each", "normal": [0], "reduce": [1, 2]}
    assert 10.0 < record["test_acc"] <= 100.0


def test_the_record_display_reads_a_per_cell_genotype():
    from harness.core.records import genotype_lines

    text = repr(CellsGenotype(normal=[SKIPS, SKIPS], reduce=[SKIPS, SKIPS], per="cell"))
    lines = genotype_lines(text)
    titles = [line for line in lines if not line.startswith(" ")]
    assert titles == ["normal cell 1:", "normal cell 2:", "reduction cell 1:", "reduction cell 2:"]
    assert lines[1] == "  node 2 ← (skip_connect, 0), (skip_connect, 1)" and len(lines) == 4 * 5
