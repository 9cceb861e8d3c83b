"""Reductions over all axes or one contiguous run of axes: sum, mean, prod, max, min,
norm (ord 1 and 2), and argmax/argmin (flattened or along one axis).

The C-contiguous input is viewed as an (outer, R, inner) block reduced over R, where
R is the product of the reduced axes (``mxcore_cuda.triton.reduce_split``; "all axes"
is (1, N, 1)).  Two layouts, so that loads always run along contiguous memory:

* rows (inner == 1: trailing axes): a program reduces a chunk of one row in
  BLOCK-wide steps into a BLOCK-wide accumulator, then across it;
* columns (inner > 1: leading or middle axes): a program owns one outer index and
  BLOCK_I adjacent inner columns, and walks R in [BLOCK_R, BLOCK_I] tiles, each tile
  row BLOCK_I consecutive elements (coalesced), instead of striding by ``inner``.

Accumulators are float32 (float16/float32 input) or float64.  When too few programs
would run (few, long reductions) the work is split in two stages: chunks of R into
float32/float64 partials laid out (outer, nchunks, inner), then the same kernels over
the partials.  max/min propagate NaN as numpy does; argmax/argmin return the first
NaN if any, else the first occurrence of the extreme (positions as float32, MXNet's
rule); mean divides once at the end (IEEE division), norm 2 takes an IEEE square root.
"""
from __future__ import annotations

import builtins
from typing import Callable, Optional, Sequence, Tuple

import triton
import triton.language as tl

from mxcore_cuda import INTERPRET
from mxcore_cuda.triton import reduce_split
from mxcore_cuda.triton._launch import cdiv, launch
from mxcore_cuda.triton._runtime import arg, contiguous, count, next_pow2, xp_of

# how values combine, what is applied to each loaded value (MAP) and to each result
# (FINISH); constexprs, so each kernel variant compiles only its own branch
ADD, MUL, MAX, MIN = (tl.constexpr(i) for i in range(4))
NOOP, ABS, SQUARE = (tl.constexpr(i) for i in range(3))
MEAN, SQRT = tl.constexpr(1), tl.constexpr(2)

#: kind -> (combine, map, finish)
KINDS = {"sum": (ADD, NOOP, NOOP), "mean": (ADD, NOOP, MEAN), "prod": (MUL, NOOP, NOOP),
         "max": (MAX, NOOP, NOOP), "min": (MIN, NOOP, NOOP),
         "norm1": (ADD, ABS, NOOP), "norm2": (ADD, SQUARE, SQRT)}
#: row kernel: columns per first-stage program of a two-stage reduction
CHUNK = 4096 if INTERPRET else 16384
#: fewer programs than this (and a long R) run in two stages
FEW_PROGRAMS = 4 if INTERPRET else 512
#: column kernel: a first-stage program walks at least this many tiles
MIN_TILES = 1 if INTERPRET else 8
#: elements of a column kernel's tile
TILE = 4096 if INTERPRET else 2048
#: CUDA's limit on the grid's second dimension (chunks)
MAX_CHUNKS = 65535


# per-element and per-tile steps, shared by the row and column kernels -------------------
@triton.jit
def _identity(acc, COMBINE: tl.constexpr):
    """``acc`` (zeros) filled with the combine's identity."""
    if COMBINE == MUL:
        acc = acc + 1
    elif COMBINE == MAX:
        acc = acc - float("inf")
    elif COMBINE == MIN:
        acc = acc + float("inf")
    return acc


@triton.jit
def _map(x, MAP: tl.constexpr):
    if MAP == ABS:
        x = tl.abs(x)
    elif MAP == SQUARE:
        x = x * x
    return x


@triton.jit
def _combine(acc, nan, x, COMBINE: tl.constexpr):
    # max/min keep numbers in ``acc`` and remember NaNs apart: reductions of NaN
    # are not specified the same on every backend
    if COMBINE == ADD:
        acc = acc + x
    elif COMBINE == MUL:
        acc = acc * x
    elif COMBINE == MAX:
        acc = tl.where(x > acc, x, acc)
        nan = nan | (x != x).to(tl.int32)
    else:
        acc = tl.where(x < acc, x, acc)
        nan = nan | (x != x).to(tl.int32)
    return acc, nan


@triton.jit
def _times(a, b):
    return a * b


@triton.jit
def _total(acc, nan, COMBINE: tl.constexpr):
    """``acc`` reduced over axis 0; NaN where max/min saw one."""
    if COMBINE == ADD:
        r = tl.sum(acc, axis=0)
    elif COMBINE == MUL:
        r = tl.reduce(acc, 0, _times)
    elif COMBINE == MAX:
        r = tl.max(acc, axis=0)
    else:
        r = tl.min(acc, axis=0)
    if COMBINE == MAX or COMBINE == MIN:
        r = tl.where(tl.max(nan, axis=0) > 0, float("nan"), r)
    return r


@triton.jit
def _finish(r, div, FINISH: tl.constexpr, F64: tl.constexpr):
    if FINISH == MEAN:
        if F64:
            r = r / div
        else:
            r = tl.div_rn(r, tl.zeros_like(r) + div)
    elif FINISH == SQRT:
        if F64:
            r = tl.sqrt(r)  # float64 square root is IEEE-rounded
        else:
            r = tl.sqrt_rn(r)
    return r


@triton.jit
def _arg_step(acc, idx, x, pos, mask, MAXIMUM: tl.constexpr):
    """Per lane, the best value so far and its first position (idx -1: none yet); a
    NaN beats every number and a lane keeps its first NaN."""
    if MAXIMUM:
        better = x > acc
    else:
        better = x < acc
    better = (better | ((x != x) & (acc == acc)) | (idx < 0)) & mask
    return tl.where(better, x, acc), tl.where(better, pos, idx)


@triton.jit
def _arg_total(acc, idx, MAXIMUM: tl.constexpr):
    """(value, position) over axis 0: the first NaN if any, else the first extreme."""
    isnan = acc != acc
    anynan = tl.max(isnan.to(tl.int32), axis=0) > 0
    if MAXIMUM:
        v = tl.where(isnan | (idx < 0), -float("inf"), acc)
        best = tl.max(v, axis=0)
    else:
        v = tl.where(isnan | (idx < 0), float("inf"), acc)
        best = tl.min(v, axis=0)
    cand = tl.where(anynan, isnan, v == best) & (idx >= 0)
    pos = tl.min(tl.where(cand, idx, 2147483647), axis=0)
    return tl.where(anynan, float("nan"), best), pos


# kernels ---------------------------------------------------------------------------------
@triton.jit
def _rows(X, Y, ncols, chunk, nchunks, div, COMBINE: tl.constexpr, MAP: tl.constexpr,
          FINISH: tl.constexpr, F64: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    k = tl.program_id(1)
    start = k.to(tl.int64) * chunk
    base = X + row * ncols + start
    left = ncols - start  # columns of this row from this chunk on
    cols = tl.arange(0, BLOCK)
    fill = _identity(tl.zeros([BLOCK], tl.float64 if F64 else tl.float32), COMBINE)
    acc = fill
    nan = tl.zeros([BLOCK], tl.int32)
    for s in range(0, chunk, BLOCK):
        c = s + cols
        mask = (c < chunk) & (c < left)
        x = _map(tl.load(base + c, mask=mask, other=0).to(acc.dtype), MAP)
        acc, nan = _combine(acc, nan, tl.where(mask, x, fill), COMBINE)
    r = _finish(_total(acc, nan, COMBINE), div, FINISH, F64)
    tl.store(Y + row * nchunks + k, r.to(Y.dtype.element_ty))


@triton.jit
def _col_tile(X, nred, inner, chunk, BLOCK_I: tl.constexpr):
    """What a column program owns: outer index, BLOCK_I inner columns, chunk k of the
    reduced rows (its first row and address)."""
    ncb = tl.cdiv(inner, BLOCK_I)
    o = (tl.program_id(0) // ncb).to(tl.int64)
    cols = (tl.program_id(0) % ncb) * BLOCK_I + tl.arange(0, BLOCK_I)
    k = tl.program_id(1)
    start = k.to(tl.int64) * chunk
    return o, cols, k, start, X + (o * nred + start) * inner


@triton.jit
def _cols(X, Y, nred, inner, chunk, nchunks, div, COMBINE: tl.constexpr, MAP: tl.constexpr,
          FINISH: tl.constexpr, F64: tl.constexpr, BLOCK_R: tl.constexpr,
          BLOCK_I: tl.constexpr):
    o, cols, k, start, base = _col_tile(X, nred, inner, chunk, BLOCK_I)
    left = nred - start  # reduced rows from this chunk on
    cmask = cols < inner
    rr = tl.arange(0, BLOCK_R)
    fill = _identity(tl.zeros([BLOCK_R, BLOCK_I], tl.float64 if F64 else tl.float32),
                     COMBINE)
    acc = fill
    nan = tl.zeros([BLOCK_R, BLOCK_I], tl.int32)
    for s in range(0, chunk, BLOCK_R):
        r = s + rr
        mask = ((r < chunk) & (r < left))[:, None] & cmask[None, :]
        ptrs = base + r.to(tl.int64)[:, None] * inner + cols[None, :]
        x = _map(tl.load(ptrs, mask=mask, other=0).to(acc.dtype), MAP)
        acc, nan = _combine(acc, nan, tl.where(mask, x, fill), COMBINE)
    res = _finish(_total(acc, nan, COMBINE), div, FINISH, F64)
    tl.store(Y + (o * nchunks + k) * inner + cols, res.to(Y.dtype.element_ty), mask=cmask)


# argmax/argmin: X values, XI their positions (second stage: the partials'), Y partial
# values, YI positions (float32 in the last stage)
@triton.jit
def _arg_rows(X, XI, Y, YI, ncols, chunk, nchunks, MAXIMUM: tl.constexpr,
              GATHER: tl.constexpr, PARTIAL: tl.constexpr, F64: tl.constexpr,
              BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    k = tl.program_id(1)
    start = k.to(tl.int64) * chunk
    base = X + row * ncols + start
    left = ncols - start
    cols = tl.arange(0, BLOCK)
    acc = tl.zeros([BLOCK], tl.float64 if F64 else tl.float32)
    idx = tl.full([BLOCK], -1, tl.int32)
    for s in range(0, chunk, BLOCK):
        c = s + cols
        mask = (c < chunk) & (c < left)
        x = tl.load(base + c, mask=mask, other=0).to(acc.dtype)
        acc, idx = _arg_step(acc, idx, x, c, mask, MAXIMUM)
    val, pos = _arg_total(acc, idx, MAXIMUM)
    if GATHER:
        at = tl.load(XI + row * ncols + pos)
    else:
        at = start + pos
    if PARTIAL:
        tl.store(Y + row * nchunks + k, val)
    tl.store(YI + row * nchunks + k, at.to(YI.dtype.element_ty))


@triton.jit
def _arg_cols(X, XI, Y, YI, nred, inner, chunk, nchunks, MAXIMUM: tl.constexpr,
              GATHER: tl.constexpr, PARTIAL: tl.constexpr, F64: tl.constexpr,
              BLOCK_R: tl.constexpr, BLOCK_I: tl.constexpr):
    o, cols, k, start, base = _col_tile(X, nred, inner, chunk, BLOCK_I)
    left = nred - start
    cmask = cols < inner
    rr = tl.arange(0, BLOCK_R)
    acc = tl.zeros([BLOCK_R, BLOCK_I], tl.float64 if F64 else tl.float32)
    idx = tl.full([BLOCK_R, BLOCK_I], -1, tl.int32)
    for s in range(0, chunk, BLOCK_R):
        r = s + rr
        mask = ((r < chunk) & (r < left))[:, None] & cmask[None, :]
        x = tl.load(base + r.to(tl.int64)[:, None] * inner + cols[None, :], mask=mask,
                    other=0).to(acc.dtype)
        acc, idx = _arg_step(acc, idx, x, r[:, None] + tl.zeros_like(idx), mask, MAXIMUM)
    val, pos = _arg_total(acc, idx, MAXIMUM)
    out = (o * nchunks + k) * inner + cols
    if GATHER:
        at = tl.load(XI + (o * nred + pos) * inner + cols, mask=cmask, other=0)
    else:
        at = start + pos
    if PARTIAL:
        tl.store(Y + out, val, mask=cmask)
    tl.store(YI + out, at.to(YI.dtype.element_ty), mask=cmask)


# launchers -------------------------------------------------------------------------------
REDUCE = (_rows, _cols)
ARG = (_arg_rows, _arg_cols)


def _block(ncols: int) -> int:
    return builtins.min(4096, builtins.max(16, next_pow2(ncols))) if INTERPRET else 1024


def _tile(inner: int, nred: int) -> Tuple[int, int]:
    """(BLOCK_R, BLOCK_I) of the column kernels: up to 128 adjacent columns (512-byte
    float32 tile rows), as many reduced rows as fill TILE elements."""
    bi = builtins.min(128, next_pow2(inner))
    return builtins.max(1, builtins.min(TILE // bi, next_pow2(nred))), bi


def _chunk(outer: int, nred: int, inner: int) -> int:
    """How much of R one program reduces: all of it, unless that leaves fewer than
    FEW_PROGRAMS programs for a long R (then the first of two stages takes chunks)."""
    if inner == 1:
        if outer >= FEW_PROGRAMS or nred <= CHUNK:
            return nred
        return builtins.max(CHUNK, cdiv(nred, MAX_CHUNKS))
    block_r, bi = _tile(inner, nred)
    programs = outer * cdiv(inner, bi)
    n = builtins.min(cdiv(FEW_PROGRAMS, programs), cdiv(nred, MIN_TILES * block_r))
    if programs >= FEW_PROGRAMS or n <= 1:
        return nred
    return cdiv(cdiv(nred, n), block_r) * block_r


def _launch(kernels, arrays, outer, nred, inner, chunk, nchunks, scalars, consts) -> None:
    rows, cols = kernels
    ptrs = [arg(a) for a in arrays]
    if inner == 1:
        launch(rows, (outer, nchunks), *ptrs, nred, chunk, nchunks, *scalars,
               BLOCK=_block(builtins.min(chunk, nred)), **consts)
    else:
        block_r, bi = _tile(inner, builtins.min(chunk, nred))
        launch(cols, (outer * cdiv(inner, bi), nchunks), *ptrs, nred, inner, chunk, nchunks,
               *scalars, BLOCK_R=block_r, BLOCK_I=bi, **consts)


def _out_shape(shape, axis, keepdims: bool) -> Tuple[int, ...]:
    nd = len(shape)
    axes = set(range(nd)) if axis is None else {a % nd for a in axis}
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes) or (1,)  # MXNet 1.x: never 0-d


def _reduce(x, axis: Optional[Sequence[int]], keepdims: bool, kind: str, tag: str):
    x = contiguous(x)
    xp = xp_of(x)
    outer, nred, inner = reduce_split(x.shape, axis)
    combine, map_, finish = (c.value for c in KINDS[kind])
    f64 = x.dtype == xp.float64
    # allocated in its final shape (not a reshaped view): autograd can then adopt a
    # fresh gradient buffer instead of copying it into .grad
    y = xp.empty(_out_shape(x.shape, axis, keepdims), dtype=x.dtype)
    chunk = _chunk(outer, nred, inner)
    nchunks = cdiv(nred, chunk)
    if nchunks > 1:
        part = xp.empty((outer * nchunks * inner,), dtype=xp.float64 if f64 else xp.float32)
        _launch(REDUCE, (x, part), outer, nred, inner, chunk, nchunks, (1,),
                dict(COMBINE=combine, MAP=map_, FINISH=NOOP.value, F64=f64))
        _launch(REDUCE, (part, y), outer, nchunks, inner, nchunks, 1, (nred,),
                dict(COMBINE=combine, MAP=NOOP.value, FINISH=finish, F64=f64))
        count(tag + ".two_stage")
    else:
        _launch(REDUCE, (x, y), outer, nred, inner, nred, 1, (nred,),
                dict(COMBINE=combine, MAP=map_, FINISH=finish, F64=f64))
    count(tag)
    return y


def reduction(kind: str) -> Callable:
    """The kernel of sum, mean, prod, max or min: ``fn(x, axis, keepdims)``."""
    tag = f"reduce.{kind}"

    def kernel(x, axis, keepdims):
        return _reduce(x, axis, keepdims, kind, tag)
    kernel.__name__ = kernel.__qualname__ = f"triton_{kind}"
    return kernel


def norm(x, ord: int, axis: Optional[Sequence[int]], keepdims: bool):
    """L1 (sum of magnitudes) or L2 (square root of the sum of squares) norm."""
    return _reduce(x, axis, keepdims, f"norm{ord}", "reduce.norm")


def arg_reduction(kind: str) -> Callable:
    """The kernel of argmax or argmin: ``fn(x, axis, keepdims)``, axis None (the
    flattened input) or one axis; float32 positions."""
    tag = f"reduce.{kind}"
    maximum = kind == "argmax"

    def kernel(x, axis, keepdims):
        x = contiguous(x)
        xp = xp_of(x)
        axes = None if axis is None else (axis,)
        outer, nred, inner = reduce_split(x.shape, axes)
        f64 = x.dtype == xp.float64
        y = xp.empty(_out_shape(x.shape, axes, keepdims), dtype=xp.float32)
        chunk = _chunk(outer, nred, inner)
        nchunks = cdiv(nred, chunk)
        consts = dict(MAXIMUM=maximum, F64=f64)
        if nchunks > 1:
            n = outer * nchunks * inner
            val = xp.empty((n,), dtype=xp.float64 if f64 else xp.float32)
            at = xp.empty((n,), dtype=xp.int64)
            _launch(ARG, (x, x, val, at), outer, nred, inner, chunk, nchunks, (),
                    dict(consts, GATHER=False, PARTIAL=True))
            _launch(ARG, (val, at, y, y), outer, nchunks, inner, nchunks, 1, (),
                    dict(consts, GATHER=True, PARTIAL=False))
            count(tag + ".two_stage")
        else:
            _launch(ARG, (x, x, y, y), outer, nred, inner, nred, 1, (),
                    dict(consts, GATHER=False, PARTIAL=False))
        count(tag)
        return y
    kernel.__name__ = kernel.__qualname__ = f"triton_{kind}"
    return kernel


# module attributes named after the ops (the table's factories); the code above uses
# builtins.min/max explicitly
globals().update({kind: reduction(kind) for kind in ("sum", "mean", "prod", "max", "min")})
argmax, argmin = arg_reduction("argmax"), arg_reduction("argmin")
