"""``mxcore train mnist``: the MNIST multilayer perceptron (784 -> 256 ReLU -> 10),
or LeNet-5 (``--model lenet``), on MNIST or Fashion-MNIST (``--dataset``),
written with the Gluon API, with a progress bar, per-epoch metrics, saved
parameters, a JSON history and an optional plot."""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import time
from typing import Dict, List, Optional

from mxcore.base import MXCoreError
from mxcore.serialization import atomic_path

DEFAULTS = {"epochs": 10, "batch_size": 64, "optimizer": "sgd", "lr": 0.02, "momentum": 0.9,
            "wd": 0.0, "lr_schedule": "constant", "seed": 42, "hidden": 256}

MODELS = ("mlp", "lenet")
DATASETS = ("mnist", "fashion-mnist")
#: the optimizer settings each model trains well with; they replace DEFAULTS' (the
#: MLP's) for the flags the user leaves out
MODEL_DEFAULTS: Dict[str, Dict[str, object]] = {
    "mlp": {"optimizer": "sgd", "lr": 0.02, "momentum": 0.9, "wd": 0.0,
            "lr_schedule": "constant"},
    "lenet": {"optimizer": "sgd", "lr": 0.02, "momentum": 0.9, "wd": 0.0,
              "lr_schedule": "cosine"},
}
_DESCRIPTIONS = {"mlp": "MLP 784-{hidden}-10", "lenet": "LeNet-5"}
#: dataset class name, and the mean and standard deviation of its training pixels
_DATASETS = {"mnist": ("MNIST", 0.1307, 0.3081),
             "fashion-mnist": ("FashionMNIST", 0.2860, 0.3530)}


def build_net(hidden: int = 256):
    from mxcore.gluon import nn
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Dense(hidden, activation="relu"))
        net.add(nn.Dense(10))
    return net


def build_model(model: str = "mlp", hidden: int = 256):
    """The network ``--model`` names: the MLP, or LeNet-5 from the model zoo."""
    if model == "mlp":
        return build_net(hidden)
    if model == "lenet":
        from mxcore.gluon.model_zoo import vision
        return vision.get_model("lenet", classes=10)
    raise MXCoreError(f"unknown model {model!r} (one of {', '.join(MODELS)})")


class _Given(argparse.Action):
    """Store the value and note that the user gave it: the model's own defaults
    (``MODEL_DEFAULTS``) apply only to the flags left out."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace._given = frozenset(getattr(namespace, "_given", ())) | {self.dest}


def _per_model(flag: str) -> str:
    """Help text naming the models whose default for ``flag`` is not DEFAULTS'
    (which the help shows as the flag's default)."""
    return "".join(f"; --model {m}: {MODEL_DEFAULTS[m][flag]} unless given" for m in MODELS
                   if MODEL_DEFAULTS[m][flag] != DEFAULTS[flag])


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mxcore.cli import device_spec, finite_float, int_at_least
    from mxcore.optimizer import Optimizer
    p.set_defaults(_given=frozenset())  # the flags given on the command line (_Given)
    p.add_argument("--model", choices=MODELS, default="mlp",
                   help="the network: the multilayer perceptron, or LeNet-5 (convolutional)")
    p.add_argument("--dataset", choices=DATASETS, default="mnist",
                   help="handwritten digits, or Zalando's Fashion-MNIST (same format)")
    p.add_argument("--epochs", type=int_at_least(1), default=DEFAULTS["epochs"],
                   help="passes over the training set")
    p.add_argument("--batch-size", type=int_at_least(1), default=DEFAULTS["batch_size"],
                   help="images per training step")
    p.add_argument("--optimizer", type=str.lower, default=DEFAULTS["optimizer"],
                   choices=sorted(Optimizer.opt_registry), action=_Given,
                   help=f"optimizer{_per_model('optimizer')}")
    p.add_argument("--lr", type=finite_float(0.0), default=DEFAULTS["lr"], action=_Given,
                   help=f"learning rate{_per_model('lr')}")
    p.add_argument("--momentum", type=finite_float(0.0, low_inclusive=True, high=1.0),
                   default=DEFAULTS["momentum"], action=_Given,
                   help=f"momentum (sgd/nag){_per_model('momentum')}")
    p.add_argument("--wd", type=finite_float(0.0, low_inclusive=True), default=DEFAULTS["wd"],
                   action=_Given, help=f"weight decay{_per_model('wd')}")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"),
                   default=DEFAULTS["lr_schedule"], action=_Given,
                   help="keep the learning rate, or let it fall along a half cosine to 0 by "
                        f"the last step{_per_model('lr_schedule')}")
    p.add_argument("--hidden", type=int_at_least(1), default=DEFAULTS["hidden"],
                   help="units of the MLP's hidden layer")
    p.add_argument("--device", type=device_spec, default=None,
                   help="e.g. cpu, cuda:0 (default: MXCORE_DEVICE or cpu)")
    p.add_argument("--data-root", default=None,
                   help="folder with the dataset's four gz files (default: "
                        "MXCORE_DATA/DATASET or ~/.mxcore/datasets/DATASET; Fashion-MNIST "
                        "also from Debian's dataset-fashion-mnist package)")
    p.add_argument("--seed", type=int_at_least(0), default=DEFAULTS["seed"], help="random seed")
    p.add_argument("--output", default="mnist-output", help="where parameters and history go")
    p.add_argument("--limit", type=int_at_least(1), default=None, metavar="N",
                   help="train on the first N training images only, for quick runs "
                        "(default: all 60000)")
    p.add_argument("--plot", action="store_true", help="also write a PNG of the curves "
                   "(needs matplotlib: pip install mxcore[plot])")
    p.add_argument("--kvstore", default=None,
                   choices=("local", "device", "dist_sync", "dist_device_sync", "dist_async"),
                   help="dist_sync: data-parallel over the ranks of an MPI job (`mxcore "
                        "launch -n N -m mxcore train mnist --kvstore dist_sync`): each rank "
                        "trains on its shard of the images with batch BATCH_SIZE/N, rank 0 "
                        "prints and saves; dist_async: the same, each rank's step applied "
                        "on rank 0 as it arrives, without waiting for the others (the ranks "
                        "take rank 0's weights at the end of each epoch) (default: no "
                        "kvstore)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--profile", type=int_at_least(0), default=0, metavar="STEPS",
                   help="profile the first STEPS training steps: a Chrome trace in "
                        "OUTPUT/profile.json (chrome://tracing, ui.perfetto.dev) and a "
                        "per-operator table on stdout (on a GPU each kernel is waited for); "
                        "0: no profile")
    p.add_argument("--threads", type=int_at_least(0), default=1,
                   help="BLAS threads on the CPU (default 1: small steps gain nothing from "
                        "more, and lose a lot when cores are busy); 0 leaves it alone")


class TrainingDivergedError(MXCoreError):
    """The training loss or the parameters became NaN or infinite.  Raised before
    anything is saved, so the files of an earlier run are kept."""


def _check_loss(total: float, epoch: int, after_step: int, step: int) -> None:
    """``total`` is the epoch's running loss sum at ``step``, last read finite at
    ``after_step``: non-finite losses never become finite again in a sum of them."""
    if math.isfinite(total):
        return
    where = (f"at step {step}" if step == after_step + 1
             else f"between steps {after_step + 1} and {step}")
    raise TrainingDivergedError(
        f"training loss became {total} in epoch {epoch}, {where}; stopped without saving "
        "parameters or history (try a lower --lr)")


def _check_parameters(net, epoch: int) -> None:
    """A last update can turn the parameters non-finite after the last loss was computed."""
    import numpy as np
    for name, param in net.collect_params().items():
        if not np.isfinite(param.data().asnumpy()).all():
            raise TrainingDivergedError(
                f"parameter {name} became NaN or infinite in epoch {epoch}; stopped without "
                "saving parameters or history (try a lower --lr)")


def _datasets(root: Optional[str], limit: Optional[int], dataset: str = "mnist"):
    """(train, test) datasets of (1, 28, 28) normalised images: the MLP's Dense
    flattens them and LeNet takes them as they are."""
    from mxcore.gluon.data import vision
    from mxcore.gluon.data.vision import transforms
    from mxcore.gluon.data.vision.datasets import DatasetChecksumError
    cls_name, mean, std = _DATASETS[dataset]
    cls = getattr(vision, cls_name)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    try:
        train, test = cls(root=root, train=True), cls(root=root, train=False)
    except DatasetChecksumError as exc:
        if root is None:
            raise
        # most likely the other dataset's folder (same file names): the dataset's own
        # advice, to delete the file and download it again, would lose that data
        raise DatasetChecksumError(
            f"--data-root {root} does not hold the {dataset} files "
            f"({str(exc).splitlines()[0]}); give the folder of the {dataset} files, or "
            "leave --data-root out") from None
    if limit:
        train = train.take(limit)
    return train.transform_first(tf), test.transform_first(tf)


def resolve_defaults(args) -> None:
    """Fill the optimizer flags the user left out with the model's defaults.  Only
    for arguments from ``add_arguments``' parser: a namespace built otherwise says
    nothing about which values were chosen, and is used as it is."""
    if not hasattr(args, "_given"):
        return
    given = args._given
    for key, value in MODEL_DEFAULTS[getattr(args, "model", "mlp")].items():
        if key not in given:
            setattr(args, key, value)


def optimizer_params(settings: Dict[str, object], train_size: int) -> Dict[str, object]:
    """The Trainer's optimizer parameters for the recipe's ``settings`` (its flags:
    optimizer, lr, wd, momentum, lr_schedule, epochs, batch_size) on ``train_size``
    images."""
    from mxcore import lr_scheduler
    lr = settings["lr"]
    params: Dict[str, object] = {"learning_rate": lr, "wd": settings["wd"]}
    if settings["lr_schedule"] == "cosine":
        # per update: the last batch of an epoch may be short, and is a step too
        steps = settings["epochs"] * math.ceil(train_size / settings["batch_size"])
        params["lr_scheduler"] = lr_scheduler.CosineScheduler(steps, base_lr=lr)
    if str(settings["optimizer"]).lower() in ("sgd", "nag"):
        params["momentum"] = settings["momentum"]
    return params


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


def _train_epoch(args, epoch: int, net, trainer, loss_fn, loader, device,
                 history: Dict[str, List[float]], profile_left: int, workers: int = 1,
                 quiet: bool = False) -> int:
    """One pass over ``loader``; appends the epoch's training figures to ``history``
    and returns how many steps are still to profile.  With ``workers`` data-parallel
    ranks each step's gradients are summed over the ranks' batches."""
    import mxcore as mx
    from mxcore import autograd
    from tqdm import tqdm
    start = time.perf_counter()
    seen = 0
    # running sums stay on the device: reading them every step would make the host
    # wait for an accelerator at each step (read every 50 steps, and at the end); the
    # loss is checked for NaN/inf at those reads, as a non-finite term keeps the sum so
    loss_sum = correct_sum = None
    checked = 0  # the last step at which the running loss was read, and finite
    step = 0
    bar = tqdm(loader, desc=f"epoch {epoch}/{args.epochs}", leave=False,
               unit="batch", disable=True if args.no_progress or quiet else None)  # None: TTY
    try:
        for i, (data, label) in enumerate(bar):
            step = i + 1
            with mx.profiler.scope("train_step") if profile_left else _NO_SCOPE:
                data, label = data.as_in_context(device), label.as_in_context(device)
                with autograd.record():
                    out = net(data)
                    loss = loss_fn(out, label)
                loss.backward()
                n = data.shape[0]
                trainer.step(n * workers)
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
                running = float(loss_sum.asscalar())
                _check_loss(running, epoch, checked, step)
                checked = step
                bar.set_postfix(loss=f"{running / seen:.4f}")
                history["step_loss"].append(float(batch_loss.asscalar()) / n)
    finally:
        bar.close()
    if profile_left:  # fewer steps than asked for
        profile_left = 0
        _report_profile(mx.profiler)
    total_loss, correct = float(loss_sum.asscalar()), int(correct_sum.asscalar())
    _check_loss(total_loss, epoch, checked, step)
    _check_parameters(net, epoch)
    history["epoch"].append(epoch)
    history["train_loss"].append(total_loss / seen)
    history["train_acc"].append(correct / seen)
    history["seconds"].append(time.perf_counter() - start)
    return profile_left


def train(args) -> Dict[str, List[float]]:
    """Train the model as ``args`` (from ``add_arguments``) say; save its parameters and
    a JSON history in ``args.output``.  Raises TrainingDivergedError, before saving
    anything, when the loss or the parameters become NaN or infinite."""
    import mxcore as mx
    from mxcore import gluon

    model = getattr(args, "model", "mlp")
    dataset = getattr(args, "dataset", "mnist")
    resolve_defaults(args)
    mx.random.seed(args.seed)
    device = mx.device(args.device) if args.device else mx.default_device()
    if args.threads and device.kind == "cpu":
        from mxcore.device import device_type
        device_type(device).set_num_threads(args.threads)
    train_ds, test_ds = _datasets(args.data_root, args.limit, dataset)
    kvstore = getattr(args, "kvstore", None)
    kv, rank, workers, batch_size = None, 0, 1, args.batch_size
    if kvstore:
        kv = mx.kv.create(kvstore)
        rank, workers = kv.rank, kv.num_workers
        if workers > 1:  # equal shards: every rank takes as many steps
            train_ds = train_ds.take(len(train_ds) // workers * workers).shard(workers, rank)
            batch_size = max(1, args.batch_size // workers)
    say = print if rank == 0 else (lambda *a, **k: None)
    train_loader = gluon.data.DataLoader(train_ds, batch_size=batch_size, shuffle=True)
    test_loader = gluon.data.DataLoader(test_ds, batch_size=1000)
    net = build_model(model, args.hidden)
    net.initialize(mx.init.Xavier(magnitude=2.24), ctx=device)
    # the schedule counts the optimizer's updates: one per step of a rank's batch, and on
    # dist_async one per step of every rank (the server applies each push)
    updates_per_step = workers if kvstore and "async" in kvstore else 1
    opt_params = optimizer_params({**vars(args), "batch_size": batch_size},
                                  len(train_ds) * updates_per_step)
    trainer = gluon.Trainer(net.collect_params(), args.optimizer, opt_params,
                            **({"kvstore": kv} if kv is not None else {}))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    history: Dict[str, List[float]] = {"epoch": [], "train_loss": [], "train_acc": [],
                                       "test_acc": [], "seconds": [], "lr": [], "step_loss": []}
    os.makedirs(args.output, exist_ok=True)
    ranks = f" x {workers} ranks ({kvstore})" if workers > 1 else ""
    say(f"training {_DESCRIPTIONS[model].format(hidden=args.hidden)} on {device!r}{ranks}: "
        f"{len(train_ds) * workers} {dataset} images, batch {args.batch_size}, "
        f"{args.optimizer} lr {args.lr}"
        f"{' (cosine decay)' if args.lr_schedule == 'cosine' else ''}, {args.epochs} epochs")
    profile_left = max(0, args.profile)
    if profile_left:
        from mxcore.device import device_type
        # on a device with its own memory (a GPU) kernels run asynchronously: wait for
        # each, so that the table shows the device's time, not the launch's
        mx.profiler.set_config(filename=os.path.join(args.output, "profile.json"),
                               synchronize=not device_type(device).host_memory)
        mx.profiler.set_state("run")
    import numpy as np
    try:
        # overflow ends as inf/NaN in the loss or the parameters, which are checked and
        # reported in one line: numpy's warnings from CPU kernels would only add noise
        with np.errstate(over="ignore", invalid="ignore"):
            for epoch in range(1, args.epochs + 1):
                profile_left = _train_epoch(args, epoch, net, trainer, loss_fn, train_loader,
                                            device, history, profile_left, workers, rank > 0)
                if workers > 1 and "async" in kvstore:  # everyone's pushes, applied
                    kv.barrier()
                    trainer._pull_from_kvstore()
                history["lr"].append(float(trainer.learning_rate))  # for the next epoch
                test_acc = evaluate(net, test_loader, device)
                history["test_acc"].append(test_acc)
                say(f"epoch {epoch:2d}: train loss {history['train_loss'][-1]:.4f}  "
                      f"train acc {history['train_acc'][-1]:.4f}  test acc {test_acc:.4f}  "
                      f"{history['seconds'][-1]:.1f}s")
    finally:
        if profile_left:  # stopped early: take the profiler's engine out of the way
            mx.profiler.set_state("stop")
    if kv is not None and hasattr(kv, "allreduce_stats"):
        stats = kv.allreduce_stats()
        if stats["pushes"]:
            history["allreduce_ms_per_step"] = [1e3 * stats["seconds"] / stats["pushes"]]
    params_path = os.path.join(args.output, f"{dataset}-{model}.safetensors")
    if rank > 0:  # the parameters are rank 0's on every rank: rank 0 saves them
        return history
    net.save_parameters(params_path)
    with atomic_path(os.path.join(args.output, "history.json")) as tmp, open(tmp, "w") as f:
        json.dump({"config": {k: v for k, v in vars(args).items()
                              if k not in ("func", "_given")},
                   "history": history}, f, indent=2)
    say(f"final test accuracy {history['test_acc'][-1]:.4f}; parameters in {params_path}")
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
    # the format from the target's name: the temporary file's name ends in .tmp
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=os.path.splitext(path)[1][1:] or "png")
    plt.close(fig)
    print(f"curves in {path}")
