"""Real image folders: the class-stratified search split, decoding (modes, sizes), refusals, the decoded-folder
cache, and a DARTS search on a class-sorted ImageFolder through the CLI that measures something."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import one_line
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.core import data as data_mod
from harness.core.data import ORDER_STRATIFIED, check_split, load_dataset, search_halves, stratified_order
from harness.core.errors import UserError


def _png(path: Path, size: tuple[int, int], colour, mode: str = "RGB") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


def _digits_folder(root: Path) -> Path:
    """The bundled digits as greyscale PNGs in an ImageFolder, written class by class (as a user's folder and
    ImageFolder's listing order it)."""
    from PIL import Image

    ds = load_dataset("digits")
    for split, x, y in (("train", ds.train_x, ds.train_y), ("test", ds.test_x, ds.test_y)):
        for i in np.argsort(y.numpy(), kind="stable"):
            folder = root / split / f"digit{int(y[i])}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[i, 0].numpy(), mode="L").save(folder / f"{i:05d}.png")
    return root


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory) -> Path:
    return _digits_folder(tmp_path_factory.mktemp("digits_folder"))


@pytest.fixture()
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


# --- the stratified order ----------------------------------------------------------------------------------

def test_stratified_order_interleaves_by_position_within_class():
    labels = np.array([0, 0, 0, 0, 1, 1])  # keys: class 0 at 1/8, 3/8, 5/8, 7/8; class 1 at 1/4, 3/4
    order = stratified_order(labels)
    assert sorted(order.tolist()) == list(range(6))
    assert labels[order].tolist() == [0, 1, 0, 0, 1, 0]
    assert np.array_equal(order, stratified_order(labels))  # fixed: no seed, no global state
    np.random.seed(5)
    assert np.array_equal(order, stratified_order(labels))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=2, max_value=40), min_size=1, max_size=12))
def test_stratified_halves_split_every_class_evenly(counts):
    """Each class of n ≥ 2 images has ⌊n/2⌋ or ⌈n/2⌉ of them in each search half, whatever the class sizes."""
    labels = np.repeat(np.arange(len(counts)), counts)
    ordered = labels[stratified_order(labels)]
    weights, arch = search_halves(len(ordered))
    for c, n in enumerate(counts):
        in_weights = int((ordered[weights] == c).sum())
        assert in_weights in (n // 2, -(-n // 2)) and int((ordered[arch] == c).sum()) == n - in_weights


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=9), st.integers(min_value=2, max_value=30))
def test_stratified_prefixes_of_balanced_classes_are_proportional(classes, per_class):
    """Every prefix of length m holds m/C images of each class, within one image."""
    labels = np.repeat(np.arange(classes), per_class)
    ordered = labels[stratified_order(labels)]
    for m in range(1, len(ordered) + 1):
        counts = np.bincount(ordered[:m], minlength=classes)
        assert np.all(np.abs(counts - m / classes) <= 1), (m, counts)


# --- a class-sorted ImageFolder ----------------------------------------------------------------------------

def test_class_sorted_folder_gets_a_stratified_split(digits_folder, cache):
    digits = load_dataset("digits")
    ds = load_dataset(f"folder:{digits_folder}", image_size=8, cache_dir=cache)
    assert ds.order == ORDER_STRATIFIED
    assert ds.classes == tuple(f"digit{k}" for k in range(10)) and ds.num_classes == 10
    assert ds.train_x.shape == (1438, 3, 8, 8) and ds.test_x.shape == (359, 3, 8, 8)
    # The same images and labels as the digits (greyscale → three equal channels), in another order.
    assert torch.equal(ds.train_x[:, 0], ds.train_x[:, 1]) and torch.equal(ds.train_x[:, 0], ds.train_x[:, 2])
    assert Counter(zip(map(bytes, ds.train_x[:, 0].numpy()), ds.train_y.tolist())) == \
        Counter(zip(map(bytes, digits.train_x[:, 0].numpy()), digits.train_y.tolist()))
    # The stored order was class by class; the loaded one interleaves the classes from the first images on.
    assert sorted(ds.train_y[:10].tolist()) == list(range(10))
    per_class = torch.bincount(ds.train_y, minlength=10)
    for limit in (20, 40, 100, 333, 719, 0):
        split = ds.limited(limit).split_info()
        check_split(split, limit)  # every class in both halves
        n = limit or len(ds.train_y)
        assert split["train_images"] == n and sum(split["weights"]) == n // 2 and sum(split["arch"]) == n - n // 2
        assert split["classes"] == list(ds.classes)
        want = per_class.double() * n / len(ds.train_y) / 2
        assert np.all(np.abs(np.array(split["weights"]) - want.numpy()) <= 1.5), (limit, split["weights"])
        assert np.all(np.abs(np.array(split["arch"]) - want.numpy()) <= 1.5), (limit, split["arch"])
    full = ds.split_info()
    assert full["test"] == torch.bincount(ds.test_y, minlength=10).tolist() and full["test_images"] == 359


def test_split_leaving_a_class_out_is_refused():
    split = {"classes": ["a", "b", "c"], "weights": [1, 1, 0], "arch": [1, 1, 1], "train_images": 5}
    with pytest.raises(UserError) as exc_info:
        check_split(split, 5)
    msg = one_line(exc_info)
    assert "weight half" in msg and "c" in msg and "train_limit=5" in msg


def test_modes_and_sizes_are_converted(tmp_path, cache):
    """Greyscale, palette (with transparency), RGBA and greyscale-alpha images, each of its own size, become
    RGB at ``image_size``."""
    from PIL import Image

    root = tmp_path / "modes"
    _png(root / "train" / "a" / "grey.png", (10, 3), 77, mode="L")
    _png(root / "train" / "a" / "la.png", (5, 5), (90, 10), mode="LA")
    palette = Image.new("P", (7, 9), 1)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    palette.info["transparency"] = 0
    (root / "train" / "b").mkdir(parents=True)
    palette.save(root / "train" / "b" / "palette.png")
    _png(root / "train" / "b" / "rgba.png", (16, 16), (40, 50, 60, 128), mode="RGBA")
    Image.new("RGB", (6, 6), (1, 2, 3)).save(root / "train" / "b" / "photo.jpg", quality=100)
    _png(root / "test" / "a" / "0.png", (3, 3), 5, mode="L")
    _png(root / "test" / "b" / "0.png", (40, 20), (7, 8, 9))
    ds = load_dataset(f"folder:{root}", image_size=4, cache_dir=cache)
    assert ds.train_x.shape == (5, 3, 4, 4) and ds.test_x.shape == (2, 3, 4, 4) and ds.crop_padding == 1
    colours = Counter((tuple(x[:, 0, 0].tolist()), int(y)) for x, y in zip(ds.train_x, ds.train_y))
    assert colours[((77, 77, 77), 0)] == 1 and colours[((90, 90, 90), 0)] == 1
    assert colours[((10, 20, 30), 1)] == 1 and colours[((40, 50, 60), 1)] == 1
    jpeg = [x for x, y in zip(ds.train_x, ds.train_y) if y == 1 and int(x[0, 0, 0]) < 5]
    assert len(jpeg) == 1 and torch.all((jpeg[0].int() - torch.tensor([1, 2, 3])[:, None, None]).abs() <= 2)
    for x in ds.train_x:  # solid images stay solid through the resize
        assert torch.equal(x, x[:, :1, :1].expand(3, 4, 4))
    assert ds.test_y.tolist() == [0, 1] and torch.all(ds.test_x[1] == torch.tensor([7, 8, 9])[:, None, None])


def test_hidden_and_system_files_are_skipped(tmp_path, cache):
    root = tmp_path / "junk"
    for split in ("train", "test"):
        for name in ("a", "b"):
            for k in range(2):
                _png(root / split / name / f"{k}.png", (4, 4), (k, 0, 0))
    (root / "train" / "a" / "Thumbs.db").write_bytes(b"\x00junk")
    (root / "train" / "a" / "._0.png").write_bytes(b"AppleDouble")
    (root / "train" / ".hidden_class").mkdir()
    (root / "train" / "README.txt").write_text("not in a class folder")
    ds = load_dataset(f"folder:{root}", image_size=4, cache_dir=cache)
    assert len(ds.train_y) == 4 and ds.classes == ("a", "b")


# --- refusals: one line, exit 2, nothing written ------------------------------------------------------------

def _two_class_tree(root: Path, per_class: int = 2) -> Path:
    for split in ("train", "test"):
        for name, colour in (("cat", (200, 0, 0)), ("dog", (0, 0, 200))):
            for k in range(per_class):
                _png(root / split / name / f"{k}.png", (6, 6), colour)
    return root


def _refused(tmp_path: Path, capsys, root: Path, *extra: str) -> str:
    out = tmp_path / "results"
    code = main(["run", "--method", "darts", "--space", "darts", "--budget", "smoke", "--dataset",
                 f"folder:{root}", "--out", str(out), "--name", "x", "--set", "image_size=8", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("harness: error:"), err
    assert not out.exists()
    return err


def test_folder_refusals(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    root = _two_class_tree(tmp_path / "one_image")
    (root / "train" / "dog" / "1.png").unlink()
    err = _refused(tmp_path, capsys, root)
    assert "'dog'" in err and "1 training image" in err and "at least 2" in err

    root = _two_class_tree(tmp_path / "names")
    (root / "test" / "dog").rename(root / "test" / "Dog")
    err = _refused(tmp_path, capsys, root)
    assert "differ" in err and "only in train/: dog" in err and "only in test/: Dog" in err

    root = _two_class_tree(tmp_path / "empty")
    (root / "train" / "emu").mkdir()
    (root / "test" / "emu").mkdir()
    err = _refused(tmp_path, capsys, root)
    assert str(root / "train" / "emu") in err and "no images" in err

    root = _two_class_tree(tmp_path / "broken")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    err = _refused(tmp_path, capsys, root)
    assert str(root / "train" / "cat" / "notes.txt") in err and "cannot read image" in err
    assert not list((tmp_path / "cache").rglob("*.pt"))  # no half-made cache entry either

    root = _two_class_tree(tmp_path / "truncated")
    png = root / "test" / "dog" / "0.png"
    png.write_bytes(png.read_bytes()[:20])
    assert str(png) in _refused(tmp_path, capsys, root)

    root = _two_class_tree(tmp_path / "limit", per_class=4)
    err = _refused(tmp_path, capsys, root, "--set", "train_limit=2")
    assert "train_limit=2" in err and "half" in err


def test_decompression_bomb_is_one_line(tmp_path, cache, monkeypatch):
    from PIL import Image

    root = _two_class_tree(tmp_path / "bomb")
    _png(root / "train" / "cat" / "huge.png", (300, 300), (1, 1, 1))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100 // 2)  # 300×300 > 2 × the limit: an error
    with pytest.raises(UserError) as exc_info:
        load_dataset(f"folder:{root}", image_size=8, cache_dir=cache)
    msg = one_line(exc_info)
    assert "huge.png" in msg and "DecompressionBombError" in msg


# --- the decoded-folder cache -----------------------------------------------------------------------------

def test_cache_is_reused_and_rebuilt_when_a_file_changes(tmp_path, cache, monkeypatch):
    root = _two_class_tree(tmp_path / "cached", per_class=3)
    first = load_dataset(f"folder:{root}", image_size=8, cache_dir=cache)
    assert first.source.startswith("decoded in")
    entries = sorted(cache.glob("*.pt"))
    assert len(entries) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the folder did not change")

    monkeypatch.setattr(data_mod, "_decode_image", no_decoding)
    again = load_dataset(f"folder:{root}", image_size=8, cache_dir=cache)
    assert again.source == f"loaded from the cache {entries[0]}"
    for name in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(first, name), getattr(again, name))
    assert (again.order, again.classes, again.num_classes, again.crop_padding, again.flip) == \
        (first.order, first.classes, first.num_classes, first.crop_padding, first.flip)
    monkeypatch.undo()

    # Another image size is another entry; a changed file is another entry with the new pixels.
    assert load_dataset(f"folder:{root}", image_size=4, cache_dir=cache).source.startswith("decoded in")
    _png(root / "train" / "cat" / "0.png", (6, 6), (0, 255, 0))
    changed = load_dataset(f"folder:{root}", image_size=8, cache_dir=cache)
    assert changed.source.startswith("decoded in") and len(list(cache.glob("*.pt"))) == 3
    green = torch.tensor([0, 255, 0], dtype=torch.uint8)[:, None, None]
    assert sum(bool(torch.all(x == green)) for x in changed.train_x) == 1

    # A corrupt entry is rebuilt, not trusted.
    newest = max(cache.glob("*.pt"), key=lambda p: p.stat().st_mtime_ns)
    newest.write_bytes(b"garbage")
    rebuilt = load_dataset(f"folder:{root}", image_size=8, cache_dir=cache)
    assert rebuilt.source.startswith("decoded in") and torch.equal(rebuilt.train_x, changed.train_x)


def test_concurrent_loads_decode_once(tmp_path, cache, monkeypatch):
    root = _two_class_tree(tmp_path / "shared", per_class=3)
    calls = []
    real = data_mod._decode_folder

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(data_mod, "_decode_folder", counting)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(
        load_dataset(f"folder:{root}", image_size=8, cache_dir=cache))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len(calls) == 1
    assert all(torch.equal(r.train_x, results[0].train_x) for r in results)


# --- end to end: a search on a class-sorted folder measures something ---------------------------------------

@pytest.mark.slow
def test_darts_search_on_a_class_sorted_folder(digits_folder, tmp_path, monkeypatch, capsys):
    """In-process, as a run's trial does it (the specification of ``run``, then ``execute_trial``): what is
    tested is the data path; ``run`` itself is tested through Ray in test_cli.py."""
    from harness.experiment import RunRequest, build_spec
    from harness.trial import execute_trial

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    spec = build_spec(RunRequest(method="darts", space="darts", dataset=f"folder:{digits_folder}", budget="smoke",
                                 seeds=[0], overrides=["image_size=8", "eval_epochs=2"], out=tmp_path / "results",
                                 name="f",
                                 cpus_per_trial=None, gpus_per_trial=None, max_concurrent=None, max_failures=None,
                                 address=None, data_dir=None, resume=False))
    execute_trial(spec, 0, report=lambda metrics: None)
    path = spec.record_path(0)
    record = json.loads(path.read_text())
    # the split the driver records in experiment.json (harness.experiment.run) is the trial's
    split_of_driver = load_dataset(spec.dataset, None, 8).limited(int(spec.config["train_limit"])).split_info()
    for split in (split_of_driver, record["split"]):
        assert split["order"] == ORDER_STRATIFIED and split["classes"] == [f"digit{k}" for k in range(10)]
        assert sum(split["weights"]) == sum(split["arch"]) == 719 and sum(split["test"]) == 359
        assert min(split["weights"]) >= 68 and min(split["arch"]) >= 68  # every class, in proportion
    assert record["split"] == split_of_driver
    # The supernet learned: every discretised accuracy of the operation-level correlation is far above the
    # 10 % of chance, and the correlation is defined.
    accs = [a for edge in record["op_correlation"] for a in edge["accs"]]
    assert accs and min(accs) > 25.0, accs
    assert record["op_kendall_tau"] is not None
    assert record["test_acc"] > 40.0  # two evaluation epochs (a third of the test's time): measured 55.4 %
    capsys.readouterr()
    assert main(["show", str(path)]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    weights = record["split"]["weights"]
    assert (f"search split: 719 weight / 719 architecture / 359 test images; per class {min(weights)}–{max(weights)} "
            "/") in shown


# --- special files: never opened, refused in one line (exit 2), and the walk always ends --------------------

def _fifo(root: Path) -> str:
    os.mkfifo(root / "train" / "cat" / "f.png")  # opening it for reading would wait for a writer for ever
    return "f.png"


def _socket(root: Path) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "train" / "cat" / "s.png"))
    return "s.png"


def _two_loops(root: Path) -> str:
    os.symlink(".", root / "train" / "cat" / "l")  # two links to their own folder: 2^depth paths
    os.symlink(".", root / "train" / "cat" / "m")
    return "link loop"


def _up(root: Path) -> str:
    os.symlink("..", root / "train" / "cat" / "up")  # back to train/, which holds cat/ again
    return "link loop"


def _self_link(root: Path) -> str:
    os.symlink("me.png", root / "train" / "cat" / "me.png")  # ELOOP on every stat
    return "me.png"


def _dangling(root: Path) -> str:
    os.symlink("gone.png", root / "train" / "dog" / "d.png")
    return "d.png"


def _dangling_class(root: Path) -> str:
    os.symlink("nowhere", root / "test" / "emu")
    return "emu"


SPECIAL = {"fifo": (_fifo, "FIFO"), "socket": (_socket, "socket"), "two self links": (_two_loops, "loop"),
           "link to the parent": (_up, "loop"), "link to itself": (_self_link, "loop"),
           "dangling link": (_dangling, "broken link"), "dangling class link": (_dangling_class, "broken link")}


@pytest.mark.parametrize("case", sorted(SPECIAL))
def test_special_files_and_link_loops_are_refused_in_one_line(case, tmp_path, capsys, monkeypatch):
    """The walk runs in a thread with a time limit, so a hang or an endless walk fails the test instead of
    stopping the suite."""
    from harness import experiment

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))

    def accepted(*args):
        raise AssertionError("the folder was accepted")

    monkeypatch.setattr(experiment, "estimate_seconds", accepted)  # never a run, whatever the walk decides
    root = _two_class_tree(tmp_path / "special")
    make, kind = SPECIAL[case]
    name = make(root)
    result: dict[str, str] = {}
    worker = threading.Thread(target=lambda: result.update(err=_refused(tmp_path, capsys, root)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), f"the walk of a folder with a {case} did not end in 30 s"
    assert "err" in result, "the refusal was not one line and exit 2 (see the assertion above)"
    assert name in result["err"] and kind in result["err"], result["err"]
    assert not list((tmp_path / "cache").rglob("*.pt"))


def test_links_to_files_and_folders_inside_are_followed(tmp_path, cache):
    """A link to an image or to a folder of images is read as what it points to (as ImageFolder does); only
    loops, broken links and files that are not regular are refused."""
    root = _two_class_tree(tmp_path / "links")
    os.symlink(root / "train" / "dog" / "0.png", root / "train" / "cat" / "linked.png")
    extra = tmp_path / "extra"
    _png(extra / "x.png", (6, 6), (200, 0, 0))
    os.symlink(extra, root / "train" / "cat" / "more")
    ds = load_dataset(f"folder:{root}", image_size=8, cache_dir=cache)
    assert len(ds.train_y) == 6 and ds.train_y.tolist().count(0) == 4
