#!/usr/bin/env python
"""Where a training step of the MNIST MLP goes: forward (with the loss), backward and the
optimizer step, in microseconds per step, for the hand-written numpy loop and for mxcore
eager and hybridized (``compare_mlp_epoch.py``'s networks, data and settings).

A comparison script, not a test.  Each variant runs in a fresh process pinned to
``--threads`` BLAS threads (default 1: the phases' difference is then the framework's
own cost, not the thread policy), trains ``--warmup`` steps, then times every phase of
``--epochs`` epochs with ``perf_counter``.  The numpy loop's phases are its forward
products, its loss gradient, its backward products and its in-place update; mxcore's are
``loss_fn(net(x), y)`` under ``record()``, ``loss.backward()`` and ``trainer.step``.

Usage:  python asv_bench/compare_mlp_phases.py [--epochs 2] [--threads 1] [--steps N]
                                               [--variants numpy,mxcore,mxcore-hybrid]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare_mlp_epoch as mlp  # noqa: E402  (the networks, data and settings)


def numpy_phases(batches, epochs):
    loop = mlp.NumpyMLP(batches, 1)
    params = loop.params
    forward, backward, update = loop.forward, loop.backward, loop.update
    totals = np.zeros(3)
    pc = time.perf_counter
    for _ in range(epochs):
        for xb, yb in batches:
            t0 = pc()
            h, o = forward(params, xb, yb)
            t1 = pc()
            grads = backward(params, xb, h, o)
            t2 = pc()
            update(params, grads)
            totals += (t1 - t0, t2 - t1, pc() - t2)
    return totals


def mxcore_phases(runner, epochs):
    mx = runner.mx
    net, loss_fn, trainer, record = runner.net, runner.loss, runner.trainer, mx.autograd.record
    totals = np.zeros(3)
    pc = time.perf_counter
    for _ in range(epochs):
        for xb, yb in runner.batches:
            t0 = pc()
            with record():
                loss = loss_fn(net(xb), yb)
            t1 = pc()
            loss.backward()
            t2 = pc()
            trainer.step(xb.shape[0])
            totals += (t1 - t0, t2 - t1, pc() - t2)
    mx.nd.waitall()
    return totals


def worker(variant, epochs, warmup, steps=None):
    x, y = mlp.load_mnist()
    batches = [(x[i:i + mlp.BATCH], y[i:i + mlp.BATCH]) for i in range(0, len(x), mlp.BATCH)]
    batches = batches[:steps] if steps else batches
    if variant == "numpy":
        numpy_phases(batches[:warmup], 1)
        totals = numpy_phases(batches, epochs)
    else:
        runner = mlp.RUNNERS[variant](batches, None)
        warm = runner.batches
        runner.batches = warm[:warmup]
        mxcore_phases(runner, 1)
        runner.batches = warm
        totals = mxcore_phases(runner, epochs)
    per_step = totals / (epochs * len(batches)) * 1e6
    print("RESULT " + json.dumps(dict(zip(("forward", "backward", "step"), per_step))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--steps", type=int, default=None, help="batches per epoch (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", default="numpy,mxcore,mxcore-hybrid")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.epochs, args.warmup, args.steps)
        return 0
    env = {k: v for k, v in os.environ.items() if k not in mlp.THREAD_VARS}
    for var in mlp.THREAD_VARS:
        env[var] = str(args.threads)
    rows = {}
    for variant in args.variants.split(","):
        if variant not in ("numpy", "mxcore", "mxcore-hybrid"):
            ap.error(f"unknown variant {variant!r}: numpy, mxcore, mxcore-hybrid")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant,
               "--epochs", str(args.epochs), "--warmup", str(args.warmup)]
        if args.steps:
            cmd += ["--steps", str(args.steps)]
        proc = subprocess.run(cmd,
                              env=env, stdout=subprocess.PIPE, text=True, check=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
        rows[variant] = json.loads(line[len("RESULT "):])
    print(f"MNIST MLP step phases, us/step, {args.threads} BLAS thread(s), "
          f"{args.epochs} epoch(s) each, a fresh process per variant")
    print(f"  {'variant':14s} {'forward':>9s} {'backward':>9s} {'step':>9s} {'total':>9s}")
    for variant, r in rows.items():
        total = r["forward"] + r["backward"] + r["step"]
        print(f"  {variant:14s} {r['forward']:9.1f} {r['backward']:9.1f} {r['step']:9.1f} "
              f"{total:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
