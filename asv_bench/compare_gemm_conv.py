#!/usr/bin/env python
"""A 1024^3 SGEMM and a ResNet-18 convolution: mxcore vs numpy, default threads both.

A comparison script, not a test.  numpy's side is what a numpy user writes: ``a @ b``,
and for the convolution an im2col product (``sliding_window_view`` of the padded input,
one copy into rows, one ``@``, the result made NCHW-contiguous).  mxcore's side is
``mx.nd.dot`` and ``mx.nd.Convolution`` on the CPU device, with whatever BLAS threads its
policy gives a product (``mxcore_cpu.device``).

Method (the host is noisy): every measurement is a fresh process with default threads
(the thread variables removed from its environment), which warms up and then reports the
median of ``--reps`` timed calls; the two libraries alternate over ``--rounds`` rounds,
and each ratio is the median of the per-round ratios (throughput, mxcore / numpy; the
goal is >= 0.9 when the machine is quiet).  ``--contend K`` runs everything beside K busy
one-thread processes.

Usage:  python asv_bench/compare_gemm_conv.py [--rounds 5] [--reps 20] [--contend K] [--json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "MXCORE_CPU_THREADS")
# ResNet-18's second stage: 3x3, 128 -> 128 channels on 28x28, padding 1, batch 8
CONV = dict(n=8, c=128, k=128, hw=28)
CASES = {
    "sgemm 1024^3": 2 * 1024 ** 3,
    "conv 3x3 128->128 28x28 b8": 2 * CONV["n"] * CONV["k"] * CONV["hw"] ** 2 * CONV["c"] * 9,
}


def numpy_ops():
    from numpy.lib.stride_tricks import sliding_window_view
    rs = np.random.RandomState(0)
    a, b = rs.rand(1024, 1024).astype(np.float32), rs.rand(1024, 1024).astype(np.float32)
    n, c, k, hw = CONV["n"], CONV["c"], CONV["k"], CONV["hw"]
    x = rs.rand(n, c, hw, hw).astype(np.float32)
    w = rs.rand(k, c, 3, 3).astype(np.float32)
    wt = np.ascontiguousarray(w.reshape(k, c * 9).T)

    def conv():
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        win = sliding_window_view(xp, (3, 3), axis=(2, 3))          # n, c, hw, hw, 3, 3
        rows = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * hw * hw, c * 9)
        out = rows @ wt
        return np.ascontiguousarray(out.reshape(n, hw, hw, k).transpose(0, 3, 1, 2))
    return {"sgemm 1024^3": lambda: a @ b, "conv 3x3 128->128 28x28 b8": conv}


def mxcore_ops():
    import mxcore as mx
    rs = np.random.RandomState(0)
    a = mx.nd.array(rs.rand(1024, 1024).astype(np.float32))
    b = mx.nd.array(rs.rand(1024, 1024).astype(np.float32))
    n, c, k, hw = CONV["n"], CONV["c"], CONV["k"], CONV["hw"]
    x = mx.nd.array(rs.rand(n, c, hw, hw).astype(np.float32))
    w = mx.nd.array(rs.rand(k, c, 3, 3).astype(np.float32))

    def conv():
        return mx.nd.Convolution(x, w, kernel=(3, 3), pad=(1, 1), num_filter=k,
                                 no_bias=True).wait_to_read()
    return {"sgemm 1024^3": lambda: mx.nd.dot(a, b).wait_to_read(),
            "conv 3x3 128->128 28x28 b8": conv}


def worker(lib, reps):
    ops = numpy_ops() if lib == "numpy" else mxcore_ops()
    out = {}
    for name, fn in ops.items():
        for _ in range(3):
            fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    print("RESULT " + json.dumps(out), flush=True)


CONTENDER = """
import numpy as np
a = np.random.default_rng(0).random((384, 384))
while True:
    a @ a
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--contend", type=int, default=0, metavar="K")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.reps)
        return 0
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    busy_env = dict(env, **{v: "1" for v in THREAD_VARS[:3]})
    contenders = [subprocess.Popen([sys.executable, "-c", CONTENDER], env=busy_env)
                  for _ in range(args.contend)]
    results = {"numpy": [], "mxcore": []}
    try:
        for r in range(args.rounds):
            order = ["numpy", "mxcore"] if r % 2 == 0 else ["mxcore", "numpy"]
            for lib in order:
                proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker",
                                       lib, "--reps", str(args.reps)], env=env, text=True,
                                      stdout=subprocess.PIPE, check=True)
                line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
                results[lib].append(json.loads(line[len("RESULT "):]))
    finally:
        for p in contenders:
            p.kill()
    summary = {}
    for case, flops in CASES.items():
        t_np = [r[case] for r in results["numpy"]]
        t_mx = [r[case] for r in results["mxcore"]]
        summary[case] = {
            "numpy_gflops": flops / statistics.median(t_np) / 1e9,
            "mxcore_gflops": flops / statistics.median(t_mx) / 1e9,
            "ratio": statistics.median(a / b for a, b in zip(t_np, t_mx)),
        }
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    print(f"{args.rounds} interleaved rounds, {args.reps} timed calls each, "
          f"{os.cpu_count()} CPUs, {args.contend} competing busy process(es), default threads")
    for case, s in summary.items():
        print(f"  {case:28s} numpy {s['numpy_gflops']:7.1f} GFLOP/s   mxcore "
              f"{s['mxcore_gflops']:7.1f} GFLOP/s   mxcore/numpy throughput "
              f"{s['ratio']:.2f} (paired; goal >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
