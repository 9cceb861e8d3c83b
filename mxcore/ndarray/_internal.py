"""``mx.nd._internal``: MXNet's underscore-prefixed operator names that user code and
MXNet-style tests call directly."""
from __future__ import annotations

from mxcore.ops.random import sample_unique_zipfian as _sample_unique_zipfian  # noqa: F401


def _backward_gather_nd(data, indices, shape):
    """gather_nd's adjoint: zeros of ``shape`` with ``data`` added at ``indices``."""
    from mxcore.ndarray import invoke
    return invoke("gather_nd_grad", data, indices, shape=tuple(shape))
