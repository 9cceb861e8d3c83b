"""Rotary position embedding (RoPE) of attention queries and keys: ``rotary_embedding``.

Position ``p`` (``offset`` + the index along the sequence axis) rotates each pair of
features ``i < dim/2`` by the angle ``p * base**(-2i/dim)``.  The pairs are
``(x[i], x[i + dim/2])`` (the half-split layout of GPT-NeoX and Llama) or, with
``interleaved=True``, ``(x[2i], x[2i+1])`` (GPT-J's layout).

The op is linear in its input and a rotation: its gradient is the rotation by the
opposite angles, which is the same op with ``reverse=True``.  That attribute is part of
the op's schema (``mx.nd.invoke("rotary_embedding", x, reverse=True)`` undoes a
rotation) but not of the user-facing function.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, FrozenSet, List, Tuple

import hal
import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.ndarray import NDArray
from mxcore.op import Op

from mxcore_contrib_ops._devices import build, triton_kernels

FLOAT = frozenset(hal.FLOAT_DTYPES + hal.BFLOAT16_DTYPES)


ROTARY_EMBEDDING = Op(
    "rotary_embedding", 1,
    attrs={"offset": 0, "base": 10000.0, "interleaved": False, "reverse": False},
    doc="Rotary position embedding of data (batch, heads, seq, dim): feature pairs rotated "
        "by (offset + position) * base**(-2i/dim); reverse=True rotates back.")


@ROTARY_EMBEDDING.def_infer
def _rotary_infer(shapes, dtypes, attrs):
    shape, dtype = tuple(shapes[0]), dtypes[0]
    if len(shape) < 2:
        raise MXCoreError(f"needs data of shape (batch, heads, seq, dim) (at least "
                          f"(seq, dim)), got shape {shape}")
    if shape[-1] % 2:
        raise MXCoreError(f"the feature size (last axis) of shape {shape} is odd "
                          f"({shape[-1]}): rotary embedding rotates pairs of features")
    if not hal.is_float(dtype):
        raise MXCoreError(f"needs a floating-point input, got {hal.dtype_name(dtype)}")
    offset, base = attrs["offset"], attrs["base"]
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise MXCoreError(f"offset must be a non-negative integer, got {offset!r}")
    if isinstance(base, bool) or not isinstance(base, (int, float)) or not base > 0:
        raise MXCoreError(f"base must be a positive number, got {base!r}")
    for name in ("interleaved", "reverse"):
        if not isinstance(attrs[name], bool):
            raise MXCoreError(f"{name} must be True or False, got {attrs[name]!r}")
    return [shape], [dtype]


@ROTARY_EMBEDDING.def_grad
def _rotary_grad(ctx, g):
    # a rotation's transpose is its inverse: rotate the gradient back
    attrs = dict(ctx.attrs, reverse=not ctx.attrs["reverse"])
    return (mx.nd.invoke("rotary_embedding", g, **attrs),)


OPS = [ROTARY_EMBEDDING]


# kernels ---------------------------------------------------------------------------------

def _table(xp: Any) -> Dict[str, Tuple[Callable, FrozenSet[str]]]:
    def rotary_embedding(data, offset, base, interleaved, reverse):
        x = data.astype(xp.float32) if data.dtype.itemsize < 4 else data
        seq, dim = x.shape[-2], x.shape[-1]
        # angles in float64: position * frequency loses digits in float32 at long offsets
        inv_freq = float(base) ** (-xp.arange(0, dim, 2, dtype=xp.float64) / dim)
        angle = xp.arange(offset, offset + seq, dtype=xp.float64)[:, None] * inv_freq
        cos = xp.cos(angle).astype(x.dtype)
        sin = xp.sin(angle).astype(x.dtype)
        if reverse:
            sin = -sin
        if interleaved:
            x1, x2 = x[..., 0::2], x[..., 1::2]
            out = xp.empty_like(x)
            out[..., 0::2] = x1 * cos - x2 * sin
            out[..., 1::2] = x2 * cos + x1 * sin
        else:
            x1, x2 = x[..., :dim // 2], x[..., dim // 2:]
            out = xp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
        return out.astype(data.dtype, copy=False)

    return {"rotary_embedding": (rotary_embedding, FLOAT)}


#: op -> (rowwise_triton's kernel on cuda, its guard)
_TRITON = {"rotary_embedding": ("rotary_embedding", "rotary_embedding_applies")}


def kernels() -> List[hal.Kernel]:
    triton = triton_kernels("rowwise_triton", _TRITON, FLOAT - {"float64"})
    return build(_table, "rotary") + triton


# user-facing functions -------------------------------------------------------------------

def rotary_embedding(data: NDArray, offset: int = 0, base: float = 10000.0,
                     interleaved: bool = False) -> NDArray:
    """Rotary position embedding (RoPE) of ``data`` of shape (batch, heads, seq, dim),
    ``dim`` even (any leading axes work: the sequence is axis -2, features axis -1).

    Position ``p = offset + s`` (``s`` the index along seq; ``offset`` the number of
    cached positions when decoding) rotates feature pair ``i`` by ``p * inv_freq[i]``,
    ``inv_freq[i] = base ** (-2i/dim)`` for ``i < dim/2``.  The default half-split
    layout (GPT-NeoX, Llama) pairs ``x[i]`` with ``x[i + dim/2]``:
    ``concat(x1*cos - x2*sin, x2*cos + x1*sin)``; ``interleaved=True`` (GPT-J) pairs
    ``x[2i]`` with ``x[2i+1]``."""
    return mx.nd.invoke("rotary_embedding", data, offset=int(offset), base=float(base),
                        interleaved=bool(interleaved))


ROTARY_EMBEDDING.frontend = rotary_embedding
