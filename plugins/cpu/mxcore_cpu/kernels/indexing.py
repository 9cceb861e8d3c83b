"""Indexing kernels: getitem/setitem, take, pick, one_hot, gather_nd/scatter_nd,
ravel/unravel, fill_element_0index, the sequence ops, and their adjoints."""
from __future__ import annotations

from mxcore_cpu.kernels._dtypes import ALL, NUM, acc_dtype


def kernels(xp, special):
    def advanced(key):
        return any(hasattr(k, "shape") and hasattr(k, "dtype") for k in key)

    def getitem(x, key):
        # MXNet's rule: a basic index whose result is contiguous is a view of ``x``
        # (``x[1]``, ``x[1:3]``); any other result is a copy (``x[:, 1:3]``, ``x[::2]``):
        # writing into it leaves ``x`` alone
        r = xp.asarray(x[key])
        return r if r.flags.c_contiguous else xp.ascontiguousarray(r)

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

    # gather_nd / scatter_nd ------------------------------------------------------------
    def nd_key(indices, shape):
        """The (M, Y...) indices as M int64 arrays, negative ones counted from the end;
        an index outside its axis is an IndexError, as in MXNet (one check per axis)."""
        idx = indices.astype(xp.int64)
        key = []
        for axis in range(idx.shape[0]):
            row, n = idx[axis], shape[axis]
            if row.size:
                lo, hi = int(row.min()), int(row.max())
                if lo < -n or hi >= n:
                    raise IndexError(f"index {lo if lo < -n else hi} is out of bounds for "
                                     f"axis {axis} with size {n}")
            key.append(xp.where(row < 0, row + n, row))
        return tuple(key)

    def gather_nd(x, indices):
        return x[nd_key(indices, x.shape)]

    def gather_nd_grad(g, indices, shape):
        # repeated indices accumulate: in float32 for 16-bit floats, int64 for integers
        out = xp.zeros(shape, dtype=acc_dtype(xp, g.dtype))
        xp.add.at(out, nd_key(indices, shape), g.astype(out.dtype, copy=False))
        return out.astype(g.dtype, copy=False)

    def scatter_nd(x, indices, shape):
        out = xp.zeros(shape, dtype=x.dtype)
        out[nd_key(indices, shape)] = x
        return out

    # ravel_multi_index / unravel_index (loops over the axes of ``shape``) -----------------
    def ravel_multi_index(x, shape):
        idx = x.astype(xp.int64)
        flat = idx[0]
        for axis in range(1, len(shape)):
            flat = flat * shape[axis] + idx[axis]
        return flat.astype(x.dtype)

    def unravel_index(x, shape):
        rest = x.astype(xp.int64)
        rows = []
        for size in shape[:0:-1]:
            rows.append(rest % size)
            rest = rest // size
        rows.append(rest)  # the first row is the quotient (the first size may be -1)
        return xp.stack(rows[::-1]).astype(x.dtype)

    def fill_element_0index(lhs, mhs, rhs):
        hit = xp.arange(lhs.shape[1])[None, :] == rhs.astype(xp.int64)[:, None]
        return xp.where(hit, mhs[:, None], lhs)

    # sequence ops: the sequence axis is moved first, (T, B, ...) ---------------------------
    def seq_first(x, axis):
        return xp.moveaxis(x, axis, 0)

    def seq_back(x, axis):
        return x if axis == 0 else xp.ascontiguousarray(xp.moveaxis(x, 0, axis))

    def last_steps(lengths, steps):
        return xp.clip(lengths.astype(xp.int64) - 1, 0, steps - 1)

    def sequence_mask(x, lengths, value, axis):
        steps = x.shape[axis]
        keep = xp.arange(steps)[:, None] < lengths.astype(xp.int64)[None, :]  # (T, B)
        if axis == 1:
            keep = keep.T
        keep = keep.reshape(keep.shape + (1,) * (x.ndim - 2))
        return xp.where(keep, x, xp.asarray(value).astype(x.dtype))

    def sequence_last(x, lengths, axis):
        d = seq_first(x, axis)
        return d[last_steps(lengths, d.shape[0]), xp.arange(d.shape[1])]

    def sequence_last_grad(g, lengths, axis, size):
        out = xp.zeros((size,) + g.shape, dtype=g.dtype)
        out[last_steps(lengths, size), xp.arange(g.shape[0])] = g
        return seq_back(out, axis)

    def sequence_reverse(x, lengths, axis):
        d = seq_first(x, axis)
        steps, batch = d.shape[:2]
        n = xp.clip(lengths.astype(xp.int64), 0, steps)[None, :]
        t = xp.arange(steps)[:, None]
        src = xp.where(t < n, n - 1 - t, t)  # (T, B): the step each output step reads
        return seq_back(d[src, xp.arange(batch)[None, :]], axis)

    def index_array(x, axes):
        grid = xp.moveaxis(xp.indices(x.shape, dtype=xp.int64), 0, -1)
        return grid if axes is None else xp.ascontiguousarray(grid[..., list(axes)])

    return {
        "index_array": (index_array, ALL),
        "gather_nd": (gather_nd, ALL), "gather_nd_grad": (gather_nd_grad, NUM),
        "scatter_nd": (scatter_nd, ALL),
        "ravel_multi_index": (ravel_multi_index, NUM), "unravel_index": (unravel_index, NUM),
        "fill_element_0index": (fill_element_0index, ALL),
        "sequence_mask": (sequence_mask, ALL), "sequence_last": (sequence_last, ALL),
        "sequence_last_grad": (sequence_last_grad, NUM),
        "sequence_reverse": (sequence_reverse, ALL),
        "getitem": (getitem, ALL), "getitem_grad": (getitem_grad, ALL),
        "setitem": (setitem, ALL), "setitem_scalar": (setitem_scalar, ALL),
        "take": (take, ALL), "take_grad": (take_grad, NUM),
        "pick": (pick, ALL), "pick_grad": (pick_grad, NUM),
        "one_hot": (one_hot, NUM),
    }
