"""Shape kernels.  reshape and transpose return views, as numpy does; flip and diag
return copies."""
from __future__ import annotations

from mxcore_cpu.kernels._dtypes import ALL, NUM


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

    def flip(x, axis):
        # a copy: writing into the result must not change the input
        return xp.flip(x, axis=axis).copy()

    def diag(x, k, axis1, axis2):
        if x.ndim == 1:
            return xp.diag(x, k)
        return xp.diagonal(x, k, axis1, axis2).copy()  # numpy's diagonal is a read-only view

    def diag_grad(g, k, axis1, axis2, shape):
        """zeros of ``shape`` with ``g`` on the k-th diagonals of the (axis1, axis2)
        planes: written with the two axes last, then moved into place."""
        rest = tuple(s for i, s in enumerate(shape) if i not in (axis1, axis2))
        out = xp.zeros(rest + (shape[axis1], shape[axis2]), dtype=g.dtype)
        steps = xp.arange(g.shape[-1])
        out[..., steps + max(-k, 0), steps + max(k, 0)] = g
        return xp.ascontiguousarray(xp.moveaxis(out, (-2, -1), (axis1, axis2)))

    return {
        "flip": (flip, ALL), "diag": (diag, ALL), "diag_grad": (diag_grad, NUM),
        "shape_array": (lambda x: xp.asarray(x.shape, dtype=xp.int64), ALL),
        "size_array": (lambda x: xp.asarray([x.size], dtype=xp.int64), ALL),
        "reshape": (lambda x, shape: x.reshape(shape), ALL),
        # a new array, as MXNet's: writing into x.T must not change x
        "transpose": (lambda x, axes: xp.transpose(x, axes).copy(), ALL),
        # materialised: a broadcast view is read-only and shares one element
        "broadcast_to": (lambda x, shape: xp.array(xp.broadcast_to(x, shape)), ALL),
        "concat": (lambda *xs, dim: xp.concatenate(xs, axis=dim), ALL),
        "stack": (lambda *xs, axis: xp.stack(xs, axis=axis), ALL),
        "split": (split, ALL),
        "tile": (lambda x, reps: xp.tile(x, reps), ALL),
        "repeat": (lambda x, repeats, axis: xp.repeat(x, repeats, axis=axis), ALL),
        "pad": (pad, ALL),
    }
