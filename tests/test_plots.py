"""The comparison's plots (``harness.plots``) and the spaces' ``cell_graphs`` and ``edge_labels``, on crafted
records: every expected file is written as a PDF and a PNG of at least 200 dpi, each CSV holds exactly the values
the records give, and what a reader sees is checked on the drawn figures (matplotlib's text extents): no tick
labels or cell-drawing labels overlap, no edge passes through a node, the importance colours are centred on the
uniform share, and figures looked up in the benchmark are never on a trained supernet's axis (issue 29)."""

from __future__ import annotations

import csv
import itertools
import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import TwoSlopeNorm
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from PIL import Image

from harness.core.benchmarks.nb201 import load_table
from harness.core.records import genotype_lines
from harness.core.stats import summary
from harness.plots import (
    DPI,
    KINDS,
    MIN_SPREAD,
    TEXT_ONLY,
    PlotFile,
    cell_layout,
    cells_figure,
    curve_points,
    figures,
    importance_norm,
    importance_shares,
    time_unit,
    write_plots,
)
from spaces.darts import CellsGenotype, DartsSpace
from spaces.nb201 import NB201Space
from spaces.proxyless import ProxylessSpace

PNG = b"\x89PNG\r\n\x1a\n"
PDF = b"%PDF-"
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
        assert f.png.parent == out and f.csv == f.png.with_suffix(".csv") and f.pdf == f.png.with_suffix(".pdf")
        assert f.png.stat().st_size > 1000 and f.png.read_bytes()[:8] == PNG
        assert f.pdf.stat().st_size > 1000 and f.pdf.read_bytes()[:5] == PDF
        assert f.csv.stat().st_size > 0 and len(read_csv(f.csv)) >= 1
        with Image.open(f.png) as image:  # 200 dpi written in the PNG, and the pixels to match
            dpi = image.info["dpi"]
            assert min(dpi) >= 199.5 and DPI >= 200
            assert min(image.size) >= 2.5 * 200  # every figure is at least 2.5 inches each way
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f.png.name for f in files] + [f.pdf.name for f in files] + [f.csv.name for f in files])
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
    assert list(rows[0]) == ["edge", "nodes", *NB201Space.op_names, "uniform", "chosen"]
    mine = [r for r in records if r["method"] == "gdas"]
    expected = np.mean([r["importance"]["cell"] for r in mine], axis=0)
    got = np.array([[float(row[op]) for op in NB201Space.op_names] for row in rows])
    assert [int(row["edge"]) for row in rows] == list(range(6))
    assert [row["nodes"] for row in rows] == ["0→1", "0→2", "1→2", "0→3", "1→3", "2→3"]
    assert {float(row["uniform"]) for row in rows} == {0.2}
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # "chosen": how many seeds' genotypes took each op on the edge (the architecture string's |op~source| groups)
    space = NB201Space({})
    for e, row in enumerate(rows):
        ops = [space.parse(r["genotype"])[e] for r in mine]
        assert row["chosen"] == " ".join(f"{op}:{ops.count(op)}" for op in NB201Space.op_names if op in ops)


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
    concat = [("2", "c_{k}", "concat"), ("3", "c_{k}", "concat"), ("4", "c_{k}", "concat"),
              ("5", "c_{k}", "concat")]
    graphs = space.cell_graphs(genotype)
    assert list(graphs) == ["normal", "reduce"]
    assert graphs["normal"] == [
        ("0 (c_{k-2})", "2", "sep_conv_3x3"), ("1 (c_{k-1})", "2", "skip_connect"), ("2", "3", "dil_conv_3x3"),
        ("0 (c_{k-2})", "3", "sep_conv_5x5"), ("1 (c_{k-1})", "4", "max_pool_3x3"), ("3", "4", "avg_pool_3x3"),
        ("4", "5", "skip_connect"), ("2", "5", "sep_conv_3x3"), *concat]
    assert graphs["reduce"][:3] == [("0 (c_{k-2})", "2", "max_pool_3x3"), ("1 (c_{k-1})", "2", "max_pool_3x3"),
                                    ("2", "3", "skip_connect")]
    assert graphs["reduce"][-4:] == concat
    staged = CellsGenotype(normal=[genotype.normal, genotype.reduce, genotype.normal],
                           reduce=[genotype.reduce, genotype.normal])
    graphs = space.cell_graphs(staged)
    assert list(graphs) == ["stage 1 normal", "reduction 1", "stage 2 normal", "reduction 2", "stage 3 normal"]
    assert graphs["stage 2 normal"][0] == ("0 (c_{k-2})", "2", "max_pool_3x3")  # stage 2's own cell
    assert graphs["reduction 2"][0] == ("0 (c_{k-2})", "2", "sep_conv_3x3")
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


def test_cell_nodes_are_numbered_as_show_numbers_them():
    """Every drawn edge of a DARTS cell is an (op, source) pair that ``python -m harness show`` prints on the line of
    its node ("node 2 ← (sep_conv_3x3, 0), ..."), read with the drawing's node numbers."""
    space = DartsSpace({})
    rng = np.random.default_rng(3)
    for genotype in [space.parse(DARTS_V2)] + [space.sample(rng) for _ in range(5)]:
        shown = set()
        cell = None
        for line in genotype_lines(space.to_str(genotype)):
            if line.endswith("cell:"):
                cell = line.split()[0]
            for node, pairs in re.findall(r"node (\d+) ← (.*)", line):
                shown |= {(cell, source, node, op) for op, source in re.findall(r"\((\w+), (\d+)\)", pairs)}
        drawn = {(cell, source.split()[0], target, op) for cell, edges in space.cell_graphs(genotype).items()
                 for source, target, op in edges if op != "concat"}
        assert drawn == shown and len(drawn) == 16
    nodes = {n for edges in space.cell_graphs(space.parse(DARTS_V2)).values() for e in edges for n in e[:2]}
    assert nodes == {"0 (c_{k-2})", "1 (c_{k-1})", "2", "3", "4", "5", "c_{k}"}


def test_edge_labels_name_rows_by_their_end_nodes():
    from spaces.hetero import HeteroSpace

    darts = DartsSpace({}).edge_labels("normal")
    assert darts == ["0→2", "1→2", "0→3", "1→3", "2→3", "0→4", "1→4", "2→4", "3→4", "0→5", "1→5", "2→5", "3→5",
                     "4→5"]
    assert DartsSpace({}).edge_labels("reduce") == darts
    assert NB201Space({}).edge_labels("cell") == ["0→1", "0→2", "1→2", "0→3", "1→3", "2→3"]
    hetero = HeteroSpace({}).edge_labels("normal")
    assert hetero[:2] == ["0→2'", "1→2'"] and hetero[13] == "4→5'" and hetero[14:] == ["2'→2", "3'→3", "4'→4",
                                                                                        "5'→5"]
    chain = ProxylessSpace(dict(ProxylessSpace.defaults)).edge_labels("blocks")
    assert chain[0] == "0→1" and chain[-1] == "20→21" and len(chain) == 21
    # the rows of the DARTS matrix are the ones edge_choices reads: a genotype's pair j sits on row "source→node"
    genotype = DartsSpace({}).parse(DARTS_V2)
    rows, _ = DartsSpace({}).edge_choices([genotype])["normal"]
    assert [darts[r] for r in rows[0]] == [f"{source}→{2 + j // 2}" for j, (_, source) in enumerate(genotype.normal)]


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
        ("0 (c_{k-2})", "2'", "sep_conv_3x3"), ("1 (c_{k-1})", "2'", "channel_attention"),
        ("1 (c_{k-1})", "3'", "identity"), ("2", "3'", "dynamic_conv_3x3"),
        ("0 (c_{k-2})", "4'", "sep_conv_5x5"), ("3", "4'", "spatial_attention"),
        ("2", "5'", "max_pool_3x3"), ("4", "5'", "identity"),
        ("2'", "2", "sep_conv_3x3"), ("3'", "3", "channel_attention"), ("4'", "4", "identity"),
        ("5'", "5", "dil_conv_3x3"),
        ("2", "c_{k}", "concat"), ("3", "c_{k}", "concat"), ("4", "c_{k}", "concat"), ("5", "c_{k}", "concat")]
    assert graphs["reduce"][8:12] == [("2'", "2", "identity"), ("3'", "3", "identity"), ("4'", "4", "sep_conv_3x3"),
                                      ("5'", "5", "dynamic_conv_5x5")]


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

    def valid_column(self, dataset):
        return self.table.valid_column(dataset)


def drawn_tables(records, tables=None) -> dict[str, list[dict]]:
    """The CSV rows ``write_plots`` would write, per file stem (``figures``, nothing drawn to a file: the figures'
    data without the cost of saving them)."""
    out = {}
    with plt.rc_context(TEXT_ONLY):
        for item in figures(records, tables):
            plt.close(item.fig)
            out["-".join(item.parts)] = [{h: ("" if isinstance(v, float) and np.isnan(v) else str(v))
                                          for h, v in zip(item.header, row)} for row in item.rows]
    return out


def test_names_come_from_the_records(table):
    """The importance columns are named by the record's ``importance_ops`` (not its space's op names), the
    anytime column by its architecture-level correlation's ``target``; a benchmark without an optimum draws no
    optimum (empty CSV cells); a record of a space this installation lacks, without ``importance_ops``, gets
    numbered columns and rows."""
    records = [r for r in nb201_records(table) if r["method"] == "darts"]
    for record in records:
        record.update(importance_ops=["a", "b", "c", "d", "e"], arch_correlation={"target": "cifar100_test"})
    retired = {"method": "darts", "space": "retired", "dataset": "digits", "budget": "smoke", "seed": 0,
               "importance": {"cell": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}}
    key = json.dumps(["nb201", table.describe()], sort_keys=True, default=str)
    csvs = drawn_tables([*records, retired], tables={key: NoOptimum(table)})
    assert list(csvs["nb201-digits-smoke-importance-darts-cell"][0]) == [
        "edge", "nodes", "a", "b", "c", "d", "e", "uniform", "chosen"]
    retired_rows = csvs["retired-digits-smoke-importance-darts-cell"]
    assert list(retired_rows[0]) == ["edge", "nodes", "0", "1", "2", "uniform", "chosen"]
    assert [row["nodes"] for row in retired_rows] == ["edge 0", "edge 1"]  # no space to name them: numbered
    rows = csvs["nb201-digits-smoke-anytime"]
    assert len(rows) == EPOCHS and {row["optimum"] for row in rows} == {""}
    for row in rows:
        values = [table.figures(NB201Space({}).parse(r["history"][int(row["epoch"])]["genotype"]))["cifar100_test"]
                  for r in records]
        assert float(row["mean"]) == float(np.mean(values))


# --- what a reader sees (issue 29) ----------------------------------------------------------------------------------
@pytest.fixture
def drawn():
    """``drawn(records, kind, render=True)``: the figures of ``kind`` drawn from ``records`` (not saved; with
    ``render``, rendered once, so that text extents are known), closed after the test."""
    made = []

    def draw(records, kind, tables=None, render=True):
        mine = []
        with plt.rc_context(TEXT_ONLY):
            for item in figures(records, tables):
                if item.kind == kind:
                    if render:
                        item.fig.canvas.draw()
                    mine.append(item)
                    made.append(item)
                else:
                    plt.close(item.fig)
        return mine

    yield draw
    for item in made:
        plt.close(item.fig)
    assert plt.get_fignums() == []


def extent(text: Text):
    """The window extent of ``text`` with its background box, if it has one."""
    renderer = text.figure.canvas.get_renderer()
    box = text.get_window_extent(renderer)
    patch = text.get_bbox_patch()
    if patch is not None:
        other = patch.get_window_extent(renderer)
        box = box.union([box, other])
    return box


def overlapping(texts):
    """The pairs of ``texts`` whose extents overlap by more than half a pixel each way."""
    boxes = [(t.get_text(), extent(t)) for t in texts]
    return [(a, b) for (a, p), (b, q) in itertools.combinations(boxes, 2)
            if p.x0 < q.x1 - 0.5 and q.x0 < p.x1 - 0.5 and p.y0 < q.y1 - 0.5 and q.y0 < p.y1 - 0.5]


def visible_ticks(ax, axis="x"):
    low, high = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t for t in labels if t.get_text() and low <= t.get_position()[0 if axis == "x" else 1] <= high]


def test_time_unit_by_magnitude():
    assert time_unit(0.0004) == ("seconds", 1.0) and time_unit(119) == ("seconds", 1.0)
    assert time_unit(120) == ("minutes", 60.0) and time_unit(7199) == ("minutes", 60.0)
    assert time_unit(7200) == ("hours", 3600.0) and time_unit(36 * 3600) == ("hours", 3600.0)


@pytest.mark.parametrize("seconds", [[0.31, 0.35, 0.4, 0.52, 0.6, 0.66], [0.0004, 0.0006, 0.9, 1.1, 55.0, 61.0],
                                     [4000.0, 4400.0, 9000.0, 9900.0, 20000.0, 21000.0]])
def test_accuracy_vs_cost_ticks_do_not_overlap(drawn, seconds):
    """Three series of search times like a smoke study's (the report's old axis read "0.000000.000250.00050" in
    hours), one spanning five decades (a method that queries a table beside one that trains): the tick labels are
    short numbers in a unit of the largest time, and no two of them overlap."""
    records = [{"method": f"m{k // 2}", "space": "darts", "dataset": "digits", "budget": "smoke", "seed": k % 2,
                "overrides": {}, "test_acc": 90.0 + k, "search_seconds": s} for k, s in enumerate(seconds)]
    [made] = drawn(records, "accuracy_vs_cost")
    [ax] = made.fig.axes
    unit = time_unit(max(seconds))[0]
    assert ax.get_xlabel().endswith(f"{unit})")
    for axis in ("x", "y"):
        ticks = visible_ticks(ax, axis)
        assert len(ticks) >= 3 and all(len(t.get_text()) <= 6 for t in ticks)
        assert overlapping(ticks) == []
    assert ax.get_xscale() == ("log" if max(seconds) / min(seconds) > 100 else "linear")


def random_records(table) -> list[dict]:
    """Random search on NAS-Bench-201 as it runs: each search step a candidate whose val_acc is the benchmark's
    validation figure (queried, not trained); the test accuracy looked up."""
    rng = np.random.default_rng(1)
    column = table.valid_column("digits")
    records = []
    for seed in range(3):
        archs = [table.arch_str(int(i)) for i in rng.integers(0, len(table), EPOCHS)]
        looked = table.query([NB201Space({}).parse(a) for a in archs], column)
        history = [{"phase": "search", "epoch": e, "val_acc": float(looked[e]), "genotype": archs[e]}
                   for e in range(EPOCHS)]
        best = archs[int(np.argmax(looked))]
        records.append({"method": "random", "space": "nb201", "dataset": "digits", "budget": "smoke", "seed": seed,
                        "overrides": {}, "genotype": best, "history": history,
                        "test_acc": table.figures(NB201Space({}).parse(best))["cifar10_test"],
                        "test_acc_source": "NAS-Bench-201 cifar10 test accuracy of the derived cell (table column "
                                           "cifar10_test)",
                        "search_seconds": 0.0004, "benchmark_info": {"arch": best, "table": table.describe()}})
    return records


def test_benchmark_lookups_never_share_the_supernets_axis(drawn, table):
    """Random search's search figures on NAS-Bench-201 are the table's cifar10_valid_valid (found by querying the
    table, not by the method's name): they get their own panel, titled "queries the benchmark" with the column and
    the table, while the supernets' digits accuracies stay on theirs; its legend entries say it too."""
    records = [r for r in nb201_records(table) if r["method"] == "darts"] + random_records(table)
    [curves] = drawn(records, "search_curves", render=False)
    trained, queried = curves.fig.axes
    assert [line.get_label() for line in trained.get_lines()] == ["darts"]
    assert [line.get_label() for line in queried.get_lines()] == ["random"]
    assert trained.get_title(loc="left").startswith("trained on digits")
    title = queried.get_title(loc="left").replace("\n", " ")
    assert title.startswith("queries the benchmark: NAS-Bench-201 cifar10_valid_valid")
    assert "table default" in title and "nothing trained" in title
    assert "cifar10_valid_valid" in queried.get_ylabel() and "digits" in trained.get_ylabel()
    assert {(row[0], row[6]) for row in curves.rows} == {("darts", "trained on digits"),
                                                         ("random", "benchmark look-up: cifar10_valid_valid")}
    [cost] = drawn(records, "accuracy_vs_cost", render=False)
    legend = [t.get_text() for ax in cost.fig.axes for t in ax.get_legend().get_texts()]
    assert any(t.startswith("random (queries the benchmark)") for t in legend)
    assert any(t.startswith("darts,") for t in legend)  # a supernet is not said to query
    # the test accuracies come from two sources here (the crafted darts records name none), and random queried: two
    # panels, the supernet's on the time axis, random's on an axis of queries (its search steps: its records carry no
    # configuration to count them by)
    assert len(cost.fig.axes) == 2
    column = {name: k for k, name in enumerate(cost.header)}
    assert [row[column["queries_benchmark_column"]] for row in cost.rows] == ["", "cifar10_valid_valid"]
    assert [row[column["benchmark_queries_mean"]] for row in cost.rows][1] == EPOCHS
    assert [ax.get_xlabel().split(" (")[0] for ax in cost.fig.axes] == ["search time", "benchmark queries per seed"]


def _points(ax) -> list[tuple[str, float, float]]:
    """The (legend label, x, y) of every error-bar point drawn on ``ax``."""
    handles, labels = ax.get_legend_handles_labels()
    return [(label, float(h.lines[0].get_xdata()[0]), float(h.lines[0].get_ydata()[0]))
            for h, label in zip(handles, labels)]


def test_a_search_that_queries_the_benchmark_is_never_drawn_as_free(drawn, table):
    """Random search on NAS-Bench-201 (three queries per seed, about 0.4 ms of look-ups) beside DARTS and GDAS, which
    train (about 6 to 13 minutes): its point is on a panel of its own whose axis counts queries, as the leaderboard's
    "3 queries" — never at about 0 on the time axis — with the accuracy scale of the panel beside it."""
    source = "NAS-Bench-201 cifar10 test accuracy of the derived cell (table column cifar10_test)"
    # one source of the test accuracy for all (only the kind of search splits the panels); random's count of queries
    # from its configuration, as the leaderboard counts them
    records = [{**r, "test_acc_source": source} for r in nb201_records(table)]
    records += [{**r, "test_acc_source": source, "config": {"rs_candidates": 3}} for r in random_records(table)]
    [cost] = drawn(records, "accuracy_vs_cost", render=False)
    timed, queried = cost.fig.axes
    assert [p[0].split(",")[0] for p in _points(timed)] == ["darts", "gdas [tau_max=5]"]
    assert timed.get_xlabel() == "search time (CPU time, minutes)"
    [(label, x, y)] = _points(queried)
    assert label.startswith("random (queries the benchmark)") and x == 3.0
    assert queried.get_xlabel().startswith("benchmark queries per seed")
    assert "query the benchmark" in queried.get_title(loc="left").replace("\n", " ")
    assert queried.get_shared_y_axes().joined(queried, timed)  # one accuracy scale
    column = {name: k for k, name in enumerate(cost.header)}
    row = next(r for r in cost.rows if r[0] == "random")
    assert np.isnan(row[column["search_hours_mean"]]) and row[column["benchmark_queries_mean"]] == 3.0
    assert "never drawn as free" in " ".join(t.get_text() for t in cost.fig.texts).replace("\n", " ")


@pytest.mark.parametrize("seeds, short, full", [
    (3, "range, min–max", "range (min–max over seeds: fewer than 5 seeds"),
    (5, "95 % CI", "95 % CI (percentile bootstrap of the mean)"),
])
def test_error_bars_are_labelled_as_the_leaderboard_labels_intervals(drawn, seeds, short, full):
    """Below 5 seeds the error bars are the seeds' range (min–max), from 5 on the bootstrap 95 % CI
    (``harness.core.stats.summary``): the caption and the figure's note say which, as the leaderboard does."""
    records = [{"method": f"m{k}", "space": "darts", "dataset": "digits", "budget": "smoke", "seed": seed,
                "overrides": {}, "test_acc": 90.0 + k + 0.7 * seed, "search_seconds": 600.0 + 60 * seed}
               for k in range(2) for seed in range(seeds)]
    [cost] = drawn(records, "accuracy_vs_cost", render=False)
    assert cost.title.endswith(f"(error bars: {short})")
    note = " ".join(t.get_text() for t in cost.fig.texts).replace("\n", " ")
    assert f"error bars: {full}" in " ".join(note.split())
    assert ("bootstrap" in cost.title + note) == (seeds >= 5)
    column = {name: k for k, name in enumerate(cost.header)}
    assert {row[column["test_acc_interval"]] for row in cost.rows} == {"range" if seeds < 5 else "95 % CI"}


def nb201_importance_records(table, matrices) -> list[dict]:
    genotypes = ["|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
                 "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
                 "|skip_connect~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|"]
    return [{"method": "darts", "space": "nb201", "dataset": "digits", "budget": "smoke", "seed": seed,
             "overrides": {}, "genotype": genotypes[seed], "test_acc": 80.0, "importance": {"cell": matrix},
             "importance_ops": list(NB201Space.op_names)} for seed, matrix in enumerate(matrices)]


def test_importance_heatmap_is_centred_on_the_uniform_share(drawn, table):
    """Importances of 0.1994–0.2004 (a smoke search's softmax(α): noise): the colour scale is centred on 1/5 and
    reaches ±25 % of it, so every cell stays pale; the colour bar says what it shows; rows are named from→to as
    the architecture string orders its edges; the chosen ops are boxed, with the seeds' count where they differ."""
    rng = np.random.default_rng(0)
    matrices = [(0.2 + rng.uniform(-0.0006, 0.0004, (6, 5))).tolist() for _ in range(3)]
    [made] = drawn(nb201_importance_records(table, matrices), "importance", render=False)
    ax = made.fig.axes[0]
    [image] = [a for a in ax.get_children() if isinstance(a, AxesImage)]
    norm = image.norm
    assert isinstance(norm, TwoSlopeNorm) and norm.vcenter == pytest.approx(1 / 5)
    assert (norm.vmin, norm.vmax) == pytest.approx((0.2 * (1 - MIN_SPREAD), 0.2 * (1 + MIN_SPREAD)))
    assert abs(norm(0.2004) - 0.5) < 0.01 and abs(norm(0.1994) - 0.5) < 0.01  # pale: noise is not signal
    assert "1/k = 1/5 = 20.0 %" in made.fig.axes[1].get_ylabel()  # the colour bar
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0→1", "0→2", "1→2", "0→3", "1→3", "2→3"]
    assert ax.get_ylabel() == "edge (from node → to node)"
    boxed = {(round(p.get_x() + p.get_width() / 2), round(p.get_y() + p.get_height() / 2))
             for p in ax.patches if isinstance(p, Rectangle)}
    ops = NB201Space.op_names
    expected = {(ops.index(op), e) for g in ("nor_conv_3x3", "skip_connect") for e, op in [(0, g)]}
    expected |= {(ops.index(op), e) for e, op in enumerate(["none", "skip_connect", "avg_pool_3x3", "none",
                                                            "nor_conv_1x1"], start=1)}
    expected |= {(ops.index("nor_conv_3x3"), 4)}
    assert boxed == expected
    texts = {(round(t.get_position()[0]), round(t.get_position()[1])): t.get_text() for t in ax.texts}
    assert texts[(ops.index("nor_conv_3x3"), 0)] == "20.0\n2/3" and texts[(ops.index("skip_connect"), 0)] == \
        "20.0\n1/3"
    assert texts[(ops.index("skip_connect"), 2)] == "20.0"  # every seed chose it: no count
    assert "importance" in made.title and "'cell'" not in made.title


def test_importance_norm_on_crafted_shares():
    """A learnt edge (60 % on one op of 8) stretches the scale beyond ±25 %, from 0; edges with different
    numbers of candidates (the ProxylessNAS blocks: 7 where the block can be skipped, else 6) are compared as
    share × k, centred on 1; a non-candidate is NaN and the others' shares sum to 1."""
    shares = np.full((2, 8), 0.4 / 7)
    shares[0] = 1 / 8
    shares[1, 3] = 0.6
    values, norm, label = importance_norm(shares, np.array([8, 8]))
    assert values is shares and norm.vcenter == 0.125 and (norm.vmin, norm.vmax) == pytest.approx((0.0, 0.6))
    assert "1/k = 1/8 = 12.5 %" in label
    mean = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 5.0]])
    mask = np.array([[True, True, True, True], [True, True, True, False]])
    shares, k = importance_shares(mean, mask)
    assert list(k) == [4, 3] and np.isnan(shares[1, 3])
    np.testing.assert_allclose(shares[0], [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(shares[1, :3], [1 / 3] * 3)
    values, norm, label = importance_norm(shares, k)
    assert norm.vcenter == 1.0 and "× k" in label
    np.testing.assert_allclose(values[0], [0.4, 0.8, 1.2, 1.6])
    assert (norm.vmin, norm.vmax) == pytest.approx((0.4, 1.6))


def test_darts_importance_names_its_14_edges_and_boxes_two_per_node(drawn):
    space = DartsSpace({})
    records = [{**r, "importance": {"normal": np.full((14, 8), 0.125).tolist(), "reduce": np.full((14, 8),
                                                                                                   0.125).tolist()}}
               for r in darts_records()]
    made = drawn(records, "importance", render=False)
    assert [m.parts[-1] for m in made] == ["normal", "reduce"]
    for item, group in zip(made, ("normal", "reduce")):
        ax = item.fig.axes[0]
        assert [t.get_text() for t in ax.get_yticklabels()] == space.edge_labels(group)
        [image] = [a for a in ax.get_children() if isinstance(a, AxesImage)]
        assert image.norm.vcenter == 0.125
        boxed = sorted((round(p.get_y() + p.get_height() / 2), round(p.get_x() + p.get_width() / 2))
                       for p in ax.patches if isinstance(p, Rectangle))
        rows, ops = space.edge_choices([space.parse(DARTS_V2)])[group]
        assert boxed == sorted(zip(rows[0].tolist(), ops[0].tolist()))
        assert item.title == f"darts / digits / smoke: operation importance of darts, " \
                             f"{'normal' if group == 'normal' else 'reduction'} cells (mean of 2 seeds)"


def layout_cases() -> list[list[tuple[str, str, str]]]:
    """Graphs to lay out: DARTS cells (DARTS-V2 and sampled ones), heterogeneous cells, NAS-Bench-201 cells (every
    edge), the ProxylessNAS chain."""
    from spaces.hetero import HeteroSpace

    rng = np.random.default_rng(7)
    darts, hetero, nb201 = DartsSpace({}), HeteroSpace({}), NB201Space({})
    graphs = list(darts.cell_graphs(darts.parse(DARTS_V2)).values())
    graphs += [edges for _ in range(6) for edges in darts.cell_graphs(darts.sample(rng)).values()]
    graphs += [edges for _ in range(2) for edges in hetero.cell_graphs(hetero.sample(rng)).values()]
    graphs += [nb201.cell_graphs(nb201.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|"
                                             "nor_conv_3x3~1|nor_conv_1x1~2|"))["cell"]]
    chain = ProxylessSpace(dict(ProxylessSpace.defaults))
    graphs += list(chain.cell_graphs(chain.sample(rng)).values())
    return graphs


def test_no_edge_passes_through_a_node():
    for edges in layout_cases():
        layout = cell_layout(edges)
        assert set(layout.nodes) == {n for e in edges for n in e[:2]}
        for (source, target, _), curve in zip(layout.edges, layout.curves):
            assert curve[0] == layout.nodes[source] and curve[2] == layout.nodes[target]
            points = curve_points(curve)
            for node, centre in layout.nodes.items():
                if node in (source, target):
                    continue
                gap = np.hypot(*(points - np.array(centre)).T).min()
                assert gap > layout.radius + 0.05, (source, target, node)


def test_cell_drawings_have_no_overlapping_text_and_no_name_over_a_node(drawn):
    """Every text of a drawn cell figure (title, panel titles, node numbers, op names on their boxes, notes) apart
    from every other, and no op name's box over a node's circle; node numbers as ``show`` numbers them."""
    from matplotlib.patches import Circle

    space = DartsSpace({})
    sampled = space.sample(np.random.default_rng(11))
    cases = [space.cell_graphs(space.parse(DARTS_V2)), {"normal": space.cell_graphs(sampled)["reduce"]}] + \
        [{"cell": edges} for edges in layout_cases()[-2:]]
    for graphs in cases:
        fig = cells_figure(graphs, "Cells derived by a method with a rather long name [lr=0.1], seed 0 (the best "
                                   "test accuracy of the series: 97.00 %) — darts · digits · smoke budget",
                           ["Nodes numbered as in `python -m harness show`."])
        try:
            fig.canvas.draw()
            renderer = fig.canvas.get_renderer()
            drawn_texts = [fig._suptitle, *fig.texts] + [t for ax in fig.axes for t in (ax.title, ax._left_title,
                                                                                        *ax.texts)]
            texts = [t for t in dict.fromkeys(drawn_texts) if t is not None and t.get_text() and t.get_visible()]
            assert overlapping(texts) == []
            circles = [c for c in fig.findobj(Circle)]
            names = [t for t in texts if t.get_bbox_patch() is not None]  # the op names
            assert len(names) == sum(op != "concat" for edges in graphs.values() for _, _, op in edges)
            for circle in circles:
                box = circle.get_window_extent(renderer)
                cx, cy, radius = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2, box.width / 2
                for name in names:
                    b = extent(name)
                    nearest = np.clip(cx, b.x0, b.x1), np.clip(cy, b.y0, b.y1)
                    assert np.hypot(cx - nearest[0], cy - nearest[1]) > radius, name.get_text()
            node_texts = {t.get_text().split("\n")[0] for t in texts if t.get_bbox_patch() is None
                          and t.axes is not None and t.get_text() not in {a.get_title(loc="left") for a in fig.axes}}
            nodes = {n.split()[0] for edges in graphs.values() for e in edges for n in e[:2]}
            assert node_texts == nodes
            for text in texts:  # nothing outside the figure: titles are wrapped, never cut
                assert text.get_window_extent(renderer).x1 <= fig.bbox.x1 + 1
        finally:
            plt.close(fig)
    assert {"0", "1", "2", "5", "c_{k}"} <= {n.split()[0] for e in cases[0]["normal"] for n in e[:2]}


def test_titles_are_human_and_fit_their_figure(drawn, table):
    """No figure's title or text runs past the figure's right edge (the anytime title was cut there), and titles
    name what is shown, not record keys."""
    records = [{**r, "method": "a-method-with-a-long-name-for-the-test"} for r in nb201_records(table)
               if r["method"] == "darts"]
    for kind in KINDS:
        for made in drawn(records, kind):
            renderer = made.fig.canvas.get_renderer()
            title = made.fig._suptitle
            assert title is not None and "nb201 · digits · smoke budget" in title.get_text().replace("\n", " ")
            box = title.get_window_extent(renderer)
            assert box.x0 >= made.fig.bbox.x0 - 1 and box.x1 <= made.fig.bbox.x1 + 1, kind
            assert not re.search(r"'\w+'", title.get_text())  # no quoted internal labels ("importance 'cell'")


def query_records(table, simulated: bool) -> list[dict]:
    """A query search (``rea``) × 2 seeds on NAS-Bench-201: per step a real architecture whose ``val_acc`` is its
    look-up in the validation column (as a look-up search records it), with the benchmark's training seconds of it
    when ``simulated``."""
    rng = np.random.default_rng(1)
    records = []
    for seed in range(2):
        archs = [table.arch_str(int(i)) for i in rng.integers(0, len(table), EPOCHS)]
        history = []
        for e, arch in enumerate(archs):
            figure = float(table.query([NB201Space({}).parse(arch)], "cifar10_valid_valid")[0])
            history.append({"phase": "search", "epoch": e, "val_acc": figure, "genotype": arch,
                            **({"simulated_seconds": 1000.0 * (e + 1 + seed)} if simulated else {})})
        records.append({"method": "rea", "space": "nb201", "dataset": "digits", "budget": "smoke", "seed": seed,
                        "overrides": {}, "genotype": archs[-1], "test_acc": 90.0, "search_seconds": 0.1,
                        "device_hours_kind": "CPU-hours", "history": history,
                        "benchmark_info": {"arch": archs[-1], "table": table.describe()}})
    return records


def test_anytime_draws_a_query_searchs_incumbent_and_a_cost_axis_when_it_has_one(table):
    """A query search's line is the benchmark figure of its best step so far by validation; with every look-up's
    simulated seconds and every trained epoch's seconds, all series share one axis of search cost (hours, mean over
    seeds); without them the axis is the step and the cost column is empty."""
    trained = nb201_records(table)
    for record in trained:
        for entry in record["history"]:
            entry["seconds"] = 60.0 * (1 + record["seed"])
    for simulated in (True, False):
        queries = query_records(table, simulated)
        rows = [r for r in drawn_tables([*trained, *queries])["nb201-digits-smoke-anytime"] if r["label"] == "rea"]
        assert len(rows) == EPOCHS
        for row in rows:
            epoch = int(row["epoch"])
            figures = []
            for record in queries:
                steps = record["history"][:epoch + 1]
                best = max(steps, key=lambda s: s["val_acc"])  # max keeps the earlier of equal figures
                figures.append(table.figures(NB201Space({}).parse(best["genotype"]))["cifar10_test"])
            assert float(row["mean"]) == pytest.approx(np.mean(figures))
            if simulated:
                expected = np.mean([sum(1000.0 * (e + 1 + seed) for e in range(epoch + 1)) for seed in range(2)])
                assert float(row["cost_hours"]) == pytest.approx(expected / 3600)
            else:
                assert row["cost_hours"] == ""
        darts = [r for r in drawn_tables([*trained, *queries])["nb201-digits-smoke-anytime"] if r["label"] == "darts"]
        if simulated:  # the trained series on the same axis: its epochs' measured seconds
            assert float(darts[1]["cost_hours"]) == pytest.approx(np.mean([120.0, 240.0, 360.0]) / 3600)
