"""softmax / log_softmax, max-shifted for stability; float16 computes in float32."""
from __future__ import annotations

from mxcore_cpu.kernels._dtypes import FLOAT


def kernels(xp, special):
    def prepare(x, temperature):
        a = x.astype(xp.float32) if x.dtype == xp.float16 else x
        if temperature is not None and temperature != 1.0:
            a = a / temperature
        return a

    def softmax(x, axis, temperature):
        a = prepare(x, temperature)
        e = xp.exp(a - a.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        return e.astype(x.dtype, copy=False)

    def log_softmax(x, axis, temperature):
        a = prepare(x, temperature)
        shifted = a - a.max(axis=axis, keepdims=True)
        r = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        return r.astype(x.dtype, copy=False)

    return {"softmax": (softmax, FLOAT), "log_softmax": (log_softmax, FLOAT)}
