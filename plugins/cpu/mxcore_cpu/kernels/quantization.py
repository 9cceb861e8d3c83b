"""Quantization kernels (see mxcore/ops/quantization.py for the conventions).

Scales and roundings are computed in float32, in the order MXNet computes them, so
quantized values match MXNet's.  Products are exact: int8 x int8 (or uint8 x int8)
products summed over K terms are integers of magnitude at most K * 255 * 128; a float
GEMM on such integer-valued arrays is exact while every partial sum stays below the
float's integer limit (2**24 in float32, 2**53 in float64), whatever the summation
order.  So products run as float32 BLAS when K * |a|max * |b|max <= 2**24 (LeNet's and
the MLP's layers) and as float64 BLAS otherwise, and are converted to int32 once;
numpy has no integer GEMM that comes near BLAS speed."""
from __future__ import annotations

import numpy as np

from mxcore_cpu.kernels import conv as _conv_kernels
from mxcore_cpu.kernels._dtypes import FLOAT

QUANT = ("int8", "uint8")
_QMAX = {"int8": 127, "uint8": 255}
#: the largest magnitude of each integer dtype (bounds a product's partial sums)
_MAGNITUDE = {"int8": 128, "uint8": 255, "int32": 2 ** 31}
_EXACT_F32 = 2 ** 24
_EXACT_F64 = 2 ** 53


def exact_float_dtype(k: int, a_dtype, b_dtype):
    """The float dtype in which a K-term product of integer arrays of these dtypes is
    exact (float32 when it suffices, float64 otherwise)."""
    bound = k * _MAGNITUDE[np.dtype(a_dtype).name] * _MAGNITUDE[np.dtype(b_dtype).name]
    if bound <= _EXACT_F32:
        return np.float32
    if bound <= _EXACT_F64:
        return np.float64
    raise ValueError(f"a {k}-term integer product may exceed 2**53: not exact in float64")


def kernels(xp, special):
    f32 = xp.float32
    conv_table = _conv_kernels.kernels(xp, special)
    float_conv = conv_table["convolution"][0]
    float_pool = conv_table["pooling"][0]

    def scalar(value):
        return xp.asarray([value], dtype=f32)

    def real_range(lo, hi):
        """max(|min|, |max|) as a float32 (1,) array (MXNet's MaxAbs)."""
        return xp.maximum(xp.abs(lo.astype(f32)), xp.abs(hi.astype(f32)))

    def to_int8(x, r):
        """sign(x) * min(|x| * 127/R + 0.5, 127), truncated: MXNet's FloatToQuantized
        (float32 arithmetic); R = 0 gives zeros."""
        safe = xp.where(r > 0, r, f32(1))
        scale = xp.where(r > 0, f32(127) / safe, f32(0)).astype(f32)
        mag = xp.minimum(xp.abs(x) * scale + f32(0.5), f32(127))
        return (xp.sign(x) * xp.trunc(mag)).astype(xp.int8)

    def to_uint8(x, r):
        """min(max(x, 0) * 255/R + 0.5, 255) truncated: zero point 0."""
        safe = xp.where(r > 0, r, f32(1))
        scale = xp.where(r > 0, f32(255) / safe, f32(0)).astype(f32)
        mag = xp.minimum(xp.maximum(x, f32(0)) * scale + f32(0.5), f32(255))
        return xp.trunc(mag).astype(xp.uint8)

    def to_quantized(x, r, dtype_name):
        """(q, min_range, max_range) of float32 ``x`` over the symmetric range R."""
        if dtype_name == "uint8":
            return to_uint8(x, r), xp.zeros(1, f32), r.astype(f32)
        return to_int8(x, r), (-r).astype(f32), r.astype(f32)

    def out_name(out_type, lo, hi):
        if out_type == "auto":
            return "uint8" if lo is not None and hi is not None and float(lo) >= 0 else "int8"
        return out_type

    def level(dtype, lo, hi):
        """The float value of one quantized step (MXNet's FloatForOneQuantizedLevel)."""
        return real_range(lo, hi) / f32(_QMAX[np.dtype(dtype).name])

    # quantize / dequantize / requantize --------------------------------------------------
    def quantize_v2(data, *, out_type, min_calib_range, max_calib_range):
        calibrated = min_calib_range is not None and max_calib_range is not None
        if data.dtype.name in QUANT:  # already quantized: MXNet passes it through
            if calibrated:
                lo, hi = scalar(min_calib_range), scalar(max_calib_range)
            else:
                lo = scalar(0 if data.dtype.name == "uint8" else -127)
                hi = scalar(_QMAX[data.dtype.name])
            return data.copy(), lo, hi
        x = data.astype(f32, copy=False)
        if calibrated:
            lo, hi = scalar(min_calib_range), scalar(max_calib_range)
        else:
            lo, hi = x.min().reshape(1), x.max().reshape(1)
        name = out_name(out_type, min_calib_range if calibrated else None,
                        max_calib_range if calibrated else None)
        return to_quantized(x, real_range(lo, hi), name)

    def quantize(data, min_range, max_range, *, out_type):
        x = data.astype(f32, copy=False)
        if out_type == "int8":
            return to_quantized(x, real_range(min_range, max_range), "int8")
        # the older op's uint8: (x - min) * 255 / (max - min) + 0.5, range (min, max)
        lo, hi = min_range.astype(f32), max_range.astype(f32)
        width = hi - lo
        scale = xp.where(width > 0, f32(255) / xp.where(width > 0, width, f32(1)), f32(0))
        q = xp.clip((x - lo) * scale.astype(f32) + f32(0.5), f32(0), f32(255))
        return xp.trunc(q).astype(xp.uint8), lo.copy(), hi.copy()

    def dequantize(data, min_range, max_range, *, out_type):
        if data.dtype.name == "uint8":
            lo, hi = min_range.astype(f32), max_range.astype(f32)
            return data.astype(f32) * ((hi - lo) / f32(255)) + lo
        return data.astype(f32) * (real_range(min_range, max_range) / f32(127))

    def int32_to_float(data, min_range, max_range):
        """MXNet's QuantizedToFloat for int32: q * (R / 2**31), in float32."""
        step = real_range(min_range, max_range) / f32(2147483647)
        return data.astype(f32) * step

    def requantize(data, min_range, max_range, *, out_type, min_calib_range,
                   max_calib_range):
        x = int32_to_float(data, min_range, max_range)
        calibrated = min_calib_range is not None and max_calib_range is not None
        if calibrated:
            r = real_range(scalar(min_calib_range), scalar(max_calib_range))
        else:  # the data's own range, from its int32 extremes (MXNet)
            r = real_range(x.min().reshape(1), x.max().reshape(1))
        name = out_name(out_type, min_calib_range if calibrated else None,
                        max_calib_range if calibrated else None)
        return to_quantized(x, r, name)

    # quantized layers ----------------------------------------------------------------------
    def product_range(data, weight, ranges):
        """(level of one int32 step, min_out, max_out) of data x weight (MXNet's
        QuantizationRangeForMultiplication)."""
        step = level(data.dtype, ranges[0], ranges[1]) * level(weight.dtype, ranges[2],
                                                              ranges[3])
        top = (step * f32(2147483647)).astype(f32)
        return step.astype(f32), (-top).astype(f32), top

    def add_bias(acc, bias, ranges, step, shape):
        """acc + the bias at the product's scale (int8: MXNet's QuantizedSumInitKernel,
        trunc(b * level_b / level_out); int32: as given)."""
        if bias.dtype.name == "int32":
            b = bias
        else:
            # MXNet divides the int32 range by INT32_MAX in double, then rounds to float
            out_level = ((step * f32(2147483647)).astype(xp.float64) / 2147483647.0).astype(f32)
            b_level = real_range(ranges[4], ranges[5]) / f32(127)
            scaled = bias.astype(f32) * b_level
            safe = xp.where(out_level != 0, out_level, f32(1))
            b = xp.where(out_level != 0, xp.trunc(scaled / safe), f32(0)).astype(xp.int32)
        return acc + b.reshape(shape)

    def quantized_fully_connected(data, weight, *rest, num_hidden, no_bias, flatten):
        bias = None if no_bias else rest[0]
        ranges = rest[0 if no_bias else 1:]
        k = weight.shape[1]
        a = data.reshape(data.shape[0], -1) if flatten else data.reshape(-1, k)
        ft = exact_float_dtype(k, data.dtype, weight.dtype)
        acc = (a.astype(ft) @ weight.astype(ft).T).astype(xp.int32)
        step, lo, hi = product_range(data, weight, ranges)
        if bias is not None:
            acc = add_bias(acc, bias, ranges, step, (1, -1))
        shape = (data.shape[0], num_hidden) if flatten else data.shape[:-1] + (num_hidden,)
        return acc.reshape(shape), lo, hi

    def quantized_conv(data, weight, *rest, kernel, stride, dilate, pad, num_filter,
                       num_group, no_bias):
        bias = None if no_bias else rest[0]
        ranges = rest[0 if no_bias else 1:]
        k = int(np.prod(weight.shape[1:]))
        ft = exact_float_dtype(k, data.dtype, weight.dtype)
        y = float_conv(data.astype(ft), weight.astype(ft), kernel=kernel, stride=stride,
                       dilate=dilate, pad=pad, num_filter=num_filter, num_group=num_group,
                       no_bias=True)
        acc = y.astype(xp.int32)
        step, lo, hi = product_range(data, weight, ranges)
        if bias is not None:
            acc = add_bias(acc, bias, ranges, step, (1, -1) + (1,) * len(kernel))
        return acc, lo, hi

    def quantized_flatten(data, min_data, max_data):
        return data.reshape(data.shape[0], -1).copy(), min_data.copy(), max_data.copy()

    def quantized_pooling(data, min_data, max_data, *, kernel, stride, pad, pool_type,
                          pooling_convention, count_include_pad, p_value):
        attrs = dict(kernel=kernel, stride=stride, pad=pad, pool_type=pool_type,
                     pooling_convention=pooling_convention,
                     count_include_pad=count_include_pad, p_value=p_value)
        if pool_type == "max":  # exact in float32
            y = float_pool(data.astype(f32), **attrs)
            return y.astype(data.dtype), min_data.copy(), max_data.copy()
        y = float_pool(data.astype(xp.float64), **attrs)
        rounded = xp.sign(y) * xp.floor(xp.abs(y) + 0.5)  # halves away from zero
        info = np.iinfo(data.dtype)
        return xp.clip(rounded, info.min, info.max).astype(data.dtype), min_data.copy(), \
            max_data.copy()

    def quantized_act(data, min_data, max_data, *, act_type):
        return xp.maximum(data, data.dtype.type(0)), min_data.copy(), max_data.copy()

    def quantized_embedding(data, weight, min_weight, max_weight, *, input_dim, output_dim):
        # indices as Embedding takes them: truncated, clipped to the table
        idx = xp.clip(data.astype(xp.int64), 0, input_dim - 1)
        return xp.take(weight, idx, axis=0), min_weight.copy(), max_weight.copy()

    def quantized_elemwise_mul(lhs, rhs, lhs_min, lhs_max, rhs_min, rhs_max, *,
                               min_calib_range, max_calib_range, enable_float_output):
        prod = lhs.astype(xp.int32) * rhs.astype(xp.int32)  # exact: |a * b| <= 2**14
        # MXNet's scales, float32: int8 value = q * R / 127
        lhs_scale = f32(127) / real_range(lhs_min, lhs_max)
        rhs_scale = f32(127) / real_range(rhs_min, rhs_max)
        if enable_float_output:
            # 1 / lhs_scale / rhs_scale in double, rounded to float once (MXNet's order)
            step = (1.0 / lhs_scale.astype(xp.float64) / rhs_scale.astype(xp.float64)
                    ).astype(f32)
            return (prod.astype(f32) * step,)  # one output (the op's count varies)
        if min_calib_range is None or max_calib_range is None:
            ranges = (lhs_min, lhs_max, rhs_min, rhs_max)
            _, lo, hi = product_range(lhs, rhs, ranges)
            return prod, lo, hi
        out_scale = f32(127) / real_range(scalar(min_calib_range), scalar(max_calib_range))
        scaled = prod.astype(f32) * (out_scale / lhs_scale / rhs_scale).astype(f32)
        # truncated as MXNet's cast; beyond the calibrated range it saturates at +-127
        q = xp.clip(xp.trunc(scaled), f32(-127), f32(127)).astype(xp.int8)
        return q, scalar(min_calib_range), scalar(max_calib_range)

    return {"quantize_v2": (quantize_v2, FLOAT | frozenset(QUANT)),
            "quantize": (quantize, frozenset({"float32"})),
            "dequantize": (dequantize, frozenset(QUANT)),
            "requantize": (requantize, frozenset({"int32"})),
            "quantized_fully_connected": (quantized_fully_connected, frozenset(QUANT)),
            "quantized_conv": (quantized_conv, frozenset(QUANT)),
            "quantized_flatten": (quantized_flatten, frozenset(QUANT)),
            "quantized_pooling": (quantized_pooling, frozenset(QUANT)),
            "quantized_act": (quantized_act, frozenset(QUANT)),
            "quantized_embedding": (quantized_embedding, frozenset({"int8"})),
            "quantized_elemwise_mul": (quantized_elemwise_mul, frozenset({"int8"}))}
