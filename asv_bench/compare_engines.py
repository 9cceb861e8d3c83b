#!/usr/bin/env python
"""The engines side by side: training steps of the MNIST MLP (784-256-10, batch 64) and
of a two-branch model (two 784-512-512 ReLU stacks on one input, concatenated, batch
256) on the naive engine and on the threaded engine with one or two CPU workers, each
with default BLAS threads and pinned to one (``-1t``: ``MXCORE_CPU_THREADS=1``).

A comparison script, not a test.  Every measurement runs in a fresh process (thread
pools start as a user's would) that builds the model from the same seed, warms up, then
times ``--steps`` steps ending in ``waitall``; variants run interleaved, one
measurement each per round, in rotating order.  Each variant reports the median over
rounds and the median of its per-round ratios to ``naive`` on the same model.
``--contend K`` starts K competing processes (a one-thread numpy product in a loop each,
as another job on a shared runner) for the whole run.

Usage:  python asv_bench/compare_engines.py [--rounds 5] [--models mlp,two-branch]
            [--variants naive,threaded,threaded-2w,naive-1t,threaded-2w-1t] [--contend K]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "MXCORE_CPU_THREADS", "MXCORE_ENGINE", "MXCORE_ENGINE_WORKERS")
VARIANTS = ["naive", "threaded", "threaded-2w", "naive-1t", "threaded-2w-1t"]
MODELS = {"mlp": 200, "two-branch": 30}  # model -> timed steps


def measure(model: str, engine: str, steps: int) -> float:
    """Seconds for ``steps`` training steps (in this process)."""
    sys.path.insert(0, HERE)
    import mxcore as mx
    from mxcore import engine as engines
    from benchmarks.bench_training import MLPEpoch, make_engine, two_branch_setup
    engines.set_engine(make_engine(engine))
    if model == "mlp":
        bench = MLPEpoch()
        bench.setup("cpu")
        batches = bench.batches
    else:
        bench = MLPEpoch.__new__(MLPEpoch)
        bench.net, bench.loss, bench.trainer, batches = two_branch_setup(steps=10)
    bench._steps(batches[:3])
    todo = [batches[i % len(batches)] for i in range(steps)]
    mx.nd.waitall()
    start = time.perf_counter()
    bench._steps(todo)
    return time.perf_counter() - start


def run(model: str, variant: str, steps: int) -> float:
    engine = variant
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    if variant.endswith("-1t"):
        env["MXCORE_CPU_THREADS"] = "1"
        engine = variant[:-3]
    out = subprocess.run([sys.executable, __file__, "--child", model, engine, str(steps)],
                         env=env, capture_output=True, text=True, check=True, cwd=HERE)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--contend", type=int, default=0, metavar="K")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        model, engine, steps = args.child
        print(measure(model, engine, int(steps)))
        return
    models = args.models.split(",")
    variants = args.variants.split(",")
    if "naive" not in variants:
        variants.insert(0, "naive")
    sys.path.insert(0, HERE)
    from compare_mlp_epoch import start_contenders
    contenders = start_contenders(args.contend)
    times = {(m, v): [] for m in models for v in variants}
    try:
        for r in range(args.rounds):
            for m in models:
                order = variants[r % len(variants):] + variants[:r % len(variants)]
                for v in order:
                    times[(m, v)].append(run(m, v, MODELS[m]))
    finally:
        for proc in contenders:
            proc.kill()
    report = []
    for m in models:
        for v in variants:
            ts = times[(m, v)]
            ratio = statistics.median(t / n for t, n in zip(ts, times[(m, "naive")]))
            report.append({"model": m, "variant": v, "ms_per_step":
                           1e3 * statistics.median(ts) / MODELS[m], "vs_naive": ratio})
    if args.json:
        print(json.dumps({"results": report, "rounds": args.rounds,
                          "contenders": args.contend, "cpu_count": os.cpu_count()}, indent=1))
        return
    print(f"{args.rounds} rounds, {os.cpu_count()} CPUs"
          + (f", {args.contend} competing busy process(es)" if args.contend else ""))
    for row in report:
        print(f"{row['model']:>10}  {row['variant']:<16} {row['ms_per_step']:8.2f} ms/step"
              f"  {row['vs_naive']:5.2f}x naive")


if __name__ == "__main__":
    main()
