"""Records (file names, JSON safety, atomic writes, loading, display) and leaderboards."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from helpers import a_spec
from rich.console import Console

from harness.core.errors import UserError
from harness.core.records import (
    json_safe,
    load_records,
    read_record,
    record_filename,
    show_record,
    write_record,
)
from harness.leaderboard import (
    BASE_COLUMNS,
    PUBLISHED_COLUMNS,
    build_leaderboard,
    leaderboard_table,
    to_markdown,
    write_leaderboard,
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
        "latency_ms": 2.5, "latency_batch_ms": 40.0, "latency_batch": 64,
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


def test_record_filename_of_a_long_folder_name_can_be_written(tmp_path):
    """A folder dataset of a 240-character name gave a record name past the 255 bytes a file system allows: the
    trial's record could not be written at its end. Long names are cut and end in a hash of the whole."""
    long_a, long_b = "folder:/d/" + "a" * 239 + "x", "folder:/d/" + "a" * 239 + "y"
    name_a, name_b = record_filename("nos", "hetero", long_a, 3), record_filename("nos", "hetero", long_b, 3)
    assert len(name_a) <= 170 and name_a != name_b and name_a.endswith("-s3.json")
    write_record(tmp_path / name_a, {"seed": 3})
    assert (tmp_path / name_a).is_file()


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
    assert "train_loss" in out
    # times in readable units (duration_text), the device's kind beside the device time (make_record: 3600 s of
    # search, 3 CPU-hours)
    assert re.search(r"│ search time +│ +1\.00 h │ +│", out) and re.search(r"│ device time +│ +3\.00 h │ CPU +│", out)


def test_show_reads_times_in_units_and_names_a_queried_figure():
    """``show`` prints times as people read them (the one ``duration_text``), and for a search that queried its
    benchmark (random search on NAS-Bench-201) it names the figure's source instead of calling the benchmark's
    validation accuracy a supernet's."""
    from harness.core.benchmarks.nb201 import load_table

    info = {"index": 0, "arch": NB201_GENOTYPE, "table": load_table().describe()}
    queried = make_record("random", space="nb201", genotype=NB201_GENOTYPE, benchmark_info=info,
                          config={"rs_candidates": 3}, search_seconds=0.0004424, correlation_seconds=0.0046,
                          eval_seconds=0.0, device_hours=1.418e-06, teacher_seconds=5400.0,
                          search_seconds_without_intensive=90.5,
                          history=[{"epoch": k, "phase": "search", "val_acc": 80.0 + k, "seconds": s}
                                   for k, s in enumerate((0.0001057, 0.0002003, 0.0001363))])
    console = Console(record=True, width=160)
    show_record(queried, console)
    out = console.export_text()
    rows = {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("│").split("│")]
                                              for line in out.splitlines() if line.startswith("│"))}
    assert rows["search time"] == ["442 µs", ""] and rows["correlation time"] == ["4.60 ms", ""]
    assert rows["evaluation time"] == ["0 s", ""] and rows["device time"] == ["5.10 ms", "CPU"]  # 1.418e-06 h
    assert rows["teacher training time"] == ["1.50 h", ""]  # a method's own time metric
    assert rows["search_seconds_without_intensive"] == ["1.51 min", ""]  # a number the table lacks, in seconds
    assert [rows[str(k)][-1] for k in range(3)] == ["106 µs", "200 µs", "136 µs"]  # the history's seconds
    assert rows["best queried benchmark val accuracy"] == ["80", "%"] and "supernet val accuracy" not in out
    assert ("search: 3 queries of NAS-Bench-201 CIFAR-10 validation (cifar10-valid: trained on 25k), 200 epochs, the "
            "best cell kept; no supernet, nothing trained") in " ".join(out.split())
    assert "search: benchmark queries" in out  # the history's title: its search epochs are queries

    trained = make_record("darts", space="nb201", genotype=NB201_GENOTYPE, benchmark_info=info)
    console = Console(record=True, width=160)
    show_record(trained, console)  # looked up for its test accuracy, but its search trained a supernet
    out = console.export_text()
    assert "supernet val accuracy" in out and "queried" not in out and "search:" not in out


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
    # the final network's latencies: mean ± std over seeds (constant in these records), the batch size averaged
    assert (nos.latency_ms_mean, nos.latency_batch_ms_mean, nos.latency_batch_mean) == (2.5, 40.0, 64.0)
    assert nos.latency_ms_std == 0.0 and nos.latency_batch_ms_std == 0.0
    darts_accs = [90.0, 91.0, 95.0]
    # paired by seed with darts: differences 2, 5, -1 (the re-run of seed 1 counts, not the older seed 2)
    assert nos.baseline == "darts" and nos.n_common_seeds == 3 and nos.comparison_note == ""
    assert nos.p_wilcoxon == pytest.approx(scipy.stats.wilcoxon(np.subtract(accs, darts_accs)).pvalue)
    assert nos.p_wilcoxon == pytest.approx(0.5)  # exact: W- = 1, P(W- <= 1) = 2/8, two-sided
    assert nos.p_ttest == pytest.approx(scipy.stats.ttest_rel(accs, darts_accs).pvalue)
    assert nos.effect_size == pytest.approx(2.0 / 3.0)  # mean 2, std sqrt((0 + 9 + 9) / 2) = 3
    assert nos.seeds_won_share == pytest.approx(2 / 3)
    assert nos.p_holm == pytest.approx(1.0)  # Holm over nos (0.5) and tuned darts (0.5): min(1, 2 * 0.5)
    assert nos.test_acc_iqm == pytest.approx(scipy.stats.trim_mean(accs, 0.25))
    assert nos.test_acc_ci_low <= nos.test_acc_mean <= nos.test_acc_ci_high
    assert 92.0 <= nos.test_acc_ci_low and nos.test_acc_ci_high <= 96.0
    assert nos.search_hours_ci_low == nos.search_hours_ci_high == pytest.approx(1.0)  # equal seeds

    darts = rows[("darts", "darts", "")]
    assert darts.baseline == "darts" and pd.isna(darts.n_common_seeds) and darts.comparison_note == ""
    assert all(math.isnan(v) for v in (darts.p_wilcoxon, darts.p_ttest, darts.p_holm, darts.effect_size,
                                       darts.seeds_won_share))  # the baseline itself
    assert darts.test_acc_mean == pytest.approx(92.0)

    tuned = rows[("darts", "darts", "epochs=3,lr=0.1")]
    assert tuned.n_seeds == 2 and tuned.test_acc_mean == pytest.approx(92.25)
    assert tuned.n_common_seeds == 2  # seeds 0 and 1: differences 2 and 1.5
    assert tuned.p_wilcoxon == pytest.approx(scipy.stats.wilcoxon([2.0, 1.5]).pvalue)
    assert tuned.p_ttest == pytest.approx(scipy.stats.ttest_rel([92.0, 92.5], darts_accs[:2]).pvalue)
    assert tuned.effect_size == pytest.approx(1.75 / np.std([2.0, 1.5], ddof=1))
    assert tuned.seeds_won_share == 1.0 and tuned.p_holm == pytest.approx(1.0)

    gdas = rows[("gdas", "darts", "")]
    assert gdas.n_seeds == 1 and math.isnan(gdas.test_acc_std) and math.isnan(gdas.p_wilcoxon)
    assert gdas.n_common_seeds == 1 and gdas.comparison_note == "too few common seeds (1): no p-value"
    assert math.isnan(gdas.p_holm) and gdas.seeds_won_share == 0.0  # 89 < 90 on seed 0

    other = rows[("nos", "nb201", "")]
    assert math.isnan(other.p_wilcoxon) and other.rank == 1 and other.n_common_seeds == 0  # no darts on nb201
    assert other.comparison_note == "no darts row without overrides to compare with"

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


def test_paired_comparison_zero_variance_of_differences():
    """Every seed one point better: the Wilcoxon p-value is defined, the t-test and effect size are not."""
    records = [make_record("darts", s, 90.0) for s in range(3)] + [make_record("nos", s, 91.0) for s in range(3)]
    df = build_leaderboard(records)
    assert df["p_ttest"].isna().all() and df["effect_size"].isna().all()
    nos = df[df["method"] == "nos"].iloc[0]
    assert nos.p_wilcoxon == pytest.approx(scipy.stats.wilcoxon([1.0, 1.0, 1.0]).pvalue)
    assert nos.p_holm == pytest.approx(nos.p_wilcoxon) and nos.seeds_won_share == 1.0
    assert nos.comparison_note == "differences of zero variance: no t-test or effect size"


def test_build_leaderboard_empty():
    df = build_leaderboard([])
    assert df.empty and list(df.columns) == BASE_COLUMNS + PUBLISHED_COLUMNS


def test_write_leaderboard_files(tmp_path):
    df = build_leaderboard(crafted_records())
    csv_path, md_path = write_leaderboard(df, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["leaderboard.csv", "leaderboard.md"]
    text = ("variant", "seeds", "comparison_note", "test_source", "search_source", "test_acc_interval",
            "search_hours_interval", "published_statistic", "published_search_cost", "published_budget",
            "published_source", "published_note")  # read back as text: an empty cell is "" (pandas reads it as NaN)
    again = pd.read_csv(csv_path, dtype=dict.fromkeys(text, str)).fillna(dict.fromkeys(text, ""))
    again["published_inside"] = again["published_inside"].astype("boolean")  # true, false or empty
    pd.testing.assert_frame_equal(again, df, check_dtype=False)
    markdown = md_path.read_text()
    # one short table per space, dataset and budget; every column stays in the CSV
    assert "## darts · search dataset digits · smoke budget" in markdown and "`leaderboard.csv`" in markdown
    tables = [line for line in markdown.splitlines() if line.startswith("| rank |")]
    assert len(tables) == 2 and all(line.count("|") - 1 <= 8 for line in tables)
    assert tables[0] == ("| rank | method | seeds | test acc % | best | search cost | p vs darts (Wilcoxon, Holm) "
                         "| seeds won vs darts |")
    darts_section = markdown.split("## ")[1]
    rows = {line.split("|")[2].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in darts_section.splitlines() if line.startswith("| ") and not line.startswith("| rank")}
    assert rows["nos"] == ["1", "nos", "3", "94.00 ± 2.00", "96.00", "1.00 h", "n = 3: cannot reach p &lt; 0.05",
                           "2/3"]
    assert rows["darts \\[epochs=3,lr=0.1\\]"][5:] == ["1.00 h", "n = 2: cannot reach p &lt; 0.05", "2/2"]
    assert rows["darts"][5:] == ["1.00 h", "—", "—"] and rows["gdas"][6:] == ["—", "0/1"]
    assert "so fewer than 6 cannot reach 0.05" in markdown and "(a tie counts half)" in markdown
    cols = list(df.columns)
    darts_row = df[(df["method"] == "darts") & (df["variant"] == "")].iloc[0]
    assert darts_row["baseline"] == "darts" and pd.isna(darts_row["n_common_seeds"])
    nos = df[(df["method"] == "nos") & (df["space"] == "darts")].iloc[0]
    assert [nos[c] for c in ("n_common_seeds", "p_wilcoxon", "p_wilcoxon_min", "p_holm", "p_holm_min")] == [
        3, 0.5, 0.25, 1.0, 0.5]
    assert "seeds_won_share" in cols and "p_beats_baseline" not in cols


def test_leaderboard_table_renders():
    df = build_leaderboard(crafted_records())
    console = Console(record=True, width=250)
    console.print(leaderboard_table(df, "leaderboard"))
    out = console.export_text()
    assert "94.00 ± 2.00" in out and "p (Wilcoxon, Holm)" in out and "epochs=3,lr=0.1" in out
    assert "p vs darts" not in out


# --- the same outputs as before the metric table -------------------------------------------------
NB201_GENOTYPE = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"


def golden_records():
    """Records of every kind the views meet: several seeds, a variant, a NaN and a null metric, a metric
    that is missing, an extra numeric key, GPU and CPU hours in one group, and NB-201 records with
    nested ``benchmark`` figures and the architecture-level correlation."""
    darts = [make_record("darts", s, acc, search_seconds=3000.0 + 7 * s) for s, acc in enumerate([90.0, 91.0, 95.5])]
    darts[1]["op_kendall_tau"] = None
    tuned = [make_record("darts", s, acc, overrides={"lr": 0.1, "epochs": 3}, val_acc=70.0 + s)
             for s, acc in enumerate([92.0, 92.5])]
    for key in ("latency_ms", "latency_batch_ms", "latency_batch"):  # a record from before the latencies
        del tuned[1][key]
    nos = [make_record("nos", s, acc, madds_m=400.0 + s, params_m=1.23456 + s, method_extra_tau=0.2 * s,
                       latency_ms=2.0 + 0.5 * s, latency_batch_ms=30.0 + 2 * s)
           for s, acc in enumerate([92.0, 93.5, float("nan")])]
    del nos[1]["params_m"]
    nos[1]["teacher_acc"] = None  # an undefined accuracy outside the table still shows as "—"
    nos[2]["device_hours_kind"] = "GPU-hours"
    nb201 = [make_record(method, s, acc, space="nb201", dataset="cifar10", genotype=NB201_GENOTYPE,
                         arch_kendall_tau=0.3 + 0.1 * s, arch_spearman_rho=0.4 + 0.1 * s, params_m=1.0731,
                         madds_m=153.27, latency_ms=7.8, latency_batch_ms=226.85,
                         test_acc_source="NAS-Bench-201 cifar10 test (table column cifar10_test)",
                         benchmark={"cifar10": {"test": acc, "valid": acc - 1.5}, "cifar100_test": 70.0 + s},
                         benchmark_info={"index": 1234 + s, "arch": NB201_GENOTYPE,
                                         "table": {"path": "default", "source": "NATS-tss-v1_0-3ffb9"}})
             for method, accs in (("darts", [54.3, 88.1]), ("eoinas", [93.76, 94.37]))
             for s, acc in enumerate(accs)]
    return darts + tuned + nos + nb201


def _rendered(renderable, width=220) -> str:
    console = Console(record=True, width=width)
    console.print(renderable)
    return console.export_text()


def _shown(record) -> str:
    console = Console(record=True, width=160)
    show_record(record, console)
    return console.export_text()


# Outputs of the code before the metric table (commit 05c31c9) for golden_records(), plus the latency and one-shot
# rows and columns added since, and the statistics columns (interquartile mean and bootstrap intervals; the paired
# comparison with darts in place of Welch's p_vs_darts), regenerated with every other column's values checked equal
# to the previous ones; lines right-stripped. Issue 29 added the sources (test_source, search_source,
# search_queries_mean), the intervals' kinds, the smallest attainable p-values and renamed p_beats_baseline to
# seeds_won_share (the values of every other column checked equal again), and laid the terminal table out anew
# (readable costs, the variant beside its method, the limits of the p-values, the notes). Issue 30 added the papers'
# published figures (PUBLISHED_COLUMNS; the CSV and Markdown without them checked equal to the previous ones) and the
# terminal's paper % and Δ paper columns (NAS-Bench-201's DARTS row beside the darts nb201 row).
GOLDEN = {
    'csv': (
        'method,space,dataset,budget,variant,n_seeds,seeds,test_source,search_source,search_queries'
        '_mean,test_acc_mean,test_acc_std,test_acc_median,test_acc_best,test_acc_iqm,test_acc_ci_lo'
        'w,test_acc_ci_high,test_acc_interval,search_val_acc_mean,search_hours_mean,search_hours_ci'
        '_low,search_hours_ci_high,search_hours_interval,eval_hours_mean,device_hours_mean,device_h'
        'ours_kind,params_m_mean,madds_m_mean,latency_ms_mean,latency_ms_std,latency_batch_ms_mean,'
        'latency_batch_ms_std,op_kendall_tau_mean,op_spearman_rho_mean,arch_kendall_tau_mean,arch_s'
        'pearman_rho_mean,oneshot_kendall_tau_mean,oneshot_spearman_rho_mean,baseline,n_common_seed'
        's,p_wilcoxon,p_wilcoxon_min,p_ttest,p_holm,p_holm_min,effect_size,seeds_won_share,comparis'
        'on_note,rank,published_test_acc_mean,published_test_acc_std,published_test_acc_best,publis'
        'hed_statistic,published_diff,published_inside,published_params_m,published_search_hours,pu'
        'blished_search_cost,published_budget,published_source,published_note,correlation_seconds_m'
        'ean,latency_batch_mean,method_extra_tau_mean,op_corr_edges_mean,peak_mem_mb_mean,val_acc_m'
        'ean,benchmark_cifar100_test_mean,benchmark_cifar100_test_std,benchmark_cifar10_test_mean,b'
        'enchmark_cifar10_test_std,benchmark_cifar10_valid_mean,benchmark_cifar10_valid_std',
        'nos,darts,digits,smoke,,3,"0,1,2",,trained on digits,,92.75,1.0606601717798212,92.75,93.5,'
        '92.75,92.0,93.5,range,80.0,1.0,1.0,1.0,range,2.0,3.0,CPU-hours/GPU-hours,2.23456,401.0,2.5'
        ',0.5,32.0,2.0,0.5,0.6,,,,,darts,2,0.5,0.5,0.07044657495455456,1.0,1.0,6.363961030678928,1.'
        '0,,1,,,,,,,,,,,,,10.0,64.0,0.20000000000000004,4.0,500.0,,,,,,,',
        'darts,darts,digits,smoke,"epochs=3,lr=0.1",2,"0,1",,trained on digits,,92.25,0.35355339059'
        '32738,92.25,92.5,92.25,92.0,92.5,range,80.0,1.0,1.0,1.0,range,2.0,3.0,CPU-hours,3.3,500.0,'
        '2.5,,40.0,,0.5,0.6,,,,,darts,2,0.5,0.5,0.0903344706017331,1.0,1.0,4.949747468305833,1.0,,2'
        ',,,,,,,,,,,,,10.0,64.0,,4.0,500.0,70.5,,,,,,',
        'darts,darts,digits,smoke,,3,"0,1,2",,trained on digits,,92.16666666666667,2.92973263854115'
        '73,91.0,95.5,92.16666666666667,90.0,95.5,range,80.0,0.8352777777777778,0.8333333333333334,'
        '0.8372222222222222,range,2.0,3.0,CPU-hours,3.2999999999999994,500.0,2.5,0.0,40.0,0.0,0.5,0'
        '.6,,,,,darts,,,,,,,,,,3,,,,,,,,,,,,,10.0,64.0,,4.0,500.0,,,,,,,',
        'eoinas,nb201,cifar10,smoke,,2,"0,1","NAS-Bench-201 CIFAR-10 test, 200 epochs, look-up",tra'
        'ined on cifar10,,94.065,0.43133513652379357,94.065,94.37,94.065,93.76,94.37,range,80.0,1.0'
        ',1.0,1.0,range,2.0,3.0,CPU-hours,1.0731,153.27,7.8,0.0,226.85,0.0,0.5,0.6,0.35,0.45,,,dart'
        's,2,0.5,0.5,0.39968289483265584,0.5,0.5,0.9742691504567892,1.0,,1,,,,,,,,,,,,,10.0,64.0,,4'
        '.0,500.0,,70.5,0.7071067811865476,94.065,0.43133513652379357,92.565,0.43133513652379357',
        'darts,nb201,cifar10,smoke,,2,"0,1","NAS-Bench-201 CIFAR-10 test, 200 epochs, look-up",trai'
        'ned on cifar10,,71.19999999999999,23.900209204105305,71.19999999999999,88.1,71.19999999999'
        '999,54.3,88.1,range,80.0,1.0,1.0,1.0,range,2.0,3.0,CPU-hours,1.0731,153.27,7.8,0.0,226.85,'
        '0.0,0.5,0.6,0.35,0.45,,,darts,,,,,,,,,,2,54.3,0.0,,mean,16.89999999999999,True,,,,each bas'
        'eline searched as the NAS-Bench-201 authors ran it (not restated in this table); the deriv'
        'ed cell\'s accuracy looked up in NAS-Bench-201 (networks trained 200 epochs),"AGNAS (Sun et'
        ' al., ICML 2022), Table 3","the caption: the average of three independent searches; the ba'
        'selines are the algorithms NAS-Bench-201 (Dong & Yang, ICLR 2020) benchmarked, their figur'
        "es not cited to a source in this table; published figures are at the papers' budget; this "
        'row is budget smoke",10.0,64.0,,4.0,500.0,,70.5,0.7071067811865476,71.19999999999999,23.90'
        '0209204105305,69.69999999999999,23.900209204105305',
    ),
    'md': (
        '| method | space | dataset | budget | variant | n_seeds | seeds | test_source | search_sou'
        'rce | search_queries_mean | test_acc_mean | test_acc_std | test_acc_median | test_acc_best'
        ' | test_acc_iqm | test_acc_ci_low | test_acc_ci_high | test_acc_interval | search_val_acc_'
        'mean | search_hours_mean | search_hours_ci_low | search_hours_ci_high | search_hours_inter'
        'val | eval_hours_mean | device_hours_mean | device_hours_kind | params_m_mean | madds_m_me'
        'an | latency_ms_mean | latency_ms_std | latency_batch_ms_mean | latency_batch_ms_std | op_'
        'kendall_tau_mean | op_spearman_rho_mean | arch_kendall_tau_mean | arch_spearman_rho_mean |'
        ' oneshot_kendall_tau_mean | oneshot_spearman_rho_mean | baseline | n_common_seeds | p_wilc'
        'oxon | p_wilcoxon_min | p_ttest | p_holm | p_holm_min | effect_size | seeds_won_share | co'
        'mparison_note | rank | published_test_acc_mean | published_test_acc_std | published_test_a'
        'cc_best | published_statistic | published_diff | published_inside | published_params_m | p'
        'ublished_search_hours | published_search_cost | published_budget | published_source | publ'
        'ished_note | correlation_seconds_mean | latency_batch_mean | method_extra_tau_mean | op_co'
        'rr_edges_mean | peak_mem_mb_mean | val_acc_mean | benchmark_cifar100_test_mean | benchmark'
        '_cifar100_test_std | benchmark_cifar10_test_mean | benchmark_cifar10_test_std | benchmark_'
        'cifar10_valid_mean | benchmark_cifar10_valid_std |',
        '|---|---|---|---|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---'
        ':|---:|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
        '---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---|---:|---:'
        '|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
        '| nos | darts | digits | smoke |  | 3 | 0,1,2 |  | trained on digits | — | 92.75 | 1.06 | '
        '92.75 | 93.50 | 92.75 | 92.00 | 93.50 | range | 80.00 | 1.00 | 1.00 | 1.00 | range | 2.00 '
        '| 3.00 | CPU-hours/GPU-hours | 2.23 | 401.00 | 2.50 | 0.50 | 32.00 | 2.00 | 0.500 | 0.600 '
        '| — | — | — | — | darts | 2 | 0.500 | 0.500 | 0.070 | 1.000 | 1.000 | 6.36 | 1.00 |  | 1 |'
        ' — | — | — |  | — | — | — | — |  |  |  |  | 10.00 | 64.00 | 0.200 | 4.00 | 500.00 | — | — '
        '| — | — | — | — | — |',
        '| darts | darts | digits | smoke | epochs=3,lr=0.1 | 2 | 0,1 |  | trained on digits | — | '
        '92.25 | 0.35 | 92.25 | 92.50 | 92.25 | 92.00 | 92.50 | range | 80.00 | 1.00 | 1.00 | 1.00 '
        '| range | 2.00 | 3.00 | CPU-hours | 3.30 | 500.00 | 2.50 | — | 40.00 | — | 0.500 | 0.600 |'
        ' — | — | — | — | darts | 2 | 0.500 | 0.500 | 0.090 | 1.000 | 1.000 | 4.95 | 1.00 |  | 2 | '
        '— | — | — |  | — | — | — | — |  |  |  |  | 10.00 | 64.00 | — | 4.00 | 500.00 | 70.50 | — |'
        ' — | — | — | — | — |',
        '| darts | darts | digits | smoke |  | 3 | 0,1,2 |  | trained on digits | — | 92.17 | 2.93 '
        '| 91.00 | 95.50 | 92.17 | 90.00 | 95.50 | range | 80.00 | 0.84 | 0.83 | 0.84 | range | 2.0'
        '0 | 3.00 | CPU-hours | 3.30 | 500.00 | 2.50 | 0.00 | 40.00 | 0.00 | 0.500 | 0.600 | — | — '
        '| — | — | darts | — | — | — | — | — | — | — | — |  | 3 | — | — | — |  | — | — | — | — |  |'
        '  |  |  | 10.00 | 64.00 | — | 4.00 | 500.00 | — | — | — | — | — | — | — |',
        '| eoinas | nb201 | cifar10 | smoke |  | 2 | 0,1 | NAS-Bench-201 CIFAR-10 test, 200 epochs,'
        ' look-up | trained on cifar10 | — | 94.06 | 0.43 | 94.06 | 94.37 | 94.06 | 93.76 | 94.37 |'
        ' range | 80.00 | 1.00 | 1.00 | 1.00 | range | 2.00 | 3.00 | CPU-hours | 1.07 | 153.27 | 7.'
        '80 | 0.00 | 226.85 | 0.00 | 0.500 | 0.600 | 0.350 | 0.450 | — | — | darts | 2 | 0.500 | 0.'
        '500 | 0.400 | 0.500 | 0.500 | 0.97 | 1.00 |  | 1 | — | — | — |  | — | — | — | — |  |  |  |'
        '  | 10.00 | 64.00 | — | 4.00 | 500.00 | — | 70.50 | 0.71 | 94.06 | 0.43 | 92.56 | 0.43 |',
        '| darts | nb201 | cifar10 | smoke |  | 2 | 0,1 | NAS-Bench-201 CIFAR-10 test, 200 epochs, '
        'look-up | trained on cifar10 | — | 71.20 | 23.90 | 71.20 | 88.10 | 71.20 | 54.30 | 88.10 |'
        ' range | 80.00 | 1.00 | 1.00 | 1.00 | range | 2.00 | 3.00 | CPU-hours | 1.07 | 153.27 | 7.'
        '80 | 0.00 | 226.85 | 0.00 | 0.500 | 0.600 | 0.350 | 0.450 | — | — | darts | — | — | — | — '
        '| — | — | — | — |  | 2 | 54.30 | 0.00 | — | mean | 16.90 | True | — | — |  | each baseline'
        ' searched as the NAS-Bench-201 authors ran it (not restated in this table); the derived ce'
        "ll's accuracy looked up in NAS-Bench-201 (networks trained 200 epochs) | AGNAS (Sun et al."
        ', ICML 2022), Table 3 | the caption: the average of three independent searches; the baseli'
        'nes are the algorithms NAS-Bench-201 (Dong &amp; Yang, ICLR 2020) benchmarked, their figur'
        "es not cited to a source in this table; published figures are at the papers' budget; this "
        'row is budget smoke | 10.00 | 64.00 | — | 4.00 | 500.00 | — | 70.50 | 0.71 | 71.20 | 23.90'
        ' | 69.70 | 23.90 |',
    ),
    'terminal': (
        'leaderboard',
        '',
        ' rank   method                    space   search dataset   budget   seeds       test acc %'
        '         paper %           Δ paper    best   search cost   params M   MAdds M    latency m'
        's    op τ   arch τ',
        ' ─────────────────────────────────────────────────────────────────────────────────────────'
        '──────────────────────────────────────────────────────────────────────────────────────────'
        '──────────────────',
        '    1   nos                       darts   digits           smoke        3     92.75 ± 1.06'
        '               —                 —   93.50        1.00 h       2.23    401.00   2.50 ± 0.5'
        '0   0.500        —',
        '    2   darts [epochs=3,lr=0.1]   darts   digits           smoke        2     92.25 ± 0.35'
        '               —                 —   92.50        1.00 h       3.30    500.00      2.50 ± '
        '—   0.500        —',
        '    3   darts                     darts   digits           smoke        3     92.17 ± 2.93'
        '               —                 —   95.50      50.1 min       3.30    500.00   2.50 ± 0.0'
        '0   0.500        —',
        '    1   eoinas                    nb201   cifar10          smoke        2    94.06 ± 0.43¹'
        '               —                 —   94.37        1.00 h       1.07    153.27   7.80 ± 0.0'
        '0   0.500    0.350',
        '    2   darts                     nb201   cifar10          smoke        2   71.20 ± 23.90¹'
        '   54.30 ± 0.00²   +16.90 (inside)   88.10        1.00 h       1.07    153.27   7.80 ± 0.0'
        '0   0.500    0.350',
        '',
        '(continued: the columns that did not fit beside them)',
        '',
        ' method                    space   search dataset         p (Wilcoxon, Holm)   seeds won',
        ' ───────────────────────────────────────────────────────────────────────────────────────',
        ' nos                       darts   digits           n=2: cannot reach p<0.05         2/2',
        ' darts [epochs=3,lr=0.1]   darts   digits           n=2: cannot reach p<0.05         2/2',
        ' darts                     darts   digits                                  —           —',
        ' eoinas                    nb201   cifar10          n=2: cannot reach p<0.05         2/2',
        ' darts                     nb201   cifar10                                 —           —',
        '',
        '¹ test accuracy: NAS-Bench-201 CIFAR-10 test, 200 epochs, look-up',
        "² paper: AGNAS (Sun et al., ICML 2022), Table 3; the paper's budget: each baseline searche"
        "d as the NAS-Bench-201 authors ran it (not restated in this table); the derived cell's acc"
        'uracy looked up in NAS-Bench-201',
        '(networks trained 200 epochs)',
        'paper %: the published test accuracy beside the row (100 − the test error where a paper st'
        "ates an error), as printed: mean ± std, one figure, or the best of runs; Δ paper: the row'"
        's mean − the published mean, and whether',
        "the published mean lies inside or outside the row's interval of the mean",
        "published figures are at the papers' budget; this row is budget smoke",
        'p (Wilcoxon, Holm): two-sided Wilcoxon signed-rank test of the test accuracy against darts'
        ' on the common seeds, Holm-adjusted within a space, dataset and budget; with n common seed'
        's p cannot go below 2/2ⁿ (n = 3: 0.25),',
        'so fewer than 6 cannot reach 0.05.',
        "seeds won: the common seeds where the row's test accuracy beats darts's (a tie counts half"
        ').',
    ),
    'show_nb201': (
        'method eoinas · space nb201 · dataset cifar10 · budget smoke · seed 1',
        'experiment: exp  config_hash: abc123  device: cpu (2 threads)  harness_version: 0.1.0  fin'
        'ished_at: 2025-01-01T00:00:00+00:00',
        'genotype',
        '  |nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|',
        'benchmark index 1235 (table default, source NATS-tss-v1_0-3ffb9)',
        'test accuracy: NAS-Bench-201 cifar10 test (table column cifar10_test)',
        'metrics',
        '┏━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━┓',
        '┃ metric                  ┃  value ┃ unit ┃',
        '┡━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━┩',
        '│ supernet val accuracy   │     80 │ %    │',
        '│ test accuracy           │  94.37 │ %    │',
        '│ search time             │ 1.00 h │      │',
        '│ correlation time        │ 10.0 s │      │',
        '│ evaluation time         │ 2.00 h │      │',
        '│ device time             │ 3.00 h │ CPU  │',
        '│ peak memory             │    500 │ MB   │',
        '│ parameters              │  1.073 │ M    │',
        '│ multiply-adds           │  153.3 │ M    │',
        '│ latency, batch 1        │    7.8 │ ms   │',
        '│ latency, eval batch     │  226.8 │ ms   │',
        '│ latency batch size      │     64 │      │',
        '│ op-level Kendall τ      │    0.5 │      │',
        '│ op-level Spearman ρ     │    0.6 │      │',
        '│ op-level edges sampled  │      4 │      │',
        '│ arch-level Kendall τ    │    0.4 │      │',
        '│ arch-level Spearman ρ   │    0.5 │      │',
        '│ benchmark cifar10.test  │  94.37 │      │',
        '│ benchmark cifar10.valid │  92.87 │      │',
        '│ benchmark cifar100_test │     71 │      │',
        '└─────────────────────────┴────────┴──────┘',
        'history (1 epochs)',
        '┏━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━┓',
        '┃ epoch ┃ phase  ┃ train_loss ┃ val_acc ┃',
        '┡━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━┩',
        '│     0 │ search │          2 │      50 │',
        '└───────┴────────┴────────────┴─────────┘',
        'configuration',
        '┏━━━━━━━━┳━━━━━━━┓',
        '┃ key    ┃ value ┃',
        '┡━━━━━━━━╇━━━━━━━┩',
        '│ epochs │ 2     │',
        '│ lr     │ 0.025 │',
        '└────────┴───────┘',
    ),
    'show_darts_null': (
        'method darts · space darts · dataset digits · budget smoke · seed 1',
        'experiment: exp  config_hash: abc123  device: cpu (2 threads)  harness_version: 0.1.0  fin'
        'ished_at: 2025-01-01T00:00:00+00:00',
        'genotype',
        '  normal cell:',
        '    node 2 ← (sep_conv_3x3, 0), (sep_conv_3x3, 1)',
        '    node 3 ← (skip_connect, 0), (sep_conv_3x3, 1)',
        '    node 4 ← (skip_connect, 0), (dil_conv_3x3, 2)',
        '    node 5 ← (skip_connect, 0), (sep_conv_3x3, 1)',
        '    output = concat range(2, 6)',
        '  reduce cell:',
        '    node 2 ← (max_pool_3x3, 0), (max_pool_3x3, 1)',
        '    node 3 ← (skip_connect, 2), (max_pool_3x3, 0)',
        '    node 4 ← (max_pool_3x3, 0), (skip_connect, 2)',
        '    node 5 ← (skip_connect, 2), (avg_pool_3x3, 0)',
        '    output = concat range(2, 6)',
        'metrics',
        '┏━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━┓',
        '┃ metric                 ┃    value ┃ unit ┃',
        '┡━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━┩',
        '│ supernet val accuracy  │       80 │ %    │',
        '│ test accuracy          │       91 │ %    │',
        '│ search time            │ 50.1 min │      │',
        '│ correlation time       │   10.0 s │      │',
        '│ evaluation time        │   2.00 h │      │',
        '│ device time            │   3.00 h │ CPU  │',
        '│ peak memory            │      500 │ MB   │',
        '│ parameters             │      3.3 │ M    │',
        '│ multiply-adds          │      500 │ M    │',
        '│ latency, batch 1       │      2.5 │ ms   │',
        '│ latency, eval batch    │       40 │ ms   │',
        '│ latency batch size     │       64 │      │',
        '│ op-level Kendall τ     │        — │      │',
        '│ op-level Spearman ρ    │      0.6 │      │',
        '│ op-level edges sampled │        4 │      │',
        '└────────────────────────┴──────────┴──────┘',
        'history (1 epochs)',
        '┏━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━┓',
        '┃ epoch ┃ phase  ┃ train_loss ┃ val_acc ┃',
        '┡━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━┩',
        '│     0 │ search │          2 │      50 │',
        '└───────┴────────┴────────────┴─────────┘',
        'configuration',
        '┏━━━━━━━━┳━━━━━━━┓',
        '┃ key    ┃ value ┃',
        '┡━━━━━━━━╇━━━━━━━┩',
        '│ epochs │ 2     │',
        '│ lr     │ 0.025 │',
        '└────────┴───────┘',
    ),
    'show_nos_missing': (
        'method nos · space darts · dataset digits · budget smoke · seed 1',
        'experiment: exp  config_hash: abc123  device: cpu (2 threads)  harness_version: 0.1.0  fin'
        'ished_at: 2025-01-01T00:00:00+00:00',
        'genotype',
        '  normal cell:',
        '    node 2 ← (sep_conv_3x3, 0), (sep_conv_3x3, 1)',
        '    node 3 ← (skip_connect, 0), (sep_conv_3x3, 1)',
        '    node 4 ← (skip_connect, 0), (dil_conv_3x3, 2)',
        '    node 5 ← (skip_connect, 0), (sep_conv_3x3, 1)',
        '    output = concat range(2, 6)',
        '  reduce cell:',
        '    node 2 ← (max_pool_3x3, 0), (max_pool_3x3, 1)',
        '    node 3 ← (skip_connect, 2), (max_pool_3x3, 0)',
        '    node 4 ← (max_pool_3x3, 0), (skip_connect, 2)',
        '    node 5 ← (skip_connect, 2), (avg_pool_3x3, 0)',
        '    output = concat range(2, 6)',
        'metrics',
        '┏━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━┓',
        '┃ metric                 ┃  value ┃ unit ┃',
        '┡━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━┩',
        '│ supernet val accuracy  │     80 │ %    │',
        '│ test accuracy          │   93.5 │ %    │',
        '│ search time            │ 1.00 h │      │',
        '│ correlation time       │ 10.0 s │      │',
        '│ evaluation time        │ 2.00 h │      │',
        '│ device time            │ 3.00 h │ CPU  │',
        '│ peak memory            │    500 │ MB   │',
        '│ multiply-adds          │    401 │ M    │',
        '│ latency, batch 1       │    2.5 │ ms   │',
        '│ latency, eval batch    │     32 │ ms   │',
        '│ latency batch size     │     64 │      │',
        '│ op-level Kendall τ     │    0.5 │      │',
        '│ op-level Spearman ρ    │    0.6 │      │',
        '│ op-level edges sampled │      4 │      │',
        '│ method_extra_tau       │    0.2 │      │',
        '│ teacher_acc            │      — │      │',
        '└────────────────────────┴────────┴──────┘',
        'history (1 epochs)',
        '┏━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━┓',
        '┃ epoch ┃ phase  ┃ train_loss ┃ val_acc ┃',
        '┡━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━┩',
        '│     0 │ search │          2 │      50 │',
        '└───────┴────────┴────────────┴─────────┘',
        'configuration',
        '┏━━━━━━━━┳━━━━━━━┓',
        '┃ key    ┃ value ┃',
        '┡━━━━━━━━╇━━━━━━━┩',
        '│ epochs │ 2     │',
        '│ lr     │ 0.025 │',
        '└────────┴───────┘',
    ),
    'show_nos_nan': (
        'method nos · space darts · dataset digits · budget smoke · seed 2',
        'experiment: exp  config_hash: abc123  device: cpu (2 threads)  harness_version: 0.1.0  fin'
        'ished_at: 2025-01-01T00:00:00+00:00',
        'genotype',
        '  normal cell:',
        '    node 2 ← (sep_conv_3x3, 0), (sep_conv_3x3, 1)',
        '    node 3 ← (skip_connect, 0), (sep_conv_3x3, 1)',
        '    node 4 ← (skip_connect, 0), (dil_conv_3x3, 2)',
        '    node 5 ← (skip_connect, 0), (sep_conv_3x3, 1)',
        '    output = concat range(2, 6)',
        '  reduce cell:',
        '    node 2 ← (max_pool_3x3, 0), (max_pool_3x3, 1)',
        '    node 3 ← (skip_connect, 2), (max_pool_3x3, 0)',
        '    node 4 ← (max_pool_3x3, 0), (skip_connect, 2)',
        '    node 5 ← (skip_connect, 2), (avg_pool_3x3, 0)',
        '    output = concat range(2, 6)',
        'metrics',
        '┏━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━┓',
        '┃ metric                 ┃  value ┃ unit ┃',
        '┡━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━┩',
        '│ supernet val accuracy  │     80 │ %    │',
        '│ test accuracy          │      — │ %    │',
        '│ search time            │ 1.00 h │      │',
        '│ correlation time       │ 10.0 s │      │',
        '│ evaluation time        │ 2.00 h │      │',
        '│ device time            │ 3.00 h │ GPU  │',
        '│ peak memory            │    500 │ MB   │',
        '│ parameters             │  3.235 │ M    │',
        '│ multiply-adds          │    402 │ M    │',
        '│ latency, batch 1       │      3 │ ms   │',
        '│ latency, eval batch    │     34 │ ms   │',
        '│ latency batch size     │     64 │      │',
        '│ op-level Kendall τ     │    0.5 │      │',
        '│ op-level Spearman ρ    │    0.6 │      │',
        '│ op-level edges sampled │      4 │      │',
        '│ method_extra_tau       │    0.4 │      │',
        '└────────────────────────┴────────┴──────┘',
        'history (1 epochs)',
        '┏━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━┓',
        '┃ epoch ┃ phase  ┃ train_loss ┃ val_acc ┃',
        '┡━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━┩',
        '│     0 │ search │          2 │      50 │',
        '└───────┴────────┴────────────┴─────────┘',
        'configuration',
        '┏━━━━━━━━┳━━━━━━━┓',
        '┃ key    ┃ value ┃',
        '┡━━━━━━━━╇━━━━━━━┩',
        '│ epochs │ 2     │',
        '│ lr     │ 0.025 │',
        '└────────┴───────┘',
    ),
    'summary': (
        'trials of exp',
        '',
        ' seed   record                     search val %   test %   params M    op τ   search time '
        '  evaluation time',
        ' ─────────────────────────────────────────────────────────────────────────────────────────'
        '─────────────────',
        '    0   nos-darts-digits-s0.json          80.00    92.00      1.235   0.500        1.00 h '
        '           2.00 h',
        '    1   nos-darts-digits-s1.json          80.00    93.50          —   0.500        1.00 h '
        '           2.00 h',
        '    2   nos-darts-digits-s2.json          80.00        —      3.235   0.500        1.00 h '
        '           2.00 h',
        '',
        'leaderboard (smoke budget, digits)',
        '',
        ' rank   method   space   search dataset   budget   seeds     test acc %    best   search c'
        'ost   params M   MAdds M',
        ' ─────────────────────────────────────────────────────────────────────────────────────────'
        '────────────────────────',
        '    1   nos      darts   digits           smoke        3   92.75 ± 1.06   93.50        1.0'
        '0 h       2.23    401.00',
        '',
        '(continued: the columns that did not fit beside them)',
        '',
        ' method    latency ms    op τ   p (Wilcoxon, Holm)   seeds won',
        ' ─────────────────────────────────────────────────────────────',
        ' nos      2.50 ± 0.50   0.500                    —           —',
        '',
        'records: <tmp>/exp/trials (python -m harness show RECORD)',
        'leaderboard: <tmp>/exp/leaderboard.csv',
        'report: python -m harness report <tmp>/exp',
    ),
    'summary_csv': (
        'method,space,dataset,budget,variant,n_seeds,seeds,test_source,search_source,search_queries'
        '_mean,test_acc_mean,test_acc_std,test_acc_median,test_acc_best,test_acc_iqm,test_acc_ci_lo'
        'w,test_acc_ci_high,test_acc_interval,search_val_acc_mean,search_hours_mean,search_hours_ci'
        '_low,search_hours_ci_high,search_hours_interval,eval_hours_mean,device_hours_mean,device_h'
        'ours_kind,params_m_mean,madds_m_mean,latency_ms_mean,latency_ms_std,latency_batch_ms_mean,'
        'latency_batch_ms_std,op_kendall_tau_mean,op_spearman_rho_mean,arch_kendall_tau_mean,arch_s'
        'pearman_rho_mean,oneshot_kendall_tau_mean,oneshot_spearman_rho_mean,baseline,n_common_seed'
        's,p_wilcoxon,p_wilcoxon_min,p_ttest,p_holm,p_holm_min,effect_size,seeds_won_share,comparis'
        'on_note,rank,published_test_acc_mean,published_test_acc_std,published_test_acc_best,publis'
        'hed_statistic,published_diff,published_inside,published_params_m,published_search_hours,pu'
        'blished_search_cost,published_budget,published_source,published_note,correlation_seconds_m'
        'ean,latency_batch_mean,method_extra_tau_mean,op_corr_edges_mean,peak_mem_mb_mean',
        'nos,darts,digits,smoke,,3,"0,1,2",,trained on digits,,92.75,1.0606601717798212,92.75,93.5,'
        '92.75,92.0,93.5,range,80.0,1.0,1.0,1.0,range,2.0,3.0,CPU-hours/GPU-hours,2.23456,401.0,2.5'
        ',0.5,32.0,2.0,0.5,0.6,,,,,darts,0,,,,,,,,no darts row without overrides to compare with,1,'
        ',,,,,,,,,,,,10.0,64.0,0.20000000000000004,4.0,500.0',
    ),
}


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.rstrip() for line in text.rstrip("\n").split("\n"))


def test_leaderboard_csv_markdown_and_terminal_table_unchanged():
    df = build_leaderboard(golden_records())
    assert _lines(df.to_csv(index=False)) == GOLDEN["csv"]
    assert _lines(to_markdown(df)) == GOLDEN["md"]
    assert _lines(_rendered(leaderboard_table(df, "leaderboard"))) == GOLDEN["terminal"]


@pytest.mark.parametrize("index, name", [(-1, "show_nb201"), (1, "show_darts_null"), (6, "show_nos_missing"),
                                         (7, "show_nos_nan")])
def test_show_record_unchanged(index, name):
    assert _lines(_shown(golden_records()[index])) == GOLDEN[name]


def test_run_summary_unchanged(tmp_path):
    from harness.experiment import summarise

    spec = a_spec(tmp_path / "exp", config_hash="abc123", seeds=(0, 1, 2))
    for record in golden_records()[5:8]:  # nos on darts: seeds 0-2, one without params, one with a NaN accuracy
        name = record_filename(record["method"], record["space"], record["dataset"], record["seed"])
        write_record(tmp_path / "exp" / "trials" / name, record)
    console = Console(record=True, width=200)
    assert summarise([spec], spec.folder, console, [], False) == 0
    assert _lines(console.export_text().replace(str(tmp_path), "<tmp>")) == GOLDEN["summary"]
    assert _lines((tmp_path / "exp" / "leaderboard.csv").read_text()) == GOLDEN["summary_csv"]


def test_reference_rows_come_from_the_table_each_record_describes(tmp_path, capsys):
    """One optimum row per (space, dataset, budget) whose records name a benchmark table: that table (here the
    bundled one, by its recorded provenance) through the record's space; no row for a space without a benchmark
    or one that is not registered."""
    from harness.core.benchmarks.nb201 import load_table
    from harness.leaderboard import reference_rows

    table = load_table()
    info = {"index": 0, "arch": NB201_GENOTYPE, "table": table.describe()}
    records = [*golden_records(),
               make_record("darts", 0, 90.0, space="darts", benchmark_info=info),  # a space without a benchmark
               make_record("darts", 0, 90.0, space="no-such-space", benchmark_info=info),
               make_record("darts", 0, 90.0, space="nb201", dataset="cifar100", benchmark_info=info)]
    rows = reference_rows(records)
    assert [(r["method"], r["space"], r["dataset"], r["budget"]) for r in rows] == [
        ("optimum", "nb201", "cifar10", "smoke"), ("optimum", "nb201", "cifar100", "smoke")]
    optimum = table.optimum()
    assert rows[0]["test_acc_mean"] == rows[0]["test_acc_best"] == optimum["cifar10_test"]
    assert rows[1]["test_acc_mean"] == optimum["cifar100_test"]
    assert {k: v for k, v in rows[0].items() if k.startswith("benchmark_")} == {
        f"benchmark_{c}_mean": v for c, v in optimum.items()}
    missing = make_record("darts", 0, 90.0, space="nb201",
                          benchmark_info={**info, "table": {"path": str(tmp_path / "gone.npz")}})
    # the recorded table, not silently the default: not on this machine, so no row, said in one line (issue 27)
    assert reference_rows([missing, missing]) == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err and "gone.npz" in err
    # a benchmark that does not know its optimum (a surrogate: optimum() is None) gives no row
    surrogate = type("Surrogate", (), {"optimum": lambda self: None})()
    key = json.dumps(["nb201", info["table"]], sort_keys=True, default=str)
    assert reference_rows(records[-1:], {key: surrogate}) == []


def test_nos_teacher_cost_is_beside_the_search_cost(capsys):
    """NOS's teacher (trained by seed 0, loaded from the cache by seed 1) is stated the same way for both seeds
    and kept out of the search hours: the leaderboard averages it in its own columns; the record display shows it."""
    teacher = {"teacher_seconds": 7200.0, "teacher_device_hours": 2.0}
    records = [make_record("darts", 0), make_record("darts", 1),
               make_record("nos", 0, teacher_cached=False, teacher_obtain_seconds=7201.0, **teacher),
               make_record("nos", 1, teacher_cached=True, teacher_obtain_seconds=0.5, **teacher)]
    df = build_leaderboard(records).set_index("method")
    assert df.loc["nos", "teacher_device_hours_mean"] == pytest.approx(2.0)
    assert df.loc["nos", "teacher_seconds_mean"] == pytest.approx(7200.0)
    assert df.loc["nos", "search_hours_mean"] == pytest.approx(1.0)  # the search alone
    assert math.isnan(df.loc["darts", "teacher_device_hours_mean"])
    assert "teacher_cached_mean" not in df.columns  # a flag, not a cost
    shown = _shown(records[2])
    assert "teacher training time" in shown and "teacher device time" in shown
    assert "teacher from the cache" in shown and "false" in shown


# --- one tolerant loader for every view (issue 27) ----------------------------------------------------------------
def _raw(path: Path, text: str) -> Path:
    """A record file written as given (a bad record cannot pass through ``write_record``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _with(**fields) -> str:
    record = make_record(method="nos", seed=7)
    record.update(fields)
    return json.dumps(record)


BAD_RECORDS = {  # a record no view can place: skipped by every view with one warning line
    "nested 100,000 deep": _with()[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "nested past the limit": _with()[:-1] + ', "deep": ' + "[" * 200 + "]" * 200 + "}",
    "a 5,001-digit number": _with()[:-1] + ', "test_acc": ' + "1" * 5001 + "}",
    "a number beyond a float": _with()[:-1] + ', "test_acc": 1' + "0" * 400 + "}",
    "a list as seed": _with(seed=[1]),
    "a list of overrides": _with(overrides=["lr=0.1"]),
    "a seed of true": _with(seed=True),
    "a lone surrogate": _with()[:-1] + ', "method": "nos\\ud800"}',
}


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_leaderboard_skips_a_bad_record_with_one_warning(tmp_path, capsys, case):
    from harness.cli import main

    write_record(tmp_path / "exp" / "trials" / "good.json", make_record("darts", 0, 91.0))
    _raw(tmp_path / "exp" / "trials" / "bad.json", BAD_RECORDS[case])
    assert main(["leaderboard", str(tmp_path), "--optimum"]) == 0
    out, err = capsys.readouterr()
    assert "leaderboard of" in out and "(1 records)" in out and "91.00" in out
    assert err.count("\n") == 1 and err.startswith("warning: skipping record") and "bad.json" in err
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert list(board["method"]) == ["darts"]


FIELD_CASES = {  # a field no view can read: the record stays, without that field, and one warning line names it
    "split": {"split": {}},
    "benchmark_info": {"benchmark_info": {"index": 3, "table": "default"}},
    "test_acc": {"test_acc": "91"},
    "history": {"history": [{"phase": ["search"], "epoch": 0}]},
    "config_hash": {"config_hash": ["abc"]},
}


@pytest.mark.parametrize("field", sorted(FIELD_CASES))
def test_show_and_leaderboard_leave_out_a_field_they_cannot_read(tmp_path, capsys, field):
    from harness.cli import main

    path = _raw(tmp_path / "exp" / "trials" / "r.json", _with(**FIELD_CASES[field]))
    assert main(["show", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "method nos · space darts · dataset digits · budget smoke · seed 7" in out
    assert err.count("\n") == 1 and err.startswith("warning: record") and f"left out {field}" in err
    assert main(["leaderboard", str(tmp_path), "--optimum"]) == 0
    out, err = capsys.readouterr()
    assert "(1 records)" in out and err.count("\n") == 1 and field in err


@pytest.mark.parametrize("case", ["nested 100,000 deep", "a 5,001-digit number", "a list as seed"])
def test_show_of_a_bad_record_is_one_line(tmp_path, capsys, case):
    from harness.cli import main

    path = _raw(tmp_path / "bad.json", BAD_RECORDS[case])
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("harness: error: record") and "bad.json" in err


def test_private_keys_of_a_file_are_not_taken(tmp_path):
    """``_path`` and ``_label`` are the process's own annotations: a file cannot set them."""
    path = _raw(tmp_path / "exp" / "trials" / "r.json", _with(_label="planted", _path="/elsewhere"))
    (record,) = load_records(tmp_path)
    assert record["_path"] == str(path) and "_label" not in record


def test_show_refuses_what_is_not_a_regular_file(tmp_path, capsys):
    import os

    from harness.cli import main

    fifo = tmp_path / "r.json"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    for target in ("/dev/zero", str(fifo)):
        assert main(["show", target]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "not a regular file" in err and target in err


def test_a_record_larger_than_the_limit_is_not_read(tmp_path, capsys):
    from harness.cli import main
    from harness.core.records import MAX_RECORD_BYTES

    write_record(tmp_path / "exp" / "trials" / "good.json", make_record("darts", 0, 91.0))
    big = tmp_path / "exp" / "trials" / "big.json"
    with big.open("wb") as f:  # sparse: no disk is used
        f.truncate(MAX_RECORD_BYTES + 1)
    assert main(["show", str(big)]) == 2
    assert "larger than" in capsys.readouterr().err
    assert main(["leaderboard", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "(1 records)" in out and err.count("\n") == 1 and "larger than" in err and "big.json" in err


def test_a_view_reads_at_most_max_records(tmp_path, capsys, monkeypatch):
    import harness.core.records
    from harness.cli import main

    monkeypatch.setattr(harness.core.records, "MAX_RECORDS", 2)
    for seed in range(3):
        write_record(tmp_path / "exp" / "trials" / f"r{seed}.json", make_record("darts", seed))
    assert main(["leaderboard", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than 2 record files" in err
    assert not (tmp_path / "leaderboard.csv").exists()


def test_an_experiments_summary_takes_only_its_own_records(tmp_path):
    """An experiment nested in another's folder, with the same setting, lends the outer one nothing."""
    from harness.experiment import summarise

    spec = a_spec(tmp_path / "exp", config_hash="abc123", seeds=(0, 1))
    for seed, acc in ((0, 90.0), (1, 92.0)):
        write_record(tmp_path / "exp" / "trials" / f"darts-s{seed}.json", make_record("darts", seed, acc))
    for seed, acc in ((0, 10.0), (5, 20.0)):  # newer than the outer seed 0, and a seed the outer has not
        write_record(tmp_path / "exp" / "inner" / "trials" / f"darts-s{seed}.json",
                     make_record("darts", seed, acc, finished_at="2026-01-01T00:00:00+00:00"))
    console = Console(record=True, width=200)
    assert summarise([spec], spec.folder, console, [], False) == 0
    board = pd.read_csv(tmp_path / "exp" / "leaderboard.csv", dtype={"seeds": str})
    assert list(board["seeds"]) == ["0,1"] and list(board["test_acc_mean"]) == [91.0]
    assert "inner" not in console.export_text()


# --- user strings are printed as they are (issue 27) -------------------------------------------------------------
MARKUP = "[/bold] [old] :smile: [bold]x"


def test_markup_in_records_and_paths_is_printed_as_it_is(tmp_path, capsys):
    from harness.cli import main

    root = tmp_path / "[old]"
    path = root / "exp" / "trials" / "r.json"
    write_record(path, make_record(method="nos", dataset=f"folder:/d/{MARKUP}", overrides={"lr": MARKUP},
                                   history=[{"epoch": 0, "phase": MARKUP, MARKUP: 1.0}], device=MARKUP,
                                   config={MARKUP: MARKUP}, **{MARKUP: 2.0}))
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count(MARKUP) >= 6 and "😄" not in out
    assert main(["leaderboard", str(root)]) == 0
    out = capsys.readouterr().out
    assert "[old]/leaderboard.csv" in out and "[old] :smile:" in out and "😄" not in out


def test_a_dataset_source_is_printed_as_it_is(tmp_path, capsys, monkeypatch):
    """The "data:" line names where the images came from: a path with markup is printed as it is."""
    import dataclasses

    import harness.experiment
    from harness.cli import main

    real = harness.experiment.load_dataset

    def load(*args, **kwargs):
        return dataclasses.replace(real(*args, **kwargs), source=f"loaded from the cache /c/{MARKUP}/[/x]")

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.experiment, "load_dataset", load)
    monkeypatch.setattr(harness.experiment, "estimate_seconds", stop)
    assert main(["run", "--method", "darts", "--space", "darts", "--dataset", "digits", "--budget", "smoke",
                 "--out", str(tmp_path), "--name", "x"]) == 130
    assert f"data: digits loaded from the cache /c/{MARKUP}/[/x]" in capsys.readouterr().out


def test_the_readme_states_the_loaders_limits():
    """The limits a view reads records under are documented where users read them, with the code's values."""
    from harness.core.records import MAX_NESTING, MAX_RECORD_BYTES, MAX_RECORDS, MAX_TOTAL_BYTES

    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8").split())
    for text in (f"at most {MAX_RECORD_BYTES // 2**20} MiB", f"nested at most {MAX_NESTING} levels",
                 f"at most {MAX_RECORDS:,} record files and {MAX_TOTAL_BYTES // 2**30} GiB",
                 "skipped with one warning line"):
        assert text in readme, text


def test_a_studys_summary_takes_only_its_cells_own_records(tmp_path):
    """As an experiment's summary: an experiment nested inside a cell's folder lends the study nothing."""
    from harness.experiment import summarise
    from harness.study import Study

    cells = tmp_path / "st" / "cells"
    spec = a_spec(cells / "darts-nb201-digits-0123456789", config_hash="abc123", seeds=(0, 1))
    for seed, acc in ((0, 90.0), (1, 92.0)):
        write_record(spec.folder / "trials" / f"darts-s{seed}.json", make_record("darts", seed, acc))
    for seed, acc in ((0, 10.0), (5, 20.0)):
        write_record(spec.folder / "inner" / "trials" / f"darts-s{seed}.json",
                     make_record("darts", seed, acc, finished_at="2026-01-01T00:00:00+00:00"))
    study = Study(name="st", budget="smoke", seeds=[0, 1], cells=[], text="")
    console = Console(record=True, width=200)
    assert summarise([spec], tmp_path / "st", console, [], False, study) == 0
    board = pd.read_csv(tmp_path / "st" / "leaderboard.csv", dtype={"seeds": str})
    assert list(board["seeds"]) == ["0,1"] and list(board["test_acc_mean"]) == [91.0]
