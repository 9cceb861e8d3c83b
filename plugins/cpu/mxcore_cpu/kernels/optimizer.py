"""Fused optimizer updates, written in place.

Each kernel is a sequence of ufunc calls with ``out=`` into the weight, its
states and at most two scratch buffers, so a step allocates nothing of the
weight's size and never writes the gradient.

With numpy and C-contiguous arrays (the usual case: parameters, gradients and
states made by ``zeros_like``) the update runs over flat views ``BLOCK``
elements at a time: the scratch buffers are ``BLOCK`` elements long, cached
per thread and dtype (allocated by the first step: at most two buffers of
``BLOCK`` elements per dtype and thread), and every pass over a block stays
in cache (on a 8M-element float32 Adam step this is ~1.6x faster than whole-array
passes).  Arrays that are not C-contiguous, and array modules other
than numpy, are updated whole with scratch buffers of the weight's shape
allocated for the call.

Scalars (learning rate, decay rates...) are cast to the weight's dtype, as
MXNet's kernels compute in the weight's type.

SGD and SGD with momentum on large contiguous float32/float64 arrays (no
clipping) run as ``axpy``/``scal`` of the OpenBLAS numpy itself calls
(``mxcore_cpu.device.NumpyOpenBLAS``): one pass each, no scratch, ~2x faster
than the ufunc pair.  Never SciPy's BLAS: that is a second OpenBLAS runtime,
whose thread pool and numpy's starved each other on two cores (a Gluon MLP step
ran ~10x slower).
"""
from __future__ import annotations

import threading

import numpy as np

from mxcore_cpu.device import PRODUCT_THREADS, numpy_openblas
from mxcore_cpu.kernels._dtypes import FLOAT

BLOCK = 1 << 16  # elements per block (256 KiB of float32)
# elements from which a BLAS call beats the ufunc pair: each call costs a few
# microseconds of ctypes and pointer look-ups
BLAS_MIN = 1 << 14


def kernels(xp, special):
    local = threading.local()
    block = BLOCK if xp is np else 0

    def cached_scratch(dtype, n, count):
        cache = getattr(local, "bufs", None)
        if cache is None:
            cache = local.bufs = {}
        bufs = cache.get(dtype)
        if bufs is None or len(bufs) < count:
            bufs = cache[dtype] = [xp.empty(block, dtype) for _ in range(count)]
        return [b[:n] for b in bufs[:count]]

    def fused(make, nscratch):
        """A kernel ``fn(weight, grad, *states, **attrs)`` running the body
        ``make(dtype scalar type, **attrs)`` over blocks (or whole arrays)."""
        def kernel(w, g, *states, **attrs):
            body = make(w.dtype.type, **attrs)
            arrays = (w, g) + states
            n = w.size
            if block and all(a.flags.c_contiguous for a in arrays):
                m = min(n, block)
                bufs = cached_scratch(w.dtype, m, nscratch)
                if n <= block and w.ndim == 1:  # one block, flat already: biases
                    body(*arrays, *bufs)
                    return w
                flats = [a.reshape(-1) for a in arrays]
                if n <= block:  # one block: small layers
                    body(*flats, *bufs)
                    return w
                for lo in range(0, n, block):
                    hi = min(lo + block, n)
                    scratch = bufs if hi - lo == m else [b[:hi - lo] for b in bufs]
                    body(*[f[lo:hi] for f in flats], *scratch)
            else:
                body(*arrays, *[xp.empty(w.shape, w.dtype) for _ in range(nscratch)])
            return w
        return kernel

    def prep(w, g, s, t, rs, wd, c):
        """s = clip(rs*g + wd*w, c) (wd = 0: no weight term)."""
        xp.multiply(g, rs, out=s)
        if wd:
            xp.multiply(w, wd, out=t)
            xp.add(s, t, out=s)
        if c >= 0:
            xp.clip(s, -c, c, out=s)

    # SGD family: clip, then weight decay -------------------------------------------------
    def scaled_grad(T, lr, rescale_grad, clip_gradient):
        """A body ``(w, g, s)``: s = lr * clip(rs*g, c), in one pass without
        clipping.  (SGD runs on small biases too: only the scalars it uses.)"""
        if clip_gradient < 0:
            step = T(lr * rescale_grad)
            return lambda w, g, s: xp.multiply(g, step, out=s)
        rs, c, lr_ = T(rescale_grad), T(clip_gradient), T(lr)

        def clipped(w, g, s):
            prep(w, g, s, None, rs, 0, c)
            xp.multiply(s, lr_, out=s)
        return clipped

    def sgd(T, lr, wd, rescale_grad, clip_gradient):
        grad_step = scaled_grad(T, lr, rescale_grad, clip_gradient)
        decay = T(1.0 - lr * wd) if wd else None

        def body(w, g, s):
            grad_step(w, g, s)
            if decay is not None:
                xp.multiply(w, decay, out=w)
            xp.subtract(w, s, out=w)
        return body

    def sgd_mom(T, lr, momentum, wd, rescale_grad, clip_gradient):
        grad_step = scaled_grad(T, lr, rescale_grad, clip_gradient)
        mu, lrwd = T(momentum), T(lr * wd)

        def body(w, g, mom, s):
            grad_step(w, g, s)
            xp.multiply(mom, mu, out=mom)
            xp.subtract(mom, s, out=mom)
            if wd:
                xp.multiply(w, lrwd, out=s)
                xp.subtract(mom, s, out=mom)
            xp.add(w, mom, out=w)
        return body

    def nag_mom(T, lr, momentum, wd, rescale_grad, clip_gradient):
        rs, c, lr_, mu, wd_ = T(rescale_grad), T(clip_gradient), T(lr), T(momentum), T(wd)

        def body(w, g, mom, s, t):
            prep(w, g, s, None, rs, 0, c)
            if wd:
                xp.multiply(w, wd_, out=t)
                xp.add(s, t, out=s)
            xp.multiply(s, lr_, out=s)          # s = lr * g
            xp.multiply(mom, mu, out=mom)
            xp.subtract(mom, s, out=mom)        # mom = momentum*mom - lr*g
            xp.multiply(mom, mu, out=t)
            xp.add(w, t, out=w)
            xp.subtract(w, s, out=w)            # w += momentum*mom - lr*g
        return body

    # Adam family ---------------------------------------------------------------------------
    def moments(s, t, m, v, b1, c1, b2, c2):
        """m = b1*m + (1-b1)*s; v = b2*v + (1-b2)*s^2 (s is overwritten)."""
        xp.multiply(m, b1, out=m)
        xp.multiply(s, c1, out=t)
        xp.add(m, t, out=m)
        xp.multiply(v, b2, out=v)
        xp.multiply(s, s, out=s)
        xp.multiply(s, c2, out=s)
        xp.add(v, s, out=v)

    def adam(T, lr, beta1, beta2, epsilon, wd, rescale_grad, clip_gradient):
        rs, c, lr_, eps, wd_ = T(rescale_grad), T(clip_gradient), T(lr), T(epsilon), T(wd)
        b1, c1, b2, c2 = T(beta1), T(1.0 - beta1), T(beta2), T(1.0 - beta2)

        def body(w, g, m, v, s, t):
            prep(w, g, s, t, rs, wd_, c)
            moments(s, t, m, v, b1, c1, b2, c2)
            xp.sqrt(v, out=s)
            xp.add(s, eps, out=s)
            xp.divide(m, s, out=s)
            xp.multiply(s, lr_, out=s)
            xp.subtract(w, s, out=w)
        return body

    def adamw(T, lr, eta, beta1, beta2, epsilon, wd, rescale_grad, clip_gradient):
        rs, c, lr_, eta_, eps, wd_ = (T(rescale_grad), T(clip_gradient), T(lr), T(eta),
                                      T(epsilon), T(wd))
        b1, c1, b2, c2 = T(beta1), T(1.0 - beta1), T(beta2), T(1.0 - beta2)

        def body(w, g, m, v, s, t):
            prep(w, g, s, t, rs, 0, c)
            moments(s, t, m, v, b1, c1, b2, c2)
            xp.sqrt(v, out=s)
            xp.add(s, eps, out=s)
            xp.divide(m, s, out=s)
            xp.multiply(s, lr_, out=s)
            if wd:
                xp.multiply(w, wd_, out=t)
                xp.add(s, t, out=s)
            xp.multiply(s, eta_, out=s)
            xp.subtract(w, s, out=w)
        return body

    # RMSProp -------------------------------------------------------------------------------
    def rmsprop(T, lr, gamma1, epsilon, wd, rescale_grad, clip_gradient, clip_weights):
        rs, c, lr_, eps, wd_, cw = (T(rescale_grad), T(clip_gradient), T(lr), T(epsilon), T(wd),
                                    T(clip_weights))
        g1, h1 = T(gamma1), T(1.0 - gamma1)

        def body(w, g, n, s, t):
            prep(w, g, s, t, rs, wd_, c)
            xp.multiply(n, g1, out=n)
            xp.multiply(s, s, out=t)
            xp.multiply(t, h1, out=t)
            xp.add(n, t, out=n)
            xp.add(n, eps, out=t)
            xp.sqrt(t, out=t)
            xp.divide(s, t, out=s)
            xp.multiply(s, lr_, out=s)
            xp.subtract(w, s, out=w)
            if cw >= 0:
                xp.clip(w, -cw, cw, out=w)
        return body

    def rmspropalex(T, lr, gamma1, gamma2, epsilon, wd, rescale_grad, clip_gradient,
                    clip_weights):
        rs, c, lr_, eps, wd_, cw = (T(rescale_grad), T(clip_gradient), T(lr), T(epsilon), T(wd),
                                    T(clip_weights))
        g1, h1, g2 = T(gamma1), T(1.0 - gamma1), T(gamma2)

        def body(w, g, n, gm, d, s, t):
            prep(w, g, s, t, rs, wd_, c)
            xp.multiply(n, g1, out=n)
            xp.multiply(s, s, out=t)
            xp.multiply(t, h1, out=t)
            xp.add(n, t, out=n)
            xp.multiply(gm, g1, out=gm)
            xp.multiply(s, h1, out=t)
            xp.add(gm, t, out=gm)
            xp.multiply(gm, gm, out=t)
            xp.subtract(n, t, out=t)
            xp.add(t, eps, out=t)
            xp.sqrt(t, out=t)
            xp.divide(s, t, out=s)
            xp.multiply(s, lr_, out=s)
            xp.multiply(d, g2, out=d)
            xp.subtract(d, s, out=d)
            xp.add(w, d, out=w)
            if cw >= 0:
                xp.clip(w, -cw, cw, out=w)
        return body

    # AdaGrad, AdaDelta ---------------------------------------------------------------------
    def adagrad(T, lr, epsilon, wd, rescale_grad, clip_gradient):
        rs, c, lr_, eps, wd_ = T(rescale_grad), T(clip_gradient), T(lr), T(epsilon), T(wd)

        def body(w, g, h, s, t):
            prep(w, g, s, t, rs, 0, c)
            xp.multiply(s, s, out=t)
            xp.add(h, t, out=h)
            xp.add(h, eps, out=t)
            xp.sqrt(t, out=t)
            xp.divide(s, t, out=s)
            if wd:
                xp.multiply(w, wd_, out=t)
                xp.add(s, t, out=s)
            xp.multiply(s, lr_, out=s)
            xp.subtract(w, s, out=w)
        return body

    def adadelta(T, lr, rho, epsilon, wd, rescale_grad, clip_gradient):
        rs, c, lr_, eps, wd_ = T(rescale_grad), T(clip_gradient), T(lr), T(epsilon), T(wd)
        r, q = T(rho), T(1.0 - rho)

        def body(w, g, acc_g, acc_d, s, t):
            prep(w, g, s, t, rs, 0, c)
            xp.multiply(acc_g, r, out=acc_g)
            xp.multiply(s, s, out=t)
            xp.multiply(t, q, out=t)
            xp.add(acc_g, t, out=acc_g)
            xp.add(acc_d, eps, out=t)
            xp.sqrt(t, out=t)
            xp.multiply(s, t, out=s)
            xp.add(acc_g, eps, out=t)
            xp.sqrt(t, out=t)
            xp.divide(s, t, out=s)              # s = the step (delta)
            xp.multiply(acc_d, r, out=acc_d)
            xp.multiply(s, s, out=t)
            xp.multiply(t, q, out=t)
            xp.add(acc_d, t, out=acc_d)
            if wd:
                xp.multiply(w, wd_, out=t)
                xp.add(s, t, out=s)
            if lr != 1.0:
                xp.multiply(s, lr_, out=s)
            xp.subtract(w, s, out=w)
        return body

    # BLAS paths for the SGD family (numpy's own OpenBLAS; see the module docstring)
    level1 = []  # [{dtype char: (axpy, scal)}], looked up on first use

    def blas_ready(flags, written):
        return flags.c_contiguous and flags.aligned and (flags.writeable or not written)

    def with_blas(generic, blas_body):
        def kernel(w, g, *states, **attrs):
            n = w.size
            if n >= BLAS_MIN and attrs["clip_gradient"] < 0 and block:
                if not level1:
                    lib = numpy_openblas()
                    level1.append(lib.level1() if lib else {})
                routines = level1[0].get(w.dtype.char)
                if (routines is not None and w.dtype.isnative
                        and all(a.dtype == w.dtype and blas_ready(a.flags, a is not g)
                                for a in (w, g) + states)):
                    PRODUCT_THREADS(n)  # OpenBLAS threads axpy too: one thread, as small products
                    blas_body(*routines, n, w.ctypes.data, g.ctypes.data,
                              *[s.ctypes.data for s in states], **attrs)
                    return w
            return generic(w, g, *states, **attrs)
        return kernel

    def sgd_blas(axpy, scal, n, w, g, lr, wd, rescale_grad, clip_gradient):
        if wd:
            scal(n, 1.0 - lr * wd, w)
        axpy(n, -lr * rescale_grad, g, w)

    def sgd_mom_blas(axpy, scal, n, w, g, mom, lr, momentum, wd, rescale_grad, clip_gradient):
        scal(n, momentum, mom)
        axpy(n, -lr * rescale_grad, g, mom)
        if wd:
            axpy(n, -lr * wd, w, mom)
        axpy(n, 1.0, mom, w)

    sgd_kernel = with_blas(fused(sgd, 1), sgd_blas)
    sgd_mom_kernel = with_blas(fused(sgd_mom, 1), sgd_mom_blas)

    def multi(single, per, lists=("lrs", "wds")):
        """Apply ``single`` to each (weight, grad, states...) group in turn; the
        list attributes (``lrs``...) give each call its own ``lr``...)."""
        names = [(k, k[:-1]) for k in lists]

        def kernel(*arrays, num_weights, **attrs):
            per_weight = {k: attrs.pop(k) for k, _ in names}
            for i in range(num_weights):
                single(*arrays[per * i:per * i + per],
                       **{one: per_weight[k][i] for k, one in names}, **attrs)
            return tuple(arrays[0::per])
        return kernel

    adam_kernel, adamw_kernel = fused(adam, 2), fused(adamw, 2)
    return {
        "sgd_update": (sgd_kernel, FLOAT),
        "sgd_mom_update": (sgd_mom_kernel, FLOAT),
        "multi_sgd_update": (multi(sgd_kernel, 2), FLOAT),
        "multi_sgd_mom_update": (multi(sgd_mom_kernel, 3), FLOAT),
        "nag_mom_update": (fused(nag_mom, 2), FLOAT),
        "adam_update": (adam_kernel, FLOAT),
        "adamw_update": (adamw_kernel, FLOAT),
        "multi_adam_update": (multi(adam_kernel, 4), FLOAT),
        "multi_adamw_update": (multi(adamw_kernel, 4, ("lrs", "wds", "etas")), FLOAT),
        "rmsprop_update": (fused(rmsprop, 2), FLOAT),
        "rmspropalex_update": (fused(rmspropalex, 2), FLOAT),
        "adagrad_update": (fused(adagrad, 2), FLOAT),
        "adadelta_update": (fused(adadelta, 2), FLOAT),
    }
