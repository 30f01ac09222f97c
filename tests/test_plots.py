"""The comparison's plots (``harness.plots``) and the spaces' ``cell_graphs``, on crafted records: every expected
file is written, the PNGs are images, and each CSV holds exactly the values the records give."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from harness.core.benchmarks.nb201 import load_table
from harness.core.stats import summary
from harness.plots import KINDS, PlotFile, graph_layout, write_plots
from spaces.darts import CellsGenotype, DartsSpace
from spaces.nb201 import NB201Space
from spaces.proxyless import ProxylessSpace

PNG = b"\x89PNG\r\n\x1a\n"
DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=range(2, 6))")
EPOCHS = 3


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def table():
    return load_table("default")


def nb201_records(table) -> list[dict]:
    """2 series × 3 seeds on NAS-Bench-201: ``darts`` and ``gdas`` with a variant; per seed 3 search epochs whose
    genotypes are real table architectures, an evaluation epoch, an importance matrix and the three Kendall τ
    (``gdas`` has no one-shot τ: None)."""
    rng = np.random.default_rng(0)
    records = []
    for m, (method, overrides) in enumerate((("darts", {}), ("gdas", {"tau_max": 5}))):
        for seed in range(3):
            archs = [table.arch_str(int(i)) for i in rng.integers(0, len(table), EPOCHS)]
            history = [{"phase": "search", "epoch": e, "val_acc": float(10 * m + seed + e), "genotype": archs[e]}
                       for e in range(EPOCHS)]
            history.append({"phase": "eval", "epoch": 0, "val_acc": 99.0})
            records.append({
                "method": method, "space": "nb201", "dataset": "digits", "budget": "smoke", "seed": seed,
                "overrides": overrides, "genotype": archs[-1],
                "test_acc": table.figures(NB201Space({}).parse(archs[-1]))["cifar10_test"],
                "search_seconds": 360.0 * (m + 1) + 36.0 * seed, "device_hours_kind": "CPU-hours",
                "history": history, "benchmark_info": {"arch": archs[-1], "table": table.describe()},
                "importance": {"cell": rng.random((6, 5)).tolist()},
                "op_kendall_tau": 0.1 * seed, "arch_kendall_tau": -0.2 + 0.05 * seed,
                "oneshot_kendall_tau": None if method == "gdas" else 0.3,
            })
    return records


def darts_records() -> list[dict]:
    """One series × 2 seeds on the DARTS space: no history, no importance, no benchmark."""
    return [{"method": "darts", "space": "darts", "dataset": "digits", "budget": "smoke", "seed": seed,
             "overrides": {}, "genotype": DARTS_V2, "test_acc": 90.0 + seed, "search_seconds": 100.0 + seed,
             "op_kendall_tau": None, "arch_kendall_tau": None, "oneshot_kendall_tau": None} for seed in range(2)]


@pytest.fixture(scope="module")
def written(tmp_path_factory, table):
    records = nb201_records(table) + darts_records()
    out = tmp_path_factory.mktemp("plots")
    files = write_plots(records, out)
    return records, out, files


def test_every_expected_file_is_written(written):
    _, out, files = written
    stems = [f.png.stem for f in files]
    assert stems == [
        "darts-digits-smoke-accuracy_vs_cost", "darts-digits-smoke-cells-darts",
        "nb201-digits-smoke-accuracy_vs_cost", "nb201-digits-smoke-search_curves", "nb201-digits-smoke-anytime",
        "nb201-digits-smoke-importance-darts-cell", "nb201-digits-smoke-importance-gdas_tau_max_5-cell",
        "nb201-digits-smoke-correlations", "nb201-digits-smoke-cells-darts", "nb201-digits-smoke-cells-gdas_tau_max_5",
    ]
    assert [f.kind for f in files] == ["accuracy_vs_cost", "cells", "accuracy_vs_cost", "search_curves", "anytime",
                                       "importance", "importance", "correlations", "cells", "cells"]
    assert {f.kind for f in files} == set(KINDS)
    assert {f.group for f in files} == {"darts / digits / smoke", "nb201 / digits / smoke"}
    for f in files:
        assert isinstance(f, PlotFile) and f.title.startswith(f.group)
        assert f.png.parent == out and f.csv == f.png.with_suffix(".csv")
        assert f.png.stat().st_size > 1000 and f.png.read_bytes()[:8] == PNG
        assert f.csv.stat().st_size > 0 and len(read_csv(f.csv)) >= 1
    assert sorted(p.name for p in out.iterdir()) == sorted([f.png.name for f in files] + [f.csv.name for f in files])
    assert plt.get_fignums() == []  # every figure closed


def test_accuracy_vs_cost_csv(written):
    records, out, _ = written
    rows = read_csv(out / "nb201-digits-smoke-accuracy_vs_cost.csv")
    assert [r["label"] for r in rows] == ["darts", "gdas [tau_max=5]"]
    assert [r["variant"] for r in rows] == ["", "tau_max=5"]
    for row, method in zip(rows, ("darts", "gdas")):
        mine = sorted((r for r in records if r["space"] == "nb201" and r["method"] == method), key=lambda r: r["seed"])
        acc = summary([r["test_acc"] for r in mine])
        hours = summary([r["search_seconds"] / 3600 for r in mine])
        assert int(row["n_acc"]) == 3 and int(row["n_cost"]) == 3
        assert float(row["test_acc_mean"]) == acc["mean"]
        assert (float(row["test_acc_ci_low"]), float(row["test_acc_ci_high"])) == (acc["ci_low"], acc["ci_high"])
        assert float(row["search_hours_mean"]) == pytest.approx(hours["mean"])
        assert float(row["search_hours_ci_low"]) == pytest.approx(hours["ci_low"])
    assert float(rows[0]["search_hours_mean"]) == pytest.approx((360 + 396 + 432) / 3 / 3600)


def test_search_curves_csv(written):
    _, out, _ = written
    rows = read_csv(out / "nb201-digits-smoke-search_curves.csv")
    assert len(rows) == 2 * EPOCHS  # the evaluation epoch is not a search epoch
    for row in rows:
        m = 0 if row["label"] == "darts" else 10
        e = int(row["epoch"])
        assert (int(row["n"]), float(row["mean"]), float(row["min"]), float(row["max"])) == (3, m + 1 + e, m + e,
                                                                                           m + 2 + e)


def test_anytime_csv_is_the_tables_figures(written, table):
    records, out, _ = written
    column = table.target_column("digits")[0]
    assert column == "cifar10_test"
    rows = read_csv(out / "nb201-digits-smoke-anytime.csv")
    assert len(rows) == 2 * EPOCHS
    space = NB201Space({})
    for row in rows:
        method = row["label"].split()[0]
        values = [table.figures(space.parse(r["history"][int(row["epoch"])]["genotype"]))[column]
                  for r in sorted(records, key=lambda r: r["seed"]) if r["space"] == "nb201" and r["method"] == method]
        assert float(row["mean"]) == float(np.mean(values))
        assert (float(row["min"]), float(row["max"])) == (min(values), max(values))
        assert float(row["optimum"]) == table.optimum()[column]


def test_importance_csv(written):
    records, out, _ = written
    rows = read_csv(out / "nb201-digits-smoke-importance-gdas_tau_max_5-cell.csv")
    assert list(rows[0]) == ["edge", *NB201Space.op_names]
    expected = np.mean([r["importance"]["cell"] for r in records if r["method"] == "gdas"], axis=0)
    got = np.array([[float(row[op]) for op in NB201Space.op_names] for row in rows])
    assert [int(row["edge"]) for row in rows] == list(range(6))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_correlations_csv_skips_missing(written):
    _, out, _ = written
    rows = read_csv(out / "nb201-digits-smoke-correlations.csv")
    seeds = {(r["label"], r["metric"]): [float(x["value"]) for x in rows
                                         if (x["label"], x["metric"], x["kind"]) == (r["label"], r["metric"], "seed")]
             for r in rows}
    means = {(r["label"], r["metric"]): float(r["value"]) for r in rows if r["kind"] == "mean"}
    assert ("gdas [tau_max=5]", "oneshot_kendall_tau") not in seeds  # None everywhere: no row
    assert seeds[("darts", "op_kendall_tau")] == pytest.approx([0.0, 0.1, 0.2])
    assert seeds[("darts", "oneshot_kendall_tau")] == [0.3, 0.3, 0.3]
    assert means[("darts", "op_kendall_tau")] == pytest.approx(0.1)
    assert means[("gdas [tau_max=5]", "arch_kendall_tau")] == pytest.approx(-0.15)
    assert len(rows) == 5 * 4  # five (series, τ) pairs: three seeds and a mean each
    assert not (out / "darts-digits-smoke-correlations.png").exists()  # every τ None: no plot


def test_cells_csv_is_the_best_seeds_cell(written):
    records, out, _ = written
    for label, method in (("darts", "darts"), ("gdas_tau_max_5", "gdas")):
        mine = [r for r in records if r["space"] == "nb201" and r["method"] == method]
        best = max(mine, key=lambda r: (r["test_acc"], -r["seed"]))
        rows = read_csv(out / f"nb201-digits-smoke-cells-{label}.csv")
        space = NB201Space({})
        assert [(r["cell"], r["source"], r["target"], r["op"]) for r in rows] == \
            [("cell", *edge) for edge in space.cell_graphs(space.parse(best["genotype"]))["cell"]]
        assert {int(r["seed"]) for r in rows} == {best["seed"]}
    rows = read_csv(out / "darts-digits-smoke-cells-darts.csv")
    assert {r["seed"] for r in rows} == {"1"}  # test accuracy 91 beats 90
    assert [r["cell"] for r in rows] == ["normal"] * 12 + ["reduce"] * 12


def test_nothing_to_draw_writes_nothing(tmp_path):
    records = [{"method": "darts", "space": "nb201", "dataset": "digits", "budget": "smoke", "seed": 0,
                "test_acc": None, "search_seconds": 1.0, "history": []}]
    assert write_plots(records, tmp_path / "out") == []
    assert list((tmp_path / "out").iterdir()) == []


def test_unique_file_names(tmp_path):
    # two series whose names slug alike ("a b" and "a_b") get distinct files
    records = [{"method": name, "space": "nb201", "dataset": "digits", "budget": "smoke", "seed": 0,
                "genotype": "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_3x3~2|", "test_acc": 50.0}
               for name in ("a b", "a_b")]
    files = write_plots(records, tmp_path)
    assert [f.png.name for f in files] == ["nb201-digits-smoke-cells-a_b.png", "nb201-digits-smoke-cells-a_b-2.png"]


def test_darts_cell_graphs():
    space = DartsSpace({})
    genotype = space.parse(
        "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_3x3', 2), ('sep_conv_5x5', 0), "
        "('max_pool_3x3', 1), ('avg_pool_3x3', 3), ('skip_connect', 4), ('sep_conv_3x3', 2)], "
        "normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
        "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
        "('max_pool_3x3', 1)], reduce_concat=range(2, 6))")
    concat = [("0", "c_{k}", "concat"), ("1", "c_{k}", "concat"), ("2", "c_{k}", "concat"),
              ("3", "c_{k}", "concat")]
    graphs = space.cell_graphs(genotype)
    assert list(graphs) == ["normal", "reduce"]
    assert graphs["normal"] == [
        ("c_{k-2}", "0", "sep_conv_3x3"), ("c_{k-1}", "0", "skip_connect"), ("0", "1", "dil_conv_3x3"),
        ("c_{k-2}", "1", "sep_conv_5x5"), ("c_{k-1}", "2", "max_pool_3x3"), ("1", "2", "avg_pool_3x3"),
        ("2", "3", "skip_connect"), ("0", "3", "sep_conv_3x3"), *concat]
    assert graphs["reduce"][:3] == [("c_{k-2}", "0", "max_pool_3x3"), ("c_{k-1}", "0", "max_pool_3x3"),
                                    ("0", "1", "skip_connect")]
    assert graphs["reduce"][-4:] == concat
    staged = CellsGenotype(normal=[genotype.normal, genotype.reduce, genotype.normal],
                           reduce=[genotype.reduce, genotype.normal])
    graphs = space.cell_graphs(staged)
    assert list(graphs) == ["stage 1 normal", "reduction 1", "stage 2 normal", "reduction 2", "stage 3 normal"]
    assert graphs["stage 2 normal"][0] == ("c_{k-2}", "0", "max_pool_3x3")  # stage 2's own cell
    assert graphs["reduction 2"][0] == ("c_{k-2}", "0", "sep_conv_3x3")
    per_cell = CellsGenotype(normal=[genotype.normal, genotype.reduce, genotype.normal, genotype.reduce],
                             reduce=[genotype.reduce, genotype.normal], per="cell")
    graphs = space.cell_graphs(per_cell)  # 6 cells: reductions at 6 // 3 = 2 and 2 * 6 // 3 = 4
    assert list(graphs) == ["cell 0 (normal)", "cell 1 (normal)", "cell 2 (reduction)", "cell 3 (normal)",
                            "cell 4 (reduction)", "cell 5 (normal)"]
    assert [graphs[name][0][2] for name in graphs] == ["sep_conv_3x3", "max_pool_3x3", "max_pool_3x3",
                                                      "sep_conv_3x3", "sep_conv_3x3", "max_pool_3x3"]


def test_nb201_and_proxyless_cell_graphs():
    space = NB201Space({})
    genotype = space.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|")
    assert space.cell_graphs(genotype) == {"cell": [("0", "1", "nor_conv_3x3"), ("1", "2", "skip_connect"),
                                                    ("0", "3", "avg_pool_3x3"), ("2", "3", "nor_conv_1x1")]}
    chain = ProxylessSpace(dict(ProxylessSpace.defaults))
    text = ("k5e3 k3e3 k3e3 k3e3 | k7e3 k3e3 k5e3 k5e3 | k7e6 k5e3 k5e3 k5e3 | k5e6 k5e3 k5e3 k5e3 | "
            "k7e6 k7e6 k7e3 k7e3 | k7e6")
    graphs = chain.cell_graphs(chain.parse(text))
    assert list(graphs) == ["blocks"]
    assert graphs["blocks"][:2] == [("0", "1", "k5e3"), ("1", "2", "k3e3")]
    assert graphs["blocks"][-1] == ("20", "21", "k7e6") and len(graphs["blocks"]) == 21


def test_graph_layout_depths():
    pos = graph_layout([("c_{k-2}", "0", "a"), ("c_{k-1}", "0", "b"), ("0", "1", "c"), ("c_{k-2}", "1", "d"),
                        ("0", "c_{k}", "concat"), ("1", "c_{k}", "concat")])
    assert pos == {"c_{k-2}": (0.0, 0.9), "0": (3.0, 0.0), "c_{k-1}": (0.0, -0.9), "1": (6.0, 0.0),
                   "c_{k}": (9.0, 0.0)}


def test_hetero_cell_graphs_are_two_tier_blocks():
    from spaces.hetero import HeteroSpace

    space = HeteroSpace({})
    text = ("HeteroGenotype(normal=[('sep_conv_3x3', 0), ('channel_attention', 1), ('identity', 1), "
            "('dynamic_conv_3x3', 2), ('sep_conv_5x5', 0), ('spatial_attention', 3), ('max_pool_3x3', 2), "
            "('identity', 4)], normal_tier2=['sep_conv_3x3', 'channel_attention', 'identity', 'dil_conv_3x3'], "
            "reduce=[('sep_conv_3x3', 0), ('sep_conv_5x5', 1), ('identity', 1), ('max_pool_3x3', 2), "
            "('avg_pool_3x3', 0), ('sep_conv_3x3', 3), ('dil_conv_5x5', 2), ('identity', 4)], "
            "reduce_tier2=['identity', 'identity', 'sep_conv_3x3', 'dynamic_conv_5x5'])")
    graphs = space.cell_graphs(space.parse(text))
    assert sorted(graphs) == ["normal", "reduce"]
    assert graphs["normal"] == [
        ("c_{k-2}", "0'", "sep_conv_3x3"), ("c_{k-1}", "0'", "channel_attention"),
        ("c_{k-1}", "1'", "identity"), ("0", "1'", "dynamic_conv_3x3"),
        ("c_{k-2}", "2'", "sep_conv_5x5"), ("1", "2'", "spatial_attention"),
        ("0", "3'", "max_pool_3x3"), ("2", "3'", "identity"),
        ("0'", "0", "sep_conv_3x3"), ("1'", "1", "channel_attention"), ("2'", "2", "identity"),
        ("3'", "3", "dil_conv_3x3"),
        ("0", "c_{k}", "concat"), ("1", "c_{k}", "concat"), ("2", "c_{k}", "concat"), ("3", "c_{k}", "concat")]
    assert graphs["reduce"][8:12] == [("0'", "0", "identity"), ("1'", "1", "identity"), ("2'", "2", "sep_conv_3x3"),
                                      ("3'", "3", "dynamic_conv_5x5")]


def test_long_names_make_file_names_a_file_system_takes(tmp_path):
    """A method or dataset name of hundreds of characters (a record field) is cut in the plot's file name, which
    keeps a hash of the whole so that two long names stay apart (issue 27)."""
    records = [{**r, "method": f"{'m' * 300}{k}"} for k in range(2) for r in darts_records()]
    files = write_plots(records, tmp_path)
    names = [p.png.name for p in files]
    assert names and all(len(name) <= 160 for name in names) and len(set(names)) == len(names)
    assert all(p.png.is_file() and p.csv.is_file() for p in files)


class NoOptimum:
    """A benchmark that answers queries but knows no optimum (a surrogate's case) and must not be asked for
    the target column (the records name it)."""

    def __init__(self, table):
        self.table = table

    def query(self, genotypes, column):
        return self.table.query(genotypes, column)

    def optimum(self):
        return None

    def target_column(self, dataset):
        raise AssertionError("the records name the target column")


def test_names_come_from_the_records(tmp_path, table):
    """The importance columns are named by the record's ``importance_ops`` (not its space's op names), the
    anytime column by its architecture-level correlation's ``target``; a benchmark without an optimum draws no
    optimum (empty CSV cells); a record of a space this installation lacks, without ``importance_ops``, gets
    numbered columns."""
    records = [r for r in nb201_records(table) if r["method"] == "darts"]
    for record in records:
        record.update(importance_ops=["a", "b", "c", "d", "e"], arch_correlation={"target": "cifar100_test"})
    retired = {"method": "darts", "space": "retired", "dataset": "digits", "budget": "smoke", "seed": 0,
               "importance": {"cell": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}}
    key = json.dumps(["nb201", table.describe()], sort_keys=True, default=str)
    write_plots([*records, retired], tmp_path, tables={key: NoOptimum(table)})
    assert list(read_csv(tmp_path / "nb201-digits-smoke-importance-darts-cell.csv")[0]) == ["edge", "a", "b", "c",
                                                                                           "d", "e"]
    assert list(read_csv(tmp_path / "retired-digits-smoke-importance-darts-cell.csv")[0]) == ["edge", "0", "1", "2"]
    rows = read_csv(tmp_path / "nb201-digits-smoke-anytime.csv")
    assert len(rows) == EPOCHS and {row["optimum"] for row in rows} == {""}
    for row in rows:
        values = [table.figures(NB201Space({}).parse(r["history"][int(row["epoch"])]["genotype"]))["cifar100_test"]
                  for r in records]
        assert float(row["mean"]) == float(np.mean(values))
