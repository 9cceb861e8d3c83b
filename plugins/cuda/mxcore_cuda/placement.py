"""Which GPU a kernel runs on.

CuPy and Triton launch on the *current* device; an array on ``cuda:1`` given to
a kernel while device 0 is current fails (CuPy) or reads the wrong memory
(Triton).  With more than one GPU every kernel therefore runs inside the
device context of its first CuPy array argument.  With one GPU (or the
interpreter) kernels stay unwrapped: entering a device context costs about a
microsecond per call, which the hot path does not pay for nothing.
"""
from __future__ import annotations

import functools
from typing import Callable


@functools.lru_cache(maxsize=1)
def several_gpus() -> bool:
    """Whether this process sees more than one GPU (asked once, at the first
    kernel call)."""
    from mxcore_cuda import INTERPRET
    if INTERPRET:
        return False
    import cupy
    return cupy.cuda.runtime.getDeviceCount() > 1


def on_array_device(fn: Callable) -> Callable:
    """``fn`` run on the device of its first CuPy array argument (when there are
    several GPUs; ``fn`` itself otherwise)."""
    if not several_gpus():
        return fn
    import cupy
    ndarray = cupy.ndarray

    def kernel(*arrays, **attrs):
        for a in arrays:
            if isinstance(a, ndarray):
                with a.device:
                    return fn(*arrays, **attrs)
        return fn(*arrays, **attrs)
    kernel.__name__ = kernel.__qualname__ = getattr(fn, "__qualname__", "kernel")
    return kernel
