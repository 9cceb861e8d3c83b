"""mxcore's CUDA device: CuPy arrays, Triton kernels, CuPy fallbacks.

``MXCORE_CUDA_INTERPRET=1`` swaps the device for an interpreted one: host
numpy arrays, Triton kernels run by Triton's interpreter on the CPU.  Triton
reads ``TRITON_INTERPRET`` when a ``@triton.jit`` decorator runs, so it is set
here, before any module of this package that defines kernels is imported.
"""
from __future__ import annotations

import os


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


#: True when the "cuda" device is the Triton interpreter on host memory.
INTERPRET = _truthy(os.environ.get("MXCORE_CUDA_INTERPRET"))
if INTERPRET:
    os.environ["TRITON_INTERPRET"] = "1"

__all__ = ["INTERPRET"]
