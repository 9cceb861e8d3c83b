"""Host microseconds per launch of mxcore's Triton kernels: Triton's own path
(``kernel[grid](...)``, what ``MXCORE_CUDA_FAST_LAUNCH=0`` uses) against the
cached launcher of ``mxcore_cuda.triton._launch``.

Runs anywhere: on the stand-in driver (``mxcore_cuda.standin_driver``) kernels
compile for sm_90 and "launch" into a log, so the times are everything on the
host except the CUDA launcher itself (Triton's thin Python wrapper and its C call
into the driver: the same few microseconds on either path).
Rounds alternate the two paths; medians and the median of per-round ratios.

    python plugins/cuda/launch_overhead.py [--rounds 7] [--calls 2000]

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time


def cases():
    import numpy as np
    from mxcore_cuda.standin_driver import Pointer as P
    from mxcore_cuda.triton import elementwise as ew, matmul as tm, softmax as sm
    f32 = np.float32
    x, y, b, w = (P(i << 20, f32) for i in (1, 2, 3, 4))
    M, N, K = 64, 256, 784  # the MNIST MLP's first Dense layer
    bm, bn, bk, gm, warps, stages = tm.small_config(M, N, K, np.dtype(f32))
    return {
        "unary_exp": (ew._unary_kernel, (4,), (x, y, 4096),
                      dict(OP=ew.UNARY["exp"], BLOCK=1024)),
        "binary_add_broadcast": (ew._binary_nd_kernel, (6,),
                                 (x, b, y, 6000, 5, 1, 40, 200, 40, 1, 0, 0, 0, 1, 0),
                                 dict(OP=ew.BINARY["add"], BLOCK=1024)),
        "dense_relu_64x784x256": (
            tm._fc_kernel, (-(-M // bm) * -(-N // bn),), (x, w, b, y, M, N, K, K, K, N),
            dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=gm, num_warps=warps,
                 num_stages=stages, PRECISION=tm._precision(np.empty(1, f32)), UPCAST=False,
                 HAS_BIAS=True, ACT=tm.ACTIVATIONS["relu"])),
        "log_softmax_64x10": (sm._softmax_kernel, (64,), (x, y, 10, 1.0),
                              dict(LOG=True, SCALE=False, BLOCK=16, num_warps=4)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--calls", type=int, default=2000)
    args = p.parse_args()
    from mxcore_cuda import standin_driver
    standin_driver.install()
    import triton
    from mxcore_cuda.triton import _launch

    def per_call_us(cached: bool, kernel, grid, a, meta) -> float:
        _launch.ENABLED = cached
        t = time.perf_counter()
        for _ in range(args.calls):
            _launch.launch(kernel, grid, *a, **meta)
        us = (time.perf_counter() - t) / args.calls * 1e6
        del standin_driver.LOG[:]
        return us

    out = {"triton": triton.__version__, "calls": args.calls, "rounds": args.rounds,
           "unit": "host us per launch (median)", "kernels": {}}
    for name, (kernel, grid, a, meta) in cases().items():
        for cached in (False, True, True):  # compile, then fill the cache
            per_call_us(cached, kernel, grid, a, meta)
        triton_path, cached_path = [], []
        for _ in range(args.rounds):
            triton_path.append(per_call_us(False, kernel, grid, a, meta))
            cached_path.append(per_call_us(True, kernel, grid, a, meta))
        out["kernels"][name] = {
            "triton_path_us": round(statistics.median(triton_path), 2),
            "mxcore_cached_us": round(statistics.median(cached_path), 2),
            "ratio_cached_over_triton": round(statistics.median(
                c / t for c, t in zip(cached_path, triton_path)), 2)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
