"""random_uniform / random_normal with Triton's counter-based Philox
(``tl.rand``/``tl.randn`` of a seed and each element's offset).  The seed is
drawn from the device's generator (the op's first argument), so
``mx.random.seed`` makes the samples reproducible; on a GPU it comes from the
generator's host-side seed stream (``CupyGenerator.host``): no device sync.
float16/float32 (Philox yields float32 samples).  Dropout draws its mask the same
way from a seed attribute, so its backward regenerates the mask."""
from __future__ import annotations

import triton
import triton.language as tl

from mxcore_cuda.triton._launch import cdiv, launch
from mxcore_cuda.triton._runtime import arg, contiguous, count, elementwise_block, numel, xp_of


@triton.jit
def _random_kernel(Y, N, seed, a, b, NORMAL: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)  # int32: the guard keeps N < 2**31
    mask = offs < N
    if NORMAL:
        r = tl.randn(seed, offs) * b + a
    else:
        r = tl.rand(seed, offs) * (b - a) + a
    tl.store(Y + offs, r.to(Y.dtype.element_ty), mask=mask)


def draw_seed(rng) -> int:
    """A 31-bit Triton seed from a device generator (numpy's, or CupyGenerator's
    host stream)."""
    host = getattr(rng, "host", rng)
    return int(host.integers(0, 2**31 - 1))


def _sampler(normal: bool):
    tag = "random.random_normal" if normal else "random.random_uniform"

    def sample(rng, a, b, shape, dtype):
        seed = draw_seed(rng)
        xp = xp_of(None)
        y = xp.empty(tuple(shape), dtype=dtype)
        n = numel(shape)
        if n:
            block = elementwise_block(n)
            launch(_random_kernel, (cdiv(n, block),), arg(y), n, seed, float(a), float(b),
                   NORMAL=normal, BLOCK=block)
            count(tag)
        return y
    if normal:
        def kernel(rng, loc, scale, shape, dtype):
            return sample(rng, loc, scale, shape, dtype)
    else:
        def kernel(rng, low, high, shape, dtype):
            return sample(rng, low, high, shape, dtype)
    kernel.__name__ = kernel.__qualname__ = "triton_" + tag.split(".")[1]
    return kernel


random_uniform = _sampler(False)
random_normal = _sampler(True)


@triton.jit
def _dropout_kernel(X, Y, N, seed, p, scale, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)  # int32: the guard keeps N < 2**31
    mask = offs < N
    x = tl.load(X + offs, mask=mask, other=0.0).to(tl.float32)
    keep = tl.rand(seed, offs) >= p
    tl.store(Y + offs, tl.where(keep, x * scale, 0.0).to(Y.dtype.element_ty), mask=mask)


def dropout(x, p, seed, axes, always=False):
    """Inverted dropout in one pass: element i is kept when ``tl.rand(seed, i) >= p``
    (the backward pass calls this again on the gradient, with the same seed);
    ``always`` (mode='always') concerns graph passes only."""
    x = contiguous(x)
    y = xp_of(x).empty_like(x)
    n = x.size
    if n:
        block = elementwise_block(n)
        launch(_dropout_kernel, (cdiv(n, block),), arg(x), arg(y), n, int(seed), float(p),
               1.0 / (1.0 - float(p)), BLOCK=block)
        count("random.dropout")
    return y
