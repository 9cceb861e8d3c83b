"""Convolution and pooling kernels: windows over ``as_strided`` views (no copy), GEMMs
on the im2col matrix (one batched product over groups), and col2im as a loop over the
kernel's offsets (prod(kernel) strided adds, never a loop over pixels).

Arrays are channel-first (N, C, *spatial) with 1 to 3 spatial dims; the op wrappers
transpose channel-last layouts.  16-bit floats compute in float32 and round once.
"""
from __future__ import annotations

import itertools

import numpy as np

from mxcore_cpu.device import product_threads
from mxcore_cpu.kernels._dtypes import FLOAT
from mxcore_cpu.kernels.linalg import mnk


def kernels(xp, special):
    as_strided = xp.lib.stride_tricks.as_strided
    threads = product_threads(xp)  # one BLAS thread for small products (device.py)

    def work_dtype(dt):
        # float16/bfloat16: no BLAS, and too few bits to accumulate in
        return xp.float32 if dt.itemsize == 2 else dt

    def pad_spatial(x, before, after, value=0.0):
        if not any(before) and not any(after):
            return x
        widths = [(0, 0), (0, 0)] + [(int(b), int(a)) for b, a in zip(before, after)]
        return xp.pad(x, widths, mode="constant", constant_values=value)

    def out_size(size, k, s, d):
        return (size - d * (k - 1) - 1) // s + 1

    def windows(x, kernel, stride, dilate):
        """View (N, C, *out, *kernel) of the padded input x (N, C, *spatial)."""
        nd = len(kernel)
        spatial = x.shape[2:]
        out = tuple(out_size(spatial[i], kernel[i], stride[i], dilate[i]) for i in range(nd))
        st = x.strides
        return as_strided(x, x.shape[:2] + out + tuple(kernel),
                          st[:2] + tuple(st[2 + i] * stride[i] for i in range(nd))
                          + tuple(st[2 + i] * dilate[i] for i in range(nd)), writeable=False)

    def offset_slices(offset, out, stride, dilate):
        """Slices of the padded input that kernel ``offset`` reads across all outputs."""
        return (slice(None), slice(None)) + tuple(
            slice(o * d, o * d + s * (n - 1) + 1, s)
            for o, n, s, d in zip(offset, out, stride, dilate))

    def im2col(x, kernel, stride, dilate, pad, groups):
        """(N, G, Cg*K, P) columns of x's windows (one copy of the window view, laid
        out so that the products below are per-sample GEMMs already in NCHW order),
        and the output's spatial shape."""
        xpad = pad_spatial(x, pad, pad)
        win = windows(xpad, kernel, stride, dilate)                 # (N, C, *out, *k)
        n, c = x.shape[:2]
        nd = len(kernel)
        out = win.shape[2:2 + nd]
        order = (0, 1) + tuple(range(2 + nd, 2 + 2 * nd)) + tuple(range(2, 2 + nd))
        cols = xp.ascontiguousarray(win.transpose(order))           # (N, C, *k, *out)
        return cols.reshape(n, groups, -1, int(np.prod(out))), out

    def col2im(dcols, x_shape, kernel, stride, dilate, pad, out):
        """The adjoint of im2col: scatter-add (N, G, Cg*K, P) back to (N, C, *spatial)."""
        n, c = x_shape[:2]
        d = dcols.reshape((n, c) + tuple(kernel) + tuple(out))
        padded = tuple(s + 2 * p for s, p in zip(x_shape[2:], pad))
        dx = xp.zeros((n, c) + padded, dtype=dcols.dtype)
        for offset in itertools.product(*(range(k) for k in kernel)):
            dx[offset_slices(offset, out, stride, dilate)] += \
                d[(slice(None), slice(None)) + offset]
        crop = (slice(None), slice(None)) + tuple(slice(p, p + s)
                                                  for p, s in zip(pad, x_shape[2:]))
        return dx[crop]

    def convolution(x, w, *bias, kernel, stride, dilate, pad, num_filter, num_group, no_bias):
        dt = x.dtype
        wd = work_dtype(dt)
        g = num_group
        cols, out = im2col(x.astype(wd, copy=False), kernel, stride, dilate, pad, g)
        n, f = x.shape[0], w.shape[0]
        wg = w.astype(wd, copy=False).reshape(g, f // g, -1)       # (G, Fg, Cg*K)
        threads(mnk(wg, cols))
        y = xp.matmul(wg, cols)                                    # (N, G, Fg, P): NCHW order
        y = y.reshape((n, f) + tuple(out))
        if bias:
            y += bias[0].astype(wd, copy=False).reshape((1, f) + (1,) * len(out))
        return y.astype(dt, copy=False)

    def convolution_backward(gy, x, w, *, kernel, stride, dilate, pad, num_filter,
                             num_group, no_bias, grads):
        dt = x.dtype
        wd = work_dtype(dt)
        g = num_group
        n, f = gy.shape[:2]
        out = gy.shape[2:]
        gyg = gy.astype(wd, copy=False).reshape(n, g, f // g, -1)   # (N, G, Fg, P)
        result = []
        if grads[0]:
            wg = w.astype(wd, copy=False).reshape(g, f // g, -1)    # (G, Fg, Cg*K)
            threads(mnk(wg.transpose(0, 2, 1), gyg))
            dcols = xp.matmul(wg.transpose(0, 2, 1), gyg)            # (N, G, Cg*K, P)
            result.append(xp.ascontiguousarray(
                col2im(dcols, x.shape, kernel, stride, dilate, pad, out).astype(dt)))
        if grads[1]:
            cols, _ = im2col(x.astype(wd, copy=False), kernel, stride, dilate, pad, g)
            # per-sample (Fg, P) @ (P, Cg*K) summed over the batch: small GEMMs stay
            # single-threaded in BLAS, where one large GEMM over N*P made threads wait
            threads(mnk(gyg, cols.transpose(0, 1, 3, 2)))
            dw = xp.matmul(gyg, cols.transpose(0, 1, 3, 2)).sum(axis=0)
            result.append(dw.reshape(w.shape).astype(dt))
        if grads[2]:
            result.append(gyg.sum(axis=3).sum(axis=0).reshape(f).astype(dt))
        return tuple(result)

    # pooling ------------------------------------------------------------------------
    def pool_geometry(shape, kernel, stride, pad, convention):
        """(padded input's end padding, output spatial shape) for a pooling call."""
        spatial = shape[2:]
        out, extra = [], []
        for s, k, st, p in zip(spatial, kernel, stride, pad):
            span = s + 2 * p - k
            o = (-(-span // st) if convention == "full" else span // st) + 1
            out.append(o)
            extra.append(max(0, (o - 1) * st + k - (s + 2 * p)))
        return extra, tuple(out)

    def pool_counts(shape, kernel, stride, pad, extra, include_pad, wd):
        """How many elements each window averages: the window clipped to the padded
        input (count_include_pad) or to the input itself (MXNet's rule)."""
        spatial = shape[2:]
        mask = xp.ones((1, 1) + tuple(spatial), dtype=wd)
        if include_pad:
            mask = pad_spatial(mask, pad, pad, 1.0)
            mask = pad_spatial(mask, (0,) * len(pad), extra, 0.0)
        else:
            mask = pad_spatial(mask, pad, [p + e for p, e in zip(pad, extra)], 0.0)
        win = windows(mask, kernel, stride, (1,) * len(kernel))
        nd = len(kernel)
        return win.sum(axis=tuple(range(-nd, 0)))

    def offsets(kernel):
        return itertools.product(*(range(k) for k in kernel))

    def pooling(x, *, kernel, stride, pad, pool_type, pooling_convention,
                count_include_pad, p_value):
        # one elementwise pass per kernel offset over output-sized strided slices:
        # numpy reduces over a window view's last axes far more slowly
        dt = x.dtype
        wd = work_dtype(dt)
        nd = len(kernel)
        extra, out = pool_geometry(x.shape, kernel, stride, pad, pooling_convention)
        unit = (1,) * nd
        after = [p + e for p, e in zip(pad, extra)]
        xw = x.astype(wd, copy=False)
        if pool_type == "max":
            xw = pad_spatial(xw, pad, after, -xp.inf)
        else:
            xw = pad_spatial(xw, pad, after, 0.0)
            if pool_type == "lp":
                xw = xw ** p_value
        y = None
        for offset in offsets(kernel):
            v = xw[offset_slices(offset, out, stride, unit)]
            if y is None:
                y = v.copy()
            elif pool_type == "max":
                xp.maximum(y, v, out=y)
            else:
                y += v
        if pool_type == "lp":
            y **= 1.0 / p_value
        elif pool_type == "avg":
            y /= pool_counts(x.shape, kernel, stride, pad, extra, count_include_pad, wd)
        return y.astype(dt, copy=False)

    def pooling_backward(gy, x, y, *, kernel, stride, pad, pool_type, pooling_convention,
                         count_include_pad, p_value):
        dt = x.dtype
        wd = work_dtype(dt)
        nd = len(kernel)
        extra, out = pool_geometry(x.shape, kernel, stride, pad, pooling_convention)
        after = [p + e for p, e in zip(pad, extra)]
        g = gy.astype(wd, copy=False)
        xw = x.astype(wd, copy=False)
        padded_shape = x.shape[:2] + tuple(s + b + a for s, b, a in zip(x.shape[2:], pad,
                                                                         after))
        dx = xp.zeros(padded_shape, dtype=wd)
        unit = (1,) * nd
        if pool_type == "max":
            xpad = pad_spatial(xw, pad, after, -xp.inf)
            yw = y.astype(wd, copy=False)
            todo = xp.ones(yw.shape, dtype=bool)  # ties: the first maximum takes it
            for offset in offsets(kernel):
                sl = offset_slices(offset, out, stride, unit)
                hit = (xpad[sl] == yw) & todo
                dx[sl] += xp.where(hit, g, 0)
                todo &= ~hit
        else:
            if pool_type == "avg":
                g = g / pool_counts(x.shape, kernel, stride, pad, extra, count_include_pad,
                                    wd)
            if pool_type == "lp":
                xpad = pad_spatial(xw, pad, after, 0.0)
                yw = y.astype(wd, copy=False)
                # d (sum x^p)^(1/p) / dx = x^(p-1) * y^(1-p); 0 where y is 0
                with np.errstate(divide="ignore", invalid="ignore"):
                    scale = xp.where(yw != 0, g * yw ** (1.0 - p_value), 0.0)
                for offset in offsets(kernel):
                    sl = offset_slices(offset, out, stride, unit)
                    dx[sl] += scale * xpad[sl] ** (p_value - 1)
            else:
                for offset in offsets(kernel):
                    dx[offset_slices(offset, out, stride, unit)] += g
        crop = (slice(None), slice(None)) + tuple(slice(p, p + s)
                                                  for p, s in zip(pad, x.shape[2:]))
        return xp.ascontiguousarray(dx[crop].astype(dt, copy=False))

    return {"convolution": (convolution, FLOAT),
            "convolution_backward": (convolution_backward, FLOAT),
            "pooling": (pooling, FLOAT),
            "pooling_backward": (pooling_backward, FLOAT)}
