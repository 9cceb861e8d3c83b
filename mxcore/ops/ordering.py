"""Ordering: topk, sort, argsort and cumsum (MXNet 1.x names).

Sorting is stable in both directions, as MXNet's CPU sort is: equal values keep
their order, ascending or descending (``[1, 2, 2]`` sorted descending gives the
indices ``[1, 2, 0]``).  Index outputs are float32 unless ``dtype`` says otherwise
(MXNet's default); ``axis=None`` works on the flattened array.

The gradients of topk's values and of sort scatter the output gradient back through
the sorting permutation (``take_along_axis_grad``; the permutation is computed again
from the input, not kept).  Index and mask outputs have none, as in MXNet.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

import hal
from mxcore.base import OperatorError
from mxcore.dispatch import invoke, invoke_unary
from mxcore.array import NDArray
from mxcore.op import REQUIRED, Op

__all__ = ["topk", "sort", "argsort", "cumsum"]

OPS: list = []

#: dtypes MXNet allows for index outputs (topk/argsort ``dtype``)
INDEX_DTYPES = ("float16", "float32", "float64", "int32", "int64", "uint8")
RET_TYPES = ("indices", "value", "mask", "both")


def _new(name, nin=1, **kw) -> Op:
    op = Op(name, nin, **kw)
    OPS.append(op)
    return op


def _fail(op: str, msg: str, *arrays: NDArray):
    raise OperatorError(op, msg, [a.shape for a in arrays], [a.dtype for a in arrays],
                        arrays[0].context if arrays else None)


def _axis_len(s, a, what="data"):
    axis = a["axis"]
    if not 0 <= axis < len(s):
        raise ValueError(f"axis {axis} is out of range for {len(s)}-d {what}")
    return s[axis]


# take_along_axis and its adjoint: the sorting permutation applied and undone ----------
TAKE_ALONG = _new("take_along_axis", 2, attrs={"axis": REQUIRED},
                  doc="data gathered along ``axis`` at indices (numpy's take_along_axis)")
TAKE_ALONG_GRAD = _new("take_along_axis_grad", 2, attrs={"axis": REQUIRED, "size": REQUIRED},
                       doc="take_along_axis's adjoint for indices distinct along the axis "
                           "(a permutation or its prefix): zeros of length ``size`` on "
                           "``axis`` with the gradient put at the indices")


@TAKE_ALONG.def_infer
def _take_along_infer(s, d, a):
    _axis_len(s[0], a)
    axis = a["axis"]
    if len(s[1]) != len(s[0]) or any(i != j for k, (i, j) in enumerate(zip(s[0], s[1]))
                                     if k != axis):
        raise ValueError(f"indices {s[1]} must match data {s[0]} off axis {axis}")
    return [tuple(s[1])], [d[0]]


@TAKE_ALONG_GRAD.def_infer
def _take_along_grad_infer(s, d, a):
    _axis_len(s[0], a, "gradient")
    if tuple(s[0]) != tuple(s[1]):
        raise ValueError(f"gradient {s[0]} and indices {s[1]} differ in shape")
    shape = list(s[0])
    shape[a["axis"]] = a["size"]
    return [tuple(shape)], [d[0]]


TAKE_ALONG.def_grad(lambda c, g: (_scatter_along(g, c.inputs[1], c.attrs["axis"],
                                                 c.inputs[0].shape[c.attrs["axis"]]), None))
TAKE_ALONG_GRAD.def_grad(lambda c, g: (invoke(TAKE_ALONG, (g, c.inputs[1]),
                                              {"axis": c.attrs["axis"]}), None))


def _scatter_along(g: NDArray, idx: NDArray, axis: int, size: int) -> NDArray:
    return invoke(TAKE_ALONG_GRAD, (g, idx), {"axis": axis, "size": int(size)})


# topk / sort / argsort ------------------------------------------------------------------
TOPK = _new("topk", nout=-1, attrs={"axis": -1, "k": 1, "ret_typ": "indices",
                                     "is_ascend": False, "dtype": "float32"},
            doc="the k largest (or smallest) elements along ``axis``: their indices, "
                "values, a 0/1 mask, or values and indices (``ret_typ``)")
SORT = _new("sort", attrs={"axis": -1, "is_ascend": True},
            doc="values sorted along ``axis``")
ARGSORT = _new("argsort", attrs={"axis": -1, "is_ascend": True, "dtype": "float32"},
               doc="indices that sort ``axis`` (stable), in ``dtype``")


@TOPK.def_infer
def _topk_infer(s, d, a):
    n = _axis_len(s[0], a)
    if not 0 <= a["k"] <= n:
        raise ValueError(f"k must be in [0, {n}] (the length of axis {a['axis']}), "
                         f"got {a['k']}")
    part = list(s[0])
    part[a["axis"]] = a["k"]
    part = tuple(part)
    index_dt = np.dtype(a["dtype"])
    return {"indices": ([part], [index_dt]), "value": ([part], [d[0]]),
            "mask": ([tuple(s[0])], [d[0]]),
            "both": ([part, part], [d[0], index_dt])}[a["ret_typ"]]


@TOPK.def_grad
def _topk_grad(c, *gs):
    a = c.attrs
    if a["ret_typ"] not in ("value", "both") or gs[0] is None:
        return (None,)
    x = c.inputs[0]
    (idx,) = invoke(TOPK, (x,), {**a, "ret_typ": "indices", "dtype": "int64"})
    return (_scatter_along(gs[0], idx, a["axis"], x.shape[a["axis"]]),)


@SORT.def_infer
def _sort_infer(s, d, a):
    _axis_len(s[0], a)
    return [tuple(s[0])], [d[0]]


@SORT.def_grad
def _sort_grad(c, g):
    x, axis = c.inputs[0], c.attrs["axis"]
    idx = invoke_unary(ARGSORT, x, {**c.attrs, "dtype": "int64"})
    return (_scatter_along(g, idx, axis, x.shape[axis]),)


@ARGSORT.def_infer
def _argsort_infer(s, d, a):
    _axis_len(s[0], a)
    return [tuple(s[0])], [np.dtype(a["dtype"])]


def _index_dtype(op: str, dtype, data: NDArray) -> str:
    try:
        name = hal.dtype_name(dtype)
    except Exception:  # noqa: BLE001 - any unparsable dtype is the same user error
        name = str(dtype)
    if name not in INDEX_DTYPES:
        _fail(op, f"dtype must be one of {INDEX_DTYPES}, got {dtype!r}", data)
    return name


def _along(op: str, data: NDArray, axis):
    """(array, axis): the flattened array and axis 0 for ``axis=None``."""
    if axis is None:
        from mxcore.ops.shape import reshape
        return reshape(data, (-1,)), 0
    nd = data.ndim
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or \
            not -nd <= int(axis) < nd:
        _fail(op, f"axis {axis!r} is out of range for a {nd}-d input", data)
    return data, int(axis) % nd


def topk(data: NDArray, axis: Optional[int] = -1, k: int = 1, ret_typ: str = "indices",
         is_ascend: bool = False, dtype="float32"):
    """MXNet's topk: the ``k`` largest elements along ``axis`` (smallest with
    ``is_ascend``), sorted; ``k < 1`` takes the whole axis.  ``ret_typ`` is
    'indices' (in ``dtype``), 'value', 'mask' (1 where an element is among the top k,
    in the data's dtype) or 'both' (the list [values, indices])."""
    if ret_typ not in RET_TYPES:
        _fail("topk", f"ret_typ must be one of {RET_TYPES}, got {ret_typ!r}", data)
    index_dt = _index_dtype("topk", dtype, data)
    x, ax = _along("topk", data, axis)
    n = x.shape[ax]
    kk = n if int(k) < 1 else int(k)
    if kk > n:
        _fail("topk", f"k must be at most {n} (the length of axis {ax}), got {k}", data)
    outs = invoke(TOPK, (x,), {"axis": ax, "k": kk, "ret_typ": ret_typ,
                               "is_ascend": bool(is_ascend), "dtype": index_dt})
    if ret_typ == "both":
        return list(outs)
    if ret_typ == "mask" and axis is None:
        from mxcore.ops.shape import reshape
        return reshape(outs[0], data.shape)
    return outs[0]


def sort(data: NDArray, axis: Optional[int] = -1, is_ascend: bool = True) -> NDArray:
    """A sorted copy of ``data`` along ``axis`` (None: flattened)."""
    x, ax = _along("sort", data, axis)
    return invoke_unary(SORT, x, {"axis": ax, "is_ascend": bool(is_ascend)})


def argsort(data: NDArray, axis: Optional[int] = -1, is_ascend: bool = True,
            dtype="float32") -> NDArray:
    """Indices that sort ``data`` along ``axis`` (None: flattened), in ``dtype``
    (float32 by default, as MXNet)."""
    index_dt = _index_dtype("argsort", dtype, data)
    x, ax = _along("argsort", data, axis)
    return invoke_unary(ARGSORT, x, {"axis": ax, "is_ascend": bool(is_ascend),
                                     "dtype": index_dt})


# cumsum ---------------------------------------------------------------------------------
CUMSUM = _new("cumsum", attrs={"axis": 0, "reverse": False},
              doc="running sums along ``axis`` (from the end with ``reverse``); 16-bit "
                  "floats accumulate in float32, integers in int64 (then wrap to the "
                  "dtype, as MXNet)")


@CUMSUM.def_infer
def _cumsum_infer(s, d, a):
    _axis_len(s[0], a)
    return [tuple(s[0])], [d[0]]


CUMSUM.def_grad(lambda c, g: (invoke_unary(CUMSUM, g, {**c.attrs,
                                                       "reverse": not c.attrs["reverse"]}),))


def cumsum(a: NDArray, axis: Optional[int] = None, dtype=None) -> NDArray:
    """Cumulative sum along ``axis`` (None: of the flattened array), in ``dtype``.
    Without ``dtype`` the result keeps ``a``'s dtype (MXNet: int8 stays int8), except
    that booleans count in int64."""
    from mxcore.ops.creation import cast
    if dtype is not None:
        target = hal.dtype_name(dtype)
    else:
        target = "int64" if a.dtype == np.bool_ else a.dtype.name
    if a.dtype.name != target:
        a = cast(a, target)
    x, ax = _along("cumsum", a, axis)
    return invoke_unary(CUMSUM, x, {"axis": ax, "reverse": False})

