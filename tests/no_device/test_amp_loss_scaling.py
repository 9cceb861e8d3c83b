"""Dynamic loss scaling: amp.init_trainer / scale_loss / unscale and the LossScaler
(MXNet's: 2**16 to start, halved on overflow, doubled after 2000 clean steps).  An
overflowing step leaves the parameters unchanged and halves the scale; the steps after
it update again; scaled steps update as unscaled ones do."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore import amp, autograd, gluon
from mxcore.base import MXCoreError
from mxcore.gluon import nn

nd = mx.nd
RNG = np.random.default_rng(3)


def _setup(seed=0, lr=0.1):
    mx.random.seed(seed)
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Dense(8, activation="relu", in_units=6), nn.Dense(3, in_units=8))
    net.initialize(mx.init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr})
    return net, trainer


X = nd.array(RNG.standard_normal((16, 6)))
Y = nd.array(RNG.integers(0, 3, 16))
LOSS = gluon.loss.SoftmaxCrossEntropyLoss()


def _scaled_trainer(trainer, init_scale=2.0 ** 8):
    """AMP's scaler on ``trainer``, started where this small model's float16 weight
    gradients do not overflow (2**16 does: 16 samples x 2**15 in one sum)."""
    scaler = amp.LossScaler(init_scale=init_scale)
    amp.init_trainer(trainer, scaler)
    assert trainer._amp_loss_scaler is scaler
    return scaler


def _weights(net):
    return [p.data().asnumpy().copy() for p in net.collect_params().values()]


def _amp_step(net, trainer, inject=None, scale=True):
    with autograd.record():
        loss = LOSS(net(X), Y)
        if scale:
            with amp.scale_loss(loss, trainer) as scaled:
                scaled.backward()
        else:
            loss.backward()
    if inject is not None:
        grad = net[0].weight.grad()
        grad[0, 0] = inject
    trainer.step(X.shape[0])
    return float(loss.mean().asscalar())


def test_loss_scaler_schedule():
    scaler = amp.LossScaler()
    assert scaler.loss_scale == 2.0 ** 16
    p = gluon.Parameter("w", shape=(3,))
    p.initialize()
    p.grad()[:] = 1.0
    small = amp.LossScaler(init_scale=8.0, scale_window=3, max_scale=32.0)
    for expected in (8.0, 8.0, 16.0, 16.0, 16.0, 32.0, 32.0, 32.0, 32.0):
        assert not small.has_overflow([p])
        assert small.loss_scale == expected
    p.grad()[1] = np.inf
    assert small.has_overflow([p]) and small.loss_scale == 16.0
    p.grad()[1] = np.nan
    assert small.has_overflow([p]) and small.loss_scale == 8.0
    with pytest.raises(ValueError, match="scale_factor > 1"):
        amp.LossScaler(scale_factor=1.0)


def test_overflow_check_is_one_reduction_per_device_and_dtype(amp_on, monkeypatch):
    amp_on("float16")
    net, trainer = _setup()
    amp.init_trainer(trainer)
    calls = []
    real = nd.multi_all_finite

    def counting(*arrays, **kwargs):
        calls.append(len(arrays))
        return real(*arrays, **kwargs)
    monkeypatch.setattr(nd, "multi_all_finite", counting)
    _amp_step(net, trainer)
    assert calls == [4]  # four gradients, one call


def test_overflow_skips_the_update_and_halves_the_scale(amp_on):
    amp_on("float16")
    net, trainer = _setup()
    scaler = _scaled_trainer(trainer)
    w0 = _weights(net)
    _amp_step(net, trainer)
    w1 = _weights(net)
    assert all(not np.array_equal(a, b) for a, b in zip(w0, w1))
    assert scaler.loss_scale == 2.0 ** 8
    _amp_step(net, trainer, inject=np.inf)  # overflow: nothing changes but the scale
    assert all(np.array_equal(a, b) for a, b in zip(w1, _weights(net)))
    assert scaler.loss_scale == 2.0 ** 7
    _amp_step(net, trainer, inject=np.nan)
    assert all(np.array_equal(a, b) for a, b in zip(w1, _weights(net)))
    assert scaler.loss_scale == 2.0 ** 6
    losses = [_amp_step(net, trainer) for _ in range(15)]  # updates again, and learns
    assert not all(np.array_equal(a, b) for a, b in zip(w1, _weights(net)))
    assert scaler.loss_scale == 2.0 ** 6
    assert losses[-1] < losses[0]
    assert all(np.isfinite(w).all() for w in _weights(net))


def test_huge_loss_overflows_in_float16_and_training_recovers(amp_on):
    amp_on("float16")
    """From a scale whose float16 gradients overflow, each step is skipped and halves
    the scale until the gradients fit; then steps update."""
    net, trainer = _setup()
    scaler = _scaled_trainer(trainer, 2.0 ** 40)
    w0 = _weights(net)
    skipped = 0
    with np.errstate(over="ignore", invalid="ignore"):
        while True:
            before = scaler.loss_scale
            _amp_step(net, trainer)
            if not all(np.array_equal(a, b) for a, b in zip(w0, _weights(net))):
                break
            assert scaler.loss_scale == before / 2
            skipped += 1
            assert skipped < 60
    assert skipped >= 24  # 2**40 to at most 2**16 (this model overflows at 2**16)
    assert all(np.isfinite(w).all() for w in _weights(net))


def test_scaled_steps_update_as_unscaled_ones(amp_on):
    """The trainer's gradient rescaling divides by the scale: the same step as without
    loss scaling (float16 products with gradients scaled by a power of two)."""
    amp_on("float16")
    net_a, trainer_a = _setup(seed=5)
    net_b, trainer_b = _setup(seed=5)
    for a, b in zip(_weights(net_a), _weights(net_b)):
        np.testing.assert_array_equal(a, b)
    _scaled_trainer(trainer_a)
    for _ in range(3):
        _amp_step(net_a, trainer_a)
        _amp_step(net_b, trainer_b, scale=False)
    for a, b in zip(_weights(net_a), _weights(net_b)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_scale_loss_of_a_list_and_unscale(amp_on):
    amp_on("float16")
    net, trainer = _setup()
    _scaled_trainer(trainer)
    with autograd.record():
        out = net(X)
        losses = [LOSS(out, Y), LOSS(out, Y) * 0.5]
        with amp.scale_loss(losses, trainer) as scaled:
            assert isinstance(scaled, list) and len(scaled) == 2
            np.testing.assert_allclose(scaled[0].asnumpy(), losses[0].asnumpy() * 2.0 ** 8,
                                       rtol=1e-6)
            autograd.backward(scaled)
    grads = [p.grad().asnumpy().copy() for p in net.collect_params().values()]
    amp.unscale(trainer)
    assert trainer._scale == 1.0
    for g, p in zip(grads, net.collect_params().values()):
        np.testing.assert_allclose(p.grad().asnumpy(), g / 2.0 ** 8, rtol=1e-6)
    w0 = _weights(net)
    unscaled = [p.grad().asnumpy().copy() for p in net.collect_params().values()]
    trainer.step(X.shape[0])
    for w, g, p in zip(w0, unscaled, net.collect_params().values()):
        np.testing.assert_allclose(p.data().asnumpy(), w - 0.1 * g / X.shape[0], rtol=1e-5,
                                   atol=1e-7)


def test_trainer_errors(amp_on):
    net, trainer = _setup()
    with pytest.raises(MXCoreError, match=r"not initialised; call amp.init\(\)"):
        amp.init_trainer(trainer)
    amp_on("float16")
    with pytest.raises(TypeError, match="gluon Trainer, not an Optimizer"):
        amp.init_trainer(mx.optimizer.SGD())
    with pytest.raises(TypeError, match="must be a gluon Trainer, got list"):
        amp.init_trainer([])
    with pytest.raises(TypeError, match="loss_scaler must be an amp.LossScaler, got float"):
        amp.init_trainer(trainer, 2.0 ** 10)
    with pytest.raises(MXCoreError, match=r"no loss scaler; call amp.init_trainer"):
        with amp.scale_loss(nd.ones((1,)), trainer):
            pass
    with pytest.raises(MXCoreError, match="no loss scaler"):
        amp.unscale(trainer)
    amp.init_trainer(trainer)
    first = trainer._amp_loss_scaler
    _, other = _setup()
    amp.init_trainer(other)  # each further trainer gets a scaler of its own
    assert other._amp_loss_scaler is not first
