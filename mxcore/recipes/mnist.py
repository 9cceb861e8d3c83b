"""``mxcore train mnist``: the MNIST multilayer perceptron (784 -> 256 ReLU -> 10)
written with the Gluon API, with a progress bar, per-epoch metrics, saved
parameters, a JSON history and an optional plot."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from typing import Dict, List, Optional

DEFAULTS = {"epochs": 10, "batch_size": 64, "optimizer": "sgd", "lr": 0.02, "momentum": 0.9,
            "wd": 0.0, "seed": 42, "hidden": 256}


def build_net(hidden: int = 256):
    from mxcore.gluon import nn
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Dense(hidden, activation="relu"))
        net.add(nn.Dense(10))
    return net


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--optimizer", default=DEFAULTS["optimizer"],
                   help="sgd, nag, adam, adamw, rmsprop, adagrad, adadelta")
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"], help="learning rate")
    p.add_argument("--momentum", type=float, default=DEFAULTS["momentum"],
                   help="momentum (sgd/nag)")
    p.add_argument("--wd", type=float, default=DEFAULTS["wd"], help="weight decay")
    p.add_argument("--hidden", type=int, default=DEFAULTS["hidden"])
    p.add_argument("--device", default=None, help="e.g. cpu, cuda:0 (default: MXCORE_DEVICE or cpu)")
    p.add_argument("--data-root", default=None,
                   help="folder with the MNIST gz files (default: MXCORE_DATA or ~/.mxcore/datasets)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--output", default="mnist-output", help="where parameters and history go")
    p.add_argument("--limit", type=int, default=None,
                   help="train on the first N training images only (quick runs)")
    p.add_argument("--plot", action="store_true", help="also write a PNG of the curves "
                   "(needs matplotlib: pip install mxcore[plot])")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--profile", type=int, default=0, metavar="STEPS",
                   help="profile the first STEPS training steps: a Chrome trace in "
                        "OUTPUT/profile.json (chrome://tracing, ui.perfetto.dev) and a "
                        "per-operator table on stdout (on a GPU each kernel is waited for)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads on the CPU (default 1: small steps gain nothing from "
                        "more, and lose a lot when cores are busy); 0 leaves it alone")


def _datasets(root: Optional[str], limit: Optional[int]):
    from mxcore.gluon.data.vision import MNIST, transforms
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(0.1307, 0.3081)])
    train = MNIST(root=root, train=True)
    if limit:
        train = train.take(limit)
    return train.transform_first(tf), MNIST(root=root, train=False).transform_first(tf)


def evaluate(net, loader, device) -> float:
    """Accuracy of ``net`` over ``loader``."""
    correct = total = 0
    for data, label in loader:
        out = net(data.as_in_context(device))
        correct += int((out.asnumpy().argmax(axis=1) == label.asnumpy()).sum())
        total += label.shape[0]
    return correct / total


_NO_SCOPE = contextlib.nullcontext()


def _report_profile(profiler) -> None:
    profiler.set_state("stop")
    table = profiler.dumps(sort_by="total")
    path = profiler.dump()
    print("\n".join(table.splitlines()[:20]))
    print(f"profile of the first steps in {path}")


def train(args) -> Dict[str, List[float]]:
    import mxcore as mx
    from mxcore import autograd, gluon
    from tqdm import tqdm

    mx.random.seed(args.seed)
    device = mx.device(args.device) if args.device else mx.default_device()
    if args.threads and device.kind == "cpu":
        from mxcore.device import device_type
        device_type(device).set_num_threads(args.threads)
    train_ds, test_ds = _datasets(args.data_root, args.limit)
    train_loader = gluon.data.DataLoader(train_ds, batch_size=args.batch_size, shuffle=True)
    test_loader = gluon.data.DataLoader(test_ds, batch_size=1000)
    net = build_net(args.hidden)
    net.initialize(mx.init.Xavier(magnitude=2.24), ctx=device)
    opt_params = {"learning_rate": args.lr, "wd": args.wd}
    if args.optimizer.lower() in ("sgd", "nag"):
        opt_params["momentum"] = args.momentum
    trainer = gluon.Trainer(net.collect_params(), args.optimizer, opt_params)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    history: Dict[str, List[float]] = {"epoch": [], "train_loss": [], "train_acc": [],
                                       "test_acc": [], "seconds": [], "step_loss": []}
    os.makedirs(args.output, exist_ok=True)
    print(f"training MLP 784-{args.hidden}-10 on {device!r}: {len(train_ds)} images, "
          f"batch {args.batch_size}, {args.optimizer} lr {args.lr}, {args.epochs} epochs")
    profile_left = max(0, args.profile)
    if profile_left:
        from mxcore.device import device_type
        # on a device with its own memory (a GPU) kernels run asynchronously: wait for
        # each, so that the table shows the device's time, not the launch's
        mx.profiler.set_config(filename=os.path.join(args.output, "profile.json"),
                               synchronize=not device_type(device).host_memory)
        mx.profiler.set_state("run")
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        seen = 0
        # running sums stay on the device: reading them every step would make the host
        # wait for an accelerator at each step (read every 50 steps, and at the end)
        loss_sum = correct_sum = None
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{args.epochs}", leave=False,
                   unit="batch", disable=True if args.no_progress else None)  # None: TTY only
        for i, (data, label) in enumerate(bar):
            with mx.profiler.scope("train_step") if profile_left else _NO_SCOPE:
                data, label = data.as_in_context(device), label.as_in_context(device)
                with autograd.record():
                    out = net(data)
                    loss = loss_fn(out, label)
                loss.backward()
                n = data.shape[0]
                trainer.step(n)
            if profile_left:
                profile_left -= 1
                if not profile_left:
                    _report_profile(mx.profiler)
            batch_loss = loss.sum()
            batch_correct = (out.argmax(axis=1) == label.astype(out.dtype)).sum()
            loss_sum = batch_loss if loss_sum is None else loss_sum + batch_loss
            correct_sum = batch_correct if correct_sum is None else correct_sum + batch_correct
            seen += n
            if i % 50 == 0:
                bar.set_postfix(loss=f"{float(loss_sum.asscalar()) / seen:.4f}")
                history["step_loss"].append(float(batch_loss.asscalar()) / n)
        bar.close()
        if profile_left:  # fewer steps than asked for
            profile_left = 0
            _report_profile(mx.profiler)
        total_loss, correct = float(loss_sum.asscalar()), int(correct_sum.asscalar())
        train_seconds = time.perf_counter() - start
        test_acc = evaluate(net, test_loader, device)
        history["epoch"].append(epoch)
        history["train_loss"].append(total_loss / seen)
        history["train_acc"].append(correct / seen)
        history["test_acc"].append(test_acc)
        history["seconds"].append(train_seconds)
        print(f"epoch {epoch:2d}: train loss {total_loss / seen:.4f}  train acc "
              f"{correct / seen:.4f}  test acc {test_acc:.4f}  {train_seconds:.1f}s")
    params_path = os.path.join(args.output, "mnist-mlp.safetensors")
    net.save_parameters(params_path)
    with open(os.path.join(args.output, "history.json"), "w") as f:
        json.dump({"config": {k: v for k, v in vars(args).items() if k != "func"},
                   "history": history}, f, indent=2)
    print(f"final test accuracy {history['test_acc'][-1]:.4f}; parameters in {params_path}")
    if args.plot:
        plot(history, os.path.join(args.output, "curves.png"))
    return history


def plot(history: Dict[str, List[float]], path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib: pip install 'mxcore[plot]'")
        return
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(history["epoch"], history["train_loss"], marker="o")
    a1.set_xlabel("epoch")
    a1.set_ylabel("train loss")
    a2.plot(history["epoch"], history["train_acc"], marker="o", label="train")
    a2.plot(history["epoch"], history["test_acc"], marker="o", label="test")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy")
    a2.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"curves in {path}")
