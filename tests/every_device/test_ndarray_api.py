"""NDArray creation, conversion, interop and in-place semantics (MXNet 1.x names)."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import OperatorError
from mxcore.ndarray import NDArray

nd = mx.nd


def test_array_dtype_defaults(device):
    assert nd.array([1, 2, 3], ctx=device).dtype == np.float32  # lists: float32 (MXNet)
    # numpy arrays too, whatever their dtype (MXNet 1.x), unless dtype is given
    assert nd.array(np.arange(3, dtype=np.int64), ctx=device).dtype == np.float32
    assert nd.array(np.ones(2, dtype=np.float64), ctx=device).dtype == np.float32
    assert nd.array(np.arange(3), ctx=device, dtype=np.int64).dtype == np.int64
    assert nd.array(nd.array([1, 2], dtype="int32"), ctx=device).dtype == np.int32
    assert nd.array(np.array(2.5), ctx=device).shape == ()  # 0-d stays 0-d
    assert nd.array(np.ones(2), ctx=device, dtype="float16").dtype == np.float16
    x = nd.array([[1, 2], [3, 4]], ctx=device)
    assert x.shape == (2, 2) and x.ndim == 2 and x.size == 4 and len(x) == 2
    assert x.context == device and x.ctx is device and x.device is device


def test_creation_functions(device):
    np.testing.assert_array_equal(nd.zeros((2, 3), ctx=device).asnumpy(), np.zeros((2, 3)))
    np.testing.assert_array_equal(nd.ones(4, ctx=device, dtype="int32").asnumpy(), np.ones(4))
    f = nd.full((2, 2), 7.5, ctx=device, dtype="float64")
    assert f.dtype == np.float64 and float(f.sum().asscalar()) == 30.0
    assert nd.empty((3, 2), ctx=device).shape == (3, 2)
    np.testing.assert_array_equal(nd.arange(5, ctx=device).asnumpy(), np.arange(5.0))
    np.testing.assert_array_equal(nd.arange(1, 3, 0.5, ctx=device).asnumpy(), [1, 1.5, 2, 2.5])
    np.testing.assert_array_equal(nd.arange(3, repeat=2, ctx=device, dtype="int32").asnumpy(),
                                  [0, 0, 1, 1, 2, 2])
    z = nd.zeros_like(f)
    assert z.dtype == np.float64 and z.shape == (2, 2)


@pytest.mark.parametrize("start,stop,step,dtype,want", [
    # MXNet 1.9.1's values (numpy's arange gives 1, 2, 3, 5, ... and -2, -1, -1, 0, ...):
    # start and step are cast to the dtype first (truncated for unsigned and float16)
    (1.3, 20, 1.3, "int32", list(range(1, 16))),
    (1.3, 20, 1.3, "uint8", list(range(1, 16))),
    (1.3, 20, 1.3, "float16", list(range(1, 16))),
    (-2.5, 3, 0.7, "int32", [-2] * 8),
    (50, -50, -2.6, "int64", list(range(50, -27, -2))),  # ceil(100 / 2.6) = 39 values
])
def test_arange_takes_start_and_step_in_the_dtype_as_mxnet(device, start, stop, step, dtype,
                                                           want):
    got = nd.arange(start, stop, step, ctx=device, dtype=dtype)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got.asnumpy(), np.array(want, dtype=dtype))


def test_arange_of_float32_is_computed_in_float32(device):
    # start + i * step in float32 (MXNet's kernel), not float64 rounded once
    got = nd.arange(0.1, 100, 0.37, ctx=device).asnumpy()
    i = np.arange(got.size, dtype=np.float32)
    np.testing.assert_array_equal(got, i * np.float32(0.37) + np.float32(0.1))
    assert not np.array_equal(got, np.arange(0.1, 100, 0.37).astype(np.float32))


def test_asnumpy_is_a_copy_and_scalars(device):
    x = nd.array([[1.5, 2.0]], ctx=device)
    h = x.asnumpy()
    h[0, 0] = 100
    assert x.asnumpy()[0, 0] == 1.5
    assert x[0, 1].asscalar() == np.float32(2.0)
    assert isinstance(x.sum().item(), float)
    assert x.tolist() == [[1.5, 2.0]]
    assert float(x[0, 0]) == 1.5 and int(nd.array([3], ctx=device)) == 3
    with pytest.raises(ValueError):
        x.asscalar()
    with pytest.raises(ValueError):
        bool(x)
    np.testing.assert_array_equal(np.asarray(x), [[1.5, 2.0]])


def test_numpy_interop_operands(device):
    x = nd.array([1.0, 2.0, 3.0], ctx=device)
    a = np.array([10.0, 20.0, 30.0], dtype=np.float32)
    for r in (x + a, a + x, a - x, x * a):
        assert isinstance(r, NDArray)
    np.testing.assert_array_equal((a - x).asnumpy(), [9, 18, 27])
    np.testing.assert_array_equal((np.float32(2) * x).asnumpy(), [2, 4, 6])


def test_dlpack_roundtrip_shares_memory(device):
    if device.kind != "cpu":
        pytest.skip("zero-copy host exchange is a CPU property")
    x = nd.array([1.0, 2.0, 3.0], ctx=device)
    view = np.from_dlpack(x)
    x[0] = 42.0
    x.wait_to_read()  # (an asynchronous engine writes later: a foreign reader waits)
    assert view[0] == 42.0
    if view.flags.writeable:  # numpy < 2.3 imports DLPack memory read-only
        view[1] = -7.0
        assert x.asnumpy()[1] == -7.0
    src = np.arange(4, dtype=np.float32)
    y = nd.from_dlpack(src)
    src[1] = -1
    assert y.asnumpy()[1] == -1 and y.context == mx.cpu()


def test_dlpack_with_torch(device):
    torch = pytest.importorskip("torch", reason="PyTorch is an optional interop partner")
    if device.kind != "cpu":
        pytest.skip("CPU exchange")
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    x = nd.from_dlpack(t)
    t[0, 0] = 9
    assert x.asnumpy()[0, 0] == 9
    back = torch.from_dlpack(x * 2)
    assert back.shape == (2, 3) and float(back[0, 0]) == 18


def test_copies_and_casts(device):
    x = nd.array([1.0, 2.0], ctx=device)
    y = x.copy()
    y[0] = 5
    assert x.asnumpy()[0] == 1.0
    assert x.astype("float32", copy=False) is x
    assert x.astype("int32").dtype == np.int32
    assert x.as_in_context(device) is x
    z = nd.zeros((2,), ctx=device)
    assert x.copyto(z) is z and z.asnumpy().tolist() == [1.0, 2.0]
    w = x.copyto(mx.cpu(0))
    assert w.context == mx.cpu(0) and w.asnumpy().tolist() == [1.0, 2.0]


def test_setitem_forms(device):
    x = nd.zeros((3, 4), ctx=device)
    x[0] = 1
    x[1, 1:3] = nd.array([2, 3], ctx=device)
    x[2] = np.arange(4)
    x[:, 3] = 9
    x[[0, 2], 0] = -1
    expect = np.array([[-1, 1, 1, 9], [0, 2, 3, 9], [-1, 1, 2, 9]], dtype=np.float32)
    np.testing.assert_array_equal(x.asnumpy(), expect)
    x[:] = 0
    assert x.sum().asscalar() == 0


def test_inplace_operators_keep_identity(device):
    x = nd.ones((2, 2), ctx=device)
    before = id(x)
    x += 1
    x *= nd.full((2, 2), 3.0, ctx=device)
    x -= 1
    x /= 5
    assert id(x) == before
    np.testing.assert_allclose(x.asnumpy(), np.ones((2, 2)))


def test_comparisons_return_input_dtype(device):
    x = nd.array([1, 2, 3], ctx=device, dtype="int32")
    r = x > 1
    assert r.dtype == np.int32 and r.asnumpy().tolist() == [0, 1, 1]
    assert (x == x).asnumpy().tolist() == [1, 1, 1]
    assert (x != None) is True  # noqa: E711 - MXNet compares to None by identity


def test_int_scalar_semantics(device):
    x = nd.array([1, 2, 3], ctx=device, dtype="int32")
    assert (x + 1.7).dtype == np.int32  # the scalar takes the array's dtype
    assert (x + 1.7).asnumpy().tolist() == [2, 3, 4]
    assert (nd.array([-7, 7], ctx=device, dtype="int32") / 2).asnumpy().tolist() == [-3, 3]


def test_repr_iter_len(device):
    x = nd.array([[1, 2], [3, 4]], ctx=device)
    text = repr(x)
    assert "<NDArray 2x2 @" in text and repr(device) in text
    rows = list(x)
    assert len(rows) == 2 and rows[1].asnumpy().tolist() == [3, 4]
    with pytest.raises(TypeError):
        len(nd.array(5, ctx=device).reshape(()))


def test_pickle_round_trip_keeps_values_dtype_and_device(device):
    import pickle
    for dtype in ("float32", "float16", "bfloat16", "int64", "uint8", "bool"):
        x = nd.array(np.arange(6).reshape(2, 3) % 3, ctx=device, dtype=dtype)
        y = pickle.loads(pickle.dumps(x))
        assert y.dtype == x.dtype and y.shape == (2, 3) and y.context is device
        np.testing.assert_array_equal(y.asnumpy().astype(np.float64),
                                      x.asnumpy().astype(np.float64))
        y[0, 0] = 1  # a separate, writeable buffer
        assert x.asnumpy()[0, 0] == 0


def test_random_seed_reproducible(device):
    mx.random.seed(42)
    a = nd.random.uniform(-1, 1, shape=(100,), ctx=device).asnumpy()
    b = nd.random.normal(0, 1, shape=(10,), ctx=device).asnumpy()
    mx.random.seed(42)
    np.testing.assert_array_equal(nd.random.uniform(-1, 1, shape=(100,), ctx=device).asnumpy(), a)
    np.testing.assert_array_equal(nd.random.normal(0, 1, shape=(10,), ctx=device).asnumpy(), b)
    mx.random.seed(43)
    assert not np.array_equal(nd.random.uniform(-1, 1, shape=(100,), ctx=device).asnumpy(), a)
    assert a.min() >= -1 and a.max() < 1


def test_random_distributions(device):
    mx.random.seed(0)
    n = nd.random.normal(2.0, 3.0, shape=(20000,), ctx=device, dtype="float64").asnumpy()
    assert abs(n.mean() - 2.0) < 0.1 and abs(n.std() - 3.0) < 0.1
    u = nd.random.uniform(5, 6, shape=(20000,), ctx=device).asnumpy()
    assert abs(u.mean() - 5.5) < 0.02 and u.min() >= 5 and u.max() < 6
    r = nd.random.randint(3, 7, shape=(1000,), ctx=device)
    assert r.dtype == np.int32 and set(r.asnumpy().tolist()) == {3, 4, 5, 6}
    s = nd.random.shuffle(nd.arange(50, ctx=device)).asnumpy()
    assert sorted(s.tolist()) == list(range(50)) and s.tolist() != list(range(50))
    out = nd.zeros((3,), ctx=device)
    assert nd.random.uniform(shape=(3,), out=out, ctx=device) is out


def test_engine_protocol_sees_every_op(device):
    """Every op goes through engine.push with the arrays it reads and the
    indices it mutates; a replacement engine class is all that's needed."""
    from mxcore import engine

    class Recording(engine.NaiveEngine):
        name = "recording"

        def __init__(self):
            self.calls = []

        def push(self, fn, args, attrs, mutates=(), device=None):
            self.calls.append((len(args), tuple(mutates)))
            return fn(*args, **attrs)

    rec = Recording()
    old = engine.set_engine(rec)
    try:
        x = nd.ones((2,), ctx=device)
        y = x + x
        y[0] = 5
        y.wait_to_read()
        nd.waitall()
    finally:
        engine.set_engine(old)
    assert engine.current() is old
    assert (2, ()) in rec.calls            # the add
    assert any(m == (0,) for _, m in rec.calls)  # setitem writes its first argument
    assert len(rec.calls) >= 3             # ones, add, setitem


def test_wait_to_read_and_waitall_wait_for_the_device(device, monkeypatch):
    """On asynchronous devices kernel calls return before the kernels run:
    ``wait_to_read`` and ``waitall`` must wait for the device itself, not only for
    the engine (MXNet's semantics, and what timing code relies on)."""
    from mxcore.device import device_type
    waited = []
    monkeypatch.setattr(device_type(device), "synchronize", lambda index: waited.append(index))
    y = nd.ones((3,), ctx=device) * 2
    y.wait_to_read()
    assert waited == [device.index]
    nd.waitall()
    assert waited.count(device.index) == 2
    np.testing.assert_array_equal(y.asnumpy(), [2, 2, 2])


def test_copies_between_devices_do_not_stall_them(device, monkeypatch):
    """as_in_context orders itself after the source's work without a device-wide
    synchronize (that would stall the GPU on every batch upload)."""
    from mxcore.device import device_type
    waited = []
    for dev in (device, mx.cpu(1)):
        monkeypatch.setattr(device_type(dev), "synchronize", lambda index: waited.append(index))
    x = nd.array([1.0, 2.0, 3.0], ctx=device) * 2
    y = x.as_in_context(mx.cpu(1))
    z = (y + 1).as_in_context(device)
    assert waited == []
    np.testing.assert_array_equal(z.asnumpy(), [3, 5, 7])
    assert z.context == device and y.context == mx.cpu(1)


def test_like_functions_and_linspace_match_mxnet(device):
    # shapes and values from MXNet 1.9.1
    a, b = nd.ones((1, 3), ctx=device), nd.ones((2, 3), ctx=device)
    assert nd.broadcast_like(a, b).shape == (2, 3)
    assert nd.broadcast_like(nd.ones((1, 2, 1), ctx=device), nd.ones((5, 6, 7, 8), ctx=device),
                             lhs_axes=(0, 2), rhs_axes=(1, 3)).shape == (6, 2, 8)
    assert nd.reshape_like(nd.ones((6,), ctx=device), b).shape == (2, 3)
    assert nd.reshape_like(nd.ones((30, 7), ctx=device), nd.ones((15, 2, 4), ctx=device),
                           lhs_begin=0, lhs_end=1, rhs_begin=0, rhs_end=2).shape == (15, 2, 7)
    x = nd.array([[1.0, 2.0, 3.0]], ctx=device)
    x.attach_grad()
    with mx.autograd.record():
        y = (nd.broadcast_like(x, nd.ones((4, 3), ctx=device)) * 2).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [[8.0, 8.0, 8.0]])
    np.testing.assert_allclose(nd.linspace(0, 1, 5, ctx=device).asnumpy(),
                               [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(nd.linspace(0, 1, 5, endpoint=False, ctx=device).asnumpy(),
                               [0, 0.2, 0.4, 0.6, 0.8], rtol=1e-6)
    ints = nd.linspace(0, 10, 4, ctx=device, dtype="int32")
    assert ints.dtype == np.int32 and ints.asnumpy().tolist() == [0, 3, 6, 10]
    assert nd.linspace(0, 1, 5, ctx=device).context == device
    with pytest.raises(OperatorError, match="broadcast_like.*differ in length"):
        nd.broadcast_like(a, b, lhs_axes=(0,), rhs_axes=(0, 1))


def test_from_dlpack_names_unknown_devices():
    class Alien:
        def __dlpack_device__(self):
            return (99, 0)

        def __dlpack__(self, **kw):
            raise AssertionError("not reached")

    with pytest.raises(mx.MXCoreError, match="DLPack device type 99"):
        nd.from_dlpack(Alien())

    class OnGPU(Alien):
        def __dlpack_device__(self):
            return (2, 0)

    if mx.num_gpus() == 0:
        with pytest.raises(Exception, match="cuda"):
            nd.from_dlpack(OnGPU())


def test_full_reductions_hold_arrays_not_scalars(device):
    """A device's kernels return arrays: a full reduction's result is a 0-d array, which
    a device's adopt_output can track (numpy scalars cannot be weakly referenced)."""
    x = nd.array([[1.0, 2.0], [3.0, 4.0]], ctx=device)
    for r in (x.sum(), x.mean(), mx.nd.prod(x), x.max(), mx.nd.norm(x)):
        assert not isinstance(r._data, np.generic), type(r._data)
        assert hasattr(r._data, "shape") and hasattr(r._data, "dtype")
