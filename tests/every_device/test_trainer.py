"""gluon.Trainer: steps, learning rate, stale gradients, states files, devices."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore import gluon
from mxcore.base import MXCoreError
from mxcore.gluon import nn

nd = mx.nd


def _setup(device, optimizer="sgd", params=None):
    net = nn.Dense(2, in_units=3)
    net.initialize(mx.init.Constant(0.5), ctx=device)
    trainer = gluon.Trainer(net.collect_params(), optimizer,
                            params or {"learning_rate": 0.1})
    return net, trainer


def _step(net, trainer, device, batch=4):
    x = nd.array(np.arange(batch * 3).reshape(batch, 3) / 10.0, ctx=device, dtype="float32")
    with mx.autograd.record():
        loss = (net(x) ** 2).sum()
    loss.backward()
    grads = [p.grad().asnumpy().copy() for p in net.collect_params().values()]
    trainer.step(batch)
    return grads


def test_sgd_step_matches_formula(device):
    net, trainer = _setup(device)
    before = [p.data().asnumpy().copy() for p in net.collect_params().values()]
    grads = _step(net, trainer, device)
    for p, w0, g in zip(net.collect_params().values(), before, grads):
        np.testing.assert_allclose(p.data().asnumpy(), w0 - 0.1 * g / 4, rtol=1e-6)


def test_learning_rate_and_multipliers(device):
    net, trainer = _setup(device)
    assert trainer.learning_rate == pytest.approx(0.1)
    trainer.set_learning_rate(0.5)
    assert trainer.learning_rate == pytest.approx(0.5)
    net.bias.lr_mult = 0.0
    b0 = net.bias.data().asnumpy().copy()
    _step(net, trainer, device)
    np.testing.assert_array_equal(net.bias.data().asnumpy(), b0)


def test_stale_gradient_is_an_error(device):
    net, trainer = _setup(device)
    _step(net, trainer, device)
    with pytest.raises(MXCoreError, match="has not been updated by backward"):
        trainer.step(4)
    w0 = net.weight.data().asnumpy().copy()
    trainer.step(4, ignore_stale_grad=True)   # skips stale parameters
    np.testing.assert_array_equal(net.weight.data().asnumpy(), w0)


def test_save_and_load_states_round_trip(device, tmp_path):
    net, trainer = _setup(device, "adam", {"learning_rate": 0.01})
    for _ in range(3):
        _step(net, trainer, device)
    path = str(tmp_path / "trainer.states")
    trainer.save_states(path)
    net.save_parameters(str(tmp_path / "net.params"))
    _step(net, trainer, device)                 # the reference continues one step
    expected = [p.data().asnumpy().copy() for p in net.collect_params().values()]
    net2, trainer2 = _setup(device, "adam", {"learning_rate": 0.01})
    net2.load_parameters(str(tmp_path / "net.params"), ctx=device)
    trainer2.load_states(path)
    _step(net2, trainer2, device)               # and so does the restored copy
    for p, e in zip(net2.collect_params().values(), expected):
        np.testing.assert_allclose(p.data().asnumpy(), e, rtol=1e-6)
    assert trainer2.optimizer.num_update == trainer.optimizer.num_update
    # without the states, Adam's moments restart and the step differs
    net3, trainer3 = _setup(device, "adam", {"learning_rate": 0.01})
    net3.load_parameters(str(tmp_path / "net.params"), ctx=device)
    _step(net3, trainer3, device)
    assert not np.allclose(net3.weight.data().asnumpy(), expected[0], rtol=1e-6)
    with pytest.raises(MXCoreError, match="not a trainer state file"):
        net.save_parameters(str(tmp_path / "p"))
        trainer.load_states(str(tmp_path / "p"))


def test_bad_arguments():
    with pytest.raises(ValueError, match="Parameter"):
        gluon.Trainer([object()], "sgd")
    with pytest.raises(ValueError):
        gluon.Trainer({}, mx.optimizer.SGD(), {"learning_rate": 0.1})


def test_two_devices_allreduce():
    """Data parallel on two CPU device ids: gradients are summed, copies agree."""
    ctxs = [mx.cpu(0), mx.cpu(1)]
    net = nn.Dense(1, in_units=2)
    net.initialize(mx.init.One(), ctx=ctxs)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    xs = [nd.array([[1.0, 2.0]], ctx=c) for c in ctxs]
    xs[1] = nd.array([[3.0, 4.0]], ctx=ctxs[1])
    with mx.autograd.record():
        losses = [net(x).sum() for x in xs]
    for loss in losses:
        loss.backward()
    trainer.step(2)
    w = [net.weight.data(c).asnumpy() for c in ctxs]
    np.testing.assert_allclose(w[0], w[1])
    np.testing.assert_allclose(w[0], 1 - 0.1 * (np.array([[1.0, 2.0]]) + [[3.0, 4.0]]) / 2)
