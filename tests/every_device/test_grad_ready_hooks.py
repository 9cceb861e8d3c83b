"""autograd.register_grad_ready_hook: a leaf's hooks run once per backward, as soon as its
gradient is final, while the rest of the graph is still being differentiated."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore import autograd as ag


def _leaf(device, shape, seed, req="write"):
    a = mx.nd.array(np.random.default_rng(seed).standard_normal(shape), ctx=device)
    a.attach_grad(grad_req=req)
    return a


@pytest.fixture
def hooks():
    handles = []

    def register(array, fn):
        handles.append(ag.register_grad_ready_hook(array, fn))
        return handles[-1]
    yield register
    for h in handles:
        h.remove()
    assert ag._live_hooks == 0


def test_hooks_fire_once_each_with_the_final_gradient_before_earlier_layers(device, hooks):
    x = mx.nd.array(np.random.default_rng(0).standard_normal((5, 3)), ctx=device)
    w1, w2 = _leaf(device, (3, 4), 1), _leaf(device, (4, 2), 2)
    w1.grad[:] = np.nan                       # not yet written while w2's hook runs
    seen = []

    def on_w2(a):
        seen.append(("w2", a.grad.asnumpy().copy(), bool(np.isnan(w1.grad.asnumpy()).all())))

    def on_w1(a):
        seen.append(("w1", a.grad.asnumpy().copy(), None))
    hooks(w1, on_w1)
    hooks(w2, on_w2)
    with ag.record():
        y = mx.nd.dot(mx.nd.relu(mx.nd.dot(x, w1)), w2).sum()
    y.backward()
    assert [s[0] for s in seen] == ["w2", "w1"]
    assert seen[0][2], "w2's hook ran after w1's gradient was written: not during backward"
    np.testing.assert_array_equal(seen[0][1], w2.grad.asnumpy())
    np.testing.assert_array_equal(seen[1][1], w1.grad.asnumpy())
    assert w1._ag.fresh and w2._ag.fresh


def test_a_shared_leaf_fires_after_its_last_use_with_the_sum(device, hooks):
    x = mx.nd.array(np.random.default_rng(3).standard_normal((2, 3)), ctx=device)
    w = _leaf(device, (3, 3), 4)
    seen = []
    hooks(w, lambda a: seen.append(a.grad.asnumpy().copy()))
    with ag.record():
        y = mx.nd.dot(mx.nd.tanh(mx.nd.dot(x, w)), w).sum()
    y.backward()
    with ag.record():
        ref = mx.nd.dot(mx.nd.tanh(mx.nd.dot(x, w)), w).sum()
    ref_grad = ag.grad(ref, [w])[0].asnumpy()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], ref_grad, rtol=1e-6)


def test_hooks_follow_grad_req(device, hooks):
    added, ignored = _leaf(device, (3,), 5, req="add"), _leaf(device, (3,), 6, req="null")
    calls = []
    hooks(added, lambda a: calls.append(a.grad.asnumpy().copy()))
    hooks(ignored, lambda a: calls.append("null"))
    for _ in range(2):
        with ag.record():
            y = (added * 2 + ignored).sum()
        y.backward()
    assert len(calls) == 2
    np.testing.assert_allclose(calls[0], 2.0)
    np.testing.assert_allclose(calls[1], 4.0)     # accumulated before the hook ran


def test_grad_and_removed_hooks_call_nothing(device, hooks):
    w = _leaf(device, (4,), 7)
    calls = []
    handle = hooks(w, lambda a: calls.append(1))
    with ag.record():
        y = (w * w).sum()
    ag.grad(y, [w])                               # writes no .grad: no hook
    assert calls == []
    handle.remove()
    with ag.record():
        y = (w * w).sum()
    y.backward()
    assert calls == []


def test_a_head_that_is_a_leaf_fires_too(device, hooks):
    w = _leaf(device, (3,), 8)
    calls = []
    hooks(w, lambda a: calls.append(a.grad.asnumpy().copy()))
    w.backward(mx.nd.array([1.0, 2.0, 3.0], ctx=device))
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0], [1.0, 2.0, 3.0])


def test_hybridized_parameters_fire_after_the_block(device, hooks):
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Dense(4, in_units=3, activation="relu"), mx.gluon.nn.Dense(2, in_units=4))
    net.initialize(ctx=device)
    net.hybridize()
    x = mx.nd.array(np.random.default_rng(9).standard_normal((5, 3)), ctx=device)
    params = list(net.collect_params().values())
    seen = []
    for p in params:
        hooks(p.data(device), lambda a, name=p.name: seen.append(name))
    for _ in range(2):
        with ag.record():
            y = net(x).sum()
        y.backward()
    assert sorted(seen) == sorted([p.name for p in params] * 2)


def test_registering_needs_a_gradient_buffer(device):
    with pytest.raises(mx.MXCoreError, match="attach_grad"):
        ag.register_grad_ready_hook(mx.nd.ones((2,), ctx=device), lambda a: None)
