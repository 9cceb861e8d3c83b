"""Tiled matmul with ``tl.dot``: C = A @ B for 2-D float16/float32 inputs,
float32 accumulation, grouped program order for L2 reuse.  float32 uses IEEE
products by default (matches numpy/cuBLAS); ``MXCORE_CUDA_TF32=1`` allows TF32.
No transposes (the guard declines them)."""
from __future__ import annotations

import os

import triton
import triton.language as tl

from mxcore_cuda import INTERPRET
from mxcore_cuda.triton._runtime import arg, contiguous, count, xp_of

TF32 = os.environ.get("MXCORE_CUDA_TF32", "") not in ("", "0")


@triton.jit
def _matmul_kernel(A, B, C, M, N, K, stride_am, stride_bk, stride_cm,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                   GROUP_M: tl.constexpr, PRECISION: tl.constexpr):
    pid = tl.program_id(0)
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(N, BLOCK_N)
    group = GROUP_M * num_n
    first_m = (pid // group) * GROUP_M
    size_m = min(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % group) % size_m
    pid_n = (pid % group) // size_m
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    a_ptrs = A + rm[:, None].to(tl.int64) * stride_am + rk[None, :]
    b_ptrs = B + rk[:, None].to(tl.int64) * stride_bk + rn[None, :]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        k_left = K - k * BLOCK_K
        a = tl.load(a_ptrs, mask=(rm[:, None] < M) & (rk[None, :] < k_left), other=0.0)
        b = tl.load(b_ptrs, mask=(rk[:, None] < k_left) & (rn[None, :] < N), other=0.0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K * stride_bk
    c_ptrs = C + rm[:, None].to(tl.int64) * stride_cm + rn[None, :]
    tl.store(c_ptrs, acc.to(C.dtype.element_ty), mask=(rm[:, None] < M) & (rn[None, :] < N))


def config(M, N, K, dtype):
    """(BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages)."""
    if INTERPRET:  # few, large programs: the interpreter's cost is per program
        def blk(d):
            return 64 if d >= 64 else (32 if d >= 32 else 16)
        return blk(M), blk(N), blk(K), 8, 4, 1
    if dtype.itemsize == 2:
        return 128, 256, 64, 8, 8, 3
    return 128, 128, 32, 8, 8, 3


def launch(a, b, c, cfg=None):
    M, K = a.shape
    N = b.shape[1]
    bm, bn, bk, gm, warps, stages = cfg or config(M, N, K, a.dtype)
    precision = "tf32" if (TF32 and a.dtype.itemsize == 4) else "ieee"
    grid = (triton.cdiv(M, bm) * triton.cdiv(N, bn),)
    _matmul_kernel[grid](arg(a), arg(b), arg(c), M, N, K, a.shape[1], b.shape[1], c.shape[1],
                         BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=gm, PRECISION=precision,
                         num_warps=warps, num_stages=stages)


def _product(a, b):
    a, b = contiguous(a), contiguous(b)
    c = xp_of(a).empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    launch(a, b, c)
    return c


def matmul(a, b):
    c = _product(a, b)
    count("matmul.matmul")
    return c


def dot(a, b, transpose_a, transpose_b):
    c = _product(a, b)  # the guard admits no transposes
    count("matmul.dot")
    return c


matmul.__qualname__ = "triton_matmul"
dot.__qualname__ = "triton_dot"
