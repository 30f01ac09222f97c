"""Metrics every trial reports: ranking correlations, model size and cost, memory, device labels.

Everything here is measured with the libraries' own tools (SciPy for correlations, torch's FLOP
counter for multiply-adds) so that every method is measured the same way and nobody's hand-written
counter flatters one method over another.
"""

from __future__ import annotations

import math
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import scipy.stats
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def rank_correlation(scores: Sequence[float], accuracies: Sequence[float]) -> tuple[float, float]:
    """Kendall τ (tau-b) and Spearman ρ between a method's scores and measured accuracies.

    Pairs where either value is not finite (an op whose accuracy could not be measured) are dropped
    rather than turning the whole edge into NaN. The correlation is undefined, and (nan, nan) is
    returned without SciPy's warnings, when fewer than two pairs remain or either side is constant:
    a constant score vector (e.g. uniform α at initialisation) carries no ranking at all, and reporting
    0 would be a made-up number.
    """
    x = np.asarray([np.nan if v is None else v for v in scores], dtype=float).ravel()
    y = np.asarray([np.nan if v is None else v for v in accuracies], dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"rank_correlation needs equal lengths, got {x.size} scores and {y.size} accuracies")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    nan = float("nan")
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return nan, nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tau = scipy.stats.kendalltau(x, y).statistic
        rho = scipy.stats.spearmanr(x, y).statistic
    return float(tau), float(rho)


def mean_ignoring_nan(values: Iterable[float | None]) -> float:
    """Mean of the finite values (None counts as missing); nan when there are none.

    Used to average per-edge correlations, where undefined edges must not poison the average and an
    all-undefined set must stay visibly undefined rather than become 0.
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(finite)) if finite else float("nan")


def _is_auxiliary(name: str) -> bool:
    # DARTS excludes the auxiliary head from reported sizes; checking every dotted component also
    # catches wrapped models ("module.auxiliary_head.…").
    return any(part.startswith("auxiliary") for part in name.split("."))


def count_params_m(model: nn.Module) -> float:
    """Parameters in millions, without the auxiliary head (the DARTS convention for reported sizes)."""
    total = sum(p.numel() for name, p in model.named_parameters() if not _is_auxiliary(name))
    return total / 1e6


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensor in list(model.parameters()) + list(model.buffers()):
        dtype = tensor.dtype if tensor.is_floating_point() else torch.get_default_dtype()
        return tensor.device, dtype
    return torch.device("cpu"), torch.get_default_dtype()


@contextmanager
def _inference_input(model: nn.Module, shape: tuple[int, ...],
                     layout: torch.memory_format = torch.contiguous_format) -> Iterator[torch.Tensor]:
    """A zero input of ``shape`` on the model's device and dtype (a 4-D one in ``layout``), with the model in eval
    mode and gradients off during the block; every module's own training flag is restored afterwards, so a
    trainer can measure mid-run."""
    device, dtype = _model_device_dtype(model)
    x = torch.zeros(shape, device=device, dtype=dtype)
    if x.dim() == 4:
        x = x.contiguous(memory_format=layout)
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            yield x
    finally:
        for module, training in modes:
            module.training = training


def count_madds_m(model: nn.Module, input_shape: Sequence[int]) -> float:
    """Multiply-adds (millions) of one forward pass on a zero tensor of ``input_shape`` (batch included).

    Counted by torch's ``FlopCounterMode`` (FLOPs / 2), in eval mode so that training-only parts such
    as the auxiliary head and drop-path are not counted. Each module's own training flag is restored
    afterwards, so a trainer can call this mid-run. Whatever the forward returns (logits or a tuple)
    is discarded.
    """
    counter = FlopCounterMode(display=False)
    with _inference_input(model, tuple(int(d) for d in input_shape)) as x, counter:
        model(x)
    return counter.get_total_flops() / 2 / 1e6


def measure_latency_ms(model: nn.Module, input_shape: Sequence[int], warmup: int = 2, runs: int = 10,
                       layout: torch.memory_format = torch.contiguous_format) -> float:
    """Median wall time in milliseconds of one forward pass on a zero tensor of ``input_shape`` (batch included),
    on the model's device, in eval mode without gradients, after ``warmup`` untimed passes; on CUDA each pass
    is synchronised, so the time is the kernels' and not their launch. Each module's training flag is restored
    afterwards. ``layout`` is the input's memory format (a 4-D input; the trial passes its ``memory_format``, the
    layout its batches have). ``runs`` below 1, a negative ``warmup`` or an empty or non-positive shape is a
    ``ValueError``."""
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"measure_latency_ms: runs must be an int >= 1, got {runs!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"measure_latency_ms: warmup must be an int >= 0, got {warmup!r}")
    shape = tuple(int(d) for d in input_shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"measure_latency_ms: input_shape must be positive sizes (batch first), got {input_shape!r}")
    times = []
    with _inference_input(model, shape, layout) as x:
        for k in range(warmup + runs):
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            start = time.perf_counter()
            model(x)
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            if k >= warmup:
                times.append(1000.0 * (time.perf_counter() - start))
    return float(statistics.median(times))


def peak_memory_mb(device: torch.device | str) -> float:
    """Peak memory in MB (MiB): CUDA max allocated on a GPU, else the process's peak resident set.

    On CPU the process RSS is the only honest figure (it includes the data and Python itself, so it is
    comparable between methods on one machine, not an absolute model footprint).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is KiB on Linux but bytes on macOS.
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def describe_device(device: torch.device | str) -> str:
    """Human-readable device for records, e.g. ``cpu (2 threads)`` or ``cuda (NVIDIA H100)``.

    Costs are only comparable on like hardware, so every record says what it ran on.
    """
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda ({torch.cuda.get_device_name(index)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def device_hours_kind(device: torch.device | str) -> str:
    """``GPU-hours`` on an accelerator, ``CPU-hours`` otherwise, so CPU costs are never read as GPU costs."""
    return "CPU-hours" if torch.device(device).type == "cpu" else "GPU-hours"
