"""Blocks, parameters, layers and parameter files."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import mxcore as mx
from mxcore import gluon
from mxcore.base import MXCoreError
from mxcore.gluon import nn

nd = mx.nd


def _mlp():
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Dense(8, activation="relu"))
        net.add(nn.Dense(3))
    return net


def test_deferred_initialisation_and_naming(device):
    net = _mlp()
    net.initialize(mx.init.Xavier(), ctx=device)
    names = list(net.collect_params().keys())
    assert len(names) == 4 and names[0].endswith("dense0_weight")
    w = net.collect_params()[names[0]]
    assert w.shape == (8, 0)
    with pytest.raises(gluon.DeferredInitializationError):
        w.data()
    out = net(nd.ones((2, 5), ctx=device))
    assert out.shape == (2, 3) and w.shape == (8, 5) and w.data().context == device
    assert len(net.collect_params(".*bias")) == 2
    assert len(net.collect_params("dense1")) == 0  # regex matches from the start
    assert len(net.collect_params(".*dense1_.*")) == 2


def test_dense_matches_numpy(device):
    layer = nn.Dense(4, in_units=3, activation="tanh")
    layer.initialize(ctx=device)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    w, b = layer.weight.data().asnumpy(), layer.bias.data().asnumpy()
    np.testing.assert_allclose(layer(nd.array(x, ctx=device)).asnumpy(), np.tanh(x @ w.T + b),
                               rtol=1e-5, atol=1e-6)
    flat = nn.Dense(2, flatten=False, in_units=3)
    flat.initialize(ctx=device)
    assert flat(nd.ones((4, 6, 3), ctx=device)).shape == (4, 6, 2)
    assert "Dense(3 -> 4, Activation(tanh))" == repr(layer)


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh", "softrelu", "softsign"])
def test_dense_runs_its_activation_inside_fully_connected(device, act):
    """Dense(activation=...) is one fully_connected call with act_type, with the
    values and gradients of FullyConnected followed by Activation; a hook on the
    activation block keeps it a block of its own (the hook must see its call)."""
    from mxcore import autograd, profiler
    layer = nn.Dense(4, in_units=3, activation=act)
    layer.initialize(mx.init.Xavier(), ctx=device)
    x = nd.array(np.random.default_rng(1).normal(size=(5, 3)), ctx=device, dtype="float32")
    w, b = layer.weight.data(), layer.bias.data()
    profiler.set_state("run")
    try:
        with autograd.record():
            y = layer(x)
        y.backward(nd.ones_like(y) * 0.5)
    finally:
        profiler.set_state("stop")
    table = profiler.dumps(format="json", reset=True)
    called = set(json.loads(table)["Time"]["operator"])
    assert "FullyConnected" in called and act not in called and "Activation" not in called
    gw = layer.weight.grad().asnumpy()
    ref_w = w.copy()
    ref_w.attach_grad()
    with autograd.record():
        ref = nd.Activation(nd.FullyConnected(x, ref_w, b), act_type=act)
    ref.backward(nd.ones_like(ref) * 0.5)
    np.testing.assert_allclose(y.asnumpy(), ref.asnumpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gw, ref_w.grad.asnumpy(), rtol=1e-5, atol=1e-6)

    seen = []
    layer.act.register_forward_hook(lambda block, inputs, out: seen.append(out.shape))
    np.testing.assert_allclose(layer(x).asnumpy(), ref.asnumpy(), rtol=1e-6, atol=1e-7)
    assert seen == [(5, 4)]


def test_initializer_precedence_and_reinit(device):
    layer = nn.Dense(2, in_units=2, weight_initializer=mx.init.Constant(0.5),
                     bias_initializer="ones")
    layer.initialize(mx.init.Zero(), ctx=device)
    assert (layer.weight.data().asnumpy() == 0.5).all()
    assert (layer.bias.data().asnumpy() == 1).all()
    with pytest.warns(UserWarning, match="already initialized"):
        layer.initialize(ctx=device)
    layer.weight.init = None
    layer.initialize(mx.init.Zero(), ctx=device, force_reinit=True)
    assert (layer.weight.data().asnumpy() == 0).all()


def test_gradients_zero_grad_and_grad_req(device):
    net = _mlp()
    net.initialize(ctx=device)
    x = nd.ones((2, 4), ctx=device)
    with mx.autograd.record():
        y = net(x).sum()
    y.backward()
    params = list(net.collect_params().values())
    assert any(np.abs(p.grad().asnumpy()).sum() > 0 for p in params)
    net.zero_grad()
    assert all(np.abs(p.grad().asnumpy()).sum() == 0 for p in params)
    net.collect_params().setattr("grad_req", "null")
    with pytest.raises(MXCoreError, match="grad_req is 'null'"):
        params[0].grad()


def test_layers_forward(device):
    x = nd.array([[-2.0, -0.5, 0.5, 2.0]], ctx=device)
    xv = x.asnumpy()
    np.testing.assert_allclose(nn.LeakyReLU(0.1)(x).asnumpy(), np.where(xv > 0, xv, 0.1 * xv))
    np.testing.assert_allclose(nn.ELU(0.5)(x).asnumpy(), np.where(xv > 0, xv, 0.5 * np.expm1(xv)),
                               rtol=1e-6)
    np.testing.assert_allclose(nn.Swish()(x).asnumpy(), xv / (1 + np.exp(-xv)), rtol=1e-6)
    np.testing.assert_allclose(nn.Activation("softsign")(x).asnumpy(), xv / (1 + np.abs(xv)))
    assert nn.SELU()(x).shape == (1, 4) and nn.GELU()(x).shape == (1, 4)
    prelu = nn.PReLU(in_channels=1)
    prelu.initialize(ctx=device)
    np.testing.assert_allclose(prelu(x).asnumpy(), np.where(xv > 0, xv, 0.25 * xv))
    assert nn.Flatten()(nd.ones((2, 3, 4), ctx=device)).shape == (2, 12)
    assert nn.Lambda("tanh")(x).shape == (1, 4)
    assert nn.HybridLambda(lambda F, v: F.relu(v))(x).asnumpy().min() == 0


def test_dropout_train_and_predict(device):
    mx.random.seed(3)
    drop = nn.Dropout(0.5)
    x = nd.ones((100, 100), ctx=device)
    assert (drop(x).asnumpy() == 1).all()  # predict mode: identity
    with mx.autograd.record():
        y = drop(x).asnumpy()
    kept = y != 0
    assert 0.4 < kept.mean() < 0.6 and np.allclose(y[kept], 2.0)


def test_sequential_indexing_and_hooks(device):
    net = nn.Sequential()
    net.add(nn.Dense(4), nn.Activation("relu"), nn.Dense(2))
    net.initialize(ctx=device)
    assert len(net) == 3 and isinstance(net[1], nn.Activation) and len(net[:2]) == 2
    seen = []
    handle = net[0].register_forward_hook(lambda blk, args, out: seen.append(out.shape))
    net(nd.ones((3, 5), ctx=device))
    handle.detach()
    net(nd.ones((3, 5), ctx=device))
    assert seen == [(3, 4)]
    with pytest.raises(MXCoreError, match="HybridBlocks"):
        nn.HybridSequential().add(nn.Lambda("relu"))


def test_save_load_round_trip_is_exact(device, tmp_path):
    net = _mlp()
    net.initialize(mx.init.Xavier(), ctx=device)
    x = nd.random.normal(shape=(2, 6), ctx=device)
    expect = net(x).asnumpy()
    path = str(tmp_path / "model.safetensors")
    net.save_parameters(path)
    other = _mlp()
    other.load_parameters(path, ctx=device)
    np.testing.assert_array_equal(other(x).asnumpy(), expect)
    assert [f for f in os.listdir(tmp_path)] == ["model.safetensors"]  # no temp files left


def _trained_pair(device, tmp_path):
    net = _mlp()
    net.initialize(ctx=device)
    net(nd.ones((1, 6), ctx=device))
    path = str(tmp_path / "p.safetensors")
    net.save_parameters(path)
    before = {k: v.data().asnumpy().copy() for k, v in net.collect_params().items()}
    return net, path, before


def _unchanged(net, before):
    for k, v in net.collect_params().items():
        np.testing.assert_array_equal(v.data().asnumpy(), before[k])


def test_truncated_or_corrupted_file_leaves_parameters_unchanged(device, tmp_path):
    net, path, before = _trained_pair(device, tmp_path)
    blob = open(path, "rb").read()
    for i, bad in enumerate([blob[: len(blob) // 2], b"\x00" * 16, blob[:8] + b"{garbage"]):
        broken = str(tmp_path / f"broken{i}.safetensors")
        open(broken, "wb").write(bad)
        with pytest.raises(MXCoreError, match=f"cannot read .*broken{i}"):
            net.load_parameters(broken)
        _unchanged(net, before)
    with pytest.raises(FileNotFoundError):
        net.load_parameters(str(tmp_path / "missing.safetensors"))


def test_wrong_shape_names_parameter_and_shapes(device, tmp_path):
    net, path, before = _trained_pair(device, tmp_path)
    other = nn.HybridSequential()
    with other.name_scope():
        other.add(nn.Dense(8, activation="relu", in_units=7))
        other.add(nn.Dense(3))
    other.initialize(ctx=device)
    with pytest.raises(MXCoreError, match=r"'0.weight'.*\(8, 6\).*\(8, 7\)"):
        other.load_parameters(path)
    # a failed load changes nothing, even the parameters that did match
    w1 = other[1].weight
    assert w1._data is None or w1.shape[1] in (0, 8)


def test_missing_and_extra_parameters(device, tmp_path):
    net, path, _ = _trained_pair(device, tmp_path)
    bigger = nn.HybridSequential()
    bigger.add(nn.Dense(8, activation="relu"), nn.Dense(3), nn.Dense(2))
    with pytest.raises(MXCoreError, match="lacks.*2.weight"):
        bigger.load_parameters(path)
    bigger.load_parameters(path, allow_missing=True, ctx=device)
    smaller = nn.HybridSequential()
    smaller.add(nn.Dense(8, activation="relu"))
    with pytest.raises(MXCoreError, match="1.weight.*does not have"):
        smaller.load_parameters(path)
    smaller.load_parameters(path, ignore_extra=True, ctx=device)
    assert smaller[0].weight.shape == (8, 6)


def test_cast_and_parameter_dict_save(device, tmp_path):
    net = _mlp()
    net.initialize(ctx=device)
    net(nd.ones((1, 6), ctx=device))
    net.cast("float64")
    assert all(p.data().dtype == np.float64 for p in net.collect_params().values())
    assert net(nd.ones((1, 6), ctx=device, dtype="float64")).dtype == np.float64
    params = net.collect_params()
    path = str(tmp_path / "pd.safetensors")
    params.save(path)
    before = {k: v.data().asnumpy() for k, v in params.items()}
    for p in params.values():
        p.set_data(nd.zeros(p.shape, ctx=device, dtype="float64"))
    params.load(path)
    for k, v in params.items():
        np.testing.assert_array_equal(v.data().asnumpy(), before[k])


def test_nd_save_load(device, tmp_path):
    a, b = nd.arange(6, ctx=device).reshape((2, 3)), nd.ones((2,), ctx=device, dtype="int32")
    nd.save(str(tmp_path / "list.st"), [a, b])
    la = nd.load(str(tmp_path / "list.st"))
    assert isinstance(la, list) and la[1].dtype == np.int32
    np.testing.assert_array_equal(la[0].asnumpy(), a.asnumpy())
    nd.save(str(tmp_path / "dict.st"), {"w": a})
    assert list(nd.load(str(tmp_path / "dict.st"))) == ["w"]
