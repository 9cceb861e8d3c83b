"""MXNet's ``mx.context`` module (Gluon code writes ``mx.context.num_gpus()``):
the device functions of ``mxcore.device`` under their MXNet names, plus
``gpu_memory_info`` and ``empty_cache(ctx)`` (MXNet's ``ctx.empty_cache()``)."""
from __future__ import annotations

from typing import Tuple

from mxcore.device import (Context, cpu, cpu_pinned, current_context, device_type,
                           empty_cache, gpu, num_gpus)

__all__ = ["Context", "cpu", "gpu", "cpu_pinned", "current_context", "num_gpus",
           "gpu_memory_info", "empty_cache"]


def gpu_memory_info(device_id: int = 0) -> Tuple[int, int]:
    """``(free, total)`` bytes of GPU ``device_id`` (as the driver reports them; the
    memory pool's cached blocks count as used).  Raises DeviceUnavailableError,
    with the reason, where there is no such GPU."""
    stats = device_type(gpu(device_id)).memory_stats(device_id)
    return stats["device_free_bytes"], stats["device_total_bytes"]
