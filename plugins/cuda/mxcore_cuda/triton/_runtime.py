"""What every Triton launcher shares: the array module, the argument adapter,
block sizes, and a launch counter (a test hook: which kernels really ran)."""
from __future__ import annotations

import collections
import os

import numpy as np

from mxcore_cuda import INTERPRET
from mxcore_cuda.interpret import DeviceTensor, HostTensor

#: kernel name -> number of launches (tests read it to see that a Triton kernel ran)
LAUNCHES: collections.Counter = collections.Counter()

#: In interpreted mode Triton kernels serve arrays up to this many elements; larger
#: ones go to the numpy fallback (the interpreter is a correctness tool, ~1 ms a program).
INTERPRET_MAX_ELEMENTS = int(os.environ.get("MXCORE_CUDA_INTERPRET_MAX", 1 << 16))

#: On a real GPU, kernels that do what one CuPy call does (elementwise, reductions,
#: random, matmul) take arrays of at least this many elements: below it Triton's
#: per-launch Python overhead (~20-30 us) loses to CuPy's single ufunc/CUB/cuBLAS launch,
#: and the CuPy fallback (priority -10) serves the call.  Fused kernels (softmax, softmax
#: cross-entropy, layer norm, optimizer updates) replace several CuPy launches with one
#: and take every size.  Interpreted mode ignores it (CI exercises the kernels at every
#: size up to INTERPRET_MAX_ELEMENTS).
MIN_ELEMENTS = int(os.environ.get("MXCORE_CUDA_TRITON_MIN_ELEMENTS", 1 << 16))


#: fully_connected and its backward (fused: one launch for CuPy's two to six) take
#: every 16-bit product on a GPU (tensor cores), but float32 ones only up to this many
#: multiply-adds: IEEE-float32 tl.dot runs on the FMA units, slower than cuBLAS SGEMM,
#: so past a few microseconds of device time (2**26: ~64x1024x1024) the launches saved
#: no longer pay for it.
FUSED_FP32_MAX_MACS = int(os.environ.get("MXCORE_CUDA_FUSED_FP32_MAX_MACS", 1 << 26))


def xp_of(a):
    """The array module of ``a`` (numpy in interpreted mode, cupy on GPUs)."""
    if INTERPRET or isinstance(a, (np.ndarray, np.generic)):
        return np
    import cupy
    return cupy


def bind_triton_to_cupy() -> None:
    """Make Triton launch on CuPy's current device and stream.  Without this,
    Triton asks torch (when imported) or uses the device's default stream, so a
    kernel could run unordered with CuPy work queued on another stream (a
    ``hal.Stream`` made current) or with the pinned uploads of ``upload``."""
    import cupy
    from triton.runtime import driver
    active = driver.active
    active.get_current_device = cupy.cuda.runtime.getDevice
    active.set_current_device = cupy.cuda.runtime.setDevice
    active.get_current_stream = lambda device=None: cupy.cuda.get_current_stream().ptr


_BOUND = False

if INTERPRET:
    def arg(a):
        return HostTensor(a)
else:
    def arg(a):
        global _BOUND
        if not _BOUND:  # first launch in this process: the driver exists only now
            bind_triton_to_cupy()
            _BOUND = True
        return DeviceTensor(a)


def contiguous(a):
    """``a`` as a C-contiguous array (numpy scalars, which fallback kernels may
    return for 0-d results, become 0-d arrays)."""
    if isinstance(a, np.generic):
        return np.asarray(a)  # 0-d (ascontiguousarray would make it 1-d)
    return a if a.flags.c_contiguous else xp_of(a).ascontiguousarray(a)


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def elementwise_block(n: int) -> int:
    # interpreted: one program per 4096 elements keeps numpy temporaries small and
    # programs few; GPU: 1024-element blocks, 4 warps (bandwidth-bound kernels)
    return min(4096, max(16, next_pow2(n))) if INTERPRET else 1024


def numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def size_ok(shape) -> bool:
    """Interpreted mode: keep the interpreter to small arrays."""
    if not INTERPRET:
        return True
    return numel(shape) <= INTERPRET_MAX_ELEMENTS


def worth_launching(shape, dtypes=()) -> bool:
    """The size window of launch-bound kernels: interpreted, up to the interpreter's
    maximum; on a GPU, at least MIN_ELEMENTS (smaller calls go to the CuPy fallback),
    except bfloat16 (the first of ``dtypes``), which takes every size: CuPy's
    bfloat16 support is experimental (cupy#9494), the Triton kernels are the ones CI
    checks in bfloat16, and small bfloat16 calls are rare in training."""
    n = numel(shape)
    if INTERPRET:
        return n <= INTERPRET_MAX_ELEMENTS
    if dtypes and dtypes[0] == "bfloat16":
        return n > 0
    return n >= MIN_ELEMENTS


def count(name: str) -> None:
    LAUNCHES[name] += 1


#: softmax rows are one block: at most this many columns
MAX_COLS_SOFTMAX = 16384


def upload(host: np.ndarray):
    """``host`` (a small numpy array: a kernel's table of pointers and
    hyper-parameters) as a kernel argument: itself when interpreted, a device
    copy made without waiting for the GPU otherwise (``staging``)."""
    if INTERPRET:
        return host
    from mxcore_cuda import staging
    return staging.upload(host)
