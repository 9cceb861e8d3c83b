"""Scaled dot-product attention on (batch, heads, seq, dim) arrays.

``scaled_dot_product_attention`` runs one of four forward ops (with or without a mask
input, with or without dropout), each paired with a backward op of its own kernel:

* the forward kernel computes ``softmax(scale * q @ k^T + mask) @ v`` with the row max
  subtracted, and returns the rows' logsumexp as a second output, hidden from the user;
* the backward kernel recomputes the probabilities from q, k and that logsumexp
  (``exp(s - lse)``), so no (Lq, Lk) matrix is kept between forward and backward;
* dropout's keep-mask is a function of a ``seed`` attribute (as core dropout's): the
  backward regenerates it instead of keeping it.  Dropout lives in ops of its own so
  that the ops without it stay pure (no seed drawn, no reseeding in compiled graphs).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple

import numpy as np

import hal
import mxcore as mx
from mxcore import autograd
from mxcore.base import MXCoreError
from mxcore.ndarray import NDArray
from mxcore.op import Op

from mxcore_contrib_ops._devices import build, triton_kernels

NAME = "scaled_dot_product_attention"
FLOAT: FrozenSet[str] = frozenset({"float16", "bfloat16", "float32", "float64"})
_ATTRS = {"causal": False, "scale": None}
_DROPOUT_ATTRS = {"dropout": 0.0, "seed": 0}


def _name(masked: bool, dropout: bool, backward: bool = False) -> str:
    return (NAME + ("_masked" if masked else "") + ("_dropout" if dropout else "")
            + ("_backward" if backward else ""))


# shape/dtype rules ---------------------------------------------------------------------

def _check(shapes, dtypes, attrs, masked: bool) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """Validate (query, key, value[, mask]); returns the output's and the logsumexp's
    shapes."""
    q, k, v = (tuple(s) for s in shapes[:3])
    for role, s in (("query", q), ("key", k), ("value", v)):
        if len(s) != 4:
            raise MXCoreError(f"{role} must be 4-d (batch, heads, seq, dim), got shape {s}")
    if not q[:2] == k[:2] == v[:2]:
        raise MXCoreError(f"batch and head axes differ: query {q}, key {k}, value {v}")
    if k[3] != q[3]:
        raise MXCoreError(f"key's feature size {k[3]} differs from query's {q[3]}: "
                          f"query {q}, key {k}")
    if v[2] != k[2]:
        raise MXCoreError(f"key and value sequence lengths differ: key {k}, value {v}")
    if k[2] == 0:
        raise MXCoreError(f"key and value have no positions: key {k}, value {v}")
    dq = dtypes[0]
    if not hal.is_float(dq):
        raise MXCoreError(f"query must be floating-point, got {dq}")
    if not dtypes[1] == dtypes[2] == dq:
        raise MXCoreError(f"dtypes differ: query {dq}, key {dtypes[1]}, value {dtypes[2]}")
    scores = q[:3] + (k[2],)
    if masked:
        m, dm = tuple(shapes[3]), dtypes[3]
        if hal.dtype_name(dm) != "bool" and dm != dq:
            raise MXCoreError(f"mask must be bool or of query's dtype {dq}, got {dm}")
        try:
            fits = len(m) <= 4 and tuple(np.broadcast_shapes(m, scores)) == scores
        except ValueError:
            fits = False
        if not fits:
            raise MXCoreError(f"mask shape {m} does not broadcast to the scores' shape "
                              f"{scores} (batch, heads, query seq, key seq)")
    scale = attrs["scale"]
    if scale is None and q[3] == 0:
        raise MXCoreError(f"query has no features (shape {q}): give a scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))
                              or not math.isfinite(scale)):
        raise MXCoreError(f"scale must be a finite number or None, got {scale!r}")
    p = attrs.get("dropout", 0.0)
    if not 0 <= p < 1:
        raise MXCoreError(f"dropout must be in [0, 1), got {p}")
    return q[:3] + (v[3],), q[:3]


def _lse_dtype(dtype) -> str:
    # the logsumexp is kept at the working precision: float64, else float32
    return "float64" if hal.dtype_name(dtype) == "float64" else "float32"


def _forward_infer(masked: bool) -> Callable:
    def infer(shapes, dtypes, attrs):
        out, lse = _check(shapes, dtypes, attrs, masked)
        return [out, lse], [dtypes[0], _lse_dtype(dtypes[0])]
    return infer


def _backward_infer(masked: bool) -> Callable:
    # inputs: (out_grad, query, key, value, lse[, mask])
    def infer(shapes, dtypes, attrs):
        fwd = tuple(shapes[1:4]) + tuple(shapes[5:])
        out, lse = _check(fwd, tuple(dtypes[1:4]) + tuple(dtypes[5:]), attrs, masked)
        if tuple(shapes[0]) != out:
            raise MXCoreError(f"out_grad shape {tuple(shapes[0])} differs from the "
                              f"output's {out}")
        if tuple(shapes[4]) != lse:
            raise MXCoreError(f"lse shape {tuple(shapes[4])} differs from {lse}")
        if dtypes[0] != dtypes[1]:
            raise MXCoreError(f"out_grad dtype {dtypes[0]} differs from query's {dtypes[1]}")
        return [tuple(s) for s in shapes[1:4]], [dtypes[1]] * 3
    return infer


# the ops ---------------------------------------------------------------------------------

def _make(masked: bool, dropout: bool) -> Tuple[Op, Op]:
    attrs = dict(_ATTRS, **(_DROPOUT_ATTRS if dropout else {}))
    volatile = ("seed",) if dropout else ()
    nin = 4 if masked else 3
    fwd = Op(_name(masked, dropout), nin, nout=2, attrs=attrs, saves_output=True,
             volatile_attrs=volatile,
             doc="softmax(scale * query @ key^T [+ mask]) [dropped out] @ value, and the "
                 "scores' row logsumexp; (query, key, value[, mask]) -> (out, lse)")
    bwd = Op(_name(masked, dropout, True), nin + 2, nout=3, attrs=dict(attrs),
             volatile_attrs=volatile,
             doc=f"{fwd.name}'s gradients in one kernel: (out_grad, query, key, value, "
                 "lse[, mask]) -> (d query, d key, d value)")
    fwd.def_infer(_forward_infer(masked))
    bwd.def_infer(_backward_infer(masked))

    @fwd.def_grad
    def _grad(ctx, g, g_lse):
        if g_lse is not None:
            raise MXCoreError(f"{fwd.name}: its logsumexp output is not differentiable")
        q, k, v = ctx.inputs[:3]
        lse = ctx.outputs[1]
        grads = mx.nd.invoke(bwd.name, g, q, k, v, lse, *ctx.inputs[3:], **ctx.attrs)
        # no gradient for the mask
        return tuple(x if ctx.needs_grad(i) else None for i, x in enumerate(grads)) \
            + (None,) * (nin - 3)

    @bwd.def_grad
    def _refuse(ctx, *g):
        raise MXCoreError(f"{bwd.name} has no gradient rule: scaled_dot_product_attention "
                          "is differentiable once")

    return fwd, bwd


OPS: List[Op] = [op for masked in (False, True) for dropout in (False, True)
                 for op in _make(masked, dropout)]


# the user-facing function ----------------------------------------------------------------

def scaled_dot_product_attention(query: NDArray, key: NDArray, value: NDArray,
                                 mask: Optional[NDArray] = None, causal: bool = False,
                                 dropout: float = 0.0,
                                 scale: Optional[float] = None) -> NDArray:
    """``softmax(scale * query @ key^T + mask) @ value`` per batch and head, as PyTorch's
    ``torch.nn.functional.scaled_dot_product_attention``.

    Shapes: query (B, H, Lq, D), key (B, H, Lk, D), value (B, H, Lk, Dv) -> (B, H, Lq, Dv).

    * ``scale``: defaults to ``1 / sqrt(D)``.
    * ``mask``: broadcastable to (B, H, Lq, Lk); bool (True: attend) or of query's dtype
      (added to the scaled scores, ``-inf`` to exclude).  No gradient flows to it.
    * ``causal``: query i attends to keys j <= i (top-left aligned when Lq != Lk).
      Unlike PyTorch, it may be combined with ``mask``: both must allow a position.
    * ``dropout``: probability of dropping an attention weight (kept ones are scaled by
      ``1 / (1 - dropout)``), applied only in training mode (``autograd.record()`` or
      ``train_mode()``), as Gluon's Dropout; elsewhere it does nothing.  The mask is
      drawn from the device's generator: ``mx.random.seed`` makes it reproducible.
    * A query row that may attend to no key (all masked) gets zeros and passes zero
      gradients, as recent PyTorch does on its reference path (older versions and some
      fused PyTorch kernels give NaN there).

    Inputs are float16, bfloat16, float32 or float64 (16-bit floats compute in float32).
    """
    p = float(dropout)
    if not 0 <= p < 1:
        raise MXCoreError(f"scaled_dot_product_attention: dropout must be in [0, 1), got {p}")
    attrs: Dict[str, Any] = {"causal": bool(causal),
                             "scale": None if scale is None else float(scale)}
    inputs = [query, key, value] + ([] if mask is None else [mask])
    use_dropout = p > 0 and autograd.is_training()
    if use_dropout:
        from mxcore.device import device_type
        dev = query.context
        attrs.update(dropout=p, seed=device_type(dev).host_seed(dev.index))
    out, _ = mx.nd.invoke(_name(mask is not None, use_dropout), *inputs, **attrs)
    return out


next(op for op in OPS if op.name == NAME).frontend = scaled_dot_product_attention


# kernels ---------------------------------------------------------------------------------

def _table(xp) -> Dict[str, Tuple[Callable, FrozenSet[str]]]:
    def work(x):
        """float64 stays; everything else is worked on in float32."""
        return x if x.dtype == xp.float64 else x.astype(xp.float32)

    def scores(q, k, mask, causal, scale):
        s = q @ xp.swapaxes(k, -1, -2)
        s *= 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        if mask is not None:
            if mask.dtype == xp.bool_:
                s = xp.where(mask, s, -xp.inf)
            else:
                s = s + mask.astype(s.dtype)
        if causal:
            lq, lk = s.shape[-2:]
            s = xp.where(xp.tril(xp.ones((lq, lk), dtype=bool)), s, -xp.inf)
        return s.astype(q.dtype, copy=False)

    def keep(seed, p, shape, dtype):
        """The dropout factor: 0 where dropped, 1 / (1 - p) where kept."""
        kept = xp.random.default_rng(seed).random(shape, dtype=xp.float32) >= p
        return kept.astype(dtype) * dtype.type(1.0 / (1.0 - p))

    def attend(q, k, v, mask, causal, scale, dropout, seed):
        qw, kw, vw = work(q), work(k), work(v)
        s = scores(qw, kw, mask, causal, scale)
        m = s.max(axis=-1, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)        # fully masked rows: no -inf - -inf
        e = xp.exp(s - m)
        total = e.sum(axis=-1, keepdims=True)     # >= 1 unless the row is fully masked
        if dropout > 0:
            e *= keep(seed, dropout, e.shape, e.dtype)
        empty = total == 0
        out = (e @ vw) / xp.where(empty, 1, total)  # fully masked rows: e == 0, out == 0
        lse = xp.where(empty, -xp.inf, xp.log(xp.where(empty, 1, total)) + m)[..., 0]
        return out.astype(q.dtype), lse.astype(_lse_dtype(q.dtype))

    def attend_backward(g, q, k, v, lse, mask, causal, scale, dropout, seed):
        qw, kw, vw, gw = work(q), work(k), work(v), work(g)
        s = scores(qw, kw, mask, causal, scale)
        l = lse.astype(qw.dtype)[..., None]
        # fully masked rows (lse = -inf) get p = exp(-inf - inf) = 0
        prob = xp.exp(s - xp.where(l == -xp.inf, xp.inf, l))
        dp = gw @ xp.swapaxes(vw, -1, -2)
        if dropout > 0:
            z = keep(seed, dropout, prob.shape, prob.dtype)
            dv = xp.swapaxes(prob * z, -1, -2) @ gw
            dp *= z
        else:
            dv = xp.swapaxes(prob, -1, -2) @ gw
        # softmax backward: ds = p * (dp - sum_j p * dp)
        ds = prob * (dp - (prob * dp).sum(axis=-1, keepdims=True))
        ds *= 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        dq = ds @ kw
        dk = xp.swapaxes(ds, -1, -2) @ qw
        return dq.astype(q.dtype), dk.astype(q.dtype), dv.astype(q.dtype)

    # the kernels as dispatch calls them: the mask, where the op has one, is the last array
    def forward(query, key, value, *mask, causal, scale):
        return attend(query, key, value, mask[0] if mask else None, causal, scale, 0.0, 0)

    def forward_dropout(query, key, value, *mask, causal, scale, dropout, seed):
        return attend(query, key, value, mask[0] if mask else None, causal, scale, dropout,
                      seed)

    def backward(out_grad, query, key, value, lse, *mask, causal, scale):
        return attend_backward(out_grad, query, key, value, lse, mask[0] if mask else None,
                               causal, scale, 0.0, 0)

    def backward_dropout(out_grad, query, key, value, lse, *mask, causal, scale, dropout,
                         seed):
        return attend_backward(out_grad, query, key, value, lse, mask[0] if mask else None,
                               causal, scale, dropout, seed)

    table = {}
    for masked in (False, True):
        table[_name(masked, False)] = (forward, FLOAT)
        table[_name(masked, False, True)] = (backward, FLOAT)
        table[_name(masked, True)] = (forward_dropout, FLOAT)
        table[_name(masked, True, True)] = (backward_dropout, FLOAT)
    return table


#: op -> (attention_triton's flash-attention kernel, its guard): the ops without dropout
_TRITON = {op: entry for masked in (False, True) for op, entry in (
    (_name(masked, False), ("forward", "forward_applies")),
    (_name(masked, False, True), ("backward", "backward_applies")))}


def kernels() -> List[hal.Kernel]:
    return build(_table, "attention") + triton_kernels("attention_triton", _TRITON,
                                                       FLOAT - {"float64"})
