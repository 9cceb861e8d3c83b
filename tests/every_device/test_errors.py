"""Bad input gives errors naming the operator, shapes, dtypes and device, and
leaves no partial result behind."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from hal import DeviceUnavailableError
from mxcore.base import MXCoreError, NoKernelError, OperatorError, UnknownOperatorError

nd = mx.nd


def test_shape_mismatch_names_everything(device):
    a, b = nd.ones((2, 3), ctx=device), nd.ones((4, 5), ctx=device)
    with pytest.raises(OperatorError) as info:
        a + b
    msg = str(info.value)
    assert "'add'" in msg and "(2, 3)" in msg and "(4, 5)" in msg and "float32" in msg
    assert repr(device) in msg
    assert info.value.op == "add" and info.value.shapes == ((2, 3), (4, 5))


def test_dtype_mismatch(device):
    with pytest.raises(OperatorError, match="different dtypes.*float32.*float64|float64"):
        nd.ones((2,), ctx=device) * nd.ones((2,), ctx=device, dtype="float64")


#: multi-input ops whose inputs must share one dtype: a float64 array among float32
#: ones is refused up front (numpy would promote it silently, and backward then fail)
MIXED_DTYPE_CASES = {
    "fully_connected": lambda a, b, dev: nd.FullyConnected(
        b, nd.ones((4, 3), ctx=dev), nd.zeros((4,), ctx=dev), num_hidden=4),
    "fully_connected bias": lambda a, b, dev: nd.FullyConnected(
        a, nd.ones((4, 3), ctx=dev), nd.zeros((4,), ctx=dev, dtype="float64"), num_hidden=4),
    "dot": lambda a, b, dev: nd.dot(a, b.T),
    "batch_dot": lambda a, b, dev: nd.batch_dot(a.expand_dims(0), b.T.expand_dims(0)),
    "concat": lambda a, b, dev: nd.concat(a, b, dim=0),
    "stack": lambda a, b, dev: nd.stack(a, b),
    "where": lambda a, b, dev: nd.where(a, a, b),
    "layer_norm": lambda a, b, dev: nd.LayerNorm(b, nd.ones((3,), ctx=dev),
                                                 nd.zeros((3,), ctx=dev)),
}


@pytest.mark.parametrize("case", sorted(MIXED_DTYPE_CASES))
def test_mixed_dtypes_are_refused_naming_them(device, case):
    a = nd.ones((2, 3), ctx=device)
    b = nd.ones((2, 3), ctx=device, dtype="float64")
    with pytest.raises(OperatorError) as info:
        MIXED_DTYPE_CASES[case](a, b, device)
    msg = str(info.value)
    assert "dtypes" in msg and "float64" in msg and "float32" in msg and repr(device) in msg
    assert info.value.op == case.split()[0]


def test_layer_norm_refuses_gamma_of_the_wrong_length(device):
    x = nd.ones((2, 3), ctx=device)
    with pytest.raises(OperatorError, match=r"'layer_norm'.*gamma shape \(1,\)"):
        nd.LayerNorm(x, nd.ones((1,), ctx=device), nd.zeros((3,), ctx=device))


def test_dense_with_float64_input_and_float32_weights_says_so(device):
    net = mx.gluon.nn.Dense(4, in_units=3)
    net.initialize(ctx=device)
    with pytest.raises(OperatorError, match="'fully_connected'.*dtypes differ.*data float64"):
        net(nd.ones((2, 3), ctx=device, dtype="float64"))


def test_fully_connected_act_type_and_backward_inputs_are_checked(device):
    x, w = nd.ones((2, 3), ctx=device), nd.ones((4, 3), ctx=device)
    with pytest.raises(OperatorError, match=r"'fully_connected'.*act_type.*'gelu'"):
        nd.FullyConnected(x, w, no_bias=True, act_type="gelu")
    y = nd.FullyConnected(x, w, no_bias=True, act_type="relu")
    with pytest.raises(OperatorError, match=r"'fully_connected_backward'.*out_grad \(2, 5\)"
                                            r".*\(2, 4\).*on " + repr(device).replace("(", r"\(")
                                            .replace(")", r"\)")):
        nd.fully_connected_backward(nd.ones((2, 5), ctx=device), x, w, y, no_bias=True)
    with pytest.raises(OperatorError, match=r"'fully_connected_backward'.*no bias gradient"):
        nd.fully_connected_backward(y, x, w, y, no_bias=True, grads=(1, 1, 1))
    with pytest.raises(OperatorError, match=r"'fully_connected_backward'.*float64"):
        nd.fully_connected_backward(y.astype("float64"), x, w, y, no_bias=True)


def test_different_devices():
    a, b = nd.ones((2,), ctx=mx.cpu(0)), nd.ones((2,), ctx=mx.cpu(1))
    with pytest.raises(OperatorError, match=r"different devices.*cpu\(0\).*cpu\(1\)"):
        a + b
    with pytest.raises(OperatorError, match="different devices"):
        nd.concat(a, b, dim=0)


def test_dot_and_reshape_errors(device):
    with pytest.raises(OperatorError, match=r"'dot'.*inner dimensions.*\(2, 3\).*\(4, 5\)"):
        nd.dot(nd.ones((2, 3), ctx=device), nd.ones((4, 5), ctx=device))
    with pytest.raises(OperatorError, match=r"'reshape'.*\(2, 3\)"):
        nd.ones((2, 3), ctx=device).reshape((4, 2))
    with pytest.raises(OperatorError, match="'split'.*not divisible"):
        nd.split(nd.ones((2, 3), ctx=device), 2, axis=1)
    with pytest.raises(MXCoreError, match="axis 5 is out of range"):
        nd.ones((2, 3), ctx=device).sum(axis=5)


def test_missing_kernel_for_dtype(device):
    with pytest.raises(NoKernelError, match="'exp'.*int32.*float"):
        nd.exp(nd.ones((2,), ctx=device, dtype="int32"))


def test_unknown_operator_and_attribute():
    with pytest.raises(UnknownOperatorError, match="no_such_op"):
        nd.invoke("no_such_op")
    with pytest.raises(AttributeError, match="no_such_op"):
        nd.no_such_op
    with pytest.raises(MXCoreError, match=r"'sum'.*unknown attribute.*'axsi'"):
        nd.invoke("sum", nd.ones((2,)), axsi=0)
    r = nd.invoke("sum", nd.ones((2, 3)), axis=(1,))
    assert r.shape == (2,)


def test_unknown_devices_and_dtypes():
    with pytest.raises(DeviceUnavailableError, match="no plugin provides device kind 'tpu'"):
        mx.device("tpu:0")
    if "cuda" not in mx.device.__module__ and mx.num_gpus() == 0:
        with pytest.raises(DeviceUnavailableError, match="cuda"):
            mx.gpu(0)
    with pytest.raises(ValueError, match="cannot parse device"):
        mx.device("cuda:zero")
    with pytest.raises(TypeError, match="unknown dtype 'float8'.*float16"):
        nd.zeros((2,), dtype="float8")


def test_failed_setitem_leaves_target_unchanged(device):
    x = nd.arange(6, ctx=device).reshape((2, 3))
    before = x.asnumpy()
    # (a threaded engine raises at the next sync point: wait_to_read)
    with pytest.raises(OperatorError, match="setitem"):
        x[:] = nd.ones((4,), ctx=device)
        x.wait_to_read()
    np.testing.assert_array_equal(x.asnumpy(), before)
    with pytest.raises(OperatorError):
        x += nd.ones((5,), ctx=device)
        x.wait_to_read()
    np.testing.assert_array_equal(x.asnumpy(), before)


def test_bad_index_is_named(device):
    x = nd.ones((2, 3), ctx=device)
    with pytest.raises(OperatorError, match=r"getitem.*index.*\(2, 3\)"):
        x[5]


def test_kernel_exception_is_wrapped_not_swallowed(device):
    with pytest.raises(OperatorError, match="take.*out of range"):
        nd.take(nd.ones((3,), ctx=device), nd.array([7], ctx=device, dtype="int64"),
                mode="raise").wait_to_read()
