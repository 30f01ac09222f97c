"""Shared training and evaluation loops (one place for each; methods and protocols call these).

Also the trial's performance settings, one place each: ``memory_format`` (the layout of every network and
input batch — channels-last by default: depthwise and 1×1 convolutions, the bulk of every space, are several
times faster in it on CPU, and it is the layout cuDNN prefers), ``to_device`` (every network of the harness
goes through it) and ``configure_backends`` (cuDNN autotuning, and whether results are then deterministic).
The images do not cross from the host per step: ``harness.core.data.SearchData`` moves the datasets to the device
whole, once, and batches are gathered there; only an epoch's order and each batch's augmentation draws (a
few hundred bytes, drawn on the host so that the streams do not depend on the device) cross, through pinned
memory and without blocking (``harness.core.data.from_host``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Batches(Protocol):
    """What the training loops need of a batch stream (``harness.core.data.Batches`` is one; this module does not
    import ``data``, which builds on it)."""

    limit_batches: int

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


class Diverged(Exception):
    """A training loss turned NaN or infinite: the learning rate is too high for this setting. Not a crash: a retry
    from the last checkpoint diverges the same way, so a trial ends on it at once, without a record and without
    Ray Tune's retries (``harness.trial.run_trial``), as one line: ``diverged at <where> (loss nan): lower the
    learning rate (<key>=<value>)``."""

    def __init__(self, value: float, what: str = "loss", where: str = "", hint: str = ""):
        self.value, self.what = value, what
        super().__init__(f"diverged{' at ' + where if where else ''} ({what} {value:g}): lower the learning rate"
                         + (f" ({hint})" if hint else ""))


def check_finite(*values: float | torch.Tensor | None, what: str = "loss") -> None:
    """Raise ``Diverged`` at the first value (a loss, or a tensor such as the architecture parameters) that is or holds
    NaN or infinity (None: no such value). The shared training loops call it on every step (here, and
    ``SearchMethod.check_step``) and on the validation loss, so a diverged run stops before anything downstream (a
    derivation, a sampler) trips over NaN weights."""
    for value in values:
        if isinstance(value, torch.Tensor):
            bad = value.detach()[~torch.isfinite(value.detach())]
            if bad.numel():
                raise Diverged(float(bad.flatten()[0]), what)
        elif value is not None and not math.isfinite(value):
            raise Diverged(value, what)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask torch for deterministic kernels.

    A trial then calls ``configure_backends``, which may allow cuDNN autotuning on CUDA.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def memory_format(cfg: dict[str, Any]) -> torch.memory_format:
    """The torch memory format of the configuration's ``memory_format`` key (default channels-last)."""
    name = cfg.get("memory_format", "channels_last")
    if name == "channels_last":
        return torch.channels_last
    if name == "contiguous":
        return torch.contiguous_format
    raise ValueError(f"memory_format must be 'channels_last' or 'contiguous', not {name!r}")


def to_device(net: nn.Module, cfg: dict[str, Any], device: torch.device | str) -> nn.Module:
    """Move ``net`` to ``device`` in the configuration's memory format (4-D weights change layout; the
    rest, e.g. Linear weights, stays as it is). Every network of the harness goes through here."""
    return net.to(device=device, memory_format=memory_format(cfg))


def configure_backends(cfg: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Set the backend switches of a trial (after ``seed_everything``); returns what the record says.

    On CUDA with ``cudnn_benchmark`` (the default) cuDNN times its convolution algorithms for every new
    shape and keeps the fastest, and may use non-deterministic ones: training shapes are fixed, so the
    autotuning is paid once, but which algorithm wins can differ from run to run, so two runs with the same
    seed on the same GPU need not give bitwise the same record. ``--set cudnn_benchmark=false`` keeps
    deterministic kernels. On the CPU the switch has no effect and results are deterministic.
    """
    benchmark = device.type == "cuda" and bool(cfg.get("cudnn_benchmark", True))
    torch.backends.cudnn.benchmark = benchmark
    torch.backends.cudnn.deterministic = not benchmark
    return {
        "memory_format": cfg.get("memory_format", "channels_last"),
        "cudnn_benchmark": benchmark,
        "deterministic": not benchmark,
    }


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def logits_of(output: Any) -> torch.Tensor:
    """Networks return logits or ``(logits, aux_logits)``."""
    return output[0] if isinstance(output, tuple) else output


def cosine_lr(epoch: int, epochs: int, lr_max: float, lr_min: float) -> float:
    """Learning rate of ``epoch`` (0-based) under cosine annealing from lr_max to lr_min over ``epochs``."""
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * epoch / max(1, epochs)))


def linear_lr(epoch: int, epochs: int, lr_max: float, lr_min: float) -> float:
    """Learning rate of ``epoch`` (0-based) decayed linearly from lr_max towards lr_min over ``epochs``."""
    return lr_max - (lr_max - lr_min) * epoch / max(1, epochs)


LR_SCHEDULES = {"cosine": cosine_lr, "linear": linear_lr}  # the search recipe's ``w_lr_schedule``


def lr_scale(cfg: dict[str, Any]) -> float:
    """The factor of the search recipe's ``w_lr_batch`` on every weight learning rate: ``search_batch_size`` /
    ``w_lr_batch`` (the linear scaling rule of Goyal et al. 2017: a reference code's rates belong to its batch, and a
    budget that sets a smaller batch keeps the update per image), or 1 where ``w_lr_batch`` is 0."""
    return cfg["search_batch_size"] / cfg["w_lr_batch"] if cfg["w_lr_batch"] else 1.0


def decay_groups(module: nn.Module, rule: str) -> Any:
    """The parameters of ``module`` for ``sgd``, by the search recipe's ``w_decay_params``: ``all`` — every
    parameter, decayed alike (the parameters themselves, as before the key existed); ``conv_classifier`` —
    two groups, the 4-D convolution kernels and the parameters of the module's ``classifier`` (weight and
    bias) with the optimiser's weight decay, every other parameter (BatchNorm, biases, linear layers such as
    AGNAS's attention) without: the rule of AGNAS's macro code (``get_optimizer_schedule``)."""
    if rule == "all":
        return module.parameters()
    if rule != "conv_classifier":
        raise ValueError(f"unknown w_decay_params {rule!r}")
    decayed, other = [], []
    for name, p in module.named_parameters():
        (decayed if p.ndim == 4 or name.split(".")[0] == "classifier" else other).append(p)
    return [{"params": other, "weight_decay": 0.0}, {"params": decayed}]


def clip_gradients(params: Iterable[nn.Parameter], cfg: dict[str, Any]) -> None:
    """Clip the weights' gradients to ``grad_clip`` as the search recipe's ``grad_clip_mode`` says: their joint
    ``norm``, each entry's ``value`` (``clip_grad_value_``) or ``off``."""
    mode = cfg["grad_clip_mode"]
    if mode == "norm":
        nn.utils.clip_grad_norm_(params, cfg["grad_clip"])
    elif mode == "value":
        nn.utils.clip_grad_value_(params, cfg["grad_clip"])
    elif mode != "off":
        raise ValueError(f"unknown grad_clip_mode {mode!r}")


def weight_loss(logits: torch.Tensor, y: torch.Tensor, cfg: dict[str, Any]) -> torch.Tensor:
    """The weight step's loss of the search recipe: cross-entropy with ``w_label_smoothing`` (torch's: the target
    is (1 − ε)·one-hot + ε/classes, as ProxylessNAS's and AGNAS's code compute it)."""
    return F.cross_entropy(logits, y, label_smoothing=cfg["w_label_smoothing"])


def sgd(params: Iterable[nn.Parameter], cfg: dict[str, Any], prefix: str) -> torch.optim.SGD:
    """The SGD optimiser of the protocol: ``prefix`` "w" for search weights, "eval" for the final network."""
    return torch.optim.SGD(params, lr=cfg[f"{prefix}_lr"], momentum=cfg[f"{prefix}_momentum"],
                           weight_decay=cfg[f"{prefix}_weight_decay"], nesterov=bool(cfg[f"{prefix}_nesterov"]))


def arch_adam(params: Iterable[nn.Parameter], cfg: dict[str, Any]) -> torch.optim.Adam:
    """The Adam optimiser of the architecture parameters (``arch_lr``, ``arch_beta1``/``arch_beta2``,
    ``arch_weight_decay``)."""
    return torch.optim.Adam(params, lr=cfg["arch_lr"], betas=(cfg["arch_beta1"], cfg["arch_beta2"]),
                            weight_decay=cfg["arch_weight_decay"])


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


@contextmanager
def batch_statistics(model: nn.Module) -> Iterator[None]:
    """Inside: ``model`` in training mode, so BatchNorm normalises with batch statistics; after: its running
    statistics (which those passes update) and its mode as they were."""
    was_training = model.training
    saved = {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}
    model.train()
    try:
        yield
    finally:
        model.load_state_dict(saved, strict=False)
        model.train(was_training)


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable, train_mode_bn: bool = False) -> tuple[float, float]:
    """Mean loss and top-1 accuracy (percent) of ``model`` over ``batches``.

    ``train_mode_bn`` uses batch statistics (``batch_statistics``: running statistics restored afterwards).
    """
    if train_mode_bn:
        with batch_statistics(model):
            return measure(model, batches)
    was_training = model.training
    model.eval()
    try:
        return measure(model, batches)
    finally:
        model.train(was_training)


@torch.no_grad()
def measure(model: nn.Module, batches: Iterable) -> tuple[float, float]:
    """Mean loss and top-1 accuracy (percent) of ``model`` over ``batches``, in the mode it is in."""
    loss_sum, correct, count = 0.0, 0, 0
    for x, y in batches:
        logits = logits_of(model(x))
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        count += len(y)
    return loss_sum / max(1, count), 100.0 * correct / max(1, count)


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable, grad_clip: float,
                auxiliary_weight: float = 0.0, finite: bool = True) -> tuple[float, float]:
    """One epoch of plain supervised training; returns mean loss and accuracy (percent). ``finite``: a step whose loss
    is NaN or infinite raises ``Diverged`` (``check_finite``)."""
    model.train()
    loss_sum, correct, count = 0.0, 0, 0
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        out = model(x)
        logits = logits_of(out)
        loss = F.cross_entropy(logits, y)
        if auxiliary_weight and isinstance(out, tuple) and out[1] is not None:
            loss = loss + auxiliary_weight * F.cross_entropy(out[1], y)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        step_loss = loss.item()
        if finite:
            check_finite(step_loss)
        loss_sum += step_loss * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        count += len(y)
    return loss_sum / max(1, count), 100.0 * correct / max(1, count)


def time_train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Batches, grad_clip: float,
                     auxiliary_weight: float = 0.0, steps: int = 1) -> float:
    """Seconds per training step after one untimed warm-up step, for time estimates (it trains ``model``)."""
    batches.limit_batches = 1
    train_epoch(model, optimizer, batches, grad_clip, auxiliary_weight, finite=False)
    batches.limit_batches = steps
    start = time.perf_counter()
    train_epoch(model, optimizer, batches, grad_clip, auxiliary_weight, finite=False)
    return (time.perf_counter() - start) / steps
