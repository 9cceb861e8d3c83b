"""16-bit float reductions and normalisations accumulate in float32 and round once.

A 16-bit accumulator stops growing once each addend is below half an ulp of the running
sum: summed in bfloat16, 4096 ones give 256.  Every check here reduces a long axis of
bfloat16 (or float16) values and compares with the same values reduced in float64: a
kernel that rounds once is within two ulps of it, one that accumulates in 16 bits is off
by far more, whatever numpy and ml_dtypes release is installed.
"""
from __future__ import annotations

import numpy as np
import pytest

import hal

import mxcore as mx

DTYPES = [pytest.param(d, id=d) for d in ("bfloat16", "float16") if d in hal.DTYPES]
N = 4096


def _eps(dtype: str) -> float:
    return {"bfloat16": 2.0 ** -7, "float16": 2.0 ** -10}[dtype]


def _subnormal(dtype: str) -> float:
    """The spacing of ``dtype``'s subnormals, where its relative precision ends."""
    return {"bfloat16": 2.0 ** -133, "float16": 2.0 ** -24}[dtype]


def _host(values, dtype):
    """``values`` rounded to ``dtype``, and those same values in float64 (the reference's
    input: only the kernel's arithmetic is under test)."""
    a = np.asarray(values).astype(hal.to_dtype(dtype))
    return a, a.astype(np.float64)


def _nd(a, device):
    return mx.nd.array(a, ctx=device, dtype=a.dtype)


def _check(out, ref, dtype, scale_atol=0.0):
    """``out`` has ``dtype`` and is within two ulps of the float64 ``ref`` (``scale_atol``:
    an absolute slack, as a fraction of the largest reference value, for results that
    are differences of larger terms; subnormal results: two subnormal steps)."""
    assert out.dtype == hal.to_dtype(dtype)
    ref = np.asarray(ref, np.float64)
    got = out.asnumpy().astype(np.float64)
    atol = max(scale_atol * float(np.abs(ref).max()), 2 * _subnormal(dtype))
    np.testing.assert_allclose(got, ref, rtol=2 * _eps(dtype), atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_of_ones_is_exact(dtype, device):
    x = _nd(np.ones(N, hal.to_dtype(dtype)), device)
    assert float(mx.nd.sum(x).asscalar()) == N
    assert float(mx.nd.nansum(x).asscalar()) == N
    assert float(mx.nd.mean(x).asscalar()) == 1.0
    assert float(mx.nd.norm(x).asscalar()) == 64.0
    assert float(mx.nd.norm(x, ord=1).asscalar()) == N


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((N,), None), ((3, N), 1), ((N, 3), 0)],
                         ids=["all", "rows", "columns"])
def test_sum_mean_norm_of_a_long_axis(dtype, shape, axis, device):
    a, ref = _host(np.random.default_rng(0).uniform(0.5, 1.5, shape), dtype)
    x = _nd(a, device)
    _check(mx.nd.sum(x, axis=axis), ref.sum(axis=axis), dtype)
    _check(mx.nd.mean(x, axis=axis), ref.mean(axis=axis), dtype)
    _check(mx.nd.norm(x, axis=axis), np.sqrt((ref * ref).sum(axis=axis)), dtype)
    _check(mx.nd.norm(x, ord=1, axis=axis), np.abs(ref).sum(axis=axis), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_prod_of_a_long_axis(dtype, device):
    # factors just above 1: a 16-bit running product rounds at every step and drifts
    a, ref = _host(np.random.default_rng(1).uniform(1.0, 1.03, (2, 256)), dtype)
    _check(mx.nd.prod(_nd(a, device), axis=1), ref.prod(axis=1), dtype)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis):
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((3, N), -1), ((N, 3), 0)], ids=["last", "first"])
def test_softmax_of_a_long_axis(dtype, shape, axis, device):
    a, ref = _host(np.random.default_rng(2).normal(size=shape), dtype)
    x = _nd(a, device)
    _check(mx.nd.softmax(x, axis=axis), _softmax(ref, axis), dtype)
    _check(mx.nd.log_softmax(x, axis=axis), _log_softmax(ref, axis), dtype)
    _check(mx.nd.softmax(x, axis=axis, temperature=2.0), _softmax(ref / 2.0, axis), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((3, N), 1), ((N, 3), 0)], ids=["rows", "columns"])
def test_softmax_ce_loss_and_grad_of_a_long_axis(dtype, shape, axis, device):
    rng = np.random.default_rng(3)
    a, ref = _host(rng.normal(size=shape), dtype)
    batch = shape[1 - axis]
    label = rng.integers(0, N, batch)
    g, gref = _host(rng.uniform(0.5, 1.5, batch), dtype)
    x, lab = _nd(a, device), mx.nd.array(label.astype(np.float32), ctx=device)
    idx = np.expand_dims(label, axis)
    loss = -np.take_along_axis(_log_softmax(ref, axis), idx, axis).squeeze(axis)
    _check(mx.nd.softmax_ce_loss(x, lab, axis=axis), loss, dtype)
    grad = _softmax(ref, axis)
    np.put_along_axis(grad, idx, np.take_along_axis(grad, idx, axis) - 1, axis)
    grad *= np.expand_dims(gref, axis)
    out = mx.nd.invoke("softmax_ce_loss_grad", x, lab, _nd(g, device), axis=axis)
    _check(out, grad, dtype)


def _layer_norm_parts(x, axis, eps):
    mean = x.mean(axis=axis, keepdims=True)
    d = x - mean
    rstd = 1 / np.sqrt((d * d).mean(axis=axis, keepdims=True) + eps)
    return d * rstd, rstd


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((3, N), 1), ((N, 3), 0), ((3, N), 0)],
                         ids=["last", "first", "long_batch"])
def test_layer_norm_and_backward_of_a_long_axis(dtype, shape, axis, device):
    rng = np.random.default_rng(4)
    n = shape[axis]
    # an offset mean: a 16-bit running sum of the row stalls far below it
    a, xr = _host(rng.normal(3.0, 1.0, shape), dtype)
    g, gr = _host(rng.uniform(0.5, 1.5, n), dtype)
    b, br = _host(rng.normal(size=n), dtype)
    dy, dyr = _host(rng.normal(size=shape), dtype)
    eps = 1e-5
    cshape = tuple(-1 if i == axis else 1 for i in range(len(shape)))
    xhat, rstd = _layer_norm_parts(xr, axis, eps)
    y = mx.nd.LayerNorm(_nd(a, device), _nd(g, device), _nd(b, device), axis=axis, eps=eps)
    _check(y, xhat * gr.reshape(cshape) + br.reshape(cshape), dtype, 1e-4)

    dxhat = dyr * gr.reshape(cshape)
    dx = rstd * (dxhat - dxhat.mean(axis=axis, keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=axis, keepdims=True))
    other = 1 - axis  # dgamma and dbeta sum over it (long_batch: N long)
    outs = mx.nd.layer_norm_backward(_nd(dy, device), _nd(a, device), _nd(g, device),
                                     axis=axis, eps=eps)
    _check(outs[0], dx, dtype, 1e-4)
    _check(outs[1], (dyr * xhat).sum(axis=other), dtype, 1e-4)
    _check(outs[2], dyr.sum(axis=other), dtype, 1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", ["take", "getitem"])
def test_gradient_of_repeated_indices_accumulates_exactly(dtype, how, device):
    """N picks of one element: its gradient is N (exact in 16-bit floats), where a
    16-bit accumulation stops at 256 (bfloat16) or 2048 (float16)."""
    x = mx.nd.ones((5,), ctx=device, dtype=dtype)
    x.attach_grad()
    idx = mx.nd.zeros((N,), ctx=device, dtype="int64")
    with mx.autograd.record():
        y = mx.nd.take(x, idx) if how == "take" else x[np.zeros(N, dtype=np.int64)]
    y.backward()
    got = x.grad.asnumpy().astype(np.float64)
    np.testing.assert_array_equal(got, [N, 0, 0, 0, 0])
