#!/usr/bin/env python
"""What a Python custom operator (``mx.operator``) costs in dispatch, side by side in
one process: one core op (``a + 1`` on 10x10 float32), the custom op's own code run by
hand (allocate the output, ``a + 1``, ``assign``), and ``mx.nd.Custom`` running that
code. The custom op's dispatch cost is the difference between the last two, also given
in core ops. Medians over ``--rounds`` rounds of ``--calls`` calls each.

A comparison script, not a test.  Usage:  python asv_bench/compare_custom_op.py
"""
import argparse
import statistics
import time

import numpy as np

import mxcore as mx


class _AddOne(mx.operator.CustomOp):
    def forward(self, is_train, req, in_data, out_data, aux):
        self.assign(out_data[0], req[0], in_data[0] + 1)

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        self.assign(in_grad[0], req[0], out_grad[0])


@mx.operator.register("compare_add_one")
class _AddOneProp(mx.operator.CustomOpProp):
    def create_operator(self, ctx, shapes, dtypes):
        return _AddOne()


def _median_us(fn, calls: int, rounds: int) -> float:
    for _ in range(200):
        fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    a = mx.nd.array(np.random.default_rng(0).random((10, 10)))
    op = _AddOne()

    def by_hand():
        out = a.zeros_like()
        op.assign(out, "write", a + 1)

    rows = [("core op (a + 1)", lambda: a + 1), ("custom op's code by hand", by_hand),
            ("mx.nd.Custom", lambda: mx.nd.Custom(a, op_type="compare_add_one"))]
    res = {name: _median_us(fn, args.calls, args.rounds) for name, fn in rows}
    for name, us in res.items():
        print(f"{name:26s} {us:7.2f} us/call")
    own = res["mx.nd.Custom"] - res["custom op's code by hand"]
    print(f"dispatch cost of a custom op: {own:.2f} us = "
          f"{own / res['core op (a + 1)']:.1f} core ops")


if __name__ == "__main__":
    main()
