"""The ``onnxruntime`` graph backend of mxcore-arm: ``optimize_for(x, backend=
'onnxruntime')`` and ``hybridize(backend='onnxruntime')`` run a block's inference graph
in onnxruntime sessions, with the same results as mxcore's own plan (float32
tolerance); training and recording calls stay in mxcore; parameters are read on every
call; steps the exporter cannot translate stay in mxcore between onnxruntime runs."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import mxcore as mx  # noqa: E402
from mxcore import autograd  # noqa: E402
from mxcore.gluon import nn  # noqa: E402

backend = pytest.importorskip("mxcore_arm.backend")

BACKEND = "onnxruntime"


def _ort_steps(net):
    return [st for st in net.last_plan().forward.steps if backend.runner_of(st) is not None]


def _mlp():
    net = nn.HybridSequential()
    net.add(nn.Dense(128, activation="relu"), nn.Dense(64, activation="sigmoid"),
            nn.Dense(10))
    return net


def _lenet():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(6, kernel_size=5, padding=2, activation="relu"),
            nn.MaxPool2D(pool_size=2, strides=2),
            nn.Conv2D(16, kernel_size=5, activation="relu"),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Flatten(), nn.Dense(120, activation="relu"), nn.Dense(84, activation="tanh"),
            nn.Dense(10))
    return net


def _bn_dropout():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(8, kernel_size=3, strides=2, padding=1, groups=1), nn.BatchNorm(),
            nn.Activation("relu"), nn.Conv2D(8, kernel_size=3, padding=1, groups=4),
            nn.BatchNorm(), nn.Activation("relu"), nn.GlobalAvgPool2D(), nn.Flatten(),
            nn.Dropout(0.5), nn.Dense(32), nn.BatchNorm(), nn.Dropout(0.2), nn.Dense(5))
    return net


def _initialised(make, shape, seed=0):
    mx.random.seed(seed)
    net = make()
    net.initialize(mx.init.Xavier())
    x = mx.nd.array(np.random.RandomState(seed).randn(*shape).astype(np.float32))
    net(x)  # deferred shapes
    for p in net.collect_params().values():  # moving statistics away from 0/1
        if p.name.endswith(("running_mean", "running_var")):
            v = np.random.RandomState(1).rand(*p.shape).astype(np.float32)
            p.set_data(mx.nd.array(v + 0.5 if p.name.endswith("var") else v - 0.5))
    return net, x


@pytest.mark.parametrize("make,shape", [(_mlp, (8, 784)), (_lenet, (4, 1, 28, 28)),
                                        (_bn_dropout, (3, 3, 16, 16))],
                         ids=["mlp", "lenet", "batchnorm_dropout"])
def test_outputs_equal_mxcore(make, shape):
    net, x = _initialised(make, shape)
    net.hybridize()
    want = net(x).asnumpy()
    got = net.optimize_for(x, backend=BACKEND)
    np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-4, atol=1e-5)
    steps = _ort_steps(net)
    # the whole inference graph is one onnxruntime step, and it ran
    assert len(net.last_plan().forward.steps) == 1 and len(steps) == 1
    runner = backend.runner_of(steps[0])
    calls = runner.calls
    again = net(x + 1)
    assert runner.calls == calls + 1
    net.hybridize(backend=None)
    np.testing.assert_allclose(again.asnumpy(), net(x + 1).asnumpy(), rtol=1e-4, atol=1e-5)


def test_hybridize_with_backend_and_new_shapes():
    net, x = _initialised(_mlp, (2, 784))
    want = net(x).asnumpy()
    net.hybridize(backend=BACKEND)
    np.testing.assert_allclose(net(x).asnumpy(), want, rtol=1e-4, atol=1e-5)
    assert _ort_steps(net)
    x5 = mx.nd.array(np.random.rand(5, 784))  # a new signature: a plan (and session) of its own
    assert net(x5).shape == (5, 10)


def test_backend_is_listed():
    from mxcore.graph import passes
    assert BACKEND in passes.backends()


def test_training_and_recording_stay_in_mxcore():
    net, x = _initialised(_bn_dropout, (3, 3, 16, 16))
    ref, _ = _initialised(_bn_dropout, (3, 3, 16, 16))
    net.optimize_for(x, backend=BACKEND)
    assert _ort_steps(net)
    ref.hybridize()
    params = [p for p in net.collect_params().values() if p.grad_req != "null"]
    ref_params = [p for p in ref.collect_params().values() if p.grad_req != "null"]
    # predict-mode recording first: a training step moves BatchNorm's statistics by
    # batch statistics after a random dropout, so the two nets part after it
    for mode in (False, True):
        with autograd.record(train_mode=mode):
            loss = (net(x) ** 2).sum()
        loss.backward()
        with autograd.record(train_mode=mode):
            ref_loss = (ref(x) ** 2).sum()
        ref_loss.backward()
        assert not _ort_steps(net)
        grads = [p.grad().asnumpy() for p in params]
        assert all(np.isfinite(g).all() for g in grads) and any(g.any() for g in grads)
        if not mode:
            # training programs never reach inference passes; recording ones are left
            assert any("left to mxcore" in n for n in net.last_plan().forward.notes)
            np.testing.assert_allclose(loss.asnumpy(), ref_loss.asnumpy(), rtol=1e-5)
            for p, q in zip(params, ref_params):
                np.testing.assert_allclose(p.grad().asnumpy(), q.grad().asnumpy(),
                                           rtol=1e-4, atol=1e-6)
    # inference goes back to onnxruntime
    net(x)
    assert _ort_steps(net)


def test_parameters_changed_after_optimize_for_are_honoured():
    net, x = _initialised(_mlp, (4, 784))
    ref, _ = _initialised(_mlp, (4, 784))
    ref.hybridize()
    first = net.optimize_for(x, backend=BACKEND).asnumpy()
    runner = backend.runner_of(_ort_steps(net)[0])
    for block in (net, ref):
        w = block[2].weight
        w.set_data(w.data() * 2)                  # a new array
        block[2].bias.data()[:] = 3.0             # written in place
    got = net(x).asnumpy()
    assert not np.allclose(got, first, atol=1e-3)
    np.testing.assert_allclose(got, ref(x).asnumpy(), rtol=1e-4, atol=1e-5)
    # parameters are session inputs: the same session served the changed parameters
    assert backend.runner_of(_ort_steps(net)[0]) is runner and runner.calls == 2


def test_trainer_step_then_inference():
    net, x = _initialised(_mlp, (4, 784))
    net.optimize_for(x, backend=BACKEND)
    before = net(x).asnumpy()
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.5})
    label = mx.nd.array(np.arange(4) % 10)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    with autograd.record():
        loss = loss_fn(net(x), label)
    loss.backward()
    trainer.step(4)
    after = net(x).asnumpy()
    assert _ort_steps(net) and not np.allclose(after, before)
    net.hybridize(backend=None)
    np.testing.assert_allclose(after, net(x).asnumpy(), rtol=1e-4, atol=1e-5)


class _Erfinv(nn.HybridBlock):
    def hybrid_forward(self, F, x):
        return F.erfinv(F.tanh(x) * 0.5)


def test_unsupported_steps_stay_in_mxcore_between_runs():
    def make():
        net = nn.HybridSequential()
        net.add(nn.Dense(16, activation="tanh"), _Erfinv(), nn.Dense(4))
        return net
    net, x = _initialised(make, (3, 5))
    want = net(x).asnumpy()
    got = net.optimize_for(x, backend=BACKEND).asnumpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    steps = net.last_plan().forward.steps
    assert [backend.runner_of(st) is not None for st in steps] == [True, False, True]
    assert steps[1].op.name == "erfinv"
    notes = " ".join(net.last_plan().forward.notes)
    assert "erfinv stays in mxcore" in notes and "no translation of erfinv" in notes


def test_custom_op_stays_in_mxcore():
    class Twice(mx.operator.CustomOp):
        def forward(self, is_train, req, in_data, out_data, aux):
            self.assign(out_data[0], req[0], in_data[0] * 2)

    @mx.operator.register("arm_test_twice")
    class TwiceProp(mx.operator.CustomOpProp):
        def list_arguments(self):
            return ["data"]

        def infer_shape(self, in_shape):
            return in_shape, in_shape, []

        def create_operator(self, ctx, shapes, dtypes):
            return Twice()

    class Net(nn.HybridBlock):
        def __init__(self):
            super().__init__()
            self.fc = nn.Dense(6)

        def hybrid_forward(self, F, x):
            return F.relu(F.Custom(self.fc(x), op_type="arm_test_twice"))
    net, x = _initialised(Net, (2, 3))
    want = net(x).asnumpy()
    np.testing.assert_allclose(net.optimize_for(x, backend=BACKEND).asnumpy(), want,
                               rtol=1e-5, atol=1e-6)
    kinds = [backend.runner_of(st) is not None for st in net.last_plan().forward.steps]
    assert kinds == [True, False, True]
    assert "Python code" in " ".join(net.last_plan().forward.notes)


def test_graph_debug_compares_against_eager(monkeypatch):
    monkeypatch.setenv("MXCORE_GRAPH_DEBUG", "1")
    net, x = _initialised(_lenet, (2, 1, 28, 28))
    want = net(x).asnumpy()
    np.testing.assert_allclose(net.optimize_for(x, backend=BACKEND).asnumpy(), want,
                               rtol=1e-4, atol=1e-5)


def test_threads_variable_is_checked(monkeypatch):
    from mxcore_arm import sessions
    monkeypatch.setenv("MXCORE_CPU_THREADS", "1")
    assert sessions.threads() == 1
    monkeypatch.setenv("MXCORE_CPU_THREADS", "many")
    with pytest.raises(ValueError, match="MXCORE_CPU_THREADS"):
        sessions.threads()
    monkeypatch.delenv("MXCORE_CPU_THREADS")
    assert sessions.threads() == 0
    assert sessions.providers()[-1] == "CPUExecutionProvider"
