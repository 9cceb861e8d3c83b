"""Triton kernels on ``cuda`` for the contrib plugin's row-wise and elementwise ops:
``rms_norm``, ``swiglu``, ``bias_gelu`` and ``rotary_embedding``, and the first three's
backward ops (``*_backward``, which their gradient rules call for first-order
gradients).

Each is one launch where the array-module kernel makes several passes over memory
(CuPy: one kernel per ufunc and reduction).  float16 and bfloat16 load as float32,
compute in float32 and round once on store, as the array-module kernels do; float64
stays with the array-module kernels.  rotary_embedding's gradient is the op itself with
``reverse`` flipped, so it runs here too.  The sums over rows of the gamma and bias
gradients are float32 partials (per program; per element for the bias) summed by the
array module.

* ``rms_norm`` over the last axis: one program per row, the whole row in one block (rows
  up to MAX_COLS), the mean of squares in float32, IEEE-rounded square root and division.
* ``swiglu`` along any axis: the input seen as (outer, 2, half * inner), one program per
  block of output elements, ``a * sigmoid(a) * b``.
* ``bias_gelu``: one program per block of elements, the bias read at ``i % C``; the erf
  form, or the tanh form with tanh written through ``exp`` (Triton has no tanh).
* ``rotary_embedding``: one program per (row, position); the cos/sin table of the call's
  positions is made by the array module in float64 and rounded to the compute dtype (as
  the array-module kernel's), then every row reads it.
"""
from __future__ import annotations

import math

# mxcore_cuda first: it sets TRITON_INTERPRET (interpreted mode), which Triton reads when
# it is imported and when ``@triton.jit`` runs
from mxcore_cuda import INTERPRET  # noqa: F401

import triton
import triton.language as tl

from mxcore_cuda.triton._launch import cdiv, launch
from mxcore_cuda.triton._runtime import (arg, contiguous, count, elementwise_block,
                                         next_pow2, numel, size_ok, xp_of)

#: rms_norm and rotary_embedding hold a row (rotary: half a row) in one block
MAX_COLS = 16384

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def _warps(block: int) -> int:
    return 4 if block <= 1024 else (8 if block <= 4096 else 16)


def _fits(shape) -> bool:
    """Non-empty, 32-bit element offsets per row, and (interpreted) a small array."""
    n = numel(shape)
    return 0 < n < 2**31 and size_ok(shape)


# guards (they see valid calls only: the ops' shape rules have run) ------------------------

def rms_norm_applies(shapes, dtypes, attrs) -> bool:
    """rms_norm(data, gamma) over the last axis, rows up to MAX_COLS."""
    shape = tuple(shapes[0])
    axis = attrs["axis"]
    last = axis in (-1, len(shape) - 1)
    return last and shape[-1] <= MAX_COLS and _fits(shape)


def swiglu_applies(shapes, dtypes, attrs) -> bool:
    return _fits(tuple(shapes[0]))


def bias_gelu_applies(shapes, dtypes, attrs) -> bool:
    return _fits(tuple(shapes[0]))


def rms_norm_backward_applies(shapes, dtypes, attrs) -> bool:
    """rms_norm_backward(out_grad, data, gamma): as the forward."""
    return rms_norm_applies(shapes[1:], dtypes[1:], attrs)


def swiglu_backward_applies(shapes, dtypes, attrs) -> bool:
    return _fits(tuple(shapes[1]))


def bias_gelu_backward_applies(shapes, dtypes, attrs) -> bool:
    return _fits(tuple(shapes[1]))


def rotary_embedding_applies(shapes, dtypes, attrs) -> bool:
    shape = tuple(shapes[0])
    return shape[-1] // 2 <= MAX_COLS and _fits(shape)


# kernels ---------------------------------------------------------------------------------

@triton.jit
def _rms_norm_kernel(X, G, Y, ncols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < ncols
    x = tl.load(X + row * ncols + cols, mask=mask, other=0).to(tl.float32)
    g = tl.load(G + cols, mask=mask, other=0).to(tl.float32)
    n = tl.zeros([1], tl.float32) + ncols
    mean_sq = tl.div_rn(tl.sum(x * x, axis=0) + tl.zeros([1], tl.float32), n)
    r = tl.div_rn(tl.zeros([1], tl.float32) + 1.0, tl.sqrt_rn(mean_sq + eps))
    tl.store(Y + row * ncols + cols, (x * r * g).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _swiglu_kernel(X, Y, n, half_inner, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    outer = offs // half_inner
    first = offs + outer * half_inner  # outer * 2 * half_inner + (offs - outer * half_inner)
    a = tl.load(X + first, mask=mask, other=0).to(tl.float32)
    b = tl.load(X + first + half_inner, mask=mask, other=0).to(tl.float32)
    s = 1.0 / (1.0 + tl.exp(-a))  # exp overflows to inf for a << 0: s = 0, as expit
    tl.store(Y + offs, (s * a * b).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _bias_gelu_kernel(X, B, Y, n, ncols, APPROXIMATE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(X + offs, mask=mask, other=0).to(tl.float32)
    b = tl.load(B + offs % ncols, mask=mask, other=0).to(tl.float32)
    z = x + b
    if APPROXIMATE:
        u = 0.7978845608028654 * (z + 0.044715 * z * z * z)  # sqrt(2/pi), the cubic term
        t = 2.0 / (1.0 + tl.exp(-2.0 * u)) - 1.0  # tanh(u), saturating to +-1
        y = 0.5 * z * (1.0 + t)
    else:
        y = 0.5 * z * (1.0 + tl.math.erf(z * 0.7071067811865476))  # 1/sqrt(2)
    tl.store(Y + offs, y.to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _rms_norm_backward_kernel(DY, X, G, DX, PART, nrows, ncols, rows_per_program, eps,
                              BLOCK: tl.constexpr):
    """dx = r * (dy - xr * mean(dy * xr)), dy = g * gamma, xr = x * r; each program sums
    its rows' g * xr into a float32 partial of dgamma."""
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < ncols
    gamma = tl.load(G + cols, mask=mask, other=0).to(tl.float32)
    n = tl.zeros([1], tl.float32) + ncols
    dgamma = tl.zeros([BLOCK], tl.float32)
    for i in range(0, rows_per_program):
        row = pid * rows_per_program + i
        m = cols < tl.where(row < nrows, ncols, 0)  # rows past the end: all masked
        offs = row.to(tl.int64) * ncols + cols
        x = tl.load(X + offs, mask=m, other=0).to(tl.float32)
        g = tl.load(DY + offs, mask=m, other=0).to(tl.float32)
        mean_sq = tl.div_rn(tl.sum(x * x, axis=0) + tl.zeros([1], tl.float32), n)
        r = tl.div_rn(tl.zeros([1], tl.float32) + 1.0, tl.sqrt_rn(mean_sq + eps))
        xr = x * r
        dy = g * gamma
        c = tl.div_rn(tl.sum(dy * xr, axis=0) + tl.zeros([1], tl.float32), n)
        tl.store(DX + offs, ((dy - xr * c) * r).to(DX.dtype.element_ty), mask=m)
        dgamma += g * xr
    tl.store(PART + pid.to(tl.int64) * ncols + cols, dgamma, mask=mask)


@triton.jit
def _swiglu_backward_kernel(G, X, DX, n, half_inner, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    outer = offs // half_inner
    first = offs + outer * half_inner
    a = tl.load(X + first, mask=mask, other=0).to(tl.float32)
    b = tl.load(X + first + half_inner, mask=mask, other=0).to(tl.float32)
    g = tl.load(G + offs, mask=mask, other=0).to(tl.float32)
    s = 1.0 / (1.0 + tl.exp(-a))
    silu = s * a
    # silu'(a) = s * (1 + a * (1 - s)) = s + silu - silu * s
    tl.store(DX + first, ((s + silu - silu * s) * b * g).to(DX.dtype.element_ty), mask=mask)
    tl.store(DX + first + half_inner, (g * silu).to(DX.dtype.element_ty), mask=mask)


@triton.jit
def _bias_gelu_backward_kernel(G, X, B, DZ, n, ncols, APPROXIMATE: tl.constexpr,
                               BLOCK: tl.constexpr):
    """d(data) = g * gelu'(data + bias), in float32 (the bias gradient sums it)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(X + offs, mask=mask, other=0).to(tl.float32)
    b = tl.load(B + offs % ncols, mask=mask, other=0).to(tl.float32)
    g = tl.load(G + offs, mask=mask, other=0).to(tl.float32)
    z = x + b
    if APPROXIMATE:
        u = 0.7978845608028654 * (z + 0.044715 * z * z * z)
        t = 2.0 / (1.0 + tl.exp(-2.0 * u)) - 1.0  # tanh(u)
        dz = 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * 0.7978845608028654 * (
            1.0 + 3 * 0.044715 * z * z)
    else:
        # Phi(z) + z * phi(z): 1/sqrt(2), 1/sqrt(2 pi)
        dz = 0.5 * (1.0 + tl.math.erf(z * 0.7071067811865476)) + z * tl.exp(
            -0.5 * z * z) * 0.3989422804014327
    tl.store(DZ + offs, dz * g, mask=mask)


@triton.jit
def _rotary_kernel(X, COS, SIN, Y, seq, half, INTERLEAVED: tl.constexpr,
                   BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)  # over (leading axes..., seq)
    pos = row % seq
    i = tl.arange(0, BLOCK)
    mask = i < half
    c = tl.load(COS + pos * half + i, mask=mask, other=0)
    s = tl.load(SIN + pos * half + i, mask=mask, other=0)
    if INTERLEAVED:
        first = 2 * i
        second = 2 * i + 1
    else:
        first = i
        second = i + half
    base = row * 2 * half
    x1 = tl.load(X + base + first, mask=mask, other=0).to(tl.float32)
    x2 = tl.load(X + base + second, mask=mask, other=0).to(tl.float32)
    tl.store(Y + base + first, (x1 * c - x2 * s).to(Y.dtype.element_ty), mask=mask)
    tl.store(Y + base + second, (x2 * c + x1 * s).to(Y.dtype.element_ty), mask=mask)


# launchers -------------------------------------------------------------------------------

def rms_norm(data, gamma, axis, eps):
    x, g = contiguous(data), contiguous(gamma)
    y = xp_of(x).empty_like(x)
    ncols = x.shape[-1]
    block = next_pow2(ncols)
    launch(_rms_norm_kernel, (x.size // ncols,), arg(x), arg(g), arg(y), ncols, float(eps),
           BLOCK=block, num_warps=_warps(block))
    count("contrib.rms_norm")
    return y


def swiglu(data, axis):
    x = contiguous(data)
    axis = axis % x.ndim
    half = x.shape[axis] // 2
    inner = numel(x.shape[axis + 1:])
    out_shape = x.shape[:axis] + (half,) + x.shape[axis + 1:]
    y = xp_of(x).empty(out_shape, dtype=x.dtype)
    n = y.size
    block = elementwise_block(n)
    launch(_swiglu_kernel, (cdiv(n, block),), arg(x), arg(y), n, half * inner, BLOCK=block)
    count("contrib.swiglu")
    return y


def bias_gelu(data, bias, approximate):
    x, b = contiguous(data), contiguous(bias)
    y = xp_of(x).empty_like(x)
    n = x.size
    block = elementwise_block(n)
    launch(_bias_gelu_kernel, (cdiv(n, block),), arg(x), arg(b), arg(y), n, x.shape[-1],
           APPROXIMATE=bool(approximate), BLOCK=block)
    count("contrib.bias_gelu")
    return y


def rotary_embedding(data, offset, base, interleaved, reverse):
    x = contiguous(data)
    xp = xp_of(x)
    seq, dim = x.shape[-2], x.shape[-1]
    half = dim // 2
    # the array-module kernel's table: angles in float64, rounded to the compute dtype
    inv_freq = float(base) ** (-xp.arange(0, dim, 2, dtype=xp.float64) / dim)
    angle = xp.arange(offset, offset + seq, dtype=xp.float64)[:, None] * inv_freq
    work = xp.float32 if x.dtype.itemsize < 4 else x.dtype
    cos = xp.ascontiguousarray(xp.cos(angle).astype(work))
    sin = xp.ascontiguousarray(xp.sin(angle).astype(work))
    if reverse:
        sin = -sin
    y = xp.empty_like(x)
    block = next_pow2(half)
    launch(_rotary_kernel, (x.size // dim,), arg(x), arg(cos), arg(sin), arg(y), seq, half,
           INTERLEAVED=bool(interleaved), BLOCK=block, num_warps=_warps(block))
    count("contrib.rotary_embedding")
    return y


#: rms_norm_backward: at most this many programs (on a GPU, a few per SM keep it busy
#: while the dgamma partials stay small); interpreted, fewer and longer programs
MAX_PROGRAMS = 8 if INTERPRET else 512


def rms_norm_backward(out_grad, data, gamma, axis, eps):
    """(d data, d gamma): the fused kernel, then one sum of the per-program partials."""
    g, x, gm = contiguous(out_grad), contiguous(data), contiguous(gamma)
    xp = xp_of(x)
    ncols = x.shape[-1]
    nrows = x.size // ncols  # > 0 (the guard declines empty inputs)
    dx = xp.empty_like(x)
    per = -(-nrows // min(nrows, MAX_PROGRAMS))
    programs = -(-nrows // per)
    part = xp.empty((programs, ncols), xp.float32)
    block = next_pow2(ncols)
    launch(_rms_norm_backward_kernel, (programs,), arg(g), arg(x), arg(gm), arg(dx),
           arg(part), nrows, ncols, per, float(eps), BLOCK=block, num_warps=_warps(block))
    count("contrib.rms_norm_backward")
    return dx, part.sum(axis=0).astype(gm.dtype, copy=False)


def swiglu_backward(out_grad, data, axis):
    g, x = contiguous(out_grad), contiguous(data)
    axis = axis % x.ndim
    half_inner = x.shape[axis] // 2 * numel(x.shape[axis + 1:])
    dx = xp_of(x).empty_like(x)
    n = g.size
    block = elementwise_block(n)
    launch(_swiglu_backward_kernel, (cdiv(n, block),), arg(g), arg(x), arg(dx), n,
           half_inner, BLOCK=block)
    count("contrib.swiglu_backward")
    return dx


def bias_gelu_backward(out_grad, data, bias, approximate):
    """(d data, d bias): d data in float32 first, which the bias gradient sums."""
    g, x, b = contiguous(out_grad), contiguous(data), contiguous(bias)
    xp = xp_of(x)
    dz = xp.empty(x.shape, xp.float32)
    n = x.size
    block = elementwise_block(n)
    launch(_bias_gelu_backward_kernel, (cdiv(n, block),), arg(g), arg(x), arg(b), arg(dz),
           n, x.shape[-1], APPROXIMATE=bool(approximate), BLOCK=block)
    count("contrib.bias_gelu_backward")
    dbias = dz.reshape(-1, x.shape[-1]).sum(axis=0)
    return dz.astype(x.dtype, copy=False), dbias.astype(b.dtype, copy=False)
