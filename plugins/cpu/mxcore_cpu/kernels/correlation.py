"""Correlation and its backward (see mxcore/ops/correlation.py for the rules).

One strided slice per (displacement, kernel offset) pair: each compares whole
(N, C, out height, out width) blocks of the two padded maps at once.  16-bit floats
compute in float32."""
from __future__ import annotations

from mxcore_cpu.kernels._dtypes import FLOAT, acc_dtype


def kernels(xp, special):
    def _setup(data1, data2, kernel_size, max_displacement, stride1, stride2, pad_size):
        """The padded maps, the output size and the (dy, dx) displacements (with an
        odd kernel, every window lies inside the padded maps)."""
        n, c, h, w = data1.shape
        wt = acc_dtype(xp, data1.dtype)
        k, md, s1, pad = kernel_size, max_displacement, stride1, pad_size
        border = md + (k - 1) // 2
        th = -(-(h + 2 * pad - 2 * border) // s1)
        tw = -(-(w + 2 * pad - 2 * border) // s1)
        shape = (n, c, h + 2 * pad, w + 2 * pad)
        a, b = xp.zeros(shape, wt), xp.zeros(shape, wt)
        a[:, :, pad:pad + h, pad:pad + w] = data1
        b[:, :, pad:pad + h, pad:pad + w] = data2
        r = md // stride2
        shifts = [((i // (2 * r + 1) - r) * stride2, (i % (2 * r + 1) - r) * stride2)
                  for i in range((2 * r + 1) ** 2)]
        return a, b, th, tw, shifts

    def _window(y0, x0, th, tw, s1):
        return (slice(None), slice(None), slice(y0, y0 + s1 * (th - 1) + 1, s1),
                slice(x0, x0 + s1 * (tw - 1) + 1, s1))

    def correlation(data1, data2, kernel_size, max_displacement, stride1, stride2,
                    pad_size, is_multiply):
        k, md, s1 = kernel_size, max_displacement, stride1
        a, b, th, tw, shifts = _setup(data1, data2, k, md, s1, stride2, pad_size)
        out = xp.zeros((a.shape[0], len(shifts), th, tw), a.dtype)
        for t, (dy, dx) in enumerate(shifts):
            for i in range(k):
                for j in range(k):
                    p = a[_window(md + i, md + j, th, tw, s1)]
                    q = b[_window(md + dy + i, md + dx + j, th, tw, s1)]
                    out[:, t] += (p * q if is_multiply else xp.abs(p - q)).sum(axis=1)
        out /= k * k * data1.shape[1]
        return out.astype(data1.dtype, copy=False)

    def correlation_backward(g, data1, data2, kernel_size, max_displacement, stride1,
                             stride2, pad_size, is_multiply):
        k, md, s1, pad = kernel_size, max_displacement, stride1, pad_size
        a, b, th, tw, shifts = _setup(data1, data2, k, md, s1, stride2, pad)
        ga, gb = xp.zeros_like(a), xp.zeros_like(b)
        scaled = g.astype(a.dtype) / (k * k * data1.shape[1])
        for t, (dy, dx) in enumerate(shifts):
            gt = scaled[:, t:t + 1]
            for i in range(k):
                for j in range(k):
                    wa = _window(md + i, md + j, th, tw, s1)
                    wb = _window(md + dy + i, md + dx + j, th, tw, s1)
                    if is_multiply:
                        ga[wa] += gt * b[wb]
                        gb[wb] += gt * a[wa]
                    else:
                        sign = xp.where(a[wa] >= b[wb], gt, -gt)
                        ga[wa] += sign
                        gb[wb] -= sign
        h, w = data1.shape[2:]
        crop = (slice(None), slice(None), slice(pad, pad + h), slice(pad, pad + w))
        return (ga[crop].astype(data1.dtype), gb[crop].astype(data2.dtype))

    return {"correlation": (correlation, FLOAT),
            "correlation_backward": (correlation_backward, FLOAT)}
