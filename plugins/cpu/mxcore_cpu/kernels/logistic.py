"""The logistic sigmoid as MXNet computes it, ``1 / (1 + exp(-x))``, and its integral,
softrelu (softplus) ``log(1 + exp(x))``.

SciPy's ``expit`` rounds exactly but computes float32 in long double, 4-10x slower than
numpy's ``exp``; this is within a few ulps.  ``exp(-x)`` overflowing to inf (x < -88 in
float32) gives exactly 0, the limit, without a warning.  16-bit floats compute in float32
(their ``exp`` would overflow already at x < -11) and round once.
"""
import numpy as np

from mxcore_cpu.kernels._dtypes import as_float32


def sigmoid(xp, x, out=None):
    """The sigmoid of ``x``: a new array of its dtype, or written into ``out``."""
    with np.errstate(over="ignore"):
        e = xp.exp(-as_float32(xp, x))  # a fresh array, reused below
    e += 1.0
    if out is not None and out.dtype == e.dtype:
        return xp.reciprocal(e, out=out)
    r = xp.reciprocal(e, out=e)
    if out is None:
        return r.astype(x.dtype, copy=False)
    out[...] = r
    return out


def softrelu(xp, x, out=None):
    """``log(1 + exp(x))`` as ``max(x, 0) + log1p(exp(-|x|))``: numpy's ``logaddexp(0, x)``
    computes the same, element by element without SIMD (about 25x slower in float32).
    ``out`` may be ``x`` itself."""
    w = as_float32(xp, x)
    t = xp.abs(w)
    xp.negative(t, out=t)
    xp.exp(t, out=t)
    xp.log1p(t, out=t)
    if out is not None and out.dtype == t.dtype:
        r = xp.maximum(w, 0, out=out)
    else:
        r = xp.maximum(w, 0)
    r += t
    if out is None:
        return r.astype(x.dtype, copy=False)
    if r is not out:
        out[...] = r
    return out
