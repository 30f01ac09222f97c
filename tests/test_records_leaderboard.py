"""Records (file names, JSON safety, atomic writes, loading, display) and leaderboards."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from rich.console import Console

from harness.errors import UserError
from harness.leaderboard import BASE_COLUMNS, build_leaderboard, leaderboard_table, write_leaderboard
from harness.records import (
    json_safe,
    load_records,
    read_record,
    record_filename,
    show_record,
    write_record,
)

GENOTYPE = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('dil_conv_3x3', 2), ('skip_connect', 0), "
            "('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), "
            "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
            "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=range(2, 6))")


def make_record(method="darts", seed=0, test_acc=90.0, space="darts", dataset="digits", budget="smoke",
                overrides=None, finished_at="2025-01-01T00:00:00+00:00", **extra):
    record = {
        "method": method, "space": space, "dataset": dataset, "budget": budget, "seed": seed,
        "experiment": "exp", "config": {"epochs": 2, "lr": 0.025}, "config_hash": "abc123",
        "overrides": overrides or {}, "genotype": GENOTYPE,
        "search_val_acc": 80.0, "test_acc": test_acc,
        "search_seconds": 3600.0, "correlation_seconds": 10.0, "eval_seconds": 7200.0,
        "device_hours": 3.0, "device_hours_kind": "CPU-hours", "device": "cpu (2 threads)",
        "peak_mem_mb": 500.0, "params_m": 3.3, "madds_m": 500.0,
        "op_kendall_tau": 0.5, "op_spearman_rho": 0.6, "op_corr_edges": 4,
        "history": [{"epoch": 0, "phase": "search", "train_loss": 2.0, "val_acc": 50.0, "genotype": "x"}],
        "harness_version": "0.1.0", "finished_at": finished_at,
    }
    record.update(extra)
    return record


# --- file names and JSON -----------------------------------------------------------------------
def test_record_filename():
    assert record_filename("darts", "nb201", "cifar10", 3) == "darts-nb201-cifar10-s3.json"
    assert record_filename("nos", "hetero", "folder:/data/my_set/", 0) == "nos-hetero-folder-my_set-s0.json"
    assert record_filename("nos", "hetero", "folder:/data/my set", 1) == "nos-hetero-folder-my_set-s1.json"
    name = record_filename("a", "b", "weird/../name?*", 2)
    assert "/" not in name and "?" not in name and "*" not in name


def test_json_safe():
    data = {"nan": float("nan"), "inf": float("-inf"), "np_f": np.float32(1.5), "np_i": np.int64(7),
            "arr": np.array([1.0, np.nan]), "tup": (1, (2, 3)), "path": Path("/a/b"), "ok": 1.25,
            "flag": np.bool_(True), 3: "int key"}
    safe = json_safe(data)
    assert safe == {"nan": None, "inf": None, "np_f": 1.5, "np_i": 7, "arr": [1.0, None],
                    "tup": [1, [2, 3]], "path": "/a/b", "ok": 1.25, "flag": True, "3": "int key"}
    assert type(safe["np_i"]) is int and type(safe["np_f"]) is float and type(safe["flag"]) is bool
    json.dumps(safe, allow_nan=False)


# --- atomic writes -----------------------------------------------------------------------------
def test_write_record_atomic_and_round_trip(tmp_path):
    path = tmp_path / "exp" / "trials" / "r.json"
    write_record(path, make_record(op_kendall_tau=float("nan")))
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]
    record = read_record(path)
    assert record["op_kendall_tau"] is None and record["test_acc"] == 90.0
    assert list(json.loads(path.read_text())) == sorted(record)  # sort_keys


def test_crash_mid_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "trials" / "r.json"
    write_record(path, make_record(test_acc=91.0))
    before = path.read_text()

    def explode(obj, f, **kwargs):
        f.write('{"half": ')
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(json, "dump", explode)
    with pytest.raises(RuntimeError):
        write_record(path, make_record(test_acc=12.0))
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_read_record_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_record(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON") as err:
        read_record(bad)
    assert "\n" not in str(err.value)
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"method": "darts"}')
    with pytest.raises(UserError, match="identity keys"):
        read_record(foreign)


def test_load_records_recursive_and_skips_corrupt(tmp_path, capsys):
    write_record(tmp_path / "b" / "trials" / "x.json", make_record(seed=1))
    write_record(tmp_path / "a" / "trials" / "y.json", make_record(seed=0))
    write_record(tmp_path / "a" / "nested" / "trials" / "z.json", make_record(seed=2))
    write_record(tmp_path / "a" / "other" / "w.json", make_record(seed=3))  # not under trials/: ignored
    (tmp_path / "a" / "trials" / "corrupt.json").write_text('{"method": "dar')
    records = load_records(tmp_path)
    assert [r["seed"] for r in records] == [2, 0, 1]
    assert records[0]["_path"] == str(tmp_path / "a" / "nested" / "trials" / "z.json")
    err = capsys.readouterr().err
    assert "corrupt.json" in err and err.count("\n") == 1 and err.startswith("warning:")


def test_load_records_missing_root(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_records(tmp_path / "nope")


# --- show_record -------------------------------------------------------------------------------
def test_show_record_renders_genotype_nulls_and_overrides():
    record = make_record(op_kendall_tau=None, overrides={"lr": 0.1}, config={"epochs": 2, "lr": 0.1})
    console = Console(record=True, width=120)
    show_record(record, console)
    out = console.export_text()
    assert "node 2 ← (sep_conv_3x3, 0), (sep_conv_3x3, 1)" in out
    assert "node 5 ← (skip_connect, 2), (avg_pool_3x3, 0)" in out
    assert "reduce cell:" in out
    assert "—" in out
    assert "lr *" in out and "epochs *" not in out
    assert "CPU-hours" in out and "train_loss" in out


def test_show_record_plain_genotype_string():
    console = Console(record=True, width=120)
    show_record(make_record(genotype="|nor_conv_3x3~0|+|skip_connect~0|none~1|"), console)
    assert "|nor_conv_3x3~0|+|skip_connect~0|none~1|" in console.export_text()


# --- leaderboards ------------------------------------------------------------------------------
def crafted_records():
    darts = [make_record("darts", s, acc) for s, acc in enumerate([90.0, 91.0, 95.0])]
    nos = [make_record("nos", s, acc, madds_m=400.0 + s, arch_kendall_tau=0.1 * s,
                       benchmark={"cifar10_test": 93.0 + s})
           for s, acc in enumerate([92.0, 93.5, 94.0])]
    # a re-run of nos seed 1: newer, so it replaces the 93.5
    nos.append(make_record("nos", 1, 96.0, finished_at="2025-02-01T00:00:00+00:00",
                           benchmark={"cifar10_test": 94.0}))
    # an older duplicate of seed 2: ignored
    nos.append(make_record("nos", 2, 10.0, finished_at="2024-12-01T00:00:00+00:00",
                           benchmark={"cifar10_test": 95.0}))
    tuned = [make_record("darts", s, acc, overrides={"lr": 0.1, "epochs": 3})
             for s, acc in enumerate([92.0, 92.5])]
    single = [make_record("gdas", 0, 89.0)]
    other_space = [make_record("nos", 0, 70.0, space="nb201")]
    return darts + nos + tuned + single + other_space


def test_build_leaderboard_values():
    df = build_leaderboard(crafted_records())
    assert list(df.columns[:len(BASE_COLUMNS)]) == BASE_COLUMNS
    rows = {(r.method, r.space, r.variant): r for r in df.itertuples(index=False)}

    nos = rows[("nos", "darts", "")]
    accs = [92.0, 96.0, 94.0]
    assert nos.n_seeds == 3 and nos.seeds == "0,1,2"
    assert nos.test_acc_mean == pytest.approx(94.0)
    assert nos.test_acc_std == pytest.approx(2.0)  # deviations -2, 2, 0 → sqrt(8/2)
    assert nos.test_acc_median == pytest.approx(94.0) and nos.test_acc_best == pytest.approx(96.0)
    assert nos.search_hours_mean == pytest.approx(1.0) and nos.eval_hours_mean == pytest.approx(2.0)
    assert nos.device_hours_kind == "CPU-hours"
    assert nos.madds_m_mean == pytest.approx((400.0 + 500.0 + 402.0) / 3)  # seed 1 is the re-run
    darts_accs = [90.0, 91.0, 95.0]
    expected_p = scipy.stats.ttest_ind(accs, darts_accs, equal_var=False).pvalue
    assert nos.p_vs_darts == pytest.approx(expected_p)

    darts = rows[("darts", "darts", "")]
    assert math.isnan(darts.p_vs_darts)  # the baseline itself
    assert darts.test_acc_mean == pytest.approx(92.0)

    tuned = rows[("darts", "darts", "epochs=3,lr=0.1")]
    assert tuned.n_seeds == 2 and tuned.test_acc_mean == pytest.approx(92.25)
    assert tuned.p_vs_darts == pytest.approx(
        scipy.stats.ttest_ind([92.0, 92.5], darts_accs, equal_var=False).pvalue)

    gdas = rows[("gdas", "darts", "")]
    assert gdas.n_seeds == 1 and math.isnan(gdas.test_acc_std) and math.isnan(gdas.p_vs_darts)

    other = rows[("nos", "nb201", "")]
    assert math.isnan(other.p_vs_darts) and other.rank == 1  # no darts baseline on nb201

    # rank within (space, dataset, budget): nos 94 > tuned 92.25 > darts 92 > gdas 89
    assert [(r.method, r.variant, r.rank) for r in df.itertuples() if r.space == "darts"] == [
        ("nos", "", 1), ("darts", "epochs=3,lr=0.1", 2), ("darts", "", 3), ("gdas", "", 4)]
    assert list(df["space"]) == ["darts"] * 4 + ["nb201"]

    # generic extras: other numeric keys and the benchmark dict
    assert {"correlation_seconds_mean", "peak_mem_mb_mean", "op_corr_edges_mean",
            "arch_kendall_tau_mean", "benchmark_cifar10_test_mean", "benchmark_cifar10_test_std"} <= set(df.columns)
    assert "seed_mean" not in df.columns
    assert nos.arch_kendall_tau_mean == pytest.approx(0.1)
    assert math.isnan(darts.arch_kendall_tau_mean)
    assert nos.benchmark_cifar10_test_mean == pytest.approx(94.0)  # 93 (s0), 94 (s1 re-run), 95 (s2)
    assert nos.benchmark_cifar10_test_std == pytest.approx(1.0)


def test_p_vs_darts_zero_variance_both_sides_is_nan():
    records = [make_record("darts", s, 90.0) for s in range(3)] + [make_record("nos", s, 91.0) for s in range(3)]
    df = build_leaderboard(records)
    assert df["p_vs_darts"].isna().all()


def test_build_leaderboard_empty():
    df = build_leaderboard([])
    assert df.empty and list(df.columns) == BASE_COLUMNS


def test_write_leaderboard_files(tmp_path):
    df = build_leaderboard(crafted_records())
    csv_path, md_path = write_leaderboard(df, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["leaderboard.csv", "leaderboard.md"]
    again = pd.read_csv(csv_path, dtype={"variant": str, "seeds": str}).fillna({"variant": ""})
    pd.testing.assert_frame_equal(again, df, check_dtype=False)
    lines = md_path.read_text().splitlines()
    assert len(lines) == 2 + len(df)
    assert lines[0].startswith("| method | space | dataset | budget | variant | n_seeds |")
    assert set(lines[1]) <= set("|-:")
    nos_line = next(line for line in lines if line.startswith("| nos | darts"))
    cells = [c.strip() for c in nos_line.strip("|").split("|")]
    cols = list(df.columns)
    assert cells[cols.index("test_acc_mean")] == "94.00"
    assert cells[cols.index("op_kendall_tau_mean")] == "0.500"
    darts_line = next(line for line in lines if line.startswith("| darts | darts | digits | smoke |  |"))
    assert [c.strip() for c in darts_line.strip("|").split("|")][cols.index("p_vs_darts")] == "—"


def test_leaderboard_table_renders():
    df = build_leaderboard(crafted_records())
    console = Console(record=True, width=250)
    console.print(leaderboard_table(df, "leaderboard"))
    out = console.export_text()
    assert "94.00 ± 2.00" in out and "p vs darts" in out and "epochs=3,lr=0.1" in out
