"""What code written for MXNet 1.x's ``mx.contrib.quantization`` reaches beyond
``quantize_model``/``quantize_net``: the ``mx.contrib.quant`` name, the underscore
steps (``_quantize_symbol``, ``_quantize_params``, ``_calibrate_quantized_sym``,
``_smooth_distribution``), calibration of a model with a label input from batches that
carry no labels, and binding quantized graphs from the data's shape and dtype alone."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.contrib import quantization


def _conv_fc_softmax():
    data = mx.sym.Variable("data")
    conv = mx.sym.Convolution(data, kernel=(1, 1), num_filter=4, name="conv")
    act = mx.sym.Activation(conv, act_type="relu", name="relu")
    fc = mx.sym.FullyConnected(act, num_hidden=3, name="fc")
    return mx.sym.SoftmaxOutput(fc, name="softmax")


def _params(sym, data_shape):
    arg_shapes, _, _ = sym.infer_shape(data=data_shape)
    rng = np.random.default_rng(0)
    return {n: mx.nd.array(rng.uniform(-1, 1, s).astype(np.float32))
            for n, s in zip(sym.list_arguments(), arg_shapes)
            if n not in ("data", "softmax_label")}


def test_contrib_quant_is_the_quantization_module():
    assert mx.contrib.quant is quantization
    assert mx.contrib.quant.quantize_model is quantization.quantize_model


def test_smooth_distribution_moves_eps_onto_empty_bins():
    p = np.array([0.0, 0.0, 4.0, 0.0, 1.0])
    got = quantization._smooth_distribution(p, eps=1e-3)
    # 3 empty bins get 1e-3 each, taken evenly (1.5e-3) from the 2 others
    np.testing.assert_allclose(got, [1e-3, 1e-3, 4 - 1.5e-3, 1e-3, 1 - 1.5e-3], rtol=1e-6)
    assert got.dtype == np.float32
    assert np.isclose(got.sum(), p.sum(), rtol=1e-6)


def test_smooth_distribution_refuses_empty_and_too_large_eps():
    with pytest.raises(ValueError, match="all 3 entries are 0"):
        quantization._smooth_distribution(np.zeros(3))
    with pytest.raises(ValueError, match="too large"):
        quantization._smooth_distribution(np.array([0.0, 0.0, 0.0, 1e-4]), eps=1e-3)


def test_quantize_symbol_and_params_offline():
    sym = _conv_fc_softmax()
    params = _params(sym, (2, 3, 4, 4))
    qsym, calib = quantization._quantize_symbol(sym, offline_params=list(params),
                                                quantize_mode="full")
    args = qsym.list_arguments()
    assert "conv_weight_quantize" in args and "conv_weight" not in args
    assert set(calib) >= {"data", "conv_output", "fc_output"}
    qparams = quantization._quantize_params(qsym, params, th_dict={})
    assert qparams["conv_weight_quantize"].dtype == np.int8
    w = params["conv_weight"].asnumpy()
    r = np.abs(w).max()  # int8 is symmetric over the weight's own min and max
    np.testing.assert_allclose(qparams["conv_weight_quantize_min"].asnumpy(), [-r])
    np.testing.assert_allclose(qparams["conv_weight_quantize_max"].asnumpy(), [r])
    assert set(qparams) <= set(args)
    # without offline_params the weights stay float32 parameters, quantized at run time
    qsym_online, _ = quantization._quantize_symbol(sym, quantize_mode="full")
    assert "conv_weight" in qsym_online.list_arguments()


def test_quantize_symbol_rejects_bad_arguments():
    sym = _conv_fc_softmax()
    with pytest.raises(ValueError, match="quantized_dtype 'int4'"):
        quantization._quantize_symbol(sym, quantized_dtype="int4")
    with pytest.raises(ValueError, match="channel-wise"):
        quantization._quantize_symbol(sym, quantize_granularity="channel-wise")
    with pytest.raises(ValueError, match="must be a Symbol"):
        quantization._quantize_symbol("not a symbol")


def test_calibrate_quantized_sym_sets_requantize_ranges():
    sym = _conv_fc_softmax()
    qsym, _ = quantization._quantize_symbol(sym, quantize_mode="full")
    assert quantization._calibrate_quantized_sym(qsym, {}) is qsym
    cq = quantization._calibrate_quantized_sym(qsym, {"conv_output": (-1.5, 2.5),
                                                      "fc_output": (-3.0, 3.0)})
    attrs = cq.attr_dict()
    assert float(attrs["requantize_conv"]["min_calib_range"]) == -1.5
    assert float(attrs["requantize_conv"]["max_calib_range"]) == 2.5
    assert float(attrs["requantize_fc"]["max_calib_range"]) == 3.0
    assert "min_calib_range" not in qsym.attr_dict().get("requantize_conv", {})


def test_quantize_model_calibrates_a_model_with_a_label_input_from_unlabelled_batches():
    sym = _conv_fc_softmax()
    params = _params(sym, (2, 3, 4, 4))
    batches = mx.io.NDArrayIter(mx.nd.random.uniform(shape=(4, 3, 4, 4)), batch_size=2)
    qsym, qargs, _ = quantization.quantize_model(sym, params, {}, calib_mode="naive",
                                                 calib_data=batches, quantize_mode="full")
    attrs = qsym.attr_dict()
    assert "max_calib_range" in attrs["requantize_fc"]
    # the calibrated model runs, its label input bound like the float model's
    exe = qsym.simple_bind(mx.cpu(), grad_req="null", data=(2, 3, 4, 4))
    for name, value in qargs.items():
        exe.arg_dict[name][:] = value
    exe.arg_dict["data"][:] = mx.nd.ones((2, 3, 4, 4))
    out = exe.forward()[0].asnumpy()
    assert out.shape == (2, 3) and np.allclose(out.sum(axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda d: mx.sym.contrib.quantized_act(d, mx.sym.Variable("min_data"),
                                           mx.sym.Variable("max_data"), act_type="relu"),
    lambda d: mx.sym.contrib.quantized_pooling(d, mx.sym.Variable("min_data"),
                                               mx.sym.Variable("max_data"), kernel=(2, 2),
                                               pool_type="max"),
    lambda d: mx.sym.contrib.quantized_flatten(d, mx.sym.Variable("min_data"),
                                               mx.sym.Variable("max_data")),
], ids=["act", "pooling", "flatten"])
def test_quantized_ops_bind_from_the_data_alone(make):
    """The ranges of a quantized op are float32 (1,) arrays whatever the data: binding
    needs only the data's shape and dtype (MXNet's shape and type rules)."""
    sym = make(mx.sym.Variable("data", dtype="int8"))
    exe = sym.simple_bind(mx.cpu(), grad_req="null", data=(1, 2, 4, 4))
    for name in ("min_data", "max_data"):
        assert exe.arg_dict[name].shape == (1,)
        assert exe.arg_dict[name].dtype == np.float32
    exe.arg_dict["data"][:] = mx.nd.array(np.arange(-16, 16).reshape(1, 2, 4, 4), dtype="int8")
    exe.arg_dict["min_data"][:] = -1.0
    exe.arg_dict["max_data"][:] = 1.0
    q, lo, hi = exe.forward()
    assert q.dtype == np.int8 and lo.asnumpy()[0] == -1.0 and hi.asnumpy()[0] == 1.0


def test_quantized_fc_weight_is_int8_under_uint8_data():
    v = mx.sym.Variable
    sym = mx.sym.contrib.quantized_fully_connected(
        data=v("data", dtype="uint8"), weight=v("weight"), min_data=v("min_data"),
        max_data=v("max_data"), min_weight=v("min_weight"), max_weight=v("max_weight"),
        num_hidden=3, no_bias=True)
    arg_types, out_types, _ = sym.infer_type()
    types = dict(zip(sym.list_arguments(), arg_types))
    assert types["weight"] == np.int8
    assert all(types[n] == np.float32 for n in ("min_data", "max_data", "min_weight",
                                                "max_weight"))
    assert out_types == [np.int32, np.float32, np.float32]
    # and with shapes, binding allocates them so
    exe = sym.simple_bind(mx.cpu(), grad_req="null", data=(2, 5))
    assert exe.arg_dict["weight"].dtype == np.int8 and exe.arg_dict["weight"].shape == (3, 5)
    assert exe.arg_dict["max_weight"].dtype == np.float32
    assert exe.arg_dict["max_weight"].shape == (1,)


def test_quantized_graph_types_without_shapes():
    sym = _conv_fc_softmax()
    qsym, _ = quantization._quantize_symbol(sym, quantize_mode="full")
    _, out_types, _ = qsym.infer_type_partial(data="float32")
    assert out_types == [np.float32]
    inner = qsym.get_internals()
    names = inner.list_outputs()
    _, types, _ = inner.infer_type_partial(data="float32")
    by_name = dict(zip(names, types))
    assert by_name["quantized_fc_output"] == np.int32
    assert by_name["requantize_fc_output"] == np.int8
    assert by_name["requantize_fc_min_output"] == np.float32


def test_calibration_from_an_endless_dummy_iterator_stops_at_num_calib_examples():
    from mxcore.test_utils import DummyIter
    sym = _conv_fc_softmax()
    params = _params(sym, (2, 3, 4, 4))
    first = mx.nd.random.uniform(shape=(2, 3, 4, 4))
    endless = DummyIter(mx.io.NDArrayIter(mx.nd.concat(first, -first, dim=0), batch_size=2))
    assert next(endless) is next(endless)  # the first batch, again and again
    qsym, _, _ = quantization.quantize_model(sym, params, {}, calib_mode="naive",
                                             calib_data=endless, num_calib_examples=6,
                                             quantize_mode="full")
    # only the first batch (non-negative data) was seen: data's range starts at 0
    attrs = qsym.attr_dict()["data_quantize"]
    assert float(attrs["min_calib_range"]) >= 0.0


@pytest.mark.parametrize("float_output, outputs", [
    (False, ["m_output", "m_min_output", "m_max_output"]), (True, ["m_output"])])
def test_quantized_elemwise_mul_symbol_outputs_follow_enable_float_output(float_output,
                                                                          outputs):
    v = mx.sym.Variable
    sym = mx.sym.contrib.quantized_elemwise_mul(v("a", dtype="int8"), v("b", dtype="int8"),
                                                enable_float_output=float_output, name="m")
    assert sym.list_outputs() == outputs
    exe = sym.simple_bind(mx.cpu(), grad_req="null", a=(2, 3), b=(2, 3))
    assert [exe.arg_dict[n].dtype for n in ("m_lhs_min", "m_rhs_max")] == [np.float32] * 2
    exe.arg_dict["a"][:] = mx.nd.full((2, 3), 3, dtype="int8")
    exe.arg_dict["b"][:] = mx.nd.full((2, 3), -4, dtype="int8")
    for name in ("m_lhs_min", "m_rhs_min"):
        exe.arg_dict[name][:] = -127.0
    for name in ("m_lhs_max", "m_rhs_max"):
        exe.arg_dict[name][:] = 127.0
    out = exe.forward()
    assert len(out) == len(outputs)
    assert out[0].dtype == (np.float32 if float_output else np.int32)
    assert (out[0].asnumpy() == -12).all()
