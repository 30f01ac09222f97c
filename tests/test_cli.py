"""End-to-end: the real CLI with Ray on the smoke budget (records, leaderboard, reproducibility), and every bad
input refused with one line and exit status 2 (interruption and resume: ``test_hardening.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import estimate_not_measured, trial_records

from harness.cli import main
from harness.core.registry import SPACES, get_space
from spaces.darts import DartsSpace

SMOKE = ["--method", "darts", "--space", "darts", "--budget", "smoke", "--dataset", "digits", "--cpus-per-trial", "1"]
RECORD_KEYS = {"method", "space", "dataset", "budget", "seed", "config", "config_hash", "genotype", "search_val_acc",
               "test_acc", "search_seconds", "eval_seconds", "device_hours", "device", "peak_mem_mb", "params_m",
               "madds_m", "op_kendall_tau", "op_spearman_rho", "history", "harness_version", "split",
               "memory_format", "cudnn_benchmark", "deterministic"}
BOARD_COLUMNS = {"method", "space", "dataset", "budget", "n_seeds", "test_acc_mean", "test_acc_std", "test_acc_median",
                 "test_acc_best", "search_hours_mean", "params_m_mean", "madds_m_mean", "op_kendall_tau_mean"}


def read(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def two_seeds(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    # half of digits' training images (720) and one search epoch: the same assertions hold (measured in-process:
    # test 74 %) in about half the time of one of the suite's costliest fixtures (three whole trials, counting
    # test_same_seed_gives_same_genotype_and_accuracy's)
    with estimate_not_measured():
        assert main(["run", *SMOKE, "--seeds", "2", "--set", "train_limit=720", "--set", "search_epochs=1",
                     "--out", str(out), "--name", "e2e"]) == 0
    return out


def test_run_writes_records_and_leaderboard(two_seeds):
    trials = two_seeds / "e2e" / "trials"
    paths = sorted(trials.glob("*.json"))
    assert [p.name for p in paths] == ["darts-darts-digits-s0.json", "darts-darts-digits-s1.json"]
    records = [read(p) for p in paths]
    space = get_space("darts")(records[0]["config"])
    for seed, rec in enumerate(records):
        assert RECORD_KEYS <= set(rec)
        assert (rec["method"], rec["space"], rec["dataset"], rec["budget"], rec["seed"]) == (
            "darts", "darts", "digits", "smoke", seed)
        assert space.to_str(space.parse(rec["genotype"])) == rec["genotype"]
        assert rec["test_acc"] > 30.0  # 10 classes: chance is 10 %
        phases = [h["phase"] for h in rec["history"]]
        assert phases == ["search"] * rec["config"]["search_epochs"] + ["eval"] * rec["config"]["eval_epochs"]
        assert rec["params_m"] > 0 and rec["madds_m"] > 0 and rec["peak_mem_mb"] > 0
        assert rec["op_corr_edges"] == rec["config"]["corr_edges"]
        assert rec["device_hours_kind"] == "CPU-hours"
        # the default layout, and on the CPU no autotuning: the record is reproducible bit for bit
        assert (rec["memory_format"], rec["cudnn_benchmark"], rec["deterministic"]) == ("channels_last", False, True)
        assert rec["split"]["order"].startswith("fixed random permutation") and min(rec["split"]["arch"]) > 0
    assert records[0]["config_hash"] == records[1]["config_hash"]
    assert records[0]["genotype"] != records[1]["genotype"] or records[0]["test_acc"] != records[1]["test_acc"]

    board = pd.read_csv(two_seeds / "e2e" / "leaderboard.csv")
    assert BOARD_COLUMNS <= set(board.columns)
    assert len(board) == 1
    row = board.iloc[0]
    assert (row.method, row.space, row.n_seeds) == ("darts", "darts", 2)
    assert row.test_acc_mean == pytest.approx((records[0]["test_acc"] + records[1]["test_acc"]) / 2)
    # the Markdown: one short table per space, search dataset and budget, under its heading and its test source
    md = (two_seeds / "e2e" / "leaderboard.md").read_text().splitlines()
    assert "## darts · search dataset digits · smoke budget" in md
    assert f"Test accuracy: digits test, network trained {records[0]['config']['eval_epochs']} epochs." in md
    # rank 1, the method with its variant (the fixture's --set; Markdown-escaped brackets), its seeds; no darts row
    # without overrides to compare with: no p-value, no seeds won
    rows = [line for line in md if line.startswith(r"| 1 | darts \[search_epochs=1,train_limit=720\] | 2 | ")]
    assert len(rows) == 1
    assert f"| {row.test_acc_mean:.2f} ± {row.test_acc_std:.2f} |" in rows[0] and rows[0].endswith("| — | — |")
    assert not list((two_seeds / "e2e").rglob("*.tmp"))


def test_same_seed_gives_same_genotype_and_accuracy(two_seeds):
    # seed 0 once more, alone and in this process (one thread: the default of a trial on a CPU), against seed 0 of
    # the two-seed run through Ray: the same setting gives the same record wherever its trial runs
    from harness.spec import ExperimentSpec
    from harness.trial import execute_trial

    spec = ExperimentSpec.from_json(read(two_seeds / "e2e" / "experiment.json"))
    assert spec.cpus_per_trial == 1
    execute_trial(spec.at(two_seeds / "again"), 0, report=lambda metrics: None)
    first = read(two_seeds / "e2e" / "trials" / "darts-darts-digits-s0.json")
    again = read(two_seeds / "again" / "trials" / "darts-darts-digits-s0.json")
    assert again["genotype"] == first["genotype"]
    assert again["test_acc"] == first["test_acc"]
    assert again["op_kendall_tau"] == first["op_kendall_tau"]
    assert [h.get("train_loss") for h in again["history"]] == [h.get("train_loss") for h in first["history"]]


def test_leaderboard_show_and_config_commands(two_seeds, capsys):
    assert main(["leaderboard", str(two_seeds)]) == 0
    out = capsys.readouterr().out
    assert "darts" in out and (two_seeds / "leaderboard.csv").is_file()
    board = pd.read_csv(two_seeds / "leaderboard.csv")
    # e2e (seeds 0, 1) and again (seed 0): one setting; a seed run twice counts once (the newest record)
    assert list(board.n_seeds) == [2]

    record = two_seeds / "e2e" / "trials" / "darts-darts-digits-s0.json"
    assert main(["show", str(record)]) == 0
    out = capsys.readouterr().out
    assert "node 2" in out and "test" in out.lower() and read(record)["config_hash"] in out

    assert main(["config", "--method", "darts", "--space", "darts", "--budget", "smoke", "--set", "order=2"]) == 0
    out = capsys.readouterr().out
    assert "budget:smoke" in out and "override" in out and "paper" in out

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "random" in out and "digits" in out and "✓" in out


@pytest.mark.slow
def test_random_search_runs_end_to_end(tmp_path):
    # in-process as ``run`` specifies it (conftest.trial_records): the run through Ray is the two-seed run's above
    (rec,) = trial_records("random", "darts", tmp_path, "rs")
    assert (tmp_path / "rs" / "trials" / "random-darts-digits-s0.json").is_file()
    assert rec["op_kendall_tau"] is None and rec["op_corr_edges"] == 0
    search = [h for h in rec["history"] if h["phase"] == "search"]
    assert len(search) == rec["config"]["rs_candidates"]
    assert rec["search_val_acc"] == max(h["val_acc"] for h in search)
    best = max(search, key=lambda h: h["val_acc"])
    assert rec["genotype"] == best["genotype"]
    assert rec["test_acc"] > 20.0


class ToySpace(DartsSpace):
    """A space that offers no capability DARTS needs (a DartsSpace subclass would otherwise inherit them)."""
    name = "toy"
    features = frozenset({"sample"})


BAD_INPUTS = {
    "unknown method": ["run", "--method", "nope", "--space", "darts", "--dataset", "digits"],
    "unknown space": ["run", "--method", "darts", "--space", "nope", "--dataset", "digits"],
    "unknown dataset": ["run", "--method", "darts", "--space", "darts", "--dataset", "mnist"],
    "incompatible pair": ["run", "--method", "darts", "--space", "toy", "--dataset", "digits"],
    "zero seeds": ["run", *SMOKE, "--seeds", "0"],
    "bad seed list": ["run", *SMOKE, "--seed-list", "1,x"],
    "malformed set": ["run", *SMOKE, "--set", "order"],
    "unknown set key": ["run", *SMOKE, "--set", "colour=blue"],
    "bad set value": ["run", *SMOKE, "--set", "order=3"],
    "missing folder": ["run", "--method", "darts", "--space", "darts", "--budget", "smoke",
                       "--dataset", "folder:/no/such/folder"],
    "cannot download": ["run", "--method", "darts", "--space", "darts", "--budget", "smoke",
                        "--dataset", "cifar10", "--data-dir", "{tmp}/data"],
    "unknown budget": ["run", *SMOKE[:6], "--budget", "huge"],
    "kernels not distinct": ["run", "--method", "darts", "--space", "proxyless", "--budget", "smoke",
                             "--dataset", "digits", "--set", "strides=1,1,1,2,1,2,1"],
    "resume unknown": ["run", "--resume", "--name", "ghost"],
    "unknown command option": ["run", *SMOKE, "--colour", "blue"],
    "show missing record": ["show", "{tmp}/nothing.json"],
    "empty leaderboard": ["leaderboard", "{tmp}/nothing"],
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(SPACES, "toy", ToySpace)
    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    out = tmp_path / "out"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in BAD_INPUTS[case]]
    if argv[0] == "run":
        argv += ["--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not out.exists()  # nothing written


def test_existing_experiment_without_resume_is_refused(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert main(["run", *SMOKE, "--out", str(tmp_path), "--name", "taken"]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and err.count("\n") == 1
    assert list((tmp_path / "taken").iterdir()) == []
