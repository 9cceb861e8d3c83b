"""dtype groups kernels declare."""
import hal

#: float dtypes, bfloat16 included (ml_dtypes' numpy ufuncs; kernels whose library
#: lacks bfloat16 compute in float32: see ``via_float32``)
FLOAT = frozenset(hal.FLOAT_DTYPES + hal.BFLOAT16_DTYPES)
INT = frozenset(hal.INT_DTYPES)
NUM = FLOAT | INT
ALL = NUM | {"bool"}
#: the bfloat16 numpy dtype (None without ml_dtypes)
BFLOAT16 = hal.DTYPES.get("bfloat16")


def is_half(xp, dtype) -> bool:
    """float16 or bfloat16: too few mantissa bits to accumulate in."""
    return dtype is BFLOAT16 or dtype == xp.float16  # identity: bfloat16's name is slow


def acc_dtype(xp, dtype):
    """Accumulation dtype: float16 and bfloat16 sums run in float32, ints in int64.

    16-bit accumulators lose every addend below half an ulp of the running sum (a
    bfloat16 sum of 4096 ones stops at 256), and what numpy and ml_dtypes do with
    them changes between releases: accumulate in float32 and round once at the end."""
    if is_half(xp, dtype):
        return xp.float32
    if dtype.kind in "iub":
        return xp.int64
    return dtype


def as_float32(xp, x):
    """``x`` in float32 if it is a 16-bit float, else ``x`` itself: the working
    precision of normalisations and softmaxes, whose results are rounded once."""
    return x.astype(xp.float32) if is_half(xp, x.dtype) else x


def via_float32(xp, fn):
    """``fn`` computed in float32 for bfloat16 inputs (and float16 ones on numpy),
    results cast back: numpy and CuPy have no bfloat16 BLAS (ml_dtypes' matmul is a slow
    loop returning float32), numpy has no float16 BLAS either (its float16 matmul is a
    loop about 100x slower than float32's), and float32 products of 16-bit values are
    exact, so the result is the float32 product rounded once. CuPy's float16 products
    run on cuBLAS as they are."""
    import numpy
    f16 = numpy.float16 if xp is numpy else BFLOAT16

    def kernel(*arrays, **attrs):
        dt = arrays[0].dtype
        # identity for bfloat16 (dtype.name costs ~2 us, this is a hot path)
        if dt is not BFLOAT16 and dt != f16:
            return fn(*arrays, **attrs)
        out = fn(*(a.astype(xp.float32) if a.dtype == dt else a for a in arrays), **attrs)
        if isinstance(out, tuple):
            return tuple(o.astype(dt) for o in out)
        return out.astype(dt)
    kernel.__name__ = getattr(fn, "__name__", "kernel")
    kernel.__wrapped__ = fn  # inspect.signature (docs/kernels.md) shows fn's parameters
    return kernel
