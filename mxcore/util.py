"""MXNet's ``mx.util`` device queries: ``get_gpu_count`` and ``get_gpu_memory``."""
from __future__ import annotations

from typing import Tuple

from mxcore.context import gpu_memory_info
from mxcore.device import num_gpus

__all__ = ["get_gpu_count", "get_gpu_memory"]


def get_gpu_count() -> int:
    """How many GPUs this process can use (0 without a usable cuda device)."""
    return num_gpus()


def get_gpu_memory(gpu_dev_id: int) -> Tuple[int, int]:
    """``(free, total)`` bytes of GPU ``gpu_dev_id`` (``mx.context.gpu_memory_info``)."""
    return gpu_memory_info(gpu_dev_id)
