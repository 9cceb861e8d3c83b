"""Several devices of one process (cpu(0), cpu(1), as MXNet allows): data parallelism
with split_and_load and the Trainer's kvstore, and model parallelism with blocks on
different devices joined by differentiable copies, both equal to one device."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore import autograd, gluon

nd = mx.nd
DEVICES = [mx.cpu(0), mx.cpu(1)]


def _batches(steps=4, size=8):
    rng = np.random.default_rng(1)
    return [(rng.standard_normal((size, 5)).astype(np.float32),
             rng.integers(0, 3, size).astype(np.float32)) for _ in range(steps)]


def _layers():
    mx.random.seed(5)
    first = gluon.nn.Dense(6, activation="tanh", in_units=5)
    second = gluon.nn.Dense(3, in_units=6)
    first.initialize(mx.init.Xavier())
    second.initialize(mx.init.Xavier())
    return first, second


def _one_device():
    first, second = _layers()
    params = {**first.collect_params(), **second.collect_params()}
    trainer = gluon.Trainer(params, "sgd", {"learning_rate": 0.2, "momentum": 0.5})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for x, y in _batches():
        with autograd.record():
            loss = loss_fn(second(first(nd.array(x))), nd.array(y))
        loss.backward()
        trainer.step(len(x))
    return [v.data().asnumpy() for v in params.values()]  # in layer order


@pytest.mark.parametrize("kvstore", ["device", "local"])
def test_data_parallel_over_two_devices_equals_one(kvstore):
    first, second = _layers()
    net = gluon.nn.Sequential()
    net.add(first, second)
    for p in net.collect_params().values():
        p.reset_ctx(DEVICES)
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            {"learning_rate": 0.2, "momentum": 0.5}, kvstore=kvstore)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for x, y in _batches():
        xs = gluon.utils.split_and_load(x, DEVICES)
        ys = gluon.utils.split_and_load(y, DEVICES)
        with autograd.record():
            losses = [loss_fn(net(a), b) for a, b in zip(xs, ys)]
        autograd.backward(losses)
        trainer.step(len(x))
    want = _one_device()
    for p, w in zip(net.collect_params().values(), want):
        copies = [p.data(d).asnumpy() for d in DEVICES]
        np.testing.assert_array_equal(copies[0], copies[1])  # kept identical
        np.testing.assert_allclose(copies[0], w, rtol=1e-5, atol=1e-6, err_msg=p.name)


def test_model_parallel_blocks_on_two_devices_equal_one():
    first, second = _layers()
    second.collect_params().reset_ctx(DEVICES[1])
    # a Trainer per device group: a Trainer's parameters share their devices (as MXNet's)
    trainers = [gluon.Trainer(block.collect_params(), "sgd",
                              {"learning_rate": 0.2, "momentum": 0.5})
                for block in (first, second)]
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for x, y in _batches():
        with autograd.record():
            hidden = first(nd.array(x, ctx=DEVICES[0]))
            out = second(hidden.as_in_context(DEVICES[1]))   # the copy is differentiated
            loss = loss_fn(out, nd.array(y, ctx=DEVICES[1]))
        loss.backward()
        for trainer in trainers:
            trainer.step(len(x))
    assert second.weight.data().context == DEVICES[1]
    params = [*first.collect_params().values(), *second.collect_params().values()]
    for p, w in zip(params, _one_device()):
        np.testing.assert_allclose(p.data().asnumpy(), w, rtol=1e-5, atol=1e-6, err_msg=p.name)
