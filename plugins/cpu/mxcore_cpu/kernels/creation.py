"""Creation and copy kernels."""
from __future__ import annotations

from mxcore_cpu.kernels._dtypes import ALL, NUM


def kernels(xp, special):
    def arange(start, stop, step, repeat, dtype):
        r = xp.arange(start, stop, step, dtype=xp.float64) if stop is not None else \
            xp.arange(0, start, step, dtype=xp.float64)
        r = r.astype(dtype)
        return xp.repeat(r, repeat) if repeat != 1 else r

    return {
        "full": (lambda shape, value, dtype: xp.full(shape, value, dtype=dtype), ALL),
        "arange": (arange, NUM),
        "zeros_like": (xp.zeros_like, ALL),
        "ones_like": (xp.ones_like, ALL),
        "copy": (lambda x: x.copy(), ALL),
        "cast": (lambda x, dtype: x.astype(dtype), ALL),
    }
