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


def acc_dtype(xp, dtype):
    """Accumulation dtype: float16 sums run in float32, ints in int64."""
    if dtype == xp.float16:
        return xp.float32
    if dtype.kind in "iub":
        return xp.int64
    return dtype


def via_float32(xp, fn):
    """``fn`` computed in float32 for bfloat16 inputs, results cast back: numpy and
    CuPy have no bfloat16 BLAS (ml_dtypes' matmul is a slow loop returning float32),
    and float32 products of bfloat16 values are exact."""
    def kernel(*arrays, **attrs):
        dt = arrays[0].dtype
        if dt is not BFLOAT16:  # identity: dtype.name costs ~2 us, this is a hot path
            return fn(*arrays, **attrs)
        out = fn(*(a.astype(xp.float32) if a.dtype == dt else a for a in arrays), **attrs)
        if isinstance(out, tuple):
            return tuple(o.astype(dt) for o in out)
        return out.astype(dt)
    kernel.__name__ = getattr(fn, "__name__", "kernel")
    return kernel
