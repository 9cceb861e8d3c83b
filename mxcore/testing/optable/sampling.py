"""Op-table cases: spatial sampling (BilinearSampler, GridGenerator, SpatialTransformer)
and Correlation.  Imported by mxcore.testing.optable, which collects every case into one table.

The references are loops over output positions written from the definitions: a grid
point (x, y) in [-1, 1] reads pixel ((x + 1) (W - 1) / 2, (y + 1) (H - 1) / 2) as the
sum over its four integer neighbours inside the map of value * (1 - |dx|) * (1 - |dy|).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

import mxcore as mx
from mxcore.testing.table import In, collector

CASES: list = []
case = collector(CASES)


nd = mx.nd
_T = {"float32": (1e-4, 1e-5), "float16": (2e-2, 2e-2), "bfloat16": (5e-2, 5e-2)}


def sampler_ref(data, grid):
    n, c, h, w = data.shape
    out = np.zeros((n, c) + grid.shape[2:])
    for b, i, j in itertools.product(range(n), *map(range, grid.shape[2:])):
        x = (grid[b, 0, i, j] + 1) * (w - 1) / 2
        y = (grid[b, 1, i, j] + 1) * (h - 1) / 2
        for yy, xx in itertools.product((math.floor(y), math.floor(y) + 1),
                                        (math.floor(x), math.floor(x) + 1)):
            if 0 <= yy < h and 0 <= xx < w:
                out[b, :, i, j] += data[b, :, yy, xx] * (1 - abs(x - xx)) * (1 - abs(y - yy))
    return out


def affine_grid_ref(theta, shape):
    h, w = shape
    out = np.zeros((theta.shape[0], 2, h, w))
    for i, j in itertools.product(range(h), range(w)):
        xn, yn = -1 + j * 2 / (w - 1), -1 + i * 2 / (h - 1)
        out[:, 0, i, j] = theta[:, 0] * xn + theta[:, 1] * yn + theta[:, 2]
        out[:, 1, i, j] = theta[:, 3] * xn + theta[:, 4] * yn + theta[:, 5]
    return out


def warp_grid_ref(flow):
    h, w = flow.shape[2:]
    out = np.zeros(flow.shape)
    for i, j in itertools.product(range(h), range(w)):
        out[:, 0, i, j] = (flow[:, 0, i, j] + j) * 2 / (w - 1) - 1
        out[:, 1, i, j] = (flow[:, 1, i, j] + i) * 2 / (h - 1) - 1
    return out


def correlation_ref(a, b, kernel_size=1, max_displacement=1, stride1=1, stride2=1,
                    pad_size=0, is_multiply=True):
    n, c, h, w = a.shape
    k, md, p = kernel_size, max_displacement, pad_size
    pa = np.pad(a, ((0, 0), (0, 0), (p, p), (p, p)))
    pb = np.pad(b, ((0, 0), (0, 0), (p, p), (p, p)))
    border = md + (k - 1) // 2
    th = math.ceil((h + 2 * p - 2 * border) / stride1)
    tw = math.ceil((w + 2 * p - 2 * border) / stride1)
    r = md // stride2
    shifts = [(dy * stride2, dx * stride2) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    out = np.zeros((n, len(shifts), th, tw))
    for t, (dy, dx) in enumerate(shifts):
        for i, j in itertools.product(range(th), range(tw)):
            y1, x1 = md + i * stride1, md + j * stride1
            u = pa[:, :, y1:y1 + k, x1:x1 + k]
            v = pb[:, :, y1 + dy:y1 + dy + k, x1 + dx:x1 + dx + k]
            out[:, t, i, j] = (u * v if is_multiply else np.abs(u - v)).sum(axis=(1, 2, 3))
    return out / (k * k * c)


# --- BilinearSampler: grid points within +-1.2, some neighbours outside the map ----------
case("bilinear_sampler", lambda d, g: nd.BilinearSampler(d, g * 0.6),
     lambda d, g: sampler_ref(d, g * 0.6), (In((2, 3, 4, 5)), In((2, 2, 3, 4))),
     grad2=False, tol=_T)
case("bilinear_sampler_upsample", lambda d, g: nd.BilinearSampler(d, g * 0.45),
     lambda d, g: sampler_ref(d, g * 0.45), (In((1, 2, 3, 3)), In((1, 2, 5, 6))),
     grad2=False, tol=_T)

# --- GridGenerator (linear in its input: second-order gradients are zero) ----------------
case("grid_generator_affine",
     lambda t: nd.GridGenerator(t, transform_type="affine", target_shape=(3, 4)),
     lambda t: affine_grid_ref(t, (3, 4)), (In((2, 6)),), tol=_T)
case("grid_generator_warp", lambda f: nd.GridGenerator(f, transform_type="warp"),
     warp_grid_ref, (In((2, 2, 3, 4)),), tol=_T)

# --- SpatialTransformer: near-identity matrices keep most samples inside -----------------
_IDENTITY = np.array([1.0, 0, 0, 0, 1.0, 0])
case("spatial_transformer",
     lambda d, t: nd.SpatialTransformer(d, t * 0.2 + nd.array(_IDENTITY, ctx=t.context,
                                                               dtype=t.dtype),
                                        target_shape=(3, 4), transform_type="affine",
                                        sampler_type="bilinear"),
     lambda d, t: sampler_ref(d, affine_grid_ref(t * 0.2 + _IDENTITY, (3, 4))),
     (In((2, 2, 4, 5)), In((2, 6))), grad2=False, tol=_T)

# --- Correlation ---------------------------------------------------------------------------
case("correlation_multiply",
     lambda a, b: nd.Correlation(a, b, kernel_size=1, max_displacement=2, stride2=1,
                                 pad_size=2),
     lambda a, b: correlation_ref(a, b, 1, 2, 1, 1, 2), (In((2, 3, 4, 5)), In((2, 3, 4, 5))),
     grad2=False, tol=_T)
case("correlation_kernel_strides",
     lambda a, b: nd.Correlation(a, b, kernel_size=3, max_displacement=2, stride1=2,
                                 stride2=2, pad_size=1),
     lambda a, b: correlation_ref(a, b, 3, 2, 2, 2, 1), (In((1, 2, 7, 6)), In((1, 2, 7, 6))),
     grad2=False, tol=_T)
case("correlation_absdiff",
     lambda a, b: nd.Correlation(a, b, kernel_size=3, max_displacement=1, stride1=2,
                                 pad_size=2, is_multiply=False),
     lambda a, b: correlation_ref(a, b, 3, 1, 2, 1, 2, False),
     (In((2, 2, 4, 4), "distinct"), In((2, 2, 4, 4), "distinct")), grad2=False, tol=_T)
