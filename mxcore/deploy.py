"""``mxcore export``: a trained MNIST model (the main job's MLP or LeNet) as files to
deploy: MXNet 1.x's ``prefix-symbol.json`` + ``prefix-0000.params`` (safetensors), int8
quantized with calibration on request, and an ONNX file (QDQ int8 when quantized).

On the target, ``pip install mxcore mxcore-arm`` loads the pair with
``gluon.SymbolBlock.imports`` (on an ARM board the ARM plugin's kernels serve
``mx.cpu()``); onnxruntime alone runs the ONNX file. docs/deploy.md walks through it."""
from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, Optional

import numpy as np

from mxcore.base import MXCoreError

QUANTIZE = ("int8",)
CALIB_MODES = ("naive", "entropy")
#: one MNIST image, channel-first: what the exported graph takes (any batch size)
SAMPLE_SHAPE = (1, 1, 28, 28)


def _accuracy(predict, loader) -> float:
    correct = total = 0
    for data, label in loader:
        out = predict(data)
        correct += int((np.asarray(out).argmax(axis=1) == label.asnumpy()).sum())
        total += label.shape[0]
    return correct / total


def export(model: str, params: str, output: str, hidden: int = 256,
           quantize: Optional[str] = None, calib: Optional[str] = None,
           calib_batches: int = 10, calib_mode: str = "naive", onnx: bool = False,
           evaluate: bool = False, dataset: str = "mnist", batch_size: int = 64,
           limit: Optional[int] = None) -> Dict[str, Any]:
    """Write ``output-symbol.json``, ``output-0000.params`` (and ``output.onnx``) for the
    recipe model ``model`` with the parameters file ``params``; returns a report (files,
    and with ``evaluate`` the float32 and exported models' test accuracy)."""
    import mxcore as mx
    from mxcore import gluon
    from mxcore.recipes import mnist

    if quantize is not None and quantize not in QUANTIZE:
        raise MXCoreError(f"export: --quantize must be one of {QUANTIZE}, got {quantize!r}")
    if calib_mode not in CALIB_MODES:
        raise MXCoreError(f"export: --calib-mode must be one of {CALIB_MODES}, got "
                          f"{calib_mode!r}")
    if quantize and not calib:
        raise MXCoreError("export: --quantize int8 needs --calib DIR (a folder of the "
                          "dataset's files, e.g. data/mnist) to calibrate the int8 ranges")
    if not os.path.isfile(params):
        raise MXCoreError(f"export: no parameters file {params!r} (train one with "
                          f"`mxcore train mnist --model {model}`)")
    net = mnist.build_model(model, hidden)
    try:
        net.load_parameters(params, ctx=mx.cpu())
    except Exception as exc:
        raise MXCoreError(f"export: {params} does not hold the parameters of --model "
                          f"{model} (hidden {hidden}): {exc}") from None
    net.hybridize()
    net(mx.nd.zeros(SAMPLE_SHAPE))
    report: Dict[str, Any] = {"model": model, "params": params, "quantize": quantize}
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    deployed = net
    loaders = {}
    if quantize or evaluate:
        train, test = mnist._datasets(calib, limit, dataset)
        loaders = {"train": gluon.data.DataLoader(train, batch_size=batch_size, shuffle=False),
                   "test": gluon.data.DataLoader(test, batch_size=256)}
    if quantize:
        from mxcore.contrib import quantization
        t0 = time.perf_counter()
        deployed = quantization.quantize_net(net, quantized_dtype="auto",
                                             calib_mode=calib_mode,
                                             calib_data=loaders["train"],
                                             num_calib_batches=calib_batches)
        deployed.hybridize()
        deployed(mx.nd.zeros(SAMPLE_SHAPE))
        report["calibration"] = {"mode": calib_mode, "batches": calib_batches,
                                 "batch_size": batch_size,
                                 "seconds": round(time.perf_counter() - t0, 2)}
    deployed.export(output)
    files = [f"{output}-symbol.json", f"{output}-0000.params"]
    if onnx:
        path = mx.onnx.export_model(files[0], files[1], [SAMPLE_SHAPE], [np.float32],
                                    onnx_file_path=f"{output}.onnx", dynamic=True,
                                    dynamic_input_shapes=[(None,) + SAMPLE_SHAPE[1:]])
        files.append(str(path))
    report["files"] = files
    if evaluate:
        report["accuracy"] = {"float32": _accuracy(lambda d: net(d).asnumpy(),
                                                   loaders["test"])}
        name = quantize or "exported"
        loaded = gluon.SymbolBlock.imports(files[0], ["data"], files[1])
        report["accuracy"][name] = _accuracy(lambda d: loaded(d).asnumpy(), loaders["test"])
        if onnx:
            import onnxruntime as ort
            sess = ort.InferenceSession(files[2], providers=["CPUExecutionProvider"])
            feed = sess.get_inputs()[0].name
            report["accuracy"][f"onnxruntime {name}"] = _accuracy(
                lambda d: sess.run(None, {feed: d.asnumpy()})[0], loaders["test"])
    with open(f"{output}-export.json", "w") as f:
        json.dump(report, f, indent=1)
    return report
