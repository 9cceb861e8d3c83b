"""From a recorded core op to MXNet graph nodes: the inverse of the op wrappers.

The autograd tape records core ops (``fully_connected``, ``add_scalar``...) with their
normalised attributes; a graph names MXNet's ops (``FullyConnected``, ``_plus_scalar``)
with MXNet's attributes.  ``TABLE`` maps each core op to a rule that emits the
equivalent MXNet node(s) through a :class:`Builder`; a rule sees the input shapes,
because some MXNet attributes are implied by them in core (``num_hidden`` is the
weight's first dimension).  Most rules are one node with renamed attributes; a few
emit two (``fully_connected`` with a fused activation is ``FullyConnected`` then
``Activation``; integer indexing is ``slice`` then ``Reshape``).  A hybridized block's call
(one tape node) is MXNet's ``_CachedOp`` node.  Core ops without an
MXNet equivalent (fused backward ops, ``take_along_axis``...) have no row:
:func:`convert` names them in a :class:`NoMXNetEquivalentError`.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mxcore.base import MXCoreError
from mxcore.graph import opinfo
from mxcore.graph.ir import Node, Output

Shape = Tuple[int, ...]


class NoMXNetEquivalentError(MXCoreError):
    """A recorded core op that no MXNet graph op expresses."""


class Builder:
    """Makes op nodes named ``<prefix><k>`` (MXNet's ``node_0``, ``node_1``...)."""

    def __init__(self, prefix: str = "node_"):
        self.prefix = prefix
        self.count = 0

    def node(self, op: str, inputs: Sequence[Output], attrs: Dict[str, Any],
             nout: Optional[int] = None) -> Node:
        attrs = {k: v for k, v in attrs.items() if v is not None}
        name = f"{self.prefix}{self.count}"
        self.count += 1
        n = opinfo.num_outputs(op, attrs) if nout is None else nout
        return Node(op, name, attrs, inputs, n)


#: a rule: (builder, core attrs, input outputs, input shapes) -> the outputs, one per
#: output of the core op
Rule = Callable[[Builder, Dict[str, Any], List[Output], List[Shape]], List[Output]]


def _outputs(node: Node) -> List[Output]:
    return [(node, i) for i in range(node.nout)]


def _rename(op: str, *names: str, **fixed: Any) -> Rule:
    """One node of ``op``; ``names`` are core attributes kept (``core:mxnet`` renames),
    ``fixed`` are attributes MXNet needs that core implies."""
    pairs = [tuple(n.split(":")) if ":" in n else (n, n) for n in names]

    def rule(b, attrs, inputs, shapes):
        kept = {mx: attrs.get(core) for core, mx in pairs}
        return _outputs(b.node(op, inputs, {**kept, **fixed}))
    rule.target = op
    return rule


def _variadic(op: str, *names: str) -> Rule:
    """A node of an op taking any number of inputs: MXNet records ``num_args``."""
    base = _rename(op, *names)

    def rule(b, attrs, inputs, shapes):
        outs = base(b, attrs, inputs, shapes)
        outs[0][0].attrs["num_args"] = len(inputs)
        return outs
    rule.target = op
    return rule


def _fully_connected(b, attrs, inputs, shapes):
    node = b.node("FullyConnected", inputs, {
        "num_hidden": int(shapes[1][0]), "no_bias": bool(attrs.get("no_bias", False)),
        "flatten": bool(attrs.get("flatten", True))})
    act = attrs.get("act_type")
    if act is None:  # mxcore's fused activation is MXNet's separate Activation node
        return _outputs(node)
    return _outputs(b.node("Activation", [(node, 0)], {"act_type": act}))


_fully_connected.target = "FullyConnected"


def _key_parts(key, shape: Shape):
    """(begin, end, step) per axis of a basic index and the result's shape."""
    key = key if isinstance(key, tuple) else (key,)
    if any(not isinstance(k, (int, np.integer, slice, type(None), type(Ellipsis)))
           for k in key):
        raise NoMXNetEquivalentError(
            f"get_symbol: indexing with arrays ({key!r}) has no MXNet graph op here; "
            "use take/pick/gather_nd, which graphs express")
    out_shape = np.broadcast_to(np.zeros((), np.int8), shape)[key].shape
    axes = [k for k in key if k is not None]
    if any(k is Ellipsis for k in axes):
        at = next(i for i, k in enumerate(axes) if k is Ellipsis)
        fill = [slice(None)] * (len(shape) - len(axes) + 1)
        axes = axes[:at] + fill + axes[at + 1:]
    axes += [slice(None)] * (len(shape) - len(axes))
    begin, end, step = [], [], []
    for k in axes:
        if isinstance(k, slice):
            begin.append(k.start)
            end.append(k.stop)
            step.append(k.step)
        else:
            k = int(k)
            begin.append(k)
            end.append(k + 1 if k != -1 else None)
            step.append(None)
    return tuple(begin), tuple(end), tuple(step), tuple(out_shape)


def _getitem(b, attrs, inputs, shapes):
    begin, end, step, out_shape = _key_parts(attrs["key"], tuple(shapes[0]))
    node = b.node("slice", inputs, {"begin": begin, "end": end,
                                    "step": step if any(s is not None for s in step)
                                    else None})
    sliced = np.broadcast_to(np.zeros((), np.int8), shapes[0])[
        tuple(slice(s, e, t) for s, e, t in zip(begin, end, step))].shape
    if tuple(sliced) == out_shape:
        return _outputs(node)
    return _outputs(b.node("Reshape", [(node, 0)], {"shape": out_shape}))


_getitem.target = "slice"
_getitem.several = True

def _softmax_ce(b, attrs, inputs, shapes):
    """mxcore's fused loss is Gluon's ``-pick(log_softmax(x), label)`` in MXNet."""
    axis = attrs.get("axis", -1)
    logp = b.node("log_softmax", inputs[:1], {"axis": axis})
    picked = b.node("pick", [(logp, 0), inputs[1]], {"axis": axis})
    return _outputs(b.node("negative", [(picked, 0)], {}))


_softmax_ce.target = "pick"
_softmax_ce.several = True  # not one MXNet op (mxnet_name)


def _cumsum(b, attrs, inputs, shapes):
    if attrs.get("reverse"):
        raise NoMXNetEquivalentError("core operator 'cumsum' with reverse=True has no "
                                     "MXNet graph equivalent")
    return _outputs(b.node("cumsum", inputs, {"axis": attrs.get("axis")}))


_cumsum.target = "cumsum"

_REGRESSION = {"linear": "LinearRegressionOutput", "logistic": "LogisticRegressionOutput",
               "mae": "MAERegressionOutput"}


def _regression(b, attrs, inputs, shapes):
    op = _REGRESSION[attrs.get("kind", "linear")]
    return _outputs(b.node(op, inputs, {"grad_scale": attrs.get("grad_scale")}))


_regression.target = "LinearRegressionOutput"


def _dropout(b, attrs, inputs, shapes):
    """MXNet's Dropout node (``mode='always'`` when the dropout runs in inference)."""
    mode = "always" if attrs.get("always") else None
    return _outputs(b.node("Dropout", inputs, {"p": attrs.get("p"), "axes": attrs.get("axes"),
                                               "mode": mode}))


_dropout.target = "Dropout"


def _sequence(op: str, *names: str) -> Rule:
    """Core's sequence ops always take the lengths (full lengths when none were given)."""
    return _rename(op, "axis", *names, use_sequence_length=True)


def _rnn(b, attrs, inputs, shapes):
    keep = ("mode", "state_size", "num_layers", "bidirectional", "p", "projection_size",
            "lstm_state_clip_min", "lstm_state_clip_max", "lstm_state_clip_nan",
            "use_sequence_length")
    mx_attrs = {k: attrs.get(k) for k in keep}
    if attrs.get("_nout", 1) > 1:  # core returns the states when asked: state_outputs
        mx_attrs["state_outputs"] = True
    return _outputs(b.node("RNN", inputs, mx_attrs))


_rnn.target = "RNN"


def _unary(*names: str) -> Dict[str, Rule]:
    return {n: _rename(n) for n in names}


def _internal(names: Sequence[str], *attrs: str) -> Dict[str, Rule]:
    """Core ``linalg_gemm`` -> MXNet ``_linalg_gemm`` (MXNet's internal names)."""
    return {n: _rename("_" + n, *attrs) for n in names}


_BINARY = {"add": "broadcast_add", "subtract": "broadcast_sub", "multiply": "broadcast_mul",
           "divide": "broadcast_div", "mod": "broadcast_mod", "power": "broadcast_power",
           "maximum": "broadcast_maximum", "minimum": "broadcast_minimum",
           "hypot": "broadcast_hypot", "logical_and": "broadcast_logical_and",
           "logical_or": "broadcast_logical_or", "logical_xor": "broadcast_logical_xor"}
_SCALAR = {"add_scalar": "_plus_scalar", "sub_scalar": "_minus_scalar",
           "rsub_scalar": "_rminus_scalar", "mul_scalar": "_mul_scalar",
           "div_scalar": "_div_scalar", "rdiv_scalar": "_rdiv_scalar",
           "mod_scalar": "_mod_scalar", "rmod_scalar": "_rmod_scalar",
           "pow_scalar": "_power_scalar", "rpow_scalar": "_rpower_scalar",
           "maximum_scalar": "_maximum_scalar", "minimum_scalar": "_minimum_scalar",
           "hypot_scalar": "_hypot_scalar", "logical_and_scalar": "_logical_and_scalar",
           "logical_or_scalar": "_logical_or_scalar",
           "logical_xor_scalar": "_logical_xor_scalar", "smooth_l1": "smooth_l1"}
_REDUCE = ("sum", "mean", "prod", "max", "min", "nansum", "nanprod")
_LINALG = ("linalg_det", "linalg_extractdiag", "linalg_extracttrian", "linalg_gemm",
           "linalg_gemm2", "linalg_inverse", "linalg_makediag", "linalg_maketrian",
           "linalg_potrf", "linalg_potri", "linalg_slogdet", "linalg_sumlogdiag",
           "linalg_syrk", "linalg_trmm", "linalg_trsm")
_LINALG_ATTRS = ("alpha", "beta", "axis", "transpose_a", "transpose_b", "transpose",
                 "lower", "offset", "rightside")
_PDF = ("random_pdf_dirichlet", "random_pdf_exponential", "random_pdf_gamma",
        "random_pdf_generalized_negative_binomial", "random_pdf_negative_binomial",
        "random_pdf_normal", "random_pdf_poisson", "random_pdf_uniform")
_SAMPLE = ("sample_exponential", "sample_gamma", "sample_generalized_negative_binomial",
           "sample_negative_binomial", "sample_normal", "sample_poisson", "sample_uniform")

TABLE: Dict[str, Rule] = {
    **_unary("abs", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctanh", "cbrt",
             "ceil", "cos", "cosh", "degrees", "erf", "erfinv", "exp", "expm1", "fix",
             "floor", "gamma", "gammaln", "log", "log10", "log1p", "log2", "negative",
             "radians", "rcbrt", "reciprocal", "relu", "rint", "round", "rsqrt", "sigmoid",
             "sign", "sin", "sinh", "softsign", "sqrt", "square", "tan", "tanh", "trunc",
             "logical_not", "where", "gather_nd", "make_loss"),
    **{core: _rename(mx) for core, mx in _BINARY.items()},
    **{core: _rename(mx, "scalar") for core, mx in _SCALAR.items()},
    **{n: _rename(n, "axis", "keepdims") for n in _REDUCE},
    **_internal(_LINALG, *_LINALG_ATTRS),
    **_internal(_PDF, "is_log"),
    **_internal(_SAMPLE, "shape", "dtype"),
    "sample_multinomial": _rename("_sample_multinomial", "shape", "get_prob", "dtype"),
    "copy": _rename("_copy"),
    "to_device": _rename("_copy"),
    "cast": _rename("Cast", "dtype"),
    "softrelu": _rename("Activation", act_type="softrelu"),
    "gelu": _rename("LeakyReLU", act_type="gelu"),
    "leaky_relu": _rename("LeakyReLU", "slope", act_type="leaky"),
    "hard_sigmoid": _rename("hard_sigmoid", "alpha", "beta"),
    "clip": _rename("clip", "a_min", "a_max"),
    "norm": _rename("norm", "ord", "axis", "keepdims"),
    "softmax": _rename("softmax", "axis", "temperature"),
    "log_softmax": _rename("log_softmax", "axis", "temperature"),
    "softmin": _rename("softmin", "axis", "temperature"),
    "reshape": _rename("Reshape", "shape"),
    "transpose": _rename("transpose", "axes"),
    "broadcast_to": _rename("broadcast_to", "shape"),
    "flip": _rename("reverse", "axis"),
    "tile": _rename("tile", "reps"),
    "repeat": _rename("repeat", "repeats", "axis"),
    "pad": _rename("Pad", "mode", "pad_width", "constant_value"),
    "split": _rename("SliceChannel", "num_outputs", "axis", "squeeze_axis"),
    "concat": _variadic("Concat", "dim"),
    "stack": _variadic("stack", "axis"),
    "add_n": _variadic("add_n"),
    "take": _rename("take", "axis", "mode"),
    "pick": _rename("pick", "axis", "keepdims", "mode"),
    "scatter_nd": _rename("scatter_nd", "shape"),
    "diag": _rename("diag", "k", "axis1", "axis2"),
    "sort": _rename("sort", "axis", "is_ascend"),
    "topk": _rename("topk", "axis", "k", "ret_typ", "is_ascend", "dtype"),
    "moments": _rename("moments", "axes", "keepdims"),
    "dot": _rename("dot", "transpose_a", "transpose_b"),
    "batch_dot": _rename("batch_dot", "transpose_a", "transpose_b"),
    "upsampling_nearest": _rename("UpSampling", "scale", sample_type="nearest", num_args=1),
    "getitem": _getitem,
    "fully_connected": _fully_connected,
    "convolution": _rename("Convolution", "kernel", "stride", "dilate", "pad", "num_filter",
                           "num_group", "no_bias"),
    "deconvolution": _rename("Deconvolution", "kernel", "stride", "dilate", "pad", "adj",
                             "num_filter", "num_group", "no_bias"),
    "pooling": _rename("Pooling", "kernel", "stride", "pad", "pool_type",
                       "pooling_convention", "count_include_pad", "p_value"),
    "batch_norm": _rename("BatchNorm", "eps", "momentum", "fix_gamma", "use_global_stats",
                          "axis"),
    "layer_norm": _rename("LayerNorm", "axis", "eps"),
    "group_norm": _rename("GroupNorm", "num_groups", "eps"),
    "instance_norm": _rename("InstanceNorm", "eps"),
    "l2_normalization": _rename("L2Normalization", "eps", "mode"),
    "lrn": _rename("LRN", "alpha", "beta", "knorm", "nsize"),
    "embedding": _rename("Embedding", "input_dim", "output_dim"),
    "dropout": _dropout,
    "sequence_last": _sequence("SequenceLast"),
    "sequence_mask": _sequence("SequenceMask", "value"),
    "sequence_reverse": _sequence("SequenceReverse"),
    "softmax_output": _rename("SoftmaxOutput", "grad_scale", "ignore_label", "multi_output",
                              "use_ignore", "normalization", "smooth_alpha"),
    "regression_output": _regression,
    "rnn": _rnn,
    "softmax_ce_loss": _softmax_ce,
    "cumsum": _cumsum,
}


def _custom(b, attrs, inputs, shapes):
    """MXNet's Custom node: ``op_type`` and the prop's params as attributes."""
    return _outputs(b.node("Custom", inputs, {"op_type": attrs["op_type"],
                                              **dict(attrs.get("params", ()))}))


_custom.target = "Custom"
TABLE["Custom"] = _custom
# comparisons are not differentiable (never on the tape) but convert all the same
TABLE.update({core: _rename(mx) for core, mx in {
    "equal": "broadcast_equal", "not_equal": "broadcast_not_equal",
    "greater": "broadcast_greater", "greater_equal": "broadcast_greater_equal",
    "less": "broadcast_lesser", "less_equal": "broadcast_lesser_equal"}.items()})
# the quantization ops (mxcore/ops/quantization.py): MXNet's names, the same attributes
_CALIB = ("out_type", "min_calib_range", "max_calib_range")
TABLE.update({
    "quantize_v2": _rename("_contrib_quantize_v2", *_CALIB),
    "quantize": _rename("_contrib_quantize", "out_type"),
    "dequantize": _rename("_contrib_dequantize", "out_type"),
    "requantize": _rename("_contrib_requantize", *_CALIB),
    "quantized_fully_connected": _rename("_contrib_quantized_fully_connected", "num_hidden",
                                         "no_bias", "flatten"),
    "quantized_conv": _rename("_contrib_quantized_conv", "kernel", "stride", "dilate", "pad",
                              "num_filter", "num_group", "no_bias"),
    "quantized_flatten": _rename("_contrib_quantized_flatten"),
    "quantized_pooling": _rename("_contrib_quantized_pooling", "kernel", "stride", "pad",
                                 "pool_type", "pooling_convention", "count_include_pad"),
    "quantized_act": _rename("_contrib_quantized_act", "act_type"),
})


def convert(b: Builder, op_name: str, attrs: Dict[str, Any], inputs: List[Output],
            shapes: List[Shape], nout: int = 1) -> List[Output]:
    """The MXNet node outputs equivalent to one call of core op ``op_name``."""
    rule = TABLE.get(op_name)
    if rule is None and op_name.startswith("hybridized["):
        # a hybridized block's call is one tape node: MXNet's _CachedOp node (which
        # graphs record but do not run)
        return _outputs(b.node("_CachedOp", inputs, {}, nout))
    if rule is None:
        raise NoMXNetEquivalentError(
            f"core operator {op_name!r} has no MXNet graph equivalent, so the recorded "
            "computation cannot be written as a Symbol")
    if op_name == "rnn":
        attrs = dict(attrs, _nout=nout)
    outs = rule(b, attrs, inputs, shapes)
    if len(outs) < nout:
        raise NoMXNetEquivalentError(
            f"core operator {op_name!r} has {nout} outputs but its MXNet form "
            f"{outs[0][0].op!r} gives {len(outs)} with these attributes")
    return outs[:nout]


def mxnet_name(core: str) -> str:
    """The MXNet operator a core op is (``add_scalar`` is ``_plus_scalar``): its rule's
    target, unless the rule writes it as several MXNet ops (``softmax_ce_loss`` is
    ``log_softmax``, ``pick`` and ``negative``); else the core name."""
    rule = TABLE.get(core)
    if rule is None or getattr(rule, "several", False):
        return core
    return rule.target
