"""The teacher of attention-guided search (NOS): a PyramidNet, trained once per dataset and cached.

NOS (paper 001, section "Attention Guided Search" and appendix A1) distils a pre-trained PyramidNet-110
(bottleneck, α = 84, 300 epochs) into its proxy network with the attention-transfer loss at three stages.
This module holds everything on the teacher's side:

- ``PyramidNet``: Han et al., "Deep Pyramidal Residual Networks" (CVPR 2017), CIFAR version, with
  ``forward_features`` returning the output of each of its three stages;
- ``train_teacher``: the teacher's training on the whole training set (never the test set);
- ``get_teacher``: a user's checkpoint, or a content-addressed cache that trains a teacher once per
  (dataset, teacher configuration) however many trials ask for it at the same moment;
- ``attention_map`` and ``attention_transfer_loss``: the student-teacher alignment loss.

Training recipe (``TEACHER_CONFIG``). The NOS appendix says it "followed the same training details as
[57]" (PyramidNet) but then lists batch 32, lr 0.025 divided by 10 every 30 epochs for 300 epochs — a
schedule that reaches 2.5e-12 and cannot be what was run. We take PyramidNet's own CIFAR recipe instead
(SGD, Nesterov momentum 0.9, lr 0.1, weight decay 1e-4, batch 128, random crop and flip, 300 epochs); its
step decay (÷10 at epochs 150 and 225) is replaced by the harness's per-epoch cosine schedule to 0, the
schedule of every other training in the harness. There is no cutout: neither paper uses it for the teacher.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.core.cache import get_or_build
from harness.core.config import Key, existing_file_or
from harness.core.data import Batches, DataInfo, SearchData
from harness.core.errors import UserError
from harness.core.records import atomic_write
from harness.core.storage import default_cache_dir
from harness.core.train import (
    cosine_lr,
    evaluate,
    rng_state,
    seed_everything,
    set_lr,
    set_rng_state,
    to_device,
    train_epoch,
)

# Bump when anything that changes a trained teacher changes (architecture code, training loop, seeding,
# file layout): old cache entries then simply stop matching and are never loaded by mistake.
TEACHER_FORMAT = "nas-harness/teacher/1"


def pyramid_depth(depth: int) -> int:
    """``teacher_depth``'s check (``Key.check``): a bottleneck PyramidNet has 9n+2 layers, n >= 1."""
    if depth < 11 or (depth - 2) % 9:
        raise ValueError("does not fit a bottleneck PyramidNet")
    return depth


# The teacher keys of NOS. Paper defaults (NOS: PyramidNet-110, bottleneck, α = 84, 300 epochs; the optimiser
# is PyramidNet's own, see the module docstring). ``teacher`` is the path of a user's checkpoint ('' = train
# or load the cached one); it is not part of the cache key because a user's teacher bypasses the cache.
# α >= 0: the widths grow by α over the network (0 = 16 planes throughout; a negative α shrinks them).
TEACHER_CONFIG: dict[str, Key] = {
    "teacher": Key("", "NOS: path of a teacher checkpoint you trained (state_dict of a bottleneck PyramidNet with "
                       "teacher_depth/teacher_alpha, or a dict holding it under 'state_dict'); '' = train once and "
                       "cache", check=existing_file_or(""),
                   valid="'' (train the teacher once and cache it) or the path of an existing checkpoint file"),
    "teacher_depth": Key(110, "NOS teacher: PyramidNet depth, 9n+2 (bottleneck; 110 = 12 units per stage)",
                         check=pyramid_depth, valid="int 9n+2 with n >= 1: 11, 20, 29, ..., 110, ..."),
    "teacher_alpha": Key(84, "NOS teacher: PyramidNet widening α (channels added over the whole network)", "[0, inf)"),
    "teacher_epochs": Key(300, "NOS teacher: training epochs (cosine learning rate to 0)", "[1, inf)"),
    "teacher_lr": Key(0.1, "NOS teacher: initial SGD learning rate (Nesterov momentum 0.9)", "(0, inf)"),
    "teacher_weight_decay": Key(1e-4, "NOS teacher: weight decay", "[0, inf)"),
    "teacher_batch_size": Key(128, "NOS teacher: batch size of the teacher's own training loader", "[1, inf)"),
}
TEACHER_DEFAULTS: dict[str, Any] = {name: key.default for name, key in TEACHER_CONFIG.items()}

# The keys that determine a trained teacher (all but the user's path), in a fixed order.
TEACHER_KEYS: tuple[str, ...] = tuple(k for k in TEACHER_DEFAULTS if k.startswith("teacher_"))

# Budget presets of the teacher keys. smoke: about 3 s of training on digits with one CPU thread (measured
# 96-98 % test accuracy over three seeds; chance is 10 %). small: a real PyramidNet (2 units per stage,
# 0.2M parameters): about 3 s an epoch on digits with one thread, about 4 minutes an epoch on 10,000
# CIFAR images with 2 CPU threads. The paper preset is TEACHER_DEFAULTS itself (2.53M parameters, the
# NOS table's 2.5M for its teacher).
TEACHER_BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": {"teacher_depth": 11, "teacher_alpha": 12, "teacher_epochs": 4, "teacher_batch_size": 64},
    "small": {"teacher_depth": 20, "teacher_alpha": 48, "teacher_epochs": 20, "teacher_batch_size": 128},
}


def validate_teacher_config(values: dict[str, Any]) -> None:
    """One-line ``UserError`` for teacher keys that cannot build or train a teacher: their declarations'
    checks, for callers that bypass ``harness.core.config.resolve`` (``get_teacher``)."""
    for name in TEACHER_KEYS:
        TEACHER_CONFIG[name].validate(name, values[name])


# --- the network ----------------------------------------------------------------------------------------
def _pad_channels(shortcut: torch.Tensor, channels: int) -> torch.Tensor:
    """Zero-pad ``shortcut`` [N, C, H, W] to ``channels`` channels (the new channels come last)."""
    missing = channels - shortcut.shape[1]
    return F.pad(shortcut, (0, 0, 0, 0, 0, missing)) if missing > 0 else shortcut


class BasicUnit(nn.Module):
    """Pyramidal basic unit: BN → 3×3 conv (stride s) → BN → ReLU → 3×3 conv → BN, plus the shortcut."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.downsample = nn.AvgPool2d(2, 2, ceil_mode=True) if stride != 1 else None

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn3(self.conv2(F.relu(self.bn2(self.conv1(self.bn1(x))))))

    def shortcut(self, x: torch.Tensor, channels: int) -> torch.Tensor:
        """Identity (average-pooled when the unit downsamples), zero-padded to ``channels``."""
        return _pad_channels(self.downsample(x) if self.downsample is not None else x, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.residual(x)
        return out + self.shortcut(x, out.shape[1])


class BottleneckUnit(BasicUnit):
    """Pyramidal bottleneck unit: BN → 1×1 conv → BN → ReLU → 3×3 conv (stride s) → BN → ReLU → 1×1 conv to
    4× channels → BN, plus the shortcut. No ReLU after the addition (Han et al. found it hurts)."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int):
        nn.Module.__init__(self)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn4 = nn.BatchNorm2d(planes * self.expansion)
        self.downsample = nn.AvgPool2d(2, 2, ceil_mode=True) if stride != 1 else None

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn2(self.conv1(self.bn1(x))))
        out = F.relu(self.bn3(self.conv2(out)))
        return self.bn4(self.conv3(out))


class PyramidNet(nn.Module):
    """PyramidNet for CIFAR-sized images (Han et al., CVPR 2017), following the authors' reference code
    (github.com/dyhan0920/PyramidNet-PyTorch).

    - Stem: 3×3 conv (stride 1, no bias) to 16 channels + BN, no ReLU (pre-activation units follow).
    - Three stages of ``n`` units each: n = (depth − 2) / 9 with bottleneck units (3 convs per unit;
      110 → 12), (depth − 2) / 6 with basic units; a depth that does not fit raises ``ValueError`` (the
      reference code silently truncates). Stages 2 and 3 start with a stride-2 unit.
    - Widths grow additively: every unit adds α / (3n) to a running float, and the unit's width is that
      float rounded (Python's ``round``, as in the reference code), so the last unit has 16 + α planes.
      A bottleneck unit outputs 4 × its planes.
    - Shortcut: identity, average-pooled 2×2 (``ceil_mode``, so odd sizes keep the conv's ceil(H/2)) when the
      unit downsamples, with the missing channels zero-padded — no projection, no parameters.
    - Head: BN → ReLU → global average pool (adaptive, so any image size works; the reference code's
      AvgPool2d(8) assumes 32×32) → linear.
    - Initialisation as the reference code: conv weights N(0, 2 / (k·k·C_out)), BN weight 1 and bias 0,
      the linear layer PyTorch's default.
    - Module names are the reference code's (conv1, bn1, layer1..3, bn_final, fc; units bn1..bn4,
      conv1..conv3), so its checkpoints load as they are (after stripping DataParallel's ``module.``).

    ``forward_features`` returns the logits and the outputs of the three stages (each the last unit's sum,
    before the head's BN-ReLU): at full, half and quarter resolution, the feature maps attention transfer
    matches with the student's.
    """

    def __init__(self, depth: int, alpha: float, num_classes: int, in_channels: int = 3, bottleneck: bool = True):
        super().__init__()
        per_unit = 9 if bottleneck else 6
        if depth < per_unit + 2 or (depth - 2) % per_unit:
            kind = "bottleneck" if bottleneck else "basic"
            raise ValueError(f"PyramidNet depth {depth} does not fit {kind} units: depth must be "
                             f"{per_unit}n+2 with n >= 1")
        unit = BottleneckUnit if bottleneck else BasicUnit
        self.depth, self.alpha, self.bottleneck = depth, alpha, bottleneck
        self.units_per_stage = n = (depth - 2) // per_unit
        add_rate = alpha / (3 * n)
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        width, channels = 16.0, 16  # running float width; channels entering the next unit
        self.stage_channels: list[int] = []
        stages = []
        for stride in (1, 2, 2):
            units = []
            for i in range(n):
                width += add_rate
                planes = int(round(width))
                units.append(unit(channels, planes, stride if i == 0 else 1))
                channels = planes * unit.expansion
            stages.append(nn.Sequential(*units))
            self.stage_channels.append(channels)
        self.layer1, self.layer2, self.layer3 = stages
        self.bn_final = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(logits, [f1, f2, f3])`` with f_j the output of stage j."""
        f1 = self.layer1(self.bn1(self.conv1(x)))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        out = F.adaptive_avg_pool2d(F.relu(self.bn_final(f3)), 1).flatten(1)
        return self.fc(out), [f1, f2, f3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]


def build_teacher(cfg: dict[str, Any], info: DataInfo) -> PyramidNet:
    """The (untrained) bottleneck PyramidNet of the configured ``teacher_depth`` / ``teacher_alpha``."""
    return PyramidNet(int(cfg["teacher_depth"]), float(cfg["teacher_alpha"]), info.num_classes,
                      info.in_channels, bottleneck=True)


# --- training -------------------------------------------------------------------------------------------
def teacher_batches(data: SearchData, batch_size: int, epoch: int, seed: int) -> Batches:
    """The teacher's loader: the whole (possibly limited) training set, shuffled, random crop and flip as
    the dataset allows, no cutout, ``teacher_batch_size`` images a batch (SearchData's own loaders use the
    search or evaluation batch size and add cutout, so the teacher builds its own).

    A last batch of a single image is dropped: BatchNorm cannot train on one value per channel once the
    feature map is 1×1 (small images).
    """
    return Batches(data.train_x, data.train_y, data.mean, data.std, batch_size, shuffle=True, augment=True,
                   crop_padding=data.dataset.crop_padding, flip=data.dataset.flip,
                   seed=(seed * 1_000_003 + epoch) % (2**63), drop_last=len(data.train_y) % batch_size == 1,
                   layout=data.layout)


def train_teacher(net: nn.Module, data: SearchData, cfg: dict[str, Any], device: torch.device, seed: int = 0,
                  log: Callable[[str], None] | None = None) -> float:
    """Train ``net`` (already on ``device``) on the whole training set; return its test accuracy (percent).

    SGD with Nesterov momentum 0.9, lr ``teacher_lr`` cosine-annealed per epoch to 0 over
    ``teacher_epochs``, weight decay ``teacher_weight_decay`` on every parameter (as the reference code),
    no gradient clipping. ``seed`` seeds the loader's shuffling and augmentation (``get_teacher`` passes one
    derived from the cache key). The test set is touched once, after the last epoch, for reporting only.
    ``log``, when given, receives one line per epoch (a 300-epoch teacher takes hours).
    """
    epochs, lr = int(cfg["teacher_epochs"]), float(cfg["teacher_lr"])
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True,
                          weight_decay=float(cfg["teacher_weight_decay"]))
    for epoch in range(epochs):
        set_lr(opt, cosine_lr(epoch, epochs, lr, 0.0))
        loss, acc = train_epoch(net, opt, teacher_batches(data, int(cfg["teacher_batch_size"]), epoch, seed), 0.0)
        if log is not None:
            log(f"teacher epoch {epoch + 1}/{epochs}: train loss {loss:.4f}, train accuracy {acc:.2f} %")
    return evaluate(net, data.test_batches())[1]


# --- the cache ------------------------------------------------------------------------------------------
def default_cache_root() -> Path:
    """``$HARNESS_CACHE_DIR/teachers``, else ``~/.cache/nas-harness/teachers``."""
    return default_cache_dir() / "teachers"


def teacher_key(dataset_name: str, info: DataInfo, cfg: dict[str, Any]) -> str:
    """Short sha256 of everything that determines a trained teacher: the dataset's name, ``train_limit``,
    image size, input channels and classes, the ``teacher_*`` keys and ``TEACHER_FORMAT``.

    The key covers a dataset's name, not its content: a ``folder:`` dataset edited in place keeps its key,
    so delete its cache folder after such an edit. The device is not part of it: a teacher trained on a GPU
    serves CPU trials too (its weights are the same teacher up to floating-point differences).
    """
    blob = json.dumps({"format": TEACHER_FORMAT, "dataset": dataset_name,
                       "train_limit": int(cfg.get("train_limit", 0) or 0), "image_size": info.image_size,
                       "in_channels": info.in_channels, "num_classes": info.num_classes,
                       "teacher": {k: cfg[k] for k in TEACHER_KEYS}}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _frozen(net: nn.Module) -> nn.Module:
    """Eval mode (BN running statistics) and no gradients: the teacher is a fixed target."""
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _load_state(net: nn.Module, state: Any, what: str, hint: str) -> None:
    """Load ``state`` into ``net``, turning every way it can fail into a one-line ``UserError``."""
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{what} holds no state_dict (expected a dict of tensors, or a dict with one under "
                        f"'state_dict'); {hint}")
    if all(str(k).startswith("module.") for k in state):  # saved from DataParallel
        state = {str(k)[len("module."):]: v for k, v in state.items()}
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0] if first else exc.__class__.__name__
        raise UserError(f"{what} does not fit the configured teacher ({detail[:200]}); {hint}") from None


def _read_checkpoint(path: Path, what: str, hint: str) -> Any:
    if not path.is_file():
        raise UserError(f"{what} does not exist; {hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file raises many classes (pickle, zip, EOF, ...)
        raise UserError(f"{what} is unreadable ({exc.__class__.__name__}); {hint}") from None


def _load_cached(folder: Path, key: str, net: nn.Module) -> dict[str, Any]:
    hint = f"delete the folder '{folder}' to train the teacher again"
    try:
        meta = json.loads((folder / "teacher.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cached teacher '{folder / 'teacher.json'}' is unreadable ({exc.__class__.__name__}); "
                        f"{hint}") from None
    if not isinstance(meta, dict) or meta.get("key") != key:
        raise UserError(f"cached teacher '{folder / 'teacher.json'}' is not the teacher {key}; {hint}")
    _load_state(net, _read_checkpoint(folder / "teacher.pt", f"cached teacher '{folder / 'teacher.pt'}'", hint),
                f"cached teacher '{folder / 'teacher.pt'}'", hint)
    return meta


def get_teacher(data: SearchData, cfg: dict[str, Any], device: torch.device, dataset_name: str,
                user_path: str | Path | None = None, cache_root: str | Path | None = None,
                log: Callable[[str], None] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The trial's teacher, frozen (eval mode, no gradients) on ``device``, and where it came from.

    - ``user_path`` (``--set teacher=PATH``): a checkpoint the user trained, either a state_dict of the
      configured bottleneck PyramidNet or a dict holding one under ``"state_dict"`` (what the reference
      PyramidNet code saves; a DataParallel ``module.`` prefix is stripped). Its test accuracy is measured
      now. A missing, unreadable or mismatched file is a one-line ``UserError``.
    - otherwise the cache ``<cache_root>/<teacher_key>/`` (``teacher.pt``: the state_dict on the CPU;
      ``teacher.json``: key, configuration, test accuracy, training seconds, creation time). A hit is
      loaded; a miss trains the teacher and stores it. Check, training and storing happen under an
      exclusive ``flock`` on ``<cache_root>/<key>.lock``, and the cache is checked again once the lock is
      held (``harness.core.cache.get_or_build``), so processes asking at the same moment train it once (the
      others wait, then load it). Both files are written atomically, ``teacher.json`` last: its presence
      means the entry is complete, so a reader that finds it needs no lock. (``flock`` works between
      processes of one machine; a cache root on a network file system shared by several machines needs a
      mount that supports it.)
    - Training is seeded from the key, not from the trial's seed, with deterministic kernels, so every trial
      gets the same teacher on the same device and in the same memory layout (``memory_format``: the
      teacher trains and runs in the trial's; like the device, the layout changes rounding, not the
      teacher, and is not part of the key) whichever trains it; the caller's random state and cuDNN
      switches are restored afterwards, so a trial sees the same random numbers whether the teacher came
      from the cache or was trained.

    The returned info: ``source`` ("user", "cache" or "trained"), ``path``, ``key`` (None for a user's
    teacher), ``test_acc``, ``train_seconds`` (the training's own time, measured once when it was trained and
    kept in the cache entry, so every trial that uses the teacher reports the same cost; None for a user's
    teacher), ``device`` (where it was trained; None for a user's), ``created``, ``config``, ``params``. Do
    not register the teacher as a submodule of the student: it would enter the student's parameters and
    checkpoints.
    """
    validate_teacher_config(cfg)
    saved = rng_state()
    backends = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic  # training re-seeds them
    try:
        return _get_teacher(data, cfg, device, dataset_name, user_path, cache_root, log)
    finally:
        set_rng_state(saved)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = backends


def _get_teacher(data: SearchData, cfg: dict[str, Any], device: torch.device, dataset_name: str,
                 user_path: str | Path | None, cache_root: str | Path | None,
                 log: Callable[[str], None] | None) -> tuple[nn.Module, dict[str, Any]]:
    net = build_teacher(cfg, data.info)  # the caller's random state is restored by get_teacher
    teacher_cfg = {k: cfg[k] for k in TEACHER_KEYS}
    params = sum(p.numel() for p in net.parameters())
    if user_path not in (None, ""):
        path = Path(user_path).expanduser()
        what = f"teacher checkpoint '{path}'"
        hint = (f"expected a state_dict of PyramidNet(depth={cfg['teacher_depth']}, alpha={cfg['teacher_alpha']}, "
                f"bottleneck) for {data.info.num_classes} classes and {data.info.in_channels} input channels; "
                "set teacher_depth/teacher_alpha to match it")
        _load_state(net, _read_checkpoint(path, what, hint), what, hint)
        net = _frozen(to_device(net, cfg, device))
        test_acc = evaluate(net, data.test_batches())[1]
        return net, {"source": "user", "path": str(path), "key": None, "test_acc": test_acc,
                     "train_seconds": None, "device": None, "created": None, "config": teacher_cfg, "params": params}
    key = teacher_key(dataset_name, data.info, cfg)
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    folder = root / key

    def cached() -> tuple[str, nn.Module, dict[str, Any]] | None:
        return ("cache", net, _load_cached(folder, key, net)) if (folder / "teacher.json").is_file() else None

    source, net, meta = get_or_build(
        root, key, cached, lambda: ("trained", *_train_and_store(data, cfg, device, dataset_name, key, folder, log)),
        "teacher cache")
    net = _frozen(to_device(net, cfg, device))
    return net, {"source": source, "path": str(folder), "key": key, "test_acc": meta["test_acc"],
                 "train_seconds": meta["train_seconds"], "device": meta.get("device"), "created": meta["created"],
                 "config": teacher_cfg, "params": params}


def _train_and_store(data: SearchData, cfg: dict[str, Any], device: torch.device, dataset_name: str, key: str,
                     folder: Path, log: Callable[[str], None] | None) -> tuple[nn.Module, dict[str, Any]]:
    """Train the teacher of ``key`` from a seed derived from the key, and store it (call under the lock; the
    caller restores the random state)."""
    seed = int(key, 16) % (2**31)
    seed_everything(seed)
    net = to_device(build_teacher(cfg, data.info), cfg, device)
    start = time.perf_counter()
    test_acc = train_teacher(net, data, cfg, device, seed=seed, log=log)
    seconds = time.perf_counter() - start
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    meta = {"key": key, "format": TEACHER_FORMAT, "dataset": dataset_name,
            "train_limit": int(cfg.get("train_limit", 0) or 0), "image_size": data.info.image_size,
            "in_channels": data.info.in_channels, "num_classes": data.info.num_classes,
            "config": {k: cfg[k] for k in TEACHER_KEYS}, "test_acc": test_acc, "train_seconds": seconds,
            "device": str(device), "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    atomic_write(folder / "teacher.pt", lambda f: torch.save(state, f), binary=True)
    atomic_write(folder / "teacher.json", lambda f: json.dump(meta, f, indent=2, sort_keys=True))
    return net, meta


# --- attention transfer ---------------------------------------------------------------------------------
def attention_map(f: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``vec(Σ_c |f|²)`` normalised to unit L2 norm per sample: [N, C, H, W] → [N, H·W].

    ``size`` (H', W'), when given and different from (H, W), resizes the spatial map (Σ_c |f|², before
    normalising) with adaptive average pooling — the attention transfer loss uses it to bring the
    student's map to the teacher's resolution. An all-zero map stays zero (``F.normalize``'s eps).
    """
    a = f.pow(2).sum(dim=1, keepdim=True)
    if size is not None and tuple(a.shape[-2:]) != tuple(size):
        a = F.adaptive_avg_pool2d(a, size)
    return F.normalize(a.flatten(1), dim=1)


def attention_transfer_loss(student_feats: list[torch.Tensor], teacher_feats: list[torch.Tensor],
                            squared: bool = False) -> torch.Tensor:
    """NOS's L_AT = ½ Σ_j ‖ a(x_S^j) − a(x_T^j) ‖₂ averaged over the batch (METHODS.md, paper eq. 10:
    x^j = vec(Σ_c |F^j|²), a(x) = x / ‖x‖₂).

    Where a student's stage has another spatial size than the teacher's, the student's map is resized to
    the teacher's with adaptive average pooling before flattening (the teacher's map is the target and
    stays exact; pooling keeps the mass of each region, where interpolation would sample it).

    ``squared`` selects the form of Zagoruyko & Komodakis' code instead, ½ Σ_j mean over samples and
    positions of (a_S − a_T)², for which their β = 1e3 (NOS's λ) was tuned. Per stage the paper's form is
    ‖d‖ and the squared one ‖d‖² / (H·W): an untrained student against the smoke teacher on digits gives
    ‖d‖ ≈ 0.2 per stage, so with λ = 1e3 the paper's form adds ~300 to a cross-entropy of ~2, the squared
    one ~0.05 at 32×32. The default follows the paper as written; the method chooses.
    """
    if len(student_feats) != len(teacher_feats):
        raise ValueError(f"{len(student_feats)} student feature maps but {len(teacher_feats)} teacher maps")
    total = None
    for fs, ft in zip(student_feats, teacher_feats):
        at = attention_map(ft)
        diff = attention_map(fs, tuple(ft.shape[-2:])) - at
        term = diff.pow(2).mean() if squared else torch.linalg.vector_norm(diff, dim=1).mean()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("attention transfer needs at least one pair of feature maps")
    return 0.5 * total
