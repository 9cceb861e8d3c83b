"""Reduction kernels; float16 and bfloat16 accumulate in float32 and round once at the
end, integers accumulate in int64."""
from __future__ import annotations

from mxcore_cpu.kernels._dtypes import ALL, FLOAT, NUM, acc_dtype


def kernels(xp, special):
    def accumulate(fn):
        def k(x, axis, keepdims):
            # asarray: a full reduction gives a numpy scalar, and arrays are what
            # devices hold (a scalar cannot even be weakly referenced)
            return xp.asarray(fn(x, axis=axis, keepdims=keepdims,
                                 dtype=acc_dtype(xp, x.dtype))).astype(x.dtype, copy=False)
        return k

    def extreme(fn):
        def k(x, axis, keepdims):
            return xp.asarray(fn(x, axis=axis, keepdims=keepdims))
        return k

    def norm(x, ord, axis, keepdims):
        a = x.astype(acc_dtype(xp, x.dtype), copy=False)
        if ord == 1:
            r = xp.sum(xp.abs(a), axis=axis, keepdims=keepdims)
        else:
            r = xp.sqrt(xp.sum(a * a, axis=axis, keepdims=keepdims))
        return xp.asarray(r).astype(x.dtype, copy=False)

    def arg(fn):
        def k(x, axis, keepdims):
            if axis is None:
                r = xp.asarray(fn(x))
                if keepdims:
                    r = r.reshape((1,) * x.ndim)
            else:
                r = fn(x, axis=axis, keepdims=keepdims)
            return xp.asarray(r).astype(xp.float32)
        return k

    return {
        "sum": (accumulate(xp.sum), NUM),
        "mean": (accumulate(xp.mean), NUM),
        "prod": (accumulate(xp.prod), NUM),
        "max": (extreme(xp.max), ALL),
        "min": (extreme(xp.min), ALL),
        "norm": (norm, FLOAT),
        "argmax": (arg(xp.argmax), NUM),
        "argmin": (arg(xp.argmin), NUM),
    }
