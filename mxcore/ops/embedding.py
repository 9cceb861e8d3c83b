"""MXNet's Embedding: rows of a (input_dim, output_dim) weight looked up by index.

The indices may have any dtype (MXNet feeds them as float32): they are truncated to
integers and clipped to [0, input_dim - 1], as MXNet does, and the output has shape
``data.shape + (output_dim,)`` and the weight's dtype.  The weight's gradient is the
scatter-add of the output gradient into the looked-up rows (``take_grad``: repeated
indices accumulate, 16-bit floats in float32); the indices get no gradient.
"""
from __future__ import annotations

from typing import Optional

import hal

from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke
from mxcore.array import NDArray
from mxcore.op import REQUIRED, Op
from mxcore.ops.indexing import TAKE_GRAD

__all__ = ["Embedding", "embedding"]

EMBEDDING = Op("embedding", 2, attrs={"input_dim": REQUIRED, "output_dim": REQUIRED},
               dtype_arg=1, aliases=("Embedding",),
               doc="weight rows at the (truncated, clipped) indices of data")
OPS = [EMBEDDING]


@EMBEDDING.def_infer
def _embedding_infer(s, d, a):
    data, weight = tuple(s[0]), tuple(s[1])
    rows, cols = a["input_dim"], a["output_dim"]
    if rows < 1 or cols < 1:
        raise MXCoreError(f"input_dim and output_dim must be positive, got {rows} and {cols}")
    if weight != (rows, cols):
        raise MXCoreError(f"weight shape {weight} must be (input_dim, output_dim) = "
                          f"({rows}, {cols})")
    return [data + (cols,)], [d[1]]


@EMBEDDING.def_grad
def _embedding_grad(c, g):
    data, weight = c.inputs
    if not c.needs_grad(1):
        return None, None
    # the same truncation and clipping as the lookup: take's "clip" mode
    return None, invoke(TAKE_GRAD, (g, data), {"axis": 0, "mode": "clip",
                                               "size": weight.shape[0]})


def embedding(data: NDArray, weight: NDArray, input_dim: int, output_dim: int,
              dtype: str = "float32", sparse_grad: bool = False,
              name: Optional[str] = None) -> NDArray:
    """MXNet's Embedding (see the module docstring).  ``dtype`` names the weight's dtype
    in MXNet's symbolic API; here, as in MXNet's imperative call, the output takes the
    weight's own dtype.  ``sparse_grad`` is accepted for compatibility: the gradient is
    dense.  ``name`` is accepted for compatibility."""
    inputs = (data, weight)
    try:
        hal.to_dtype(dtype)
        attrs = {"input_dim": int(input_dim), "output_dim": int(output_dim)}
        _embedding_infer([x.shape for x in inputs], [x.dtype for x in inputs], attrs)
    except (MXCoreError, TypeError, ValueError) as exc:
        raise OperatorError("Embedding", str(exc), [x.shape for x in inputs],
                            [x.dtype for x in inputs], weight.context) from None
    return invoke(EMBEDDING, inputs, attrs)


Embedding = embedding
