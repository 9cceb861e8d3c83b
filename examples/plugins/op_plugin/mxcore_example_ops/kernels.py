"""numpy kernels for the example ops on the ``cpu`` device kind.

A kernel is a plain function ``fn(*arrays, **attrs)``: the op's input arrays
positionally, then every attribute (defaults filled in) as a keyword argument.  It
returns a new array of the dtype the op's rule gives: mxcore checks the first call
on each (device kind, dtype) against the rule and names the kernel if it differs.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

import hal

#: dtype names the kernels take (for the op's primary input)
FLOAT = frozenset({"float16", "bfloat16", "float32", "float64"})


def squared_difference(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return np.square(np.subtract(lhs, rhs))


def squared_difference_same_shape(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    # without broadcasting the output has the inputs' shape: one buffer for the
    # difference and its square instead of two
    out = np.empty_like(lhs)
    np.subtract(lhs, rhs, out=out)
    return np.multiply(out, out, out=out)


def same_shapes(shapes: Sequence[Tuple[int, ...]], dtypes: Sequence[str], attrs: dict) -> bool:
    """Guard of ``squared_difference_same_shape``: the inputs do not broadcast."""
    return tuple(shapes[0]) == tuple(shapes[1])


def logsumexp(x: np.ndarray, axis: int, keepdims: bool) -> np.ndarray:
    # float16 and bfloat16 accumulate in float32 and round once at the end
    work = x.astype(np.float32) if x.dtype.itemsize < 4 else x
    m = np.max(work, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)        # rows of -inf: no inf - inf below
    with np.errstate(divide="ignore"):        # log(0) = -inf is the right answer there
        out = np.log(np.sum(np.exp(work - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = np.squeeze(out, axis=axis)
    return np.asarray(out).astype(x.dtype, copy=False)


def huber(x: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(x)
    out = np.where(a <= delta, 0.5 * x * x, delta * (a - 0.5 * delta))
    return out.astype(x.dtype, copy=False)    # a Python float promotes bfloat16


def kernels() -> List[hal.Kernel]:
    """The kernels this plugin registers."""
    return [
        hal.Kernel(op="squared_difference", device="cpu", fn=squared_difference,
                   dtypes=FLOAT, priority=0, name="squared_difference"),
        # the special case wins where its guard applies: it outranks the general kernel
        hal.Kernel(op="squared_difference", device="cpu", fn=squared_difference_same_shape,
                   dtypes=FLOAT, priority=10, applies=same_shapes,
                   name="squared_difference_same_shape"),
        hal.Kernel(op="logsumexp", device="cpu", fn=logsumexp, dtypes=FLOAT, priority=0,
                   name="logsumexp"),
        hal.Kernel(op="huber", device="cpu", fn=huber, dtypes=FLOAT, priority=0, name="huber"),
    ]
