"""Indexing kernels: getitem/setitem, take, pick, one_hot and their adjoints."""
from __future__ import annotations

from mxcore_cpu.kernels._dtypes import ALL, NUM, acc_dtype


def kernels(xp, special):
    def advanced(key):
        return any(hasattr(k, "shape") and hasattr(k, "dtype") for k in key)

    def getitem(x, key):
        return xp.asarray(x[key])

    def getitem_grad(g, key, shape):
        if advanced(key):
            # repeated indices accumulate: in float32 for 16-bit floats, rounded once
            out = xp.zeros(shape, dtype=acc_dtype(xp, g.dtype))
            xp.add.at(out, key, g.astype(out.dtype, copy=False))
            return out.astype(g.dtype, copy=False)
        out = xp.zeros(shape, dtype=g.dtype)
        out[key] = g
        return out

    def setitem(x, v, key):
        x[key] = v
        return x

    def setitem_scalar(x, key, scalar):
        x[key] = scalar
        return x

    def fix_indices(idx, size, mode):
        idx = idx.astype(xp.int64)
        if mode == "wrap":
            return xp.mod(idx, size)
        if mode == "clip":
            return xp.clip(idx, 0, size - 1)
        if idx.size and (idx.min() < -size or idx.max() >= size):
            raise IndexError(f"index out of range for an axis of size {size}")
        return xp.where(idx < 0, idx + size, idx)

    def take(a, indices, axis, mode):
        return xp.take(a, fix_indices(indices, a.shape[axis], mode), axis=axis)

    def take_grad(g, indices, axis, mode, size):
        idx = fix_indices(indices, size, mode)
        shape = g.shape[:axis] + (size,) + g.shape[axis + idx.ndim:]
        out = xp.zeros(shape, dtype=acc_dtype(xp, g.dtype))  # repeated indices accumulate
        xp.add.at(out, (slice(None),) * axis + (idx,), g.astype(out.dtype, copy=False))
        return out.astype(g.dtype, copy=False)

    def pick_index(index, data_ndim, axis, size, mode):
        idx = fix_indices(index, size, mode)
        return idx if idx.ndim == data_ndim else xp.expand_dims(idx, axis)

    def pick(data, index, axis, keepdims, mode):
        idx = pick_index(index, data.ndim, axis, data.shape[axis], mode)
        r = xp.take_along_axis(data, idx, axis=axis)
        return r if keepdims else xp.squeeze(r, axis=axis)

    def pick_grad(g, index, axis, keepdims, mode, size):
        ge = g if keepdims else xp.expand_dims(g, axis)
        shape = list(ge.shape)
        shape[axis] = size
        out = xp.zeros(tuple(shape), dtype=g.dtype)
        idx = pick_index(index, len(shape), axis, size, mode)
        xp.put_along_axis(out, idx, ge, axis=axis)
        return out

    def one_hot(indices, depth, on_value, off_value, dtype):
        idx = indices.astype(xp.int64)[..., None]
        return xp.where(xp.arange(depth) == idx, on_value, off_value).astype(dtype)

    return {
        "getitem": (getitem, ALL), "getitem_grad": (getitem_grad, ALL),
        "setitem": (setitem, ALL), "setitem_scalar": (setitem_scalar, ALL),
        "take": (take, ALL), "take_grad": (take_grad, NUM),
        "pick": (pick, ALL), "pick_grad": (pick_grad, NUM),
        "one_hot": (one_hot, NUM),
    }
