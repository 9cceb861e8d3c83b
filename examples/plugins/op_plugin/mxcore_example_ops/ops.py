"""The operators: each an ``Op`` with an attribute schema, a shape/dtype rule and a
gradient rule, plus the user-facing function that runs it.

Nothing here is specific to a device: the gradient rules are written in mxcore ops,
so they run wherever the forward ran and can be differentiated again
(``autograd.grad(..., create_graph=True)``).  Kernels live in ``kernels.py``.
"""
from __future__ import annotations

import hal
import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.ndarray import NDArray
from mxcore.op import REQUIRED, Op
from mxcore.ops.rules import broadcast, normalize_axis, reduced_shape, same_as_first, unbroadcast

# squared_difference(lhs, rhs) = (lhs - rhs)**2, broadcasting -------------------------------

SQUARED_DIFFERENCE = Op("squared_difference", 2,
                        doc="(lhs - rhs)**2 elementwise, with numpy broadcasting.")
# the ready-made rule: the broadcast shape, and one dtype for both inputs
SQUARED_DIFFERENCE.def_infer(broadcast)


@SQUARED_DIFFERENCE.def_grad
def _squared_difference_grad(ctx, g):
    lhs, rhs = ctx.inputs
    d = (lhs - rhs) * g * 2.0          # the broadcast shape
    # each input gets the gradient summed back to its own shape
    return (unbroadcast(d, lhs.shape) if ctx.needs_grad(0) else None,
            unbroadcast(-d, rhs.shape) if ctx.needs_grad(1) else None)


# logsumexp(data, axis=-1, keepdims=False) ------------------------------------------------

LOGSUMEXP = Op("logsumexp", 1, attrs={"axis": -1, "keepdims": False}, saves_output=True,
               doc="log(sum(exp(data))) along one axis, computed without overflow.")


@LOGSUMEXP.def_infer
def _logsumexp_infer(shapes, dtypes, attrs):
    shape, dtype = shapes[0], dtypes[0]
    if not hal.is_float(dtype):
        raise MXCoreError(f"needs a floating-point input, got {dtype}")
    axis = normalize_axis(attrs["axis"], len(shape))  # out of range: a clear MXCoreError
    if shape[axis] == 0:
        raise MXCoreError(f"cannot reduce axis {axis} of shape {shape}: it is empty")
    return [reduced_shape(shape, (axis,), attrs["keepdims"])], [dtype]


@LOGSUMEXP.def_grad
def _logsumexp_grad(ctx, g):
    x, y = ctx.inputs[0], ctx.outputs[0]            # outputs: the op saves them
    axis = normalize_axis(ctx.attrs["axis"], x.ndim)  # calls by name may pass axis=-1
    keep = reduced_shape(x.shape, (axis,), True)
    # d/dx log(sum(exp(x))) = exp(x - logsumexp(x)), the softmax along the axis
    return (mx.nd.reshape(g, keep) * mx.nd.exp(x - mx.nd.reshape(y, keep)),)


# huber(data, delta): a REQUIRED attribute --------------------------------------------------

HUBER = Op("huber", 1, attrs={"delta": REQUIRED},
           doc="0.5*x**2 where |x| <= delta, else delta*(|x| - delta/2).")


@HUBER.def_infer
def _huber_infer(shapes, dtypes, attrs):
    delta = attrs["delta"]
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not delta > 0:
        raise MXCoreError(f"delta must be a positive number, got {delta!r}")
    if not hal.is_float(dtypes[0]):
        raise MXCoreError(f"needs a floating-point input, got {dtypes[0]}")
    return same_as_first(shapes, dtypes, attrs)


@HUBER.def_grad
def _huber_grad(ctx, g):
    delta = ctx.attrs["delta"]
    # clip is differentiable (its gradient is the in-range mask): second order works
    return (g * mx.nd.clip(ctx.inputs[0], -delta, delta),)


OPS = [SQUARED_DIFFERENCE, LOGSUMEXP, HUBER]


# user-facing functions -------------------------------------------------------------------
# They call ops by name through ``mx.nd.invoke``, as ``mx.nd.squared_difference`` does:
# attributes are checked against the schema, and the shape/dtype rule runs once per call
# signature (shapes, dtypes, attributes), so a bad input gets the rule's message.

def squared_difference(lhs: NDArray, rhs: NDArray) -> NDArray:
    """``(lhs - rhs) ** 2`` elementwise, with numpy broadcasting."""
    return mx.nd.invoke("squared_difference", lhs, rhs)


def logsumexp(data: NDArray, axis: int = -1, keepdims: bool = False) -> NDArray:
    """``log(sum(exp(data), axis))`` without overflow; ``keepdims`` keeps the axis."""
    return mx.nd.invoke("logsumexp", data, axis=int(axis), keepdims=bool(keepdims))


def huber(data: NDArray, delta: float) -> NDArray:
    """The Huber function of ``data``: quadratic within ``delta``, linear beyond."""
    return mx.nd.invoke("huber", data, delta=float(delta))
