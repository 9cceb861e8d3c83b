"""``mx.nd.contrib``: MXNet's contrib operators that mxcore provides, under MXNet's
names and signatures.

They are written with core ops (so they run on every device and differentiate where
MXNet does), or on the host where the result's shape depends on the values
(``boolean_mask``) or the result is a single flag (``allclose``):

* ``isfinite``, ``isinf``, ``isnan``: 1/0 in the input's dtype;
* ``rand_zipfian``: classes drawn with replacement from the log-uniform distribution
  P(c) = log((c + 2) / (c + 1)) / log(range_max + 1), and expected counts;
* ``boolean_mask``, ``index_copy``, ``arange_like``, ``div_sqrt_dim``, ``quadratic``,
  ``allclose``, ``gradientmultiplier``, ``box_iou``;
* ``SyncBatchNorm`` (one device: BatchNorm), ``ctc_loss``/``CTCLoss``;
* ``index_array`` (a core op: each position's own index);
* ``AdaptiveAvgPooling2D``, ``BilinearResize2D``: products with constant averaging or
  interpolation matrices on the two spatial axes (so they differentiate and run on
  every device).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from mxcore import autograd
from mxcore.base import MXCoreError, OperatorError
from mxcore.ndarray.ndarray import NDArray
from mxcore.ops.ctc import CTCLoss, ctc_loss  # noqa: F401  (MXNet has them here too)
from mxcore.ops.indexing import index_array  # noqa: F401
from mxcore.ops.quantization import (dequantize, quantize, quantize_v2,  # noqa: F401
                                     quantized_act, quantized_conv,
                                     quantized_elemwise_mul, quantized_embedding,
                                     quantized_flatten, quantized_fully_connected,
                                     quantized_pooling, requantize)

from mxcore.ops.optimizer import multi_lamb_update, multi_mp_lamb_update  # noqa: F401,E402

__all__ = ["multi_lamb_update", "multi_mp_lamb_update", "isfinite", "isinf", "isnan",
           "rand_zipfian", "boolean_mask", "index_copy", "index_array", "arange_like", "div_sqrt_dim", "quadratic", "allclose", "gradientmultiplier",
           "box_iou", "SyncBatchNorm", "ctc_loss", "CTCLoss"]


def _fail(op: str, msg: str, *arrays: NDArray):
    raise OperatorError(op, msg, [a.shape for a in arrays], [a.dtype for a in arrays],
                        arrays[0].context if arrays else None)


def _check(op: str, **arrays) -> None:
    for name, a in arrays.items():
        if not isinstance(a, NDArray):
            raise OperatorError(op, f"{name} must be an NDArray, got {type(a).__name__}")


# elementwise tests ------------------------------------------------------------------------
def isinf(data: NDArray) -> NDArray:
    """1 where ``data`` is +inf or -inf, else 0 (in ``data``'s dtype)."""
    _check("isinf", data=data)
    return abs(data) == math.inf


def isnan(data: NDArray) -> NDArray:
    """1 where ``data`` is NaN, else 0 (in ``data``'s dtype)."""
    _check("isnan", data=data)
    return data != data


def isfinite(data: NDArray) -> NDArray:
    """1 where ``data`` is neither infinite nor NaN, else 0 (in ``data``'s dtype)."""
    _check("isfinite", data=data)
    return (abs(data) != math.inf) * (data == data)


# sampling ---------------------------------------------------------------------------------
def rand_zipfian(true_classes: NDArray, num_sampled: int, range_max: int,
                 ctx=None) -> Tuple[NDArray, NDArray, NDArray]:
    """Draw ``num_sampled`` classes of [0, range_max) with replacement from the
    log-uniform distribution P(c) = log((c + 2) / (c + 1)) / log(range_max + 1).

    Returns (sampled classes, int64; expected count of each true class, float64;
    expected count of each sampled class, float64), the expected count of class c
    being ``P(c) * num_sampled``."""
    from mxcore.ops.random import uniform
    _check("rand_zipfian", true_classes=true_classes)
    if int(range_max) < 1 or int(num_sampled) < 0:
        _fail("rand_zipfian", f"needs range_max >= 1 and num_sampled >= 0, got "
              f"{range_max} and {num_sampled}", true_classes)
    ctx = ctx if ctx is not None else true_classes.context
    log_range = math.log(range_max + 1)
    # exp(u) - 1 for u uniform on [0, log(range_max + 1)) has floor c with probability P(c)
    u = uniform(0.0, log_range, shape=(int(num_sampled),), dtype="float64", ctx=ctx)
    sampled = (u.exp() - 1.0).astype("int64") % int(range_max)

    def expected_count(classes: NDArray) -> NDArray:
        c = classes.as_in_context(ctx).astype("float64")
        return ((c + 2.0) / (c + 1.0)).log() * (num_sampled / log_range)

    return sampled, expected_count(true_classes), expected_count(sampled)


# selection and assignment -----------------------------------------------------------------
def boolean_mask(data: NDArray, index: NDArray, axis: int = 0, out=None,
                 name=None) -> NDArray:
    """The rows of ``data`` (along axis 0) where ``index`` is non-zero; the gradient
    goes back to those rows."""
    from mxcore.ops.indexing import take
    _check("boolean_mask", data=data, index=index)
    if axis != 0:
        _fail("boolean_mask", f"only axis 0 is supported (as in MXNet), got {axis}", data)
    if index.ndim != 1 or data.ndim < 1 or index.shape[0] != data.shape[0]:
        _fail("boolean_mask", "index must be 1-d with one entry per row of data", data, index)
    rows = np.flatnonzero(index.asnumpy())  # the result's shape depends on the values
    from mxcore.ops.creation import array
    return _out(take(data, array(rows, ctx=data.context, dtype="int64"), axis=0), out)


class _IndexCopy(autograd.Function):
    """``old`` with rows ``rows`` replaced by rows ``picks`` of ``new``.  Gradients:
    ``old``'s is the output's with those rows zeroed (``old_mask``); row j of
    ``new`` gets the output row ``targets[j]`` where its write survived (``kept``)."""

    def __init__(self, rows, picks, old_mask, targets, kept):
        super().__init__()
        self.rows, self.picks = rows, picks
        self.old_mask, self.targets, self.kept = old_mask, targets, kept

    def forward(self, old, new):
        out = old.copy()
        if self.rows.size:
            out[self.rows] = new[self.picks]
        return out

    def backward(self, grad):
        from mxcore.ops.indexing import take
        return grad * self.old_mask, take(grad, self.targets, axis=0) * self.kept


def index_copy(old_tensor: NDArray, index_vector: NDArray, new_tensor: NDArray, out=None,
               name=None) -> NDArray:
    """A copy of ``old_tensor`` whose rows ``index_vector`` are ``new_tensor``'s rows
    (MXNet's index_copy: where an index repeats the last write wins, out-of-range
    indices are skipped); differentiable in ``old_tensor`` and ``new_tensor``."""
    from mxcore.ops.creation import array
    _check("index_copy", old_tensor=old_tensor, index_vector=index_vector,
           new_tensor=new_tensor)
    if (index_vector.ndim != 1 or old_tensor.ndim < 1
            or new_tensor.shape != (index_vector.shape[0],) + old_tensor.shape[1:]):
        _fail("index_copy", "new_tensor must hold one row of old_tensor's shape per index",
              old_tensor, index_vector, new_tensor)
    idx = index_vector.asnumpy().astype(np.int64)
    n_old = old_tensor.shape[0]
    sources = np.flatnonzero((idx >= 0) & (idx < n_old))
    # each target row keeps the last source row written to it
    rows, first_from_end = np.unique(idx[sources][::-1], return_index=True)
    picks = sources[::-1][first_from_end]
    kept = np.zeros(idx.shape[0], dtype=bool)
    kept[picks] = True
    old_mask = np.ones(n_old, dtype=bool)
    old_mask[rows] = False
    ctx, dt = old_tensor.context, new_tensor.dtype
    bcast = (-1,) + (1,) * (old_tensor.ndim - 1)
    fn = _IndexCopy(rows, picks,
                    array(old_mask.reshape(bcast), ctx=ctx, dtype=dt),
                    array(np.where(kept, idx, 0), ctx=ctx, dtype="int64"),
                    array(kept.reshape(bcast), ctx=ctx, dtype=dt))
    return _out(fn(old_tensor, new_tensor), out)


# creation and arithmetic ------------------------------------------------------------------
def arange_like(data: NDArray, start: float = 0.0, step: float = 1.0, repeat: int = 1,
                ctx=None, axis: Optional[int] = None, out=None, name=None) -> NDArray:
    """``start, start + step, ...`` (each value ``repeat`` times) in ``data``'s shape
    and dtype, or along ``axis`` only (a 1-d result of that axis' length)."""
    from mxcore.ops.creation import array
    from mxcore.ops.rules import normalize_axis
    _check("arange_like", data=data)
    if int(repeat) < 1:
        _fail("arange_like", f"repeat must be at least 1, got {repeat}", data)
    shape = data.shape if axis is None else (
        data.shape[normalize_axis(axis, data.ndim, "arange_like")],)
    count = math.prod(shape)
    values = start + step * (np.arange(count, dtype=np.float64) // int(repeat))
    return _out(array(values.reshape(shape), ctx=ctx or data.context, dtype=data.dtype), out)


def div_sqrt_dim(data: NDArray, out=None, name=None) -> NDArray:
    """``data / sqrt(data.shape[-1])`` (scaled dot-product attention's scale)."""
    _check("div_sqrt_dim", data=data)
    if data.ndim < 1:
        _fail("div_sqrt_dim", "data needs at least one axis", data)
    return _out(data / math.sqrt(data.shape[-1]), out)


def quadratic(data: NDArray, a: float = 0.0, b: float = 0.0, c: float = 0.0, out=None,
              name=None) -> NDArray:
    """``a * data**2 + b * data + c`` elementwise."""
    _check("quadratic", data=data)
    return _out(data * data * a + data * b + c, out)


def allclose(a: NDArray, b: NDArray, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = True, out=None, name=None) -> NDArray:
    """1 (a 0-d uint8 array) when ``|a - b| <= atol + rtol * |b|`` everywhere (NaNs
    equal when ``equal_nan``), else 0."""
    from mxcore.ops.creation import array
    _check("allclose", a=a, b=b)
    close = np.allclose(a.asnumpy(), b.asnumpy(), rtol=rtol, atol=atol, equal_nan=equal_nan)
    return _out(array(np.uint8(close), ctx=a.context, dtype="uint8"), out)


class _GradientMultiplier(autograd.Function):
    def __init__(self, scalar: float):
        super().__init__()
        self.scalar = scalar

    def forward(self, data):
        return data.copy()

    def backward(self, grad):
        return grad * self.scalar


def gradientmultiplier(data: NDArray, scalar: float = 0.0, is_int: bool = True, out=None,
                       name=None) -> NDArray:
    """The identity forward; backward multiplies the gradient by ``scalar`` (a
    negative one reverses it: gradient reversal layers)."""
    _check("gradientmultiplier", data=data)
    return _out(_GradientMultiplier(float(scalar))(data), out)


# boxes ------------------------------------------------------------------------------------
class _NoGradient(autograd.Function):
    """Runs ``fn`` and gives its inputs zero gradients (MXNet's box_iou has none)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *inputs):
        self.shapes = [(x.shape, x.dtype, x.context) for x in inputs]
        return self.fn(*inputs)

    def backward(self, grad):
        from mxcore.ops.creation import zeros
        return tuple(zeros(s, ctx=c, dtype=d) for s, d, c in self.shapes)


def _corners(boxes: NDArray, fmt: str):
    """(xmin, ymin, xmax, ymax) of boxes given as corners or as (x, y, w, h) centres."""
    p = [boxes[..., i] for i in range(4)]
    if fmt == "corner":
        return p
    x, y, w, h = p
    return [x - w / 2, y - h / 2, x + w / 2, y + h / 2]


def _iou(lhs: NDArray, rhs: NDArray, fmt: str) -> NDArray:
    from mxcore.ops.elemwise import maximum, minimum, where
    n_r = rhs.ndim - 1
    # lhs boxes along the leading axes, rhs boxes along the trailing ones
    lx0, ly0, lx1, ly1 = [c.reshape(c.shape + (1,) * n_r) for c in _corners(lhs, fmt)]
    rx0, ry0, rx1, ry1 = [c.reshape((1,) * (lhs.ndim - 1) + c.shape)
                          for c in _corners(rhs, fmt)]
    width = maximum(minimum(lx1, rx1) - maximum(lx0, rx0), 0 * lx0)
    height = maximum(minimum(ly1, ry1) - maximum(ly0, ry0), 0 * ly0)
    inter = width * height
    union = (lx1 - lx0) * (ly1 - ly0) + (rx1 - rx0) * (ry1 - ry0) - inter
    positive = union > 0
    return where(positive, inter / where(positive, union, union * 0 + 1), inter * 0)


def box_iou(lhs: NDArray, rhs: NDArray, format: str = "corner", out=None,  # noqa: A002
            name=None) -> NDArray:
    """Intersection over union of every lhs box with every rhs box: boxes on the last
    axis (size 4) as ``corner`` (xmin, ymin, xmax, ymax) or ``center`` (x, y, w, h);
    the result has shape ``lhs.shape[:-1] + rhs.shape[:-1]`` (0 where the union is
    empty).  As in MXNet, the gradient is zero."""
    _check("box_iou", lhs=lhs, rhs=rhs)
    if format not in ("corner", "center"):
        _fail("box_iou", f"format must be 'corner' or 'center', got {format!r}", lhs, rhs)
    if lhs.ndim < 1 or rhs.ndim < 1 or lhs.shape[-1] != 4 or rhs.shape[-1] != 4:
        _fail("box_iou", "boxes need a last axis of size 4", lhs, rhs)
    return _out(_NoGradient(lambda a, b: _iou(a, b, format))(lhs, rhs), out)


# layers -----------------------------------------------------------------------------------
def SyncBatchNorm(data: NDArray, gamma: NDArray, beta: NDArray, moving_mean: NDArray,  # noqa: N802
                  moving_var: NDArray, eps: float = 1e-3, momentum: float = 0.9,
                  fix_gamma: bool = True, use_global_stats: bool = False,
                  output_mean_var: bool = False, ndev: int = 1, key: str = "",
                  out=None, name=None) -> NDArray:
    """MXNet's cross-device BatchNorm.  mxcore runs one device per process, where it
    is BatchNorm (``ndev`` and ``key`` name the devices that would share statistics).
    ``output_mean_var=True`` also returns the mean and the (biased) variance, as
    MXNet's SyncBatchNorm does (BatchNorm's third output is 1/sqrt(var + eps))."""
    from mxcore.ops.norm import batch_norm
    result = batch_norm(data, gamma, beta, moving_mean, moving_var, eps=eps,
                        momentum=momentum, fix_gamma=fix_gamma,
                        use_global_stats=use_global_stats, output_mean_var=output_mean_var)
    if output_mean_var:
        y, mean, invstd = result
        return _out(y, out), mean, 1.0 / invstd.square() - float(eps)
    return _out(result, out)


def _out(result: NDArray, out) -> NDArray:
    """MXNet's ``out=``: the result written into ``out``, which is returned."""
    if out is None:
        return result
    if not isinstance(out, NDArray) or out.shape != result.shape:
        raise MXCoreError(f"out must be an NDArray of shape {result.shape}, got "
                          f"{getattr(out, 'shape', type(out).__name__)}")
    out[...] = result
    return out


# resampling as products with constant matrices (every device, differentiable) -------------
def _resample(data: NDArray, rows: np.ndarray, cols: np.ndarray) -> NDArray:
    """``rows @ data @ cols.T`` on the last two axes of (N, C, H, W) data."""
    from mxcore.ops.creation import array
    from mxcore.ops.linalg import matmul
    r = array(rows, ctx=data.context, dtype=data.dtype)
    c = array(np.ascontiguousarray(cols.T), ctx=data.context, dtype=data.dtype)
    return matmul(matmul(r, data), c)


def _average_bins(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in): row i averages input positions floor(i*in/out) to
    ceil((i+1)*in/out) (exclusive), as MXNet's adaptive pooling."""
    m = np.zeros((size_out, size_in))
    for i in range(size_out):
        lo, hi = (i * size_in) // size_out, -(-(i + 1) * size_in // size_out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def AdaptiveAvgPooling2D(data: NDArray, output_size=1, out=None,  # noqa: N802
                         name=None) -> NDArray:
    """Average pooling of (N, C, H, W) data to ``output_size`` (an int for a square, or
    (height, width)) with MXNet's bins: output row i covers input rows floor(i H / h)
    to ceil((i + 1) H / h)."""
    size = (output_size,) * 2 if isinstance(output_size, (int, np.integer)) \
        else tuple(output_size)
    if data.ndim != 4 or len(size) != 2 or min(size) < 1:
        _fail("AdaptiveAvgPooling2D", f"needs (N, C, H, W) data and a positive "
                    f"output_size of 1 or 2 sizes, got output_size={output_size!r}", data)
    h, w = data.shape[2:]
    return _out(_resample(data, _average_bins(h, size[0]), _average_bins(w, size[1])), out)


def _bilinear(size_in: int, size_out: int, align_corners: bool) -> np.ndarray:
    """(size_out, size_in) linear interpolation weights: corners aligned (source
    position i (in - 1) / (out - 1)), or pixel centres ((i + 0.5) in / out - 0.5,
    clamped at 0), as MXNet's BilinearResize2D."""
    m = np.zeros((size_out, size_in))
    for i in range(size_out):
        if align_corners:
            src = i * (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
        else:
            src = max((i + 0.5) * size_in / size_out - 0.5, 0.0)
        lo = min(int(math.floor(src)), size_in - 1)
        frac = src - lo
        hi = lo + 1 if lo < size_in - 1 else lo
        m[i, lo] += 1.0 - frac
        m[i, hi] += frac
    return m


_RESIZE_MODES = ("size", "like", "odd_scale", "to_even_down", "to_even_up", "to_odd_down",
                 "to_odd_up")


def _resized(n: int, target, scale, mode: str) -> int:
    if mode == "size":
        return int(n * scale) if scale is not None else int(target)
    if mode == "odd_scale":
        return int(n * scale) if n % 2 == 0 else int((n - 1) * scale) + 1
    even = n % 2 == 0
    return {"to_even_down": n if even else n - 1, "to_even_up": n if even else n + 1,
            "to_odd_down": n - 1 if even else n, "to_odd_up": n + 1 if even else n}[mode]


def BilinearResize2D(data: NDArray, like: Optional[NDArray] = None, height: int = 1,  # noqa: N802
                     width: int = 1, scale_height=None, scale_width=None, mode: str = "size",
                     align_corners: bool = True, out=None, name=None) -> NDArray:
    """Bilinear resizing of (N, C, H, W) data (MXNet's contrib.BilinearResize2D): to
    ``height`` x ``width`` or by ``scale_height``/``scale_width`` (mode 'size'), to
    ``like``'s spatial size ('like'), or by the odd/even rules of the other modes."""
    if mode not in _RESIZE_MODES:
        _fail("BilinearResize2D", f"mode must be one of {_RESIZE_MODES}, got {mode!r}",
                    data)
    if data.ndim != 4:
        _fail("BilinearResize2D", "needs (N, C, H, W) data", data)
    h, w = data.shape[2:]
    if mode == "like":
        if like is None or like.ndim != 4:
            _fail("BilinearResize2D", "mode='like' needs a 4-d `like` array", data)
        new_h, new_w = like.shape[2:]
    else:
        new_h = _resized(h, height, scale_height, mode)
        new_w = _resized(w, width, scale_width, mode)
    if new_h < 1 or new_w < 1:
        _fail("BilinearResize2D", f"the output would be {new_h}x{new_w}", data)
    out_arr = _resample(data, _bilinear(h, new_h, align_corners),
                        _bilinear(w, new_w, align_corners))
    return _out(out_arr, out)  # like's values take no part: no gradient reaches it


__all__ += ["AdaptiveAvgPooling2D", "BilinearResize2D"]


# interleaved attention products (MXNet's transformer contrib ops) --------------------------
# The projections of a sequence-major batch (seq, batch, heads * parts * head_dim) hold,
# per head, the query, key (and value) blocks side by side: (heads, parts, head_dim).
def _heads(op: str, x: NDArray, heads: int, parts: int) -> Tuple[NDArray, ...]:
    """``parts`` arrays (batch * heads, seq, head_dim) from interleaved projections."""
    from mxcore.ops.shape import reshape, transpose
    if x.ndim != 3 or heads < 1 or x.shape[2] % (heads * parts):
        _fail(op, f"needs (seq, batch, heads * {parts} * head_dim) projections with "
                  f"heads={heads}", x)
    seq, batch = x.shape[:2]
    hd = x.shape[2] // (heads * parts)
    split = transpose(reshape(x, (seq, batch, heads, parts, hd)), (3, 1, 2, 0, 4))
    return tuple(reshape(split[p], (batch * heads, seq, hd)) for p in range(parts))


def _merge_heads(x: NDArray, heads: int) -> NDArray:
    """(batch * heads, seq, head_dim) -> (seq, batch, heads * head_dim)."""
    from mxcore.ops.shape import reshape, transpose
    bh, seq, hd = x.shape
    return reshape(transpose(reshape(x, (bh // heads, heads, seq, hd)), (2, 0, 1, 3)),
                   (seq, bh // heads, heads * hd))


def _check_attention(op: str, att: NDArray, batch_heads: int, kv_seq: int, *others) -> None:
    if att.ndim != 3 or att.shape[0] != batch_heads or att.shape[2] != kv_seq:
        _fail(op, f"attention must be (batch * heads, query length, {kv_seq}) with "
                  f"batch * heads = {batch_heads}", att, *others)


def interleaved_matmul_selfatt_qk(queries_keys_values: NDArray, heads: int,
                                  name=None) -> NDArray:
    """Self-attention scores (batch * heads, seq, seq): each head's queries times its
    keys, divided by sqrt(head_dim)."""
    from mxcore.ops.linalg import batch_dot
    q, k = _heads("interleaved_matmul_selfatt_qk", queries_keys_values, int(heads), 3)[:2]
    return batch_dot(q / math.sqrt(q.shape[2]), k, transpose_b=True)


def interleaved_matmul_selfatt_valatt(queries_keys_values: NDArray, attention: NDArray,
                                      heads: int, name=None) -> NDArray:
    """``attention`` (batch * heads, seq, seq) applied to each head's values:
    (seq, batch, heads * head_dim)."""
    from mxcore.ops.linalg import batch_dot
    op = "interleaved_matmul_selfatt_valatt"
    v = _heads(op, queries_keys_values, int(heads), 3)[2]
    _check_attention(op, attention, v.shape[0], v.shape[1], queries_keys_values)
    return _merge_heads(batch_dot(attention, v), int(heads))


def interleaved_matmul_encdec_qk(queries: NDArray, keys_values: NDArray, heads: int,
                                 name=None) -> NDArray:
    """Encoder-decoder attention scores (batch * heads, query length, key length) from
    queries (q_seq, batch, heads * head_dim) and interleaved keys and values
    (kv_seq, batch, heads * 2 * head_dim), divided by sqrt(head_dim)."""
    from mxcore.ops.linalg import batch_dot
    op = "interleaved_matmul_encdec_qk"
    (q,) = _heads(op, queries, int(heads), 1)
    k = _heads(op, keys_values, int(heads), 2)[0]
    if q.shape[0] != k.shape[0] or q.shape[2] != k.shape[2]:
        _fail(op, "queries and keys must share the batch and the head size", queries,
              keys_values)
    return batch_dot(q / math.sqrt(q.shape[2]), k, transpose_b=True)


def interleaved_matmul_encdec_valatt(keys_values: NDArray, attention: NDArray, heads: int,
                                     name=None) -> NDArray:
    """``attention`` (batch * heads, q_seq, kv_seq) applied to each head's values:
    (q_seq, batch, heads * head_dim)."""
    from mxcore.ops.linalg import batch_dot
    op = "interleaved_matmul_encdec_valatt"
    v = _heads(op, keys_values, int(heads), 2)[1]
    _check_attention(op, attention, v.shape[0], v.shape[1], keys_values)
    return _merge_heads(batch_dot(attention, v), int(heads))


__all__ += ["interleaved_matmul_selfatt_qk", "interleaved_matmul_selfatt_valatt",
            "interleaved_matmul_encdec_qk", "interleaved_matmul_encdec_valatt"]


def __getattr__(name: str):
    """Operators registered by plugins appear here by name too (``mx.nd.contrib.my_op``:
    the mxcore-contrib-ops plugin's ``scaled_dot_product_attention``, ``rms_norm``...)."""
    if name.startswith("__"):
        raise AttributeError(name)
    from mxcore.ndarray import registered_function
    call = registered_function(name)
    if call is None:
        raise AttributeError(f"module 'mxcore.ndarray.contrib' has no attribute {name!r} "
                             "(no such function or registered operator; is the plugin that "
                             "provides it installed? `mxcore plugins` lists them)")
    return call
