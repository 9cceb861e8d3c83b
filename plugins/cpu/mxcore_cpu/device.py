"""The CPU device type: host memory, numpy arrays, synchronous execution."""
from __future__ import annotations

import os
import resource
import sys
from typing import Any, Dict, Tuple

import numpy as np

import hal


class CPUDevice(hal.DeviceType):
    kind = "cpu"
    xp = np
    host_memory = True
    # bfloat16 through ml_dtypes (products and float32-only library calls compute in float32)
    dtypes = hal.ALL_DTYPES
    description = "host CPU (numpy)"

    def __init__(self):
        self._limiter = None
        threads = os.environ.get("MXCORE_CPU_THREADS")
        if threads:
            try:
                self.set_num_threads(int(threads))
            except ValueError:
                raise ValueError(f"MXCORE_CPU_THREADS must be an integer, got {threads!r}") \
                    from None

    def set_num_threads(self, n: int) -> None:
        """Threads the BLAS library may use (process-wide).  Small training
        steps run best on one: on a busy host, BLAS threads waiting for a core
        can make a 64x784x256 GEMM ten times slower."""
        from threadpoolctl import threadpool_limits
        if n < 1:
            raise ValueError(f"the CPU device needs at least one thread, got {n}")
        self._limiter = threadpool_limits(limits=n, user_api="blas")

    def num_threads(self) -> int:
        from threadpoolctl import threadpool_info
        counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        return max(counts) if counts else 1

    def availability(self) -> Tuple[bool, str]:
        return True, ""

    def device_count(self) -> int:
        return 1

    def check_index(self, index: int) -> None:
        # MXNet accepts cpu(i) for any i: every CPU "device" is the host.
        if index < 0:
            raise hal.DeviceUnavailableError(f"device cpu:{index}: index must be >= 0")

    def allocate(self, index: int, shape, dtype) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def from_host(self, index: int, array: np.ndarray) -> np.ndarray:
        return np.array(array, copy=True, order="C")

    def to_host(self, index: int, array: Any) -> np.ndarray:
        return array

    def memory_stats(self, index: int) -> Dict[str, int]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is KiB on Linux
        stats = {"peak_rss_bytes": usage.ru_maxrss * scale}
        try:
            with open("/proc/self/statm") as f:
                stats["rss_bytes"] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
        return stats

    def properties(self, index: int) -> Dict[str, Any]:
        return {**super().properties(index), "cpu_count": os.cpu_count(),
                "blas_threads": self.num_threads(), "numpy": np.__version__}
