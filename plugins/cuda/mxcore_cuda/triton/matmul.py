"""Tiled matmul with ``tl.dot``: C = A @ B for float16/bfloat16/float32 inputs, 2-D or
batched 3-D (``batch_dot`` without transposes, ``matmul`` of equal batches: a
batch grid dimension), float32 accumulation, grouped program order for L2
reuse.  float32 uses IEEE products by default (matches numpy/cuBLAS);
``MXCORE_CUDA_TF32=1`` allows TF32.  No transposes (the guard declines them).

``fully_connected`` is the same tile loop reading the (N, K) weight as the
(K, N) operand through its strides, with an epilogue: the bias and the
activation (``act_type``, a formula of the elementwise table) are applied to the
float32 tile in registers, so a Dense layer is one launch and one write.
``fully_connected_backward`` forms the output gradient through the activation's
derivative in registers too, and gets d data, d weight and d bias in two launches.

Block configurations: on a GPU ``triton.autotune`` picks among a few per
(M, N, K) and dtype, timing them once with CUDA events through CuPy (Triton's
own benchmark helper needs torch); ``MXCORE_CUDA_MATMUL_AUTOTUNE=0`` uses the
fixed heuristic instead.  Interpreted, one configuration (the autotuner with a
single config does not benchmark): few, large programs.
"""
from __future__ import annotations

import os

import triton
import triton.language as tl

from mxcore_cuda import INTERPRET
from mxcore_cuda.triton._launch import cdiv, launch as launch_kernel
from mxcore_cuda.triton._runtime import FUSED_FP32_MAX_MACS, arg, contiguous, count, xp_of
from mxcore_cuda.triton.elementwise import UNARY

TF32 = os.environ.get("MXCORE_CUDA_TF32", "") not in ("", "0")
AUTOTUNE = os.environ.get("MXCORE_CUDA_MATMUL_AUTOTUNE", "1") not in ("", "0")


@triton.jit
def _tile(pid, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """(pid_m, pid_n) of program ``pid`` in grouped order (GROUP_M row tiles share
    their column tiles while those are still in L2)."""
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(N, BLOCK_N)
    group = GROUP_M * num_n
    first_m = (pid // group) * GROUP_M
    size_m = min(num_m - first_m, GROUP_M)
    return first_m + (pid % group) % size_m, (pid % group) // size_m


@triton.jit
def _product_tile(A, B, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, rm, rn,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                  PRECISION: tl.constexpr, UPCAST: tl.constexpr):
    """The float32 (BLOCK_M, BLOCK_N) tile of A @ B at rows ``rm``, columns ``rn``."""
    rk = tl.arange(0, BLOCK_K)
    a_ptrs = A + rm[:, None].to(tl.int64) * stride_am + rk[None, :].to(tl.int64) * stride_ak
    b_ptrs = B + rk[:, None].to(tl.int64) * stride_bk + rn[None, :].to(tl.int64) * stride_bn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        k_left = K - k * BLOCK_K
        a = tl.load(a_ptrs, mask=(rm[:, None] < M) & (rk[None, :] < k_left), other=0.0)
        b = tl.load(b_ptrs, mask=(rk[:, None] < k_left) & (rn[None, :] < N), other=0.0)
        if UPCAST:  # the interpreter multiplies bfloat16 as raw bits: give it float32
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=PRECISION)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk
    return acc


@triton.jit
def _matmul_kernel(A, B, C, M, N, K, stride_am, stride_bk, stride_cm,
                   stride_ab, stride_bb, stride_cb,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                   GROUP_M: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr):
    batch = tl.program_id(1).to(tl.int64)
    A += batch * stride_ab
    B += batch * stride_bb
    C += batch * stride_cb
    pid_m, pid_n = _tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = _product_tile(A, B, M, N, K, stride_am, 1, stride_bk, 1, rm, rn,
                        BLOCK_M, BLOCK_N, BLOCK_K, PRECISION, UPCAST)
    c_ptrs = C + rm[:, None].to(tl.int64) * stride_cm + rn[None, :]
    tl.store(c_ptrs, acc.to(C.dtype.element_ty), mask=(rm[:, None] < M) & (rn[None, :] < N))


@triton.jit
def _identity(x):
    return x


@triton.jit
def _fc_kernel(X, W, Bias, Y, M, N, K, stride_xm, stride_wn, stride_ym,
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
               GROUP_M: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
               HAS_BIAS: tl.constexpr, ACT: tl.constexpr):
    """Y = ACT(X @ W.T + Bias): fully_connected with its epilogue in registers
    (W is (N, K) row-major, read as the (K, N) operand through its strides)."""
    pid_m, pid_n = _tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = _product_tile(X, W, M, N, K, stride_xm, 1, 1, stride_wn, rm, rn,
                        BLOCK_M, BLOCK_N, BLOCK_K, PRECISION, UPCAST)
    if HAS_BIAS:
        acc += tl.load(Bias + rn, mask=rn < N, other=0.0).to(tl.float32)[None, :]
    acc = ACT(acc)
    y_ptrs = Y + rm[:, None].to(tl.int64) * stride_ym + rn[None, :]
    tl.store(y_ptrs, acc.to(Y.dtype.element_ty), mask=(rm[:, None] < M) & (rn[None, :] < N))


@triton.jit
def _fc_grad_kernel(G, Y, B, C, SUM, M, N, K, stride_gm, stride_gk, stride_bk,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                    GROUP_M: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
                    DERIV: tl.constexpr, ROW_SUMS: tl.constexpr):
    """C (M, N) = D @ B, D = DERIV(G, Y) the output gradient through the activation,
    read as an (M, K) operand through strides (so D^T is a stride swap) and formed in
    registers; with ROW_SUMS the programs of the first column tile also store D's
    row sums (the bias gradient).  fully_connected_backward launches it for
    d data = D @ W and for d weight = D^T @ X with d bias."""
    pid_m, pid_n = _tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    d_offs = rm[:, None].to(tl.int64) * stride_gm + rk[None, :].to(tl.int64) * stride_gk
    b_ptrs = B + rk[:, None].to(tl.int64) * stride_bk + rn[None, :]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    sums = tl.zeros((BLOCK_M,), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        k_left = K - k * BLOCK_K
        d_mask = (rm[:, None] < M) & (rk[None, :] < k_left)
        g = tl.load(G + d_offs, mask=d_mask, other=0.0).to(tl.float32)
        y = tl.load(Y + d_offs, mask=d_mask, other=0.0).to(tl.float32)
        d = DERIV(g, y)
        if ROW_SUMS:
            sums += tl.sum(d, axis=1)
        b = tl.load(b_ptrs, mask=(rk[:, None] < k_left) & (rn[None, :] < N), other=0.0)
        if UPCAST:  # the interpreter multiplies bfloat16 as raw bits: give it float32
            b = b.to(tl.float32)
        else:
            d = d.to(B.dtype.element_ty)
        acc = tl.dot(d, b, acc, input_precision=PRECISION)
        d_offs += BLOCK_K * stride_gk
        b_ptrs += BLOCK_K * stride_bk
    c_ptrs = C + rm[:, None].to(tl.int64) * N + rn[None, :]
    tl.store(c_ptrs, acc.to(C.dtype.element_ty), mask=(rm[:, None] < M) & (rn[None, :] < N))
    if ROW_SUMS:
        if pid_n == 0:
            tl.store(SUM + rm, sums.to(SUM.dtype.element_ty), mask=rm < M)


def config(M, N, K, dtype):
    """The fixed heuristic: (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages)."""
    if INTERPRET:  # few, large programs: the interpreter's cost is per program
        def blk(d):
            return 64 if d >= 64 else (32 if d >= 32 else 16)
        return blk(M), blk(N), blk(K), 8, 4, 1
    if dtype.itemsize == 2:
        return 128, 256, 64, 8, 8, 3
    return 128, 128, 32, 8, 8, 3


def small_config(M, N, K, dtype):
    """Launch-bound products (an MLP's 64 x 784 x 256): small tiles, so that even a
    batch-sized M spreads over many SMs, and no autotuning (its benchmark would
    compile every candidate for microseconds of device time)."""
    if INTERPRET:
        return config(M, N, K, dtype)
    bm = 16 if M <= 64 else 32
    bn = 32 if N <= 128 else 64
    return bm, bn, 64 if dtype.itemsize == 2 else 32, 8, 2 if bm * bn <= 512 else 4, 2


def _launch(kernel, args, meta, M, N, K, dtype):
    """``kernel`` over an (M, N) output reduced over K: autotuned when the product is
    large, the small-tile configuration when it is launch-bound."""
    small = M * N * K <= FUSED_FP32_MAX_MACS
    if AUTOTUNE and not small:
        def grid(m):
            return (cdiv(M, m["BLOCK_M"]) * cdiv(N, m["BLOCK_N"]),)
        _tuned(kernel, dtype.itemsize)[grid](*args, **meta)
        return
    bm, bn, bk, gm, warps, stages = (small_config if small else config)(M, N, K, dtype)
    launch_kernel(kernel, (cdiv(M, bm) * cdiv(N, bn),), *args, BLOCK_M=bm, BLOCK_N=bn,
                  BLOCK_K=bk, GROUP_M=gm, num_warps=warps, num_stages=stages, **meta)


def _cfg(bm, bn, bk, warps, stages):
    return triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 8},
                         num_warps=warps, num_stages=stages)


#: autotuning candidates (GPU) per operand width in bytes
CONFIGS = {
    # Hopper: 128x256 / 256x128 tiles with four stages (192 KiB of shared memory)
    2: [_cfg(128, 256, 64, 8, 3), _cfg(256, 128, 64, 8, 3), _cfg(128, 256, 64, 8, 4),
        _cfg(256, 128, 64, 8, 4), _cfg(128, 128, 64, 4, 4),
        _cfg(128, 128, 32, 4, 4), _cfg(64, 256, 32, 4, 4), _cfg(128, 64, 64, 4, 4),
        _cfg(64, 128, 64, 4, 4), _cfg(64, 64, 64, 4, 4)],
    4: [_cfg(128, 128, 32, 8, 3), _cfg(128, 256, 32, 8, 3), _cfg(128, 64, 32, 4, 4),
        _cfg(64, 128, 32, 4, 4), _cfg(64, 64, 32, 4, 4), _cfg(128, 128, 16, 8, 4)],
}


def _cupy_bench(fn, quantiles=None, warmup=2, iters=10):
    """Median-free CUDA-event timing in ms (Triton's do_bench needs torch)."""
    import cupy
    for _ in range(warmup):
        fn()
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(iters):
        fn()
    stop.record()
    stop.synchronize()
    t = cupy.cuda.get_elapsed_time(start, stop) / iters
    return [t, t, t] if quantiles else t


_TUNED = {}


def _tuned(kernel, width: int):
    """``kernel`` autotuned for operands of ``width`` bytes (one config interpreted)."""
    key = (kernel, width)
    tuner = _TUNED.get(key)
    if tuner is None:
        if INTERPRET:
            configs = [_cfg(32, 32, 32, 4, 1)]
            tuner = triton.autotune(configs=configs, key=["M", "N", "K"])(kernel)
        else:
            tuner = triton.autotune(configs=CONFIGS[width], key=["M", "N", "K"],
                                    do_bench=_cupy_bench)(kernel)
        _TUNED[key] = tuner
    return tuner


def best_config(kernel, width: int) -> str:
    """The configuration the autotuner chose for ``kernel`` at operand ``width``
    (for reports; "" before its first tuned launch)."""
    tuner = _TUNED.get((kernel, width))
    return str(getattr(tuner, "best_config", "") or "")


def _precision(a):
    return "tf32" if (TF32 and a.dtype.itemsize == 4) else "ieee"


def _upcast(a) -> bool:
    """bfloat16 operands go to tl.dot as float32 in the interpreter only (exact
    products either way; GPUs multiply bfloat16 natively)."""
    return INTERPRET and a.dtype.name == "bfloat16"


def _strides(a, b, c):
    """Row strides and batch strides (0 for 2-D) of contiguous a, b, c."""
    if a.ndim == 3:
        return (a.shape[2], b.shape[2], c.shape[2], a.shape[1] * a.shape[2],
                b.shape[1] * b.shape[2], c.shape[1] * c.shape[2])
    return a.shape[1], b.shape[1], c.shape[1], 0, 0, 0


def launch(a, b, c, cfg=None):
    """C = A @ B with an explicit configuration (or the fixed heuristic): the
    benchmark's entry point, and the path when autotuning is off."""
    M, K = a.shape[-2:]
    N = b.shape[-1]
    batch = a.shape[0] if a.ndim == 3 else 1
    bm, bn, bk, gm, warps, stages = cfg or config(M, N, K, a.dtype)
    grid = (cdiv(M, bm) * cdiv(N, bn), batch)
    launch_kernel(_matmul_kernel, grid, arg(a), arg(b), arg(c), M, N, K, *_strides(a, b, c),
                  BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=gm, PRECISION=_precision(a),
                  UPCAST=_upcast(a), num_warps=warps, num_stages=stages)


def launch_tuned(a, b, c):
    M, K = a.shape[-2:]
    N = b.shape[-1]
    batch = a.shape[0] if a.ndim == 3 else 1

    def grid(meta):
        return (cdiv(M, meta["BLOCK_M"]) * cdiv(N, meta["BLOCK_N"]), batch)
    _tuned(_matmul_kernel, a.dtype.itemsize)[grid](
        arg(a), arg(b), arg(c), M, N, K, *_strides(a, b, c),
        PRECISION=_precision(a), UPCAST=_upcast(a))


def _product(a, b):
    a, b = contiguous(a), contiguous(b)
    c = xp_of(a).empty(a.shape[:-1] + b.shape[-1:], dtype=a.dtype)
    if AUTOTUNE:
        launch_tuned(a, b, c)
    else:
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


def batch_dot(a, b, transpose_a, transpose_b):
    c = _product(a, b)  # 3-D, no transposes (the guard)
    count("matmul.batch_dot")
    return c


#: fully_connected's act_type -> the elementwise formula its epilogue applies
ACTIVATIONS = {None: _identity, **{name: UNARY[name] for name in
                                   ("relu", "sigmoid", "tanh", "softrelu", "softsign")}}


def fully_connected(x, w, *bias, flatten, no_bias, act_type):
    """act(x @ w.T + bias) in one launch: the bias and the activation are applied
    to the float32 tile before it is stored (the CuPy path takes three)."""
    N, K = w.shape
    x2 = contiguous(x.reshape(x.shape[0], -1) if flatten else x.reshape(-1, K))
    w = contiguous(w)
    M = x2.shape[0]
    y = xp_of(x2).empty((M, N), dtype=x2.dtype)
    b = contiguous(bias[0]) if bias else y  # no bias: any pointer (never read)
    meta = dict(PRECISION=_precision(x2), UPCAST=_upcast(x2), HAS_BIAS=bool(bias),
                ACT=ACTIVATIONS[act_type])
    args = (arg(x2), arg(w), arg(b), arg(y), M, N, K, K, K, N)
    _launch(_fc_kernel, args, meta, M, N, K, x2.dtype)
    count("matmul.fully_connected")
    return y if flatten else y.reshape(x.shape[:-1] + (N,))


@triton.jit
def _d_identity(g, y):
    return g


@triton.jit
def _d_relu(g, y):
    return tl.where(y > 0, g, 0.0)


@triton.jit
def _d_sigmoid(g, y):
    return g * y * (1.0 - y)


@triton.jit
def _d_tanh(g, y):
    return g * (1.0 - y * y)


@triton.jit
def _d_softrelu(g, y):
    # sigmoid(x) = 1 - exp(-y), y = softrelu(x): -expm1(-y), by its series where small
    return g * tl.where(y < 1e-4, y - 0.5 * y * y, 1.0 - tl.exp(-y))


@triton.jit
def _d_softsign(g, y):
    s = 1.0 - tl.abs(y)
    return g * s * s


#: act_type -> the derivative, from the activation's output y, that backward applies
DERIVATIVES = {None: _d_identity, "relu": _d_relu, "sigmoid": _d_sigmoid, "tanh": _d_tanh,
               "softrelu": _d_softrelu, "softsign": _d_softsign}


def _grad_product(g2, y2, b, c, sums, M, N, K, stride_gm, stride_gk, act_type):
    """c (M, N) = DERIV(g2, y2) (an (M, K) operand through strides) @ b (K, N)."""
    meta = dict(PRECISION=_precision(b), UPCAST=_upcast(b), DERIV=DERIVATIVES[act_type],
                ROW_SUMS=sums is not None)
    args = (arg(g2), arg(y2), arg(b), arg(c), arg(c if sums is None else sums), M, N, K,
            stride_gm, stride_gk, N)
    _launch(_fc_grad_kernel, args, meta, M, N, K, b.dtype)


def fully_connected_backward(g, x, w, y, flatten, no_bias, act_type, grads):
    """The wanted gradients of fully_connected in at most two launches, the
    activation's derivative formed in registers: d data = D @ W, then d weight =
    D^T @ X with d bias = D's column sums, D = out_grad through the activation
    (CuPy takes up to six: derivative, two products, a reduction)."""
    N, K = w.shape
    xp = xp_of(w)
    g2, y2, w = contiguous(g.reshape(-1, N)), contiguous(y.reshape(-1, N)), contiguous(w)
    M = g2.shape[0]
    out = []
    if grads[0]:
        gx = xp.empty((M, K), dtype=w.dtype)
        _grad_product(g2, y2, w, gx, None, M, K, N, N, 1, act_type)
        out.append(gx.reshape(x.shape))
    if grads[1] or grads[2]:
        x2 = contiguous(x.reshape(-1, K))
        gw = xp.empty((N, K), dtype=w.dtype)
        gb = xp.empty((N,), dtype=w.dtype) if grads[2] else None
        _grad_product(g2, y2, x2, gw, gb, N, K, M, 1, N, act_type)
        out += [v for v, wanted in ((gw, grads[1]), (gb, grads[2])) if wanted]
    count("matmul.fully_connected_backward")
    return tuple(out)


matmul.__qualname__ = "triton_matmul"
dot.__qualname__ = "triton_dot"
batch_dot.__qualname__ = "triton_batch_dot"
fully_connected.__qualname__ = "triton_fully_connected"
fully_connected_backward.__qualname__ = "triton_fully_connected_backward"
