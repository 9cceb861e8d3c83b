"""gluon.TrainStep: one call per training step gives what the written-out step gives
(record, loss(net(x)), backward, trainer.step): the same losses, gradients and weights,
bit for bit on the CPU, over several steps and input signatures."""
from __future__ import annotations

import numpy as np
import pytest

import hal
import mxcore as mx
from mxcore import autograd, gluon
from mxcore.gluon import nn
from mxcore.gluon.trainer import StaleGradientError

EXACT = {"cpu"}  # elsewhere: the same kernels, compared to float32 rounding


def _mlp():
    net = nn.HybridSequential()
    net.add(nn.Dense(16, activation="relu", in_units=20), nn.Dense(5, in_units=16))
    return net


def _convnet():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, padding=1, in_channels=2), nn.BatchNorm(in_channels=4),
            nn.Activation("relu"), nn.MaxPool2D(2), nn.Flatten(), nn.Dense(5, in_units=64))
    return net


def _pair(make, device, optimizer, opts):
    """Two copies of a network with the same weights, each with its own trainer."""
    nets = []
    for _ in range(2):
        mx.random.seed(7)
        net = make()
        net.initialize(mx.init.Xavier(), ctx=device)
        nets.append((net, gluon.Trainer(net.collect_params(), optimizer, dict(opts))))
    return nets


def _batches(device, shape, n=5, classes=5, sizes=None):
    rs = np.random.RandomState(3)
    sizes = sizes or [shape[0]] * n
    return [(mx.nd.array(rs.randn(b, *shape[1:]), ctx=device),
             mx.nd.array(rs.randint(0, classes, b), ctx=device, dtype="int32")) for b in sizes]


def _same(a, b, device, what):
    a, b = a.asnumpy(), b.asnumpy()
    if device.kind in EXACT:
        assert np.array_equal(a, b), what
    else:
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=what)


def _written_out(loss_fn, net, trainer, *args, batch_size=None):
    """The step TrainStep stands for, as a user writes it; returns the loss."""
    with autograd.record():
        loss = loss_fn(net(*args[:-1]), args[-1])
    loss.backward()
    trainer.step(batch_size or args[0].shape[0])
    return loss


def _compare_params(net_a, net_b, device, grads=True):
    for pa, pb in zip(net_a.collect_params().values(), net_b.collect_params().values()):
        _same(pa.data(device), pb.data(device), device, pa.name)
        if grads and pa.grad_req != "null":
            _same(pa.grad(device), pb.grad(device), device, pa.name + " grad")


@pytest.mark.parametrize("make, shape, optimizer, opts", [
    (_mlp, (8, 20), "sgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-3}),
    (_mlp, (8, 20), "adam", {"learning_rate": 0.01}),
    (_convnet, (6, 2, 8, 8), "sgd", {"learning_rate": 0.05}),
    (_mlp, (8, 20), "sgd", {"clip_gradient": 0.01,
                            "lr_scheduler": mx.lr_scheduler.FactorScheduler(2, 0.5, base_lr=0.1)}),
    (_mlp, (8, 20), "rmsprop", {"learning_rate": 0.01}),
], ids=["mlp-sgd-momentum", "mlp-adam", "convnet-batchnorm", "mlp-clip-scheduler",
        "mlp-rmsprop-unfused"])
def test_equals_the_written_out_step(device, make, shape, optimizer, opts):
    (net_a, tr_a), (net_b, tr_b) = _pair(make, device, optimizer, opts)
    loss_a = gluon.loss.SoftmaxCrossEntropyLoss()
    loss_a.hybridize()
    net_a.hybridize()
    step = gluon.TrainStep(net_b, gluon.loss.SoftmaxCrossEntropyLoss(), tr_b)
    # two signatures: the last batch is smaller (a new trace, then its replay)
    for x, y in _batches(device, shape, sizes=[shape[0]] * 4 + [3, 3]):
        la = _written_out(loss_a, net_a, tr_a, x, y)
        lb = step(x, y)
        assert lb._ag is None  # nothing recorded
        _same(la, lb, device, "loss")
    _compare_params(net_a, net_b, device)
    assert len(step._ready) == 2  # both signatures replay their plan


@pytest.mark.parametrize("optimizer, fused", [("sgd", True), ("adam", True),
                                               ("rmsprop", False)])
def test_one_call_update_or_the_updater(device, optimizer, fused, monkeypatch):
    """On one device, optimizers with a multi-weight op update every weight in one call
    (Trainer._gather_fused), not through the Updater's per-weight layers -- in TrainStep
    and in the written-out step alike; the others go through the Updater."""
    from mxcore.optimizer.optimizer import Updater
    (net, tr), (net2, tr2) = _pair(_mlp, device, optimizer, {"learning_rate": 0.01})
    step = gluon.TrainStep(net, gluon.loss.SoftmaxCrossEntropyLoss(), tr)
    batches = _batches(device, (4, 20), n=3)
    step(*batches[0])  # traced: the first step makes the optimizer's states
    _written_out(gluon.loss.SoftmaxCrossEntropyLoss(), net2, tr2, *batches[0])
    calls = []
    real = Updater.__call__
    monkeypatch.setattr(Updater, "__call__",
                        lambda self, *a: (calls.append(len(a[0])), real(self, *a))[1])
    step(*batches[1])
    _written_out(gluon.loss.SoftmaxCrossEntropyLoss(), net2, tr2, *batches[1])
    assert calls == ([] if fused else [4, 4])
    # it updated: every gradient taken, none left fresh for a later step
    assert all(not p.data(device)._ag.fresh for p in net.collect_params().values())
    _compare_params(net, net2, device)


def test_kvstore_trainer_takes_trainer_step(device):
    """A trainer with a kvstore: the update is trainer.step's own (the store's path)."""
    nets = []
    for _ in range(2):
        mx.random.seed(7)
        net = _mlp()
        net.initialize(mx.init.Xavier(), ctx=device)
        nets.append((net, gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1},
                                        kvstore=mx.kv.create("local"),
                                        update_on_kvstore=True)))
    (net_a, tr_a), (net_b, tr_b) = nets
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    step = gluon.TrainStep(net_b, loss, tr_b)
    for x, y in _batches(device, (4, 20), n=3):
        la = _written_out(loss, net_a, tr_a, x, y)
        _same(la, step(x, y), device, "loss")
    assert tr_b._kvstore is not None and len(step._ready) == 1
    _compare_params(net_a, net_b, device)


def test_unhybridized_network_left_as_it_is(device):
    (net_a, tr_a), (net_b, tr_b) = _pair(_mlp, device, "sgd", {"learning_rate": 0.1})
    loss = gluon.loss.L2Loss()
    step = gluon.TrainStep(net_b, loss, tr_b)
    rs = np.random.RandomState(0)
    for _ in range(3):
        x = mx.nd.array(rs.randn(4, 20), ctx=device)
        y = mx.nd.array(rs.randn(4, 5), ctx=device)
        la = _written_out(loss, net_a, tr_a, x, y)
        _same(la, step(x, y), device, "loss")
    _compare_params(net_a, net_b, device)
    assert not net_b._active and not loss._active  # the step hybridized neither


def test_several_inputs_and_batch_size(device):
    class Two(gluon.HybridBlock):
        def __init__(self):
            super().__init__()
            self.a = nn.Dense(3, in_units=4)
            self.b = nn.Dense(3, in_units=2)

        def hybrid_forward(self, F, x, z):
            return self.a(x) * self.b(z)

    nets = []
    for _ in range(2):
        mx.random.seed(1)
        net = Two()
        net.initialize(ctx=device)
        nets.append((net, gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})))
    (net_a, tr_a), (net_b, tr_b) = nets
    loss = gluon.loss.L1Loss()
    step = gluon.TrainStep(net_b, loss, tr_b)
    rs = np.random.RandomState(2)
    for _ in range(3):
        x, z, y = (mx.nd.array(rs.randn(5, n), ctx=device) for n in (4, 2, 3))
        la = _written_out(loss, net_a, tr_a, x, z, y, batch_size=10)
        _same(la, step(x, z, y, batch_size=10), device, "loss")
    _compare_params(net_a, net_b, device)


def test_grad_req_add_and_null(device):
    (net_a, tr_a), (net_b, tr_b) = _pair(_mlp, device, "sgd", {"learning_rate": 0.1})
    for net in (net_a, net_b):
        params = list(net.collect_params().values())
        params[0].grad_req = "add"
        params[1].grad_req = "null"
        for p in params:
            if p.grad_req != "null":
                p.zero_grad()
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    step = gluon.TrainStep(net_b, loss, tr_b)
    for x, y in _batches(device, (4, 20), n=3):
        _written_out(loss, net_a, tr_a, x, y)
        step(x, y)
    _compare_params(net_a, net_b, device)
    first = list(net_b.collect_params().values())[0]
    assert float(first.grad(device).abs().sum().asscalar()) > 0  # accumulated, not reset


def test_recording_or_tracked_inputs_take_the_recorded_path(device):
    (net_a, tr_a), (net_b, tr_b) = _pair(_mlp, device, "sgd", {"learning_rate": 0.1})
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    step = gluon.TrainStep(net_b, loss, tr_b)
    (x, y), = _batches(device, (4, 20), n=1)
    x.attach_grad()
    step(x, y)  # an input with a gradient: backward reaches it
    xa = x.copy()
    xa.attach_grad()
    _written_out(loss, net_a, tr_a, xa, y)
    _same(xa.grad, x.grad, device, "input gradient")
    assert not step._ready
    with autograd.record():  # inside record(): the traced path, the loss not recorded
        lb = step(x.detach(), y)
    assert lb._ag is None and not step._ready
    la = _written_out(loss, net_a, tr_a, xa.detach(), y)
    _same(la, lb, device, "loss")
    _compare_params(net_a, net_b, device, grads=False)


def test_grad_ready_hooks_and_stale_gradients(device):
    (net, tr), _ = _pair(_mlp, device, "sgd", {"learning_rate": 0.1})
    seen = []
    for p in net.collect_params().values():
        autograd.register_grad_ready_hook(p.data(device), lambda a, n=p.name: seen.append(n))
    step = gluon.TrainStep(net, gluon.loss.SoftmaxCrossEntropyLoss(), tr)
    batches = _batches(device, (4, 20), n=3)
    for x, y in batches:
        step(x, y)
    assert len(step._ready) == 1
    assert sorted(seen) == sorted([p.name for p in net.collect_params().values()] * 3)

    class Unused(gluon.HybridBlock):
        def __init__(self):
            super().__init__()
            self.used = nn.Dense(5, in_units=20)
            self.unused = nn.Dense(5, in_units=20)

        def hybrid_forward(self, F, x):
            return self.used(x)

    net2 = Unused()
    net2.initialize(ctx=device)
    step2 = gluon.TrainStep(net2, gluon.loss.SoftmaxCrossEntropyLoss(),
                            gluon.Trainer(net2.collect_params(), "sgd"))
    unused = "|".join(p.name for p in net2.unused.collect_params().values())
    for x, y in batches[:2]:
        with pytest.raises(StaleGradientError, match=f"'({unused})'.*not been updated"):
            step2(x, y)
    net2.unused.weight.grad_req = net2.unused.bias.grad_req = "null"
    for x, y in batches:  # traced, then replayed
        step2(x, y)
    assert len(step2._ready) == 1


def test_bad_arguments(device):
    net = _mlp()
    net.initialize(ctx=device)
    tr = gluon.Trainer(net.collect_params(), "sgd")
    with pytest.raises(TypeError, match="network and a loss"):
        gluon.TrainStep(net, "l2", tr)
    with pytest.raises(TypeError, match="gluon.Trainer"):
        gluon.TrainStep(net, gluon.loss.L2Loss(), "sgd")
    step = gluon.TrainStep(net, gluon.loss.L2Loss(), tr)
    with pytest.raises(TypeError, match="inputs and a label"):
        step(mx.nd.ones((2, 20), ctx=device))


def test_static_step_replays_device_graphs(device):
    """static_alloc + static_shape: on a device that captures (CUDA; the interpreted
    device stands in by rerunning), the forward-backward program and the optimizer's
    call are captured once and replayed; a new learning rate captures the call again."""
    from mxcore.device import device_type
    dt = device_type(device)
    (net_a, tr_a), (net_b, tr_b) = _pair(_mlp, device, "sgd",
                                          {"learning_rate": 0.1, "momentum": 0.9})
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    step = gluon.TrainStep(net_b, loss, tr_b, static_alloc=True, static_shape=True)
    graphs = []
    for i, (x, y) in enumerate(_batches(device, (8, 20), n=6)):
        if i == 4:  # a new learning rate: the optimizer's call is captured again
            tr_a.set_learning_rate(0.05)
            tr_b.set_learning_rate(0.05)
        la = _written_out(loss, net_a, tr_a, x, y)
        lb = step(x, y)
        _same(la, lb, device, f"loss of step {i}")
        graphs.append(getattr(dt, "captures", 0))
    _compare_params(net_a, net_b, device)
    (_, _, _, g), = step._ready.values()
    if type(dt).capture is hal.DeviceType.capture:  # the CPU: no graphs, plain replays
        assert g is None and graphs == [0] * 6
        return
    from mxcore import engine
    if getattr(engine.current(), "asynchronous", False):  # queued kernels: no capture
        assert graphs == [graphs[0]] * 6
        return
    # step 0 traced, 1 uncaptured, 2 captures both graphs, 3 replays, 4 captures the
    # optimizer's call again (new rate), 5 replays
    assert [b - graphs[0] for b in graphs] == [0, 0, 2, 2, 3, 3]
    weights = [p.data(device) for p in net_b.collect_params().values()]
    assert all(w._ag.grad._data is g.vals[s]  # .grad is the graph's buffer
               for w, s in zip(weights, [g.plan._step.grads[k] for k, _ in
                                         step._ready[next(iter(step._ready))][2]]))
    # a dropout network keeps the uncaptured replay
    drop = nn.HybridSequential()
    drop.add(nn.Dense(4, in_units=20), nn.Dropout(0.5))
    drop.initialize(ctx=device)
    step2 = gluon.TrainStep(drop, gluon.loss.L2Loss(), gluon.Trainer(drop.collect_params(),
                                                                      "sgd"),
                            static_alloc=True, static_shape=True)
    for x, _ in _batches(device, (8, 20), n=2):
        step2(x, mx.nd.zeros((8, 4), ctx=device))
    assert all(r[3] is None for r in step2._ready.values())
