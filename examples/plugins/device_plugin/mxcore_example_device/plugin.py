"""The plugin module named by the ``mxcore.plugins`` entry point.  A device plugin
needs only ``hal`` (and numpy here): it never imports mxcore, and names the ops its
kernels implement by string."""
from __future__ import annotations

from typing import Callable

import hal
from mxcore_example_device.device import HostSimDevice
from mxcore_example_device.kernels import kernels

MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION


@hal.hookimpl
def register_devices(register: Callable[[hal.DeviceType], None]) -> None:
    register(HostSimDevice())


@hal.hookimpl
def register_kernels(register: Callable[[hal.Kernel], None]) -> None:
    for kernel in kernels():
        register(kernel)
