"""Training benchmarks: the MNIST MLP (784-256-10, batch 64, SGD) for a fixed
number of steps on synthetic data of MNIST's shape (fixed seed), and its
pieces (forward+loss, backward, optimizer step); the same steps with the BLAS
threads a user gets by default, in fresh processes."""
import json
import os
import statistics
import subprocess
import sys

import numpy as np

import mxcore as mx
from mxcore import gluon
from mxcore.gluon import nn

from .bench_dispatch import DEVICES, _device

STEPS = 100


class MLPEpoch:
    params = [DEVICES]
    param_names = ["device"]
    timeout = 120

    def setup(self, device):
        dev = _device(device)
        rs = np.random.RandomState(0)
        x = rs.standard_normal((STEPS * 64, 784)).astype(np.float32)
        y = rs.randint(0, 10, STEPS * 64).astype(np.int32)
        self.batches = [(mx.nd.array(x[i:i + 64], ctx=dev), mx.nd.array(y[i:i + 64], ctx=dev))
                        for i in range(0, len(x), 64)]
        mx.random.seed(0)
        self.net = nn.HybridSequential()
        self.net.add(nn.Dense(256, activation="relu", in_units=784), nn.Dense(10, in_units=256))
        self.net.initialize(mx.init.Xavier(), ctx=dev)
        self.loss = gluon.loss.SoftmaxCrossEntropyLoss()
        self.trainer = gluon.Trainer(self.net.collect_params(), "sgd", {"learning_rate": 0.1})
        self._steps(self.batches[:2])

    def _steps(self, batches):
        net, loss_fn, trainer = self.net, self.loss, self.trainer
        for xb, yb in batches:
            with mx.autograd.record():
                loss = loss_fn(net(xb), yb)
            loss.backward()
            trainer.step(64)
        mx.nd.waitall()

    def time_train_steps(self, device):
        """STEPS training steps (an MNIST epoch is 938 of them)."""
        self._steps(self.batches)

    def time_forward_loss(self, device):
        xb, yb = self.batches[0]
        for _ in range(STEPS):
            self.loss(self.net(xb), yb)
        mx.nd.waitall()


class MLPEpochHybrid(MLPEpoch):
    """MLPEpoch's written-out steps with the network and the loss hybridized: each
    step replays their plans."""

    def setup(self, device):
        super().setup(device)
        self.net.hybridize()
        self.loss.hybridize()
        self._steps(self.batches[:2])


class MLPTrainStep:
    """MLPEpoch's steps as ``gluon.TrainStep`` calls: one plan of forward and backward
    together, then the optimizer's multi-weight call."""

    params = MLPEpoch.params
    param_names = MLPEpoch.param_names
    timeout = MLPEpoch.timeout

    def setup(self, device):
        MLPEpoch.setup(self, device)  # the same network, data and trainer
        self.step = gluon.TrainStep(self.net, self.loss, self.trainer)
        self._steps(self.batches[:2])

    def _steps(self, batches):
        if not hasattr(self, "step"):  # MLPEpoch.setup's warm-up
            return MLPEpoch._steps(self, batches)
        step = self.step
        for xb, yb in batches:
            step(xb, yb)
        mx.nd.waitall()

    def time_train_steps(self, device):
        """STEPS training steps (an MNIST epoch is 938 of them)."""
        self._steps(self.batches)


class OptimizerStep:
    """One optimizer step over 50 parameters of mixed sizes (0.6M elements in
    all), weight by weight (aggregate 0) or as multi-weight calls (aggregate 64:
    one kernel launch on a GPU)."""

    params = [DEVICES, ["sgd", "adam", "adamw"], [0, 64]]
    param_names = ["device", "optimizer", "aggregate"]
    timeout = 120

    def setup(self, device, optimizer, aggregate):
        dev = _device(device)
        rs = np.random.RandomState(0)
        shapes = [(64, 64), (64,)] * 20 + [(256, 256), (256,)] * 5
        self.weights = [mx.nd.array(rs.standard_normal(s).astype(np.float32), ctx=dev)
                        for s in shapes]
        self.grads = [mx.nd.array(rs.standard_normal(s).astype(np.float32), ctx=dev)
                      for s in shapes]
        kwargs = {"momentum": 0.9} if optimizer == "sgd" else {}
        opt = mx.optimizer.create(optimizer, learning_rate=1e-3, wd=1e-4, **kwargs)
        opt.aggregate_num = aggregate
        self.updater = mx.optimizer.get_updater(opt)
        self.index = list(range(len(shapes)))
        self.time_step(device, optimizer, aggregate)  # states, caches, compilation

    def time_step(self, device, optimizer, aggregate):
        self.updater(self.index, self.grads, self.weights)
        mx.nd.waitall()


# MLPEpoch's steps in a fresh process: warm-up, then ROUNDS timings of STEPS steps;
# prints the median seconds
_THREADS_SCRIPT = r"""
import json, statistics, sys, time
import numpy as np
import mxcore as mx
from mxcore import gluon
from mxcore.gluon import nn
steps, rounds = int(sys.argv[1]), int(sys.argv[2])
rs = np.random.RandomState(0)
x = rs.standard_normal((steps * 64, 784)).astype(np.float32)
y = rs.randint(0, 10, steps * 64).astype(np.int32)
batches = [(mx.nd.array(x[i:i + 64]), mx.nd.array(y[i:i + 64])) for i in range(0, len(x), 64)]
mx.random.seed(0)
net = nn.HybridSequential()
net.add(nn.Dense(256, activation="relu", in_units=784), nn.Dense(10, in_units=256))
net.initialize(mx.init.Xavier())
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})

def run(bs):
    for xb, yb in bs:
        with mx.autograd.record():
            loss = loss_fn(net(xb), yb)
        loss.backward()
        trainer.step(64)
    mx.nd.waitall()

run(batches[:10])
times = []
for _ in range(rounds):
    t0 = time.perf_counter()
    run(batches)
    times.append(time.perf_counter() - t0)
print(json.dumps(statistics.median(times)))
"""
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "MXCORE_CPU_THREADS")
_THREAD_RESULTS = {}


def _threads_runs(pairs=3, rounds=3):
    """{"default": [s, ...], "1": [s, ...]}: fresh processes, interleaved."""
    if not _THREAD_RESULTS:
        base = {k: v for k, v in os.environ.items() if k not in _THREAD_VARS}
        envs = {"default": base, "1": dict(base, MXCORE_CPU_THREADS="1")}
        for name in envs:
            _THREAD_RESULTS[name] = []
        for i in range(pairs):
            for name in (["default", "1"] if i % 2 == 0 else ["1", "default"]):
                r = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT, str(STEPS),
                                    str(rounds)], env=envs[name], capture_output=True,
                                   text=True, timeout=600)
                if r.returncode:
                    raise RuntimeError(f"the MLP steps failed:\n{r.stderr[-2000:]}")
                _THREAD_RESULTS[name].append(json.loads(r.stdout.strip().splitlines()[-1]))
    return _THREAD_RESULTS


class MLPEpochThreads:
    """MLPEpoch's STEPS training steps on the CPU as a user runs them: in a fresh
    process with the thread variables removed (asv pins its own processes to one
    thread), interleaved with fresh processes under MXCORE_CPU_THREADS=1, three
    of each.  On two cores the default once ran ~40x slower than one thread (two
    OpenBLAS runtimes on the hot path)."""

    unit = "seconds"
    timeout = 600

    def setup(self):
        self.runs = _threads_runs()

    def track_default_threads(self):
        """Seconds for STEPS steps with default threads (median over processes)."""
        return statistics.median(self.runs["default"])

    def track_default_vs_one_thread(self):
        """Paired ratio: default threads over MXCORE_CPU_THREADS=1 (goal <= 1.1)."""
        return statistics.median(d / o for d, o in zip(self.runs["default"], self.runs["1"]))

    track_default_vs_one_thread.unit = "ratio"


def make_engine(name: str):
    """``naive``, ``threaded`` (one CPU worker) or ``threaded-Kw`` (K CPU workers)."""
    from mxcore.threaded_engine import ThreadedEngine
    if name == "naive":
        return "naive"
    workers = int(name.split("-")[1][:-1]) if "-" in name else 1
    return ThreadedEngine(workers=workers)


ENGINES = ["naive", "threaded", "threaded-2w"]


class MLPEpochEngines(MLPEpoch):
    """MLPEpoch's steps on the CPU on each engine: the naive one runs each kernel at
    once, the threaded one queues them to one worker thread or (``-2w``) two."""

    params = [ENGINES]
    param_names = ["engine"]

    def setup(self, engine):
        from mxcore import engine as engines
        self._old = engines.set_engine(make_engine(engine))
        super().setup("cpu")

    def teardown(self, engine):
        from mxcore import engine as engines
        current = engines.set_engine(self._old)
        if hasattr(current, "shutdown"):
            current.shutdown()

    def time_train_steps(self, engine):
        """STEPS training steps."""
        self._steps(self.batches)

    def time_forward_loss(self, engine):
        xb, yb = self.batches[0]
        for _ in range(STEPS):
            self.loss(self.net(xb), yb)
        mx.nd.waitall()


class TwoBranch(nn.HybridBlock):
    """Two independent Dense stacks on one input, concatenated: kernels an engine with
    several workers can run side by side."""

    def __init__(self, hidden: int = 512, **kw):
        super().__init__(**kw)
        self.left = nn.HybridSequential()
        self.right = nn.HybridSequential()
        for branch in (self.left, self.right):
            branch.add(nn.Dense(hidden, activation="relu", in_units=784),
                       nn.Dense(hidden, activation="relu", in_units=hidden))
        self.head = nn.Dense(10, in_units=2 * hidden)

    def hybrid_forward(self, F, x):
        return self.head(F.concat(self.left(x), self.right(x), dim=1))


def two_branch_setup(batch: int = 256, steps: int = 20, hidden: int = 512):
    """(net, loss, trainer, batches) of the two-branch model on synthetic data (fixed
    seed)."""
    rs = np.random.RandomState(0)
    x = rs.standard_normal((steps * batch, 784)).astype(np.float32)
    y = rs.randint(0, 10, steps * batch).astype(np.int32)
    batches = [(mx.nd.array(x[i:i + batch]), mx.nd.array(y[i:i + batch]))
               for i in range(0, len(x), batch)]
    mx.random.seed(0)
    net = TwoBranch(hidden)
    net.initialize(mx.init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05})
    return net, gluon.loss.SoftmaxCrossEntropyLoss(), trainer, batches


class TwoBranchEngines:
    """Training steps of TwoBranch (batch 256, hidden 512) on each engine."""

    params = [ENGINES]
    param_names = ["engine"]
    timeout = 180

    def setup(self, engine):
        from mxcore import engine as engines
        self._old = engines.set_engine(make_engine(engine))
        self.net, self.loss, self.trainer, self.batches = two_branch_setup()
        MLPEpoch._steps(self, self.batches[:2])

    def teardown(self, engine):
        MLPEpochEngines.teardown(self, engine)

    def time_train_steps(self, engine):
        MLPEpoch._steps(self, self.batches)
