"""Fused in-place optimizer updates: sgd_update, sgd_mom_update (and their
multi-tensor forms) and adam_update, with MXNet's formulas (the same as
mxcore_cpu.kernels.optimizer):

* sgd:      s = clip(rescale_grad*g); w = (1 - lr*wd)*w - lr*s
* sgd_mom:  s = clip(rescale_grad*g); mom = momentum*mom - lr*s - lr*wd*w; w += mom
* adam:     s = clip(rescale_grad*g + wd*w); m = b1*m + (1-b1)*s;
            v = b2*v + (1-b2)*s^2; w -= lr*m/(sqrt(v) + epsilon)

Hyper-parameters travel in a small array of the weight's dtype: Triton passes
Python floats as float32, which would round float64 updates.  float16 weights
compute in float32.  Non-contiguous arrays are updated through contiguous
copies written back afterwards.
"""
from __future__ import annotations

import triton
import triton.language as tl

from mxcore_cuda.triton._runtime import arg, count, elementwise_block, xp_of


@triton.jit
def _sgd_kernel(W, G, MOM, HP, N, MOMENTUM: tl.constexpr, CLIP: tl.constexpr,
                BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    w = tl.load(W + offs, mask=mask)
    g = tl.load(G + offs, mask=mask)
    if w.dtype == tl.float16:
        w = w.to(tl.float32)
        g = g.to(tl.float32)
    lr = tl.load(HP).to(w.dtype)
    wd = tl.load(HP + 1).to(w.dtype)
    rescale = tl.load(HP + 2).to(w.dtype)
    s = g * rescale
    if CLIP:
        c = tl.load(HP + 3).to(w.dtype)
        s = tl.minimum(tl.maximum(s, -c), c)
    if MOMENTUM:
        mu = tl.load(HP + 4).to(w.dtype)
        mom = tl.load(MOM + offs, mask=mask).to(w.dtype)
        mom = mom * mu - lr * s - (lr * wd) * w
        tl.store(MOM + offs, mom.to(MOM.dtype.element_ty), mask=mask)
        w = w + mom
    else:
        w = (1.0 - lr * wd) * w - lr * s
    tl.store(W + offs, w.to(W.dtype.element_ty), mask=mask)


@triton.jit
def _adam_kernel(W, G, M, V, HP, N, CLIP: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    w = tl.load(W + offs, mask=mask)
    g = tl.load(G + offs, mask=mask)
    if w.dtype == tl.float16:
        w = w.to(tl.float32)
        g = g.to(tl.float32)
    m = tl.load(M + offs, mask=mask).to(w.dtype)
    v = tl.load(V + offs, mask=mask).to(w.dtype)
    lr = tl.load(HP).to(w.dtype)
    wd = tl.load(HP + 1).to(w.dtype)
    rescale = tl.load(HP + 2).to(w.dtype)
    b1 = tl.load(HP + 4).to(w.dtype)
    b2 = tl.load(HP + 5).to(w.dtype)
    eps = tl.load(HP + 6).to(w.dtype)
    s = g * rescale + wd * w
    if CLIP:
        c = tl.load(HP + 3).to(w.dtype)
        s = tl.minimum(tl.maximum(s, -c), c)
    m = b1 * m + (1.0 - b1) * s
    v = b2 * v + (1.0 - b2) * (s * s)
    if w.dtype == tl.float32:  # IEEE rounding: sqrt_rn/div_rn take fp32 only
        w = w - tl.div_rn(lr * m, tl.sqrt_rn(v) + eps)
    else:
        w = w - (lr * m) / (tl.sqrt(v) + eps)
    tl.store(M + offs, m.to(M.dtype.element_ty), mask=mask)
    tl.store(V + offs, v.to(V.dtype.element_ty), mask=mask)
    tl.store(W + offs, w.to(W.dtype.element_ty), mask=mask)


def _hyper(w, lr, wd, rescale_grad, clip_gradient, *extra):
    xp = xp_of(w)
    hp_dtype = xp.float32 if w.dtype == xp.float16 else w.dtype
    return xp.asarray([lr, wd, rescale_grad, clip_gradient, *extra], dtype=hp_dtype)


def _run(launch, arrays, mutated):
    """Launch on contiguous arrays; write copies of non-contiguous ones back."""
    if all(a.flags.c_contiguous for a in arrays):
        launch(*arrays)
        return
    xp = xp_of(arrays[0])
    flat = [a if a.flags.c_contiguous else xp.ascontiguousarray(a) for a in arrays]
    launch(*flat)
    for i in mutated:
        if flat[i] is not arrays[i]:
            arrays[i][...] = flat[i]


def sgd_update(w, g, lr, wd, rescale_grad, clip_gradient):
    n = w.size
    if n:
        hp = _hyper(w, lr, wd, rescale_grad, clip_gradient, 0.0)
        block = elementwise_block(n)

        def launch(w_, g_):
            _sgd_kernel[(triton.cdiv(n, block),)](arg(w_), arg(g_), arg(w_), arg(hp), n,
                                                  MOMENTUM=False, CLIP=clip_gradient >= 0,
                                                  BLOCK=block)
        _run(launch, (w, g), (0,))
        count("optimizer.sgd_update")
    return w


def sgd_mom_update(w, g, mom, lr, momentum, wd, rescale_grad, clip_gradient):
    n = w.size
    if n:
        hp = _hyper(w, lr, wd, rescale_grad, clip_gradient, momentum)
        block = elementwise_block(n)

        def launch(w_, g_, m_):
            _sgd_kernel[(triton.cdiv(n, block),)](arg(w_), arg(g_), arg(m_), arg(hp), n,
                                                  MOMENTUM=True, CLIP=clip_gradient >= 0,
                                                  BLOCK=block)
        _run(launch, (w, g, mom), (0, 2))
        count("optimizer.sgd_mom_update")
    return w


def adam_update(w, g, mean, var, lr, beta1, beta2, epsilon, wd, rescale_grad, clip_gradient):
    n = w.size
    if n:
        hp = _hyper(w, lr, wd, rescale_grad, clip_gradient, beta1, beta2, epsilon)
        block = elementwise_block(n)

        def launch(w_, g_, m_, v_):
            _adam_kernel[(triton.cdiv(n, block),)](arg(w_), arg(g_), arg(m_), arg(v_), arg(hp),
                                                   n, CLIP=clip_gradient >= 0, BLOCK=block)
        _run(launch, (w, g, mean, var), (0, 2, 3))
        count("optimizer.adam_update")
    return w


def _multi(single, per):
    def kernel(*arrays, lrs, wds, num_weights, **attrs):
        for i in range(num_weights):
            single(*arrays[per * i:per * i + per], lr=lrs[i], wd=wds[i], **attrs)
        return tuple(arrays[0::per])
    return kernel


multi_sgd_update = _multi(sgd_update, 2)
multi_sgd_mom_update = _multi(sgd_mom_update, 3)
for _f, _n in ((sgd_update, "sgd_update"), (sgd_mom_update, "sgd_mom_update"),
               (adam_update, "adam_update"), (multi_sgd_update, "multi_sgd_update"),
               (multi_sgd_mom_update, "multi_sgd_mom_update")):
    _f.__qualname__ = f"triton_{_n}"
