"""Shape operators: reshape (with MXNet's special codes), transpose,
broadcast_to, concat, stack, split, tile, repeat, pad, diag, flip, shape_array and
size_array.  expand_dims, squeeze, flatten, swapaxes, moveaxis, depth_to_space and
space_to_depth are reshape/transpose with computed attributes; split_v2 and Crop
are slices.

``pad`` takes any number of axes (MXNet: 4-D or 5-D, the first two unpadded) and any
dtype (MXNet: floats); where MXNet computes a result, mxcore computes the same one.
"""
from __future__ import annotations

import builtins
import math
from typing import Sequence, Tuple

import numpy as np

from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke, invoke_unary
from mxcore.array import NDArray
from mxcore.op import REQUIRED, Op
from mxcore.ops.creation import COPY
from mxcore.ops.rules import normalize_axis, unbroadcast
from mxcore.util import is_np_shape

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


RESHAPE = _new("reshape", attrs={"shape": REQUIRED}, views=True)
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


def _reshaped(data: NDArray, shape, inplace: bool) -> NDArray:
    """``data`` with a new shape: a copy, as MXNet's operators give, or with
    ``inplace`` a view of the same buffer (MXNet's ``x.flatten(inplace=True)``)."""
    view = invoke_unary(RESHAPE, data, {"shape": shape})
    return view if inplace else invoke_unary(COPY, view)


def _drop_axis(data: NDArray, axis: int) -> NDArray:
    """A view without ``axis`` (of size 1), for rules and the ops that squeeze."""
    return invoke_unary(RESHAPE, data, {"shape": data.shape[:axis] + data.shape[axis + 1:]})


def _add_axis(data: NDArray, axis: int) -> NDArray:
    """A view with a new axis of size 1 at ``axis`` (in range)."""
    return invoke_unary(RESHAPE, data, {"shape": data.shape[:axis] + (1,) + data.shape[axis:]})


def expand_dims(data: NDArray, axis: int, inplace: bool = False) -> NDArray:
    """``data`` with a new axis of size 1 at ``axis``."""
    nd = data.ndim + 1
    if not -nd <= axis < nd:
        _fail("expand_dims", f"axis {axis} out of range for a {data.ndim}-d input", data)
    axis %= nd
    return _reshaped(data, data.shape[:axis] + (1,) + data.shape[axis:], inplace)


def squeeze(data: NDArray, axis=None, inplace: bool = False) -> NDArray:
    """``data`` without its axes of size 1 (those in ``axis`` only, if given); all of
    them squeezed away leaves shape (1,), as in MXNet."""
    if axis is None:
        shape = tuple(s for s in data.shape if s != 1)
    else:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        axes = {normalize_axis(a, data.ndim, "squeeze") for a in axes}
        for a in axes:
            if data.shape[a] != 1:
                _fail("squeeze", f"cannot squeeze axis {a} of size {data.shape[a]}", data)
        shape = tuple(s for i, s in enumerate(data.shape) if i not in axes)
    if not shape and data.ndim:
        shape = (1,)  # MXNet keeps one axis
    return _reshaped(data, shape, inplace)


def flatten(data: NDArray, inplace: bool = False) -> NDArray:
    """Collapse all axes but the first (MXNet's Flatten)."""
    if data.ndim == 0:
        return _reshaped(data, (1, 1), inplace)
    return _reshaped(data, (data.shape[0], math.prod(data.shape[1:])), inplace)


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
        if lhs.ndim != rhs.ndim:
            _fail("broadcast_like", f"cannot broadcast shape {lhs.shape} to {rhs.shape}: "
                  "the ranks differ", lhs, rhs)
        shape = rhs.shape
        pairs = [(i, i) for i in range(lhs.ndim)]
    else:
        la = _axes_tuple(lhs_axes if lhs_axes is not None else rhs_axes)
        ra = _axes_tuple(rhs_axes if rhs_axes is not None else lhs_axes)
        if not la or not ra:
            _fail("broadcast_like", "lhs_axes and rhs_axes must not be empty", lhs, rhs)
        if len(la) != len(ra):
            _fail("broadcast_like", f"lhs_axes {la} and rhs_axes {ra} differ in length",
                  lhs, rhs)
        pairs = [(normalize_axis(a, lhs.ndim, "broadcast_like"),
                  normalize_axis(b, rhs.ndim, "broadcast_like")) for a, b in zip(la, ra)]
        shape = list(lhs.shape)
        for a, b in pairs:
            shape[a] = rhs.shape[b]
    for a, b in pairs:  # only axes of size 1 grow
        if lhs.shape[a] not in (1, rhs.shape[b]):
            _fail("broadcast_like", f"axis {a} of size {lhs.shape[a]} cannot be broadcast "
                  f"to size {rhs.shape[b]} ({lhs.shape} like {rhs.shape})", lhs, rhs)
    return broadcast_to(lhs, shape)


def _axes_tuple(axes) -> tuple:
    return (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)


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
               if len(c.inputs) > 1 else (_drop_axis(g, c.attrs["axis"]),))


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


SPLIT = _new("split", attrs={"num_outputs": REQUIRED, "axis": 1, "squeeze_axis": False},
             views=True)
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
            g = _add_axis(g, axis)
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
    if 0 in reps and not is_np_shape():  # MXNet's legacy shapes: 0 means unknown
        _fail("tile", f"reps {reps} would make a zero-size array; zero-size arrays need "
                      "NumPy shape semantics (mx.np_shape())", data)
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
    if mode == "reflect" and any(builtins.max(lo, hi) >= n and lo + hi
                                 for n, (lo, hi) in zip(data.shape, _pairs(pw, data.ndim))):
        # numpy would reflect again at the far edge; MXNet refuses
        _fail("pad", f"reflect padding must be smaller than the axis it pads: pad_width "
              f"{pw} for shape {data.shape}", data)
    return invoke_unary(PAD, data, {"mode": mode, "pad_width": pw,
                                    "constant_value": float(constant_value)})


Pad = pad


def Reshape(data: NDArray, shape=None, reverse: bool = False, target_shape=None,  # noqa: N802
            keep_highest: bool = False) -> NDArray:
    """MXNet's Reshape: :func:`reshape` by ``shape``, or by the deprecated
    ``target_shape``, whose one 0 is inferred (``keep_highest``: the first dimension is
    kept)."""
    if shape is not None and (isinstance(shape, (int, np.integer)) or len(shape)):
        return reshape(data, shape, reverse)
    if target_shape is None or not tuple(target_shape):
        _fail("Reshape", "needs shape (or the deprecated target_shape)", data)
    out = list(target_shape)
    if keep_highest:
        out[0] = data.shape[0]
    free = [i for i in range(1 if keep_highest else 0, len(out)) if out[i] == 0]
    if len(free) == 1:
        rest = int(np.prod([d for i, d in enumerate(out) if i != free[0]]))
        out[free[0]] = data.size // rest if rest else 0
    return reshape(data, tuple(out))


broadcast_axes = broadcast_axis


def Concat(*data: NDArray, dim: int = 1, num_args=None) -> NDArray:  # noqa: N802
    """MXNet's Concat: :func:`concat`, with its ``num_args`` checked against the inputs."""
    if len(data) == 1 and isinstance(data[0], (list, tuple)):
        data = tuple(data[0])
    if num_args is not None and int(num_args) != len(data):
        raise OperatorError("concat", f"num_args={num_args} but {len(data)} arrays given")
    return concat(*data, dim=dim)


def moveaxis(tensor: NDArray, source, destination) -> NDArray:
    """Axes ``source`` moved to positions ``destination`` (numpy's moveaxis)."""
    nd = tensor.ndim
    src = (source,) if isinstance(source, (int, np.integer)) else tuple(source)
    dst = (destination,) if isinstance(destination, (int, np.integer)) else tuple(destination)
    try:
        src = tuple(normalize_axis(int(a), nd, "moveaxis") for a in src)
        dst = tuple(normalize_axis(int(a), nd, "moveaxis") for a in dst)
    except MXCoreError as exc:
        _fail("moveaxis", str(exc), tensor)
    if len(src) != len(dst) or len(set(src)) != len(src) or len(set(dst)) != len(dst):
        _fail("moveaxis", f"source {src} and destination {dst} must be distinct axes, as "
              "many of each", tensor)
    order = [a for a in range(nd) if a not in src]
    for d, a in sorted(zip(dst, src)):
        order.insert(d, a)
    return invoke_unary(TRANSPOSE, tensor, {"axes": tuple(order)})


def split_v2(ary: NDArray, indices_or_sections, axis: int = 0,
             squeeze_axis: bool = False):
    """numpy-style split: an int gives that many equal parts, a tuple of indices the
    parts between them (MXNet's split_v2).  One part comes back as an array."""
    from mxcore.ops.indexing import slice_axis
    axis = normalize_axis(axis, ary.ndim, "split_v2")
    n = ary.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        parts = int(indices_or_sections)
        if parts < 1 or n % parts:
            _fail("split_v2", f"axis {axis} of size {n} does not split into "
                  f"{indices_or_sections} equal parts", ary)
        bounds = [i * (n // parts) for i in range(parts + 1)]
    else:
        inner = [int(i) for i in indices_or_sections]
        bounds = [0] + inner + [n]
        if any(b > e for b, e in zip(bounds, bounds[1:])):
            _fail("split_v2", f"indices {tuple(inner)} must be ascending within the axis "
                  f"of size {n}", ary)
    outs = [slice_axis(ary, axis, b, e) for b, e in zip(bounds, bounds[1:])]
    if squeeze_axis:
        outs = [_drop_axis(o, axis) for o in outs]
    return outs[0] if len(outs) == 1 else outs


def Crop(*data: NDArray, offset=(0, 0), h_w=(0, 0), center_crop: bool = False,  # noqa: N802
         num_args: int = 1, name=None) -> NDArray:
    """MXNet's legacy Crop of NCHW data: the (h, w) window at ``offset`` (or centred),
    of size ``h_w`` or of the second input's height and width."""
    from mxcore.ops.indexing import getitem
    if len(data) != int(num_args) or len(data) not in (1, 2):
        raise OperatorError("Crop", f"num_args={num_args} must be 1 or 2 and match the "
                            f"{len(data)} inputs given")
    x = data[0]
    if x.ndim != 4:
        _fail("Crop", f"data must be 4-D (N, C, H, W), got shape {x.shape}", *data)
    h, w = data[1].shape[2:4] if len(data) == 2 else tuple(int(v) for v in h_w)
    big_h, big_w = x.shape[2:]
    if not (0 < h <= big_h and 0 < w <= big_w):
        _fail("Crop", f"crop size {(h, w)} must fit the input's {(big_h, big_w)}", *data)
    top, left = ((big_h - h) // 2, (big_w - w) // 2) if center_crop else \
        tuple(int(v) for v in offset)
    if not (0 <= top <= big_h - h and 0 <= left <= big_w - w):
        _fail("Crop", f"offset {(top, left)} leaves no room for a {(h, w)} crop of "
              f"{(big_h, big_w)}", *data)
    return getitem(x, (builtins.slice(None), builtins.slice(None),
                       builtins.slice(top, top + h), builtins.slice(left, left + w)))


# depth_to_space / space_to_depth ----------------------------------------------------------
def _block(op: str, data: NDArray, block_size) -> int:
    b = int(block_size)
    if b < 1:
        _fail(op, f"block_size must be a positive integer, got {block_size}", data)
    if data.ndim != 4:
        _fail(op, f"data must be 4-D (N, C, H, W), got shape {data.shape}", data)
    return b


def depth_to_space(data: NDArray, block_size: int) -> NDArray:
    """Channels moved into b x b spatial blocks: (N, C, H, W) -> (N, C/b^2, H*b, W*b),
    channel ``(i*b + j)*C/b^2 + c`` going to block offset (i, j) of channel c."""
    b = _block("depth_to_space", data, block_size)
    n, c, h, w = data.shape
    if c % (b * b):
        _fail("depth_to_space", f"channels {c} must be a multiple of block_size^2 = {b * b}",
              data)
    x = reshape(data, (n, b, b, c // (b * b), h, w))
    x = invoke_unary(TRANSPOSE, x, {"axes": (0, 3, 4, 1, 5, 2)})
    return reshape(x, (n, c // (b * b), h * b, w * b))


def space_to_depth(data: NDArray, block_size: int) -> NDArray:
    """depth_to_space's inverse: (N, C, H, W) -> (N, C*b^2, H/b, W/b)."""
    b = _block("space_to_depth", data, block_size)
    n, c, h, w = data.shape
    if h % b or w % b:
        _fail("space_to_depth", f"height {h} and width {w} must be multiples of "
              f"block_size {b}", data)
    x = reshape(data, (n, c, h // b, b, w // b, b))
    x = invoke_unary(TRANSPOSE, x, {"axes": (0, 3, 5, 1, 2, 4)})
    return reshape(x, (n, c * b * b, h // b, w // b))


# flip / reverse -------------------------------------------------------------------------
FLIP = _new("flip", attrs={"axis": REQUIRED}, aliases=("reverse",),
            doc="the order of elements reversed along each axis of ``axis``")
FLIP.def_infer(lambda s, d, a: ([tuple(s[0])], [d[0]]))
FLIP.def_grad(lambda c, g: (invoke_unary(FLIP, g, c.attrs),))


def flip(data: NDArray, axis) -> NDArray:
    """Elements reversed along ``axis`` (an int or a tuple; an axis listed twice is
    reversed twice, as in MXNet).  Negative axes count from the end."""
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    try:
        axes = [normalize_axis(int(a), data.ndim, "flip") for a in axes]
    except MXCoreError as exc:
        _fail("flip", str(exc), data)
    odd = tuple(a for a in sorted(set(axes)) if axes.count(a) % 2)
    if not odd:
        from mxcore.ops.creation import copy
        return copy(data)
    return invoke_unary(FLIP, data, {"axis": odd})


reverse = flip


# diag ------------------------------------------------------------------------------------
DIAG = _new("diag", attrs={"k": 0, "axis1": 0, "axis2": 1},
            doc="a 1-D input as the k-th diagonal of a square matrix; otherwise the k-th "
                "diagonals of the (axis1, axis2) planes, as a new last axis")
DIAG_GRAD = _new("diag_grad", attrs={"k": 0, "axis1": 0, "axis2": 1, "shape": REQUIRED},
                 doc="diag's adjoint for 2-D and larger inputs: zeros of ``shape`` with the "
                     "gradient on the diagonals")


def _diag_len(n1: int, n2: int, k: int) -> int:
    return builtins.max(0, builtins.min(n1 + builtins.min(k, 0), n2 - builtins.max(k, 0)))


def _diag_shape(shape, a):
    """diag's output shape for an input of ``shape``, checked as MXNet does."""
    k = a["k"]
    if len(shape) < 1:
        raise MXCoreError("diag needs at least one axis")
    if len(shape) == 1:
        n = shape[0] + abs(k)
        return (n, n)
    a1, a2 = a["axis1"], a["axis2"]
    if a1 == a2 or not (0 <= a1 < len(shape) and 0 <= a2 < len(shape)):
        raise MXCoreError(f"axis1 {a1} and axis2 {a2} must be distinct axes of a "
                          f"{len(shape)}-d input")
    if not -shape[a1] <= k <= shape[a2]:
        raise MXCoreError(f"diagonal {k} does not exist in a {shape[a1]} x {shape[a2]} "
                          "plane")
    rest = tuple(s for i, s in enumerate(shape) if i not in (a1, a2))
    return rest + (_diag_len(shape[a1], shape[a2], k),)


DIAG.def_infer(lambda s, d, a: ([_diag_shape(s[0], a)], [d[0]]))


@DIAG_GRAD.def_infer
def _diag_grad_infer(s, d, a):
    shape = tuple(a["shape"])
    want = _diag_shape(shape, a)
    if len(shape) < 2 or tuple(s[0]) != want:
        raise MXCoreError(f"gradient shape {tuple(s[0])} is not diag's output {want} for an "
                          f"input of shape {shape}")
    return [shape], [d[0]]


@DIAG.def_grad
def _diag_grad(c, g):
    x, a = c.inputs[0], c.attrs
    if x.ndim == 1:  # the input is the diagonal of the output
        return (invoke_unary(DIAG, g, {"k": a["k"], "axis1": 0, "axis2": 1}),)
    return (invoke_unary(DIAG_GRAD, g, {**a, "shape": x.shape}),)


DIAG_GRAD.def_grad(lambda c, g: (invoke_unary(DIAG, g, {k: v for k, v in c.attrs.items()
                                                         if k != "shape"}),))


def diag(data: NDArray, k: int = 0, axis1: int = 0, axis2: int = 1) -> NDArray:
    """MXNet's diag: a 1-D input becomes the ``k``-th diagonal of a square matrix; a
    larger input gives the ``k``-th diagonals of its (axis1, axis2) planes, on a new
    last axis (numpy's diagonal)."""
    try:
        if data.ndim == 0:
            raise MXCoreError("diag needs at least one axis (got a 0-d array)")
        attrs = {"k": int(k), "axis1": 0, "axis2": 1}  # the axes mean nothing for 1-D
        if data.ndim > 1:
            attrs["axis1"] = normalize_axis(int(axis1), data.ndim, "diag")
            attrs["axis2"] = normalize_axis(int(axis2), data.ndim, "diag")
        _diag_shape(data.shape, attrs)
    except MXCoreError as exc:
        _fail("diag", str(exc), data)
    return invoke_unary(DIAG, data, attrs)


# shape_array / size_array -----------------------------------------------------------------
SHAPE_ARRAY = _new("shape_array", doc="the input's shape as a 1-D int64 array")
SIZE_ARRAY = _new("size_array", doc="the input's size as a (1,) int64 array")
SHAPE_ARRAY.def_infer(lambda s, d, a: ([(len(s[0]),)], [np.dtype("int64")]))
SIZE_ARRAY.def_infer(lambda s, d, a: ([(1,)], [np.dtype("int64")]))


def shape_array(data: NDArray) -> NDArray:
    """``data.shape`` as an int64 array on ``data``'s device (not differentiable)."""
    return invoke_unary(SHAPE_ARRAY, data)


def size_array(data: NDArray) -> NDArray:
    """``data.size`` as a (1,) int64 array on ``data``'s device."""
    return invoke_unary(SIZE_ARRAY, data)
