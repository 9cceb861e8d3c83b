"""Op-table cases: sorting, cumsum, gather/scatter, diag, flip and depth/space, the
sequence ops and the smaller indexing and shape names of MXNet 1.x.  Imported by
mxcore.testing.optable, which collects every case into one table.

The references loop over the rows, indices or positions of tiny inputs, in the words of
MXNet's definitions (a stable order: ties keep their index order, ascending or
descending), so they share no formula with the kernels.
"""
from __future__ import annotations

import numpy as np

import mxcore as mx
from mxcore.testing.table import ALL, NUMERIC, In, collector

CASES: list = []
case = collector(CASES)


nd = mx.nd
S234 = (2, 3, 4)


def _const(x, values, dtype="int64"):
    """A constant index array on ``x``'s device."""
    return nd.array(np.asarray(values), ctx=x.context, dtype=dtype)


# --- references -----------------------------------------------------------------------
def _order(v, ascend):
    """Positions of the 1-D ``v`` in sorted order; equal values keep their order."""
    sign = 1 if ascend else -1
    return sorted(range(len(v)), key=lambda i: (sign * float(v[i]), i))


def _lines(x, axis):
    """(index tuple of a line, the line) for every 1-D line of ``x`` along ``axis``."""
    moved = np.moveaxis(x, axis, -1)
    for pos in np.ndindex(moved.shape[:-1]):
        yield pos, moved[pos]


def _topk(x, axis=-1, k=1, ret_typ="indices", ascend=False):
    axis %= x.ndim
    n = x.shape[axis]
    k = n if k < 1 else k
    moved = np.moveaxis(x, axis, -1)
    idx = np.zeros(moved.shape[:-1] + (k,))
    val = np.zeros(moved.shape[:-1] + (k,), x.dtype)
    mask = np.zeros(moved.shape, x.dtype)
    for pos, line in _lines(x, axis):
        order = _order(line, ascend)[:k]
        idx[pos] = order
        val[pos] = line[order]
        mask[pos + (order,)] = 1
    back = {"indices": np.moveaxis(idx, -1, axis).astype(np.float32),
            "value": np.moveaxis(val, -1, axis), "mask": np.moveaxis(mask, -1, axis)}
    if ret_typ == "both":
        return back["value"], back["indices"]
    return back[ret_typ]


def _sort(x, axis=-1, ascend=True):
    return _topk(x, axis, 0, "value", ascend)


def _argsort(x, axis=-1, ascend=True, dtype=np.float32):
    return _topk(x, axis, 0, "indices", ascend).astype(dtype)


def _cumsum(x, axis=None, dtype=None):
    flat = x.ravel() if axis is None else np.moveaxis(x, axis, -1)
    out = np.zeros(flat.shape, np.float64 if dtype is None else dtype)
    for pos in np.ndindex(flat.shape[:-1]):
        total = 0
        for t in range(flat.shape[-1]):
            total += flat[pos + (t,)]
            out[pos + (t,)] = total
    out = out if axis is None else np.moveaxis(out, -1, axis)
    return out.astype(dtype or (np.int64 if x.dtype == np.bool_ else x.dtype))


def _gather_nd(x, idx):
    m = idx.shape[0]
    out = np.zeros(idx.shape[1:] + x.shape[m:], x.dtype)
    for y in np.ndindex(idx.shape[1:]):
        out[y] = x[tuple(int(idx[(i,) + y]) for i in range(m))]
    return out


def _scatter_nd(x, idx, shape):
    out = np.zeros(shape, x.dtype)
    for y in np.ndindex(idx.shape[1:]):
        out[tuple(int(idx[(i,) + y]) for i in range(idx.shape[0]))] = x[y]
    return out


def _gather_nd_grad(g, idx, shape):
    out = np.zeros(shape, np.float64 if g.dtype.kind == "f" else np.int64)
    for y in np.ndindex(idx.shape[1:]):
        out[tuple(int(idx[(i,) + y]) for i in range(idx.shape[0]))] += g[y]
    return out.astype(g.dtype)


def _diag(x, k=0, axis1=0, axis2=1):
    if x.ndim == 1:
        n = len(x) + abs(k)
        out = np.zeros((n, n), x.dtype)
        for i, v in enumerate(x):
            out[i + max(-k, 0), i + max(k, 0)] = v
        return out
    a1, a2 = axis1 % x.ndim, axis2 % x.ndim
    moved = np.moveaxis(x, (a1, a2), (-2, -1))
    n1, n2 = moved.shape[-2:]
    length = max(0, min(n1 + min(k, 0), n2 - max(k, 0)))
    out = np.zeros(moved.shape[:-2] + (length,), x.dtype)
    for i in range(length):
        out[..., i] = moved[..., i + max(-k, 0), i + max(k, 0)]
    return out


def _depth_to_space(x, b):
    n, c, h, w = x.shape
    cc = c // (b * b)
    out = np.zeros((n, cc, h * b, w * b), x.dtype)
    for i in range(b):
        for j in range(b):
            for ch in range(cc):
                out[:, ch, i::b, j::b] = x[:, (i * b + j) * cc + ch]
    return out


def _space_to_depth(x, b):
    n, c, h, w = x.shape
    out = np.zeros((n, c * b * b, h // b, w // b), x.dtype)
    for i in range(b):
        for j in range(b):
            for ch in range(c):
                out[:, (i * b + j) * c + ch] = x[:, ch, i::b, j::b]
    return out


def _seq(x, axis):
    """x with the sequence axis first: (T, B, ...)."""
    return np.moveaxis(x, axis, 0)


def _sequence_mask(x, lengths, value=0.0, axis=0):
    out = _seq(x.copy(), axis)
    for b, n in enumerate(lengths):
        out[int(n):, b] = value
    return np.moveaxis(out, 0, axis)


def _sequence_last(x, lengths, axis=0):
    s = _seq(x, axis)
    return np.stack([s[int(n) - 1, b] for b, n in enumerate(lengths)])


def _sequence_reverse(x, lengths, axis=0):
    s = _seq(x, axis)
    out = s.copy()
    for b, n in enumerate(lengths):
        n = int(n)
        out[:n, b] = s[:n, b][::-1]
    return np.moveaxis(out, 0, axis)


# --- topk / sort / argsort / cumsum --------------------------------------------------------
D = "distinct"
_TIES = np.array([[2, 1, 2, 0, 1, 2], [1, 1, 0, 0, 2, 2]])  # equal values keep their order
case("topk_indices", lambda x: nd.topk(x, k=2), lambda x: _topk(x, k=2), (In(S234, D),),
     NUMERIC, grad=False, out_dtype="float32")
case("topk_indices_axis0_ascend_int32",
     lambda x: nd.topk(x, axis=0, k=2, is_ascend=True, dtype="int32"),
     lambda x: _topk(x, 0, 2, "indices", True).astype(np.int32), (In((3, 4), D),), NUMERIC,
     grad=False, out_dtype="int32")
case("topk_indices_ties", lambda x: nd.topk(x + _const(x, _TIES, x.dtype), k=4),
     lambda x: _topk(x + _TIES.astype(x.dtype), k=4), (In((2, 6), "mask"),), NUMERIC,
     grad=False, out_dtype="float32")
case("topk_value", lambda x: nd.topk(x, axis=1, k=2, ret_typ="value"),
     lambda x: _topk(x, 1, 2, "value"), (In(S234, D),), NUMERIC)
case("topk_value_flat_ascend", lambda x: nd.topk(x, axis=None, k=5, ret_typ="value",
                                                 is_ascend=True),
     lambda x: _topk(x.ravel(), 0, 5, "value", True), (In(S234, D),), NUMERIC)
case("topk_value_all", lambda x: nd.topk(x, k=0, ret_typ="value"),
     lambda x: _topk(x, -1, 0, "value"), (In((3, 5), D),))
case("topk_mask", lambda x: nd.topk(x, axis=1, k=2, ret_typ="mask"),
     lambda x: _topk(x, 1, 2, "mask"), (In(S234, D),), NUMERIC, grad=False)
case("topk_mask_flat", lambda x: nd.topk(x, axis=None, k=4, ret_typ="mask", is_ascend=True),
     lambda x: _topk(x.ravel(), 0, 4, "mask", True).reshape(x.shape), (In(S234, D),),
     NUMERIC, grad=False)
# 'both': values and indices; the index dtype follows the data so one dtype checks both
case("topk_both", lambda x: tuple(nd.topk(x, axis=2, k=3, ret_typ="both", dtype=x.dtype)),
     lambda x: tuple(v.astype(x.dtype) for v in _topk(x, 2, 3, "both")), (In(S234, D),),
     ("float16", "float32", "float64"))
case("sort", nd.sort, _sort, (In(S234, D),), NUMERIC)
case("sort_axis0_descend", lambda x: nd.sort(x, axis=0, is_ascend=False),
     lambda x: _sort(x, 0, False), (In(S234, D),), NUMERIC)
case("sort_flat", lambda x: nd.sort(x, axis=None), lambda x: _sort(x.ravel()),
     (In(S234, D),))
case("argsort", nd.argsort, _argsort, (In(S234, D),), NUMERIC, grad=False, out_dtype="float32")
case("argsort_descend_ties_int64",
     lambda x: nd.argsort(x + _const(x, _TIES, x.dtype), is_ascend=False, dtype="int64"),
     lambda x: _argsort(x + _TIES.astype(x.dtype), -1, False, np.int64),
     (In((2, 6), "mask"),), NUMERIC, grad=False, out_dtype="int64")
case("argsort_flat_axis1", lambda x: nd.argsort(x, axis=None), lambda x: _argsort(x.ravel()),
     (In(S234, D),), grad=False, out_dtype="float32")
case("cumsum_axis1", lambda x: nd.cumsum(x, axis=1), lambda x: _cumsum(x, 1),
     (In(S234),), NUMERIC)
case("cumsum_flat", nd.cumsum, _cumsum, (In(S234),), NUMERIC)
case("cumsum_negative_axis", lambda x: nd.cumsum(x, axis=-1), lambda x: _cumsum(x, 2),
     (In(S234),))
case("cumsum_dtype", lambda x: nd.cumsum(x, axis=0, dtype="float64"),
     lambda x: _cumsum(x, 0, np.float64), (In(S234),), ("int32", "float32"), grad=False,
     out_dtype="float64")
case("cumsum_bool", lambda x: nd.cumsum(x, axis=1), lambda x: _cumsum(x, 1), (In((2, 5)),),
     ("bool",), grad=False, out_dtype="int64")

# --- gather_nd / scatter_nd ------------------------------------------------------------------
_GIDX = [[1, 0, 1, -1, 1], [2, 0, 2, 1, -3]]   # repeats and negative indices
_SIDX = [[1, 0, 1], [0, 2, 2]]                  # distinct positions
case("gather_nd", lambda x: nd.gather_nd(x, _const(x, _GIDX)),
     lambda x: _gather_nd(x, np.array(_GIDX) % np.array([[2], [3]])), (In(S234),), ALL)
case("gather_nd_all_axes", lambda x: nd.gather_nd(x, _const(x, [[[0, 1], [1, 1]],
                                                                [[2, 0], [2, 2]],
                                                                [[3, 1], [0, 3]]], "float32")),
     lambda x: _gather_nd(x, np.array([[[0, 1], [1, 1]], [[2, 0], [2, 2]],
                                       [[3, 1], [0, 3]]])), (In(S234),), NUMERIC)
case("scatter_nd", lambda x: nd.scatter_nd(x, _const(x, _SIDX), (2, 3, 4)),
     lambda x: _scatter_nd(x, np.array(_SIDX), (2, 3, 4)), (In((3, 4)),), ALL)
case("scatter_nd_all_axes", lambda x: nd.scatter_nd(x, _const(x, [[0, 2], [1, 1]], "int32"),
                                                    (3, 2)),
     lambda x: _scatter_nd(x, np.array([[0, 2], [1, 1]]), (3, 2)), (In((2,)),), NUMERIC)
# gather_nd's adjoint by name: repeated indices accumulate (16-bit floats in float32)
case("gather_nd_grad_accumulates",
     lambda g: nd.invoke("gather_nd_grad", g, _const(g, [[1, 1, 0, 1]]), shape=(2, 3)),
     lambda g: _gather_nd_grad(g, np.array([[1, 1, 0, 1]]), (2, 3)), (In((4, 3)),), NUMERIC)

# --- small indexing names -----------------------------------------------------------------------
case("batch_take", lambda x, i: nd.batch_take(x, i),
     lambda x, i: np.array([x[r, int(i[r])] for r in range(3)]),
     (In((3, 4)), In((3,), "index", "int32", False, 4)), NUMERIC)
case("batch_take_clip_2d_index", lambda x: nd.batch_take(x, _const(x, [[0, 5], [-1, 1]])),
     lambda x: np.array([[x[0, 0], x[1, 1]], [x[2, 0], x[3, 1]]]), (In((4, 2)),))
case("choose_element_0index", lambda x, i: nd.choose_element_0index(x, i),
     lambda x, i: np.array([x[r, int(i[r])] for r in range(3)]),
     (In((3, 4)), In((3,), "index", "float32", False, 4)))
case("crop", lambda x: nd.crop(x, begin=(1, 0), end=(2, 3)), lambda x: x[1:2, 0:3],
     (In(S234),), ALL)
case("fill_element_0index", lambda a, m: nd.fill_element_0index(a, m, _const(a, [2, 0, 9])),
     lambda a, m: np.array([[a[0, 0], a[0, 1], m[0], a[0, 3]],
                            [m[1], a[1, 1], a[1, 2], a[1, 3]], a[2]]),
     (In((3, 4)), In((3,))), ALL, grad=False)
case("ravel_multi_index", lambda x: nd.ravel_multi_index(x, shape=(7, 6)),
     lambda x: np.array([int(r) * 6 + int(c) for r, c in zip(x[0], x[1])]).astype(x.dtype),
     (In((2, 5), "index", arg=6),), ("float32", "float64", "int32", "int64"), grad=False)
case("unravel_index", lambda x: nd.unravel_index(x, shape=(-1, 3, 4)),
     lambda x: np.array([[int(v) // 12 for v in x], [int(v) // 4 % 3 for v in x],
                         [int(v) % 4 for v in x]]).astype(x.dtype),
     (In((5,), "index", arg=40),), ("float32", "int32", "int64"), grad=False)

# --- sequence ops ---------------------------------------------------------------------------------
_LEN = In((3,), "index", "float32", False, 5)   # lengths 0..4 of 4 steps
case("sequence_mask", lambda x, n: nd.SequenceMask(x, n, use_sequence_length=True, value=2.5),
     lambda x, n: _sequence_mask(x, n, 2.5), (In((4, 3, 2)), _LEN), NUMERIC)
case("sequence_mask_axis1", lambda x, n: nd.SequenceMask(x, n, use_sequence_length=True,
                                                         axis=1),
     lambda x, n: _sequence_mask(x, n, 0, 1), (In((3, 4)), _LEN))
case("sequence_mask_full", nd.SequenceMask, lambda x: x, (In(S234),))
case("sequence_last", lambda x, n: nd.SequenceLast(x, n + 1, use_sequence_length=True),
     lambda x, n: _sequence_last(x, n + 1), (In((4, 3, 2)), In((3,), "index", "float32",
                                                              False, 4)), NUMERIC)
case("sequence_last_axis1", lambda x, n: nd.SequenceLast(x, n + 1, use_sequence_length=True,
                                                         axis=1),
     lambda x, n: _sequence_last(x, n + 1, 1), (In((3, 4, 2)), In((3,), "index", "int32",
                                                                  False, 4)))
case("sequence_last_full", nd.SequenceLast, lambda x: x[-1], (In(S234),))
case("sequence_reverse", lambda x, n: nd.SequenceReverse(x, n, use_sequence_length=True),
     lambda x, n: _sequence_reverse(x, n), (In((4, 3, 2)), _LEN), NUMERIC)
case("sequence_reverse_full", nd.SequenceReverse, lambda x: x[::-1], (In(S234),), ALL)

# --- diag / flip / depth and space ---------------------------------------------------------------
case("diag_1d", nd.diag, _diag, (In((3,)),), ALL)
case("diag_1d_below", lambda x: nd.diag(x, k=-2), lambda x: _diag(x, -2), (In((3,)),))
case("diag_2d_above", lambda x: nd.diag(x, k=1), lambda x: _diag(x, 1), (In((3, 4)),), ALL)
case("diag_2d_empty", lambda x: nd.diag(x, k=4), lambda x: _diag(x, 4), (In((3, 4)),),
     grad=False)
case("diag_3d_axes", lambda x: nd.diag(x, k=-1, axis1=2, axis2=0),
     lambda x: _diag(x, -1, 2, 0), (In(S234),), NUMERIC)
case("diag_3d_negative_axes", lambda x: nd.diag(x, k=1, axis1=-1, axis2=-2),
     lambda x: _diag(x, 1, 2, 1), (In(S234),))
case("flip", lambda x: nd.flip(x, axis=1), lambda x: x[:, ::-1], (In(S234),), ALL)
case("flip_axes", lambda x: nd.flip(x, axis=(0, -1)), lambda x: x[::-1, :, ::-1],
     (In(S234),), ALL)
case("reverse_twice_listed", lambda x: nd.reverse(x, axis=(2, 0, 2)), lambda x: x[::-1],
     (In(S234),))
case("depth_to_space", lambda x: nd.depth_to_space(x, 2), lambda x: _depth_to_space(x, 2),
     (In((2, 8, 2, 3)),), ALL)
case("space_to_depth", lambda x: nd.space_to_depth(x, 2), lambda x: _space_to_depth(x, 2),
     (In((2, 2, 4, 6)),), ALL)

# --- other shape names --------------------------------------------------------------------------
case("shape_array", nd.shape_array, lambda x: np.array(x.shape), (In(S234),), ALL,
     grad=False, out_dtype="int64")
case("size_array", nd.size_array, lambda x: np.array([x.size]), (In(S234),), ALL,
     grad=False, out_dtype="int64")
case("moveaxis", lambda x: nd.moveaxis(x, (0, 1), (2, 0)), lambda x: np.moveaxis(x, (0, 1),
                                                                                  (2, 0)),
     (In(S234),), ALL)
case("split_v2_indices", lambda x: tuple(nd.split_v2(x, (1, 3), axis=2)),
     lambda x: (x[..., :1], x[..., 1:3], x[..., 3:]), (In(S234),), ALL)
case("split_v2_sections_squeeze", lambda x: tuple(nd.split_v2(x, 2, squeeze_axis=True)),
     lambda x: (x[0], x[1]), (In(S234),))
case("Crop_center", lambda x: nd.Crop(x, h_w=(2, 3), center_crop=True),
     lambda x: x[:, :, 1:3, 0:3], (In((1, 2, 4, 4)),), ALL)
case("Crop_like_offset", lambda x: nd.Crop(x, _const(x, np.zeros((1, 1, 3, 2)), x.dtype),
                                           num_args=2, offset=(1, 2)),
     lambda x: x[:, :, 1:4, 2:4], (In((1, 2, 4, 4)),))
for _mode in ("constant", "edge", "reflect"):
    case(f"Pad_4d_{_mode}", lambda x, _m=_mode: nd.Pad(x, _m, (0, 0, 0, 0, 2, 1, 1, 3), 0.5),
         lambda x, _m=_mode: np.pad(x, ((0, 0), (0, 0), (2, 1), (1, 3)), mode=_m,
                                    **({"constant_values": 0.5} if _m == "constant" else {})),
         (In((1, 2, 3, 4)),))
