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

import functools
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

    def fused(make, nscratch, lead=0):
        """A kernel ``fn(weight, grad, *states, **attrs)`` running the body
        ``make(dtype scalar type, **attrs)`` over blocks (or whole arrays).  The
        arithmetic and scratch dtype is that of array ``lead`` (the float32
        master copy of mixed-precision updates)."""
        def kernel(w, g, *states, **attrs):
            arrays = (w, g) + states
            dt = arrays[lead].dtype
            body = make(dt.type, **attrs)
            n = w.size
            if block and all(a.flags.c_contiguous for a in arrays):
                m = min(n, block)
                bufs = cached_scratch(dt, m, nscratch)
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
                body(*arrays, *[xp.empty(w.shape, dt) for _ in range(nscratch)])
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

    # SignSGD, Signum ----------------------------------------------------------------------
    def signsgd(T, lr, wd, rescale_grad, clip_gradient):
        lr_, decay = T(lr), T(1.0 - lr * wd)

        def body(w, g, s):
            xp.sign(g, out=s)  # rescaling and clipping keep the sign
            xp.multiply(s, lr_, out=s)
            if wd:
                xp.multiply(w, decay, out=w)
            xp.subtract(w, s, out=w)
        return body

    def signum(T, lr, momentum, wd, rescale_grad, clip_gradient, wd_lh):
        rs, c, lr_, wd_ = T(rescale_grad), T(clip_gradient), T(lr), T(wd)
        mu, nu, decay = T(momentum), T(1.0 - momentum), T(1.0 - lr * wd_lh)

        def body(w, g, mom, s, t):
            prep(w, g, s, None, rs, 0, c)
            if wd:
                xp.multiply(w, wd_, out=t)
                xp.add(s, t, out=s)
            xp.multiply(mom, mu, out=mom)
            xp.multiply(s, nu, out=s)
            xp.subtract(mom, s, out=mom)        # mom = mu*mom - (1-mu)*(g + wd*w)
            xp.sign(mom, out=s)
            xp.multiply(s, lr_, out=s)
            if wd_lh:
                xp.multiply(w, decay, out=w)
            xp.add(w, s, out=w)
        return body

    # FTML, FTRL ----------------------------------------------------------------------------
    def ftml(T, lr, beta1, beta2, epsilon, t, wd, rescale_grad, clip_grad):
        rs, c, wd_, eps = T(rescale_grad), T(clip_grad), T(wd), T(epsilon)
        b1, c1, b2, c2 = T(beta1), T(1.0 - beta1), T(beta2), T(1.0 - beta2)
        # d_t = (1 - beta1^t)/lr * (sqrt(v/(1 - beta2^t)) + epsilon)
        v_corr, d_scale = T(1.0 - beta2 ** t), T((1.0 - beta1 ** t) / lr)

        def body(w, g, d, v, z, s, u):
            prep(w, g, s, u, rs, wd_, c)
            xp.multiply(v, b2, out=v)
            xp.multiply(s, s, out=u)
            xp.multiply(u, c2, out=u)
            xp.add(v, u, out=v)
            xp.divide(v, v_corr, out=u)
            xp.sqrt(u, out=u)
            xp.add(u, eps, out=u)
            xp.multiply(u, d_scale, out=u)      # u = d_t
            xp.multiply(z, b1, out=z)
            xp.multiply(s, c1, out=s)
            xp.add(z, s, out=z)
            xp.multiply(d, b1, out=d)
            xp.subtract(d, u, out=d)            # d = -(d_t - beta1*d): minus sigma
            xp.multiply(d, w, out=s)
            xp.add(z, s, out=z)                 # z -= sigma*w
            xp.copyto(d, u)
            xp.divide(z, u, out=w)
            xp.negative(w, out=w)
        return body

    def ftrl(T, lr, lamda1, beta, wd, rescale_grad, clip_gradient):
        rs, c, lr_, wd_, l1, b = (T(rescale_grad), T(clip_gradient), T(lr), T(wd), T(lamda1),
                                  T(beta))

        def body(w, g, z, n, s, t, u):
            prep(w, g, s, None, rs, 0, c)
            xp.multiply(s, s, out=u)
            xp.sqrt(n, out=t)
            xp.add(n, u, out=n)
            xp.sqrt(n, out=u)
            xp.subtract(u, t, out=t)
            xp.multiply(t, w, out=t)
            xp.divide(t, lr_, out=t)
            xp.subtract(s, t, out=s)
            xp.add(z, s, out=z)                 # z += g - (sqrt(n') - sqrt(n))*w/lr
            xp.add(u, b, out=u)
            xp.divide(u, lr_, out=u)
            if wd:
                xp.add(u, wd_, out=u)           # u = (beta + sqrt(n'))/lr + wd
            xp.sign(z, out=s)
            xp.multiply(s, l1, out=s)
            xp.subtract(s, z, out=s)
            xp.divide(s, u, out=s)
            xp.abs(z, out=t)
            xp.greater(t, l1, out=t)            # 1 where |z| > lamda1, else 0
            xp.multiply(s, t, out=w)
        return body

    # LAMB ----------------------------------------------------------------------------------
    def lamb_direction(T, beta1, beta2, epsilon, t, bias_correction, wd, rescale_grad,
                       clip_gradient, master=False):
        """A body writing the phase-one direction into ``out``; with ``master`` the
        arrays are (weight, grad, mean, var, weight32, out) and the gradient is
        taken to float32 first."""
        rs, c, wd_, eps = T(rescale_grad), T(clip_gradient), T(wd), T(epsilon)
        b1, c1, b2, c2 = T(beta1), T(1.0 - beta1), T(beta2), T(1.0 - beta2)
        hat1, hat2 = ((T(1.0 - beta1 ** t), T(1.0 - beta2 ** t)) if bias_correction
                      else (None, None))

        def body(w, g, m, v, *rest):
            *w32, out, s, u = rest
            if master:
                xp.copyto(s, g)
                g, w = s, w32[0]
            prep(w, g, s, None, rs, 0, c)
            moments(s, u, m, v, b1, c1, b2, c2)
            if hat2 is not None:
                xp.divide(v, hat2, out=u)
                xp.sqrt(u, out=u)
                xp.divide(m, hat1, out=out)
            else:
                xp.sqrt(v, out=u)
                xp.copyto(out, m)
            xp.add(u, eps, out=u)
            xp.divide(out, u, out=out)
            if wd:
                xp.multiply(w, wd_, out=u)
                xp.add(out, u, out=out)
        return body

    def lamb_phase1(master):
        run = fused(functools.partial(lamb_direction, master=master), 2,
                    lead=4 if master else 0)

        def kernel(w, g, m, v, *w32, **attrs):
            out = xp.empty(w.shape, m.dtype)
            run(w, g, m, v, *w32, out, **attrs)
            return out
        return kernel

    def trust_step(r1, r2, lr, lower_bound, upper_bound, dtype):
        """lr * r1/r2 as a one-element array on the device (no host round trip):
        r1 clipped to the bounds that are >= 0, ratio 1 when either norm is 0."""
        r1 = r1.reshape(1).astype(dtype)
        r2 = r2.reshape(1).astype(dtype)
        if lower_bound >= 0:
            r1 = xp.maximum(r1, dtype.type(lower_bound))
        if upper_bound >= 0:
            r1 = xp.minimum(r1, dtype.type(upper_bound))
        one = dtype.type(1)
        either_zero = (r1 == 0) | (r2 == 0)
        ratio = xp.where(either_zero, one, r1 / xp.where(r2 == 0, one, r2))
        return ratio * dtype.type(lr)

    def take_step(T, step):
        def body(w, g, *rest):
            *w32, s = rest
            xp.multiply(g, step, out=s)
            if w32:
                xp.subtract(w32[0], s, out=w32[0])
                xp.copyto(w, w32[0])
            else:
                xp.subtract(w, s, out=w)
        return body

    def lamb_phase2(master):
        run = fused(take_step, 1, lead=2 if master else 0)

        def kernel(w, g, r1, r2, *w32, lr, lower_bound, upper_bound):
            step = trust_step(r1, r2, lr, lower_bound, upper_bound, g.dtype)
            return run(w, g, *w32, step=step)
        return kernel

    def l2norm(x):
        """||x|| as a one-element array (16-bit floats summed in float32).  einsum,
        not dot: a memory-bound reduction gains nothing from BLAS threads, and
        OpenBLAS's threaded float64 dot ran ~10x slower than one pass on two
        busy cores."""
        a = x.reshape(-1)
        if a.dtype.itemsize < 4:
            a = a.astype(xp.float32)
        return xp.sqrt(xp.einsum("i,i->", a, a)).reshape(1)

    def multi_lamb(master):
        per = 5 if master else 4
        phase1, phase2 = lamb_phase1(master), lamb_phase2(master)

        def kernel(*arrays, learning_rates, wds, step_count, num_tensors, lower_bound,
                   upper_bound, **hp):
            for i in range(num_tensors):
                w, g, m, v, *w32 = arrays[per * i:per * i + per]
                direction = phase1(w, g, m, v, *w32, t=step_count[i], wd=wds[i], **hp)
                r1 = l2norm(w32[0] if master else w)
                phase2(w, direction, r1, l2norm(direction), *w32, lr=learning_rates[i],
                       lower_bound=lower_bound, upper_bound=upper_bound)
            return tuple(arrays[0::per])
        return kernel

    # BLAS paths for the SGD family (numpy's own OpenBLAS; see the module docstring)
    level1 = []  # [{dtype char: (axpy, scal)}], looked up on first use

    def blas_ready(flags, written):
        return flags.c_contiguous and flags.aligned and (flags.writeable or not written)

    def with_blas(generic, blas_body, small=None):
        """``generic`` with a BLAS path for large arrays and, for arrays below
        BLAS_MIN without clipping, ``small``: the same ufuncs on whole arrays, without
        the block machinery (whose per-call set-up dominates a bias's update)."""
        def kernel(w, g, *states, **attrs):
            n = w.size
            if n < BLAS_MIN and small is not None and attrs["clip_gradient"] < 0:
                small(w, g, *states, **attrs)
                return w
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

    def sgd_small(w, g, lr, wd, rescale_grad, clip_gradient):
        # sgd's body without clipping, operation for operation (same rounding)
        T = w.dtype.type
        s = xp.multiply(g, T(lr * rescale_grad))
        if wd:
            xp.multiply(w, T(1.0 - lr * wd), out=w)
        xp.subtract(w, s, out=w)

    def sgd_mom_small(w, g, mom, lr, momentum, wd, rescale_grad, clip_gradient):
        T = w.dtype.type
        s = xp.multiply(g, T(lr * rescale_grad))
        xp.multiply(mom, T(momentum), out=mom)
        xp.subtract(mom, s, out=mom)
        if wd:
            xp.multiply(w, T(lr * wd), out=s)
            xp.subtract(mom, s, out=mom)
        xp.add(w, mom, out=w)

    sgd_kernel = with_blas(fused(sgd, 1), sgd_blas, sgd_small)
    sgd_mom_kernel = with_blas(fused(sgd_mom, 1), sgd_mom_blas, sgd_mom_small)

    def multi(single, per, lists=("lrs", "wds"), small=None):
        """Apply ``single`` to each (weight, grad, states...) group in turn; the
        list attributes (``lrs``...) give each call its own ``lr``...).  ``small``:
        ``single``'s own path for arrays below BLAS_MIN without clipping (``with_blas``),
        called directly (a call less per weight: a model has hundreds of biases)."""
        names = [(k, k[:-1]) for k in lists]
        if tuple(lists) == ("lrs", "wds"):  # the usual lists, without the name juggling
            def kernel(*arrays, num_weights, lrs, wds, **attrs):
                direct = small is not None and attrs["clip_gradient"] < 0
                for i in range(num_weights):
                    j = per * i
                    group = arrays[j:j + per]
                    if direct and group[0].size < BLAS_MIN:
                        small(*group, lr=lrs[i], wd=wds[i], **attrs)
                    else:
                        single(*group, lr=lrs[i], wd=wds[i], **attrs)
                return tuple(arrays[0::per])
            return kernel

        def kernel(*arrays, num_weights, **attrs):
            columns = [(one, attrs.pop(k)) for k, one in names]
            for i in range(num_weights):
                for one, values in columns:  # attrs is this call's own dict
                    attrs[one] = values[i]
                single(*arrays[per * i:per * i + per], **attrs)
            return tuple(arrays[0::per])
        return kernel

    adam_kernel, adamw_kernel = fused(adam, 2), fused(adamw, 2)
    return {
        "sgd_update": (sgd_kernel, FLOAT),
        "sgd_mom_update": (sgd_mom_kernel, FLOAT),
        "multi_sgd_update": (multi(sgd_kernel, 2, small=sgd_small), FLOAT),
        "multi_sgd_mom_update": (multi(sgd_mom_kernel, 3, small=sgd_mom_small), FLOAT),
        "nag_mom_update": (fused(nag_mom, 2), FLOAT),
        "adam_update": (adam_kernel, FLOAT),
        "adamw_update": (adamw_kernel, FLOAT),
        "multi_adam_update": (multi(adam_kernel, 4), FLOAT),
        "multi_adamw_update": (multi(adamw_kernel, 4, ("lrs", "wds", "etas")), FLOAT),
        "rmsprop_update": (fused(rmsprop, 2), FLOAT),
        "rmspropalex_update": (fused(rmspropalex, 2), FLOAT),
        "adagrad_update": (fused(adagrad, 2), FLOAT),
        "adadelta_update": (fused(adadelta, 2), FLOAT),
        "signsgd_update": (fused(signsgd, 1), FLOAT),
        "signum_update": (fused(signum, 2), FLOAT),
        "ftml_update": (fused(ftml, 2), FLOAT),
        "ftrl_update": (fused(ftrl, 3), FLOAT),
        "lamb_update_phase1": (lamb_phase1(False), FLOAT),
        "lamb_update_phase2": (lamb_phase2(False), FLOAT),
        "mp_lamb_update_phase1": (lamb_phase1(True), FLOAT),
        "mp_lamb_update_phase2": (lamb_phase2(True), FLOAT),
        "multi_lamb_update": (multi_lamb(False), FLOAT),
        "multi_mp_lamb_update": (multi_lamb(True), FLOAT),
    }
