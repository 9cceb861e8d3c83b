"""The plugin module named by the ``mxcore.plugins`` entry point (see pyproject.toml).

mxcore imports it on first use, checks ``MXCORE_PLUGIN_API`` and calls the hooks it
implements, each with a ``register`` callback.  Ops come first, then kernels: every
registration is staged and kept only if all hooks succeed.
"""
from __future__ import annotations

from typing import Callable

import hal
from mxcore.op import Op
from mxcore_example_ops import kernels, ops

MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION


@hal.hookimpl
def register_ops(register: Callable[[Op], None]) -> None:
    for op in ops.OPS:
        register(op)


@hal.hookimpl
def register_kernels(register: Callable[[hal.Kernel], None]) -> None:
    for kernel in kernels.kernels():
        register(kernel)
