#!/usr/bin/env python
"""Data-parallel scaling on this machine: the MNIST MLP and LeNet epochs (``mxcore train
mnist``, ``--limit`` images) as 1 process x 2 BLAS threads against 2 MPI processes x 1
thread (``mxcore launch -n 2 ... --kvstore dist_sync`` and ``dist_async``), with the time
per step in the store (the allreduce; for dist_async the push and pull);
and the MPI allreduce time of float32 buffers from 4 KiB to 64 MiB on 2 ranks, fitted to
``alpha + bytes * beta`` (latency and time per byte) for the ring-allreduce estimate in
docs/distributed.md.

A comparison script, not a test.  Variants run interleaved, one epoch each per round, in
fresh processes; each reports the median over rounds.  Scaling efficiency is the
one-process epoch time over the two-process one (1.0: two processes do the epoch in the
same time as one; 2 processes on 2 cores can at best halve it, efficiency 2.0 with this
definition would be perfect scaling).

With ``--straggler-ms D``, 200 steps of an MLP on 2 ranks of each store where rank 1 sleeps
D ms after each step: on dist_sync rank 0 waits for it at every step, on dist_async not.

Usage:  python asv_bench/compare_dist.py [--rounds 3] [--limit 12000] [--models mlp,lenet]
        [--kvstores dist_sync,dist_async] [--straggler-ms 0]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ALLREDUCE = r"""
import json, sys, time
import numpy as np
from mxcore.kvstore.group import world
g = world()
rows = []
for size in [1 << k for k in range(10, 25, 2)]:      # float32 elements: 4 KiB .. 64 MiB
    buf = np.ones(size, np.float32)
    g.allreduce_(buf)
    times = []
    for _ in range(max(3, min(50, (1 << 24) // size))):
        g.barrier()
        t = time.perf_counter()
        g.allreduce_(buf)
        times.append(time.perf_counter() - t)
    rows.append((buf.nbytes, float(np.median(times))))
if g.rank == 0:
    print(json.dumps(rows))
"""


STRAGGLER = r"""
import json, sys, time
import numpy as np
import mxcore as mx
from mxcore import gluon
kind, delay, steps = sys.argv[1], float(sys.argv[2]) / 1e3, int(sys.argv[3])
kv = mx.kv.create(kind)
mx.random.seed(0)
net = gluon.nn.HybridSequential()
net.add(gluon.nn.Dense(256, activation="relu", in_units=784), gluon.nn.Dense(10, in_units=256))
net.initialize(mx.init.Xavier())
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05}, kvstore=kv)
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
rng = np.random.default_rng(kv.rank)
x = mx.nd.array(rng.standard_normal((32, 784)).astype(np.float32))
y = mx.nd.array(rng.integers(0, 10, 32).astype(np.float32))
kv.barrier()
start = time.perf_counter()
for _ in range(steps):
    with mx.autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    trainer.step(32)
    if kv.rank == 1:
        time.sleep(delay)  # the straggler
print(json.dumps({"rank": kv.rank, "seconds": time.perf_counter() - start}), flush=True)
kv.barrier()
"""


def straggler(kind: str, delay_ms: float, steps: int) -> dict:
    """Seconds each of 2 ranks takes for ``steps`` MLP steps when rank 1 sleeps
    ``delay_ms`` after each of its steps."""
    r = subprocess.run([sys.executable, "-m", "mxcore", "launch", "-n", "2", _script(STRAGGLER),
                        kind, str(delay_ms), str(steps)], check=True, capture_output=True,
                       text=True, cwd=ROOT)
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    return {row["rank"]: row["seconds"] for row in rows}


def epoch(model: str, limit: int, ranks: int, out: str, kvstore: str = "dist_sync") -> dict:
    common = ["train", "mnist", "--model", model, "--data-root",
              os.path.join(ROOT, "data", "mnist"), "--limit", str(limit), "--epochs", "1",
              "--no-progress", "--output", out]
    if ranks == 1:
        cmd = [sys.executable, "-m", "mxcore", *common, "--threads", "2"]
    else:
        cmd = [sys.executable, "-m", "mxcore", "launch", "-n", str(ranks), "-m", "mxcore",
               *common, "--threads", "1", "--kvstore", kvstore]
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    with open(os.path.join(out, "history.json")) as f:
        history = json.load(f)["history"]
    return {"seconds": history["seconds"][0], "test_acc": history["test_acc"][0],
            "allreduce_ms": (history.get("allreduce_ms_per_step") or [None])[0]}


def allreduce_fit() -> dict:
    r = subprocess.run([sys.executable, "-m", "mxcore", "launch", "-n", "2",
                        _script(ALLREDUCE)], check=True, capture_output=True, text=True,
                       cwd=ROOT)
    rows = json.loads(r.stdout.strip().splitlines()[-1])
    # least squares t = alpha + beta * bytes
    n = len(rows)
    mx_ = sum(b for b, _ in rows) / n
    my = sum(t for _, t in rows) / n
    beta = sum((b - mx_) * (t - my) for b, t in rows) / sum((b - mx_) ** 2 for b, _ in rows)
    alpha = max(0.0, my - beta * mx_)
    return {"rows": rows, "alpha_s": alpha, "beta_s_per_byte": beta,
            "GB_per_s": 1e-9 / beta if beta > 0 else None}


def _script(code: str) -> str:
    f = tempfile.NamedTemporaryFile("w", suffix=".py", delete=False)
    f.write(code)
    f.close()
    return f.name


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=12000)
    ap.add_argument("--models", default="mlp,lenet")
    ap.add_argument("--kvstores", default="dist_sync,dist_async",
                    help="the stores of the 2-process runs")
    ap.add_argument("--straggler-ms", type=float, default=0.0,
                    help="also time 200 MLP steps on 2 ranks of each store with rank 1 "
                         "sleeping this long after each step (0: skip)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    variants = [(1, None)] + [(2, kv) for kv in args.kvstores.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for model in args.models.split(","):
                for ranks, kv in (variants if r % 2 == 0 else variants[::-1]):
                    out = os.path.join(tmp, f"{model}-{ranks}-{kv}-{r}")
                    results.setdefault((model, kv), []).append(
                        epoch(model, args.limit, ranks, out, kv))
    slow = {}
    if args.straggler_ms > 0:
        for r in range(args.rounds):
            for kv in args.kvstores.split(","):
                slow.setdefault(kv, []).append(straggler(kv, args.straggler_ms, 200))
        slow = {kv: {rank: statistics.median(run[rank] for run in runs) for rank in (0, 1)}
                for kv, runs in slow.items()}
    fit = allreduce_fit()
    report = []
    for model in args.models.split(","):
        one = statistics.median(x["seconds"] for x in results[(model, None)])
        row = {"model": model, "one_process_2_threads_s": one,
               "one_process_test_acc": statistics.median(
                   x["test_acc"] for x in results[(model, None)])}
        for _, kv in variants[1:]:
            runs = results[(model, kv)]
            two = statistics.median(x["seconds"] for x in runs)
            row[kv] = {"two_processes_1_thread_s": two, "speedup": one / two,
                       "store_ms_per_step": statistics.median(x["allreduce_ms"] for x in runs),
                       "test_acc": statistics.median(x["test_acc"] for x in runs)}
        report.append(row)
    if args.json:
        print(json.dumps({"epochs": report, "straggler": slow, "allreduce": fit,
                          "limit": args.limit,
                          "rounds": args.rounds, "cpu_count": os.cpu_count()}, indent=1))
        return
    print(f"{args.rounds} rounds, {args.limit} images per epoch, {os.cpu_count()} CPUs")
    for row in report:
        print(f"{row['model']:>6}: 1 process x 2 threads {row['one_process_2_threads_s']:.2f} s"
              f" (test acc {row['one_process_test_acc']:.4f})")
        for _, kv in variants[1:]:
            v = row[kv]
            print(f"{'':8}2 processes x 1 thread, {kv}: {v['two_processes_1_thread_s']:.2f} s "
                  f"(speed-up {v['speedup']:.2f}x, test acc {v['test_acc']:.4f}), store "
                  f"{v['store_ms_per_step']:.2f} ms/step")
    for kv, seconds in slow.items():
        print(f"200 MLP steps, rank 1 sleeping {args.straggler_ms:g} ms per step, {kv}: "
              f"rank 0 {seconds[0]:.2f} s, rank 1 {seconds[1]:.2f} s")
    print(f"allreduce on 2 ranks: alpha {fit['alpha_s'] * 1e6:.1f} us, "
          f"{fit['GB_per_s']:.2f} GB/s per byte reduced")
    for b, t in fit["rows"]:
        print(f"  {b / 1024:10.0f} KiB  {t * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()
