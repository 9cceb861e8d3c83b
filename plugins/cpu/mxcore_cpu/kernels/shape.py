"""Shape kernels.  reshape and transpose return views, as numpy does."""
from __future__ import annotations

from mxcore_cpu.kernels._dtypes import ALL


def kernels(xp, special):
    def split(x, num_outputs, axis, squeeze_axis):
        parts = xp.split(x, num_outputs, axis=axis)
        if squeeze_axis:
            parts = [xp.squeeze(p, axis=axis) for p in parts]
        return tuple(parts)

    def pad(x, mode, pad_width, constant_value):
        pairs = [(pad_width[2 * i], pad_width[2 * i + 1]) for i in range(x.ndim)]
        if mode == "constant":
            return xp.pad(x, pairs, mode="constant", constant_values=constant_value)
        return xp.pad(x, pairs, mode=mode)

    return {
        "reshape": (lambda x, shape: x.reshape(shape), ALL),
        "transpose": (lambda x, axes: xp.transpose(x, axes), ALL),
        # materialised: a broadcast view is read-only and shares one element
        "broadcast_to": (lambda x, shape: xp.array(xp.broadcast_to(x, shape)), ALL),
        "concat": (lambda *xs, dim: xp.concatenate(xs, axis=dim), ALL),
        "stack": (lambda *xs, axis: xp.stack(xs, axis=axis), ALL),
        "split": (split, ALL),
        "tile": (lambda x, reps: xp.tile(x, reps), ALL),
        "repeat": (lambda x, repeats, axis: xp.repeat(x, repeats, axis=axis), ALL),
        "pad": (pad, ALL),
    }
