"""softmax / log_softmax over the last axis, and the fused softmax
cross-entropy (forward and gradient) of a (batch, classes) input: one row per
program, the whole row in one block (the guard limits rows to MAX_COLS).
float16 and bfloat16 compute in float32."""
from __future__ import annotations

import triton
import triton.language as tl

from mxcore_cuda.triton._launch import launch
from mxcore_cuda.triton._runtime import arg, contiguous, count, next_pow2, xp_of


def _warps(block: int) -> int:
    return 4 if block <= 1024 else (8 if block <= 4096 else 16)


@triton.jit
def _load_row(X, ncols, BLOCK: tl.constexpr):
    """This program's row: its index, columns, mask, and values (-inf past the end;
    16-bit floats in float32)."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < ncols
    x = tl.load(X + row * ncols + cols, mask=mask, other=-float("inf"))
    if x.dtype == tl.float16 or x.dtype == tl.bfloat16:
        x = x.to(tl.float32)
    return row, cols, mask, x


@triton.jit
def _softmax_kernel(X, Y, ncols, scale, LOG: tl.constexpr, SCALE: tl.constexpr,
                    BLOCK: tl.constexpr):
    row, cols, mask, x = _load_row(X, ncols, BLOCK)
    if SCALE:
        x = x * scale
    shifted = x - tl.max(x, axis=0)
    e = tl.where(mask, tl.exp(shifted), 0.0)
    total = tl.sum(e, axis=0)
    if LOG:
        y = shifted - tl.log(total)
    else:
        y = e / total
    tl.store(Y + row * ncols + cols, y.to(Y.dtype.element_ty), mask=mask)


def _temperature_scale(t):
    return None if t is None or t == 1.0 else 1.0 / t


def _softmax(log: bool):
    tag = "softmax.log_softmax" if log else "softmax.softmax"

    def kernel(x, axis, temperature):
        x = contiguous(x)
        y = xp_of(x).empty_like(x)
        if x.size:
            ncols = x.shape[-1]
            rows = x.size // ncols
            scale = _temperature_scale(temperature)
            block = next_pow2(ncols)
            launch(_softmax_kernel, (rows,), arg(x), arg(y), ncols, 1.0 if scale is None else scale,
                   LOG=log, SCALE=scale is not None, BLOCK=block, num_warps=_warps(block))
            count(tag)
        return y
    kernel.__name__ = kernel.__qualname__ = "triton_log_softmax" if log else "triton_softmax"
    return kernel


softmax = _softmax(False)
log_softmax = _softmax(True)


@triton.jit
def _ce_kernel(X, L, G, Y, ncols, GRAD: tl.constexpr, BLOCK: tl.constexpr):
    row, cols, mask, x = _load_row(X, ncols, BLOCK)
    label = tl.load(L + row).to(tl.int32)
    shifted = x - tl.max(x, axis=0)
    e = tl.where(mask, tl.exp(shifted), 0.0)
    total = tl.sum(e, axis=0)
    if GRAD:
        g = tl.load(G + row).to(x.dtype)
        p = e / total
        p = tl.where(cols == label, p - 1.0, p) * g
        tl.store(Y + row * ncols + cols, p.to(Y.dtype.element_ty), mask=mask)
    else:
        picked = tl.sum(tl.where(cols == label, shifted, 0.0), axis=0)
        tl.store(Y + row, (tl.log(total) - picked).to(Y.dtype.element_ty))


def _ce(x, label, g, grad: bool):
    """The loss per row (``grad=False``; ``g`` unused) or its gradient times ``g``."""
    x, label, g = contiguous(x), contiguous(label), contiguous(g)
    rows, ncols = x.shape
    xp = xp_of(x)
    y = xp.empty_like(x) if grad else xp.empty((rows,), dtype=x.dtype)
    if rows and ncols:
        block = next_pow2(ncols)
        launch(_ce_kernel, (rows,), arg(x), arg(label), arg(g), arg(y), ncols, GRAD=grad,
               BLOCK=block, num_warps=_warps(block))
        count("softmax.softmax_ce_loss_grad" if grad else "softmax.softmax_ce_loss")
    return y


def softmax_ce_loss(x, label, axis):
    return _ce(x, label, label, False)


def softmax_ce_loss_grad(x, label, g, axis):
    return _ce(x, label, g, True)


softmax_ce_loss.__qualname__ = "triton_softmax_ce_loss"
softmax_ce_loss_grad.__qualname__ = "triton_softmax_ce_loss_grad"
