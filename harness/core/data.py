"""Datasets, the fixed search split, and a tensor batch loader with on-device augmentation.

Every dataset is held in memory as uint8 tensors ``[N, C, H, W]`` (digits: 1,797 images; CIFAR: 50k+10k
at 32×32, 180 MB), so batches are gathered and augmented on the trial's device without DataLoader
workers. Randomness of a loader comes from its own ``torch.Generator`` seeded from (trial seed, phase,
epoch): a trial resumed from a checkpoint sees exactly the batches the uninterrupted trial would have.

**The search split** is fixed and seed-independent, the same for every method: the first half of the
(possibly ``train_limit``-ed) training set trains the weights, the second half the architecture; the test
set is used only for the final evaluation. That is DARTS's CIFAR-10 split (first 25k / last 25k) because
CIFAR's stored order is already random, and so is the bundled digits' (a fixed permutation). A loader
whose stored order is not random — an ImageFolder lists its images class by class, ImageNet16-120's
batches are not known to be shuffled — gets a **class-stratified order** once, at load time
(``stratified_order``): each class's images in a fixed random order, interleaved by their relative
position within their class, so that both halves and every ``train_limit`` prefix hold every class in
proportion (within one image). The order, and the images per class in each half and in the test set, go
into ``experiment.json`` and every record (``Dataset.split_info``); a split that leaves a class out of a
half is refused before anything runs (``check_split``).

**Folders** (``folder:PATH``) are decoded once (greyscale, palette and RGBA images converted to RGB,
resized to ``image_size``) into uint8 tensors cached under ``$HARNESS_CACHE_DIR/datasets`` (default
``~/.cache/nas-harness/datasets``), keyed by the folder's path, every file's name, size and modification
time, and ``image_size``: written atomically under a file lock, so concurrent trials decode once and share
it, and a changed folder gets a new entry. **ImageNet16-120** (NAS-Bench-201's third dataset) is read from
the pickled batches of down-sampled ImageNet 16×16 and cached the same way. **CIFAR** is read from the data
folder in either of two layouts: torchvision's python batches (``cifar-10-batches-py``; DARTS's split, the
batches' stored order), or a lossless PNG copy in class folders (``train/<class>/*.png``, ``test/<class>/*.png``,
e.g. the public repository cyizhuo/CIFAR-10-dataset), checked against CIFAR's classes and counts
(``_cifar_png_files``), then decoded once into the cache like a folder, every image 32×32 (nothing resized). A PNG
copy does not keep the batches' order, so it gets the class-stratified order: its search halves are 25,000 images
each, 2,500 per class, but not DARTS's exact halves. With neither layout, CIFAR is downloaded there by one trial,
under a file lock in that folder, and renamed into place whole (``_load_cifar``).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import pickle
import shutil
import stat
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.core.cache import get_or_build, key_lock
from harness.core.errors import UserError, unknown_name
from harness.core.records import atomic_write
from harness.core.storage import default_cache_dir
from harness.core.train import memory_format

DATASETS = {
    "digits": "scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes; offline)",
    "cifar10": "CIFAR-10: torchvision's python batches (downloaded on first use into the data folder) or a PNG "
               "copy there in class folders (train/<class>/*.png, test/<class>/*.png)",
    "cifar100": "CIFAR-100: torchvision's python batches (downloaded on first use into the data folder) or a PNG "
                "copy there in class folders (train/<class>/*.png, test/<class>/*.png)",
    "imagenet16-120": "NAS-Bench-201's ImageNet16-120: down-sampled ImageNet 16×16, its first 120 classes "
                      "(no download: place the files in <data folder>/ImageNet16)",
    "folder:PATH": "any ImageFolder layout with train/ and test/ (or val/), resized to image_size; decoded "
                   "once and cached",
}

DIGITS_TEST_FRACTION = 0.2
_CIFAR = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels"),
}
_CIFAR_CLASSES = {"cifar10": 10, "cifar100": 100}
# CIFAR as PNGs in class folders: images per class in train/ and test/, and CIFAR-10's class names (its labels
# 0..9 in this order, which is also their sorted order, as an ImageFolder numbers them). CIFAR-100's 100 fine
# labels are numbered in the sorted order of their names too, so its folders are checked by count.
CIFAR_PNG_COUNTS = {"cifar10": (5000, 1000), "cifar100": (500, 100)}
CIFAR_PNG_CLASSES = {"cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                 "truck")}
CIFAR_SIZE = 32
# NAS-Bench-201's ImageNet16-120: the down-sampled ImageNet 16×16 files (image-net.org's Imagenet16_train and
# Imagenet16_val archives) in <data dir>/ImageNet16; labels 1..1000 in the files, of which the benchmark keeps
# 1..120 (as labels 0..119). Crop padding 2 and horizontal flip, as in NAS-Bench-201's training pipeline.
IMAGENET16_DIR = "ImageNet16"
IMAGENET16_TRAIN = [f"train_data_batch_{i}" for i in range(1, 11)]
IMAGENET16_TEST = ["val_data"]
IMAGENET16_CLASSES = 120

ORDER_DIGITS = "fixed random permutation of the bundled digits (NumPy RandomState(0)); its first 20 % is the test set"
ORDER_CIFAR = "stored order of the CIFAR training batches (already random): DARTS's split"
ORDER_STRATIFIED = ("class-stratified: each class's images in a fixed random order (NumPy RandomState(0)), "
                    "interleaved by their position within the class, so both halves and every train_limit prefix "
                    "hold every class in proportion")

CACHE_FORMAT = "nas-harness/decoded-dataset/1"  # bump when the decoding changes: old entries stop matching
_JUNK_FILES = {"Thumbs.db", "desktop.ini"}  # system files that sit in image folders and are never images


@dataclass(frozen=True)
class DataInfo:
    """What a network builder (and a benchmark look-up) needs to know about the data."""

    in_channels: int
    num_classes: int
    image_size: int
    name: str = ""


def default_data_dir() -> Path:
    return Path(os.environ.get("HARNESS_DATA_DIR", Path.home() / ".cache" / "nas-harness" / "data"))


@dataclass
class Dataset:
    """A whole dataset in memory, plus how to augment it and how its training order was made."""

    name: str
    train_x: torch.Tensor  # uint8 [N, C, H, W]
    train_y: torch.Tensor  # int64 [N]
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    crop_padding: int
    flip: bool
    order: str = "stored order"  # how the training order (and so the search split) was made
    classes: tuple[str, ...] = ()  # class names, by label (empty: the labels are the names)
    source: str = ""  # where the tensors came from this time (e.g. a cache entry); not part of any record

    @property
    def info(self) -> DataInfo:
        return DataInfo(in_channels=self.train_x.shape[1], num_classes=self.num_classes,
                        image_size=self.train_x.shape[-1], name=self.name)

    def limited(self, train_limit: int) -> Dataset:
        """The same dataset with only the first ``train_limit`` training images (0 = all)."""
        if not train_limit or train_limit >= len(self.train_y):
            return self
        return dataclasses.replace(self, train_x=self.train_x[:train_limit], train_y=self.train_y[:train_limit])

    def normalisation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training images, in [0, 1] units."""
        x = self.train_x.float() / 255.0
        return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)).clamp_min(1e-3)

    def split_info(self) -> dict[str, Any]:
        """The search split of this (possibly limited) dataset, for ``experiment.json`` and the records:
        how the order was made, and the images per class in the weight half, the architecture half and the
        test set."""
        weights, arch = search_halves(len(self.train_y))

        def per_class(y: torch.Tensor) -> list[int]:
            return torch.bincount(y.cpu(), minlength=self.num_classes).tolist()

        return {"order": self.order, "train_images": len(self.train_y), "test_images": len(self.test_y),
                "classes": list(self.classes) or [str(k) for k in range(self.num_classes)],
                "weights": per_class(self.train_y[weights]), "arch": per_class(self.train_y[arch]),
                "test": per_class(self.test_y)}


def search_halves(n: int) -> tuple[slice, slice]:
    """The fixed search split of ``n`` training images: the first half (weights), the rest (architecture)."""
    return slice(0, n // 2), slice(n // 2, n)


def check_split(split: dict[str, Any], train_limit: int) -> None:
    """Refuse a search split that leaves a class out of a half (one line, before anything runs)."""
    for half in ("weights", "arch"):
        empty = [name for name, n in zip(split["classes"], split[half]) if n == 0]
        if empty:
            what = "weight" if half == "weights" else "architecture"
            shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
            limit = (f"train_limit={train_limit} keeps {split['train_images']} training images; "
                     if train_limit else f"{split['train_images']} training images; ")
            raise UserError(f"the search split's {what} half has no image of class(es) {shown} ({limit}"
                            f"every class needs at least one image in each half): raise train_limit or add images")


def stratified_order(labels: np.ndarray) -> np.ndarray:
    """A fixed, seed-independent, class-stratified order of ``labels``.

    Image k of class c (k-th in a fixed random order of its class, ``RandomState(0)``) gets the key
    (k + ½) / n_c; sorting by key (ties by class) interleaves the classes. Each search half then holds
    ⌊n_c/2⌋ or ⌈n_c/2⌉ of class c's n_c images (the keys below ½ come first), and every ``train_limit``
    prefix of length m about m·n_c/N of them (within one image when the classes are balanced; the tests
    check both). The random order within a class keeps sub-orders of a folder (file names by source or
    date) out of the halves.
    """
    labels = np.asarray(labels)
    rng = np.random.RandomState(0)
    keys = np.empty(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        keys[members] = (rng.permutation(len(members)) + 0.5) / len(members)
    return np.lexsort((labels, keys))


def _stratified(ds: Dataset) -> Dataset:
    order = torch.from_numpy(stratified_order(ds.train_y.numpy()))
    return dataclasses.replace(ds, train_x=ds.train_x[order], train_y=ds.train_y[order], order=ORDER_STRATIFIED)


def validate_name(name: str) -> None:
    """Check a dataset name without loading anything (used before anything is written)."""
    if name in ("digits", "cifar10", "cifar100", "imagenet16-120"):
        return
    if name.startswith("folder:"):
        root = Path(name[len("folder:"):]).expanduser()
        if not root.is_dir():
            raise UserError(f"dataset folder '{root}' does not exist; expected a folder with train/ and "
                            "test/ (or val/) subfolders in ImageFolder layout")
        if not (root / "train").is_dir() or not ((root / "test").is_dir() or (root / "val").is_dir()):
            raise UserError(f"dataset folder '{root}' must contain train/ and test/ (or val/) subfolders")
        return
    raise UserError(unknown_name("dataset", name, [d for d in DATASETS if ":" not in d],
                                 see=f"valid datasets: {', '.join(DATASETS)}"))


def load_dataset(name: str, data_dir: Path | None = None, image_size: int = 32,
                 cache_dir: Path | None = None) -> Dataset:
    """Load a dataset by name (see ``DATASETS``); errors are one-line ``UserError``s.

    ``cache_dir`` holds decoded folders and ImageNet16-120 (default ``default_cache_dir() / "datasets"``).
    """
    validate_name(name)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "datasets"
    if name == "digits":
        return _load_digits()
    if name in _CIFAR:
        return _load_cifar(name, Path(data_dir) if data_dir else default_data_dir(), cache)
    if name == "imagenet16-120":
        return _load_imagenet16(Path(data_dir) if data_dir else default_data_dir(), cache)
    return _load_folder(Path(name[len("folder:"):]).expanduser(), image_size, cache)


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # [N, 1, 8, 8]
    order = np.random.RandomState(0).permutation(len(images))  # fixed, seed-independent
    n_test = int(round(len(images) * DIGITS_TEST_FRACTION))
    train, test = order[n_test:], order[:n_test]
    x, y = torch.from_numpy(images), torch.from_numpy(bunch.target.astype(np.int64))
    return Dataset("digits", x[train], y[train], x[test], y[test], 10, crop_padding=1, flip=False,
                   order=ORDER_DIGITS)


# --- pickled batches (CIFAR, ImageNet16) -----------------------------------------------------------------

class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only: a dataset batch never holds anything else, and a
    file that does is refused instead of run."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a dataset batch")


def _read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """``data`` (uint8 rows) and ``label_key`` of one pickled batch (latin-1, as the files were written by
    Python 2)."""
    with open(path, "rb") as fh:
        batch = _ArrayUnpickler(fh, encoding="latin1").load()
    x = np.asarray(batch["data"], dtype=np.uint8)
    y = np.asarray(batch[label_key], dtype=np.int64).reshape(-1)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"{path.name}: {len(x)} images but {len(y)} labels")
    return x, y


_CORRUPT = (OSError, pickle.UnpicklingError, KeyError, IndexError, TypeError, ValueError, AttributeError,
            ImportError, EOFError)  # whatever a corrupt pickle raises


def _read_pickled(folder: Path, train: list[str], test: list[str], label_key: str, side: int, what: str,
                  hint: str, classes: int = 0) -> tuple[torch.Tensor, ...]:
    """Training and test tensors (``train_x, train_y, test_x, test_y``) from pickled batches of rows of
    3·side·side bytes, channel-first. With ``classes``, only labels 1..classes are kept, as 0..classes − 1
    (ImageNet's labels start at 1). A corrupt file is one ``UserError`` naming ``what`` and ``hint``."""
    current = folder

    def read(files: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal current
        xs, ys = [], []
        for f in files:
            current = folder / f
            x, y = _read_batch(current, label_key)
            if classes:
                keep = (y >= 1) & (y <= classes)
                x, y = x[keep], y[keep] - 1
            xs.append(x.reshape(-1, 3, side, side))
            ys.append(y)
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    try:
        return (*read(train), *read(test))
    except _CORRUPT as exc:
        raise UserError(f"{what} files in '{folder}' are unreadable ({current.name}: {exc.__class__.__name__}); "
                        f"{hint}") from None


def read_cifar_folder(name: str, root: Path) -> Dataset:
    """Read CIFAR's python-pickle batches from ``root`` (the layout torchvision downloads)."""
    sub, train_files, test_files, label_key = _CIFAR[name]
    tensors = _read_pickled(root / sub, train_files, test_files, label_key, CIFAR_SIZE, name,
                            "delete the folder to download them again")
    return Dataset(name, *tensors, _CIFAR_CLASSES[name], crop_padding=4, flip=True, order=ORDER_CIFAR)


def _download_cifar(name: str, folder: Path) -> None:
    """Download the python version of CIFAR ``name`` with torchvision into ``folder`` (its archive is checked
    against torchvision's MD5 and extracted there): the harness's one dataset download (tests replace it)."""
    import torchvision

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    cls(root=str(folder), train=True, download=True)


def _missing(folder: Path, files: list[str]) -> list[str]:
    return [f for f in files if not (folder / f).is_file()]


def _load_cifar(name: str, root: Path, cache: Path) -> Dataset:
    """CIFAR ``name`` from ``root``: its python batches; else its PNG copy in ``root/train`` and ``root/test``
    (``_load_cifar_png``, cached in ``cache``); else downloaded.

    Trials that start together (on one node, or on nodes sharing the data folder) download once: the download
    holds the exclusive ``flock`` of ``<root>/<folder>.lock`` and checks again once it holds it, so a trial that
    waited finds the files. It goes to a temporary folder beside the dataset's, whose extracted folder is then
    renamed into place in one step: a dataset folder that is there is complete, never half extracted (a download
    cut short leaves nothing but its temporary folder, removed on the way out)."""
    sub, train_files, test_files, _ = _CIFAR[name]
    files = train_files + test_files
    if _missing(root / sub, files) and ((root / "train").is_dir() or (root / "test").is_dir()):
        return _load_cifar_png(name, root, cache)
    if _missing(root / sub, files):
        if os.environ.get("HARNESS_OFFLINE") == "1":
            raise UserError(f"{name} is not in '{root / sub}' and downloads are off (HARNESS_OFFLINE=1); "
                            f"place the extracted python version of {name} in '{root}'")
        with key_lock(root, sub, "data folder", "give --data-dir (or HARNESS_DATA_DIR) a writable folder"):
            if _missing(root / sub, files):  # not downloaded by another trial while this one waited
                _fetch_cifar(name, root)
    return read_cifar_folder(name, root)


def _fetch_cifar(name: str, root: Path) -> None:
    """Download CIFAR ``name`` into a temporary folder in ``root`` and rename its extracted folder into place
    (replacing an incomplete one: an older download cut short, a partial copy). Called under the lock."""
    sub, train_files, test_files, _ = _CIFAR[name]
    tmp = Path(tempfile.mkdtemp(prefix=f".{sub}.download-", dir=root))
    try:
        try:
            _download_cifar(name, tmp)
        except Exception as exc:  # network errors come in many classes
            raise UserError(f"cannot download {name} ({exc.__class__.__name__}); place the extracted python "
                            f"version of {name} in '{root}' (or set HARNESS_DATA_DIR)") from None
        missing = _missing(tmp / sub, train_files + test_files)
        if missing:
            raise UserError(f"the {name} download has no {sub}/{missing[0]}; place the extracted python version "
                            f"of {name} in '{root}' (or set HARNESS_DATA_DIR)")
        if (root / sub).exists() or (root / sub).is_symlink():
            os.replace(root / sub, tmp / "incomplete")  # removed with the temporary folder
        os.replace(tmp / sub, root / sub)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_cifar_png(name: str, root: Path, cache: Path) -> Dataset:
    """CIFAR ``name`` from its PNG copy in ``root/train`` and ``root/test`` (checked, then decoded once and
    cached like a folder)."""
    labelled, n_train, classes = _cifar_png_files(name, root)
    key = {"dataset": name, "layout": "png", "root": str(root.resolve()),
           "files": _file_stats(root, [f for f, _ in labelled])}
    # nothing is resized: a resized copy is not CIFAR (an image of another size is one line)
    return _cached_dataset(cache, name, key,
                           lambda: _decode_folder(name, labelled, n_train, classes, CIFAR_SIZE, resize=False))


def _cifar_png_files(name: str, root: Path) -> tuple[list[tuple[Path, int]], int, list[str]]:
    """The (file, label) pairs of a PNG copy of CIFAR ``name`` (training images first), their number of training
    images and the class names; a copy that is not CIFAR ``name`` is one line saying what differs: a missing
    split, other classes, other counts per class (``CIFAR_PNG_COUNTS``)."""
    per_class = dict(zip(("train", "test"), CIFAR_PNG_COUNTS[name]))
    found: dict[str, dict[str, list[Path]]] = {}
    for split in per_class:
        if not (root / split).is_dir():
            raise UserError(f"'{root}' holds a PNG copy of {name} without its {split}/ folder; {name} in class "
                            f"folders needs train/<class>/*.png and test/<class>/*.png")
        found[split] = _class_files(root / split)
    classes = list(found["train"])
    want = list(CIFAR_PNG_CLASSES.get(name, ())) or classes
    for split, files in found.items():
        if list(files) != want or len(want) != _CIFAR_CLASSES[name]:
            extra = sorted(set(files) - set(want))
            missing = sorted(set(want) - set(files))
            what = (f"{len(files)} class folders, {name} has {_CIFAR_CLASSES[name]}" if not (extra or missing)
                    else f"extra: {', '.join(extra[:5]) or 'none'}; missing: {', '.join(missing[:5]) or 'none'}")
            raise UserError(f"the class folders of '{root / split}' are not {name}'s ({what})")
        wrong = [(c, len(f)) for c, f in files.items() if len(f) != per_class[split]]
        if wrong:
            c, n = wrong[0]
            raise UserError(f"'{root / split / c}' has {n:,} images; {name} has {per_class[split]:,} per class in "
                            f"{split}/ ({len(wrong)} class folder(s) differ): the copy is incomplete or not {name}")
    labelled = [(f, k) for split in ("train", "test") for k, c in enumerate(classes) for f in found[split][c]]
    return labelled, len(classes) * per_class["train"], classes


def read_imagenet16(folder: Path) -> Dataset:
    """ImageNet16-120 from the down-sampled ImageNet 16×16 batches in ``folder``: rows of 768 bytes (3×16×16,
    channel-first), labels 1..1000, of which 1..120 are kept as 0..119; the whole ``val_data`` (120 classes)
    is the test set. Returned in class-stratified order."""
    tensors = _read_pickled(folder, IMAGENET16_TRAIN, IMAGENET16_TEST, "labels", 16, "imagenet16-120",
                            "replace them with the down-sampled ImageNet 16×16 batches", classes=IMAGENET16_CLASSES)
    return _stratified(Dataset("imagenet16-120", *tensors, IMAGENET16_CLASSES, crop_padding=2, flip=True))


def _load_imagenet16(data_dir: Path, cache: Path) -> Dataset:
    folder = data_dir / IMAGENET16_DIR
    files = [folder / f for f in IMAGENET16_TRAIN + IMAGENET16_TEST]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise UserError(f"imagenet16-120 is not in '{folder}' (missing {', '.join(missing[:3])}"
                        f"{' …' if len(missing) > 3 else ''}) and cannot be downloaded: put the down-sampled "
                        f"ImageNet 16×16 files train_data_batch_1 … train_data_batch_10 and val_data (image-net.org's "
                        "Imagenet16_train and Imagenet16_val archives, as NAS-Bench-201 uses them) there, or give "
                        "--data-dir / HARNESS_DATA_DIR")
    key = {"dataset": "imagenet16-120", "root": str(folder.resolve()), "files": _file_stats(folder, files)}
    return _cached_dataset(cache, "imagenet16-120", key, lambda: read_imagenet16(folder))


# --- the decoded-dataset cache ---------------------------------------------------------------------------

def _file_stats(root: Path, files: list[Path]) -> list[list[Any]]:
    out = []
    for f in files:
        st = f.stat()
        out.append([str(f.relative_to(root)), st.st_size, st.st_mtime_ns])
    return out


_TENSORS = ("train_x", "train_y", "test_x", "test_y")


def _cached_dataset(cache: Path, name: str, key_parts: dict[str, Any], build: Callable[[], Dataset]) -> Dataset:
    """The dataset ``name`` of ``key_parts`` from the cache, or ``build()`` it and cache it.

    The key hashes ``key_parts`` (the source's path, file names, sizes and modification times, decoding
    options); the entry is written atomically under an exclusive ``flock`` on ``<key>.lock``, and the
    cache is checked again once the lock is held, so concurrent trials decode once. An unreadable entry is
    rebuilt.
    """
    key = hashlib.sha256(json.dumps({"format": CACHE_FORMAT, **key_parts}, sort_keys=True).encode()).hexdigest()[:24]
    path = cache / f"{key}.pt"

    def decode_and_store() -> Dataset:
        start = time.perf_counter()
        ds = build()
        entry = {"format": CACHE_FORMAT, **{k: getattr(ds, k) for k in _TENSORS},
                 "meta": {"num_classes": ds.num_classes, "crop_padding": ds.crop_padding,
                          "flip": ds.flip, "order": ds.order, "classes": list(ds.classes)}}
        atomic_write(path, lambda f: torch.save(entry, f), binary=True)
        return dataclasses.replace(ds, source=f"decoded in {time.perf_counter() - start:.1f} s, cached as {path}")

    return get_or_build(cache, key, lambda: _read_cache(path, name), decode_and_store, "dataset cache")


def _read_cache(path: Path, name: str) -> Dataset | None:
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        if entry.get("format") != CACHE_FORMAT:
            return None
        meta = entry["meta"]
        return Dataset(name, *(entry[k] for k in _TENSORS), meta["num_classes"], meta["crop_padding"],
                       meta["flip"], order=meta["order"], classes=tuple(meta["classes"]),
                       source=f"loaded from the cache {path}")
    except Exception:  # a truncated or foreign file: rebuild it
        return None


# --- folder:PATH ---------------------------------------------------------------------------------------

def _class_files(split_dir: Path) -> dict[str, list[Path]]:
    """The image files of every class folder of ``split_dir`` (recursively, in sorted order, as torchvision's
    ImageFolder walks them). Hidden files and folders and system files (``Thumbs.db``, ``desktop.ini``) are
    skipped; every other file must be an image.

    Links are followed, to a file or a folder, inside the dataset folder or outside it (as ImageFolder does), and
    read as what they point to. Nothing but a regular file is ever opened: a FIFO (whose open would wait for a
    writer for ever), a socket or a device is refused, and so are a broken link and a link loop (a link back to a
    folder the walk is already in, which would make it endless) or a second path to a folder already walked
    (its images would count twice), each in one line naming the path (``_stat_entry``, ``_walk_images``)."""
    seen: dict[str, Path] = {os.path.realpath(split_dir): split_dir}  # every folder walked, by its real path
    classes = []
    for entry in sorted(split_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if stat.S_ISDIR(_stat_entry(entry).st_mode):  # files beside the class folders are not read
            classes.append(entry.name)
    if not classes:
        raise UserError(f"'{split_dir}' has no class folders; put the images of each class in a subfolder "
                        "named after the class")
    files: dict[str, list[Path]] = {}
    for name in classes:
        found = sorted(_walk_images(split_dir / name, seen, (os.path.realpath(split_dir),)))
        if not found:
            raise UserError(f"class folder '{split_dir / name}' has no images; add images or remove the folder")
        files[name] = found
    return files


_NOT_REGULAR = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _stat_entry(path: Path) -> os.stat_result:
    """``os.stat`` of ``path`` through its links (nothing is opened); a broken link, a link loop the kernel finds
    (``ELOOP``) or an unreadable entry is one line."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():
            raise UserError(f"'{path}' is a broken link (to '{os.readlink(path)}', which does not exist); remove it "
                            "or point it at an image") from None
        raise UserError(f"'{path}' vanished while the dataset folder was read; is something changing it?") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"'{path}' is a link loop (its links lead back to themselves); remove it") from None
        raise UserError(f"cannot read '{path}' ({exc.strerror or exc.__class__.__name__})") from None


def _walk_images(folder: Path, seen: dict[str, Path], above: tuple[str, ...]) -> list[Path]:
    """The image files under ``folder``, whose ancestors' real paths are ``above``; ``seen`` maps the real path of
    every folder walked so far (of this split) to the path it was reached by."""
    real = os.path.realpath(folder)
    if real in above:
        raise UserError(f"'{folder}' is a link loop: it leads back to '{seen[real]}', a folder it lies in; "
                        "remove the link")
    if real in seen:
        raise UserError(f"'{folder}' leads to the folder '{seen[real]}' a second time (through a link), so its "
                        "images would count twice; remove the link")
    seen[real] = folder
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise UserError(f"cannot read the folder '{folder}' ({exc.strerror or exc.__class__.__name__})") from None
    found: list[Path] = []
    for path in entries:
        if path.name.startswith("."):
            continue
        mode = _stat_entry(path).st_mode
        if stat.S_ISDIR(mode):
            found += _walk_images(path, seen, (*above, real))
        elif stat.S_ISREG(mode):
            if path.name not in _JUNK_FILES:
                found.append(path)
        else:
            kind = next((what for test, what in _NOT_REGULAR if test(mode)), "neither a regular file nor a folder")
            raise UserError(f"'{path}' is {kind}, not an image file; remove it from the dataset folder")
    return found


def _decode_image(path: Path, image_size: int, resize: bool = True) -> np.ndarray:
    """One image as uint8 [3, S, S]: converted to RGB (greyscale, palette and RGBA alike, as torchvision's
    loader does) and resized bilinearly (torchvision's ``Resize`` on a PIL image does the same); without
    ``resize``, an image of another size is one line."""
    from PIL import Image

    try:
        # never blocks: a FIFO put in place of the file after the walk (``_class_files``) opens at once, and is refused
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise UserError(f"'{path}' is not a regular file, not an image file; remove it from the dataset folder")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PIL's palette-transparency and decompression-bomb warnings
                with Image.open(fh) as img:
                    rgb = img.convert("RGB")
        if rgb.size != (image_size, image_size) and not resize:
            raise UserError(f"image '{path}' is {rgb.size[0]}×{rgb.size[1]}, not {image_size}×{image_size}; "
                            "replace it with the original")
        if rgb.size != (image_size, image_size):
            rgb = rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1).copy()
    except UserError:
        raise
    except Exception as exc:  # PIL raises many classes for a bad file (UnidentifiedImageError, bombs, ...)
        raise UserError(f"cannot read image '{path}' ({exc.__class__.__name__}); remove or replace it") from None


def _decode_folder(name: str, labelled: list[tuple[Path, int]], n_train: int, classes: list[str],
                   image_size: int, resize: bool = True) -> Dataset:
    """Decode ``labelled`` (file, label) pairs, the first ``n_train`` of them the training set, as the dataset
    ``name`` in class-stratified order (crop padding ``image_size // 8``: CIFAR's 4 at 32×32; flip); without
    ``resize`` an image of another size is one line (``_decode_image``)."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # PIL decodes without the GIL
        images = list(pool.map(lambda item: _decode_image(item[0], image_size, resize), labelled))
    x = torch.from_numpy(np.stack(images))
    y = torch.tensor([k for _, k in labelled], dtype=torch.int64)
    ds = Dataset(name, x[:n_train], y[:n_train], x[n_train:], y[n_train:], len(classes),
                 crop_padding=max(1, image_size // 8), flip=True, classes=tuple(classes))
    return _stratified(ds)


def _load_folder(root: Path, image_size: int, cache: Path) -> Dataset:
    train_dir = root / "train"
    test_dir = root / "test" if (root / "test").is_dir() else root / "val"
    train_files, test_files = _class_files(train_dir), _class_files(test_dir)
    if list(train_files) != list(test_files):
        only_train = sorted(set(train_files) - set(test_files))
        only_test = sorted(set(test_files) - set(train_files))
        raise UserError(f"the class folders of '{train_dir}' and '{test_dir}' differ (only in "
                        f"{train_dir.name}/: {', '.join(only_train) or 'none'}; only in {test_dir.name}/: "
                        f"{', '.join(only_test) or 'none'}); both must hold the same classes")
    few = [c for c, files in train_files.items() if len(files) < 2]
    if few:
        raise UserError(f"class '{few[0]}' has {len(train_files[few[0]])} training image in '{train_dir / few[0]}'; "
                        "the search split needs at least 2 per class (one in each half)")
    classes = list(train_files)
    labelled = [(f, k) for files in (train_files, test_files) for k, c in enumerate(classes) for f in files[c]]
    n_train = sum(len(files) for files in train_files.values())
    key = {"dataset": "folder", "root": str(root.resolve()), "image_size": image_size,
           "files": _file_stats(root, [f for f, _ in labelled])}
    return _cached_dataset(cache, f"folder:{root}", key,
                           lambda: _decode_folder(f"folder:{root}", labelled, n_train, classes, image_size))


def from_host(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small tensor drawn on the host (an epoch's order, a batch's crop offsets, flips, cutout centres)
    moved to ``device``. The images themselves live on the device whole (``SearchData``); only these draws
    cross, from the host's generator so that a batch is the same on every device. On CUDA they go through
    pinned memory without blocking, so the copy does not wait for the GPU work already queued."""
    if device.type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


class Batches:
    """Mini-batches of a fixed index set, augmented on the device.

    ``augment`` adds random-crop (with the dataset's padding) and horizontal flip (where the dataset
    allows it); ``cutout`` > 0 zeroes one random square of that side per image. Batches come in
    ``layout`` (the networks' memory format: channels-last by default in a trial).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                 batch_size: int, *, shuffle: bool, augment: bool, crop_padding: int = 0,
                 flip: bool = False, cutout: int = 0, seed: int = 0, limit_batches: int = 0,
                 drop_last: bool = False, layout: torch.memory_format = torch.contiguous_format):
        self.x, self.y, self.layout = x, y, layout
        self.mean = mean.view(1, -1, 1, 1).to(x.device)
        self.std = std.view(1, -1, 1, 1).to(x.device)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.crop_padding, self.flip, self.cutout = crop_padding, flip, cutout
        self.seed, self.limit_batches, self.drop_last = seed, limit_batches, drop_last

    def __len__(self) -> int:
        n = len(self.y) // self.batch_size if self.drop_last else -(-len(self.y) // self.batch_size)
        return min(n, self.limit_batches) if self.limit_batches else n

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(self.seed)
        n = len(self.y)
        order = from_host(torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n), self.x.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            x = self.x[idx].float().div_(255.0)
            if self.augment:
                x = self._augment(x, gen)
            x = (x - self.mean) / self.std
            if self.augment and self.cutout:  # after normalisation, as in DARTS: the hole is the mean colour
                x = self._cutout(x, gen)
            yield x.contiguous(memory_format=self.layout), self.y[idx]

    def _augment(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b, c, h, w = x.shape
        dev = x.device
        if self.crop_padding:
            p = self.crop_padding
            padded = torch.nn.functional.pad(x, (p, p, p, p))
            oy = from_host(torch.randint(0, 2 * p + 1, (b,), generator=gen), dev)
            ox = from_host(torch.randint(0, 2 * p + 1, (b,), generator=gen), dev)
            rows = (oy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
            cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, None, :]
            x = padded[torch.arange(b, device=dev)[:, None, None, None],
                       torch.arange(c, device=dev)[None, :, None, None], rows, cols]
        if self.flip:
            mask = from_host(torch.rand(b, generator=gen) < 0.5, dev)
            x = torch.where(mask[:, None, None, None], x.flip(3), x)
        return x

    def _cutout(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b, _, h, w = x.shape
        dev = x.device
        cy = from_host(torch.randint(0, h, (b,), generator=gen), dev)
        cx = from_host(torch.randint(0, w, (b,), generator=gen), dev)
        half = self.cutout // 2
        ys = torch.arange(h, device=dev)[None, :, None]
        xs = torch.arange(w, device=dev)[None, None, :]
        y0, x0 = (cy - half).clamp(0, h), (cx - half).clamp(0, w)
        y1, x1 = (cy + half).clamp(0, h), (cx + half).clamp(0, w)
        hole = ((ys >= y0[:, None, None]) & (ys < y1[:, None, None])
                & (xs >= x0[:, None, None]) & (xs < x1[:, None, None]))
        x = x * (~hole)[:, None].to(x.dtype)
        return x


def scaled_cutout(cutout: int, image_size: int) -> int:
    """Cutout length given at 32×32 (the papers' 16), scaled to the dataset's image size."""
    return int(round(cutout * image_size / 32.0)) if cutout else 0


class SearchData:
    """The data of one trial: the fixed search halves, the full train set and the test set.

    All loaders share the dataset's normalisation, yield batches in the configuration's memory format and
    take a per-(phase, epoch) seed. ``split`` describes the search split (``Dataset.split_info``).
    """

    def __init__(self, dataset: Dataset, cfg: dict, seed: int, device: torch.device):
        ds = dataset.limited(int(cfg.get("train_limit", 0)))
        self.dataset, self.cfg, self.seed, self.device = ds, cfg, seed, device
        self.info = ds.info
        self.split = ds.split_info()
        self.layout = memory_format(cfg)
        self.mean, self.std = ds.normalisation()
        self.train_x, self.train_y = ds.train_x.to(device), ds.train_y.to(device)
        self.test_x, self.test_y = ds.test_x.to(device), ds.test_y.to(device)
        self.weight_idx, self.arch_idx = search_halves(len(ds.train_y))

    def _seed(self, phase: str, epoch: int) -> int:
        tag = {"weights": 1, "arch": 2, "eval": 3, "candidate": 4}[phase]
        return (self.seed * 1_000_003 + tag * 10_007 + epoch) % (2**63)

    def _batches(self, sl: slice, batch_size: int, **kw) -> Batches:
        return Batches(self.train_x[sl], self.train_y[sl], self.mean, self.std, batch_size, layout=self.layout,
                       **kw)

    def weight_batches(self, epoch: int, phase: str = "weights") -> Batches:
        """Augmented, shuffled batches of the weight half."""
        return self._batches(self.weight_idx, self.cfg["search_batch_size"], shuffle=True, augment=True,
                             crop_padding=self.dataset.crop_padding, flip=self.dataset.flip,
                             seed=self._seed(phase, epoch))

    def arch_batches(self, epoch: int) -> Batches:
        """Augmented, shuffled batches of the architecture half (both halves use augmentation)."""
        return self._batches(self.arch_idx, self.cfg["search_batch_size"], shuffle=True, augment=True,
                             crop_padding=self.dataset.crop_padding, flip=self.dataset.flip,
                             seed=self._seed("arch", epoch))

    def val_batches(self, limit_batches: int = 0) -> Batches:
        """The architecture half in fixed order, unaugmented: search validation accuracy."""
        return self._batches(self.arch_idx, self.cfg["search_batch_size"], shuffle=False, augment=False,
                             limit_batches=limit_batches)

    def eval_train_batches(self, epoch: int) -> Batches:
        """The whole training set for the final network, with cutout."""
        return Batches(self.train_x, self.train_y, self.mean, self.std, self.cfg["eval_batch_size"],
                       shuffle=True, augment=True, crop_padding=self.dataset.crop_padding,
                       flip=self.dataset.flip, seed=self._seed("eval", epoch),
                       cutout=scaled_cutout(self.cfg["cutout"], self.info.image_size), layout=self.layout)

    def test_batches(self) -> Batches:
        return Batches(self.test_x, self.test_y, self.mean, self.std, self.cfg["eval_batch_size"],
                       shuffle=False, augment=False, layout=self.layout)
