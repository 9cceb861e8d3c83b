"""What code written for MXNet 1.x's AMP reaches beyond ``mx.amp``'s functions: the
``amp.amp`` module (``from mxnet.contrib.amp import amp; amp.convert_model``) and
MXNet's numpy stand-in for bfloat16, ``np.dtype([('bfloat16', np.uint16)])`` (the dtype
MXNet's bfloat16 arrays report), wherever a dtype is taken; and the test helpers such
code compares bfloat16 results with."""
from __future__ import annotations

import numpy as np
import pytest

import hal
import mxcore as mx
from mxcore import amp as amp_package
from mxcore.amp import amp, convert
from mxcore.test_utils import assert_almost_equal_with_err, same_symbol_structure

#: MXNet 1.x's spelling of bfloat16 in numpy
MXNET_BFLOAT16 = np.dtype([("bfloat16", np.uint16)])


def test_amp_module_holds_the_conversion_functions_and_lists():
    assert amp.convert_model is convert.convert_model is amp_package.convert_model
    assert amp.convert_symbol is convert.convert_symbol
    assert amp.convert_hybrid_block is convert.convert_hybrid_block
    assert amp.lists is amp_package.lists


def test_mxnet_bfloat16_dtype_is_bfloat16():
    assert hal.to_dtype(MXNET_BFLOAT16) == hal.to_dtype("bfloat16")
    assert hal.dtype_name(MXNET_BFLOAT16) == "bfloat16"
    # other structured dtypes are left as they are
    other = np.dtype([("x", np.uint16)])
    assert hal.to_dtype(other) is other


def test_amp_cast_and_astype_take_mxnet_bfloat16():
    x = mx.nd.array([1.0, 1.00390625, -3.5, 1e4])
    y = mx.nd.amp_cast(x, dtype=MXNET_BFLOAT16)
    assert y.dtype == hal.to_dtype("bfloat16")
    assert np.array_equal(y.astype("float32").asnumpy(),
                          x.asnumpy().astype(hal.to_dtype("bfloat16")).astype(np.float32))
    assert x.astype(MXNET_BFLOAT16).dtype == hal.to_dtype("bfloat16")


def test_symbols_bind_with_mxnet_bfloat16():
    data = mx.sym.Variable("data", dtype=MXNET_BFLOAT16)
    fc = mx.sym.FullyConnected(data, num_hidden=4, name="fc")
    arg_types, out_types, _ = fc.infer_type_partial()
    assert out_types[0] == hal.to_dtype("bfloat16").type
    fc32 = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=4, name="fc")
    arg_types, _, _ = fc32.infer_type_partial(data=MXNET_BFLOAT16)
    assert arg_types[0] == hal.to_dtype("bfloat16").type
    exe = fc32.simple_bind(mx.cpu(), grad_req="null", data=(2, 3),
                           type_dict={"data": MXNET_BFLOAT16, "fc_weight": MXNET_BFLOAT16,
                                      "fc_bias": MXNET_BFLOAT16})
    assert all(a.dtype == hal.to_dtype("bfloat16") for a in exe.arg_arrays)
    exe.arg_dict["data"][:] = mx.nd.ones((2, 3)).astype("bfloat16")
    exe.arg_dict["fc_weight"][:] = mx.nd.ones((4, 3)).astype("bfloat16")
    out = exe.forward()[0]
    assert out.dtype == hal.to_dtype("bfloat16")
    assert np.array_equal(out.astype("float32").asnumpy(), np.full((2, 4), 3.0, np.float32))


def test_same_symbol_structure_compares_operators_in_order():
    data = mx.sym.Variable("data")
    a = mx.sym.FullyConnected(mx.sym.relu(data), num_hidden=2, name="a")
    b = mx.sym.FullyConnected(mx.sym.relu(data), num_hidden=7, name="b")
    c = mx.sym.FullyConnected(mx.sym.sigmoid(data), num_hidden=2, name="c")
    assert same_symbol_structure(a, b)
    assert not same_symbol_structure(a, c)


def test_assert_almost_equal_with_err_allows_a_fraction_of_mismatches():
    expected = np.zeros(100, np.float32)
    got = expected.copy()
    got[:3] = 1.0
    assert_almost_equal_with_err(got, expected, rtol=1e-3, atol=1e-3, etol=0.05)
    with pytest.raises(AssertionError, match="error rate 0.030000 exceeds etol=0.01"):
        assert_almost_equal_with_err(got, expected, rtol=1e-3, atol=1e-3, etol=0.01)
    with pytest.raises(AssertionError):  # etol 0 or None: every element must match
        assert_almost_equal_with_err(got, expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("second, stored", [("float32", "float32"), ("bfloat16", "bfloat16")])
def test_cast_optional_params_stores_a_parameter_read_only_by_casts_to_the_target(second,
                                                                                  stored):
    """A parameter whose every reader is an amp_cast to the target type is stored in
    it (MXNet's convert_symbol); one also cast to float32 stays float32."""
    data = mx.sym.var("data")
    group = mx.sym.Group([mx.sym.amp_cast(data, dtype=MXNET_BFLOAT16),
                          mx.sym.amp_cast(data, dtype=second)])
    converted = amp.convert_symbol(group, target_dtype="bfloat16", data_names=[],
                                   cast_optional_params=True)
    exe = converted.simple_bind(mx.cpu(), data=(1, 2))
    assert exe.arg_dict["data"].dtype == hal.to_dtype(stored)
    exe.arg_dict["data"][:] = mx.nd.array([[1.5, -2.0]]).astype(stored)
    for out in exe.forward():
        assert np.array_equal(out.astype("float32").asnumpy(), [[1.5, -2.0]])
    # without cast_optional_params parameters keep their float32
    plain = amp.convert_symbol(group, target_dtype="bfloat16", data_names=[])
    assert plain.simple_bind(mx.cpu(), data=(1, 2)).arg_dict["data"].dtype == np.float32


def test_download_model_fetches_symbol_and_params_by_name(tmp_path):
    """MXNet's AMP tests fetch their model with ``download_model``: the files land as
    ``<dst>/<name>-symbol.json`` and ``-0000.params``, ready for load_checkpoint."""
    from mxcore.test_utils import download_model
    src = tmp_path / "src"
    src.mkdir()
    fc = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2, name="fc")
    fc.save(str(src / "m-symbol.json"))
    mx.nd.save(str(src / "m-0000.params"), {"arg:fc_weight": mx.nd.ones((2, 3)),
                                             "arg:fc_bias": mx.nd.zeros((2,))})
    info = {"tiny": {"symbol": (src / "m-symbol.json").as_uri(),
                     "params": (src / "m-0000.params").as_uri()}}
    prefix, epoch = download_model("tiny", dst_dir=str(tmp_path / "models"), meta_info=info)
    assert prefix == str(tmp_path / "models" / "tiny") and epoch == 0
    sym, args, _ = mx.model.load_checkpoint(prefix, epoch)
    assert sym.list_arguments() == ["data", "fc_weight", "fc_bias"]
    assert np.array_equal(args["fc_weight"].asnumpy(), np.ones((2, 3)))
    assert download_model("unknown", dst_dir=str(tmp_path), meta_info=info) == (None, 0)
