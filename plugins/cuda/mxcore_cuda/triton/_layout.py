"""Broadcast layouts for the elementwise kernels (no Triton import: the kernel
table's guards use it): each input's element strides expanded to the output
shape (0 along broadcast dimensions), then adjacent dimensions merged where
every input addresses them contiguously, so e.g. (N, C) + (C,) becomes a 2-D
pattern and same-shape contiguous inputs one flat dimension."""
from __future__ import annotations

import numpy as np

MAX_DIMS = 4


def expanded_strides(shape, strides, out_shape):
    """Element strides of an array of ``shape`` broadcast to ``out_shape``."""
    pad = len(out_shape) - len(shape)
    return [0] * pad + [0 if n == 1 else st for n, st in zip(shape, strides)]


def c_strides(shape):
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return out[::-1]


def collapse(out_shape, strides):
    """Drop size-1 dimensions and merge adjacent ones that every input addresses
    contiguously (outer stride == inner stride * inner size).  Returns the merged
    sizes and, per input, the merged strides."""
    dims = [(n, [st[i] for st in strides]) for i, n in enumerate(out_shape) if n != 1]
    if not dims:
        return [1], [[0] for _ in strides]
    merged = [dims[0]]
    for n, st in dims[1:]:
        pn, pst = merged[-1]
        if all(ps == s * n for ps, s in zip(pst, st)):
            merged[-1] = (pn * n, st)
        else:
            merged.append((n, st))
    return [n for n, _ in merged], [[st[k] for _, st in merged] for k in range(len(strides))]


def broadcast_plan(shapes):
    """(output shape, merged sizes, merged strides) for C-contiguous inputs of
    ``shapes``, or None when they do not broadcast."""
    try:
        out = tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None
    sizes, strides = collapse(out, [expanded_strides(s, c_strides(s), out) for s in shapes])
    return out, sizes, strides
