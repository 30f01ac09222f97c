"""Unit tests of the shared primitive ops: shapes for every op and stride, FactorizedReduce, drop-path."""

from __future__ import annotations

import math

import pytest
import torch

from spaces.ops import DARTS_OPS, OPS, FactorizedReduce, Identity, Zero, drop_path

C = 4




def test_darts_ops_order_and_registry():
    assert DARTS_OPS == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                         "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
    assert set(DARTS_OPS) <= set(OPS)


@pytest.mark.parametrize("name", DARTS_OPS)
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("stride", [1, 2])
def test_op_output_shape(name, affine, size, stride):
    op = OPS[name](C, stride, affine)
    out = op(torch.randn(2, C, size, size))
    expected = size if stride == 1 else math.ceil(size / 2)
    assert out.shape == (2, C, expected, expected)
    assert torch.isfinite(out).all()


def test_op_output_shape_non_square():
    for name in DARTS_OPS:
        assert OPS[name](C, 2, False)(torch.randn(1, C, 7, 6)).shape == (1, C, 4, 3), name


def test_affine_flag_reaches_batchnorm():
    for name in ("sep_conv_3x3", "dil_conv_5x5"):
        for affine in (False, True):
            bns = [m for m in OPS[name](C, 1, affine).modules() if isinstance(m, torch.nn.BatchNorm2d)]
            assert bns and all(bn.affine == affine for bn in bns)


def test_skip_connect_is_identity_or_factorized_reduce():
    assert isinstance(OPS["skip_connect"](C, 1, True), Identity)
    assert isinstance(OPS["skip_connect"](C, 2, True), FactorizedReduce)
    x = torch.randn(2, C, 5, 5)
    assert OPS["skip_connect"](C, 1, True)(x) is x


@pytest.mark.parametrize("stride", [1, 2])
def test_zero_is_zeros_and_strided(stride):
    x = torch.randn(2, C, 7, 7, requires_grad=True)
    out = Zero(stride)(x)
    assert out.shape == (2, C, 7 if stride == 1 else 4, 7 if stride == 1 else 4)
    assert (out == 0).all()
    out.sum().backward()  # stays on the graph, so a weighted sum including it can backpropagate
    assert x.grad is not None


def test_pool_ops_match_darts_definitions():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    # count_include_pad=False: the corner average is over the 4 real pixels only.
    corner = OPS["avg_pool_3x3"](1, 1, False)(x)[0, 0, 0, 0]
    assert corner.item() == pytest.approx((0 + 1 + 4 + 5) / 4)
    assert OPS["max_pool_3x3"](1, 1, False)(x)[0, 0, 0, 0].item() == 5.0


@pytest.mark.parametrize("size", [6, 7])
def test_factorized_reduce_channels_and_both_halves(size):
    fr = FactorizedReduce(3, 6, affine=False)
    out = fr(torch.randn(2, 3, size, size))
    assert out.shape == (2, 6, math.ceil(size / 2), math.ceil(size / 2))
    with pytest.raises(ValueError):
        FactorizedReduce(3, 5)


def test_factorized_reduce_second_half_sees_shifted_pixels():
    fr = FactorizedReduce(1, 2, affine=False).eval()  # eval BN with fresh stats: out = x / sqrt(1 + eps)
    with torch.no_grad():
        fr.conv_1.weight.fill_(1.0)
        fr.conv_2.weight.fill_(1.0)
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = fr(x) * math.sqrt(1 + fr.bn.eps)
    assert torch.allclose(out[0, 0], x[0, 0, ::2, ::2])
    assert torch.allclose(out[0, 1], x[0, 0, 1::2, 1::2])


def test_drop_path_zero_probability_is_identity():
    x = torch.randn(5, 3, 2, 2)
    assert drop_path(x, 0.0) is x


def test_drop_path_drops_whole_samples_and_rescales():
    x = torch.ones(20000, 2, 3, 3)
    p = 0.3
    out = drop_path(x, p, generator=torch.Generator().manual_seed(0))
    per_sample = out.view(out.size(0), -1)
    # Each sample is all-zero or all 1/keep: one mask value per sample, kept samples rescaled.
    assert ((per_sample == 0).all(1) | torch.isclose(per_sample, torch.tensor(1 / (1 - p))).all(1)).all()
    kept = (per_sample[:, 0] != 0).float().mean().item()
    assert kept == pytest.approx(1 - p, abs=0.015)
    assert out.mean().item() == pytest.approx(1.0, abs=0.03)  # unbiased in expectation
    assert torch.equal(x, torch.ones_like(x))  # input untouched


def test_drop_path_is_reproducible_with_a_seeded_generator():
    x = torch.randn(64, 4, 2, 2)
    a = drop_path(x, 0.5, generator=torch.Generator().manual_seed(7))
    b = drop_path(x, 0.5, generator=torch.Generator().manual_seed(7))
    c = drop_path(x, 0.5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_drop_path_rejects_certain_drop():
    with pytest.raises(ValueError):
        drop_path(torch.ones(2, 1, 1, 1), 1.0)
