#!/usr/bin/env python
"""Peak activation memory of a hybridized model's inference, with and without memory
planning (``plan_memory``: each value freed after its last read, fused chains written
in place).

Measured with the allocator's statistics: numpy reports its allocations to
``tracemalloc``, so the traced peak of one forward call (plan already built, inputs and
parameters allocated before) is the activation memory the call needed.  The plan's own
estimate (``mxcore.graph.passes.memory.peak_bytes``) is printed next to it.

Usage:  python tools/graph_memory_report.py [--model resnet18_v1] [--batch 8] [--size 224]
"""
from __future__ import annotations

import argparse
import os
import sys
import tracemalloc


def measure(model: str, batch: int, size: int, planned: bool):
    os.environ["MXCORE_GRAPH_PASSES"] = "" if planned else "-plan_memory"
    import numpy as np
    import mxcore as mx
    from mxcore.gluon.model_zoo import vision
    from mxcore.graph.passes.memory import peak_bytes, plan_memory
    net = vision.get_model(model)
    net.initialize(mx.init.Xavier())
    x = mx.nd.array(np.random.default_rng(0).standard_normal((batch, 3, size, size),
                                                              dtype=np.float32))
    net.hybridize()
    net(x).wait_to_read()  # trace and build the plan outside the measurement
    tracemalloc.start()
    out = net(x)
    out.wait_to_read()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    program = net.last_plan().forward
    estimate = peak_bytes(plan_memory(program), planned=planned)
    return peak, estimate, len(program.steps)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet18_v1")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--worker", choices=["planned", "unplanned"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        peak, est, steps = measure(args.model, args.batch, args.size, args.worker == "planned")
        print("RESULT", peak, est, steps)
        return 0
    import subprocess
    rows = {}
    for mode in ("unplanned", "planned"):  # each in a fresh process
        out = subprocess.run([sys.executable, __file__, "--worker", mode, "--model", args.model,
                              "--batch", str(args.batch), "--size", str(args.size)],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        line = [ln for ln in out.splitlines() if ln.startswith("RESULT")][-1].split()
        rows[mode] = tuple(int(v) for v in line[1:])
    mib = 1 << 20
    print(f"{args.model}, inference, batch {args.batch}, {args.size}x{args.size}, "
          f"{rows['planned'][2]} plan steps")
    for mode in ("unplanned", "planned"):
        peak, est, _ = rows[mode]
        print(f"  {mode:9s}  measured peak {peak / mib:8.1f} MiB   plan estimate "
              f"{est / mib:8.1f} MiB")
    print(f"  planning keeps {rows['planned'][0] / rows['unplanned'][0]:.2f}x of the "
          "unplanned peak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
