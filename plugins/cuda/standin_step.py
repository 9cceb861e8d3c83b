"""Host time of the MNIST MLP training step (784-256 relu-10, batch 64, SGD momentum)
on the cuda device's code path, without a GPU.

A GPU step this small is bound by the host: dispatch, autograd, the kernels'
Python wrappers and the launches.  Here the step runs on the interpreted
device's host memory, but Triton's kernels are compiled for sm_90 and launched
on the stand-in driver (``mxcore_cuda.standin_driver``) instead of being
interpreted, so the host side of the GPU path runs: mxcore's dispatch and
autograd, the plugin's kernel wrappers, Triton's binder and kernel cache, and
the launch cache.  The numbers leave out what only a GPU has: the CUDA launcher
(Triton's thin wrapper and its driver call), CuPy's allocations (numpy allocates
here) and CuPy's fallbacks (one ``ones_like`` a step runs in numpy).  A pointer
argument costs about 1 us more here than with CuPy, because numpy arrays expose
their address through ``__array_interface__``.  The kernels do not run, so the values are
meaningless: only time is measured.

Rounds alternate the cached launch path and Triton's own path
(``MXCORE_CUDA_FAST_LAUNCH=0``) in one process; medians per segment.

    python plugins/cuda/standin_step.py [--steps 1000] [--rounds 5] [--profile 30]

Prints one JSON object (and, with --profile, the cProfile table first).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import time

KERNEL_MODULES = ("elementwise", "matmul", "norm", "optimizer", "random", "reduce", "softmax")


class _Arg:
    """A numpy array as a pointer argument of a compiled launch (what
    ``interpret.DeviceTensor`` is for CuPy arrays)."""

    __slots__ = ("array", "dtype")

    def __init__(self, array):
        self.array, self.dtype = array, array.dtype

    def data_ptr(self) -> int:
        return self.array.__array_interface__["data"][0]


def standin_cuda():
    """Set this process up: the host-memory cuda device, Triton compiling (not
    interpreting) onto the stand-in driver, the launch cache on.  Call before
    mxcore touches the device."""
    os.environ["MXCORE_CUDA_INTERPRET"] = "1"  # the host-memory device...
    os.environ["MXCORE_CUDA_INTERPRET_MAX"] = str(1 << 40)  # ...with no size limit
    import mxcore_cuda  # noqa: F401  (sets TRITON_INTERPRET=1 for the device's sake)
    os.environ["TRITON_INTERPRET"] = "0"  # ...but kernels compiled, not interpreted
    from mxcore_cuda import standin_driver
    standin_driver.install()
    from mxcore_cuda.triton import _launch
    _launch.ENABLED = True
    for name in KERNEL_MODULES:
        importlib.import_module(f"mxcore_cuda.triton.{name}").arg = _Arg
    return standin_driver, _launch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1000, help="steps per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--profile", type=int, default=0,
                   help="print the top N functions of a cProfile of the cached path")
    args = p.parse_args()
    standin, launch_cache = standin_cuda()

    import numpy as np
    import mxcore as mx
    from mxcore import autograd, gluon, profiler
    from mxcore.recipes.mnist import build_net
    dev = mx.gpu(0)
    net = build_net()
    net.initialize(mx.init.Xavier(magnitude=2.24), ctx=dev)
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            {"learning_rate": 0.02, "momentum": 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    rng = np.random.default_rng(0)
    xb = mx.nd.array(rng.random((64, 784), dtype=np.float32), ctx=dev)
    yb = mx.nd.array(rng.integers(0, 10, 64).astype(np.float32), ctx=dev)
    seg = {"forward": [], "backward": [], "trainer_step": []}

    def step():
        t0 = time.perf_counter()
        with autograd.record():
            loss = loss_fn(net(xb), yb)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        trainer.step(64)
        t3 = time.perf_counter()
        seg["forward"].append(t1 - t0)
        seg["backward"].append(t2 - t1)
        seg["trainer_step"].append(t3 - t2)

    for cached in (False, True):  # compile everything, fill the cache
        launch_cache.ENABLED = cached
        for _ in range(3):
            step()
    mx.nd.waitall()  # (an asynchronous engine may still hold launches of earlier steps)
    del standin.LOG[:]
    profiler.set_state("run")
    step()
    mx.nd.waitall()
    profiler.set_state("stop")
    ops = json.loads(profiler.dumps(format="json", reset=True))["Time"]["operator"]
    launches = len(standin.LOG)

    paths = {"cached": {k: [] for k in seg}, "triton_path": {k: [] for k in seg}}
    for _ in range(args.rounds):
        for name, cached in (("triton_path", False), ("cached", True)):
            launch_cache.ENABLED = cached
            for v in seg.values():
                v.clear()
            for _ in range(args.steps):
                step()
            del standin.LOG[:]
            for k, v in seg.items():
                paths[name][k].append(statistics.median(v) * 1e6)
    out = {"unit": "host us per step (median over rounds of per-step medians)",
           "operator_calls_per_step": {op: s["Count"] for op, s in sorted(ops.items())},
           "kernel_launches_per_step": launches}
    for name, per in paths.items():
        out[name] = {k: round(statistics.median(v), 1) for k, v in per.items()}
        out[name]["total"] = round(sum(out[name][k] for k in seg), 1)
    totals = {name: [sum(r) for r in zip(*per.values())] for name, per in paths.items()}
    out["ratio_cached_over_triton_path"] = round(statistics.median(
        c / t for c, t in zip(totals["cached"], totals["triton_path"])), 2)  # paired rounds
    if args.profile:
        import cProfile
        import pstats
        launch_cache.ENABLED = True
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.steps):
            step()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.profile)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
