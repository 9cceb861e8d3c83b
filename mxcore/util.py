"""MXNet's ``mx.util``: device queries (``get_gpu_count``, ``get_gpu_memory``),
environment access (``getenv``, ``setenv``) and the NumPy-semantics switches.

MXNet 1.x has two shape semantics: the legacy one (no zero-size dimensions, no
0-d arrays) and NumPy's (``set_np_shape(True)``).  mxcore arrays always follow
NumPy's shapes, so the switch only records the flag that ``is_np_shape`` reports;
MXNet's NumPy array interface (``mx.np``, ``is_np_array``) is not provided.
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
from typing import Callable, Iterator, Optional, Tuple

from mxcore.context import gpu_memory_info
from mxcore.device import num_gpus

__all__ = ["get_gpu_count", "get_gpu_memory", "getenv", "setenv", "is_np_array",
           "is_np_shape", "set_np_shape", "np_shape", "use_np_shape"]


def get_gpu_count() -> int:
    """How many GPUs this process can use (0 without a usable cuda device)."""
    return num_gpus()


def get_gpu_memory(gpu_dev_id: int) -> Tuple[int, int]:
    """``(free, total)`` bytes of GPU ``gpu_dev_id`` (``mx.context.gpu_memory_info``)."""
    return gpu_memory_info(gpu_dev_id)


def getenv(name: str) -> Optional[str]:
    """The environment variable ``name``, or None when unset."""
    return os.environ.get(name)


def setenv(name: str, value: Optional[str]) -> None:
    """Set (or with None, unset) the environment variable ``name``."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = str(value)


def is_np_array() -> bool:
    """False: mxcore has no ``mx.np`` array interface."""
    return False


_NP_SHAPE = threading.local()


def is_np_shape() -> bool:
    """The flag last given to ``set_np_shape`` in this thread (default False)."""
    return getattr(_NP_SHAPE, "active", False)


def set_np_shape(active: bool) -> bool:
    """Record NumPy shape semantics as on or off for this thread; returns the previous
    flag.  mxcore's shapes are NumPy's either way (zero-size axes and 0-d arrays)."""
    prev = is_np_shape()
    _NP_SHAPE.active = bool(active)
    return prev


@contextlib.contextmanager
def np_shape(active: bool = True) -> Iterator[None]:
    """``with mx.np_shape(True):`` sets the flag for a block and restores it after."""
    prev = set_np_shape(active)
    try:
        yield
    finally:
        set_np_shape(prev)


def use_np_shape(func: Callable) -> Callable:
    """Run ``func`` with the NumPy-shape flag set."""
    @functools.wraps(func)
    def run(*args, **kwargs):
        with np_shape(True):
            return func(*args, **kwargs)
    return run
