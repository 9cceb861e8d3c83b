"""Plugin entry point: registers the CPU device and its kernels."""
from __future__ import annotations

import hal
from mxcore_cpu.device import CPUDevice
from mxcore_cpu.kernels import build

MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION


@hal.hookimpl
def register_devices(register):
    register(CPUDevice())


@hal.hookimpl
def register_kernels(register):
    for kernel in build("cpu"):
        register(kernel)
