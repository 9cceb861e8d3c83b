"""MXNet's Correlation (FlowNet's correlation layer) between two feature maps.

Both inputs (N, C, H, W) are zero-padded by ``pad_size``.  Output position (i, j)
takes the ``kernel_size`` x ``kernel_size`` window of ``data1`` whose top-left corner
is ``(max_displacement + i*stride1, max_displacement + j*stride1)`` and compares it
with ``data2``'s window displaced by (dy, dx), for every displacement in
``-max_displacement .. max_displacement`` in steps of ``stride2`` (the output
channels, dy major).  The comparison is the product (``is_multiply``) or the absolute
difference, summed over the window and the channels and divided by
``kernel_size**2 * C``.  The output's spatial size is
``ceil((H + 2*pad - 2*(max_displacement + (kernel_size - 1) // 2)) / stride1)``.
"""
from __future__ import annotations

import math
from typing import Dict, Tuple

from mxcore.array import NDArray
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke
from mxcore.op import Op
from mxcore.ops.backward import fused_backward

_ATTRS = {"kernel_size": 1, "max_displacement": 1, "stride1": 1, "stride2": 1,
          "pad_size": 0, "is_multiply": True}
CORRELATION = Op("correlation", 2, attrs=dict(_ATTRS), aliases=("Correlation",),
                 doc="FlowNet correlation of two (N, C, H, W) maps over a displacement grid")
CORRELATION_BACKWARD = Op("correlation_backward", 3, nout=2, attrs=dict(_ATTRS),
                          doc="correlation's gradients: (out_grad, data1, data2) -> "
                              "(d data1, d data2)")
OPS = [CORRELATION, CORRELATION_BACKWARD]


def geometry(shape, a: Dict) -> Tuple[int, int, int]:
    """(output channels, output height, output width) of data ``shape`` under ``a``."""
    k, md, s1, s2, pad = (a["kernel_size"], a["max_displacement"], a["stride1"],
                          a["stride2"], a["pad_size"])
    if k < 1 or s1 < 1 or s2 < 1 or md < 0 or pad < 0:
        raise MXCoreError(f"kernel_size, stride1 and stride2 must be positive and "
                          f"max_displacement, pad_size non-negative, got kernel_size={k}, "
                          f"max_displacement={md}, stride1={s1}, stride2={s2}, pad_size={pad}")
    if k % 2 == 0:
        raise MXCoreError(f"kernel_size must be odd, got {k}")
    border = md + (k - 1) // 2
    height = math.ceil((shape[2] + 2 * pad - 2 * border) / s1)
    width = math.ceil((shape[3] + 2 * pad - 2 * border) / s1)
    if height < 1 or width < 1:
        raise MXCoreError(f"the kernel ({k}) and the displacements (up to {md}) do not fit "
                          f"in the {shape[2]}x{shape[3]} maps padded by {pad}")
    grid = 2 * (md // s2) + 1
    return grid * grid, height, width


@CORRELATION.def_infer
def _correlation_infer(s, d, a):
    a1, a2 = tuple(s[0]), tuple(s[1])
    if len(a1) != 4 or a1 != a2:
        raise MXCoreError(f"data1 and data2 must be (batch, channels, height, width) of one "
                          f"shape, got {a1} and {a2}")
    if d[0] != d[1]:
        raise MXCoreError(f"data1 and data2 must share a dtype, got {d[0]} and {d[1]}")
    return [(a1[0],) + geometry(a1, a)], [d[0]]


fused_backward(CORRELATION, CORRELATION_BACKWARD, _correlation_infer)


def Correlation(data1: NDArray, data2: NDArray, kernel_size: int = 1,  # noqa: N802
                max_displacement: int = 1, stride1: int = 1, stride2: int = 1,
                pad_size: int = 0, is_multiply: bool = True, name=None) -> NDArray:
    """MXNet's Correlation (see the module docstring): (N, (2*(max_displacement //
    stride2) + 1)**2, out height, out width)."""
    try:
        attrs = {"kernel_size": int(kernel_size), "max_displacement": int(max_displacement),
                 "stride1": int(stride1), "stride2": int(stride2), "pad_size": int(pad_size),
                 "is_multiply": bool(is_multiply)}
        _correlation_infer([data1.shape, data2.shape], [data1.dtype, data2.dtype], attrs)
    except (MXCoreError, TypeError, ValueError) as exc:
        raise OperatorError("Correlation", str(exc), [data1.shape, data2.shape],
                            [data1.dtype, data2.dtype], data1.context) from None
    return invoke(CORRELATION, (data1, data2), attrs)


__all__ = ["Correlation"]
