"""Shape/dtype rules and gradient helpers for writing operators (public API).

The core op modules use them and so may operator plugins (see
docs/writing-plugins.md): ``same_as_first`` and ``broadcast`` are ready-made
``def_infer`` rules, ``normalize_axis``/``normalize_axes`` validate axis
attributes, ``reduced_shape`` gives a reduction's output shape and
``unbroadcast`` sums a gradient back to an input's shape.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from mxcore.base import MXCoreError

__all__ = ["same_as_first", "broadcast", "normalize_axis", "normalize_axes", "reduced_shape",
           "unbroadcast"]


def same_as_first(shapes, dtypes, attrs):
    return [shapes[0]], [dtypes[0]]


def broadcast(shapes, dtypes, attrs):
    if len(shapes) == 2 and shapes[0] == shapes[1] and dtypes[0] == dtypes[1]:
        return [tuple(shapes[0])], [dtypes[0]]  # the common case, without numpy's ~5 us
    try:
        shape = tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise MXCoreError(f"shapes {' and '.join(str(s) for s in shapes)} do not broadcast") \
            from None
    if len(set(dtypes)) > 1:
        raise MXCoreError(f"dtypes {', '.join(str(d) for d in dtypes)} differ")
    return [shape], [dtypes[0]]


def normalize_axis(axis: int, ndim: int, op: str = "") -> int:
    if not -ndim <= axis < max(ndim, 1):
        raise MXCoreError(f"{op + ': ' if op else ''}axis {axis} is out of range for "
                          f"{ndim}-d input")
    return axis % ndim if ndim else 0


def normalize_axes(axis, ndim: int, exclude: bool = False, op: str = "") -> Optional[Tuple[int, ...]]:
    """None (all axes) or a sorted tuple of non-negative axes."""
    if axis is None or (isinstance(axis, tuple) and not axis):
        return None  # MXNet: () means all axes, with or without exclude
    if isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    axes = tuple(sorted({normalize_axis(int(a), ndim, op) for a in axis}))
    if exclude:
        axes = tuple(a for a in range(ndim) if a not in axes)
    return axes


def reduced_shape(shape, axes, keepdims: bool):
    if axes is None:
        axes = tuple(range(len(shape)))
    if keepdims:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def unbroadcast(g, shape: Sequence[int]):
    """Sum ``g`` down to ``shape`` (the gradient of a broadcast).  Through the array's
    own methods: rules sit below the op modules and never import them."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(i + extra for i, s in enumerate(shape)
                                       if s == 1 and g.shape[i + extra] != 1)
    if axes:
        g = g.sum(axes, keepdims=True)
    return g.reshape(shape)
