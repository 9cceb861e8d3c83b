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
    # numpy has no bfloat16, so the CPU device does not offer it.
    dtypes = hal.ALL_DTYPES
    description = "host CPU (numpy)"

    def __init__(self):
        self._generators: Dict[int, np.random.Generator] = {}

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

    def generator(self, index: int) -> np.random.Generator:
        gen = self._generators.get(index)
        if gen is None:
            gen = self._generators[index] = np.random.default_rng()
        return gen

    def seed(self, index: int, seed: int) -> None:
        self._generators[index] = np.random.default_rng(seed)

    def properties(self, index: int) -> Dict[str, Any]:
        return {**super().properties(index), "cpu_count": os.cpu_count(),
                "numpy": np.__version__}
