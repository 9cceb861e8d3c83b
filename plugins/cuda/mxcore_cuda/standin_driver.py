"""A stand-in Triton driver for machines without a GPU: kernels compile for a real
target (sm_90, with Triton's compiler and bundled ptxas) and "launch" into a log.

Everything on the host side of a launch up to the CUDA launcher is Triton's own
code -- binding and specialising arguments, the kernel cache,
``CompiledKernel`` -- and the launcher is replaced by one that appends its call
to ``LOG`` (Triton's launcher, a thin Python wrapper around a C call into the
CUDA driver, differs between Triton versions; this one does not).  Tests use it
to check that ``mxcore_cuda.triton._launch`` passes the launcher exactly what
Triton's own path passes; ``plugins/cuda/launch_overhead.py`` and
``standin_step.py`` time host work with it.

``install()`` replaces the active driver of this process; it is not for
processes that run kernels (interpreted or on a GPU).
"""
from __future__ import annotations

import itertools
from typing import List, Tuple

#: one entry per launch: (grid x, y, z, stream, function, kernel metadata, kernel
#: arguments); what is passed for launch hooks is left out (Triton's path passes its
#: hook chains, the cached path None when they are empty)
LOG: List[Tuple] = []
#: what the next launches report as CuPy's current stream
STREAM = [7]


class _Utils:
    """The C helpers of Triton's CUDA driver that need a driver, stood in."""

    def __init__(self):
        self._functions = {}
        self._ids = itertools.count(1)

    def load_binary(self, name, kernel, shared, device):
        # one "function handle" per distinct binary: specialisations stay apart
        fn = self._functions.setdefault(bytes(kernel), next(self._ids))
        return 1, fn, 32, 0, 1024  # module, function, registers, spills, max threads

    def get_device_properties(self, device):
        return {"max_shared_mem": 232448, "multiprocessor_count": 132,
                "max_num_regs": 65536, "warpSize": 32, "sm_clock_rate": 1980000,
                "mem_clock_rate": 2619000, "mem_bus_width": 5120}


class LoggingLauncher:
    """A compiled kernel's launcher: logs the call Triton 3.x makes, ``(grid x, y,
    z, stream, function, metadata, launch metadata, enter hook, exit hook, *kernel
    arguments)``, and runs the hooks as the real one does."""

    def __init__(self, src, metadata):
        pass

    def __call__(self, gx, gy, gz, stream, function, kernel_metadata, launch_metadata,
                 enter_hook, exit_hook, *args):
        if enter_hook is not None:
            enter_hook(launch_metadata)
        LOG.append((gx, gy, gz, stream, function, kernel_metadata, args))
        if exit_hook is not None:
            exit_hook(launch_metadata)


class StandInDriver:
    """What ``triton.runtime.driver.active`` offers, for an sm_90 device 0."""

    def __init__(self):
        self.utils = _Utils()
        self.launcher_cls = LoggingLauncher

    def get_current_device(self) -> int:
        return 0

    def set_current_device(self, device: int) -> None:
        pass

    def get_current_stream(self, device=None) -> int:
        return STREAM[0]

    def get_current_target(self):
        from triton.backends.compiler import GPUTarget
        return GPUTarget("cuda", 90, 32)

    def get_active_torch_device(self):
        raise RuntimeError("the stand-in driver has no torch device")


def install() -> StandInDriver:
    """Make the stand-in this process's active Triton driver."""
    from triton.runtime import driver
    d = StandInDriver()
    driver.set_active(d)
    return d


class Pointer:
    """A device pointer argument at a chosen address (Triton reads ``data_ptr()``
    and ``dtype``; a real launch would read CuPy's ``.data.ptr`` through
    ``mxcore_cuda.interpret.DeviceTensor``)."""

    __slots__ = ("ptr", "dtype")

    def __init__(self, ptr: int, dtype):
        import numpy as np
        self.ptr, self.dtype = ptr, np.dtype(dtype)

    def data_ptr(self) -> int:
        return self.ptr
