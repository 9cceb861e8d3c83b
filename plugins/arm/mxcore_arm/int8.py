"""int8 kernels of the quantized layers (``quantized_fully_connected``,
``quantized_conv``; mxcore/ops/quantization.py) for the ``cpu`` kind: the integer
products through onnxruntime's ``MatMulInteger``/``ConvInteger`` (exact int32 sums, the
ARM dot-product instructions where the CPU has them; int8 and uint8 data, int8 or
uint8 weights), the output range and the bias at
the product's scale as MXNet computes them (float32 arithmetic in MXNet's order), so
the three outputs equal the CPU plugin's bit for bit.

Conventions (mxcore/ops/quantization.py): inputs ``data, weight, [bias], min_data,
max_data, min_weight, max_weight, [min_bias, max_bias]``; outputs ``(int32 out,
min_out, max_out)``; symmetric ranges, zero point 0.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
from onnx import helper

import hal
from mxcore_arm import host
from mxcore_arm.kernels import PRIORITY, SESSIONS, SingleOp, _spatial

F32 = np.float32
INT32_MAX = F32(2147483647)
#: largest quantized value of each input dtype (MXNet's quantized level)
QMAX = {"int8": F32(127), "uint8": F32(255)}


# ranges (MXNet's QuantizationRangeForMultiplication and QuantizedSumInitKernel) -------
def _max_abs(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(lo.astype(F32)), np.abs(hi.astype(F32)))


def _level(dtype, lo, hi) -> np.ndarray:
    """The float value of one quantized step."""
    return _max_abs(lo, hi) / QMAX[np.dtype(dtype).name]


def product_range(data, weight, ranges) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float value of one int32 step, min_out, max_out) of data x weight."""
    step = _level(data.dtype, ranges[0], ranges[1]) * _level(weight.dtype, ranges[2], ranges[3])
    top = (step * INT32_MAX).astype(F32)
    return step.astype(F32), (-top).astype(F32), top


def add_bias(acc: np.ndarray, bias: np.ndarray, ranges, step, shape) -> np.ndarray:
    """``acc`` plus the bias at the product's scale: an int32 bias as given, an int8 one
    as trunc(b * level_b / level_out) (the output level computed as MXNet does: the
    int32 range over INT32_MAX in double, rounded to float)."""
    if bias.dtype == np.int32:
        return acc + bias.reshape(shape)
    out_level = ((step * INT32_MAX).astype(np.float64) / 2147483647.0).astype(F32)
    b_level = _max_abs(ranges[4], ranges[5]) / F32(127)
    scaled = bias.astype(F32) * b_level
    safe = np.where(out_level != 0, out_level, F32(1))
    b = np.where(out_level != 0, np.trunc(scaled / safe), F32(0)).astype(np.int32)
    return acc + b.reshape(shape)


# the products ---------------------------------------------------------------------------
# Both products run on uint8 operands with zero points: int8 values v are fed as the
# uint8 v + 128 (the same bits with the sign bit flipped) and zero point 128, so
# (u - 128) recovers v exactly.  uint8 x uint8 with zero points is the form every
# onnxruntime release implements for ConvInteger and MatMulInteger (int8 operands of
# ConvInteger came only in late 2025), and the one MLAS maps to the ARM dot-product
# instructions; ConvInteger pads with the zero point, so padding still contributes 0.
def _as_uint8(a: np.ndarray) -> np.ndarray:
    return a if a.dtype == np.uint8 else a.view(np.uint8) ^ np.uint8(0x80)


def _zero_point(dtype) -> np.ndarray:
    return np.array(128 if np.dtype(dtype) == np.int8 else 0, dtype=np.uint8)


def _matmul_session(a, w, a_dtype, w_dtype) -> SingleOp:
    nodes = [helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),
             helper.make_node("MatMulInteger", ["a", "wt", "a_zero", "w_zero"], ["out"])]
    return SingleOp(nodes, [("a", np.uint8, a), ("w", np.uint8, w)], ("out", np.int32),
                    [("a_zero", _zero_point(a_dtype)), ("w_zero", _zero_point(w_dtype))])


def quantized_fully_connected(data, weight, *rest, num_hidden: int, no_bias: bool,
                              flatten: bool):
    bias = None if no_bias else rest[0]
    ranges = rest[0 if no_bias else 1:]
    k = weight.shape[1]
    a = data.reshape(data.shape[0], -1) if flatten else data.reshape(-1, k)
    key = ("quantized_fully_connected", a.shape, weight.shape, a.dtype.str, weight.dtype.str)
    op = SESSIONS.get(key, lambda: _matmul_session(a.shape, weight.shape, a.dtype,
                                                   weight.dtype))
    acc = op(_as_uint8(a), _as_uint8(weight))
    step, lo, hi = product_range(data, weight, ranges)
    if bias is not None:
        acc = add_bias(acc, bias, ranges, step, (1, -1))
    shape = (data.shape[0], num_hidden) if flatten else data.shape[:-1] + (num_hidden,)
    return acc.reshape(shape), lo, hi


def _conv_session(xs, ws, x_dtype, w_dtype, kernel, stride, dilate, pad, group) -> SingleOp:
    node = helper.make_node("ConvInteger", ["x", "w", "x_zero", "w_zero"], ["out"],
                            kernel_shape=list(kernel), strides=list(stride),
                            dilations=list(dilate), pads=list(pad) + list(pad), group=group)
    return SingleOp([node], [("x", np.uint8, xs), ("w", np.uint8, ws)], ("out", np.int32),
                    [("x_zero", _zero_point(x_dtype)), ("w_zero", _zero_point(w_dtype))])


def quantized_conv(data, weight, *rest, kernel, stride, dilate, pad, num_filter: int,
                   num_group: int, no_bias: bool):
    bias = None if no_bias else rest[0]
    ranges = rest[0 if no_bias else 1:]
    nd = data.ndim - 2
    kernel, stride, dilate, pad = (_spatial(v, nd, d) for v, d in
                                   ((kernel, None), (stride, 1), (dilate, 1), (pad, 0)))
    key = ("quantized_conv", data.shape, weight.shape, data.dtype.str, weight.dtype.str,
           kernel, stride, dilate, pad, int(num_group))
    op = SESSIONS.get(key, lambda: _conv_session(data.shape, weight.shape, data.dtype,
                                                 weight.dtype, kernel, stride, dilate, pad,
                                                 int(num_group)))
    acc = op(_as_uint8(data), _as_uint8(weight))
    step, lo, hi = product_range(data, weight, ranges)
    if bias is not None:
        acc = add_bias(acc, bias, ranges, step, (1, -1) + (1,) * nd)
    return acc, lo, hi


# guards ---------------------------------------------------------------------------------
def _integer_inputs(shapes, dtypes, attrs) -> Optional[str]:
    if dtypes[1] not in ("int8", "uint8"):
        return f"weight of dtype {dtypes[1]}: int8 or uint8 only"
    if any(d == 0 for s in shapes[:2] for d in s):
        return "empty input"
    return None


def _conv_inputs(shapes, dtypes, attrs) -> Optional[str]:
    if not 3 <= len(shapes[0]) <= 5:
        return f"data of shape {tuple(shapes[0])}: needs 1-3 spatial dims"
    return _integer_inputs(shapes, dtypes, attrs)


#: op -> (kernel function, shape check)
INT8_TABLE = {
    "quantized_fully_connected": (quantized_fully_connected, _integer_inputs),
    "quantized_conv": (quantized_conv, _conv_inputs),
}


def kernels() -> List[hal.Kernel]:
    """The int8 kernels (named by op, as device plugins name ops: an mxcore without
    the quantized ops never calls them)."""
    return [hal.Kernel(op=op, device="cpu", fn=fn, dtypes={"int8", "uint8"},
                       priority=PRIORITY, name=f"ort_int8.{op}",
                       applies=host.guard("int8", check, name="arm_int8"),
                       doc=f"int8 {op}: the product through onnxruntime")
            for op, (fn, check) in INT8_TABLE.items()]
