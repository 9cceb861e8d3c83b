"""Mixed precision against float32 on MNIST: the ``mxcore train mnist`` models (the MLP
and LeNet-5) trained with the recipe's settings and seed, in float32, with bfloat16
AMP and with float16 AMP plus dynamic loss scaling; prints test accuracy and seconds
per epoch.  Each run is a fresh process (AMP is initialised once per process).

    python asv_bench/compare_amp.py --models mlp lenet --epochs 3 --data-root data/mnist
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional

DTYPES = ("float32", "bfloat16", "float16")


def train(model: str, dtype: str, epochs: int, data_root: Optional[str],
          limit: Optional[int] = None, seed: int = 42, device: Optional[str] = None,
          batch_size: int = 64) -> Dict[str, object]:
    """Train ``model`` as ``mxcore train mnist`` does (optimizer settings, initializer,
    seed), with AMP for a 16-bit ``dtype``; returns test accuracy and seconds/epoch."""
    import numpy as np

    import mxcore as mx
    from mxcore import amp, autograd, gluon
    from mxcore.recipes import mnist

    if dtype != "float32":
        amp.init(dtype)
    settings = dict(mnist.DEFAULTS, **mnist.MODEL_DEFAULTS[model])
    mx.random.seed(seed)
    ctx = mx.device(device) if device else mx.default_device()
    if ctx.kind == "cpu":
        from mxcore.device import device_type
        device_type(ctx).set_num_threads(1)
    train_ds, test_ds = mnist._datasets(data_root, limit)
    train_loader = gluon.data.DataLoader(train_ds, batch_size=batch_size, shuffle=True)
    test_loader = gluon.data.DataLoader(test_ds, batch_size=1000)
    net = mnist.build_model(model, settings["hidden"])
    net.initialize(mx.init.Xavier(magnitude=2.24), ctx=ctx)
    opt = mnist.optimizer_params(dict(settings, epochs=epochs, batch_size=batch_size),
                                 len(train_ds))
    trainer = gluon.Trainer(net.collect_params(), settings["optimizer"], opt)
    scaling = dtype == "float16"  # bfloat16 has float32's range: no loss scaling
    if scaling:
        amp.init_trainer(trainer)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    seconds: List[float] = []
    accuracy: List[float] = []
    with np.errstate(over="ignore", invalid="ignore"):  # overflowing steps are skipped
        for _ in range(epochs):
            start = time.perf_counter()
            for data, label in train_loader:
                data, label = data.as_in_context(ctx), label.as_in_context(ctx)
                with autograd.record():
                    loss = loss_fn(net(data), label)
                    if scaling:
                        with amp.scale_loss(loss, trainer) as scaled:
                            scaled.backward()
                if not scaling:
                    loss.backward()
                trainer.step(data.shape[0])
            mx.nd.waitall()
            seconds.append(time.perf_counter() - start)
            accuracy.append(mnist.evaluate(net, test_loader, ctx))
    out = {"model": model, "dtype": dtype, "epochs": epochs, "test_acc": accuracy[-1],
           "test_acc_per_epoch": accuracy, "s_per_epoch": sum(seconds) / len(seconds)}
    if scaling:
        out["loss_scale"] = trainer._amp_loss_scaler.loss_scale
    return out


def run_isolated(model: str, dtype: str, epochs: int, data_root: Optional[str],
                 limit: Optional[int] = None, device: Optional[str] = None,
                 seed: int = 42) -> Dict[str, object]:
    """``train`` in a fresh Python process."""
    cmd = [sys.executable, os.path.abspath(__file__), "--one", model, dtype,
           "--epochs", str(epochs), "--seed", str(seed)]
    if data_root:
        cmd += ["--data-root", data_root]
    if limit:
        cmd += ["--limit", str(limit)]
    if device:
        cmd += ["--device", device]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{model} {dtype} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: List[Dict[str, object]]) -> str:
    lines = [f"{'model':6} {'dtype':9} {'epochs':>6} {'test acc':>9} {'vs fp32':>8} "
             f"{'s/epoch':>8} {'loss scale':>10}"]
    base = {r["model"]: r["test_acc"] for r in rows if r["dtype"] == "float32"}
    for r in rows:
        gap = (f"{100 * (r['test_acc'] - base[r['model']]):+.2f}" if r["model"] in base
               else "")
        scale = f"{r['loss_scale']:g}" if "loss_scale" in r else "-"
        lines.append(f"{r['model']:6} {r['dtype']:9} {r['epochs']:6d} "
                     f"{100 * r['test_acc']:8.2f}% {gap:>8} {r['s_per_epoch']:8.1f} "
                     f"{scale:>10}")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["mlp", "lenet"], choices=["mlp", "lenet"])
    p.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=DTYPES)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--data-root", default=None, help="folder of the MNIST gz files")
    p.add_argument("--limit", type=int, default=None, help="first N training images only")
    p.add_argument("--device", default=None, help="e.g. cpu, cuda:0")
    p.add_argument("--seed", type=int, default=42, help="random seed (the recipe's)")
    p.add_argument("--one", nargs=2, metavar=("MODEL", "DTYPE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        result = train(args.one[0], args.one[1], args.epochs, args.data_root, args.limit,
                       seed=args.seed, device=args.device)
        print(json.dumps(result))
        return
    rows = []
    for model in args.models:
        for dtype in args.dtypes:
            rows.append(run_isolated(model, dtype, args.epochs, args.data_root, args.limit,
                                     args.device, args.seed))
            print(f"  {model} {dtype}: {100 * rows[-1]['test_acc']:.2f}%", file=sys.stderr)
    print(table(rows))


if __name__ == "__main__":
    main()
