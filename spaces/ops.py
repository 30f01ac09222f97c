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


def is_zero(op: nn.Module) -> bool:
    """True for the ``none`` op. Its output is zero, so a method that sums weighted candidate outputs skips
    it: the term adds nothing to the sum and nothing to any gradient (its weight still gets its gradient
    through whatever couples it with the other weights, e.g. the softmax)."""
    return isinstance(op, Zero)


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


# ---------------------------------------------------------------------------------------------------------
# The heterogeneous space of NOS (Neural Operator Search): attention and dynamic-convolution ops.
#
# Unlike every op above, the non-feature ops do NOT return feature tensors. An attention op returns a map
# that scales a feature tensor by element-wise multiplication (F ⊙ A): a per-channel scale [N, C, 1, 1] or a
# spatial saliency map [N, 1, H', W']. A dynamic-convolution op returns a per-sample, per-channel depthwise
# kernel [N, C, k, k] that ``dynamic_depthwise`` applies to a feature tensor (F ⊗ D). The feature tensor F
# comes from the feature ops of the same node, not from the op's own input: the heterogeneous residual
# block combines the three families as F ⊕ (F ⊙ A) ⊕ Σ_D (F ⊗ D). Module listings: conference version of
# the paper, appendix A.1 (all convolutions there are bias-free, which we keep).
# ---------------------------------------------------------------------------------------------------------


def _reduced(C: int, reduction: int) -> int:
    """``C // reduction`` but at least one channel (the paper's ``C_in // reduction`` is 0 for C < reduction)."""
    return max(C // reduction, 1)


class ChannelAttention(nn.Module):
    """Channel-wise attention (SE-like): global average pool → 1×1 conv C→C/16 → ReLU → 1×1 conv →C → sigmoid.

    Returns a per-channel scale of shape [N, C, 1, 1] in (0, 1), broadcast against a feature tensor by ⊙.

    Choices: ``stride`` is accepted for the common ``(C, stride, affine)`` signature but does not apply: a
    global pool has no grid, and the [N, C, 1, 1] scale broadcasts against the (possibly strided) feature
    tensor of any size. ``affine`` is unused too: the module has no BN (as in the paper's listing
    ``AttentionC``). No ReLU in front and bias-free convs, as in the listing; the hidden width is
    ``max(C // 16, 1)`` so that narrow test networks still work.
    """

    reduction = 16

    def __init__(self, C: int, stride: int = 1, affine: bool = True):
        super().__init__()
        hidden = _reduced(C, self.reduction)
        self.conv_1 = nn.Conv2d(C, hidden, 1, bias=False)
        self.relu = nn.ReLU(inplace=False)
        self.conv_2 = nn.Conv2d(hidden, C, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean(dim=(2, 3), keepdim=True)  # the listing's avg_pool2d over the whole map
        return torch.sigmoid(self.conv_2(self.relu(self.conv_1(y))))


class SpatialAttention(nn.Module):
    """Spatial attention: 1×1 conv C→C/16 (stride s) → BN → ReLU → 3×3 conv (padding 1) →1 → sigmoid.

    Returns a saliency map [N, 1, ceil(H / s), ceil(W / s)] in (0, 1), broadcast over channels by ⊙. A 1×1
    conv with stride s and no padding keeps rows 0, s, 2s, …, i.e. ceil(H / s) of them: the size every
    stride-s op above produces, for odd sizes too. Bias-free convs and no leading ReLU, as in the paper's
    listing ``AttentionS``; hidden width ``max(C // 16, 1)``.
    """

    reduction = 16

    def __init__(self, C: int, stride: int, affine: bool = True):
        super().__init__()
        hidden = _reduced(C, self.reduction)
        self.conv_1 = nn.Conv2d(C, hidden, 1, stride=stride, padding=0, bias=False)
        self.bn_1 = nn.BatchNorm2d(hidden, affine=affine)
        self.relu = nn.ReLU(inplace=False)
        self.conv_2 = nn.Conv2d(hidden, 1, 3, stride=1, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn_1(self.conv_1(x)))
        return torch.sigmoid(self.conv_2(y))


class DynamicConv(nn.Module):
    """The kernel generator of NOS's dynamic convolution (paper Fig. 1, conference appendix A.1.2).

    For an input [N, C, H, W] (H', W' after striding, P = H'·W'):

    (a) bottleneck: 1×1 conv C→C/8 → BN → ReLU, flattened to B [N, C/8, P];
    (b) kernel transform: 1×1 conv C→k·k on the input, flattened to T [N, k·k, P], softmax over P (a
        k·k-way spatial attention, one distribution over positions per kernel tap);
    (c) B · Tᵀ → [N, C/8, k·k] (each tap is a softmax-weighted global pool of the bottleneck features),
        reshaped to [N, C/8, k, k];
    (d) kernel decode: 1×1 conv C/8→C (mixes channels at every tap), softmax over the k·k taps.

    ``forward`` returns the kernel [N, C, k, k]; ``dynamic_depthwise`` applies it (the paper's ⊗).

    Choices: with stride s > 1 the two 1×1 convs of (a) and (b) are strided. The kernel's shape does not
    depend on the spatial size (the positions are pooled away in (c)), so striding only saves compute and
    lets the generator see the reduced grid that the strided feature tensor it is applied to lives on. The
    final softmax makes every (sample, channel) kernel non-negative and sum to 1, so F ⊗ D is a
    content-adaptive weighted local average. Bias-free convs, no leading ReLU and bottleneck width
    ``max(C // 8, 1)``, as in the listing ``DynamicF`` (which has no stride). The paper's dilated variant was
    dropped from the search space (journal Section 4.1), so none is offered here.
    """

    reduction = 8

    def __init__(self, C: int, kernel_size: int, stride: int = 1, affine: bool = True):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"DynamicConv needs an odd kernel size, got {kernel_size}")
        self.kernel_size = kernel_size
        self.stride = stride
        hidden = _reduced(C, self.reduction)
        self.conv_1 = nn.Conv2d(C, hidden, 1, stride=stride, padding=0, bias=False)
        self.bn_1 = nn.BatchNorm2d(hidden, affine=affine)
        self.relu = nn.ReLU(inplace=False)
        self.conv_2 = nn.Conv2d(C, kernel_size * kernel_size, 1, stride=stride, padding=0, bias=False)
        self.conv_3 = nn.Conv2d(hidden, C, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        bottleneck = self.relu(self.bn_1(self.conv_1(x))).flatten(2)  # [N, C/8, P]
        transform = torch.softmax(self.conv_2(x).flatten(2), dim=2)  # [N, k·k, P], softmax over P
        latent = torch.bmm(bottleneck, transform.transpose(1, 2))  # [N, C/8, k·k]
        n, hidden = latent.shape[:2]
        decoded = self.conv_3(latent.view(n, hidden, k, k))  # [N, C, k, k]
        return torch.softmax(decoded.flatten(2), dim=2).view(n, -1, k, k)


def dynamic_depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """F ⊗ D: a different depthwise k×k kernel for every sample and channel; stride 1, padding k // 2.

    ``x`` is [N, C, H, W] and ``kernel`` [N, C, k, k] (k odd); the output is [N, C, H, W]. Batched with the
    batch-as-groups trick: the batch is folded into the channels ([1, N·C, H, W]) and one grouped conv with
    N·C groups gives each (sample, channel) its own kernel, so there is no Python loop over samples.
    """
    if x.dim() != 4 or kernel.dim() != 4:
        raise ValueError(f"expected x [N, C, H, W] and kernel [N, C, k, k], got {tuple(x.shape)}, "
                         f"{tuple(kernel.shape)}")
    n, c, h, w = x.shape
    k = kernel.size(-1)
    if kernel.shape[:2] != x.shape[:2] or kernel.size(2) != k or k % 2 != 1:
        raise ValueError(f"kernel {tuple(kernel.shape)} does not fit x {tuple(x.shape)}: "
                         "need [N, C, k, k] with the same N and C and an odd k")
    out = F.conv2d(x.reshape(1, n * c, h, w), kernel.reshape(n * c, 1, k, k), padding=k // 2, groups=n * c)
    return out.view(n, c, h, w)


OPS.update({
    # Same as skip_connect; the heterogeneous space calls it identity (paper's f_6).
    "identity": _skip,
    "spatial_attention": lambda C, stride, affine: SpatialAttention(C, stride, affine=affine),
    "channel_attention": lambda C, stride, affine: ChannelAttention(C, stride, affine=affine),
    "dynamic_conv_3x3": lambda C, stride, affine: DynamicConv(C, 3, stride, affine=affine),
    "dynamic_conv_5x5": lambda C, stride, affine: DynamicConv(C, 5, stride, affine=affine),
})

# The 11 NOS candidates (architecture-matrix columns); there is no `none` op in this space. Feature ops in the
# order of the journal's Section 3.1 list (avg before max pooling; note its Fig. 5 legend calls f_4 max
# pooling, which would put max first), then a_0 spatial, a_1 channel, d_0 3×3, d_1 5×5 as in Fig. 5.
# Feature ops return feature tensors; attention ops return maps for ⊙ and dynamic ops return kernels for ⊗,
# which the heterogeneous residual block combines with the features.
HETERO_OPS: tuple[str, ...] = (
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "avg_pool_3x3",
    "max_pool_3x3",
    "identity",
    "spatial_attention",
    "channel_attention",
    "dynamic_conv_3x3",
    "dynamic_conv_5x5",
)

OP_FAMILY: dict[str, str] = {
    **{name: "feature" for name in HETERO_OPS[:7]},
    **{name: "attention" for name in HETERO_OPS[7:9]},
    **{name: "dynamic" for name in HETERO_OPS[9:]},
}
