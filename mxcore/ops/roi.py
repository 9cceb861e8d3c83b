"""Region-of-interest pooling (MXNet's ROIPooling, the Fast R-CNN layer).

Each roi row is ``(batch index, x1, y1, x2, y2)`` in input pixels times
``spatial_scale``; its corners are rounded (half away from zero), the box split into a
``pooled_size`` grid of bins (floor/ceil bin edges, clipped to the map) and each bin
max-pooled per channel; an empty bin gives 0.  The backward sends each output's gradient
to its bin's first maximum (and nothing to the rois), recomputing the maxima.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from mxcore.array import NDArray
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke
from mxcore.op import REQUIRED, Op

_ATTRS = {"pooled_size": REQUIRED, "spatial_scale": REQUIRED}
ROI_POOLING = Op("roi_pooling", 2, attrs=dict(_ATTRS), aliases=("ROIPooling",),
                 doc="max pooling of each roi (batch, x1, y1, x2, y2) into pooled_size bins")
ROI_POOLING_BACKWARD = Op("roi_pooling_backward", 3, attrs=dict(_ATTRS),
                          doc="the gradient of roi_pooling's data from its output gradient")
OPS = [ROI_POOLING, ROI_POOLING_BACKWARD]


@ROI_POOLING.def_infer
def _roi_infer(s, d, a):
    data, rois = tuple(s[0]), tuple(s[1])
    if len(data) != 4:
        raise MXCoreError(f"data must be (batch, channels, height, width), got {data}")
    if len(rois) != 2 or rois[1] != 5:
        raise MXCoreError(f"rois must be (num_rois, 5) rows of (batch index, x1, y1, x2, y2), "
                          f"got {rois}")
    ph, pw = a["pooled_size"]
    return [(rois[0], data[1], ph, pw)], [d[0]]


ROI_POOLING_BACKWARD.def_infer(lambda s, d, a: ([tuple(s[1])], [d[1]]))
ROI_POOLING.def_grad(lambda c, g: (invoke(ROI_POOLING_BACKWARD, (g,) + tuple(c.inputs),
                                          c.attrs), None))


def ROIPooling(data: NDArray, rois: NDArray, pooled_size: Sequence[int],  # noqa: N802
               spatial_scale: float, name=None) -> NDArray:
    """MXNet's ROIPooling (module docstring): (num_rois, channels, *pooled_size)."""
    try:
        size = (int(pooled_size),) * 2 if isinstance(pooled_size, (int, np.integer)) \
            else tuple(int(v) for v in pooled_size)
        if len(size) != 2 or min(size) < 1:
            raise MXCoreError(f"pooled_size must be two positive sizes, got {pooled_size!r}")
        attrs = {"pooled_size": size, "spatial_scale": float(spatial_scale)}
        _roi_infer([data.shape, rois.shape], [data.dtype, rois.dtype], attrs)
    except (MXCoreError, TypeError, ValueError) as exc:
        raise OperatorError("ROIPooling", str(exc), [data.shape, rois.shape],
                            [data.dtype, rois.dtype], data.context) from None
    return invoke(ROI_POOLING, (data, rois), attrs)


roi_pooling = ROIPooling
__all__ = ["ROIPooling", "roi_pooling"]
