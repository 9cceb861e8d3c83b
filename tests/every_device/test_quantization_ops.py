"""The quantization ops (mxcore/ops/quantization.py) on every device: a table of cases
against integer numpy references (the conformance table's float cases cannot express
integer ops with float32 range inputs, so the quantized ops keep their table here),
plus exactness of the int32 products, ranges, errors and non-differentiability."""
from __future__ import annotations

import json
from typing import Callable, NamedTuple

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError, OperatorError

nd = mx.nd
F32 = np.float32
I32_TOP = F32(2147483647)  # 2**31 in float32


# numpy references (int64 accumulation, MXNet's float32 formulas) ------------------------------
def ref_quantize_int8(x, r):
    scale = F32(127) / F32(r)
    return (np.sign(x) * np.minimum(np.abs(x).astype(F32) * scale + F32(0.5), F32(127))
            ).astype(np.int8)


def ref_quantize_uint8(x, r):
    scale = F32(255) / F32(r)
    return np.minimum(np.maximum(x, 0).astype(F32) * scale + F32(0.5), F32(255)).astype(np.uint8)


def ref_level(r, dtype):
    return F32(r) / F32(127 if np.dtype(dtype) == np.int8 else 255)


def ref_fc(data, weight, bias, rd, rw, rb):
    acc = data.reshape(len(data), -1).astype(np.int64) @ weight.astype(np.int64).T
    step = ref_level(rd, data.dtype) * ref_level(rw, weight.dtype)
    top = F32(step * I32_TOP)
    if bias is not None:
        out_level = F32(np.float64(top) / 2147483647.0)
        acc = acc + np.trunc(bias.astype(F32) * (F32(rb) / F32(127)) / out_level).astype(np.int64)
    return acc, -top, top


def ref_conv(data, weight, pad, stride):
    n, c, h, w = data.shape
    f, _, kh, kw = weight.shape
    x = np.pad(data.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    out = np.zeros((n, f, oh, ow), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
            out += np.einsum("nchw,fc->nfhw", patch, weight[:, :, i, j].astype(np.int64))
    return out


def qarr(rng, shape, dtype="int8"):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, size=shape).astype(dtype)


def rng_of(salt):
    return np.random.default_rng(1234 + salt)


def rng_arr(v, device):
    return nd.array(np.asarray([v], F32), ctx=device)


# the table ----------------------------------------------------------------------------------
class QCase(NamedTuple):
    name: str
    run: Callable  # (device, rng) -> None, asserting against the reference


def _quantize_v2_calibrated(device, rng):
    x = rng.standard_normal((3, 7)).astype(F32) * 2
    q, lo, hi = nd.contrib.quantize_v2(nd.array(x, ctx=device), min_calib_range=-1.5,
                                       max_calib_range=3.0)
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q.asnumpy(), ref_quantize_int8(np.clip(x, -3, 3), 3.0))
    assert (lo.asscalar(), hi.asscalar()) == (-3.0, 3.0)


def _quantize_v2_dynamic_round_trip(device, rng):
    x = rng.standard_normal((4, 5, 6)).astype(F32)
    q, lo, hi = nd.contrib.quantize_v2(nd.array(x, ctx=device))
    r = np.abs(x).max()
    assert hi.asscalar() == pytest.approx(r) and lo.asscalar() == pytest.approx(-r)
    np.testing.assert_array_equal(q.asnumpy(), ref_quantize_int8(x, r))
    back = nd.contrib.dequantize(q, lo, hi).asnumpy()
    assert back.dtype == F32
    assert np.abs(back - x).max() <= r / 127 / 2 * (1 + 1e-5)  # half a step


def _quantize_v2_uint8_round_trip(device, rng):
    x = rng.random((2, 9)).astype(F32) * 5
    q, lo, hi = nd.contrib.quantize_v2(nd.array(x, ctx=device), out_type="auto",
                                       min_calib_range=0.0, max_calib_range=5.0)
    assert q.dtype == np.uint8 and lo.asscalar() == 0.0 and hi.asscalar() == 5.0
    np.testing.assert_array_equal(q.asnumpy(), ref_quantize_uint8(x, 5.0))
    back = nd.contrib.dequantize(q, lo, hi).asnumpy()
    assert np.abs(back - x).max() <= 5.0 / 255 / 2 * (1 + 1e-5)


def _quantize_v1(device, rng):
    x = rng.random((3, 4)).astype(F32) * 4 - 1
    lo, hi = rng_arr(-1.0, device), rng_arr(3.0, device)
    q, qlo, qhi = nd.contrib.quantize(nd.array(x, ctx=device), lo, hi, out_type="uint8")
    want = np.trunc((x - F32(-1)) * (F32(255) / F32(4)) + F32(0.5)).astype(np.uint8)
    np.testing.assert_array_equal(q.asnumpy(), want)
    back = nd.contrib.dequantize(q, qlo, qhi).asnumpy()
    assert np.abs(back - x).max() <= 4 / 255 / 2 * (1 + 1e-5)
    q8, lo8, hi8 = nd.contrib.quantize(nd.array(x, ctx=device), lo, hi, out_type="int8")
    np.testing.assert_array_equal(q8.asnumpy(), ref_quantize_int8(x, 3.0))
    assert (lo8.asscalar(), hi8.asscalar()) == (-3.0, 3.0)


def _requantize_calibrated(device, rng):
    acc = rng.integers(-2 ** 30, 2 ** 30, size=(5, 6)).astype(np.int32)
    r_in = 40.0
    q, lo, hi = nd.contrib.requantize(nd.array(acc, ctx=device, dtype="int32"),
                                      rng_arr(-r_in, device), rng_arr(r_in, device),
                                      min_calib_range=-7.0, max_calib_range=5.0)
    assert q.dtype == np.int8 and (lo.asscalar(), hi.asscalar()) == (-7.0, 7.0)
    real = acc.astype(F32) * (F32(r_in) / I32_TOP)
    np.testing.assert_array_equal(q.asnumpy(), ref_quantize_int8(np.clip(real, -7, 7), 7.0))


def _requantize_dynamic(device, rng):
    acc = rng.integers(-1000, 1000, size=(4, 4)).astype(np.int32)
    q, lo, hi = nd.contrib.requantize(nd.array(acc, ctx=device, dtype="int32"),
                                      rng_arr(-2.0, device), rng_arr(2.0, device))
    real = acc.astype(F32) * (F32(2.0) / I32_TOP)
    r = np.abs(real).max()
    assert hi.asscalar() == pytest.approx(r, rel=1e-6) and lo.asscalar() == -hi.asscalar()
    assert np.abs(q.asnumpy()).max() == 127
    np.testing.assert_array_equal(q.asnumpy(), ref_quantize_int8(real, hi.asscalar()))


def _requantize_auto_uint8(device, rng):
    acc = rng.integers(-1000, 1000, size=(3, 3)).astype(np.int32)
    q, lo, hi = nd.contrib.requantize(nd.array(acc, ctx=device, dtype="int32"),
                                      rng_arr(-1.0, device), rng_arr(1.0, device),
                                      out_type="auto", min_calib_range=0.0,
                                      max_calib_range=1e-6)
    assert q.dtype == np.uint8 and lo.asscalar() == 0.0
    real = acc.astype(F32) * (F32(1.0) / I32_TOP)
    np.testing.assert_array_equal(q.asnumpy(), ref_quantize_uint8(real, F32(1e-6)))


def _fc_case(data_dtype, k, with_bias):
    def run(device, rng):
        data = qarr(rng, (6, k), data_dtype)
        weight, bias = qarr(rng, (5, k)), qarr(rng, (5,))
        rd, rw, rb = 2.5, 0.75, 0.3
        args = [nd.array(data, ctx=device, dtype=data_dtype),
                nd.array(weight, ctx=device, dtype="int8")]
        if with_bias:
            args.append(nd.array(bias, ctx=device, dtype="int8"))
        ranges = [(-rd, rd), (-rw, rw)] + ([(-rb, rb)] if with_bias else [])
        args += [rng_arr(v, device) for pair in ranges for v in pair]
        out, lo, hi = nd.contrib.quantized_fully_connected(*args, num_hidden=5,
                                                           no_bias=not with_bias)
        want, wlo, whi = ref_fc(data, weight, bias if with_bias else None, rd, rw, rb)
        assert out.dtype == np.int32
        np.testing.assert_array_equal(out.asnumpy(), want)
        assert (lo.asscalar(), hi.asscalar()) == (wlo, whi)
    return run


def _fc_int32_bias(device, rng):
    data, weight = qarr(rng, (2, 3, 4)), qarr(rng, (7, 12))
    bias = rng.integers(-10 ** 6, 10 ** 6, size=7).astype(np.int32)
    ones = [rng_arr(v, device) for v in (-1.0, 1.0, -1.0, 1.0, 0.0, 0.0)]
    out, _, _ = nd.contrib.quantized_fully_connected(
        nd.array(data, ctx=device, dtype="int8"), nd.array(weight, ctx=device, dtype="int8"),
        nd.array(bias, ctx=device, dtype="int32"), *ones, num_hidden=7)
    want = data.reshape(2, -1).astype(np.int64) @ weight.astype(np.int64).T + bias
    np.testing.assert_array_equal(out.asnumpy(), want)


def _conv_case(data_dtype, channels, pad, stride):
    def run(device, rng):
        data = qarr(rng, (2, channels, 7, 6), data_dtype)
        weight, bias = qarr(rng, (4, channels, 3, 3)), qarr(rng, (4,))
        rd, rw, rb = 1.0, 0.5, 0.25
        args = [nd.array(data, ctx=device, dtype=data_dtype),
                nd.array(weight, ctx=device, dtype="int8"),
                nd.array(bias, ctx=device, dtype="int8")]
        args += [rng_arr(v, device) for v in (-rd, rd, -rw, rw, -rb, rb)]
        out, lo, hi = nd.contrib.quantized_conv(*args, kernel=(3, 3), pad=(pad, pad),
                                                stride=(stride, stride), num_filter=4)
        step = ref_level(rd, data.dtype) * ref_level(rw, np.int8)
        top = F32(step * I32_TOP)
        out_level = F32(np.float64(top) / 2147483647.0)
        b32 = np.trunc(bias.astype(F32) * (F32(rb) / F32(127)) / out_level).astype(np.int64)
        want = ref_conv(data, weight, pad, stride) + b32[None, :, None, None]
        assert out.dtype == np.int32
        np.testing.assert_array_equal(out.asnumpy(), want)
        assert hi.asscalar() == top and lo.asscalar() == -top
    return run


def _pooling(device, rng):
    data = qarr(rng, (2, 3, 6, 6))
    lo, hi = rng_arr(-2.0, device), rng_arr(2.0, device)
    x = nd.array(data, ctx=device, dtype="int8")
    mx_out, mlo, mhi = nd.contrib.quantized_pooling(x, lo, hi, kernel=(2, 2), stride=(2, 2))
    want = data.reshape(2, 3, 3, 2, 3, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(mx_out.asnumpy(), want)
    assert mx_out.dtype == np.int8 and (mlo.asscalar(), mhi.asscalar()) == (-2.0, 2.0)
    avg, _, _ = nd.contrib.quantized_pooling(x, lo, hi, kernel=(2, 2), stride=(2, 2),
                                             pool_type="avg")
    mean = data.astype(np.float64).reshape(2, 3, 3, 2, 3, 2).mean(axis=(3, 5))
    np.testing.assert_array_equal(avg.asnumpy(), np.sign(mean) * np.floor(np.abs(mean) + 0.5))
    glob, _, _ = nd.contrib.quantized_pooling(x, lo, hi, global_pool=True, pool_type="max")
    np.testing.assert_array_equal(glob.asnumpy(), data.max(axis=(2, 3), keepdims=True))


def _flatten_and_act(device, rng):
    data = qarr(rng, (2, 3, 4))
    lo, hi = rng_arr(-1.0, device), rng_arr(1.0, device)
    flat, flo, fhi = nd.contrib.quantized_flatten(nd.array(data, ctx=device, dtype="int8"),
                                                  lo, hi)
    np.testing.assert_array_equal(flat.asnumpy(), data.reshape(2, 12))
    assert (flo.asscalar(), fhi.asscalar()) == (-1.0, 1.0)
    relu, rlo, rhi = nd.contrib.quantized_act(nd.array(data, ctx=device, dtype="int8"), lo, hi)
    np.testing.assert_array_equal(relu.asnumpy(), np.maximum(data, 0))
    assert relu.dtype == np.int8 and (rlo.asscalar(), rhi.asscalar()) == (-1.0, 1.0)


def _fc_at_float32_bound(device, rng):
    """K = 1024 terms of (-128) * (-128): every partial sum up to 2**24 is exact."""
    k = 1024
    data = np.full((2, k), -128, np.int8)
    data[1, ::2] = 127
    weight = np.full((3, k), -128, np.int8)
    weight[2, 1::3] = 127
    ones = [rng_arr(v, device) for v in (-1.0, 1.0, -1.0, 1.0)]
    out, _, _ = nd.contrib.quantized_fully_connected(
        nd.array(data, ctx=device, dtype="int8"), nd.array(weight, ctx=device, dtype="int8"),
        None, *ones, num_hidden=3, no_bias=True)
    np.testing.assert_array_equal(out.asnumpy(), data.astype(np.int64) @ weight.astype(np.int64).T)
    assert out.asnumpy()[0, 0] == 2 ** 24


CASES = [
    QCase("fc extremes at the float32 bound", _fc_at_float32_bound),
    QCase("quantize_v2 calibrated", _quantize_v2_calibrated),
    QCase("quantize_v2 dynamic round trip", _quantize_v2_dynamic_round_trip),
    QCase("quantize_v2 uint8 round trip", _quantize_v2_uint8_round_trip),
    QCase("quantize (v1) int8 and uint8", _quantize_v1),
    QCase("requantize calibrated", _requantize_calibrated),
    QCase("requantize dynamic", _requantize_dynamic),
    QCase("requantize auto -> uint8", _requantize_auto_uint8),
    QCase("fc int8 bias", _fc_case("int8", 33, True)),
    QCase("fc uint8 data no bias", _fc_case("uint8", 17, False)),
    # K * 128 * 255 > 2**24: the float64 product path
    QCase("fc uint8 data, float64 path", _fc_case("uint8", 700, True)),
    QCase("fc int8, float64 path", _fc_case("int8", 1100, True)),
    QCase("fc int32 bias, 3-d data", _fc_int32_bias),
    QCase("conv int8 pad 1", _conv_case("int8", 3, 1, 1)),
    QCase("conv uint8 stride 2", _conv_case("uint8", 2, 0, 2)),
    QCase("conv int8 float64 path", _conv_case("int8", 120, 1, 1)),
    QCase("pooling max/avg/global", _pooling),
    QCase("flatten and relu", _flatten_and_act),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_quantized_op_table(case, device):
    case.run(device, rng_of(CASES.index(case)))


def test_exact_product_path_choice():
    from mxcore_cpu.kernels.quantization import exact_float_dtype
    assert exact_float_dtype(1024, np.int8, np.int8) is np.float32      # 1024 * 128 * 128 = 2**24
    assert exact_float_dtype(1025, np.int8, np.int8) is np.float64
    assert exact_float_dtype(514, np.uint8, np.int8) is np.float32     # 514 * 255 * 128 < 2**24
    assert exact_float_dtype(515, np.uint8, np.int8) is np.float64


# errors ---------------------------------------------------------------------------------------
def _fc_inputs(device, data_dtype="int8", ranges=6):
    rng = rng_of(99)
    arrays = [nd.array(qarr(rng, (2, 4)) if data_dtype != "float32" else rng.random((2, 4)),
                       ctx=device, dtype=data_dtype),
              nd.array(qarr(rng, (3, 4)), ctx=device, dtype="int8"),
              nd.array(qarr(rng, (3,)), ctx=device, dtype="int8")]
    return arrays + [rng_arr(1.0, device) for _ in range(ranges)]


@pytest.mark.parametrize("make, pieces", [
    (lambda d: nd.contrib.quantized_fully_connected(*_fc_inputs(d, "float32"), num_hidden=3),
     ["_contrib_quantized_fully_connected", "data must be int8 or uint8", "float32",
      "(2, 4)"]),
    (lambda d: nd.contrib.quantized_fully_connected(*_fc_inputs(d, ranges=4), num_hidden=3),
     ["_contrib_quantized_fully_connected", "takes 9 arrays", "got 7"]),
    (lambda d: nd.contrib.quantized_fully_connected(*_fc_inputs(d), num_hidden=5),
     ["weight shape (3, 4) does not match: expected (5, 4)"]),
    (lambda d: nd.contrib.dequantize(nd.ones((2, 2), ctx=d), nd.ones((1,), ctx=d),
                                     nd.ones((1,), ctx=d)),
     ["_contrib_dequantize", "data must be int8 or uint8", "float32"]),
    (lambda d: nd.contrib.dequantize(nd.ones((2, 2), ctx=d, dtype="int8"), nd.ones((2,), ctx=d),
                                     nd.ones((1,), ctx=d)),
     ["_contrib_dequantize", "input 1 (a range) must be a float32 array of shape (1,)"]),
    (lambda d: nd.contrib.requantize(nd.ones((2, 2), ctx=d, dtype="int8"), nd.ones((1,), ctx=d),
                                     nd.ones((1,), ctx=d)),
     ["_contrib_requantize", "data must be int32"]),
    (lambda d: nd.contrib.quantize_v2(nd.ones((2,), ctx=d), out_type="int4"),
     ["_contrib_quantize_v2", "out_type must be one of"]),
    (lambda d: nd.contrib.quantized_act(nd.ones((2,), ctx=d, dtype="int8"), nd.ones((1,), ctx=d),
                                        nd.ones((1,), ctx=d), act_type="tanh"),
     ["_contrib_quantized_act", "act_type must be relu"]),
    (lambda d: nd.contrib.quantized_pooling(nd.ones((1, 1, 4, 4), ctx=d, dtype="int8"),
                                            nd.ones((1,), ctx=d), nd.ones((1,), ctx=d),
                                            kernel=(2, 2), pool_type="sum"),
     ["_contrib_quantized_pooling", "pool_type must be max or avg"]),
])
def test_bad_input_names_op_shapes_dtypes_device(make, pieces, device):
    with pytest.raises(OperatorError) as info:
        make(device)
    message = str(info.value)
    for piece in pieces:
        assert piece in message
    assert repr(device) in message or str(device) in message


@pytest.mark.parametrize("index_dtype", ["float32", "int32"])
def test_quantized_embedding_gathers_int8_rows(index_dtype, device):
    """Indices as Embedding takes them (truncated, clipped to the table); the weight's
    range passes through; the graph form needs only the data to bind."""
    rng = rng_of(7)
    weight = qarr(rng, (5, 3))
    idx = np.array([[0, 4], [2.7, 9], [-3, 1]], dtype=index_dtype)
    q, lo, hi = nd.contrib.quantized_embedding(nd.array(idx, ctx=device, dtype=index_dtype),
                                               nd.array(weight, ctx=device, dtype="int8"),
                                               rng_arr(-2.5, device), rng_arr(2.5, device),
                                               input_dim=5, output_dim=3)
    expected = weight[np.clip(idx.astype(np.int64), 0, 4)]
    assert q.dtype == np.int8 and q.shape == (3, 2, 3)
    assert np.array_equal(q.asnumpy(), expected)
    assert lo.asnumpy()[0] == -2.5 and hi.asnumpy()[0] == 2.5
    sym = mx.sym.contrib.quantized_embedding(mx.sym.var("data"), input_dim=5, output_dim=3,
                                             name="emb")
    assert sym.list_arguments() == ["data", "emb_weight", "emb_min_weight", "emb_max_weight"]
    assert sym.list_outputs() == ["emb_output", "emb_min_output", "emb_max_output"]
    exe = sym.simple_bind(device, grad_req="null", data=(3, 2))
    args = [exe.arg_dict[n] for n in sym.list_arguments()]
    assert [a.dtype for a in args[1:]] == [np.int8, np.float32, np.float32]
    assert [a.shape for a in args[1:]] == [(5, 3), (1,), (1,)]
    with pytest.raises(OperatorError, match="weight must be int8"):
        nd.contrib.quantized_embedding(nd.zeros((2,), ctx=device), nd.zeros((5, 3), ctx=device),
                                       rng_arr(-1, device), rng_arr(1, device),
                                       input_dim=5, output_dim=3)


def test_quantized_elemwise_mul_three_output_forms(device):
    rng = rng_of(11)
    a, b = qarr(rng, (4, 5)), qarr(rng, (4, 5))
    a[0, 0], b[0, 0] = -128, -128  # the int8 extreme multiplies exactly too
    ra, rb = F32(2.0), F32(0.5)
    args = [nd.array(a, ctx=device, dtype="int8"), nd.array(b, ctx=device, dtype="int8"),
            rng_arr(-ra, device), rng_arr(ra, device), rng_arr(-rb, device),
            rng_arr(rb, device)]
    exact = a.astype(np.int64) * b.astype(np.int64)
    # int32: the exact product, over the product's range (a quantized layer's)
    q, lo, hi = nd.contrib.quantized_elemwise_mul(*args)
    assert q.dtype == np.int32 and np.array_equal(q.asnumpy(), exact)
    top = F32(ref_level(ra, np.int8) * ref_level(rb, np.int8)) * I32_TOP
    assert hi.asnumpy()[0] == np.float32(top) and lo.asnumpy()[0] == -np.float32(top)
    # float32: the real product (q_a * R_a / 127) * (q_b * R_b / 127)
    f = nd.contrib.quantized_elemwise_mul(*args, enable_float_output=True)
    assert f.dtype == np.float32 and f.shape == (4, 5)
    np.testing.assert_allclose(f.asnumpy(), exact * (2.0 / 127) * (0.5 / 127), rtol=1e-6)
    # int8 to a calibrated range: truncated, saturating at +-127
    q8, lo8, hi8 = nd.contrib.quantized_elemwise_mul(*args, min_calib_range=-0.01,
                                                     max_calib_range=0.01)
    real = exact * (2.0 / 127) * (0.5 / 127)
    expected = np.clip(np.trunc(real * 127 / 0.01), -127, 127)
    assert q8.dtype == np.int8
    assert np.abs(q8.asnumpy().astype(np.int64) - expected).max() <= 1  # float32 rounding
    assert (q8.asnumpy()[np.abs(real) > 0.011] == np.sign(real[np.abs(real) > 0.011]) * 127).all()
    assert lo8.asnumpy()[0] == F32(-0.01) and hi8.asnumpy()[0] == F32(0.01)
    with pytest.raises(OperatorError, match="lhs must be int8"):
        nd.contrib.quantized_elemwise_mul(args[0].astype("uint8"), *args[1:])
    with pytest.raises(OperatorError, match="must have one shape"):
        nd.contrib.quantized_elemwise_mul(args[0], args[1][:2], *args[2:])


def test_not_differentiable(device):
    x = nd.array(np.linspace(-1, 1, 6, dtype=F32), ctx=device)
    x.attach_grad()
    with mx.autograd.record():
        q, lo, hi = nd.contrib.quantize_v2(x)
        y = nd.contrib.dequantize(q, lo, hi)
    with pytest.raises(MXCoreError, match="'dequantize' is not differentiable"):
        y.backward()


def test_symbols_and_recorded_graphs_use_mxnets_names(device):
    data = mx.sym.var("data")
    q = mx.sym.contrib.quantize_v2(data, out_type="int8", name="dq")
    assert q.list_outputs() == ["dq_output", "dq_min_output", "dq_max_output"]
    fc = mx.sym.contrib.quantized_fully_connected(q[0], num_hidden=4, no_bias=True, name="qfc")
    assert fc.list_arguments() == ["data", "qfc_weight", "qfc_min_data", "qfc_max_data",
                                   "qfc_min_weight", "qfc_max_weight"]
    x = nd.array(np.linspace(-2, 2, 12, dtype=F32).reshape(3, 4), ctx=device)
    x.attach_grad()
    with mx.autograd.record():
        y = nd.contrib.dequantize(*nd.contrib.quantize_v2(x, min_calib_range=-2.0,
                                                           max_calib_range=2.0))
    graph = mx.autograd.get_symbol(y)
    ops = [n["op"] for n in json.loads(graph.tojson())["nodes"] if n["op"] != "null"]
    assert ops == ["_contrib_quantize_v2", "_contrib_dequantize"]
    exe = graph.bind(device, {graph.list_arguments()[0]: x})
    np.testing.assert_array_equal(exe.forward()[0].asnumpy(), y.asnumpy())
