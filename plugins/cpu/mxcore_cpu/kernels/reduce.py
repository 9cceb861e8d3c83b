"""Reduction kernels; float16 and bfloat16 accumulate in float32 and round once at the
end, integers accumulate in int64.  Reducing every axis without keepdims gives shape
(1,), as in MXNet 1.x (never a 0-d array)."""
from __future__ import annotations

import hal
from mxcore_cpu.kernels._dtypes import ALL, FLOAT, NUM, acc_dtype, as_float32


def kernels(xp, special):
    def vector(r):
        """MXNet 1.x has no 0-d results: a full reduction is shape (1,).  (asarray: a
        full reduction gives a numpy scalar, and arrays are what devices hold.)"""
        r = xp.asarray(r)
        return r.reshape(1) if r.ndim == 0 else r

    def accumulate(fn):
        def k(x, axis, keepdims):
            r = fn(x, axis=axis, keepdims=keepdims, dtype=acc_dtype(xp, x.dtype))
            return vector(r).astype(x.dtype, copy=False)
        return k

    def skipping_nan(fn):
        # numpy's nan-functions do not see bfloat16 as a float (its NaNs would count):
        # 16-bit floats go to float32 first, where they are accumulated anyway
        def k(x, axis, keepdims):
            r = fn(as_float32(xp, x), axis=axis, keepdims=keepdims, dtype=acc_dtype(xp, x.dtype))
            return vector(r).astype(x.dtype, copy=False)
        return k

    def extreme(fn):
        def k(x, axis, keepdims):
            return vector(fn(x, axis=axis, keepdims=keepdims))
        return k

    def norm(x, ord, axis, keepdims):
        a = x.astype(acc_dtype(xp, x.dtype), copy=False)
        if ord == 1:
            r = xp.sum(xp.abs(a), axis=axis, keepdims=keepdims)
        else:
            r = xp.sqrt(xp.sum(a * a, axis=axis, keepdims=keepdims))
        return vector(r).astype(x.dtype, copy=False)

    def arg(fn):
        def k(x, axis, keepdims):
            if axis is None:
                r = xp.asarray(fn(x))
                if keepdims:
                    r = r.reshape((1,) * x.ndim)
            else:
                r = fn(x, axis=axis, keepdims=keepdims)
            return vector(r).astype(xp.float32)
        return k

    def moments(x, axes, keepdims):
        if x.dtype.kind in "iu":
            # MXNet divides in the integer dtype: the mean is truncated before the
            # variance is taken around it
            a = x.astype(xp.float64)
            mean = xp.trunc(a.mean(axis=axes, keepdims=True))
            var = xp.trunc(((a - mean) ** 2).mean(axis=axes, keepdims=True))
        else:
            a = as_float32(xp, x)
            mean = a.mean(axis=axes, keepdims=True)
            d = a - mean
            var = (d * d).mean(axis=axes, keepdims=True)
        if not keepdims:
            mean, var = (xp.squeeze(v, axis=axes) for v in (mean, var))
        return tuple(vector(v).astype(x.dtype) for v in (mean, var))

    def all_finite(*arrays):
        # on the device: no host round trip per array
        flags = xp.stack([xp.isfinite(a).all() for a in arrays])
        return flags.all().astype(xp.float32).reshape(1)

    def edge_dtype(dtype):  # float data keep their dtype, integer data give float32 edges
        return dtype if hal.is_float(dtype) else xp.float32

    def histogram(a, bin_cnt, range):  # noqa: A002 - the op's attribute names
        counts, edges = xp.histogram(as_float32(xp, a), bin_cnt, range=range)
        return counts.astype(xp.int64), edges.astype(edge_dtype(a.dtype))

    def histogram_bins(a, bins):
        counts, edges = xp.histogram(as_float32(xp, a), as_float32(xp, bins))
        return counts.astype(xp.int64), edges.astype(edge_dtype(bins.dtype))

    return {
        "histogram": (histogram, NUM),
        "histogram_bins": (histogram_bins, NUM),
        "all_finite": (all_finite, FLOAT),
        "sum": (accumulate(xp.sum), NUM),
        "mean": (accumulate(xp.mean), NUM),
        "prod": (accumulate(xp.prod), NUM),
        # NaNs cannot occur in integers: nansum/nanprod are sum/prod there
        "nansum": (skipping_nan(xp.nansum), NUM),
        "nanprod": (skipping_nan(xp.nanprod), NUM),
        "max": (extreme(xp.max), ALL),
        "min": (extreme(xp.min), ALL),
        "norm": (norm, FLOAT),
        "argmax": (arg(xp.argmax), NUM),
        "argmin": (arg(xp.argmin), NUM),
        "moments": (moments, NUM),
    }
