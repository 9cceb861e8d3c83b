"""``fused_elemwise``: a chain of elementwise ops in one Triton kernel.

Graph fusion (``mxcore.graph.passes.fuse``) hands this kernel a ``chain`` of entries
``(op name, args, scalar)`` (see ``mxcore/ops/fused.py``).  One generic kernel,
``_chain_kernel``, evaluates up to ``MAX_CHAIN`` entries over up to ``MAX_INPUTS``
contiguous inputs: each entry is a formula of ``elementwise.py`` (the very ``@triton.jit``
functions the unfused kernels call) passed as a ``tl.constexpr``, with its kind (unary,
binary, scalar, reversed scalar) and argument indices as constexprs and its scalar as a
runtime float.  Triton specialises the kernel on the constexprs, so each distinct chain
compiles once into its own kernel; nothing is generated or ``exec``-ed, and the entries
are unrolled by constexpr conditionals.

Results match the unfused kernels bit for bit:

* 16-bit floats compute each entry in float32 and round its result to the array's dtype
  (which the unfused chain stores between kernels) before the next entry reads it;
  float32 and float64 compute in their own precision;
* scalars are rounded to the array's dtype and travel as float32, as in ``scalar``;
* float64 chains take no scalar forms (``FUSABLE_OPS_FLOAT64``): a Triton scalar travels
  as float32, so their unfused kernels are 16/32-bit only;
* the kernel launches with ``enable_fp_fusion=False``: otherwise the compiler would
  contract one entry's multiply and the next one's add into an FMA the unfused kernels
  cannot form.  (The fusable formulas compile to the same PTX with or without it, but
  for float64 ``log``, which float64 chains therefore leave out.)

Chains longer than the kernel takes, or with more inputs, run as consecutive launches
(``_segments``), so the guard declines no chain for its length: for 16-bit floats no
other device kernel implements ``fused_elemwise``.  ``fusable`` is set on the registered
(lazy) kernels in ``__init__``, before Triton is imported.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

import triton
import triton.language as tl

from mxcore_cuda.triton import FUSABLE_OPS
from mxcore_cuda.triton._launch import cdiv, launch
from mxcore_cuda.triton._runtime import arg, contiguous, count, elementwise_block, xp_of
from mxcore_cuda.triton.elementwise import BINARY, SCALAR, UNARY, _widen

#: entries and distinct inputs one launch takes
MAX_CHAIN = 8
MAX_INPUTS = 4

#: compile options of every launch: no FMA contraction across entries (module docstring)
OPTIONS = {"enable_fp_fusion": False}

# entry kinds (constexprs of the kernel)
UNARY_KIND, BINARY_KIND, SCALAR_KIND, RSCALAR_KIND = 0, 1, 2, 3


def _formula(name: str) -> Tuple:
    """(formula, kind) of a fusable op: the formula the unfused kernel runs."""
    if name in UNARY:
        return UNARY[name], UNARY_KIND
    if name in BINARY:
        return BINARY[name], BINARY_KIND
    bname, reverse = SCALAR[name]
    return BINARY[bname], RSCALAR_KIND if reverse else SCALAR_KIND


#: op name -> (formula, kind); a name the registry lists without a formula fails here
FORMULAS = {name: _formula(name) for name in sorted(FUSABLE_OPS)}


# --- the kernel ---------------------------------------------------------------------------
@triton.jit
def _pick(I: tl.constexpr, x0, x1, x2, x3, r0, r1, r2, r3, r4, r5, r6):
    """Argument ``I``: input ``I`` (>= 0) or the result of entry ``-I - 1``."""
    if I == 0:
        v = x0
    elif I == 1:
        v = x1
    elif I == 2:
        v = x2
    elif I == 3:
        v = x3
    elif I == -1:
        v = r0
    elif I == -2:
        v = r1
    elif I == -3:
        v = r2
    elif I == -4:
        v = r3
    elif I == -5:
        v = r4
    elif I == -6:
        v = r5
    else:
        v = r6
    return v


@triton.jit
def _entry(F: tl.constexpr, K: tl.constexpr, A: tl.constexpr, B: tl.constexpr, s, mask,
           x0, x1, x2, x3, r0, r1, r2, r3, r4, r5, r6, Y):
    """One entry's result as the next unfused kernel would load it: 16-bit results
    rounded to the output's dtype and widened back; masked lanes hold 1."""
    a = _pick(A, x0, x1, x2, x3, r0, r1, r2, r3, r4, r5, r6)
    if K == 0:
        y = F(a)
    elif K == 1:
        y = F(a, _pick(B, x0, x1, x2, x3, r0, r1, r2, r3, r4, r5, r6))
    elif K == 2:
        y = F(a, tl.zeros_like(a) + s)
    else:
        y = F(tl.zeros_like(a) + s, a)
    if Y.dtype.element_ty == tl.float16 or Y.dtype.element_ty == tl.bfloat16:
        y = y.to(Y.dtype.element_ty).to(tl.float32)
    return tl.where(mask, y, 1.0)


@triton.jit
def _load(X, offs, mask):
    """An input as the unfused kernels load it (16-bit floats widen to float32)."""
    return _widen(tl.load(X + offs, mask=mask, other=1), mask)


@triton.jit
def _chain_kernel(X0, X1, X2, X3, Y, N, S0, S1, S2, S3, S4, S5, S6, S7,
                  NI: tl.constexpr, NE: tl.constexpr,
                  F0: tl.constexpr, K0: tl.constexpr, A0: tl.constexpr, B0: tl.constexpr,
                  F1: tl.constexpr, K1: tl.constexpr, A1: tl.constexpr, B1: tl.constexpr,
                  F2: tl.constexpr, K2: tl.constexpr, A2: tl.constexpr, B2: tl.constexpr,
                  F3: tl.constexpr, K3: tl.constexpr, A3: tl.constexpr, B3: tl.constexpr,
                  F4: tl.constexpr, K4: tl.constexpr, A4: tl.constexpr, B4: tl.constexpr,
                  F5: tl.constexpr, K5: tl.constexpr, A5: tl.constexpr, B5: tl.constexpr,
                  F6: tl.constexpr, K6: tl.constexpr, A6: tl.constexpr, B6: tl.constexpr,
                  F7: tl.constexpr, K7: tl.constexpr, A7: tl.constexpr, B7: tl.constexpr,
                  BLOCK: tl.constexpr):
    """Y = the last of NE entries over NI inputs; unused inputs and results are
    placeholders (x0) that no entry reads."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    x0 = _load(X0, offs, mask)
    x1 = x0
    x2 = x0
    x3 = x0
    if NI > 1:
        x1 = _load(X1, offs, mask)
    if NI > 2:
        x2 = _load(X2, offs, mask)
    if NI > 3:
        x3 = _load(X3, offs, mask)
    r0 = _entry(F0, K0, A0, B0, S0, mask, x0, x1, x2, x3, x0, x0, x0, x0, x0, x0, x0, Y)
    r1 = r0
    r2 = r0
    r3 = r0
    r4 = r0
    r5 = r0
    r6 = r0
    y = r0
    if NE > 1:
        r1 = _entry(F1, K1, A1, B1, S1, mask, x0, x1, x2, x3, r0, x0, x0, x0, x0, x0, x0, Y)
        y = r1
    if NE > 2:
        r2 = _entry(F2, K2, A2, B2, S2, mask, x0, x1, x2, x3, r0, r1, x0, x0, x0, x0, x0, Y)
        y = r2
    if NE > 3:
        r3 = _entry(F3, K3, A3, B3, S3, mask, x0, x1, x2, x3, r0, r1, r2, x0, x0, x0, x0, Y)
        y = r3
    if NE > 4:
        r4 = _entry(F4, K4, A4, B4, S4, mask, x0, x1, x2, x3, r0, r1, r2, r3, x0, x0, x0, Y)
        y = r4
    if NE > 5:
        r5 = _entry(F5, K5, A5, B5, S5, mask, x0, x1, x2, x3, r0, r1, r2, r3, r4, x0, x0, Y)
        y = r5
    if NE > 6:
        r6 = _entry(F6, K6, A6, B6, S6, mask, x0, x1, x2, x3, r0, r1, r2, r3, r4, r5, x0, Y)
        y = r6
    if NE > 7:
        y = _entry(F7, K7, A7, B7, S7, mask, x0, x1, x2, x3, r0, r1, r2, r3, r4, r5, r6, Y)
    tl.store(Y + offs, y.to(Y.dtype.element_ty), mask=mask)


# --- the host side ------------------------------------------------------------------------
def _segments(chain: Sequence) -> List[Tuple[int, int]]:
    """Split ``chain`` into consecutive (start, stop) runs that one launch takes: at most
    MAX_CHAIN entries and MAX_INPUTS distinct outside arrays, and no entry but the run's
    last read after the run (its result is the only one the launch writes).  A single
    entry always qualifies, so every chain splits."""
    later_reads = [set() for _ in chain]  # entry -> the entries that read its result
    for j, (_, args, _) in enumerate(chain):
        for a in args:
            if a < 0:
                later_reads[-a - 1].add(j)

    def fits(i: int, k: int) -> bool:  # entries i..k-1 as one launch
        outside = {a if a >= 0 else ("r", -a - 1) for _, args, _ in chain[i:k]
                   for a in args if a >= 0 or -a - 1 < i}
        return (k - i <= MAX_CHAIN and len(outside) <= MAX_INPUTS
                and all(r < k for e in range(i, k - 1) for r in later_reads[e]))

    out, i = [], 0
    while i < len(chain):
        k = next(k for k in range(min(len(chain), i + MAX_CHAIN), i, -1) if fits(i, k))
        out.append((i, k))
        i = k
    return out


def _owned(a) -> bool:
    """An array with its own writable memory (CuPy arrays have no ``writeable`` flag)."""
    return getattr(a, "base", 0) is None and getattr(a.flags, "writeable", True)


def _run(chain: Sequence, arrays: Sequence, y) -> None:
    """Launch one run of at most MAX_CHAIN entries over at most MAX_INPUTS arrays
    (``args`` index ``arrays``), writing the last entry's result into ``y``."""
    n = y.size
    meta = {"NI": len(arrays), "NE": len(chain)}
    scalars = [0.0] * MAX_CHAIN
    for j in range(MAX_CHAIN):
        if j < len(chain):
            name, args, scalar = chain[j]
            fn, kind = FORMULAS[name]
            if kind >= SCALAR_KIND:
                scalars[j] = float(np.dtype(y.dtype).type(scalar))  # in the array's dtype
            a, b = (tuple(args) + (0,))[:2]
        else:
            fn, kind, a, b = None, UNARY_KIND, 0, 0
        meta.update({f"F{j}": fn, f"K{j}": kind, f"A{j}": a, f"B{j}": b})
    ptrs = [arg(x) for x in arrays]
    ptrs += [ptrs[0]] * (MAX_INPUTS - len(ptrs))
    block = elementwise_block(n)
    launch(_chain_kernel, (cdiv(n, block),), *ptrs, arg(y), n, *scalars, BLOCK=block,
           **OPTIONS, **meta)
    count("fused.fused_elemwise")


def fused_elemwise(*inputs, chain, inplace: int = -1, scratch=None):
    """The chain's result: one launch when it fits (up to MAX_CHAIN entries, MAX_INPUTS
    inputs), consecutive launches otherwise.  The output takes the memory of
    ``inputs[inplace]`` when memory planning offers it and the array owns it; ``scratch``
    is not needed (no temporaries unless the chain is split)."""
    inputs = [contiguous(x) for x in inputs]
    first = inputs[0]
    xp = xp_of(first)
    if 0 <= inplace < len(inputs) and _owned(inputs[inplace]):
        y = inputs[inplace]
    else:
        y = xp.empty(first.shape, first.dtype)
    if not first.size:
        return y
    results = {}  # entry index -> the array of a split run's result
    for i, k in _segments(chain):
        entries, arrays = _localise(chain, i, k, inputs, results)
        out = y if k == len(chain) else xp.empty(first.shape, first.dtype)
        _run(entries, arrays, out)
        results[k - 1] = out
    return y


def _localise(chain: Sequence, i: int, k: int, inputs: Sequence, results: dict):
    """Entries i..k-1 as a chain of their own: (entries, arrays their args index).
    Results of entries inside the run keep negative args (shifted by i); inputs and
    earlier runs' results become the run's arrays, each array once."""
    arrays: List = []

    def index(x) -> int:
        for p, o in enumerate(arrays):
            if o is x:
                return p
        arrays.append(x)
        return len(arrays) - 1

    entries = []
    for name, args, scalar in chain[i:k]:
        mapped = tuple(a + i if a < 0 and -a - 1 >= i else
                       index(inputs[a] if a >= 0 else results[-a - 1]) for a in args)
        entries.append((name, mapped, scalar))
    return entries, arrays

