"""Elementwise ops from one table of formulas: unary, binary (with numpy
broadcasting), comparisons (1/0 in the input dtype), and the scalar forms
(``add_scalar``, ``rsub_scalar``...).

Each formula is a tiny ``@triton.jit`` function of ``tl`` values; ``UNARY`` and
``BINARY`` map op names to them.  One generic blocked kernel per arity takes the
formula as a ``tl.constexpr`` argument (Triton specialises a kernel on a JIT
function passed as a constexpr, and the interpreter simply calls it), so no
source is generated and ``exec``-ed: adding an op is adding a three-line
formula to the table.  float16 and bfloat16 compute in float32 and are rounded once on
store.

Binary ops on inputs of one shape, both contiguous, run the flat kernel.
Otherwise (broadcasting, strided views) each input's strides are expanded to
the output shape (0 along broadcast dimensions), adjacent dimensions that
address memory the same way for every input are merged (``collapse``: the
common (N, C) + (C,) bias add becomes a 2-D pattern), and the strided kernel
takes up to ``MAX_DIMS`` (4) dimensions of sizes and strides; anything that
does not collapse that far is declined by the guard.

Scalar forms take the scalar rounded to the array's dtype (MXNet/numpy
semantics: ``x.dtype.type(scalar)``), float16/float32 only: Triton passes
Python floats as float32, which float64 would not survive.
"""
from __future__ import annotations

import triton
import triton.language as tl

import numpy as np

from mxcore_cuda.triton._layout import MAX_DIMS, c_strides, collapse, expanded_strides
from mxcore_cuda.triton._launch import cdiv, launch
from mxcore_cuda.triton._runtime import arg, contiguous, count, elementwise_block, xp_of

UNARY = {}
BINARY = {}


def formula(table, name):
    def deco(fn):
        table[name] = fn
        return fn
    return deco


# --- the table ------------------------------------------------------------------------
@formula(UNARY, "negative")
@triton.jit
def _negative(x):
    return -x


@formula(UNARY, "abs")
@triton.jit
def _abs(x):
    return tl.abs(x)


@formula(UNARY, "square")
@triton.jit
def _square(x):
    return x * x


@formula(UNARY, "reciprocal")
@triton.jit
def _reciprocal(x):
    return 1.0 / x


@formula(UNARY, "exp")
@triton.jit
def _exp(x):
    return tl.exp(x)


@formula(UNARY, "log")
@triton.jit
def _log(x):
    return tl.log(x)


@formula(UNARY, "sqrt")
@triton.jit
def _sqrt(x):
    if x.dtype == tl.float32:  # IEEE rounding (tl.sqrt may be approximate); fp32 only
        return tl.sqrt_rn(x)
    return tl.sqrt(x)


@formula(UNARY, "sin")
@triton.jit
def _sin(x):
    return tl.sin(x)


@formula(UNARY, "cos")
@triton.jit
def _cos(x):
    return tl.cos(x)


@formula(UNARY, "tanh")
@triton.jit
def _tanh(x):
    # tanh(|x|) = (1 - e) / (1 + e), e = exp(-2|x|): no overflow for any x
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x < 0, -t, t)


@formula(UNARY, "sigmoid")
@triton.jit
def _sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@formula(UNARY, "relu")
@triton.jit
def _relu(x):
    return tl.where(x > 0, x, 0)


@formula(UNARY, "softrelu")
@triton.jit
def _softrelu(x):
    # max(x, 0) + log1p(exp(-|x|)); log1p's series where 1 + e would round to 1
    e = tl.exp(-tl.abs(x))
    return tl.maximum(x, 0.0) + tl.where(e < 1e-4, e - 0.5 * e * e, tl.log(1.0 + e))


@formula(UNARY, "softsign")
@triton.jit
def _softsign(x):
    return x / (1.0 + tl.abs(x))


@formula(UNARY, "floor")
@triton.jit
def _floor(x):
    return tl.floor(x)


@formula(UNARY, "ceil")
@triton.jit
def _ceil(x):
    return tl.ceil(x)


@formula(BINARY, "add")
@triton.jit
def _add(x, y):
    return x + y


@formula(BINARY, "subtract")
@triton.jit
def _subtract(x, y):
    return x - y


@formula(BINARY, "multiply")
@triton.jit
def _multiply(x, y):
    return x * y


@formula(BINARY, "divide")
@triton.jit
def _divide(x, y):
    if x.dtype == tl.float32:  # IEEE rounding (x / y may be approximate); fp32 only
        return tl.div_rn(x, y)
    return x / y


@formula(BINARY, "maximum")
@triton.jit
def _maximum(x, y):
    return tl.where(x >= y, x, y)


@formula(BINARY, "minimum")
@triton.jit
def _minimum(x, y):
    return tl.where(x <= y, x, y)


@formula(BINARY, "equal")
@triton.jit
def _equal(x, y):
    return tl.where(x == y, 1, 0).to(x.dtype)


@formula(BINARY, "not_equal")
@triton.jit
def _not_equal(x, y):
    return tl.where(x != y, 1, 0).to(x.dtype)


@formula(BINARY, "greater")
@triton.jit
def _greater(x, y):
    return tl.where(x > y, 1, 0).to(x.dtype)


@formula(BINARY, "greater_equal")
@triton.jit
def _greater_equal(x, y):
    return tl.where(x >= y, 1, 0).to(x.dtype)


@formula(BINARY, "less")
@triton.jit
def _less(x, y):
    return tl.where(x < y, 1, 0).to(x.dtype)


@formula(BINARY, "less_equal")
@triton.jit
def _less_equal(x, y):
    return tl.where(x <= y, 1, 0).to(x.dtype)


#: scalar op -> (binary formula, scalar on the left)
SCALAR = {"add_scalar": ("add", False), "sub_scalar": ("subtract", False),
          "rsub_scalar": ("subtract", True), "mul_scalar": ("multiply", False),
          "div_scalar": ("divide", False), "rdiv_scalar": ("divide", True),
          "maximum_scalar": ("maximum", False), "minimum_scalar": ("minimum", False),
          "equal_scalar": ("equal", False), "not_equal_scalar": ("not_equal", False),
          "greater_scalar": ("greater", False), "greater_equal_scalar": ("greater_equal", False),
          "less_scalar": ("less", False), "less_equal_scalar": ("less_equal", False)}

# --- the generic kernels --------------------------------------------------------------
@triton.jit
def _widen(x, mask):
    """16-bit floats compute in float32.  Masked lanes hold 1 (no log(0) or 0/0 there);
    the ``where`` keeps that true in the interpreter, which fills masked bfloat16 lanes
    with the raw bits of ``other``."""
    if x.dtype == tl.float16 or x.dtype == tl.bfloat16:
        x = tl.where(mask, x.to(tl.float32), 1.0)
    return x


@triton.jit
def _unary_kernel(X, Y, N, OP: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    x = _widen(tl.load(X + offs, mask=mask, other=1), mask)
    tl.store(Y + offs, OP(x).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _binary_kernel(A, B, Y, N, OP: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    a = _widen(tl.load(A + offs, mask=mask, other=1), mask)
    b = _widen(tl.load(B + offs, mask=mask, other=1), mask)
    tl.store(Y + offs, OP(a, b).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _binary_nd_kernel(A, B, Y, N, D1, D2, D3, SA0, SA1, SA2, SA3, SB0, SB1, SB2, SB3,
                      OP: tl.constexpr, BLOCK: tl.constexpr):
    """Y (contiguous, N elements, shape (N/(D1*D2*D3), D1, D2, D3)) = OP(A, B) where A
    and B are addressed by per-dimension strides (0 along broadcast dimensions)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    i3 = offs % D3
    t = offs // D3
    i2 = t % D2
    t = t // D2
    i1 = t % D1
    i0 = t // D1
    a = _widen(tl.load(A + (i0 * SA0 + i1 * SA1 + i2 * SA2 + i3 * SA3), mask=mask, other=1),
               mask)
    b = _widen(tl.load(B + (i0 * SB0 + i1 * SB1 + i2 * SB2 + i3 * SB3), mask=mask, other=1),
               mask)
    tl.store(Y + offs, OP(a, b).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _scalar_kernel(X, Y, N, s, OP: tl.constexpr, REVERSE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    x = _widen(tl.load(X + offs, mask=mask, other=1), mask)
    b = tl.zeros_like(x) + s
    if REVERSE:
        y = OP(b, x)
    else:
        y = OP(x, b)
    tl.store(Y + offs, y.to(Y.dtype.element_ty), mask=mask)


# --- broadcasting: see _layout (strides expanded to the output shape, dimensions merged)
def _pad4(seq, fill):
    return [fill] * (MAX_DIMS - len(seq)) + list(seq)


def unary(name: str):
    op = UNARY[name]
    tag = f"elementwise.{name}"

    def kernel(x):
        x = contiguous(x)
        y = xp_of(x).empty_like(x)
        n = x.size
        if n:
            block = elementwise_block(n)
            launch(_unary_kernel, (cdiv(n, block),), arg(x), arg(y), n, OP=op, BLOCK=block)
            count(tag)
        return y
    kernel.__name__ = kernel.__qualname__ = f"triton_{name}"
    return kernel


def binary(name: str):
    op = BINARY[name]
    tag = f"elementwise.{name}"

    def kernel(a, b):
        a, b = _array(a), _array(b)
        if a.shape == b.shape and a.flags.c_contiguous and b.flags.c_contiguous:
            y = xp_of(a).empty_like(a)
            n = a.size
            if n:
                block = elementwise_block(n)
                launch(_binary_kernel, (cdiv(n, block),), arg(a), arg(b), arg(y), n, OP=op,
                       BLOCK=block)
                count(tag)
            return y
        out = tuple(np.broadcast_shapes(a.shape, b.shape))
        y = xp_of(a).empty(out, dtype=a.dtype)
        n = y.size
        if not n:
            return y
        sizes, strides = collapse(out, [expanded_strides(x.shape, _elem_strides(x), out)
                                        for x in (a, b)])
        if len(sizes) > MAX_DIMS:  # strided views that do not merge: copy them
            a, b = contiguous(a), contiguous(b)
            sizes, strides = collapse(out, [expanded_strides(x.shape, c_strides(x.shape), out)
                                            for x in (a, b)])
        d = _pad4(sizes, 1)
        sa, sb = _pad4(strides[0], 0), _pad4(strides[1], 0)
        block = elementwise_block(n)
        launch(_binary_nd_kernel, (cdiv(n, block),), arg(a), arg(b), arg(y), n, d[1], d[2], d[3],
               *sa, *sb, OP=op, BLOCK=block)
        count(tag)
        return y
    kernel.__name__ = kernel.__qualname__ = f"triton_{name}"
    return kernel


def _array(a):
    """0-d numpy scalars (fallback results) as arrays: a scalar's own buffer is a
    temporary copy, no place for a kernel to read."""
    return np.asarray(a) if isinstance(a, np.generic) else a


def _elem_strides(a):
    return [st // a.itemsize for st in a.strides]


def scalar(name: str):
    bname, reverse = SCALAR[name]
    op = BINARY[bname]
    tag = f"elementwise.{name}"

    def kernel(x, scalar):
        x = contiguous(x)
        y = xp_of(x).empty_like(x)
        n = x.size
        if n:
            s = float(np.dtype(x.dtype).type(scalar))  # the scalar in the array's dtype
            block = elementwise_block(n)
            launch(_scalar_kernel, (cdiv(n, block),), arg(x), arg(y), n, s, OP=op,
                   REVERSE=reverse, BLOCK=block)
            count(tag)
        return y
    kernel.__name__ = kernel.__qualname__ = f"triton_{name}"
    return kernel
