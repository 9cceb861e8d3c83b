"""Ordering kernels: topk, sort, argsort, cumsum, take_along_axis and its adjoint.

Orders are stable in both directions (MXNet's order for ties: equal values keep their
positions' order).  For dtypes of 32 bits or fewer each element becomes one distinct
uint64 key, an order-preserving image of its value (inverted for descending order)
above its position, so a plain sort -- or a linear-time partition then a sort of k keys,
for topk -- gives the stable order; 16-bit floats are ordered by their float32 values
(exact; CuPy has no bfloat16 sort).  64-bit dtypes take stable argsorts.
"""
from __future__ import annotations

from mxcore_cpu.kernels._dtypes import ALL, NUM, acc_dtype, as_float32


def kernels(xp, special):
    low32 = xp.uint64(0xFFFFFFFF)

    def order_bits(x):
        """An order-preserving uint32 image of a dtype of 32 bits or fewer (-0.0 maps
        with 0.0); None for 64-bit dtypes."""
        kind = x.dtype.kind
        if x.dtype.itemsize == 8:
            return None
        if kind in "bu":
            return x.astype(xp.uint32)
        if kind == "i":
            return x.astype(xp.int32).view(xp.uint32) ^ xp.uint32(0x80000000)
        bits = (as_float32(xp, x) + xp.float32(0)).view(xp.uint32)  # float16/bfloat16/32
        return bits ^ xp.where(bits >> 31 != 0, xp.uint32(0xFFFFFFFF), xp.uint32(0x80000000))

    def packed_keys(x, axis, ascend):
        """uint64 keys (value image << 32 | position): distinct, so a plain sort of them
        is the stable order (and far faster than a stable argsort)."""
        bits = order_bits(x)
        if bits is None:
            return None
        if not ascend:
            bits = ~bits
        shape = [1] * x.ndim
        shape[axis] = x.shape[axis]
        pos = xp.arange(x.shape[axis], dtype=xp.uint64).reshape(shape)
        return (bits.astype(xp.uint64) << 32) | pos

    def stable_argsort(x, axis, ascend):
        """The general path (64-bit dtypes): stable sorts; descending sorts the reversed
        axis and reverses the result, so no value is negated."""
        if ascend:
            return xp.argsort(x, axis=axis, kind="stable")
        rev = xp.argsort(xp.flip(x, axis=axis), axis=axis, kind="stable")
        return (x.shape[axis] - 1) - xp.flip(rev, axis=axis)

    def first(a, axis, k):
        return a if k == a.shape[axis] else a[(slice(None),) * axis + (slice(0, k),)]

    def stable_order(x, axis, ascend, k):
        """Positions of the first ``k`` elements of each line in stable sorted order."""
        keys = packed_keys(x, axis, ascend)
        if keys is None:
            return first(stable_argsort(x, axis, ascend), axis, k)
        if 0 < k < x.shape[axis] // 4:  # select the k first keys in linear time
            keys = first(xp.partition(keys, k - 1, axis=axis), axis, k)
        keys = first(xp.sort(keys, axis=axis), axis, k)
        return (keys & low32).astype(xp.int64)

    def topk(x, axis, k, ret_typ, is_ascend, dtype):
        idx = stable_order(x, axis, is_ascend, k)
        if ret_typ == "mask":
            mask = xp.zeros(x.shape, dtype=x.dtype)
            xp.put_along_axis(mask, idx, 1, axis=axis)
            return (mask,)
        if ret_typ == "indices":
            return (idx.astype(dtype),)
        values = xp.take_along_axis(x, idx, axis=axis)
        return (values,) if ret_typ == "value" else (values, idx.astype(dtype))

    def sort(x, axis, is_ascend):
        # values only: stability cannot show; 16-bit floats sort as float32 (exact)
        out = xp.sort(as_float32(xp, x), axis=axis).astype(x.dtype, copy=False)
        return out if is_ascend else xp.ascontiguousarray(xp.flip(out, axis=axis))

    def argsort(x, axis, is_ascend, dtype):
        return stable_order(x, axis, is_ascend, x.shape[axis]).astype(dtype)

    def cumsum(x, axis, reverse):
        # accumulate in float32 for 16-bit floats, int64 for integers; round once
        acc = x.astype(acc_dtype(xp, x.dtype), copy=False)
        if not reverse:
            return xp.cumsum(acc, axis=axis).astype(x.dtype, copy=False)
        out = xp.flip(xp.cumsum(xp.flip(acc, axis=axis), axis=axis), axis=axis)
        return xp.ascontiguousarray(out).astype(x.dtype, copy=False)

    def take_along_axis(x, indices, axis):
        return xp.take_along_axis(x, indices.astype(xp.int64, copy=False), axis=axis)

    def take_along_axis_grad(g, indices, axis, size):
        shape = list(g.shape)
        shape[axis] = size
        out = xp.zeros(tuple(shape), dtype=g.dtype)
        # the indices are distinct along the axis (a sorting permutation): plain puts
        xp.put_along_axis(out, indices.astype(xp.int64, copy=False), g, axis=axis)
        return out

    return {
        "topk": (topk, NUM), "sort": (sort, NUM), "argsort": (argsort, NUM),
        "cumsum": (cumsum, NUM),
        "take_along_axis": (take_along_axis, ALL),
        "take_along_axis_grad": (take_along_axis_grad, NUM),
    }
