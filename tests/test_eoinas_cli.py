"""End-to-end (smoke budget, digits; the trials in-process as ``run`` specifies them, ``conftest.trial_records``:
a run through Ray is test_cli.py's; ``leaderboard`` and the refusals through the CLI): EoiNAS on the DARTS space and on
NAS-Bench-201 (pruning history, indicator, benchmark figures, leaderboard rows), GDAS on the DARTS space,
and refused EoiNAS settings (the ablation flags are unit-tested in test_eoinas.py)."""

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
from harness.core.registry import get_space
from methods.base import log_normalised
from spaces.darts import DARTS_OPS

pytestmark = pytest.mark.slow  # whole trials through the CLI


def run(method: str, space: str, out: Path, name: str, seeds: int = 1, *sets: str) -> list[dict]:
    return trial_records(method, space, out, name, seeds, *sets)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("eoinas")


@pytest.fixture(scope="module")
def darts_records(out):  # 4 search epochs (the smoke preset has 8): 7 pruning steps crowded after epochs 2-4
    return run("eoinas", "darts", out, "eoinas-darts", 1, "search_epochs=4")


@pytest.fixture(scope="module")
def nb201_records(out):
    return run("eoinas", "nb201", out, "eoinas-nb201", 2)


def check_pruning(rec: dict, ops: tuple[str, ...], schedule: list[int]) -> None:
    """The history removes one op per edge at every scheduled epoch and ends with one op per edge."""
    pruning = rec["pruning"]
    assert pruning["enabled"] and pruning["schedule"] == schedule and pruning["ops_per_edge"] == 1
    history = pruning["history"]
    assert [h["after_epoch"] for h in history] == schedule
    assert [h["ops_per_edge"] for h in history] == list(range(len(ops) - 1, 0, -1))
    search = [h for h in rec["history"] if h["phase"] == "search"]
    assert [h["ops_per_edge"] for h in search] == [len(ops) - sum(s <= e + 1 for s in schedule)
                                                   for e in range(len(search))]
    for group, alive in pruning["alive"].items():
        removed = [step["removed"][group] for step in history]
        for edge, survivor in enumerate(alive):
            gone = [step[edge] for step in removed]
            assert len(survivor) == 1 and sorted([*gone, *survivor]) == sorted(ops)  # each op removed once
            # the indicator that decided each step: the removed op was the lowest alive one (or `none`)
            for step, op in zip(history, gone):
                scores = np.array(step["indicator"][group][edge])
                alive_scores = scores[scores > 0]
                assert scores[ops.index(op)] == alive_scores.min() or op == "none"
        # the record's importance: the survivor's deciding indicator, every other op 0
        importance = np.array(rec["importance"][group])
        assert (np.count_nonzero(importance, axis=1) == 1).all()
        assert [[ops[i]] for i in importance.argmax(axis=1)] == alive
        last = np.array(history[-1]["indicator"][group])
        assert np.allclose(importance.max(axis=1), last[np.arange(len(alive)), importance.argmax(axis=1)])


def test_eoinas_darts_prunes_on_schedule_and_trains_the_cell(darts_records):
    (rec,) = darts_records
    assert rec["config"]["search_epochs"] == 4 and rec["config"]["warmup_epochs"] == 1
    check_pruning(rec, DARTS_OPS, [2, 2, 3, 3, 4, 4, 4])
    for group in ("normal", "reduce"):
        assert all(alive != ["none"] for alive in rec["pruning"]["alive"][group])
        parts = rec["indicator_parts"][group]
        # N: zeroed after the pruning epochs 2 and 3, not after the last (4): epoch 4's 6 weight steps
        assert np.array(parts["iterations"]).sum(axis=1).tolist() == [6] * 14
    space = get_space("darts")(rec["config"])  # the genotype is DARTS's rule on the recorded indicator
    assert rec["genotype"] == space.to_str(space.derive({g: np.array(m) for g, m in rec["importance"].items()}))
    assert rec["test_acc"] > 50.0  # digits: chance is 10 %
    assert rec["op_kendall_tau"] is None  # one op per edge left: the trial's op-level correlation is undefined
    assert all(len(c["ops"]) == 1 for c in rec["op_correlation"])


def test_eoinas_nb201_records_benchmark_figures_and_recomputable_arch_correlation(nb201_records, out):
    table = load_table()
    assert [r["seed"] for r in nb201_records] == [0, 1]
    for rec in nb201_records:
        check_pruning(rec, NB201_OPS, [3, 5, 7, 8])
        row = table.row(table.index_of(parse_arch(rec["genotype"])))
        assert rec["test_acc"] == row["cifar10_test"] and rec["benchmark"]["cifar10_test"] == row["cifar10_test"]
        importance = np.array(rec["importance"]["cell"])
        assert parse_arch(rec["genotype"]) == tuple(NB201_OPS[i] for i in importance.argmax(axis=1))
        # the architecture score: Σ-log on the indicator recorded before the first pruning step (every op alive)
        history = rec["pruning"]["history"]
        scored = np.array(history[0]["indicator"]["cell"]) if history else importance
        assert (scored > 0).all()  # every op had a score then
        indices = sample_indices(rec["arch_correlation"]["samples"], len(table), ARCH_SAMPLE_SEED)
        tau, rho = rank_correlation(log_normalised(scored)[np.arange(6), table.codes[indices]].sum(axis=1),
                                    table.column("cifar10_test")[indices])
        assert rec["arch_kendall_tau"] == pytest.approx(tau) and rec["arch_spearman_rho"] == pytest.approx(rho)
    assert main(["leaderboard", str(out / "eoinas-nb201")]) == 0
    board = pd.read_csv(out / "eoinas-nb201" / "leaderboard.csv")
    (row,) = board.itertuples()
    assert (row.method, row.space, row.n_seeds) == ("eoinas", "nb201", 2)
    assert row.test_acc_mean == pytest.approx(np.mean([r["test_acc"] for r in nb201_records]))


def test_gdas_on_the_darts_space(out):
    (rec,) = run("gdas", "darts", out, "gdas-darts", 1, "eval_epochs=2")
    assert rec["genotype"].startswith("Genotype(normal=[")
    importance = {g: np.array(m) for g, m in rec["importance"].items()}
    assert set(importance) == {"normal", "reduce"}
    for matrix in importance.values():
        assert matrix.shape == (14, 8) and np.allclose(matrix.sum(axis=1), 1.0)
    taus = [h["tau"] for h in rec["history"] if h["phase"] == "search"]
    assert taus == pytest.approx([10.0, 0.1])  # GDAS: linear 10 → 0.1 over the (2) smoke epochs
    assert rec["test_acc"] > 50.0 and rec["op_kendall_tau"] is not None


@pytest.mark.parametrize("sets", [["acc_stat=best"], ["warmup_epochs=8"], ["tau_schedule=cosine"],
                                  ["indicator=maybe"]])
def test_bad_eoinas_settings_are_one_line(sets, capsys, tmp_path):
    argv = ["run", "--method", "eoinas", "--space", "darts", "--budget", "smoke", "--dataset", "digits",
            "--out", str(tmp_path / "out")]
    for item in sets:
        argv += ["--set", item]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()
