"""Shape operators: reshape (with MXNet's special codes), transpose,
broadcast_to, concat, stack, split, tile, repeat, pad.  expand_dims, squeeze,
flatten and swapaxes are reshape/transpose with computed attributes.
"""
from __future__ import annotations

import builtins
import math
from typing import Sequence, Tuple

import numpy as np

from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke, invoke_unary
from mxcore.ndarray.ndarray import NDArray
from mxcore.op import REQUIRED, Op
from mxcore.ops.rules import normalize_axis, unbroadcast

OPS: list = []


def _new(name, nin=1, **kw) -> Op:
    op = Op(name, nin, **kw)
    OPS.append(op)
    return op


def _fail(op: str, msg: str, *arrays: NDArray):
    raise OperatorError(op, msg, [a.shape for a in arrays], [a.dtype for a in arrays],
                        arrays[0].context if arrays else None)


# reshape ------------------------------------------------------------------------------
def resolve_reshape(src: Tuple[int, ...], spec: Sequence[int]) -> Tuple[int, ...]:
    """Apply MXNet's reshape codes: 0 copy a dim, -1 infer, -2 copy the rest,
    -3 merge two dims, -4 split one dim into the next two values."""
    spec = tuple(int(s) for s in spec)
    out, i, j, infer_at = [], 0, 0, None
    while j < len(spec):
        s = spec[j]
        if s == 0:
            if i >= len(src):
                raise MXCoreError(f"reshape code 0 at position {j} has no input dim to copy")
            out.append(src[i])
            i += 1
        elif s == -1:
            if infer_at is not None:
                raise MXCoreError("reshape: only one dimension can be -1")
            infer_at = len(out)
            out.append(-1)
            i += 1
        elif s == -2:
            out.extend(src[i:])
            i = len(src)
        elif s == -3:
            if i + 1 >= len(src):
                raise MXCoreError("reshape code -3 needs two input dims to merge")
            out.append(src[i] * src[i + 1])
            i += 2
        elif s == -4:
            if j + 2 >= len(spec) or i >= len(src):
                raise MXCoreError("reshape code -4 needs an input dim and two values after it")
            d1, d2 = spec[j + 1], spec[j + 2]
            if d1 == -1:
                d1 = src[i] // d2
            if d2 == -1:
                d2 = src[i] // d1
            if d1 * d2 != src[i]:
                raise MXCoreError(f"reshape code -4: {d1} x {d2} does not split dim {src[i]}")
            out.extend((d1, d2))
            i += 1
            j += 2
        elif s < -4:
            raise MXCoreError(f"reshape: invalid code {s}")
        else:
            out.append(s)
            i += 1
        j += 1
    size = math.prod(src)
    if infer_at is not None:
        rest = math.prod(d for k, d in enumerate(out) if k != infer_at)
        if rest == 0 or size % rest:
            raise MXCoreError(f"cannot reshape {tuple(src)} to {spec}: -1 cannot be inferred")
        out[infer_at] = size // rest
    out = tuple(out)
    if math.prod(out) != size:
        raise MXCoreError(f"cannot reshape {tuple(src)} (size {size}) to {spec} "
                          f"(size {math.prod(out)})")
    return out


RESHAPE = _new("reshape", attrs={"shape": REQUIRED})
RESHAPE.def_infer(lambda s, d, a: ([resolve_reshape(s[0], a["shape"])], [d[0]]))
RESHAPE.def_grad(lambda c, g: (reshape(g, c.inputs[0].shape),))


def reshape(data: NDArray, shape, reverse: bool = False) -> NDArray:
    """Reshape; ``shape`` may use MXNet's codes 0, -1, -2, -3, -4."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    src = data.shape
    shape = tuple(shape)
    if reverse:
        try:
            out = resolve_reshape(src[::-1], shape[::-1])[::-1]
        except MXCoreError as exc:
            _fail("reshape", str(exc), data)
    elif src == shape:
        out = shape
    else:
        try:
            out = resolve_reshape(src, shape)
        except MXCoreError as exc:
            _fail("reshape", str(exc), data)
    return invoke_unary(RESHAPE, data, {"shape": out})


def expand_dims(data: NDArray, axis: int) -> NDArray:
    nd = data.ndim + 1
    if not -nd <= axis < nd:
        _fail("expand_dims", f"axis {axis} out of range for a {data.ndim}-d input", data)
    axis %= nd
    shape = data.shape[:axis] + (1,) + data.shape[axis:]
    return invoke_unary(RESHAPE, data, {"shape": shape})


def squeeze(data: NDArray, axis=None) -> NDArray:
    if axis is None:
        shape = tuple(s for s in data.shape if s != 1)
    else:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        axes = {normalize_axis(a, data.ndim, "squeeze") for a in axes}
        for a in axes:
            if data.shape[a] != 1:
                _fail("squeeze", f"cannot squeeze axis {a} of size {data.shape[a]}", data)
        shape = tuple(s for i, s in enumerate(data.shape) if i not in axes)
    return invoke_unary(RESHAPE, data, {"shape": shape})


def flatten(data: NDArray) -> NDArray:
    """Collapse all axes but the first (MXNet's Flatten)."""
    if data.ndim == 0:
        return invoke_unary(RESHAPE, data, {"shape": (1, 1)})
    return invoke_unary(RESHAPE, data, {"shape": (data.shape[0], math.prod(data.shape[1:]))})


Flatten = flatten


# transpose ---------------------------------------------------------------------------
TRANSPOSE = _new("transpose", attrs={"axes": REQUIRED})
TRANSPOSE.def_infer(lambda s, d, a: ([tuple(s[0][i] for i in a["axes"])], [d[0]]))
TRANSPOSE.def_grad(lambda c, g: (invoke_unary(TRANSPOSE, g, {
    "axes": tuple(int(i) for i in np.argsort(c.attrs["axes"]))}),))


def transpose(data: NDArray, axes=None) -> NDArray:
    nd = data.ndim
    if axes is None or axes == ():
        axes = tuple(range(nd - 1, -1, -1))
    else:
        axes = tuple(int(a) % nd if -nd <= int(a) < nd else nd for a in axes)
        if sorted(axes) != list(range(nd)):
            _fail("transpose", f"axes {axes} are not a permutation of {nd} axes", data)
    return invoke_unary(TRANSPOSE, data, {"axes": axes})


def swapaxes(data: NDArray, dim1: int = 0, dim2: int = 1) -> NDArray:
    axes = list(range(data.ndim))
    a, b = normalize_axis(dim1, data.ndim, "swapaxes"), normalize_axis(dim2, data.ndim, "swapaxes")
    axes[a], axes[b] = axes[b], axes[a]
    return invoke_unary(TRANSPOSE, data, {"axes": tuple(axes)})


SwapAxis = swapaxes


# broadcast_to --------------------------------------------------------------------------
BROADCAST_TO = _new("broadcast_to", attrs={"shape": REQUIRED})


@BROADCAST_TO.def_infer
def _bt_infer(s, d, a):
    try:
        if tuple(np.broadcast_shapes(s[0], a["shape"])) != tuple(a["shape"]):
            raise ValueError
    except ValueError:
        raise MXCoreError(f"cannot broadcast {s[0]} to {a['shape']}") from None
    return [tuple(a["shape"])], [d[0]]


BROADCAST_TO.def_grad(lambda c, g: (unbroadcast(g, c.inputs[0].shape),))


def broadcast_to(data: NDArray, shape) -> NDArray:
    """Broadcast to ``shape``; a 0 in ``shape`` keeps the input's size (MXNet)."""
    shape = tuple(int(s) for s in shape)
    pad = len(shape) - data.ndim
    if pad < 0:
        _fail("broadcast_to", f"cannot broadcast to fewer dims {shape}", data)
    shape = tuple(data.shape[i - pad] if s == 0 and i >= pad else s for i, s in enumerate(shape))
    if shape == data.shape:
        return invoke_unary(RESHAPE, data, {"shape": shape})
    return invoke_unary(BROADCAST_TO, data, {"shape": shape})


def broadcast_like(lhs: NDArray, rhs: NDArray, lhs_axes=None, rhs_axes=None) -> NDArray:
    """``lhs`` broadcast to ``rhs``'s shape; with ``lhs_axes``/``rhs_axes``, only
    those axes of ``lhs`` take the sizes of the paired axes of ``rhs`` (MXNet)."""
    if lhs_axes is None and rhs_axes is None:
        return broadcast_to(lhs, rhs.shape)
    la = (lhs_axes,) if isinstance(lhs_axes, int) else tuple(lhs_axes or ())
    ra = (rhs_axes,) if isinstance(rhs_axes, int) else tuple(rhs_axes or ())
    if len(la) != len(ra):
        _fail("broadcast_like", f"lhs_axes {la} and rhs_axes {ra} differ in length", lhs, rhs)
    shape = list(lhs.shape)
    for a, b in zip(la, ra):
        shape[normalize_axis(a, lhs.ndim)] = rhs.shape[normalize_axis(b, rhs.ndim)]
    return broadcast_to(lhs, shape)


def reshape_like(lhs: NDArray, rhs: NDArray, lhs_begin=None, lhs_end=None, rhs_begin=None,
                 rhs_end=None) -> NDArray:
    """``lhs`` reshaped to ``rhs``'s shape; with the ranges, only the axes
    ``lhs_begin:lhs_end`` of ``lhs`` are replaced by ``rhs``'s ``rhs_begin:rhs_end``
    (MXNet)."""
    # Python slices, so negative indices count from the end as in MXNet
    shape = lhs.shape[:lhs_begin or 0] + rhs.shape[rhs_begin:rhs_end] + (
        lhs.shape[lhs_end:] if lhs_end is not None else ())
    return reshape(lhs, shape)


def broadcast_axis(data: NDArray, axis=(), size=()) -> NDArray:
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    size = (size,) if isinstance(size, int) else tuple(size)
    shape = list(data.shape)
    for a, s in zip(axis, size):
        shape[normalize_axis(a, data.ndim)] = s
    return broadcast_to(data, shape)


# concat / stack / split -----------------------------------------------------------------
CONCAT = _new("concat", -1, attrs={"dim": 1})


@CONCAT.def_infer
def _concat_infer(s, d, a):
    nd = len(s[0])
    axis = normalize_axis(a["dim"], nd)
    for other in s[1:]:
        if len(other) != nd or any(x != y for i, (x, y) in enumerate(zip(other, s[0])) if i != axis):
            raise MXCoreError(f"concat along axis {axis}: shapes {s} differ off that axis")
    if len(set(d)) > 1:
        raise MXCoreError(f"concat: dtypes differ ({', '.join(map(str, d))})")
    shape = list(s[0])
    shape[axis] = builtins.sum(x[axis] for x in s)
    return [tuple(shape)], [d[0]]


@CONCAT.def_grad
def _concat_grad(c, g):
    from mxcore.ops.indexing import slice_axis
    axis = c.attrs["dim"]
    out, start = [], 0
    for x in c.inputs:
        n = x.shape[axis]
        out.append(slice_axis(g, axis, start, start + n))
        start += n
    return tuple(out)


def concat(*data: NDArray, dim: int = 1) -> NDArray:
    """Join arrays along ``dim`` (MXNet's default axis is 1)."""
    if len(data) == 1 and isinstance(data[0], (list, tuple)):
        data = tuple(data[0])
    if not data:
        raise OperatorError("concat", "needs at least one array")
    axis = normalize_axis(dim, data[0].ndim, "concat")
    try:
        _concat_infer([x.shape for x in data], [x.dtype for x in data], {"dim": axis})
    except MXCoreError as exc:
        _fail("concat", str(exc), *data)
    return invoke(CONCAT, data, {"dim": axis})


def concatenate(arrays, axis: int = 0) -> NDArray:
    return concat(*arrays, dim=axis)


STACK = _new("stack", -1, attrs={"axis": 0})


@STACK.def_infer
def _stack_infer(s, d, a):
    if len(set(s)) > 1:
        raise MXCoreError(f"stack: shapes differ: {s}")
    if len(set(d)) > 1:
        raise MXCoreError(f"stack: dtypes differ ({', '.join(map(str, d))})")
    shape = list(s[0])
    shape.insert(a["axis"], len(s))
    return [tuple(shape)], [d[0]]


STACK.def_grad(lambda c, g: tuple(split(g, len(c.inputs), c.attrs["axis"], squeeze_axis=True))
               if len(c.inputs) > 1 else (squeeze(g, c.attrs["axis"]),))


def stack(*data: NDArray, axis: int = 0) -> NDArray:
    if len(data) == 1 and isinstance(data[0], (list, tuple)):
        data = tuple(data[0])
    if not data:
        raise OperatorError("stack", "needs at least one array")
    nd = data[0].ndim + 1
    if not -nd <= axis < nd:
        _fail("stack", f"axis {axis} out of range", *data)
    axis %= nd
    try:
        _stack_infer([x.shape for x in data], [x.dtype for x in data], {"axis": axis})
    except MXCoreError as exc:
        _fail("stack", str(exc), *data)
    return invoke(STACK, data, {"axis": axis})


SPLIT = _new("split", attrs={"num_outputs": REQUIRED, "axis": 1, "squeeze_axis": False})
SPLIT.nout = -1


@SPLIT.def_infer
def _split_infer(s, d, a):
    n, axis = a["num_outputs"], normalize_axis(a["axis"], len(s[0]))
    if s[0][axis] % n:
        raise MXCoreError(f"split: axis {axis} of size {s[0][axis]} is not divisible by {n}")
    shape = list(s[0])
    if a["squeeze_axis"]:
        if shape[axis] != n:
            raise MXCoreError("split: squeeze_axis needs num_outputs == the axis size")
        del shape[axis]
    else:
        shape[axis] //= n
    return [tuple(shape)] * n, [d[0]] * n


@SPLIT.def_grad
def _split_grad(c, *gs):
    from mxcore.ops.creation import zeros
    x, axis = c.inputs[0], c.attrs["axis"]
    n = c.attrs["num_outputs"]
    part = list(x.shape)
    part[axis] //= n
    filled = []
    for g in gs:
        if g is None:
            g = zeros(tuple(part), ctx=x.context, dtype=x.dtype)
        elif c.attrs["squeeze_axis"]:
            g = expand_dims(g, axis)
        filled.append(g)
    return (concat(*filled, dim=axis) if len(filled) > 1 else filled[0],)


def split(data: NDArray, num_outputs: int, axis: int = 1, squeeze_axis: bool = False):
    """Split into ``num_outputs`` equal parts along ``axis`` (a list; one
    array when ``num_outputs == 1``, as MXNet)."""
    axis = normalize_axis(axis, data.ndim, "split")
    attrs = {"num_outputs": int(num_outputs), "axis": axis, "squeeze_axis": bool(squeeze_axis)}
    try:
        _split_infer([data.shape], [data.dtype], attrs)
    except MXCoreError as exc:
        _fail("split", str(exc), data)
    outs = invoke(SPLIT, (data,), attrs)
    return outs[0] if num_outputs == 1 else list(outs)


SliceChannel = split


# tile / repeat / pad -----------------------------------------------------------------
TILE = _new("tile", attrs={"reps": REQUIRED})


def _tile_shapes(shape, reps):
    n = builtins.max(len(shape), len(reps))
    shape = (1,) * (n - len(shape)) + tuple(shape)
    reps = (1,) * (n - len(reps)) + tuple(reps)
    return shape, reps


TILE.def_infer(lambda s, d, a: ([tuple(x * r for x, r in zip(*_tile_shapes(s[0], a["reps"])))],
                                [d[0]]))


@TILE.def_grad
def _tile_grad(c, g):
    from mxcore.ops.reduce import sum as _sum
    x = c.inputs[0]
    shape, reps = _tile_shapes(x.shape, c.attrs["reps"])
    inter = tuple(v for pair in zip(reps, shape) for v in pair)
    g = reshape(g, inter)
    g = _sum(g, tuple(range(0, 2 * len(shape), 2)))
    return (reshape(g, x.shape),)


def tile(data: NDArray, reps) -> NDArray:
    reps = (int(reps),) if isinstance(reps, (int, np.integer)) else tuple(int(r) for r in reps)
    if any(r < 0 for r in reps):
        _fail("tile", f"reps must be non-negative, got {reps}", data)
    return invoke_unary(TILE, data, {"reps": reps})


REPEAT = _new("repeat", attrs={"repeats": REQUIRED, "axis": None})


def _repeat_infer(s, d, a):
    if a["axis"] is None:
        return [(math.prod(s[0]) * a["repeats"],)], [d[0]]
    shape = list(s[0])
    shape[a["axis"]] *= a["repeats"]
    return [tuple(shape)], [d[0]]


REPEAT.def_infer(_repeat_infer)


@REPEAT.def_grad
def _repeat_grad(c, g):
    from mxcore.ops.reduce import sum as _sum
    x, r, axis = c.inputs[0], c.attrs["repeats"], c.attrs["axis"]
    if axis is None:
        return (reshape(_sum(reshape(g, (x.size, r)), (1,)), x.shape),)
    shape = x.shape[:axis] + (x.shape[axis], r) + x.shape[axis + 1:]
    return (_sum(reshape(g, shape), (axis + 1,)),)


def repeat(data: NDArray, repeats: int, axis=None) -> NDArray:
    if repeats < 0:
        _fail("repeat", f"repeats must be non-negative, got {repeats}", data)
    ax = None if axis is None else normalize_axis(axis, data.ndim, "repeat")
    return invoke_unary(REPEAT, data, {"repeats": int(repeats), "axis": ax})


PAD = _new("pad", attrs={"mode": "constant", "pad_width": REQUIRED, "constant_value": 0.0})
PAD_MODES = ("constant", "edge", "reflect")


def _pairs(pad_width, ndim):
    return [(pad_width[2 * i], pad_width[2 * i + 1]) for i in range(ndim)]


PAD.def_infer(lambda s, d, a: ([tuple(n + lo + hi for n, (lo, hi)
                                      in zip(s[0], _pairs(a["pad_width"], len(s[0]))))], [d[0]]))


@PAD.def_grad
def _pad_grad(c, g):
    from mxcore.ops.creation import array
    from mxcore.ops.indexing import getitem, take_grad
    x = c.inputs[0]
    pairs = _pairs(c.attrs["pad_width"], x.ndim)
    if c.attrs["mode"] == "constant":
        return (getitem(g, tuple(builtins.slice(lo, lo + n) for n, (lo, _) in
                                 zip(x.shape, pairs))),)
    # edge/reflect: each output element copies one input element; the gradient
    # scatters back through the same index map.
    idx = np.pad(np.arange(x.size).reshape(x.shape), pairs, mode=c.attrs["mode"])
    flat = take_grad(reshape(g, (-1,)), array(idx.reshape(-1), ctx=x.context, dtype="int64"),
                     0, x.size)
    return (reshape(flat, x.shape),)


def pad(data: NDArray, mode: str = "constant", pad_width=(), constant_value=0.0) -> NDArray:
    """Pad every axis; ``pad_width`` is flat (before0, after0, before1, ...)."""
    if mode not in PAD_MODES:
        _fail("pad", f"mode must be one of {PAD_MODES}, got {mode!r}", data)
    pw = tuple(int(p) for p in pad_width)
    if len(pw) != 2 * data.ndim or builtins.min(pw, default=0) < 0:
        _fail("pad", f"pad_width needs {2 * data.ndim} non-negative values, got {pw}", data)
    return invoke_unary(PAD, data, {"mode": mode, "pad_width": pw,
                                    "constant_value": float(constant_value)})
