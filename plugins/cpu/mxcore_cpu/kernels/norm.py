"""Normalisation kernels: batch, instance and group normalisation, L2 normalisation and
LRN, with the fused backward passes.  16-bit floats compute in float32 and round once.
Batch statistics are per channel (``axis``), over every other axis; instance and group
statistics are per row of the data viewed as (N, K, M), K the channels or the groups."""
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

    # instance / group normalisation: rows of the (N, K, M) view -----------------------
    def rows(x, k):
        n = x.shape[0]
        return as_float32(xp, x).reshape(n, k, x.size // (n * k) if n * k else 0)

    def row_stats(a, eps):
        d = a - a.mean(axis=2, keepdims=True)
        return d, 1.0 / xp.sqrt((d * d).mean(axis=2, keepdims=True) + eps)

    def per_row(v, k):
        return as_float32(xp, v).reshape(1, k, 1)

    def grouped_norm(x, gamma, beta, k, eps):
        d, rstd = row_stats(rows(x, k), eps)
        out = d * (rstd * per_row(gamma, k)) + per_row(beta, k)
        return out.reshape(x.shape).astype(x.dtype, copy=False)

    def grouped_norm_backward(dy, x, gamma, k, eps):
        # dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma
        d, rstd = row_stats(rows(x, k), eps)
        gy = rows(dy, k)
        xhat = d * rstd
        dxhat = gy * per_row(gamma, k)
        dx = rstd * (dxhat - dxhat.mean(axis=2, keepdims=True)
                     - xhat * (dxhat * xhat).mean(axis=2, keepdims=True))
        dgamma = (gy * xhat).sum(axis=(0, 2))
        dbeta = gy.sum(axis=(0, 2))
        return (dx.reshape(x.shape).astype(x.dtype, copy=False),
                dgamma.astype(gamma.dtype, copy=False), dbeta.astype(gamma.dtype, copy=False))

    def instance_norm(x, gamma, beta, *, eps):
        return grouped_norm(x, gamma, beta, x.shape[1], eps)

    def instance_norm_backward(dy, x, gamma, *, eps):
        return grouped_norm_backward(dy, x, gamma, x.shape[1], eps)

    def group_norm(x, gamma, beta, *, num_groups, eps):
        return grouped_norm(x, gamma, beta, num_groups, eps)

    def group_norm_backward(dy, x, gamma, *, num_groups, eps):
        return grouped_norm_backward(dy, x, gamma, num_groups, eps)

    # L2 normalisation ------------------------------------------------------------------
    l2_axes = {"instance": lambda nd: tuple(range(1, nd)), "channel": lambda nd: (1,),
               "spatial": lambda nd: tuple(range(2, nd))}

    def l2_normalization(x, *, eps, mode):
        a = as_float32(xp, x)
        sq = (a * a).sum(axis=l2_axes[mode](x.ndim), keepdims=True)
        return (a / xp.sqrt(sq + eps)).astype(x.dtype, copy=False)

    # LRN across channels (axis 1) ---------------------------------------------------------
    def window_sum(v, nsize):
        """The sum over the nsize channels centred on each channel, zero-padded: one
        strided add per offset (offsets past the last channel add only zeros)."""
        c = v.shape[1]
        h = max(0, min(nsize // 2, c - 1))
        pad = [(0, 0)] * v.ndim
        pad[1] = (h, h)
        p = xp.pad(v, pad)
        out = p[:, :c].copy()
        for k in range(1, 2 * h + 1):
            out += p[:, k:k + c]
        return out

    def lrn_scale(a, alpha, knorm, nsize):
        return knorm + (alpha / nsize) * window_sum(a * a, nsize)

    def lrn(x, *, alpha, beta, knorm, nsize):
        a = as_float32(xp, x)
        out = a * xp.power(lrn_scale(a, alpha, knorm, nsize), -beta)
        return out.astype(x.dtype, copy=False)

    def lrn_backward(dy, x, *, alpha, beta, knorm, nsize):
        # y = x * s^-beta, s = knorm + alpha/n * W(x^2), W the (symmetric) window sum:
        # dx = dy * s^-beta - 2 alpha beta / n * x * W(dy * x * s^(-beta-1))
        a, gy = as_float32(xp, x), as_float32(xp, dy)
        s = lrn_scale(a, alpha, knorm, nsize)
        sb = xp.power(s, -beta)
        dx = gy * sb - (2.0 * alpha * beta / nsize) * a * window_sum(gy * a * sb / s, nsize)
        return dx.astype(x.dtype, copy=False)

    return {"batch_norm": (batch_norm, FLOAT), "batch_norm_backward": (batch_norm_backward, FLOAT),
            "instance_norm": (instance_norm, FLOAT),
            "instance_norm_backward": (instance_norm_backward, FLOAT),
            "group_norm": (group_norm, FLOAT), "group_norm_backward": (group_norm_backward, FLOAT),
            "l2_normalization": (l2_normalization, FLOAT),
            "lrn": (lrn, FLOAT), "lrn_backward": (lrn_backward, FLOAT)}
