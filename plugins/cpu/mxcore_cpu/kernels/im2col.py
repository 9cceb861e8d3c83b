"""im2col and col2im (see mxcore/ops/im2col.py): one strided slice of the padded data
per kernel offset."""
from __future__ import annotations

import itertools
import math

from mxcore_cpu.kernels._dtypes import NUM


def kernels(xp, special):
    def _slices(offset, kernel, stride, dilate, out):
        return (slice(None), slice(None)) + tuple(
            slice(o * d, o * d + s * (n - 1) + 1, s)
            for o, d, s, n in zip(offset, dilate, stride, out))

    def _out(spatial, kernel, stride, dilate, pad):
        return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                     for n, k, s, d, p in zip(spatial, kernel, stride, dilate, pad))

    def im2col(data, kernel, stride, dilate, pad):
        n, c = data.shape[:2]
        out = _out(data.shape[2:], kernel, stride, dilate, pad)
        padded = xp.pad(data, ((0, 0), (0, 0)) + tuple((p, p) for p in pad))
        cols = xp.empty((n, c) + tuple(kernel) + out, data.dtype)
        for offset in itertools.product(*map(range, kernel)):
            cols[(slice(None), slice(None)) + offset] = \
                padded[_slices(offset, kernel, stride, dilate, out)]
        return cols.reshape(n, -1, math.prod(out))

    def col2im(data, kernel, stride, dilate, pad, output_size):
        n = data.shape[0]
        c = data.shape[1] // math.prod(kernel)
        out = _out(output_size, kernel, stride, dilate, pad)
        cols = data.reshape((n, c) + tuple(kernel) + out)
        padded = xp.zeros((n, c) + tuple(s + 2 * p for s, p in zip(output_size, pad)),
                          data.dtype)
        for offset in itertools.product(*map(range, kernel)):
            padded[_slices(offset, kernel, stride, dilate, out)] += \
                cols[(slice(None), slice(None)) + offset]
        crop = (slice(None), slice(None)) + tuple(slice(p, p + s)
                                                  for p, s in zip(pad, output_size))
        return padded[crop].copy()

    return {"im2col": (im2col, NUM), "col2im": (col2im, NUM)}
