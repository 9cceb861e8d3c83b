"""Reductions sum, mean, max, min over trailing axes: the input is viewed as a
(rows, cols) matrix whose cols are the reduced (trailing, contiguous) axes, so
"the last axis" and "all axes" (rows == 1) are one kernel.  The guard declines
other axis sets (the fallback serves them).

A program reduces one chunk of one row in BLOCK-wide steps into a BLOCK-wide
accumulator (float32 for float16/float32, float64 for float64), then across it.
Few long rows (all-axes reductions) would leave the GPU idle as one program per
row, so they run in two stages: chunks of CHUNK columns into float32/float64
partials, then the partials.  max/min propagate NaN as numpy does; mean divides
the sum once, at the end (IEEE division for float32).
"""
from __future__ import annotations

import builtins

import triton
import triton.language as tl

from mxcore_cuda import INTERPRET
from mxcore_cuda.triton._runtime import arg, contiguous, count, next_pow2, xp_of

KINDS = {"sum": 0, "mean": 0, "max": 1, "min": 2}
#: columns per first-stage program of a two-stage reduction
CHUNK = 4096 if INTERPRET else 16384
#: two stages when there are fewer rows than this (and rows are longer than CHUNK)
FEW_ROWS = 4 if INTERPRET else 512


@triton.jit
def _reduce_kernel(X, Y, ncols, chunk, nchunks, div, KIND: tl.constexpr, MEAN: tl.constexpr,
                   F64: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    k = tl.program_id(1)
    start = k.to(tl.int64) * chunk
    base = X + row * ncols + start
    left = ncols - start  # columns of this row from this chunk on
    cols = tl.arange(0, BLOCK)
    if F64:
        acc = tl.zeros([BLOCK], tl.float64)
    else:
        acc = tl.zeros([BLOCK], tl.float32)
    if KIND == 1:
        acc = acc - float("inf")
    if KIND == 2:
        acc = acc + float("inf")
    nan = tl.zeros([BLOCK], tl.int32)
    for s in range(0, chunk, BLOCK):
        c = s + cols
        mask = (c < chunk) & (c < left)
        x = tl.load(base + c, mask=mask, other=0).to(acc.dtype)
        if KIND == 0:
            acc += x
        elif KIND == 1:
            acc = tl.where(mask & (x > acc), x, acc)
            nan = nan | (x != x).to(tl.int32)
        else:
            acc = tl.where(mask & (x < acc), x, acc)
            nan = nan | (x != x).to(tl.int32)
    if KIND == 0:
        r = tl.sum(acc, axis=0)
    elif KIND == 1:
        r = tl.max(acc, axis=0)
    else:
        r = tl.min(acc, axis=0)
    if KIND != 0:
        r = tl.where(tl.max(nan, axis=0) > 0, float("nan"), r)
    if MEAN:
        if F64:
            r = r / div
        else:
            r = tl.div_rn(r, tl.zeros_like(r) + div)
    tl.store(Y + row * nchunks + k, r.to(Y.dtype.element_ty))


def _block(ncols: int) -> int:
    return builtins.min(4096, builtins.max(16, next_pow2(ncols))) if INTERPRET else 1024


def _launch(x, y, rows, ncols, chunk, nchunks, kind, mean, f64, div):
    _reduce_kernel[(rows, nchunks)](arg(x), arg(y), ncols, chunk, nchunks, div,
                                    KIND=KINDS[kind], MEAN=mean, F64=f64,
                                    BLOCK=_block(builtins.min(chunk, ncols)))


def trailing_split(shape, axis):
    """(rows, cols) when ``axis`` (None or sorted non-negative axes) is a run of
    trailing axes, else None."""
    nd = len(shape)
    first = 0 if axis is None else (axis[0] if axis else nd)
    if axis is not None and tuple(axis) != tuple(range(first, nd)):
        return None
    rows = cols = 1
    for i, n in enumerate(shape):
        if i < first:
            rows *= n
        else:
            cols *= n
    return rows, cols


def reduction(kind: str):
    tag = f"reduce.{kind}"
    mean = kind == "mean"

    def kernel(x, axis, keepdims):
        from mxcore.ops._rules import reduced_shape
        x = contiguous(x)
        xp = xp_of(x)
        rows, ncols = trailing_split(x.shape, axis)
        out_shape = reduced_shape(x.shape, axis, keepdims)
        f64 = x.dtype == xp.float64
        y = xp.empty((rows,), dtype=x.dtype)
        if rows < FEW_ROWS and ncols > CHUNK:
            nchunks = triton.cdiv(ncols, CHUNK)
            part = xp.empty((rows * nchunks,), dtype=xp.float64 if f64 else xp.float32)
            _launch(x, part, rows, ncols, CHUNK, nchunks, kind, False, f64, 1)
            _launch(part, y, rows, nchunks, nchunks, 1, kind, mean, f64, ncols)
            count(tag + ".two_stage")
        else:
            _launch(x, y, rows, ncols, ncols, 1, kind, mean, f64, ncols)
        count(tag)
        return y.reshape(out_shape)
    kernel.__name__ = kernel.__qualname__ = f"triton_{kind}"
    return kernel


# module attributes named after the ops (the table's factories); the code above uses
# builtins.min/max explicitly
globals().update({kind: reduction(kind) for kind in KINDS})
