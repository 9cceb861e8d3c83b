"""Indexing: basic and advanced ``x[key]`` and ``x[key] = v``, slice,
slice_axis, take, pick, one_hot.

Keys follow numpy: ints, slices, None, Ellipsis, integer or boolean index
arrays (NDArray, numpy or lists).  Index arrays live on the host in the key.
"""
from __future__ import annotations

import builtins
import numbers

import numpy as np

from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke, invoke_unary
from mxcore.ndarray.ndarray import NDArray
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


GETITEM = _new("getitem", attrs={"key": REQUIRED})
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
    """``data[key] = value`` written into ``data``'s buffer."""
    if type(data._ag) is tuple:
        raise MXCoreError("setitem: cannot assign into an array recorded by autograd "
                          "(it is an intermediate result of the graph)")
    key = normalize_key(key)
    if isinstance(value, NDArray):
        if value._device is not data._device:
            value = value.as_in_context(data.context)
        invoke(SETITEM, (data, value), {"key": key})
    elif isinstance(value, (numbers.Number, np.number, np.bool_)):
        invoke(SETITEM_SCALAR, (data,), {"key": key, "scalar": value})
    else:
        from mxcore.ops.creation import array
        invoke(SETITEM, (data, array(value, ctx=data.context, dtype=data.dtype)), {"key": key})


def slice(data: NDArray, begin, end, step=None) -> NDArray:  # noqa: A001 - MXNet's name
    """MXNet's slice: per-axis begin/end/step (None for defaults)."""
    begin, end = tuple(begin), tuple(end)
    step = tuple(step) if step is not None else (None,) * len(begin)
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
