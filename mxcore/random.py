"""``mx.random``: seeding and sampling (also reachable as ``mx.nd.random``).

The samplers take numbers (``random_*`` ops: ``shape`` samples, default ``(1,)``) or
NDArrays (``sample_*`` ops: ``shape`` samples per parameter element), as MXNet's
``mx.nd.random`` does; see ``mxcore.ops.random``.  Each device has its own generator:
``seed(n)`` reseeds every device, ``seed(n, ctx)`` one of them, and the same seed gives
the same numbers on the same device.
"""
from __future__ import annotations

import numbers

from mxcore.ops.random import (exponential, exponential_like, gamma, gamma_like,
                               generalized_negative_binomial,
                               generalized_negative_binomial_like, multinomial,
                               negative_binomial, negative_binomial_like, normal, normal_like,
                               poisson, poisson_like, randint, randn, shuffle, uniform,
                               uniform_like)

#: seeds are taken modulo 2**64 (numpy's and CuPy's seed sequences take no negative
#: seeds; MXNet takes any int)
_SEED_MODULUS = 2 ** 64


def seed(seed_state: int, ctx="all") -> None:
    """Seed the generator of every device (``ctx="all"``) or of one device."""
    from hal import parse_device
    from mxcore.plugins import registry
    if not isinstance(seed_state, numbers.Integral):
        raise ValueError(f"seed_state must be int, got {type(seed_state).__name__}")
    state = int(seed_state) % _SEED_MODULUS
    reg = registry()
    if ctx == "all":
        for dt in reg.devices.values():
            if dt.is_available():
                for i in range(dt.device_count()):
                    dt.seed(i, state)
    else:
        dev = parse_device(ctx)
        reg.device_type(dev.kind).seed(dev.index, state)


__all__ = ["seed", "uniform", "normal", "randn", "gamma", "exponential", "poisson",
           "negative_binomial", "generalized_negative_binomial", "multinomial", "shuffle",
           "randint", "uniform_like", "normal_like", "gamma_like", "exponential_like",
           "poisson_like", "negative_binomial_like", "generalized_negative_binomial_like"]
