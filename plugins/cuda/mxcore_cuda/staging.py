"""Host-to-device copies that do not wait for the GPU.

A copy from pageable host memory (``cupy.asarray(numpy_array)``) synchronises
with every kernel queued on the stream: a training step that moves a batch, or
a kernel that uploads a small table of pointers, would stop the host until the
GPU has drained its queue, so the host could never run ahead.  Copies from
page-locked (pinned) memory are asynchronous: ``upload`` stages the array in
one of a ring of pinned buffers and queues the copy on CuPy's current stream.

Arrays up to ``MAX_BYTES`` (``MXCORE_CUDA_STAGING_MAX_BYTES``, default 8 MiB)
take this path; each slot grows to the largest array it has staged, so the
ring holds at most ``SLOTS * MAX_BYTES`` of pinned memory.  Larger arrays are
copied directly (their copy time dwarfs the wait).
"""
from __future__ import annotations

import os
import threading

import numpy as np

MAX_BYTES = int(os.environ.get("MXCORE_CUDA_STAGING_MAX_BYTES", 8 << 20))
SLOTS = 8


class PinnedRing:
    """Host-to-device copies through ``slots`` page-locked buffers, each refilled
    only after the copy that last read it has finished (an event per slot): the
    host runs up to ``slots`` copies ahead of the device and never waits for the
    kernels queued before a copy."""

    def __init__(self, slots: int = 8):
        self._lock = threading.Lock()
        self._slots = [[None, None] for _ in range(slots)]  # [pinned bytes, event]
        self._next = 0

    def upload(self, host: np.ndarray):
        """A device copy of ``host`` (C-contiguous), on CuPy's current device and
        stream; ``host`` may change as soon as this returns."""
        import cupy
        import cupyx
        stream = cupy.cuda.get_current_stream()
        with self._lock:
            slot = self._slots[self._next]
            self._next = (self._next + 1) % len(self._slots)
            buf, event = slot
            if event is not None:
                event.synchronize()
            if buf is None or buf.nbytes < host.nbytes:
                buf = slot[0] = cupyx.empty_pinned((max(host.nbytes, 4096),), np.uint8)
            staged = buf[:host.nbytes].view(host.dtype).reshape(host.shape)
            staged[...] = host
            dev = cupy.empty(host.shape, host.dtype)
            dev.set(staged, stream=stream)
            slot[1] = stream.record()
        return dev


_RING = None
_RING_LOCK = threading.Lock()


def upload(host: np.ndarray):
    """``host`` (C-contiguous, at most ``MAX_BYTES``) copied to CuPy's current
    device without waiting for queued kernels."""
    global _RING
    if _RING is None:
        with _RING_LOCK:
            if _RING is None:
                _RING = PinnedRing(SLOTS)
    return _RING.upload(host)
