"""CIFAR from a PNG copy in class folders (``train/<class>/*.png``, ``test/<class>/*.png``, the layout of the
public copy cyizhuo/CIFAR-10-dataset) and the ``cpu`` budget that sizes a search on it for a CPU.

The folders here are written by the tests: 4 training and 2 test images per class (``CIFAR_PNG_COUNTS`` set to
that), each image's pixels naming its class and index, so that labels, counts and the split are checked against
what was written. The real copy (60,000 images) is used by the reproduction, not here (CI has no fetch)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import one_line
from PIL import Image

from harness.core import data as data_mod
from harness.core.config import BUDGETS, budget_preset, resolve
from harness.core.data import CIFAR_PNG_CLASSES, ORDER_CIFAR, ORDER_STRATIFIED, load_dataset, search_halves
from harness.core.errors import UserError
from harness.core.registry import get_method, get_space

CLASSES = CIFAR_PNG_CLASSES["cifar10"]
TRAIN, TEST = 4, 2  # images per class in the written copies


@pytest.fixture(autouse=True)
def small_counts(monkeypatch):
    monkeypatch.setattr(data_mod, "CIFAR_PNG_COUNTS", {"cifar10": (TRAIN, TEST), "cifar100": (TRAIN, TEST)})


def pixel(split: str, k: int, i: int) -> int:
    """The value every pixel of image ``i`` of class ``k`` in ``split`` has: unique per image."""
    return (0 if split == "train" else 100) + 10 * i + k


def write_png_copy(root: Path, classes: tuple[str, ...] = CLASSES, size: int = 32) -> Path:
    for split, count in (("train", TRAIN), ("test", TEST)):
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                image = np.full((size, size, 3), pixel(split, k, i), dtype=np.uint8)
                Image.fromarray(image).save(folder / f"{name}_s_{i:06d}.png")
    return root


def test_png_copy_reads_as_cifar10_with_labels_counts_and_a_stratified_split(tmp_path):
    root = write_png_copy(tmp_path / "cifar")
    ds = load_dataset("cifar10", data_dir=root, cache_dir=tmp_path / "cache")
    assert ds.name == "cifar10" and ds.num_classes == 10 and ds.classes == CLASSES
    assert ds.train_x.shape == (10 * TRAIN, 3, 32, 32) and ds.test_x.shape == (10 * TEST, 3, 32, 32)
    assert (ds.crop_padding, ds.flip, ds.order) == (4, True, ORDER_STRATIFIED)
    # every image carries its label: the pixel written for (class, index), and each one exactly once
    for x, y, split in ((ds.train_x, ds.train_y, "train"), (ds.test_x, ds.test_y, "test")):
        got = sorted((int(label), int(img[0, 0, 0])) for img, label in zip(x, y))
        count = TRAIN if split == "train" else TEST
        assert got == sorted((k, pixel(split, k, i)) for k in range(10) for i in range(count))
        assert bool((x == x[:, :1, :1, :1]).all())  # decoded losslessly, never resized
    # the folder lists class by class; the stratified order puts half of every class in each search half
    split = ds.split_info()
    assert split["weights"] == [TRAIN // 2] * 10 and split["arch"] == [TRAIN // 2] * 10 and split["test"] == [TEST] * 10
    weights, arch = search_halves(len(ds.train_y))
    assert sorted(ds.train_y[weights].tolist()) == sorted(ds.train_y[arch].tolist())
    assert split["classes"] == list(CLASSES)
    # a training prefix (train_limit) keeps the classes balanced too
    assert torch.bincount(ds.limited(20).train_y, minlength=10).tolist() == [2] * 10


def test_png_copy_is_decoded_once_and_cached(tmp_path):
    root = write_png_copy(tmp_path / "cifar")
    first = load_dataset("cifar10", data_dir=root, cache_dir=tmp_path / "cache")
    second = load_dataset("cifar10", data_dir=root, cache_dir=tmp_path / "cache")
    assert first.source.startswith("decoded in") and second.source.startswith("loaded from the cache")
    for name in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(first, name), getattr(second, name))
    assert second.order == ORDER_STRATIFIED and second.classes == CLASSES


def test_python_batches_come_before_a_png_copy_in_the_same_folder(tmp_path):
    root = write_png_copy(tmp_path / "cifar")
    sub = root / "cifar-10-batches-py"
    sub.mkdir()
    rng = np.random.RandomState(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.randint(0, 256, (3, 3072), dtype=np.uint8), "labels": [0, 1, 2]}
        (sub / name).write_bytes(pickle.dumps(batch))
    ds = load_dataset("cifar10", data_dir=root, cache_dir=tmp_path / "cache")
    assert ds.order == ORDER_CIFAR and len(ds.train_y) == 15  # the batches, in their stored order


@pytest.mark.parametrize("break_it, expected", [
    (lambda r: __import__("shutil").rmtree(r / "test"), "without its test/ folder"),
    (lambda r: (r / "train" / "cat").rename(r / "train" / "kitten"), "extra: kitten; missing: cat"),
    (lambda r: __import__("shutil").rmtree(r / "test" / "ship"), "extra: none; missing: ship"),
    (lambda r: (r / "train" / "dog" / "dog_s_000000.png").unlink(), "has 3 images; cifar10 has 4 per class in train/"),
    (lambda r: Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(r / "test" / "frog" / "frog_s_000000.png"),
     "is 30×30, not 32×32"),
    (lambda r: (r / "train" / "bird" / "bird_s_000001.png").write_bytes(b"not a png"), "cannot read image"),
], ids=["no-test", "renamed-class", "missing-class", "short-class", "resized-image", "corrupt-image"])
def test_a_broken_png_copy_is_refused_in_one_line(tmp_path, break_it, expected):
    root = write_png_copy(tmp_path / "cifar")
    break_it(root)
    with pytest.raises(UserError) as exc_info:
        load_dataset("cifar10", data_dir=root, cache_dir=tmp_path / "cache")
    message = one_line(exc_info)
    assert expected in message and str(root) in message
    assert not list((tmp_path / "cache").glob("*.pt"))  # nothing cached from a broken copy


def test_cifar100_png_copy_is_checked_by_class_count(tmp_path):
    root = write_png_copy(tmp_path / "cifar", classes=tuple(f"class{k:03d}" for k in range(10)))
    with pytest.raises(UserError) as exc_info:
        load_dataset("cifar100", data_dir=root, cache_dir=tmp_path / "cache")
    assert "10 class folders, cifar100 has 100" in one_line(exc_info)


# --- the cpu budget ----------------------------------------------------------------------------------------

def test_cpu_budget_is_small_with_its_own_changes_at_every_level():
    darts, nb201 = get_method("darts"), get_space("nb201")
    small, cpu = resolve(darts, nb201, "small"), resolve(darts, nb201, "cpu")
    assert cpu.values["train_limit"] == 5000 != small.values["train_limit"]
    assert (cpu.values["search_layers"], small.values["search_layers"]) == (1, 2)  # nb201's own cpu value
    assert cpu.values["arch_corr_samples"] == 1000
    for key in ("search_epochs", "search_batch_size", "search_channels", "corr_edges", "corr_batches",
                "oneshot_samples"):
        assert cpu.values[key] == small.values[key], key  # small's, through the base
    assert cpu.sources["train_limit"] == cpu.sources["search_epochs"] == "budget:cpu"
    # a method's own small values are its cpu values (ADWPNAS's phases, random search's candidates)
    adwpnas = resolve(get_method("adwpnas"), nb201, "cpu").values
    assert (adwpnas["search_epochs"], adwpnas["hyper_epochs"]) == (12, 6)
    assert resolve(get_method("random"), nb201, "cpu").values["rs_candidates"] == 8


def test_budget_preset_levels_and_base_order():
    class Space:
        budgets = {"small": {"a": "space-small", "b": "space-small"}, "cpu": {"b": "space-cpu"}}

    class Method:
        budgets = {"small": {"c": "method-small"}}

    preset = budget_preset("cpu", Space, Method)
    assert preset["a"] == "space-small" and preset["b"] == "space-cpu" and preset["c"] == "method-small"
    assert preset["train_limit"] == BUDGETS["cpu"]["train_limit"]
    assert budget_preset("small", Space, Method)["b"] == "space-small"


# --- end to end: a search on the PNG copy is a CIFAR-10 search ---------------------------------------------

@pytest.mark.slow
def test_a_search_on_the_png_copy_is_a_cifar10_search_in_the_record(tmp_path, monkeypatch):
    """In-process, as a run's trial does it (``build_spec``, then ``execute_trial``): the record names cifar10,
    takes the benchmark's CIFAR-10 column as its test figure and keeps the PNG copy's stratified split."""
    import json

    from harness.experiment import RunRequest, build_spec
    from harness.trial import execute_trial

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    root = write_png_copy(tmp_path / "cifar")
    spec = build_spec(RunRequest(method="darts", space="nb201", dataset="cifar10", budget="smoke", seeds=[0],
                                 overrides=[], out=tmp_path / "results", name="png", cpus_per_trial=None,
                                 gpus_per_trial=None, max_concurrent=None, max_failures=None, address=None,
                                 data_dir=str(root), resume=False))
    execute_trial(spec, 0, report=lambda metrics: None)
    record = json.loads(spec.record_path(0).read_text())
    assert record["dataset"] == "cifar10"
    assert record["test_acc"] == record["benchmark"]["cifar10_test"] and "cifar10_test" in record["test_acc_source"]
    assert record["split"]["order"] == ORDER_STRATIFIED and record["split"]["classes"] == list(CLASSES)
    assert record["split"]["weights"] == record["split"]["arch"] == [TRAIN // 2] * 10
