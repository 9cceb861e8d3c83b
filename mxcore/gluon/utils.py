"""Helpers for multi-device training: split_and_load, clip_global_norm."""
from __future__ import annotations

import warnings
from typing import List, Sequence

import numpy as np

from mxcore.ndarray import NDArray


def split_data(data: NDArray, num_slice: int, batch_axis: int = 0,
               even_split: bool = True) -> List[NDArray]:
    """Split ``data`` into ``num_slice`` parts along ``batch_axis``."""
    from mxcore.ndarray import slice_axis
    size = data.shape[batch_axis]
    if even_split and size % num_slice:
        raise ValueError(f"data with shape {data.shape} cannot be split evenly into "
                         f"{num_slice} slices along axis {batch_axis}; use even_split=False")
    if num_slice > size:
        raise ValueError(f"too many slices ({num_slice}) for batch size {size}")
    step = size // num_slice
    bounds = [i * step for i in range(num_slice)] + [size]
    return [slice_axis(data, batch_axis, bounds[i], bounds[i + 1]) for i in range(num_slice)]


def split_and_load(data, ctx_list: Sequence, batch_axis: int = 0,
                   even_split: bool = True) -> List[NDArray]:
    """Split a batch across devices (one slice per device)."""
    from mxcore.ops.creation import array
    if not isinstance(data, NDArray):
        data = array(data, ctx=ctx_list[0])
    if len(ctx_list) == 1:
        return [data.as_in_context(ctx_list[0])]
    parts = split_data(data, len(ctx_list), batch_axis, even_split)
    return [p.as_in_context(c) for p, c in zip(parts, ctx_list)]


def clip_global_norm(arrays: Sequence[NDArray], max_norm: float,
                     check_isfinite: bool = True):
    """Scale ``arrays`` in place by ``min(1, max_norm / (norm + 1e-8))``, ``norm``
    being their joint L2 norm, and return that norm (MXNet 1.x): a numpy float32
    after one read from the device with ``check_isfinite`` (which warns on nan or
    inf), else a 1-element NDArray on the first array's device, with no wait for
    the device at all.  Squares are summed in float32 (float64 arrays: float64)."""
    from mxcore import ndarray as nd
    if not arrays:
        raise ValueError("clip_global_norm needs at least one array")
    ctx = arrays[0].context
    total = None
    for a in arrays:
        x = a.reshape((-1,))
        if x.dtype != np.float64:
            x = x.astype("float32", copy=False)
        sq = nd.dot(x, x).as_in_context(ctx)
        if total is not None and sq.dtype != total.dtype:
            sq, total = sq.astype("float64"), total.astype("float64")
        total = sq if total is None else total + sq
    norm = nd.sqrt(total)
    value = None
    if check_isfinite:
        value = norm.asscalar()
        if not np.isfinite(value):
            warnings.warn("nan or inf is detected. Clipping results will be undefined.",
                          UserWarning, stacklevel=2)
    scale = nd.minimum(max_norm / (norm + 1e-8), nd.ones_like(norm))
    for a in arrays:
        a *= scale.as_in_context(a.context).astype(a.dtype, copy=False)
    return np.float32(value) if check_isfinite else norm
