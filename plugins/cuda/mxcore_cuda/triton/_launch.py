"""Launching Triton kernels with less host work per call.

``kernel[grid](*args)`` (Triton's ``JITFunction.run``) reads several knobs,
binds and specialises the arguments, builds a cache key from them and the
options, checks the globals the kernel read, builds launch metadata for the
launch hooks and then calls the compiled kernel's launcher.  Measured against a
stand-in driver on this project's CPU host (``plugins/cuda/launch_overhead.py``)
that is about twice the host time of calling the launcher after binding alone,
and a small training step is a chain of such launches.

``launch`` keeps Triton's own binder (the C-accelerated ``dynamic_func`` that
produces the specialisation: dtypes, 16-byte alignment of pointers, ints equal
to 1 or divisible by 16, 32/64-bit ranges, constexpr values), so it keys each
call by exactly what Triton compiles for, and caches per (kernel, device,
specialisation, options) the compiled kernel's launcher.  The first call of a
signature goes through ``JITFunction.run`` (compiling if needed), then runs once
more with the launcher replaced by a recorder; the entry is used only if the
recorded call is the one ``launch`` would make (grid, stream, function,
metadata, bound arguments), so a Triton whose launch convention differs keeps
its own path.  Launch hooks (Triton's profiler) send every call through Triton's
path while any is installed.

Not replicated: Triton's check that globals a kernel read have not changed
since it compiled (mxcore's kernels read constants only).
``MXCORE_CUDA_FAST_LAUNCH=0`` turns this off; interpreted mode never uses it.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Dict, Tuple

from triton.runtime import driver

from mxcore_cuda import INTERPRET

try:  # Triton 3.4+: launch hooks live in knobs.runtime
    from triton.knobs import runtime as _RUNTIME
    _KNOWN = hasattr(_RUNTIME, "launch_enter_hook") and hasattr(_RUNTIME, "launch_exit_hook")
except ImportError:
    _RUNTIME, _KNOWN = None, False

#: only where this Triton's hooks can be seen (an older one keeps its own path)
ENABLED = (os.environ.get("MXCORE_CUDA_FAST_LAUNCH", "1") != "0" and not INTERPRET
           and _KNOWN)

#: (id(kernel), device, specialisation, options) -> (launcher, function, metadata) or
#: None (that signature keeps Triton's path).  Bounded: a process that keeps making new
#: signatures (ever-changing alignments) stops adding entries, it does not grow.
_ENTRIES: Dict[Tuple, Any] = {}
MAX_ENTRIES = 4096
_LOCK = threading.Lock()


def cdiv(a: int, b: int) -> int:
    """Ceiling division (``triton.cdiv`` is a constexpr function, slower on the host)."""
    return -(-a // b)


def launch(kernel, grid: Tuple[int, ...], *args, **meta) -> None:
    """``kernel[grid](*args, **meta)``, through the cached launcher when it can be."""
    if not ENABLED:
        kernel[grid](*args, **meta)
        return
    active = driver.active
    device = active.get_current_device()
    try:  # Triton's binder: (bound arguments, specialisation, options)
        bound, spec, options = kernel.device_caches[device][-1](*args, **meta)
        key = (id(kernel), device, tuple(spec), tuple(options.items()))
        entry = _ENTRIES.get(key, False)
    except Exception:  # another Triton's layout, or bad arguments: Triton's path says
        kernel[grid](*args, **meta)
        return
    if entry and _hooks_idle(_RUNTIME):
        run, function, metadata = entry
        n = len(grid)
        run(grid[0], grid[1] if n > 1 else 1, grid[2] if n > 2 else 1,
            active.get_current_stream(device), function, metadata, None, None, None,
            *bound.values())
        return
    if entry is not False or len(_ENTRIES) >= MAX_ENTRIES:
        kernel[grid](*args, **meta)
        return
    # a new signature: while its launcher is swapped for the recorder, no other
    # thread's launch through here may reach it
    with _LOCK:
        compiled = kernel[grid](*args, **meta)
        recorded, run = _record(kernel, compiled, grid, args, meta)
        ok = recorded is not None and _same(
            recorded, (*_grid3(grid), active.get_current_stream(device), compiled.function,
                       compiled.packed_metadata), bound)
        _ENTRIES[key] = (run, compiled.function, compiled.packed_metadata) if ok else None


def _grid3(grid) -> Tuple[int, int, int]:
    return tuple(grid) + (1,) * (3 - len(grid))


def _hooks_idle(runtime) -> bool:
    """No launch hook installed (a hook chain with no calls counts as none)."""
    for hook in (runtime.launch_enter_hook, runtime.launch_exit_hook):
        if hook is not None and getattr(hook, "calls", True):
            return False
    return True


def _record(kernel, compiled, grid, args, meta):
    """(the launcher call Triton makes for these arguments, captured instead of run;
    the launcher), or (None, None) where it cannot be captured (no compiled kernel
    returned, hooks installed)."""
    if compiled is None or not hasattr(compiled, "function"):
        return None, None
    if not _hooks_idle(_RUNTIME):
        return None, None
    # Triton 3.x: ``run`` is a property over ``_run``; older: a plain attribute
    attr = "_run" if isinstance(getattr(type(compiled), "run", None), property) else "run"
    real = compiled.run  # initialises the handles first
    calls = []
    setattr(compiled, attr, lambda *a: calls.append(a))
    try:
        kernel[grid](*args, **meta)
    except Exception:
        return None, None
    finally:
        setattr(compiled, attr, real)
    return (calls[0] if len(calls) == 1 else None), real


def _same(recorded, head, bound) -> bool:
    """``recorded`` is (grid, stream, function, metadata, <metadata for hooks>,
    <enter hook>, <exit hook>, *bound arguments) with idle hooks."""
    values = tuple(bound.values())
    if len(recorded) != len(head) + 3 + len(values):
        return False
    try:
        if any(not (r is h or r == h) for r, h in zip(recorded, head)):
            return False
        if any(h is not None and getattr(h, "calls", True) for h in recorded[7:9]):
            return False
        return all(r is v or (type(r) is type(v) and r == v)
                   for r, v in zip(recorded[9:], values))
    except Exception:  # an argument whose == is not a bool: not comparable, not cached
        return False


def clear() -> None:
    """Forget every cached launcher (tests; after changing Triton's knobs)."""
    with _LOCK:
        _ENTRIES.clear()
