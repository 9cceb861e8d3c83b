"""Array-module fallback kernels: the CPU plugin's kernel tables
(``mxcore_cpu.kernels``), written against a numpy-compatible module, built for
the "cuda" device at priority -10 so that Triton kernels (priority 10) win
wherever their guards accept a call.

* interpreted mode: built with ``xp=numpy`` (host arrays);
* CuPy: built with ``xp=cupy`` and ``special=cupyx.scipy.special``, lazily: the
  table is declared from the numpy build (names, dtypes) and CuPy is imported
  when a kernel first runs.

What in the CPU tables is numpy-specific, and how CuPy gets around it:

* the optimizers' blocked scratch-buffer loop and the products' BLAS-thread
  hook (``mxcore_cpu.device.product_threads``): the CPU table already turns both
  off when ``xp`` is not numpy (whole-array ufunc passes; no host BLAS to steer);
* ``xp.errstate`` (integer division): CuPy has none; ``_CupyShim`` supplies a
  no-op context manager (CuPy does not warn on division by zero anyway);
* ``Generator.permutation`` (shuffle): CuPy's Generator lacks it;
  ``device.CupyGenerator`` adds it;
* ``xp.add.at`` (getitem_grad, take_grad, gather_nd_grad): replaced by CuPy-only kernels using
  ``cupyx.scatter_add`` (``CUPY_ONLY``), which interpreted mode skips: there the
  numpy versions run;
* bfloat16 in ``cupyx``: CuPy 14 supports bfloat16 (through ml_dtypes) in its core,
  but "``cupyx`` does *not* support bfloat16 yet in most places" (cupy#9630), so
  ``_SpecialShim`` (``cupyx.scipy.special``: sigmoid, erf, gelu) and the
  scatter-add kernels compute bfloat16 in float32 and round once.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Dict, List

import numpy as np
import scipy.special

import hal
from mxcore_cuda.placement import on_array_device

PRIORITY = -10

#: kernels that exist only in the CuPy table (interpreted mode uses numpy's own)
CUPY_ONLY = ("getitem_grad", "take_grad", "gather_nd_grad")


def _tables(xp, special) -> Dict[str, tuple]:
    """op -> (fn, dtypes, family name) from the CPU plugin's families."""
    from mxcore_cpu.kernels import FAMILIES
    out = {}
    for family in FAMILIES:
        fam = family.__name__.rsplit(".", 1)[-1]
        for op, (fn, dtypes) in family.kernels(xp, special).items():
            out[op] = (fn, dtypes, fam)
    return out


def numpy_kernels(device: str = "cuda") -> List[hal.Kernel]:
    return [hal.Kernel(op=op, device=device, fn=fn, dtypes=dtypes, priority=PRIORITY,
                       name=f"numpy.{fam}.{op}")
            for op, (fn, dtypes, fam) in _tables(np, scipy.special).items()]


class _CupyShim:
    """cupy, plus what the CPU tables use and CuPy lacks."""

    def __init__(self, cupy):
        self._cupy = cupy

    def __getattr__(self, name):
        # kernels read xp.<name> on every call: keep it, so that later reads are plain
        # instance attributes instead of a __getattr__ call each
        value = getattr(self._cupy, name)
        setattr(self, name, value)
        return value

    @staticmethod
    def errstate(**kwargs):
        return contextlib.nullcontext()


BF16 = hal.DTYPES.get("bfloat16")


class _SpecialShim:
    """A special-functions module whose functions compute bfloat16 in float32 and
    round once (CuPy 14's ``cupyx.scipy.special`` has no bfloat16 loops); other
    dtypes go straight through."""

    def __init__(self, special):
        self._special = special

    def __getattr__(self, name):
        fn = getattr(self._special, name)

        def call(x, out=None):
            if x.dtype != BF16:
                return fn(x) if out is None else fn(x, out=out)
            r = fn(x.astype(np.float32)).astype(BF16)
            if out is None:
                return r
            out[...] = r
            return out
        call.__name__ = name
        setattr(self, name, call)  # later reads skip __getattr__
        return call


def _cupy_only(cupy, scatter_add=None) -> Dict[str, tuple]:
    if scatter_add is None:
        import cupyx
        scatter_add = cupyx.scatter_add

    def advanced(key):
        return any(hasattr(k, "shape") and hasattr(k, "dtype") for k in key)

    def scatter_into(shape, key, g):
        """zeros(shape) with g added at key (repeated indices accumulate);
        bfloat16 accumulates in float32 (cupyx has no bfloat16 scatter-add)."""
        acc = cupy.float32 if g.dtype == BF16 else g.dtype
        out = cupy.zeros(shape, dtype=acc)
        scatter_add(out, key, g.astype(acc, copy=False))
        return out.astype(g.dtype, copy=False)

    def getitem_grad(g, key, shape):
        if advanced(key):
            return scatter_into(shape, key, g)
        out = cupy.zeros(shape, dtype=g.dtype)
        out[key] = g
        return out

    def take_grad(g, indices, axis, mode, size):
        idx = indices.astype(cupy.int64)
        if mode == "wrap":
            idx = cupy.mod(idx, size)
        elif mode == "clip":
            idx = cupy.clip(idx, 0, size - 1)
        else:
            idx = cupy.where(idx < 0, idx + size, idx)
        shape = g.shape[:axis] + (size,) + g.shape[axis + idx.ndim:]
        return scatter_into(shape, (slice(None),) * axis + (idx,), g)

    def gather_nd_grad(g, indices, shape):
        idx = indices.astype(cupy.int64)
        key = []
        for axis in range(idx.shape[0]):
            row, n = idx[axis], shape[axis]
            if row.size and (int(row.min()) < -n or int(row.max()) >= n):
                raise IndexError(f"an index of axis {axis} is out of bounds for size {n}")
            key.append(cupy.where(row < 0, row + n, row))
        return scatter_into(shape, tuple(key), g)

    return {"getitem_grad": getitem_grad, "take_grad": take_grad,
            "gather_nd_grad": gather_nd_grad}


class _LazyCupyTable:
    """Builds the CuPy kernel table on first use (imports cupy then)."""

    def __init__(self):
        self._table = None
        self._lock = threading.Lock()

    def get(self, op: str):
        if self._table is None:
            with self._lock:
                if self._table is None:
                    import cupy
                    import cupyx.scipy.special
                    table = {o: fn for o, (fn, _, _) in
                             _tables(_CupyShim(cupy),
                                     _SpecialShim(cupyx.scipy.special)).items()}
                    table.update(_cupy_only(cupy))
                    self._table = {o: on_array_device(fn) for o, fn in table.items()}
        return self._table[op]


def cupy_kernels(device: str = "cuda") -> List[hal.Kernel]:
    table = _LazyCupyTable()
    out = []
    for op, (_, dtypes, fam) in _tables(np, scipy.special).items():
        def kernel(*arrays, _op=op, **attrs):
            return table.get(_op)(*arrays, **attrs)
        kernel.__qualname__ = f"cupy.{fam}.{op}"
        tag = "cupy-only" if op in CUPY_ONLY else "cupy"
        out.append(hal.Kernel(op=op, device=device, fn=kernel, dtypes=dtypes,
                              priority=PRIORITY, name=f"{tag}.{fam}.{op}"))
    return out
