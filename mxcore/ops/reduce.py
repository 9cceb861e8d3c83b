"""Reductions over axes: sum, mean, prod, max, min, nansum, nanprod, norm, moments,
argmax, argmin; all_finite / multi_all_finite; histogram.

``axis`` is None (all axes), an int or a tuple; ``exclude=True`` reduces over
the axes *not* listed (MXNet).  As in MXNet 1.x a reduction never gives a 0-d
array: reducing every axis without ``keepdims`` gives shape ``(1,)``.  Outputs keep
the input dtype; argmax/argmin return float32 indices.
"""
from __future__ import annotations

import builtins

import numpy as np

import hal
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke, invoke_unary
from mxcore.array import NDArray
from mxcore.op import Op
from mxcore.ops.rules import normalize_axes, normalize_axis, reduced_shape

OPS: list = []
_ATTRS = {"axis": None, "keepdims": False}


def _out_shape(shape, axes, keepdims: bool):
    """reduced_shape, with MXNet 1.x's (1,) where every axis goes."""
    return reduced_shape(shape, axes, keepdims) or (1,)


def _reduce_infer(shapes, dtypes, attrs):
    return [_out_shape(shapes[0], attrs["axis"], attrs["keepdims"])], [dtypes[0]]


def _rop(name, saves_output=False, attrs=_ATTRS) -> Op:
    op = Op(name, 1, attrs=dict(attrs), saves_output=saves_output)
    op.def_infer(_reduce_infer)
    OPS.append(op)
    return op


SUM = _rop("sum")
MEAN = _rop("mean")
PROD = _rop("prod", saves_output=True)
MAX = _rop("max", saves_output=True)
MIN = _rop("min", saves_output=True)
NANSUM = _rop("nansum")
NANPROD = _rop("nanprod", saves_output=True)
NORM = _rop("norm", saves_output=True, attrs={"ord": 2, "axis": None, "keepdims": False})


def _keep(g, c):
    """Reshape a reduced gradient/output so it broadcasts against the input."""
    from mxcore.ops.shape import reshape
    x = c.inputs[0]
    return reshape(g, reduced_shape(x.shape, c.attrs["axis"], True))


def _spread(g, c):
    from mxcore.ops.shape import broadcast_to
    return broadcast_to(_keep(g, c), c.inputs[0].shape)


def _count(c) -> int:
    x, axes = c.inputs[0], c.attrs["axis"]
    axes = range(x.ndim) if axes is None else axes
    n = 1
    for a in axes:
        n *= x.shape[a]
    return builtins.max(n, 1)


SUM.def_grad(lambda c, g: (_spread(g, c),))
MEAN.def_grad(lambda c, g: (_spread(g, c) / float(_count(c)),))
PROD.def_grad(lambda c, g: (_spread(g * c.outputs[0], c) / c.inputs[0],))
MAX.def_grad(lambda c, g: (_spread(g, c) * (c.inputs[0] == _keep(c.outputs[0], c)),))
MIN.def_grad(lambda c, g: (_spread(g, c) * (c.inputs[0] == _keep(c.outputs[0], c)),))


def _present(x):
    """1 where x is a number, 0 where it is NaN (NaN != NaN)."""
    return x == x


NANSUM.def_grad(lambda c, g: (_spread(g, c) * _present(c.inputs[0]),))


@NANPROD.def_grad
def _nanprod_grad(c, g):
    """prod / x at the numbers, 0 at the NaNs (which the product skipped)."""
    from mxcore.ops.elemwise import where
    x = c.inputs[0]
    ok = _present(x)
    return (_spread(g * c.outputs[0], c) / where(ok, x, 1.0) * ok,)


@NORM.def_grad
def _norm_grad(c, g):
    from mxcore.ops.elemwise import sign
    x = c.inputs[0]
    if c.attrs["ord"] == 1:
        return (_spread(g, c) * sign(x),)
    return (_spread(g, c) * x / _keep(c.outputs[0], c),)


def _reduce_api(op: Op):
    def f(data: NDArray, axis=None, keepdims: bool = False, exclude: bool = False) -> NDArray:
        axes = normalize_axes(axis, data.ndim, exclude, op.name)
        return invoke_unary(op, data, {"axis": axes, "keepdims": bool(keepdims)})
    f.__name__ = op.name
    f.__doc__ = f"``{op.name}`` over ``axis`` (None: all), keeping reduced axes if ``keepdims``."
    return f


sum, mean, prod, max, min, nansum, nanprod = map(
    _reduce_api, (SUM, MEAN, PROD, MAX, MIN, NANSUM, NANPROD))
sum_axis, max_axis, min_axis = sum, max, min  # MXNet's older names


def norm(data: NDArray, ord: int = 2, axis=None, keepdims: bool = False) -> NDArray:
    """L1 (``ord=1``) or L2 (``ord=2``) norm over ``axis`` (None: flattened)."""
    if ord not in (1, 2):
        from mxcore.base import OperatorError
        raise OperatorError("norm", f"ord must be 1 or 2, got {ord!r}", [data.shape],
                            [data.dtype], data.context)
    axes = normalize_axes(axis, data.ndim, False, "norm")
    return invoke_unary(NORM, data, {"ord": int(ord), "axis": axes, "keepdims": bool(keepdims)})


# arg reductions -------------------------------------------------------------------------
def _arg_infer(shapes, dtypes, attrs):
    axis = attrs["axis"]
    shape = shapes[0]
    if axis is None:
        out = tuple(1 for _ in shape) if attrs["keepdims"] else ()
    else:
        out = reduced_shape(shape, (axis,), attrs["keepdims"])
    return [out or (1,)], [np.dtype("float32")]


ARGMAX = Op("argmax", 1, attrs={"axis": None, "keepdims": False})
ARGMIN = Op("argmin", 1, attrs={"axis": None, "keepdims": False})
for _op in (ARGMAX, ARGMIN):
    _op.def_infer(_arg_infer)
    OPS.append(_op)


def _arg_api(op: Op):
    def f(data: NDArray, axis=None, keepdims: bool = False) -> NDArray:
        ax = None if axis is None else normalize_axis(int(axis), data.ndim, op.name)
        return invoke_unary(op, data, {"axis": ax, "keepdims": bool(keepdims)})
    f.__name__ = op.name
    f.__doc__ = f"Index of the {op.name[3:]}imum along ``axis`` (float32, as in MXNet)."
    return f


argmax, argmin = _arg_api(ARGMAX), _arg_api(ARGMIN)


def argmax_channel(data: NDArray) -> NDArray:
    """Index of the maximum along axis 1 (the channels), in the data's dtype (MXNet
    1.9.1: a (2, 3, 4) input gives (2, 4))."""
    from mxcore.ops.creation import cast
    out = argmax(data, axis=1)
    return out if out.dtype == data.dtype else cast(out, data.dtype)


# moments ----------------------------------------------------------------------------------
MOMENTS = Op("moments", 1, nout=2, attrs={"axes": (), "keepdims": False},
             doc="(mean, biased variance) over ``axes``; integer inputs truncate the mean "
                 "and the variance, as MXNet does")
OPS.append(MOMENTS)


@MOMENTS.def_infer
def _moments_infer(shapes, dtypes, attrs):
    axes = attrs["axes"]
    if not axes:
        raise MXCoreError("empty axes are not supported (MXNet); for moments over every "
                          f"axis pass them all: axes={tuple(range(len(shapes[0])))}")
    if any(not 0 <= a < len(shapes[0]) for a in axes):
        raise MXCoreError(f"axes {axes} out of range for a {len(shapes[0])}-d input")
    out = _out_shape(shapes[0], axes, attrs["keepdims"])
    return [out, out], [dtypes[0], dtypes[0]]


@MOMENTS.def_grad
def _moments_grad(c, g_mean, g_var):
    """d mean = 1/N; d var = 2 (x - mean) / N."""
    x, axes = c.inputs[0], c.attrs["axes"]
    n = 1
    for a in axes:
        n *= x.shape[a]
    keep = reduced_shape(x.shape, axes, True)
    grad = None
    if g_mean is not None:
        grad = _broadcast_back(g_mean, keep, x.shape) * (1.0 / n)
    if g_var is not None:
        d = x - mean(x, axes, keepdims=True)
        gv = _broadcast_back(g_var, keep, x.shape) * d * (2.0 / n)
        grad = gv if grad is None else grad + gv
    return (grad,)


def _broadcast_back(g, keep, shape):
    from mxcore.ops.shape import broadcast_to, reshape
    return broadcast_to(reshape(g, keep), shape)


def moments(data: NDArray, axes=None, keepdims: bool = False) -> tuple:
    """``(mean, var)`` of ``data`` over ``axes`` (biased variance), as MXNet's moments.
    ``axes`` must be given (MXNet does not support empty axes); every axis reduced
    without ``keepdims`` gives shape ``(1,)``."""
    try:  # None and () are empty axes here (an error, as in MXNet), not every axis
        attrs = {"axes": normalize_axes(axes, data.ndim, False, "moments") or (),
                 "keepdims": bool(keepdims)}
        _moments_infer((data.shape,), (data.dtype,), attrs)
    except MXCoreError as exc:
        raise OperatorError("moments", str(exc), [data.shape], [data.dtype],
                            data.context) from None
    return invoke(MOMENTS, (data,), attrs)


# finiteness checks (mixed precision: a loss scaler skips a step with inf/NaN gradients) --
ALL_FINITE = Op("all_finite", -1, doc="1.0 (float32, shape (1,)) if every element of every "
                "input is finite, else 0.0")
ALL_FINITE.def_infer(lambda s, d, a: ([(1,)], [np.dtype("float32")]))
OPS.append(ALL_FINITE)


def _all_finite(name: str, arrays, init_output: bool) -> NDArray:
    shapes, dtypes = [a.shape for a in arrays], [a.dtype for a in arrays]
    detail = None
    if not arrays:
        detail = "needs at least one array"
    elif not init_output:
        detail = ("init_output=False (accumulating into an existing output) is not "
                  "supported")
    elif not all(hal.is_float(d) for d in dtypes):  # as MXNet: float inputs only
        detail = "only supports floating point inputs"
    if detail:
        raise OperatorError(name, detail, shapes, dtypes, arrays[0].context if arrays else None)
    return invoke(ALL_FINITE, tuple(arrays))


def all_finite(data: NDArray, init_output: bool = True) -> NDArray:
    """``[1.0]`` if every element of ``data`` is finite, else ``[0.0]`` (float32)."""
    return _all_finite("all_finite", (data,), init_output)


def multi_all_finite(*arrays: NDArray, num_arrays: int = 1,
                     init_output: bool = True) -> NDArray:
    """``[1.0]`` if every element of the first ``num_arrays`` arrays is finite, else
    ``[0.0]`` (float32), in one pass."""
    return _all_finite("multi_all_finite", arrays[:num_arrays], init_output)


# histogram (MXNet's histogram: counts and bin edges, not differentiable) -----------------
HISTOGRAM = Op("histogram", 1, 2, attrs={"bin_cnt": 10, "range": None},
               doc="counts (int64) of ``bin_cnt`` equal bins over ``range`` (the data's "
                   "min and max when None), and the bin edges (the data's dtype)")
HISTOGRAM_BINS = Op("histogram_bins", 2, 2, doc="counts (int64) of the data in the bins "
                    "the second input's edges bound, and those edges")
OPS += [HISTOGRAM, HISTOGRAM_BINS]
def _edge_dtype(dtype):
    """Bin edges keep a float dtype; integer data's edges are float32."""
    return dtype if hal.is_float(dtype) else np.dtype("float32")


HISTOGRAM.def_infer(lambda s, d, a: ([(a["bin_cnt"],), (a["bin_cnt"] + 1,)],
                                     [np.dtype("int64"), _edge_dtype(d[0])]))
@HISTOGRAM_BINS.def_infer
def _histogram_bins_infer(s, d, a):
    edges = builtins.int(np.prod(s[1]))
    return [(builtins.max(edges - 1, 0),), tuple(s[1])], [np.dtype("int64"), _edge_dtype(d[1])]


def histogram(a: NDArray, bins=10, range=None):  # noqa: A002 - MXNet's names
    """``(counts, bin_edges)`` of ``a``'s values as numpy's histogram computes them
    (counts int64; edges in the data's float dtype, float32 for integer data):
    ``bins`` equal bins over ``range`` (default: the data's min and max), or the bins
    that an NDArray of increasing edges bounds (values outside every bin are not
    counted; the last bin includes its right edge)."""
    try:
        if isinstance(bins, NDArray):
            if bins.ndim != 1 or bins.size < 2:
                raise MXCoreError(f"bins must be a 1-d array of at least 2 edges, got shape "
                                  f"{bins.shape}")
            return invoke(HISTOGRAM_BINS, (a, bins))
        count = builtins.int(bins)
        if count < 1:
            raise MXCoreError(f"bins must be a positive count or an NDArray of edges, got "
                              f"{bins!r}")
        if range is not None:
            lo, hi = (builtins.float(v) for v in range)
            if not lo <= hi:
                raise MXCoreError(f"range {range!r}: the first bound must not exceed the "
                                  "second")
            range = (lo, hi)
    except (MXCoreError, TypeError, ValueError) as exc:
        raise OperatorError("histogram", str(exc), [a.shape], [a.dtype], a.context) from None
    return invoke(HISTOGRAM, (a,), {"bin_cnt": count, "range": range})
