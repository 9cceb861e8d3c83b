#!/usr/bin/env python
"""mxcore against PyTorch CPU eager and Apache MXNet 1.9.1 on convolution networks.

Workloads (synthetic data from a fixed seed, float32):

- ``lenet``: one LeNet-5 training step, batch 64 of 1x28x28, softmax cross-entropy,
  SGD (lr 0.01, momentum 0.9).  mxcore uses ``model_zoo.vision.get_model("lenet")``;
  MXNet builds the same layers with ``gluon.nn`` (conv 6x5x5 pad 2, relu, max-pool 2,
  conv 16x5x5, relu, max-pool 2, dense 120, 84, 10); PyTorch writes them in ``torch.nn``.
- ``resnet18``: ResNet-18 v1 forward + backward in training mode (BatchNorm on batch
  statistics), batch 32 of 3x32x32, 10 classes, softmax cross-entropy; no optimizer
  step on any side.  mxcore and MXNet use their model zoo's ``resnet18_v1``; PyTorch
  writes the same network in ``torch.nn`` (torchvision is not needed).
- ``resnet_conv`` (not run by default): forward + backward of single 3x3 convolutions
  at the shapes of ResNet-18's four stages on 32x32 input (64 ch at 32x32, 128 at
  16x16, 256 at 8x8, 512 at 4x4; batch 16), through ``nd.Convolution``/``F.conv2d``.

A comparison script, not a test; PyTorch and MXNet are references, never dependencies.
MXNet runs in its own virtualenv, named by ``--mxnet-python``; without it, or when
``import mxnet`` fails there, the MXNet variants are skipped with a note.

Variants: ``FRAMEWORK[-hybrid][-1t]`` with FRAMEWORK one of mxcore, torch, mxnet.
Without ``-1t`` a variant runs with default threads, as users run it (the thread
variables of ``THREAD_VARS`` are removed from its environment); ``-1t`` sets them all
to 1 (``MXCORE_CPU_THREADS=1``; ``OMP_NUM_THREADS=1`` and
``MXNET_CPU_WORKER_NTHREADS=1`` for MXNet) and PyTorch also calls
``torch.set_num_threads(1)``.  ``-hybrid`` (Gluon only) calls
``net.hybridize(static_alloc=True, static_shape=True)`` (no effect on resnet_conv,
which has no block); plain ``mxnet`` is the eager (imperative) Gluon run and the main
comparison.  ``mxcore-step`` (LeNet only) runs the same step as one
``gluon.TrainStep`` call: one replayed plan of forward and backward, then the update.

Method (the host may be noisy): every measurement runs in a fresh process that builds
the model from a fixed seed, warms up (at least the workload's warm-up steps and at
least one second, so MXNet's oneDNN primitives are created before timing), then times
the steps one by one and reports their median wall time and median process CPU time
(with one thread the CPU time is the steadier figure on a shared host; with more it
sums the threads, including idle spinning ones).  Variants run interleaved, in
rotating order, for ``--rounds`` rounds.  Each variant reports the median over rounds;
each ratio mxcore/other is the median of the per-round ratios (paired) between
variants of the same thread setting.  Each worker also reports its network's trainable
parameter count, a check that the sides build the same network.

Usage:  python tools/compare_lenet.py [--rounds 5] [--steps 50] [--json]
            [--mxnet-python /work/mxnet-venv/bin/python]
            [--workloads lenet,resnet18[,resnet_conv]]
            [--variants mxcore,mxcore-1t,torch,torch-1t,mxnet,mxnet-1t,mxnet-hybrid]
``--steps`` is the LeNet step count; ResNet-18 times a fifth of it and resnet_conv a
tenth (at least 3).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, NamedTuple, Tuple

import numpy as np

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "MXCORE_CPU_THREADS", "MXNET_CPU_WORKER_NTHREADS")
FRAMEWORKS = ("mxcore", "torch", "mxnet")
GLUON = ("mxcore", "mxnet")
DEFAULT_VARIANTS = "mxcore,mxcore-1t,torch,torch-1t,mxnet,mxnet-1t,mxnet-hybrid"
LENET_BATCH = 64
RESNET_BATCH, RESNET_CLASSES = 32, 10
CONV_STAGES = ((64, 32), (128, 16), (256, 8), (512, 4))   # (channels, size)
CONV_BATCH = 16
MIN_WARMUP_S = 1.0


class Workload(NamedTuple):
    title: str
    warmup: int         # warm-up steps (at least; see MIN_WARMUP_S)
    steps_divisor: int  # timed steps = max(3, --steps // steps_divisor)


WORKLOADS = {
    "lenet": Workload(f"LeNet-5 train step (fwd+bwd+SGD momentum), batch {LENET_BATCH}"
                      " x 1x28x28", 10, 1),
    "resnet18": Workload(f"ResNet-18 v1 fwd+bwd, train-mode BN, batch {RESNET_BATCH} x "
                         f"3x32x32, {RESNET_CLASSES} classes, no optimizer step", 5, 5),
    "resnet_conv": Workload(f"ResNet-18 3x3 convs fwd+bwd, 4 stages, batch {CONV_BATCH}",
                            2, 10),
}
Step = Callable[[], None]


# --- Gluon: one code path for mxcore and MXNet 1.9.1 (``mx`` is either module) --------
def _gluon_data(mx, shape: Tuple[int, ...], batch: int):
    rs = np.random.RandomState(0)
    x = mx.nd.array(rs.standard_normal((batch,) + shape).astype(np.float32))
    y = mx.nd.array(rs.randint(0, 10, batch).astype(np.float32))
    return x, y


def _gluon_lenet_net(mx, framework: str):
    if framework == "mxcore":
        return mx.gluon.model_zoo.vision.get_model("lenet", classes=10)
    nn = mx.gluon.nn   # MXNet's model zoo has no LeNet: the same layers as mxcore's
    net = nn.HybridSequential()
    net.add(nn.Conv2D(6, kernel_size=5, padding=2, activation="relu"),
            nn.MaxPool2D(pool_size=2, strides=2),
            nn.Conv2D(16, kernel_size=5, activation="relu"),
            nn.MaxPool2D(pool_size=2, strides=2), nn.Flatten(),
            nn.Dense(120, activation="relu"), nn.Dense(84, activation="relu"),
            nn.Dense(10))
    return net


def _gluon_net(mx, net, hybrid: bool, x):
    mx.random.seed(0)
    net.initialize(mx.init.Xavier())
    if hybrid:
        net.hybridize(static_alloc=True, static_shape=True)
    net(x)   # finishes deferred initialisation before parameters are counted
    params = sum(int(np.prod(p.shape)) for p in net.collect_params().values()
                 if p.grad_req != "null")
    return net, params


def gluon_lenet(mx, framework: str, hybrid: bool, train_step: bool = False
                ) -> Tuple[Step, int]:
    x, y = _gluon_data(mx, (1, 28, 28), LENET_BATCH)
    net, params = _gluon_net(mx, _gluon_lenet_net(mx, framework), hybrid, x)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd",
                               {"learning_rate": 0.01, "momentum": 0.9})
    if train_step:
        one_call = mx.gluon.TrainStep(net, loss_fn, trainer)

        def step_call():
            one_call(x, y)
            mx.nd.waitall()
        return step_call, params

    def step():
        with mx.autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(LENET_BATCH)
        mx.nd.waitall()
    return step, params


def gluon_resnet18(mx, framework: str, hybrid: bool) -> Tuple[Step, int]:
    x, y = _gluon_data(mx, (3, 32, 32), RESNET_BATCH)
    zoo = mx.gluon.model_zoo.vision.get_model("resnet18_v1", classes=RESNET_CLASSES)
    net, params = _gluon_net(mx, zoo, hybrid, x)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()

    def step():
        with mx.autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        mx.nd.waitall()
    return step, params


def gluon_resnet_conv(mx, framework: str, hybrid: bool) -> Tuple[Step, int]:
    rs = np.random.RandomState(0)
    layers = []
    for c, s in CONV_STAGES:
        x = mx.nd.array(rs.standard_normal((CONV_BATCH, c, s, s)).astype(np.float32))
        w = mx.nd.array(rs.standard_normal((c, c, 3, 3)).astype(np.float32) * 0.05)
        b = mx.nd.zeros((c,))
        for a in (x, w, b):
            a.attach_grad()
        layers.append((x, w, b, c))

    def step():
        for x, w, b, c in layers:
            with mx.autograd.record():
                y = mx.nd.Convolution(x, w, b, kernel=(3, 3), pad=(1, 1), num_filter=c)
            y.backward()
        mx.nd.waitall()
    return step, sum(c * c * 9 + c for c, _ in CONV_STAGES)


# --- PyTorch ---------------------------------------------------------------------------
def _torch_data(shape: Tuple[int, ...], batch: int):
    import torch
    rs = np.random.RandomState(0)
    return (torch.tensor(rs.standard_normal((batch,) + shape).astype(np.float32)),
            torch.tensor(rs.randint(0, 10, batch)))


def _torch_params(net) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def torch_lenet() -> Tuple[Step, int]:
    import torch
    from torch import nn
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
                        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                        nn.Linear(84, 10))
    x, y = _torch_data((1, 28, 28), LENET_BATCH)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()
    return step, _torch_params(net)


def _torch_resnet18_v1(classes: int):
    """ResNet-18 v1 as MXNet's model zoo lays it out: 7x7/2 conv (no bias), BN, relu,
    3x3/2 max-pool, four stages of two basic blocks (64, 128, 256, 512 channels,
    stride 2 from the second stage, a 1x1 strided conv + BN shortcut where the width
    changes), global average pooling, dense."""
    from torch import nn

    class BasicBlockV1(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
            self.downsample = None if cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            residual = x if self.downsample is None else self.downsample(x)
            return (residual + self.body(x)).relu()

    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
              nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for i, cout in enumerate((64, 128, 256, 512)):
        layers += [BasicBlockV1(cin, cout, 1 if i == 0 else 2), BasicBlockV1(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes)]
    return nn.Sequential(*layers)


def torch_resnet18() -> Tuple[Step, int]:
    import torch
    torch.manual_seed(0)
    net = _torch_resnet18_v1(RESNET_CLASSES).train()
    x, y = _torch_data((3, 32, 32), RESNET_BATCH)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        net.zero_grad()   # gradients written afresh, as Gluon's grad_req="write"
        loss_fn(net(x), y).backward()
    return step, _torch_params(net)


def torch_resnet_conv() -> Tuple[Step, int]:
    import torch
    F = torch.nn.functional
    rs = np.random.RandomState(0)
    layers = []
    for c, s in CONV_STAGES:
        x = torch.tensor(rs.standard_normal((CONV_BATCH, c, s, s)).astype(np.float32),
                         requires_grad=True)
        w = torch.tensor(rs.standard_normal((c, c, 3, 3)).astype(np.float32) * 0.05,
                         requires_grad=True)
        b = torch.zeros(c, requires_grad=True)
        layers.append((x, w, b))

    def step():
        for x, w, b in layers:
            y = F.conv2d(x, w, b, padding=1)
            y.backward(torch.ones_like(y))
    return step, sum(w.numel() + b.numel() for _, w, b in layers)


TORCH_BUILDERS = {"lenet": torch_lenet, "resnet18": torch_resnet18,
                  "resnet_conv": torch_resnet_conv}
GLUON_BUILDERS = {"lenet": gluon_lenet, "resnet18": gluon_resnet18,
                  "resnet_conv": gluon_resnet_conv}


# --- variants and workers --------------------------------------------------------------
class Variant(NamedTuple):
    framework: str
    hybrid: bool
    one_thread: bool
    train_step: bool = False


def parse_variant(name: str) -> Variant:
    framework, *flags = name.split("-")
    bad = set(flags) - {"hybrid", "step", "1t"}
    if framework not in FRAMEWORKS or bad or len(flags) != len(set(flags)):
        raise SystemExit(f"unknown variant {name!r}: FRAMEWORK[-hybrid|-step][-1t] with "
                         f"FRAMEWORK one of {', '.join(FRAMEWORKS)}")
    if "hybrid" in flags and framework not in GLUON:
        raise SystemExit(f"variant {name!r}: -hybrid is for Gluon ({', '.join(GLUON)})")
    if "step" in flags and (framework != "mxcore" or "hybrid" in flags):
        raise SystemExit(f"variant {name!r}: -step is mxcore's gluon.TrainStep")
    return Variant(framework, "hybrid" in flags, "1t" in flags, "step" in flags)


def build(variant: Variant, workload: str) -> Tuple[Step, int]:
    if variant.framework == "torch":
        import torch
        if variant.one_thread:
            torch.set_num_threads(1)
        return TORCH_BUILDERS[workload]()
    if variant.framework == "mxcore":
        import mxcore as mx
    else:
        import mxnet as mx
    if variant.train_step:
        if workload != "lenet":
            raise SystemExit(f"-step times a training step: LeNet only, not {workload}")
        return gluon_lenet(mx, variant.framework, variant.hybrid, train_step=True)
    return GLUON_BUILDERS[workload](mx, variant.framework, variant.hybrid)


def worker(name: str, workload: str, steps: int) -> None:
    """Runs in a fresh process: build, warm up, time ``steps`` calls one by one."""
    step, params = build(parse_variant(name), workload)
    start, done = time.perf_counter(), 0
    while done < WORKLOADS[workload].warmup or time.perf_counter() - start < MIN_WARMUP_S:
        step()
        done += 1
    wall, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(json.dumps({"wall_ms": 1e3 * statistics.median(wall),
                      "cpu_ms": 1e3 * statistics.median(cpu), "params": params}))


def environment(variant: Variant) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    if variant.one_thread:
        env.update({k: "1" for k in THREAD_VARS})
    return env


def run_once(name: str, workload: str, steps: int, python: str) -> dict:
    out = subprocess.run([python, os.path.abspath(__file__), "--worker", name, workload,
                          "--steps", str(steps)], env=environment(parse_variant(name)),
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{name} {workload} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def mxnet_problem(python: str) -> str:
    """Why MXNet cannot run under ``python`` ('' when it can)."""
    if not python:
        return "no --mxnet-python given"
    try:
        out = subprocess.run([python, "-c", "import mxnet; print(mxnet.__version__)"],
                             capture_output=True, text=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{python}: {err}"
    if out.returncode != 0:
        return f"import mxnet failed under {python}: " + \
            (out.stderr.strip().splitlines() or ["?"])[-1]
    return ""


# --- measurement and report ------------------------------------------------------------
def paired_ratios(variants: List[str], times: Dict[str, List[dict]]) -> Dict[str, dict]:
    """mxcore variant / every other framework's variant of the same thread setting:
    the median of the per-round ratios."""
    ratios = {}
    for mine in variants:
        for ref in variants:
            a, b = parse_variant(mine), parse_variant(ref)
            if a.framework == "mxcore" and b.framework != "mxcore" \
                    and a.one_thread == b.one_thread:
                ratios[f"{mine}/{ref}"] = {k: statistics.median(
                    x[k] / y[k] for x, y in zip(times[mine], times[ref]))
                    for k in ("wall_ms", "cpu_ms")}
    return ratios


def measure(workload: str, variants: List[str], rounds: int, steps: int,
            pythons: Dict[str, str]) -> dict:
    times: Dict[str, List[dict]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants[r % len(variants):] + variants[:r % len(variants)]:
            times[v].append(run_once(v, workload, steps, pythons[v]))
    median = {v: {k: statistics.median(t[k] for t in ts) for k in ("wall_ms", "cpu_ms")}
              for v, ts in times.items()}
    return {"title": WORKLOADS[workload].title, "steps": steps, "median": median,
            "params": {v: ts[0]["params"] for v, ts in times.items()},
            "paired_ratio": paired_ratios(variants, times), "rounds": times}


def print_table(result: dict, rounds: int) -> None:
    print(f"{result['title']}\n  ({rounds} rounds x {result['steps']} steps; medians per "
          "step, wall and process CPU)")
    print(f"  {'variant':18s} {'wall ms':>9s} {'cpu ms':>9s} {'params':>10s}   "
          "rounds, wall ms")
    for v, row in result["median"].items():
        each = " ".join(f"{t['wall_ms']:.1f}" for t in result["rounds"][v])
        print(f"  {v:18s} {row['wall_ms']:9.2f} {row['cpu_ms']:9.2f} "
              f"{result['params'][v]:10d}   {each}")
    if len(set(result["params"].values())) > 1:
        print("  WARNING: the variants' networks differ in trainable parameter count")
    for k, ratio in result["paired_ratio"].items():
        print(f"  {k:30s} {ratio['wall_ms']:6.2f}x wall {ratio['cpu_ms']:6.2f}x cpu"
              " (paired)")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=50,
                    help="LeNet steps; ResNet-18 a fifth, resnet_conv a tenth (min 3)")
    ap.add_argument("--workloads", default="lenet,resnet18")
    ap.add_argument("--variants", default=DEFAULT_VARIANTS)
    ap.add_argument("--mxnet-python", default="",
                    help="python of a virtualenv with Apache MXNet 1.9.1")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", nargs=2, metavar=("VARIANT", "WORKLOAD"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker, args.steps)
        return
    workloads = args.workloads.split(",")
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"unknown workloads {sorted(unknown)}; known: {list(WORKLOADS)}")
    variants = args.variants.split(",")
    notes = []
    uses_mxnet = [v for v in variants if parse_variant(v).framework == "mxnet"]
    problem = mxnet_problem(args.mxnet_python) if uses_mxnet else ""
    if problem:
        variants = [v for v in variants if v not in uses_mxnet]
        notes.append(f"skipped {', '.join(uses_mxnet)}: {problem}")
    if not variants:
        raise SystemExit("no variant left to run: " + "; ".join(notes))
    pythons = {v: args.mxnet_python if parse_variant(v).framework == "mxnet"
               else sys.executable for v in variants}
    for note in notes:   # on stdout with the table, off it with --json
        print(f"note: {note}", file=sys.stderr if args.json else sys.stdout)
    report = {"notes": notes, "rounds": args.rounds, "variants": variants,
              "workloads": {}}
    for workload in workloads:
        steps = max(3, args.steps // WORKLOADS[workload].steps_divisor)
        result = measure(workload, variants, args.rounds, steps, pythons)
        report["workloads"][workload] = result
        if not args.json:
            print_table(result, args.rounds)
    if args.json:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
