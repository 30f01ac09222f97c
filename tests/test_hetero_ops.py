"""Unit tests of the NOS heterogeneous ops: attention maps, dynamic-convolution kernels and their application.

The modules are checked against re-implementations written with explicit tensor algebra (einsum, manual
softmax, shifted slices instead of convolutions) on the modules' own parameters, in float64 and eval mode
with non-trivial BN statistics, and against a few results worked out by hand.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from spaces.ops import (
    HETERO_OPS,
    OP_FAMILY,
    OPS,
    ChannelAttention,
    DynamicConv,
    FactorizedReduce,
    Identity,
    SpatialAttention,
    dynamic_depthwise,
)

LN3 = math.log(3.0)  # sigmoid(ln 3) = 3 / 4


def _randomise_bn(bn: torch.nn.BatchNorm2d, gen: torch.Generator) -> None:
    """Running statistics (and affine parameters) far from the identity, so eval-mode BN matters."""
    n = bn.num_features
    with torch.no_grad():
        bn.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
        bn.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=gen))
        if bn.affine:
            bn.weight.copy_(0.5 + torch.rand(n, generator=gen))
            bn.bias.copy_(0.4 * torch.rand(n, generator=gen) - 0.2)


def _bn_eval(y: torch.Tensor, bn: torch.nn.BatchNorm2d) -> torch.Tensor:
    def v(t):
        return t[None, :, None, None]

    out = (y - v(bn.running_mean)) / torch.sqrt(v(bn.running_var) + bn.eps)
    return out * v(bn.weight) + v(bn.bias) if bn.affine else out


def _softmax(t: torch.Tensor, dim: int) -> torch.Tensor:
    e = torch.exp(t)
    return e / e.sum(dim, keepdim=True)


def _pointwise(weight: torch.Tensor, x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """A bias-free 1×1 conv (stride s, no padding) as an einsum over the kept pixels 0, s, 2s, …"""
    return torch.einsum("oc,nchw->nohw", weight[:, :, 0, 0], x[:, :, ::stride, ::stride])


# ------------------------------------------------------------------------------------------ registry


def test_hetero_ops_order_and_registry():
    assert HETERO_OPS == ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "avg_pool_3x3",
                          "max_pool_3x3", "identity", "spatial_attention", "channel_attention",
                          "dynamic_conv_3x3", "dynamic_conv_5x5")
    assert set(HETERO_OPS) <= set(OPS)
    assert "none" not in HETERO_OPS


def test_op_family():
    assert set(OP_FAMILY) == set(HETERO_OPS)
    assert Counter(OP_FAMILY.values()) == {"feature": 7, "attention": 2, "dynamic": 2}
    assert OP_FAMILY["identity"] == "feature"
    assert OP_FAMILY["spatial_attention"] == OP_FAMILY["channel_attention"] == "attention"
    assert OP_FAMILY["dynamic_conv_3x3"] == OP_FAMILY["dynamic_conv_5x5"] == "dynamic"


@pytest.mark.parametrize("size", [7, 8])
def test_identity_op(size):
    x = torch.randn(2, 4, size, size)
    op = OPS["identity"](4, 1, True)
    assert isinstance(op, Identity)
    assert op(x) is x
    reduce = OPS["identity"](4, 2, True)
    assert isinstance(reduce, FactorizedReduce)
    assert reduce(x).shape == (2, 4, math.ceil(size / 2), math.ceil(size / 2))


def test_builders_make_the_right_modules():
    assert isinstance(OPS["channel_attention"](16, 2, False), ChannelAttention)
    assert isinstance(OPS["spatial_attention"](16, 2, False), SpatialAttention)
    for name, k in (("dynamic_conv_3x3", 3), ("dynamic_conv_5x5", 5)):
        op = OPS[name](16, 2, False)
        assert isinstance(op, DynamicConv) and op.kernel_size == k and op.stride == 2
        assert op.conv_1.stride == op.conv_2.stride == (2, 2)  # (a) and (b) are strided


def test_reduced_widths_are_at_least_one_channel():
    assert ChannelAttention(32).conv_1.out_channels == 2
    assert ChannelAttention(8).conv_1.out_channels == 1  # 8 // 16 = 0 in the paper's listing
    assert SpatialAttention(8, 1).conv_1.out_channels == 1
    assert DynamicConv(16, 3).conv_1.out_channels == 2
    assert DynamicConv(4, 3).conv_1.out_channels == 1


def test_affine_flag_reaches_batchnorm():
    for affine in (False, True):
        for op in (OPS["spatial_attention"](16, 1, affine), OPS["dynamic_conv_3x3"](16, 1, affine)):
            bns = [m for m in op.modules() if isinstance(m, torch.nn.BatchNorm2d)]
            assert len(bns) == 1 and bns[0].affine == affine


# -------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("C", [16, 8])
@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("stride", [1, 2])
def test_attention_shapes_and_range(C, size, stride):
    x = torch.randn(3, C, size, size)
    ca = OPS["channel_attention"](C, stride, False)(x)
    assert ca.shape == (3, C, 1, 1)  # a global pool: the same for either stride
    assert ((ca > 0) & (ca < 1)).all()
    sa = OPS["spatial_attention"](C, stride, False)(x)
    out = math.ceil(size / stride)
    assert sa.shape == (3, 1, out, out)
    assert ((sa > 0) & (sa < 1)).all()


def test_spatial_attention_non_square_matches_strided_ops():
    x = torch.randn(1, 16, 7, 6)
    sa = OPS["spatial_attention"](16, 2, False)(x)
    assert sa.shape[2:] == OPS["sep_conv_3x3"](16, 2, False)(x).shape[2:] == (4, 3)


@pytest.mark.parametrize("C", [16, 8])
@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("k", [3, 5])
def test_dynamic_kernel_shape_and_normalisation(C, size, stride, k):
    kernel = OPS[f"dynamic_conv_{k}x{k}"](C, stride, False)(torch.randn(3, C, size, size))
    assert kernel.shape == (3, C, k, k)  # independent of the spatial size and the stride
    assert (kernel >= 0).all()
    assert torch.allclose(kernel.sum(dim=(2, 3)), torch.ones(3, C))


# -------------------------------------------------------------------------------- dynamic_depthwise


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("size", [6, 7])
def test_dynamic_depthwise_matches_per_sample_loop(k, size):
    gen = torch.Generator().manual_seed(0)
    N, C = 3, 4
    x = torch.randn(N, C, size, size, generator=gen)
    kernel = torch.randn(N, C, k, k, generator=gen)  # any kernel, not only normalised ones
    expected = torch.cat([F.conv2d(x[i:i + 1], kernel[i].unsqueeze(1), padding=k // 2, groups=C)
                          for i in range(N)])
    out = dynamic_depthwise(x, kernel)
    assert out.shape == (N, C, size, size)
    assert torch.allclose(out, expected, atol=1e-5)


def test_dynamic_depthwise_by_hand():
    # N=2, C=2 on 3×3 images; conv2d is a cross-correlation: out[i, j] = Σ K[a, b] x[i + a - 1, j + b - 1].
    x = torch.tensor([[[[1.0, 2, 3], [4, 5, 6], [7, 8, 9]],
                       [[1.0, -1, 2], [0, 3, 1], [2, 2, -2]]],
                      [[[1.0, 2, 3], [4, 5, 6], [7, 8, 9]],
                       [[9.0, 8, 7], [6, 5, 4], [3, 2, 1]]]])
    centre, top_left, bottom_right = (torch.zeros(3, 3) for _ in range(3))
    centre[1, 1] = 1.0
    top_left[0, 0] = 1.0
    bottom_right[2, 2] = 1.0
    kernel = torch.stack([torch.stack([centre, bottom_right]), torch.stack([top_left, torch.full((3, 3), 2.0)])])
    out = dynamic_depthwise(x, kernel)
    assert torch.equal(out[0, 0], x[0, 0])  # the centre tap gives the input back
    # bottom-right tap: out[i, j] = x[i + 1, j + 1], the image moves up-left, zeros enter bottom and right
    assert torch.equal(out[0, 1], torch.tensor([[3.0, 1, 0], [2, -2, 0], [0, 0, 0]]))
    # top-left tap: out[i, j] = x[i - 1, j - 1], the image moves down-right
    assert torch.equal(out[1, 0], torch.tensor([[0.0, 0, 0], [0, 1, 2], [0, 4, 5]]))
    # all-2 kernel: twice the zero-padded 3×3 window sums (total 45; corner 9+8+6+5 = 28, centre 45)
    assert torch.equal(out[1, 1], torch.tensor([[56.0, 78, 48], [66, 90, 54], [32, 42, 24]]))


def test_dynamic_depthwise_rejects_mismatched_kernels():
    x = torch.randn(2, 3, 5, 5)
    for bad in (torch.rand(1, 3, 3, 3), torch.rand(2, 4, 3, 3), torch.rand(2, 3, 4, 4), torch.rand(2, 3, 3, 5)):
        with pytest.raises(ValueError):
            dynamic_depthwise(x, bad)
    with pytest.raises(ValueError):
        DynamicConv(8, 4)


# ------------------------------------------------------------------------ modules against direct maths


@pytest.mark.parametrize("stride", [1, 2])
def test_channel_attention_matches_direct_computation(stride):
    gen = torch.Generator().manual_seed(1)
    op = ChannelAttention(32, stride).double().eval()
    x = torch.randn(2, 32, 5, 5, generator=gen, dtype=torch.float64)
    pooled = x.mean(dim=(2, 3))  # [N, C]
    hidden = torch.relu(pooled @ op.conv_1.weight[:, :, 0, 0].T)  # [N, 2]
    expected = 1 / (1 + torch.exp(-(hidden @ op.conv_2.weight[:, :, 0, 0].T)))
    assert torch.allclose(op(x), expected[:, :, None, None], atol=1e-12)


def test_channel_attention_by_hand():
    op = ChannelAttention(16, 2)
    with torch.no_grad():
        op.conv_1.weight.fill_(1.0)  # hidden = relu(sum of the channel means)
        op.conv_2.weight.fill_(1.0)  # every channel gets sigmoid(hidden)
    x = torch.zeros(2, 16, 3, 4)
    x[0, 0] = LN3  # channel means sum to ln 3 → 3/4
    x[1, 5] = -2.0  # negative sum → ReLU gives 0 → 1/2
    out = op(x)
    assert torch.allclose(out[0], torch.full((16, 1, 1), 0.75))
    assert torch.allclose(out[1], torch.full((16, 1, 1), 0.5))


def _spatial_direct(op: SpatialAttention, x: torch.Tensor, stride: int) -> torch.Tensor:
    y = torch.relu(_bn_eval(_pointwise(op.conv_1.weight, x, stride), op.bn_1))
    h, w = y.shape[2:]
    padded = F.pad(y, (1, 1, 1, 1))
    logits = sum(torch.einsum("c,nchw->nhw", op.conv_2.weight[0, :, a, b], padded[:, :, a:a + h, b:b + w])
                 for a in range(3) for b in range(3))
    return (1 / (1 + torch.exp(-logits))).unsqueeze(1)


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
def test_spatial_attention_matches_direct_computation(stride, affine):
    gen = torch.Generator().manual_seed(2)
    op = SpatialAttention(32, stride, affine=affine)
    _randomise_bn(op.bn_1, gen)
    op = op.double().eval()
    x = torch.randn(2, 32, 7, 7, generator=gen, dtype=torch.float64)
    out = op(x)
    assert out.shape == (2, 1, 7 if stride == 1 else 4, 7 if stride == 1 else 4)
    assert torch.allclose(out, _spatial_direct(op, x, stride), atol=1e-12)


def test_spatial_attention_by_hand():
    op = SpatialAttention(16, 1, affine=False)
    op.eval()
    with torch.no_grad():
        op.bn_1.running_var.fill_(1.0 - op.bn_1.eps)  # eval BN is then exactly the identity
        op.conv_1.weight.zero_()
        op.conv_1.weight[0, 0] = 1.0  # hidden = channel 0 only
        op.conv_2.weight.zero_()
        op.conv_2.weight[0, 0, 1, 1] = 1.0  # centre tap: saliency = sigmoid(relu(x_0))
    x = torch.randn(1, 16, 3, 3)  # the other channels have zero weight
    x[0, 0] = torch.tensor([[0.0, LN3, -5.0], [LN3, 0.0, 0.0], [-5.0, 0.0, LN3]])
    assert torch.allclose(op(x)[0, 0], torch.tensor([[0.5, 0.75, 0.5], [0.75, 0.5, 0.5], [0.5, 0.5, 0.75]]))
    strided = SpatialAttention(16, 2, affine=False).eval()
    strided.load_state_dict(op.state_dict())
    # stride 2 keeps pixels (0, 0), (0, 2), (2, 0), (2, 2): values 0, -5, -5, ln 3
    assert torch.allclose(strided(x)[0, 0], torch.tensor([[0.5, 0.5], [0.5, 0.75]]))
    with torch.no_grad():
        op.conv_2.weight.zero_()
        op.conv_2.weight[0, 0, 0, 0] = 1.0  # top-left tap: saliency[i, j] = sigmoid(relu(x_0[i-1, j-1])), pad 0
    assert torch.allclose(op(x)[0, 0], torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.5, 0.75], [0.5, 0.75, 0.5]]))


def _dynamic_direct(op: DynamicConv, x: torch.Tensor) -> torch.Tensor:
    k, s = op.kernel_size, op.stride
    n = x.size(0)
    bottleneck = torch.relu(_bn_eval(_pointwise(op.conv_1.weight, x, s), op.bn_1)).flatten(2)  # (a) [N, r, P]
    transform = _softmax(_pointwise(op.conv_2.weight, x, s).flatten(2), dim=2)  # (b) [N, k·k, P]
    latent = torch.einsum("nrp,nqp->nrq", bottleneck, transform)  # (c) [N, r, k·k]
    decoded = torch.einsum("cr,nrq->ncq", op.conv_3.weight[:, :, 0, 0], latent)  # (d) [N, C, k·k]
    return _softmax(decoded, dim=2).view(n, -1, k, k)


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("k", [3, 5])
def test_dynamic_conv_matches_direct_computation(k, stride, affine):
    gen = torch.Generator().manual_seed(3)
    op = DynamicConv(16, k, stride, affine=affine)
    _randomise_bn(op.bn_1, gen)
    op = op.double().eval()
    x = torch.randn(2, 16, 7, 7, generator=gen, dtype=torch.float64)
    assert torch.allclose(op(x), _dynamic_direct(op, x), atol=1e-12)


def test_dynamic_conv_zero_decode_gives_the_box_filter():
    # conv_3 = 0 → every decoded logit is 0 → the kernel is uniform 1/9 whatever the input; applied to an
    # all-ones 3×3 image it gives (number of in-bounds window pixels) / 9: 4/9 corners, 6/9 edges, 1 centre.
    op = DynamicConv(8, 3)
    with torch.no_grad():
        op.conv_3.weight.zero_()
    x = torch.randn(2, 8, 3, 3)
    kernel = op(x)
    assert torch.allclose(kernel, torch.full((2, 8, 3, 3), 1 / 9))
    out = dynamic_depthwise(torch.ones(2, 8, 3, 3), kernel)
    expected = torch.tensor([[4.0, 6, 4], [6, 9, 6], [4, 6, 4]]) / 9
    assert torch.allclose(out, expected.expand(2, 8, 3, 3))


def test_dynamic_kernel_is_invariant_to_permuting_pixels():
    # 1×1 convs act per pixel and step (c) pools the pixels away: the kernel cannot depend on where things are.
    op = DynamicConv(16, 5).eval()
    x = torch.randn(2, 16, 6, 6)
    perm = torch.randperm(36, generator=torch.Generator().manual_seed(4))
    shuffled = x.flatten(2)[:, :, perm].view_as(x)
    assert torch.allclose(op(x), op(shuffled), atol=1e-6)


@pytest.mark.parametrize("stride", [1, 2])
def test_gradients_reach_every_dynamic_conv_parameter(stride):
    torch.manual_seed(5)
    op = DynamicConv(16, 3, stride, affine=True)  # training mode: BN on batch statistics
    x = torch.randn(2, 16, 6, 6, requires_grad=True)
    # The feature tensor the kernel is applied to lives on the op's (strided) grid, as in a reduction cell.
    feature = x if stride == 1 else F.avg_pool2d(x, 2)
    dynamic_depthwise(feature, op(x)).sum().backward()
    params = dict(op.named_parameters())
    assert set(params) == {"conv_1.weight", "bn_1.weight", "bn_1.bias", "conv_2.weight", "conv_3.weight"}
    for name, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0
