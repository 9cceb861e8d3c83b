"""mx.kv: the single-process KVStore (init/push/pull/pushpull/broadcast over several CPU
device ids, updaters and optimizers, 2-bit compression, state files), custom stores
through KVStoreBase.register, and the errors for what is not provided."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.kvstore import KVStore, KVStoreBase, KVStoreNotProvidedError, TestStore

nd = mx.nd
SHAPE = (4, 4)
DEVS = [mx.cpu(i) for i in range(4)]


def _full(value, ctx=None, dtype="float32", shape=SHAPE):
    return nd.array(np.full(shape, value, dtype=np.float64), ctx=ctx, dtype=dtype)


def _np(x):
    return x.asnumpy()


# creation -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["local", "device", "nccl", "local_update_cpu",
                                  "local_allreduce_cpu", "local_allreduce_device"])
def test_create_single_process_types(name):
    kv = mx.kv.create(name)
    assert isinstance(kv, KVStore) and isinstance(kv, KVStoreBase)
    assert (kv.type, kv.rank, kv.num_workers) == (name, 0, 1)
    assert kv.is_capable("optimizer") and kv.is_capable(KVStoreBase.OPTIMIZER.upper())
    with pytest.raises(ValueError, match="Unknown capability"):
        kv.is_capable("sparse")


def test_create_names_and_errors():
    assert mx.kv is mx.kvstore and mx.kv.create is mx.kvstore.create
    assert mx.kv.create().type == "local"
    assert mx.kv.create("LOCAL").type == "local"
    with pytest.raises(TypeError, match="name must be a string"):
        mx.kv.create(3)
    # (dist_sync, dist_device_sync and dist_async: tests/distributed, on MPI ranks)
    for name in ("horovod", "byteps"):
        with pytest.raises(KVStoreNotProvidedError, match=f"'{name}' is not provided.*dist_sync"):
            mx.kv.create(name)
    assert issubclass(KVStoreNotProvidedError, NotImplementedError)
    with pytest.raises(MXCoreError, match="unknown kvstore type 'locl'.*local"):
        mx.kv.create("locl")


# init / push / pull -------------------------------------------------------------------------
@pytest.mark.parametrize("key,keys", [(3, [5, 7, 11]), ("a", ["b", "c", "d"])])
def test_init_push_pull_single_and_lists(key, keys):
    kv = mx.kv.create()
    kv.init(key, _full(4))
    out = nd.zeros(SHAPE)
    kv.pull(key, out=out)
    np.testing.assert_array_equal(_np(out), 4)
    kv.init(keys, [nd.zeros(SHAPE)] * len(keys))     # one shared array: copies are stored
    kv.push(keys, [_full(i + 1) for i in range(len(keys))])
    outs = [nd.zeros(SHAPE) for _ in keys]
    kv.pull(keys, out=outs)
    for i, o in enumerate(outs):
        np.testing.assert_array_equal(_np(o), i + 1)
    # without an updater a push replaces the value (MXNet's assign semantics)
    kv.push(key, _full(1.5))
    kv.pull(key, out=out)
    np.testing.assert_array_equal(_np(out), 1.5)


def test_push_sums_values_from_devices_and_pull_copies_to_devices():
    kv = mx.kv.create("device")
    kv.init("w", nd.zeros(SHAPE, ctx=DEVS[1]))
    vals = [_full(i + 1, ctx=d) for i, d in enumerate(DEVS)]
    kv.push("w", vals)
    outs = [nd.zeros(SHAPE, ctx=d) for d in DEVS]
    kv.pull("w", out=outs)
    for d, o in zip(DEVS, outs):
        assert o.context == d
        np.testing.assert_array_equal(_np(o), 1 + 2 + 3 + 4)
    # lists of keys, each with values on every device
    kv.init(["x", "y"], [nd.zeros(SHAPE), nd.zeros(SHAPE)])
    kv.push(["x", "y"], [[_full(2, ctx=d) for d in DEVS], [_full(-1, ctx=d) for d in DEVS]])
    outs = [[nd.zeros(SHAPE, ctx=d) for d in DEVS] for _ in range(2)]
    kv.pull(["x", "y"], out=outs)
    for o in outs[0]:
        np.testing.assert_array_equal(_np(o), 8)
    for o in outs[1]:
        np.testing.assert_array_equal(_np(o), -4)


def test_where_values_live():
    local, device = mx.kv.create("local"), mx.kv.create("device")
    for kv in (local, device):
        kv.init(0, nd.ones((2,), ctx=DEVS[2]))
    assert local._store[0].context == mx.cpu(0)      # MXNet's local: kept on the CPU
    assert device._store[0].context == DEVS[2]        # device: where the value came from
    a = nd.ones((2,), ctx=DEVS[2])
    device.init(1, a)
    a[:] = 7                                          # the store holds a copy
    out = nd.zeros((2,))
    device.pull(1, out=out)
    np.testing.assert_array_equal(_np(out), 1)


def test_dtypes_cast_on_push_and_pull():
    kv = mx.kv.create()
    kv.init(0, nd.zeros((3,)))
    kv.push(0, [_full(2, shape=(3,)), _full(0.5, dtype="float64", shape=(3,)),
                _full(1, dtype="float16", shape=(3,))])
    out = nd.zeros((3,), dtype="float16")
    kv.pull(0, out=out)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(_np(out), 3.5)


def test_pushpull_and_broadcast():
    kv = mx.kv.create("device")
    kv.init(1, nd.zeros((2,)))
    vals = [nd.array([1.0, 2.0], ctx=DEVS[0]), nd.array([3.0, 5.0], ctx=DEVS[1])]
    kv.pushpull(1, vals)                       # no out: the sum goes back into the values
    for v in vals:
        np.testing.assert_array_equal(_np(v), [4, 7])
    out = nd.zeros((2,), ctx=DEVS[3])
    kv.pushpull(1, nd.array([1.0, 1.0]), out=out)
    np.testing.assert_array_equal(_np(out), [1, 1])
    outs = [nd.zeros((2,), ctx=d) for d in DEVS[:2]]
    kv.broadcast(9, nd.array([7.0, 8.0]), out=outs)
    for o in outs:
        np.testing.assert_array_equal(_np(o), [7, 8])
    kv.broadcast(9, nd.array([1.0, 0.0]), out=outs)  # again: replaces the value
    np.testing.assert_array_equal(_np(outs[1]), [1, 0])


def test_key_and_value_errors():
    kv = mx.kv.create()
    kv.init(3, nd.zeros(SHAPE))
    with pytest.raises(MXCoreError, match="duplicate init of key 3"):
        kv.init(3, nd.zeros(SHAPE))
    with pytest.raises(MXCoreError, match="key 4 has not been initialized"):
        kv.push(4, nd.zeros(SHAPE))
    with pytest.raises(MXCoreError, match="key 4 has not been initialized"):
        kv.pull(4, out=nd.zeros(SHAPE))
    with pytest.raises(MXCoreError, match="key 4 has not been initialized"):
        kv.pushpull(4, nd.zeros(SHAPE))
    for op in (lambda: kv.init("a", nd.zeros(SHAPE)), lambda: kv.push("a", nd.zeros(SHAPE)),
               lambda: kv.pull("a", out=nd.zeros(SHAPE))):
        with pytest.raises(MXCoreError, match="mixed key types"):
            op()
    with pytest.raises(MXCoreError, match=r"holds shape \(4, 4\).*got shape \(3, 4\)"):
        kv.push(3, nd.zeros((3, 4)))
    with pytest.raises(MXCoreError, match=r"holds shape \(4, 4\).*got shape \(2, 2\)"):
        kv.pull(3, out=nd.zeros((2, 2)))
    with pytest.raises(MXCoreError, match="out= is required"):
        kv.pull(3)
    with pytest.raises(MXCoreError, match="2 keys need as many values"):
        kv.init([7, 8], [nd.zeros(SHAPE)])
    with pytest.raises(MXCoreError, match="must be an NDArray"):
        kv.push(3, np.ones(SHAPE))
    with pytest.raises(MXCoreError, match="keys are ints or strings"):
        kv.push(3.0, nd.zeros(SHAPE))
    with pytest.raises(MXCoreError, match="takes one value"):
        kv.init(12, [nd.zeros(SHAPE), nd.zeros(SHAPE)])
    kv.push(np.int64(3), nd.ones(SHAPE))        # numpy integers are int keys
    with pytest.raises(KVStoreNotProvidedError, match="row_sparse"):
        kv.row_sparse_pull(3, out=nd.zeros(SHAPE), row_ids=nd.array([1]))


# updaters and optimizers ----------------------------------------------------------------------
@pytest.mark.parametrize("key,keys", [(3, [5, 7, 11]), ("a", ["b", "c", "d"])])
def test_custom_updater_accumulates(key, keys):
    seen = []

    def updater(k, recv, local):
        seen.append(k)
        local += recv

    kv = mx.kv.create()
    kv.init(key, nd.zeros(SHAPE))
    kv.init(keys, [nd.zeros(SHAPE)] * len(keys))
    kv._set_updater(updater)
    kv.push(key, [nd.ones(SHAPE, ctx=d) for d in DEVS])
    out = nd.zeros(SHAPE)
    kv.pull(key, out=out)
    np.testing.assert_array_equal(_np(out), 4)
    for _ in range(4):
        kv.push(keys, [[nd.ones(SHAPE, ctx=d) for d in DEVS]] * len(keys))
    outs = [[nd.zeros(SHAPE, ctx=d) for d in DEVS] for _ in keys]
    kv.pull(keys, out=outs)
    for row in outs:
        for o in row:
            np.testing.assert_array_equal(_np(o), 16)
    assert seen[0] == key and type(seen[0]) is type(key)
    assert seen[1:4] == keys
    with pytest.raises(TypeError, match="callable"):
        kv._set_updater(3)


def test_set_optimizer_updates_on_push():
    kv = mx.kv.create()
    kv.init(3, nd.zeros((2, 2)))
    kv.set_optimizer(mx.optimizer.SGD(learning_rate=0.1))
    kv.push(3, [nd.ones((2, 2), ctx=d) for d in DEVS[:2]])
    out = nd.zeros((2, 2))
    kv.pull(3, out=out)
    np.testing.assert_allclose(_np(out), -0.2, rtol=1e-6)   # w - lr * (1 + 1)
    with pytest.raises(TypeError, match="takes an Optimizer"):
        kv.set_optimizer("sgd")


@pytest.mark.parametrize("opt,kwargs", [("sgd", {"momentum": 0.9, "wd": 0.01}),
                                        ("adam", {"learning_rate": 0.01})])
def test_list_push_equals_one_key_at_a_time(opt, kwargs):
    """A list of keys reaches the optimizer as one list (multi-weight ops); the
    result is that of pushing the keys one by one."""
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (5,), (2, 2, 2)]
    w0 = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(3)]
    stores = []
    for together in (True, False):
        calls = []

        class Counting(mx.optimizer.Updater):
            def __call__(self, index, grad, weight):
                calls.append(index)
                super().__call__(index, grad, weight)

        kv = mx.kv.create("device")
        kv._set_updater(Counting(mx.optimizer.create(opt, **kwargs)))
        keys = list(range(len(shapes)))
        kv.init(keys, [nd.array(w) for w in w0])
        for step in grads:
            if together:
                kv.push(keys, [[nd.array(g, ctx=d) for d in DEVS[:2]] for g in step])
            else:
                for k, g in zip(keys, step):
                    kv.push(k, [nd.array(g, ctx=d) for d in DEVS[:2]])
        outs = [nd.zeros(s) for s in shapes]
        kv.pull(keys, out=outs)
        stores.append(([_np(o) for o in outs], calls))
    (together, calls_t), (alone, calls_a) = stores
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert calls_a == [0, 1, 2] * 3
    assert len(calls_t) == 3 and calls_t[0] == [0, 1, 2]


def test_optimizer_state_files(tmp_path):
    def store():
        kv = mx.kv.create()
        kv.init(0, nd.zeros((3,)))
        kv.set_optimizer(mx.optimizer.SGD(learning_rate=0.5, momentum=0.9))
        return kv

    kv = store()
    kv.push(0, nd.array([1.0, 2.0, 3.0]))
    path = str(tmp_path / "opt.states")
    kv.save_optimizer_states(path, dump_optimizer=True)
    with open(path, "rb") as f:
        head = f.read(8)
    assert head[:1] != b"\x80"                        # safetensors, not a pickle
    kv2 = store()
    kv2._updater.optimizer.lr = 123.0
    kv2.load_optimizer_states(path)
    assert kv2._updater.optimizer.lr == 0.5           # dumped settings restored
    np.testing.assert_allclose(_np(kv2._updater.states[0]), [-0.5, -1.0, -1.5])
    # both continue alike (the weight is set to the same value first)
    for k in (kv, kv2):
        k.broadcast(0, nd.zeros((3,)), out=nd.zeros((3,)))
        k.push(0, nd.array([1.0, 1.0, 1.0]))
    a, b = nd.zeros((3,)), nd.zeros((3,))
    kv.pull(0, out=a)
    kv2.pull(0, out=b)
    np.testing.assert_allclose(_np(a), _np(b))
    np.testing.assert_allclose(_np(a), 0.9 * np.array([-0.5, -1.0, -1.5]) - 0.5)
    # errors: no optimizer, not a states file, a pickle
    with pytest.raises(MXCoreError, match="no optimizer"):
        mx.kv.create().save_optimizer_states(str(tmp_path / "x"))
    nd.save(str(tmp_path / "arrays"), {"a": nd.zeros((1,))})
    with pytest.raises(MXCoreError, match="not a trainer state file"):
        kv2.load_optimizer_states(str(tmp_path / "arrays"))
    (tmp_path / "p").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(MXCoreError):
        kv2.load_optimizer_states(str(tmp_path / "p"))


# gradient compression -------------------------------------------------------------------------
G0 = [0.3, 0.6, -0.7, 0.2, 1.5, -0.1]
G1 = [0.3, 0.1, -0.2, -0.6, 0.4, 2.0]


def _two_bit_reference(pushes, t):
    """Per position: residual += value; send +t/-t where it reached them; sum."""
    residuals = [np.zeros(6) for _ in pushes[0]]
    sums = []
    for values in pushes:
        total = np.zeros(6)
        for r, v in zip(residuals, values):
            r += v
            sent = np.where(r >= t, t, np.where(r <= -t, -t, 0.0))
            r -= sent
            total += sent
        sums.append(total)
    return sums


def test_two_bit_compression():
    kv = mx.kv.create("device")
    kv.set_gradient_compression({"type": "2bit", "threshold": 0.5})
    kv.init(0, nd.zeros((6,)))
    out = nd.zeros((6,))
    got = []
    for _ in range(3):
        kv.push(0, [nd.array(G0, ctx=DEVS[0]), nd.array(G1, ctx=DEVS[1])])
        kv.pull(0, out=out)
        got.append(_np(out))
    want = _two_bit_reference([[G0, G1]] * 3, 0.5)
    np.testing.assert_allclose(np.array(got), np.array(want), atol=1e-6)
    # values MXNet 1.9.1 gives for one device pushing G0 twice (default threshold 0.5)
    one = mx.kv.create("device")
    one.set_gradient_compression({"type": "2bit"})
    one.init(0, nd.zeros((6,)))
    for want in ([0, 0.5, -0.5, 0, 0.5, 0], [0.5, 0.5, -0.5, 0, 0.5, 0]):
        one.push(0, nd.array(G0))
        one.pull(0, out=out)
        np.testing.assert_allclose(_np(out), want, atol=1e-7)
    # with an optimizer, the compressed sum is the gradient (MXNet 1.9.1's value)
    sgd = mx.kv.create("device")
    sgd.set_gradient_compression({"type": "2bit", "threshold": 0.5})
    sgd.init(0, nd.zeros((6,)))
    sgd.set_optimizer(mx.optimizer.SGD(learning_rate=1.0))
    sgd.push(0, [nd.array(G0, ctx=DEVS[0]), nd.array(G1, ctx=DEVS[1])])
    sgd.pull(0, out=out)
    np.testing.assert_allclose(_np(out), [0, -0.5, 0.5, 0.5, -0.5, -0.5], atol=1e-7)


def test_gradient_compression_errors():
    with pytest.raises(KVStoreNotProvidedError, match="not supported by kvstore type 'local'"):
        mx.kv.create("local").set_gradient_compression({"type": "2bit"})
    kv = mx.kv.create("device")
    with pytest.raises(MXCoreError, match="unknown gradient compression type '1bit'"):
        kv.set_gradient_compression({"type": "1bit"})
    with pytest.raises(MXCoreError, match="unknown gradient compression type None"):
        kv.set_gradient_compression({"threshold": 0.5})
    with pytest.raises(MXCoreError, match="greater than 0"):
        kv.set_gradient_compression({"type": "2bit", "threshold": -1})
    with pytest.raises(MXCoreError, match="got also"):
        kv.set_gradient_compression({"type": "2bit", "treshold": 1})
    with pytest.raises(TypeError):
        kv.set_gradient_compression("2bit")


# custom stores ---------------------------------------------------------------------------------
def test_register_custom_store_and_teststore():
    @KVStoreBase.register
    class MyStore(TestStore):
        @property
        def type(self):
            return "mystore"

    try:
        kv = mx.kv.create("MyStore")
        assert isinstance(kv, MyStore) and kv.type == "mystore"
        with pytest.warns(UserWarning, match="overriding existing kvstore"):
            KVStoreBase.register(type("MyStore", (TestStore,), {}))
    finally:
        del KVStoreBase.kv_registry["mystore"]
    with pytest.raises(TypeError):
        KVStoreBase.register(TestStore())

    ts = mx.kv.create("teststore")
    assert isinstance(ts, TestStore) and (ts.type, ts.rank, ts.num_workers) == (
        "teststore", 0, 1)
    assert ts.is_capable("optimizer") is False
    with pytest.raises(ValueError, match="Unknown capability"):
        ts.is_capable("foo")
    vals = [nd.array([1.0, 2.0], ctx=DEVS[0]), nd.array([10.0, 20.0], ctx=DEVS[1])]
    ts.pushpull(0, vals)
    for v in vals:
        np.testing.assert_array_equal(_np(v), [11, 22])
    outs = [nd.zeros((2,), ctx=d) for d in DEVS[:2]]
    ts.broadcast(0, nd.array([5.0, 6.0]), outs)
    for o in outs:
        np.testing.assert_array_equal(_np(o), [5, 6])
    with pytest.raises(NotImplementedError):
        ts.set_optimizer(mx.optimizer.SGD())
    base = KVStoreBase()
    with pytest.raises(NotImplementedError):
        base.pushpull(0, nd.zeros((1,)))
    with pytest.raises(NotImplementedError):
        base.type

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KVStoreBase.register(TestStore)     # the same class again: no warning
