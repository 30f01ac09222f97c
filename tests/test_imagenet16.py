"""ImageNet16-120, NAS-Bench-201's third dataset: the reader on small fake files in the down-sampled ImageNet
format, its refusals, and a DARTS search on ``nb201`` that looks up the benchmark's ImageNet16-120 column."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import hand_count, one_line

from harness.cli import main
from harness.core.benchmarks.nb201 import load_table
from harness.core.benchmarks.nb201_arch import parse_arch
from harness.core.data import (
    IMAGENET16_DIR,
    IMAGENET16_TEST,
    IMAGENET16_TRAIN,
    ORDER_STRATIFIED,
    check_split,
    load_dataset,
)
from harness.core.errors import UserError


def _rows(labels: list[int], offset: int) -> np.ndarray:
    """One 768-byte row (3×16×16, channel-first) per label; pixel (c, i, j) of row k is
    (offset + k + 5c + 3i + j) % 256, so every row can be recognised."""
    k, c, i, j = np.meshgrid(np.arange(len(labels)), np.arange(3), np.arange(16), np.arange(16), indexing="ij")
    return ((offset + k + 5 * c + 3 * i + j) % 256).astype(np.uint8).reshape(len(labels), 768)


def write_imagenet16(data_dir: Path, per_class: int = 3) -> dict:
    """Fake down-sampled ImageNet 16×16 files: classes 1..120 (``per_class`` training images each, spread over
    the ten batches class by class) plus images of other ImageNet classes, which the benchmark drops."""
    folder = data_dir / IMAGENET16_DIR
    folder.mkdir(parents=True)
    train_labels = [c for c in range(1, 121) for _ in range(per_class)] + [121, 500, 1000] * 4
    kept = []
    for b, name in enumerate(IMAGENET16_TRAIN):
        labels = train_labels[b::len(IMAGENET16_TRAIN)]
        rows = _rows(labels, 17 * b)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rows, "labels": labels, "mean": rows.mean(axis=0)}, f)
        kept += [(bytes(r), y - 1) for r, y in zip(rows, labels) if y <= 120]
    val_labels = list(range(1, 121)) + [777, 121]
    rows = _rows(val_labels, 200)
    with open(folder / IMAGENET16_TEST[0], "wb") as f:
        pickle.dump({"data": rows, "labels": val_labels}, f)
    return {"train": Counter(kept), "test": Counter((bytes(r), y - 1) for r, y in zip(rows, val_labels) if y <= 120)}


def test_reader_keeps_the_120_classes_in_stratified_order(tmp_path):
    want = write_imagenet16(tmp_path / "data")
    ds = load_dataset("imagenet16-120", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert ds.name == "imagenet16-120" and ds.num_classes == 120 and ds.order == ORDER_STRATIFIED
    assert ds.train_x.shape == (360, 3, 16, 16) and ds.test_x.shape == (120, 3, 16, 16)
    assert ds.train_x.dtype == torch.uint8 and (ds.crop_padding, ds.flip) == (2, True)
    info = ds.info
    assert (info.in_channels, info.num_classes, info.image_size) == (3, 120, 16)
    got = Counter((bytes(x.numpy().reshape(-1)), int(y)) for x, y in zip(ds.train_x, ds.train_y))
    assert got == want["train"]
    assert Counter((bytes(x.numpy().reshape(-1)), int(y)) for x, y in zip(ds.test_x, ds.test_y)) == want["test"]
    split = ds.split_info()
    check_split(split, 0)
    assert all(w in (1, 2) and w + a == 3 for w, a in zip(split["weights"], split["arch"]))
    assert sorted(ds.train_y[:120].tolist()) == list(range(120))  # classes interleaved from the start
    # Cached: a second load reads the decoded tensors.
    again = load_dataset("imagenet16-120", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert again.source.startswith("loaded from the cache") and torch.equal(again.train_x, ds.train_x)


def test_missing_files_name_the_folder(tmp_path, capsys):
    with pytest.raises(UserError) as exc_info:
        load_dataset("imagenet16-120", data_dir=tmp_path / "nowhere", cache_dir=tmp_path / "cache")
    msg = one_line(exc_info)
    assert str(tmp_path / "nowhere" / IMAGENET16_DIR) in msg and "train_data_batch_1" in msg and "val_data" in msg
    out = tmp_path / "results"
    assert main(["run", "--method", "darts", "--space", "nb201", "--budget", "smoke", "--dataset", "imagenet16-120",
                 "--data-dir", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "nowhere" / IMAGENET16_DIR) in err
    assert not out.exists()


@pytest.mark.parametrize("content", [b"garbage", pickle.dumps({"data": [1, 2, 3]}),
                                     b"cos\nsystem\n(S'echo hacked'\ntR."])
def test_corrupt_or_hostile_batch_is_one_line(tmp_path, content):
    write_imagenet16(tmp_path / "data", per_class=2)
    (tmp_path / "data" / IMAGENET16_DIR / "train_data_batch_4").write_bytes(content)
    with pytest.raises(UserError) as exc_info:
        load_dataset("imagenet16-120", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert "unreadable" in one_line(exc_info)


def test_darts_on_nb201_looks_up_the_imagenet16_column(ray_session, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    write_imagenet16(tmp_path / "data")
    out = tmp_path / "results"
    assert main(["run", "--method", "darts", "--space", "nb201", "--budget", "smoke", "--dataset", "imagenet16-120",
                 "--data-dir", str(tmp_path / "data"), "--out", str(out), "--name", "i16"]) == 0
    (path,) = (out / "i16" / "trials").glob("*.json")
    record = json.loads(path.read_text())
    table = load_table()
    row = table.row(table.index_of(parse_arch(record["genotype"])))
    assert record["test_acc"] == row["imagenet16_120_test"] is not None
    assert "imagenet16_120_test" in record["test_acc_source"] and "imagenet16-120" in record["test_acc_source"]
    assert record["arch_correlation"]["target"] == "imagenet16_120_test"
    # parameters of the benchmark's ImageNet16-120 network: CIFAR-10's with a classifier for 120 classes
    assert record["params_m"] == pytest.approx((hand_count(parse_arch(record["genotype"])) + 65 * 110) / 1e6, abs=1e-9)
    assert record["split"]["classes"] == [str(k) for k in range(120)] and sum(record["split"]["test"]) == 120
