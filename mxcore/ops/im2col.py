"""MXNet's im2col and col2im: sliding blocks of an (N, C, *spatial) array as the
columns of an (N, C * prod(kernel), L) matrix, and back.

``kernel``, ``stride``, ``dilate`` and ``pad`` mean what they mean for Convolution:
column ``l`` holds the block under the kernel at the l-th output position (row-major),
its rows ordered channel first, then the kernel offsets row-major (so a convolution is
``weight.reshape(F, -1) @ col``).  ``col2im`` sums each column back over its block
(overlaps add up, padding is cropped): it is im2col's transpose, and each is the
other's gradient.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from mxcore.array import NDArray
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke
from mxcore.op import REQUIRED, Op
from mxcore.ops.conv import _conv_out, _geometry_attrs

_GEO = {"kernel": REQUIRED, "stride": REQUIRED, "dilate": REQUIRED, "pad": REQUIRED}
IM2COL = Op("im2col", 1, attrs=dict(_GEO),
            doc="sliding blocks of (N, C, *spatial) as columns (N, C * prod(kernel), L)")
COL2IM = Op("col2im", 1, attrs={**_GEO, "output_size": REQUIRED},
            doc="columns (N, C * prod(kernel), L) summed back into (N, C, *output_size)")
OPS = [IM2COL, COL2IM]


def out_spatial(spatial: Sequence[int], a) -> tuple:
    out = tuple(_conv_out(n, k, s, d, p) for n, k, s, d, p in
                zip(spatial, a["kernel"], a["stride"], a["dilate"], a["pad"]))
    if min(out) < 1:
        raise MXCoreError(f"kernel {a['kernel']} (dilate {a['dilate']}) does not fit in "
                          f"spatial size {tuple(spatial)} padded by {a['pad']}")
    return out


@IM2COL.def_infer
def _im2col_infer(s, d, a):
    (data,) = s
    if len(data) != len(a["kernel"]) + 2:
        raise MXCoreError(f"data must be (batch, channels) + {len(a['kernel'])} spatial "
                          f"dims, got {tuple(data)}")
    blocks = int(np.prod(out_spatial(data[2:], a)))
    return [(data[0], data[1] * int(np.prod(a["kernel"])), blocks)], [d[0]]


@COL2IM.def_infer
def _col2im_infer(s, d, a):
    (col,) = s
    size = int(np.prod(a["kernel"]))
    blocks = int(np.prod(out_spatial(a["output_size"], a)))
    if len(col) != 3 or col[1] % size or col[2] != blocks:
        raise MXCoreError(f"columns must be (batch, channels * {size}, {blocks}) for kernel "
                          f"{a['kernel']} over output_size {a['output_size']}, got {tuple(col)}")
    return [(col[0], col[1] // size) + tuple(a["output_size"])], [d[0]]


def _geo(a):
    return {k: a[k] for k in _GEO}


IM2COL.def_grad(lambda c, g: (invoke(COL2IM, (g,), {**_geo(c.attrs),
                                                     "output_size": c.inputs[0].shape[2:]}),))
COL2IM.def_grad(lambda c, g: (invoke(IM2COL, (g,), _geo(c.attrs)),))


def im2col(data: NDArray, kernel, stride=(), dilate=(), pad=(), name=None) -> NDArray:
    """Sliding blocks as columns (module docstring): (N, C * prod(kernel), L)."""
    try:
        nd_ = len(kernel) if isinstance(kernel, (tuple, list)) else data.ndim - 2
        attrs = _geometry_attrs("im2col", nd_, kernel, stride, dilate, pad)
        _im2col_infer([data.shape], [data.dtype], attrs)
    except (MXCoreError, TypeError, ValueError) as exc:
        raise OperatorError("im2col", str(exc), [data.shape], [data.dtype],
                            data.context) from None
    return invoke(IM2COL, (data,), attrs)


def col2im(data: NDArray, output_size, kernel, stride=(), dilate=(), pad=(),
           name=None) -> NDArray:
    """Columns summed back over their blocks (module docstring):
    (N, C, *output_size)."""
    try:
        size = (int(output_size),) if isinstance(output_size, (int, np.integer)) \
            else tuple(int(v) for v in output_size)
        attrs = _geometry_attrs("col2im", len(size), kernel, stride, dilate, pad)
        attrs["output_size"] = size
        _col2im_infer([data.shape], [data.dtype], attrs)
    except (MXCoreError, TypeError, ValueError) as exc:
        raise OperatorError("col2im", str(exc), [data.shape], [data.dtype],
                            data.context) from None
    return invoke(COL2IM, (data,), attrs)


__all__ = ["im2col", "col2im"]
