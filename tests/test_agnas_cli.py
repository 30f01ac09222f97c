"""End-to-end (smoke budget, digits; the trials in-process as ``run`` specifies them, ``conftest.trial_records``:
a run through Ray is test_cli.py's; ``show``, ``leaderboard`` and the refusals through the CLI): AGNAS on the
DARTS space (per-cell genotypes, the per-stage final network, the record) and on NAS-Bench-201 (averaged
importance, benchmark figures, architecture-level correlation, leaderboard rows), and refused AGNAS settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import trial_records

from harness.cli import main
from harness.core.benchmarks.base import sample_indices
from harness.core.benchmarks.nb201 import load_table
from harness.core.benchmarks.nb201_arch import NB201_OPS, parse_arch
from harness.core.correlation import ARCH_SAMPLE_SEED
from harness.core.metrics import rank_correlation
from harness.core.records import record_filename
from harness.core.registry import get_space
from methods.base import log_normalised
from spaces.darts import DARTS_OPS, StagedGenotype

pytestmark = pytest.mark.slow  # whole trials through the CLI


def run(space: str, out: Path, seeds: int, *sets: str) -> list[dict]:
    return trial_records("agnas", space, out, space, seeds, *sets)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("agnas")


def test_agnas_darts_derives_a_cell_per_search_cell_and_trains_the_staged_network(out, capsys):
    (rec,) = run("darts", out, 1, "search_epochs=1", "eval_epochs=2")
    space = get_space("darts")(rec["config"])
    genotype = space.parse(rec["genotype"])
    assert isinstance(genotype, StagedGenotype)

    # 4 search cells at smoke: normal, reduction, reduction, normal; stage 2 has no normal search cell
    cells = rec["cells"]
    assert [(c["cell"], c["group"]) for c in cells] == [(0, "normal"), (1, "reduce"), (2, "reduce"), (3, "normal")]
    assert rec["stage_cells"] == {"rule": "first", "normal": [0, 0, 3], "reduce": [1, 2]}
    assert [c["used_for"] for c in cells] == [["normal cells of stage 1", "normal cells of stage 2"],
                                              ["reduction cell 1"], ["reduction cell 2"],
                                              ["normal cells of stage 3"]]
    # every cell's genotype is DARTS's rule on its own recorded importance; the staged genotype uses them
    own = {}
    for c in cells:
        importance = np.array(c["importance"])
        assert importance.shape == (14, 8) and (importance > 0).all()
        own[c["cell"]] = space.derive_cell(importance)
        assert [tuple(pair) for pair in c["genotype"]] == own[c["cell"]]
    assert genotype == StagedGenotype(normal=[own[0], own[0], own[3]], reduce=[own[1], own[2]])
    # the importance is summed over every image of the architecture half (sigmoid < 1 per channel)
    images = rec["attention"]["importance_images"]
    assert images > 0 and all(np.array(c["importance"]).sum(axis=1).max() < images * 8 * 16 for c in cells)
    # the group scores (operation-level correlation) are the means over the group's cells
    for group, members in (("normal", (0, 3)), ("reduce", (1, 2))):
        mean = np.mean([cells[m]["importance"] for m in members], axis=0)
        assert np.allclose(rec["importance"][group], mean)
    for edge in rec["op_correlation"]:
        row = np.array(rec["importance"][edge["group"]][edge["edge"]])
        assert edge["scores"] == pytest.approx([row[DARTS_OPS.index(op)] for op in edge["ops"]])
    assert rec["op_kendall_tau"] is not None
    assert rec["test_acc"] > 50.0  # digits: chance is 10 %

    assert main(["show", str(out / "darts" / "trials" / record_filename("agnas", "darts", "digits", 0))]) == 0
    shown = capsys.readouterr().out
    assert "normal cells of stage 3" in shown and "reduction cell 2" in shown


def test_agnas_nb201_averages_cells_and_records_benchmark_figures(out):
    records = run("nb201", out, 2)
    table = load_table()
    assert [r["seed"] for r in records] == [0, 1]
    for rec in records:
        cells = np.array([c["importance"] for c in rec["cells"]])
        assert cells.shape == (3, 6, 5)  # smoke: one cell per stage
        importance = np.array(rec["importance"]["cell"])
        assert np.allclose(importance, cells.mean(axis=0))
        assert parse_arch(rec["genotype"]) == tuple(NB201_OPS[i] for i in importance.argmax(axis=1))
        row = table.row(table.index_of(parse_arch(rec["genotype"])))
        assert rec["test_acc"] == row["cifar10_test"] and rec["benchmark"]["cifar10_test"] == row["cifar10_test"]
        indices = sample_indices(rec["arch_correlation"]["samples"], len(table), ARCH_SAMPLE_SEED)
        tau, rho = rank_correlation(log_normalised(importance)[np.arange(6), table.codes[indices]].sum(axis=1),
                                    table.column("cifar10_test")[indices])
        assert rec["arch_kendall_tau"] == pytest.approx(tau) and rec["arch_spearman_rho"] == pytest.approx(rho)
        assert "stage_cells" not in rec and "stage_cells" not in rec["config"]
    assert main(["leaderboard", str(out / "nb201")]) == 0
    board = pd.read_csv(out / "nb201" / "leaderboard.csv")
    (row,) = board.itertuples()
    assert (row.method, row.space, row.n_seeds) == ("agnas", "nb201", 2)
    assert row.test_acc_mean == pytest.approx(np.mean([r["test_acc"] for r in records]))
    assert row.op_kendall_tau_mean == pytest.approx(np.mean([r["op_kendall_tau"] for r in records]))


@pytest.mark.parametrize("space, item", [("darts", "stage_cells=1,3,0"), ("darts", "stage_cells=middle"),
                                         ("darts", "search_layers=2"), ("nb201", "stage_cells=first"),
                                         ("nb201", "attention_reduction=0")])
def test_bad_agnas_settings_are_one_line(space, item, capsys, tmp_path):
    argv = ["run", "--method", "agnas", "--space", space, "--budget", "smoke", "--dataset", "digits",
            "--out", str(tmp_path / "out"), "--set", item]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()
