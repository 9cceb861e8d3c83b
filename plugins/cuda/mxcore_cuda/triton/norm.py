"""layer_norm over the last axis: one row per program, the whole row in one
block (rows up to MAX_COLS columns), float32 statistics (float16/float32
inputs): mean, then the variance of the centred row (two passes over registers,
no E[x^2] - E[x]^2 cancellation), x_hat = (x - mean) / sqrt(var + eps) with
IEEE-rounded sqrt/division, y = gamma * x_hat + beta.

layer_norm_backward over the last axis: one program per block of consecutive rows,
each row in one block; per row the statistics are recomputed from x (float32) and
dx = rstd * (dxhat - mean(dxhat) - x_hat * mean(dxhat * x_hat)), dxhat = dy * gamma;
each program accumulates its rows' dgamma = sum(dy * x_hat) and dbeta = sum(dy) in
float32 partials, which one reduction over the programs then sums."""
from __future__ import annotations

import triton
import triton.language as tl

from mxcore_cuda import INTERPRET
from mxcore_cuda.triton._launch import launch
from mxcore_cuda.triton._runtime import arg, contiguous, count, next_pow2, xp_of

#: layer_norm_backward: at most this many programs (on a GPU, a few per SM keep it busy
#: while the partials stay small); interpreted, fewer and longer programs run faster
MAX_PROGRAMS = 8 if INTERPRET else 512


def _warps(block: int) -> int:
    return 4 if block <= 1024 else (8 if block <= 4096 else 16)


@triton.jit
def _layer_norm_kernel(X, G, B, Y, ncols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < ncols
    x = tl.load(X + row * ncols + cols, mask=mask, other=0).to(tl.float32)
    g = tl.load(G + cols, mask=mask, other=0).to(tl.float32)
    b = tl.load(B + cols, mask=mask, other=0).to(tl.float32)
    n = tl.zeros([1], tl.float32) + ncols
    mean = tl.div_rn(tl.sum(x, axis=0) + tl.zeros([1], tl.float32), n)
    d = tl.where(mask, x - mean, 0.0)
    var = tl.div_rn(tl.sum(d * d, axis=0) + tl.zeros([1], tl.float32), n)
    xhat = tl.div_rn(d, tl.sqrt_rn(var + eps))
    tl.store(Y + row * ncols + cols, (xhat * g + b).to(Y.dtype.element_ty), mask=mask)


def layer_norm(x, gamma, beta, axis, eps):
    x, gamma, beta = contiguous(x), contiguous(gamma), contiguous(beta)
    y = xp_of(x).empty_like(x)
    if x.size:
        ncols = x.shape[-1]
        block = next_pow2(ncols)
        launch(_layer_norm_kernel, (x.size // ncols,), arg(x), arg(gamma), arg(beta), arg(y), ncols,
               float(eps), BLOCK=block, num_warps=_warps(block))
        count("norm.layer_norm")
    return y


layer_norm.__qualname__ = "triton_layer_norm"


@triton.jit
def _layer_norm_backward_kernel(DY, X, G, DX, PART, nrows, ncols, rows_per_program, eps,
                                BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < ncols
    g = tl.load(G + cols, mask=mask, other=0).to(tl.float32)
    n = tl.zeros([1], tl.float32) + ncols
    dgamma = tl.zeros([BLOCK], tl.float32)
    dbeta = tl.zeros([BLOCK], tl.float32)
    for i in range(0, rows_per_program):
        row = pid * rows_per_program + i
        m = cols < tl.where(row < nrows, ncols, 0)  # rows past the end: all masked
        offs = row.to(tl.int64) * ncols + cols
        x = tl.load(X + offs, mask=m, other=0).to(tl.float32)
        dy = tl.load(DY + offs, mask=m, other=0).to(tl.float32)
        mean = tl.sum(x, axis=0) / n
        d = tl.where(m, x - mean, 0.0)
        rstd = 1.0 / tl.sqrt_rn(tl.sum(d * d, axis=0) / n + eps)
        xhat = d * rstd
        dxhat = dy * g
        c1 = tl.sum(dxhat * xhat, axis=0) / n
        c2 = tl.sum(dxhat, axis=0) / n
        dx = (dxhat - c2 - xhat * c1) * rstd
        tl.store(DX + offs, dx.to(DX.dtype.element_ty), mask=m)
        dgamma += dy * xhat
        dbeta += dy
    part = PART + pid.to(tl.int64) * 2 * ncols + cols
    tl.store(part, dgamma, mask=mask)
    tl.store(part + ncols, dbeta, mask=mask)


def layer_norm_backward(dy, x, gamma, axis, eps):
    """(dx, dgamma, dbeta) of layer_norm over the last axis: the fused kernel, then
    one sum of the per-program (dgamma, dbeta) partials."""
    dy, x, gamma = contiguous(dy), contiguous(x), contiguous(gamma)
    xp = xp_of(x)
    ncols = x.shape[-1]
    nrows = x.size // ncols  # > 0 (the guard declines empty inputs)
    dx = xp.empty_like(x)
    per = -(-nrows // min(nrows, MAX_PROGRAMS))
    programs = -(-nrows // per)
    part = xp.empty((programs, 2, ncols), xp.float32)
    block = next_pow2(ncols)
    launch(_layer_norm_backward_kernel, (programs,), arg(dy), arg(x), arg(gamma), arg(dx),
           arg(part), nrows, ncols, per, float(eps), BLOCK=block, num_warps=_warps(block))
    count("norm.layer_norm_backward")
    dgb = part.sum(axis=0).astype(x.dtype, copy=False)
    return dx, dgb[0], dgb[1]


layer_norm_backward.__qualname__ = "triton_layer_norm_backward"
