"""What must hold on an ARM board, checked on whatever host runs it: natively here (x86,
where the ARM kernels decline and say why) and on an emulated aarch64 Python
(`tools/arm64_check.sh`, a step of .ci/run), where mx.cpu() must resolve them. The mxcore-arm
plugin loads; float16 and int8 inference of an MLP and a LeNet agree with the float32
model within the stated tolerances; the quantized model, exported, runs in onnxruntime
with mxcore's outputs. Shapes are small: emulated BLAS is ~250x slower than native."""
from __future__ import annotations

import os
import platform

import numpy as np
import pytest

import mxcore as mx
from mxcore.contrib import quantization
from mxcore.gluon import nn
from mxcore.plugins import registry, system

ARM_HOST = platform.machine().lower() in ("aarch64", "arm64")
#: float16 against float32 logits: |diff| <= FP16_TOL * max |logit| (onnxruntime's ARM
#: kernels accumulate in float16: 0.7% measured on the MLP's 784-long sums, emulated)
FP16_TOL = 1e-2
#: int8 against float32 logits: |diff| <= INT8_TOL * max |logit|, and argmax agreement
INT8_TOL = 0.04
INT8_AGREE = 0.9


def _mlp():
    net = nn.HybridSequential()
    net.add(nn.Dense(64, activation="relu"), nn.Dense(10))
    return net


def _lenet():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(6, 5, activation="relu"), nn.MaxPool2D(2),
            nn.Conv2D(16, 5, activation="relu"), nn.MaxPool2D(2),
            nn.Flatten(), nn.Dense(32, activation="relu"), nn.Dense(10))
    return net


MODELS = {"mlp": (_mlp, (16, 784)), "lenet": (_lenet, (16, 1, 28, 28))}


@pytest.fixture(params=sorted(MODELS))
def model(request):
    make, shape = MODELS[request.param]
    mx.random.seed(7)
    net = make()
    net.initialize(mx.init.Xavier())
    x = mx.nd.array(np.random.default_rng(3).uniform(0, 1, shape))
    net.hybridize()
    return request.param, net, x, net(x).asnumpy()


def test_the_arm_plugin_loads():
    info = system().plugins["arm"]
    assert info.error is None, info.error
    assert info.distribution == "mxcore-arm"
    for op, dtype in (("fully_connected", "float16"), ("convolution", "float16"),
                      ("quantized_fully_connected", "int8"), ("quantized_conv", "int8")):
        providers = {c.kernel.provider for c in registry().candidates(op, "cpu", dtype)}
        assert "mxcore-arm" in providers, (op, providers)


def test_mx_cpu_resolves_the_arm_kernels_on_arm_hosts_only():
    if os.environ.get("MXCORE_ARM_KERNELS", "auto") != "auto":
        pytest.skip("MXCORE_ARM_KERNELS is set: the host decides nothing")
    fc = ((4, 8), (5, 8), (5,))
    chosen = registry().resolve("fully_connected", "cpu", "float16", fc)
    qfc = registry().resolve("quantized_fully_connected", "cpu", "int8",
                             ((4, 8), (5, 8), (5,), (1,), (1,), (1,), (1,), (1,), (1,)),
                             ["int8", "int8", "int8"] + ["float32"] * 6, {"num_hidden": 5})
    why = registry().explain("fully_connected", "cpu", "float16", fc)
    if ARM_HOST:  # the float16 and int8 kernels serve mx.cpu()
        assert chosen.provider == "mxcore-arm", why
        assert qfc.provider == "mxcore-arm"
    else:
        assert chosen.provider == "mxcore-cpu"
        assert "not an ARM host" in why


def test_float16_inference_agrees_with_float32(model):
    name, net, x, ref = model
    net.cast("float16")
    try:
        out = net(x.astype("float16"))
        assert out.dtype == np.float16
        got = out.asnumpy().astype(np.float32)
    finally:
        net.cast("float32")
    scale = np.abs(ref).max()
    assert np.abs(got - ref).max() <= FP16_TOL * scale, (name, np.abs(got - ref).max(), scale)


def _quantized(net, x):
    return quantization.quantize_net(net, calib_mode="naive", calib_data=[x],
                                     quantized_dtype="auto")


def test_int8_inference_agrees_with_float32(model):
    name, net, x, ref = model
    got = _quantized(net, x)(x).asnumpy()
    scale = np.abs(ref).max()
    assert np.abs(got - ref).max() <= INT8_TOL * scale, (name, np.abs(got - ref).max(), scale)
    agree = (got.argmax(1) == ref.argmax(1)).mean()
    assert agree >= INT8_AGREE, (name, agree)


def test_the_exported_int8_model_runs_in_onnxruntime(model, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    name, net, x, _ = model
    qnet = _quantized(net, x)
    qnet.hybridize()
    mine = qnet(x).asnumpy()
    prefix = str(tmp_path / name)
    qnet.export(prefix)
    path = mx.onnx.export_model(f"{prefix}-symbol.json", f"{prefix}-0000.params", [x.shape],
                                [np.float32], onnx_file_path=f"{prefix}.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (theirs,) = sess.run(None, {sess.get_inputs()[0].name: x.asnumpy()})
    # the same integer arithmetic: equal up to one output quantization step (rounding ties)
    step = np.abs(mine).max() / 127
    assert np.abs(theirs - mine).max() <= step * 1.01, (name, np.abs(theirs - mine).max(), step)
