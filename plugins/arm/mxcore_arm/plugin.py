"""Plugin entry point of mxcore-arm: the guarded ARM kernels of the ``cpu`` kind and
the ``onnxruntime`` graph backend.

onnxruntime is imported here, at load time: without it the import fails, mxcore records
the error (``mxcore plugins`` shows it) and skips the plugin; ``import mxcore`` and
every other plugin are unaffected.
"""
from __future__ import annotations

from typing import Callable

try:
    import onnx  # noqa: F401 - builds the graphs
    import onnxruntime  # noqa: F401 - runs them
except ImportError as exc:
    raise ImportError(f"mxcore-arm needs onnxruntime and onnx (pip install onnxruntime onnx): "
                      f"{exc}") from exc

import hal
from mxcore_arm import backend, int8, kernels

MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION

#: the backend's pass: after drop_dropout (0) and fold_batch_norm (10), before fusion
BACKEND_PASS = hal.GraphPass("onnxruntime_partition", backend.to_onnxruntime,
                             stage="inference", order=100, devices=frozenset({"cpu"}),
                             backend=backend.NAME)


@hal.hookimpl
def register_kernels(register: Callable[[hal.Kernel], None]) -> None:
    for kernel in kernels.kernels() + int8.kernels():
        register(kernel)


@hal.hookimpl
def register_passes(register: Callable[[hal.GraphPass], None]) -> None:
    register(BACKEND_PASS)
