"""Plugin entry point (``cuda = "mxcore_cuda.plugin"`` in group ``mxcore.plugins``):
registers the "cuda" device, the Triton kernels (priority 10) and the
array-module fallback kernels (priority -10).

Without ``MXCORE_CUDA_INTERPRET`` the device is CUDADevice (CuPy); this module
imports neither CuPy nor Triton, so the plugin loads on machines with neither
(the device then reports why it is unavailable).  With
``MXCORE_CUDA_INTERPRET=1`` the device is the interpreted one on host memory.
"""
from __future__ import annotations

import importlib.util

import hal
from mxcore_cuda import INTERPRET
from mxcore_cuda.device import CUDADevice, InterpretedCUDADevice

MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION

#: why Triton kernels are not registered ("" when they are)
TRITON_MISSING = "" if importlib.util.find_spec("triton") else \
    "Triton is not installed: no Triton kernels registered"


@hal.hookimpl
def register_devices(register):
    register(InterpretedCUDADevice() if INTERPRET else CUDADevice())


@hal.hookimpl
def register_kernels(register):
    from mxcore_cuda import arraymodule
    if not TRITON_MISSING:
        from mxcore_cuda.triton import kernels
        for k in kernels("cuda"):
            register(k)
    fallbacks = arraymodule.numpy_kernels("cuda") if INTERPRET else \
        arraymodule.cupy_kernels("cuda")
    for k in fallbacks:
        register(k)
