"""Resolved trial configuration: paper defaults, scaled by a budget preset, then explicit overrides.

Every key that ``--set`` accepts appears in the resolved configuration with its value and where the value
came from. Layers, in order (a later layer wins):

1. ``paper``   — the shared conventions of METHODS.md (search optimiser, evaluation protocol), then the
                 space's and the method's own paper defaults (and the method's keys that exist on one
                 space only, ``space_defaults``);
2. ``harness`` — protocol choices of ours that the papers do not fix (correlation sample sizes, ...);
3. ``budget:<name>`` — the budget preset (only for keys the method/space has);
4. ``override`` — the user's ``--set key=value``.

The hash of the resolved configuration (with method, space, dataset and budget, without the seed) names
the setting: seeds of one setting share it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from harness.errors import UserError

# Shared conventions of all cell spaces (METHODS.md, "Shared conventions"); identical for every method so
# that no method gets a private advantage.
SHARED_PAPER: dict[str, Any] = {
    "search_batch_size": 64,
    "w_lr": 0.025,
    "w_lr_min": 0.001,
    "w_momentum": 0.9,
    "w_weight_decay": 3e-4,
    "w_nesterov": False,
    "grad_clip": 5.0,
    "eval_epochs": 600,
    "eval_batch_size": 96,
    "eval_lr": 0.025,
    "eval_lr_min": 0.0,
    "eval_momentum": 0.9,
    "eval_weight_decay": 3e-4,
    "eval_nesterov": False,
    "eval_grad_clip": 5.0,
    "cutout": 16,
    "auxiliary_weight": 0.4,
    "drop_path": 0.2,
}

# Our protocol choices (not fixed by any paper).
SHARED_HARNESS: dict[str, Any] = {
    "train_limit": 0,
    "corr_edges": 8,
    "corr_batches": 20,
    "image_size": 32,
    "memory_format": "channels_last",
    "cudnn_benchmark": True,
}

MEMORY_FORMATS = ("channels_last", "contiguous")

HELP: dict[str, str] = {
    "search_batch_size": "batch size of both search halves",
    "w_lr": "search: weight SGD learning rate (cosine-annealed)",
    "w_lr_min": "search: final weight learning rate",
    "w_momentum": "search: weight SGD momentum",
    "w_weight_decay": "search: weight decay of the weights",
    "w_nesterov": "search: Nesterov momentum for the weights (NAS-Bench-201 protocol)",
    "grad_clip": "search: gradient-norm clip of the weights",
    "search_epochs": "search epochs",
    "search_layers": "cells in the search supernet (nb201: cells per stage)",
    "search_channels": "initial channels of the search supernet",
    "eval_layers": "cells in the final network (nb201: cells per stage)",
    "eval_channels": "initial channels of the final network",
    "eval_epochs": "evaluation: epochs of training the derived network from scratch",
    "eval_batch_size": "evaluation: batch size",
    "eval_lr": "evaluation: SGD learning rate (cosine to eval_lr_min)",
    "eval_lr_min": "evaluation: final learning rate",
    "eval_momentum": "evaluation: SGD momentum",
    "eval_weight_decay": "evaluation: weight decay",
    "eval_nesterov": "evaluation: Nesterov momentum",
    "eval_grad_clip": "evaluation: gradient-norm clip",
    "cutout": "evaluation: cutout length in pixels at 32x32 (scaled to the image size; 0 = off)",
    "auxiliary_weight": "evaluation: weight of the auxiliary head's loss (0 = no head)",
    "drop_path": "evaluation: final drop-path probability (ramped linearly over epochs)",
    "train_limit": "use only the first N training images (0 = all), same fixed order for every method "
                   "(class-stratified where the stored order is not random)",
    "corr_edges": "operation-level correlation: number of sampled edges (fixed sample for every method)",
    "corr_batches": "operation-level correlation: batches of the fixed architecture-half subset",
    "image_size": "folder: datasets only: images are resized to this size",
    "memory_format": "memory layout of every network and input batch: channels_last (default) or contiguous",
    "cudnn_benchmark": "CUDA only: let cuDNN autotune convolution algorithms (faster; the record then says "
                       "results are not bitwise reproducible); false = deterministic kernels",
    "order": "DARTS: 1 = first-order, 2 = second-order (unrolled) architecture gradient",
    "arch_lr": "architecture Adam learning rate",
    "arch_beta1": "architecture Adam beta1",
    "arch_beta2": "architecture Adam beta2",
    "arch_weight_decay": "architecture Adam weight decay",
    "arch_init_std": "architecture parameters initialised as std * N(0, 1)",
    "rs_candidates": "random search: number of sampled genotypes",
    "rs_epochs": "random search: training epochs of each candidate",
    "eval": "nb201: 'lookup' = test accuracy from the benchmark table, 'train' = train the derived cell",
    "nb201_table": "nb201: benchmark table ('default' = the bundled one, or a file from 'nb201 import')",
    "arch_corr_samples": "architecture-level correlation: architectures sampled from the benchmark (fixed)",
    "tau_max": "GDAS: initial Gumbel-softmax temperature",
    "tau_min": "GDAS: final temperature (annealed per epoch)",
    "tau_schedule": "GDAS: temperature schedule per epoch, 'linear' (GDAS) or 'exponential' (EoiNAS)",
}

# Budget presets. smoke: seconds on 2 CPU cores (tests, quickstart); small: minutes on a CPU, a real signal
# on small data; paper: the papers' settings (for GPUs) — the empty preset.
BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": {
        "search_layers": 4, "search_channels": 4, "search_epochs": 2, "search_batch_size": 128,
        "eval_layers": 4, "eval_channels": 8, "eval_epochs": 4, "eval_batch_size": 64,
        "corr_edges": 2, "corr_batches": 1, "rs_candidates": 3, "rs_epochs": 1,
    },
    "small": {
        "search_layers": 5, "search_channels": 8, "search_epochs": 10,
        "eval_layers": 8, "eval_channels": 16, "eval_epochs": 30, "eval_batch_size": 64,
        "corr_edges": 4, "corr_batches": 4, "rs_candidates": 8, "rs_epochs": 3, "train_limit": 10000,
    },
    "paper": {},
}

BUDGET_HELP = {
    "smoke": "seconds on 2 CPU cores: tests and the quickstart (tiny networks, 2 search epochs)",
    "small": "minutes on a CPU: a real signal on small data",
    "paper": "the papers' settings (GPU; days per seed for the evaluation protocol)",
}


@dataclass
class ResolvedConfig:
    values: dict[str, Any]
    sources: dict[str, str]
    overrides: dict[str, Any] = field(default_factory=dict)


def _coerce(key: str, text: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            value = float(text)
            if not math.isfinite(value):  # nan would pass every range check and poison the trial
                raise ValueError
            return value
    except ValueError:
        kind = type(default).__name__
        raise UserError(f"--set {key}={text}: expected a {kind} value (current default {default!r})") from None
    return text


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` → ``{k: v}`` (raw strings); malformed items raise UserError."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise UserError(f"malformed --set '{item}': expected key=value, e.g. --set order=2")
        out[key] = value.strip()
    return out


def resolve(method_cls: Any, space_cls: Any, budget: str, overrides: dict[str, str] | None = None
            ) -> ResolvedConfig:
    """Resolve the configuration of a (method, space) pair under a budget with ``--set`` overrides."""
    if budget not in BUDGETS:
        raise UserError(f"unknown budget '{budget}'; valid budgets: {', '.join(BUDGETS)}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for layer, source in ((SHARED_PAPER, "paper"), (space_cls.defaults, "paper"), (method_cls.defaults, "paper"),
                          (method_cls.space_defaults.get(space_cls.name, {}), "paper"), (SHARED_HARNESS, "harness")):
        for key, value in layer.items():
            if key in method_cls.ignored_keys:
                continue
            values[key], sources[key] = value, source
    preset = {**BUDGETS[budget], **space_cls.budgets.get(budget, {}), **method_cls.budgets.get(budget, {})}
    for key, value in preset.items():
        if key in values:
            values[key], sources[key] = value, f"budget:{budget}"
    typed: dict[str, Any] = {}
    for key, text in (overrides or {}).items():
        if key not in values:
            raise UserError(f"unknown configuration key '{key}' for {method_cls.name}/{space_cls.name}; "
                            f"see 'python -m harness config --method {method_cls.name} "
                            f"--space {space_cls.name}' for the valid keys")
        typed[key] = _coerce(key, text, values[key])
        values[key], sources[key] = typed[key], "override"
    if values["memory_format"] not in MEMORY_FORMATS:
        raise UserError(f"--set memory_format={values['memory_format']}: expected one of "
                        f"{', '.join(MEMORY_FORMATS)}")
    space_cls.validate_config(values)
    method_cls.validate_config(values)
    return ResolvedConfig(values=values, sources=sources, overrides=typed)


def config_hash(method: str, space: str, dataset: str, budget: str, values: dict[str, Any]) -> str:
    """Short, stable hash of a setting (everything but the seed)."""
    blob = json.dumps({"method": method, "space": space, "dataset": dataset, "budget": budget,
                       "config": values}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
