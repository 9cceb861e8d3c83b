#!/usr/bin/env python
"""One epoch of the MNIST MLP (784-256 ReLU-10, batch 64, SGD lr 0.1): mxcore
eager vs PyTorch CPU eager vs a hand-written numpy loop, each under the thread
setting its variant names.

A comparison script, not a test.  The data is already in memory (real MNIST
from data/mnist, normalised, fixed batch order, no shuffling) so only the
training step is timed.  The numpy loop is the floor for a numpy backend:
manual forward/backward, in-place parameter updates, no framework.

Variants: a bare name (``mxcore``, ``torch``, ``numpy``) runs with default
threads, as users run it (the thread variables ``OMP_NUM_THREADS``,
``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MXCORE_CPU_THREADS`` are
removed from its environment); ``NAME-Kt`` pins K threads: ``mxcore-1t`` sets
``MXCORE_CPU_THREADS=1`` (what a user would do), ``numpy-1t`` the BLAS thread
variables, ``torch-1t`` those plus ``torch.set_num_threads(1)``.  The default
set is numpy-1t (the floor: every ratio is against it), mxcore, mxcore-1t,
mxcore-Nt (N = the CPU count, when above 1) and torch (when installed).
``mxcore-hybrid`` (and ``mxcore-hybrid-Kt``) is the same network and loss after
``hybridize()``: every step replays the traced forward and backward plans.  A
``-threaded`` suffix on an mxcore variant (``mxcore-threaded-1t``,
``mxcore-hybrid-threaded``) runs it on the threaded engine (``MXCORE_ENGINE=threaded``).
``mxcore-step`` is the same network, loss and trainer as one ``gluon.TrainStep``: each
step is one call that replays one traced plan of forward, loss and backward, then the
trainer's update.

Method (the host is noisy): every measurement runs in a fresh process (thread
pools start as a user's would), which builds the network from the same initial
weights, trains ``--warmup`` steps untimed, then times one epoch; the variants
run interleaved, one epoch each per round, in rotating order.  Each variant
reports the median over rounds; each ratio is the median of per-round ratios
(paired): against the floor, and mxcore's default against its best pinned
setting in the same round.

Apache MXNet 1.9.1 joins when ``--mxnet-python`` names the interpreter of a
separate virtualenv that has it (``python -m venv /tmp/mxref && /tmp/mxref/bin/pip
install mxnet==1.9.1 'numpy<1.24'``) as the variant ``mxnet-1t``: a process of
that interpreter builds the same network with the same initial weights, warms
up and times one epoch.  MXNet is a reference, never a dependency.

``--contend K`` starts K competing processes (each a one-thread numpy product
in a loop, as another job on a shared runner) before the first round and stops
them after the last: every variant then runs on a busy machine.

``--batch 4 --hidden 8`` makes the step dispatch-bound (the arithmetic is a few
microseconds): the times are then each framework's host overhead per training
step, which is what bounds a small model on a GPU.

Usage:  python asv_bench/compare_mlp_epoch.py [--rounds 5] [--steps N] [--json]
                                              [--variants numpy-1t,mxcore,mxcore-1t,torch]
                                              [--batch 64] [--hidden 256] [--warmup 20]
                                              [--mxnet-python /tmp/mxref/bin/python]
"""
import argparse
import gzip
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "mnist")
BATCH, LR, HIDDEN = 64, 0.1, 256
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "MXCORE_CPU_THREADS")
FLOOR = "numpy-1t"


def load_mnist():
    with gzip.open(os.path.join(DATA, "train-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(os.path.join(DATA, "train-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    x = ((x.astype(np.float32) / 255.0 - 0.1307) / 0.3081).astype(np.float32)
    return x, y.astype(np.int64)


def init_params(seed=0):
    rs = np.random.RandomState(seed)
    s1, s2 = np.sqrt(6 / (784 + HIDDEN)), np.sqrt(6 / (HIDDEN + 10))
    return (rs.uniform(-s1, s1, (HIDDEN, 784)).astype(np.float32), np.zeros(HIDDEN, np.float32),
            rs.uniform(-s2, s2, (10, HIDDEN)).astype(np.float32), np.zeros(10, np.float32))


class NumpyMLP:
    def __init__(self, batches, threads):
        self.batches = batches
        self.params = [p.copy() for p in init_params()]

    def version(self):
        return np.__version__

    def epoch(self, batches):
        params = self.params
        forward, backward, update = self.forward, self.backward, self.update
        for xb, yb in batches:
            h, o = forward(params, xb, yb)
            update(params, backward(params, xb, h, o))

    # the step's phases (compare_mlp_phases.py times them one by one)
    @staticmethod
    def forward(params, xb, yb):
        """Hidden activations and d(mean loss)/d logits."""
        W1, b1, W2, b2 = params
        n = len(xb)
        h = xb @ W1.T
        h += b1
        np.maximum(h, 0, out=h)
        o = h @ W2.T
        o += b2
        o -= o.max(axis=1, keepdims=True)
        np.exp(o, out=o)
        o /= o.sum(axis=1, keepdims=True)
        o[np.arange(n), yb] -= 1.0
        o /= n                       # d(mean loss)/d logits
        return h, o

    @staticmethod
    def backward(params, xb, h, o):
        W2 = params[2]
        gW2 = o.T @ h
        gb2 = o.sum(axis=0)
        dh = o @ W2
        dh *= h > 0
        gW1 = dh.T @ xb
        gb1 = dh.sum(axis=0)
        return gW1, gb1, gW2, gb2

    @staticmethod
    def update(params, grads):
        for w, g in zip(params, grads):
            g *= LR
            w -= g


class MxcoreMLP:
    def __init__(self, batches, threads):
        import mxcore as mx
        from mxcore import gluon
        from mxcore.gluon import nn
        self.mx = mx
        self.batches = [(mx.nd.array(x), mx.nd.array(y, dtype="int32")) for x, y in batches]
        self.net = nn.HybridSequential()
        self.net.add(nn.Dense(HIDDEN, activation="relu", in_units=784), nn.Dense(10, in_units=HIDDEN))
        self.net.initialize()
        for p, v in zip(self.net.collect_params().values(), init_params()):
            p.set_data(mx.nd.array(v))
        self.loss = gluon.loss.SoftmaxCrossEntropyLoss()
        self.trainer = gluon.Trainer(self.net.collect_params(), "sgd", {"learning_rate": LR})

    def version(self):
        return self.mx.__version__

    def epoch(self, batches):
        mx = self.mx
        net, loss_fn, trainer, record = self.net, self.loss, self.trainer, mx.autograd.record
        for xb, yb in batches:
            with record():
                loss = loss_fn(net(xb), yb)
            loss.backward()
            trainer.step(xb.shape[0])
        mx.nd.waitall()


class MxcoreHybridMLP(MxcoreMLP):
    """The same network and loss, hybridized: each step replays traced plans."""

    def __init__(self, batches, threads):
        super().__init__(batches, threads)
        self.net.hybridize()
        self.loss.hybridize()


class MxcoreStepMLP(MxcoreMLP):
    """The same network, loss and trainer as one ``gluon.TrainStep`` call per step."""

    def __init__(self, batches, threads):
        super().__init__(batches, threads)
        self.step = self.mx.gluon.TrainStep(self.net, self.loss, self.trainer)

    def epoch(self, batches):
        step = self.step
        for xb, yb in batches:
            step(xb, yb)
        self.mx.nd.waitall()


class TorchMLP:
    def __init__(self, batches, threads):
        import torch
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
        self.net = torch.nn.Sequential(torch.nn.Linear(784, HIDDEN), torch.nn.ReLU(),
                                       torch.nn.Linear(HIDDEN, 10))
        with torch.no_grad():
            for p, v in zip(self.net.parameters(), init_params()):
                p.copy_(torch.from_numpy(v))
        self.opt = torch.optim.SGD(self.net.parameters(), lr=LR)
        self.loss = torch.nn.CrossEntropyLoss()

    def version(self):
        return self.torch.__version__

    def epoch(self, batches):
        net, opt, loss_fn = self.net, self.opt, self.loss
        for xb, yb in batches:
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xb), yb).backward()
            opt.step()


RUNNERS = {"numpy": NumpyMLP, "mxcore": MxcoreMLP, "mxcore-hybrid": MxcoreHybridMLP,
           "mxcore-step": MxcoreStepMLP,
           "torch": TorchMLP}

MXNET_WORKER = r"""
import os, sys, time
os.environ.setdefault("MXNET_ENGINE_TYPE", "ThreadedEnginePerDevice")
import numpy as np
import mxnet as mx
from mxnet import autograd, gluon
from mxnet.gluon import nn
data = np.load(sys.argv[1])
x, y, params = data["x"], data["y"], [data[f"p{i}"] for i in range(4)]
steps, batch, hidden = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5])
lr, warmup = float(sys.argv[4]), int(sys.argv[6])
batches = [(mx.nd.array(x[i:i + batch]), mx.nd.array(y[i:i + batch]))
           for i in range(0, steps * batch, batch)]
net = nn.HybridSequential()
net.add(nn.Dense(hidden, activation="relu", in_units=784), nn.Dense(10, in_units=hidden))
net.initialize()
for p, v in zip(net.collect_params().values(), params):
    p.set_data(mx.nd.array(v))
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr})

def epoch(batches):
    for xb, yb in batches:
        with autograd.record():
            loss = loss_fn(net(xb), yb)
        loss.backward()
        trainer.step(xb.shape[0])
    mx.nd.waitall()

epoch(batches[:warmup])
t0 = time.perf_counter()
epoch(batches)
print("RESULT", time.perf_counter() - t0, mx.__version__, flush=True)
"""


def parse_variant(name):
    """'mxcore' -> ('mxcore', None); 'torch-1t' -> ('torch', 1)."""
    m = re.fullmatch(r"(numpy|mxcore(?:-hybrid|-step)?(?:-threaded)?|torch|mxnet)(?:-(\d+)t)?",
                     name)
    if not m or (m.group(1) == "mxnet" and not m.group(2)):
        raise argparse.ArgumentTypeError(
            f"unknown variant {name!r}: numpy|mxcore[-hybrid|-step][-threaded]|torch[-Kt], "
            "mxnet-1t")
    return m.group(1), int(m.group(2)) if m.group(2) else None


def variant_env(name):
    """The environment of a variant's process: a user's, less the thread
    variables (default threads), or pinned to K threads."""
    lib, threads = parse_variant(name)
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS + ("MXCORE_ENGINE",)}
    if lib.endswith("-threaded"):
        env["MXCORE_ENGINE"] = "threaded"
    if threads:
        if lib.startswith("mxcore"):
            env["MXCORE_CPU_THREADS"] = str(threads)
        else:
            for var in THREAD_VARS[:3]:
                env[var] = str(threads)
        if lib == "mxnet":
            env["MXNET_CPU_WORKER_NTHREADS"] = str(threads)
    return env


def worker(args):
    """Runs in the variant's own process: build, warm up, time one epoch."""
    lib, threads = parse_variant(args.worker)
    x, y = load_mnist()
    batches = [(x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, len(x), BATCH)]
    if args.steps:
        batches = batches[:args.steps]
    runner = RUNNERS[lib.removesuffix("-threaded")](batches, threads)
    data = getattr(runner, "batches", batches)
    runner.epoch(data[:args.warmup])
    t0 = time.perf_counter()
    runner.epoch(data)
    print("RESULT", time.perf_counter() - t0, runner.version(), flush=True)
    return 0


def run_variant(name, args, shared):
    lib, _ = parse_variant(name)
    if lib == "mxnet":
        cmd = [args.mxnet_python, "-c", MXNET_WORKER, shared["npz"], str(shared["steps"]),
               str(BATCH), str(LR), str(HIDDEN), str(args.warmup)]
    else:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", name,
               "--batch", str(BATCH), "--hidden", str(HIDDEN), "--warmup", str(args.warmup)]
        if args.steps:
            cmd += ["--steps", str(args.steps)]
    proc = subprocess.run(cmd, env=variant_env(name), stdout=subprocess.PIPE, text=True,
                          check=True)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1].split()
    return float(line[1]), line[2]


CONTENDER = """
import numpy as np
a = np.random.default_rng(0).random((384, 384))
while True:
    a @ a
"""


def start_contenders(k):
    """K busy processes of one BLAS thread each."""
    env = {key: v for key, v in os.environ.items() if key not in THREAD_VARS}
    env.update({var: "1" for var in THREAD_VARS[:3]})
    return [subprocess.Popen([sys.executable, "-c", CONTENDER], env=env) for _ in range(k)]


def default_variants():
    names = [FLOOR, "mxcore", "mxcore-1t"]
    if (os.cpu_count() or 1) > 1:
        names.append(f"mxcore-{os.cpu_count()}t")
    if importlib.util.find_spec("torch") is not None:
        names.append("torch")
    return names


def main(argv=None):
    global BATCH, HIDDEN
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=None, help="batches per epoch (default: all 938)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed steps before the epoch")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--hidden", type=int, default=HIDDEN)
    ap.add_argument("--variants", default=None,
                    help="comma-separated: numpy|mxcore|torch[-Kt] (default: "
                         + ",".join(default_variants()) + ")")
    ap.add_argument("--mxnet-python", default=None,
                    help="python of a virtualenv with mxnet==1.9.1 (adds mxnet-1t to the run)")
    ap.add_argument("--contend", type=int, default=0, metavar="K",
                    help="run every variant beside K competing busy processes")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    BATCH, HIDDEN = args.batch, args.hidden
    if args.worker:
        return worker(args)

    names = args.variants.split(",") if args.variants else default_variants()
    if FLOOR not in names:
        names.insert(0, FLOOR)
    if args.mxnet_python and "mxnet-1t" not in names:
        names.append("mxnet-1t")
    for name in names:
        try:
            parse_variant(name)
        except argparse.ArgumentTypeError as exc:
            ap.error(str(exc))
    steps = args.steps or -(-60000 // BATCH)
    shared = {"steps": steps}
    tmp = None
    if "mxnet-1t" in names:
        if not args.mxnet_python:
            ap.error("mxnet-1t needs --mxnet-python")
        tmp = tempfile.TemporaryDirectory()
        x, y = load_mnist()
        shared["npz"] = os.path.join(tmp.name, "data.npz")
        np.savez(shared["npz"], x=x[:steps * BATCH], y=y[:steps * BATCH].astype(np.float32),
                 **{f"p{i}": p for i, p in enumerate(init_params())})

    times = {name: [] for name in names}
    versions = {}
    contenders = start_contenders(args.contend)
    try:
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                seconds, versions[name] = run_variant(name, args, shared)
                times[name].append(seconds)
                if not args.json:
                    print(f"  round {r + 1}: {name:10s} {seconds:.3f} s", file=sys.stderr)
    finally:
        for proc in contenders:
            proc.kill()
            proc.wait()
        if tmp is not None:
            tmp.cleanup()

    def paired(a, b):
        return statistics.median(x / y for x, y in zip(a, b))

    ratios = {name: paired(ts, times[FLOOR]) for name, ts in times.items()}
    pinned = [n for n in names if parse_variant(n)[0] == "mxcore" and parse_variant(n)[1]]
    vs_best = None
    if "mxcore" in times and pinned:
        best = [min(times[n][i] for n in pinned) for i in range(args.rounds)]
        vs_best = paired(times["mxcore"], best)
    result = {"steps": steps, "batch": BATCH, "hidden": HIDDEN, "rounds": args.rounds,
              "floor": FLOOR, "median_s": {k: statistics.median(v) for k, v in times.items()},
              "ratio_vs_numpy": ratios, "mxcore_default_vs_best_pinned": vs_best,
              "versions": versions, "cpu_count": os.cpu_count(), "contenders": args.contend}
    if "torch" in times and "mxcore" in times:
        result["mxcore_vs_torch"] = paired(times["mxcore"], times["torch"])
    if "mxnet-1t" in times and "mxcore-1t" in times:
        result["mxcore_vs_mxnet_1t"] = paired(times["mxcore-1t"], times["mxnet-1t"])
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"MNIST MLP 784-{HIDDEN}-10, batch {BATCH}, SGD lr {LR}, {steps} steps/epoch, "
          f"{args.rounds} interleaved rounds, a fresh process per epoch, {os.cpu_count()} CPUs"
          + (f", {args.contend} competing busy process(es)" if args.contend else ""))
    for name in names:
        med = result["median_s"][name]
        print(f"  {name:10s} median {med:.3f} s/epoch ({med / steps * 1e6:.0f} us/step)   "
              f"{ratios[name]:.2f}x {FLOOR} (paired)")
    if importlib.util.find_spec("torch") is None:
        print("  torch not installed: pip install torch==2.13.0")
    if vs_best is not None:
        print(f"mxcore default threads vs its best pinned setting ({', '.join(pinned)}): "
              f"{vs_best:.2f}x (goal <= 1.1x)")
    if "mxcore_vs_torch" in result:
        print(f"mxcore/torch (default threads both): {result['mxcore_vs_torch']:.2f}x")
    if "mxcore_vs_mxnet_1t" in result:
        print(f"mxcore/mxnet {versions['mxnet-1t']} (one thread both): "
              f"{result['mxcore_vs_mxnet_1t']:.2f}x")
    if "mxcore" in ratios:
        print(f"mxcore (default threads) vs the numpy floor: {ratios['mxcore']:.2f}x "
              f"(goal <= 1.3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
