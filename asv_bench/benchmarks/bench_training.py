"""Training benchmarks: the MNIST MLP (784-256-10, batch 64, SGD) for a fixed
number of steps on synthetic data of MNIST's shape (fixed seed), and its
pieces (forward+loss, backward, optimizer step)."""
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
