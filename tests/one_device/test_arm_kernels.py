"""mxcore-arm's float16 kernels, forced on this host (``MXCORE_ARM_KERNELS=force``), against
the CPU plugin's kernels: FullyConnected (bias, no_bias, act_type, flatten), Convolution
(stride, pad, dilate, groups, 1-3 spatial dims) and dot (transposes), within float16
tolerance; and that ``mx.cpu()`` code reaches them through dispatch when forced."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import mxcore as mx  # noqa: E402
from mxcore.plugins import registry  # noqa: E402

arm_kernels = pytest.importorskip("mxcore_arm.kernels")

F16 = dict(rtol=2e-2, atol=2e-2)


@pytest.fixture
def forced(monkeypatch):
    monkeypatch.setenv("MXCORE_ARM_KERNELS", "force")
    registry().invalidate()  # guard outcomes are cached per signature
    yield
    monkeypatch.delenv("MXCORE_ARM_KERNELS")
    registry().invalidate()


def _kernel(op: str, provider: str):
    ks = [k for k in registry().kernels[(op, "cpu")] if k.provider == provider]
    assert len(ks) == 1, f"{provider} registers one {op} kernel on cpu"
    return ks[0]


def _h(rs, *shape):
    return (rs.randn(*shape) * 0.5).astype(np.float16)


def _both(op, *args, **attrs):
    cpu = _kernel(op, "mxcore-cpu").fn(*args, **attrs)
    arm = _kernel(op, "mxcore-arm").fn(*args, **attrs)
    assert arm.dtype == cpu.dtype == np.float16 and arm.shape == cpu.shape
    np.testing.assert_allclose(arm.astype(np.float32), cpu.astype(np.float32), **F16)
    return arm


@pytest.mark.parametrize("act_type", [None, "relu", "sigmoid", "tanh", "softrelu", "softsign"])
@pytest.mark.parametrize("no_bias", [False, True])
def test_fully_connected(act_type, no_bias):
    rs = np.random.RandomState(0)
    x, w, b = _h(rs, 6, 3, 4), _h(rs, 5, 12), _h(rs, 5)
    args = (x, w) if no_bias else (x, w, b)
    _both("fully_connected", *args, flatten=True, no_bias=no_bias, act_type=act_type)


def test_fully_connected_without_flatten():
    rs = np.random.RandomState(1)
    x, w, b = _h(rs, 2, 3, 8), _h(rs, 7, 8), _h(rs, 7)
    out = _both("fully_connected", x, w, b, flatten=False, no_bias=False, act_type="relu")
    assert out.shape == (2, 3, 7)


@pytest.mark.parametrize("case", [
    dict(x=(2, 4, 9, 9), w=(6, 4, 3, 3), stride=(1, 1), pad=(0, 0), dilate=(1, 1), groups=1),
    dict(x=(2, 4, 10, 11), w=(8, 4, 3, 3), stride=(2, 2), pad=(1, 1), dilate=(1, 1), groups=1),
    dict(x=(1, 6, 9, 9), w=(6, 2, 3, 3), stride=(1, 2), pad=(2, 1), dilate=(2, 1), groups=3),
    dict(x=(2, 4, 8, 8), w=(4, 1, 3, 3), stride=(1, 1), pad=(1, 1), dilate=(1, 1), groups=4),
    dict(x=(2, 3, 17), w=(5, 3, 4), stride=(3,), pad=(1,), dilate=(1,), groups=1),
    dict(x=(1, 2, 5, 6, 7), w=(4, 2, 2, 3, 3), stride=(1, 1, 2), pad=(0, 1, 1),
         dilate=(1, 1, 1), groups=1),
], ids=["plain", "stride_pad", "groups_dilate", "depthwise", "1d", "3d"])
@pytest.mark.parametrize("no_bias", [False, True])
def test_convolution(case, no_bias):
    rs = np.random.RandomState(2)
    x, w, b = _h(rs, *case["x"]), _h(rs, *case["w"]), _h(rs, case["w"][0])
    args = (x, w) if no_bias else (x, w, b)
    _both("convolution", *args, kernel=case["w"][2:], stride=case["stride"],
          dilate=case["dilate"], pad=case["pad"], num_filter=case["w"][0],
          num_group=case["groups"], no_bias=no_bias)


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_dot(ta, tb):
    rs = np.random.RandomState(3)
    a = _h(rs, 7, 5) if ta else _h(rs, 5, 7)
    b = _h(rs, 9, 7) if tb else _h(rs, 7, 9)
    assert _both("dot", a, b, transpose_a=ta, transpose_b=tb).shape == (5, 9)


def test_sessions_are_cached_per_signature():
    rs = np.random.RandomState(4)
    fc = _kernel("fully_connected", "mxcore-arm").fn
    x, w = _h(rs, 3, 4), _h(rs, 2, 4)
    fc(x, w, flatten=True, no_bias=True, act_type=None)
    built = arm_kernels.SESSIONS.builds
    fc(x + 1, w, flatten=True, no_bias=True, act_type=None)        # same signature
    assert arm_kernels.SESSIONS.builds == built
    fc(x, w, flatten=True, no_bias=True, act_type="relu")          # another attribute
    fc(_h(rs, 5, 4), w, flatten=True, no_bias=True, act_type=None)  # another shape
    assert arm_kernels.SESSIONS.builds == built + 2


def test_cpu_code_reaches_the_arm_kernels_when_forced(forced):
    rs = np.random.RandomState(5)
    x = mx.nd.array(_h(rs, 4, 8), dtype="float16", ctx=mx.cpu())
    w = mx.nd.array(_h(rs, 3, 8), dtype="float16")
    b = mx.nd.array(_h(rs, 3), dtype="float16")
    reg = registry()
    chosen = reg.resolve("fully_connected", "cpu", "float16", ((4, 8), (3, 8), (3,)),
                         ("float16",) * 3, {"flatten": True, "no_bias": False, "act_type": None})
    assert chosen.provider == "mxcore-arm"
    y = mx.nd.FullyConnected(x, w, b, num_hidden=3)
    want = x.asnumpy().astype(np.float32) @ w.asnumpy().astype(np.float32).T + b.asnumpy()
    np.testing.assert_allclose(y.asnumpy().astype(np.float32), want, **F16)
    # float32 calls keep the CPU plugin's kernel: the ARM kernels take float16 only
    assert reg.resolve("fully_connected", "cpu", "float32", ((4, 8), (3, 8), (3,)),
                       ("float32",) * 3, {"flatten": True, "no_bias": False,
                                          "act_type": None}).provider == "mxcore-cpu"
    # and a Gluon layer in float16, hybridized, runs through them too
    net = mx.gluon.nn.Dense(3, in_units=8, activation="relu")
    net.initialize()
    net.cast("float16")
    net.hybridize()
    out = net(x)
    net.hybridize(False)
    np.testing.assert_allclose(out.asnumpy().astype(np.float32),
                               net(x).asnumpy().astype(np.float32), **F16)


def test_guards_decline_shapes_they_do_not_take(forced):
    reg = registry()
    out = reg.explain("dot", "cpu", "float16", ((2, 3, 4), (4, 5)), ("float16",) * 2,
                      {"transpose_a": False, "transpose_b": False})
    assert "only matrix products" in out
    assert "winner: mxcore-cpu:linalg.dot" in out


# int8: the quantized layers' products through MatMulInteger/ConvInteger ------------------
def _quantized_inputs(rs, data_dtype, x_shape, w_shape, bias_dtype):
    lo, hi = {"int8": (-127, 128), "uint8": (0, 256)}[data_dtype]
    x = rs.randint(lo, hi, x_shape).astype(data_dtype)
    w = rs.randint(-127, 128, w_shape).astype(np.int8)
    f = np.float32
    ranges = [np.array([v], f) for v in ((-2.5 if data_dtype == "int8" else 0.0), 3.0,
                                         -0.75, 0.5)]
    bias = []
    if bias_dtype == "int8":
        bias = [rs.randint(-127, 128, (w_shape[0],)).astype(np.int8)]
        ranges += [np.array([-0.3], f), np.array([0.2], f)]
    elif bias_dtype == "int32":
        bias = [rs.randint(-10 ** 6, 10 ** 6, (w_shape[0],)).astype(np.int32)]
        ranges += [np.array([-1.0], f), np.array([1.0], f)]
    return [x, w] + bias + ranges


def _exact(op, args, **attrs):
    if (op, "cpu") not in registry().kernels or not any(
            k.provider == "mxcore-cpu" for k in registry().kernels[(op, "cpu")]):
        pytest.skip(f"mxcore has no CPU kernel of {op}")
    cpu = _kernel(op, "mxcore-cpu").fn(*args, **attrs)
    arm = _kernel(op, "mxcore-arm").fn(*args, **attrs)
    assert len(arm) == len(cpu) == 3
    for a, c in zip(arm, cpu):
        assert a.dtype == c.dtype and a.shape == c.shape
        np.testing.assert_array_equal(a, c)  # exact: integer sums, MXNet's float32 ranges
    assert arm[0].dtype == np.int32


@pytest.mark.parametrize("data_dtype", ["int8", "uint8"])
@pytest.mark.parametrize("bias", [None, "int8", "int32"])
@pytest.mark.parametrize("flatten", [True, False])
def test_quantized_fully_connected_is_exact(data_dtype, bias, flatten):
    rs = np.random.RandomState(6)
    x_shape = (4, 3, 20) if flatten else (2, 3, 60)
    args = _quantized_inputs(rs, data_dtype, x_shape, (9, 60), bias)
    _exact("quantized_fully_connected", args, num_hidden=9, no_bias=bias is None,
           flatten=flatten)


@pytest.mark.parametrize("data_dtype", ["int8", "uint8"])
@pytest.mark.parametrize("bias", [None, "int8"])
@pytest.mark.parametrize("case", [
    dict(x=(2, 4, 9, 9), w=(6, 4, 3, 3), stride=(1, 1), pad=(1, 1), dilate=(1, 1), groups=1),
    dict(x=(1, 6, 10, 9), w=(6, 2, 3, 3), stride=(2, 1), pad=(0, 2), dilate=(1, 2), groups=3),
], ids=["pad", "groups_stride_dilate"])
def test_quantized_conv_is_exact(data_dtype, bias, case):
    rs = np.random.RandomState(7)
    args = _quantized_inputs(rs, data_dtype, case["x"], case["w"], bias)
    _exact("quantized_conv", args, kernel=case["w"][2:], stride=case["stride"],
           dilate=case["dilate"], pad=case["pad"], num_filter=case["w"][0],
           num_group=case["groups"], no_bias=bias is None)
