"""``mx.nd._internal``: MXNet's underscore-prefixed operator names that user code and
MXNet-style tests call directly."""
from __future__ import annotations

from mxcore.ops.indexing import slice_assign as _slice_assign  # noqa: F401
from mxcore.ops.indexing import slice_assign_scalar as _slice_assign_scalar  # noqa: F401
from mxcore.ops.random import sample_unique_zipfian as _sample_unique_zipfian  # noqa: F401

# MXNet's older names of the two above
_crop_assign = _slice_assign
_crop_assign_scalar = _slice_assign_scalar


def _backward_gather_nd(data, indices, shape):
    """gather_nd's adjoint: zeros of ``shape`` with ``data`` added at ``indices``."""
    from mxcore.ndarray import invoke
    return invoke("gather_nd_grad", data, indices, shape=tuple(shape))
