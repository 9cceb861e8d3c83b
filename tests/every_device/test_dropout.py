"""Dropout: one op whose mask is a function of a seed attribute; the backward pass
regenerates the forward's mask (the same op on the gradient)."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import OperatorError

nd = mx.nd
ag = mx.autograd
FLOATS = ("float16", "float32", "float64", "bfloat16")


def _f64(a):
    return a.asnumpy().astype(np.float64)


@pytest.mark.parametrize("dtype", FLOATS)
def test_the_mask_is_a_function_of_the_seed(device, dtype):
    x = nd.array(np.random.default_rng(0).uniform(1, 2, (60, 50)), ctx=device, dtype=dtype)
    a = _f64(nd.invoke("dropout", x, p=0.4, seed=11))
    b = _f64(nd.invoke("dropout", x, p=0.4, seed=11))
    c = _f64(nd.invoke("dropout", x, p=0.4, seed=12))
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    kept = a != 0
    assert 0.5 < kept.mean() < 0.7  # keep probability 0.6
    rtol = {"float16": 2e-3, "bfloat16": 1e-2}.get(dtype, 1e-6)
    np.testing.assert_allclose(a[kept], _f64(x)[kept] / 0.6, rtol=rtol)


@pytest.mark.parametrize("dtype", FLOATS)
def test_backward_applies_the_forward_mask(device, dtype):
    x = nd.ones((40, 30), ctx=device, dtype=dtype)
    x.attach_grad()
    g = nd.array(np.random.default_rng(1).uniform(-1, 1, (40, 30)), ctx=device, dtype=dtype)
    with ag.record():
        y = nd.Dropout(x, p=0.25)
    y.backward(g)
    kept = _f64(y) != 0
    assert 0.6 < kept.mean() < 0.9
    rtol = {"float16": 2e-3, "bfloat16": 1e-2}.get(dtype, 1e-6)
    np.testing.assert_allclose(_f64(x.grad), np.where(kept, _f64(g) / 0.75, 0), rtol=rtol,
                               atol=1e-6)


def test_axes_share_one_mask_value(device):
    x = nd.ones((20, 30, 40), ctx=device)
    with ag.record():
        y = nd.Dropout(x, p=0.5, axes=(1,)).asnumpy()
    assert (y == y[:, :1, :]).all()  # constant along axis 1
    assert 0.35 < (y[:, 0, :] != 0).mean() < 0.65
    with ag.record():
        z = nd.Dropout(x, p=0.5, axes=(-1, 0)).asnumpy()
    assert (z == z[:1, :, :1]).all()


def test_reproducible_under_mx_random_seed_and_fresh_per_call(device):
    x = nd.ones((50, 40), ctx=device)
    with ag.record():
        mx.random.seed(7)
        y1 = nd.Dropout(x, p=0.5).asnumpy()
        y2 = nd.Dropout(x, p=0.5).asnumpy()
        mx.random.seed(7)
        y3 = nd.Dropout(x, p=0.5).asnumpy()
    np.testing.assert_array_equal(y1, y3)
    assert (y1 != y2).any()


def test_identity_outside_training_and_bad_p(device):
    x = nd.ones((3, 4), ctx=device)
    assert nd.Dropout(x, p=0.5) is x            # predict mode
    with ag.record():
        assert nd.Dropout(x, p=0.0) is x
    always = nd.Dropout(x, p=0.5, mode="always").asnumpy()
    assert set(np.unique(always)) <= {0.0, 2.0}
    with pytest.raises(OperatorError, match="Dropout.*p must be in"):
        nd.Dropout(x, p=1.0)
