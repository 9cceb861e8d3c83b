"""Elementwise ops from one table of formulas.

Each formula is a tiny ``@triton.jit`` function of ``tl`` values; ``UNARY`` and
``BINARY`` map op names to them.  One generic blocked kernel per arity takes the
formula as a ``tl.constexpr`` argument (Triton specialises a kernel on a JIT
function passed as a constexpr, and the interpreter simply calls it), so no
source is generated and ``exec``-ed: adding an op is adding a three-line
formula to the table.  float16 computes in float32 and is rounded once on store.

Broadcasting is left to the fallback for now: the kernels' guard accepts
inputs of one shape only (``applies_same_shape``); non-contiguous inputs are
made contiguous first.
"""
from __future__ import annotations

import triton
import triton.language as tl

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


# --- the generic kernels --------------------------------------------------------------
@triton.jit
def _unary_kernel(X, Y, N, OP: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    x = tl.load(X + offs, mask=mask, other=1)  # masked lanes: no log(0), 0/0 warnings
    if x.dtype == tl.float16:
        x = x.to(tl.float32)
    tl.store(Y + offs, OP(x).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _binary_kernel(A, B, Y, N, OP: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    a = tl.load(A + offs, mask=mask, other=1)
    b = tl.load(B + offs, mask=mask, other=1)
    if a.dtype == tl.float16:
        a = a.to(tl.float32)
        b = b.to(tl.float32)
    tl.store(Y + offs, OP(a, b).to(Y.dtype.element_ty), mask=mask)


def unary(name: str):
    op = UNARY[name]
    tag = f"elementwise.{name}"

    def kernel(x):
        x = contiguous(x)
        y = xp_of(x).empty_like(x)
        n = x.size
        if n:
            block = elementwise_block(n)
            _unary_kernel[(triton.cdiv(n, block),)](arg(x), arg(y), n, OP=op, BLOCK=block)
            count(tag)
        return y
    kernel.__name__ = kernel.__qualname__ = f"triton_{name}"
    return kernel


def binary(name: str):
    op = BINARY[name]
    tag = f"elementwise.{name}"

    def kernel(a, b):
        a, b = contiguous(a), contiguous(b)
        y = xp_of(a).empty_like(a)
        n = a.size
        if n:
            block = elementwise_block(n)
            _binary_kernel[(triton.cdiv(n, block),)](arg(a), arg(b), arg(y), n, OP=op,
                                                     BLOCK=block)
            count(tag)
        return y
    kernel.__name__ = kernel.__qualname__ = f"triton_{name}"
    return kernel
