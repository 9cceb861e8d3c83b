#!/usr/bin/env python
"""mxcore's own execution next to the onnxruntime backend of mxcore-arm, float32
inference of the MNIST models (``mxcore.recipes.mnist.build_model``: the 784-256-10
MLP and LeNet-5), batch 1 and 64: eager, hybridized, and
``optimize_for(x, backend='onnxruntime')``; the same models quantized to int8
(``quantize_net``, naive calibration on the input): mxcore's int8 kernels hybridized,
and the quantized graph through the onnxruntime backend; and the float16 FullyConnected kernels
(batch 64, 784 -> 256 with relu; 256 -> 10): mxcore-arm's forced
(``MXCORE_ARM_KERNELS=force``) against the CPU plugin's.

A comparison script, not a test.  Each thread setting runs in a fresh process (thread
pools start as a user's would): default threads (as users run them), then pinned to
one (``MXCORE_CPU_THREADS=1``, which both mxcore's BLAS and onnxruntime's sessions
follow, with ``OMP_NUM_THREADS=1``).  Within a process the variants of one case run
interleaved, a block of calls each per round in rotating order; each reports the
median per-call time over rounds.

Usage:  python asv_bench/compare_onnxruntime.py [--rounds 7] [--threads default,1]
            [--json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "MXCORE_CPU_THREADS", "MXCORE_ARM_KERNELS")
#: calls per timed block, by batch: blocks of a few milliseconds at least
CALLS = {1: 200, 64: 20}


def _time_block(fn, calls: int) -> float:
    import mxcore as mx
    start = time.perf_counter()
    for _ in range(calls):
        out = fn()
    out.wait_to_read()
    mx.nd.waitall()
    return (time.perf_counter() - start) / calls


def _interleaved(variants, calls: int, rounds: int):
    """Median seconds per call of each variant (name -> fn), rounds interleaved."""
    for fn in variants.values():  # warm-up: traces, sessions, caches
        for _ in range(3):
            fn().wait_to_read()
    names = list(variants)
    times = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            times[n].append(_time_block(variants[n], calls))
    return {n: statistics.median(ts) for n, ts in times.items()}


def _models(rounds: int):
    import numpy as np
    import mxcore as mx
    from mxcore.contrib import quantization
    from mxcore.recipes.mnist import build_model
    rows = []
    for model in ("mlp", "lenet"):
        for batch in (1, 64):
            shape = (batch, 784) if model == "mlp" else (batch, 1, 28, 28)
            x = mx.nd.array(np.random.RandomState(0).rand(*shape).astype(np.float32))
            nets = {}
            for name in ("eager", "hybridized", "onnxruntime"):
                mx.random.seed(0)
                net = build_model(model)
                net.initialize(mx.init.Xavier())
                net(x)
                if name == "hybridized":
                    net.hybridize(static_alloc=True, static_shape=True)
                elif name == "onnxruntime":
                    net.optimize_for(x, backend="onnxruntime", static_alloc=True,
                                     static_shape=True)
                nets[name] = net
            ref = nets["eager"](x).asnumpy()
            for name, net in nets.items():  # the same function everywhere
                np.testing.assert_allclose(net(x).asnumpy(), ref, rtol=1e-4, atol=1e-5)
            for name in ("int8", "int8 onnxruntime"):
                q = quantization.quantize_net(nets["eager"], calib_mode="naive",
                                              calib_data=[x])
                if name == "int8":
                    q.hybridize(static_alloc=True, static_shape=True)
                else:
                    q.optimize_for(x, backend="onnxruntime", static_alloc=True,
                                   static_shape=True)
                nets[name] = q
            q8 = nets["int8"](x).asnumpy()  # the same integer arithmetic: one output step
            step = np.abs(q8).max() / 127
            assert np.abs(nets["int8 onnxruntime"](x).asnumpy() - q8).max() <= step * 1.01
            med = _interleaved({n: (lambda net=net: net(x)) for n, net in nets.items()},
                               CALLS[batch], rounds)
            rows.append({"case": f"{model} b{batch}", **{n: 1e3 * t for n, t in med.items()}})
    return rows


def _fp16_fc(rounds: int):
    import numpy as np
    import mxcore as mx
    from mxcore.plugins import registry
    reg = registry()

    def kernel(provider):
        return next(k.fn for k in reg.kernels[("fully_connected", "cpu")]
                    if k.provider == provider)
    rows = []
    rs = np.random.RandomState(0)
    for n_in, n_out, act in ((784, 256, "relu"), (256, 10, None)):
        x = rs.rand(64, n_in).astype(np.float16)
        w = (rs.randn(n_out, n_in) * 0.05).astype(np.float16)
        b = rs.rand(n_out).astype(np.float16)
        fns = {p: kernel(p) for p in ("mxcore-cpu", "mxcore-arm")}
        ref = fns["mxcore-cpu"](x, w, b, flatten=True, no_bias=False, act_type=act)
        got = fns["mxcore-arm"](x, w, b, flatten=True, no_bias=False, act_type=act)
        np.testing.assert_allclose(got.astype(np.float32), ref.astype(np.float32),
                                   rtol=2e-2, atol=2e-2)

        class _Done:  # kernels return numpy arrays: nothing to wait for
            def __init__(self, fn):
                self.fn = fn

            def __call__(self):
                self.fn(x, w, b, flatten=True, no_bias=False, act_type=act)
                return mx.nd.zeros((1,))
        med = _interleaved({"cpu plugin": _Done(fns["mxcore-cpu"]),
                            "arm (forced)": _Done(fns["mxcore-arm"])}, 50, rounds)
        rows.append({"case": f"fp16 FC 64x{n_in}->{n_out}" + (f" {act}" if act else ""),
                     **{n: 1e3 * t for n, t in med.items()}})
    return rows


def child(rounds: int) -> None:
    print(json.dumps({"models": _models(rounds), "fp16_fc": _fp16_fc(rounds)}))


def run(threads: str, rounds: int):
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env["MXCORE_ARM_KERNELS"] = "force"  # the forced kernels are called directly anyway
    if threads != "default":
        env.update(MXCORE_CPU_THREADS=threads, OMP_NUM_THREADS=threads)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", str(rounds)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", default="default,1",
                    help="thread settings, each in a fresh process: 'default' or a count")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        child(args.child)
        return
    import onnxruntime
    results = {t: run(t, args.rounds) for t in args.threads.split(",")}
    if args.json:
        print(json.dumps({"results": results, "rounds": args.rounds,
                          "cpu_count": os.cpu_count(),
                          "onnxruntime": onnxruntime.__version__}, indent=1))
        return
    print(f"median ms per call, {args.rounds} rounds, {os.cpu_count()} CPUs, "
          f"onnxruntime {onnxruntime.__version__} "
          f"({', '.join(onnxruntime.get_available_providers())})")
    for section, cols in (("models", ("eager", "hybridized", "onnxruntime", "int8",
                                      "int8 onnxruntime")),
                          ("fp16_fc", ("cpu plugin", "arm (forced)"))):
        print()
        print(f"{'case':<26}{'threads':>8}" + "".join(f"{c:>18}" for c in cols))
        for t, res in results.items():
            for row in res[section]:
                print(f"{row['case']:<26}{t:>8}" + "".join(f"{row[c]:18.3f}" for c in cols))


if __name__ == "__main__":
    main()
