"""The array modules the contrib kernels are built with, per device kind: numpy on the
CPU; on ``cuda``, CuPy when it imports, or numpy when the CUDA plugin runs interpreted on
the CPU (``MXCORE_CUDA_INTERPRET=1``: its arrays are numpy arrays then).  Kernels are
written once against ``xp`` and built per module, as the CPU plugin's are."""
from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any, Callable, Dict, FrozenSet, List, Tuple

import numpy as np

import hal


def array_modules() -> List[Tuple[str, Any]]:
    """[(device kind, array module)] for the kinds this machine can use."""
    out: List[Tuple[str, Any]] = [("cpu", np)]
    if os.environ.get("MXCORE_CUDA_INTERPRET", "") not in ("", "0"):
        out.append(("cuda", np))
    else:
        try:
            import cupy
        except Exception:  # noqa: BLE001 - no CuPy (or no driver): no cuda kernels here
            return out
        out.append(("cuda", cupy))
    return out


def build(table: Callable[[Any], Dict[str, Tuple[Callable, FrozenSet[str]]]],
          family: str) -> List[hal.Kernel]:
    """hal.Kernels of ``table(xp)`` (op name -> (fn, dtypes)) for every device kind."""
    return [hal.Kernel(op=op, device=kind, fn=fn, dtypes=dtypes, priority=0,
                       name=f"{family}.{op}")
            for kind, xp in array_modules()
            for op, (fn, dtypes) in table(xp).items()]


#: the Triton kernels on ``cuda`` rank above the array-module ones
TRITON_PRIORITY = 10


def _lazy(module: str, attr: str, on_device: bool) -> Callable:
    """``mxcore_contrib_ops.<module>.<attr>``, imported at the first call (the first
    dispatch on cuda), so that loading the plugin imports no Triton."""
    impl = None

    def call(*args, **kwargs):
        nonlocal impl
        if impl is None:
            impl = getattr(importlib.import_module(f"mxcore_contrib_ops.{module}"), attr)
            if on_device:  # several GPUs: run on the arrays' device
                from mxcore_cuda.placement import on_array_device
                impl = on_array_device(impl)
        return impl(*args, **kwargs)
    call.__qualname__ = call.__name__ = f"{module}.{attr}"
    return call


def triton_kernels(module: str, table: Dict[str, Tuple[str, str]],
                   dtypes: FrozenSet[str]) -> List[hal.Kernel]:
    """hal.Kernels on ``cuda`` of ``mxcore_contrib_ops.<module>`` (op -> (launcher name,
    guard name)) at TRITON_PRIORITY, where cuda kernels are built (CuPy, or the
    interpreted device) and Triton and the CUDA plugin are installed."""
    if "cuda" not in dict(array_modules()) or any(
            importlib.util.find_spec(m) is None for m in ("triton", "mxcore_cuda")):
        return []
    return [hal.Kernel(op=op, device="cuda", fn=_lazy(module, fn, True), dtypes=dtypes,
                       priority=TRITON_PRIORITY, applies=_lazy(module, guard, False),
                       name=f"{module}.{op}")
            for op, (fn, guard) in table.items()]
