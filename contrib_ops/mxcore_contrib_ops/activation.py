"""Activation ops of transformer MLPs: ``swiglu`` (gated SiLU) and ``bias_gelu`` (a
bias add fused with GELU)."""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, FrozenSet, List, Tuple

import numpy as np

import hal
import mxcore as mx
from mxcore import autograd
from mxcore.base import MXCoreError
from mxcore.ndarray import NDArray
from mxcore.op import Op
from mxcore.ops.rules import normalize_axis, unbroadcast

from mxcore_contrib_ops._devices import build, triton_kernels
from mxcore_contrib_ops._rules import check_out_grad, refuse_gradient

FLOAT = frozenset(hal.FLOAT_DTYPES + hal.BFLOAT16_DTYPES)

# the tanh approximation of GELU: 0.5*z*(1 + tanh(sqrt(2/pi) * (z + 0.044715*z**3)))
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def _need_float(dtype) -> None:
    if not hal.is_float(dtype):
        raise MXCoreError(f"needs a floating-point input, got {hal.dtype_name(dtype)}")


# swiglu(data, axis=-1) ---------------------------------------------------------------------

SWIGLU = Op("swiglu", 1, attrs={"axis": -1},
            doc="silu(a) * b with a, b the first and second halves of data along axis.")


@SWIGLU.def_infer
def _swiglu_infer(shapes, dtypes, attrs):
    shape = tuple(shapes[0])
    if not shape:
        raise MXCoreError("needs an input with at least one axis, got a 0-d array")
    axis = normalize_axis(attrs["axis"], len(shape))
    if shape[axis] % 2:
        raise MXCoreError(f"axis {axis} of shape {shape} has odd size {shape[axis]}: it must "
                          "split into two equal halves")
    _need_float(dtypes[0])
    return [shape[:axis] + (shape[axis] // 2,) + shape[axis + 1:]], [dtypes[0]]


SWIGLU_BACKWARD = Op("swiglu_backward", 2, attrs={"axis": -1},
                     doc="swiglu's input gradient in one kernel: (out_grad, data) -> d data")


@SWIGLU_BACKWARD.def_infer
def _swiglu_backward_infer(shapes, dtypes, attrs):
    (gshape,), (dtype,) = _swiglu_infer([shapes[1]], [dtypes[1]], attrs)
    check_out_grad(shapes[0], dtypes[0], gshape, dtype, "swiglu's output")
    return [tuple(shapes[1])], [dtypes[1]]


@SWIGLU.def_grad
def _swiglu_grad(ctx, g):
    if not autograd.is_recording():  # first order: one kernel
        return (mx.nd.invoke("swiglu_backward", g, ctx.inputs[0], **ctx.attrs),)
    # create_graph: differentiable core ops
    x = ctx.inputs[0]
    axis = normalize_axis(ctx.attrs["axis"], x.ndim)
    half = x.shape[axis] // 2
    a = mx.nd.slice_axis(x, axis, 0, half)
    b = mx.nd.slice_axis(x, axis, half, x.shape[axis])
    s = mx.nd.sigmoid(a)
    # silu'(a) = s + a * s * (1 - s)
    da = g * b * s * (1.0 + a * (1.0 - s))
    db = g * a * s
    return (mx.nd.concat(da, db, dim=axis),)


# bias_gelu(data, bias, approximate=False) --------------------------------------------------

BIAS_GELU = Op("bias_gelu", 2, attrs={"approximate": False},
               doc="gelu(data + bias), bias of shape (data.shape[-1],); the erf form, or "
                   "the tanh approximation with approximate=True.")


@BIAS_GELU.def_infer
def _bias_gelu_infer(shapes, dtypes, attrs):
    (shape, bshape), (dtype, bdtype) = shapes, dtypes
    if not shape:
        raise MXCoreError("needs an input with at least one axis, got a 0-d array")
    if tuple(bshape) != (shape[-1],):
        raise MXCoreError(f"bias shape {tuple(bshape)} does not match the last axis of data "
                          f"shape {tuple(shape)} (expected ({shape[-1]},))")
    _need_float(dtype)
    if bdtype != dtype:
        raise MXCoreError(f"bias dtype {hal.dtype_name(bdtype)} differs from data dtype "
                          f"{hal.dtype_name(dtype)}")
    if not isinstance(attrs["approximate"], bool):
        raise MXCoreError(f"approximate must be True or False, got {attrs['approximate']!r}")
    return [tuple(shape)], [dtype]


BIAS_GELU_BACKWARD = Op("bias_gelu_backward", 3, nout=2, attrs={"approximate": False},
                        doc="bias_gelu's gradients in one kernel: (out_grad, data, bias) -> "
                            "(d data, d bias)")


@BIAS_GELU_BACKWARD.def_infer
def _bias_gelu_backward_infer(shapes, dtypes, attrs):
    _bias_gelu_infer(shapes[1:], dtypes[1:], attrs)
    check_out_grad(shapes[0], dtypes[0], shapes[1], dtypes[1], "data")
    return [tuple(shapes[1]), tuple(shapes[2])], [dtypes[1], dtypes[2]]


@BIAS_GELU.def_grad
def _bias_gelu_grad(ctx, g):
    x, bias = ctx.inputs
    if not autograd.is_recording():  # first order: one kernel
        gx, gbias = mx.nd.invoke("bias_gelu_backward", g, x, bias, **ctx.attrs)
        return (gx if ctx.needs_grad(0) else None, gbias if ctx.needs_grad(1) else None)
    # create_graph: differentiable core ops
    z = x + bias
    if ctx.attrs["approximate"]:
        t = mx.nd.tanh(_SQRT_2_OVER_PI * (z + _GELU_CUBIC * z * z * z))
        dz = 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _SQRT_2_OVER_PI * (
            1.0 + 3 * _GELU_CUBIC * z * z)
    else:
        # Phi(z) + z * phi(z), Phi and phi the standard normal's CDF and density
        dz = 0.5 * (1.0 + mx.nd.erf(z * (1.0 / math.sqrt(2.0)))) + z * mx.nd.exp(
            -0.5 * z * z) * (1.0 / math.sqrt(2.0 * math.pi))
    gz = g * dz
    return (gz if ctx.needs_grad(0) else None,
            unbroadcast(gz, bias.shape) if ctx.needs_grad(1) else None)


refuse_gradient(SWIGLU_BACKWARD, "swiglu")
refuse_gradient(BIAS_GELU_BACKWARD, "bias_gelu")

OPS = [SWIGLU, BIAS_GELU, SWIGLU_BACKWARD, BIAS_GELU_BACKWARD]


# kernels ---------------------------------------------------------------------------------

def _special(xp: Any):
    """The special functions (erf) for arrays of ``xp``: numpy has none, scipy (or CuPy's
    port of it) has them, each one ufunc pass."""
    if xp.__name__ == "cupy":
        import cupyx.scipy.special
        return cupyx.scipy.special
    import scipy.special
    return scipy.special


def _table(xp: Any) -> Dict[str, Tuple[Callable, FrozenSet[str]]]:
    erf = _special(xp).erf

    def sigmoid(a):
        """1 / (1 + exp(-a)), MXNet's formula: a few ulps, 4-10x faster than SciPy's
        expit in float32 (which computes in long double); exp(-a) overflowing to inf
        for a < -88 gives exactly 0, the limit."""
        with np.errstate(over="ignore"):
            e = xp.exp(-a)
        e += 1.0
        return xp.reciprocal(e, out=e)

    def work(x):
        """float16 and bfloat16 compute in float32 and round once at the end."""
        return x.astype(xp.float32) if x.dtype.itemsize < 4 else x

    def swiglu(data, axis):
        a, b = xp.split(work(data), 2, axis=axis)
        out = sigmoid(a)
        out *= a
        out *= b
        return out.astype(data.dtype, copy=False)

    def bias_gelu(data, bias, approximate):
        z = work(data) + work(bias)
        if approximate:
            out = 0.5 * z * (1.0 + xp.tanh(_SQRT_2_OVER_PI * (z + _GELU_CUBIC * z * z * z)))
        else:
            out = 0.5 * z * (1.0 + erf(z * (1.0 / math.sqrt(2.0))))
        return out.astype(data.dtype, copy=False)

    def swiglu_backward(out_grad, data, axis):
        x, g = work(data), work(out_grad)
        a, b = xp.split(x, 2, axis=axis)
        dx = xp.empty_like(x)
        da, db = xp.split(dx, 2, axis=axis)  # views: written in place
        s = sigmoid(a)
        silu = a * s
        xp.multiply(g, silu, out=db)
        # silu'(a) = s * (1 + a * (1 - s)) = s + silu - silu * s
        d = s + silu
        d -= silu * s
        d *= b
        xp.multiply(d, g, out=da)
        return dx.astype(data.dtype, copy=False)

    def bias_gelu_backward(out_grad, data, bias, approximate):
        z = work(data) + work(bias)
        if approximate:
            t = xp.tanh(_SQRT_2_OVER_PI * (z + _GELU_CUBIC * z * z * z))
            dz = 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _SQRT_2_OVER_PI * (
                1.0 + 3 * _GELU_CUBIC * z * z)
        else:
            # Phi(z) + z * phi(z), Phi and phi the standard normal's CDF and density
            dz = 0.5 * (1.0 + erf(z * (1.0 / math.sqrt(2.0)))) + z * xp.exp(
                -0.5 * z * z) * (1.0 / math.sqrt(2.0 * math.pi))
        dz *= work(out_grad)
        dbias = dz.reshape(-1, dz.shape[-1]).sum(axis=0)
        return dz.astype(data.dtype, copy=False), dbias.astype(bias.dtype, copy=False)

    return {"swiglu": (swiglu, FLOAT), "bias_gelu": (bias_gelu, FLOAT),
            "swiglu_backward": (swiglu_backward, FLOAT),
            "bias_gelu_backward": (bias_gelu_backward, FLOAT)}


#: op -> (rowwise_triton's kernel on cuda, its guard)
_TRITON = {op: (op, f"{op}_applies") for op in ("swiglu", "bias_gelu", "swiglu_backward",
                                                 "bias_gelu_backward")}


def kernels() -> List[hal.Kernel]:
    triton = triton_kernels("rowwise_triton", _TRITON, FLOAT - {"float64"})
    return build(_table, "activation") + triton


# user-facing functions -------------------------------------------------------------------

def swiglu(data: NDArray, axis: int = -1) -> NDArray:
    """SwiGLU's gate: split ``data`` into halves ``a, b`` along ``axis`` (its size must
    be even) and return ``silu(a) * b`` with ``silu(a) = a * sigmoid(a)``; the output
    has half the size on ``axis``.  Feed it the concatenated gate and up projections."""
    return mx.nd.invoke("swiglu", data, axis=int(axis))


def bias_gelu(data: NDArray, bias: NDArray, approximate: bool = False) -> NDArray:
    """``gelu(data + bias)`` with ``bias`` of shape ``(data.shape[-1],)`` added along the
    last axis.  The exact form ``0.5*z*(1 + erf(z/sqrt(2)))``, or with ``approximate=True``
    the tanh approximation ``0.5*z*(1 + tanh(sqrt(2/pi)*(z + 0.044715*z**3)))``: PyTorch's
    ``F.gelu(approximate='none')`` and ``F.gelu(approximate='tanh')``."""
    return mx.nd.invoke("bias_gelu", data, bias, approximate=bool(approximate))


SWIGLU.frontend = swiglu
BIAS_GELU.frontend = bias_gelu
