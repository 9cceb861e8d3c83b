"""gluon.Trainer with kvstores, on several CPU device ids: MXNet 1.9.1's choice of
store and update_on_kvstore, both update paths against hand-computed values, resets
when parameters are loaded, state files shared by the paths, stale gradients,
custom stores, and Parameter <-> Trainer bookkeeping."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore import gluon
from mxcore.base import MXCoreError
from mxcore.gluon import trainer as trainer_mod
from mxcore.gluon.parameter import TrainerConflictError
from mxcore.gluon.trainer import StaleGradientError, TrainerError
from mxcore.kvstore import KVStore, KVStoreNotProvidedError

nd = mx.nd
CTXS = [mx.cpu(0), mx.cpu(1)]


def _param(name="x", shape=(10,), ctx=CTXS, **kwargs):
    x = gluon.Parameter(name, shape=shape, **kwargs)
    x.initialize(ctx=ctx, init="zeros")
    return x


def _backward(x, scale=lambda i: 1.0):
    """d(sum(scale(i) * w + 1))/dw = scale(i) on the i-th copy."""
    with mx.autograd.record():
        for i, w in enumerate(x.list_data()):
            (w * scale(i) + 1).backward()


def _values(x):
    return [w.asnumpy() for w in x.list_data()]


@pytest.fixture(autouse=True)
def _default_update_on_kvstore(monkeypatch):
    monkeypatch.delenv("MXCORE_UPDATE_ON_KVSTORE", raising=False)
    monkeypatch.delenv("MXNET_UPDATE_ON_KVSTORE", raising=False)


# which store, which path ------------------------------------------------------------------------
def test_one_device_needs_no_store():
    x = _param(ctx=[mx.cpu(0)])
    trainer = gluon.Trainer([x], "sgd", {"learning_rate": 1.0, "momentum": 0.5})
    _backward(x)
    trainer.step(1)
    assert trainer._kvstore is None and trainer._update_on_kvstore is None
    assert trainer._kv_initialized and len(trainer._updaters) == 1
    np.testing.assert_array_equal(x.data().asnumpy(), -1)


def test_update_on_kvstore_by_default():
    x = _param()
    assert x._trainer is None
    trainer = gluon.Trainer([x], "sgd", {"learning_rate": 1.0, "momentum": 0.5})
    assert x._trainer is trainer and not trainer._kv_initialized
    _backward(x)
    trainer.step(1)
    assert isinstance(trainer._kvstore, KVStore) and trainer._kvstore.type == "device"
    assert trainer._update_on_kvstore is True
    for v in _values(x):                      # mom = -(1 + 1); w = mom
        np.testing.assert_array_equal(v, -2)
    x.lr_mult = 0.5
    _backward(x)
    trainer.step(1)
    for v in _values(x):                      # mom = 0.5 * -2 - 0.5 * 2; w = -2 + mom
        np.testing.assert_array_equal(v, -4)
    assert trainer._kvstore._updater.optimizer is trainer._optimizer
    with pytest.raises(TrainerError, match="update_on_kvstore"):
        trainer.update(1)
    with pytest.raises(AssertionError):        # what MXNet raises there
        trainer.allreduce_grads()


def test_local_updates_after_allreduce():
    x = _param()
    trainer = gluon.Trainer([x], "sgd", {"learning_rate": 1.0, "momentum": 0.5},
                            update_on_kvstore=False)
    _backward(x, scale=lambda i: float(i))     # gradients 0 and 1
    g = [x.grad(c).asnumpy() for c in CTXS]
    assert (g[0] != g[1]).all()
    trainer.allreduce_grads()
    for c in CTXS:
        np.testing.assert_array_equal(x.grad(c).asnumpy(), 1)
    trainer.update(1)
    assert trainer._kvstore.type == "device" and trainer._update_on_kvstore is False
    assert len(trainer._updaters) == 2
    for v in _values(x):
        np.testing.assert_array_equal(v, -1)


def test_kvstore_none_keeps_copies_apart():
    """As MXNet: without a store the copies are not synchronised."""
    x = _param()
    trainer = gluon.Trainer([x], "sgd", {"learning_rate": 1.0}, kvstore=None)
    _backward(x, scale=lambda i: float(i + 1))
    trainer.step(1)
    assert trainer._kvstore is None
    a, b = _values(x)
    np.testing.assert_array_equal(a, -1)
    np.testing.assert_array_equal(b, -2)


@pytest.mark.parametrize("env", ["MXNET_UPDATE_ON_KVSTORE", "MXCORE_UPDATE_ON_KVSTORE"])
def test_environment_variable(monkeypatch, env):
    monkeypatch.setenv(env, "0")
    x = _param()
    trainer = gluon.Trainer([x], "sgd")
    _backward(x)
    trainer.step(1)
    assert trainer._update_on_kvstore is False
    explicit = gluon.Trainer([_param()], "sgd", update_on_kvstore=True)
    explicit._init_kvstore()
    assert explicit._update_on_kvstore is True


def test_big_parameters_update_on_devices_with_local(monkeypatch):
    monkeypatch.setattr(trainer_mod, "_BIG_PARAMETER", 9)     # MXNet: 16M elements
    for kv, expected in (("local", False), ("device", True)):
        trainer = gluon.Trainer([_param()], "sgd", kvstore=kv)
        trainer._init_kvstore()
        assert trainer._update_on_kvstore is expected, kv


def test_store_instances_and_custom_stores():
    kv = mx.kv.create("local")
    x = _param()
    trainer = gluon.Trainer([x], "sgd", {"learning_rate": 0.5}, kvstore=kv)
    _backward(x)
    trainer.step(1)
    assert trainer._kvstore is kv and trainer._update_on_kvstore
    np.testing.assert_array_equal(x.data(CTXS[1]).asnumpy(), -1)
    # a store that cannot run an optimizer: the devices update
    ts = mx.kv.create("teststore")
    y = _param()
    trainer = gluon.Trainer([y], "sgd", {"learning_rate": 1.0, "momentum": 0.5}, kvstore=ts)
    _backward(y)
    trainer.step(1)
    assert trainer._update_on_kvstore is False
    np.testing.assert_array_equal(y.data(CTXS[1]).asnumpy(), -2)
    invalid = gluon.Trainer([y], "sgd", kvstore=ts, update_on_kvstore=True)
    with pytest.raises(ValueError, match="update_on_kvstore=False"):
        invalid._init_kvstore()
    with pytest.raises(TypeError, match="kvstore must be"):
        gluon.Trainer([_param()], "sgd", kvstore=3).step(1)
    with pytest.raises(KVStoreNotProvidedError):
        gluon.Trainer([_param()], "sgd", kvstore="horovod").step(1)


def test_compression_params_reach_the_store():
    x = _param(shape=(6,))
    trainer = gluon.Trainer([x], "sgd", {"learning_rate": 1.0}, update_on_kvstore=False,
                            compression_params={"type": "2bit", "threshold": 0.5})
    grads = [np.array([0.3, 0.6, -0.7, 0.2, 1.5, -0.1]),
             np.array([0.3, 0.1, -0.2, -0.6, 0.4, 2.0])]
    with mx.autograd.record():
        for w, g in zip(x.list_data(), grads):
            (w * nd.array(g, ctx=w.context)).sum().backward()
    trainer.allreduce_grads()
    # each copy sends +-0.5 where its value reached +-0.5 (MXNet's 2-bit scheme)
    want = [0, 0.5, -0.5, -0.5, 0.5, 0.5]
    for c in CTXS:
        np.testing.assert_allclose(x.grad(c).asnumpy(), want, atol=1e-7)


# sparse storage types: dense here, MXNet's choices kept -----------------------------------------
def test_sparse_gradient_defaults_to_device_updates():
    x = _param(grad_stype="row_sparse")
    trainer = gluon.Trainer([x], "sgd", {"learning_rate": 0.1})
    _backward(x)
    trainer.step(1)
    assert trainer._update_on_kvstore is False
    np.testing.assert_allclose(x.data(CTXS[0]).asnumpy(), -0.2, rtol=1e-6)


def test_sparse_weight_is_updated_on_the_store_and_has_one_trainer():
    x = _param(stype="row_sparse")
    trainer = gluon.Trainer([x], "sgd", {"learning_rate": 0.1})
    trainer._init_kvstore()
    assert trainer._update_on_kvstore is True
    with pytest.raises(ValueError, match="sparse weights"):
        gluon.Trainer([_param(stype="row_sparse")], "sgd", update_on_kvstore=False).step(1)
    x._set_trainer(None)
    assert x._trainer is None
    x._set_trainer(trainer)
    with pytest.raises(TrainerConflictError, match="More than one trainer") as err:
        gluon.Trainer([x], "sgd")
    assert isinstance(err.value, RuntimeError)
    # a dense parameter may be given to several trainers: the last one is recorded
    y = _param()
    t1 = gluon.Trainer([y], "sgd")
    t2 = gluon.Trainer([y], "sgd")
    assert y._trainer is t2 and t1 is not t2
    with pytest.raises(ValueError, match="stype must be one of"):
        gluon.Parameter("z", stype="dense")


def test_row_sparse_data_inside_forward():
    """An embedding-style row_sparse weight read through row_sparse_data while
    recording: the copies hold the store's value, and the update reaches them."""
    w = gluon.Parameter("w", shape=(4, 3), stype="row_sparse", grad_stype="row_sparse")
    w.initialize(ctx=CTXS, init="ones")
    trainer = gluon.Trainer([w], "sgd", {"learning_rate": 1.0})
    rows = [nd.array([0, 2], ctx=CTXS[0]), nd.array([1, 2], ctx=CTXS[1])]
    with mx.autograd.record():
        outs = [nd.Embedding(r, w.row_sparse_data(r), input_dim=4, output_dim=3,
                             sparse_grad=True).sum() for r in rows]
    for o in outs:
        o.backward()
    trainer.step(1)
    assert trainer._update_on_kvstore is True and not trainer._params_to_init
    all_rows = nd.arange(0, 4, ctx=CTXS[1])
    got = w.row_sparse_data(all_rows)
    assert got.context == CTXS[1]
    # row 2 was read on both devices, rows 0 and 1 once, row 3 never
    np.testing.assert_array_equal(got.asnumpy(), [[0] * 3, [0] * 3, [-1] * 3, [1] * 3])
    for v in w.list_row_sparse_data(all_rows):
        np.testing.assert_array_equal(v.asnumpy(), got.asnumpy())
    dense = _param("dense")
    gluon.Trainer([dense], "sgd")
    with pytest.raises(RuntimeError, match="storage type is default"):
        dense.row_sparse_data(all_rows)
    lonely = gluon.Parameter("lonely", shape=(4, 3), stype="row_sparse")
    lonely.initialize(ctx=CTXS)
    with pytest.raises(RuntimeError, match="no Trainer"):
        lonely.list_row_sparse_data(all_rows)
    with pytest.raises(TypeError, match="row_id must be an NDArray"):
        w.list_row_sparse_data([0, 1])


# resets ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kv", ["local", "device"])
def test_loading_parameters_resets_the_store(tmp_path, kv):
    params = gluon.ParameterDict()
    x = params.get("x", shape=(10,), lr_mult=1.0)
    params.initialize(ctx=CTXS, init="zeros")
    trainer = gluon.Trainer(params, "sgd", {"learning_rate": 0.1, "momentum": 0.5},
                            kvstore=kv)
    path = str(tmp_path / "p.params")
    params.save(path)
    _backward(x)
    trainer.step(1)
    assert trainer._kvstore.type == kv
    updater = trainer._kvstore._updater
    params.load(path)
    assert trainer._kvstore is None and trainer._kv_initialized is False
    _backward(x)
    trainer.step(1)
    # from the loaded zeros, with the momentum kept: mom = 0.5 * -0.2 - 0.2
    for v in _values(x):
        np.testing.assert_allclose(v, -0.3, rtol=1e-6)
    assert trainer._kvstore._updater is updater


def test_set_data_and_reinitialize_reach_the_store():
    x = _param()
    trainer = gluon.Trainer([x], "sgd", {"learning_rate": 1.0})
    _backward(x)
    trainer.step(1)
    x.set_data(nd.ones((10,)) * 5)
    _backward(x)
    trainer.step(1)
    for v in _values(x):
        np.testing.assert_array_equal(v, 3)
    x.initialize(init="ones", ctx=CTXS, force_reinit=True)
    _backward(x)
    trainer.step(1)
    for v in _values(x):
        np.testing.assert_array_equal(v, -1)


def test_trainer_made_before_initialization():
    net = gluon.nn.Dense(1, in_units=2, use_bias=False)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    net.initialize(mx.init.One(), ctx=CTXS)
    xs = [nd.array([[1.0, 2.0]], ctx=CTXS[0]), nd.array([[3.0, 4.0]], ctx=CTXS[1])]
    with mx.autograd.record():
        losses = [net(x).sum() for x in xs]
    for loss in losses:
        loss.backward()
    trainer.step(2)
    for c in CTXS:
        np.testing.assert_allclose(net.weight.data(c).asnumpy(), [[0.8, 0.7]], rtol=1e-6)


def test_parameters_on_different_devices_are_refused():
    a, b = _param("a", ctx=CTXS), _param("b", ctx=[mx.cpu(2)])
    with pytest.raises(TrainerError, match="same set of contexts"):
        gluon.Trainer([a, b], "sgd")


def test_dict_parameters_in_sorted_order():
    params = {"zeta": _param("zeta"), "alpha": _param("alpha"), "mid": _param("mid")}
    trainer = gluon.Trainer(params, "sgd")
    assert [p.name for p in trainer._params] == ["alpha", "mid", "zeta"]
    assert trainer._param2idx == {"alpha": 0, "mid": 1, "zeta": 2}


# stale gradients --------------------------------------------------------------------------------
@pytest.mark.parametrize("on_kvstore", [True, False])
def test_stale_gradients(on_kvstore):
    x, y = _param("x"), _param("y")
    trainer = gluon.Trainer([x, y], "sgd", {"learning_rate": 1.0},
                            update_on_kvstore=on_kvstore)
    _backward(x)
    with pytest.raises(StaleGradientError, match="'y'.*has not been updated by backward"):
        trainer.step(1)
    for v in _values(x) + _values(y):          # nothing changed
        np.testing.assert_array_equal(v, 0)
    trainer.step(1, ignore_stale_grad=True)
    for v in _values(x):
        np.testing.assert_array_equal(v, -2)
    for v in _values(y):
        np.testing.assert_array_equal(v, 0)
    assert issubclass(StaleGradientError, UserWarning)
    assert issubclass(StaleGradientError, MXCoreError)


# one call per device, one per step on the store ------------------------------------------------
def test_updates_are_batched():
    calls = []

    class Counting(mx.optimizer.Updater):
        def __call__(self, index, grad, weight):
            calls.append(list(index))
            super().__call__(index, grad, weight)

    params = [_param(n, ctx=[mx.cpu(0)]) for n in "abc"]
    trainer = gluon.Trainer(params, "sgd", {"learning_rate": 1.0})
    trainer._updaters = [Counting(trainer._optimizer)]
    for p in params:
        _backward(p)
    trainer.step(1)
    assert calls == [[0, 1, 2]]
    calls.clear()
    params = [_param(n) for n in "abc"]
    trainer = gluon.Trainer(params, "sgd", {"learning_rate": 1.0})
    trainer._init_kvstore()
    trainer._kvstore._set_updater(Counting(trainer._optimizer))
    for p in params:
        _backward(p)
    trainer.step(1)
    assert calls == [[0, 1, 2]]
    for p in params:
        for v in _values(p):
            np.testing.assert_array_equal(v, -2)


# state files ------------------------------------------------------------------------------------
def _run(trainer, x, steps):
    for _ in range(steps):
        _backward(x, scale=lambda i: float(i + 1))
        trainer.step(1)


@pytest.mark.parametrize("save_on,load_on", [(True, False), (False, True), (True, True),
                                             (None, True)])
def test_states_files_load_on_either_path(tmp_path, save_on, load_on):
    """update_on_kvstore=None with one device: no store at all."""
    hp = {"learning_rate": 0.1, "momentum": 0.9}
    ctx = [mx.cpu(0)] if save_on is None else CTXS
    x = _param(ctx=ctx)
    trainer = gluon.Trainer([x], "sgd", dict(hp), update_on_kvstore=save_on)
    _run(trainer, x, 2)
    path = str(tmp_path / "t.states")
    trainer.save_states(path)
    w = x.data().asnumpy()
    if save_on is not None:
        _run(trainer, x, 1)                    # the reference continues
    y = gluon.Parameter("x", shape=(10,))
    y.initialize(ctx=CTXS, init="zeros")
    y.set_data(nd.array(w))
    other = gluon.Trainer([y], "sgd", {"learning_rate": 5.0, "momentum": 0.0},
                          update_on_kvstore=load_on)
    other.load_states(path)
    assert other._optimizer.momentum == 0.9 and other.learning_rate == 0.1
    assert other._optimizer.param_dict[0] is y
    _run(other, y, 1)
    # momentum m after two steps of gradient g = 3 (sum over the copies, or 1 alone)
    g = 3.0 if save_on is not None else 1.0
    m = -0.1 * g * 0.9 - 0.1 * g
    want = w + 0.9 * m - 0.1 * 3.0
    for v in _values(y):
        np.testing.assert_allclose(v, want, rtol=1e-5)
    if save_on is not None:
        for a, b in zip(_values(x), _values(y)):
            np.testing.assert_allclose(a, b, rtol=1e-6)
    if load_on:
        assert other._kvstore._updater.optimizer is other._optimizer
    else:
        assert all(u.optimizer is other._optimizer for u in other._updaters)


def test_save_load_keep_parameter_multipliers(tmp_path):
    x = gluon.Parameter("x", shape=(10,), lr_mult=1.0)
    x.initialize(ctx=CTXS, init="zeros")
    trainer = gluon.Trainer([x], "sgd", {"learning_rate": 0.1})
    _backward(x)
    trainer.step(1)
    assert trainer._kvstore._updater.optimizer._get_lr(0) == 0.1
    path = str(tmp_path / "s")
    trainer.save_states(path)
    trainer.load_states(path)
    x.lr_mult = 2.0
    assert trainer._kvstore._updater.optimizer._get_lr(0) == pytest.approx(0.2)
