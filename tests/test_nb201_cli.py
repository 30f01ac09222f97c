"""End-to-end on NAS-Bench-201: DARTS, GDAS and random search (smoke budget, digits; the trials in-process as
``run`` specifies them, ``conftest.trial_records``: a run through Ray is test_cli.py's), records checked against
the benchmark table, the leaderboard's benchmark and correlation columns through the CLI, and the ``nb201``
query commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import trial_records
from helpers import hand_count

from harness.cli import RAY_ENV, main
from harness.core.benchmarks.base import sample_indices
from harness.core.benchmarks.nb201 import load_table
from harness.core.benchmarks.nb201_arch import NB201_OPS, parse_arch
from harness.core.correlation import ARCH_SAMPLE_SEED
from harness.core.metrics import rank_correlation
from methods.base import log_normalised

METHODS = ("darts", "gdas", "random")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("nb201")
    for method in METHODS:
        trial_records(method, "nb201", out, method, 2)
    return out


def records(out: Path, method: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / method / "trials").glob("*.json"))]


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_records_carry_the_tables_figures(runs, method):
    table = load_table()
    recs = records(runs, method)
    assert [r["seed"] for r in recs] == [0, 1]
    for rec in recs:
        genotype = parse_arch(rec["genotype"])
        index = table.index_of(genotype)
        row = table.row(index)
        assert rec["benchmark_info"]["index"] == index
        assert rec["benchmark_info"]["arch"] == rec["genotype"]
        assert rec["benchmark_info"]["table"]["path"] == "default"
        for column in ("cifar10_test", "cifar100_test", "imagenet16_120_test", "cifar10_valid_valid"):
            assert rec["benchmark"][column] == row[column]
        # digits is not a benchmark dataset: the test accuracy is CIFAR-10's, and the record says so
        assert rec["test_acc"] == row["cifar10_test"]
        assert "cifar10 test" in rec["test_acc_source"] and "digits" in rec["test_acc_source"]
        assert rec["test_loss"] is None and rec["eval_seconds"] == 0.0
        assert [h["phase"] for h in rec["history"]] == ["search"] * len(rec["history"])
        # parameters of the benchmark's own CIFAR-10 network (C=16, 5 cells per stage), not the smoke size
        assert rec["params_m"] == pytest.approx(hand_count(genotype) / 1e6, abs=1e-9)


@pytest.mark.parametrize("method", ("darts", "gdas"))
def test_arch_correlation_recomputes_from_the_recorded_importance(runs, method):
    table = load_table()
    for rec in records(runs, method):
        corr = dict(rec["arch_correlation"])
        assert corr.pop("seconds") >= 0.0  # what scoring the sample cost
        assert corr == {"target": "cifar10_test", "sample_seed": 0, "samples": rec["config"]["arch_corr_samples"]}
        importance = np.array(rec["importance"]["cell"])
        assert importance.shape == (6, 5) and np.allclose(importance.sum(axis=1), 1.0)  # softmax(α)
        assert rec["importance_ops"] == list(NB201_OPS)  # the names of its columns
        assert parse_arch(rec["genotype"]) == tuple(np.array(
            ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"])[importance.argmax(axis=1)])
        indices = sample_indices(corr["samples"], len(table), ARCH_SAMPLE_SEED)
        tau, rho = rank_correlation(log_normalised(importance)[np.arange(6), table.codes[indices]].sum(axis=1),
                                    table.column("cifar10_test")[indices])
        assert (rec["arch_kendall_tau"], rec["arch_spearman_rho"]) == (pytest.approx(tau), pytest.approx(rho))
        assert rec["op_kendall_tau"] is not None


def test_random_search_selects_by_benchmark_validation(runs):
    table = load_table()
    for rec in records(runs, "random"):
        searched = [h for h in rec["history"] if h["phase"] == "search"]
        assert len(searched) == rec["config"]["rs_candidates"]
        for h in searched:
            assert h["val_acc"] == table.row(table.index_of(parse_arch(h["genotype"])))["cifar10_valid_valid"]
        best = max(searched, key=lambda h: h["val_acc"])
        assert rec["genotype"] == best["genotype"]
        assert rec["search_val_acc"] == best["val_acc"]
        assert rec["arch_kendall_tau"] is None and rec["op_kendall_tau"] is None


def test_leaderboard_rows_and_optimum(runs, capsys):
    table = load_table()
    assert main(["leaderboard", str(runs), "--optimum"]) == 0
    board = pd.read_csv(runs / "leaderboard.csv", keep_default_na=False, na_values=[""])
    rows = {r.method: r for r in board.itertuples()}
    assert set(rows) == {*METHODS, "optimum"}
    for method in METHODS:
        recs = records(runs, method)
        row = rows[method]
        assert row.n_seeds == 2
        for column in ("cifar10_test", "cifar100_test", "imagenet16_120_test", "cifar10_valid_valid"):
            values = [r["benchmark"][column] for r in recs]
            assert getattr(row, f"benchmark_{column}_mean") == pytest.approx(np.mean(values))
            assert getattr(row, f"benchmark_{column}_std") == pytest.approx(np.std(values, ddof=1), nan_ok=True)
        assert row.test_acc_mean == pytest.approx(np.mean([r["test_acc"] for r in recs]))
    assert rows["darts"].arch_kendall_tau_mean == pytest.approx(
        np.mean([r["arch_kendall_tau"] for r in records(runs, "darts")]))
    optimum = rows["optimum"]
    assert optimum.test_acc_mean == pytest.approx(94.37, abs=0.005)
    assert optimum.benchmark_cifar10_valid_valid_mean == pytest.approx(91.61, abs=0.005)
    assert optimum.benchmark_cifar100_test_mean == pytest.approx(table.optimum()["cifar100_test"])
    assert pd.isna(optimum.rank) and optimum.n_seeds == 0
    assert "arch τ" in capsys.readouterr().out


@pytest.mark.slow
def test_leaderboard_optimum_in_a_fresh_process(tmp_path):
    """``python -m harness leaderboard DIR --optimum`` in a new Python, where nothing has imported the space
    and method packages: the registry loads them itself, so the optimum row is there (issue 26, item 7)."""
    trials = tmp_path / "random" / "trials"
    trials.mkdir(parents=True)
    table = load_table()
    # what a trial on nb201 records that the leaderboard reads: identity, cell 0's figures, the table's provenance
    record = {"method": "random", "space": "nb201", "dataset": "digits", "budget": "smoke", "seed": 0,
              "test_acc": table.row(0)["cifar10_test"], "benchmark": table.row(0),
              "benchmark_info": {"index": 0, "table": table.describe()}}
    (trials / "random-nb201-digits-s0.json").write_text(json.dumps(record))
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, **RAY_ENV, "PYTHONPATH": path, "COLUMNS": "200"}  # wide enough for every figure
    done = subprocess.run([sys.executable, "-m", "harness", "leaderboard", str(tmp_path), "--optimum"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "optimum" in done.stdout and "94.37" in done.stdout
    board = pd.read_csv(tmp_path / "leaderboard.csv", keep_default_na=False, na_values=[""])
    rows = {r.method: r for r in board.itertuples()}
    assert set(rows) == {"random", "optimum"}
    assert rows["optimum"].test_acc_mean == pytest.approx(94.37, abs=0.005)
    assert rows["optimum"].benchmark_cifar10_valid_valid_mean == pytest.approx(91.61, abs=0.005)


def test_query_and_best(capsys):
    all_skip = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    assert main(["nb201", "query", all_skip]) == 0
    out = capsys.readouterr().out
    assert "index 1835" in out and "54.30" in out and "39.77" in out
    assert main(["nb201", "query", "1835"]) == 0
    assert all_skip in capsys.readouterr().out
    assert main(["nb201", "best", "--dataset", "cifar10"]) == 0
    out = capsys.readouterr().out
    assert "best cifar10 test accuracy: 94.37" in out
    assert main(["nb201", "best", "--dataset", "cifar10", "--metric", "valid"]) == 0
    assert "91.61" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["nb201", "query", "|nor_conv_3x3~0|+|nor_conv_3x3~0|"],
    ["nb201", "query", "99999"],
    ["nb201", "query", "1", "--table", "/nonexistent/table.npz"],
    ["nb201", "best", "--dataset", "mnist"],
    ["nb201", "best", "--dataset", "cifar100", "--metric", "valid"],  # not in the bundled table
    ["nb201", "import", "/nonexistent/NAS-Bench-201-v1_0-e61699.pth"],
    ["run", "--method", "darts", "--space", "nb201", "--budget", "smoke", "--dataset", "digits",
     "--set", "eval=both"],
    ["run", "--method", "darts", "--space", "nb201", "--budget", "smoke", "--dataset", "digits",
     "--set", "nb201_table=/nonexistent.npz"],
    ["run", "--method", "nos", "--space", "nb201", "--budget", "smoke", "--dataset", "digits"],  # unsupported pair
])
def test_bad_input_is_one_line(argv, capsys, tmp_path):
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)] if argv[0] == "run" else argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and err.count("\n") == 1, err
    assert not out.exists()


def test_eval_train_trains_the_cell_and_keeps_the_benchmark_figures(tmp_path):
    (rec,) = trial_records("darts", "nb201", tmp_path, "train", 1, "eval=train")
    table = load_table()
    assert rec["benchmark"]["cifar10_test"] == table.row(table.index_of(parse_arch(rec["genotype"])))["cifar10_test"]
    phases = [h["phase"] for h in rec["history"]]
    assert phases == ["search"] * rec["config"]["search_epochs"] + ["eval"] * rec["config"]["eval_epochs"]
    assert rec["test_acc_source"].startswith("the final network trained from scratch")
    assert rec["test_loss"] is not None and 0.0 <= rec["test_acc"] <= 100.0
    assert rec["test_acc"] != rec["benchmark"]["cifar10_test"]
    assert rec["config"]["eval_nesterov"] is True and rec["config"]["cutout"] == 0
