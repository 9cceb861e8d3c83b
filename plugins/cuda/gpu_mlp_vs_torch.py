"""MNIST-shaped MLP epoch (784-256 ReLU-10, batch 64, SGD momentum, 938 steps) on
cuda:0: mxcore vs PyTorch CUDA eager, interleaved, same synthetic data.  Run on a
GPU machine (see gpu_check.sh for the environment); prints JSON."""
import json
import statistics
import time

import numpy as np

STEPS, BATCH, LR, MOM = 938, 64, 0.02, 0.9


def data():
    rng = np.random.default_rng(0)
    return (rng.random((STEPS * BATCH, 784), dtype=np.float32),
            rng.integers(0, 10, STEPS * BATCH).astype(np.int64))


def _mxcore_setup(X, Y):
    import mxcore as mx
    from mxcore import autograd, gluon
    from mxcore.recipes.mnist import build_net
    dev = mx.gpu(0)
    net = build_net()
    net.initialize(mx.init.Xavier(magnitude=2.24), ctx=dev)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": LR, "momentum": MOM})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    Xd, Yd = mx.nd.array(X, ctx=dev), mx.nd.array(Y.astype(np.float32), ctx=dev)
    batches = [(Xd[i:i + BATCH], Yd[i:i + BATCH]) for i in range(0, len(X), BATCH)]

    def step(xb, yb):
        with autograd.record():
            loss = loss_fn(net(xb), yb)
        loss.backward()
        trainer.step(BATCH)
    return batches, step


def mxcore_step(X, Y):
    """One training step (on the first batch), for profiling."""
    batches, step = _mxcore_setup(X, Y)
    return lambda: step(*batches[0])


def mxcore_runner(X, Y):
    import cupy
    batches, step = _mxcore_setup(X, Y)

    def epoch():
        for xb, yb in batches:
            step(xb, yb)
        queued = time.perf_counter()  # the host's part: everything launched
        cupy.cuda.Device(0).synchronize()
        return queued
    return epoch


def torch_runner(X, Y):
    import torch
    dev = torch.device("cuda:0")
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 10)).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOM)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xd, Yd = torch.from_numpy(X).to(dev), torch.from_numpy(Y).to(dev)
    batches = [(Xd[i:i + BATCH], Yd[i:i + BATCH]) for i in range(0, len(X), BATCH)]

    def epoch():
        for xb, yb in batches:
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xb), yb).backward()
            opt.step()
        queued = time.perf_counter()
        torch.cuda.synchronize()
        return queued
    return epoch


def main():
    X, Y = data()
    runners = {"mxcore": mxcore_runner(X, Y), "torch": torch_runner(X, Y)}
    for run in runners.values():  # warm-up (compilation, caches)
        run()
    times = {k: [] for k in runners}
    host = {k: [] for k in runners}
    for _ in range(3):
        for name, run in runners.items():
            t = time.perf_counter()
            queued = run()
            times[name].append(time.perf_counter() - t)
            host[name].append(queued - t)
    out = {name: round(statistics.median(v), 3) for name, v in times.items()}
    out["ratio_mxcore_over_torch"] = round(
        statistics.median(a / b for a, b in zip(times["mxcore"], times["torch"])), 2)
    # host time close to the epoch time: the step is bound by launching, not by the GPU
    out["host_s"] = {name: round(statistics.median(v), 3) for name, v in host.items()}
    print(json.dumps({"mlp_epoch_cuda_s": out, "rounds": times}))


if __name__ == "__main__":
    main()
