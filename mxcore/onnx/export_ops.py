"""The export table: MXNet op name -> rule emitting ONNX nodes.

A rule is ``rule(em, attrs, x, out)``: ``em`` is the :class:`~mxcore.onnx.export.Emitter`
(shapes, dtypes, constants, opset-dependent helpers), ``attrs`` the node's attributes
as Python values (MXNet's defaults where absent), ``x`` the ONNX names of the node's
inputs and ``out`` the names its outputs must have.  Rules are inference-mode
translations: Dropout is the identity, BatchNorm uses the moving statistics.
"""
from __future__ import annotations

from typing import Callable, Dict, List

import numpy as np

from mxcore.onnx._common import OnnxError, attr_bool, registrar, unsupported

Rule = Callable[..., None]
TABLE: Dict[str, Rule] = {}

INT64_MAX = np.iinfo(np.int64).max

rule = registrar(TABLE)


def _tuple(v, n: int = 0, fill: int = 0) -> List[int]:
    """An MXNet shape-like attribute as a list (``()``/None -> ``n`` copies of fill)."""
    if v is None or v == () or v == []:
        return [fill] * n
    if isinstance(v, (int, np.integer)):
        return [int(v)] * max(n, 1)
    return [int(d) for d in v]


# the rule helpers both exporter tables use (mxcore/onnx/_common.py)
_bool, _unsupported = attr_bool, unsupported


# activations ------------------------------------------------------------------------------------
def _gelu(em, x, out, approximate="none"):
    """Gelu is an ONNX op from opset 20; before, its erf (or tanh) formula."""
    if em.opset >= 20:
        return em.emit("Gelu", [x], out, approximate=approximate)
    half, one = em.scalar(0.5), em.scalar(1.0)
    if approximate == "tanh":
        c, k = em.scalar(np.sqrt(2 / np.pi)), em.scalar(0.044715)
        cube = em.emit("Mul", [em.emit("Mul", [x, x]), x])
        inner = em.emit("Mul", [c, em.emit("Add", [x, em.emit("Mul", [k, cube])])])
        t = em.emit("Tanh", [inner])
    else:
        t = em.emit("Erf", [em.emit("Mul", [x, em.scalar(1 / np.sqrt(2))])])
    return em.emit("Mul", [em.emit("Mul", [x, half]), em.emit("Add", [t, one])], out)


def _log_sigmoid(em, x, out):
    return em.emit("Neg", [em.emit("Softplus", [em.emit("Neg", [x])])], out)


def _mish(em, x, out):
    return em.emit("Mul", [x, em.emit("Tanh", [em.emit("Softplus", [x])])], out)


ACTIVATIONS: Dict[str, Callable] = {
    "relu": lambda em, x, out: em.emit("Relu", [x], out),
    "sigmoid": lambda em, x, out: em.emit("Sigmoid", [x], out),
    "tanh": lambda em, x, out: em.emit("Tanh", [x], out),
    "softrelu": lambda em, x, out: em.emit("Softplus", [x], out),
    "softsign": lambda em, x, out: em.emit("Softsign", [x], out),
    "log_sigmoid": _log_sigmoid,
    "mish": _mish,
    "gelu": _gelu,
}


def _activation(em, act, x, out):
    fn = ACTIVATIONS.get(act)
    if fn is None:
        raise _unsupported(em, f"act_type={act!r}")
    return fn(em, x, out)


@rule("Activation")
def _act(em, a, x, out):
    _activation(em, a.get("act_type", "relu"), x[0], out[0])


@rule("relu", "sigmoid", "tanh", "softsign", "softrelu", "log_sigmoid", "mish")
def _named_act(em, a, x, out):
    _activation(em, em.node.op, x[0], out[0])


@rule("gelu")
def _gelu_op(em, a, x, out):
    _gelu(em, x[0], out[0], "tanh" if a.get("approximation") == "tanh" else "none")


@rule("LeakyReLU", "leaky_relu")
def _leaky(em, a, x, out):
    act, slope = a.get("act_type", "leaky"), float(a.get("slope", 0.25))
    if act == "leaky":
        em.emit("LeakyRelu", [x[0]], out[0], alpha=slope)
    elif act == "elu":
        em.emit("Elu", [x[0]], out[0], alpha=slope)
    elif act == "selu":
        em.emit("Selu", [x[0]], out[0], alpha=1.6732632423543772848170429916717,
                gamma=1.0507009873554804934193349852946)
    elif act == "gelu":
        _gelu(em, x[0], out[0])
    elif act == "rrelu":  # inference: the mean of the slope range
        lo, hi = float(a.get("lower_bound", 0.125)), float(a.get("upper_bound", 0.334))
        em.emit("LeakyRelu", [x[0]], out[0], alpha=(lo + hi) / 2)
    elif act == "prelu":
        nd = len(em.in_shape(0))
        gamma = em.reshape(x[1], [-1] + [1] * (nd - 2)) if nd > 2 else x[1]
        em.emit("PRelu", [x[0], gamma], out[0])
    else:
        raise _unsupported(em, f"act_type={act!r}")


@rule("hard_sigmoid")
def _hard_sigmoid(em, a, x, out):
    em.emit("HardSigmoid", [x[0]], out[0], alpha=float(a.get("alpha", 0.2)),
            beta=float(a.get("beta", 0.5)))


# softmax family -------------------------------------------------------------------------------
def _tempered(em, a, x):
    t = a.get("temperature")
    return x if t in (None, 1, 1.0) else em.emit("Div", [x, em.scalar(float(t))])


@rule("softmax")
def _softmax(em, a, x, out):
    if _bool(a.get("use_length")):
        raise _unsupported(em, "softmax with use_length=True")
    em.emit("Softmax", [_tempered(em, a, x[0])], out[0], axis=int(a.get("axis", -1)))


@rule("log_softmax")
def _log_softmax(em, a, x, out):
    em.emit("LogSoftmax", [_tempered(em, a, x[0])], out[0], axis=int(a.get("axis", -1)))


@rule("softmin")
def _softmin(em, a, x, out):
    neg = em.emit("Neg", [_tempered(em, a, x[0])])
    em.emit("Softmax", [neg], out[0], axis=int(a.get("axis", -1)))


def _softmax_flat(em, x, out):
    """Softmax over all axes but the first, as MXNet's instance softmax."""
    shape = em.in_shape(0)
    if len(shape) == 2:
        return em.emit("Softmax", [x], out, axis=1)
    flat = em.emit("Flatten", [x], axis=1)
    return em.reshape(em.emit("Softmax", [flat], axis=1), shape, out)


@rule("SoftmaxOutput", "Softmax")
def _softmax_output(em, a, x, out):
    if _bool(a.get("multi_output")):
        em.emit("Softmax", [x[0]], out[0], axis=1)
    elif _bool(a.get("preserve_shape")):
        em.emit("Softmax", [x[0]], out[0], axis=-1)
    else:
        _softmax_flat(em, x[0], out[0])


@rule("SoftmaxActivation")
def _softmax_activation(em, a, x, out):
    # MXNet's instance mode is a softmax over the last axis
    axis = 1 if a.get("mode", "instance") == "channel" else -1
    em.emit("Softmax", [x[0]], out[0], axis=axis)


@rule("LinearRegressionOutput", "MAERegressionOutput")
def _regression(em, a, x, out):
    em.emit("Identity", [x[0]], out[0])


@rule("LogisticRegressionOutput")
def _logistic(em, a, x, out):
    em.emit("Sigmoid", [x[0]], out[0])


# dense, convolution, pooling ---------------------------------------------------------------------
@rule("FullyConnected")
def _fully_connected(em, a, x, out):
    no_bias = _bool(a.get("no_bias"))
    act = a.get("act_type")
    target = out[0] if not act else None
    if _bool(a.get("flatten"), True):
        data = x[0] if len(em.in_shape(0)) == 2 else em.emit("Flatten", [x[0]], axis=1)
        y = em.emit("Gemm", [data, x[1]] + ([] if no_bias else [x[2]]), target, transB=1)
    else:
        wt = em.emit("Transpose", [x[1]], perm=[1, 0])
        y = em.emit("MatMul", [x[0], wt], None if not no_bias else target)
        if not no_bias:
            y = em.emit("Add", [y, x[2]], target)
    if act:
        _activation(em, act, y, out[0])


def _spatial(em, a, nd):
    return dict(kernel_shape=_tuple(a["kernel"]),
                strides=_tuple(a.get("stride"), nd, 1),
                dilations=_tuple(a.get("dilate"), nd, 1))


def _pads(a, nd) -> List[int]:
    pad = _tuple(a.get("pad"), nd, 0)
    return pad + pad


def _check_layout(em, a, nd):
    layout = a.get("layout")
    if layout not in (None, "None") and layout[-1] == "C" and len(layout) > 2:
        raise _unsupported(em, f"layout={layout!r} (channel-first layouts only)")


@rule("Convolution")
def _convolution(em, a, x, out):
    nd = len(_tuple(a["kernel"]))
    _check_layout(em, a, nd)
    inputs = x[:2] if _bool(a.get("no_bias")) else x[:3]
    em.emit("Conv", inputs, out[0], group=int(a.get("num_group", 1) or 1),
            pads=_pads(a, nd), **_spatial(em, a, nd))


@rule("Deconvolution")
def _deconvolution(em, a, x, out):
    nd = len(_tuple(a["kernel"]))
    _check_layout(em, a, nd)
    inputs = x[:2] if _bool(a.get("no_bias", True)) else x[:3]
    target = _tuple(a.get("target_shape"))
    extra = {}
    if target and any(target):  # MXNet derives the padding: give the output shape
        extra["output_shape"] = list(em.out_shape(0)[2:])
    else:
        extra["pads"] = _pads(a, nd)
        adj = _tuple(a.get("adj"), nd, 0)
        if any(adj):
            extra["output_padding"] = adj
    em.emit("ConvTranspose", inputs, out[0], group=int(a.get("num_group", 1) or 1),
            **_spatial(em, a, nd), **extra)


_GLOBAL_POOL = {"max": "GlobalMaxPool", "avg": "GlobalAveragePool", "lp": "GlobalLpPool"}


@rule("Pooling")
def _pooling(em, a, x, out):
    kind = a.get("pool_type", "max")
    nd = len(em.in_shape(0)) - 2
    _check_layout(em, a, nd)
    if _bool(a.get("global_pool")):
        if kind == "sum":
            em.reduce("ReduceSum", x[0], list(range(2, nd + 2)), True, out[0])
            return
        extra = {"p": int(a.get("p_value") or 2)} if kind == "lp" else {}
        em.emit(_GLOBAL_POOL[kind], [x[0]], out[0], **extra)
        return
    kernel = _tuple(a["kernel"])
    conv = a.get("pooling_convention", "valid")
    common = dict(kernel_shape=kernel, strides=_tuple(a.get("stride"), nd, 1),
                  pads=_pads(a, nd))
    if conv == "full":
        common["ceil_mode"] = 1
    elif conv == "same":
        del common["pads"]
        common["auto_pad"] = "SAME_UPPER"
    if kind == "max":
        em.emit("MaxPool", [x[0]], out[0], **common)
    elif kind in ("avg", "sum"):
        include = _bool(a.get("count_include_pad"), True)
        if kind == "sum":
            avg = em.emit("AveragePool", [x[0]], count_include_pad=1, **common)
            em.emit("Mul", [avg, em.scalar(float(np.prod(kernel)))], out[0])
        else:
            em.emit("AveragePool", [x[0]], out[0], count_include_pad=int(include), **common)
    elif kind == "lp":
        common.pop("ceil_mode", None)
        em.emit("LpPool", [x[0]], out[0], p=int(a.get("p_value") or 2), **common)
    else:
        raise _unsupported(em, f"pool_type={kind!r}")


# normalisation ------------------------------------------------------------------------------
@rule("BatchNorm", "batch_norm")
def _batch_norm(em, a, x, out):
    axis = int(a.get("axis", 1))
    if axis not in (1, 1 - len(em.in_shape(0))):
        raise _unsupported(em, f"axis={axis} (channel axis 1 only)")
    gamma = x[1]
    if _bool(a.get("fix_gamma"), True):
        gamma = em.const(np.ones(em.in_shape(1), dtype=em.in_dtype(1)), hint="gamma")
    em.emit("BatchNormalization", [x[0], gamma, x[2], x[3], x[4]], out[0],
            epsilon=float(a.get("eps", 1e-3)), momentum=float(a.get("momentum", 0.9)))
    for i, stat in ((1, x[3]), (2, x[4])):  # output_mean_var: the statistics used
        if i < len(out):
            em.emit("Identity", [stat], out[i])


@rule("InstanceNorm", "instance_norm")
def _instance_norm(em, a, x, out):
    em.emit("InstanceNormalization", x[:3], out[0], epsilon=float(a.get("eps", 1e-3)))


@rule("LayerNorm", "layer_norm")
def _layer_norm(em, a, x, out):
    nd = len(em.in_shape(0))
    axis = int(a.get("axis", -1)) % nd
    eps = float(a.get("eps", 1e-5))
    if len(out) > 1:
        raise _unsupported(em, "LayerNorm with output_mean_var=True")
    if em.opset >= 17 and axis == nd - 1:
        em.emit("LayerNormalization", x[:3], out[0], axis=-1, epsilon=eps)
        return
    mean = em.reduce("ReduceMean", x[0], [axis], True)
    d = em.emit("Sub", [x[0], mean])
    var = em.reduce("ReduceMean", em.emit("Mul", [d, d]), [axis], True)
    y = em.emit("Div", [d, em.emit("Sqrt", [em.emit("Add", [var, em.scalar(eps)])])])
    shape = [1] * nd
    shape[axis] = -1
    gamma, beta = em.reshape(x[1], shape), em.reshape(x[2], shape)
    em.emit("Add", [em.emit("Mul", [y, gamma]), beta], out[0])


@rule("LRN", "lrn")
def _lrn(em, a, x, out):
    em.emit("LRN", [x[0]], out[0], size=int(a["nsize"]), alpha=float(a.get("alpha", 1e-4)),
            beta=float(a.get("beta", 0.75)), bias=float(a.get("knorm", 2.0)))


@rule("L2Normalization")
def _l2_normalization(em, a, x, out):
    mode, eps = a.get("mode", "instance"), float(a.get("eps", 1e-10))
    nd = len(em.in_shape(0))
    axes = {"instance": list(range(1, nd)), "channel": [1],
            "spatial": list(range(2, nd))}.get(mode)
    if axes is None:
        raise _unsupported(em, f"mode={mode!r}")
    ss = em.reduce("ReduceSum", em.emit("Mul", [x[0], x[0]]), axes, True)
    norm = em.emit("Sqrt", [em.emit("Add", [ss, em.scalar(eps)])])
    em.emit("Div", [x[0], norm], out[0])


# arithmetic ------------------------------------------------------------------------------------
_BINARY = {"Add": ("broadcast_add", "broadcast_plus", "elemwise_add", "_plus", "_Plus", "add"),
           "Sub": ("broadcast_sub", "broadcast_minus", "elemwise_sub", "_minus", "_Minus",
                   "subtract"),
           "Mul": ("broadcast_mul", "elemwise_mul", "_mul", "_Mul", "multiply"),
           "Div": ("broadcast_div", "elemwise_div", "_div", "_Div", "divide", "true_divide"),
           "Pow": ("broadcast_power", "_power", "_Power", "power"),
           "Max": ("broadcast_maximum", "_maximum", "maximum"),
           "Min": ("broadcast_minimum", "_minimum", "minimum")}


def _binary(op_type):
    def emit(em, a, x, out):
        em.emit(op_type, x[:2], out[0])
    return emit


for _op_type, _names in _BINARY.items():
    rule(*_names)(_binary(_op_type))


def _mod(em, x, y, out):
    """MXNet's mod takes the divisor's sign (Python's %): x - floor(x / y) * y for
    floats; integers use ONNX's Mod directly."""
    import hal
    if not hal.is_float(hal.to_dtype(em.in_dtype(0))):
        return em.emit("Mod", [x, y], out)
    q = em.emit("Floor", [em.emit("Div", [x, y])])
    return em.emit("Sub", [x, em.emit("Mul", [q, y])], out)


@rule("broadcast_mod", "_mod", "mod", "modulo")
def _mod_rule(em, a, x, out):
    _mod(em, x[0], x[1], out[0])


_COMPARE = {"Equal": ("broadcast_equal", "_equal", "equal"),
            "Greater": ("broadcast_greater", "_greater", "greater"),
            "GreaterOrEqual": ("broadcast_greater_equal", "_greater_equal", "greater_equal"),
            "Less": ("broadcast_lesser", "_lesser", "lesser", "less"),
            "LessOrEqual": ("broadcast_lesser_equal", "_lesser_equal", "lesser_equal",
                            "less_equal"),
            "NotEqual": ("broadcast_not_equal", "_not_equal", "not_equal")}


def _compare(em, op_type, x, y, out):
    """MXNet's comparisons return 1/0 in the input's dtype."""
    if op_type == "NotEqual":
        b = em.emit("Not", [em.emit("Equal", [x, y])])
    else:
        b = em.emit(op_type, [x, y])
    return em.cast(b, em.in_dtype(0), out)


def _compare_rule(op_type):
    def emit(em, a, x, out):
        _compare(em, op_type, x[0], x[1], out[0])
    return emit


for _op_type, _names in _COMPARE.items():
    rule(*_names)(_compare_rule(op_type=_op_type))


def _logical(op_type):
    def emit(em, a, x, out):
        b = [em.cast(v, "bool") for v in x[:2]]
        em.cast(em.emit(op_type, b), em.in_dtype(0), out[0])
    return emit


rule("broadcast_logical_and", "logical_and", "_logical_and")(_logical("And"))
rule("broadcast_logical_or", "logical_or", "_logical_or")(_logical("Or"))
rule("broadcast_logical_xor", "logical_xor", "_logical_xor")(_logical("Xor"))


@rule("logical_not")
def _logical_not(em, a, x, out):
    em.cast(em.emit("Not", [em.cast(x[0], "bool")]), em.in_dtype(0), out[0])


# scalar operands: (ONNX op, whether the scalar is the left operand)
_SCALAR = {"_plus_scalar": ("Add", False), "_minus_scalar": ("Sub", False),
           "_rminus_scalar": ("Sub", True), "_mul_scalar": ("Mul", False),
           "_div_scalar": ("Div", False), "_rdiv_scalar": ("Div", True),
           "_power_scalar": ("Pow", False), "_rpower_scalar": ("Pow", True),
           "_maximum_scalar": ("Max", False), "_minimum_scalar": ("Min", False)}


def _scalar_rule(op_type, left):
    def emit(em, a, x, out):
        s = em.scalar(float(a.get("scalar", 0.0)))
        em.emit(op_type, [s, x[0]] if left else [x[0], s], out[0])
    return emit


for _name, (_op_type, _left) in _SCALAR.items():
    TABLE[_name] = _scalar_rule(_op_type, _left)


@rule("_mod_scalar")
def _mod_scalar(em, a, x, out):
    _mod(em, x[0], em.scalar(float(a.get("scalar", 0.0))), out[0])


@rule("_rmod_scalar")
def _rmod_scalar(em, a, x, out):
    _mod(em, em.scalar(float(a.get("scalar", 0.0))), x[0], out[0])


_SCALAR_COMPARE = {"_equal_scalar": "Equal", "_not_equal_scalar": "NotEqual",
                   "_greater_scalar": "Greater", "_greater_equal_scalar": "GreaterOrEqual",
                   "_lesser_scalar": "Less", "_lesser_equal_scalar": "LessOrEqual"}


def _scalar_compare(op_type):
    def emit(em, a, x, out):
        _compare(em, op_type, x[0], em.scalar(float(a.get("scalar", 0.0))), out[0])
    return emit


for _name, _op_type in _SCALAR_COMPARE.items():
    TABLE[_name] = _scalar_compare(_op_type)

_UNARY = {"exp": "Exp", "log": "Log", "sqrt": "Sqrt", "abs": "Abs", "negative": "Neg",
          "floor": "Floor", "ceil": "Ceil", "rint": "Round", "sign": "Sign",
          "reciprocal": "Reciprocal", "erf": "Erf", "sin": "Sin", "cos": "Cos", "tan": "Tan",
          "arcsin": "Asin", "arccos": "Acos", "arctan": "Atan", "sinh": "Sinh",
          "cosh": "Cosh", "arcsinh": "Asinh", "arccosh": "Acosh", "arctanh": "Atanh",
          "_copy": "Identity", "identity": "Identity", "copy": "Identity",
          "BlockGrad": "Identity", "stop_gradient": "Identity", "make_loss": "Identity",
          "MakeLoss": "Identity", "Dropout": "Identity", "dropout": "Identity",
          "Flatten": None, "flatten": None}


def _unary(op_type):
    def emit(em, a, x, out):
        em.emit(op_type, [x[0]], out[0])
    return emit


for _name, _op_type in _UNARY.items():
    if _op_type is not None:
        TABLE[_name] = _unary(_op_type)


@rule("Flatten", "flatten")
def _flatten(em, a, x, out):
    em.emit("Flatten", [x[0]], out[0], axis=1)


@rule("square")
def _square(em, a, x, out):
    em.emit("Mul", [x[0], x[0]], out[0])


@rule("rsqrt")
def _rsqrt(em, a, x, out):
    em.emit("Reciprocal", [em.emit("Sqrt", [x[0]])], out[0])


@rule("cbrt")
def _cbrt(em, a, x, out):
    mag = em.emit("Pow", [em.emit("Abs", [x[0]]), em.scalar(1 / 3)])
    em.emit("Mul", [em.emit("Sign", [x[0]]), mag], out[0])


@rule("round")
def _round(em, a, x, out):
    """MXNet rounds halves away from zero; ONNX's Round to even."""
    mag = em.emit("Floor", [em.emit("Add", [em.emit("Abs", [x[0]]), em.scalar(0.5)])])
    em.emit("Mul", [em.emit("Sign", [x[0]]), mag], out[0])


@rule("trunc", "fix")
def _trunc(em, a, x, out):
    em.emit("Mul", [em.emit("Sign", [x[0]]), em.emit("Floor", [em.emit("Abs", [x[0]])])],
            out[0])


def _log_base(base):
    def emit(em, a, x, out):
        em.emit("Div", [em.emit("Log", [x[0]]), em.scalar(np.log(base))], out[0])
    return emit


rule("log2")(_log_base(2.0))
rule("log10")(_log_base(10.0))


@rule("log1p")
def _log1p(em, a, x, out):
    em.emit("Log", [em.emit("Add", [x[0], em.scalar(1.0)])], out[0])


@rule("expm1")
def _expm1(em, a, x, out):
    em.emit("Sub", [em.emit("Exp", [x[0]]), em.scalar(1.0)], out[0])


@rule("clip")
def _clip(em, a, x, out):
    em.emit("Clip", [x[0], em.scalar(float(a["a_min"])), em.scalar(float(a["a_max"]))],
            out[0])


@rule("add_n", "ElementWiseSum", "_grad_add")
def _add_n(em, a, x, out):
    em.emit("Sum", list(x), out[0])


@rule("Cast", "cast", "amp_cast")
def _cast(em, a, x, out):
    em.cast(x[0], a["dtype"], out[0])


@rule("amp_multicast")
def _amp_multicast(em, a, x, out):
    from mxcore.ndarray import _AMP_FLOATS, _amp_multicast_dtype
    dtypes = [em.in_dtype(i) for i in range(len(x))]
    target = _amp_multicast_dtype(dtypes, _bool(a.get("cast_narrow")))
    for xi, dtype, o in zip(x, dtypes, out):
        em.cast(xi, target if dtype in _AMP_FLOATS else dtype, o)


@rule("where")
def _where(em, a, x, out):
    em.emit("Where", [em.cast(x[0], "bool"), x[1], x[2]], out[0])


def _filled(value):
    def emit(em, a, x, out):
        from onnx import helper
        from mxcore.onnx._common import tensor_type
        fill = helper.make_tensor("value", tensor_type(em.in_dtype(0)), [1], [value])
        em.emit("ConstantOfShape", [em.emit("Shape", [x[0]])], out[0], value=fill)
    return emit


rule("zeros_like")(_filled(0))
rule("ones_like")(_filled(1))


def _created(value_of):
    def emit(em, a, x, out):
        import hal
        shape = tuple(int(d) for d in a.get("shape", ()))
        dtype = hal.to_dtype(a.get("dtype") or "float32")
        em.emit("Identity", [em.const(np.full(shape, value_of(a), dtype=dtype))], out[0])
    return emit


rule("_zeros")(_created(lambda a: 0))
rule("_ones")(_created(lambda a: 1))
rule("_full")(_created(lambda a: float(a.get("value", 0.0))))


# reductions ----------------------------------------------------------------------------------
def _axes(em, a, key="axis"):
    """Reduction axes (None: all), after MXNet's ``exclude``."""
    axis = a.get(key)
    nd = len(em.in_shape(0))
    axes = None if axis is None or axis == () else \
        sorted({int(v) % nd for v in ((axis,) if isinstance(axis, int) else axis)})
    if _bool(a.get("exclude")):
        axes = [d for d in range(nd) if d not in (axes or [])]
    return axes


def _reduce(op_type):
    def emit(em, a, x, out):
        em.reduce(op_type, x[0], _axes(em, a), _bool(a.get("keepdims")), out[0])
    return emit


rule("sum", "sum_axis")(_reduce("ReduceSum"))
rule("mean")(_reduce("ReduceMean"))
rule("max", "max_axis")(_reduce("ReduceMax"))
rule("min", "min_axis")(_reduce("ReduceMin"))
rule("prod")(_reduce("ReduceProd"))


@rule("norm")
def _norm(em, a, x, out):
    ord_ = int(a.get("ord", 2))
    if ord_ not in (1, 2):
        raise _unsupported(em, f"norm ord={ord_}")
    em.reduce("ReduceL2" if ord_ == 2 else "ReduceL1", x[0], _axes(em, a),
              _bool(a.get("keepdims")), out[0])


def _arg(op_type):
    def emit(em, a, x, out):
        """MXNet returns the indices as floats (the input's dtype)."""
        axis, keep = a.get("axis"), _bool(a.get("keepdims"))
        data = x[0]
        if axis is None:
            data, axis = em.reshape(data, [-1]), 0
        idx = em.emit(op_type, [data], axis=int(axis), keepdims=int(keep))
        em.cast(idx, em.in_dtype(0), out[0])
    return emit


rule("argmax")(_arg("ArgMax"))
rule("argmin")(_arg("ArgMin"))


# products ---------------------------------------------------------------------------------------
@rule("dot")
def _dot(em, a, x, out):
    sa, sb = em.in_shape(0), em.in_shape(1)
    ta, tb = _bool(a.get("transpose_a")), _bool(a.get("transpose_b"))
    lhs = em.emit("Transpose", [x[0]]) if ta and len(sa) > 1 else x[0]
    rhs = em.emit("Transpose", [x[1]]) if tb and len(sb) > 1 else x[1]
    sa = sa[::-1] if ta else sa
    sb = sb[::-1] if tb else sb
    if len(sa) <= 2 and len(sb) <= 2:
        em.emit("MatMul", [lhs, rhs], out[0])
        return
    # N-d dot contracts a's last axis with b's first: one matrix product
    k = sa[-1]
    prod = em.emit("MatMul", [em.reshape(lhs, [-1, k]), em.reshape(rhs, [k, -1])])
    em.reshape(prod, list(em.out_shape(0)), out[0])


@rule("batch_dot")
def _batch_dot(em, a, x, out):
    def maybe_t(name, flag, nd):
        if not flag:
            return name
        perm = list(range(nd - 2)) + [nd - 1, nd - 2]
        return em.emit("Transpose", [name], perm=perm)
    lhs = maybe_t(x[0], _bool(a.get("transpose_a")), len(em.in_shape(0)))
    rhs = maybe_t(x[1], _bool(a.get("transpose_b")), len(em.in_shape(1)))
    em.emit("MatMul", [lhs, rhs], out[0])


@rule("Embedding", "embedding")
def _embedding(em, a, x, out):
    em.emit("Gather", [x[1], em.cast(x[0], "int64")], out[0], axis=0)


@rule("take")
def _take(em, a, x, out):
    axis = int(a.get("axis", 0))
    idx = em.cast(x[1], "int64")
    if a.get("mode", "clip") == "clip":
        n = em.in_shape(0)[axis]
        idx = em.emit("Clip", [idx, em.const(np.int64(0)), em.const(np.int64(n - 1))])
    else:  # wrap
        n = em.const(np.int64(em.in_shape(0)[axis]))
        idx = em.emit("Mod", [em.emit("Add", [em.emit("Mod", [idx, n]), n]), n])
    em.emit("Gather", [x[0], idx], out[0], axis=axis)


# shapes -----------------------------------------------------------------------------------------
@rule("Reshape", "reshape")
def _reshape(em, a, x, out):
    spec = _tuple(a.get("shape"))
    if not _bool(a.get("reverse")) and spec and all(d >= -1 for d in spec) \
            and spec.count(-1) <= 1:
        em.reshape(x[0], spec, out[0])  # 0 and -1 mean the same in ONNX: stays dynamic
    else:
        em.reshape(x[0], list(em.out_shape(0)), out[0])


@rule("reshape_like", "broadcast_like", "broadcast_to", "broadcast_axis", "broadcast_axes")
def _static_shape(em, a, x, out):
    target = list(em.out_shape(0))
    if em.node.op == "reshape_like":
        em.reshape(x[0], target, out[0])
    else:
        em.emit("Expand", [x[0], em.ints(target, "shape")], out[0])


@rule("transpose")
def _transpose(em, a, x, out):
    axes = _tuple(a.get("axes"))
    em.emit("Transpose", [x[0]], out[0], perm=axes or None)


@rule("SwapAxis", "swapaxes")
def _swapaxes(em, a, x, out):
    perm = list(range(len(em.in_shape(0))))
    d1, d2 = int(a.get("dim1", 0)), int(a.get("dim2", 0))
    perm[d1], perm[d2] = perm[d2], perm[d1]
    em.emit("Transpose", [x[0]], out[0], perm=perm)


@rule("Concat", "concat", "concatenate")
def _concat(em, a, x, out):
    em.emit("Concat", list(x), out[0], axis=int(a.get("dim", a.get("axis", 1))))


@rule("stack")
def _stack(em, a, x, out):
    axis = int(a.get("axis", 0))
    nd = len(em.in_shape(0)) + 1
    parts = [em.unsqueeze(v, [axis % nd]) for v in x]
    em.emit("Concat", parts, out[0], axis=axis)


@rule("split", "SliceChannel")
def _split(em, a, x, out):
    n, axis = int(a["num_outputs"]), int(a.get("axis", 1))
    size = em.in_shape(0)[axis]
    sizes = em.ints([size // n] * n, "split")
    if not _bool(a.get("squeeze_axis")):
        em.emit("Split", [x[0], sizes], list(out), axis=axis)
        return
    parts = em.emit("Split", [x[0], sizes], nout=n, axis=axis)
    parts = parts if isinstance(parts, list) else [parts]
    for part, name in zip(parts, out):
        em.squeeze(part, [axis], name)


@rule("expand_dims")
def _expand_dims(em, a, x, out):
    em.unsqueeze(x[0], [int(a["axis"])], out[0])


@rule("squeeze")
def _squeeze(em, a, x, out):
    axis = a.get("axis")
    if axis is None or axis == ():
        em.emit("Squeeze", [x[0]], out[0])
    else:
        em.squeeze(x[0], [axis] if isinstance(axis, int) else list(axis), out[0])


@rule("slice_axis")
def _slice_axis(em, a, x, out):
    end = a.get("end")
    em.emit("Slice", [x[0], em.ints([int(a["begin"])]),
                      em.ints([INT64_MAX if end is None else int(end)]),
                      em.ints([int(a["axis"])])], out[0])


@rule("slice")
def _slice(em, a, x, out):
    begin, end = list(a["begin"]), list(a["end"])
    step = list(a.get("step") or [None] * len(begin))
    starts, ends, steps = [], [], []
    for b, e, s in zip(begin, end, step + [None] * (len(begin) - len(step))):
        s = 1 if s is None else int(s)
        starts.append((0 if s > 0 else -1) if b is None else int(b))
        ends.append((INT64_MAX if s > 0 else -INT64_MAX) if e is None else int(e))
        steps.append(s)
    axes = list(range(len(starts)))
    em.emit("Slice", [x[0], em.ints(starts), em.ints(ends), em.ints(axes), em.ints(steps)],
            out[0])


@rule("tile")
def _tile(em, a, x, out):
    reps = _tuple(a["reps"])
    nd = len(em.in_shape(0))
    data = x[0]
    if len(reps) > nd:  # numpy's rule: prepend axes to the data
        data = em.reshape(data, [1] * (len(reps) - nd) + list(em.in_shape(0)))
    reps = [1] * (max(nd - len(reps), 0)) + reps
    em.emit("Tile", [data, em.ints(reps, "reps")], out[0])


@rule("reverse", "flip")
def _reverse(em, a, x, out):
    axes = _tuple(a["axis"])
    n = len(axes)
    em.emit("Slice", [x[0], em.ints([-1] * n), em.ints([-INT64_MAX] * n), em.ints(axes),
                      em.ints([-1] * n)], out[0])


_PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect"}


@rule("Pad", "pad")
def _pad(em, a, x, out):
    width = _tuple(a["pad_width"])
    mode = _PAD_MODES.get(a.get("mode", "constant"))
    if mode is None:
        raise _unsupported(em, f"mode={a.get('mode')!r}")
    pads = width[0::2] + width[1::2]
    inputs = [x[0], em.ints(pads, "pads")]
    if mode == "constant":
        inputs.append(em.scalar(float(a.get("constant_value", 0.0))))
    em.emit("Pad", inputs, out[0], mode=mode)


@rule("UpSampling", "upsampling")
def _upsampling(em, a, x, out):
    if a.get("sample_type", "nearest") != "nearest":
        raise _unsupported(em, f"sample_type={a.get('sample_type')!r}")
    if len(x) > 1:
        raise _unsupported(em, "UpSampling of several inputs")
    s = float(a["scale"])
    nd = len(em.in_shape(0))
    scales = em.const(np.array([1.0, 1.0] + [s] * (nd - 2), dtype=np.float32), hint="scales")
    em.emit("Resize", [x[0], "", scales], out[0], mode="nearest",
            coordinate_transformation_mode="asymmetric", nearest_mode="floor")


@rule("depth_to_space")
def _depth_to_space(em, a, x, out):
    em.emit("DepthToSpace", [x[0]], out[0], blocksize=int(a["block_size"]), mode="DCR")


@rule("space_to_depth")
def _space_to_depth(em, a, x, out):
    em.emit("SpaceToDepth", [x[0]], out[0], blocksize=int(a["block_size"]))


@rule("shape_array")
def _shape_array(em, a, x, out):
    em.emit("Shape", [x[0]], out[0])


@rule("topk")
def _topk(em, a, x, out):
    axis, k = int(a.get("axis", -1)), int(a.get("k", 1))
    ret = a.get("ret_typ", "indices")
    largest = 0 if _bool(a.get("is_ascend")) else 1
    vals, idx = em.emit("TopK", [x[0], em.ints([k], "k")], nout=2, axis=axis, largest=largest)
    if ret not in ("value", "indices", "both"):
        raise _unsupported(em, f"ret_typ={ret!r}")
    # MXNet's indices are floats by default (its dtype attribute)
    named = [vals] if ret == "value" else \
        ([] if ret == "indices" else [vals]) + [em.cast(idx, a.get("dtype") or "float32")]
    for src, name in zip(named, out):
        em.emit("Identity", [src], name)


def supported_ops() -> List[str]:
    return sorted(TABLE)

from mxcore.onnx.export_quantized import RULES as _QUANTIZED  # noqa: E402
TABLE.update(_QUANTIZED)  # the quantized graphs' ops (mx.contrib.quantization)
