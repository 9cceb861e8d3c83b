"""softmax / log_softmax / softmin (max-shifted for stability; float16 and bfloat16
compute in float32), fully_connected (with its fused activation) and its one-op backward, the
fused softmax cross-entropy, layer_norm and its fused backward (float16 and bfloat16
compute in float32, rounded once at the end)."""
from __future__ import annotations

import hal
from mxcore_cpu.device import product_threads
from mxcore_cpu.kernels._dtypes import FLOAT, acc_dtype, as_float32, via_float32
from mxcore_cpu.kernels.logistic import sigmoid, softrelu


def kernels(xp, special):
    threads = product_threads(xp)  # one BLAS thread for small products (device.py)

    # 16-bit floats are worked on in float32 (as_float32) and rounded once on return:
    # their sums would otherwise accumulate in 16 bits
    def prepare(x, temperature):
        a = as_float32(xp, x)
        if temperature is not None and temperature != 1.0:
            a = a / temperature
        return a

    def softmax_work(a, axis):
        e = xp.exp(a - a.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        return e

    def log_softmax_work(a, axis):
        shifted = a - a.max(axis=axis, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))

    def softmax(x, axis, temperature):
        return softmax_work(prepare(x, temperature), axis).astype(x.dtype, copy=False)

    def log_softmax(x, axis, temperature):
        return log_softmax_work(prepare(x, temperature), axis).astype(x.dtype, copy=False)

    def softmin(x, axis, temperature, dtype):
        out = x.dtype if dtype is None else hal.to_dtype(dtype)
        a = prepare(x, temperature)
        if out == xp.float64:  # a wider output dtype is also the working precision
            a = a.astype(xp.float64, copy=False)
        return softmax_work(-a, axis).astype(out, copy=False)

    # fully_connected's fused activations, in place on the fresh product (the same
    # formulas as the elementwise kernels)
    activations = {
        "relu": lambda o: xp.maximum(o, 0, out=o),
        "sigmoid": lambda o: sigmoid(xp, o, out=o),
        "tanh": lambda o: xp.tanh(o, out=o),
        "softrelu": lambda o: softrelu(xp, o, out=o),
        "softsign": lambda o: xp.divide(o, xp.abs(o) + 1, out=o),
    }

    def fully_connected(x, w, *bias, flatten, no_bias, act_type):
        x2 = x.reshape(x.shape[0], -1) if flatten else x
        threads(w.size * x2.shape[-2] if x2.ndim > 1 else w.size)  # per matrix of a stack
        out = x2 @ w.T
        if bias:
            out += bias[0]
        if act_type is not None:
            activations[act_type](out)
        return out

    # fully_connected_backward: out_grad through the activation, from its output y
    derivatives = {
        None: lambda g, y: g,
        "relu": lambda g, y: g * (y > 0),
        "sigmoid": lambda g, y: g * y * (1 - y),
        "tanh": lambda g, y: g * (1 - y * y),
        "softrelu": lambda g, y: g * -xp.expm1(-y),
        "softsign": lambda g, y: g * xp.square(1 - xp.abs(y)),
    }

    def fully_connected_backward(g, x, w, y, flatten, no_bias, act_type, grads):
        n, k = w.shape
        g2 = derivatives[act_type](g.reshape(-1, n), y.reshape(-1, n))
        threads(w.size * g2.shape[0])  # both products are (batch x n x k)
        out = []
        if grads[0]:
            out.append((g2 @ w).reshape(x.shape))
        if grads[1]:
            out.append(g2.T @ x.reshape(-1, k))
        if grads[2]:
            out.append(g2.sum(axis=0, dtype=acc_dtype(xp, g2.dtype)).astype(g2.dtype, copy=False))
        return tuple(out)

    def class_index(label):
        # integer labels index as they are (a copy costs more than the gather)
        return label if label.dtype.kind in "iu" else label.astype(xp.int64)

    def softmax_ce_loss(x, label, axis):
        idx = class_index(label)
        a = as_float32(xp, x)
        if x.ndim == 2 and axis == 1:
            # (batch, classes): log(sum(exp(x - max))) - (x[label] - max)
            shifted = a - a.max(axis=1, keepdims=True)
            lse = xp.log(xp.exp(shifted).sum(axis=1))
            lse -= shifted[xp.arange(x.shape[0]), idx]
            return lse.astype(x.dtype, copy=False)
        logp = log_softmax_work(a, axis)
        loss = -xp.take_along_axis(logp, xp.expand_dims(idx, axis), axis=axis).squeeze(axis)
        return loss.astype(x.dtype, copy=False)

    def softmax_ce_loss_grad(x, label, g, axis):
        idx = class_index(label)
        a = as_float32(xp, x)
        if x.ndim == 2 and axis == 1 and g.ndim == 1:
            # (batch, classes), the hot path of classifier training: one temporary,
            # worked in place; g/sum scales each row once
            p = a - a.max(axis=1, keepdims=True)
            xp.exp(p, out=p)
            scale = as_float32(xp, g) / p.sum(axis=1)
            p *= scale[:, None]
            p[xp.arange(x.shape[0]), idx] -= as_float32(xp, g)
            return p.astype(x.dtype, copy=False)
        p = softmax_work(a, axis)
        if x.ndim == 2 and axis == 1:
            p[xp.arange(x.shape[0]), idx] -= 1
        else:
            idx = xp.expand_dims(idx, axis)
            xp.put_along_axis(p, idx, xp.take_along_axis(p, idx, axis=axis) - 1, axis=axis)
        p *= xp.expand_dims(as_float32(xp, g), axis)
        return p.astype(x.dtype, copy=False)

    def softmax_ce_loss_with_grad(x, label, g, axis):
        if not (x.ndim == 2 and axis == 1 and g.ndim == 1):
            return softmax_ce_loss(x, label, axis), softmax_ce_loss_grad(x, label, g, axis)
        # the two kernels' hot paths, sharing the shift, the exponentials and their sums
        # (operation for operation the same, so the same bits)
        idx = class_index(label)
        a = as_float32(xp, x)
        rows = xp.arange(x.shape[0])
        shifted = a - a.max(axis=1, keepdims=True)
        p = xp.exp(shifted)
        total = p.sum(axis=1)
        loss = xp.log(total)
        loss -= shifted[rows, idx]
        g32 = as_float32(xp, g)
        p *= (g32 / total)[:, None]
        p[rows, idx] -= g32
        return loss.astype(x.dtype, copy=False), p.astype(x.dtype, copy=False)

    def layer_norm(x, gamma, beta, axis, eps):
        a = as_float32(xp, x)
        mean = a.mean(axis=axis, keepdims=True)
        d = a - mean
        var = (d * d).mean(axis=axis, keepdims=True)
        shape = tuple(-1 if i == axis else 1 for i in range(x.ndim))
        g = gamma.reshape(shape).astype(a.dtype, copy=False)
        b = beta.reshape(shape).astype(a.dtype, copy=False)
        return (d / xp.sqrt(var + eps) * g + b).astype(x.dtype, copy=False)

    def layer_norm_backward(dy, x, gamma, axis, eps):
        # dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma
        axis %= x.ndim
        a = as_float32(xp, x)
        dy = dy.astype(a.dtype, copy=False)
        d = a - a.mean(axis=axis, keepdims=True)
        rstd = 1 / xp.sqrt((d * d).mean(axis=axis, keepdims=True) + eps)
        xhat = d * rstd
        shape = tuple(-1 if i == axis else 1 for i in range(x.ndim))
        dxhat = dy * gamma.reshape(shape).astype(a.dtype, copy=False)
        dx = rstd * (dxhat - dxhat.mean(axis=axis, keepdims=True)
                     - xhat * (dxhat * xhat).mean(axis=axis, keepdims=True))
        others = tuple(i for i in range(x.ndim) if i != axis)
        # the parameter gradients sum over every other axis (a whole batch of rows):
        # float64 accumulators keep them exact to float32 (numpy sums a strided axis
        # row by row, whose float32 error grows with the batch)
        wide = xp.float64 if a.dtype == xp.float32 else a.dtype
        dgamma = (dy * xhat).sum(axis=others, dtype=wide)
        dbeta = dy.sum(axis=others, dtype=wide) if others else dy.copy()
        return tuple(v.astype(x.dtype, copy=False) for v in (dx, dgamma, dbeta))

    def dropout(x, p, seed, axes, always=False):
        # the mask is a function of the seed: backward regenerates it (same op on the
        # gradient) instead of keeping it; ``always`` concerns graph passes only
        shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
        keep = xp.random.default_rng(seed).random(shape, dtype=xp.float32) >= p
        return x * (keep * (1.0 / (1.0 - p))).astype(x.dtype)

    return {"layer_norm": (layer_norm, FLOAT), "layer_norm_backward": (layer_norm_backward, FLOAT),
            "dropout": (dropout, FLOAT),
            "softmax": (softmax, FLOAT), "log_softmax": (log_softmax, FLOAT),
            "softmin": (softmin, FLOAT),
            "softmax_ce_loss_grad": (softmax_ce_loss_grad, FLOAT),
            "softmax_ce_loss_with_grad": (softmax_ce_loss_with_grad, FLOAT),
            "fully_connected": (via_float32(xp, fully_connected), FLOAT),
            "fully_connected_backward": (via_float32(xp, fully_connected_backward), FLOAT),
            "softmax_ce_loss": (softmax_ce_loss, FLOAT)}
