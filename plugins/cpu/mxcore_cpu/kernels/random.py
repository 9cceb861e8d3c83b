"""Random kernels; the first argument is the device's generator."""
from __future__ import annotations

from mxcore_cpu.kernels._dtypes import ALL, FLOAT, INT


def kernels(xp, special):
    def work_dtype(dtype):
        return xp.float64 if dtype == "float64" else xp.float32

    def uniform(rng, low, high, shape, dtype):
        r = rng.random(shape, dtype=work_dtype(dtype))
        return (r * (high - low) + low).astype(dtype, copy=False)

    def normal(rng, loc, scale, shape, dtype):
        r = rng.standard_normal(shape, dtype=work_dtype(dtype))
        return (r * scale + loc).astype(dtype, copy=False)

    def randint(rng, low, high, shape, dtype):
        return rng.integers(low, high, size=shape, dtype=dtype)

    def shuffle(rng, x):
        return x[rng.permutation(x.shape[0])] if x.ndim else x.copy()

    return {"random_uniform": (uniform, FLOAT), "random_normal": (normal, FLOAT),
            "random_randint": (randint, INT), "shuffle": (shuffle, ALL)}
