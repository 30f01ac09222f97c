"""Tests of the NAS-Bench-201 tables: the bundled default table's known figures, storage, the merged-CSV and
official-file imports (the latter built with the nas-bench-201 package's own classes), and the CLI's
``nb201 import`` with its refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import one_line
from nas_201_api import ArchResults, ResultsCount

from harness.cli import main
from harness.core.benchmarks.base import Benchmark
from harness.core.benchmarks.nb201 import (
    CSV_COLUMNS,
    DEFAULT_TABLE,
    FORMAT,
    NB201Table,
    import_file,
    import_official,
    load_table,
    metric_column,
)
from harness.core.benchmarks.nb201_arch import NUM_ARCHS, parse_arch
from harness.core.data import DataInfo
from harness.core.errors import UserError

ALL_SKIP = ("skip_connect",) * 6
ALL_NONE = ("none",) * 6
DEFAULT_COLUMNS = ["cifar10_test", "cifar100_test", "imagenet16_120_test", "cifar10_valid_valid",
                   "cifar10_valid_test", "cifar10_test_v10", "cifar10_params_m", "nwot_score"]
ACCURACY_COLUMNS = DEFAULT_COLUMNS[:6]


@pytest.fixture(scope="module")
def table() -> NB201Table:
    return load_table()


# --- the bundled table -------------------------------------------------------------------------------------

def test_default_table_layout(table):
    assert len(table) == NUM_ARCHS and table.codes.shape == (NUM_ARCHS, 6) and table.codes.dtype == np.uint8
    assert table.columns == DEFAULT_COLUMNS and table.values.shape == (NUM_ARCHS, 8)
    assert table.meta["format"] == FORMAT == "nas-harness/nb201-table/1"
    assert table.meta["source_kind"] == "merged-csv" and set(table.meta["columns"]) == set(DEFAULT_COLUMNS)
    assert table.path == str(DEFAULT_TABLE.resolve())
    assert table.describe()["path"] == "default" and table.describe()["source_kind"] == "merged-csv"
    assert load_table("default") is table  # cached
    assert int(np.isnan(table.column("nwot_score")).sum()) == 341  # as the README says
    assert not np.isnan(table.values[:, :7]).any()


def test_known_figures_of_the_benchmark(table):
    assert table.genotype(1835) == ALL_SKIP and table.index_of(ALL_SKIP) == 1835
    assert table.arch_str(1835) == "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|" \
                                   "skip_connect~1|skip_connect~2|"
    row = table.row(1835)
    assert round(row["cifar10_test"], 2) == 54.30 and round(row["cifar10_valid_valid"], 2) == 39.77
    assert row["cifar10_params_m"] == pytest.approx(0.073306, abs=1e-9)
    none = table.row(table.index_of(ALL_NONE))
    assert none["cifar10_test"] == 10.0 and none["nwot_score"] is None  # NaN reads as None


def test_optimum_and_best(table):
    optimum = table.optimum()
    assert list(optimum) == ACCURACY_COLUMNS  # accuracies only, no params or scores
    assert {c: round(v, 2) for c, v in optimum.items()} == {
        "cifar10_test": 94.37, "cifar100_test": 73.51, "imagenet16_120_test": 47.31, "cifar10_valid_valid": 91.61,
        "cifar10_valid_test": 91.52, "cifar10_test_v10": 94.37}
    for column, value in optimum.items():
        best = table.best(column)
        assert table.row(best)[column] == value == np.nanmax(table.column(column))
        assert (table.column(column)[:best] < value).all()  # the lowest index among equals
    # The best cell for CIFAR-10 and CIFAR-100 (NAS-Bench-201 paper, Table 5's optimum).
    assert table.arch_str(table.best("cifar10_test")) == \
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    assert table.genotype(table.best("cifar100_test")) == parse_arch(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")


def test_best_skips_nan_and_takes_the_lowest_index_of_a_tie(table):
    values = np.full((NUM_ARCHS, 1), 1.0)
    values[0] = np.nan
    values[[7, 5, 9000]] = 3.0
    toy = NB201Table(table.codes, values, ["x_test"], {}, "")
    assert toy.best("x_test") == 5 and toy.optimum() == {"x_test": 3.0}
    assert toy.row(0) == {"x_test": None} and toy.figures(toy.genotype(0)) == {}
    assert toy.has("x_test") and not toy.has("y_test")


def test_figures_hold_accuracies_only(table):
    figures = table.figures(ALL_SKIP)
    assert list(figures) == ACCURACY_COLUMNS
    assert figures == {c: v for c, v in table.row(1835).items() if c in ACCURACY_COLUMNS}
    for index in (0, 1, 6111, NUM_ARCHS - 1):
        assert set(table.figures(table.genotype(index))) == set(ACCURACY_COLUMNS)


def test_target_and_valid_columns(table):
    column, why = table.target_column("digits")
    assert column == "cifar10_test" and "'digits' is not one of the benchmark's datasets" in why
    assert table.target_column("cifar10")[0] == "cifar10_test"
    assert table.target_column("cifar100")[0] == "cifar100_test"
    assert table.target_column("imagenet16-120")[0] == "imagenet16_120_test"
    assert table.valid_column("imagenet16-120") == "cifar10_valid_valid"  # no ImageNet16-120 validation here
    assert table.valid_column("digits") == "cifar10_valid_valid"
    assert table.valid_column("cifar10") == "cifar10_valid_valid"
    assert table.valid_column("cifar100") == "cifar10_valid_valid"  # no CIFAR-100 validation figures here


@pytest.mark.parametrize("dataset, metric, column", [
    ("cifar10", "test", "cifar10_test"), ("cifar10", "valid", "cifar10_valid_valid"),
    ("CIFAR10", "test", "cifar10_test"), ("cifar100", "valid", "cifar100_valid"),
    ("cifar100", "test", "cifar100_test"), ("imagenet16-120", "test", "imagenet16_120_test"),
    ("ImageNet16-120", "valid", "imagenet16_120_valid"), ("imagenet16_120", "valid", "imagenet16_120_valid"),
])
def test_metric_column(dataset, metric, column):
    assert metric_column(dataset, metric) == column


@pytest.mark.parametrize("dataset, metric, fragment", [
    ("mnist", "test", "unknown NAS-Bench-201 dataset 'mnist'"), ("cifar-10", "test", "valid: cifar10, cifar100"),
    ("cifar10", "train", "unknown metric 'train'; valid: test, valid"), ("cifar100", "Test", "unknown metric"),
])
def test_metric_column_refusals(dataset, metric, fragment):
    with pytest.raises(UserError) as info:
        metric_column(dataset, metric)
    assert fragment in one_line(info)


def test_network_info():
    table = load_table()
    assert table.network_info("imagenet16_120_test") == DataInfo(3, 120, 16)
    assert table.network_info("cifar100_valid") == DataInfo(3, 100, 32)
    assert table.network_info("cifar10_valid_valid") == DataInfo(3, 10, 32)
    assert table.network_info("cifar10_params_m") == DataInfo(3, 10, 32)


def test_the_table_implements_every_method_of_the_benchmark_interface():
    # a query interface: no length, no whole columns (a surrogate has neither); optimum is optional (None)
    assert Benchmark.__abstractmethods__ == {"sample", "query", "figures", "locate", "target_column",
                                             "valid_column", "describe", "network_info"}
    assert NB201Table.optimum is not Benchmark.optimum
    assert issubclass(NB201Table, Benchmark) and not NB201Table.__abstractmethods__
    for name in Benchmark.__abstractmethods__:  # its own implementation, not the abstract declaration
        assert getattr(NB201Table, name) is not getattr(Benchmark, name), name
    table = load_table()
    assert isinstance(table, Benchmark) and len(table) == NUM_ARCHS
    indices = np.array([0, 15624, 7, 7, 1234])
    genotypes = table.genotypes(indices)
    assert genotypes == [table.genotype(int(i)) for i in indices]
    assert all(type(g) is tuple and all(type(op) is str for op in g) for g in genotypes)
    assert table.genotypes(np.arange(NUM_ARCHS)) == [table.genotype(i) for i in range(NUM_ARCHS)]
    assert table.genotypes(np.array([], dtype=np.int64)) == []
    for index in (0, 1234, 15624):
        genotype = table.genotype(index)
        assert table.locate(genotype) == {"index": index, "arch": table.arch_str(index)}
        assert parse_arch(table.locate(genotype)["arch"]) == genotype
        assert table.figures(genotype) == {c: v for c, v in table.row(index).items()
                                           if c in ACCURACY_COLUMNS and v is not None}
    assert table.column("cifar10_test").shape == (NUM_ARCHS,)
    assert table.target_column("cifar100")[0] == "cifar100_test"
    assert table.valid_column("cifar10") == "cifar10_valid_valid"
    assert table.optimum()["cifar10_test"] == np.nanmax(table.column("cifar10_test"))
    assert table.describe()["path"] == "default"
    assert table.network_info("cifar10_test") == DataInfo(3, 10, 32)


# --- storage -----------------------------------------------------------------------------------------------

def test_save_and_load_round_trip(table, tmp_path):
    path = tmp_path / "copy.npz"
    table.save(path)
    loaded = load_table(str(path))
    assert loaded is not table and loaded.path == str(path.resolve())
    assert np.array_equal(loaded.codes, table.codes) and loaded.codes.dtype == np.uint8
    assert np.array_equal(loaded.values, table.values, equal_nan=True)
    assert loaded.columns == table.columns and loaded.meta == table.meta
    assert loaded.describe()["path"] == str(path.resolve())
    assert load_table(str(path)) is loaded  # cached while the file is unchanged
    with np.load(path, allow_pickle=False) as data:  # plain arrays, no pickles
        assert set(data.files) == {"codes", "values", "columns", "meta"}
        assert json.loads(str(data["meta"])) == table.meta
    bigger = NB201Table(table.codes, np.hstack([table.values, table.values[:, :1]]), [*table.columns, "extra_test"],
                        table.meta)
    bigger.save(path)
    reloaded = load_table(str(path))
    assert reloaded is not loaded and reloaded.columns[-1] == "extra_test"  # a new version is read again
    assert [p.name for p in tmp_path.iterdir()] == ["copy.npz"]  # no temporary file left behind


def write_npz(path: Path, table: NB201Table, **changes) -> Path:
    arrays = {"codes": table.codes, "values": table.values, "columns": np.array(table.columns),
              "meta": np.array(json.dumps(table.meta))}
    arrays.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_load_table_refusals(table, tmp_path):
    def refused(spec: str, fragment: str) -> None:
        with pytest.raises(UserError) as info:
            load_table(spec)
        assert fragment in one_line(info), spec

    refused(str(tmp_path / "missing.npz"), "does not exist")
    refused(str(tmp_path), "is not a file")
    (tmp_path / "random.npz").write_bytes(np.random.default_rng(0).bytes(4096))
    refused(str(tmp_path / "random.npz"), "is not a NAS-Bench-201 table")
    (tmp_path / "zip.npz").write_bytes(b"PK\x03\x04" + np.random.default_rng(1).bytes(500))
    refused(str(tmp_path / "zip.npz"), "is not a NAS-Bench-201 table")
    (tmp_path / "empty.npz").write_bytes(b"")
    refused(str(tmp_path / "empty.npz"), "is not a NAS-Bench-201 table")
    wrong_format = write_npz(tmp_path / "format.npz", table, meta=np.array(json.dumps({"format": "other/1"})))
    refused(str(wrong_format), "(format 'other/1', expected nas-harness/nb201-table/1)")
    refused(str(write_npz(tmp_path / "list.npz", table, meta=np.array("[1, 2]"))), "(format None")
    refused(str(write_npz(tmp_path / "json.npz", table, meta=np.array("{not json"))), "is not a NAS-Bench-201 table")
    refused(str(write_npz(tmp_path / "nometa.npz", table, meta=None)), "is not a NAS-Bench-201 table")
    refused(str(write_npz(tmp_path / "short.npz", table, codes=table.codes[:10])), "do not fit 15625")
    twice = table.codes.copy()
    twice[1] = twice[0]
    refused(str(write_npz(tmp_path / "twice.npz", table, codes=twice)), "not the 15,625 distinct")
    columns = np.array(table.columns[:-1])
    refused(str(write_npz(tmp_path / "columns.npz", table, columns=columns)), "do not fit")
    objects = np.array([{"a": 1}], dtype=object)
    refused(str(write_npz(tmp_path / "pickled.npz", table, values=objects)), "is not a NAS-Bench-201 table")


def test_load_table_refuses_a_npy_file(tmp_path):
    path = tmp_path / "array.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(UserError):
        load_table(str(path))


def test_table_constructor_checks(table):
    with pytest.raises(ValueError, match="do not fit"):
        NB201Table(table.codes[:-1], table.values[:-1], table.columns, {})
    with pytest.raises(ValueError, match="do not fit"):
        NB201Table(table.codes, table.values, table.columns[:3], {})
    bad = table.codes.copy()
    bad[0, 0] = 5
    with pytest.raises(ValueError, match="distinct"):
        NB201Table(bad, table.values, table.columns, {})


# --- the merged CSV ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def merged_frame(table) -> pd.DataFrame:
    """The default table written back in the merged CSV's columns (in another column order)."""
    frame = pd.DataFrame({"index": np.arange(NUM_ARCHS), "arch_str": [table.arch_str(i) for i in range(NUM_ARCHS)]})
    for csv_column, (ours, _) in reversed(CSV_COLUMNS.items()):
        frame[csv_column] = table.column(ours)
    return frame


def test_merged_csv_import_reproduces_the_default_table(table, merged_frame, tmp_path):
    path = tmp_path / "nb201_merged.csv"
    merged_frame.to_csv(path, index=False)
    imported = import_file(path)
    assert np.array_equal(imported.codes, table.codes)
    assert imported.columns == table.columns
    assert np.array_equal(np.isnan(imported.values), np.isnan(table.values))
    assert np.array_equal(imported.values, table.values, equal_nan=True)
    meta = imported.meta
    assert meta["format"] == FORMAT and meta["source"] == "nb201_merged.csv" and meta["source_kind"] == "merged-csv"
    assert meta["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "params_MB" in meta["columns"]["cifar10_params_m"] and "NATS-Bench" in meta["columns"]["cifar10_test"]
    out = tmp_path / "t.npz"
    imported.save(out)
    assert np.array_equal(load_table(str(out)).values, table.values, equal_nan=True)


def _drop_column(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["params_MB"])


def _bad_arch(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[7, "arch_str"] = "|none~0|+|none~0|conv~1|+|none~0|none~1|none~2|"
    return frame


def _repeated_arch(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[9, "arch_str"] = frame.loc[8, "arch_str"]
    return frame


def _missing_arch(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[3, "arch_str"] = np.nan
    return frame


def _text_figure(frame: pd.DataFrame) -> pd.DataFrame:
    frame["cifar10_test_nats"] = frame["cifar10_test_nats"].astype(object)
    frame.loc[4, "cifar10_test_nats"] = "high"
    return frame


CSV_REFUSALS = {
    "missing column": (_drop_column, "missing column(s) params_MB"),
    "bad arch string": (_bad_arch, "architecture 7: invalid NAS-Bench-201 architecture string"),
    "repeated arch": (_repeated_arch, "lists some architecture twice"),
    "empty arch string": (_missing_arch, "architecture 3: invalid NAS-Bench-201 architecture string"),
    "non-numeric figure": (_text_figure, "non-numeric figure"),
    "missing row": (lambda f: f.iloc[:-1], "one row per architecture"),
    "shuffled rows": (lambda f: f.iloc[::-1], "in order"),
}


@pytest.mark.parametrize("case", sorted(CSV_REFUSALS))
def test_merged_csv_refusals(merged_frame, tmp_path, case):
    change, fragment = CSV_REFUSALS[case]
    path = tmp_path / "merged.csv"
    change(merged_frame.copy()).to_csv(path, index=False)
    with pytest.raises(UserError) as info:
        import_file(path)
    assert fragment in one_line(info)


def test_unreadable_csv_is_refused(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00" + bytes(range(256)))
    with pytest.raises(UserError) as info:
        import_file(path)
    one_line(info)
    with pytest.raises(UserError) as info:
        import_file(tmp_path / "absent.csv")
    assert "does not exist" in one_line(info)


# --- the official file -------------------------------------------------------------------------------------

SEEDS = (777, 888)
EPOCHS = 2
# (dataset, eval sets in the file, our column prefix)
OFFICIAL = (("cifar10-valid", ("x-valid", "ori-test"), "cifar10_valid"), ("cifar10", ("ori-test",), "cifar10"),
            ("cifar100", ("ori-test", "x-valid", "x-test"), "cifar100"),
            ("ImageNet16-120", ("ori-test", "x-valid", "x-test"), "imagenet16_120"))
KNOWN = (0, 1835, 15_624)  # the architectures with results in the test file


def accuracy(index: int, dataset: int, set_number: int, seed: int, hp: str) -> float:
    """The last-epoch accuracy written into the file: distinct for every architecture, dataset, set and seed."""
    return 10.0 + index / 1000 + 10 * dataset + 3 * set_number + (1.5 if seed == SEEDS[1] else 0.0) + \
        (40.0 if hp == "12" else 0.0)


def cost(index: int, dataset: int, seed: int, kind: str) -> float:
    return (0.1 if kind == "params" else 20.0) * (1 + index / 100 + dataset) + (0.002 if seed == SEEDS[1] else 0.0)


def arch_results(index: int, arch: str, hp: str) -> dict:
    """One architecture's results as the nas-bench-201 package stores them (its ``state_dict``)."""
    results = ArchResults(index, arch)
    for d, (dataset, sets, _) in enumerate(OFFICIAL):
        for seed in SEEDS:
            count = ResultsCount(dataset, None, None, None, cost(index, d, seed, "params"),
                                 np.float64(cost(index, d, seed, "flops")),  # a NumPy scalar, as in real files
                                 {"arch_str": arch, "channel": 16, "num_cells": 5, "class_num": 10}, seed, EPOCHS,
                                 [0.01])
            count.update_train_info({0: 30.0, 1: 60.0}, {0: 50.0, 1: 80.0}, {0: 2.0, 1: 1.0}, {0: 5.0, 1: 5.0})
            accs, losses, times = {}, {}, {}
            for s, set_name in enumerate(sets):
                last = accuracy(index, d, s, seed, hp)
                accs[f"{set_name}@0"], accs[f"{set_name}@1"] = 1.0, np.float64(last)  # epoch 0 must be ignored
                losses[f"{set_name}@0"], losses[f"{set_name}@1"] = 2.3, 1.0
                times[f"{set_name}@0"], times[f"{set_name}@1"] = 0.5, 0.5
            count.update_eval(accs, losses, times)
            results.update(dataset, seed, count)
    return results.state_dict()


def expected_figures(index: int) -> dict[str, float]:
    """Means over the two seeds of the last epoch's 'full' (hp=200) figures, by our column names."""
    out = {}
    for d, (_, sets, prefix) in enumerate(OFFICIAL):
        wanted = {"cifar10_valid": {"valid": "x-valid", "test": "ori-test"}, "cifar10": {"test": "ori-test"}}.get(
            prefix, {"valid": "x-valid", "test": "x-test"})
        for split, set_name in wanted.items():
            s = sets.index(set_name)
            out[f"{prefix}_{split}"] = sum(accuracy(index, d, s, seed, "200") for seed in SEEDS) / 2
    return out


def expected_costs(index: int) -> dict[str, float]:
    out = {}
    for d, (_, _, prefix) in enumerate(OFFICIAL):
        out[f"{prefix}_train_seconds"] = 10.0  # the two epochs' 5 s (update_train_info's times), every seed
        if prefix != "cifar10_valid":
            for kind in ("params", "flops"):
                out[f"{prefix}_{kind}_m"] = sum(cost(index, d, seed, kind) for seed in SEEDS) / 2
    return out


OFFICIAL_COLUMNS = ["cifar10_valid_valid", "cifar10_valid_test", "cifar10_test", "cifar100_valid", "cifar100_test",
                    "imagenet16_120_valid", "imagenet16_120_test", "cifar10_params_m", "cifar10_flops_m",
                    "cifar100_params_m", "cifar100_flops_m", "imagenet16_120_params_m", "imagenet16_120_flops_m",
                    "cifar10_valid_train_seconds", "cifar10_train_seconds", "cifar100_train_seconds",
                    "imagenet16_120_train_seconds"]


@pytest.fixture(scope="module")
def official_data(table) -> dict:
    archs = [table.arch_str(i) for i in range(NUM_ARCHS)]
    infos = {i: {"less": arch_results(i, archs[i], "12"), "full": arch_results(i, archs[i], "200")} for i in KNOWN}
    return {"meta_archs": archs, "arch2infos": infos, "evaluated_indexes": list(KNOWN)}


def save_official(data: dict, path: Path, legacy: bool, numpy1_names: bool = False) -> Path:
    torch.save(data, path, _use_new_zipfile_serialization=not legacy)
    if numpy1_names:  # the module path NumPy 1.x wrote into the 2020 files (protocol 2 GLOBALs are text lines)
        raw = path.read_bytes()
        assert b"numpy._core.multiarray" in raw
        path.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    return path


FILE_KINDS = {"zip": (False, False), "legacy": (True, False), "legacy-numpy1": (True, True)}


@pytest.mark.parametrize("kind", sorted(FILE_KINDS))
def test_official_import_takes_the_full_results_mean_over_seeds(table, official_data, tmp_path, kind):
    path = save_official(official_data, tmp_path / "NAS-Bench-201-v1_0-test.pth", *FILE_KINDS[kind])
    calls = []
    imported = import_official(path, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert imported.columns == OFFICIAL_COLUMNS
    assert np.array_equal(imported.codes, table.codes)
    for index in KNOWN:
        row = imported.row(index)
        for column, value in {**expected_figures(index), **expected_costs(index)}.items():
            assert row[column] == pytest.approx(value, rel=1e-12, abs=0), (index, column)
        assert imported.figures(table.genotype(index)) == pytest.approx(expected_figures(index), rel=1e-12)
    others = np.setdiff1d(np.arange(NUM_ARCHS), KNOWN)
    assert np.isnan(imported.values[others]).all() and not np.isnan(imported.values[list(KNOWN)]).any()
    # hand check of one figure: architecture 1835, CIFAR-100 x-test (set 2), seeds 777 and 888, last epoch
    assert imported.row(1835)["cifar100_test"] == pytest.approx((10 + 1.835 + 20 + 6) + 0.75, rel=1e-12)
    assert imported.row(1835)["cifar10_params_m"] == pytest.approx(0.1 * (1 + 18.35 + 1) + 0.001, rel=1e-12)
    meta = imported.meta
    assert meta["format"] == FORMAT and meta["source_kind"] == "nb201-v1.0-pth"
    assert meta["source"] == path.name and meta["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "3 of 15625 architectures" in meta["notes"]

    assert imported.valid_column("cifar100") == "cifar100_valid"  # this table has CIFAR-100 validation figures
    assert imported.target_column("cifar100")[0] == "cifar100_test"
    assert imported.best("imagenet16_120_valid") == 15_624
    assert imported.cost_column("cifar10_valid_valid") == "cifar10_valid_train_seconds"
    assert table.cost_column("cifar10_valid_valid") is None  # the bundled table has no training times
    out = tmp_path / "official.npz"
    imported.save(out)
    reloaded = load_table(str(out))
    assert reloaded.figures(ALL_SKIP) == imported.figures(ALL_SKIP) == pytest.approx(expected_figures(1835))
    assert np.array_equal(reloaded.values, imported.values, equal_nan=True)


def test_official_import_through_import_file_and_version_names(official_data, tmp_path):
    for name, kind in (("NAS-Bench-201-v1_1-096897.pth", "nb201-v1.1-pth"), ("bench.pth", "nb201-v1.x-pth")):
        imported = import_file(save_official(official_data, tmp_path / name, legacy=False))
        assert imported.meta["source_kind"] == kind
        assert imported.row(0)["cifar10_test"] == pytest.approx(expected_figures(0)["cifar10_test"], rel=1e-12)


ARCH = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


def test_cli_import_and_query(official_data, tmp_path, capsys):
    source = save_official(official_data, tmp_path / "NAS-Bench-201-v1_0-test.pth", legacy=True)
    out = tmp_path / "tables" / "nb201.npz"
    assert main(["nb201", "import", str(source), "--out", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert f"wrote {out} " in printed and "3 of 15625 architectures with figures" in printed
    assert load_table(str(out)).figures(ALL_SKIP) == pytest.approx(expected_figures(1835), rel=1e-12)

    assert main(["nb201", "query", ARCH, "--table", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"index 1835: {ARCH}" in printed
    for column in ("cifar100_valid", "imagenet16_120_test", "cifar10_valid_valid"):
        assert f"{expected_figures(1835)[column]:.2f}" in printed, column
    assert main(["nb201", "query", "0", "--table", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "index 0: |avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|" in printed
    assert f"{expected_figures(0)['cifar100_test']:.2f}" in printed

    assert main(["nb201", "best", "--dataset", "cifar100", "--metric", "valid", "--table", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"best cifar100 valid accuracy: {expected_figures(15_624)['cifar100_valid']:.2f} (index 15624" in printed


# --- refusals ----------------------------------------------------------------------------------------------

class NotABenchmark:
    """A Python object no NAS-Bench-201 file holds; unpickling it fully would create ``marker``."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


class Plain:
    def __init__(self):
        self.value = 1


def _random_bytes(path: Path, marker: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def _zip_garbage(path: Path, marker: Path) -> None:
    path.write_bytes(b"PK\x03\x04" + np.random.default_rng(1).bytes(4096))


def _empty(path: Path, marker: Path) -> None:
    path.write_bytes(b"")


def _dict_without_keys(path: Path, marker: Path) -> None:
    torch.save({"meta_archs": [], "arch2infos": {}}, path)


def _list(path: Path, marker: Path) -> None:
    torch.save([1, 2, 3], path)


def _plain_object(path: Path, marker: Path) -> None:
    torch.save({"meta_archs": [], "arch2infos": {0: Plain()}, "evaluated_indexes": []}, path)


def _code_on_load(path: Path, marker: Path) -> None:
    torch.save({"meta_archs": NotABenchmark(str(marker))}, path)


def _code_on_load_legacy(path: Path, marker: Path) -> None:
    torch.save({"meta_archs": NotABenchmark(str(marker))}, path, _use_new_zipfile_serialization=False)


def _a_table(path: Path, marker: Path) -> None:
    path.write_bytes(DEFAULT_TABLE.read_bytes())


def _too_few_archs(path: Path, marker: Path) -> None:
    torch.save({"meta_archs": ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "arch2infos": {},
                "evaluated_indexes": []}, path)


REFUSALS = {
    "random bytes": (_random_bytes, "not a NAS-Bench-201 benchmark file"),
    "zip garbage": (_zip_garbage, "is corrupt or not a torch file"),
    "empty file": (_empty, "is corrupt or not a torch file"),
    "a harness table": (_a_table, "is corrupt or not a torch file"),
    "dict without the keys": (_dict_without_keys, "expected a dict with meta_archs, arch2infos and evaluated_indexes"),
    "a list": (_list, "expected a dict with meta_archs"),
    "a plain Python object": (_plain_object, "it holds the Python object test_nb201_table.Plain"),
    "code run on load": (_code_on_load, "refusing"),
    "code run on load, legacy format": (_code_on_load_legacy, "refusing"),
    "too few architectures": (_too_few_archs, "lists 1 architectures; NAS-Bench-201 has 15625"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_cli_import_refusals(case, tmp_path, capsys):
    make, fragment = REFUSALS[case]
    source, marker, out = tmp_path / "bench.pth", tmp_path / "pwned", tmp_path / "out.npz"
    make(source, marker)
    assert main(["nb201", "import", str(source), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and fragment in err, err
    assert not out.exists() and not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.pth"]


def test_cli_import_of_a_missing_file(tmp_path, capsys):
    out = tmp_path / "out.npz"
    assert main(["nb201", "import", str(tmp_path / "absent.pth"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and err.count("\n") == 1 and not out.exists()


def _meta_archs_none(path: Path, table: NB201Table) -> None:
    torch.save({"meta_archs": None, "arch2infos": {}, "evaluated_indexes": []}, path)


def _mixed_index_types(path: Path, table: NB201Table) -> None:
    archs = [table.arch_str(i) for i in range(NUM_ARCHS)]
    torch.save({"meta_archs": archs, "arch2infos": {0: {"full": {}}, "1": {"full": {}}}, "evaluated_indexes": []},
               path)


def _results_as_a_path(path: Path, table: NB201Table) -> None:
    archs = [table.arch_str(i) for i in range(NUM_ARCHS)]
    torch.save({"meta_archs": archs, "arch2infos": {0: {"full": str(path.parent / "elsewhere.pth")}},
                "evaluated_indexes": [0]}, path)


MALFORMED_FILES = {
    "meta_archs not a list": _meta_archs_none,
    "indices of mixed types": _mixed_index_types,
    "results given as a file path": _results_as_a_path,
}


@pytest.mark.parametrize("case", sorted(MALFORMED_FILES))
def test_malformed_official_files_are_refused(table, case, tmp_path):
    path = tmp_path / "bench.pth"
    MALFORMED_FILES[case](path, table)
    with pytest.raises(UserError) as info:
        import_file(path)
    one_line(info)
