"""The array modules the contrib kernels are built with, per device kind: numpy on the
CPU; on ``cuda``, CuPy when it imports, or numpy when the CUDA plugin runs interpreted on
the CPU (``MXCORE_CUDA_INTERPRET=1``: its arrays are numpy arrays then).  Kernels are
written once against ``xp`` and built per module, as the CPU plugin's are."""
from __future__ import annotations

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
