"""Creation and copy kernels."""
from __future__ import annotations

import math

import numpy

from mxcore_cpu.kernels._dtypes import ALL, NUM, is_half


def kernels(xp, special):
    def arange(start, stop, step, repeat, dtype):
        # MXNet's values, not numpy's: the count comes from the values as given, but
        # each value is start + i * step in the output dtype, with start and step first
        # cast to it -- truncated to integers for the dtypes C++ does not call signed
        # (unsigned ints and the 16-bit floats), so arange(1.3, 20, 1.3, 'int32') is
        # 1, 2, ..., 15 where numpy gives 1, 2, 3, 5, ...
        if stop is None:
            start, stop = 0.0, start
        n = max(0, int(math.ceil((stop - start) / step)))
        dt = numpy.dtype(dtype)
        if dt.kind == "u" or is_half(numpy, dt):
            start, step = int(start), int(step)
        if dt.kind in "iu":
            r = (xp.arange(n, dtype=xp.int64) * int(step) + int(start)).astype(dt)
        else:
            r = xp.arange(n, dtype=xp.int64).astype(dt)
            r *= dt.type(step)
            r += dt.type(start)
        return xp.repeat(r, repeat) if repeat != 1 else r

    return {
        "full": (lambda shape, value, dtype: xp.full(shape, value, dtype=dtype), ALL),
        "arange": (arange, NUM),
        "zeros_like": (xp.zeros_like, ALL),
        "ones_like": (xp.ones_like, ALL),
        "copy": (lambda x: x.copy(), ALL),
        "cast": (lambda x, dtype: x.astype(dtype), ALL),
    }
