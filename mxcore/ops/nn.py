"""Neural-network operators: softmax and log_softmax (numerically stable)."""
from __future__ import annotations

from mxcore.dispatch import invoke_unary
from mxcore.ndarray.ndarray import NDArray
from mxcore.op import Op
from mxcore.ops._rules import normalize_axis, same_as_first

SOFTMAX = Op("softmax", 1, attrs={"axis": -1, "temperature": None}, saves_output=True)
LOG_SOFTMAX = Op("log_softmax", 1, attrs={"axis": -1, "temperature": None}, saves_output=True)
OPS = [SOFTMAX, LOG_SOFTMAX]
SOFTMAX.def_infer(same_as_first)
LOG_SOFTMAX.def_infer(same_as_first)


def _scale(g, t):
    return g if t is None or t == 1.0 else g / t


@SOFTMAX.def_grad
def _softmax_grad(c, g):
    from mxcore.ops.reduce import sum as _sum
    y, axis = c.outputs[0], c.attrs["axis"]
    return (_scale((g - _sum(g * y, (axis,), keepdims=True)) * y, c.attrs["temperature"]),)


@LOG_SOFTMAX.def_grad
def _log_softmax_grad(c, g):
    from mxcore.ops.elemwise import exp
    from mxcore.ops.reduce import sum as _sum
    y, axis = c.outputs[0], c.attrs["axis"]
    return (_scale(g - exp(y) * _sum(g, (axis,), keepdims=True), c.attrs["temperature"]),)


def softmax(data: NDArray, axis: int = -1, temperature=None) -> NDArray:
    ax = normalize_axis(axis, data.ndim, "softmax")
    return invoke_unary(SOFTMAX, data, {"axis": ax, "temperature": temperature})


def log_softmax(data: NDArray, axis: int = -1, temperature=None) -> NDArray:
    ax = normalize_axis(axis, data.ndim, "log_softmax")
    return invoke_unary(LOG_SOFTMAX, data, {"axis": ax, "temperature": temperature})
