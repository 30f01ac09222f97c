"""Datasets, the fixed search split, and a tensor batch loader with on-device augmentation.

Every dataset is held in memory as uint8 tensors ``[N, C, H, W]`` (digits: 1,797 images; CIFAR: 50k+10k
at 32×32, 180 MB), so batches are gathered and augmented on the trial's device without DataLoader
workers. Randomness of a loader comes from its own ``torch.Generator`` seeded from (trial seed, phase,
epoch): a trial resumed from a checkpoint sees exactly the batches the uninterrupted trial would have.

The search split is fixed and seed-independent: the first half of the (possibly limited) training set
trains the weights, the second half the architecture (CIFAR-10: the first 25k indices and the last 25k,
as in DARTS). The test set is used only for the final evaluation.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.errors import UserError
from spaces.base import DataInfo

DATASETS = {
    "digits": "scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes; offline)",
    "cifar10": "CIFAR-10 via torchvision (downloaded on first use into the data folder)",
    "cifar100": "CIFAR-100 via torchvision (downloaded on first use into the data folder)",
    "folder:PATH": "any ImageFolder layout with train/ and test/ (or val/), resized to image_size",
}

DIGITS_TEST_FRACTION = 0.2
_CIFAR = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels"),
}


def default_data_dir() -> Path:
    return Path(os.environ.get("HARNESS_DATA_DIR", Path.home() / ".cache" / "nas-harness" / "data"))


@dataclass
class Dataset:
    """A whole dataset in memory, plus how to augment it."""

    name: str
    train_x: torch.Tensor  # uint8 [N, C, H, W]
    train_y: torch.Tensor  # int64 [N]
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    crop_padding: int
    flip: bool

    @property
    def info(self) -> DataInfo:
        return DataInfo(in_channels=self.train_x.shape[1], num_classes=self.num_classes,
                        image_size=self.train_x.shape[-1], name=self.name)

    def limited(self, train_limit: int) -> Dataset:
        """The same dataset with only the first ``train_limit`` training images (0 = all)."""
        if not train_limit or train_limit >= len(self.train_y):
            return self
        return Dataset(self.name, self.train_x[:train_limit], self.train_y[:train_limit], self.test_x,
                       self.test_y, self.num_classes, self.crop_padding, self.flip)

    def normalisation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training images, in [0, 1] units."""
        x = self.train_x.float() / 255.0
        return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)).clamp_min(1e-3)


def validate_name(name: str) -> None:
    """Check a dataset name without loading anything (used before anything is written)."""
    if name in ("digits", "cifar10", "cifar100"):
        return
    if name.startswith("folder:"):
        root = Path(name[len("folder:"):]).expanduser()
        if not root.is_dir():
            raise UserError(f"dataset folder '{root}' does not exist; expected a folder with train/ and "
                            "test/ (or val/) subfolders in ImageFolder layout")
        if not (root / "train").is_dir() or not ((root / "test").is_dir() or (root / "val").is_dir()):
            raise UserError(f"dataset folder '{root}' must contain train/ and test/ (or val/) subfolders")
        return
    raise UserError(f"unknown dataset '{name}'; valid datasets: digits, cifar10, cifar100, folder:PATH")


def load_dataset(name: str, data_dir: Path | None = None, image_size: int = 32) -> Dataset:
    """Load a dataset by name (see ``DATASETS``); errors are one-line ``UserError``s."""
    validate_name(name)
    if name == "digits":
        return _load_digits()
    if name in _CIFAR:
        return _load_cifar(name, Path(data_dir) if data_dir else default_data_dir())
    return _load_folder(Path(name[len("folder:"):]).expanduser(), image_size)


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # [N, 1, 8, 8]
    order = np.random.RandomState(0).permutation(len(images))  # fixed, seed-independent
    n_test = int(round(len(images) * DIGITS_TEST_FRACTION))
    train, test = order[n_test:], order[:n_test]
    x, y = torch.from_numpy(images), torch.from_numpy(bunch.target.astype(np.int64))
    return Dataset("digits", x[train], y[train], x[test], y[test], 10, crop_padding=1, flip=False)


def read_cifar_folder(name: str, root: Path) -> Dataset:
    """Read CIFAR's python-pickle batches from ``root`` (the layout torchvision downloads)."""
    sub, train_files, test_files, label_key = _CIFAR[name]

    def read(files: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for f in files:
            with open(root / sub / f, "rb") as fh:
                batch = pickle.load(fh, encoding="latin1")
            xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[label_key], dtype=np.int64))
            if len(xs[-1]) != len(ys[-1]):
                raise ValueError(f"{f}: {len(xs[-1])} images but {len(ys[-1])} labels")
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    try:
        train_x, train_y = read(train_files)
        test_x, test_y = read(test_files)
    except (OSError, pickle.UnpicklingError, KeyError, IndexError, TypeError, ValueError, AttributeError,
            ImportError, EOFError) as exc:  # whatever a corrupt pickle raises
        raise UserError(f"{name} files in '{root / sub}' are unreadable ({exc.__class__.__name__}); "
                        "delete the folder to download them again") from None
    return Dataset(name, train_x, train_y, test_x, test_y, 10 if name == "cifar10" else 100,
                   crop_padding=4, flip=True)


def _load_cifar(name: str, root: Path) -> Dataset:
    sub, train_files, test_files, _ = _CIFAR[name]
    if not all((root / sub / f).is_file() for f in train_files + test_files):
        if os.environ.get("HARNESS_OFFLINE") == "1":
            raise UserError(f"{name} is not in '{root / sub}' and downloads are off (HARNESS_OFFLINE=1); "
                            f"place the extracted python version of {name} in '{root}'")
        try:
            import torchvision

            cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
            root.mkdir(parents=True, exist_ok=True)
            cls(root=str(root), train=True, download=True)
        except Exception as exc:  # network errors come in many classes
            raise UserError(f"cannot download {name} ({exc.__class__.__name__}); place the extracted python "
                            f"version of {name} in '{root}' (or set HARNESS_DATA_DIR)") from None
    return read_cifar_folder(name, root)


def _load_folder(root: Path, image_size: int) -> Dataset:
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Resize((image_size, image_size)), transforms.PILToTensor()])

    def image_folder(path: Path):
        try:
            return datasets.ImageFolder(str(path), transform=tf)
        except FileNotFoundError as exc:  # no class folder, or a class folder without images
            raise UserError(f"'{path}' is not a usable ImageFolder ({exc}); put the images of each class in "
                            "a subfolder named after the class") from None

    train = image_folder(root / "train")
    test_dir = root / "test" if (root / "test").is_dir() else root / "val"
    test = image_folder(test_dir)
    unknown = set(test.classes) - set(train.classes)
    if unknown:
        raise UserError(f"classes {sorted(unknown)} in '{test_dir}' are not in '{root / 'train'}'")
    remap = {test.class_to_idx[c]: train.class_to_idx[c] for c in test.classes}

    def stack(ds, mapping=None) -> tuple[torch.Tensor, torch.Tensor]:
        if len(ds) == 0:
            raise UserError(f"no images in '{ds.root}'")
        items = []
        for i, (path, _) in enumerate(ds.samples):
            try:
                items.append(ds[i])
            except OSError as exc:  # PIL's UnidentifiedImageError among them
                raise UserError(f"cannot read image '{path}' ({exc.__class__.__name__}); remove or replace "
                                "it") from None
        xs, ys = zip(*items)
        ys = [mapping[y] for y in ys] if mapping else list(ys)
        return torch.stack(xs), torch.tensor(ys, dtype=torch.int64)

    train_x, train_y = stack(train)
    test_x, test_y = stack(test, remap)
    return Dataset(f"folder:{root}", train_x, train_y, test_x, test_y, len(train.classes),
                   crop_padding=max(1, image_size // 8), flip=True)


class Batches:
    """Mini-batches of a fixed index set, augmented on the device.

    ``augment`` adds random-crop (with the dataset's padding) and horizontal flip (where the dataset
    allows it); ``cutout`` > 0 zeroes one random square of that side per image.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                 batch_size: int, *, shuffle: bool, augment: bool, crop_padding: int = 0,
                 flip: bool = False, cutout: int = 0, seed: int = 0, limit_batches: int = 0,
                 drop_last: bool = False):
        self.x, self.y = x, y
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
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size].to(self.x.device)
            x = self.x[idx].float().div_(255.0)
            if self.augment:
                x = self._augment(x, gen)
            x = (x - self.mean) / self.std
            if self.augment and self.cutout:  # after normalisation, as in DARTS: the hole is the mean colour
                x = self._cutout(x, gen)
            yield x, self.y[idx]

    def _augment(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b, c, h, w = x.shape
        dev = x.device
        if self.crop_padding:
            p = self.crop_padding
            padded = torch.nn.functional.pad(x, (p, p, p, p))
            oy = torch.randint(0, 2 * p + 1, (b,), generator=gen).to(dev)
            ox = torch.randint(0, 2 * p + 1, (b,), generator=gen).to(dev)
            rows = (oy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
            cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, None, :]
            x = padded[torch.arange(b, device=dev)[:, None, None, None],
                       torch.arange(c, device=dev)[None, :, None, None], rows, cols]
        if self.flip:
            mask = (torch.rand(b, generator=gen) < 0.5).to(dev)
            x = torch.where(mask[:, None, None, None], x.flip(3), x)
        return x

    def _cutout(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b, _, h, w = x.shape
        dev = x.device
        cy = torch.randint(0, h, (b,), generator=gen).to(dev)
        cx = torch.randint(0, w, (b,), generator=gen).to(dev)
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

    All loaders share the dataset's normalisation and take a per-(phase, epoch) seed.
    """

    def __init__(self, dataset: Dataset, cfg: dict, seed: int, device: torch.device):
        ds = dataset.limited(int(cfg.get("train_limit", 0)))
        self.dataset, self.cfg, self.seed, self.device = ds, cfg, seed, device
        self.info = ds.info
        self.mean, self.std = ds.normalisation()
        half = len(ds.train_y) // 2
        self.train_x, self.train_y = ds.train_x.to(device), ds.train_y.to(device)
        self.test_x, self.test_y = ds.test_x.to(device), ds.test_y.to(device)
        self.weight_idx = slice(0, half)
        self.arch_idx = slice(half, len(ds.train_y))

    def _seed(self, phase: str, epoch: int) -> int:
        tag = {"weights": 1, "arch": 2, "eval": 3, "candidate": 4}[phase]
        return (self.seed * 1_000_003 + tag * 10_007 + epoch) % (2**63)

    def _batches(self, sl: slice, batch_size: int, **kw) -> Batches:
        return Batches(self.train_x[sl], self.train_y[sl], self.mean, self.std, batch_size, **kw)

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
                       cutout=scaled_cutout(self.cfg["cutout"], self.info.image_size))

    def test_batches(self) -> Batches:
        return Batches(self.test_x, self.test_y, self.mean, self.std, self.cfg["eval_batch_size"],
                       shuffle=False, augment=False)
