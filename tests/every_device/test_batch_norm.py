"""BatchNorm, the op and the Gluon layer, beyond the op table: MXNet's update of the
moving averages in backward, predict mode, the layer's parameters and errors."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError, OperatorError
from mxcore.gluon import nn


def _data(device, shape=(8, 3, 4, 4), seed=0):
    rng = np.random.default_rng(seed)
    return mx.nd.array(rng.normal(2.0, 3.0, shape).astype(np.float32), ctx=device)


def test_layer_parameters_follow_mxnet(device):
    bn = nn.BatchNorm()
    bn.initialize(ctx=device)
    bn(_data(device))
    names = sorted(bn.collect_params().keys())
    assert names == [f"{bn.prefix}{n}" for n in ("beta", "gamma", "running_mean", "running_var")]
    assert bn.prefix.startswith("batchnorm")
    assert bn.gamma.shape == (3,) and bn.running_var.shape == (3,)
    assert bn.running_mean.grad_req == "null" and bn.gamma.grad_req == "write"
    np.testing.assert_array_equal(bn.running_var.data(device).asnumpy(), np.ones(3))


def test_running_averages_move_in_backward_only(device):
    bn = nn.BatchNorm(momentum=0.8)
    bn.initialize(ctx=device)
    x = _data(device)
    with mx.autograd.record():
        y = bn(x)
    np.testing.assert_array_equal(bn.running_mean.data(device).asnumpy(), np.zeros(3))
    y.backward()
    xs = x.asnumpy().astype(np.float64)
    np.testing.assert_allclose(bn.running_mean.data(device).asnumpy(),
                               0.2 * xs.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.data(device).asnumpy(),
                               0.8 + 0.2 * xs.var(axis=(0, 2, 3)), rtol=1e-5)
    # training output: zero mean, unit variance per channel
    out = y.asnumpy().astype(np.float64)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-3)


def test_predict_mode_uses_the_running_averages(device):
    bn = nn.BatchNorm(epsilon=1e-3)
    bn.initialize(ctx=device)
    x = _data(device)
    bn.running_mean.set_data(mx.nd.array([1.0, 2.0, 3.0], ctx=device))
    bn.running_var.set_data(mx.nd.array([4.0, 9.0, 16.0], ctx=device))
    y = bn(x).asnumpy()  # not recording: predict mode
    want = (x.asnumpy() - np.array([1, 2, 3]).reshape(1, 3, 1, 1)) / np.sqrt(
        np.array([4, 9, 16]).reshape(1, 3, 1, 1) + 1e-3)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_scale_false_keeps_gamma_at_one(device):
    bn = nn.BatchNorm(scale=False, center=False)
    bn.initialize(ctx=device)
    x = _data(device)
    x.attach_grad()
    bn(x)  # fixes the deferred shapes
    bn.gamma.set_data(mx.nd.full((3,), 5.0, ctx=device))
    with mx.autograd.record():
        y = bn(x)
    y.backward()
    assert bn.gamma.grad_req == "null" and bn.beta.grad_req == "null"
    assert x.grad is not None
    out = y.asnumpy().astype(np.float64)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-3)  # gamma ignored


def test_save_and_load_keep_the_running_averages(device, tmp_path):
    bn = nn.BatchNorm()
    bn.initialize(ctx=device)
    with mx.autograd.record():
        y = bn(_data(device))
    y.backward()
    path = str(tmp_path / "bn.safetensors")
    bn.save_parameters(path)
    other = nn.BatchNorm(in_channels=3)
    other.load_parameters(path, ctx=device)
    np.testing.assert_array_equal(other.running_var.data(device).asnumpy(),
                                  bn.running_var.data(device).asnumpy())


def test_wrong_channel_count_names_the_op_and_shapes(device):
    x = _data(device)
    ones = mx.nd.ones((4,), ctx=device)
    with pytest.raises(OperatorError) as info:
        mx.nd.BatchNorm(x, ones, ones, ones, ones)
    msg = str(info.value)
    assert msg.startswith("operator 'BatchNorm': gamma shape (4,) does not match the 3 "
                          "channels of data (8, 3, 4, 4) on axis 1"), msg


def test_layer_wrong_channel_count_names_the_layer(device):
    bn = nn.BatchNorm(in_channels=3)
    bn.initialize(ctx=device)
    assert repr(bn) == ("BatchNorm(axis=1, eps=1e-05, momentum=0.9, fix_gamma=False, "
                        "use_global_stats=False, in_channels=3)")
    with pytest.raises(MXCoreError, match=r"BatchNorm 'batchnorm\d+': input of shape "
                                          r"\(2, 4, 5\) has 4 channels on axis 1, but the "
                                          r"layer's parameters are for 3"):
        bn(_data(device, (2, 4, 5)))
    deferred = nn.BatchNorm()
    deferred.initialize(ctx=device)
    with pytest.raises(MXCoreError, match=r"BatchNorm 'batchnorm\d+': axis 1 is out of range"):
        deferred(mx.nd.ones((3,), ctx=device))
