#!/usr/bin/env python
"""One epoch of the MNIST MLP (784-256 ReLU-10, batch 64, SGD lr 0.1): mxcore
eager vs PyTorch CPU eager vs a hand-written numpy loop.

A comparison script, not a test.  The data is already in memory (real MNIST
from data/mnist, normalised, fixed batch order, no shuffling) so only the
training step is timed.  The numpy loop is the floor for a numpy backend:
manual forward/backward, in-place parameter updates, no framework.

Method (the host is noisy): every library is pinned to one thread; the
contenders run interleaved, one epoch each per round, in rotating order; the
reported figure per contender is the median over rounds and each ratio is the
median of per-round ratios against numpy (paired).

Apache MXNet 1.9.1 joins when ``--mxnet-python`` names the interpreter of a
separate virtualenv that has it (``python -m venv /tmp/mxref && /tmp/mxref/bin/pip
install mxnet==1.9.1 'numpy<1.24'``): a worker process there builds the same
network with the same initial weights and times an epoch whenever this script
asks, interleaved with the others.  MXNet is a reference, never a dependency.

``--batch 4 --hidden 8`` makes the step dispatch-bound (the arithmetic is a few
microseconds): the times are then each framework's host overhead per training
step, which is what bounds a small model on a GPU.

Usage:  python asv_bench/compare_mlp_epoch.py [--rounds 5] [--steps N] [--json]
                                              [--batch 64] [--hidden 256]
                                              [--mxnet-python /tmp/mxref/bin/python]
"""
import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import mxcore as mx  # noqa: E402

try:
    import torch  # noqa: E402
    torch.set_num_threads(1)
except ImportError:
    torch = None

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "mnist")
BATCH, LR, HIDDEN = 64, 0.1, 256


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
    name = "numpy"

    def __init__(self, batches):
        self.batches = batches
        self.params = [p.copy() for p in init_params()]

    def epoch(self):
        W1, b1, W2, b2 = self.params
        for xb, yb in self.batches:
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
            gW2 = o.T @ h
            gb2 = o.sum(axis=0)
            dh = o @ W2
            dh *= h > 0
            gW1 = dh.T @ xb
            gb1 = dh.sum(axis=0)
            gW1 *= LR
            W1 -= gW1
            gb1 *= LR
            b1 -= gb1
            gW2 *= LR
            W2 -= gW2
            gb2 *= LR
            b2 -= gb2


class MxcoreMLP:
    name = "mxcore"

    def __init__(self, batches):
        from mxcore import gluon
        from mxcore.gluon import nn
        self.batches = [(mx.nd.array(x), mx.nd.array(y, dtype="int32")) for x, y in batches]
        self.net = nn.HybridSequential()
        self.net.add(nn.Dense(HIDDEN, activation="relu", in_units=784), nn.Dense(10, in_units=HIDDEN))
        self.net.initialize()
        for p, v in zip(self.net.collect_params().values(), init_params()):
            p.set_data(mx.nd.array(v))
        self.loss = gluon.loss.SoftmaxCrossEntropyLoss()
        self.trainer = gluon.Trainer(self.net.collect_params(), "sgd", {"learning_rate": LR})

    def epoch(self):
        net, loss_fn, trainer, record = self.net, self.loss, self.trainer, mx.autograd.record
        for xb, yb in self.batches:
            with record():
                loss = loss_fn(net(xb), yb)
            loss.backward()
            trainer.step(xb.shape[0])
        mx.nd.waitall()


class TorchMLP:
    name = "torch"

    def __init__(self, batches):
        self.batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
        self.net = torch.nn.Sequential(torch.nn.Linear(784, HIDDEN), torch.nn.ReLU(),
                                       torch.nn.Linear(HIDDEN, 10))
        with torch.no_grad():
            for p, v in zip(self.net.parameters(), init_params()):
                p.copy_(torch.from_numpy(v))
        self.opt = torch.optim.SGD(self.net.parameters(), lr=LR)
        self.loss = torch.nn.CrossEntropyLoss()

    def epoch(self):
        net, opt, loss_fn = self.net, self.opt, self.loss
        for xb, yb in self.batches:
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xb), yb).backward()
            opt.step()


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
lr = float(sys.argv[4])
batches = [(mx.nd.array(x[i:i + batch]), mx.nd.array(y[i:i + batch]))
           for i in range(0, steps * batch, batch)]
net = nn.HybridSequential()
net.add(nn.Dense(hidden, activation="relu", in_units=784), nn.Dense(10, in_units=hidden))
net.initialize()
for p, v in zip(net.collect_params().values(), params):
    p.set_data(mx.nd.array(v))
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr})

def epoch():
    for xb, yb in batches:
        with autograd.record():
            loss = loss_fn(net(xb), yb)
        loss.backward()
        trainer.step(xb.shape[0])
    mx.nd.waitall()

epoch()
print("ready", mx.__version__, flush=True)
for line in sys.stdin:
    t0 = time.perf_counter()
    epoch()
    print(time.perf_counter() - t0, flush=True)
"""


class MXNetWorker:
    """Apache MXNet 1.9.1 in another interpreter, timing epochs on request."""

    name = "mxnet"

    def __init__(self, python, x, y, steps):
        import subprocess
        import tempfile
        self._dir = tempfile.TemporaryDirectory()
        path = os.path.join(self._dir.name, "data.npz")
        np.savez(path, x=x[:steps * BATCH], y=y[:steps * BATCH].astype(np.float32),
                 **{f"p{i}": p for i, p in enumerate(init_params())})
        env = dict(os.environ, OMP_NUM_THREADS="1", MXNET_CPU_WORKER_NTHREADS="1")
        self.proc = subprocess.Popen([python, "-c", MXNET_WORKER, path, str(steps), str(BATCH),
                                      str(LR), str(HIDDEN)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError("the MXNet worker did not start")
        self.version = line[1]
        self.last = None

    def epoch(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        self.last = float(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self._dir.cleanup()


def main(argv=None):
    global BATCH, HIDDEN
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=None, help="batches per epoch (default: all 938)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--hidden", type=int, default=HIDDEN)
    ap.add_argument("--mxnet-python", default=None,
                    help="python of a virtualenv with mxnet==1.9.1 (adds MXNet to the run)")
    args = ap.parse_args(argv)
    BATCH, HIDDEN = args.batch, args.hidden
    x, y = load_mnist()
    batches = [(x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, len(x), BATCH)]
    if args.steps:
        batches = batches[:args.steps]
    contenders = [NumpyMLP(batches), MxcoreMLP(batches)]
    if torch is not None:
        contenders.append(TorchMLP(batches))
    mxnet = None
    if args.mxnet_python:
        mxnet = MXNetWorker(args.mxnet_python, x, y, len(batches))
        contenders.append(mxnet)
    for c in contenders:  # warm-up
        c.epoch()
    times = {c.name: [] for c in contenders}
    for r in range(args.rounds):
        order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
        for c in order:
            t0 = time.perf_counter()
            c.epoch()
            # the MXNet worker reports its own epoch time (no pipe latency)
            times[c.name].append(c.last if c is mxnet else time.perf_counter() - t0)
    if mxnet is not None:
        mxnet.close()
    ratios = {name: statistics.median(t / f for t, f in zip(ts, times["numpy"]))
              for name, ts in times.items()}
    result = {"steps": len(batches), "batch": BATCH, "hidden": HIDDEN, "rounds": args.rounds,
              "median_s": {k: statistics.median(v) for k, v in times.items()},
              "ratio_vs_numpy": ratios, "torch": torch.__version__ if torch else None,
              "mxnet": mxnet.version if mxnet else None}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"MNIST MLP 784-{HIDDEN}-10, batch {BATCH}, SGD lr {LR}, {len(batches)} steps/epoch, "
          f"1 thread, {args.rounds} interleaved rounds")
    for name in times:
        print(f"  {name:8s} median {result['median_s'][name]:.3f} s/epoch "
              f"({result['median_s'][name] / len(batches) * 1e6:.0f} us/step)   "
              f"{ratios[name]:.2f}x numpy (paired)")
    if torch is None:
        print("  torch not installed: pip install torch==2.13.0")
    if "torch" in ratios:
        print(f"mxcore/torch: {ratios['mxcore'] / ratios['torch']:.2f}x")
    if "mxnet" in ratios:
        print(f"mxcore/mxnet {mxnet.version}: {ratios['mxcore'] / ratios['mxnet']:.2f}x")
    else:
        print("  mxnet not measured: pass --mxnet-python (a venv with mxnet==1.9.1)")
    print(f"mxcore vs the numpy floor: {ratios['mxcore']:.2f}x (goal <= 1.3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
