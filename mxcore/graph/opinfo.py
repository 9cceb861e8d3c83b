"""What the graph needs to know about an MXNet op beyond its function in ``mx.nd``.

One row per op that has learnable inputs or more than one output (a table, not
branches): the names of its array inputs (a symbol call that leaves one out gets a
variable ``<node name>_<input>``, as MXNet does), which inputs are auxiliary states
(updated by the op, not by the optimizer), which are absent for given attributes
(``no_bias``), how the shapes of parameters follow from the data's shape (so
``simple_bind(data=shape)`` can allocate every argument), and how many outputs it has.
Ops without a row take their inputs as given and have one output.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

Shape = Tuple[int, ...]


class OpInfo(NamedTuple):
    inputs: Tuple[str, ...]
    aux: Tuple[str, ...] = ()
    #: attrs -> names of inputs the op does not take with these attributes
    absent: Optional[Callable[[Dict[str, Any]], Sequence[str]]] = None
    #: (attrs, data shape) -> {input name: shape} for the inputs the data decides
    params: Optional[Callable[[Dict[str, Any], Shape], Dict[str, Shape]]] = None
    #: attrs -> number of outputs
    nout: Optional[Callable[[Dict[str, Any]], int]] = None
    #: input name -> initializer (its ``dumps()`` form) for auto-created variables
    init: Optional[Dict[str, str]] = None
    #: the outputs' names (``<node>_<name>``), when the op names them
    outputs: Optional[Tuple[str, ...]] = None
    #: input name -> the dtype an untyped variable there takes (else the data's dtype)
    input_dtypes: Optional[Dict[str, str]] = None


def _tuple(v) -> Tuple[int, ...]:
    if v is None:
        return ()
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v),)


def _flag(value) -> bool:
    """A boolean attribute as MXNet writes or takes it (True, "True", "true", 1, "1")."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _no_bias(a):
    return ("bias",) if _flag(a.get("no_bias", False)) else ()


def _deconv_no_bias(a):  # Deconvolution has no bias unless asked (MXNet's default)
    return ("bias",) if _flag(a.get("no_bias", True)) else ()


def _channel_last(a) -> bool:
    layout = a.get("layout") or ""
    return len(layout) > 2 and layout[-1] == "C"


def _fc(a, d):
    flat = _flag(a.get("flatten", True))
    n = int(a["num_hidden"])
    width = 1
    for s in (d[1:] if flat else d[-1:]):
        width *= s
    return {"weight": (n, width), "bias": (n,)}


def _conv(a, d):
    k, g, n = _tuple(a["kernel"]), int(a.get("num_group", 1) or 1), int(a["num_filter"])
    if _channel_last(a):
        return {"weight": (n,) + k + (d[-1] // g,), "bias": (n,)}
    return {"weight": (n, d[1] // g) + k, "bias": (n,)}


def _deconv(a, d):
    k, g, n = _tuple(a["kernel"]), int(a.get("num_group", 1) or 1), int(a["num_filter"])
    if _channel_last(a):
        return {"weight": (d[-1],) + k + (n // g,), "bias": (n,)}
    return {"weight": (d[1], n // g) + k, "bias": (n,)}


def _per_channel(names, default_axis=1):
    def rule(a, d):
        c = d[int(a.get("axis", default_axis))]
        return {name: (c,) for name in names}
    return rule


def _group_norm(a, d):
    g = int(a.get("num_groups", 1))
    return {"gamma": (g,), "beta": (g,)}


def _embedding(a, d):
    return {"weight": (int(a["input_dim"]), int(a["output_dim"]))}


def _prelu(a, d):
    return {"gamma": (d[1] if len(d) > 1 else 1,)}


def _softmax_label(a, d):
    if _flag(a.get("multi_output", False)):
        return {"label": (d[0],) + tuple(d[2:])}
    return {"label": tuple(d[:-1])}


def _same_label(a, d):
    return {"label": tuple(d)}


def _rnn(a, d):
    from mxcore.ops.rnn import rnn_param_size
    mode, h = a["mode"], int(a["state_size"])
    layers, bi = int(a.get("num_layers", 1)), _flag(a.get("bidirectional", False))
    proj = a.get("projection_size")
    dirs = 2 if bi else 1
    out = {"parameters": (rnn_param_size(mode, d[2], h, layers, bi, proj),),
           "state": (layers * dirs, d[1], int(proj) if proj else h)}
    if mode == "lstm":
        out["state_cell"] = (layers * dirs, d[1], h)
    return out


def _rnn_absent(a):
    out = [] if a.get("mode") == "lstm" else ["state_cell"]
    if not _flag(a.get("use_sequence_length", False)):
        out.append("sequence_length")
    return out


def _rnn_nout(a):
    if not _flag(a.get("state_outputs", False)):
        return 1
    return 3 if a.get("mode") == "lstm" else 2


def _split_nout(a):
    return int(a["num_outputs"])


def _literal(v):
    if isinstance(v, str):
        import ast
        return ast.literal_eval(v)
    return v


def _split_v2_nout(a):
    """split_v2: a number of equal sections, or the indices where sections start (MXNet's
    ``_split_v2`` node: ``sections``, else ``indices`` with a leading 0)."""
    if "indices_or_sections" in a:
        sections = _literal(a["indices_or_sections"])
        return len(sections) + 1 if isinstance(sections, (list, tuple)) else int(sections)
    sections = int(_literal(a.get("sections", 0)) or 0)
    return sections if sections > 0 else len(_literal(a.get("indices", ())))


_BN = ("data", "gamma", "beta", "moving_mean", "moving_var")

TABLE: Dict[str, OpInfo] = {
    "FullyConnected": OpInfo(("data", "weight", "bias"), absent=_no_bias, params=_fc),
    "Convolution": OpInfo(("data", "weight", "bias"), absent=_no_bias, params=_conv),
    "Deconvolution": OpInfo(("data", "weight", "bias"), absent=_deconv_no_bias,
                            params=_deconv),
    "BatchNorm": OpInfo(_BN, aux=("moving_mean", "moving_var"),
                        params=_per_channel(_BN[1:]),
                        nout=lambda a: 3 if _flag(a.get("output_mean_var", False)) else 1),
    "InstanceNorm": OpInfo(("data", "gamma", "beta"), params=_per_channel(("gamma", "beta"))),
    "LayerNorm": OpInfo(("data", "gamma", "beta"),
                        params=_per_channel(("gamma", "beta"), default_axis=-1),
                        nout=lambda a: 3 if _flag(a.get("output_mean_var", False)) else 1),
    "GroupNorm": OpInfo(("data", "gamma", "beta"), params=_group_norm,
                        nout=lambda a: 3 if _flag(a.get("output_mean_var", False)) else 1),
    "Embedding": OpInfo(("data", "weight"), params=_embedding),
    "LeakyReLU": OpInfo(("data", "gamma"),
                        absent=lambda a: () if a.get("act_type") == "prelu" else ("gamma",),
                        params=_prelu, init={"gamma": '["constant", {"value": 0.25}]'}),
    "RNN": OpInfo(("data", "parameters", "state", "state_cell", "sequence_length"),
                  absent=_rnn_absent, params=_rnn, nout=_rnn_nout),
    "SoftmaxOutput": OpInfo(("data", "label"), params=_softmax_label),
    "LinearRegressionOutput": OpInfo(("data", "label"), params=_same_label),
    "LogisticRegressionOutput": OpInfo(("data", "label"), params=_same_label),
    "MAERegressionOutput": OpInfo(("data", "label"), params=_same_label),
    "ROIPooling": OpInfo(("data", "rois")),
    "BilinearSampler": OpInfo(("data", "grid")),
    "Correlation": OpInfo(("data1", "data2")),
    "SpatialTransformer": OpInfo(("data", "loc"), params=lambda a, d: {"loc": (d[0], 6)}),
    "SVMOutput": OpInfo(("data", "label"), params=lambda a, d: {"label": (d[0],) + d[2:]}),
    "SliceChannel": OpInfo(("data",), nout=_split_nout),
    "split": OpInfo(("data",), nout=_split_nout),
    "split_v2": OpInfo(("ary",), nout=_split_v2_nout),
    "_split_v2": OpInfo(("data",), nout=_split_v2_nout),
    "topk": OpInfo(("data",), nout=lambda a: 2 if a.get("ret_typ") == "both" else 1),
    "moments": OpInfo(("data",), nout=lambda a: 2),
    "_contrib_bipartite_matching": OpInfo(("data",), nout=lambda a: 2),
    # bins: a count (an attribute) or the edges (an input)
    "histogram": OpInfo(("a", "bins"), absent=lambda a: ("bins",) if "bins" in a else (),
                        nout=lambda a: 2),
    "linalg_slogdet": OpInfo(("A",), nout=lambda a: 2),
    "_linalg_slogdet": OpInfo(("A",), nout=lambda a: 2),
    "linalg_gelqf": OpInfo(("A",), nout=lambda a: 2),
    "_linalg_gelqf": OpInfo(("A",), nout=lambda a: 2),
    "linalg_syevd": OpInfo(("A",), nout=lambda a: 2),
    "_linalg_syevd": OpInfo(("A",), nout=lambda a: 2),
    "_contrib_rand_zipfian": OpInfo(("true_classes",), nout=lambda a: 3),
    # one output per input (the inputs are variadic: data_0, data_1, ...)
    "amp_multicast": OpInfo((), nout=lambda a: int(a["num_outputs"])),
}
TABLE["Softmax"] = TABLE["SoftmaxOutput"]

TABLE["BatchNorm_v1"] = TABLE["BatchNorm"]


# quantized ops (mxcore/ops/quantization.py): a quantized tensor is (data, min, max)
_Q_OUT = ("output", "min_output", "max_output")
_Q_LAYER = ("data", "weight", "bias", "min_data", "max_data", "min_weight", "max_weight",
            "min_bias", "max_bias")


def _q_no_bias(a):
    return ("bias", "min_bias", "max_bias") if _flag(a.get("no_bias", False)) else ()


def _q_params(float_rule):
    """A quantized layer's parameter shapes: its float layer's, and (1,) ranges."""
    def rule(a, d):
        return {**float_rule(a, d), **{n: (1,) for n in _Q_LAYER[3:]}}
    return rule


def _q_range_names(inputs) -> Tuple[str, ...]:
    return tuple(n for n in inputs if n.startswith(("min_", "max_")) or
                 n.endswith(("_min", "_max")))


def _q_ranges(inputs):
    """The (1,) shapes of an op's range inputs (``min_data``, ``max_range``...)."""
    ranges = {n: (1,) for n in _q_range_names(inputs)}
    return lambda a, d: ranges


def _q_row(inputs, **extra) -> OpInfo:
    # ranges are float32 (1,) arrays whatever the integer data's dtype; a layer's
    # weight and bias are int8 also under uint8 data (MXNet's type rule)
    extra.setdefault("params", _q_ranges(inputs))
    dtypes = {n: "float32" for n in _q_range_names(inputs)}
    if "weight" in inputs:
        dtypes.update(weight="int8", bias="int8")
    return OpInfo(inputs, nout=lambda a: 3, outputs=_Q_OUT, input_dtypes=dtypes, **extra)


_Q_MUL = ("lhs", "rhs", "lhs_min", "lhs_max", "rhs_min", "rhs_max")

TABLE.update({
    "_contrib_quantize_v2": _q_row(("data",)),
    "_contrib_quantize": _q_row(("data", "min_range", "max_range")),
    "_contrib_dequantize": OpInfo(("data", "min_range", "max_range"),
                                  params=_q_ranges(("min_range", "max_range")),
                                  input_dtypes={"min_range": "float32",
                                                "max_range": "float32"}),
    "_contrib_requantize": _q_row(("data", "min_range", "max_range")),
    "_contrib_quantized_fully_connected": _q_row(_Q_LAYER, absent=_q_no_bias,
                                                 params=_q_params(_fc)),
    "_contrib_quantized_conv": _q_row(_Q_LAYER, absent=_q_no_bias, params=_q_params(_conv)),
    "_contrib_quantized_flatten": _q_row(("data", "min_data", "max_data")),
    "_contrib_quantized_pooling": _q_row(("data", "min_data", "max_data")),
    "_contrib_quantized_act": _q_row(("data", "min_data", "max_data")),
    "_contrib_quantized_embedding": OpInfo(
        ("data", "weight", "min_weight", "max_weight"), nout=lambda a: 3, outputs=_Q_OUT,
        params=lambda a, d: {**_embedding(a, d), "min_weight": (1,), "max_weight": (1,)},
        input_dtypes={"weight": "int8", "min_weight": "float32", "max_weight": "float32"}),
    "_contrib_quantized_elemwise_mul": OpInfo(
        _Q_MUL, outputs=_Q_OUT, params=_q_ranges(_Q_MUL),
        nout=lambda a: 1 if _flag(a.get("enable_float_output", False)) else 3,
        input_dtypes={"rhs": "int8", **{n: "float32" for n in _q_range_names(_Q_MUL)}}),
})


#: ops whose inputs all have one shape (no broadcasting): a known input decides the rest
SAME_SHAPE = frozenset({"elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div",
                        "_plus", "_Plus", "_minus", "_Minus", "_mul", "_Mul", "_div", "_Div",
                        "add_n", "ElementWiseSum", "_grad_add", "_mod", "_power",
                        "_equal", "_not_equal", "_greater", "_greater_equal", "_lesser",
                        "_lesser_equal"})
#: ops whose output dtype is their ``dtype`` attribute, whatever the input's
DTYPE_ATTR = frozenset({"cast", "Cast", "amp_cast"})


def _amp_multicast_dtypes(attrs: Dict[str, Any], dtypes: Sequence[Optional[str]]):
    from mxcore.ndarray import _AMP_FLOATS, _amp_multicast_dtype
    if any(d is None for d in dtypes):
        return None
    target = _amp_multicast_dtype(dtypes, _flag(attrs.get("cast_narrow", False)))
    return [target if d in _AMP_FLOATS else d for d in dtypes]


#: ops whose output dtypes follow from their input dtypes by a rule of their own (for
#: inference without shapes): (attrs, input dtype names) -> output dtype names, or None
#: while an input's dtype is unknown
DTYPE_RULES: Dict[str, Callable[[Dict[str, Any], Sequence[Optional[str]]],
                                Optional[List[str]]]] = {
    "amp_multicast": _amp_multicast_dtypes,
}


def _q_out_type(attrs: Dict[str, Any], dtypes: Sequence[Optional[str]]):
    from mxcore.ops.quantization import out_dtype
    dt = out_dtype(attrs.get("out_type", "int8"), attrs.get("min_calib_range"),
                   attrs.get("max_calib_range"))
    return [dt.name, "float32", "float32"]


def _q_mul_dtypes(attrs: Dict[str, Any], dtypes: Sequence[Optional[str]]):
    if _flag(attrs.get("enable_float_output", False)):
        return ["float32"]
    calibrated = attrs.get("min_calib_range") is not None and \
        attrs.get("max_calib_range") is not None
    return ["int8" if calibrated else "int32", "float32", "float32"]


def _q_keeps_data(attrs: Dict[str, Any], dtypes: Sequence[Optional[str]]):
    return None if dtypes[0] is None else [dtypes[0], "float32", "float32"]


# a quantized tensor's ranges are float32; products are int32
DTYPE_RULES.update({
    "_contrib_quantize_v2": _q_out_type, "_contrib_requantize": _q_out_type,
    "_contrib_quantize": _q_out_type, "_contrib_dequantize": lambda a, d: ["float32"],
    "_contrib_quantized_fully_connected": lambda a, d: ["int32", "float32", "float32"],
    "_contrib_quantized_conv": lambda a, d: ["int32", "float32", "float32"],
    "_contrib_quantized_flatten": _q_keeps_data, "_contrib_quantized_pooling": _q_keeps_data,
    "_contrib_quantized_act": _q_keeps_data,
    "_contrib_quantized_embedding": lambda a, d: ["int8", "float32", "float32"],
    "_contrib_quantized_elemwise_mul": _q_mul_dtypes,
})


def _custom(attrs: Dict[str, Any]) -> OpInfo:
    """A custom operator's row, from its registered prop (``mx.operator``)."""
    from mxcore.ops.custom import make_prop
    params = {k: str(v) for k, v in attrs.items()
              if k != "op_type" and not (k.startswith("__") and k.endswith("__"))}
    prop = make_prop(str(attrs.get("op_type")), params)
    args, outs = tuple(prop.list_arguments()), tuple(prop.list_outputs())
    aux = tuple(prop.list_auxiliary_states())

    def params(a, data_shape):
        """The shapes the prop's infer_shape gives the other inputs from the first's
        (unknown ones passed as [])."""
        try:
            ret = prop.infer_shape([list(data_shape)] + [[] for _ in args[1:]])
        except Exception:  # noqa: BLE001 - a rule that needs every shape: none derived
            return {}
        shapes = list(zip(args, ret[0])) + (list(zip(aux, ret[2])) if len(ret) > 2 else [])
        return {n: tuple(int(d) for d in s) for n, s in shapes if s is not None and len(s)}
    return OpInfo(args + aux, aux=aux, params=params, nout=lambda a: len(outs),
                  outputs=outs)


#: ops whose row depends on their attributes: attrs -> row
def _upsampling(attrs) -> Optional[OpInfo]:
    """Bilinear UpSampling is a depthwise transposed convolution with a learnable
    (num_filter, 1, k, k) weight, k = 2 * scale - scale % 2; nearest takes only data."""
    if str(attrs.get("sample_type", "nearest")) != "bilinear":
        return None

    def weight(a, d):
        scale = int(a["scale"])
        k = 2 * scale - scale % 2
        return {"weight": (int(a.get("num_filter", d[1])), 1, k, k)}
    return OpInfo(("data", "weight"), params=weight)


BY_ATTRS: Dict[str, Callable[[Dict[str, Any]], Optional[OpInfo]]] = {
    "Custom": _custom, "UpSampling": _upsampling}


def info(op: str, attrs: Optional[Dict[str, Any]] = None) -> Optional[OpInfo]:
    row = TABLE.get(op)
    if row is None and attrs is not None and op in BY_ATTRS:
        return BY_ATTRS[op](attrs)
    return row


def num_outputs(op: str, attrs: Dict[str, Any]) -> int:
    row = info(op, attrs)
    if row is None or row.nout is None:
        return 1
    return row.nout(attrs)


def present_inputs(row: OpInfo, attrs: Dict[str, Any]) -> Tuple[str, ...]:
    """The input names the op takes with these attributes, in order."""
    absent = set(row.absent(attrs)) if row.absent is not None else set()
    return tuple(n for n in row.inputs if n not in absent)
