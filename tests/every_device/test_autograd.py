"""Autograd semantics beyond single-op gradients (those are in the op table)."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError

nd = mx.nd
ag = mx.autograd


def test_scopes_and_flags():
    assert not ag.is_recording() and not ag.is_training()
    with ag.record():
        assert ag.is_recording() and ag.is_training()
        with ag.pause():
            assert not ag.is_recording() and not ag.is_training()
        with ag.predict_mode():
            assert ag.is_recording() and not ag.is_training()
    with ag.record(train_mode=False):
        assert ag.is_recording() and not ag.is_training()
    with ag.train_mode():
        assert ag.is_training() and not ag.is_recording()
    assert not ag.is_recording() and not ag.is_training()
    prev = ag.set_recording(True)
    assert prev is False and ag.is_recording()
    ag.set_recording(False)


def test_grad_req_write_add_null(device):
    x = nd.array([1.0, 2.0], ctx=device)
    x.attach_grad()
    for _ in range(2):
        with ag.record():
            y = (x * x).sum()
        y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [2, 4])  # write: overwritten
    x.attach_grad(grad_req="add")
    grad_buffer = x.grad
    for _ in range(3):
        with ag.record():
            y = (x * 3).sum()
        y.backward()
    assert x.grad is grad_buffer  # gradients land in the same buffer
    np.testing.assert_array_equal(x.grad.asnumpy(), [9, 9])
    x.attach_grad(grad_req="null")
    with ag.record():
        y = (x * 3).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [0, 0])
    with pytest.raises(ValueError):
        x.attach_grad("sometimes")


def test_variable_used_twice_and_head_grad(device):
    x = nd.array([1.0, -2.0, 3.0], ctx=device)
    x.attach_grad()
    with ag.record():
        y = x * x + x * 2
    y.backward(nd.array([1.0, 10.0, 0.5], ctx=device))
    np.testing.assert_allclose(x.grad.asnumpy(), (2 * np.array([1, -2, 3]) + 2) * [1, 10, .5])


def test_retain_graph(device):
    x = nd.array([2.0], ctx=device)
    x.attach_grad()
    with ag.record():
        y = nd.exp(x) * 3
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 3 * np.exp([2.0]), rtol=1e-6)
    with pytest.raises(MXCoreError, match="retain_graph"):
        y.backward()


def test_grad_function_does_not_touch_dot_grad(device):
    x = nd.array([1.0, 2.0], ctx=device)
    x.attach_grad()
    with ag.record():
        y = (x ** 3).sum()
    g = ag.grad(y, x, retain_graph=True)
    np.testing.assert_allclose(g.asnumpy(), [3, 12])
    np.testing.assert_array_equal(x.grad.asnumpy(), [0, 0])
    assert isinstance(ag.grad(y, [x]), list)


def test_third_order_derivative(device):
    x = nd.array([0.3, 1.1], ctx=device, dtype="float64")
    x.attach_grad()
    with ag.record():
        y = nd.sin(x).sum()
        g1 = ag.grad(y, x, create_graph=True)
        g2 = ag.grad(g1.sum(), x, create_graph=True)
        s = g2.sum()
    g3 = ag.grad(s, x)
    np.testing.assert_allclose(g1.asnumpy(), np.cos([0.3, 1.1]))
    np.testing.assert_allclose(g2.asnumpy(), -np.sin([0.3, 1.1]))
    np.testing.assert_allclose(g3.asnumpy(), -np.cos([0.3, 1.1]))


def test_detach_and_unrecorded_ops(device):
    x = nd.array([1.0, 2.0], ctx=device)
    x.attach_grad()
    with ag.record():
        y = (x * x.detach()).sum()  # d/dx = x (detached factor is a constant)
        with ag.pause():
            z = x * 100             # not recorded
    assert z._ag is None
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [1, 2])


def test_head_not_recorded_is_a_clear_error(device):
    x = nd.array([1.0], ctx=device)
    with pytest.raises(MXCoreError, match="attached gradients"):
        (x * 2).backward()


def test_attach_grad_on_intermediate(device):
    x = nd.array([1.0, 2.0], ctx=device)
    x.attach_grad()
    with ag.record():
        h = x * 2
    h.attach_grad()                  # h becomes a leaf of a new graph
    with ag.record():
        y = (h * h).sum()
    y.backward()
    np.testing.assert_array_equal(h.grad.asnumpy(), [4, 8])
    np.testing.assert_array_equal(x.grad.asnumpy(), [0, 0])


def test_inplace_on_recorded_array_is_refused(device):
    x = nd.array([1.0], ctx=device)
    x.attach_grad()
    with ag.record():
        y = x * 2
        with pytest.raises(MXCoreError, match="autograd"):
            y[0] = 3
        with pytest.raises(MXCoreError, match="in-place"):
            y += 1


def test_mark_variables(device):
    x = nd.array([3.0], ctx=device)
    g = nd.zeros((1,), ctx=device)
    ag.mark_variables([x], [g])
    with ag.record():
        y = x * x
    y.backward()
    assert g.asscalar() == 6.0 and x.grad is g


def test_cross_device_copy_is_differentiable(device):
    x = nd.array([1.0, 2.0], ctx=device)
    x.attach_grad()
    with ag.record():
        y = (x.copyto(mx.cpu(0)) * 3).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [3, 3])


def test_stop_gradient(device):
    x = nd.array([1.0, 2.0], ctx=device)
    x.attach_grad()
    with ag.record():
        y = (x * nd.stop_gradient(x * 3) + nd.BlockGrad(x)).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [3, 6])


def test_gradient_buffers_never_alias(device):
    """Backward may hand a leaf a freshly computed buffer instead of copying,
    but never one shared with another gradient, a head gradient or the graph."""
    x = nd.array([1.0, 2.0], ctx=device)
    y = nd.array([3.0, 4.0], ctx=device)
    x.attach_grad()
    y.attach_grad()
    head = nd.array([1.0, 1.0], ctx=device)
    with ag.record():
        z = x + y                     # both leaves receive the same gradient array
    z.backward(head)
    x.grad[0] = 100.0
    assert y.grad.asnumpy().tolist() == [1.0, 1.0]
    assert head.asnumpy().tolist() == [1.0, 1.0]
    with ag.record():
        w = x * 1.0
    w.backward()
    x.grad[:] = 7.0
    assert w.asnumpy().tolist() == [1.0, 2.0]


def test_constant_inputs_get_no_gradient_work(device):
    """A layer's input data needs no gradient: the rule skips it, and the
    weight and bias gradients are still right."""
    rng = np.random.default_rng(0)
    xv, wv, bv = rng.normal(size=(4, 3)), rng.normal(size=(2, 3)), rng.normal(size=2)
    x = nd.array(xv, ctx=device, dtype="float64")
    w = nd.array(wv, ctx=device, dtype="float64")
    b = nd.array(bv, ctx=device, dtype="float64")
    w.attach_grad()
    b.attach_grad()
    gv = rng.normal(size=(4, 2))
    with ag.record():
        out = nd.FullyConnected(x, w, b)
    out.backward(nd.array(gv, ctx=device, dtype="float64"))
    np.testing.assert_allclose(w.grad.asnumpy(), gv.T @ xv)
    np.testing.assert_allclose(b.grad.asnumpy(), gv.sum(0))
    with ag.record():
        out = nd.dot(x, w, transpose_b=True)
    out.backward(nd.array(gv, ctx=device, dtype="float64"))
    np.testing.assert_allclose(w.grad.asnumpy(), gv.T @ xv)


def test_custom_function(device):
    class Sigmoid(ag.Function):
        def forward(self, x):
            y = 1 / (1 + nd.exp(-x))
            self.save_for_backward(y)
            return y

        def backward(self, dy):
            (y,) = self.saved_tensors
            return dy * y * (1 - y)

    class Split2(ag.Function):
        def forward(self, x):
            return x * 2, x * 3

        def backward(self, g1, g2):
            return g1 * 2 + g2 * 3

    x = nd.array([-1.0, 0.5, 2.0], ctx=device, dtype="float64")
    x.attach_grad()
    with ag.record():
        y = Sigmoid()(x)
        a, b = Split2()(x)
        loss = (y + a * b).sum()
    loss.backward()
    s = 1 / (1 + np.exp(-x.asnumpy()))
    np.testing.assert_allclose(y.asnumpy(), s)
    np.testing.assert_allclose(x.grad.asnumpy(), s * (1 - s) + 12 * x.asnumpy())
    with ag.record():
        only_a, _ = Split2()(x)      # an unused output gets a zero gradient
        total = only_a.sum()
    total.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), [2, 2, 2])


def test_backward_adopts_fresh_gradients_without_copying(device, monkeypatch):
    """Gradients that a kernel has just produced become ``.grad`` as they are; a
    copy (a setitem launch per parameter on a GPU) is left for shared buffers only.
    Reductions (the bias gradient) must therefore return arrays that own their data."""
    from mxcore import dispatch
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Dense(8, activation="relu"), mx.gluon.nn.Dense(3))
    net.initialize(ctx=device)
    x = nd.array(np.random.default_rng(0).random((4, 5), dtype=np.float32), ctx=device)
    with ag.record():
        loss = net(x).sum()
    ran = []
    real_push = dispatch._push
    monkeypatch.setattr(dispatch, "_push", lambda fn, *a: ran.append(fn) or real_push(fn, *a))
    loss.backward()
    assert ran, "backward ran no kernel"
    assert not [fn for fn in ran if "setitem" in getattr(fn, "__qualname__", "")]
    for p in net.collect_params().values():
        assert np.isfinite(p.grad().asnumpy()).all()
