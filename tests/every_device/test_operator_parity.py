"""Operator behaviours MXNet 1.9.1's test_operator relies on: BatchNorm's extra
outputs, PReLU's gamma layouts, symbols that keep an explicit ``axis=None``,
Deconvolution's default of no bias, head gradients cast to their output's dtype,
exact LayerNorm parameter gradients, dense-only storage casts and AMP casts."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.test_utils import assert_almost_equal_ignore_nan, check_symbolic_forward


def test_batch_norm_output_mean_var(device):
    rs = np.random.RandomState(0)
    x = mx.nd.array(rs.uniform(size=(4, 3, 2)), ctx=device)
    gamma, beta = mx.nd.ones(3, ctx=device), mx.nd.zeros(3, ctx=device)
    mean0, var0 = mx.nd.zeros(3, ctx=device), mx.nd.ones(3, ctx=device)
    x.attach_grad()
    with mx.autograd.record():
        out, mean, invstd = mx.nd.BatchNorm(x, gamma, beta, mean0, var0, fix_gamma=False,
                                            output_mean_var=True, eps=1e-3)
    out.backward()
    h = x.asnumpy()
    np.testing.assert_allclose(mean.asnumpy(), h.mean(axis=(0, 2)), rtol=1e-5)
    np.testing.assert_allclose(invstd.asnumpy(), 1 / np.sqrt(h.var(axis=(0, 2)) + 1e-3),
                               rtol=1e-4)
    # outside training: the moving statistics (backward above updated the first ones)
    _, mean, invstd = mx.nd.BatchNorm(x, gamma, beta, mx.nd.zeros(3, ctx=device),
                                      mx.nd.ones(3, ctx=device), output_mean_var=True,
                                      eps=1e-3)
    np.testing.assert_allclose(mean.asnumpy(), 0)
    np.testing.assert_allclose(invstd.asnumpy(), 1 / np.sqrt(1 + 1e-3), rtol=1e-6)
    with mx.autograd.record():
        _, _, var = mx.nd.contrib.SyncBatchNorm(x, gamma, beta, mean0, var0,
                                                output_mean_var=True, eps=1e-3)
    np.testing.assert_allclose(var.asnumpy(), h.var(axis=(0, 2)), rtol=1e-3, atol=1e-6)
    sym = mx.sym.BatchNorm(mx.sym.Variable("data"), output_mean_var=True)
    assert len(sym.list_outputs()) == 3
    assert sym.infer_shape(data=(4, 3, 2))[1] == [(4, 3, 2), (3,), (3,)]


def test_prelu_gamma_on_leading_axes(device):
    rs = np.random.RandomState(1)
    x = rs.uniform(-1, 1, (3, 4, 2, 5)).astype(np.float32)
    gamma = np.tile(np.array([0.1, 0.2, 0.3, 0.4], np.float32), (3, 1))
    y = mx.nd.LeakyReLU(mx.nd.array(x, ctx=device), mx.nd.array(gamma, ctx=device),
                        act_type="prelu")
    want = np.where(x > 0, x, x * gamma[:, :, None, None])
    np.testing.assert_allclose(y.asnumpy(), want, rtol=1e-6)


def test_symbol_keeps_explicit_axis_none(device):
    a = mx.sym.Variable("a")
    for sym in (mx.sym.sort(a, axis=None), mx.sym.load_json(mx.sym.sort(a, axis=None).tojson())):
        assert sym.infer_shape(a=(2, 3))[1] == [(6,)]
        data = np.array([[3, 1, 2], [0, 5, 4]], np.float32)
        check_symbolic_forward(sym, [data], [np.sort(data, axis=None)], ctx=device)


def test_deconvolution_symbol_has_no_bias_by_default():
    data = mx.sym.Variable("data")
    sym = mx.sym.Deconvolution(data, kernel=(3, 3), stride=(2, 2), pad=(1, 1), adj=(1, 1),
                               num_filter=5, name="d")
    assert sym.list_arguments() == ["data", "d_weight"]
    assert sym.infer_shape(data=(2, 3, 4, 4))[1] == [(2, 5, 8, 8)]
    with_bias = mx.sym.Deconvolution(data, kernel=(3, 3), num_filter=5, no_bias="false",
                                     name="e")
    assert with_bias.list_arguments() == ["data", "e_weight", "e_bias"]


def test_head_gradient_takes_the_output_dtype(device):
    """A float head gradient of an int32 output is cast to int32 (0.7 -> 0), as MXNet
    copies it into the output's gradient buffer."""
    a = mx.sym.Variable("a")
    sym = mx.sym.cast(a, dtype="int32") * 3
    grad = mx.nd.ones((2,), ctx=device) * 9
    exe = sym.bind(device, args={"a": mx.nd.array([1.5, 2.5], ctx=device)}, args_grad=[grad])
    exe.forward(is_train=True)
    exe.backward([mx.nd.array([0.7, 1.2], ctx=device)])
    np.testing.assert_array_equal(grad.asnumpy(), [0, 3])


def test_layer_norm_parameter_gradients_are_exact(device):
    """gamma and beta gradients sum over every row of a large batch: float32 results
    as exact as a float64 computation allows (row-by-row float32 sums drift)."""
    rs = np.random.RandomState(2)
    x = rs.normal(size=(8192, 8)).astype(np.float32)
    dy = rs.normal(size=x.shape).astype(np.float32)
    data = mx.nd.array(x, ctx=device)
    gamma, beta = mx.nd.ones(8, ctx=device), mx.nd.zeros(8, ctx=device)
    gamma.attach_grad()
    beta.attach_grad()
    with mx.autograd.record():
        y = mx.nd.LayerNorm(data, gamma, beta, axis=-1, eps=1e-5)
    y.backward(mx.nd.array(dy, ctx=device))
    x64 = x.astype(np.float64)
    xhat = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(beta.grad.asnumpy(), dy.astype(np.float64).sum(0), rtol=2e-6,
                               atol=1e-4)
    np.testing.assert_allclose(gamma.grad.asnumpy(), (xhat * dy).sum(0), rtol=2e-6, atol=1e-4)


def test_dense_storage_and_amp_cast(device):
    x = mx.nd.array([[1.5, -2]], ctx=device)
    assert mx.nd.cast_storage(x, "default").asnumpy().tolist() == [[1.5, -2]]
    assert x.tostype("default") is not x
    with pytest.raises(MXCoreError, match="sparse storage types"):
        x.tostype("csr")
    assert mx.nd.amp_cast(x, dtype="float16").dtype == np.float16
    ints = mx.nd.array([1, 2], ctx=device, dtype="int32")
    assert mx.nd.amp_cast(ints, dtype="float16") is ints  # only floats are cast
    assert mx.sym.amp_cast(mx.sym.Variable("x"), dtype="float16").infer_type(
        x=np.float32)[1] == [np.float16]


def test_test_utils_nan_and_asnumpy_dtype(device):
    assert_almost_equal_ignore_nan(np.array([1.0, np.nan, 3.0]), np.array([1.0, 7.0, np.nan]))
    with pytest.raises(AssertionError):
        assert_almost_equal_ignore_nan(np.array([1.0, np.nan]), np.array([2.0, 0.0]))
    a = mx.sym.Variable("a")
    out = check_symbolic_forward(a * 1, [np.array([1, 2], np.int32)],
                                 [np.array([1, 2], np.int32)], dtype="asnumpy", ctx=device)
    assert out[0].dtype == np.int32
