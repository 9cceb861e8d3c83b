"""The GPU check behind gpu_check.sh: conformance on the real cuda:0, Triton vs
cuBLAS matmul TFLOP/s, elementwise add and softmax bandwidth, an MNIST-MLP
epoch, a fused elementwise chain against its unfused kernels, and the second
increment's kernels (reductions, layer norm, broadcast and
scalar elementwise, random, batched matmul) against CuPy, 2-D convolution and max
pooling against CuPy and PyTorch (cuDNN), the MLP epoch against
PyTorch CUDA eager (with a profile of the mxcore step, and again with the
small-tensor threshold at both ends) and per-call host latency on small tensors.
Prints one JSON object as the last line of stdout."""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
T0 = time.time()
RESULT = {"errors": {}}


def step(name):
    def deco(fn):
        def run(*a, **k):
            t = time.time()
            try:
                RESULT[name] = fn(*a, **k)
            except Exception as exc:  # keep going: report what failed
                RESULT["errors"][name] = f"{type(exc).__name__}: {exc}\n" + \
                    "".join(traceback.format_exc().splitlines(True)[-6:])
            RESULT.setdefault("seconds", {})[name] = round(time.time() - t, 2)
            print(f"[gpu_check] {name}: {RESULT['seconds'][name]} s "
                  f"({'error' if name in RESULT['errors'] else 'ok'})", file=sys.stderr,
                  flush=True)
        return run
    return deco


def entry_point_shim(work: Path) -> None:
    """Without pip-installing the repository its plugins have no entry points:
    write minimal .dist-info folders (name, version, entry points) on sys.path."""
    import importlib.metadata as md
    dists = {"mxcore": ("core = mxcore.ops", "mxcore = mxcore.cli:main"),
             "mxcore-cpu": ("cpu = mxcore_cpu.plugin", None),
             "mxcore-cuda": ("cuda = mxcore_cuda.plugin", None)}
    site = work / "site"
    site.mkdir(parents=True, exist_ok=True)
    for name, (plugin, script) in dists.items():
        try:
            md.distribution(name)
            continue
        except md.PackageNotFoundError:
            pass
        d = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
        d.mkdir(exist_ok=True)
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
        eps = f"[mxcore.plugins]\n{plugin}\n"
        if script:
            eps += f"\n[console_scripts]\n{script}\n"
        (d / "entry_points.txt").write_text(eps)
    if str(site) not in sys.path:
        sys.path.insert(0, str(site))


def timeit(fn, sync, warmup=3, iters=10):
    for _ in range(warmup):
        fn()
    sync()
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - t) / iters


@step("environment")
def environment():
    import cupy
    import triton
    import mxcore as mx
    from mxcore.device import device_status, device_type
    out = {"python": sys.version.split()[0], "triton": triton.__version__,
           "cupy": cupy.__version__, "devices": device_status()}
    try:
        import torch
        out["torch"] = torch.__version__
    except Exception:
        out["torch"] = None
    out["cuda0"] = device_type(mx.gpu(0)).properties(0)
    out["cuda0_memory_free_total"] = mx.context.gpu_memory_info(0)
    return out


@step("matmul")
def matmul_bench(size):
    import cupy
    from mxcore_cuda.triton import matmul as tm
    sync = cupy.cuda.Device(0).synchronize
    M = N = K = size
    flops = 2.0 * M * N * K
    out = {}
    rng = cupy.random.default_rng(0)
    for dt in ("float16", "float32"):
        a = rng.standard_normal((M, K), dtype=cupy.float32).astype(dt)
        b = rng.standard_normal((K, N), dtype=cupy.float32).astype(dt)
        c = cupy.empty((M, N), dtype=dt)
        ref = cupy.matmul(a, b)
        r = {"cublas_tflops": flops / timeit(lambda: cupy.matmul(a, b, out=c), sync) / 1e12}
        configs = [None] if dt == "float32" else [
            None, (128, 256, 64, 8, 8, 4), (256, 128, 64, 8, 8, 3), (128, 128, 64, 8, 4, 4)]
        best = None
        for cfg in configs:
            try:
                t = timeit(lambda: tm.launch(a, b, c, cfg), sync)
            except Exception as exc:
                r[f"config {cfg}"] = f"{type(exc).__name__}: {exc}"[:200]
                continue
            tf = flops / t / 1e12
            r[f"triton_tflops {cfg or 'default'}"] = round(tf, 1)
            if best is None or tf > best[0]:
                best = (tf, cfg or "default")
        try:
            tm.launch_tuned(a, b, c)  # first call autotunes
            r["triton_autotuned_tflops"] = round(
                flops / timeit(lambda: tm.launch_tuned(a, b, c), sync) / 1e12, 1)
            r["autotuned_config"] = tm.best_config(tm._matmul_kernel, a.dtype.itemsize)
        except Exception as exc:
            r["autotuned"] = f"{type(exc).__name__}: {exc}"[:300]
        tm.launch(a, b, c)
        err = float(cupy.abs(c.astype(cupy.float32) - ref.astype(cupy.float32)).max()
                    / cupy.abs(ref.astype(cupy.float32)).max())
        r.update(triton_tflops=round(best[0], 1) if best else None,
                 triton_best_config=str(best[1]) if best else None,
                 max_rel_err_vs_cublas=err)
        r["cublas_tflops"] = round(r["cublas_tflops"], 1)
        if dt == "float32":
            tm.TF32 = True
            try:
                r["triton_tf32_tflops"] = round(flops / timeit(lambda: tm.launch(a, b, c), sync)
                                                / 1e12, 1)
            finally:
                tm.TF32 = False
        out[dt] = r
    try:  # bfloat16 through torch tensors (CuPy has no bfloat16)
        import torch
        a = torch.randn(M, K, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(K, N, device="cuda", dtype=torch.bfloat16)
        c = torch.empty(M, N, device="cuda", dtype=torch.bfloat16)
        tsync = torch.cuda.synchronize

        def tri():
            grid = (((M + 127) // 128) * ((N + 255) // 256),)
            tm._matmul_kernel[grid](a, b, c, M, N, K, K, N, N, 0, 0, 0, BLOCK_M=128, BLOCK_N=256,
                                    BLOCK_K=64, GROUP_M=8, PRECISION="ieee", UPCAST=False,
                                    num_warps=8, num_stages=3)
        out["bfloat16"] = {
            "torch_cublas_tflops": round(flops / timeit(lambda: torch.matmul(a, b, out=c),
                                                        tsync) / 1e12, 1),
            "triton_tflops": round(flops / timeit(tri, tsync) / 1e12, 1),
            "note": "kernel benchmark with torch tensors"}
    except Exception as exc:
        out["bfloat16"] = f"skipped: {type(exc).__name__}: {exc}"[:300]
    try:  # bfloat16 mxcore arrays (ml_dtypes in CuPy 14): mx.nd.dot vs CuPy's matmul
        import ml_dtypes
        import numpy as np
        import mxcore as mx
        from mxcore.plugins import registry
        host = np.random.default_rng(0).standard_normal((M, K), dtype=np.float32)
        A = mx.nd.array(host, ctx=mx.gpu(0), dtype=ml_dtypes.bfloat16)
        B = mx.nd.array(host.T.copy(), ctx=mx.gpu(0), dtype=ml_dtypes.bfloat16)
        r = {"mxcore_dot_tflops": round(flops / timeit(lambda: mx.nd.dot(A, B), sync) / 1e12, 1),
             "winner": registry().resolve("dot", "cuda", "bfloat16", (A.shape, B.shape),
                                          ("bfloat16",) * 2, {"transpose_a": False,
                                                              "transpose_b": False}).name}
        try:
            ca, cb = A._data, B._data
            r["cupy_matmul_tflops"] = round(flops / timeit(lambda: cupy.matmul(ca, cb), sync)
                                            / 1e12, 1)
        except Exception as exc:
            r["cupy_matmul"] = f"{type(exc).__name__}: {exc}"[:200]
        out["bfloat16_mxcore_arrays"] = r
    except Exception as exc:
        out["bfloat16_mxcore_arrays"] = f"skipped: {type(exc).__name__}: {exc}"[:300]
    return out


@step("bandwidth")
def bandwidth():
    import cupy
    from mxcore_cuda.triton import elementwise, softmax
    sync = cupy.cuda.Device(0).synchronize
    out = {}
    n = 1 << 26  # 64 Mi float32: 256 MiB per array
    a = cupy.random.random(n, dtype=cupy.float32)
    b = cupy.random.random(n, dtype=cupy.float32)
    add = elementwise.binary("add")
    t = timeit(lambda: add(a, b), sync)
    tc = timeit(lambda: a + b, sync)
    out["add_float32_64Mi"] = {"triton_gbps": round(3 * n * 4 / t / 1e9, 1),
                               "cupy_gbps": round(3 * n * 4 / tc / 1e9, 1)}
    ok = bool(cupy.allclose(add(a, b), a + b))
    out["add_float32_64Mi"]["matches_cupy"] = ok
    rows, cols = 16384, 4096
    x = cupy.random.standard_normal((rows, cols), dtype=cupy.float32)
    t = timeit(lambda: softmax.softmax(x, 1, None), sync)

    def cupy_softmax():
        e = cupy.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    tc = timeit(cupy_softmax, sync)
    ref = cupy_softmax()
    out["softmax_float32_16384x4096"] = {
        "triton_gbps": round(2 * x.nbytes / t / 1e9, 1),
        "cupy_composite_gbps": round(2 * x.nbytes / tc / 1e9, 1),
        "max_abs_err": float(cupy.abs(softmax.softmax(x, 1, None) - ref).max())}
    # eager dispatch overhead through mxcore (small arrays: launch-bound)
    import numpy as np
    import mxcore as mx
    s = mx.nd.array(np.ones((10, 10), np.float32), ctx=mx.gpu(0))
    t = timeit(lambda: s + s, sync, warmup=20, iters=500)
    out["mx_add_10x10_us"] = round(t * 1e6, 1)
    return out


@step("fused")
def fused_chain():
    """fused_elemwise (graph fusion's kernel): an 8-entry activation tail in one launch
    against the same entries as unfused Triton kernels: time, GB/s and bit equality, at
    bandwidth-bound sizes and at a launch-bound one."""
    import cupy
    from mxcore_cuda.triton import elementwise as ew, fused
    sync = cupy.cuda.Device(0).synchronize
    chain = (("mul_scalar", (0,), 0.5), ("add_scalar", (-1,), 1.0), ("tanh", (-2,), None),
             ("sigmoid", (0,), None), ("multiply", (-3, -4), None), ("exp", (0,), None),
             ("multiply", (-6, 1), None), ("subtract", (-5, -7), None))
    kernels = {name: (ew.unary(name) if name in ew.UNARY else ew.binary(name)
                      if name in ew.BINARY else ew.scalar(name)) for name, _, _ in chain}

    def unfused(h, b):
        results = []
        for name, args, scalar in chain:
            vals = [(h, b)[a] if a >= 0 else results[-a - 1] for a in args]
            results.append(kernels[name](*vals, *(() if scalar is None else (scalar,))))
        return results[-1]
    out = {}
    for dt, n in (("float32", 1 << 24), ("float16", 1 << 24), ("float32", 1 << 14)):
        h = cupy.random.standard_normal(n, dtype=cupy.float32).astype(dt)
        b = cupy.random.standard_normal(n, dtype=cupy.float32).astype(dt)
        t = timeit(lambda: fused.fused_elemwise(h, b, chain=chain), sync, iters=20)
        tu = timeit(lambda: unfused(h, b), sync, iters=20)
        out[f"tail8_{dt}_{n}"] = {
            "fused_us": round(t * 1e6, 1), "unfused_triton_us": round(tu * 1e6, 1),
            "fused_gbps": round(3 * h.nbytes / t / 1e9, 1),
            "bit_equal": bool(cupy.array_equal(fused.fused_elemwise(h, b, chain=chain),
                                               unfused(h, b)))}
    return out


@step("capture")
def captured_inference():
    """A hybridized MLP's inference (batch 64, 784-256-10) per call: the plan's kernels
    launched one by one against a captured CUDA graph (static_alloc + static_shape), and
    whether their outputs agree bit for bit."""
    import numpy as np
    import mxcore as mx
    from mxcore.gluon import nn
    ctx = mx.gpu(0)
    net = nn.HybridSequential()
    net.add(nn.Dense(256, in_units=784, activation="relu"), nn.Dense(10, in_units=256))
    net.initialize(ctx=ctx)
    x = mx.nd.array(np.random.default_rng(0).standard_normal((64, 784)), ctx=ctx)
    sync = mx.nd.waitall
    out = {}
    for name, flags in (("plan", {}), ("graph", {"static_alloc": True,
                                                 "static_shape": True})):
        net.hybridize(**flags)
        out[f"{name}_us"] = round(timeit(lambda: net(x), sync, warmup=5, iters=50) * 1e6, 1)
        out[f"{name}_result"] = net(x).asnumpy()
    out["bit_equal"] = bool(np.array_equal(out.pop("plan_result"), out.pop("graph_result")))
    out["captured"] = net.last_plan()._graph not in (None, False)
    return out


@step("captured_training")
def captured_training(steps=50):
    """The MLP (batch 64, 784-256-10, SGD momentum) trained by gluon.TrainStep per step:
    replayed plan vs the step captured as CUDA graphs (static_alloc + static_shape:
    forward-backward and the optimizer's call), and whether the weights after ``steps``
    steps agree bit for bit."""
    import numpy as np
    import mxcore as mx
    from mxcore import gluon
    from mxcore.gluon import nn
    ctx = mx.gpu(0)
    rng = np.random.default_rng(0)
    x = mx.nd.array(rng.standard_normal((64, 784)), ctx=ctx)
    y = mx.nd.array(rng.integers(0, 10, 64), ctx=ctx, dtype="int32")
    out, weights = {}, {}
    # a first network warms the kernels up (on the interpreted device a first run's
    # kernels round differently): the two compared runs start alike
    for name, flags in (("warmup", {}), ("plan", {}), ("graph", {"static_alloc": True,
                                                                 "static_shape": True})):
        mx.random.seed(0)
        net = nn.HybridSequential()
        net.add(nn.Dense(256, in_units=784, activation="relu"), nn.Dense(10, in_units=256))
        net.initialize(mx.init.Xavier(), ctx=ctx)
        trainer = gluon.Trainer(net.collect_params(), "sgd",
                                {"learning_rate": 0.05, "momentum": 0.9})
        step = gluon.TrainStep(net, gluon.loss.SoftmaxCrossEntropyLoss(), trainer, **flags)
        for _ in range(3):
            step(x, y)
        if name == "warmup":
            continue
        out[f"{name}_us"] = round(timeit(lambda: step(x, y), mx.nd.waitall, warmup=2,
                                         iters=steps) * 1e6, 1)
        weights[name] = [p.data(ctx).asnumpy() for p in net.collect_params().values()]
        if name == "graph":
            (_, _, _, graphs), = step._ready.values()
            out["captured"] = graphs is not None and graphs.replay not in (None, False)
    out["weights_bit_equal"] = all(np.array_equal(a, b)
                                   for a, b in zip(weights["plan"], weights["graph"]))
    return out


@step("new_kernels")
def new_kernels():
    """Reductions, layer norm, broadcast add, scalar multiply, random, batched matmul,
    fused Dense: GB/s (or TFLOP/s, or us) against CuPy, and agreement."""
    import cupy
    from mxcore_cuda.triton import elementwise, matmul as tm, norm, random as trand, reduce
    sync = cupy.cuda.Device(0).synchronize
    out = {}
    rows, cols = 16384, 4096
    x = cupy.random.standard_normal((rows, cols), dtype=cupy.float32)
    for name, axis, ref in (("sum_last_axis", (1,), lambda: x.sum(axis=1)),
                            ("sum_all", None, lambda: x.sum()),
                            ("sum_leading_axis", (0,), lambda: x.sum(axis=0)),
                            ("max_last_axis", (1,), lambda: x.max(axis=1))):
        fn = reduce.reduction(name.split("_")[0])
        t = timeit(lambda: fn(x, axis, False), sync)
        tc = timeit(ref, sync)
        err = float(cupy.abs(fn(x, axis, False) - ref()).max() / (cupy.abs(ref()).max() + 1e-30))
        out[f"{name}_float32_16384x4096"] = {"triton_gbps": round(x.nbytes / t / 1e9, 1),
                                             "cupy_gbps": round(x.nbytes / tc / 1e9, 1),
                                             "max_rel_err": err}
    for dt in ("float32", "float16"):
        xd = x.astype(dt)
        g = cupy.random.standard_normal(cols, dtype=cupy.float32).astype(dt)
        b = cupy.random.standard_normal(cols, dtype=cupy.float32).astype(dt)
        t = timeit(lambda: norm.layer_norm(xd, g, b, 1, 1e-5), sync)

        def cupy_ln():
            a = xd.astype(cupy.float32)
            m = a.mean(axis=1, keepdims=True)
            d = a - m
            return (d / cupy.sqrt((d * d).mean(axis=1, keepdims=True) + 1e-5) * g + b).astype(dt)
        tc = timeit(cupy_ln, sync)
        err = float(cupy.abs(norm.layer_norm(xd, g, b, 1, 1e-5).astype(cupy.float32)
                             - cupy_ln().astype(cupy.float32)).max())
        out[f"layer_norm_{dt}_16384x4096"] = {"triton_gbps": round(2 * xd.nbytes / t / 1e9, 1),
                                              "cupy_composite_gbps": round(2 * xd.nbytes / tc / 1e9, 1),
                                              "max_abs_err": err}
        # fused backward vs the composed one (the CPU table's formula on CuPy)
        from mxcore_cpu.kernels import nn as cpu_nn
        composed = cpu_nn.kernels(cupy, None)["layer_norm_backward"][0]
        dy = cupy.random.standard_normal((rows, cols), dtype=cupy.float32).astype(dt)
        tf = timeit(lambda: norm.layer_norm_backward(dy, xd, g, 1, 1e-5), sync)
        tc = timeit(lambda: composed(dy, xd, g, 1, 1e-5), sync)
        err = max(float(cupy.abs(u.astype(cupy.float32) - v.astype(cupy.float32)).max()
                        / (cupy.abs(v.astype(cupy.float32)).max() + 1e-30))
                  for u, v in zip(norm.layer_norm_backward(dy, xd, g, 1, 1e-5),
                                  composed(dy, xd, g, 1, 1e-5)))
        out[f"layer_norm_backward_{dt}_16384x4096"] = {
            "triton_ms": round(tf * 1e3, 3), "cupy_composite_ms": round(tc * 1e3, 3),
            "max_rel_err": err}
    bias = cupy.random.standard_normal(cols, dtype=cupy.float32)
    add = elementwise.binary("add")
    t = timeit(lambda: add(x, bias), sync)
    tc = timeit(lambda: x + bias, sync)
    out["bias_add_float32_16384x4096"] = {
        "triton_gbps": round(2 * x.nbytes / t / 1e9, 1), "cupy_gbps": round(2 * x.nbytes / tc / 1e9, 1),
        "matches": bool(cupy.array_equal(add(x, bias), x + bias))}
    mul = elementwise.scalar("mul_scalar")
    t = timeit(lambda: mul(x, 0.5), sync)
    tc = timeit(lambda: x * cupy.float32(0.5), sync)
    out["mul_scalar_float32_16384x4096"] = {"triton_gbps": round(2 * x.nbytes / t / 1e9, 1),
                                            "cupy_gbps": round(2 * x.nbytes / tc / 1e9, 1)}
    import numpy as np
    rng = np.random.default_rng(0)
    t = timeit(lambda: trand.random_uniform(rng, 0.0, 1.0, (rows, cols), "float32"), sync)
    crng = cupy.random.default_rng(0)
    tc = timeit(lambda: crng.random((rows, cols), dtype=cupy.float32), sync)
    u = trand.random_uniform(rng, 0.0, 1.0, (rows, cols), "float32")
    out["random_uniform_float32_16384x4096"] = {
        "triton_gbps": round(x.nbytes / t / 1e9, 1), "cupy_gbps": round(x.nbytes / tc / 1e9, 1),
        "mean": float(u.mean()), "var": float(u.var())}
    for dt in ("float16", "float32"):
        a = cupy.random.standard_normal((32, 512, 512), dtype=cupy.float32).astype(dt)
        bb = cupy.random.standard_normal((32, 512, 512), dtype=cupy.float32).astype(dt)
        flops = 2.0 * 32 * 512 ** 3
        tm.batch_dot(a, bb, False, False)  # autotune
        t = timeit(lambda: tm.batch_dot(a, bb, False, False), sync)
        tc = timeit(lambda: cupy.matmul(a, bb), sync)
        ref = cupy.matmul(a, bb).astype(cupy.float32)
        err = float(cupy.abs(tm.batch_dot(a, bb, False, False).astype(cupy.float32) - ref).max()
                    / cupy.abs(ref).max())
        out[f"batch_dot_{dt}_32x512^3"] = {"triton_tflops": round(flops / t / 1e12, 1),
                                           "cublas_tflops": round(flops / tc / 1e12, 1),
                                           "max_rel_err": err}
    # fused Dense (product + bias + relu in one launch, fixed tiles) vs CuPy's three calls: at a
    # tensor-core size (device time) and at the MLP's size (launch-bound: host time)
    for dt, (m, n, k) in (("bfloat16", (4096, 4096, 4096)), ("float32", (64, 256, 784))):
        xs = cupy.random.standard_normal((m, k), dtype=cupy.float32).astype(dt)
        ws = (cupy.random.standard_normal((n, k), dtype=cupy.float32) * k ** -0.5).astype(dt)
        bs = cupy.random.standard_normal(n, dtype=cupy.float32).astype(dt)

        def fused():
            return tm.fully_connected(xs, ws, bs, flatten=True, no_bias=False, act_type="relu")

        def composed():
            return cupy.maximum(xs @ ws.T + bs, 0)
        key = f"dense_relu_{dt}_{m}x{n}x{k}"
        autotune, tm.AUTOTUNE = tm.AUTOTUNE, False  # fixed tiles: one compile, not ten
        try:  # CuPy's bfloat16 products may be missing: keep the other cases
            t, tc = timeit(fused, sync, iters=20), timeit(composed, sync, iters=20)
            ref = composed().astype(cupy.float32)
            err = float(cupy.abs(fused().astype(cupy.float32) - ref).max() / cupy.abs(ref).max())
            out[key] = {"triton_us": round(t * 1e6, 1), "cupy_us": round(tc * 1e6, 1),
                        "triton_tflops": round(2.0 * m * n * k / t / 1e12, 2),
                        "max_rel_err": err}
        except Exception as exc:
            out[key] = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            tm.AUTOTUNE = autotune
    return out


@step("conv")
def conv_bench():
    """2-D convolution (implicit GEMM) and max pooling, forward and backward: Triton
    against the CuPy fallback (im2col + cuBLAS, one pass per pooling offset) and
    PyTorch (cuDNN) in ms, and the largest difference from PyTorch's forward."""
    import cupy
    from mxcore.plugins import registry
    sync = cupy.cuda.Device(0).synchronize
    kernels = {k.name: k.fn for (op, kind), ks in registry().kernels.items()
               if kind == "cuda" for k in ks}
    try:
        import torch
        import torch.nn.functional as F
    except Exception as exc:  # no torch: mxcore alone
        RESULT["errors"]["conv.torch"] = repr(exc)
        torch = F = None
    out = {}
    # (name, data shape, filters, kernel, pad)
    for name, shape, f, k, p in (("resnet3x3", (32, 64, 56, 56), 64, 3, 1),
                                 ("lenet5x5", (64, 1, 28, 28), 20, 5, 0)):
        for dt in ("float16", "float32"):
            x = cupy.random.standard_normal(shape, dtype=cupy.float32).astype(dt)
            w = (cupy.random.standard_normal((f, shape[1], k, k), dtype=cupy.float32)
                 * (shape[1] * k * k) ** -0.5).astype(dt)
            b = cupy.random.standard_normal(f, dtype=cupy.float32).astype(dt)
            attrs = dict(kernel=(k, k), stride=(1, 1), dilate=(1, 1), pad=(p, p),
                         num_filter=f, num_group=1, no_bias=False)
            gy = cupy.ones((shape[0], f, shape[2] + 2 * p - k + 1, shape[3] + 2 * p - k + 1),
                           dtype=dt)
            row = {}
            for impl in ("triton", "cupy"):
                fwd = kernels[f"{impl}.conv.convolution"]
                bwd = kernels[f"{impl}.conv.convolution_backward"]
                row[f"{impl}_forward_ms"] = round(timeit(lambda: fwd(x, w, b, **attrs), sync)
                                                  * 1e3, 3)
                row[f"{impl}_backward_ms"] = round(timeit(
                    lambda: bwd(gy, x, w, grads=(True, True, True), **attrs), sync) * 1e3, 3)
            if torch is not None:
                tx, tw, tb = (torch.as_tensor(a, device="cuda") for a in (x, w, b))
                tg = torch.as_tensor(gy, device="cuda")
                tsync = torch.cuda.synchronize
                row["torch_forward_ms"] = round(timeit(
                    lambda: F.conv2d(tx, tw, tb, padding=p), tsync) * 1e3, 3)
                row["torch_backward_ms"] = round(timeit(
                    lambda: torch.ops.aten.convolution_backward(
                        tg, tx, tw, [f], [1, 1], [p, p], [1, 1], False, [0, 0], 1,
                        [True, True, True]), tsync) * 1e3, 3)
                ref = F.conv2d(tx, tw, tb, padding=p).float()
                got = torch.as_tensor(kernels["triton.conv.convolution"](x, w, b, **attrs),
                                      device="cuda").float()
                row["max_rel_err_vs_torch"] = float((got - ref).abs().max() / ref.abs().max())
            out[f"conv_{name}_{dt}"] = row
    pool = dict(kernel=(2, 2), stride=(2, 2), pad=(0, 0), pool_type="max",
                pooling_convention="valid", count_include_pad=True, p_value=2)
    for dt in ("float16", "float32"):
        x = cupy.random.standard_normal((32, 64, 112, 112), dtype=cupy.float32).astype(dt)
        y = kernels["triton.conv.pooling"](x, **pool)
        gy = cupy.ones_like(y)
        row = {}
        for impl in ("triton", "cupy"):
            fwd, bwd = kernels[f"{impl}.conv.pooling"], kernels[f"{impl}.conv.pooling_backward"]
            row[f"{impl}_forward_ms"] = round(timeit(lambda: fwd(x, **pool), sync) * 1e3, 3)
            row[f"{impl}_backward_ms"] = round(timeit(lambda: bwd(gy, x, y, **pool), sync)
                                               * 1e3, 3)
        if torch is not None:
            tx = torch.as_tensor(x, device="cuda")
            row["torch_forward_ms"] = round(timeit(lambda: F.max_pool2d(tx, 2),
                                                   torch.cuda.synchronize) * 1e3, 3)
            row["matches_torch"] = bool((torch.as_tensor(y, device="cuda")
                                         == F.max_pool2d(tx, 2)).all())
        out[f"max_pool_2x2_32x64x112x112_{dt}"] = row
    return out


@step("smoke")
def smoke(work):
    env = {**os.environ, "MXCORE_CUDA_TRITON_MIN_ELEMENTS": "1"}
    env["PYTHONPATH"] = f"{Path(work) / 'site'}:{env.get('PYTHONPATH', '')}"
    r = subprocess.run([sys.executable, str(ROOT / "plugins/cuda/gpu_smoke.py")], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=240)
    return {"returncode": r.returncode, "tail": (r.stdout + r.stderr)[-3000:]}


@step("mnist_main_job_cuda")
def mnist_epoch(mnist_dir, work, epochs=2):
    """The main job on the GPU: ``mxcore train mnist --device cuda`` on the committed
    MNIST (or ``--mnist``), its per-epoch accuracy and seconds."""
    data = mnist_dir or str(ROOT / "data" / "mnist")
    out_dir = Path(work) / "mnist-cuda"
    env = {**os.environ, "PYTHONPATH": f"{Path(work) / 'site'}:{os.environ.get('PYTHONPATH', '')}"}
    r = subprocess.run([sys.executable, "-m", "mxcore.cli", "train", "mnist", "--device",
                        "cuda", "--epochs", str(epochs), "--data-root", data, "--output",
                        str(out_dir), "--no-progress"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=240)
    out = {"returncode": r.returncode, "stdout": r.stdout.splitlines()[-6:]}
    if r.returncode:
        out["stderr"] = r.stderr[-2000:]
        return out
    hist = json.loads((out_dir / "history.json").read_text())["history"]
    out.update({k: hist[k] for k in ("test_acc", "train_loss", "seconds")})
    return out


@step("mlp_vs_torch")
def mlp_vs_torch(rounds=3):
    """The MLP epoch on cuda:0 against PyTorch CUDA eager (gpu_mlp_vs_torch.py,
    interleaved rounds), plus where the mxcore step's host time goes: the top
    functions of a cProfile over 200 steps."""
    import cProfile
    import io
    import pstats
    import statistics
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import gpu_mlp_vs_torch as m
    X, Y = m.data()
    runners = {"mxcore": m.mxcore_runner(X, Y)}
    try:
        runners["torch"] = m.torch_runner(X, Y)
    except Exception as exc:  # no torch: mxcore alone
        RESULT["errors"]["mlp_vs_torch.torch"] = repr(exc)
    for run in runners.values():
        run()
    times = {k: [] for k in runners}
    host = {k: [] for k in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            t = time.perf_counter()
            queued = run()  # when the last step was launched
            times[name].append(time.perf_counter() - t)
            host[name].append(queued - t)
    out = {name: round(statistics.median(v), 3) for name, v in times.items()}
    # host time near the epoch time: launch-bound (host work), not GPU-bound
    out["host_s"] = {name: round(statistics.median(v), 3) for name, v in host.items()}
    if "torch" in times:
        out["ratio_mxcore_over_torch"] = round(statistics.median(
            a / b for a, b in zip(times["mxcore"], times["torch"])), 2)
    prof = cProfile.Profile()
    step = m.mxcore_step(X, Y)
    for _ in range(20):
        step()
    prof.enable()
    for _ in range(200):
        step()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
    out["profile_200_steps"] = buf.getvalue().splitlines()[-32:]
    # per operator: host (launch) time, then time with the device waited for
    from mxcore import profiler
    for label, sync in (("ops_host_ms_50_steps", False), ("ops_synchronized_ms_50_steps", True)):
        profiler.set_config(synchronize=sync)
        profiler.set_state("run")
        for _ in range(50):
            step()
        profiler.set_state("stop")
        out[label] = profiler.dumps(reset=True).splitlines()[:22]
    return out


@step("mlp_variants")
def mlp_variants(work, timeout=90.0):
    """The MLP epoch vs PyTorch again, in fresh processes, with every size sent to
    Triton (MXCORE_CUDA_TRITON_MIN_ELEMENTS=1), with only the fused kernels on
    Triton (=2**62): which side of the default the small-tensor threshold should
    move; with the fused Dense kernels denied (CuPy's product, bias add and relu,
    and the composed backward instead): whether their launches beat CuPy's; and
    with Triton's own launch path instead of the cached launcher."""
    deny_fc = Path(work) / "deny_triton_fc.toml"
    deny_fc.write_text('[ops.fully_connected.cuda]\n'
                       'deny = ["mxcore-cuda:triton.matmul.fully_connected"]\n'
                       '[ops.fully_connected_backward.cuda]\n'
                       'deny = ["mxcore-cuda:triton.matmul.fully_connected_backward"]\n')
    out = {}
    variants = (("no_fast_launch", {"MXCORE_CUDA_FAST_LAUNCH": "0"}),
                ("dense_on_cupy", {"MXCORE_REGISTRY": str(deny_fc)}),
                ("all_triton", {"MXCORE_CUDA_TRITON_MIN_ELEMENTS": "1"}),
                ("fused_only", {"MXCORE_CUDA_TRITON_MIN_ELEMENTS": str(1 << 62)}))
    for label, extra in variants:
        env = {**os.environ, **extra,
               "PYTHONPATH": f"{Path(work) / 'site'}:{os.environ.get('PYTHONPATH', '')}"}
        try:
            r = subprocess.run([sys.executable, str(ROOT / "plugins/cuda/gpu_mlp_vs_torch.py")],
                               cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=timeout)
            lines = r.stdout.strip().splitlines()
            out[label] = (json.loads(lines[-1])["mlp_epoch_cuda_s"] if r.returncode == 0
                          and lines else {"returncode": r.returncode, "tail": r.stderr[-1500:]})
        except subprocess.TimeoutExpired:
            out[label] = f"timed out after {timeout} s"
    return out


def _standin_script(name, *argv, timeout=60.0):
    """A stand-in-driver script on this host's CPU, in its own process (it replaces
    the process's Triton driver); its JSON."""
    r = subprocess.run([sys.executable, str(ROOT / "plugins/cuda" / name), *argv], cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout)
    lines = r.stdout.strip().splitlines()
    if r.returncode or not lines:
        return {"returncode": r.returncode, "tail": r.stderr[-1500:]}
    return json.loads(lines[-1])


@step("launch_overhead")
def launch_overhead():
    """Host us per launch on this CPU, Triton's path vs the cached one."""
    return _standin_script("launch_overhead.py", "--rounds", "5", "--calls", "1000")


@step("standin_step")
def standin_step():
    """The MLP step's host time on the GPU code path without the GPU (what CPU-only
    machines measure), on this host: set against mlp_vs_torch.host_s it calibrates
    that estimate."""
    return _standin_script("standin_step.py", "--steps", "500", "--rounds", "3")


@step("eager_latency")
def eager_latency():
    """Host microseconds per call on small tensors (what bounds a small model's
    step): mxcore on cuda:0 vs the same work in raw CuPy and PyTorch."""
    import cupy
    import numpy as np
    import mxcore as mx
    from mxcore import autograd
    dev = mx.gpu(0)
    rng = np.random.default_rng(0)
    x = mx.nd.array(rng.random((64, 784), dtype=np.float32), ctx=dev)
    w = mx.nd.array(rng.random((256, 784), dtype=np.float32), ctx=dev)
    b = mx.nd.zeros((256,), ctx=dev)
    a10 = mx.nd.ones((10, 10), ctx=dev)
    logits = mx.nd.array(rng.random((64, 10), dtype=np.float32), ctx=dev)
    label = mx.nd.array(rng.integers(0, 10, 64).astype(np.float32), ctx=dev)
    g, mom = mx.nd.ones((256, 784), ctx=dev), mx.nd.zeros((256, 784), ctx=dev)
    cx, cw, ca = x._data, w._data, a10._data
    sync = cupy.cuda.Device(0).synchronize

    def per_call(fn, n=300):
        return round(timeit(fn, sync, warmup=20, iters=n) * 1e6, 1)

    def recorded_fc():
        with autograd.record():
            mx.nd.FullyConnected(x, w, b, num_hidden=256)
    out = {"mxcore": {
        "add_10x10": per_call(lambda: a10 + a10),
        "relu_64x256": per_call(lambda: mx.nd.relu(x)),
        "fully_connected_64x784x256": per_call(
            lambda: mx.nd.FullyConnected(x, w, b, num_hidden=256)),
        "fully_connected_recorded": per_call(recorded_fc),
        "softmax_ce_loss_64x10": per_call(lambda: mx.nd.softmax_ce_loss(logits, label)),
        "sgd_mom_update_256x784": per_call(
            lambda: mx.nd.sgd_mom_update(w, g, mom, lr=1e-9, momentum=0.9)),
    }, "cupy": {
        "add_10x10": per_call(lambda: ca + ca),
        "dot_plus_bias": per_call(lambda: cx @ cw.T + b._data),
    }}
    # the kernels themselves, called directly (no dispatch): what one Triton launch
    # costs on the host against the CuPy fallback doing the same work
    from mxcore.plugins import registry
    kernels = {k.name: k.fn for (op, kind), ks in registry().kernels.items()
               if kind == "cuda" for k in ks}
    cl = label._data.astype(cupy.float32)
    out["kernel_call"] = {
        "triton_add_10x10": per_call(lambda: kernels["triton.elementwise.add"](ca, ca)),
        "cupy_add_10x10": per_call(lambda: kernels["cupy.elemwise.add"](ca, ca)),
        "triton_softmax_ce_64x10": per_call(
            lambda: kernels["triton.softmax.softmax_ce_loss"](logits._data, cl, axis=-1)),
        "cupy_softmax_ce_64x10": per_call(
            lambda: kernels["cupy.nn.softmax_ce_loss"](logits._data, cl, axis=-1)),
    }
    # the MLP's first Dense layer, forward (relu) and backward (weight and bias)
    ch = cupy.maximum(cx @ cw.T, 0)
    fc = dict(flatten=True, no_bias=False, act_type="relu")
    fcb = dict(fc, grads=(False, True, True))
    for impl in ("triton.matmul", "cupy.nn"):
        out["kernel_call"][f"{impl.split('.')[0]}_dense_relu_64x784x256"] = per_call(
            lambda: kernels[f"{impl}.fully_connected"](cx, cw, b._data, **fc))
        out["kernel_call"][f"{impl.split('.')[0]}_dense_relu_backward_64x784x256"] = per_call(
            lambda: kernels[f"{impl}.fully_connected_backward"](ch, cx, cw, ch, **fcb))
    # the same Triton kernel launched through Triton's own path (no cached launcher)
    from mxcore_cuda.triton import _launch
    _launch.ENABLED = False
    try:
        out["kernel_call"]["triton_dense_relu_64x784x256_triton_path"] = per_call(
            lambda: kernels["triton.matmul.fully_connected"](cx, cw, b._data, **fc))
    finally:
        _launch.ENABLED = True
    try:
        import torch
        t10 = torch.ones((10, 10), device="cuda")
        tx, tw = torch.as_tensor(cx, device="cuda"), torch.as_tensor(cw, device="cuda")
        tb = torch.zeros(256, device="cuda")
        out["torch"] = {"add_10x10": per_call(lambda: t10 + t10),
                        "linear_64x784x256": per_call(
                            lambda: torch.nn.functional.linear(tx, tw, tb))}
    except Exception as exc:
        out["torch"] = repr(exc)
    return out


@step("conformance")
def conformance(timeout, work, shards=4):
    """tests/every_device on cuda:0, split over ``shards`` processes
    (MXCORE_TEST_SHARD): Triton compiles each new kernel variant on the CPU, and a
    fresh machine has them all to compile, so several processes finish sooner."""
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    env["PYTHONPATH"] = f"{Path(work) / 'site'}:{env['PYTHONPATH']}"
    cmd = [sys.executable, "-m", "pytest", "-q", "-rf", "tests/every_device", "-k", "cuda",
           "-p", "no:cacheprovider"]
    logs = [Path(work) / f"conformance.{k}.log" for k in range(shards)]
    procs = []
    for k, log in enumerate(logs):
        with open(log, "w") as f:
            procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                          env={**env, "MXCORE_TEST_SHARD": f"{k}/{shards}"}))
    deadline = time.time() + timeout
    codes, timed_out = [], False
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(1.0, deadline - time.time())))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            codes.append(None)
            timed_out = True
    counts = {c: 0 for c in ".FEs"}
    summaries, failed, tails = [], [], []
    for code, log in zip(codes, logs):
        lines = log.read_text(errors="replace").splitlines()
        summaries.append(next((ln for ln in reversed(lines)
                               if re.search(r"\d+ (passed|failed)", ln)), ""))
        progress = "".join(ln.split(" [")[0] for ln in lines if re.match(r"^[.FEsx]+( |$)", ln))
        for c in counts:
            counts[c] += progress.count(c)
        failed += [ln for ln in lines if ln.startswith("FAILED") or ln.startswith("ERROR")]
        if code not in (0, None):
            tails += lines[-12:]
    return {"returncodes": codes, "timed_out": timed_out, "summaries": summaries,
            "progress_counts": counts, "failed": failed[:60], "tail": tails[-40:]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/tmp")
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--mnist", default=os.environ.get("MXCORE_MNIST_DIR"))
    p.add_argument("--conformance-timeout", type=float, default=None)
    p.add_argument("--skip-conformance", action="store_true")
    p.add_argument("--skip-mnist", action="store_true")
    p.add_argument("--budget", type=float, default=450.0, help="seconds for the whole check")
    args = p.parse_args()
    entry_point_shim(Path(args.work))
    environment()
    if "environment" not in RESULT["errors"]:
        matmul_bench(args.size)
        bandwidth()
        fused_chain()
        captured_inference()
        captured_training()
        new_kernels()
        conv_bench()
        smoke(args.work)
        if not args.skip_mnist:
            mlp_vs_torch()
            eager_latency()
            launch_overhead()
            standin_step()
            mnist_epoch(args.mnist, args.work)
        if not args.skip_conformance:
            left = args.budget - (time.time() - T0) - 10
            conformance(args.conformance_timeout or max(30.0, left), args.work)
        left = args.budget - (time.time() - T0)
        if not args.skip_mnist and left > 60:  # what the conformance run left over
            mlp_variants(args.work, timeout=left / 4 - 5)
    RESULT["total_s"] = round(time.time() - T0, 1)
    text = json.dumps(RESULT, default=str)
    out = os.environ.get("OUT")
    if out:
        Path(out, "gpu_check.json").write_text(json.dumps(RESULT, indent=2, default=str))
    print(text)


if __name__ == "__main__":
    main()
