#!/usr/bin/env python
"""Contrib kernels against the same computation composed of core ops, on the CPU:
scaled dot-product attention (batch 4, 8 heads, 256 positions, 64 features), RMSNorm
(256 x 1024) and SwiGLU (256 x 2048 -> 1024), forward and forward+backward, float32;
and a Python CustomOp (mx.operator) against the core op it wraps, in dispatch cost.

A comparison script, not a test: medians of ``--repeat`` timings taken alternately in one
process, with the ratio composed / contrib (above 1: the contrib kernel is faster).

Usage:  python asv_bench/compare_contrib_ops.py [--repeat 30]
"""
import argparse
import statistics
import time

import numpy as np

import mxcore as mx
from mxcore import autograd

nd = mx.nd


def _attention_core(q, k, v):
    b, h, lq, d = q.shape
    scores = nd.batch_dot(q.reshape((b * h, lq, d)), k.reshape((b * h, -1, d)),
                          transpose_b=True) * (1.0 / np.sqrt(d))
    return nd.batch_dot(nd.softmax(scores, axis=-1), v.reshape((b * h, -1, d))).reshape(
        (b, h, lq, d))


def _rms_core(x, g, eps=1e-6):
    return x / nd.sqrt(nd.mean(x * x, axis=-1, keepdims=True) + eps) * g


def _swiglu_core(x):
    a, b = nd.split(x, num_outputs=2, axis=-1)
    return a * nd.sigmoid(a) * b


def _cases(rng):
    q, k, v = (nd.array(rng.standard_normal((4, 8, 256, 64)).astype(np.float32))
               for _ in range(3))
    x = nd.array(rng.standard_normal((256, 1024)).astype(np.float32))
    g = nd.array(rng.standard_normal(1024).astype(np.float32))
    s = nd.array(rng.standard_normal((256, 2048)).astype(np.float32))
    return {
        "attention 4x8x256x64": ((q, k, v), nd.contrib.scaled_dot_product_attention,
                                 _attention_core),
        "rms_norm 256x1024": ((x, g), nd.contrib.rms_norm, _rms_core),
        "swiglu 256x2048": ((s,), nd.contrib.swiglu, _swiglu_core),
    }


def _time(fn, args, backward: bool) -> float:
    if backward:
        for a in args:
            a.attach_grad()
    start = time.perf_counter()
    if backward:
        with autograd.record():
            out = fn(*args)
        out.backward()
    else:
        out = fn(*args)
    mx.nd.waitall()
    out.wait_to_read()
    return time.perf_counter() - start


class _Square(mx.operator.CustomOp):
    def forward(self, is_train, req, in_data, out_data, aux):
        self.assign(out_data[0], req[0], in_data[0] * in_data[0])

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        self.assign(in_grad[0], req[0], 2 * in_data[0] * out_grad[0])


@mx.operator.register("compare_square")
class _SquareProp(mx.operator.CustomOpProp):
    def __init__(self):
        super().__init__(need_top_grad=True)

    def infer_shape(self, in_shape):
        return in_shape, in_shape, []

    def create_operator(self, ctx, shapes, dtypes):
        return _Square()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"median of {args.repeat}, float32, CPU")
    for name, (inputs, contrib, core) in _cases(rng).items():
        for backward in (False, True):
            a, b = [], []
            for _ in range(args.repeat):
                a.append(_time(contrib, inputs, backward))
                b.append(_time(core, inputs, backward))
            ta, tb = statistics.median(a), statistics.median(b)
            print(f"{name:<22} {'fwd+bwd' if backward else 'forward':<8} contrib "
                  f"{ta * 1e3:8.3f} ms   core ops {tb * 1e3:8.3f} ms   ratio {tb / ta:5.2f}x")
    x = nd.ones((4, 4))
    calls = 2000
    for label, fn in (("custom op", lambda: nd.Custom(x, op_type="compare_square")),
                      ("core op", lambda: nd.square(x))):
        fn()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            mx.nd.waitall()
            times.append((time.perf_counter() - start) / calls)
        print(f"dispatch, 4x4 square: {label:<9} {statistics.median(times) * 1e6:7.2f} us/call")


if __name__ == "__main__":
    main()
