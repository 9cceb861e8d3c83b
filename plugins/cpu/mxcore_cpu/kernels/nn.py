"""softmax / log_softmax (max-shifted for stability; float16 computes in
float32), fully_connected and the fused softmax cross-entropy."""
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

    def fully_connected(x, w, *bias, flatten, no_bias):
        x2 = x.reshape(x.shape[0], -1) if flatten else x
        out = x2 @ w.T
        if bias:
            out += bias[0]
        return out

    def softmax_ce_loss(x, label, axis):
        logp = log_softmax(x, axis, None)
        idx = xp.expand_dims(label.astype(xp.int64), axis)
        return -xp.take_along_axis(logp, idx, axis=axis).squeeze(axis)

    return {"softmax": (softmax, FLOAT), "log_softmax": (log_softmax, FLOAT),
            "fully_connected": (fully_connected, FLOAT), "softmax_ce_loss": (softmax_ce_loss, FLOAT)}
