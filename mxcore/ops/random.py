"""Random sampling from each device's seedable generator
(``mxcore.random.seed``): uniform, normal, randint, shuffle."""
from __future__ import annotations

import numpy as np

from hal import to_dtype
from mxcore.base import MXCoreError
from mxcore.dispatch import invoke, invoke_nullary
from mxcore.ndarray.ndarray import NDArray
from mxcore.op import REQUIRED, Op
from mxcore.ops.rules import same_as_first
from mxcore.ops.creation import _device, _shape

UNIFORM = Op("random_uniform", 0, attrs={"low": 0.0, "high": 1.0, "shape": REQUIRED,
                                         "dtype": "float32"}, needs_rng=True)
NORMAL = Op("random_normal", 0, attrs={"loc": 0.0, "scale": 1.0, "shape": REQUIRED,
                                       "dtype": "float32"}, needs_rng=True)
RANDINT = Op("random_randint", 0, attrs={"low": REQUIRED, "high": REQUIRED, "shape": REQUIRED,
                                         "dtype": "int32"}, needs_rng=True)
SHUFFLE = Op("shuffle", 1, needs_rng=True)
OPS = [UNIFORM, NORMAL, RANDINT, SHUFFLE]
for _op in (UNIFORM, NORMAL, RANDINT):
    _op.def_infer(lambda s, d, a: ([tuple(a["shape"])], [np.dtype(a["dtype"])]))
SHUFFLE.def_infer(same_as_first)


def _sample(op, attrs, shape, dtype, ctx, out):
    dev = _device(ctx) if out is None else out.context
    dt = to_dtype(dtype if out is None else out.dtype)
    shape = _shape(shape if out is None else out.shape)
    r = invoke_nullary(op, dev, {**attrs, "shape": shape, "dtype": dt.name}, dt)
    if out is not None:
        out[...] = r
        return out
    return r


def uniform(low=0.0, high=1.0, shape=(1,), dtype="float32", ctx=None, out=None) -> NDArray:
    """Samples from U[low, high)."""
    if high < low:
        raise MXCoreError(f"random.uniform: high ({high}) < low ({low})")
    return _sample(UNIFORM, {"low": float(low), "high": float(high)}, shape, dtype, ctx, out)


def normal(loc=0.0, scale=1.0, shape=(1,), dtype="float32", ctx=None, out=None) -> NDArray:
    """Samples from N(loc, scale^2)."""
    if scale < 0:
        raise MXCoreError(f"random.normal: scale must be non-negative, got {scale}")
    return _sample(NORMAL, {"loc": float(loc), "scale": float(scale)}, shape, dtype, ctx, out)


def randint(low, high, shape=(1,), dtype="int32", ctx=None, out=None) -> NDArray:
    """Integers uniform in [low, high)."""
    if high <= low:
        raise MXCoreError(f"random.randint: high ({high}) must exceed low ({low})")
    return _sample(RANDINT, {"low": int(low), "high": int(high)}, shape, dtype, ctx, out)


def shuffle(data: NDArray) -> NDArray:
    """A copy of ``data`` with its first axis randomly permuted."""
    return invoke(SHUFFLE, (data,))
