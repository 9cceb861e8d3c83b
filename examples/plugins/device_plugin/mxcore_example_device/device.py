"""``hostsim``: a simulated accelerator whose memory is host memory.

Its arrays are numpy arrays, so it can borrow every CPU kernel (``fallback``); it
keeps its own account of the memory its arrays hold, as a real device's allocator
would, and registers native kernels for a few ops (``kernels.py``).
"""
from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Dict, Tuple

import numpy as np

import hal

#: set to 1 to make the device unavailable (as a machine without the hardware would be)
DISABLE_ENV = "MXCORE_HOSTSIM_DISABLE"


class HostSimDevice(hal.DeviceType):
    kind = "hostsim"
    xp = np                      # the array module its kernels (and borrowed ones) use
    host_memory = True           # arrays are host numpy arrays: mxcore reads them directly
    dtypes = hal.ALL_DTYPES
    description = "simulated accelerator on host memory (mxcore-example-device)"
    # ops without a hostsim kernel run the CPU's, on the same arrays
    fallback = ("cpu",)

    def __init__(self) -> None:
        # RLock: a finalizer may run (garbage collection) while this thread holds it
        self._lock = threading.RLock()
        self._tracked: Dict[int, weakref.finalize] = {}   # id(buffer) -> its finalizer
        self._live_bytes = 0
        self._peak_bytes = 0
        self._allocations = 0

    # availability -----------------------------------------------------------------------
    def availability(self) -> Tuple[bool, str]:
        if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
            return False, f"disabled by {DISABLE_ENV}"
        return True, ""

    def device_count(self) -> int:
        return 1

    # memory -----------------------------------------------------------------------------
    def allocate(self, index: int, shape: Tuple[int, ...], dtype) -> np.ndarray:
        return self._track(np.empty(shape, dtype=dtype))

    def free(self, index: int, array: Any) -> None:
        # host memory cannot be handed back early: the buffer just leaves the account
        with self._lock:
            fin = self._tracked.get(id(_owner(array)))
        if fin is not None:
            fin()

    def from_host(self, index: int, array: np.ndarray) -> np.ndarray:
        return self._track(np.array(array, copy=True, order="C"))

    def to_host(self, index: int, array: Any) -> np.ndarray:
        # the caller copies into the destination device's memory
        return np.asarray(array)

    def adopt_output(self, array: Any) -> Any:
        # kernels (the CPU's included) allocate through numpy, not ``allocate``: their
        # outputs are accounted here.  Full reductions may return a numpy scalar, which
        # cannot be weakly referenced: it becomes a 0-d array.
        if not isinstance(array, np.ndarray):
            array = np.asarray(array)
        return self._track(array)

    def memory_stats(self, index: int) -> Dict[str, int]:
        with self._lock:
            return {"live_bytes": self._live_bytes, "peak_bytes": self._peak_bytes,
                    "live_buffers": len(self._tracked), "allocations": self._allocations}

    def _track(self, array: np.ndarray) -> np.ndarray:
        """Count the buffer behind ``array`` once while it lives (views share it)."""
        owner = _owner(array)
        with self._lock:
            if id(owner) not in self._tracked:
                nbytes = owner.nbytes
                fin = weakref.finalize(owner, self._release, id(owner), nbytes)
                fin.atexit = False       # nothing to account for once the process ends
                self._tracked[id(owner)] = fin
                self._live_bytes += nbytes
                self._peak_bytes = max(self._peak_bytes, self._live_bytes)
                self._allocations += 1
        return array

    def _release(self, key: int, nbytes: int) -> None:
        with self._lock:
            self._tracked.pop(key, None)
            self._live_bytes -= nbytes

    # ordering -----------------------------------------------------------------------------
    def synchronize(self, index: int) -> None:
        """Kernels run synchronously on the host: nothing is ever pending."""

    def properties(self, index: int) -> Dict[str, Any]:
        from mxcore_example_device.kernels import LAUNCHES
        return {**super().properties(index), "native_launches": dict(LAUNCHES)}


def _owner(array: np.ndarray) -> np.ndarray:
    """The array that owns the memory of ``array`` (itself unless it is a view)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array
