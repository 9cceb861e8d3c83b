"""Batch normalisation kernels.  16-bit floats compute in float32 and round once; the
statistics are per channel (``axis``), over every other axis."""
from __future__ import annotations

from mxcore_cpu.kernels._dtypes import FLOAT, as_float32


def kernels(xp, special):
    def layout(x, axis):
        red = tuple(i for i in range(x.ndim) if i != axis)
        shape = [1] * x.ndim
        shape[axis] = x.shape[axis]
        return red, tuple(shape)

    def stats(xw, red, shape):
        mean = xw.mean(axis=red)
        d = xw - mean.reshape(shape)
        return mean, (d * d).mean(axis=red)  # biased, as MXNet

    def batch_norm(x, gamma, beta, moving_mean, moving_var, *, eps, momentum, fix_gamma,
                   use_global_stats, axis, training):
        xw = as_float32(xp, x)
        red, shape = layout(x, axis)
        if training and not use_global_stats:
            mean, var = stats(xw, red, shape)
        else:
            mean, var = as_float32(xp, moving_mean), as_float32(xp, moving_var)
        invstd = 1.0 / xp.sqrt(var + eps)
        scale = invstd if fix_gamma else as_float32(xp, gamma) * invstd
        shift = as_float32(xp, beta) - mean * scale
        return (xw * scale.reshape(shape) + shift.reshape(shape)).astype(x.dtype, copy=False)

    def batch_norm_backward(g, x, gamma, moving_mean, moving_var, *, eps, momentum,
                            fix_gamma, use_global_stats, axis, training, grads):
        """(d data, d gamma, d beta) as ``grads`` asks; with batch statistics the moving
        averages are updated here, in place, as MXNet does in its backward pass."""
        xw, gw = as_float32(xp, x), as_float32(xp, g)
        red, shape = layout(x, axis)
        batch = training and not use_global_stats
        if batch:
            mean, var = stats(xw, red, shape)
        else:
            mean, var = as_float32(xp, moving_mean), as_float32(xp, moving_var)
        invstd = 1.0 / xp.sqrt(var + eps)
        xhat = (xw - mean.reshape(shape)) * invstd.reshape(shape)
        dbeta = gw.sum(axis=red)
        dgamma = (gw * xhat).sum(axis=red)
        gam = 1.0 if fix_gamma else as_float32(xp, gamma)
        out = []
        if grads[0]:
            if batch:
                n = x.size // x.shape[axis]
                coef = (gam * invstd / n).reshape(shape)
                dx = coef * (n * gw - dbeta.reshape(shape) - xhat * dgamma.reshape(shape))
            else:
                dx = gw * (gam * invstd).reshape(shape)
            out.append(dx.astype(x.dtype, copy=False))
        if grads[1]:
            out.append((xp.zeros_like(dgamma) if fix_gamma else dgamma)
                       .astype(gamma.dtype, copy=False))
        if grads[2]:
            out.append(dbeta.astype(gamma.dtype, copy=False))
        if batch:
            moving_mean[...] = (moving_mean * momentum + mean * (1.0 - momentum)) \
                .astype(moving_mean.dtype, copy=False)
            moving_var[...] = (moving_var * momentum + var * (1.0 - momentum)) \
                .astype(moving_var.dtype, copy=False)
        return tuple(out)

    return {"batch_norm": (batch_norm, FLOAT), "batch_norm_backward": (batch_norm_backward, FLOAT)}
