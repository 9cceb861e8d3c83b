"""Native ``hostsim`` kernels.  Every other op borrows the CPU's kernels through the
device's fallback chain; these rank first on hostsim because a device's own kernels
come before its fallback kinds' (whatever their priorities)."""
from __future__ import annotations

from collections import Counter
from typing import List

import numpy as np

import hal

#: kernel launches per op, reported by ``HostSimDevice.properties``
LAUNCHES: Counter = Counter()

#: every numeric dtype; bool arrays use the CPU kernels
NUMERIC = frozenset(hal.FLOAT_DTYPES + hal.BFLOAT16_DTYPES + hal.INT_DTYPES)


def add(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    LAUNCHES["add"] += 1
    return np.add(lhs, rhs)


def multiply(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    LAUNCHES["multiply"] += 1
    return np.multiply(lhs, rhs)


def kernels() -> List[hal.Kernel]:
    return [hal.Kernel(op="add", device="hostsim", fn=add, dtypes=NUMERIC, priority=0,
                       name="hostsim_add"),
            hal.Kernel(op="multiply", device="hostsim", fn=multiply, dtypes=NUMERIC,
                       priority=0, name="hostsim_multiply")]
