"""Export rules for quantized graphs (``mx.contrib.quantization``'s ops) in QDQ form.

A quantized tensor stays three ONNX tensors, as in mxcore: its int8/uint8 (or int32)
values and its float32 (1,) ``min``/``max`` ranges, so each op translates on its own:

* ``_contrib_quantize_v2``/``_contrib_quantize``: ``QuantizeLinear`` with zero point 0
  and scale ``R / 127`` (uint8: ``R / 255``), ``R`` the calibrated range or, without
  one, ``max |x|`` computed in the graph;
* ``_contrib_dequantize``: ``DequantizeLinear`` with the same scale;
* ``_contrib_quantized_fully_connected``/``_contrib_quantized_conv``:
  ``MatMulInteger``/``ConvInteger`` on uint8 operands with zero points (int8 values
  shifted by 128; exact int32, as mxcore's kernels), plus the bias brought to the
  product's scale as mxcore's kernels bring it;
* ``_contrib_requantize``: the int32 values times their step, re-quantized by
  ``QuantizeLinear``;
* pooling, flatten and relu on the integer values (avg pooling rounds halves away from
  zero, as mxcore does).

``QuantizeLinear`` rounds halves to even where mxcore (and MXNet) round them away from
zero, so a value that lands exactly halfway between two steps may differ by one step;
everything else is computed as mxcore computes it.
"""
from __future__ import annotations

import numpy as np

from typing import Callable, Dict

from mxcore.onnx._common import OnnxError, attr_bool, registrar, unsupported
from mxcore.ops.quantization import QUANTIZED_RANGE, out_dtype

#: op name -> rule; the exporter's table (``export_ops.TABLE``) takes them all
RULES: Dict[str, Callable[..., None]] = {}

rule = registrar(RULES)


# the rule helpers both exporter tables use (mxcore/onnx/_common.py)
_bool, _unsupported = attr_bool, unsupported

_INT32_TOP = np.float32(2147483647)  # 2**31 as a float32, MXNet's int32 range


def _f32(em, value, hint="scale"):
    return em.const(np.asarray(value, dtype=np.float32), hint=hint)


def _zero_point(em, dtype_name: str) -> str:
    return em.const(np.zeros((), dtype=np.dtype(dtype_name)), hint="zero_point")


def _range_of(em, lo: str, hi: str) -> str:
    """max(|min|, |max|), shape (1,)."""
    return em.emit("Max", [em.emit("Abs", [lo]), em.emit("Abs", [hi])])


def _scalar(em, x: str) -> str:
    return em.reshape(x, [])


def _quantize(em, x: str, r: str, dtype_name: str, out: str) -> str:
    """QuantizeLinear of float ``x`` over the symmetric range ``r`` (a (1,) tensor);
    a zero range gives a tiny scale, so all-zero data stays zero."""
    scale = em.emit("Div", [r, _f32(em, [QUANTIZED_RANGE[dtype_name]])])
    scale = em.emit("Max", [scale, _f32(em, [np.finfo(np.float32).tiny])])
    return em.emit("QuantizeLinear", [x, _scalar(em, scale), _zero_point(em, dtype_name)], out)


def _ranges(em, r: str, dtype_name: str, out) -> None:
    """The (min, max) outputs of a symmetric range: (-R, R), or (0, R) for uint8."""
    if dtype_name == "uint8":
        em.emit("Mul", [r, _f32(em, [0.0])], out[1])
    else:
        em.emit("Neg", [r], out[1])
    em.emit("Identity", [r], out[2])


def _calibrated(a) -> bool:
    return a.get("min_calib_range") is not None and a.get("max_calib_range") is not None


def _out_name(a) -> str:
    return out_dtype(a.get("out_type", "int8"), a.get("min_calib_range"),
                     a.get("max_calib_range")).name


@rule("_contrib_quantize_v2")
def _quantize_v2(em, a, x, out):
    src = em.in_dtype(0)
    if src in ("int8", "uint8"):  # already quantized: passed through
        em.emit("Identity", [x[0]], out[0])
        lo, hi = (a["min_calib_range"], a["max_calib_range"]) if _calibrated(a) else \
            ((0.0, 255.0) if src == "uint8" else (-127.0, 127.0))
        em.emit("Identity", [_f32(em, [lo])], out[1])
        em.emit("Identity", [_f32(em, [hi])], out[2])
        return
    data = x[0] if src == "float32" else em.cast(x[0], "float32")
    if _calibrated(a):
        r = _f32(em, [max(abs(float(a["min_calib_range"])), abs(float(a["max_calib_range"])))],
                 hint="range")
    else:
        r = em.reshape(em.reduce("ReduceMax", em.emit("Abs", [data]), None, False), [1])
    name = _out_name(a)
    _quantize(em, data, r, name, out[0])
    _ranges(em, r, name, out)


@rule("_contrib_quantize")
def _quantize_v1(em, a, x, out):
    kind = a.get("out_type", "uint8")
    if kind == "int8":
        r = _range_of(em, x[1], x[2])
        _quantize(em, x[0], r, "int8", out[0])
        _ranges(em, r, "int8", out)
        return
    width = em.emit("Sub", [x[2], x[1]])
    shifted = em.emit("Sub", [x[0], x[1]])
    _quantize(em, shifted, width, "uint8", out[0])
    em.emit("Identity", [x[1]], out[1])
    em.emit("Identity", [x[2]], out[2])


@rule("_contrib_dequantize")
def _dequantize(em, a, x, out):
    kind = em.in_dtype(0)
    if kind == "uint8":
        width = em.emit("Sub", [x[2], x[1]])
        scale = em.emit("Div", [width, _f32(em, [255.0])])
        y = em.emit("DequantizeLinear", [x[0], _scalar(em, scale), _zero_point(em, kind)])
        em.emit("Add", [y, x[1]], out[0])
        return
    scale = em.emit("Div", [_range_of(em, x[1], x[2]), _f32(em, [127.0])])
    em.emit("DequantizeLinear", [x[0], _scalar(em, scale), _zero_point(em, kind)], out[0])


def _int32_to_float(em, q: str, lo: str, hi: str) -> str:
    step = em.emit("Div", [_range_of(em, lo, hi), _f32(em, [_INT32_TOP])])
    return em.emit("Mul", [em.cast(q, "float32"), step])


@rule("_contrib_requantize")
def _requantize(em, a, x, out):
    f = _int32_to_float(em, x[0], x[1], x[2])
    if _calibrated(a):
        r = _f32(em, [max(abs(float(a["min_calib_range"])), abs(float(a["max_calib_range"])))],
                 hint="range")
    else:
        r = em.reshape(em.reduce("ReduceMax", em.emit("Abs", [f]), None, False), [1])
    name = _out_name(a)
    _quantize(em, f, r, name, out[0])
    _ranges(em, r, name, out)


# quantized layers -------------------------------------------------------------------------
def _layer_parts(a, x):
    """(data, weight, bias or None, [min_d, max_d, min_w, max_w, min_b, max_b])."""
    if _bool(a.get("no_bias")):
        return x[0], x[1], None, list(x[2:6])
    return x[0], x[1], x[2], list(x[3:9])


def _product_range(em, r, data_dtype: str, out):
    """The step of one int32 unit (level_data * level_weight) and the (min, max)
    outputs (MXNet's QuantizationRangeForMultiplication)."""
    level_d = em.emit("Div", [_range_of(em, r[0], r[1]),
                              _f32(em, [QUANTIZED_RANGE[data_dtype]])])
    level_w = em.emit("Div", [_range_of(em, r[2], r[3]), _f32(em, [127.0])])
    step = em.emit("Mul", [level_d, level_w])
    top = em.emit("Mul", [step, _f32(em, [_INT32_TOP])], out[2])
    em.emit("Neg", [top], out[1])
    return top


def _add_bias(em, acc: str, bias: str, bias_dtype: str, r, top: str, shape, out: str):
    if bias_dtype == "int32":
        b = bias
    else:  # trunc(b * level_b / level_out), as mxcore's kernels (MXNet's) compute it
        level_out = em.emit("Div", [top, _f32(em, [2147483647.0])])
        level_b = em.emit("Div", [_range_of(em, r[4], r[5]), _f32(em, [127.0])])
        scaled = em.emit("Div", [em.emit("Mul", [em.cast(bias, "float32"), level_b]),
                                 level_out])
        b = em.cast(scaled, "int32")  # Cast truncates toward zero
    em.emit("Add", [acc, em.reshape(b, shape)], out)


def _unsigned(em, x: str, dtype_name: str):
    """(uint8 tensor, uint8 zero point) holding ``x``'s integers exactly: int8 values
    v become v + 128 with zero point 128.  uint8 operands with zero points are the form
    of MatMulInteger/ConvInteger that every onnxruntime release implements (int8
    operands came later, for ConvInteger only in 2025)."""
    if dtype_name == "uint8":
        return x, _zero_point(em, "uint8")
    shifted = em.emit("Add", [em.cast(x, "int32"), em.const(np.int32(128), hint="shift")])
    return em.cast(shifted, "uint8"), em.const(np.uint8(128), hint="zero_point")


def _integer_product(em, op_type: str, a: str, a_dtype: str, b: str, out=None, **attrs):
    """``op_type`` (MatMulInteger or ConvInteger) of two int8/uint8 tensors, exact int32."""
    ua, za = _unsigned(em, a, a_dtype)
    ub, zb = _unsigned(em, b, "int8")
    return em.emit(op_type, [ua, ub, za, zb], out, **attrs)


@rule("_contrib_quantized_fully_connected")
def _quantized_fc(em, a, x, out):
    data, weight, bias, r = _layer_parts(a, x)
    flatten = _bool(a.get("flatten"), True)
    if flatten and len(em.in_shape(0)) != 2:
        data = em.emit("Flatten", [data], axis=1)
    wt = em.emit("Transpose", [weight], perm=[1, 0])
    top = _product_range(em, r, em.in_dtype(0), out)
    if bias is None:
        _integer_product(em, "MatMulInteger", data, em.in_dtype(0), wt, out[0])
        return
    acc = _integer_product(em, "MatMulInteger", data, em.in_dtype(0), wt)
    _add_bias(em, acc, bias, em.in_dtype(2), r, top, [-1], out[0])


@rule("_contrib_quantized_conv")
def _quantized_conv(em, a, x, out):
    from mxcore.onnx.export_ops import _check_layout, _pads, _spatial, _tuple
    data, weight, bias, r = _layer_parts(a, x)
    nd = len(_tuple(a["kernel"]))
    _check_layout(em, a, nd)
    top = _product_range(em, r, em.in_dtype(0), out)
    conv = dict(group=int(a.get("num_group", 1) or 1), pads=_pads(a, nd), **_spatial(em, a, nd))
    if bias is None:
        _integer_product(em, "ConvInteger", data, em.in_dtype(0), weight, out[0], **conv)
        return
    acc = _integer_product(em, "ConvInteger", data, em.in_dtype(0), weight, **conv)
    _add_bias(em, acc, bias, em.in_dtype(2), r, top, [1, -1] + [1] * nd, out[0])


def _pass_ranges(em, x, out) -> None:
    em.emit("Identity", [x[1]], out[1])
    em.emit("Identity", [x[2]], out[2])


@rule("_contrib_quantized_flatten")
def _quantized_flatten(em, a, x, out):
    em.emit("Flatten", [x[0]], out[0], axis=1)
    _pass_ranges(em, x, out)


@rule("_contrib_quantized_pooling")
def _quantized_pooling(em, a, x, out):
    from mxcore.onnx.export_ops import TABLE  # the float Pooling rule, on the integers
    kind = a.get("pool_type", "max")
    float_pool = TABLE["Pooling"]
    if kind == "max":  # exact on the integers
        float_pool(em, a, [x[0]], [out[0]])
    elif kind == "avg":  # the mean in float, halves rounded away from zero
        mean = em.fresh("mean")
        float_pool(em, a, [em.cast(x[0], "float32")], [mean])
        rounded = em.emit("Floor", [em.emit("Add", [em.emit("Abs", [mean]),
                                                    _f32(em, 0.5)])])
        em.cast(em.emit("Mul", [em.emit("Sign", [mean]), rounded]), em.in_dtype(0), out[0])
    else:
        raise _unsupported(em, f"pool_type={kind!r}")
    _pass_ranges(em, x, out)


@rule("_contrib_quantized_act")
def _quantized_act(em, a, x, out):
    if a.get("act_type", "relu") != "relu":
        raise _unsupported(em, f"act_type={a.get('act_type')!r}")
    zero = em.const(np.zeros((), dtype=np.dtype(em.in_dtype(0))), hint="zero")
    em.emit("Max", [x[0], zero], out[0])
    _pass_ranges(em, x, out)
