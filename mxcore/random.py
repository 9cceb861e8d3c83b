"""``mx.random``: seeding and sampling (also reachable as ``mx.nd.random``)."""
from __future__ import annotations

from mxcore.ops.random import normal, randint, shuffle, uniform


def seed(seed_state: int, ctx="all") -> None:
    """Seed the generator of every device (``ctx="all"``) or of one device."""
    from hal import parse_device
    from mxcore.plugins import registry
    if not isinstance(seed_state, int):
        raise TypeError(f"seed must be an int, got {type(seed_state).__name__}")
    reg = registry()
    if ctx == "all":
        for kind, dt in reg.devices.items():
            if dt.is_available():
                for i in range(dt.device_count()):
                    dt.seed(i, seed_state)
    else:
        dev = parse_device(ctx)
        reg.device_type(dev.kind).seed(dev.index, seed_state)


__all__ = ["seed", "uniform", "normal", "randint", "shuffle"]
