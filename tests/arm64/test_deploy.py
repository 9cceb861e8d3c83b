"""The deploy recipe (docs/deploy.md): `mxcore export --quantize int8 --calib data/mnist
--onnx` writes a model that loads with mxcore alone (SymbolBlock.imports, served by the
ARM kernels on an ARM host) and runs in onnxruntime alone (no mxcore imported), with the
same outputs. Runs natively and on the emulated aarch64 Python (tools/arm64_check.sh)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.deploy import export
from mxcore.recipes import mnist

DATA = Path(__file__).resolve().parents[2] / "data" / "mnist"

ORT_ALONE = r"""
import json, sys
import numpy as np
import onnxruntime as ort
x = np.load(sys.argv[2])
sess = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
(out,) = sess.run(None, {sess.get_inputs()[0].name: x})
np.save(sys.argv[3], out)
print(json.dumps({"mxcore_imported": any(m.split(".")[0] in ("mxcore", "hal")
                                         for m in sys.modules)}))
"""


@pytest.fixture(scope="module")
def trained_params(tmp_path_factory):
    """An MLP (784-32-10) with random weights, saved as the training recipe saves."""
    mx.random.seed(1)
    net = mnist.build_model("mlp", 32)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 784)))
    path = tmp_path_factory.mktemp("train") / "mnist-mlp.safetensors"
    net.save_parameters(str(path))
    return str(path)


def _images(n=32):
    _, test = mnist._datasets(str(DATA), None)
    return mx.nd.stack(*[test[i][0] for i in range(n)])


def test_an_int8_export_runs_with_mxcore_and_with_onnxruntime_alone(trained_params, tmp_path):
    out = str(tmp_path / "mnist-mlp-int8")
    r = subprocess.run([sys.executable, "-m", "mxcore", "export", "--model", "mlp",
                        "--hidden", "32", "--params", trained_params, "--output", out,
                        "--quantize", "int8", "--calib", str(DATA), "--calib-batches", "2",
                        "--onnx"], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    for suffix in ("-symbol.json", "-0000.params", ".onnx"):
        assert os.path.isfile(out + suffix) and f"wrote {out}{suffix}" in r.stdout
    graph = json.load(open(out + "-symbol.json"))
    ops = {n["op"] for n in graph["nodes"]}
    assert {"_contrib_quantize_v2", "_contrib_quantized_fully_connected"} <= ops

    x = _images()
    loaded = mx.gluon.SymbolBlock.imports(out + "-symbol.json", ["data"], out + "-0000.params")
    mine = loaded(x).asnumpy()
    float_net = mnist.build_model("mlp", 32)
    float_net.load_parameters(trained_params)
    ref = float_net(x).asnumpy()
    assert np.abs(mine - ref).max() <= 0.05 * np.abs(ref).max()

    np.save(tmp_path / "x.npy", x.asnumpy())
    r = subprocess.run([sys.executable, "-c", ORT_ALONE, out + ".onnx", str(tmp_path / "x.npy"),
                        str(tmp_path / "y.npy")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"mxcore_imported": False}
    theirs = np.load(tmp_path / "y.npy")
    assert theirs.shape == (32, 10)  # any batch size: the ONNX input's batch is dynamic
    assert np.abs(theirs - mine).max() <= np.abs(mine).max() / 127 * 1.01


def test_export_refuses_bad_requests_clearly(trained_params, tmp_path):
    with pytest.raises(MXCoreError, match="needs --calib"):
        export("mlp", trained_params, str(tmp_path / "m"), hidden=32, quantize="int8")
    with pytest.raises(MXCoreError, match="no parameters file"):
        export("mlp", str(tmp_path / "missing.safetensors"), str(tmp_path / "m"))
    with pytest.raises(MXCoreError, match="does not hold the parameters of --model lenet"):
        export("lenet", trained_params, str(tmp_path / "m"))
    assert not list(tmp_path.glob("m*"))  # nothing half-written


@pytest.mark.skipif(os.uname().machine in ("aarch64", "arm64"),
                    reason="10,000 test images: slow on an emulated host")
def test_evaluate_reports_the_exported_models_accuracy(trained_params, tmp_path):
    report = export("mlp", trained_params, str(tmp_path / "m"), hidden=32, calib=str(DATA),
                    evaluate=True, onnx=True)
    acc = report["accuracy"]
    assert set(acc) == {"float32", "exported", "onnxruntime exported"}
    # the float export is the same network: the same predictions
    assert acc["exported"] == acc["float32"] == pytest.approx(acc["onnxruntime exported"],
                                                              abs=2e-4)
    saved = json.load(open(tmp_path / "m-export.json"))
    assert saved["accuracy"] == acc and saved["files"] == report["files"]
