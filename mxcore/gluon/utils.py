"""Helpers for multi-device training: split_and_load, clip_global_norm."""
from __future__ import annotations

import math
from typing import List, Sequence

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
                     check_isfinite: bool = True) -> float:
    """Scale ``arrays`` in place so their joint L2 norm is at most ``max_norm``;
    returns the norm before scaling."""
    total = 0.0
    for a in arrays:
        total += float((a.astype("float64") ** 2).sum().asscalar())
    norm = math.sqrt(total)
    if check_isfinite and not math.isfinite(norm):
        import warnings
        warnings.warn("nan or inf found in clip_global_norm; arrays left unchanged", stacklevel=2)
        return norm
    if norm > max_norm:
        scale = max_norm / (norm + 1e-8)
        for a in arrays:
            a *= scale
    return norm
