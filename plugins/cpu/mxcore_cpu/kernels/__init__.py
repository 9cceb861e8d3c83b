"""The CPU kernel tables: one module per op family, each a ``kernels(xp,
special)`` function returning ``{op name: (fn, dtype names)}``."""
from __future__ import annotations

from typing import List

import numpy as np
import scipy.special

import hal
from mxcore_cpu.kernels import (conv, creation, elemwise, embedding, indexing, linalg, nn,
                                norm, optimizer, ordering, random, reduce, rnn, shape)
from mxcore_cpu.kernels import loss_output
from mxcore_cpu.kernels import ctc
from mxcore_cpu.kernels import fused
from mxcore_cpu.kernels import roi
from mxcore_cpu.kernels import correlation, im2col, sampling
from mxcore_cpu.kernels import quantization

FAMILIES = (elemwise, reduce, linalg, shape, indexing, ordering, nn, conv, norm, embedding,
            rnn, creation, random, optimizer, loss_output, ctc, fused, roi,
            sampling, correlation, im2col, quantization)


def build(device: str, xp=np, special=scipy.special, priority: int = 0) -> List[hal.Kernel]:
    """Kernels for ``device`` written against the numpy-compatible ``xp``."""
    out = []
    for family in FAMILIES:
        for op, (fn, dtypes) in family.kernels(xp, special).items():
            out.append(hal.Kernel(op=op, device=device, fn=fn, dtypes=dtypes,
                                  priority=priority, name=f"{family.__name__.rsplit('.', 1)[-1]}."
                                  f"{op}"))
    return out
