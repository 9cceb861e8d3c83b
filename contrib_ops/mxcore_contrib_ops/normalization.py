"""Normalization ops: ``rms_norm`` (RMSNorm, as in Llama and T5)."""
from __future__ import annotations

from typing import Any, Callable, Dict, FrozenSet, List, Tuple

import hal
import mxcore as mx
from mxcore import autograd
from mxcore.base import MXCoreError
from mxcore.ndarray import NDArray
from mxcore.op import Op
from mxcore.ops.rules import normalize_axis

from mxcore_contrib_ops._devices import build, triton_kernels
from mxcore_contrib_ops._rules import check_out_grad, refuse_gradient

FLOAT = frozenset(hal.FLOAT_DTYPES + hal.BFLOAT16_DTYPES)


# rms_norm(data, gamma, axis=-1, eps=1e-6) --------------------------------------------------

RMS_NORM = Op("rms_norm", 2, attrs={"axis": -1, "eps": 1e-6},
              doc="data / sqrt(mean(data**2, axis) + eps) * gamma, gamma of shape "
                  "(data.shape[axis],) broadcast along axis.")


@RMS_NORM.def_infer
def _rms_norm_infer(shapes, dtypes, attrs):
    (shape, gshape), (dtype, gdtype) = shapes, dtypes
    if not shape:
        raise MXCoreError("needs an input with at least one axis, got a 0-d array")
    axis = normalize_axis(attrs["axis"], len(shape))
    if shape[axis] == 0:
        raise MXCoreError(f"cannot normalise over axis {axis} of shape {shape}: it is empty")
    if tuple(gshape) != (shape[axis],):
        raise MXCoreError(f"gamma shape {tuple(gshape)} does not match axis {axis} of data "
                          f"shape {tuple(shape)} (expected ({shape[axis]},))")
    if not hal.is_float(dtype):
        raise MXCoreError(f"needs a floating-point input, got {hal.dtype_name(dtype)}")
    if gdtype != dtype:
        raise MXCoreError(f"gamma dtype {hal.dtype_name(gdtype)} differs from data dtype "
                          f"{hal.dtype_name(dtype)}")
    eps = attrs["eps"]
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise MXCoreError(f"eps must be a non-negative number, got {eps!r}")
    return [tuple(shape)], [dtype]


def _along(v: NDArray, ndim: int, axis: int) -> NDArray:
    """A (C,) array reshaped to broadcast along ``axis`` of an ndim-d array."""
    return mx.nd.reshape(v, tuple(-1 if i == axis else 1 for i in range(ndim)))


RMS_NORM_BACKWARD = Op("rms_norm_backward", 3, nout=2, attrs={"axis": -1, "eps": 1e-6},
                       doc="rms_norm's gradients in one kernel: (out_grad, data, gamma) -> "
                           "(d data, d gamma)")


@RMS_NORM_BACKWARD.def_infer
def _rms_norm_backward_infer(shapes, dtypes, attrs):
    _rms_norm_infer(shapes[1:], dtypes[1:], attrs)
    check_out_grad(shapes[0], dtypes[0], shapes[1], dtypes[1], "data")
    return [tuple(shapes[1]), tuple(shapes[2])], [dtypes[1], dtypes[2]]


refuse_gradient(RMS_NORM_BACKWARD, "rms_norm")


@RMS_NORM.def_grad
def _rms_norm_grad(ctx, g):
    """With r = 1/sqrt(mean(x**2) + eps) over the axis and y = x * r * gamma:
    dx = r * g*gamma - x * r**3 * mean(g*gamma * x), dgamma = sum(g * x * r) over the
    other axes.  First order: one kernel (rms_norm_backward); with create_graph, core
    ops, which are differentiable again."""
    x, gamma = ctx.inputs
    if not autograd.is_recording():
        gx, ggamma = mx.nd.invoke("rms_norm_backward", g, x, gamma, **ctx.attrs)
        return (gx if ctx.needs_grad(0) else None, ggamma if ctx.needs_grad(1) else None)
    axis = normalize_axis(ctx.attrs["axis"], x.ndim)  # calls by name may pass axis=-1
    r = mx.nd.rsqrt(mx.nd.mean(x * x, axis=axis, keepdims=True) + ctx.attrs["eps"])
    gx = ggamma = None
    if ctx.needs_grad(0):
        dy = g * _along(gamma, x.ndim, axis)
        gx = r * dy - x * (r * r * r) * mx.nd.mean(dy * x, axis=axis, keepdims=True)
    if ctx.needs_grad(1):
        ggamma = g * x * r
        if x.ndim > 1:
            ggamma = mx.nd.sum(ggamma, axis=axis, exclude=True)
    return gx, ggamma


OPS = [RMS_NORM, RMS_NORM_BACKWARD]


# kernels ---------------------------------------------------------------------------------

def _table(xp: Any) -> Dict[str, Tuple[Callable, FrozenSet[str]]]:
    def rms_norm(data, gamma, axis, eps):
        # float16 and bfloat16 accumulate in float32 and round once at the end
        x = data.astype(xp.float32) if data.dtype.itemsize < 4 else data
        scale = 1.0 / xp.sqrt(xp.mean(x * x, axis=axis, keepdims=True) + eps)
        shape = [1] * x.ndim
        shape[axis] = -1
        out = x * scale * gamma.astype(x.dtype).reshape(shape)
        return out.astype(data.dtype, copy=False)

    def rms_norm_backward(out_grad, data, gamma, axis, eps):
        x = data.astype(xp.float32) if data.dtype.itemsize < 4 else data
        g = out_grad.astype(x.dtype, copy=False)
        axis = axis % x.ndim
        shape = [1] * x.ndim
        shape[axis] = -1
        r = 1.0 / xp.sqrt(xp.mean(x * x, axis=axis, keepdims=True) + eps)
        xr = x * r
        dy = g * gamma.astype(x.dtype).reshape(shape)
        # dx = r * (dy - x * r**2 * mean(dy * x)) = r * (dy - xr * mean(dy * xr))
        dx = dy - xr * xp.mean(dy * xr, axis=axis, keepdims=True)
        dx *= r
        others = tuple(i for i in range(x.ndim) if i != axis)
        dgamma = (g * xr).sum(axis=others) if others else g * xr
        return dx.astype(data.dtype, copy=False), dgamma.astype(gamma.dtype, copy=False)

    return {"rms_norm": (rms_norm, FLOAT), "rms_norm_backward": (rms_norm_backward, FLOAT)}


#: op -> (rowwise_triton's kernel on cuda, its guard)
_TRITON = {"rms_norm": ("rms_norm", "rms_norm_applies"),
           "rms_norm_backward": ("rms_norm_backward", "rms_norm_backward_applies")}


def kernels() -> List[hal.Kernel]:
    triton = triton_kernels("rowwise_triton", _TRITON, FLOAT - {"float64"})
    return build(_table, "normalization") + triton


# user-facing functions -------------------------------------------------------------------

def rms_norm(data: NDArray, gamma: NDArray, axis: int = -1, eps: float = 1e-6) -> NDArray:
    """RMSNorm: ``data / sqrt(mean(data**2, axis, keepdims=True) + eps) * gamma``.

    ``gamma`` has shape ``(data.shape[axis],)`` and the dtype of ``data``; it scales
    each position along ``axis``.  Unlike ``LayerNorm`` there is no mean subtraction
    and no bias.  float16 and bfloat16 inputs are computed in float32."""
    return mx.nd.invoke("rms_norm", data, gamma, axis=int(axis), eps=float(eps))


RMS_NORM.frontend = rms_norm
