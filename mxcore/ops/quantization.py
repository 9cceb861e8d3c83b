"""int8 quantization: MXNet 1.x's ``_contrib_quantize_v2``, ``_contrib_quantize``,
``_contrib_dequantize``, ``_contrib_requantize`` and the quantized layers
(``_contrib_quantized_fully_connected``, ``_contrib_quantized_conv``,
``_contrib_quantized_flatten``, ``_contrib_quantized_pooling``, ``_contrib_quantized_act``,
``_contrib_quantized_embedding``, ``_contrib_quantized_elemwise_mul``).

A quantized tensor travels as three arrays: the integer values and two float32 arrays
of shape (1,), ``min_range`` and ``max_range``.  int8 is symmetric: the float value
of ``q`` is ``q * R / 127`` with ``R = max(|min_range|, |max_range|)``; float data is
quantized as ``sign(x) * min(|x| * 127 / R + 0.5, 127)`` truncated toward zero (MXNet's
rounding: halves away from zero), computed in float32 as MXNet does.  uint8 (for data
known to be non-negative) has zero point 0: ``q * R / 255``.  A product of two
quantized tensors is exact in int32; its float range is ``level_a * level_b *
(2**31 - 1)`` with ``level = R / 127`` (int8) or ``R / 255`` (uint8), MXNet's
``QuantizationRangeForMultiplication``.  An int8 bias of range ``R_b`` is brought to
the product's scale as ``trunc(b * (R_b / 127) / level_out)``; an int32 bias is taken
as already at that scale (``level_a * level_b``).

The argument order of each op is MXNet's (the graph JSON and the plugins implementing
these ops rely on it; docs/quantization.md lists it).  None of these ops is
differentiable: quantized graphs run inference only, and a backward pass reaching one
raises an error naming it.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from mxcore.array import NDArray
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke
from mxcore.op import REQUIRED, Op
from mxcore.ops import conv as _conv

#: the largest int32, the quantized range of an int32 product (MXNet's kInt32Range)
INT32_RANGE = 2147483647
#: integer dtype -> the quantized value that stands for the range's bound
QUANTIZED_RANGE = {"int8": 127, "uint8": 255}
OUT_TYPES = ("int8", "uint8", "auto")
_RANGE = {"min_calib_range": None, "max_calib_range": None}

QUANTIZE_V2 = Op("quantize_v2", 1, 3, attrs={"out_type": "int8", **_RANGE},
                 aliases=("_contrib_quantize_v2",),
                 doc="float data -> (int8/uint8 data, min_range, max_range); the range is "
                     "the calibrated one when given, else the data's own min and max")
QUANTIZE = Op("quantize", 3, 3, attrs={"out_type": "uint8"}, aliases=("_contrib_quantize",),
              doc="(float data, min_range, max_range) -> (int8/uint8 data, min, max)")
DEQUANTIZE = Op("dequantize", 3, 1, attrs={"out_type": "float32"},
                aliases=("_contrib_dequantize",),
                doc="(int8/uint8 data, min_range, max_range) -> float32 data")
REQUANTIZE = Op("requantize", 3, 3, attrs={"out_type": "int8", **_RANGE},
                aliases=("_contrib_requantize",),
                doc="(int32 data, min_range, max_range) -> (int8/uint8 data, min, max), to "
                    "the calibrated range when given, else to the data's own")
QUANTIZED_FC = Op("quantized_fully_connected", -1, 3,
                  attrs={"num_hidden": REQUIRED, "no_bias": False, "flatten": True},
                  aliases=("_contrib_quantized_fully_connected",),
                  doc="(data, weight, [bias], min_data, max_data, min_weight, max_weight, "
                      "[min_bias, max_bias]) -> (int32 out, min_out, max_out)")
QUANTIZED_CONV = Op("quantized_conv", -1, 3,
                    attrs={"kernel": REQUIRED, "stride": REQUIRED, "dilate": REQUIRED,
                           "pad": REQUIRED, "num_filter": REQUIRED, "num_group": 1,
                           "no_bias": False},
                    aliases=("_contrib_quantized_conv",),
                    doc="(data, weight, [bias], min_data, max_data, min_weight, max_weight, "
                        "[min_bias, max_bias]) -> (int32 out, min_out, max_out), NCHW")
QUANTIZED_FLATTEN = Op("quantized_flatten", 3, 3, aliases=("_contrib_quantized_flatten",),
                       doc="(data, min, max) -> (data reshaped (N, -1), min, max)")
QUANTIZED_POOLING = Op("quantized_pooling", 3, 3, attrs=dict(_conv._POOL),
                       aliases=("_contrib_quantized_pooling",),
                       doc="max or avg pooling of int8/uint8 (N, C, *spatial) data; the "
                           "range passes through")
QUANTIZED_ACT = Op("quantized_act", 3, 3, attrs={"act_type": "relu"},
                   aliases=("_contrib_quantized_act",),
                   doc="relu of int8/uint8 data; the range passes through")
QUANTIZED_EMBEDDING = Op("quantized_embedding", 4, 3,
                         attrs={"input_dim": REQUIRED, "output_dim": REQUIRED},
                         dtype_arg=1, aliases=("_contrib_quantized_embedding",),
                         doc="(data, int8 weight, min_weight, max_weight) -> (int8 rows of "
                             "the weight at the indices, min, max); the range passes")
QUANTIZED_ELEMWISE_MUL = Op("quantized_elemwise_mul", 6, -1,
                            attrs={**_RANGE, "enable_float_output": False},
                            aliases=("_contrib_quantized_elemwise_mul",),
                            doc="(int8 lhs, int8 rhs, lhs_min, lhs_max, rhs_min, rhs_max) -> "
                                "(int32 product, min, max); int8 to a calibrated range; "
                                "or the float32 product alone (enable_float_output)")
OPS = [QUANTIZE_V2, QUANTIZE, DEQUANTIZE, REQUANTIZE, QUANTIZED_FC, QUANTIZED_CONV,
       QUANTIZED_FLATTEN, QUANTIZED_POOLING, QUANTIZED_ACT, QUANTIZED_EMBEDDING,
       QUANTIZED_ELEMWISE_MUL]

_F32 = np.dtype("float32")
_I32 = np.dtype("int32")
_QUANT_DTYPES = ("int8", "uint8")
_RANGE_SHAPE = (1,)


def out_dtype(out_type: str, min_calib_range=None, max_calib_range=None) -> np.dtype:
    """The integer dtype ``out_type`` gives: ``auto`` is uint8 when a calibrated range
    starting at or above 0 is given, else int8 (MXNet's GetQuantizeOutputType)."""
    if out_type not in OUT_TYPES:
        raise MXCoreError(f"out_type must be one of {OUT_TYPES}, got {out_type!r}")
    if out_type == "auto":
        calibrated = min_calib_range is not None and max_calib_range is not None
        return np.dtype("uint8" if calibrated and float(min_calib_range) >= 0 else "int8")
    return np.dtype(out_type)


# rules -----------------------------------------------------------------------------------------
def _not_differentiable(op: Op):
    def rule(ctx, *grads):
        raise MXCoreError(f"operator {op.name!r} is not differentiable: quantized operators "
                          "run inference only (take gradients through the float32 model)")
    op.def_grad(rule)


for _op in OPS:
    _not_differentiable(_op)


def _check_ranges(s, d, first: int, count: int, what: str = "range") -> None:
    for i in range(first, first + count):
        if tuple(s[i]) != _RANGE_SHAPE or np.dtype(d[i]) != _F32:
            raise MXCoreError(f"input {i} (a {what}) must be a float32 array of shape (1,), "
                              f"got {tuple(s[i])} {np.dtype(d[i]).name}")


def _check_quantized(d, i: int, name: str, allowed=_QUANT_DTYPES) -> None:
    if np.dtype(d[i]).name not in allowed:
        raise MXCoreError(f"{name} must be {' or '.join(allowed)} (quantized), got "
                          f"{np.dtype(d[i]).name}")


_RANGE_OUT = ([_RANGE_SHAPE, _RANGE_SHAPE], [_F32, _F32])


@QUANTIZE_V2.def_infer
def _quantize_v2_infer(s, d, a):
    dt = np.dtype(d[0])
    if dt.name in _QUANT_DTYPES:  # already quantized: passed through (MXNet)
        return [tuple(s[0]), _RANGE_SHAPE, _RANGE_SHAPE], [dt, _F32, _F32]
    if dt.kind != "f" and dt.name != "bfloat16":
        raise MXCoreError(f"data must be a float array (or int8/uint8, passed through), got "
                          f"{dt.name}")
    return [tuple(s[0]), _RANGE_SHAPE, _RANGE_SHAPE], \
        [out_dtype(a["out_type"], a["min_calib_range"], a["max_calib_range"]), _F32, _F32]


@QUANTIZE.def_infer
def _quantize_infer(s, d, a):
    if np.dtype(d[0]) != _F32:
        raise MXCoreError(f"data must be float32, got {np.dtype(d[0]).name}")
    _check_ranges(s, d, 1, 2)
    if a["out_type"] not in _QUANT_DTYPES:
        raise MXCoreError(f"out_type must be int8 or uint8, got {a['out_type']!r}")
    return [tuple(s[0]), _RANGE_SHAPE, _RANGE_SHAPE], [np.dtype(a["out_type"]), _F32, _F32]


@DEQUANTIZE.def_infer
def _dequantize_infer(s, d, a):
    _check_quantized(d, 0, "data")
    _check_ranges(s, d, 1, 2)
    if a["out_type"] != "float32":
        raise MXCoreError(f"out_type must be float32, got {a['out_type']!r}")
    return [tuple(s[0])], [_F32]


@REQUANTIZE.def_infer
def _requantize_infer(s, d, a):
    _check_quantized(d, 0, "data", ("int32",))
    _check_ranges(s, d, 1, 2)
    return [tuple(s[0]), _RANGE_SHAPE, _RANGE_SHAPE], \
        [out_dtype(a["out_type"], a["min_calib_range"], a["max_calib_range"]), _F32, _F32]


def _layer_inputs(s, d, a, op: str) -> int:
    """Checks the arity, the integer dtypes and the ranges of a quantized layer's inputs;
    returns the number of arrays (data, weight, bias)."""
    n = 2 if a["no_bias"] else 3
    if len(s) != 3 * n:
        raise MXCoreError(f"{op} takes {3 * n} inputs with no_bias={a['no_bias']} "
                          f"({n} arrays and a min and max for each), got {len(s)}")
    _check_quantized(d, 0, "data")
    _check_quantized(d, 1, "weight", ("int8",))
    if n == 3:
        _check_quantized(d, 2, "bias", ("int8", "int32"))
    _check_ranges(s, d, n, 2 * n)
    return n


@QUANTIZED_FC.def_infer
def _quantized_fc_infer(s, d, a):
    n = _layer_inputs(s, d, a, "quantized_fully_connected")
    x, w, h = tuple(s[0]), tuple(s[1]), a["num_hidden"]
    if len(x) < 1 or (not a["flatten"] and len(x) < 2):
        raise MXCoreError(f"data of shape {x} has no feature axis")
    k = int(np.prod(x[1:], dtype=np.int64)) if a["flatten"] else x[-1]
    if w != (h, k):
        raise MXCoreError(f"weight shape {w} does not match: expected {(h, k)} "
                          f"(num_hidden, input features)")
    if n == 3 and tuple(s[2]) != (h,):
        raise MXCoreError(f"bias shape {tuple(s[2])} does not match num_hidden {h}")
    out = (x[0], h) if a["flatten"] else x[:-1] + (h,)
    return [out, _RANGE_SHAPE, _RANGE_SHAPE], [_I32, _F32, _F32]


@QUANTIZED_CONV.def_infer
def _quantized_conv_infer(s, d, a):
    n = _layer_inputs(s, d, a, "quantized_conv")
    float_shapes = [tuple(x) for x in s[:n]]
    (out,), _ = _conv._conv_infer(float_shapes, [_F32] * n, a)
    return [out, _RANGE_SHAPE, _RANGE_SHAPE], [_I32, _F32, _F32]


@QUANTIZED_FLATTEN.def_infer
def _quantized_flatten_infer(s, d, a):
    _check_quantized(d, 0, "data")
    _check_ranges(s, d, 1, 2)
    x = tuple(s[0])
    rest = int(np.prod(x[1:], dtype=np.int64)) if len(x) > 1 else 1
    return [(x[0] if x else 1, rest), _RANGE_SHAPE, _RANGE_SHAPE], [np.dtype(d[0]), _F32, _F32]


@QUANTIZED_POOLING.def_infer
def _quantized_pooling_infer(s, d, a):
    _check_quantized(d, 0, "data")
    _check_ranges(s, d, 1, 2)
    if a["pool_type"] not in ("max", "avg"):
        raise MXCoreError(f"pool_type must be max or avg, got {a['pool_type']!r}")
    (out,), _ = _conv._pool_infer([tuple(s[0])], [_F32], a)
    return [out, _RANGE_SHAPE, _RANGE_SHAPE], [np.dtype(d[0]), _F32, _F32]


@QUANTIZED_ACT.def_infer
def _quantized_act_infer(s, d, a):
    _check_quantized(d, 0, "data")
    _check_ranges(s, d, 1, 2)
    if a["act_type"] != "relu":
        raise MXCoreError(f"act_type must be relu, got {a['act_type']!r}")
    return [tuple(s[0]), _RANGE_SHAPE, _RANGE_SHAPE], [np.dtype(d[0]), _F32, _F32]


@QUANTIZED_EMBEDDING.def_infer
def _quantized_embedding_infer(s, d, a):
    if np.dtype(d[0]).kind not in "fiu":
        raise MXCoreError(f"data (indices) must be a numeric array, got {np.dtype(d[0]).name}")
    _check_quantized(d, 1, "weight", ("int8",))
    _check_ranges(s, d, 2, 2)
    rows, cols = a["input_dim"], a["output_dim"]
    if tuple(s[1]) != (rows, cols):
        raise MXCoreError(f"weight shape {tuple(s[1])} must be (input_dim, output_dim) = "
                          f"({rows}, {cols})")
    return [tuple(s[0]) + (cols,), _RANGE_SHAPE, _RANGE_SHAPE], [np.dtype(d[1]), _F32, _F32]


@QUANTIZED_ELEMWISE_MUL.def_infer
def _quantized_elemwise_mul_infer(s, d, a):
    _check_quantized(d, 0, "lhs", ("int8",))
    _check_quantized(d, 1, "rhs", ("int8",))
    if tuple(s[0]) != tuple(s[1]):
        raise MXCoreError(f"lhs {tuple(s[0])} and rhs {tuple(s[1])} must have one shape "
                          "(no broadcasting)")
    _check_ranges(s, d, 2, 4)
    if a["enable_float_output"]:
        return [tuple(s[0])], [_F32]
    calibrated = a["min_calib_range"] is not None and a["max_calib_range"] is not None
    return [tuple(s[0]), _RANGE_SHAPE, _RANGE_SHAPE], \
        [np.dtype("int8") if calibrated else _I32, _F32, _F32]


# user-facing functions (mx.nd.contrib.*) ---------------------------------------------------------
def _run(op: Op, name: str, inputs: Sequence[NDArray], attrs: dict):
    """Checks ``inputs`` against ``op``'s rule first, so that a bad call is an error
    naming the operator, shapes, dtypes and device rather than a kernel's failure."""
    arrays = [x for x in inputs if x is not None]
    bad = [type(x).__name__ for x in arrays if not isinstance(x, NDArray)]
    if bad:
        raise OperatorError(name, f"inputs must be NDArrays, got {', '.join(bad)}")
    try:
        op.infer_shape_dtype([x.shape for x in arrays], [x.dtype for x in arrays],
                             op.check_attrs(attrs))
    except (MXCoreError, TypeError, ValueError) as exc:
        raise OperatorError(name, str(exc), [x.shape for x in arrays],
                            [x.dtype for x in arrays],
                            arrays[0].context if arrays else None) from None
    return invoke(op, tuple(arrays), attrs)


def _calib(value) -> Optional[float]:
    return None if value is None else float(value)


def quantize_v2(data: NDArray, out_type: str = "int8", min_calib_range=None,
                max_calib_range=None, out=None, name=None) -> Tuple[NDArray, NDArray, NDArray]:
    """MXNet's ``contrib.quantize_v2``: ``(quantized, min_range, max_range)`` of float
    ``data``, to the calibrated range when both bounds are given, else to the data's
    min and max (computed per call).  ``out_type`` int8, uint8 or auto (uint8 for a
    calibrated range starting at or above 0)."""
    attrs = {"out_type": str(out_type), "min_calib_range": _calib(min_calib_range),
             "max_calib_range": _calib(max_calib_range)}
    return tuple(_run(QUANTIZE_V2, "_contrib_quantize_v2", [data], attrs))


def quantize(data: NDArray, min_range: NDArray, max_range: NDArray, out_type: str = "uint8",
             out=None, name=None) -> Tuple[NDArray, NDArray, NDArray]:
    """MXNet's ``contrib.quantize`` (the older form): ``data`` to ``out_type`` over the
    range given as arrays; int8 symmetric, uint8 ``(x - min) * 255 / (max - min)``."""
    return tuple(_run(QUANTIZE, "_contrib_quantize", [data, min_range, max_range],
                      {"out_type": str(out_type)}))


def dequantize(data: NDArray, min_range: NDArray, max_range: NDArray,
               out_type: str = "float32", out=None, name=None) -> NDArray:
    """MXNet's ``contrib.dequantize``: int8 ``q * R / 127``, uint8
    ``q * (max - min) / 255 + min``, as float32."""
    return _run(DEQUANTIZE, "_contrib_dequantize", [data, min_range, max_range],
                {"out_type": str(out_type)})


def requantize(data: NDArray, min_range: NDArray, max_range: NDArray, out_type: str = "int8",
               min_calib_range=None, max_calib_range=None, out=None,
               name=None) -> Tuple[NDArray, NDArray, NDArray]:
    """MXNet's ``contrib.requantize``: an int32 product and its range to int8 (or
    uint8), over the calibrated range when given, else over the data's own range."""
    attrs = {"out_type": str(out_type), "min_calib_range": _calib(min_calib_range),
             "max_calib_range": _calib(max_calib_range)}
    return tuple(_run(REQUANTIZE, "_contrib_requantize", [data, min_range, max_range], attrs))


def _layer_arrays(op: str, no_bias: bool, arrays: Sequence[Optional[NDArray]]):
    """The inputs of a quantized layer in MXNet's order.  Graph nodes of a layer without
    bias pass six arrays positionally (data, weight, min_data, max_data, min_weight,
    max_weight): they arrive in the bias/min/max parameters shifted by two."""
    data, weight, bias, min_d, max_d, min_w, max_w, min_b, max_b = arrays
    if no_bias and bias is not None and max_w is None and min_b is None and max_b is None:
        bias, min_d, max_d, min_w, max_w = None, bias, min_d, max_d, min_w
    given = [data, weight] + ([] if no_bias else [bias]) + [min_d, max_d, min_w, max_w] + \
        ([] if no_bias else [min_b, max_b])
    if any(x is None for x in given):
        present = [x for x in arrays if x is not None]
        raise OperatorError(op, f"takes {len(given)} arrays with no_bias={no_bias} (data, "
                            "weight" + ("" if no_bias else ", bias") + " and a min and max "
                            f"for each), got {len(present)}",
                            [getattr(x, 'shape', ()) for x in present],
                            [getattr(x, 'dtype', None) for x in present],
                            getattr(present[0], "context", None) if present else None)
    return given


def quantized_fully_connected(data: NDArray, weight: NDArray, bias: Optional[NDArray] = None,
                              min_data: Optional[NDArray] = None,
                              max_data: Optional[NDArray] = None,
                              min_weight: Optional[NDArray] = None,
                              max_weight: Optional[NDArray] = None,
                              min_bias: Optional[NDArray] = None,
                              max_bias: Optional[NDArray] = None, num_hidden: int = 0,
                              no_bias: bool = False, flatten: bool = True, out=None,
                              name=None) -> Tuple[NDArray, NDArray, NDArray]:
    """MXNet's ``contrib.quantized_fully_connected``: int8/uint8 data times the int8
    weight, accumulated exactly in int32, plus the bias brought to the product's scale;
    returns ``(int32 out, min_out, max_out)``."""
    op = "_contrib_quantized_fully_connected"
    given = _layer_arrays(op, bool(no_bias), [data, weight, bias, min_data, max_data,
                                              min_weight, max_weight, min_bias, max_bias])
    attrs = {"num_hidden": int(num_hidden) or given[1].shape[0], "no_bias": bool(no_bias),
             "flatten": bool(flatten)}
    return tuple(_run(QUANTIZED_FC, op, given, attrs))


def quantized_conv(data: NDArray, weight: NDArray, bias: Optional[NDArray] = None,
                   min_data: Optional[NDArray] = None, max_data: Optional[NDArray] = None,
                   min_weight: Optional[NDArray] = None, max_weight: Optional[NDArray] = None,
                   min_bias: Optional[NDArray] = None, max_bias: Optional[NDArray] = None,
                   kernel: Sequence[int] = (), stride: Sequence[int] = (),
                   dilate: Sequence[int] = (), pad: Sequence[int] = (), num_filter: int = 0,
                   num_group: int = 1, workspace: int = 1024, no_bias: bool = False,
                   cudnn_tune=None, cudnn_off: bool = False, layout: Optional[str] = None,
                   out=None, name=None) -> Tuple[NDArray, NDArray, NDArray]:
    """MXNet's ``contrib.quantized_conv``: Convolution's attributes (channel-first
    layouts), int8/uint8 data and int8 weight, exact int32 accumulation; returns
    ``(int32 out, min_out, max_out)``."""
    op = "_contrib_quantized_conv"
    given = _layer_arrays(op, bool(no_bias), [data, weight, bias, min_data, max_data,
                                              min_weight, max_weight, min_bias, max_bias])
    try:
        if layout not in (None, "NCW", "NCHW", "NCDHW"):
            raise MXCoreError(f"layout must be channel-first (NCW, NCHW, NCDHW), got "
                              f"{layout!r}")
        attrs = _conv._geometry_attrs(op, given[0].ndim - 2, kernel, stride, dilate, pad)
    except MXCoreError as exc:
        raise OperatorError(op, str(exc), [x.shape for x in given], [x.dtype for x in given],
                            given[0].context) from None
    attrs.update(num_filter=int(num_filter) or given[1].shape[0], num_group=int(num_group),
                 no_bias=bool(no_bias))
    return tuple(_run(QUANTIZED_CONV, op, given, attrs))


def quantized_flatten(data: NDArray, min_data: NDArray, max_data: NDArray, out=None,
                      name=None) -> Tuple[NDArray, NDArray, NDArray]:
    """MXNet's ``contrib.quantized_flatten``: (N, ...) -> (N, rest); the range passes."""
    return tuple(_run(QUANTIZED_FLATTEN, "_contrib_quantized_flatten",
                      [data, min_data, max_data], {}))


def quantized_pooling(data: NDArray, min_data: NDArray, max_data: NDArray,
                      kernel: Sequence[int] = (), pool_type: str = "max",
                      global_pool: bool = False, cudnn_off: bool = False,
                      pooling_convention: str = "valid", stride: Sequence[int] = (),
                      pad: Sequence[int] = (), p_value: Optional[int] = None,
                      count_include_pad: Optional[bool] = None, layout: Optional[str] = None,
                      out=None, name=None) -> Tuple[NDArray, NDArray, NDArray]:
    """MXNet's ``contrib.quantized_pooling``: max (exact) or avg (the window's mean
    rounded half away from zero) pooling of int8/uint8 channel-first data."""
    op = "_contrib_quantized_pooling"
    try:
        if layout not in (None, "NCW", "NCHW", "NCDHW"):
            raise MXCoreError(f"layout must be channel-first, got {layout!r}")
        attrs, _ = _conv._pool_attrs(data, kernel, pool_type, global_pool, stride, pad,
                                     pooling_convention, count_include_pad, p_value, None)
    except (MXCoreError, AttributeError) as exc:
        raise OperatorError(op, str(exc), [getattr(data, "shape", ())],
                            [getattr(data, "dtype", None)],
                            getattr(data, "context", None)) from None
    return tuple(_run(QUANTIZED_POOLING, op, [data, min_data, max_data], attrs))


def quantized_act(data: NDArray, min_data: NDArray, max_data: NDArray, act_type: str = "relu",
                  out=None, name=None) -> Tuple[NDArray, NDArray, NDArray]:
    """MXNet's ``contrib.quantized_act``: relu of int8/uint8 data; the range passes."""
    return tuple(_run(QUANTIZED_ACT, "_contrib_quantized_act", [data, min_data, max_data],
                      {"act_type": str(act_type)}))


def quantized_embedding(data: NDArray, weight: NDArray, min_weight: NDArray,
                        max_weight: NDArray, input_dim: int = 0, output_dim: int = 0,
                        dtype: str = "float32", sparse_grad: bool = False, out=None,
                        name=None) -> Tuple[NDArray, NDArray, NDArray]:
    """MXNet's ``contrib.quantized_embedding``: the int8 weight's rows at ``data``'s
    indices (truncated, clipped to [0, input_dim - 1] as Embedding's), shape
    ``data.shape + (output_dim,)``; the weight's range passes through.  ``dtype`` and
    ``sparse_grad`` are Embedding's, accepted for compatibility."""
    shape = getattr(weight, "shape", ())
    attrs = {"input_dim": int(input_dim) or (shape[0] if len(shape) == 2 else 0),
             "output_dim": int(output_dim) or (shape[1] if len(shape) == 2 else 0)}
    return tuple(_run(QUANTIZED_EMBEDDING, "_contrib_quantized_embedding",
                      [data, weight, min_weight, max_weight], attrs))


def quantized_elemwise_mul(lhs: NDArray, rhs: NDArray, lhs_min: NDArray, lhs_max: NDArray,
                           rhs_min: NDArray, rhs_max: NDArray, min_calib_range=None,
                           max_calib_range=None, enable_float_output: bool = False, out=None,
                           name=None):
    """MXNet's ``contrib.quantized_elemwise_mul`` of two int8 arrays of one shape:
    ``(int32 product, min, max)`` exact, over the product's range (as a quantized
    layer's); with a calibrated range, int8 to that range; with
    ``enable_float_output``, the float32 product alone."""
    attrs = {"min_calib_range": _calib(min_calib_range),
             "max_calib_range": _calib(max_calib_range),
             "enable_float_output": bool(enable_float_output)}
    result = _run(QUANTIZED_ELEMWISE_MUL, "_contrib_quantized_elemwise_mul",
                  [lhs, rhs, lhs_min, lhs_max, rhs_min, rhs_max], attrs)
    return result[0] if attrs["enable_float_output"] else tuple(result)


__all__ = ["quantize_v2", "quantize", "dequantize", "requantize", "quantized_fully_connected",
           "quantized_conv", "quantized_flatten", "quantized_pooling", "quantized_act",
           "quantized_embedding", "quantized_elemwise_mul"]
