"""Convolution, transposed convolution, upsampling, pooling and batch normalisation
against PyTorch CPU with the same weights: forward values and gradients.  Skips when
torch is not installed (it is never a dependency)."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _pair(rng, shape):
    a = rng.standard_normal(shape)
    return mx.nd.array(a, dtype="float64"), torch.tensor(a, requires_grad=True)


@pytest.mark.parametrize("nd_, stride, pad, dilate, groups, bias", [
    (2, 1, 0, 1, 1, True), (2, 2, 1, 1, 1, True), (2, 1, 2, 2, 1, False),
    (2, 2, 1, 1, 2, True), (2, 1, 1, 1, 4, True), (1, 2, 1, 1, 1, True),
    (3, 1, 1, 1, 1, True), (3, 2, 0, 1, 2, False),
])
def test_convolution_matches_torch(nd_, stride, pad, dilate, groups, bias):
    rng = np.random.default_rng(nd_ * 100 + stride * 10 + groups)
    c, f, k = 4, 8, 3
    spatial = {1: (11,), 2: (9, 8), 3: (5, 6, 5)}[nd_]
    x, tx = _pair(rng, (2, c) + spatial)
    w, tw = _pair(rng, (f, c // groups) + (k,) * nd_)
    b, tb = _pair(rng, (f,))
    for a in (x, w, b):
        a.attach_grad()
    with mx.autograd.record():
        y = mx.nd.Convolution(x, w, b if bias else None, kernel=(k,) * nd_, num_filter=f,
                              stride=(stride,) * nd_, pad=(pad,) * nd_,
                              dilate=(dilate,) * nd_, num_group=groups, no_bias=not bias)
        loss = (y * y).sum()
    loss.backward()
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd_]
    ty = conv(tx, tw, tb if bias else None, stride=stride, padding=pad, dilation=dilate,
              groups=groups)
    (ty * ty).sum().backward()
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(x.grad.asnumpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(w.grad.asnumpy(), tw.grad.numpy(), rtol=1e-10, atol=1e-9)
    if bias:
        np.testing.assert_allclose(b.grad.asnumpy(), tb.grad.numpy(), rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("nd_, stride, pad, dilate, adj, groups, bias", [
    (2, 1, 0, 1, 0, 1, True), (2, 2, 1, 1, 1, 1, True), (2, 2, 1, 2, 1, 1, False),
    (2, 3, 2, 1, 2, 2, True), (2, 2, 0, 1, 0, 4, True), (1, 2, 1, 1, 1, 1, True),
    (1, 3, 1, 2, 0, 2, False), (3, 1, 1, 1, 0, 1, True), (3, 2, 1, 1, 1, 2, False),
])
def test_deconvolution_matches_torch_conv_transpose(nd_, stride, pad, dilate, adj, groups,
                                                    bias):
    rng = np.random.default_rng(nd_ * 100 + stride * 10 + groups + adj)
    c, f, k = 4, 8, 3
    spatial = {1: (7,), 2: (5, 4), 3: (3, 4, 3)}[nd_]
    x, tx = _pair(rng, (2, c) + spatial)
    w, tw = _pair(rng, (c, f // groups) + (k,) * nd_)
    b, tb = _pair(rng, (f,))
    for a in (x, w, b):
        a.attach_grad()
    with mx.autograd.record():
        y = mx.nd.Deconvolution(x, w, b if bias else None, kernel=(k,) * nd_, num_filter=f,
                                stride=(stride,) * nd_, pad=(pad,) * nd_,
                                dilate=(dilate,) * nd_, adj=(adj,) * nd_, num_group=groups,
                                no_bias=not bias)
        loss = (y * y).sum()
    loss.backward()
    conv_t = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[nd_]
    ty = conv_t(tx, tw, tb if bias else None, stride=stride, padding=pad, output_padding=adj,
                groups=groups, dilation=dilate)
    (ty * ty).sum().backward()
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(x.grad.asnumpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(w.grad.asnumpy(), tw.grad.numpy(), rtol=1e-10, atol=1e-9)
    if bias:
        np.testing.assert_allclose(b.grad.asnumpy(), tb.grad.numpy(), rtol=1e-10, atol=1e-9)


def test_conv2d_transpose_layer_matches_torch():
    rng = np.random.default_rng(12)
    layer = mx.gluon.nn.Conv2DTranspose(6, 4, strides=2, padding=1, output_padding=1,
                                        groups=2, in_channels=4)
    layer.initialize()
    torch_layer = torch.nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, output_padding=1,
                                           groups=2).double()
    with torch.no_grad():
        layer.weight.set_data(mx.nd.array(torch_layer.weight.numpy(), dtype="float32"))
        layer.bias.set_data(mx.nd.array(torch_layer.bias.numpy(), dtype="float32"))
    x = rng.standard_normal((2, 4, 5, 5))
    np.testing.assert_allclose(layer(mx.nd.array(x, dtype="float32")).asnumpy(),
                               torch_layer(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("scale", [2, 3])
def test_nearest_upsampling_matches_torch_interpolate(scale):
    rng = np.random.default_rng(scale)
    x, tx = _pair(rng, (2, 3, 4, 5))
    x.attach_grad()
    with mx.autograd.record():
        y = mx.nd.UpSampling(x, scale=scale, sample_type="nearest")
        loss = (y * y * y).sum()
    loss.backward()
    ty = F.interpolate(tx, scale_factor=scale, mode="nearest")
    (ty * ty * ty).sum().backward()
    np.testing.assert_array_equal(y.asnumpy(), ty.detach().numpy())
    np.testing.assert_allclose(x.grad.asnumpy(), tx.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("pool_type, kernel, stride, pad, full, include_pad", [
    ("max", 2, 2, 0, False, True), ("max", 3, 2, 1, False, True), ("max", 3, 2, 1, True, True),
    ("avg", 2, 2, 0, False, True), ("avg", 3, 2, 1, False, True), ("avg", 3, 2, 1, False, False),
    ("avg", 3, 2, 1, True, True), ("avg", 3, 2, 1, True, False),
])
def test_pooling_2d_matches_torch(pool_type, kernel, stride, pad, full, include_pad):
    rng = np.random.default_rng(kernel * 10 + stride + pad)
    x, tx = _pair(rng, (2, 3, 9, 8))
    x.attach_grad()
    with mx.autograd.record():
        y = mx.nd.Pooling(x, kernel=(kernel, kernel), stride=(stride, stride),
                          pad=(pad, pad), pool_type=pool_type,
                          pooling_convention="full" if full else "valid",
                          count_include_pad=include_pad)
        loss = (y * y).sum()
    loss.backward()
    if pool_type == "max":
        ty = F.max_pool2d(tx, kernel, stride, pad, ceil_mode=full)
    else:
        ty = F.avg_pool2d(tx, kernel, stride, pad, ceil_mode=full,
                          count_include_pad=include_pad)
    (ty * ty).sum().backward()
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad.asnumpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_lp_pooling_matches_torch():
    rng = np.random.default_rng(7)
    x, tx = _pair(rng, (2, 3, 6, 6))
    x.attach_grad()
    with mx.autograd.record():
        y = mx.nd.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="lp", p_value=2)
        loss = y.sum()
    loss.backward()
    ty = F.lp_pool2d(tx, 2, 2, 2)
    ty.sum().backward()
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad.asnumpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fix_gamma", [False, True])
def test_batch_norm_training_matches_torch(fix_gamma):
    rng = np.random.default_rng(3)
    x, tx = _pair(rng, (6, 4, 3, 5))
    g, tg = _pair(rng, (4,))
    b, tb = _pair(rng, (4,))
    mean = mx.nd.zeros((4,), dtype="float64")
    var = mx.nd.ones((4,), dtype="float64")
    for a in (x, g, b):
        a.attach_grad()
    with mx.autograd.record():
        y = mx.nd.BatchNorm(x, g, b, mean, var, eps=1e-5, momentum=0.9, fix_gamma=fix_gamma)
        loss = (y * y * y).sum()
    assert mean.asnumpy().tolist() == [0.0] * 4  # the forward pass leaves the averages alone
    loss.backward()
    weight = torch.ones(4, dtype=torch.float64) if fix_gamma else tg
    ty = F.batch_norm(tx, None, None, weight, tb, training=True, eps=1e-5)
    (ty * ty * ty).sum().backward()
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(x.grad.asnumpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(b.grad.asnumpy(), tb.grad.numpy(), rtol=1e-10, atol=1e-10)
    if fix_gamma:
        assert np.all(g.grad.asnumpy() == 0)
    else:
        np.testing.assert_allclose(g.grad.asnumpy(), tg.grad.numpy(), rtol=1e-8, atol=1e-8)
    # MXNet updates the moving averages in backward, with the biased batch variance
    xs = tx.detach().numpy()
    np.testing.assert_allclose(mean.asnumpy(), 0.1 * xs.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(var.asnumpy(), 0.9 + 0.1 * xs.var(axis=(0, 2, 3)), rtol=1e-12)
