"""Fused in-place optimizer updates, one launch for a whole list of weights:
sgd_update, sgd_mom_update, nag_mom_update, adam_update, adamw_update and the
multi-weight forms multi_sgd_update, multi_sgd_mom_update, multi_adam_update,
multi_adamw_update (a single-weight op is a list of one).  Formulas are
MXNet's, the same as mxcore_cpu.kernels.optimizer:

* sgd:      s = clip(rescale_grad*g); w = (1 - lr*wd)*w - lr*s
* sgd_mom:  s = clip(rescale_grad*g); mom = momentum*mom - lr*s - lr*wd*w; w += mom
* nag_mom:  s = clip(rescale_grad*g) + wd*w; mom = momentum*mom - lr*s;
            w += momentum*mom - lr*s
* adam:     s = clip(rescale_grad*g + wd*w); m = b1*m + (1-b1)*s;
            v = b2*v + (1-b2)*s^2; w -= lr*m/(sqrt(v) + epsilon)
* adamw:    s = clip(rescale_grad*g); m, v as adam;
            w -= eta*(lr*m/(sqrt(v) + epsilon) + wd*w)

How one launch reaches every weight: a table of int64 words holds per weight a record
``[weight, grad, state1, state2 addresses, size, lr, wd, eta, 1 - lr*wd,
lr*wd]`` (floats as their float64 bits), then the shared hyper-parameters.  It
is packed with ``struct`` and reaches the GPU through ``_runtime.upload`` (no
synchronisation); the last few uploaded tables are kept by content, so the usual
training step, whose addresses and hyper-parameters do not change, uploads
nothing (a device table is only ever read).  A second table, cached by the list of sizes (it depends on nothing else), maps
each program to (weight, first element): a program updates CHUNK elements of
one weight.  Addresses become typed pointers in the kernel (int64 ->
pointer cast); the dtype comes from the first weight, passed as a real
argument.  Hyper-parameters travel as float64 bits because Triton passes
Python floats as float32, which would round float64 updates; float16 weights
compute in float32.  Non-contiguous arrays are updated through contiguous
copies written back afterwards.
"""
from __future__ import annotations

import collections
import functools
import struct
import threading
from typing import Dict, Sequence, Tuple

import numpy as np
import triton
import triton.language as tl

from mxcore_cuda import INTERPRET
from mxcore_cuda.triton._launch import cdiv, launch
from mxcore_cuda.triton._runtime import arg, count, elementwise_block, upload, xp_of

#: op -> (kernel KIND, states per weight)
KINDS: Dict[str, Tuple[int, int]] = {"sgd": (0, 0), "sgd_mom": (1, 1), "nag_mom": (2, 1),
                                     "adam": (3, 2), "adamw": (4, 2)}
RECORD = 10  # int64 words per weight
#: a weight's record and the shared hyper-parameters, as the table stores them
_RECORD = struct.Struct("<5q5d")
_SHARED = struct.Struct("<7d")
#: (device, table bytes) -> its device copy, the most recently used last
_TABLES: "collections.OrderedDict[tuple, object]" = collections.OrderedDict()
MAX_TABLES = 8
_TABLES_LOCK = threading.Lock()
#: programs update BLOCK elements ITERS times (GPU: 8192-element chunks, fewer programs
#: and a smaller program table for big weights)
BLOCK = 1024
ITERS = 1 if INTERPRET else 8


@triton.jit
def _f(P, F64: tl.constexpr):
    """A float64 stored as int64 bits at P, in the compute type."""
    x = tl.load(P).to(tl.float64, bitcast=True)
    if not F64:
        x = x.to(tl.float32)
    return x


@triton.jit
def _ptr(P, W0):
    """An address stored at P as a pointer to the weights' element type."""
    return tl.load(P).to(tl.pointer_type(W0.dtype.element_ty), bitcast=True)


@triton.jit
def _update_kernel(TAB, PROGS, W0, S0, KIND: tl.constexpr, CLIP: tl.constexpr,
                   F64: tl.constexpr, BLOCK: tl.constexpr, ITERS: tl.constexpr):
    p = tl.program_id(0)
    t = tl.load(PROGS + 2 * p)
    start = tl.load(PROGS + 2 * p + 1)
    rec = TAB + t * 10
    W = _ptr(rec, W0)
    G = _ptr(rec + 1, W0)
    S1 = _ptr(rec + 2, W0)
    S2 = _ptr(rec + 3, W0)
    n = tl.load(rec + 4)
    lr = _f(rec + 5, F64)
    wd = _f(rec + 6, F64)
    eta = _f(rec + 7, F64)
    decay = _f(rec + 8, F64)
    lrwd = _f(rec + 9, F64)
    rescale = _f(TAB + S0, F64)
    clip = _f(TAB + S0 + 1, F64)
    a = _f(TAB + S0 + 2, F64)      # momentum, or beta1
    ca = _f(TAB + S0 + 3, F64)     # 1 - beta1
    b = _f(TAB + S0 + 4, F64)      # beta2
    cb = _f(TAB + S0 + 5, F64)     # 1 - beta2
    eps = _f(TAB + S0 + 6, F64)
    for i in range(ITERS):
        offs = start + i * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        w = tl.load(W + offs, mask=mask).to(lr.dtype)
        g = tl.load(G + offs, mask=mask).to(lr.dtype)
        if KIND == 3:
            s = g * rescale + wd * w
        else:
            s = g * rescale
        if CLIP:
            s = tl.minimum(tl.maximum(s, -clip), clip)
        if KIND == 0:
            w = decay * w - lr * s
        elif KIND == 1:
            mom = tl.load(S1 + offs, mask=mask).to(lr.dtype)
            mom = a * mom - lr * s - lrwd * w
            tl.store(S1 + offs, mom.to(S1.dtype.element_ty), mask=mask)
            w = w + mom
        elif KIND == 2:
            s = s + wd * w
            mom = tl.load(S1 + offs, mask=mask).to(lr.dtype)
            mom = a * mom - lr * s
            tl.store(S1 + offs, mom.to(S1.dtype.element_ty), mask=mask)
            w = w + a * mom - lr * s
        else:
            m = tl.load(S1 + offs, mask=mask).to(lr.dtype)
            v = tl.load(S2 + offs, mask=mask).to(lr.dtype)
            m = a * m + ca * s
            v = b * v + cb * (s * s)
            tl.store(S1 + offs, m.to(S1.dtype.element_ty), mask=mask)
            tl.store(S2 + offs, v.to(S2.dtype.element_ty), mask=mask)
            if F64:
                step = m / (tl.sqrt(v) + eps)
            else:  # IEEE rounding: sqrt_rn/div_rn take fp32 only
                step = tl.div_rn(m, tl.sqrt_rn(v) + eps)
            if KIND == 3:
                w = w - lr * step
            else:
                w = w - eta * (lr * step + wd * w)
        tl.store(W + offs, w.to(W.dtype.element_ty), mask=mask)


@functools.lru_cache(maxsize=64)
def _programs(sizes: Tuple[int, ...], chunk: int, device: int):
    """The (weight, first element) pair of every program, for these sizes (an
    array on ``device``, the current one, uploaded once per list of sizes)."""
    pairs = [(t, lo) for t, n in enumerate(sizes) for lo in range(0, n, chunk)]
    return upload(np.asarray(pairs, dtype=np.int64).reshape(-1))


def _current_device() -> int:
    if INTERPRET:
        return 0
    import cupy
    return cupy.cuda.runtime.getDevice()


def _address(a) -> int:
    return a.__array_interface__["data"][0] if INTERPRET else a.data.ptr


def _launch(kind: str, groups: Sequence[Sequence], per_weight: Sequence[Tuple[float, ...]],
            shared: Tuple[float, ...], clip: bool) -> None:
    """One launch updating every (weight, grad, states...) group in ``groups``
    (contiguous arrays of one dtype); ``per_weight`` holds (lr, wd, eta) each."""
    groups = [(g, hp) for g, hp in zip(groups, per_weight) if g[0].size]
    if not groups:
        return
    code, nstates = KINDS[kind]
    sizes = tuple(g[0].size for g, _ in groups)
    records = []
    for arrays, (lr, wd, eta) in groups:
        w = _address(arrays[0])
        states = [_address(s) for s in arrays[2:2 + nstates]] + [w] * (2 - nstates)
        records.append(_RECORD.pack(w, _address(arrays[1]), *states, arrays[0].size,
                                    lr, wd, eta, 1.0 - lr * wd, lr * wd))
    records.append(_SHARED.pack(*shared))
    device = _current_device()
    table = _device_table(b"".join(records), device)
    w0 = groups[0][0][0]
    f64 = w0.dtype == np.float64
    block = elementwise_block(max(sizes)) if INTERPRET else BLOCK
    progs = _programs(sizes, block * ITERS, device)
    nprog = sum(cdiv(n, block * ITERS) for n in sizes)
    launch(_update_kernel, (nprog,), arg(table), arg(progs), arg(w0), RECORD * len(groups),
           KIND=code, CLIP=clip, F64=f64, BLOCK=block, ITERS=ITERS)


def _device_table(raw: bytes, device: int):
    """The table ``raw`` on ``device``: uploaded once, then reused while it is one of
    the MAX_TABLES most recently used (kernels only read it)."""
    key = (device, raw)
    with _TABLES_LOCK:
        table = _TABLES.get(key)
        if table is not None:
            _TABLES.move_to_end(key)
            return table
    table = upload(np.frombuffer(raw, dtype="<i8").copy())
    with _TABLES_LOCK:
        _TABLES[key] = table
        while len(_TABLES) > MAX_TABLES:
            _TABLES.popitem(last=False)
    return table


def _run(kind: str, groups, per_weight, shared, clip) -> None:
    """``_launch`` on contiguous arrays; copies of non-contiguous ones are
    written back (weights and states: the gradient is never written)."""
    flat = []
    for g in groups:
        flat.append(tuple(a if a.flags.c_contiguous else xp_of(a).ascontiguousarray(a)
                          for a in g))
    _launch(kind, flat, per_weight, shared, clip)
    for g, f in zip(groups, flat):
        for i, (a, c) in enumerate(zip(g, f)):
            if c is not a and i != 1:
                a[...] = c


def _shared(rescale_grad, clip_gradient, momentum=0.0, beta1=None, beta2=None, epsilon=0.0):
    """The hyper-parameters every weight shares, in the table's order:
    rescale, clip, momentum or beta1, 1 - beta1, beta2, 1 - beta2, epsilon."""
    if beta1 is None:
        return (rescale_grad, clip_gradient, momentum, 0.0, 0.0, 0.0, epsilon)
    return (rescale_grad, clip_gradient, beta1, 1.0 - beta1, beta2, 1.0 - beta2, epsilon)


def sgd_update(w, g, lr, wd, rescale_grad, clip_gradient):
    _run("sgd", [(w, g)], [(lr, wd, 1.0)], _shared(rescale_grad, clip_gradient),
         clip_gradient >= 0)
    count("optimizer.sgd_update")
    return w


def sgd_mom_update(w, g, mom, lr, momentum, wd, rescale_grad, clip_gradient):
    _run("sgd_mom", [(w, g, mom)], [(lr, wd, 1.0)],
         _shared(rescale_grad, clip_gradient, momentum), clip_gradient >= 0)
    count("optimizer.sgd_mom_update")
    return w


def nag_mom_update(w, g, mom, lr, momentum, wd, rescale_grad, clip_gradient):
    _run("nag_mom", [(w, g, mom)], [(lr, wd, 1.0)],
         _shared(rescale_grad, clip_gradient, momentum), clip_gradient >= 0)
    count("optimizer.nag_mom_update")
    return w


def adam_update(w, g, mean, var, lr, beta1, beta2, epsilon, wd, rescale_grad, clip_gradient):
    _run("adam", [(w, g, mean, var)], [(lr, wd, 1.0)],
         _shared(rescale_grad, clip_gradient, epsilon=epsilon, beta1=beta1, beta2=beta2),
         clip_gradient >= 0)
    count("optimizer.adam_update")
    return w


def adamw_update(w, g, mean, var, lr, eta, beta1, beta2, epsilon, wd, rescale_grad,
                 clip_gradient):
    _run("adamw", [(w, g, mean, var)], [(lr, wd, eta)],
         _shared(rescale_grad, clip_gradient, epsilon=epsilon, beta1=beta1, beta2=beta2),
         clip_gradient >= 0)
    count("optimizer.adamw_update")
    return w


def _multi(kind: str, per: int):
    """The multi-weight op of ``kind``: arrays interleaved ``per`` to a weight,
    ``lrs``/``wds`` (and ``etas``) one per weight, one launch."""
    def kernel(*arrays, lrs, wds, num_weights, rescale_grad, clip_gradient, etas=None,
               momentum=0.0, beta1=None, beta2=None, epsilon=0.0):
        groups = [arrays[per * i:per * i + per] for i in range(num_weights)]
        etas = etas if etas is not None else (1.0,) * num_weights
        shared = _shared(rescale_grad, clip_gradient, momentum, epsilon=epsilon, beta1=beta1,
                         beta2=beta2)
        _run(kind, groups, list(zip(lrs, wds, etas)), shared, clip_gradient >= 0)
        count(f"optimizer.multi_{kind}_update")
        return tuple(arrays[0::per])
    kernel.__qualname__ = kernel.__name__ = f"triton_multi_{kind}_update"
    return kernel


multi_sgd_update = _multi("sgd", 2)
multi_sgd_mom_update = _multi("sgd_mom", 3)
multi_adam_update = _multi("adam", 4)
multi_adamw_update = _multi("adamw", 4)
for _f_, _n in ((sgd_update, "sgd_update"), (sgd_mom_update, "sgd_mom_update"),
                (nag_mom_update, "nag_mom_update"), (adam_update, "adam_update"),
                (adamw_update, "adamw_update")):
    _f_.__qualname__ = f"triton_{_n}"
