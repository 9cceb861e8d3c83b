"""Flash-attention Triton kernels for ``scaled_dot_product_attention`` on ``cuda``.

Forward (one program per query block and (batch, head)): the scores of one key block at
a time, an online softmax (running row max and sum, the accumulator rescaled when the
max grows), so no (Lq, Lk) matrix is ever formed; it writes the output and the rows'
logsumexp, which the backward reads instead of the probabilities.

Backward, FlashAttention-2 style and free of atomics, in two launches:

* per query block: a first pass over the key blocks forms ``delta_i = sum_j p_ij dp_ij``
  (``dp = dO @ V^T``; the softmax backward's row term, stored for the second launch), a
  second forms ``dQ = scale * dS @ K`` with ``dS = P * (dP - delta)``;
* per key block: one pass over the query blocks forms ``dV = P^T @ dO`` and
  ``dK = scale * dS^T @ Q``.

Probabilities are recomputed as ``exp(s - lse)``.  float16 and bfloat16 compute in
float32 (scores, softmax, every accumulator) and round once, on store; float32 products
are IEEE (as numpy's and the array-module kernel's).  Head dims up to MAX_HEAD_DIM, any
(they are padded to a power of two with masked loads); any sequence lengths (loads and
scores masked at block edges); masks bool (True: attend) or additive, broadcast through
zero strides.  A row that may attend to no key gets zeros and logsumexp -inf, and passes
zero gradients, as the array-module kernel.  Dropout is not done here (the dropout ops
keep the array-module kernel).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

# mxcore_cuda first: it sets TRITON_INTERPRET (interpreted mode), which Triton reads when
# it is imported and when ``@triton.jit`` runs
from mxcore_cuda import INTERPRET

import triton
import triton.language as tl
from triton.runtime.errors import OutOfResources

from mxcore_cuda.triton._launch import cdiv, launch
from mxcore_cuda.triton._runtime import (arg, contiguous, count, next_pow2, numel, size_ok,
                                         xp_of)

#: head dims (query/key's and value's) the kernels take: one padded block of features
MAX_HEAD_DIM = 128

#: the mask argument: none, boolean (True: attend) or additive (added to the scores)
NO_MASK, BOOL_MASK, ADDITIVE_MASK = 0, 1, 2

_NEG_INF = float("-inf")


# guards ----------------------------------------------------------------------------------
# (they see valid calls only: the ops' shape rules have run)

def _fits(q: Sequence[int], k: Sequence[int], v: Sequence[int]) -> bool:
    if not (0 < q[3] <= MAX_HEAD_DIM and 0 < v[3] <= MAX_HEAD_DIM):
        return False
    if numel(q) == 0:  # nothing to launch; the array-module kernel returns the empties
        return False
    # offsets inside one (batch, head) slice are 32-bit
    if max(q[2] * q[3], k[2] * k[3], v[2] * v[3], q[2] * v[3]) >= 2**31:
        return False
    return size_ok((numel(q) + numel(k) + numel(v),))


def forward_applies(shapes, dtypes, attrs) -> bool:
    """scaled_dot_product_attention[_masked] (query, key, value[, mask]): head dims 1 to
    128, a non-empty query; interpreted, at most MXCORE_CUDA_INTERPRET_MAX elements of
    query, key and value together."""
    return _fits(*(tuple(s) for s in shapes[:3]))


def backward_applies(shapes, dtypes, attrs) -> bool:
    """The backward (out_grad, query, key, value, lse[, mask]): as the forward."""
    return _fits(*(tuple(s) for s in shapes[1:4]))


# the kernels -----------------------------------------------------------------------------

@triton.jit
def _load_tile(ptr, rows, cols, nrows, ncols, row_stride, UPCAST: tl.constexpr):
    """The (len(rows), len(cols)) tile of a row-major (nrows, ncols) matrix, zeros past
    its edges (float32 when UPCAST)."""
    x = tl.load(ptr + rows[:, None] * row_stride + cols[None, :],
                mask=(rows[:, None] < nrows) & (cols[None, :] < ncols), other=0.0)
    if UPCAST:
        x = x.to(tl.float32)
    return x


@triton.jit
def _scores(qk, offs_m, offs_n, Lq, Lk, scale, Mk, stride_mq, stride_mk,
            MASK: tl.constexpr, CAUSAL: tl.constexpr):
    """``scale * q @ k^T`` (``qk``, float32) of query rows ``offs_m`` and key columns
    ``offs_n``, plus the additive mask, -inf where a query may not attend (and past
    the sequences' ends)."""
    s = qk * scale
    allowed = (offs_m[:, None] < Lq) & (offs_n[None, :] < Lk)
    if MASK != 0:
        m = tl.load(Mk + offs_m[:, None].to(tl.int64) * stride_mq
                    + offs_n[None, :].to(tl.int64) * stride_mk, mask=allowed, other=0)
        if MASK == 1:
            allowed = allowed & (m != 0)
        else:
            s = s + m.to(tl.float32)
    if CAUSAL:  # top-left aligned: query i attends to keys j <= i
        allowed = allowed & (offs_n[None, :] <= offs_m[:, None])
    return tl.where(allowed, s, float("-inf"))


@triton.jit
def _forward_kernel(Q, K, V, Mk, O, LSE, H, Lq, Lk, D, Dv, scale,
                    stride_mb, stride_mh, stride_mq, stride_mk,
                    MASK: tl.constexpr, CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                    BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    Q += bh * Lq * D
    K += bh * Lk * D
    V += bh * Lk * Dv
    O += bh * Lq * Dv
    LSE += bh * Lq
    Mk += (bh // H) * stride_mb + (bh % H) * stride_mh
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_e = tl.arange(0, BLOCK_DV)
    q = _load_tile(Q, offs_m, offs_d, Lq, D, D, UPCAST)

    m_i = tl.full((BLOCK_M,), float("-inf"), tl.float32)   # running row max
    l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)                  # running sum of exp(s - m_i)
    acc = tl.zeros((BLOCK_M, BLOCK_DV), dtype=tl.float32)
    hi = Lk
    if CAUSAL:  # key blocks past this query block's last row are all masked
        hi = tl.minimum(Lk, (pid_m + 1) * BLOCK_M)
    for start_n in range(0, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        # k^T loaded as (features, keys): no transpose in registers
        kt = tl.load(K + offs_n[None, :] * D + offs_d[:, None],
                     mask=(offs_n[None, :] < Lk) & (offs_d[:, None] < D), other=0.0)
        if UPCAST:
            kt = kt.to(tl.float32)
        s = _scores(tl.dot(q, kt, input_precision="ieee"), offs_m, offs_n, Lq, Lk, scale,
                    Mk, stride_mq, stride_mk, MASK, CAUSAL)
        m_new = tl.maximum(m_i, tl.max(s, 1))
        # rows masked so far keep max -inf: shift by 0 so that no -inf - -inf appears
        shift = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp(m_i - shift)
        p = tl.exp(s - shift[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = _load_tile(V, offs_n, offs_e, Lk, Dv, Dv, True)
        acc = tl.dot(p, v, acc * alpha[:, None], input_precision="ieee")
        m_i = m_new

    empty = l_i == 0.0  # a row that may attend to no key: zeros, logsumexp -inf
    total = tl.where(empty, 1.0, l_i)
    out = acc / total[:, None]
    lse = tl.where(empty, float("-inf"), m_i + tl.log(total))
    tl.store(O + offs_m[:, None] * Dv + offs_e[None, :], out.to(O.dtype.element_ty),
             mask=(offs_m[:, None] < Lq) & (offs_e[None, :] < Dv))
    tl.store(LSE + offs_m, lse, mask=offs_m < Lq)


@triton.jit
def _probabilities(q, K, offs_m, offs_n, offs_d, lse, Lq, Lk, D, scale, Mk, stride_mq,
                   stride_mk, MASK: tl.constexpr, CAUSAL: tl.constexpr,
                   UPCAST: tl.constexpr):
    """exp(s - lse) of a (query block, key block) tile: 0 where masked and in rows
    that attend to nothing (lse -inf, taken as +inf here)."""
    kt = tl.load(K + offs_n[None, :] * D + offs_d[:, None],
                 mask=(offs_n[None, :] < Lk) & (offs_d[:, None] < D), other=0.0)
    if UPCAST:
        kt = kt.to(tl.float32)
    s = _scores(tl.dot(q, kt, input_precision="ieee"), offs_m, offs_n, Lq, Lk, scale, Mk,
                stride_mq, stride_mk, MASK, CAUSAL)
    return tl.exp(s - lse[:, None])


@triton.jit
def _backward_dq_kernel(Q, K, V, DO, LSE, Mk, DQ, DELTA, H, Lq, Lk, D, Dv, scale,
                        stride_mb, stride_mh, stride_mq, stride_mk,
                        MASK: tl.constexpr, CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                        BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    Q += bh * Lq * D
    K += bh * Lk * D
    V += bh * Lk * Dv
    DO += bh * Lq * Dv
    DQ += bh * Lq * D
    LSE += bh * Lq
    DELTA += bh * Lq
    Mk += (bh // H) * stride_mb + (bh % H) * stride_mh
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_e = tl.arange(0, BLOCK_DV)
    q = _load_tile(Q, offs_m, offs_d, Lq, D, D, UPCAST)
    do = _load_tile(DO, offs_m, offs_e, Lq, Dv, Dv, True)
    lse = tl.load(LSE + offs_m, mask=offs_m < Lq, other=float("inf"))
    lse = tl.where(lse == float("-inf"), float("inf"), lse)
    hi = Lk
    if CAUSAL:
        hi = tl.minimum(Lk, (pid_m + 1) * BLOCK_M)

    # delta_i = sum_j p_ij * dp_ij, the softmax backward's row term
    delta = tl.zeros((BLOCK_M,), dtype=tl.float32)
    for start_n in range(0, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        p = _probabilities(q, K, offs_m, offs_n, offs_d, lse, Lq, Lk, D, scale, Mk,
                           stride_mq, stride_mk, MASK, CAUSAL, UPCAST)
        vt = tl.load(V + offs_n[None, :] * Dv + offs_e[:, None],
                     mask=(offs_n[None, :] < Lk) & (offs_e[:, None] < Dv), other=0.0)
        dp = tl.dot(do, vt.to(tl.float32), input_precision="ieee")
        delta += tl.sum(p * dp, 1)
    tl.store(DELTA + offs_m, delta, mask=offs_m < Lq)

    dq = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    for start_n in range(0, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        p = _probabilities(q, K, offs_m, offs_n, offs_d, lse, Lq, Lk, D, scale, Mk,
                           stride_mq, stride_mk, MASK, CAUSAL, UPCAST)
        vt = tl.load(V + offs_n[None, :] * Dv + offs_e[:, None],
                     mask=(offs_n[None, :] < Lk) & (offs_e[:, None] < Dv), other=0.0)
        dp = tl.dot(do, vt.to(tl.float32), input_precision="ieee")
        ds = p * (dp - delta[:, None])
        k = _load_tile(K, offs_n, offs_d, Lk, D, D, True)
        dq = tl.dot(ds, k, dq, input_precision="ieee")
    dq = dq * scale
    tl.store(DQ + offs_m[:, None] * D + offs_d[None, :], dq.to(DQ.dtype.element_ty),
             mask=(offs_m[:, None] < Lq) & (offs_d[None, :] < D))


@triton.jit
def _backward_dkdv_kernel(Q, K, V, DO, LSE, Mk, DELTA, DK, DV, H, Lq, Lk, D, Dv, scale,
                          stride_mb, stride_mh, stride_mq, stride_mk,
                          MASK: tl.constexpr, CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                          BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr):
    pid_n = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    Q += bh * Lq * D
    K += bh * Lk * D
    V += bh * Lk * Dv
    DO += bh * Lq * Dv
    LSE += bh * Lq
    DELTA += bh * Lq
    DK += bh * Lk * D
    DV += bh * Lk * Dv
    Mk += (bh // H) * stride_mb + (bh % H) * stride_mh
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    offs_e = tl.arange(0, BLOCK_DV)
    vt = tl.load(V + offs_n[None, :] * Dv + offs_e[:, None],
                 mask=(offs_n[None, :] < Lk) & (offs_e[:, None] < Dv), other=0.0)
    vt = vt.to(tl.float32)

    dk = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
    dv = tl.zeros((BLOCK_N, BLOCK_DV), dtype=tl.float32)
    lo = 0
    if CAUSAL:  # query blocks before this key block's first column are all masked
        lo = (pid_n * BLOCK_N // BLOCK_M) * BLOCK_M
    for start_m in range(lo, Lq, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        q = _load_tile(Q, offs_m, offs_d, Lq, D, D, UPCAST)
        do = _load_tile(DO, offs_m, offs_e, Lq, Dv, Dv, True)
        lse = tl.load(LSE + offs_m, mask=offs_m < Lq, other=float("inf"))
        lse = tl.where(lse == float("-inf"), float("inf"), lse)
        delta = tl.load(DELTA + offs_m, mask=offs_m < Lq, other=0.0)
        p = _probabilities(q, K, offs_m, offs_n, offs_d, lse, Lq, Lk, D, scale, Mk,
                           stride_mq, stride_mk, MASK, CAUSAL, UPCAST)
        dv = tl.dot(tl.trans(p), do, dv, input_precision="ieee")
        dp = tl.dot(do, vt, input_precision="ieee")
        ds = p * (dp - delta[:, None])
        dk = tl.dot(tl.trans(ds), q.to(tl.float32), dk, input_precision="ieee")
    dk = dk * scale
    tl.store(DK + offs_n[:, None] * D + offs_d[None, :], dk.to(DK.dtype.element_ty),
             mask=(offs_n[:, None] < Lk) & (offs_d[None, :] < D))
    tl.store(DV + offs_n[:, None] * Dv + offs_e[None, :], dv.to(DV.dtype.element_ty),
             mask=(offs_n[:, None] < Lk) & (offs_e[None, :] < Dv))


# launchers -------------------------------------------------------------------------------

def _config(d: int, dv: int) -> Tuple[int, int, int, int]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages).  Interpreted: 32-row blocks (few
    programs, and sequences past 32 already cross block edges).  GPU: 64 x 64 tiles,
    64 x 32 for head dims past 64 (register pressure of the float32 tiles)."""
    if INTERPRET:
        return 32, 32, 4, 1
    return (64, 64, 4, 2) if max(d, dv) <= 64 else (64, 32, 4, 2)


def _upcast(a) -> bool:
    """16-bit q and k go to tl.dot natively on a GPU (exact products, float32 sums);
    the interpreter gets float32 (it multiplies bfloat16 as raw bits)."""
    return INTERPRET or a.dtype.itemsize == 4


def _mask_args(mask, query) -> Tuple[object, int, Tuple[int, int, int, int]]:
    """(the mask as a kernel argument, its kind, its element strides over (batch, head,
    query, key)), 0 across broadcast axes; no mask: any pointer, never read."""
    if mask is None:
        return arg(query), NO_MASK, (0, 0, 0, 0)
    m = contiguous(mask.reshape((1,) * (4 - mask.ndim) + tuple(mask.shape)))
    kind = BOOL_MASK if m.dtype.kind == "b" else ADDITIVE_MASK
    if kind == BOOL_MASK:
        m = m.view(xp_of(m).uint8)  # a byte each; nonzero: attend
    strides = tuple(0 if n == 1 else s // m.itemsize for n, s in zip(m.shape, m.strides))
    return arg(m), kind, strides


def _scale(scale: Optional[float], d: int) -> float:
    return 1.0 / math.sqrt(d) if scale is None else float(scale)


#: (masked, backward, dtype, head dims) a GPU could not launch (OutOfResources: the tiles
#: need more shared memory than the GPU has, as float32 backward tiles on GPUs before
#: sm_80): such calls run the array-module kernel, with one warning per entry
_DECLINED: set = set()


def _declined(masked: bool, backward: bool, q, v) -> tuple:
    return (masked, backward, str(q.dtype), q.shape[-1], v.shape[-1])


def _fallback(masked: bool, backward: bool, q, v, exc: Optional[OutOfResources]):
    """The array-module kernel (CuPy on a GPU) for a call the GPU cannot launch."""
    from mxcore_contrib_ops import attention
    op = attention._name(masked, False, backward)
    key = _declined(masked, backward, q, v)
    if key not in _DECLINED:
        _DECLINED.add(key)
        import warnings
        warnings.warn(f"{op}: the flash-attention Triton kernel does not fit this GPU "
                      f"({exc}) for dtype {q.dtype}, head dims {q.shape[-1]}/"
                      f"{v.shape[-1]}; these calls use the array-module kernel",
                      RuntimeWarning, stacklevel=3)
    count("attention.fallback")
    return attention._table(xp_of(q))[op][0]


def forward(query, key, value, *mask, causal: bool, scale: Optional[float]):
    """(out, logsumexp) of scaled_dot_product_attention[_masked]; a call the GPU cannot
    launch (OutOfResources, raised before anything runs) runs the array-module kernel."""
    try:
        if not _DECLINED or _declined(bool(mask), False, query, value) not in _DECLINED:
            return _forward(query, key, value, *mask, causal=causal, scale=scale)
        exc = None  # declined before: straight to the array-module kernel
    except OutOfResources as failed:
        exc = failed
    return _fallback(bool(mask), False, query, value, exc)(
        query, key, value, *mask, causal=causal, scale=scale)


def backward(out_grad, query, key, value, lse, *mask, causal: bool,
             scale: Optional[float]):
    """(d query, d key, d value) of scaled_dot_product_attention[_masked]; as
    ``forward``, a call the GPU cannot launch runs the array-module kernel (all three
    gradients anew, whichever of the two launches failed)."""
    try:
        if not _DECLINED or _declined(bool(mask), True, query, value) not in _DECLINED:
            return _backward(out_grad, query, key, value, lse, *mask, causal=causal,
                             scale=scale)
        exc = None
    except OutOfResources as failed:
        exc = failed
    return _fallback(bool(mask), True, query, value, exc)(
        out_grad, query, key, value, lse, *mask, causal=causal, scale=scale)


def _forward(query, key, value, *mask, causal: bool, scale: Optional[float]):
    """(out, logsumexp) of scaled_dot_product_attention[_masked]."""
    q, k, v = contiguous(query), contiguous(key), contiguous(value)
    B, H, Lq, D = q.shape
    Lk, Dv = k.shape[2], v.shape[3]
    xp = xp_of(q)
    out = xp.empty((B, H, Lq, Dv), dtype=q.dtype)
    lse = xp.empty((B, H, Lq), dtype=xp.float32)
    m, kind, ms = _mask_args(mask[0] if mask else None, q)
    bm, bn, warps, stages = _config(D, Dv)
    launch(_forward_kernel, (cdiv(Lq, bm), B * H), arg(q), arg(k), arg(v), m, arg(out),
           arg(lse), H, Lq, Lk, D, Dv, _scale(scale, D), *ms, MASK=kind, CAUSAL=bool(causal),
           UPCAST=_upcast(q), BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=max(16, next_pow2(D)),
           BLOCK_DV=max(16, next_pow2(Dv)), num_warps=warps, num_stages=stages)
    count("attention.forward")
    return out, lse


def _backward(out_grad, query, key, value, lse, *mask, causal: bool,
              scale: Optional[float]):
    """(d query, d key, d value) of scaled_dot_product_attention[_masked]."""
    g, q, k, v = (contiguous(a) for a in (out_grad, query, key, value))
    lse = contiguous(lse)
    B, H, Lq, D = q.shape
    Lk, Dv = k.shape[2], v.shape[3]
    xp = xp_of(q)
    dq, dk, dv = xp.empty_like(q), xp.empty_like(k), xp.empty_like(v)
    delta = xp.empty((B, H, Lq), dtype=xp.float32)
    m, kind, ms = _mask_args(mask[0] if mask else None, q)
    bm, bn, warps, stages = _config(D, Dv)
    common = dict(MASK=kind, CAUSAL=bool(causal), UPCAST=_upcast(q), BLOCK_M=bm,
                  BLOCK_N=bn, BLOCK_D=max(16, next_pow2(D)),
                  BLOCK_DV=max(16, next_pow2(Dv)), num_warps=warps, num_stages=stages)
    s = _scale(scale, D)
    # the dq launch writes delta, which the dk/dv launch reads (same stream: ordered)
    launch(_backward_dq_kernel, (cdiv(Lq, bm), B * H), arg(q), arg(k), arg(v), arg(g),
           arg(lse), m, arg(dq), arg(delta), H, Lq, Lk, D, Dv, s, *ms, **common)
    launch(_backward_dkdv_kernel, (cdiv(Lk, bn), B * H), arg(q), arg(k), arg(v), arg(g),
           arg(lse), m, arg(delta), arg(dk), arg(dv), H, Lq, Lk, D, Dv, s, *ms, **common)
    count("attention.backward")
    return dq, dk, dv
