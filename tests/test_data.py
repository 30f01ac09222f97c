"""Datasets, the fixed search split and the tensor batch loader: offline, on tiny fake data (and the bundled
digits), checked against hand-built expectations."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import one_line as _one_line

from harness.core import data as data_mod
from harness.core.data import (
    DIGITS_TEST_FRACTION,
    Batches,
    Dataset,
    SearchData,
    default_data_dir,
    load_dataset,
    read_cifar_folder,
    scaled_cutout,
    validate_name,
)
from harness.core.errors import UserError

# --- digits ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def test_digits_shapes_and_classes(digits):
    from sklearn.datasets import load_digits

    n = len(load_digits().target)
    assert digits.train_x.dtype == torch.uint8 and digits.test_x.dtype == torch.uint8
    assert digits.train_x.shape[1:] == (1, 8, 8) and digits.test_x.shape[1:] == (1, 8, 8)
    assert digits.train_y.dtype == torch.int64
    assert len(digits.train_x) == len(digits.train_y) and len(digits.test_x) == len(digits.test_y)
    assert len(digits.test_y) == round(n * DIGITS_TEST_FRACTION) == 359
    assert len(digits.train_y) + len(digits.test_y) == n
    assert digits.num_classes == 10
    assert set(digits.train_y.tolist()) == set(range(10)) == set(digits.test_y.tolist())
    assert int(digits.train_x.max()) == 255 and int(digits.train_x.min()) == 0
    assert (digits.crop_padding, digits.flip) == (1, False)
    info = digits.info
    assert (info.in_channels, info.num_classes, info.image_size) == (1, 10, 8)


def test_digits_split_fixed_and_seed_independent():
    torch.manual_seed(1)
    np.random.seed(1)
    a = load_dataset("digits")
    torch.manual_seed(12345)
    np.random.seed(999)
    b = load_dataset("digits")
    for name in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_digits_train_and_test_partition_the_dataset(digits):
    """Every original image (with its label) lands in exactly one of train and test."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    full = Counter((img.tobytes(), int(y)) for img, y in zip(images, bunch.target))
    split = Counter((x[0].numpy().tobytes(), int(y)) for x, y in zip(digits.train_x, digits.train_y))
    split.update((x[0].numpy().tobytes(), int(y)) for x, y in zip(digits.test_x, digits.test_y))
    assert split == full
    # Not the natural order: the split is a (fixed) permutation.
    first_test = torch.from_numpy(images[: len(digits.test_y)])[:, None]
    assert not torch.equal(digits.test_x, first_test)


# --- CIFAR reader ----------------------------------------------------------------------------------------

def _pickle(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


def _crafted_rows(n: int, offset: int) -> np.ndarray:
    """``n`` CIFAR rows whose pixel (c, i, j) of image k is (offset + k + 7c + 3i + j) % 256."""
    k, c, i, j = np.meshgrid(np.arange(n), np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    return ((offset + k + 7 * c + 3 * i + j) % 256).astype(np.uint8).reshape(n, 3072)


def _write_cifar10(root: Path, per_batch: int = 3, n_test: int = 4) -> dict:
    sub = root / "cifar-10-batches-py"
    rows, labels = [], []
    for b in range(1, 6):
        x = _crafted_rows(per_batch, 10 * b)
        y = [(b + k) % 10 for k in range(per_batch)]
        _pickle(sub / f"data_batch_{b}", {"data": x, "labels": y, "batch_label": f"batch {b}"})
        rows.append(x)
        labels += y
    tx, ty = _crafted_rows(n_test, 200), [9 - k for k in range(n_test)]
    _pickle(sub / "test_batch", {"data": tx, "labels": ty})
    return {"train_rows": np.concatenate(rows), "train_y": labels, "test_rows": tx, "test_y": ty}


def _write_cifar100(root: Path) -> dict:
    sub = root / "cifar-100-python"
    x, y = _crafted_rows(5, 1), [0, 99, 42, 7, 42]
    tx, ty = _crafted_rows(2, 50), [98, 1]
    _pickle(sub / "train", {"data": x, "fine_labels": y, "coarse_labels": [0] * 5})
    _pickle(sub / "test", {"data": tx, "fine_labels": ty, "coarse_labels": [0] * 2})
    return {"train_rows": x, "train_y": y, "test_rows": tx, "test_y": ty}


def test_cifar10_reader_pixels_labels_and_augmentation(tmp_path):
    want = _write_cifar10(tmp_path)
    ds = load_dataset("cifar10", data_dir=tmp_path)
    assert ds.train_x.shape == (15, 3, 32, 32) and ds.test_x.shape == (4, 3, 32, 32)
    assert ds.train_x.dtype == torch.uint8
    # Channel-first: row layout is 1024 red, 1024 green, 1024 blue values, each row-major.
    assert torch.equal(ds.train_x.reshape(15, 3072), torch.from_numpy(want["train_rows"]))
    assert torch.equal(ds.test_x.reshape(4, 3072), torch.from_numpy(want["test_rows"]))
    # Image 0 of batch 1 (offset 10): pixel (c, i, j) = 10 + 7c + 3i + j.
    assert int(ds.train_x[0, 0, 0, 0]) == 10
    assert int(ds.train_x[0, 1, 0, 0]) == 17
    assert int(ds.train_x[0, 2, 5, 1]) == 10 + 14 + 15 + 1
    assert int(ds.train_x[0, 0, 1, 0]) == 13 and int(ds.train_x[0, 0, 0, 1]) == 11
    assert ds.train_y.tolist() == want["train_y"] and ds.test_y.tolist() == want["test_y"]
    assert ds.train_y.dtype == torch.int64
    assert ds.num_classes == 10 and ds.name == "cifar10"
    assert (ds.crop_padding, ds.flip) == (4, True)
    assert ds.info.image_size == 32 and ds.info.in_channels == 3


def test_cifar100_reader_uses_fine_labels(tmp_path):
    want = _write_cifar100(tmp_path)
    ds = load_dataset("cifar100", data_dir=tmp_path)
    assert torch.equal(ds.train_x.reshape(5, 3072), torch.from_numpy(want["train_rows"]))
    assert torch.equal(ds.test_x.reshape(2, 3072), torch.from_numpy(want["test_rows"]))
    assert ds.train_y.tolist() == want["train_y"] and ds.test_y.tolist() == want["test_y"]
    assert ds.num_classes == 100
    assert (ds.crop_padding, ds.flip) == (4, True)


@pytest.mark.parametrize("corruption", ["truncated", "garbage", "not_a_dict", "missing_labels", "bad_size",
                                        "label_count"])
def test_cifar_corrupt_batch_is_one_line_user_error(tmp_path, corruption):
    _write_cifar10(tmp_path)
    target = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    if corruption == "truncated":
        target.write_bytes(target.read_bytes()[:100])
    elif corruption == "garbage":
        target.write_bytes(bytes(range(256)) * 4)
    elif corruption == "not_a_dict":
        _pickle(target, [1, 2, 3])
    elif corruption == "missing_labels":
        _pickle(target, {"data": _crafted_rows(3, 0)})
    elif corruption == "bad_size":
        _pickle(target, {"data": np.zeros((3, 100), np.uint8), "labels": [0, 1, 2]})
    else:
        _pickle(target, {"data": _crafted_rows(3, 0), "labels": [0, 1]})
    with pytest.raises(UserError) as exc_info:
        load_dataset("cifar10", data_dir=tmp_path)
    assert str(tmp_path / "cifar-10-batches-py") in _one_line(exc_info)
    with pytest.raises(UserError):
        read_cifar_folder("cifar10", tmp_path)


def _no_download(*args, **kwargs):
    raise AssertionError("a download was attempted")


@pytest.mark.parametrize("name, sub", [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")])
def test_cifar_missing_offline_names_folder_without_download(tmp_path, monkeypatch, name, sub):
    import torchvision

    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", _no_download)
    monkeypatch.setattr(torchvision.datasets, "CIFAR100", _no_download)
    root = tmp_path / "data"
    with pytest.raises(UserError) as exc_info:
        load_dataset(name, data_dir=root)
    msg = _one_line(exc_info)
    assert str(root / sub) in msg and "HARNESS_OFFLINE" in msg
    assert not root.exists()  # nothing created, nothing fetched


def test_cifar_partial_folder_offline_is_user_error(tmp_path, monkeypatch):
    _write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    with pytest.raises(UserError) as exc_info:
        load_dataset("cifar10", data_dir=tmp_path)
    assert str(tmp_path / "cifar-10-batches-py") in _one_line(exc_info)


def test_cifar_failed_download_is_user_error(tmp_path, monkeypatch):
    import torchvision

    def fail(*args, **kwargs):
        raise ConnectionError("no network in tests")

    monkeypatch.delenv("HARNESS_OFFLINE", raising=False)
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", fail)
    with pytest.raises(UserError) as exc_info:
        load_dataset("cifar10", data_dir=tmp_path / "d")
    msg = _one_line(exc_info)
    assert "ConnectionError" in msg and str(tmp_path / "d") in msg


# The download of the tests below: CIFAR-10's six batches (2 images each) written into the download folder, one
# line appended to a counter per download, a pause first (concurrent trials overlap in it); ``fail_after``
# batches written, it fails as a download cut short does.
FAKE_DOWNLOAD = """
import pickle, time
from pathlib import Path
import numpy as np

def fake_download(name, folder, counter, pause=0.0, fail_after=None):
    with open(counter, "a") as fh:
        fh.write(name + "\\n")
    time.sleep(pause)
    sub = Path(folder) / "cifar-10-batches-py"
    sub.mkdir(parents=True)
    for k, f in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        if k == fail_after:
            raise ConnectionError("connection reset")
        with open(sub / f, "wb") as fh:
            pickle.dump({"data": np.full((2, 3072), k, np.uint8), "labels": [k % 10, (k + 1) % 10]}, fh)
"""
_fake = {}
exec(FAKE_DOWNLOAD, _fake)


@pytest.mark.slow
def test_trials_starting_together_download_cifar_once(tmp_path):
    """Two processes (two trials of one node, or of nodes sharing the data folder) load CIFAR-10 from an empty
    data folder at the same moment: one downloads (under the folder's lock), the other waits and reads it."""
    root, counter, ready = tmp_path / "data", tmp_path / "downloads.txt", tmp_path / "ready"
    ready.mkdir()
    script = FAKE_DOWNLOAD + """
import sys
from harness.core import data
root, counter, ready, me = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]
data._download_cifar = lambda name, folder: fake_download(name, folder, counter, pause=1.5)
(ready / me).touch()
while len(list(ready.iterdir())) < 2:  # both past their imports: they reach the data folder together
    time.sleep(0.01)
ds = data.load_dataset("cifar10", root)
print(len(ds.train_y), len(ds.test_y), int(ds.train_x.float().mean()))
"""
    env = {**os.environ, "HARNESS_OFFLINE": "0"}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(root), str(counter), str(ready), str(k)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(2)]
    outs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_out, err) in zip(procs, outs):
        assert proc.returncode == 0, err
    assert [out.split() for out, _ in outs] == [["10", "2", "2"]] * 2
    assert counter.read_text().splitlines() == ["cifar10"]  # one download
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py", "cifar-10-batches-py.lock"]


def test_cifar_download_cut_short_leaves_no_dataset_folder(tmp_path, monkeypatch):
    """A download that fails half way is one line and leaves neither a half-filled dataset folder (which a later
    trial would take for the dataset) nor its temporary folder; the next load downloads it whole."""
    root, counter = tmp_path / "data", tmp_path / "downloads.txt"
    monkeypatch.delenv("HARNESS_OFFLINE", raising=False)
    monkeypatch.setattr(data_mod, "_download_cifar",
                        lambda name, folder: _fake["fake_download"](name, folder, counter, fail_after=3))
    with pytest.raises(UserError) as exc_info:
        load_dataset("cifar10", data_dir=root)
    msg = _one_line(exc_info)
    assert "cannot download cifar10 (ConnectionError)" in msg and str(root) in msg
    assert [p.name for p in root.iterdir()] == ["cifar-10-batches-py.lock"]
    monkeypatch.setattr(data_mod, "_download_cifar",
                        lambda name, folder: _fake["fake_download"](name, folder, counter))
    assert len(load_dataset("cifar10", data_dir=root).train_y) == 10
    assert len(counter.read_text().splitlines()) == 2


def test_incomplete_cifar_folder_is_replaced_by_a_whole_download(tmp_path, monkeypatch):
    """A dataset folder with files missing (an older download cut short, a partial copy) is downloaded again and
    replaced whole, not read."""
    _write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    counter = tmp_path / "downloads.txt"
    monkeypatch.delenv("HARNESS_OFFLINE", raising=False)
    monkeypatch.setattr(data_mod, "_download_cifar",
                        lambda name, folder: _fake["fake_download"](name, folder, counter))
    ds = load_dataset("cifar10", data_dir=tmp_path)
    assert (len(ds.train_y), len(ds.test_y)) == (10, 2) and len(counter.read_text().splitlines()) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_unwritable_data_folder_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("a file, not a folder")
    monkeypatch.delenv("HARNESS_OFFLINE", raising=False)
    monkeypatch.setattr(data_mod, "_download_cifar", _no_download)
    with pytest.raises(UserError) as exc_info:
        load_dataset("cifar10", data_dir=tmp_path / "file" / "data")
    msg = _one_line(exc_info)
    assert f"cannot write the data folder '{tmp_path / 'file' / 'data'}'" in msg and "--data-dir" in msg, msg


def test_default_data_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    _write_cifar10(tmp_path)
    assert len(load_dataset("cifar10").train_y) == 15


# --- names (folder contents: test_data_folder.py) ----------------------------------------------------------

def _image_tree(root: Path) -> Path:
    from PIL import Image

    for split in ("train", "val"):
        for name in ("ant", "bee"):
            for k in range(2):
                (root / split / name).mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (4, 4), (k, 0, 0)).save(root / split / name / f"{k}.png")
    return root


def test_validate_name(tmp_path):
    for name in ("digits", "cifar10", "cifar100"):
        validate_name(name)
    validate_name(f"folder:{_image_tree(tmp_path / 'ok')}")

    with pytest.raises(UserError) as exc_info:
        validate_name(f"folder:{tmp_path / 'missing'}")
    assert str(tmp_path / "missing") in _one_line(exc_info)

    (tmp_path / "no_train" / "val").mkdir(parents=True)
    with pytest.raises(UserError) as exc_info:
        validate_name(f"folder:{tmp_path / 'no_train'}")
    assert "train/" in _one_line(exc_info)

    (tmp_path / "no_test" / "train").mkdir(parents=True)
    with pytest.raises(UserError) as exc_info:
        validate_name(f"folder:{tmp_path / 'no_test'}")
    assert "test/" in _one_line(exc_info)

    with pytest.raises(UserError) as exc_info:
        validate_name("mnist")
    msg = _one_line(exc_info)
    assert "mnist" in msg and "cifar10" in msg
    with pytest.raises(UserError):
        load_dataset("mnist")


# --- Batches ---------------------------------------------------------------------------------------------

ZERO1, ONE1 = torch.zeros(1), torch.ones(1)


def _batches(x, y=None, batch_size=4, **kw) -> Batches:
    y = torch.arange(len(x)) if y is None else y
    c = x.shape[1]
    mean, std = kw.pop("mean", torch.zeros(c)), kw.pop("std", torch.ones(c))
    kw.setdefault("shuffle", False)
    kw.setdefault("augment", False)
    return Batches(x, y, mean, std, batch_size, **kw)


def _collect(batches: Batches) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*batches)
    return torch.cat(xs), torch.cat(ys)


def test_batch_counts():
    x = torch.zeros(10, 1, 2, 2, dtype=torch.uint8)
    assert len(_batches(x, batch_size=3)) == 4
    assert len(_batches(x, batch_size=3, drop_last=True)) == 3
    assert len(_batches(x, batch_size=5, drop_last=True)) == 2
    assert len(_batches(x, batch_size=3, limit_batches=2)) == 2
    assert len(_batches(x, batch_size=3, limit_batches=9)) == 4
    assert len(_batches(x, batch_size=3, drop_last=True, limit_batches=9)) == 3
    assert len(_batches(x, batch_size=20)) == 1
    assert len(_batches(x, batch_size=20, drop_last=True)) == 0

    sizes = [len(yb) for _, yb in _batches(x, batch_size=3)]
    assert sizes == [3, 3, 3, 1]
    assert [len(yb) for _, yb in _batches(x, batch_size=3, drop_last=True)] == [3, 3, 3]
    assert [len(yb) for _, yb in _batches(x, batch_size=3, limit_batches=2)] == [3, 3]
    assert list(_batches(x, batch_size=20, drop_last=True)) == []


def test_unshuffled_order_and_shuffle_determinism():
    x = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1)
    _, y = _collect(_batches(x, batch_size=7))
    assert y.tolist() == list(range(40))

    a = [yb.tolist() for _, yb in _batches(x, batch_size=7, shuffle=True, seed=5)]
    b = [yb.tolist() for _, yb in _batches(x, batch_size=7, shuffle=True, seed=5)]
    c = [yb.tolist() for _, yb in _batches(x, batch_size=7, shuffle=True, seed=6)]
    assert a == b
    assert a != c
    assert sorted(sum(a, [])) == list(range(40)) == sorted(sum(c, []))
    assert sum(a, []) != list(range(40))
    # Images travel with their labels.
    for xb, yb in _batches(x, batch_size=7, shuffle=True, seed=5):
        assert torch.allclose(xb.view(-1) * 255, yb.float())


def test_augmented_batches_deterministic_per_seed():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 8, 8), generator=g, dtype=torch.uint8)
    kw = dict(batch_size=5, shuffle=True, augment=True, crop_padding=2, flip=True, cutout=4)
    a, b = _collect(_batches(x, seed=3, **kw)), _collect(_batches(x, seed=3, **kw))
    c = _collect(_batches(x, seed=4, **kw))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_unaugmented_batches_are_normalised_exactly():
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (11, 3, 5, 5), generator=g, dtype=torch.uint8)
    mean, std = torch.tensor([0.1, 0.5, 0.9]), torch.tensor([0.2, 0.3, 0.25])
    out, y = _collect(_batches(x, batch_size=4, mean=mean, std=std, crop_padding=4, flip=True, cutout=2))
    want = (x.float() / 255.0 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    assert out.dtype == torch.float32
    assert torch.equal(out, want)
    assert y.tolist() == list(range(11))


def _crafted(n: int, h: int = 6, w: int = 6) -> torch.Tensor:
    """``n`` copies of an image whose pixels are all distinct and non-zero."""
    img = (torch.arange(2 * h * w).view(2, h, w) + 1).to(torch.uint8)
    return img.expand(n, 2, h, w).clone()


def test_random_crop_is_a_window_of_the_padded_image():
    n, p = 64, 2
    x = _crafted(n)
    out, _ = _collect(_batches(x, batch_size=16, augment=True, crop_padding=p, shuffle=True, seed=0))
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x[0].float() / 255.0, (p, p, p, p))
    offsets = []
    for img in out:
        found = [(oy, ox) for oy in range(2 * p + 1) for ox in range(2 * p + 1)
                 if torch.equal(img, padded[:, oy:oy + 6, ox:ox + 6])]
        assert len(found) == 1
        offsets.append(found[0])
    assert len(set(offsets)) > 10  # the offsets really vary (25 possible)
    assert {o[0] for o in offsets} == set(range(2 * p + 1)) == {o[1] for o in offsets}


def test_flip_only_where_allowed():
    n = 64
    x = _crafted(n)
    plain = x.float() / 255.0
    out, _ = _collect(_batches(x, batch_size=16, augment=True, flip=False))
    assert torch.equal(out, plain)
    out, _ = _collect(_batches(x, batch_size=16, augment=False, flip=True, crop_padding=2))
    assert torch.equal(out, plain)

    out, _ = _collect(_batches(x, batch_size=16, augment=True, flip=True, seed=2))
    same = [torch.equal(o, p) for o, p in zip(out, plain)]
    mirrored = [torch.equal(o, p.flip(2)) for o, p in zip(out, plain)]
    assert all(s != m for s, m in zip(same, mirrored))  # each one exactly one of the two
    assert 10 < sum(mirrored) < n - 10


def test_cutout_zeroes_a_square():
    n, h, size = 200, 32, 8
    x = torch.full((n, 3, h, h), 255, dtype=torch.uint8)
    out, _ = _collect(_batches(x, batch_size=50, augment=True, cutout=size, shuffle=True, seed=7))
    assert out.shape == x.shape
    assert torch.all((out == 0) | (out == 1))
    full_squares = 0
    for img in out:
        hole = img == 0
        assert torch.equal(hole[0], hole[1]) and torch.equal(hole[0], hole[2])  # same square in every channel
        rows = hole[0].any(dim=1).nonzero().view(-1)
        cols = hole[0].any(dim=0).nonzero().view(-1)
        assert len(rows) and len(cols)
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        assert int(hole[0].sum()) == (y1 - y0) * (x1 - x0)  # a filled rectangle
        assert y1 - y0 <= size and x1 - x0 <= size
        # Shorter than the requested side only where the square is clipped by the border.
        assert y1 - y0 == size or y0 == 0 or y1 == h
        assert x1 - x0 == size or x0 == 0 or x1 == h
        if y1 - y0 == size and x1 - x0 == size:
            full_squares += 1
            assert int(hole.sum()) == 3 * size * size
    assert full_squares > n // 3


def test_scaled_cutout():
    assert scaled_cutout(16, 32) == 16
    assert scaled_cutout(16, 8) == 4
    assert scaled_cutout(16, 64) == 32
    assert scaled_cutout(0, 32) == 0
    assert scaled_cutout(0, 8) == 0


# --- SearchData ------------------------------------------------------------------------------------------

def _indexed_dataset(n_train: int = 20, n_test: int = 7, flip: bool = True) -> Dataset:
    """Image k is filled with value k (train) or 100 + k (test); its label is k (train) or 100 + k (test),
    so every image can be traced back to its index."""
    tx = torch.arange(n_train, dtype=torch.uint8).view(-1, 1, 1, 1).expand(n_train, 1, 4, 4).clone()
    vx = (100 + torch.arange(n_test, dtype=torch.uint8)).view(-1, 1, 1, 1).expand(n_test, 1, 4, 4).clone()
    return Dataset("fake", tx, torch.arange(n_train), vx, 100 + torch.arange(n_test), num_classes=200,
                   crop_padding=1, flip=flip)


def _cfg(**kw) -> dict:
    cfg = {"search_batch_size": 3, "eval_batch_size": 4, "cutout": 16, "train_limit": 0}
    cfg.update(kw)
    return cfg


def _labels(batches: Batches) -> list[int]:
    return [int(v) for _, yb in batches for v in yb]


def test_search_halves_are_fixed_and_disjoint():
    sd = SearchData(_indexed_dataset(), _cfg(), seed=0, device=torch.device("cpu"))
    for epoch in (0, 3):
        w, a = _labels(sd.weight_batches(epoch)), _labels(sd.arch_batches(epoch))
        assert sorted(w) == list(range(10))
        assert sorted(a) == list(range(10, 20))
    assert _labels(sd.val_batches()) == list(range(10, 20))
    assert _labels(sd.val_batches(limit_batches=2)) == list(range(10, 16))
    assert sorted(_labels(sd.eval_train_batches(0))) == list(range(20))
    # Both halves are the same for any seed.
    other = SearchData(_indexed_dataset(), _cfg(), seed=9, device=torch.device("cpu"))
    assert sorted(_labels(other.weight_batches(0))) == list(range(10))
    assert _labels(other.val_batches()) == list(range(10, 20))


def test_search_halves_odd_size():
    sd = SearchData(_indexed_dataset(n_train=9), _cfg(), seed=0, device=torch.device("cpu"))
    w, a = set(_labels(sd.weight_batches(0))), set(_labels(sd.arch_batches(0)))
    assert w == set(range(4)) and a == set(range(4, 9))


def test_train_limit_cuts_before_split():
    sd = SearchData(_indexed_dataset(), _cfg(train_limit=12), seed=0, device=torch.device("cpu"))
    assert sorted(_labels(sd.weight_batches(0))) == list(range(6))
    assert _labels(sd.val_batches()) == list(range(6, 12))
    assert sorted(_labels(sd.eval_train_batches(1))) == list(range(12))
    assert _labels(sd.test_batches()) == [100 + k for k in range(7)]  # the test set is never cut
    # Normalisation comes from the limited training set.
    pixels = np.repeat(np.arange(12), 16) / 255.0  # 16 pixels per image
    assert sd.mean.tolist() == pytest.approx([pixels.mean()])
    assert sd.std.tolist() == pytest.approx([pixels.std(ddof=1)])
    # A limit at or above the size is no limit.
    full = SearchData(_indexed_dataset(), _cfg(train_limit=50), seed=0, device=torch.device("cpu"))
    assert _labels(full.val_batches()) == list(range(10, 20))


def test_test_batches_cover_test_set_once_in_order():
    sd = SearchData(_indexed_dataset(), _cfg(), seed=0, device=torch.device("cpu"))
    batches = sd.test_batches()
    assert len(batches) == 2  # 7 images, batch 4, last one kept
    xs, ys = _collect(batches)
    assert ys.tolist() == [100 + k for k in range(7)]
    want = (sd.dataset.test_x.float() / 255.0 - sd.mean.view(1, -1, 1, 1)) / sd.std.view(1, -1, 1, 1)
    assert torch.equal(xs, want)  # unaugmented


def test_loaders_follow_dataset_augmentation_settings():
    sd = SearchData(_indexed_dataset(flip=False), _cfg(), seed=0, device=torch.device("cpu"))
    for b in (sd.weight_batches(0), sd.arch_batches(0), sd.eval_train_batches(0)):
        assert b.augment and b.shuffle and b.crop_padding == 1 and b.flip is False
    assert sd.eval_train_batches(0).cutout == scaled_cutout(16, 4) == 2
    assert sd.weight_batches(0).cutout == 0 and sd.arch_batches(0).cutout == 0
    for b in (sd.val_batches(), sd.test_batches()):
        assert not b.augment and not b.shuffle


def test_loaders_are_resumable_across_instances():
    def run(sd: SearchData, make):
        return [(xb.clone(), yb.clone()) for xb, yb in make(sd)]

    def same(a, b) -> bool:
        return len(a) == len(b) and all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))

    a = SearchData(_indexed_dataset(), _cfg(), seed=4, device=torch.device("cpu"))
    b = SearchData(_indexed_dataset(), _cfg(), seed=4, device=torch.device("cpu"))
    c = SearchData(_indexed_dataset(), _cfg(), seed=5, device=torch.device("cpu"))
    makers = {
        "weights": lambda sd: sd.weight_batches(3),
        "arch": lambda sd: sd.arch_batches(3),
        "candidate": lambda sd: sd.weight_batches(3, phase="candidate"),
        "eval": lambda sd: sd.eval_train_batches(3),
    }
    for name, make in makers.items():
        assert same(run(a, make), run(b, make)), name
        assert not same(run(a, make), run(c, make)), name
    # Another epoch (or phase) gives another order.
    assert not same(run(a, makers["weights"]), run(a, lambda sd: sd.weight_batches(4)))
    assert not same(run(a, makers["weights"]), run(a, makers["candidate"]))


def test_dataset_limited_and_normalisation():
    ds = _indexed_dataset()
    assert ds.limited(0) is ds and ds.limited(20) is ds and ds.limited(25) is ds
    small = ds.limited(5)
    assert small.train_y.tolist() == list(range(5)) and torch.equal(small.test_x, ds.test_x)
    assert (small.crop_padding, small.flip, small.num_classes) == (ds.crop_padding, ds.flip, ds.num_classes)
    const = Dataset("c", torch.full((4, 2, 2, 2), 51, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64),
                    torch.zeros(1, 2, 2, 2, dtype=torch.uint8), torch.zeros(1, dtype=torch.int64), 2, 1, False)
    mean, std = const.normalisation()
    assert torch.allclose(mean, torch.full((2,), 0.2)) and torch.equal(std, torch.full((2,), 1e-3))


def test_module_lists_every_dataset():
    assert set(data_mod.DATASETS) == {"digits", "cifar10", "cifar100", "imagenet16-120", "folder:PATH"}
