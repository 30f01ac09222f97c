"""Primitive operations shared by the cell search spaces.

Every entry of ``OPS`` builds an op from ``(C, stride, affine)``; the op maps ``C`` channels to ``C``
channels and, with stride 2, halves the spatial size rounding up (``ceil(H / 2)``), so all candidates on
an edge agree on their output shape for odd and even inputs alike. ``affine=False`` is what the search
supernets use (the architecture weights, not BN, should scale the ops); final networks use ``affine=True``.

ReLUs are never in-place: in a supernet the same input tensor feeds every candidate op of an edge.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

OpBuilder = Callable[[int, int, bool], nn.Module]


class ReLUConvBN(nn.Module):
    """ReLU → k×k conv → BN; also the 1×1 preprocessing of a cell's inputs."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """ReLU → depthwise k×k conv with dilation → pointwise 1×1 conv → BN."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, dilation: int,
                 affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, dilation=dilation,
                      groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """The separable block (ReLU → depthwise k×k → 1×1 → BN) applied twice; only the first is strided.

    The first block keeps ``C_in`` channels and the second maps to ``C_out``, as in DARTS.
    """

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_in, 1, padding=0, bias=False),
            nn.BatchNorm2d(C_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=1, padding=padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Identity(nn.Module):
    """The stride-1 skip connection.

    A class of our own (not ``nn.Identity``) so that final networks can recognise it exactly: drop-path
    is never applied to identity ops.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape (strided when ``stride`` > 1).

    Multiplying by zero, rather than allocating a fresh tensor, keeps the output on the input's device,
    dtype and autograd graph.
    """

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the spatial size without losing every other pixel.

    ReLU, then two 1×1 stride-2 convs to ``C_out / 2`` channels each, the second on the input shifted by
    one pixel (so together they see all four pixels of each 2×2 block), concatenated and batch-normed.
    For an odd height or width the shifted input is one pixel short, so it is zero-padded on the bottom /
    right to make both halves ``ceil(H / 2)``, the size every other stride-2 op produces.
    """

    def __init__(self, C_in: int, C_out: int, affine: bool = True):
        super().__init__()
        if C_out % 2 != 0:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = x[:, :, 1:, 1:]
        pad_h, pad_w = x.size(2) % 2, x.size(3) % 2
        if pad_h or pad_w:
            shifted = F.pad(shifted, (0, pad_w, 0, pad_h))
        out = torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1)
        return self.bn(out)


def drop_path(x: torch.Tensor, drop_prob: float,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Drop whole samples of an op's output with probability ``drop_prob`` (DARTS's drop-path).

    One Bernoulli(keep = 1 - p) draw per sample, broadcast over channels and pixels; kept samples are
    divided by the keep probability so the expected output equals the input. ``p == 0`` returns ``x``
    itself. ``generator`` (on ``x``'s device) makes the mask reproducible in tests.
    """
    if drop_prob <= 0.0:
        return x
    if drop_prob >= 1.0:
        raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
    keep_prob = 1.0 - drop_prob
    mask = torch.empty(x.size(0), *([1] * (x.dim() - 1)), device=x.device, dtype=x.dtype)
    mask.bernoulli_(keep_prob, generator=generator)
    return x.div(keep_prob).mul(mask)


def _pool(kind: str, stride: int) -> nn.Module:
    if kind == "max":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    # count_include_pad=False: border pixels are averaged over real pixels only, as in DARTS.
    return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)


def _skip(C: int, stride: int, affine: bool) -> nn.Module:
    return Identity() if stride == 1 else FactorizedReduce(C, C, affine=affine)


OPS: dict[str, OpBuilder] = {
    "none": lambda C, stride, affine: Zero(stride),
    "max_pool_3x3": lambda C, stride, affine: _pool("max", stride),
    "avg_pool_3x3": lambda C, stride, affine: _pool("avg", stride),
    "skip_connect": _skip,
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine=affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine=affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine=affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine=affine),
    # NAS-Bench-201's plain convolutions (ReLU → conv → BN, no bias).
    "nor_conv_1x1": lambda C, stride, affine: ReLUConvBN(C, C, 1, stride, 0, affine=affine),
    "nor_conv_3x3": lambda C, stride, affine: ReLUConvBN(C, C, 3, stride, 1, affine=affine),
}

# The DARTS candidate set, in the order of the DARTS paper and code (architecture-matrix columns).
DARTS_OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)


def stem(in_channels: int, channels: int) -> nn.Sequential:
    """The DARTS stem: 3×3 convolution to ``channels`` and BN (affine, in the supernet too, as in DARTS)."""
    return nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
