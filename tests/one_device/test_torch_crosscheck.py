"""Convolution and pooling against PyTorch CPU with the same weights: forward values
and gradients.  Skips when torch is not installed (it is never a dependency)."""
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
