"""The import table: ONNX op type -> rule building mxcore symbols.

A rule is ``rule(c) -> symbol | [symbols] | numpy constant``, ``c`` being the node's
:class:`~mxcore.onnx.importer.NodeContext` (inputs as symbols or constants, attributes,
static shapes).  Rules use ``mx.sym`` functions, the same ops as ``mx.nd``.  ONNX's
numpy broadcasting maps onto mxcore's ``broadcast_*`` ops, which broadcast the same way.
"""
from __future__ import annotations

from typing import Callable, Dict, List

import numpy as np

TABLE: Dict[str, Callable] = {}

#: inputs (by position) whose values the rules read at import: they must be constants
#: (initializers, Constant nodes, or computed from constants)
CONST_INPUTS: Dict[str, tuple] = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Slice": (1, 2, 3, 4), "Squeeze": (1,),
    "Unsqueeze": (1,), "Split": (1,), "Pad": (1, 2, 3), "Clip": (1, 2), "TopK": (1,),
    "CumSum": (1,), "OneHot": (1, 2), "Resize": (1, 2, 3), "Upsample": (1,),
    "ConstantOfShape": (0,), "Range": (0, 1, 2), "Trilu": (1,),
    **{op: (1,) for op in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                           "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum",
                           "ReduceLogSumExp")}}


def rule(*names: str):
    def register(fn):
        for name in names:
            TABLE[name] = fn
        return fn
    return register


def _sym():
    from mxcore import symbol
    return symbol


def _axis(axis: int, nd: int) -> int:
    return int(axis) % nd if nd else 0


def _scalar_const(c, i):
    """Input ``i`` as a Python scalar when it is a one-element constant that does not
    change the result's shape or dtype (so a scalar op serves), else None."""
    if not c.is_const(i):
        return None
    v = c.const(i)
    if v.size != 1 or v.ndim > len(c.shape(1 - i)):
        return None
    if v.dtype.kind == "f" and np.dtype(c.in_dtype(1 - i)).kind != "f":
        return None
    return v.reshape(()).item()


# elementwise arithmetic ----------------------------------------------------------------------
_BINARY = {"Add": ("broadcast_add", "__add__", "__radd__"),
           "Sub": ("broadcast_sub", "__sub__", "__rsub__"),
           "Mul": ("broadcast_mul", "__mul__", "__rmul__"),
           "Div": ("broadcast_div", "__truediv__", "__rtruediv__"),
           "Pow": ("broadcast_power", "__pow__", "__rpow__")}


def _binary(op, method, rmethod):
    def build(c):
        if c.node.op_type == "Pow" and c.in_dtype(0) != c.in_dtype(1):
            return getattr(_sym(), op)(c.x(0), _sym().cast(c.x(1), dtype=c.in_dtype(0)),
                                       name=c.name)
        if c.node.op_type != "Pow":
            right = _scalar_const(c, 1)
            if right is not None:
                return getattr(c.x(0), method)(right)
            left = _scalar_const(c, 0)
            if left is not None:
                return getattr(c.x(1), rmethod)(left)
        return getattr(_sym(), op)(c.x(0), c.x(1), name=c.name)
    return build


for _name, (_op, _m, _r) in _BINARY.items():
    TABLE[_name] = _binary(_op, _m, _r)


def _fold_many(op):
    def build(c):
        xs = c.xs()
        out = xs[0]
        for x in xs[1:]:
            out = getattr(_sym(), op)(out, x)
        return out if len(xs) > 1 else _sym().identity(out, name=c.name)
    return build


rule("Sum")(_fold_many("broadcast_add"))
rule("Max")(_fold_many("broadcast_maximum"))
rule("Min")(_fold_many("broadcast_minimum"))


@rule("Mean")
def _mean(c):
    xs = c.xs()
    total = _fold_many("broadcast_add")(c)
    return total / float(len(xs)) if len(xs) > 1 else total


@rule("Mod")
def _mod(c):
    s = _sym()
    a, b = c.x(0), c.x(1)
    if c.attr("fmod", 0):  # C's fmod: the dividend's sign
        return s.broadcast_sub(a, s.broadcast_mul(s.trunc(s.broadcast_div(a, b)), b))
    return s.broadcast_mod(a, b, name=c.name)


_COMPARE = {"Equal": "broadcast_equal", "Greater": "broadcast_greater",
            "GreaterOrEqual": "broadcast_greater_equal", "Less": "broadcast_lesser",
            "LessOrEqual": "broadcast_lesser_equal"}


def _compare(op):
    def build(c):
        return _sym().cast(getattr(_sym(), op)(c.x(0), c.x(1)), dtype="bool", name=c.name)
    return build


for _name, _op in _COMPARE.items():
    TABLE[_name] = _compare(_op)

_LOGIC = {"And": "broadcast_logical_and", "Or": "broadcast_logical_or",
          "Xor": "broadcast_logical_xor"}


def _logic(op):
    def build(c):
        return _sym().cast(getattr(_sym(), op)(c.x(0), c.x(1)), dtype="bool", name=c.name)
    return build


for _name, _op in _LOGIC.items():
    TABLE[_name] = _logic(_op)


@rule("Not")
def _not(c):
    return _sym().cast(_sym().logical_not(c.x(0)), dtype="bool", name=c.name)


_UNARY = {"Abs": "abs", "Neg": "negative", "Exp": "exp", "Log": "log", "Sqrt": "sqrt",
          "Reciprocal": "reciprocal", "Floor": "floor", "Ceil": "ceil",
          "Sign": "sign", "Sin": "sin", "Cos": "cos", "Tan": "tan", "Asin": "arcsin",
          "Acos": "arccos", "Atan": "arctan", "Sinh": "sinh", "Cosh": "cosh",
          "Asinh": "arcsinh", "Acosh": "arccosh", "Atanh": "arctanh", "Erf": "erf",
          "Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu", "Softplus": "softrelu",
          "Softsign": "softsign", "Identity": "identity"}


def _unary(op):
    def build(c):
        return getattr(_sym(), op)(c.x(0), name=c.name)
    return build


for _name, _op in _UNARY.items():
    TABLE[_name] = _unary(_op)


@rule("Round")
def _round(c):
    """ONNX rounds halves to even: floor(x + 0.5), one less on an odd tie."""
    s, x = _sym(), c.x(0)
    y = s.floor(x + 0.5)
    tie = (y - x) == 0.5
    odd = s.broadcast_mod(y, s.ones_like(y) * 2.0) == 1.0
    return y - tie * odd


@rule("Hardmax")
def _hardmax(c):
    shape = c.shape(0)
    axis = _axis(int(c.attr("axis", -1)), len(shape))
    s = _sym()
    idx = s.argmax(c.x(0), axis=axis)
    hot = s.one_hot(idx, depth=shape[axis], dtype=c.in_dtype(0))
    nd = len(shape)
    if axis != nd - 1:
        perm = list(range(nd - 1))
        perm.insert(axis, nd - 1)
        hot = s.transpose(hot, axes=tuple(perm))
    return hot


@rule("LpNormalization")
def _lp_normalization(c):
    s, x = _sym(), c.x(0)
    axis, p = int(c.attr("axis", -1)), int(c.attr("p", 2))
    norm = s.sum(s.abs(x), axis=axis, keepdims=True) if p == 1 else \
        s.sqrt(s.sum(x * x, axis=axis, keepdims=True))
    return s.broadcast_div(x, norm, name=c.name)


@rule("RMSNormalization")
def _rms_normalization(c):
    s, x = _sym(), c.x(0)
    nd = len(c.shape(0))
    axis = _axis(int(c.attr("axis", -1)), nd)
    ms = s.mean(x * x, axis=tuple(range(axis, nd)), keepdims=True)
    y = s.broadcast_mul(x, s.rsqrt(ms + float(c.attr("epsilon", 1e-5))))
    return s.broadcast_mul(y, c.x(1), name=c.name)


@rule("Dropout")
def _dropout(c):
    out = _sym().identity(c.x(0), name=c.name)
    if len(c.node.output) > 1 and c.node.output[1]:
        return [out, _sym().cast(_sym().ones_like(c.x(0)), dtype="bool")]
    return out


@rule("IsNaN")
def _isnan(c):
    x = c.x(0)
    return _sym().cast(_sym().broadcast_not_equal(x, x), dtype="bool", name=c.name)


@rule("IsInf")
def _isinf(c):
    s, x = _sym(), c.x(0)
    pos, neg = c.attr("detect_positive", 1), c.attr("detect_negative", 1)
    ax = s.abs(x) if pos and neg else (x if pos else -x)
    return s.cast(ax == float("inf"), dtype="bool", name=c.name)


# activations -----------------------------------------------------------------------------------
@rule("LeakyRelu")
def _leaky_relu(c):
    return _sym().LeakyReLU(c.x(0), act_type="leaky", slope=float(c.attr("alpha", 0.01)),
                            name=c.name)


@rule("Elu")
def _elu(c):
    return _sym().LeakyReLU(c.x(0), act_type="elu", slope=float(c.attr("alpha", 1.0)),
                            name=c.name)


@rule("Selu")
def _selu(c):
    s, x = _sym(), c.x(0)
    alpha = float(c.attr("alpha", 1.67326319217681884765625))
    gamma = float(c.attr("gamma", 1.05070102214813232421875))
    neg = (s.exp(s.minimum(x, 0.0)) - 1.0) * alpha
    return s.where(x > 0.0, x, neg) * gamma


@rule("Celu")
def _celu(c):
    s, x = _sym(), c.x(0)
    alpha = float(c.attr("alpha", 1.0))
    return s.maximum(x, 0.0) + s.minimum((s.exp(x / alpha) - 1.0) * alpha, 0.0)


@rule("ThresholdedRelu")
def _thresholded_relu(c):
    x = c.x(0)
    return _sym().where(x > float(c.attr("alpha", 1.0)), x, _sym().zeros_like(x))


@rule("PRelu")
def _prelu(c):
    s, x = _sym(), c.x(0)
    return s.broadcast_add(s.relu(x), s.broadcast_mul(c.x(1), s.minimum(x, 0.0)), name=c.name)


@rule("HardSigmoid")
def _hard_sigmoid(c):
    return _sym().hard_sigmoid(c.x(0), alpha=float(c.attr("alpha", 0.2)),
                               beta=float(c.attr("beta", 0.5)), name=c.name)


@rule("HardSwish")
def _hard_swish(c):
    x = c.x(0)
    return x * _sym().hard_sigmoid(x, alpha=1 / 6, beta=0.5)


@rule("Mish")
def _mish(c):
    x = c.x(0)
    return x * _sym().tanh(_sym().softrelu(x))


@rule("Gelu")
def _gelu(c):
    s, x = _sym(), c.x(0)
    if c.attr("approximate", "none") == "tanh":
        inner = (x + x * x * x * 0.044715) * float(np.sqrt(2 / np.pi))
        return x * 0.5 * (s.tanh(inner) + 1.0)
    return x * 0.5 * (s.erf(x * float(1 / np.sqrt(2))) + 1.0)


def _softmax(op):
    def build(c):
        nd = len(c.shape(0))
        default = -1 if c.opset >= 13 else 1
        axis = int(c.attr("axis", default))
        if c.opset >= 13:
            return getattr(_sym(), op)(c.x(0), axis=axis, name=c.name)
        # opsets < 13: softmax over the flattened axes from ``axis``
        shape = c.shape(0)
        a = _axis(axis, nd)
        flat = _sym().reshape(c.x(0), shape=(int(np.prod(shape[:a])), -1))
        return _sym().reshape(getattr(_sym(), op)(flat, axis=-1), shape=shape, name=c.name)
    return build


rule("Softmax")(_softmax("softmax"))
rule("LogSoftmax")(_softmax("log_softmax"))


# products ----------------------------------------------------------------------------------------
@rule("MatMul")
def _matmul(c):
    return _sym().matmul(c.x(0), c.x(1), name=c.name)


@rule("Gemm")
def _gemm(c):
    s = _sym()
    a, b = c.x(0), c.x(1)
    if c.attr("transA", 0):
        a = s.transpose(a)
    if c.attr("transB", 0):
        b = s.transpose(b)
    y = s.dot(a, b)
    alpha, beta = float(c.attr("alpha", 1.0)), float(c.attr("beta", 1.0))
    if alpha != 1.0:
        y = y * alpha
    if c.has(2):
        bias = c.x(2) if beta == 1.0 else c.x(2) * beta
        y = s.broadcast_add(y, bias, name=c.name)
    return y


# convolution and pooling -------------------------------------------------------------------------
def _same_pads(c, kernel, strides, dilations, spatial):
    """Explicit pads for auto_pad SAME_UPPER/SAME_LOWER from the static input shape."""
    mode = c.attr("auto_pad", "NOTSET")
    if mode in ("NOTSET", ""):
        return None
    n = len(kernel)
    if mode == "VALID":
        return [0] * (2 * n)
    begins, ends = [], []
    for d, k, s, dl in zip(spatial, kernel, strides, dilations):
        out = -(-d // s)
        total = max((out - 1) * s + (k - 1) * dl + 1 - d, 0)
        small, big = total // 2, total - total // 2
        begins.append(small if mode == "SAME_UPPER" else big)
        ends.append(big if mode == "SAME_UPPER" else small)
    return begins + ends


def _symmetric(c, x, pads, fill=0.0):
    """MXNet pads both sides alike: an asymmetric ONNX padding pads the data first."""
    n = len(pads) // 2
    begin, end = pads[:n], pads[n:]
    if begin == end:
        return x, tuple(begin)
    nd = len(c.shape(0))
    width = [0, 0, 0, 0]
    for b, e in zip(begin, end):
        width += [b, e]
    if nd < 4:  # mxcore's Pad takes 4-d and 5-d data
        s = _sym()
        x4 = s.expand_dims(x, axis=2)
        padded = s.Pad(x4, mode="constant", pad_width=tuple([0, 0, 0, 0, 0, 0] + width[4:]),
                       constant_value=fill)
        return s.squeeze(padded, axis=2), (0,) * n
    return _sym().Pad(x, mode="constant", pad_width=tuple(width), constant_value=fill), \
        (0,) * n


def _conv_geometry(c, kernel):
    n = len(kernel)
    strides = c.attr("strides", [1] * n)
    dilations = c.attr("dilations", [1] * n)
    pads = _same_pads(c, kernel, strides, dilations, c.shape(0)[2:]) if \
        c.attr("auto_pad", "NOTSET") not in ("NOTSET", "") else \
        list(c.attr("pads", [0] * 2 * n))
    return list(strides), list(dilations), pads


@rule("Conv")
def _conv(c):
    wshape = c.shape(1)
    kernel = list(c.attr("kernel_shape", wshape[2:]))
    strides, dilations, pads = _conv_geometry(c, kernel)
    x, pad = _symmetric(c, c.x(0), pads)
    kwargs = dict(kernel=tuple(kernel), stride=tuple(strides), dilate=tuple(dilations),
                  pad=pad, num_filter=int(wshape[0]), num_group=int(c.attr("group", 1)),
                  no_bias=not c.has(2), weight=c.x(1), name=c.name)
    if c.has(2):
        kwargs["bias"] = c.x(2)
    return _sym().Convolution(x, **kwargs)


@rule("ConvTranspose")
def _conv_transpose(c):
    wshape = c.shape(1)
    group = int(c.attr("group", 1))
    kernel = list(c.attr("kernel_shape", wshape[2:]))
    n = len(kernel)
    strides = list(c.attr("strides", [1] * n))
    dilations = list(c.attr("dilations", [1] * n))
    kwargs = dict(kernel=tuple(kernel), stride=tuple(strides), dilate=tuple(dilations),
                  num_filter=int(wshape[1]) * group, num_group=group, no_bias=not c.has(2),
                  weight=c.x(1), name=c.name)
    if c.has(2):
        kwargs["bias"] = c.x(2)
    out_shape = c.attr("output_shape")
    auto = c.attr("auto_pad", "NOTSET")
    if out_shape or auto not in ("NOTSET", ""):
        spatial = c.shape(0)[2:]
        adj = list(c.attr("output_padding", [0] * n))
        full = [(d - 1) * s + (k - 1) * dl + 1 + a
                for d, s, k, dl, a in zip(spatial, strides, kernel, dilations, adj)]
        target = list(out_shape[-n:]) if out_shape else \
            ([d * s for d, s in zip(spatial, strides)] if auto.startswith("SAME") else full)
        total = [f - t for f, t in zip(full, target)]
        if any(t < 0 for t in total):  # an output larger than the full one: adj
            if any(t > 0 for t in total) or any(adj):
                raise c.fail("output_shape mixing extra and cropped sizes")
            y = _sym().Deconvolution(c.x(0), pad=(0,) * n, adj=tuple(-t for t in total),
                                     **kwargs)
            return y
        if auto == "SAME_LOWER":
            begin = [t - t // 2 for t in total]
        else:
            begin = [t // 2 for t in total]
        pads = begin + [t - b for t, b in zip(total, begin)]
    else:
        pads = list(c.attr("pads", [0] * 2 * n))
        adj = list(c.attr("output_padding", [0] * n))
    begin, end = pads[:n], pads[n:]
    # MXNet pads both sides alike: the extra end padding is cropped off afterwards
    pad = [min(b, e) for b, e in zip(begin, end)]
    extra_begin = [b - p for b, p in zip(begin, pad)]
    extra_end = [e - p for e, p in zip(end, pad)]
    out_adj = [0] * n if out_shape or auto not in ("NOTSET", "") else adj
    y = _sym().Deconvolution(c.x(0), pad=tuple(pad), adj=tuple(out_adj), **kwargs)
    if any(extra_begin) or any(extra_end) or ((out_shape or auto not in ("NOTSET", ""))
                                              and any(adj)):
        return _crop(c, y, extra_begin, extra_end, adj if (out_shape or auto not in
                                                           ("NOTSET", "")) else [0] * n)
    return y


def _crop(c, y, begin, end, adj):
    s = _sym()
    for k, (b, e, a) in enumerate(zip(begin, end, adj)):
        e = e - a
        if b or e:
            y = s.slice_axis(y, axis=k + 2, begin=b, end=-e if e > 0 else None)
        if e < 0:  # output_padding beyond the padding: zeros after the data
            raise c.fail("output_padding larger than the end padding")
    return y


def _pool(kind):
    def build(c):
        kernel = list(c.attr("kernel_shape"))
        n = len(kernel)
        if any(d != 1 for d in c.attr("dilations", [1] * n)):
            raise c.fail("pooling with dilations")
        if len(c.node.output) > 1 and c.node.output[1]:
            raise c.fail("MaxPool's Indices output")
        strides, _, pads = _conv_geometry(c, kernel)
        fill = float("-inf") if kind == "max" else 0.0
        x, pad = _symmetric(c, c.x(0), pads, fill)
        asym = pads[:n] != pads[n:]
        kwargs = dict(kernel=tuple(kernel), stride=tuple(strides), pad=pad, pool_type=kind,
                      pooling_convention="full" if c.attr("ceil_mode", 0) else "valid",
                      name=c.name)
        if kind == "avg":
            kwargs["count_include_pad"] = bool(c.attr("count_include_pad", 0))
            if asym and not kwargs["count_include_pad"]:
                raise c.fail("asymmetric padding with count_include_pad=0")
        if kind == "lp":
            kwargs["p_value"] = int(c.attr("p", 2))
        y = _sym().Pooling(x, **kwargs)
        if c.attr("ceil_mode", 0):
            y = _drop_pad_windows(c, y, kernel, strides, pads)
        return y
    return build


def _drop_pad_windows(c, y, kernel, strides, pads):
    """With ceil_mode, ONNX drops a last window that starts in the end padding; MXNet's
    'full' convention keeps it: slice it off."""
    n = len(kernel)
    for k, (d, kk, st, b, e) in enumerate(zip(c.shape(0)[2:], kernel, strides, pads[:n],
                                               pads[n:])):
        out = -(-(d + b + e - kk) // st) + 1
        if (out - 1) * st >= d + b:
            y = _sym().slice_axis(y, axis=k + 2, begin=0, end=out - 1)
    return y


rule("MaxPool")(_pool("max"))
rule("AveragePool")(_pool("avg"))


@rule("LpPool")
def _lp_pool(c):
    """(sum |x|^p)^(1/p) over each window: a sum pool of |x|^p."""
    s = _sym()
    p = float(c.attr("p", 2))
    kernel = list(c.attr("kernel_shape"))
    n = len(kernel)
    if any(d != 1 for d in c.attr("dilations", [1] * n)):
        raise c.fail("pooling with dilations")
    strides, _, pads = _conv_geometry(c, kernel)
    x, pad = _symmetric(c, s.abs(c.x(0)) ** p, pads)
    y = s.Pooling(x, kernel=tuple(kernel), stride=tuple(strides), pad=pad, pool_type="avg",
                  count_include_pad=True, pooling_convention="full" if
                  c.attr("ceil_mode", 0) else "valid")
    if c.attr("ceil_mode", 0):
        y = _drop_pad_windows(c, y, kernel, strides, pads)
    return (y * float(np.prod(kernel))) ** (1.0 / p)


def _global_pool(kind):
    def build(c):
        extra = {"p_value": int(c.attr("p", 2))} if kind == "lp" else {}
        return _sym().Pooling(c.x(0), global_pool=True, pool_type=kind, kernel=(1,) *
                              (len(c.shape(0)) - 2), name=c.name, **extra)
    return build


rule("GlobalMaxPool")(_global_pool("max"))
rule("GlobalAveragePool")(_global_pool("avg"))
rule("GlobalLpPool")(_global_pool("lp"))


# normalisation --------------------------------------------------------------------------------
@rule("BatchNormalization")
def _batch_norm(c):
    if c.attr("training_mode", 0):
        raise c.fail("training_mode=1")
    return _sym().BatchNorm(c.x(0), gamma=c.x(1), beta=c.x(2), moving_mean=c.x(3),
                            moving_var=c.x(4), eps=float(c.attr("epsilon", 1e-5)),
                            momentum=float(c.attr("momentum", 0.9)), fix_gamma=False,
                            use_global_stats=True, name=c.name)


@rule("InstanceNormalization")
def _instance_norm(c):
    return _sym().InstanceNorm(c.x(0), gamma=c.x(1), beta=c.x(2),
                               eps=float(c.attr("epsilon", 1e-5)), name=c.name)


@rule("LayerNormalization")
def _layer_norm(c):
    s = _sym()
    nd = len(c.shape(0))
    axis = _axis(int(c.attr("axis", -1)), nd)
    eps = float(c.attr("epsilon", 1e-5))
    extra = [o for o in c.node.output[1:] if o]
    if axis == nd - 1 and not extra and len(c.shape(1)) == 1 and c.has(2) \
            and len(c.shape(2)) == 1:
        return s.LayerNorm(c.x(0), gamma=c.x(1), beta=c.x(2), axis=-1, eps=eps, name=c.name)
    x = c.x(0)
    axes = tuple(range(axis, nd))
    mean = s.mean(x, axis=axes, keepdims=True)
    d = s.broadcast_sub(x, mean)
    var = s.mean(d * d, axis=axes, keepdims=True)
    inv = s.rsqrt(var + eps)
    y = s.broadcast_mul(s.broadcast_mul(d, inv), c.x(1))
    if c.has(2):
        y = s.broadcast_add(y, c.x(2))
    return [y, mean, inv]


@rule("LRN")
def _lrn(c):
    return _sym().LRN(c.x(0), nsize=int(c.attr("size")), alpha=float(c.attr("alpha", 1e-4)),
                      beta=float(c.attr("beta", 0.75)), knorm=float(c.attr("bias", 1.0)),
                      name=c.name)


# reductions ------------------------------------------------------------------------------------
def _reduce_axes(c):
    axes = c.ints(1, "axes") if c.node.op_type == "ReduceSum" or c.opset >= 18 else \
        c.ints(99, "axes")
    if not axes:
        if c.attr("noop_with_empty_axes", 0):
            return "noop"
        return None
    return tuple(axes)


def _reduce(fn):
    def build(c):
        axes = _reduce_axes(c)
        x = c.x(0)
        if axes == "noop":
            return _sym().identity(x, name=c.name)
        keep = bool(c.attr("keepdims", 1))
        return fn(_sym(), x, axes, keep)
    return build


rule("ReduceSum")(_reduce(lambda s, x, a, k: s.sum(x, axis=a, keepdims=k)))
rule("ReduceMean")(_reduce(lambda s, x, a, k: s.mean(x, axis=a, keepdims=k)))
rule("ReduceMax")(_reduce(lambda s, x, a, k: s.max(x, axis=a, keepdims=k)))
rule("ReduceMin")(_reduce(lambda s, x, a, k: s.min(x, axis=a, keepdims=k)))
rule("ReduceProd")(_reduce(lambda s, x, a, k: s.prod(x, axis=a, keepdims=k)))
rule("ReduceL1")(_reduce(lambda s, x, a, k: s.sum(s.abs(x), axis=a, keepdims=k)))
rule("ReduceL2")(_reduce(lambda s, x, a, k: s.sqrt(s.sum(x * x, axis=a, keepdims=k))))
rule("ReduceSumSquare")(_reduce(lambda s, x, a, k: s.sum(x * x, axis=a, keepdims=k)))
rule("ReduceLogSum")(_reduce(lambda s, x, a, k: s.log(s.sum(x, axis=a, keepdims=k))))
rule("ReduceLogSumExp")(_reduce(
    lambda s, x, a, k: s.log(s.sum(s.exp(x), axis=a, keepdims=k))))


def _arg(op):
    def build(c):
        s = _sym()
        nd = len(c.shape(0))
        axis = _axis(int(c.attr("axis", 0)), nd)
        keep = bool(c.attr("keepdims", 1))
        x = c.x(0)
        if c.attr("select_last_index", 0):  # the last of equal values: search reversed
            idx = getattr(s, op)(s.reverse(x, axis=axis), axis=axis, keepdims=keep)
            idx = (idx * -1.0) + float(c.shape(0)[axis] - 1)
        else:
            idx = getattr(s, op)(x, axis=axis, keepdims=keep)
        return s.cast(idx, dtype="int64", name=c.name)
    return build


rule("ArgMax")(_arg("argmax"))
rule("ArgMin")(_arg("argmin"))


@rule("TopK")
def _topk(c):
    k = int(np.asarray(c.const(1)).reshape(-1)[0])
    axis = int(c.attr("axis", -1))
    out = _sym().topk(c.x(0), k=k, axis=axis, ret_typ="both",
                      is_ascend=not c.attr("largest", 1), dtype="int64", name=c.name)
    return [out[0], out[1]]


@rule("CumSum")
def _cumsum(c):
    s = _sym()
    nd = len(c.shape(0))
    axis = _axis(int(np.asarray(c.const(1)).reshape(-1)[0]), nd)
    x = c.x(0)
    rev = bool(c.attr("reverse", 0))
    if rev:
        x = s.reverse(x, axis=axis)
    y = s.cumsum(x, axis=axis)
    if c.attr("exclusive", 0):
        y = y - x
    if rev:
        y = s.reverse(y, axis=axis)
    return y


# shapes ------------------------------------------------------------------------------------------
@rule("Reshape")
def _reshape(c):
    target = [int(v) for v in c.const(1).reshape(-1)]
    if c.attr("allowzero", 0) and 0 in target:
        if -1 in target:
            raise c.fail("allowzero=1 with both 0 and -1 in the shape")
        return _sym().reshape(c.x(0), shape=tuple(target), name=c.name)
    shape = c.shape(0)
    out = [shape[i] if d == 0 else d for i, d in enumerate(target)]
    return _sym().reshape(c.x(0), shape=tuple(out), name=c.name)


@rule("Flatten")
def _flatten(c):
    shape = c.shape(0)
    axis = int(c.attr("axis", 1))
    axis = axis + len(shape) if axis < 0 else axis
    lead = int(np.prod(shape[:axis])) if axis else 1
    return _sym().reshape(c.x(0), shape=(lead, -1) if lead else (0, -1), name=c.name)


@rule("Transpose")
def _transpose(c):
    perm = c.attr("perm")
    return _sym().transpose(c.x(0), axes=tuple(perm) if perm else None, name=c.name)


@rule("Squeeze")
def _squeeze(c):
    axes = c.ints(1, "axes")
    return _sym().squeeze(c.x(0), axis=tuple(axes) if axes else None, name=c.name)


@rule("Unsqueeze")
def _unsqueeze(c):
    axes = c.ints(1, "axes")
    nd = len(c.shape(0)) + len(axes)
    x = c.x(0)
    for a in sorted(_axis(v, nd) for v in axes):
        x = _sym().expand_dims(x, axis=a)
    return x


@rule("Concat")
def _concat(c):
    xs = c.xs()
    return _sym().concat(*xs, dim=int(c.attr("axis")), name=c.name)


@rule("Split")
def _split(c):
    shape = c.shape(0)
    axis = _axis(int(c.attr("axis", 0)), len(shape))
    sizes = c.ints(1, "split")
    n = len([o for o in c.node.output])
    if sizes is None:
        per = -(-shape[axis] // n)
        sizes = [min(per, shape[axis] - per * k) for k in range(n)]
    s = _sym()
    if len(set(sizes)) == 1 and sizes[0] * n == shape[axis]:
        out = s.split(c.x(0), num_outputs=n, axis=axis, name=c.name)
        return [out[i] for i in range(n)] if n > 1 else [out]
    begins = np.cumsum([0] + list(sizes))
    return [s.slice_axis(c.x(0), axis=axis, begin=int(b), end=int(b + z))
            for b, z in zip(begins[:-1], sizes)]


@rule("Slice")
def _slice(c):
    shape = c.shape(0)
    nd = len(shape)
    starts, ends = c.ints(1, "starts"), c.ints(2, "ends")
    axes = c.ints(3, "axes", list(range(len(starts))))
    steps = c.ints(4, None, [1] * len(starts))
    begin, end, step = [None] * nd, [None] * nd, [None] * nd
    for b, e, a, st in zip(starts, ends, axes, steps):
        a = _axis(a, nd)
        lo, hi, st = slice(b, e, st).indices(shape[a])
        begin[a], step[a] = lo, st
        end[a] = None if (st < 0 and hi < 0) else hi
    return _sym().slice(c.x(0), begin=tuple(begin), end=tuple(end), step=tuple(
        1 if v is None else v for v in step), name=c.name)


@rule("Gather")
def _gather(c):
    axis = _axis(int(c.attr("axis", 0)), len(c.shape(0)))
    idx = c.x(1)
    return _sym().take(c.x(0), idx, axis=axis, mode="wrap", name=c.name)


@rule("GatherND")
def _gather_nd(c):
    if c.attr("batch_dims", 0):
        raise c.fail("batch_dims != 0")
    idx = c.x(1)
    nd = len(c.shape(1))
    idx = _sym().transpose(idx, axes=(nd - 1,) + tuple(range(nd - 1)))
    return _sym().gather_nd(c.x(0), idx, name=c.name)


@rule("Expand")
def _expand(c):
    target = [int(v) for v in c.const(1).reshape(-1)]
    shape = c.shape(0)
    nd = max(len(target), len(shape))
    src = (1,) * (nd - len(shape)) + tuple(shape)
    tgt = [1] * (nd - len(target)) + target
    out = tuple(max(a, b) if 1 in (a, b) else a for a, b in zip(src, tgt))
    x = c.x(0)
    if len(src) != len(shape):
        x = _sym().reshape(x, shape=src)
    return _sym().broadcast_to(x, shape=out, name=c.name)


@rule("Tile")
def _tile(c):
    return _sym().tile(c.x(0), reps=tuple(int(v) for v in c.const(1).reshape(-1)),
                       name=c.name)


_PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect"}


@rule("Pad")
def _pad(c):
    shape = c.shape(0)
    nd = len(shape)
    pads = c.ints(1, "pads")
    axes = c.ints(3, None, list(range(nd)))
    mode = _PAD_MODES.get(c.attr("mode", "constant"))
    if mode is None:
        raise c.fail(f"mode={c.attr('mode')!r}")
    value = c.const(2)
    value = float(np.asarray(value).reshape(-1)[0]) if value is not None and \
        np.asarray(value).size else float(c.attr("value", 0.0))
    k = len(axes)
    width = [0] * (2 * nd)
    for j, a in enumerate(axes):
        a = _axis(a, nd)
        width[2 * a], width[2 * a + 1] = pads[j], pads[j + k]
    if any(w < 0 for w in width):
        raise c.fail("negative pads")
    x = c.x(0)
    lift = 4 - nd if nd < 4 else 0  # mxcore's Pad takes 4-d and 5-d data
    if lift:
        x = _sym().reshape(x, shape=(1,) * lift + tuple(shape))
        width = [0, 0] * lift + width
    if mode != "constant" and any(width[:4]):
        raise c.fail(f"{mode} padding of the first two axes")
    y = _sym().Pad(x, mode=mode, pad_width=tuple(width), constant_value=value)
    if lift:
        y = _sym().reshape(y, shape=tuple(shape[i] + width[2 * (i + lift)] +
                                          width[2 * (i + lift) + 1] for i in range(nd)))
    return y


@rule("Cast")
def _cast(c):
    from mxcore.onnx._common import np_dtype
    return _sym().cast(c.x(0), dtype=np_dtype(int(c.attr("to"))).name, name=c.name)


@rule("CastLike")
def _cast_like(c):
    return _sym().cast(c.x(0), dtype=c.in_dtype(1), name=c.name)


@rule("Shape")
def _shape(c):
    shape = np.asarray(c.shape(0), dtype=np.int64)
    start, end = c.attr("start", 0), c.attr("end")
    return shape[start:end]


@rule("Size")
def _size(c):
    return np.asarray(int(np.prod(c.shape(0))), dtype=np.int64)


@rule("Clip")
def _clip(c):
    lo, hi = c.const(1), c.const(2)
    if c.opset < 11:
        lo, hi = c.attr("min"), c.attr("max")
    lo = -np.inf if lo is None else float(np.asarray(lo).reshape(()))
    hi = np.inf if hi is None else float(np.asarray(hi).reshape(()))
    x = c.x(0)
    if np.dtype(c.in_dtype(0)).kind != "f":
        return _sym().minimum(_sym().maximum(x, lo), hi) if np.isfinite(lo) and \
            np.isfinite(hi) else _sym().clip(x, a_min=lo, a_max=hi)
    return _sym().clip(x, a_min=lo, a_max=hi, name=c.name)


@rule("Where")
def _where(c):
    return _sym().where(c.x(0), c.x(1), c.x(2), name=c.name)


@rule("Constant")
def _constant(c):
    from onnx import numpy_helper
    a = c.attrs
    if "value" in a:
        return numpy_helper.to_array(a["value"])
    table = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
             "value_ints": np.int64}
    for key, dtype in table.items():
        if key in a:
            return np.asarray(a[key], dtype=dtype)
    raise c.fail(f"Constant with {sorted(a)}")


@rule("ConstantOfShape")
def _constant_of_shape(c):
    from onnx import numpy_helper
    shape = [int(v) for v in c.const(0).reshape(-1)]
    value = c.attrs.get("value")
    fill = numpy_helper.to_array(value).reshape(-1) if value is not None else \
        np.zeros(1, np.float32)
    return np.full(shape, fill[0], dtype=fill.dtype)


@rule("DepthToSpace")
def _depth_to_space(c):
    bs = int(c.attr("blocksize"))
    if c.attr("mode", "DCR") == "DCR":
        return _sym().depth_to_space(c.x(0), block_size=bs, name=c.name)
    n, ch, h, w = c.shape(0)
    x = _sym().reshape(c.x(0), shape=(n, ch // (bs * bs), bs, bs, h, w))
    x = _sym().transpose(x, axes=(0, 1, 4, 2, 5, 3))
    return _sym().reshape(x, shape=(n, ch // (bs * bs), h * bs, w * bs), name=c.name)


@rule("SpaceToDepth")
def _space_to_depth(c):
    b = int(c.attr("blocksize"))
    n, ch, h, w = c.shape(0)
    x = _sym().reshape(c.x(0), shape=(n, ch, h // b, b, w // b, b))
    x = _sym().transpose(x, axes=(0, 3, 5, 1, 2, 4))
    return _sym().reshape(x, shape=(n, ch * b * b, h // b, w // b), name=c.name)


@rule("Resize", "Upsample")
def _resize(c):
    mode = c.attr("mode", "nearest")
    if mode != "nearest":
        raise c.fail(f"mode={mode!r} (nearest only)")
    shape = c.shape(0)
    scales = c.const(2 if c.node.op_type == "Resize" else 1)
    if c.node.op_type == "Resize" and (scales is None or not scales.size):
        sizes = c.const(3)
        scales = np.asarray(sizes, dtype=np.float64) / np.asarray(shape)
    scales = [float(v) for v in np.asarray(scales).reshape(-1)]
    spatial = scales[2:]
    # integer scales: every coordinate mode with round/floor nearest is a repeat
    ok = scales[:2] == [1.0, 1.0] and len(set(spatial)) == 1 and spatial[0].is_integer() \
        and len(shape) == 4 and c.attr("nearest_mode", "round_prefer_floor") != "ceil"
    if not ok:
        raise c.fail(f"scales {scales} (equal integer spatial scales of 4-d data only)")
    return _sym().UpSampling(c.x(0), scale=int(spatial[0]), sample_type="nearest",
                             num_args=1, name=c.name)


@rule("OneHot")
def _one_hot(c):
    depth = int(np.asarray(c.const(1)).reshape(-1)[0])
    values = np.asarray(c.const(2)).reshape(-1)
    axis = int(c.attr("axis", -1))
    nd = len(c.shape(0)) + 1
    idx = c.x(0)
    idx = _sym().where(idx < 0, idx + float(depth), idx) if np.dtype(
        c.in_dtype(0)).kind in "if" else idx
    y = _sym().one_hot(idx, depth=depth, on_value=float(values[1]),
                       off_value=float(values[0]), dtype=values.dtype.name)
    if _axis(axis, nd) != nd - 1:
        perm = list(range(nd - 1))
        perm.insert(_axis(axis, nd), nd - 1)
        y = _sym().transpose(y, axes=tuple(perm))
    return y


@rule("Range")
def _range(c):
    start, limit, delta = (np.asarray(c.const(i)).reshape(()) for i in range(3))
    return np.arange(start, limit, delta).astype(start.dtype)


@rule("Trilu")
def _trilu(c):
    shape = c.shape(0)
    k = int(np.asarray(c.const(1, np.zeros((), np.int64))).reshape(()))
    rows, cols = shape[-2], shape[-1]
    i, j = np.indices((rows, cols))
    keep = (j - i >= k) if c.attr("upper", 1) else (j - i <= k)
    mask = np.asarray(keep, dtype=c.in_dtype(0) if c.in_dtype(0) != "bool" else "bool")
    c.imp.consts[c.name + "_mask"] = mask
    m = c.imp.tensor(c.name + "_mask")
    return _sym().where(_sym().broadcast_to(m, shape=shape), c.x(0),
                        _sym().zeros_like(c.x(0)), name=c.name)


def supported_ops() -> List[str]:
    return sorted(TABLE)
