"""Reductions over axes: sum, mean, prod, max, min, norm, argmax, argmin.

``axis`` is None (all axes), an int or a tuple; ``exclude=True`` reduces over
the axes *not* listed (MXNet).  Outputs keep the input dtype; argmax/argmin
return float32 indices as MXNet's ``mx.nd`` does.
"""
from __future__ import annotations

import builtins

from mxcore.dispatch import invoke_unary
from mxcore.ndarray.ndarray import NDArray
from mxcore.op import Op
from mxcore.ops.rules import normalize_axes, normalize_axis, reduced_shape

OPS: list = []
_ATTRS = {"axis": None, "keepdims": False}


def _reduce_infer(shapes, dtypes, attrs):
    return [reduced_shape(shapes[0], attrs["axis"], attrs["keepdims"])], [dtypes[0]]


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


sum, mean, prod, max, min = map(_reduce_api, (SUM, MEAN, PROD, MAX, MIN))
nansum = sum


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
    import numpy as np
    axis = attrs["axis"]
    shape = shapes[0]
    if axis is None:
        out = tuple(1 for _ in shape) if attrs["keepdims"] else ()
    else:
        out = reduced_shape(shape, (axis,), attrs["keepdims"])
    return [out], [np.dtype("float32")]


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
