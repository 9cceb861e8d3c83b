"""Ordering, indexing and shape operators of MXNet 1.x: the values MXNet 1.9.1 gives
(its documentation's examples and its order for ties), output dtypes, gradients, and
errors that name the operator, shapes, dtypes and device."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import OperatorError

nd = mx.nd
X = [[0.3, 0.2, 0.4], [0.1, 0.3, 0.2]]


def _a(values, device, dtype="float32"):
    return nd.array(np.asarray(values), ctx=device, dtype=dtype)


def _grad(f, x, head=None):
    x.attach_grad()
    with mx.autograd.record():
        y = f(x)
    y.backward(head)
    return x.grad.asnumpy()


def _raises(device, fn, *words):
    with pytest.raises(OperatorError) as info:
        fn()
    msg = str(info.value)
    for w in words + (repr(device),):
        assert w in msg, f"{w!r} not in {msg!r}"
    return info.value


# --- topk / sort / argsort ---------------------------------------------------------------
def test_topk_follows_mxnet_examples(device):
    x = _a(X, device)
    out = nd.topk(x)
    assert out.dtype == np.float32 and out.context == device
    np.testing.assert_array_equal(out.asnumpy(), [[2], [1]])
    np.testing.assert_allclose(nd.topk(x, ret_typ="value", k=2).asnumpy(),
                               [[0.4, 0.3], [0.3, 0.2]], rtol=1e-6)
    np.testing.assert_allclose(nd.topk(x, ret_typ="value", k=2, is_ascend=1).asnumpy(),
                               [[0.2, 0.3], [0.1, 0.2]], rtol=1e-6)
    np.testing.assert_allclose(nd.topk(x, axis=0, ret_typ="value", k=2).asnumpy(),
                               [[0.3, 0.3, 0.4], [0.1, 0.2, 0.2]], rtol=1e-6)
    both = nd.topk(x, ret_typ="both", k=2)
    assert isinstance(both, list) and len(both) == 2
    np.testing.assert_array_equal(both[1].asnumpy(), [[2, 0], [1, 2]])
    np.testing.assert_array_equal(nd.topk(x, axis=None, k=3).asnumpy(), [2, 0, 4])


def test_topk_mask_and_index_dtypes(device):
    xi = _a([[3, 1, 2], [5, 5, 1]], device, "int32")
    mask = nd.topk(xi, k=2, ret_typ="mask")
    assert mask.dtype == np.int32
    np.testing.assert_array_equal(mask.asnumpy(), [[1, 0, 1], [1, 1, 0]])
    idx = nd.topk(xi, k=2)
    assert idx.dtype == np.float32  # float32 indices, whatever the data's dtype
    np.testing.assert_array_equal(idx.asnumpy(), [[0, 2], [0, 1]])
    assert nd.topk(xi, k=2, ret_typ="value").dtype == np.int32
    for dt in ("int32", "int64", "float64", "uint8", "float16"):
        assert nd.topk(xi, k=1, dtype=dt).dtype == np.dtype(dt)
    flat_mask = nd.topk(_a(X, device), axis=None, k=2, ret_typ="mask")
    assert flat_mask.shape == (2, 3)
    np.testing.assert_array_equal(flat_mask.asnumpy(), [[1, 0, 1], [0, 0, 0]])


def test_equal_values_keep_their_order_in_both_directions(device):
    t = _a([1, 2, 2, 2, 1, 3], device)
    np.testing.assert_array_equal(nd.topk(t, k=6).asnumpy(), [5, 1, 2, 3, 0, 4])
    np.testing.assert_array_equal(nd.topk(t, k=2).asnumpy(), [5, 1])
    np.testing.assert_array_equal(nd.topk(t, k=3, is_ascend=True).asnumpy(), [0, 4, 1])
    np.testing.assert_array_equal(nd.argsort(t).asnumpy(), [0, 4, 1, 2, 3, 5])
    np.testing.assert_array_equal(nd.argsort(t, is_ascend=False).asnumpy(), [5, 1, 2, 3, 0, 4])
    # long lines with few winners: topk selects before it sorts; 64-bit dtypes sort stably
    line = [0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    for dt in ("float32", "float64", "int8", "int64"):
        t = _a(line, device, dt)
        np.testing.assert_array_equal(nd.topk(t, k=3).asnumpy(), [1, 2, 4])
        np.testing.assert_array_equal(nd.topk(t, k=3, is_ascend=True).asnumpy(), [0, 3, 6])
    # -0.0 equals 0.0; integer extremes keep their order
    z = _a([0.0, -0.0, 0.0, -1.0], device)
    np.testing.assert_array_equal(nd.argsort(z).asnumpy(), [3, 0, 1, 2])
    np.testing.assert_array_equal(nd.argsort(z, is_ascend=False).asnumpy(), [0, 1, 2, 3])
    big = _a([2147483647, -2147483648, 0, -1], device, "int32")
    np.testing.assert_array_equal(nd.argsort(big).asnumpy(), [1, 3, 2, 0])
    u = _a([0, 255, 7, 255, 0], device, "uint8")  # no negation: unsigned values sort right
    np.testing.assert_array_equal(nd.argsort(u, is_ascend=False, dtype="int64").asnumpy(),
                                  [1, 3, 2, 0, 4])


def test_sort_and_argsort_follow_mxnet_examples(device):
    x = _a([[1, 4], [3, 1]], device)
    np.testing.assert_array_equal(nd.sort(x).asnumpy(), [[1, 4], [1, 3]])
    np.testing.assert_array_equal(nd.sort(x, axis=None).asnumpy(), [1, 1, 3, 4])
    np.testing.assert_array_equal(nd.sort(x, axis=0).asnumpy(), [[1, 1], [3, 4]])
    np.testing.assert_array_equal(nd.sort(x, is_ascend=0).asnumpy(), [[4, 1], [3, 1]])
    y = _a(X, device)
    np.testing.assert_array_equal(nd.argsort(y).asnumpy(), [[1, 0, 2], [0, 2, 1]])
    np.testing.assert_array_equal(nd.argsort(y, axis=0).asnumpy(), [[1, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(nd.argsort(y, axis=None).asnumpy(), [3, 1, 5, 0, 4, 2])
    assert nd.argsort(_a([[3, 1]], device, "int32")).dtype == np.float32
    assert nd.sort(_a([[3, 1]], device, "int32")).dtype == np.int32


def test_topk_and_sort_gradients_go_to_the_chosen_positions(device):
    x = [[0.3, 0.2, 0.4, 0.1], [0.1, 0.3, 0.2, 0.5]]
    head = _a([[1, 2], [3, 4]], device)
    g = _grad(lambda a: nd.topk(a, k=2, ret_typ="value"), _a(x, device), head)
    np.testing.assert_array_equal(g, [[2, 0, 1, 0], [0, 4, 0, 3]])
    g = _grad(lambda a: nd.topk(a, k=2, ret_typ="both")[0], _a(x, device), head)
    np.testing.assert_array_equal(g, [[2, 0, 1, 0], [0, 4, 0, 3]])
    # sort with its default axis (MXNet 1.9.1's backward fails on it)
    g = _grad(nd.sort, _a(x, device), _a(np.arange(8).reshape(2, 4) + 1, device))
    np.testing.assert_array_equal(g, [[3, 2, 4, 1], [5, 7, 6, 8]])
    # index and mask outputs carry no gradient
    a = _a(x, device)
    a.attach_grad()
    with mx.autograd.record():
        loss = (nd.topk(a, k=2, ret_typ="mask") * a).sum()
    loss.backward()
    np.testing.assert_array_equal(a.grad.asnumpy(), [[1, 0, 1, 0], [0, 1, 0, 1]])


def test_topk_bad_arguments_name_the_operator(device):
    x = _a(X, device)
    _raises(device, lambda: nd.topk(x, k=4), "'topk'", "k must be at most 3", "(2, 3)",
            "float32")
    _raises(device, lambda: nd.topk(x, ret_typ="foo"), "'topk'", "ret_typ")
    _raises(device, lambda: nd.topk(x, dtype="int8"), "'topk'", "int8")
    _raises(device, lambda: nd.topk(x, axis=2), "'topk'", "axis 2")
    _raises(device, lambda: nd.argsort(x, dtype="bool"), "'argsort'", "dtype")
    _raises(device, lambda: nd.sort(x, axis=-3), "'sort'", "axis -3")


# --- cumsum ----------------------------------------------------------------------------------
def test_cumsum_dtypes_follow_mxnet(device):
    x = [[1, 2], [3, 4]]
    np.testing.assert_array_equal(nd.cumsum(_a(x, device)).asnumpy(), [1, 3, 6, 10])
    for dt in ("int8", "uint8", "int32", "float16", "float64"):
        out = nd.cumsum(_a(x, device, dt), axis=0)
        assert out.dtype == np.dtype(dt)
        np.testing.assert_array_equal(out.asnumpy(), [[1, 2], [4, 6]])
    b = nd.cumsum(_a([[1, 0], [1, 1]], device, "bool"), axis=0)
    assert b.dtype == np.int64
    np.testing.assert_array_equal(b.asnumpy(), [[1, 0], [2, 1]])
    out = nd.cumsum(_a(x, device, "int32"), axis=-1, dtype="float64")
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out.asnumpy(), [[1, 3], [3, 7]])
    # 16-bit floats accumulate in float32: 4096 ones in bfloat16 reach 4096
    ones = nd.ones((4096,), ctx=device, dtype="bfloat16")
    assert float(nd.cumsum(ones)[-1].asscalar()) == 4096


def test_cumsum_gradient_sums_from_the_end(device):
    g = _grad(lambda a: nd.cumsum(a, axis=1), _a(np.ones((2, 4)), device),
              _a(np.arange(8).reshape(2, 4), device))
    np.testing.assert_array_equal(g, [[6, 6, 5, 3], [22, 18, 13, 7]])
    np.testing.assert_array_equal(nd.cumsum(nd.ones((), ctx=device)).asnumpy(), [1])
    _raises(device, lambda: nd.cumsum(nd.ones((), ctx=device), axis=0), "'cumsum'", "axis 0")


# --- gather_nd / scatter_nd ----------------------------------------------------------------------
def test_gather_nd_follows_mxnet(device):
    data = _a([[0, 1], [2, 3]], device)
    out = nd.gather_nd(data, _a([[1, 1, 0], [0, 1, 0]], device))
    np.testing.assert_array_equal(out.asnumpy(), [2, 3, 0])
    cube = _a([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], device, "int32")
    out = nd.gather_nd(cube, _a([[0, 1], [1, 0]], device, "int32"))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out.asnumpy(), [[3, 4], [5, 6]])
    # negative indices count from the end
    d = _a(np.arange(6).reshape(2, 3), device)
    np.testing.assert_array_equal(nd.gather_nd(d, _a([[0, 1, -1], [0, 1, -2]], device)).asnumpy(),
                                  nd.gather_nd(d, _a([[0, 1, 1], [0, 1, 1]], device)).asnumpy())


def test_gather_nd_refuses_out_of_range_indices(device):
    d = _a(np.arange(6).reshape(2, 3), device)
    _raises(device, lambda: nd.gather_nd(d, _a([[0, 1, 0], [0, 1, 3]], device)).asnumpy(),
            "'gather_nd'", "index 3 is out of bounds for axis 1 with size 3")
    err = _raises(device, lambda: nd.gather_nd(d, _a([[0, 1, 0], [0, 1, -5]],
                                                     device)).wait_to_read(),
                  "'gather_nd'", "index -5")
    assert isinstance(err, IndexError)  # what MXNet raises
    _raises(device, lambda: nd.scatter_nd(_a([1, 2], device), _a([[0, 2]], device),
                                          (2,)).wait_to_read(),
            "'scatter_nd'", "index 2 is out of bounds for axis 0 with size 2")
    _raises(device, lambda: nd.gather_nd(d, _a([1, 0], device)), "'gather_nd'",
            "at least 2 axes")
    _raises(device, lambda: nd.gather_nd(d, _a([[1], [1], [0]], device)), "'gather_nd'",
            "address 3 axes")


def test_gather_nd_gradient_accumulates_repeated_indices(device):
    g = _grad(lambda a: nd.gather_nd(a, _a([[1, 1, 1], [0, 0, 1]], device)),
              _a([[0, 1], [2, 3]], device), _a([1, 2, 4], device))
    np.testing.assert_array_equal(g, [[0, 0], [3, 4]])
    # MXNet's name for the adjoint; integers accumulate exactly
    big = _a([2123162361283621, -31231236374787, -112372937128970], device, "int64")
    out = nd.invoke("_backward_gather_nd", big, _a([[0, 0, 0]], device, "int32"), shape=(1,))
    assert int(out.asnumpy()[0]) == 2123162361283621 - 31231236374787 - 112372937128970


def test_scatter_nd_follows_mxnet(device):
    out = nd.scatter_nd(_a([2, 3, 0], device), _a([[1, 1, 0], [0, 1, 0]], device), (2, 2))
    np.testing.assert_array_equal(out.asnumpy(), [[0, 0], [2, 3]])
    out = nd.scatter_nd(_a([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], device),
                        _a([[0, 1], [1, 1]], device), (2, 2, 2, 2))
    np.testing.assert_array_equal(out.asnumpy()[0, 1], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(out.asnumpy()[1, 1], [[5, 6], [7, 8]])
    assert out.asnumpy()[:, 0].sum() == 0
    g = _grad(lambda a: nd.scatter_nd(a, _a([[1, 1, 0], [0, 1, 0]], device), (2, 2)),
              _a([2, 3, 5], device), _a([[1, 2], [3, 4]], device))
    np.testing.assert_array_equal(g, [3, 4, 1])
    _raises(device, lambda: nd.scatter_nd(_a([[1, 2], [3, 4]], device), _a([[0, 1]], device),
                                          (2, 3)), "'scatter_nd'", "data shape (2, 2)")


# --- small indexing names ----------------------------------------------------------------------
def test_batch_take_ravel_and_fill_element(device):
    x = _a([[1, 2], [3, 4], [5, 6]], device)
    np.testing.assert_array_equal(nd.batch_take(x, _a([0, 1, 0], device, "int32")).asnumpy(),
                                  [1, 4, 5])
    np.testing.assert_array_equal(nd.batch_take(x, _a([0, 5, -1], device, "int32")).asnumpy(),
                                  [1, 4, 5])  # clipped
    _raises(device, lambda: nd.batch_take(x, _a([0, 1], device)), "'batch_take'")
    a = _a([[3, 6, 6], [4, 5, 1]], device)
    for shape in ((7, 6), (-1, 6)):
        np.testing.assert_array_equal(nd.ravel_multi_index(a, shape=shape).asnumpy(),
                                      [22, 41, 37])
        np.testing.assert_array_equal(
            nd.unravel_index(_a([22, 41, 37], device), shape=shape).asnumpy(), a.asnumpy())
    assert nd.ravel_multi_index(_a(a.asnumpy(), device, "int32"), shape=(7, 6)).dtype == np.int32
    lhs = _a([[1, 2], [3, 4], [5, 6]], device)
    out = nd.fill_element_0index(lhs, _a([9, 8, 7], device), _a([1, 0, 5], device))
    np.testing.assert_array_equal(out.asnumpy(), [[1, 9], [8, 4], [5, 6]])
    np.testing.assert_array_equal(lhs.asnumpy(), [[1, 2], [3, 4], [5, 6]])  # a copy
    np.testing.assert_array_equal(nd.choose_element_0index(x, _a([1, 0, 1], device)).asnumpy(),
                                  [2, 3, 6])


# --- sequence ops --------------------------------------------------------------------------------
SEQ = np.arange(1, 19, dtype=np.float32).reshape(3, 2, 3)


def test_sequence_mask_follows_mxnet_examples(device):
    x = _a(SEQ, device)
    np.testing.assert_array_equal(nd.SequenceMask(x).asnumpy(), SEQ)
    out = nd.SequenceMask(x, _a([1, 1], device), use_sequence_length=True)
    np.testing.assert_array_equal(out.asnumpy()[1:], 0)
    np.testing.assert_array_equal(out.asnumpy()[0], SEQ[0])
    out = nd.SequenceMask(x, _a([2, 3], device), use_sequence_length=True, value=1)
    np.testing.assert_array_equal(out.asnumpy()[2], [[1, 1, 1], [16, 17, 18]])
    # lengths are truncated to integers; negative ones mask everything
    out = nd.SequenceMask(x, _a([1.7, -1], device), use_sequence_length=True)
    np.testing.assert_array_equal(out.asnumpy()[:, 0], [SEQ[0, 0], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(out.asnumpy()[:, 1], 0)


def test_sequence_last_and_reverse_follow_mxnet_examples(device):
    x = _a(np.arange(1, 28).reshape(3, 3, 3), device)
    np.testing.assert_array_equal(nd.SequenceLast(x).asnumpy(), np.arange(19, 28).reshape(3, 3))
    out = nd.SequenceLast(x, _a([1, 2, 3], device), use_sequence_length=True)
    np.testing.assert_array_equal(out.asnumpy(), [[1, 2, 3], [13, 14, 15], [25, 26, 27]])
    y = _a(SEQ, device)
    np.testing.assert_array_equal(nd.SequenceReverse(y).asnumpy(), SEQ[::-1])
    out = nd.SequenceReverse(y, _a([2, 3], device), use_sequence_length=True).asnumpy()
    np.testing.assert_array_equal(out[:, 0], [[7, 8, 9], [1, 2, 3], [13, 14, 15]])
    np.testing.assert_array_equal(out[:, 1], [[16, 17, 18], [10, 11, 12], [4, 5, 6]])
    out = nd.SequenceLast(_a(np.arange(12).reshape(2, 3, 2), device), _a([1, 3], device),
                          use_sequence_length=True, axis=1)
    np.testing.assert_array_equal(out.asnumpy(), [[0, 1], [10, 11]])


@pytest.mark.parametrize("name", ["SequenceMask", "SequenceLast", "SequenceReverse"])
def test_sequence_ops_give_no_gradient_to_the_lengths(device, name):
    fn = getattr(nd, name)
    x, lengths = _a(SEQ, device), _a([1, 3], device)
    x.attach_grad()
    lengths.attach_grad()
    with mx.autograd.record():
        y = fn(x, lengths, use_sequence_length=True)
    y.backward(nd.ones(y.shape, ctx=device))
    assert lengths.grad.asnumpy().tolist() == [0, 0]
    expect = {"SequenceMask": (SEQ > 0) & (np.arange(3)[:, None, None] < [[[1], [3]]]),
              "SequenceLast": np.zeros(SEQ.shape), "SequenceReverse": np.ones(SEQ.shape)}[name]
    if name == "SequenceLast":
        expect[0, 0] = expect[2, 1] = 1
    np.testing.assert_array_equal(x.grad.asnumpy(), expect.astype(np.float32))


def test_sequence_ops_refuse_bad_calls(device):
    x = _a(SEQ, device)
    _raises(device, lambda: nd.SequenceMask(x, _a([1, 2], device)), "'SequenceMask'",
            "use_sequence_length")
    _raises(device, lambda: nd.SequenceLast(x, use_sequence_length=True), "'SequenceLast'",
            "use_sequence_length")
    _raises(device, lambda: nd.SequenceMask(x, _a([1, 2, 3], device), use_sequence_length=True),
            "'SequenceMask'", "sequence_length must have shape (2,)")
    _raises(device, lambda: nd.SequenceReverse(x, axis=2), "'SequenceReverse'", "axis")
    _raises(device, lambda: nd.SequenceMask(_a([1, 2], device)), "'SequenceMask'", "2 axes")


# --- diag / flip / depth and space / pad -------------------------------------------------------
def test_diag_follows_mxnet_examples(device):
    x = _a([[1, 2, 3], [4, 5, 6]], device)
    np.testing.assert_array_equal(nd.diag(x).asnumpy(), [1, 5])
    np.testing.assert_array_equal(nd.diag(x, k=1).asnumpy(), [2, 6])
    np.testing.assert_array_equal(nd.diag(x, k=-1).asnumpy(), [4])
    assert nd.diag(x, k=3).shape == (0,)
    v = _a([1, 2, 3], device)
    np.testing.assert_array_equal(nd.diag(v, k=1).asnumpy(), np.diag([1, 2, 3], 1))
    c = _a([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], device)
    np.testing.assert_array_equal(nd.diag(c).asnumpy(), [[1, 7], [2, 8]])
    np.testing.assert_array_equal(nd.diag(c, k=1).asnumpy(), [[3], [4]])
    np.testing.assert_array_equal(nd.diag(c, axis1=-2, axis2=-1).asnumpy(), [[1, 4], [5, 8]])
    g = _grad(lambda a: nd.diag(a, k=1), _a(np.zeros((2, 3)), device), _a([5, 7], device))
    np.testing.assert_array_equal(g, [[0, 5, 0], [0, 0, 7]])
    g = _grad(lambda a: nd.diag(a, k=-1), _a([1, 2], device), _a(np.arange(9).reshape(3, 3),
                                                                   device))
    np.testing.assert_array_equal(g, [3, 7])


def test_diag_refuses_bad_calls(device):
    x = _a(np.ones((2, 3)), device)
    _raises(device, lambda: nd.diag(x, k=4), "'diag'", "diagonal 4 does not exist")
    _raises(device, lambda: nd.diag(x, k=-3), "'diag'", "diagonal -3")
    _raises(device, lambda: nd.diag(x, axis1=1, axis2=1), "'diag'", "distinct")
    _raises(device, lambda: nd.diag(nd.ones((), ctx=device)), "'diag'", "0-d")


def test_flip_returns_a_new_array(device):
    x = _a(np.arange(6).reshape(2, 3), device)
    y = nd.flip(x, axis=1)
    np.testing.assert_array_equal(y.asnumpy(), [[2, 1, 0], [5, 4, 3]])
    y[:] = 0
    np.testing.assert_array_equal(x.asnumpy(), np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(nd.reverse(x, axis=(1, 1)).asnumpy(), x.asnumpy())
    np.testing.assert_array_equal(nd.flip(x, axis=(0, -1)).asnumpy(), [[5, 4, 3], [2, 1, 0]])
    _raises(device, lambda: nd.flip(x, axis=2), "'flip'", "axis 2")


def test_depth_to_space_follows_mxnet_example(device):
    x = _a(np.arange(24).reshape(1, 4, 2, 3), device)
    out = nd.depth_to_space(x, 2)
    np.testing.assert_array_equal(out.asnumpy()[0, 0], [[0, 6, 1, 7, 2, 8],
                                                        [12, 18, 13, 19, 14, 20],
                                                        [3, 9, 4, 10, 5, 11],
                                                        [15, 21, 16, 22, 17, 23]])
    np.testing.assert_array_equal(nd.space_to_depth(out, 2).asnumpy(), x.asnumpy())
    _raises(device, lambda: nd.depth_to_space(_a(np.ones((1, 6, 2, 2)), device), 2),
            "'depth_to_space'", "multiple of block_size^2")
    _raises(device, lambda: nd.space_to_depth(_a(np.ones((1, 1, 4, 6)), device), 4),
            "'space_to_depth'", "multiples of block_size 4")
    _raises(device, lambda: nd.depth_to_space(_a(np.ones((4, 2, 3)), device), 2),
            "'depth_to_space'", "4-D")
    _raises(device, lambda: nd.depth_to_space(x, 0), "'depth_to_space'", "positive")


def test_pad_alias_and_reflect_limit(device):
    x = _a(np.arange(8).reshape(1, 1, 2, 4), device)
    np.testing.assert_array_equal(
        nd.Pad(x, mode="reflect", pad_width=(0, 0, 0, 0, 1, 1, 3, 3)).asnumpy(),
        np.pad(x.asnumpy(), ((0, 0), (0, 0), (1, 1), (3, 3)), mode="reflect"))
    _raises(device, lambda: nd.pad(x, mode="reflect", pad_width=(0, 0, 0, 0, 2, 0, 0, 0)),
            "'pad'", "reflect padding must be smaller")


def test_shape_and_size_arrays(device):
    x = nd.zeros((2, 0, 3), ctx=device)
    s = nd.shape_array(x)
    assert s.dtype == np.int64 and s.context == device
    np.testing.assert_array_equal(s.asnumpy(), [2, 0, 3])
    np.testing.assert_array_equal(nd.size_array(nd.ones((2, 3), ctx=device)).asnumpy(), [6])


def test_split_v2_moveaxis_and_crop(device):
    parts = nd.split_v2(_a(np.arange(6), device), (0, 2))
    assert [p.shape for p in parts] == [(0,), (2,), (4,)]
    assert isinstance(nd.split_v2(_a(np.arange(6), device), 1), mx.nd.NDArray)
    _raises(device, lambda: nd.split_v2(_a(np.arange(6), device), (4, 2)), "'split_v2'")
    _raises(device, lambda: nd.split_v2(_a(np.arange(6), device), 4), "'split_v2'")
    assert nd.moveaxis(nd.ones((2, 3, 4), ctx=device), 0, 2).shape == (3, 4, 2)
    img = _a(np.arange(32).reshape(1, 2, 4, 4), device)
    np.testing.assert_array_equal(nd.Crop(img, h_w=(2, 2), offset=(1, 1)).asnumpy()[0, 0],
                                  [[5, 6], [9, 10]])
    _raises(device, lambda: nd.Crop(img, h_w=(5, 2)), "'Crop'", "must fit")
    _raises(device, lambda: nd.Crop(img, h_w=(3, 3), offset=(2, 0)), "'Crop'", "offset")
