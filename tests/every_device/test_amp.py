"""AMP on every device: a small MLP's forward and backward under amp.init for float16 and
bfloat16 run their products in the 16-bit type, keep float32 parameters and gradients,
and stay close to the float32 run; the hybridized plan computes what the eager calls do."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore import amp, autograd, gluon
from mxcore.gluon import nn

#: max |amp - float32| / max |float32|: float16 keeps 11 significant bits, bfloat16 8
TOL = {"float16": 5e-3, "bfloat16": 2e-2}


def _mlp(device):
    mx.random.seed(1)
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Dense(32, activation="relu", in_units=20), nn.Dense(10, in_units=32))
    net.initialize(mx.init.Xavier(), ctx=device)
    return net


def _run(net, x, y):
    with autograd.record():
        out = net(x)
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(out, y)
    loss.backward()
    return out, loss, {k: p.grad().asnumpy().copy() for k, p in net.collect_params().items()}


def _close(got, want, tol):
    got, want = np.asarray(got, np.float32), np.asarray(want, np.float32)
    assert np.abs(got - want).max() <= tol * np.abs(want).max(), \
        (np.abs(got - want).max(), np.abs(want).max())


@pytest.mark.parametrize("target", ["float16", "bfloat16"])
def test_mlp_under_amp_is_close_to_float32(device, amp_on, target):
    rng = np.random.default_rng(0)
    # inputs and parameters hold values the target type represents exactly, so the
    # float32 run sees the numbers the 16-bit products see: otherwise a pre-activation
    # near zero may change sign in rounding and move relu's gradient by a whole term
    x = mx.nd.array(rng.standard_normal((16, 20)), ctx=device).astype(target).astype("float32")
    y = mx.nd.array(rng.integers(0, 10, 16), ctx=device)
    net = _mlp(device)
    for p in net.collect_params().values():
        p.set_data(p.data().astype(target).astype("float32"))
    out32, loss32, grads32 = _run(net, x, y)
    amp_on(target)
    out, loss, grads = _run(net, x, y)
    assert str(out.dtype) == target and loss.dtype == np.float32
    assert out.context == device
    _close(out.asnumpy(), out32.asnumpy(), TOL[target])
    _close(loss.asnumpy(), loss32.asnumpy(), TOL[target])
    for name, g in grads.items():
        assert net.collect_params()[name].grad().dtype == np.float32
        _close(g, grads32[name], 2 * TOL[target])
    net.hybridize()
    out_h, loss_h, grads_h = _run(net, x, y)
    assert str(out_h.dtype) == target
    _close(out_h.asnumpy(), out.asnumpy(), 1e-3)
    for name, g in grads_h.items():
        _close(g, grads[name], 1e-3)


@pytest.mark.parametrize("target", ["float16", "bfloat16"])
def test_trainer_step_with_loss_scaling(device, amp_on, target):
    amp_on(target)
    net = _mlp(device)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    amp.init_trainer(trainer, amp.LossScaler(init_scale=2.0 ** 8))
    rng = np.random.default_rng(1)
    x = mx.nd.array(rng.standard_normal((16, 20)), ctx=device)
    y = mx.nd.array(rng.integers(0, 10, 16), ctx=device)
    before = [p.data().asnumpy().copy() for p in net.collect_params().values()]
    losses = []
    for _ in range(5):
        with autograd.record():
            loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(x), y)
            with amp.scale_loss(loss, trainer) as scaled:
                scaled.backward()
        trainer.step(16)
        losses.append(float(loss.mean().asscalar()))
    after = [p.data().asnumpy() for p in net.collect_params().values()]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))
    assert all(np.isfinite(a).all() for a in after) and losses[-1] < losses[0]
