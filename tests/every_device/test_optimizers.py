"""Fused update ops and optimizers on every device, step by step against
numpy references written here (float64), with weight decay, rescale_grad and
clip_gradient exercised; in-place updates (buffers keep their identity, no
allocation of the weight's size per step); multipliers, learning-rate
control, the registry, multi-precision and state saving."""
from __future__ import annotations

import json
import math
import tracemalloc
import types
import warnings

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError, OperatorError

SHAPE = (5, 7)
STEPS = 4
TOL = {"float32": dict(rtol=2e-5, atol=2e-6), "float64": dict(rtol=1e-10, atol=1e-12)}


def _clip(g, c):
    return np.clip(g, -c, c) if c is not None and c >= 0 else g


def _nd(a, device, dtype=None):
    return mx.nd.array(a, ctx=device, dtype=dtype or a.dtype)


def _close(x, ref, dtype, what=""):
    assert x.dtype == np.dtype(dtype)
    np.testing.assert_allclose(x.asnumpy().astype(np.float64), ref, err_msg=what, **TOL[dtype])


def _data(rng, dtype, shape=SHAPE, steps=STEPS):
    w0 = rng.normal(size=shape).astype(dtype)
    grads = [(3 * rng.normal(size=shape)).astype(dtype) for _ in range(steps)]
    return w0, grads


# op-level references: (w, g, states, **attrs) -> (w, states) -----------------------------
def ref_sgd(w, g, s, lr, wd, rescale_grad, clip_gradient):
    return (1 - lr * wd) * w - lr * _clip(rescale_grad * g, clip_gradient), []


def ref_sgd_mom(w, g, s, lr, momentum, wd, rescale_grad, clip_gradient):
    mom = momentum * s[0] - lr * (_clip(rescale_grad * g, clip_gradient) + wd * w)
    return w + mom, [mom]


def ref_nag_mom(w, g, s, lr, momentum, wd, rescale_grad, clip_gradient):
    gg = _clip(rescale_grad * g, clip_gradient) + wd * w
    mom = momentum * s[0] - lr * gg
    return w + momentum * mom - lr * gg, [mom]


def ref_adam(w, g, s, lr, beta1, beta2, epsilon, wd, rescale_grad, clip_gradient):
    gg = _clip(rescale_grad * g + wd * w, clip_gradient)
    m = beta1 * s[0] + (1 - beta1) * gg
    v = beta2 * s[1] + (1 - beta2) * gg ** 2
    return w - lr * m / (np.sqrt(v) + epsilon), [m, v]


def ref_adamw(w, g, s, lr, eta, beta1, beta2, epsilon, wd, rescale_grad, clip_gradient):
    gg = _clip(rescale_grad * g, clip_gradient)
    m = beta1 * s[0] + (1 - beta1) * gg
    v = beta2 * s[1] + (1 - beta2) * gg ** 2
    return w - eta * (lr * m / (np.sqrt(v) + epsilon) + wd * w), [m, v]


def ref_rmsprop(w, g, s, lr, gamma1, epsilon, wd, rescale_grad, clip_gradient, clip_weights):
    gg = _clip(rescale_grad * g + wd * w, clip_gradient)
    n = (1 - gamma1) * gg ** 2 + gamma1 * s[0]
    return _clip(w - lr * gg / np.sqrt(n + epsilon), clip_weights), [n]


def ref_rmspropalex(w, g, s, lr, gamma1, gamma2, epsilon, wd, rescale_grad, clip_gradient,
                    clip_weights):
    gg = _clip(rescale_grad * g + wd * w, clip_gradient)
    n = (1 - gamma1) * gg ** 2 + gamma1 * s[0]
    m = (1 - gamma1) * gg + gamma1 * s[1]
    d = gamma2 * s[2] - lr * gg / np.sqrt(n - m ** 2 + epsilon)
    return _clip(w + d, clip_weights), [n, m, d]


def ref_adagrad(w, g, s, lr, epsilon, wd, rescale_grad, clip_gradient):
    gg = _clip(rescale_grad * g, clip_gradient)
    h = s[0] + gg ** 2
    return w - lr * (gg / np.sqrt(h + epsilon) + wd * w), [h]


def ref_adadelta(w, g, s, lr, rho, epsilon, wd, rescale_grad, clip_gradient):
    gg = _clip(rescale_grad * g, clip_gradient)
    acc_g = rho * s[0] + (1 - rho) * gg ** 2
    delta = np.sqrt(s[1] + epsilon) / np.sqrt(acc_g + epsilon) * gg
    acc_d = rho * s[1] + (1 - rho) * delta ** 2
    return w - lr * (delta + wd * w), [acc_g, acc_d]


PREP = dict(wd=0.05, rescale_grad=0.5)
OP_CASES = [
    ("sgd_update", 0, dict(lr=0.1, **PREP), ref_sgd),
    ("sgd_mom_update", 1, dict(lr=0.1, momentum=0.9, **PREP), ref_sgd_mom),
    ("nag_mom_update", 1, dict(lr=0.1, momentum=0.9, **PREP), ref_nag_mom),
    ("adam_update", 2, dict(lr=0.01, beta1=0.8, beta2=0.99, epsilon=1e-6, **PREP), ref_adam),
    ("adamw_update", 2, dict(lr=0.01, eta=0.5, beta1=0.8, beta2=0.99, epsilon=1e-6, **PREP),
     ref_adamw),
    ("rmsprop_update", 1, dict(lr=0.01, gamma1=0.9, epsilon=1e-6, clip_weights=1.2, **PREP),
     ref_rmsprop),
    ("rmspropalex_update", 3, dict(lr=0.01, gamma1=0.9, gamma2=0.8, epsilon=1e-6,
                                   clip_weights=1.2, **PREP), ref_rmspropalex),
    ("adagrad_update", 1, dict(lr=0.1, epsilon=1e-6, **PREP), ref_adagrad),
    ("adadelta_update", 2, dict(lr=0.5, rho=0.9, epsilon=1e-5, **PREP), ref_adadelta),
]
OP_IDS = [c[0] for c in OP_CASES]


def _run_op(case, clip, dtype, device, shape=SHAPE, view=None):
    name, nstates, attrs, ref = case
    attrs = {**attrs, "clip_gradient": clip}
    w0, grads = _data(np.random.default_rng(len(name)), dtype, shape)
    w = _nd(w0, device)
    if view is not None:
        w = view(w)
    states = [mx.nd.zeros(w.shape, ctx=device, dtype=dtype) for _ in range(nstates)]
    rw = w.asnumpy().astype(np.float64)
    rs = [np.zeros(w.shape) for _ in range(nstates)]
    for t, g in enumerate(grads):
        gx = _nd(g, device)
        if view is not None:
            gx = view(gx)
        out = getattr(mx.nd, name)(w, gx, *states, **attrs)
        assert out is w
        rw, rs = ref(rw, gx.asnumpy().astype(np.float64), rs, **attrs)
        _close(w, rw, dtype, f"{name} weight, step {t}")
        for i, (s, r) in enumerate(zip(states, rs)):
            _close(s, r, dtype, f"{name} state {i}, step {t}")
        np.testing.assert_array_equal(gx.asnumpy(), view(_nd(g, device)).asnumpy()
                                      if view is not None else g)  # grad never written
    return w


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("clip", [-1.0, 1.0, 0.0], ids=["noclip", "clip1", "clip0"])
@pytest.mark.parametrize("case", OP_CASES, ids=OP_IDS)
def test_op_matches_reference(case, clip, dtype, device):
    _run_op(case, clip, dtype, device)


@pytest.mark.parametrize("case", OP_CASES, ids=OP_IDS)
def test_op_several_blocks_and_views(case, device):
    # more elements than one kernel block, not a multiple of it
    _run_op(case, 1.0, "float64", device, shape=(300, 517))
    # a strided (non-contiguous) view is updated through to its base buffer (slicing
    # copies such views, as MXNet does: this one wraps the device array's own view, as
    # DLPack imports of strided tensors do)
    from mxcore.dispatch import wrap
    base = []

    def strided(x):
        base.append(x)
        return wrap(x._data[:, ::2], x.context)
    w = _run_op(case, 1.0, "float64", device, shape=(6, 8), view=strided)
    np.testing.assert_array_equal(base[0].asnumpy()[:, ::2], w.asnumpy())


def test_op_out_argument(device):
    rng = np.random.default_rng(0)
    w0, (g,) = _data(rng, "float32", steps=1)
    w, gx, mom = _nd(w0, device), _nd(g, device), mx.nd.zeros(SHAPE, ctx=device)
    assert mx.nd.sgd_mom_update(w, gx, mom, lr=0.1, momentum=0.9, out=w) is w
    expect, (m1,) = ref_sgd_mom(w0.astype(np.float64), g, [np.zeros(SHAPE)], lr=0.1,
                                momentum=0.9, wd=0, rescale_grad=1, clip_gradient=-1)
    _close(w, expect, "float32")
    # out= another array: it gets the new weight, the weight keeps its value, states move on
    before = w.asnumpy()
    other = mx.nd.zeros(SHAPE, ctx=device)
    assert mx.nd.sgd_mom_update(w, gx, mom, lr=0.1, momentum=0.9, out=other) is other
    np.testing.assert_array_equal(w.asnumpy(), before)
    expect2, (m2,) = ref_sgd_mom(before.astype(np.float64), g, [m1], lr=0.1, momentum=0.9,
                                 wd=0, rescale_grad=1, clip_gradient=-1)
    _close(other, expect2, "float32")
    _close(mom, m2, "float32")
    # lazy_update is accepted (MXNet signature)
    mx.nd.sgd_update(w, gx, lr=0.1, lazy_update=False)


def test_op_errors(device):
    w = mx.nd.ones((2, 3), ctx=device)
    with pytest.raises(OperatorError, match="one shape"):
        mx.nd.sgd_update(w, mx.nd.ones((3, 2), ctx=device), lr=0.1)
    with pytest.raises(OperatorError, match="one dtype"):
        mx.nd.adam_update(w, mx.nd.ones((2, 3), ctx=device), mx.nd.zeros((2, 3), ctx=device),
                          mx.nd.zeros((2, 3), ctx=device, dtype="float64"), lr=0.1)
    with pytest.raises(OperatorError, match="share memory"):
        mx.nd.sgd_update(w, w, lr=0.1)
    with pytest.raises(OperatorError, match="float"):
        mx.nd.sgd_update(mx.nd.ones((2,), ctx=device, dtype="int32"),
                         mx.nd.ones((2,), ctx=device, dtype="int32"), lr=0.1)
    with pytest.raises(MXCoreError, match="missing required attribute 'lr'"):
        mx.nd.invoke("sgd_update", w, mx.nd.ones((2, 3), ctx=device))
    x = mx.nd.ones((2, 3), ctx=device)
    x.attach_grad()
    with mx.autograd.record():
        y = x * 2
        with pytest.raises(OperatorError, match="recorded by autograd"):
            mx.nd.sgd_update(y, mx.nd.ones((2, 3), ctx=device), lr=0.1)
    np.testing.assert_array_equal(w.asnumpy(), np.ones((2, 3)))  # nothing was written


# optimizer-level references -------------------------------------------------------------
def _ref_optimizer(name, hp, t, w, g, s, lr, wd):
    """One step of optimizer ``name`` at update count ``t`` (states ``s`` in place)."""
    rs, c = hp["rescale_grad"], hp.get("clip_gradient")
    if name in ("sgd", "nag"):
        mu = hp.get("momentum", 0.0)
        gg = _clip(rs * g, c) + wd * w
        if not mu:
            return w - lr * gg
        s[0] = mu * s[0] - lr * gg
        return w + s[0] if name == "sgd" else w + mu * s[0] - lr * gg
    if name == "adam":
        b1, b2, eps = hp["beta1"], hp["beta2"], hp["epsilon"]
        gg = _clip(rs * g + wd * w, c)
        s[0] = b1 * s[0] + (1 - b1) * gg
        s[1] = b2 * s[1] + (1 - b2) * gg ** 2
        return w - lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * s[0] / (np.sqrt(s[1]) + eps)
    if name == "adamw":  # torch.optim.AdamW
        b1, b2, eps = hp["beta1"], hp["beta2"], hp["epsilon"]
        gg = _clip(rs * g, c)
        s[0] = b1 * s[0] + (1 - b1) * gg
        s[1] = b2 * s[1] + (1 - b2) * gg ** 2
        if hp.get("correct_bias", True):
            m_hat, v_hat = s[0] / (1 - b1 ** t), s[1] / (1 - b2 ** t)
        else:
            m_hat, v_hat = s[0], s[1]
        return w * (1 - lr * wd) - lr * m_hat / (np.sqrt(v_hat) + eps)
    if name == "rmsprop":
        g1, eps, cw = hp["gamma1"], hp["epsilon"], hp.get("clip_weights") or -1
        gg = _clip(rs * g + wd * w, c)
        s[0] = (1 - g1) * gg ** 2 + g1 * s[0]
        if not hp.get("centered"):
            return _clip(w - lr * gg / np.sqrt(s[0] + eps), cw)
        s[1] = (1 - g1) * gg + g1 * s[1]
        s[2] = hp["gamma2"] * s[2] - lr * gg / np.sqrt(s[0] - s[1] ** 2 + eps)
        return _clip(w + s[2], cw)
    if name == "adagrad":
        gg = _clip(rs * g, c)
        s[0] = s[0] + gg ** 2
        return w - lr * (gg / np.sqrt(s[0] + hp["eps"]) + wd * w)
    if name == "adadelta":  # MXNet 1.9: no learning rate
        rho, eps = hp["rho"], hp["epsilon"]
        gg = _clip(rs * g, c)
        s[0] = rho * s[0] + (1 - rho) * gg ** 2
        delta = np.sqrt(s[1] + eps) / np.sqrt(s[0] + eps) * gg
        s[1] = rho * s[1] + (1 - rho) * delta ** 2
        return w - (delta + wd * w)
    raise AssertionError(name)


OPT_CASES = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("nag", {}),
    ("nag", {"momentum": 0.9}),
    ("adam", {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6}),
    ("adamw", {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6}),
    ("adamw", {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6, "correct_bias": False}),
    ("rmsprop", {"gamma1": 0.9, "epsilon": 1e-6}),
    ("rmsprop", {"gamma1": 0.9, "gamma2": 0.8, "epsilon": 1e-6, "centered": True,
                 "clip_weights": 1.2}),
    ("adagrad", {"eps": 1e-6}),
    ("adadelta", {"rho": 0.9, "epsilon": 1e-5}),
]
OPT_IDS = ["-".join([n] + [f"{k}={v}" for k, v in hp.items()
                           if k in ("momentum", "centered", "correct_bias")])
           for n, hp in OPT_CASES]
NSTATES = {"sgd": 1, "nag": 1, "adam": 2, "adamw": 2, "adagrad": 1, "adadelta": 2}


def _nstates(name, hp):
    if name in ("sgd", "nag"):
        return 1 if hp.get("momentum") else 0
    if name == "rmsprop":
        return 3 if hp.get("centered") else 1
    return NSTATES[name]


def _flat(state):
    if state is None:
        return []
    if isinstance(state, (tuple, list)):
        return [a for s in state for a in _flat(s)]
    return [state]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("clip", [None, 1.0], ids=["noclip", "clip1"])
@pytest.mark.parametrize("name,hp", OPT_CASES, ids=OPT_IDS)
def test_optimizer_matches_reference(name, hp, clip, dtype, device):
    hp = {**hp, "learning_rate": 0.05, "wd": 0.02, "rescale_grad": 0.5, "clip_gradient": clip}
    opt = mx.optimizer.create(name, **hp)
    w0, grads = _data(np.random.default_rng(7), dtype)
    w = _nd(w0, device)
    state = opt.create_state(0, w)
    arrays = _flat(state)
    assert len(arrays) == _nstates(name, hp)
    for a in arrays:
        assert a.context == device and a.dtype == w.dtype and a.shape == w.shape
    rw, rs = w0.astype(np.float64), [np.zeros(SHAPE) for _ in arrays]
    for t, g in enumerate(grads, start=1):
        opt.update(0, w, _nd(g, device), state)
        rw = _ref_optimizer(name, hp, t, rw, g.astype(np.float64), rs, 0.05, 0.02)
        _close(w, rw, dtype, f"{name} weight, step {t}")
        for i, (a, r) in enumerate(zip(arrays, rs)):
            _close(a, r, dtype, f"{name} state {i}, step {t}")
    assert opt.num_update == STEPS and opt._index_update_count == {0: STEPS}


@pytest.mark.parametrize("name,hp", OPT_CASES, ids=OPT_IDS)
def test_updates_are_in_place(name, hp, device):
    opt = mx.optimizer.create(name, learning_rate=0.05, wd=0.01, **hp)
    updater = mx.optimizer.get_updater(opt)
    w0, grads = _data(np.random.default_rng(3), "float32")
    w = _nd(w0, device)
    buf = w._data
    g = _nd(grads[0], device)
    updater(0, g, w)
    state_bufs = [a._data for a in _flat(updater.states[0])]
    for gr in grads[1:]:
        g = _nd(gr, device)
        updater(0, g, w)
        np.testing.assert_array_equal(g.asnumpy(), gr)
    assert w._data is buf
    assert [a._data for a in _flat(updater.states[0])] == state_bufs
    assert all(a._data is b for a, b in zip(_flat(updater.states[0]), state_bufs))
    if isinstance(buf, np.ndarray):
        assert np.shares_memory(w._data, buf)
    assert not np.allclose(w.asnumpy(), w0)


def test_lr_and_wd_multipliers(device):
    names = {0: "fc_weight", 1: "fc_bias", 2: "conv_weight", 3: "bn_gamma"}
    opt = mx.optimizer.SGD(learning_rate=0.1, wd=0.1, param_idx2name=names)
    # names not ending in _weight/_gamma get no weight decay by default (MXNet)
    assert opt.wd_mult == {"fc_bias": 0.0}
    opt.set_lr_mult({"fc_weight": 0.5, 2: 3.0})   # by name and by index
    opt.set_wd_mult({"conv_weight": 2.0})
    assert [opt._get_lr(i) for i in range(4)] == pytest.approx([0.05, 0.1, 0.3, 0.1])
    assert [opt._get_wd(i) for i in range(4)] == pytest.approx([0.1, 0.0, 0.2, 0.1])
    # gluon Parameters in param_dict take precedence
    opt.param_dict = {3: types.SimpleNamespace(lr_mult=0.25, wd_mult=0.0)}
    assert opt._get_lr(3) == pytest.approx(0.025) and opt._get_wd(3) == 0.0
    # the update uses them
    updater = mx.optimizer.get_updater(opt)
    rng = np.random.default_rng(1)
    ws = [rng.normal(size=(3,)) for _ in range(4)]
    gs = [rng.normal(size=(3,)) for _ in range(4)]
    xs = [_nd(a, device, "float64") for a in ws]
    updater(list(range(4)), [_nd(a, device, "float64") for a in gs], xs)
    for i in range(4):
        lr, wd = opt._get_lr(i), opt._get_wd(i)
        _close(xs[i], ws[i] - lr * (gs[i] + wd * ws[i]), "float64", f"index {i}")


def test_learning_rate_control(device):
    opt = mx.optimizer.create("sgd", learning_rate=0.1)
    assert opt.learning_rate == 0.1
    opt.set_learning_rate(0.2)
    assert opt.learning_rate == 0.2
    w, g = mx.nd.ones((2,), ctx=device), mx.nd.ones((2,), ctx=device)
    opt.update(0, w, g, opt.create_state(0, w))
    np.testing.assert_allclose(w.asnumpy(), [0.8, 0.8], rtol=1e-6)
    assert mx.optimizer.create("adam").learning_rate == 0.001    # MXNet defaults
    assert mx.optimizer.create("adagrad").learning_rate == 0.01

    sched = mx.lr_scheduler.FactorScheduler(step=1, factor=0.5, base_lr=1.0)
    opt = mx.optimizer.create("sgd", lr_scheduler=sched)
    assert opt.learning_rate == 1.0
    with pytest.raises(UserWarning):
        opt.set_learning_rate(0.3)
    w = mx.nd.zeros((1,), ctx=device)
    for _ in range(3):   # lr at num_update 1, 2, 3: 1, 0.5, 0.25
        opt.update(0, w, mx.nd.ones((1,), ctx=device), None)
    np.testing.assert_allclose(w.asnumpy(), [-1.75])
    assert opt.num_update == 3 and opt.learning_rate == 0.25

    with pytest.warns(UserWarning, match="overwritten"):
        opt = mx.optimizer.SGD(learning_rate=0.5,
                               lr_scheduler=mx.lr_scheduler.FactorScheduler(2, base_lr=1.0))
    assert opt.lr_scheduler.base_lr == 0.5


def test_create_and_register():
    expect = {"sgd": "SGD", "nag": "NAG", "adam": "Adam", "adamw": "AdamW",
              "rmsprop": "RMSProp", "adagrad": "AdaGrad", "adadelta": "AdaDelta"}
    for name, cls in expect.items():
        for spelled in (name, name.upper(), cls):
            opt = mx.optimizer.create(spelled)
            assert type(opt) is getattr(mx.optimizer, cls)
            assert isinstance(opt, mx.optimizer.Optimizer)
    opt = mx.optimizer.Optimizer.create_optimizer("sgd", momentum=0.9, wd=1e-4)
    assert opt.momentum == 0.9 and opt.wd == 1e-4
    with pytest.raises(ValueError, match="Cannot find optimizer 'adamm'.*adam, adamax, adamw"):
        mx.optimizer.create("adamm")
    with pytest.raises(TypeError):
        mx.optimizer.create("sgd", momentun=0.9)   # misspelt hyperparameter

    @mx.optimizer.register
    class ScaledSign(mx.optimizer.Optimizer):
        def update(self, index, weight, grad, state):
            weight[:] = weight - self._get_lr(index) * mx.nd.sign(grad)
    try:
        opt = mx.optimizer.create("scaledsign", learning_rate=0.5)
        w = mx.nd.zeros((2,))
        mx.optimizer.get_updater(opt)(0, mx.nd.array([3.0, -2.0]), w)
        np.testing.assert_array_equal(w.asnumpy(), [-0.5, 0.5])
        with pytest.warns(UserWarning, match="overriding"):
            mx.optimizer.register(type("ScaledSign", (mx.optimizer.Optimizer,), {}))
    finally:
        mx.optimizer.Optimizer.opt_registry.pop("scaledsign", None)


def test_list_updates_match_single(device):
    rng = np.random.default_rng(5)
    w0 = [rng.normal(size=(4,)) for _ in range(3)]
    gs = [[rng.normal(size=(4,)) for _ in range(3)] for _ in range(3)]
    results = []
    for mode in ("single", "list"):
        opt = mx.optimizer.Adam(learning_rate=0.1, wd=0.01)
        ws = [_nd(a, device) for a in w0]
        states = [opt.create_state(i, w) for i, w in enumerate(ws)]
        for step in gs:
            grads = [_nd(a, device) for a in step]
            if mode == "single":
                for i in range(3):
                    opt.update(i, ws[i], grads[i], states[i])
            else:
                opt.update([0, 1, 2], ws, grads, states)
        results.append([w.asnumpy() for w in ws])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_multi_precision(device):
    rng = np.random.default_rng(2)
    w0, grads = _data(rng, "float16")
    for name, hp, master_at in (("sgd", {"momentum": 0.9}, 1), ("adam", {}, 0)):
        opt = mx.optimizer.create(name, learning_rate=0.01, multi_precision=True, **hp)
        ref_opt = mx.optimizer.create(name, learning_rate=0.01, **hp)
        updater, ref_updater = mx.optimizer.get_updater(opt), mx.optimizer.get_updater(ref_opt)
        w = _nd(w0, device)
        w32 = _nd(w0.astype(np.float32), device)
        buf = w._data
        for g in grads:
            updater(0, _nd(g, device), w)
            ref_updater(0, _nd(g.astype(np.float32), device), w32)
        master = updater.states[0][master_at]
        assert w.dtype == np.float16 and master.dtype == np.float32 and w._data is buf
        np.testing.assert_array_equal(master.asnumpy(), w32.asnumpy())
        np.testing.assert_array_equal(w.asnumpy(), w32.asnumpy().astype(np.float16))
    with pytest.warns(UserWarning, match="multi_precision"):
        mx.optimizer.SGD().create_state_multi_precision(0, _nd(w0, device))


def _train(updater, ws, grads):
    for g in grads:
        updater(list(range(len(ws))), [_nd(a, ws[0].context) for a in g], ws)


def test_states_round_trip(device):
    rng = np.random.default_rng(4)
    w0 = [rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(4,)).astype(np.float32)]
    grads = [[rng.normal(size=a.shape).astype(np.float32) for a in w0] for _ in range(4)]

    def make():
        sched = mx.lr_scheduler.CosineScheduler(max_update=10, base_lr=0.1, warmup_steps=1)
        return mx.optimizer.Adam(learning_rate=0.1, wd=0.01, lr_scheduler=sched,
                                 param_idx2name={0: "fc_weight", 1: "fc_bias"})
    upd = mx.optimizer.get_updater(make())
    ws = [_nd(a, device) for a in w0]
    _train(upd, ws, grads[:2])

    arrays, meta = upd.states_to_arrays()
    assert all(isinstance(a, np.ndarray) for a in arrays.values()) and len(arrays) == 4
    meta = json.loads(json.dumps(meta))   # JSON-able
    blob = upd.get_states(dump_optimizer=True)
    assert isinstance(blob, bytes)
    saved = [w.copy() for w in ws]
    _train(upd, ws, grads[2:])   # the uninterrupted run

    # a fresh updater of a fresh optimizer continues exactly where the first stopped
    for restore in ("arrays", "bytes"):
        fresh = mx.optimizer.create("adam")
        upd2 = mx.optimizer.get_updater(fresh)
        if restore == "arrays":
            upd2.arrays_to_states(arrays, meta, device)
        else:
            upd2.set_states(blob)
        assert upd2.optimizer is fresh   # restored in place (the Trainer keeps its reference)
        assert fresh.num_update == 2 and fresh._index_update_count == {0: 2, 1: 2}
        assert fresh.wd_mult == {"fc_bias": 0.0} and fresh.idx2name == {0: "fc_weight",
                                                                         1: "fc_bias"}
        assert type(fresh.lr_scheduler) is mx.lr_scheduler.CosineScheduler
        ws2 = [w.copy() for w in saved]
        _train(upd2, ws2, grads[2:])
        for s in _flat(upd2.states[0]):
            assert s.context == device
        for a, b in zip(ws, ws2):
            np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())

    # without the optimizer: states only, the optimizer keeps its own settings
    upd3 = mx.optimizer.get_updater(mx.optimizer.Adam(learning_rate=0.5))
    upd3.set_states(upd.get_states())
    assert upd3.optimizer.lr == 0.5 and upd3.optimizer.num_update == 0
    assert sorted(upd3.states) == [0, 1]


def test_states_structures_and_bad_input(device):
    opt = mx.optimizer.SGD(learning_rate=0.1, momentum=0.9, multi_precision=True)
    upd = mx.optimizer.get_updater(opt)
    w16 = mx.nd.ones((3,), ctx=device, dtype="float16")
    upd(0, mx.nd.ones((3,), ctx=device, dtype="float16"), w16)
    upd("name", mx.nd.ones((2,), ctx=device), mx.nd.ones((2,), ctx=device))
    upd(2, mx.nd.ones((2,), ctx=device), mx.nd.ones((2,), ctx=device))
    upd2 = mx.optimizer.get_updater(mx.optimizer.SGD(momentum=0.9))
    upd2.set_states(upd.get_states(dump_optimizer=True))
    s = upd2.states
    mom, master = s[0]   # SGD keeps MXNet's (momentum, float32 master copy) order
    assert mom.dtype == master.dtype == np.float32
    np.testing.assert_allclose(master.asnumpy(), [0.9] * 3, rtol=1e-6)
    assert isinstance(s["name"], mx.nd.NDArray) and sorted(map(str, s)) == ["0", "2", "name"]
    assert upd2.optimizer.multi_precision is True
    with pytest.raises(MXCoreError, match="not mxcore optimizer states"):
        upd2.set_states(b"\x80\x04\x95 a pickle")
    with pytest.raises(MXCoreError, match="not optimizer states"):
        upd2.arrays_to_states({}, {})
    upd.optimizer.bad = object()
    with pytest.raises(MXCoreError, match="no JSON form"):
        upd.get_states(dump_optimizer=True)
    upd.get_states()   # states alone still save


@pytest.mark.parametrize("name,hp", OPT_CASES, ids=OPT_IDS)
def test_steps_allocate_nothing_of_weight_size(name, hp, device):
    from mxcore.device import device_type
    if not device_type(device).host_memory:
        pytest.skip("tracemalloc sees host allocations only")
    shape = (1000, 1000)                      # 4 MB of float32
    tracemalloc.start()
    probe = np.empty(shape, np.float32)       # tracemalloc does see numpy's buffers
    assert tracemalloc.get_traced_memory()[0] >= probe.nbytes
    del probe
    tracemalloc.stop()

    rng = np.random.default_rng(0)
    w = _nd(rng.normal(size=shape).astype(np.float32), device)
    g = _nd(rng.normal(size=shape).astype(np.float32), device)
    opt = mx.optimizer.create(name, learning_rate=0.01, wd=1e-4, rescale_grad=0.5,
                              clip_gradient=1.0, **hp)
    updater = mx.optimizer.get_updater(opt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # e.g. no invalid values in sqrt
        updater(0, g, w)                      # first step: states and scratch buffers
        mx.nd.waitall()                       # (made by then on the threaded engine too)
        tracemalloc.start()
        try:
            for _ in range(10):
                updater(0, g, w)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # far below the weight's 4 MB, and below one kernel block's temporary (256 KiB)
    assert peak < 64 << 10, f"{name}: 10 steps allocated up to {peak} bytes"
    assert np.isfinite(w.asnumpy()).all()


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_multi_tensor_sgd_matches_single_updates(device, momentum):
    """multi_sgd(_mom)_update, used by SGD for lists of weights, equals the
    per-weight ops step by step (different lr/wd per weight)."""
    rng = np.random.default_rng(5)
    shapes = [(3, 4), (4,), (2, 2, 2)]
    ws = [rng.normal(size=s).astype(np.float32) for s in shapes]
    gs = [rng.normal(size=s).astype(np.float32) for s in shapes]
    fused = [mx.nd.array(w, ctx=device) for w in ws]
    single = [mx.nd.array(w, ctx=device) for w in ws]
    grads = [mx.nd.array(g, ctx=device) for g in gs]
    moms_f = [mx.nd.zeros(s, ctx=device) for s in shapes]
    moms_s = [mx.nd.zeros(s, ctx=device) for s in shapes]
    lrs, wds = [0.1, 0.05, 0.2], [0.0, 0.01, 0.1]
    for _ in range(3):
        if momentum:
            data = [a for w, g, m in zip(fused, grads, moms_f) for a in (w, g, m)]
            out = mx.nd.multi_sgd_mom_update(*data, lrs=lrs, wds=wds, momentum=momentum,
                                             rescale_grad=0.5, num_weights=3)
            for w, g, m, lr, wd in zip(single, grads, moms_s, lrs, wds):
                mx.nd.sgd_mom_update(w, g, m, lr=lr, wd=wd, momentum=momentum,
                                     rescale_grad=0.5)
        else:
            data = [a for w, g in zip(fused, grads) for a in (w, g)]
            out = mx.nd.multi_sgd_update(*data, lrs=lrs, wds=wds, rescale_grad=0.5,
                                         num_weights=3)
            for w, g, lr, wd in zip(single, grads, lrs, wds):
                mx.nd.sgd_update(w, g, lr=lr, wd=wd, rescale_grad=0.5)
        assert all(o is f for o, f in zip(out, fused))
    for f, s in zip(fused, single):
        np.testing.assert_allclose(f.asnumpy(), s.asnumpy(), rtol=1e-6, atol=1e-7)
    with pytest.raises(mx.OperatorError, match="num_weights=2"):
        mx.nd.multi_sgd_update(fused[0], grads[0], lrs=[0.1], wds=[0.0], num_weights=2)


def test_multi_tensor_sgd_checks_every_group(device):
    """The multi-weight ops check each (weight, grad, states) group, not only the first:
    a gradient that shares the weight's memory, another shape or a non-float weight in
    a later group is refused before anything is written."""
    w0, g0 = mx.nd.ones((3,), ctx=device), mx.nd.ones((3,), ctx=device)
    w1 = mx.nd.ones((2, 2), ctx=device)
    before = w0.asnumpy().copy()
    for g1, match in [(w1, "share memory"), (w1.reshape((4,)).reshape((2, 2)), "share memory"),
                      (mx.nd.ones((4,), ctx=device), "one shape")]:
        with pytest.raises(mx.OperatorError, match=match):
            mx.nd.multi_sgd_update(w0, g0, w1, g1, lrs=[0.1, 0.1], wds=[0.0, 0.0],
                                   num_weights=2)
    ints = mx.nd.ones((2, 2), ctx=device, dtype="int32")
    with pytest.raises(mx.OperatorError, match="float"):
        mx.nd.multi_sgd_update(w0, g0, ints, ints.copy(), lrs=[0.1, 0.1], wds=[0.0, 0.0],
                               num_weights=2)
    np.testing.assert_array_equal(w0.asnumpy(), before)


@pytest.mark.parametrize("op", ["adam", "adamw"])
def test_multi_tensor_adam_matches_single_updates(device, op):
    """multi_adam(w)_update equals the per-weight ops, with one lr, wd (and eta)
    per weight, clipping and rescaling."""
    rng = np.random.default_rng(6)
    shapes = [(3, 4), (4,), (2, 2, 2), (0,)]
    ws = [rng.normal(size=s).astype(np.float32) for s in shapes]
    fused = [mx.nd.array(w, ctx=device) for w in ws]
    single = [mx.nd.array(w, ctx=device) for w in ws]
    st_f = [(mx.nd.zeros(s, ctx=device), mx.nd.zeros(s, ctx=device)) for s in shapes]
    st_s = [(mx.nd.zeros(s, ctx=device), mx.nd.zeros(s, ctx=device)) for s in shapes]
    lrs, wds, etas = [0.1, 0.05, 0.2, 0.3], [0.0, 0.01, 0.1, 0.0], [1.0, 0.5, 0.25, 1.0]
    hp = dict(beta1=0.8, beta2=0.99, epsilon=1e-6, rescale_grad=0.5, clip_gradient=0.9)
    for _ in range(3):
        grads = [mx.nd.array(rng.normal(size=s).astype(np.float32), ctx=device)
                 for s in shapes]
        data = [a for w, g, (m, v) in zip(fused, grads, st_f) for a in (w, g, m, v)]
        if op == "adam":
            out = mx.nd.multi_adam_update(*data, lrs=lrs, wds=wds, num_weights=4, **hp)
        else:
            out = mx.nd.multi_adamw_update(*data, lrs=lrs, wds=wds, etas=etas,
                                           num_weights=4, **hp)
        assert all(o is f for o, f in zip(out, fused))
        for k, (w, g, (m, v)) in enumerate(zip(single, grads, st_s)):
            if op == "adam":
                mx.nd.adam_update(w, g, m, v, lr=lrs[k], wd=wds[k], **hp)
            else:
                mx.nd.adamw_update(w, g, m, v, lr=lrs[k], wd=wds[k], eta=etas[k], **hp)
    for f, s_, (mf, vf), (ms, vs) in zip(fused, single, st_f, st_s):
        for a, b in ((f, s_), (mf, ms), (vf, vs)):
            np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-5, atol=1e-7)
    assert not np.allclose(fused[0].asnumpy(), ws[0])
    with pytest.raises(mx.OperatorError, match="etas"):
        mx.nd.multi_adamw_update(*data[:8], lrs=lrs[:2], wds=wds[:2], etas=etas[:1],
                                 num_weights=2)


@pytest.mark.parametrize("name, kwargs", [
    ("sgd", dict(learning_rate=0.1, momentum=0.9, wd=0.01)),
    ("sgd", dict(learning_rate=0.1, wd=0.01)),
    ("adam", dict(learning_rate=0.01, wd=0.01, clip_gradient=2.0)),
    ("adamw", dict(learning_rate=0.01, wd=0.01)),
    ("adamw", dict(learning_rate=0.01, wd=0.01, correct_bias=False))])
def test_optimizers_fuse_lists_like_single_updates(device, name, kwargs):
    """Given lists, SGD/Adam/AdamW update through one multi-weight op; results
    equal weight-by-weight updates, with per-weight lr_mult/wd_mult, and a
    weight that joins late (its own step count: AdamW's epsilon differs)."""
    shapes = [(5, 3), (3,), (2, 2)]
    results = []
    for aggregate in (0, 64):
        rng = np.random.default_rng(9)
        opt = mx.optimizer.create(name, **kwargs)
        opt.aggregate_num = aggregate
        opt.set_lr_mult({1: 0.5})
        opt.set_wd_mult({2: 0.0})
        upd = mx.optimizer.get_updater(opt)
        ws = [mx.nd.array(np.ones(s), ctx=device) for s in shapes]
        for step in range(4):
            gs = [mx.nd.array(rng.normal(size=s) + step, ctx=device) for s in shapes]
            k = 3 if step else 2  # weight 2 starts one step later
            upd(list(range(k)), gs[:k], ws[:k])
        results.append([w.asnumpy() for w in ws])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert not np.allclose(results[0][2], 1.0)


@pytest.mark.parametrize("name, kwargs", [("sgd", dict(learning_rate=0.1, momentum=0.9)),
                                          ("adam", dict(learning_rate=0.1)),
                                          ("adamw", dict(learning_rate=0.1, wd=0.01))])
def test_mixed_dtype_lists_fuse_per_dtype_like_single_updates(device, name, kwargs):
    """float32 and bfloat16 weights in one list: fused one dtype at a time, with the
    numbers of weight-by-weight updates (one call over both dtypes would send every
    weight to a fallback kernel that rounds bfloat16 differently)."""
    shapes = [(4, 3), (3,), (2, 4), (4,)]
    dtypes = ["float32", "bfloat16", "float32", "bfloat16"]
    results = []
    for aggregate in (0, 64):
        rng = np.random.default_rng(4)
        opt = mx.optimizer.create(name, **kwargs)
        opt.aggregate_num = aggregate
        upd = mx.optimizer.get_updater(opt)
        ws = [mx.nd.array(np.full(s, 0.2), ctx=device, dtype=d) for s, d in zip(shapes, dtypes)]
        for _ in range(3):
            gs = [mx.nd.array(rng.normal(size=s) * 1e-3, ctx=device, dtype=d)
                  for s, d in zip(shapes, dtypes)]
            upd(list(range(4)), gs, ws)
        results.append([w.asnumpy().astype(np.float64) for w in ws])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(results[0][1], 0.2)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_multi_precision_lists_keep_the_multi_weight_op(device, name, monkeypatch):
    """float16 weights with multi_precision and float32 weights in one list: the
    float32 weights and the float16 weights' float32 masters each go through the
    multi-weight op, with the numbers of weight-by-weight updates."""
    from mxcore import dispatch
    shapes = [(4, 3), (3,), (2, 4)]
    dtypes = ["float16", "float32", "float16"]
    results, multi_calls = [], []
    real_push = dispatch._push
    for aggregate in (0, 64):
        calls = []
        monkeypatch.setattr(dispatch, "_push", lambda fn, *a: calls.append(
            getattr(fn, "__qualname__", "")) or real_push(fn, *a))
        rng = np.random.default_rng(5)
        kw = dict(momentum=0.9) if name == "sgd" else {}
        opt = mx.optimizer.create(name, learning_rate=0.1, multi_precision=True, **kw)
        opt.aggregate_num = aggregate
        upd = mx.optimizer.get_updater(opt)
        ws = [mx.nd.array(np.full(s, 0.5), ctx=device, dtype=d) for s, d in zip(shapes, dtypes)]
        for _ in range(3):
            gs = [mx.nd.array(rng.normal(size=s), ctx=device, dtype=d)
                  for s, d in zip(shapes, dtypes)]
            upd(list(range(3)), gs, ws)
        monkeypatch.setattr(dispatch, "_push", real_push)
        results.append([w.asnumpy().astype(np.float64) for w in ws])
        multi_calls.append(sum("multi" in c for c in calls))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    assert multi_calls[0] == 0 and multi_calls[1] == 2 * 3  # two groups a step
    assert [w.dtype for w in ws] == [np.float16, np.float32, np.float16]


def test_sgd_optimizer_fuses_lists_like_single_updates(device):
    rng = np.random.default_rng(9)
    shapes = [(5, 3), (3,)]
    results = []
    for aggregate in (0, 16):
        opt = mx.optimizer.SGD(learning_rate=0.1, momentum=0.9, wd=0.01)
        opt.aggregate_num = aggregate
        upd = mx.optimizer.get_updater(opt)
        ws = [mx.nd.array(np.ones(s), ctx=device) for s in shapes]
        for step in range(3):
            gs = [mx.nd.array(rng.normal(size=s) + step, ctx=device) for s in shapes]
            upd([0, 1], gs, ws)
        results.append([w.asnumpy() for w in ws])
        rng = np.random.default_rng(9)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6)


# SignSGD, Signum, FTRL, FTML ops -----------------------------------------------------------
def ref_signsgd(w, g, s, lr, wd, rescale_grad, clip_gradient):
    return (1 - lr * wd) * w - lr * np.sign(g), []


def ref_signum(w, g, s, lr, momentum, wd, rescale_grad, clip_gradient, wd_lh):
    mom = momentum * s[0] - (1 - momentum) * (_clip(rescale_grad * g, clip_gradient) + wd * w)
    return (1 - lr * wd_lh) * w + lr * np.sign(mom), [mom]


def ref_ftrl(w, g, s, lr, lamda1, beta, wd, rescale_grad, clip_gradient):
    gg = _clip(rescale_grad * g, clip_gradient)
    z = s[0] + gg - (np.sqrt(s[1] + gg ** 2) - np.sqrt(s[1])) * w / lr
    n = s[1] + gg ** 2
    w = np.where(np.abs(z) > lamda1, (np.sign(z) * lamda1 - z) / ((beta + np.sqrt(n)) / lr + wd),
                 0.0)
    return w, [z, n]


SIGN_FTRL_CASES = [
    ("signsgd_update", 0, dict(lr=0.1, **PREP), ref_signsgd),
    ("signum_update", 1, dict(lr=0.1, momentum=0.9, wd_lh=0.02, **PREP), ref_signum),
    ("ftrl_update", 2, dict(lr=0.1, lamda1=0.01, beta=1.0, **PREP), ref_ftrl),
    ("ftrl_update", 2, dict(lr=0.5, lamda1=1.5, beta=0.5, **PREP), ref_ftrl),  # sparsifies
]
SIGN_FTRL_IDS = ["signsgd", "signum", "ftrl", "ftrl-l1"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("clip", [-1.0, 1.0, 0.0], ids=["noclip", "clip1", "clip0"])
@pytest.mark.parametrize("case", SIGN_FTRL_CASES, ids=SIGN_FTRL_IDS)
def test_sign_and_ftrl_ops_match_reference(case, clip, dtype, device):
    w = _run_op(case, clip, dtype, device)
    if case[3] is ref_ftrl and case[2]["lamda1"] > 1 and clip != 0.0:
        assert 0 < (w.asnumpy() == 0).sum() < w.size  # the L1 term zeroes some weights


@pytest.mark.parametrize("case", SIGN_FTRL_CASES, ids=SIGN_FTRL_IDS)
def test_sign_and_ftrl_ops_several_blocks_and_views(case, device):
    test_op_several_blocks_and_views(case, device)


def ref_ftml(w, g, s, t, lr, beta1, beta2, epsilon, wd, rescale_grad, clip_grad):
    gg = _clip(rescale_grad * g + wd * w, clip_grad)
    v = beta2 * s[1] + (1 - beta2) * gg ** 2
    d = (1 - beta1 ** t) / lr * (np.sqrt(v / (1 - beta2 ** t)) + epsilon)
    z = beta1 * s[2] + (1 - beta1) * gg - (d - beta1 * s[0]) * w
    return -z / d, [d, v, z]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("clip", [-1.0, 1.0, 0.0], ids=["noclip", "clip1", "clip0"])
@pytest.mark.parametrize("shape", [SHAPE, (300, 517)], ids=["small", "blocks"])
def test_ftml_op_matches_reference(shape, clip, dtype, device):
    attrs = dict(lr=0.05, beta1=0.6, beta2=0.9, epsilon=1e-6, wd=0.05, rescale_grad=0.5,
                 clip_grad=clip)
    w0, grads = _data(np.random.default_rng(11), dtype, shape)
    w = _nd(w0, device)
    states = [mx.nd.zeros(shape, ctx=device, dtype=dtype) for _ in range(3)]
    rw, rs = w0.astype(np.float64), [np.zeros(shape)] * 3
    for t, g in enumerate(grads, start=1):
        assert mx.nd.ftml_update(w, _nd(g, device), *states, t=t, **attrs) is w
        rw, rs = ref_ftml(rw, g.astype(np.float64), rs, t, **attrs)
        _close(w, rw, dtype, f"weight, step {t}")
        for i, (a, r) in enumerate(zip(states, rs)):
            _close(a, r, dtype, f"state {i}, step {t}")
    with pytest.raises(OperatorError, match="'t' is required"):
        mx.nd.ftml_update(w, _nd(grads[0], device), *states, lr=0.1)


# LAMB ops ------------------------------------------------------------------------------
def ref_lamb_phase1(w, g, m, v, beta1, beta2, epsilon, t, bias_correction, wd, rescale_grad,
                    clip_gradient):
    gg = _clip(rescale_grad * g, clip_gradient)
    m = beta1 * m + (1 - beta1) * gg
    v = beta2 * v + (1 - beta2) * gg ** 2
    mh, vh = (m / (1 - beta1 ** t), v / (1 - beta2 ** t)) if bias_correction else (m, v)
    return mh / (np.sqrt(vh) + epsilon) + wd * w, m, v


def ref_lamb_phase2(w, d, lr, lower_bound=-1.0, upper_bound=-1.0):
    r1, r2 = np.linalg.norm(w), np.linalg.norm(d)
    if lower_bound >= 0:
        r1 = max(r1, lower_bound)
    if upper_bound >= 0:
        r1 = min(r1, upper_bound)
    return w - lr * (r1 / r2 if r1 and r2 else 1.0) * d


LAMB_HP = dict(beta1=0.8, beta2=0.95, epsilon=1e-6, rescale_grad=0.5)
BOUNDS = [(-1.0, -1.0), (100.0, -1.0), (-1.0, 0.5)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.parametrize("clip", [-1.0, 1.0])
@pytest.mark.parametrize("bounds", BOUNDS, ids=["nobound", "lower", "upper"])
@pytest.mark.parametrize("shape", [SHAPE, (300, 517)], ids=["small", "blocks"])
def test_lamb_phases_match_reference(shape, bounds, clip, bias_correction, dtype, device):
    w0, grads = _data(np.random.default_rng(12), dtype, shape)
    w = _nd(w0, device)
    m, v = (mx.nd.zeros(shape, ctx=device, dtype=dtype) for _ in range(2))
    rw, rm, rv = w0.astype(np.float64), np.zeros(shape), np.zeros(shape)
    hp = dict(LAMB_HP, bias_correction=bias_correction, clip_gradient=clip, wd=0.05)
    lower, upper = bounds
    for t, g in enumerate(grads, start=1):
        gx = _nd(g, device)
        d = mx.nd.lamb_update_phase1(w, gx, m, v, t=t, **hp)
        rd, rm, rv = ref_lamb_phase1(rw, g.astype(np.float64), rm, rv, t=t, **hp)
        _close(d, rd, dtype, f"direction, step {t}")
        _close(m, rm, dtype, f"mean, step {t}")
        _close(v, rv, dtype, f"var, step {t}")
        out = mx.nd.lamb_update_phase2(w, d, w.norm(), d.norm(), lr=0.1, lower_bound=lower,
                                       upper_bound=upper)
        assert out is w
        rw = ref_lamb_phase2(rw, rd, 0.1, lower, upper)
        _close(w, rw, dtype, f"weight, step {t}")
        np.testing.assert_array_equal(gx.asnumpy(), g)


def test_lamb_phase2_trust_ratio_edges(device):
    """The ratio is 1 when either norm is 0; out= another array leaves the weight."""
    w = mx.nd.array([3.0, 4.0], ctx=device)
    d = mx.nd.array([1.0, -1.0], ctx=device)
    zero, five = mx.nd.zeros((1,), ctx=device), mx.nd.array([5.0], ctx=device)
    other = mx.nd.zeros((2,), ctx=device)
    assert mx.nd.lamb_update_phase2(w, d, zero, five, lr=0.5, out=other) is other
    np.testing.assert_allclose(other.asnumpy(), [2.5, 4.5])
    np.testing.assert_array_equal(w.asnumpy(), [3.0, 4.0])
    mx.nd.lamb_update_phase2(w, d, five, zero, lr=0.5)
    np.testing.assert_allclose(w.asnumpy(), [2.5, 4.5])
    mx.nd.lamb_update_phase2(w, d, mx.nd.array([10.0], ctx=device), five, lr=0.5)
    np.testing.assert_allclose(w.asnumpy(), [1.5, 5.5])  # ratio 10/5


@pytest.mark.parametrize("bias_correction", [True, False])
def test_mp_lamb_phases_update_the_master_copy(bias_correction, device):
    rng = np.random.default_rng(13)
    w0 = rng.normal(size=SHAPE)
    w32 = _nd(w0.astype(np.float32), device)
    w16 = w32.astype("float16")
    m, v = mx.nd.zeros(SHAPE, ctx=device), mx.nd.zeros(SHAPE, ctx=device)
    rw, rm, rv = w0.astype(np.float32).astype(np.float64), np.zeros(SHAPE), np.zeros(SHAPE)
    hp = dict(LAMB_HP, bias_correction=bias_correction, clip_gradient=1.0, wd=0.05)
    for t in range(1, 4):
        g = (3 * rng.normal(size=SHAPE)).astype(np.float16)
        d = mx.nd.mp_lamb_update_phase1(w16, _nd(g, device), m, v, w32, t=t, **hp)
        assert d.dtype == np.float32
        rd, rm, rv = ref_lamb_phase1(rw, g.astype(np.float64), rm, rv, t=t, **hp)
        _close(d, rd, "float32", f"direction, step {t}")
        assert mx.nd.mp_lamb_update_phase2(w16, d, w32.norm(), d.norm(), w32, lr=0.1) is w16
        rw = ref_lamb_phase2(rw, rd, 0.1)
        _close(w32, rw, "float32", f"master weight, step {t}")
        np.testing.assert_array_equal(w16.asnumpy(), w32.asnumpy().astype(np.float16))


def _lamb_tensors(rng, shapes, dtype, device):
    return [[_nd(rng.normal(size=s).astype(dtype), device) for s in shapes],
            [_nd((3 * rng.normal(size=s)).astype(dtype), device) for s in shapes],
            [mx.nd.zeros(s, ctx=device, dtype=dtype) for s in shapes],
            [mx.nd.zeros(s, ctx=device, dtype=dtype) for s in shapes]]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multi_lamb_matches_the_phases(dtype, device):
    shapes = [(4, 3), (5,), (2, 3, 4), (300, 517)]
    steps, lrs, wds = [1, 3, 2, 5], [0.1, 0.05, 0.2, 0.01], [0.0, 0.01, 0.1, 0.05]
    hp = dict(LAMB_HP, clip_gradient=1.0, bias_correction=True, lower_bound=0.5,
              upper_bound=30.0)
    fused = _lamb_tensors(np.random.default_rng(3), shapes, dtype, device)
    single = _lamb_tensors(np.random.default_rng(3), shapes, dtype, device)
    out = mx.nd.multi_lamb_update(*fused, step_count=steps, lrs=lrs, wds=wds, **hp)
    assert all(o is w for o, w in zip(out, fused[0]))
    for (w, g, m, v), t, lr, wd in zip(zip(*single), steps, lrs, wds):
        d = mx.nd.lamb_update_phase1(w, g, m, v, t=t, wd=wd, **{
            k: hp[k] for k in ("beta1", "beta2", "epsilon", "rescale_grad", "clip_gradient",
                               "bias_correction")})
        mx.nd.lamb_update_phase2(w, d, w.norm(), d.norm(), lr=lr, lower_bound=0.5,
                                 upper_bound=30.0)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-14)
    for group_f, group_s in zip(fused, single):
        for a, b in zip(group_f, group_s):
            np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), **tol)
    assert not np.allclose(fused[0][3].asnumpy(), single[1][3].asnumpy())  # it moved


def test_multi_mp_lamb_matches_the_mp_phases(device):
    shapes = [(4, 3), (300, 517)]
    results = []
    for fused in (True, False):
        w, g, m, v = _lamb_tensors(np.random.default_rng(8), shapes, "float32", device)
        w32, w16, g16 = w, [x.astype("float16") for x in w], [x.astype("float16") for x in g]
        if fused:
            mx.nd.multi_mp_lamb_update(w16, g16, m, v, w32, step_count=[2, 1], lrs=[0.1, 0.2],
                                       wds=[0.01, 0.0], clip_gradient=1.0)
        else:
            for a16, b16, mm, vv, a32, t, lr, wd in zip(w16, g16, m, v, w32, [2, 1],
                                                       [0.1, 0.2], [0.01, 0.0]):
                d = mx.nd.mp_lamb_update_phase1(a16, b16, mm, vv, a32, t=t, wd=wd,
                                                clip_gradient=1.0)
                mx.nd.mp_lamb_update_phase2(a16, d, a32.norm(), d.norm(), a32, lr=lr)
        results.append([x.asnumpy().astype(np.float64) for x in w16 + w32 + m + v])
    for i, (a, b) in enumerate(zip(*results)):
        # the float16 weights: within one rounding (the norms' last bits differ)
        np.testing.assert_allclose(a, b, rtol=1e-3 if i < len(shapes) else 1e-5, atol=1e-6)


def test_lamb_op_errors(device):
    w, g = mx.nd.ones((2, 3), ctx=device), mx.nd.ones((2, 3), ctx=device)
    m, v = mx.nd.zeros((2, 3), ctx=device), mx.nd.zeros((2, 3), ctx=device)
    with pytest.raises(OperatorError, match="'t' is required"):
        mx.nd.lamb_update_phase1(w, g, m, v, wd=0.0)
    with pytest.raises(OperatorError, match="one shape"):
        mx.nd.lamb_update_phase1(w, g, m, mx.nd.zeros((3, 2), ctx=device), t=1, wd=0.0)
    with pytest.raises(OperatorError, match="one element"):
        mx.nd.lamb_update_phase2(w, g, mx.nd.ones((2,), ctx=device), mx.nd.ones((1,), ctx=device),
                                 lr=0.1)
    with pytest.raises(OperatorError, match="share memory"):
        mx.nd.lamb_update_phase1(w, g, m, m, t=1, wd=0.0)
    w16 = w.astype("float16")
    with pytest.raises(OperatorError, match="float32"):
        mx.nd.mp_lamb_update_phase1(w16, w16.copy(), m.astype("float16"), v, w, t=1, wd=0.0)
    with pytest.raises(OperatorError, match="num_tensors=2"):
        mx.nd.multi_lamb_update([w, w.copy()], [g], [m], [v], step_count=[1], lrs=[0.1],
                                wds=[0.0])
    with pytest.raises(OperatorError, match="unknown argument"):
        mx.nd.multi_lamb_update([w], [g], [m], [v], step_count=[1], lrs=[0.1], wds=[0.0],
                                beta3=0.5)
    np.testing.assert_array_equal(w.asnumpy(), np.ones((2, 3)))
    np.testing.assert_array_equal(m.asnumpy(), np.zeros((2, 3)))


# the optimizers built on them, and the Python-level ones -----------------------------------
def _ref_more(name, hp, t, w, g, s, lr, wd, memo):
    """One step of the optimizers added for MXNet 1.x parity (states ``s`` in place;
    ``memo`` carries Nadam's running momentum product)."""
    rs, c = hp["rescale_grad"], hp.get("clip_gradient")
    if name == "signum":
        mu = hp.get("momentum", 0.9)
        wd_lh = hp.get("wd_lh", 0.0)
        if not mu:
            return (1 - lr * (wd + wd_lh)) * w - lr * np.sign(g)
        s[0] = mu * s[0] - (1 - mu) * (_clip(rs * g, c) + wd * w)
        return (1 - lr * wd_lh) * w + lr * np.sign(s[0])
    if name == "ftml":
        attrs = dict(lr=lr, beta1=hp["beta1"], beta2=hp["beta2"], epsilon=hp["epsilon"], wd=wd,
                     rescale_grad=rs, clip_grad=c if c else -1)
        w, s[:] = ref_ftml(w, g, s, t, **attrs)
        return w
    if name == "ftrl":
        w, s[:] = ref_ftrl(w, g, s, lr, hp["lamda1"], hp["beta"], wd, rs, c if c else -1)
        return w
    gg = _clip(rs * g + wd * w, c)
    if name == "adamax":
        b1, b2 = hp["beta1"], hp["beta2"]
        s[0] = b1 * s[0] + (1 - b1) * gg
        s[1] = np.maximum(b2 * s[1], np.abs(gg))
        return w - lr / (1 - b1 ** t) * s[0] / s[1]
    if name == "nadam":
        b1, b2, eps, decay = hp["beta1"], hp["beta2"], hp["epsilon"], hp["schedule_decay"]
        mu = b1 * (1 - 0.5 * 0.96 ** (t * decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * decay))
        memo["schedule"] = memo.get("schedule", 1.0) * mu
        s[0] = b1 * s[0] + (1 - b1) * gg
        s[1] = b2 * s[1] + (1 - b2) * gg ** 2
        m_bar = ((1 - mu) * gg / (1 - memo["schedule"])
                 + mu_next * s[0] / (1 - memo["schedule"] * mu_next))
        return w - lr * m_bar / (np.sqrt(s[1] / (1 - b2 ** t)) + eps)
    if name == "lamb":
        hp1 = dict(beta1=hp["beta1"], beta2=hp["beta2"], epsilon=hp["epsilon"],
                   bias_correction=hp.get("bias_correction", True), rescale_grad=rs,
                   clip_gradient=c if c else -1)
        d, s[0], s[1] = ref_lamb_phase1(w, g, s[0], s[1], t=t, wd=wd, **hp1)
        return ref_lamb_phase2(w, d, lr, hp.get("lower_bound") or -1.0,
                               hp.get("upper_bound") or -1.0)
    if name == "dcasgd":
        gg = _clip(rs * g, c)
        step = -lr * (gg + wd * w + hp["lamda"] * gg * gg * (w - s[-1]))
        if hp.get("momentum"):
            s[0] = hp["momentum"] * s[0] + step
            step = s[0]
        s[-1] = w
        return w + step
    raise AssertionError(name)


MORE_CASES = [
    ("signum", {"momentum": 0.9, "wd_lh": 0.01}),
    ("signum", {"momentum": 0.0, "wd_lh": 0.01}),
    ("ftml", {"beta1": 0.6, "beta2": 0.9, "epsilon": 1e-6}),
    ("ftrl", {"lamda1": 0.01, "beta": 1.0}),
    ("adamax", {"beta1": 0.8, "beta2": 0.95}),
    ("nadam", {"beta1": 0.8, "beta2": 0.95, "epsilon": 1e-6, "schedule_decay": 0.004}),
    ("lamb", {"beta1": 0.8, "beta2": 0.95, "epsilon": 1e-6}),
    ("lamb", {"beta1": 0.8, "beta2": 0.95, "epsilon": 1e-6, "bias_correction": False,
              "lower_bound": 0.5, "upper_bound": 2.0}),
    ("dcasgd", {"lamda": 0.04}),
    ("dcasgd", {"lamda": 0.04, "momentum": 0.9}),
]
MORE_IDS = ["signum", "signum-mom0", "ftml", "ftrl", "adamax", "nadam", "lamb", "lamb-bounds",
            "dcasgd", "dcasgd-mom"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("clip", [None, 1.0], ids=["noclip", "clip1"])
@pytest.mark.parametrize("name,hp", MORE_CASES, ids=MORE_IDS)
def test_more_optimizers_match_reference(name, hp, clip, dtype, device):
    hp = {**hp, "learning_rate": 0.05, "wd": 0.02, "rescale_grad": 0.5, "clip_gradient": clip}
    opt = mx.optimizer.create(name, **hp)
    w0, grads = _data(np.random.default_rng(7), dtype)
    w = _nd(w0, device)
    state = opt.create_state(0, w)
    arrays = _flat(state)
    rw = w0.astype(np.float64)
    rs = [a.asnumpy().astype(np.float64) for a in arrays]
    memo = {}
    for t, g in enumerate(grads, start=1):
        opt.update(0, w, _nd(g, device), state)
        rw = _ref_more(name, hp, t, rw, g.astype(np.float64), rs, 0.05, 0.02, memo)
        _close(w, rw, dtype, f"{name} weight, step {t}")
        for i, (a, r) in enumerate(zip(arrays, rs)):
            _close(a, r, dtype, f"{name} state {i}, step {t}")
    assert opt.num_update == STEPS


@pytest.mark.parametrize("name,hp", MORE_CASES, ids=MORE_IDS)
def test_more_optimizers_update_in_place(name, hp, device):
    test_updates_are_in_place(name, hp, device)


@pytest.mark.parametrize("name,hp", MORE_CASES[:4], ids=MORE_IDS[:4])
def test_fused_more_optimizers_allocate_nothing_of_weight_size(name, hp, device):
    test_steps_allocate_nothing_of_weight_size(name, hp, device)


def test_sgld_adds_seeded_gaussian_noise(device):
    shape = (200, 500)
    lr, wd, rs = 0.01, 0.1, 0.5
    rng = np.random.default_rng(2)
    w0, g = rng.normal(size=shape), rng.normal(size=shape)
    opt = mx.optimizer.SGLD(learning_rate=lr, wd=wd, rescale_grad=rs, clip_gradient=0.3)
    w = _nd(w0.astype(np.float32), device)
    mx.random.seed(42)
    opt.update(0, w, _nd(g.astype(np.float32), device), opt.create_state(0, w))
    mx.random.seed(42)
    noise = mx.random.normal(0, math.sqrt(lr), shape=shape, dtype="float32", ctx=device)
    drift = w0 - lr / 2 * (np.clip(rs * g, -0.3, 0.3) + wd * w0)
    np.testing.assert_allclose(w.asnumpy(), drift + noise.asnumpy(), rtol=1e-5, atol=1e-6)
    step = w.asnumpy() - drift
    assert abs(step.mean()) < 5e-3 and abs(step.std() / math.sqrt(lr) - 1) < 0.02


def test_lamb_lists_fuse_like_single_updates(device):
    """Lists go through multi_lamb_update (float16 weights through their float32
    masters), with the numbers of weight-by-weight updates."""
    shapes = [(5, 3), (3,), (4, 2)]
    dtypes = ["float32", "float32", "float16"]
    results = []
    for aggregate in (0, 64):
        rng = np.random.default_rng(6)
        opt = mx.optimizer.LAMB(learning_rate=0.1, wd=0.01, multi_precision=True,
                                lower_bound=0.1)
        opt.aggregate_num = aggregate
        opt.set_lr_mult({1: 0.5})
        upd = mx.optimizer.get_updater(opt)
        ws = [mx.nd.array(rng.normal(size=s), ctx=device, dtype=d)
              for s, d in zip(shapes, dtypes)]
        for step in range(3):
            gs = [mx.nd.array(rng.normal(size=s), ctx=device, dtype=d)
                  for s, d in zip(shapes, dtypes)]
            k = 3 if step else 2  # weight 2 starts one step later
            upd(list(range(k)), gs[:k], ws[:k])
        results.append([w.asnumpy().astype(np.float64) for w in ws])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_more_optimizers_registry_and_states_round_trip(device):
    for name in ("signum", "ftml", "ftrl", "adamax", "nadam", "lamb", "sgld", "dcasgd",
                 "ccsgd"):
        assert type(mx.optimizer.create(name)).__name__.lower() == name
    assert mx.optimizer.create("ftrl").learning_rate == 0.1  # Ftrl's own default
    opt = mx.optimizer.Nadam(learning_rate=0.01)
    upd = mx.optimizer.get_updater(opt)
    w = mx.nd.ones((3, 2), ctx=device)
    for _ in range(2):
        upd(0, mx.nd.ones((3, 2), ctx=device), w)
    blob = upd.get_states(dump_optimizer=True)
    fresh = mx.optimizer.get_updater(mx.optimizer.Nadam())
    fresh.set_states(blob)
    assert fresh.optimizer.m_schedule == opt.m_schedule != 1.0
    for a, b in zip(_flat(fresh.states[0]), _flat(upd.states[0])):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
