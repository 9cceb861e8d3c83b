"""2-D convolution and pooling (NCHW) as Triton kernels.

Convolution is an *implicit GEMM*: no im2col matrix is ever written.  A program
computes a BLOCK_M x BLOCK_N tile of the output, BLOCK_M output positions
(flattened over N * OH * OW) by BLOCK_N filters of one group (the group is the
grid's second dimension), and walks K = Cg * KH * KW in BLOCK_K steps: it works
out where each (position, k) element of the im2col matrix lies in the input (or
that it lies in the padding), loads that tile, loads the matching (BLOCK_K,
BLOCK_N) tile of the weight rows and accumulates their ``tl.dot`` in float32.
Bias is added to the float32 tile before the one rounding store.  Kernel
sizes, strides and dilations are constexprs, so the divisions that split k into
(c, kh, kw) are by constants.

``convolution_backward`` runs two more implicit GEMMs:

* d data (N*H*W input positions x Cg channels, over Fg * KH * KW): the output
  gradient read through the windows that cover each input position (an offset kh
  reaches output row (ih + pad - kh * dilate) / stride when that divides
  exactly and is in range) times the weights, i.e. a correlation with the
  flipped kernel;
* d weight (Fg filters x Cg * KH * KW, over N * OH * OW): the output gradient
  times the im2col tile of the input.  Its reduction is long and its output
  small, so when the output tiles alone would leave the GPU idle the positions
  are split in chunks (grid's third dimension) with float32 partials summed
  afterwards; the programs of the first column of tiles also sum the output
  gradient's rows: the bias gradient, in the same pass.

Pooling (max, avg, sum) walks each window per output element; avg divides by
the window clipped to the padded input (``count_include_pad``) or to the input
(MXNet's rule), with IEEE division.  Its gradient is gathered per input element
(every input written once, no atomics): avg/sum add the output gradient of each
window that covers the element, max first records per window the offset of its
first maximum (the first element equal to the forward output, MXNet's and the
CPU kernel's tie rule) and then adds the gradient of the windows whose
recorded offset is the element.

float16/bfloat16/float32 in, float32 accumulation, one rounding on store.
"""
from __future__ import annotations

import builtins
from typing import Tuple

import triton
import triton.language as tl

from mxcore_cuda import INTERPRET
from mxcore_cuda.triton._launch import cdiv, launch
from mxcore_cuda.triton._runtime import (arg, contiguous, count, elementwise_block,
                                         next_pow2, xp_of)
from mxcore_cuda.triton.matmul import _precision, _tile, _upcast

#: weight gradient: fewer output-tile programs than this (and a long reduction) split
#: the reduction over positions in chunks
FEW_PROGRAMS = 4 if INTERPRET else 256
#: weight gradient: a chunk is at least this many BLOCK_K steps
MIN_STEPS = 1 if INTERPRET else 8
#: pooling modes
MAX, AVG, SUM = (tl.constexpr(i) for i in range(3))
POOL_MODES = {"max": MAX, "avg": AVG, "sum": SUM}


# shared pieces ---------------------------------------------------------------------------
@triton.jit
def _im2col_tile(X, x_base, ih0, iw0, row_ok, rk, K, H, Wd,
                 KH: tl.constexpr, KW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr):
    """The (rows, BLOCK_K) tile of the im2col matrix at columns ``rk``: each row an
    output position (its sample's and group's input at ``x_base``, its window's
    top-left corner at ``ih0``, ``iw0``), each column k = (c, kh, kw).  Elements in
    the padding (or past the matrix) are 0."""
    c = rk // (KH * KW)
    t = rk % (KH * KW)
    ih = ih0[:, None] + (t // KW * DH)[None, :]
    iw = iw0[:, None] + (t % KW * DW)[None, :]
    ok = row_ok[:, None] & (rk < K)[None, :] & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < Wd)
    return tl.load(X + x_base[:, None] + (c * H * Wd)[None, :] + ih * Wd + iw, mask=ok,
                   other=0.0)


@triton.jit
def _dot(a, b, acc, PRECISION: tl.constexpr, UPCAST: tl.constexpr):
    if UPCAST:  # the interpreter multiplies bfloat16 as raw bits: give it float32
        a = a.to(tl.float32)
        b = b.to(tl.float32)
    return tl.dot(a, b, acc, input_precision=PRECISION)


# convolution -----------------------------------------------------------------------------
@triton.jit
def _conv_kernel(X, Wt, Bias, Y, C, H, Wd, OH, OW, F, Fg, M, K, PH, PW,
                 KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr,
                 DH: tl.constexpr, DW: tl.constexpr, BLOCK_M: tl.constexpr,
                 BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
                 PRECISION: tl.constexpr, UPCAST: tl.constexpr, HAS_BIAS: tl.constexpr):
    """Y (N, F, OH, OW) = X (N, C, H, W) correlated with Wt (F, Cg, KH, KW) (+ Bias):
    rows are output positions, columns the filters of group ``program_id(1)``."""
    grp = tl.program_id(1)
    pid_m, pid_n = _tile(tl.program_id(0), M, Fg, BLOCK_M, BLOCK_N, GROUP_M)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rm < M
    col_ok = rn < Fg
    ohw = OH * OW
    n = rm // ohw
    r = rm % ohw
    ih0 = r // OW * SH - PH
    iw0 = r % OW * SW - PW
    x_base = (n * C + grp * (K // (KH * KW))) * (H * Wd)
    f = grp * Fg + rn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        a = _im2col_tile(X, x_base, ih0, iw0, row_ok, rk, K, H, Wd, KH, KW, DH, DW)
        b = tl.load(Wt + f[None, :] * K + rk[:, None],
                    mask=(rk < K)[:, None] & col_ok[None, :], other=0.0)
        acc = _dot(a, b, acc, PRECISION, UPCAST)
    if HAS_BIAS:
        acc += tl.load(Bias + f, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    y = Y + (n * F * ohw + r)[:, None] + (f * ohw)[None, :]
    tl.store(y, acc.to(Y.dtype.element_ty), mask=row_ok[:, None] & col_ok[None, :])


@triton.jit
def _conv_data_grad_kernel(G, Wt, DX, C, H, Wd, OH, OW, F, Cg, M, K, PH, PW,
                           KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr,
                           SW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
                           BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                           BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
                           PRECISION: tl.constexpr, UPCAST: tl.constexpr):
    """DX (N, C, H, W) from G (N, F, OH, OW): rows are input positions, columns the
    channels of group ``program_id(1)``, k = (f, kh, kw) over the group's filters."""
    grp = tl.program_id(1)
    pid_m, pid_n = _tile(tl.program_id(0), M, Cg, BLOCK_M, BLOCK_N, GROUP_M)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rm < M
    col_ok = rn < Cg
    hw = H * Wd
    ohw = OH * OW
    n = rm // hw
    r = rm % hw
    ih = r // Wd + PH
    iw = r % Wd + PW
    khw = KH * KW
    fg = K // khw
    g_base = (n * F + grp * fg) * ohw
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        f = rk // khw
        t = rk % khw
        th = ih[:, None] - (t // KW * DH)[None, :]  # output row * stride, if it divides
        tw = iw[:, None] - (t % KW * DW)[None, :]
        oh = th // SH
        ow = tw // SW
        ok = row_ok[:, None] & (rk < K)[None, :] & (th >= 0) & (tw >= 0) & (oh < OH) & \
            (ow < OW)
        if SH > 1:
            ok = ok & (th % SH == 0)
        if SW > 1:
            ok = ok & (tw % SW == 0)
        a = tl.load(G + g_base[:, None] + (f * ohw)[None, :] + oh * OW + ow, mask=ok,
                    other=0.0)
        b = tl.load(Wt + ((grp * fg + f) * (Cg * khw) + t)[:, None] + (rn * khw)[None, :],
                    mask=(rk < K)[:, None] & col_ok[None, :], other=0.0)
        acc = _dot(a, b, acc, PRECISION, UPCAST)
    dx = DX + (n * C * hw + r)[:, None] + ((grp * Cg + rn) * hw)[None, :]
    tl.store(dx, acc.to(DX.dtype.element_ty), mask=row_ok[:, None] & col_ok[None, :])


@triton.jit
def _conv_weight_grad_kernel(G, X, DWt, DB, C, H, Wd, OH, OW, F, Fg, P, K, chunk, PH, PW,
                             KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr,
                             SW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
                             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                             BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
                             PRECISION: tl.constexpr, UPCAST: tl.constexpr,
                             SUMS: tl.constexpr):
    """DWt (F, K) (or chunk ``program_id(2)``'s float32 partial of it) = G's rows
    times the im2col matrix of X over ``chunk`` output positions; with SUMS the
    programs of the first column tile also store G's row sums in DB (d bias)."""
    grp = tl.program_id(1)
    s = tl.program_id(2)
    pid_m, pid_n = _tile(tl.program_id(0), Fg, K, BLOCK_M, BLOCK_N, GROUP_M)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rm < Fg
    col_ok = rn < K
    ohw = OH * OW
    cg = K // (KH * KW)
    f = grp * Fg + rm
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    sums = tl.zeros((BLOCK_M,), dtype=tl.float32)
    start = s * chunk
    for p0 in range(0, chunk, BLOCK_K):
        rp = start + p0 + tl.arange(0, BLOCK_K)
        p_ok = rp < P
        n = rp // ohw
        r = rp % ohw
        a = tl.load(G + (f * ohw)[:, None] + (n * F * ohw + r)[None, :],
                    mask=row_ok[:, None] & p_ok[None, :], other=0.0)
        x_base = (n * C + grp * cg) * (H * Wd)
        b = _im2col_tile(X, x_base, r // OW * SH - PH, r % OW * SW - PW, p_ok, rn, K, H, Wd,
                         KH, KW, DH, DW)
        if SUMS:
            sums += tl.sum(a.to(tl.float32), axis=1)
        acc = _dot(a, b, acc, PRECISION, UPCAST)
    dw = DWt + s * F * K + f[:, None] * K + rn[None, :]
    tl.store(dw, acc.to(DWt.dtype.element_ty), mask=row_ok[:, None] & col_ok[None, :])
    if SUMS:
        if pid_n == 0:
            tl.store(DB + s * F + f, sums.to(DB.dtype.element_ty), mask=row_ok)


# pooling ---------------------------------------------------------------------------------
@triton.jit
def _window_count(h0, w0, H, Wd, KH, KW, PH, PW, INCLUDE_PAD: tl.constexpr):
    """How many elements the windows at (h0, w0) average: clipped to the padded
    input (INCLUDE_PAD) or to the input, as float32."""
    if INCLUDE_PAD:
        ch = tl.minimum(h0 + KH, H + PH) - tl.maximum(h0, -PH)
        cw = tl.minimum(w0 + KW, Wd + PW) - tl.maximum(w0, -PW)
    else:
        ch = tl.minimum(h0 + KH, H) - tl.maximum(h0, 0)
        cw = tl.minimum(w0 + KW, Wd) - tl.maximum(w0, 0)
    return (tl.maximum(ch, 0) * tl.maximum(cw, 0)).to(tl.float32)


@triton.jit
def _pool_kernel(X, Y, total, H, Wd, OH, OW, KH, KW, SH, SW, PH, PW, MODE: tl.constexpr,
                 INCLUDE_PAD: tl.constexpr, BLOCK: tl.constexpr):
    """Y (N, C, OH, OW): each element's window of X reduced; padding is -inf for max
    (NaN propagates) and 0 otherwise."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < total
    ohw = OH * OW
    nc = offs // ohw
    r = offs % ohw
    h0 = r // OW * SH - PH
    w0 = r % OW * SW - PW
    base = nc * (H * Wd)
    acc = tl.zeros([BLOCK], tl.float32)
    if MODE == MAX:
        acc = acc - float("inf")
    for kh in range(0, KH):
        ih = h0 + kh
        h_ok = ok & (ih >= 0) & (ih < H)
        for kw in range(0, KW):
            iw = w0 + kw
            m = h_ok & (iw >= 0) & (iw < Wd)
            v = tl.load(X + base + ih * Wd + iw, mask=m, other=0.0).to(tl.float32)
            if MODE == MAX:
                v = tl.where(m, v, -float("inf"))
                acc = tl.where((v > acc) | (v != v), v, acc)
            else:
                acc += v
    if MODE == AVG:
        acc = tl.div_rn(acc, _window_count(h0, w0, H, Wd, KH, KW, PH, PW, INCLUDE_PAD))
    tl.store(Y + offs, acc.to(Y.dtype.element_ty), mask=ok)


@triton.jit
def _pool_argmax_kernel(X, Y, A, total, H, Wd, OH, OW, KH, KW, SH, SW, PH, PW,
                        BLOCK: tl.constexpr):
    """A (N, C, OH, OW) int32: the offset kh * KW + kw of the first element of each
    window equal to the forward output Y (padding reads -inf), -1 if none."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < total
    ohw = OH * OW
    nc = offs // ohw
    r = offs % ohw
    h0 = r // OW * SH - PH
    w0 = r % OW * SW - PW
    base = nc * (H * Wd)
    y = tl.load(Y + offs, mask=ok, other=0.0).to(tl.float32)
    found = tl.full([BLOCK], -1, tl.int32)
    for kh in range(0, KH):
        ih = h0 + kh
        h_ok = ok & (ih >= 0) & (ih < H)
        for kw in range(0, KW):
            iw = w0 + kw
            m = h_ok & (iw >= 0) & (iw < Wd)
            v = tl.load(X + base + ih * Wd + iw, mask=m, other=0.0).to(tl.float32)
            v = tl.where(m, v, -float("inf"))
            found = tl.where((v == y) & (found < 0), kh * KW + kw, found)
    tl.store(A + offs, found, mask=ok)


@triton.jit
def _pool_grad_kernel(G, A, DX, total, H, Wd, OH, OW, KH, KW, SH, SW, PH, PW,
                      MODE: tl.constexpr, INCLUDE_PAD: tl.constexpr, BLOCK: tl.constexpr):
    """DX (N, C, H, W): per input element, the output gradients of the windows that
    cover it (offset kh reaches output row (ih + PH - kh) / SH when it divides), in
    kernel-offset order: max takes a window's only where A names this offset,
    avg divides by the window's count."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < total
    hw = H * Wd
    nc = offs // hw
    r = offs % hw
    ih = r // Wd + PH
    iw = r % Wd + PW
    g_base = nc * (OH * OW)
    acc = tl.zeros([BLOCK], tl.float32)
    for kh in range(0, KH):
        th = ih - kh
        oh = th // SH
        h_ok = ok & (th >= 0) & (th % SH == 0) & (oh < OH)
        for kw in range(0, KW):
            tw = iw - kw
            ow = tw // SW
            m = h_ok & (tw >= 0) & (tw % SW == 0) & (ow < OW)
            o = g_base + oh * OW + ow
            g = tl.load(G + o, mask=m, other=0.0).to(tl.float32)
            if MODE == MAX:
                first = tl.load(A + o, mask=m, other=-1)
                g = tl.where(first == kh * KW + kw, g, 0.0)
            elif MODE == AVG:
                cnt = _window_count(oh * SH - PH, ow * SW - PW, H, Wd, KH, KW, PH, PW,
                                    INCLUDE_PAD)
                g = tl.where(m, tl.div_rn(g, tl.where(m, cnt, 1.0)), 0.0)
            acc += g
    tl.store(DX + offs, acc.to(DX.dtype.element_ty), mask=ok)


# launchers -------------------------------------------------------------------------------
def _blk(d: int) -> int:
    """Interpreted block size: 16, 32 or 64 (few, large programs)."""
    return 64 if d >= 64 else (32 if d >= 32 else 16)


def gemm_config(M: int, N: int, K: int, itemsize: int) -> Tuple[int, int, int, int, int]:
    """(BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages) of an implicit GEMM, M x N
    over K.  On a GPU: up to 128 x 128 tiles, narrower where N (filters, channels)
    is small, 64-deep K steps for 16-bit operands."""
    if INTERPRET:
        return _blk(M), _blk(N), _blk(K), 4, 1
    bm = builtins.min(128, builtins.max(16, next_pow2(M)))
    bn = builtins.min(128, builtins.max(16, next_pow2(N)))
    bk = 64 if itemsize == 2 and K >= 64 else (32 if K >= 32 else 16)
    return bm, bn, bk, 8 if bm * bn >= 128 * 128 else 4, 3


def _geometry(kernel, stride, dilate) -> dict:
    (kh, kw), (sh, sw), (dh, dw) = (tuple(int(v) for v in t) for t in (kernel, stride, dilate))
    return dict(KH=kh, KW=kw, SH=sh, SW=sw, DH=dh, DW=dw)


def conv_out(size: int, k: int, s: int, d: int, p: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _gemm(kernel, M, N, K, groups, splits, dtype, args, consts) -> None:
    bm, bn, bk, warps, stages = gemm_config(M, N, K, dtype.itemsize)
    grid = (cdiv(M, bm) * cdiv(N, bn), groups, splits)
    launch(kernel, grid, *args, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=8,
           num_warps=warps, num_stages=stages, **consts)


def convolution(x, w, *bias, kernel, stride, dilate, pad, num_filter, num_group, no_bias):
    """2-D convolution (N, C, H, W) * (F, C/G, KH, KW) (+ bias) as one implicit GEMM."""
    x, w = contiguous(x), contiguous(w)
    N, C, H, W = x.shape
    F, cg = w.shape[:2]
    geo = _geometry(kernel, stride, dilate)
    ph, pw = (int(p) for p in pad)
    oh = conv_out(H, geo["KH"], geo["SH"], geo["DH"], ph)
    ow = conv_out(W, geo["KW"], geo["SW"], geo["DW"], pw)
    y = xp_of(x).empty((N, F, oh, ow), dtype=x.dtype)
    b = contiguous(bias[0]) if bias else y  # no bias: any pointer (never read)
    G = int(num_group)
    M, K, fg = N * oh * ow, cg * geo["KH"] * geo["KW"], F // G
    _gemm(_conv_kernel, M, fg, K, G, 1, x.dtype,
          (arg(x), arg(w), arg(b), arg(y), C, H, W, oh, ow, F, fg, M, K, ph, pw),
          dict(geo, PRECISION=_precision(x), UPCAST=_upcast(x), HAS_BIAS=bool(bias)))
    count("conv.convolution")
    return y


def _weight_grad_split(fg: int, K: int, groups: int, P: int, dtype) -> Tuple[int, int]:
    """(chunk of positions per program, number of chunks) of the weight gradient."""
    bm, bn, bk, _, _ = gemm_config(fg, K, P, dtype.itemsize)
    tiles = cdiv(fg, bm) * cdiv(K, bn) * groups
    n = builtins.min(cdiv(FEW_PROGRAMS, tiles), cdiv(P, MIN_STEPS * bk))
    if tiles >= FEW_PROGRAMS or n <= 1:
        return P, 1
    chunk = cdiv(cdiv(P, n), bk) * bk
    return chunk, cdiv(P, chunk)


def convolution_backward(gy, x, w, *, kernel, stride, dilate, pad, num_filter, num_group,
                         no_bias, grads):
    """The gradients ``grads`` asks for, of (data, weight, bias): d data and d weight
    as implicit GEMMs, d bias with d weight (or alone, a float32 sum)."""
    gy, x, w = contiguous(gy), contiguous(x), contiguous(w)
    xp = xp_of(x)
    N, C, H, W = x.shape
    F, cg = w.shape[:2]
    oh, ow = gy.shape[2:]
    geo = _geometry(kernel, stride, dilate)
    ph, pw = (int(p) for p in pad)
    G = int(num_group)
    fg, khw = F // G, geo["KH"] * geo["KW"]
    consts = dict(geo, PRECISION=_precision(x), UPCAST=_upcast(x))
    out = []
    if grads[0]:
        dx = xp.empty_like(x)
        M = N * H * W
        _gemm(_conv_data_grad_kernel, M, cg, fg * khw, G, 1, x.dtype,
              (arg(gy), arg(w), arg(dx), C, H, W, oh, ow, F, cg, M, fg * khw, ph, pw), consts)
        out.append(dx)
    db = None
    if grads[1]:
        P, K = N * oh * ow, cg * khw
        chunk, splits = _weight_grad_split(fg, K, G, P, x.dtype)
        sums = bool(grads[2])
        if splits == 1:
            dw = xp.empty_like(w)
            db = xp.empty((F,), dtype=x.dtype) if sums else None
        else:
            dw = xp.empty((splits, F, K), dtype=xp.float32)
            db = xp.empty((splits, F), dtype=xp.float32) if sums else None
        _gemm(_conv_weight_grad_kernel, fg, K, P, G, splits, x.dtype,
              (arg(gy), arg(x), arg(dw), arg(dw if db is None else db), C, H, W, oh, ow, F,
               fg, P, K, chunk, ph, pw), dict(consts, SUMS=sums))
        if splits > 1:
            count("conv.weight_grad.split")
            dw = dw.sum(axis=0).astype(x.dtype).reshape(w.shape)
            db = None if db is None else db.sum(axis=0).astype(x.dtype)
        out.append(dw)
    if grads[2]:
        if db is None:
            db = gy.reshape(N, F, -1).astype(xp.float32).sum(axis=2).sum(axis=0).astype(x.dtype)
        out.append(db)
    count("conv.convolution_backward")
    return tuple(out)


def pool_out(size: int, k: int, s: int, p: int, convention: str) -> int:
    span = size + 2 * p - k
    return (-(-span // s) if convention == "full" else span // s) + 1


def _pool_args(x, kernel, stride, pad):
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = (tuple(int(v) for v in t) for t in (kernel, stride, pad))
    return (H, W), (kh, kw, sh, sw, ph, pw)


def _pool_launch(kernel, total, *args, **consts) -> None:
    block = elementwise_block(total) if INTERPRET else 512
    launch(kernel, (cdiv(total, block),), *args, BLOCK=block, num_warps=4, **consts)


def pooling(x, *, kernel, stride, pad, pool_type, pooling_convention, count_include_pad,
            p_value):
    """2-D max/avg/sum pooling, one program per block of output elements."""
    x = contiguous(x)
    (H, W), geo = _pool_args(x, kernel, stride, pad)
    kh, kw, sh, sw, ph, pw = geo
    oh = pool_out(H, kh, sh, ph, pooling_convention)
    ow = pool_out(W, kw, sw, pw, pooling_convention)
    y = xp_of(x).empty(x.shape[:2] + (oh, ow), dtype=x.dtype)
    _pool_launch(_pool_kernel, y.size, arg(x), arg(y), y.size, H, W, oh, ow, *geo,
                 MODE=POOL_MODES[pool_type].value, INCLUDE_PAD=bool(count_include_pad))
    count("conv.pooling")
    return y


def pooling_backward(gy, x, y, *, kernel, stride, pad, pool_type, pooling_convention,
                     count_include_pad, p_value):
    """d data of 2-D max/avg/sum pooling, gathered per input element (max: after one
    pass that records each window's first maximum)."""
    gy, x = contiguous(gy), contiguous(x)
    xp = xp_of(x)
    (H, W), geo = _pool_args(x, kernel, stride, pad)
    oh, ow = gy.shape[2:]
    mode = POOL_MODES[pool_type].value
    dx = xp.empty_like(x)
    first = gy  # avg/sum: any pointer (never read)
    if mode == MAX.value:
        y = contiguous(y)
        first = xp.empty(gy.shape, dtype=xp.int32)
        _pool_launch(_pool_argmax_kernel, gy.size, arg(x), arg(y), arg(first), gy.size, H, W,
                     oh, ow, *geo)
    _pool_launch(_pool_grad_kernel, x.size, arg(gy), arg(first), arg(dx), x.size, H, W, oh,
                 ow, *geo, MODE=mode, INCLUDE_PAD=bool(count_include_pad))
    count("conv.pooling_backward")
    return dx


convolution.__qualname__ = "triton_convolution"
convolution_backward.__qualname__ = "triton_convolution_backward"
pooling.__qualname__ = "triton_pooling"
pooling_backward.__qualname__ = "triton_pooling_backward"
