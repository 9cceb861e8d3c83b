"""int8 post-training quantization against float32 on MNIST: the ``mxcore train mnist``
models (the MLP and LeNet-5) trained briefly with the recipe's settings and seed, then
quantized with ``mx.contrib.quantization.quantize_net`` (naive and entropy calibration
on training batches).  Prints one table: test accuracy in float32 and int8 (mxcore, and
onnxruntime running the exported QDQ model), and the median milliseconds per inference
batch of mxcore float32, mxcore int8, onnxruntime float32 and onnxruntime int8, all
measured in this one run, interleaved.

    python asv_bench/compare_quantization.py --models mlp lenet --epochs 1 \\
        --data-root data/mnist
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

CALIB_MODES = ("naive", "entropy")


def train(model: str, epochs: int, data_root: Optional[str], limit: Optional[int] = None,
          seed: int = 42, batch_size: int = 64):
    """The float32 model, trained as ``mxcore train mnist`` trains it; returns
    ``(net, train dataset, test dataset)``."""
    import mxcore as mx
    from mxcore import autograd, gluon
    from mxcore.recipes import mnist
    settings = dict(mnist.DEFAULTS, **mnist.MODEL_DEFAULTS[model])
    mx.random.seed(seed)
    train_ds, test_ds = mnist._datasets(data_root, limit)
    loader = gluon.data.DataLoader(train_ds, batch_size=batch_size, shuffle=True)
    net = mnist.build_model(model, settings["hidden"])
    net.initialize(mx.init.Xavier(magnitude=2.24))
    net.hybridize()
    opt = mnist.optimizer_params(dict(settings, epochs=epochs, batch_size=batch_size),
                                 len(train_ds))
    trainer = gluon.Trainer(net.collect_params(), settings["optimizer"], opt)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for _ in range(epochs):
        for data, label in loader:
            with autograd.record():
                loss = loss_fn(net(data), label)
            loss.backward()
            trainer.step(data.shape[0])
    return net, train_ds, test_ds


def test_arrays(test_ds, limit: Optional[int] = None):
    """The test set as two numpy arrays (images (N, 1, 28, 28), labels)."""
    from mxcore import gluon
    xs, ys = [], []
    for data, label in gluon.data.DataLoader(test_ds, batch_size=1000):
        xs.append(data.asnumpy())
        ys.append(label.asnumpy())
    x, y = np.concatenate(xs), np.concatenate(ys)
    return (x[:limit], y[:limit]) if limit else (x, y)


def calibration_batches(train_ds, batches: int, batch_size: int = 64):
    """The first ``batches`` training batches (images only), as MXNet's examples take
    calibration data from the training set."""
    from mxcore import gluon
    out = []
    for data, _ in gluon.data.DataLoader(train_ds, batch_size=batch_size):
        out.append(data)
        if len(out) == batches:
            break
    return out


def accuracy(predict, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    correct = 0
    for i in range(0, len(x), batch):
        correct += int((predict(x[i:i + batch]).argmax(axis=1) == y[i:i + batch]).sum())
    return correct / len(x)


def mx_predictor(net):
    import mxcore as mx

    def predict(x):
        return net(mx.nd.array(x)).asnumpy()
    return predict


def ort_predictor(path: str):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(x):
        return session.run(None, {name: x.astype(np.float32)})[0]
    return predict


def export_onnx(block, prefix: str, batch: int) -> str:
    """``block`` (float or quantized) exported (symbol + parameters) and written as
    ONNX with a free batch dimension."""
    import mxcore as mx
    block.hybridize()
    block(mx.nd.zeros((batch, 1, 28, 28)))
    sym_file, params_file = block.export(prefix)
    return mx.onnx.export_model(sym_file, params_file, [(batch, 1, 28, 28)], np.float32,
                                f"{prefix}.onnx", dynamic=True,
                                dynamic_input_shapes=[("batch", 1, 28, 28)])


def median_ms(runs: Dict[str, object], x: np.ndarray, repeat: int) -> Dict[str, float]:
    """Median milliseconds per call of each predictor on ``x``, interleaved so load
    changes on the host affect every variant alike."""
    times: Dict[str, List[float]] = {k: [] for k in runs}
    for fn in runs.values():  # warm up
        fn(x)
    for _ in range(repeat):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn(x)
            times[name].append(1000 * (time.perf_counter() - start))
    return {k: statistics.median(v) for k, v in times.items()}


def compare(model: str, epochs: int, data_root: Optional[str], limit: Optional[int] = None,
            test_limit: Optional[int] = None, calib_batches: int = 10, batch: int = 64,
            repeat: int = 20, modes=CALIB_MODES, timing: bool = True) -> List[Dict]:
    """One row per calibration mode: accuracies and (with ``timing``) median ms."""
    import mxcore as mx
    from mxcore.contrib import quantization
    from mxcore.device import device_type
    device_type(mx.cpu()).set_num_threads(1)
    net, train_ds, test_ds = train(model, epochs, data_root, limit)
    x, y = test_arrays(test_ds, test_limit)
    calib = calibration_batches(train_ds, calib_batches)
    float_acc = accuracy(mx_predictor(net), x, y)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        float_onnx = export_onnx(net, os.path.join(tmp, "float"), batch) if timing else None
        for mode in modes:
            qnet = quantization.quantize_net(net, quantized_dtype="auto", calib_mode=mode,
                                             calib_data=calib, num_calib_batches=calib_batches)
            qnet.hybridize()
            row = {"model": model, "calibration": mode, "float32_acc": float_acc,
                   "int8_acc": accuracy(mx_predictor(qnet), x, y)}
            if timing:
                q_onnx = export_onnx(qnet, os.path.join(tmp, f"int8-{mode}"), batch)
                ort_int8 = ort_predictor(q_onnx)
                row["ort_int8_acc"] = accuracy(ort_int8, x, y)
                row.update(median_ms({"mx_f32": mx_predictor(net), "mx_int8": mx_predictor(qnet),
                                      "ort_f32": ort_predictor(float_onnx),
                                      "ort_int8": ort_int8}, x[:batch], repeat))
            rows.append(row)
    return rows


def print_table(rows: List[Dict]) -> None:
    head = ["model", "calib", "f32 acc", "int8 acc", "ort int8 acc", "mx f32 ms", "mx int8 ms",
            "ort f32 ms", "ort int8 ms"]
    keys = ["model", "calibration", "float32_acc", "int8_acc", "ort_int8_acc", "mx_f32",
            "mx_int8", "ort_f32", "ort_int8"]
    print(" | ".join(f"{h:>12}" for h in head))
    for row in rows:
        cells = []
        for k in keys:
            v = row.get(k, "")
            if k.endswith("acc") and v != "":
                v = f"{100 * v:.2f}%"
            elif isinstance(v, float):
                v = f"{v:.3f}"
            cells.append(f"{v:>12}")
        print(" | ".join(cells))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["mlp", "lenet"], choices=["mlp", "lenet"])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--data-root", default=None)
    p.add_argument("--limit", type=int, default=None, help="training examples to use")
    p.add_argument("--batch", type=int, default=64, help="inference batch for the timings")
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--calib-batches", type=int, default=10)
    args = p.parse_args(argv)
    rows = []
    for model in args.models:
        rows += compare(model, args.epochs, args.data_root, args.limit,
                        calib_batches=args.calib_batches, batch=args.batch, repeat=args.repeat)
    print_table(rows)


if __name__ == "__main__":
    main()
