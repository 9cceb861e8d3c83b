"""layer_norm over the last axis: one row per program, the whole row in one
block (rows up to MAX_COLS columns), float32 statistics (float16/float32
inputs): mean, then the variance of the centred row (two passes over registers,
no E[x^2] - E[x]^2 cancellation), x_hat = (x - mean) / sqrt(var + eps) with
IEEE-rounded sqrt/division, y = gamma * x_hat + beta."""
from __future__ import annotations

import triton
import triton.language as tl

from mxcore_cuda.triton._runtime import arg, contiguous, count, next_pow2, xp_of


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
        _layer_norm_kernel[(x.size // ncols,)](arg(x), arg(gamma), arg(beta), arg(y), ncols,
                                               float(eps), BLOCK=block, num_warps=_warps(block))
        count("norm.layer_norm")
    return y


layer_norm.__qualname__ = "triton_layer_norm"
