"""Indexing: basic and advanced ``x[key]`` and ``x[key] = v``, slice,
slice_axis, take, pick, one_hot, batch_take, gather_nd/scatter_nd,
ravel_multi_index/unravel_index, fill_element_0index, and the sequence ops
SequenceMask/SequenceLast/SequenceReverse.

Keys follow numpy: ints, slices, None, Ellipsis, integer or boolean index
arrays (NDArray, numpy or lists).  Index arrays live on the host in the key.
"""
from __future__ import annotations

import builtins
import numbers

import numpy as np

from mxcore import autograd
from mxcore.base import IndexOutOfRange, MXCoreError, OperatorError
from mxcore.dispatch import invoke, invoke_unary
from mxcore.array import NDArray
from mxcore.op import REQUIRED, Op
from mxcore.ops.rules import normalize_axis

OPS: list = []


def _new(name, nin=1, **kw) -> Op:
    op = Op(name, nin, **kw)
    OPS.append(op)
    return op


def normalize_key(key):
    """A tuple key with NDArrays/lists turned into numpy index arrays."""
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for k in key:
        if isinstance(k, NDArray):
            k = k.asnumpy()
            if k.dtype.kind == "f":
                k = k.astype(np.int64)
        elif isinstance(k, list):
            k = np.asarray(k)
        elif isinstance(k, np.ndarray) and k.dtype.kind == "f":
            k = k.astype(np.int64)
        elif isinstance(k, (np.integer,)):
            k = int(k)
        out.append(k)
    return tuple(out)


def is_advanced(key) -> bool:
    return any(isinstance(k, np.ndarray) for k in key)


def _key_infer(s, d, a):
    probe = np.broadcast_to(np.zeros((), dtype=np.int8), s[0])
    try:
        return [probe[a["key"]].shape], [d[0]]
    except (IndexError, TypeError, ValueError) as exc:
        raise MXCoreError(str(exc)) from None


GETITEM = _new("getitem", attrs={"key": REQUIRED}, views=True)
GETITEM.def_infer(_key_infer)
GETITEM.def_grad(lambda c, g: (invoke_unary(GETITEM_GRAD, g, {"key": c.attrs["key"],
                                                              "shape": c.inputs[0].shape}),))

# The adjoint of getitem: scatter-add the gradient into zeros of the input shape.
GETITEM_GRAD = _new("getitem_grad", attrs={"key": REQUIRED, "shape": REQUIRED})
GETITEM_GRAD.def_infer(lambda s, d, a: ([tuple(a["shape"])], [d[0]]))
GETITEM_GRAD.def_grad(lambda c, g: (invoke_unary(GETITEM, g, {"key": c.attrs["key"]}),))


def getitem(data: NDArray, key) -> NDArray:
    key = normalize_key(key)
    try:
        return invoke_unary(GETITEM, data, {"key": key})
    except OperatorError as exc:
        raise OperatorError("getitem", f"index {_show(key)} is invalid: {exc}",
                            [data.shape], [data.dtype], data.context) from None


def _show(key):
    return "[" + ", ".join(f"array{k.shape}" if isinstance(k, np.ndarray) else repr(k)
                           for k in key) + "]"


SETITEM = _new("setitem", 2, attrs={"key": REQUIRED}, mutates=(0,))
SETITEM_SCALAR = _new("setitem_scalar", attrs={"key": REQUIRED, "scalar": REQUIRED},
                      mutates=(0,))
for _op in (SETITEM, SETITEM_SCALAR):
    _op.def_infer(lambda s, d, a: ([s[0]], [d[0]]))


def setitem(data: NDArray, key, value) -> None:
    """``data[key] = value`` written into ``data``'s buffer.  While recording, an
    assignment of a tracked value to all of ``data`` (``x[:] = y``) is recorded as a
    copy, as MXNet does; other in-place writes that touch the graph raise."""
    if type(data._ag) is tuple:
        raise MXCoreError("setitem: cannot assign into an array recorded by autograd "
                          "(it is an intermediate result of the graph)")
    key = normalize_key(key)
    if autograd.STATE.recording and autograd.check_inplace_write(data, value,
                                                                 _is_whole(key)):
        _record_whole_assign(data, key, value)
        return
    if isinstance(value, NDArray):
        if value._device is not data._device:
            value = value.as_in_context(data.context)
        invoke(SETITEM, (data, _fit_value(data, key, value)), {"key": key})
    elif isinstance(value, (numbers.Number, np.number, np.bool_)):
        invoke(SETITEM_SCALAR, (data,), {"key": key, "scalar": value})
    else:
        from mxcore.ops.creation import array
        value = array(value, ctx=data.context, dtype=data.dtype)
        invoke(SETITEM, (data, _fit_value(data, key, value)), {"key": key})


def _is_whole(key) -> bool:
    """Whether ``key`` selects every element (``:``, ``...``, ``None``)."""
    return all(k is None or k is Ellipsis or
               (isinstance(k, builtins.slice) and k == builtins.slice(None)) for k in key)


def _record_whole_assign(data: NDArray, key, value: NDArray) -> None:
    """``data[:] = value`` while recording with a tracked ``value``: ``data`` takes the
    values and becomes their recorded copy (gradients flow back to ``value``)."""
    from mxcore.ops.shape import broadcast_to
    if value._device is not data._device:
        value = value.as_in_context(data.context)
    extra = value.ndim - data.ndim  # leading axes of size 1 (x[None] = y) go
    if extra > 0 and all(n == 1 for n in value.shape[:extra]):
        value = value.reshape(value.shape[extra:])
    copied = broadcast_to(value.astype(data.dtype, copy=False), data.shape)
    invoke(SETITEM, (data, copied), {"key": key})
    data._ag = copied._ag


def _fit_value(data: NDArray, key, value: NDArray) -> NDArray:
    """``value`` without the leading axes of size 1 that the selection lacks (MXNet
    and numpy accept ``x[0] = [v]`` and a (1, 1, n) value for an (m, n) selection)."""
    if not value.ndim or value.shape[0] != 1:
        return value  # the usual case: nothing to check
    try:
        want = _key_infer([data.shape], [data.dtype], {"key": key})[0][0]
    except MXCoreError:
        return value  # a bad key: the kernel's error names it
    extra = 0
    while value.ndim - extra > len(want) and value.shape[extra] == 1:
        extra += 1
    return value.reshape(value.shape[extra:]) if extra else value


def slice(data: NDArray, begin, end, step=None) -> NDArray:  # noqa: A001 - MXNet's name
    """MXNet's slice: per-axis begin/end/step (None for defaults); a single number is
    the first axis's (MXNet reads ``begin=0`` as ``(0,)``)."""
    def per_axis(v):
        return tuple(v) if isinstance(v, (list, tuple)) else (v,)
    begin, end = per_axis(begin), per_axis(end)
    step = per_axis(step) if step is not None else (None,) * len(begin)
    if not len(begin) == len(end) == len(step) or len(begin) > data.ndim:
        raise OperatorError("slice", f"begin {begin}, end {end}, step {step} do not match "
                            f"a {data.ndim}-d input", [data.shape], [data.dtype], data.context)
    return getitem(data, tuple(builtins.slice(b, e, s) for b, e, s in zip(begin, end, step)))


def slice_axis(data: NDArray, axis: int, begin: int, end) -> NDArray:
    axis = normalize_axis(axis, data.ndim, "slice_axis")
    key = (builtins.slice(None),) * axis + (builtins.slice(begin, end),)
    return getitem(data, key)


def slice_like(data: NDArray, shape_like: NDArray, axes=()) -> NDArray:
    axes = axes or tuple(range(shape_like.ndim))
    key = [builtins.slice(None)] * data.ndim
    for a in axes:
        key[a] = builtins.slice(0, shape_like.shape[a])
    return getitem(data, tuple(key))


# take ----------------------------------------------------------------------------------
TAKE_MODES = ("clip", "wrap", "raise")
TAKE = _new("take", 2, attrs={"axis": 0, "mode": "clip"})
TAKE.def_infer(lambda s, d, a: ([s[0][:a["axis"]] + s[1] + s[0][a["axis"] + 1:]], [d[0]]))
TAKE_GRAD = _new("take_grad", 2, attrs={"axis": 0, "mode": "clip", "size": REQUIRED})
TAKE_GRAD.def_infer(lambda s, d, a: (
    [s[0][:a["axis"]] + (a["size"],) + s[0][a["axis"] + len(s[1]):]], [d[0]]))
TAKE.def_grad(lambda c, g: (invoke(TAKE_GRAD, (g, c.inputs[1]), {
    "axis": c.attrs["axis"], "mode": c.attrs["mode"], "size": c.inputs[0].shape[c.attrs["axis"]]}),
    None))
TAKE_GRAD.def_grad(lambda c, g: (invoke(TAKE, (g, c.inputs[1]), {
    "axis": c.attrs["axis"], "mode": c.attrs["mode"]}), None))


def take(a: NDArray, indices: NDArray, axis: int = 0, mode: str = "clip") -> NDArray:
    """Gather slices of ``a`` along ``axis`` at ``indices`` (out-of-range
    indices are clipped, wrapped or raise by ``mode``)."""
    if mode not in TAKE_MODES:
        raise OperatorError("take", f"mode must be one of {TAKE_MODES}, got {mode!r}")
    indices = _as_index_array(indices, a)
    axis = normalize_axis(axis, a.ndim, "take")
    return invoke(TAKE, (a, indices), {"axis": axis, "mode": mode})


def take_grad(grad: NDArray, indices: NDArray, axis: int, size: int,
              mode: str = "clip") -> NDArray:
    """Scatter-add ``grad`` back to an axis of length ``size`` (take's adjoint)."""
    return invoke(TAKE_GRAD, (grad, indices), {"axis": axis, "mode": mode, "size": int(size)})


def _as_index_array(indices, ref: NDArray) -> NDArray:
    if isinstance(indices, NDArray):
        return indices
    from mxcore.ops.creation import array
    return array(np.asarray(indices), ctx=ref.context, dtype="int64")


# pick ----------------------------------------------------------------------------------
PICK = _new("pick", 2, attrs={"axis": -1, "keepdims": False, "mode": "clip"})


def _pick_infer(s, d, a):
    axis = a["axis"]
    shape = list(s[0])
    if a["keepdims"]:
        shape[axis] = 1
    else:
        del shape[axis]
    return [tuple(shape)], [d[0]]


PICK.def_infer(_pick_infer)
PICK_GRAD = _new("pick_grad", 2, attrs={"axis": -1, "keepdims": False, "mode": "clip",
                                        "size": REQUIRED})
PICK_GRAD.def_infer(lambda s, d, a: ([_unpick_shape(s[0], a)], [d[0]]))


def _unpick_shape(out_shape, a):
    # from the out-gradient's shape (pick's output): with keepdims the index may lack the
    # kept axis, so its shape does not say where the axis goes
    shape = list(out_shape)
    if a["keepdims"]:
        shape[a["axis"]] = a["size"]
    else:
        shape.insert(a["axis"], a["size"])
    return tuple(shape)


PICK.def_grad(lambda c, g: (invoke(PICK_GRAD, (g, c.inputs[1]), {
    **c.attrs, "size": c.inputs[0].shape[c.attrs["axis"]]}), None))
PICK_GRAD.def_grad(lambda c, g: (invoke(PICK, (g, c.inputs[1]), {
    k: v for k, v in c.attrs.items() if k != "size"}), None))


def pick(data: NDArray, index, axis: int = -1, keepdims: bool = False,
         mode: str = "clip") -> NDArray:
    """``data`` picked along ``axis`` at ``index`` (one index per position of
    the other axes), e.g. the probability of each sample's label."""
    if mode not in ("clip", "wrap"):
        raise OperatorError("pick", f"mode must be 'clip' or 'wrap', got {mode!r}")
    index = _as_index_array(index, data)
    axis = normalize_axis(axis, data.ndim, "pick")
    expect = data.shape[:axis] + ((1,) if keepdims else ()) + data.shape[axis + 1:]
    if index.shape != expect and index.shape != data.shape[:axis] + data.shape[axis + 1:]:
        raise OperatorError("pick", f"index shape {index.shape} does not match data shape "
                            f"{data.shape} without axis {axis}", [data.shape, index.shape],
                            [data.dtype, index.dtype], data.context)
    return invoke(PICK, (data, index), {"axis": axis, "keepdims": bool(keepdims), "mode": mode})


# one_hot ---------------------------------------------------------------------------------
ONE_HOT = _new("one_hot", attrs={"depth": REQUIRED, "on_value": 1.0, "off_value": 0.0,
                                 "dtype": "float32"})
ONE_HOT.def_infer(lambda s, d, a: ([s[0] + (a["depth"],)], [np.dtype(a["dtype"])]))


def one_hot(indices: NDArray, depth: int, on_value=1.0, off_value=0.0,
            dtype="float32") -> NDArray:
    from hal import dtype_name
    if depth < 0:
        raise OperatorError("one_hot", f"depth must be non-negative, got {depth}")
    return invoke_unary(ONE_HOT, indices, {"depth": int(depth), "on_value": on_value,
                                           "off_value": off_value, "dtype": dtype_name(dtype)})


def onehot_encode(indices: NDArray, out: NDArray) -> NDArray:
    """MXNet's older one-hot: row i of the 2-d ``out`` becomes one-hot at
    ``indices[i]`` (zeros where it is out of range), written in place; returns ``out``."""
    if not isinstance(indices, NDArray) or not isinstance(out, NDArray):
        raise OperatorError("onehot_encode", "indices and out must be NDArrays")
    if indices.ndim != 1 or out.ndim != 2 or indices.shape[0] != out.shape[0]:
        _fail("onehot_encode", "needs 1-d indices and a 2-d out with one row per index",
              indices, out)
    out[...] = one_hot(indices, out.shape[1], dtype=out.dtype)
    return out


def _fail(op: str, msg: str, *arrays: NDArray):
    raise OperatorError(op, msg, [a.shape for a in arrays], [a.dtype for a in arrays],
                        arrays[0].context if arrays else None)


def _assign_target(op: str, data: NDArray, out) -> NDArray:
    """Where ``op`` writes: ``data`` itself when ``out is data``, else ``out`` (or a new
    array) holding a copy of ``data``."""
    if out is data:
        return data
    if out is None:
        return data.copy()
    if not isinstance(out, NDArray) or out.shape != data.shape:
        _fail(op, f"out must be an NDArray of the data's shape {data.shape}", data)
    out[...] = data
    return out


def _region(begin, end, step) -> tuple:
    step = tuple(step) if step else (None,) * len(begin)
    return tuple(builtins.slice(b, e, s) for b, e, s in zip(begin, end, step))


def slice_assign(lhs: NDArray, rhs: NDArray, begin, end, step=(), out=None) -> NDArray:
    """``lhs`` with the region ``begin:end:step`` replaced by ``rhs`` (MXNet's
    ``_slice_assign`` / ``_crop_assign``); ``out=lhs`` writes in place."""
    target = _assign_target("slice_assign", lhs, out)
    target[_region(begin, end, step)] = rhs
    return target


def slice_assign_scalar(data: NDArray, scalar=0.0, begin=(), end=(), step=(),
                        out=None) -> NDArray:
    """``data`` with the region ``begin:end:step`` set to ``scalar`` (MXNet's
    ``_slice_assign_scalar`` / ``_crop_assign_scalar``); ``out=data`` writes in place."""
    target = _assign_target("slice_assign_scalar", data, out)
    target[_region(begin, end, step)] = scalar
    return target


def choose_element_0index(data: NDArray, index, axis: int = -1, keepdims: bool = False,
                          mode: str = "clip") -> NDArray:
    """MXNet's older name of :func:`pick`."""
    return pick(data, index, axis, keepdims, mode)


def crop(data: NDArray, begin, end, step=None) -> NDArray:
    """MXNet's older name of :func:`slice`."""
    return slice(data, begin, end, step)


def batch_take(a: NDArray, indices) -> NDArray:
    """``out[i] = a.reshape(-1, a.shape[-1])[i, indices.flat[i]]`` in ``indices``'
    shape, out-of-range indices clipped (MXNet's batch_take; pick is the newer form)."""
    indices = _as_index_array(indices, a)
    if a.ndim < 1 or a.shape[-1] == 0 or a.size // a.shape[-1] != indices.size:
        _fail("batch_take", f"indices {indices.shape} need one entry per row of the data "
              f"{a.shape} (its size over its last axis)", a, indices)
    from mxcore.ops.shape import reshape
    rows = reshape(a, (-1, a.shape[-1]))
    return reshape(pick(rows, reshape(indices, (-1,)), axis=1), indices.shape)


# gather_nd / scatter_nd ----------------------------------------------------------------
GATHER_ND = _new("gather_nd", 2, doc="data[indices[0], ..., indices[M-1]] for each column "
                 "of the (M, Y...) indices: shape (Y..., X_M...)")
GATHER_ND_GRAD = _new("gather_nd_grad", 2, attrs={"shape": REQUIRED},
                      aliases=("_backward_gather_nd",),
                      doc="gather_nd's adjoint: zeros of ``shape`` with the gradient added "
                          "at the indices (repeated indices accumulate)")
SCATTER_ND = _new("scatter_nd", 2, attrs={"shape": REQUIRED},
                  doc="zeros of ``shape`` with data written at the indices (gather_nd's "
                      "inverse; with repeated indices one of the writes wins)")


def _nd_index_rule(index_shape, target, what):
    """The leading target axes the (M, Y...) indices address, checked."""
    if len(index_shape) < 2:
        raise MXCoreError(f"indices must have at least 2 axes (M, Y...), got "
                          f"{tuple(index_shape)}")
    m = index_shape[0]
    if not 0 < m <= len(target):
        raise MXCoreError(f"indices address {m} axes but the {what} has {len(target)}")
    return m


@GATHER_ND.def_infer
def _gather_nd_infer(s, d, a):
    m = _nd_index_rule(s[1], s[0], "data")
    return [tuple(s[1][1:]) + tuple(s[0][m:])], [d[0]]


def _scatter_nd_infer(s, d, a):
    shape = tuple(a["shape"])
    m = _nd_index_rule(s[1], shape, "output shape")
    want = tuple(s[1][1:]) + shape[m:]
    if tuple(s[0]) != want:
        raise MXCoreError(f"data shape {tuple(s[0])} must be {want} for indices "
                          f"{tuple(s[1])} and output shape {shape}")
    return [shape], [d[0]]


GATHER_ND_GRAD.def_infer(_scatter_nd_infer)
SCATTER_ND.def_infer(_scatter_nd_infer)
GATHER_ND.def_grad(lambda c, g: (invoke(GATHER_ND_GRAD, (g, c.inputs[1]),
                                        {"shape": c.inputs[0].shape}), None))
GATHER_ND_GRAD.def_grad(lambda c, g: (invoke(GATHER_ND, (g, c.inputs[1])), None))
SCATTER_ND.def_grad(lambda c, g: (invoke(GATHER_ND, (g, c.inputs[1])), None))


def _nd_call(op: Op, name: str, data: NDArray, indices, attrs):
    indices = _as_index_array(indices, data)
    try:
        op.infer_shape_dtype([data.shape, indices.shape], [data.dtype, indices.dtype], attrs)
    except MXCoreError as exc:
        _fail(name, str(exc), data, indices)
    try:
        return invoke(op, (data, indices), attrs)
    except OperatorError as exc:
        if not isinstance(exc.__cause__, IndexError):
            raise
        raise IndexOutOfRange(name, str(exc.__cause__), exc.shapes, exc.dtypes,
                              exc.device) from None


def gather_nd(data: NDArray, indices) -> NDArray:
    """MXNet's gather_nd: ``indices`` of shape (M, Y...) picks
    ``data[indices[0, y], ..., indices[M-1, y], ...]`` for every y; negative indices
    count from the end, out-of-range ones are an error."""
    return _nd_call(GATHER_ND, "gather_nd", data, indices, {})


def scatter_nd(data: NDArray, indices, shape) -> NDArray:
    """MXNet's scatter_nd: zeros of ``shape`` with ``data[y, ...]`` written at
    ``indices[:, y]`` (the inverse of gather_nd)."""
    return _nd_call(SCATTER_ND, "scatter_nd", data, indices,
                    {"shape": tuple(int(v) for v in shape)})


# ravel_multi_index / unravel_index -------------------------------------------------------
RAVEL = _new("ravel_multi_index", attrs={"shape": REQUIRED},
             doc="flat indices of the columns of a (len(shape), N) index array")
UNRAVEL = _new("unravel_index", attrs={"shape": REQUIRED},
               doc="the (len(shape), ...) multi-indices of flat indices")


@RAVEL.def_infer
def _ravel_infer(s, d, a):
    if len(s[0]) != 2 or s[0][0] != len(a["shape"]):
        raise MXCoreError(f"data must be ({len(a['shape'])}, N) for shape {a['shape']}, "
                          f"got {tuple(s[0])}")
    return [(s[0][1],)], [d[0]]


UNRAVEL.def_infer(lambda s, d, a: ([(len(a["shape"]),) + tuple(s[0])], [d[0]]))


def _ravel_shape(op: str, shape, data: NDArray) -> tuple:
    shape = tuple(int(v) for v in shape)
    if not shape or builtins.min(shape[1:], default=1) < 1 or not (shape[0] == -1
                                                                   or shape[0] >= 1):
        _fail(op, f"shape {shape} must be positive sizes (the first may be -1)", data)
    return shape


def ravel_multi_index(data: NDArray, shape=None) -> NDArray:
    """Flat indices of the columns of ``data`` (one row per axis of ``shape``; the
    first size may be -1) in ``data``'s dtype; indices are not range-checked (MXNet)."""
    attrs = {"shape": _ravel_shape("ravel_multi_index", shape, data)}
    try:
        _ravel_infer([data.shape], [data.dtype], attrs)
    except MXCoreError as exc:
        _fail("ravel_multi_index", str(exc), data)
    return invoke_unary(RAVEL, data, attrs)


def unravel_index(data: NDArray, shape=None) -> NDArray:
    """The multi-indices of flat indices, one row per axis of ``shape`` (the first size
    may be -1: the first row is then the quotient), in ``data``'s dtype."""
    return invoke_unary(UNRAVEL, data, {"shape": _ravel_shape("unravel_index", shape, data)})


# fill_element_0index ---------------------------------------------------------------------
FILL_ELEMENT = _new("fill_element_0index", 3,
                    doc="a copy of the (N, M) lhs with lhs[i, rhs[i]] = mhs[i]")


@FILL_ELEMENT.def_infer
def _fill_element_infer(s, d, a):
    if len(s[0]) != 2 or tuple(s[1]) != (s[0][0],) or tuple(s[2]) != (s[0][0],):
        raise MXCoreError(f"lhs must be (N, M) with mhs and rhs of shape (N,), got "
                          f"{tuple(s[0])}, {tuple(s[1])}, {tuple(s[2])}")
    if d[0] != d[1]:
        raise MXCoreError(f"lhs and mhs dtypes differ ({d[0]}, {d[1]})")
    return [tuple(s[0])], [d[0]]


def fill_element_0index(lhs: NDArray, mhs: NDArray, rhs: NDArray) -> NDArray:
    """A copy of ``lhs`` with ``lhs[i, rhs[i]] = mhs[i]`` for each row i (indices
    outside the row are skipped, as in MXNet; not differentiable)."""
    rhs = _as_index_array(rhs, lhs)
    try:
        _fill_element_infer([lhs.shape, mhs.shape, rhs.shape],
                            [lhs.dtype, mhs.dtype, rhs.dtype], {})
    except MXCoreError as exc:
        _fail("fill_element_0index", str(exc), lhs, mhs, rhs)
    return invoke(FILL_ELEMENT, (lhs, mhs, rhs))


# SequenceMask / SequenceLast / SequenceReverse -------------------------------------------
# (data, sequence_length): data is (T, B, ...) for axis 0 or (B, T, ...) for axis 1;
# lengths are truncated to integers.  No gradient reaches sequence_length.
_SEQ_ATTRS = {"axis": 0}
SEQ_MASK = _new("sequence_mask", 2, attrs={"value": 0.0, "axis": 0}, aliases=("SequenceMask",),
                doc="data with the steps at or past each sequence's length set to ``value``")
SEQ_LAST = _new("sequence_last", 2, attrs=dict(_SEQ_ATTRS), aliases=("SequenceLast",),
                doc="each sequence's last step (its length - 1, clipped into the axis)")
SEQ_LAST_GRAD = _new("sequence_last_grad", 2, attrs={"axis": 0, "size": REQUIRED},
                     doc="sequence_last's adjoint: the gradient put at each sequence's last "
                         "step of zeros with ``size`` steps")
SEQ_REVERSE = _new("sequence_reverse", 2, attrs=dict(_SEQ_ATTRS),
                   aliases=("SequenceReverse",),
                   doc="each sequence's first ``length`` steps reversed (lengths clipped "
                       "to the axis), the rest kept")


def _seq_rule(s, a):
    """The data shape, checked (``s[1]`` None: no lengths to check)."""
    data, lengths, axis = s[0], s[1], a["axis"]
    if axis not in (0, 1):
        raise MXCoreError(f"axis must be 0 or 1 (the sequence axis), got {axis}")
    if len(data) < 2:
        raise MXCoreError(f"data must have at least 2 axes (sequence and batch), got "
                          f"{tuple(data)}")
    batch = data[1 - axis]
    if lengths is not None and tuple(lengths) != (batch,):
        raise MXCoreError(f"sequence_length must have shape ({batch},) (the batch axis "
                          f"{1 - axis} of data {tuple(data)}), got {tuple(lengths)}")
    return tuple(data)


SEQ_MASK.def_infer(lambda s, d, a: ([_seq_rule(s, a)], [d[0]]))
SEQ_REVERSE.def_infer(lambda s, d, a: ([_seq_rule(s, a)], [d[0]]))


@SEQ_LAST.def_infer
def _seq_last_infer(s, d, a):
    shape = _seq_rule(s, a)
    return [shape[:a["axis"]] + shape[a["axis"] + 1:]], [d[0]]


@SEQ_LAST_GRAD.def_infer
def _seq_last_grad_infer(s, d, a):
    shape = list(s[0])
    shape.insert(a["axis"], a["size"])
    return [_seq_rule((tuple(shape), s[1]), a)], [d[0]]


SEQ_MASK.def_grad(lambda c, g: (invoke(SEQ_MASK, (g, c.inputs[1]),
                                       {"value": 0.0, "axis": c.attrs["axis"]}), None))
SEQ_REVERSE.def_grad(lambda c, g: (invoke(SEQ_REVERSE, (g, c.inputs[1]), c.attrs), None))
SEQ_LAST.def_grad(lambda c, g: (invoke(SEQ_LAST_GRAD, (g, c.inputs[1]), {
    "axis": c.attrs["axis"], "size": c.inputs[0].shape[c.attrs["axis"]]}), None))
SEQ_LAST_GRAD.def_grad(lambda c, g: (invoke(SEQ_LAST, (g, c.inputs[1]),
                                            {"axis": c.attrs["axis"]}), None))


def _sequence_call(name: str, op: Op, data: NDArray, sequence_length,
                   use_sequence_length: bool, attrs, plain):
    """Run ``op`` with the lengths, or ``plain(data)`` when every sequence is full."""
    if sequence_length is not None:
        sequence_length = _as_index_array(sequence_length, data)
    arrays = (data,) if sequence_length is None else (data, sequence_length)
    if bool(use_sequence_length) != (sequence_length is not None):
        _fail(name, "sequence_length must be given exactly when use_sequence_length is "
              "True", *arrays)
    try:
        _seq_rule((data.shape, getattr(sequence_length, "shape", None)), attrs)
    except MXCoreError as exc:
        _fail(name, str(exc), *arrays)
    if sequence_length is None:
        return plain(data)
    return invoke(op, (data, sequence_length), attrs)


def SequenceMask(data: NDArray, sequence_length: NDArray = None,  # noqa: N802 - MXNet's name
                 use_sequence_length: bool = False, value: float = 0.0,
                 axis: int = 0) -> NDArray:
    """Steps at or past each sequence's length set to ``value`` (``axis``: the
    sequence axis, 0 or 1; the other of the two is the batch axis)."""
    from mxcore.ops.creation import copy
    return _sequence_call("SequenceMask", SEQ_MASK, data, sequence_length,
                          use_sequence_length, {"value": float(value), "axis": int(axis)},
                          copy)


def SequenceLast(data: NDArray, sequence_length: NDArray = None,  # noqa: N802
                 use_sequence_length: bool = False, axis: int = 0) -> NDArray:
    """Each sequence's last step: data without its sequence axis."""
    ax = int(axis)
    return _sequence_call("SequenceLast", SEQ_LAST, data, sequence_length,
                          use_sequence_length, {"axis": ax},
                          lambda x: getitem(x, (builtins.slice(None),) * ax + (-1,)))


def SequenceReverse(data: NDArray, sequence_length: NDArray = None,  # noqa: N802
                    use_sequence_length: bool = False, axis: int = 0) -> NDArray:
    """Each sequence's first ``length`` steps in reverse order."""
    from mxcore.ops.shape import flip
    ax = int(axis)
    return _sequence_call("SequenceReverse", SEQ_REVERSE, data, sequence_length,
                          use_sequence_length, {"axis": ax}, lambda x: flip(x, ax))


sequence_mask, sequence_last, sequence_reverse = SequenceMask, SequenceLast, SequenceReverse


# index_array (MXNet's contrib.index_array) ------------------------------------------------
INDEX_ARRAY = Op("index_array", 1, attrs={"axes": None},
                 doc="int64 array of shape data.shape + (k,): element [i..., j] is the "
                     "index along axis ``axes[j]`` (every axis when None) of position i...")
OPS.append(INDEX_ARRAY)


@INDEX_ARRAY.def_infer
def _index_array_infer(s, d, a):
    n = len(s[0]) if a["axes"] is None else len(a["axes"])
    return [tuple(s[0]) + (n,)], [np.dtype("int64")]


def index_array(data: NDArray, axes=None) -> NDArray:
    """Every position's own index (int64): ``out[i0, ..., ik, j] = i_axes[j]`` (MXNet's
    ``contrib.index_array``; ``axes`` picks and orders the axes, negatives from the
    end).  Not differentiable: it depends only on the data's shape."""
    try:
        if axes is not None:
            axes = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
            axes = tuple(normalize_axis(a, data.ndim, "index_array") for a in axes)
    except MXCoreError as exc:
        raise OperatorError("index_array", str(exc), [data.shape], [data.dtype],
                            data.context) from None
    return invoke_unary(INDEX_ARRAY, data, {"axes": axes})
