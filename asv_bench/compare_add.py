#!/usr/bin/env python
"""Per-call cost of ``c = a + b`` on 10x10 float32: mxcore vs numpy vs PyTorch.

A comparison script, not a test: it prints microseconds per call, from one
run, for

* mxcore eager, not recording;
* mxcore inside ``mx.autograd.record()`` with ``a.attach_grad()``;
* numpy;
* PyTorch CPU eager without grad;
* PyTorch with ``a.requires_grad=True`` (grad mode on, so a graph is built),

and the paired ratios mxcore/torch.  PyTorch is a benchmark-only reference,
never a dependency of mxcore: ``pip install torch==2.13.0`` (a CPU wheel
mirrored locally; any other version downloads GBs).

Method (the host is noisy: 2 shared vCPUs):

* every library is pinned to one thread (the *_NUM_THREADS variables are set
  before anything imports numpy or torch, and ``torch.set_num_threads(1)``);
* the contenders are interleaved: each round times every contender once
  (``--calls`` calls each, ``time.perf_counter`` around the whole loop, the
  garbage collector off as in ``timeit``), rotating the order from round to
  round; a warm-up round is discarded;
* per contender the median over rounds of the time per call is reported,
  and ratios are paired: mxcore/torch within each round, then the median of
  those per-round ratios.

Usage:  python asv_bench/compare_add.py [--rounds 15] [--calls 20000] [--json]
"""
import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import mxcore as mx  # noqa: E402

try:
    import torch  # noqa: E402
except ImportError:
    torch = None

TORCH_HINT = "torch not installed: pip install torch==2.13.0"
SHAPE = (10, 10)
GOAL = 2.0  # mxcore/torch per-call ratio we aim at (no recording)


def _inputs():
    rs = np.random.RandomState(0)
    return (rs.standard_normal(SHAPE).astype(np.float32),
            rs.standard_normal(SHAPE).astype(np.float32))


# Each factory returns run(n): n calls of ``c = a + b``, timed as a whole.
# The loop body is identical for every contender so loop overhead cancels.
def _mxcore(recording):
    ha, hb = _inputs()
    a, b = mx.nd.array(ha, ctx=mx.cpu()), mx.nd.array(hb, ctx=mx.cpu())
    if recording:
        a.attach_grad()

    def run(n):
        if recording:
            with mx.autograd.record():
                for _ in range(n):
                    c = a + b
        else:
            for _ in range(n):
                c = a + b
        return c

    c = run(1)
    assert np.allclose(c.asnumpy(), ha + hb)
    if recording:
        assert c._ag is not None, "mxcore did not record the add"
    return run


def _numpy():
    a, b = _inputs()

    def run(n):
        for _ in range(n):
            c = a + b
        return c
    return run


def _torch(requires_grad):
    ha, hb = _inputs()
    a, b = torch.from_numpy(ha.copy()), torch.from_numpy(hb.copy())
    if requires_grad:
        a.requires_grad_(True)

    def run(n):
        for _ in range(n):
            c = a + b
        return c

    with torch.enable_grad():
        c = run(1)
    assert c.requires_grad == requires_grad
    return run


def contenders():
    out = {
        "mxcore": _mxcore(False),
        "mxcore (record)": _mxcore(True),
        "numpy": _numpy(),
    }
    if torch is not None:
        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        out["torch"] = _torch(False)
        out["torch (grad)"] = _torch(True)
    return out


def measure(runs, rounds, calls):
    """{name: [seconds per call, one per round]}, interleaved and rotated."""
    names = list(runs)
    per_call = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    try:
        for r in range(rounds + 1):  # round 0 is the warm-up
            k = r % len(names)
            for name in names[k:] + names[:k]:
                run = runs[name]
                gc.collect()
                gc.disable()
                t0 = time.perf_counter()
                run(calls)
                dt = time.perf_counter() - t0
                if gc_was_enabled:
                    gc.enable()
                if r:
                    per_call[name].append(dt / calls)
    finally:
        if gc_was_enabled:
            gc.enable()
    return per_call


def paired_ratio(per_call, num, den):
    if num not in per_call or den not in per_call:
        return None
    ratios = [x / y for x, y in zip(per_call[num], per_call[den])]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    ap.add_argument("--calls", type=int, default=20000,
                    help="calls per contender per round (default 20000)")
    ap.add_argument("--json", action="store_true", help="print machine-readable JSON only")
    args = ap.parse_args(argv)

    runs = contenders()
    per_call = measure(runs, args.rounds, args.calls)
    ratios = {
        "mxcore/torch": paired_ratio(per_call, "mxcore", "torch"),
        "mxcore (record)/torch (grad)": paired_ratio(per_call, "mxcore (record)", "torch (grad)"),
        "mxcore/numpy": paired_ratio(per_call, "mxcore", "numpy"),
        "mxcore (record)/mxcore": paired_ratio(per_call, "mxcore (record)", "mxcore"),
    }
    results = {
        name: {"median_us": statistics.median(ts) * 1e6, "min_us": min(ts) * 1e6,
               "max_us": max(ts) * 1e6, "rounds_us": [t * 1e6 for t in ts]}
        for name, ts in per_call.items()
    }
    info = {
        "op": "c = a + b", "shape": list(SHAPE), "dtype": "float32",
        "rounds": args.rounds, "calls_per_round": args.calls, "threads": 1,
        "python": platform.python_version(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "numpy": np.__version__, "mxcore": mx.__version__,
        "mxcore_engine": mx.engine.current().name,
        "torch": torch.__version__ if torch is not None else None,
    }
    no_rec = ratios["mxcore/torch"]

    if args.json:
        json.dump({"info": info, "results": results,
                   "ratios": {k: v for k, v in ratios.items() if v is not None},
                   "goal_mxcore_over_torch": GOAL,
                   "goal_met": None if no_rec is None else no_rec["median"] <= GOAL,
                   "note": None if torch is not None else TORCH_HINT},
                  sys.stdout, indent=2)
        print()
        return 0

    print(f"c = a + b on {SHAPE[0]}x{SHAPE[1]} float32, 1 thread, {args.rounds} interleaved "
          f"rounds x {args.calls} calls")
    print(f"python {info['python']}, numpy {info['numpy']}, mxcore {info['mxcore']} "
          f"(engine {info['mxcore_engine']}), torch {info['torch'] or '-'}")
    print()
    print(f"{'contender':<18} {'median us/call':>14} {'min':>8} {'max':>8}")
    for name, r in results.items():
        print(f"{name:<18} {r['median_us']:>14.3f} {r['min_us']:>8.3f} {r['max_us']:>8.3f}")
    print()
    print("paired ratios (median over rounds [min, max]):")
    for name, r in ratios.items():
        if r is not None:
            print(f"  {name:<30} {r['median']:6.2f}x  [{r['min']:.2f}, {r['max']:.2f}]")
    if torch is None:
        print(TORCH_HINT)
        return 0
    rec = ratios["mxcore (record)/torch (grad)"]
    print()
    print(f"mxcore/torch ratio (recording vs requires_grad): {rec['median']:.1f}x")
    print(f"mxcore/torch ratio (no recording): {no_rec['median']:.1f}x (goal <= {GOAL:g}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
