"""dtype groups kernels declare."""
import hal

FLOAT = frozenset(hal.FLOAT_DTYPES)
INT = frozenset(hal.INT_DTYPES)
NUM = FLOAT | INT
ALL = NUM | {"bool"}


def acc_dtype(xp, dtype):
    """Accumulation dtype: float16 sums run in float32, ints in int64."""
    if dtype == xp.float16:
        return xp.float32
    if dtype.kind in "iub":
        return xp.int64
    return dtype
