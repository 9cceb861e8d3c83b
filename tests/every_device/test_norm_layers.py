"""The Gluon normalisation layers (InstanceNorm, GroupNorm, LayerNorm, BatchNormReLU,
SyncBatchNorm) and Embedding: MXNet 1.x parameter names, shapes and defaults, deferred
shapes, values against numpy, gradients reaching the parameters, and errors that name
the layer."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.gluon import Trainer, nn


def _x(device, shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return mx.nd.array(rng.normal(1.0, 2.0, shape).astype(dtype), ctx=device)


def _normalised(x, axes, eps):
    """numpy: zero mean, unit biased variance over ``axes`` (float64)."""
    x = x.astype(np.float64)
    m = x.mean(axis=axes, keepdims=True)
    return (x - m) / np.sqrt(((x - m) ** 2).mean(axis=axes, keepdims=True) + eps)


def _param_names(block):
    return sorted(k[len(block.prefix):] for k in block.collect_params().keys())


# --- InstanceNorm -------------------------------------------------------------------------
def test_instance_norm_defaults_follow_mxnet(device):
    layer = nn.InstanceNorm()
    assert layer.prefix.startswith("instancenorm")
    assert _param_names(layer) == ["beta", "gamma"]
    assert layer.gamma.grad_req == "null" and layer.beta.grad_req == "write"  # scale=False
    layer.initialize(ctx=device)
    x = _x(device, (2, 3, 4, 5))
    y = layer(x)
    assert layer.gamma.shape == (3,) and layer.beta.shape == (3,)  # deferred from the input
    # MXNet's layer default eps is 1e-5 (the op's is 1e-3)
    np.testing.assert_allclose(y.asnumpy(), _normalised(x.asnumpy(), (2, 3), 1e-5),
                               rtol=1e-4, atol=1e-5)
    assert repr(layer) == ("InstanceNorm(eps=1e-05, axis=1, center=True, scale=False, "
                           "in_channels=3)")


@pytest.mark.parametrize("axis", [2, -1])
def test_instance_norm_on_another_axis(device, axis):
    layer = nn.InstanceNorm(axis=axis, scale=True, epsilon=1e-3)
    layer.initialize(ctx=device)
    x = _x(device, (2, 3, 4))
    layer(x)
    layer.gamma.set_data(mx.nd.array([1.0, 2.0, 3.0, 4.0], ctx=device))
    layer.beta.set_data(mx.nd.array([0.0, 0.5, -0.5, 1.0], ctx=device))
    y = layer(x).asnumpy()
    assert layer.gamma.shape == (4,)
    # channels on the last axis, normalised over axis 1 (the swapped-in spatial axis)
    want = _normalised(x.asnumpy(), (1,), 1e-3) * np.array([1, 2, 3, 4]) \
        + np.array([0, 0.5, -0.5, 1])
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_instance_norm_trains_beta_and_gamma(device):
    layer = nn.InstanceNorm(scale=True, in_channels=2)
    layer.initialize(ctx=device)
    x = _x(device, (3, 2, 5))
    w = _x(device, (3, 2, 5), seed=1)
    with mx.autograd.record():
        loss = (layer(x) * w).sum()
    loss.backward()
    xhat = _normalised(x.asnumpy(), (2,), 1e-5)
    np.testing.assert_allclose(layer.beta.grad(device).asnumpy(),
                               w.asnumpy().sum(axis=(0, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.gamma.grad(device).asnumpy(),
                               (w.asnumpy() * xhat).sum(axis=(0, 2)), rtol=1e-4, atol=1e-4)


def test_instance_norm_errors_name_the_layer(device):
    layer = nn.InstanceNorm(in_channels=3)
    layer.initialize(ctx=device)
    with pytest.raises(MXCoreError, match=r"InstanceNorm 'instancenorm\d+'.*4 channels .*"
                                          r"parameters are for 3"):
        layer(_x(device, (2, 4, 5)))
    with pytest.raises(MXCoreError, match=r"InstanceNorm .*shape \(2, 3\).*rank >= 3"):
        layer(_x(device, (2, 3)))


# --- GroupNorm ---------------------------------------------------------------------------
def test_group_norm_has_one_gamma_per_group(device):
    layer = nn.GroupNorm(num_groups=2)
    assert _param_names(layer) == ["beta", "gamma"]
    assert layer.gamma.shape == (2,) and layer.beta.shape == (2,)  # known before any input
    assert layer.gamma.grad_req == "write" and layer.beta.grad_req == "write"
    layer.initialize(ctx=device)
    layer.gamma.set_data(mx.nd.array([2.0, -1.0], ctx=device))
    layer.beta.set_data(mx.nd.array([0.5, 0.25], ctx=device))
    x = _x(device, (2, 4, 3, 2))
    y = layer(x).asnumpy()
    rows = _normalised(x.asnumpy().reshape(2, 2, 12), (2,), 1e-5)
    want = (rows * np.array([2.0, -1.0])[:, None] + np.array([0.5, 0.25])[:, None])
    np.testing.assert_allclose(y, want.reshape(2, 4, 3, 2), rtol=1e-4, atol=1e-5)
    assert repr(layer) == "GroupNorm(eps=1e-05, num_groups=2, center=True, scale=True)"


def test_group_norm_trains(device):
    net = nn.GroupNorm(num_groups=3)
    net.initialize(ctx=device)
    trainer = Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    x, w = _x(device, (2, 6, 4)), _x(device, (2, 6, 4), seed=3)
    with mx.autograd.record():
        loss = (net(x) * w).sum()
    loss.backward()
    trainer.step(1)
    rows = w.asnumpy().reshape(2, 3, 8)
    np.testing.assert_allclose(net.beta.data(device).asnumpy(), -0.1 * rows.sum(axis=(0, 2)),
                               rtol=1e-5, atol=1e-5)


def test_group_norm_rejects_indivisible_channels(device):
    layer = nn.GroupNorm(num_groups=2)
    layer.initialize(ctx=device)
    with pytest.raises(MXCoreError, match=r"GroupNorm 'groupnorm\d+'.*\(2, 5, 3\).*"
                                          r"num_groups=2"):
        layer(_x(device, (2, 5, 3)))


# --- LayerNorm, BatchNormReLU, SyncBatchNorm -----------------------------------------------------
def test_layer_norm_repr_and_channel_error(device):
    layer = nn.LayerNorm()
    layer.initialize(ctx=device)
    layer(_x(device, (2, 3)))
    assert repr(layer) == "LayerNorm(eps=1e-05, axis=-1, center=True, scale=True, in_channels=3)"
    with pytest.raises(MXCoreError, match=r"LayerNorm 'layernorm\d+'.*5 channels on axis -1"):
        layer(_x(device, (2, 5)))


def test_batch_norm_relu_is_relu_of_batch_norm(device):
    x = _x(device, (4, 3, 2, 2))
    fused, plain = nn.BatchNormReLU(), nn.BatchNorm()
    fused.initialize(ctx=device)
    plain.initialize(ctx=device)
    assert _param_names(fused) == ["beta", "gamma", "running_mean", "running_var"]
    with mx.autograd.record():
        a, b = fused(x), plain(x)
    np.testing.assert_allclose(a.asnumpy(), np.maximum(b.asnumpy(), 0), rtol=1e-6, atol=1e-6)
    assert (a.asnumpy() == 0).any() and (a.asnumpy() > 0).any()


def test_sync_batch_norm_on_one_device_is_batch_norm(device):
    sync, plain = nn.SyncBatchNorm(momentum=0.5), nn.BatchNorm(momentum=0.5)
    sync.initialize(ctx=device)
    plain.initialize(ctx=device)
    x = _x(device, (4, 3, 5))
    for layer in (sync, plain):
        with mx.autograd.record():
            y = layer(x)
        y.backward()
    np.testing.assert_allclose(sync.running_var.data(device).asnumpy(),
                               plain.running_var.data(device).asnumpy(), rtol=1e-6)
    assert repr(sync).startswith("SyncBatchNorm(eps=1e-05, momentum=0.5, fix_gamma=False, "
                                 "use_global_stats=False, ndev=1, key='syncbatchnorm")
    with pytest.raises(MXCoreError, match="num_devices=2"):
        nn.SyncBatchNorm(num_devices=2)


# --- Embedding --------------------------------------------------------------------------
def test_embedding_weight_and_lookup(device):
    layer = nn.Embedding(6, 4)
    assert _param_names(layer) == ["weight"] and layer.prefix.startswith("embedding")
    assert layer.weight.shape == (6, 4) and layer.weight.dtype == np.float32
    assert repr(layer) == "Embedding(6 -> 4, float32)"
    layer.initialize(ctx=device)
    idx = mx.nd.array([[0, 5, 2], [7, -1, 2.9]], ctx=device)  # 7 and -1 clip, 2.9 -> 2
    y = layer(idx)
    assert y.shape == (2, 3, 4)
    w = layer.weight.data(device).asnumpy()
    np.testing.assert_array_equal(y.asnumpy(), w[[[0, 5, 2], [5, 0, 2]]])


def test_embedding_gradient_accumulates_repeated_rows(device):
    layer = nn.Embedding(4, 2)
    layer.initialize(ctx=device)
    idx = mx.nd.array([1, 3, 1, 1], ctx=device, dtype="int32")
    g = np.arange(8, dtype=np.float32).reshape(4, 2)
    with mx.autograd.record():
        y = layer(idx)
    y.backward(mx.nd.array(g, ctx=device))
    want = np.zeros((4, 2), np.float32)
    want[1] = g[0] + g[2] + g[3]
    want[3] = g[1]
    np.testing.assert_array_equal(layer.weight.grad(device).asnumpy(), want)


def test_embedding_float16_gradient_accumulates_in_float32(device):
    layer = nn.Embedding(2, 1, dtype="float16", sparse_grad=True)
    layer.initialize(ctx=device)
    idx = mx.nd.zeros((4096,), ctx=device)
    with mx.autograd.record():
        y = layer(idx)
    assert y.dtype == np.float16
    y.backward()
    # a float16 running sum of ones stops at 2048
    np.testing.assert_array_equal(layer.weight.grad(device).asnumpy(), [[4096.0], [0.0]])


def test_embedding_trains_only_the_looked_up_rows(device):
    net = nn.Embedding(5, 3)
    net.initialize(mx.init.One(), ctx=device)
    trainer = Trainer(net.collect_params(), "sgd", {"learning_rate": 0.5})
    with mx.autograd.record():
        loss = net(mx.nd.array([2, 2, 4], ctx=device)).sum()
    loss.backward()
    trainer.step(1)
    w = net.weight.data(device).asnumpy()
    np.testing.assert_allclose(w[:, 0], [1, 1, 0, 1, 0.5])


def test_embedding_wrong_weight_shape_is_an_error(device):
    with pytest.raises(MXCoreError, match=r"weight shape \(4, 3\) must be .* \(5, 3\)"):
        mx.nd.Embedding(mx.nd.array([1], ctx=device), mx.nd.ones((4, 3), ctx=device),
                        input_dim=5, output_dim=3)
