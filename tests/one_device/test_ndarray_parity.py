"""NDArray behaviour MXNet 1.x users rely on, on the CPU: truth values, pickling,
DLPack capsules, from_numpy, in-place writes under autograd, copies and views,
``out=`` creation, buffers of saved files, ``mx.nd.contrib`` and ``mx.nd._internal``.

Expected values come from numpy or are written out by hand."""
from __future__ import annotations

import itertools
import pickle
import struct

import numpy as np
import pytest

import mxcore as mx
from mxcore import mxnet_params
from mxcore.base import MXCoreError

nd = mx.nd


def _arr(values, dtype="float32"):
    return nd.array(np.asarray(values), ctx=mx.cpu(), dtype=dtype)


# truth values, numpy reductions --------------------------------------------------------
def test_truth_value_of_empty_and_single_element_arrays():
    assert not bool(nd.array([]))
    assert not bool(nd.zeros((1,)))
    assert bool(nd.ones((1, 1)))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(nd.ones((2,)))


def test_numpy_all_and_any_take_ndarrays():
    a = _arr([50000001], "int32")
    assert np.all(a == 50000001) and not np.any(a != 50000001)
    assert np.all(_arr([[1, 0], [1, 1]]), axis=1).tolist() == [False, True]


# pickling --------------------------------------------------------------------------------
def test_pickle_keeps_values_shape_and_dtype_but_not_autograd_state():
    x = _arr(np.arange(12).reshape(3, 4) - 5.5, "float64")
    x.attach_grad()
    y = pickle.loads(pickle.dumps(x))
    assert y.shape == (3, 4) and y.dtype == np.float64 and y.context == mx.cpu()
    np.testing.assert_array_equal(y.asnumpy(), np.arange(12).reshape(3, 4) - 5.5)
    assert y.grad is None
    z = pickle.loads(pickle.dumps(_arr(np.float32(2.5)).reshape(())))
    assert z.shape == () and float(z.asscalar()) == 2.5


def test_an_array_pickled_on_a_missing_device_comes_back_on_the_cpu():
    state = nd.arange(3).__getstate__()
    state["device"] = "cuda:63"
    y = nd.empty((1,))
    y.__setstate__(state)
    assert y.context == mx.cpu() and y.asnumpy().tolist() == [0, 1, 2]


def test_mxnet_pickle_states_load():
    # MXNet's state: {'handle': one array in its binary format} (V2 header, here saved
    # on gpu(0): device type 2) holding float32 [1.5, -2]
    raw = struct.pack("<Iii2qiii", mxnet_params.V2_MAGIC, 0, 2, 1, 2, 2, 0, 0)
    raw += np.array([1.5, -2], np.float32).tobytes()
    y = nd.zeros((5,))
    y.__setstate__({"handle": bytearray(raw)})
    assert y.shape == (1, 2) and y.dtype == np.float32 and y.context == mx.cpu()
    assert y.asnumpy().tolist() == [[1.5, -2.0]]


# DLPack and numpy memory ----------------------------------------------------------------
@pytest.mark.parametrize("method", ["to_dlpack_for_read", "to_dlpack_for_write"])
def test_dlpack_capsules_share_memory(method):
    a = _arr(np.arange(6).reshape(2, 3))
    capsule = getattr(a, method)()
    b = nd.from_dlpack(capsule)
    b[0, 0] = 42
    assert a.asnumpy()[0, 0] == 42 and b.shape == (2, 3)
    c = nd.from_dlpack(getattr(nd, method)(a))
    assert c.asnumpy().tolist() == a.asnumpy().tolist()
    with pytest.raises(MXCoreError, match="consumed once"):
        nd.from_dlpack(capsule)


def test_from_numpy_zero_copy_shares_and_locks_the_numpy_array():
    src = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.float32)
    a = nd.from_numpy(src)
    assert a.dtype == np.float32 and not src.flags.writeable
    with pytest.raises(ValueError):
        src[0, 0] = 0
    a[2, 1] = 100
    a.wait_to_read()  # (an asynchronous engine writes later: a foreign reader waits)
    assert src[2, 1] == 100
    again = nd.from_numpy(src)  # a locked array wraps again, writes still go through
    again[0, 0] = -1
    again.wait_to_read()
    assert src[0, 0] == -1 and a.asnumpy()[0, 0] == -1
    with pytest.raises(ValueError, match="C-contiguous"):
        nd.from_numpy(np.ones((2, 3)).T)
    with pytest.raises(ValueError, match="read-only"):
        nd.from_numpy(np.frombuffer(b"\x00" * 8, dtype=np.float32))


def test_from_numpy_copy_keeps_dtype_and_odd_shapes():
    for src in (np.array(7).reshape(()), np.zeros((1, 0, 2)), np.arange(3, dtype=np.int64)):
        for zero_copy in (False, True):
            a = nd.from_numpy(src.copy(), zero_copy=zero_copy)
            assert a.shape == src.shape and a.dtype == src.dtype
            np.testing.assert_array_equal(a.asnumpy(), src)
    src = np.ones(3)
    a = nd.from_numpy(src, zero_copy=False)
    a[0] = 5
    assert src[0] == 1 and src.flags.writeable


# in-place writes and autograd ------------------------------------------------------------
def test_size_one_values_fill_single_elements():
    b = nd.zeros(1)
    b[0] = np.array([47.844944], dtype=np.float32)
    assert b.asnumpy()[0] == np.float32(47.844944)
    x = nd.zeros((4, 3))
    x[1:3] = np.arange(3).reshape(1, 1, 1, 3)  # leading axes of size 1 are dropped
    np.testing.assert_array_equal(x.asnumpy(), [[0, 0, 0], [0, 1, 2], [0, 1, 2], [0, 0, 0]])


def test_inplace_writes_that_would_corrupt_the_graph_raise_while_recording():
    y = nd.ones((3,))
    y.attach_grad()
    x = nd.zeros((2, 3))
    with mx.autograd.record():
        with pytest.raises(MXCoreError, match="Inplace operations"):
            x[0] = y
        with pytest.raises(MXCoreError, match="Inplace operations"):
            x += y
        with pytest.raises(MXCoreError, match="computational graph"):
            y[0] = 1
        x[1] = 5          # constants only: allowed
        x += 1
    np.testing.assert_array_equal(x.asnumpy(), [[1, 1, 1], [6, 6, 6]])
    y[0] = 3              # outside record(): allowed
    assert y.asnumpy().tolist() == [3, 1, 1]


def test_whole_array_assignment_while_recording_is_a_recorded_copy():
    y = _arr([1.0, 2.0, 3.0])
    y.attach_grad()
    x = nd.zeros((2, 3))
    with mx.autograd.record():
        x[:] = y * 2
        loss = (x * x).sum()
    loss.backward()
    # loss = sum over 2 rows of (2y)^2: d/dy = 2 * 2 * 2y * 2
    np.testing.assert_allclose(y.grad.asnumpy(), 16 * np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.asnumpy(), [[2, 4, 6], [2, 4, 6]])


def test_fresh_grad_flag():
    x, y = nd.ones((2,)), nd.ones((2,))
    mx.autograd.mark_variables([x, y], [nd.zeros((2,)), nd.zeros((2,))])
    assert x._fresh_grad is False
    with mx.autograd.record():
        z = (x + 2).detach() + y
    z.backward()
    assert y._fresh_grad is True and x._fresh_grad is False
    y._fresh_grad = False
    assert y._fresh_grad is False
    with pytest.raises(MXCoreError, match="not a variable"):
        nd.ones((1,))._fresh_grad = True


def test_star_import_of_autograd_gives_ndarray():
    names = {}
    exec("from mxcore.autograd import *", names)
    assert names["NDArray"] is nd.NDArray and "record" in names and "backward" in names


# copies and views -----------------------------------------------------------------------
@pytest.mark.parametrize("method,args,want", [
    ("flatten", (), (2, 15)), ("expand_dims", (1,), (2, 1, 3, 5)),
    ("squeeze", (), (2, 3, 5))])
def test_shape_methods_copy_unless_inplace(method, args, want):
    base = nd.arange(30).reshape(2, 3, 5) if method != "squeeze" else \
        nd.arange(30).reshape(2, 1, 3, 5)
    copy = getattr(base, method)(*args)
    view = getattr(base, method)(*args, inplace=True)
    assert copy.shape == view.shape == want
    base[0] = -1
    assert copy.asnumpy().min() == 0 and view.asnumpy().min() == -1


def test_squeezing_every_axis_keeps_one():
    assert nd.ones((1, 1, 1)).squeeze().shape == (1,)
    assert nd.squeeze(nd.ones((1, 5, 1)), axis=(0, 2)).shape == (5,)


def test_basic_slice_contiguity_matches_numpy():
    shape = (4, 3, 5)
    x = np.zeros(shape)
    slices = [slice(None), slice(2), slice(1, 3), slice(None, None, 2), slice(0, 1),
              slice(None, None, -1), slice(3, 3), 1]
    is_contiguous = nd.NDArray._basic_indexing_slice_is_contiguous
    for key in itertools.product(slices, repeat=3):
        assert is_contiguous(key, shape) == x[key].flags.c_contiguous, key


@pytest.mark.parametrize("key, shares", [
    ((1,), True), ((slice(1, 3),), True), ((1, slice(None)), True),
    ((slice(None), slice(1, 3)), False), ((slice(None), 1), False),
    ((slice(None, None, 2),), False), (([0, 2],), False)])
def test_a_slice_is_a_view_when_contiguous_and_a_copy_otherwise(key, shares):
    # MXNet 1.9.1: x[1], x[1:3] write through to x; x[:, 1:3], x[:, 1], x[::2] and
    # advanced indices are copies that leave x alone
    x = nd.arange(12).reshape((3, 4))
    before = x.asnumpy().copy()
    part = x[key]
    part[:] = -1
    changed = not np.array_equal(x.asnumpy(), before)
    assert changed == shares
    if shares:
        want = before.copy()
        want[key] = -1
        np.testing.assert_array_equal(x.asnumpy(), want)


def test_broadcast_like_checks_shapes():
    a, b = nd.ones((1, 3)), nd.ones((4, 3))
    assert a.broadcast_like(b).shape == (4, 3)
    assert nd.broadcast_like(nd.ones((2, 1, 5)), nd.ones((7, 6)), lhs_axes=(1,),
                             rhs_axes=(-1,)).shape == (2, 6, 5)
    for lhs, kwargs in [(nd.ones((2, 3)), {}), (nd.ones((3,)), {}),
                        (a, {"lhs_axes": (), "rhs_axes": ()}),
                        (a, {"lhs_axes": (0,), "rhs_axes": (0, 1)}),
                        (nd.ones((2, 3)), {"lhs_axes": (0,), "rhs_axes": (0,)})]:
        with pytest.raises(MXCoreError, match="broadcast_like"):
            nd.broadcast_like(lhs, b, **kwargs)


def test_fluent_keywords():
    x = nd.arange(24).reshape(2, 3, 4)
    assert x.transpose(axes=(1, 0, 2)).shape == (3, 2, 4)
    assert x.reshape_like(rhs=nd.ones((4, 6))).shape == (4, 6)
    assert x.slice_like(shape_like=nd.ones((1, 2)), axes=(0, 1)).shape == (1, 2, 4)


# creation --------------------------------------------------------------------------------
def test_creation_writes_into_out():
    out = nd.zeros((2, 2))
    assert nd.ones((2, 2), out=out) is out and out.asnumpy().tolist() == [[1, 1], [1, 1]]
    nd.full((2, 2), 2, out=out)
    assert out.asnumpy().tolist() == [[2, 2], [2, 2]]
    nd.zeros((2, 2), out=out)
    assert out.asnumpy().sum() == 0
    with pytest.raises(MXCoreError, match="out is"):
        nd.ones((3, 2), out=out)


@pytest.mark.parametrize("n,m,k", [(3, 0, 0), (2, 5, 1), (4, 3, -2), (3, 3, 7), (1, 4, -1)])
def test_eye(n, m, k):
    np.testing.assert_array_equal(nd.eye(n, m, k).asnumpy(), np.eye(n, m or n, k))
    assert nd.eye(n, m, k, dtype="int32").dtype == np.int32


def test_onehot_encode_writes_rows():
    out = nd.full((3, 4), 9)
    assert nd.onehot_encode(_arr([1, 0, 3]), out) is out
    np.testing.assert_array_equal(out.asnumpy(), np.eye(4)[[1, 0, 3]])


def test_cpu_shared_and_cpu_pinned_contexts_are_the_cpu():
    assert mx.Context("cpu_shared", 0) is mx.cpu(0)
    assert mx.Context("cpu_pinned", 1) is mx.cpu(1)
    assert mx.Context("gpu", 0) is mx.Device("cuda", 0)
    assert nd.zeros((1, 2), ctx=mx.Context("cpu_shared", 0)).context == mx.cpu()


# saved files in memory -------------------------------------------------------------------
def test_load_frombuffer_reads_mxcore_files(tmp_path):
    data = [_arr(np.arange(6).reshape(2, 3)), _arr([1, 2], "int64")]
    for name, saved in [("list", data), ("dict", {"a b": data[0], "c": data[1]}),
                        ("single", data[0])]:
        path = tmp_path / name
        nd.save(str(path), saved)
        buf = path.read_bytes()
        back = nd.load_frombuffer(buf)
        want = [data[0]] if name == "single" else saved
        keys = want.keys() if isinstance(want, dict) else range(len(want))
        assert type(back) is type(want if name != "single" else [])
        for k in keys:
            assert back[k].dtype == want[k].dtype
            np.testing.assert_array_equal(back[k].asnumpy(), want[k].asnumpy())
        with pytest.raises(MXCoreError, match="buffer"):
            nd.load_frombuffer(buf[:-10])


def test_load_frombuffer_reads_mxnet_files(tmp_path):
    path = tmp_path / "m.params"
    arrays = {"arg:w": np.arange(4, dtype=np.float16), "aux:s": np.array([[3]], np.int32)}
    mxnet_params.save(str(path), arrays)
    back = nd.load_frombuffer(path.read_bytes())
    assert sorted(back) == ["arg:w", "aux:s"]
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype
        np.testing.assert_array_equal(back[k].asnumpy(), v)
    with pytest.raises(MXCoreError, match="truncated"):
        nd.load_frombuffer(path.read_bytes()[:-3])


def test_a_file_loads_only_under_the_shape_semantics_it_was_saved_with(tmp_path):
    arrays = [_arr(np.ones((2, 0))), _arr(np.ones((2, 1)))]
    for saved_np in (False, True):
        path = str(tmp_path / f"f{saved_np}")
        with mx.np_shape(saved_np):
            nd.save(path, arrays)
        with mx.np_shape(saved_np):
            assert [a.shape for a in nd.load(path)] == [(2, 0), (2, 1)]
        with mx.np_shape(not saved_np):
            with pytest.raises(MXCoreError, match="shape semantics"):
                nd.load(path)


# mx.nd._internal and mx.nd.contrib ------------------------------------------------------
def test_crop_assign_in_place_and_into_a_new_array():
    x = nd.ones((2, 3, 4))
    r = nd._internal._crop_assign(x, nd.zeros((2, 1, 3)), begin=(0, 0, 0), end=(2, 1, 3),
                                  out=x)
    want = np.ones((2, 3, 4))
    want[:, :1, :3] = 0
    assert r is x
    np.testing.assert_array_equal(x.asnumpy(), want)
    y = nd._internal._crop_assign_scalar(x, scalar=5, begin=(1, None), end=(2, None))
    want2 = want.copy()
    want2[1:2] = 5
    np.testing.assert_array_equal(y.asnumpy(), want2)
    np.testing.assert_array_equal(x.asnumpy(), want)  # out=None leaves x as it was
    x.slice_assign_scalar(7, (0, 0, 0), (1, 1, 1), ())
    assert x.asnumpy()[0, 0, 0] == 7


def test_contrib_elementwise_tests():
    values = np.array([np.inf, -np.inf, np.nan, 5.0, 0.0], np.float32)
    x = _arr(values)
    for name, ref in [("isfinite", np.isfinite), ("isinf", np.isinf), ("isnan", np.isnan)]:
        out = getattr(nd.contrib, name)(x)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out.asnumpy(), ref(values).astype(np.float32))


def test_contrib_boolean_mask_and_its_gradient():
    x = _arr(np.arange(9).reshape(3, 3))
    x.attach_grad()
    with mx.autograd.record():
        y = nd.contrib.boolean_mask(x, _arr([0, 1, 1]))
    y.backward(nd.ones_like(y) * 2)
    np.testing.assert_array_equal(y.asnumpy(), [[3, 4, 5], [6, 7, 8]])
    np.testing.assert_array_equal(x.grad.asnumpy(), [[0, 0, 0], [2, 2, 2], [2, 2, 2]])
    assert nd.contrib.boolean_mask(x, _arr([0, 0, 0])).shape == (0, 3)


def test_contrib_index_copy_values_and_gradients():
    old, new = nd.zeros((4, 2)), _arr([[1, 2], [3, 4]])
    old.attach_grad()
    new.attach_grad()
    with mx.autograd.record():
        r = nd.contrib.index_copy(old, _arr([2, 0]), new)
    r.backward(nd.arange(8).reshape(4, 2))
    np.testing.assert_array_equal(r.asnumpy(), [[3, 4], [0, 0], [1, 2], [0, 0]])
    np.testing.assert_array_equal(old.grad.asnumpy(), [[0, 0], [2, 3], [0, 0], [6, 7]])
    np.testing.assert_array_equal(new.grad.asnumpy(), [[4, 5], [0, 1]])
    # a repeated index keeps the last row; an index out of range is skipped
    r = nd.contrib.index_copy(nd.zeros((3, 2)), _arr([1, 1, 9]), _arr([[1, 1], [2, 2], [3, 3]]))
    np.testing.assert_array_equal(r.asnumpy(), [[0, 0], [2, 2], [0, 0]])


def test_contrib_arithmetic_helpers():
    x = _arr([[1, 2], [3, 4]])
    np.testing.assert_allclose(nd.contrib.quadratic(x, a=2, b=-1, c=3).asnumpy(),
                               2 * x.asnumpy() ** 2 - x.asnumpy() + 3)
    np.testing.assert_allclose(nd.contrib.div_sqrt_dim(nd.ones((2, 9))).asnumpy(),
                               np.full((2, 9), 1 / 3), rtol=1e-6)
    np.testing.assert_array_equal(nd.contrib.arange_like(x, start=1, step=2, repeat=3).asnumpy(),
                                  [[1, 1], [1, 3]])
    np.testing.assert_array_equal(nd.contrib.arange_like(x, axis=-1).asnumpy(), [0, 1])
    assert nd.contrib.arange_like(nd.zeros((2,), dtype="int32")).dtype == np.int32
    close = nd.contrib.allclose(x, x + 1e-9)
    assert close.shape == () and close.dtype == np.uint8 and int(close.asscalar()) == 1
    nan = _arr([np.nan])
    assert int(nd.contrib.allclose(nan, nan, equal_nan=False).asscalar()) == 0


def test_contrib_gradientmultiplier():
    x = _arr([1, 2])
    x.attach_grad()
    with mx.autograd.record():
        y = nd.contrib.gradientmultiplier(x, scalar=-0.5) * 3
    y.backward()
    np.testing.assert_array_equal(y.asnumpy(), [3, 6])
    np.testing.assert_array_equal(x.grad.asnumpy(), [-1.5, -1.5])


def _iou_reference(a, b):
    out = np.zeros((len(a), len(b)))
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - w * h
            out[i, j] = w * h / union if union > 0 else 0.0
    return out


def test_contrib_box_iou():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 4, (6, 4))
    corners[:, 2:] = corners[:, :2] + rng.uniform(0, 3, (6, 2))
    corners[5] = 0  # an empty box: IoU 0 with everything
    a, b = corners[:4], corners[3:]
    np.testing.assert_allclose(nd.contrib.box_iou(_arr(a), _arr(b)).asnumpy(),
                               _iou_reference(a, b), rtol=1e-5, atol=1e-7)
    def centers(c):
        return np.concatenate([(c[:, :2] + c[:, 2:]) / 2, c[:, 2:] - c[:, :2]], axis=1)
    np.testing.assert_allclose(
        nd.contrib.box_iou(_arr(centers(a)), _arr(centers(b)), format="center").asnumpy(),
        _iou_reference(a, b), rtol=1e-5, atol=1e-6)
    assert nd.contrib.box_iou(nd.ones((2, 3, 4)), nd.ones((5, 4))).shape == (2, 3, 5)


def test_contrib_rand_zipfian_counts():
    mx.random.seed(3)
    n, range_max = 20000, 10
    true = _arr([0, 4, 9], "int64")
    sampled, exp_true, exp_sampled = nd.contrib.rand_zipfian(true, n, range_max)
    assert sampled.dtype == np.int64 and exp_true.dtype == np.float64
    prob = np.log((np.arange(range_max) + 2) / (np.arange(range_max) + 1)) / np.log(11)
    np.testing.assert_allclose(exp_true.asnumpy(), prob[[0, 4, 9]] * n)
    np.testing.assert_allclose(exp_sampled.asnumpy(), prob[sampled.asnumpy()] * n)
    counts = np.bincount(sampled.asnumpy(), minlength=range_max)
    np.testing.assert_allclose(counts, prob * n, rtol=0.1)
