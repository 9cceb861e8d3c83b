"""The CUDA plugin's Triton convolution and pooling kernels
(plugins/cuda/mxcore_cuda/triton/conv.py).

On the interpreted ``cuda`` device (``MXCORE_CUDA_INTERPRET=1``: Triton's
interpreter on host memory) each kernel is compared with the CPU plugin's kernel
on tiny shapes covering stride, padding, dilation, groups, bias, both pooling
conventions, count_include_pad, ties and NaN, in float32, float16 and bfloat16;
the registry must pick the Triton kernels for the 2-D cases their guards take and
the fallback for the rest.  The GPU block configurations are compiled for sm_90
(no GPU needed).  Each check runs in a subprocess: the mode is chosen when the
plugin is imported.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mxcore_cuda")
pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, interpret: bool, timeout: int = 300) -> str:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MXCORE_PLUGINS", "MXCORE_REGISTRY", "MXCORE_DEVICE",
                        "MXCORE_CUDA_INTERPRET", "TRITON_INTERPRET", "MXCORE_NO_THIRD_PARTY")}
    if interpret:
        env["MXCORE_CUDA_INTERPRET"] = "1"
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, timeout=timeout, env=env, cwd=ROOT)
    assert r.returncode == 0, f"stdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-5000:]}"
    return r.stdout


# what the comparison scripts share: inputs rounded to the dtype, the CPU kernels
# (float32 arithmetic, one rounding for 16-bit floats) as the reference
COMMON = """
    import numpy as np
    import mxcore  # noqa: F401  (bfloat16 through ml_dtypes)
    from mxcore_cpu.kernels.conv import kernels as cpu_kernels
    from mxcore_cuda.triton import conv as tc
    from mxcore_cuda.triton._runtime import LAUNCHES

    CPU = cpu_kernels(np, None)
    rng = np.random.default_rng(0)
    # Triton's interpreter truncates float32 -> bfloat16 (GPUs round to nearest): one
    # bfloat16 ulp apart at most
    TOL = {"float32": 2e-5, "float16": 2e-3, "bfloat16": 1e-2}
    DTYPES = ("float32", "float16", "bfloat16")

    def data(shape, dt, ints=False):
        a = rng.integers(0, 4, shape) if ints else rng.normal(size=shape)
        return a.astype(dt)

    def close(got, want, dt, what):
        assert got.dtype == want.dtype and got.shape == want.shape, \\
            (what, got.dtype, want.dtype, got.shape, want.shape)
        got, want = got.astype(np.float64), want.astype(np.float64)
        scale = max(1.0, float(np.nanmax(np.abs(want))))
        np.testing.assert_allclose(got, want, rtol=TOL[dt], atol=TOL[dt] * scale,
                                   err_msg=str(what))
"""

CONVOLUTION_SCRIPT = COMMON + """
    # (data shape, num_filter, geometry, bias)
    CASES = [
        ((2, 3, 6, 6), 4, dict(kernel=(3, 3), stride=(1, 1), dilate=(1, 1), pad=(0, 0),
                               num_group=1), True),
        ((2, 3, 6, 6), 5, dict(kernel=(3, 3), stride=(2, 2), dilate=(1, 1), pad=(1, 1),
                               num_group=1), False),
        ((2, 3, 6, 5), 4, dict(kernel=(2, 3), stride=(1, 2), dilate=(2, 1), pad=(2, 1),
                               num_group=1), True),
        ((2, 3, 6, 6), 6, dict(kernel=(3, 3), stride=(1, 1), dilate=(1, 1), pad=(1, 1),
                               num_group=3), True),   # depthwise, two filters a channel
        ((2, 4, 6, 6), 4, dict(kernel=(3, 1), stride=(2, 1), dilate=(1, 2), pad=(1, 0),
                               num_group=2), False),
        ((2, 3, 6, 6), 4, dict(kernel=(1, 1), stride=(2, 2), dilate=(1, 1), pad=(0, 0),
                               num_group=1), True),
        ((1, 3, 7, 7), 3, dict(kernel=(3, 3), stride=(3, 2), dilate=(2, 2), pad=(2, 1),
                               num_group=1), True),
    ]
    for shape, f, geo, has_bias in CASES:
        for dt in DTYPES:
            attrs = dict(geo, num_filter=f, no_bias=not has_bias)
            x = data(shape, dt)
            w = data((f, shape[1] // geo["num_group"]) + geo["kernel"], dt)
            bias = (data((f,), dt),) if has_bias else ()
            where = (shape, f, geo, has_bias, dt)
            before = LAUNCHES["conv.convolution"]
            y = tc.convolution(x, w, *bias, **attrs)
            assert LAUNCHES["conv.convolution"] == before + 1
            close(y, CPU["convolution"][0](x, w, *bias, **attrs), dt, ("forward",) + where)
            gy = data(y.shape, dt)
            wanted = [(True, True, has_bias)]
            if shape == (2, 3, 6, 6) and has_bias:  # every subset of the gradients
                wanted += [(True, False, False), (False, True, False), (False, False, True),
                           (False, True, True), (True, False, True)]
            for grads in wanted:
                got = tc.convolution_backward(gy, x, w, grads=grads, **attrs)
                want = CPU["convolution_backward"][0](gy, x, w, grads=grads, **attrs)
                assert len(got) == len(want) == sum(grads), grads
                for name, g, e in zip([n for n, k in zip("xwb", grads) if k], got, want):
                    close(g, e, dt, ("d" + name, grads) + where)
    # the weight gradient's split reduction (few output tiles, many positions) ran
    assert LAUNCHES["conv.weight_grad.split"] > 0

    # an independent reference: float64 direct sums, one case
    x, w, b = data((2, 3, 5, 6), "float32"), data((4, 3, 2, 3), "float32"), data((4,), "float32")
    attrs = dict(kernel=(2, 3), stride=(2, 1), dilate=(2, 1), pad=(1, 2), num_group=1,
                 num_filter=4, no_bias=False)
    y = tc.convolution(x, w, b, **attrs)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (2, 2)))
    ref = np.zeros(y.shape) + b.astype(np.float64)[None, :, None, None]
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            win = xp[:, :, 2 * i:2 * i + 3:2, j:j + 3]
            ref[:, :, i, j] += np.einsum("nchw,fchw->nf", win, w.astype(np.float64))
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    print("CONVOLUTION OK")
"""


def test_convolution_and_its_gradients_match_the_cpu_kernels():
    """convolution and convolution_backward (every subset of data/weight/bias
    gradients) agree with the CPU kernels over stride, padding, dilation, groups
    (depthwise included), rectangular kernels and images, with and without bias,
    in float32/float16/bfloat16, and with direct float64 sums; the weight
    gradient's split reduction runs."""
    assert "CONVOLUTION OK" in _python(CONVOLUTION_SCRIPT, interpret=True)


POOLING_SCRIPT = COMMON + """
    CASES = [
        dict(kernel=(2, 2), stride=(2, 2), pad=(0, 0)),
        dict(kernel=(3, 3), stride=(2, 2), pad=(1, 1), pooling_convention="full"),
        dict(kernel=(3, 3), stride=(1, 1), pad=(1, 1), count_include_pad=False),
        dict(kernel=(3, 2), stride=(2, 1), pad=(1, 1), count_include_pad=False,
             pooling_convention="full"),
        dict(kernel=(2, 3), stride=(1, 3), pad=(0, 1)),
        dict(kernel=(6, 6), stride=(1, 1), pad=(0, 0)),   # global pooling
    ]
    for geo in CASES:
        for pool_type in ("max", "avg", "sum"):
            attrs = dict(dict(pooling_convention="valid", count_include_pad=True), **geo,
                         pool_type=pool_type, p_value=2)
            for dt in DTYPES:
                for ints in (False, True):  # small integers: ties in max windows
                    x = data((2, 3, 6, 6), dt, ints)
                    where = (geo, pool_type, dt, ints)
                    y = tc.pooling(x, **attrs)
                    want = CPU["pooling"][0](x, **attrs)
                    close(y, want, dt, ("forward",) + where)
                    gy = data(y.shape, dt)
                    before = LAUNCHES["conv.pooling_backward"]
                    dx = tc.pooling_backward(gy, x, want, **attrs)
                    assert LAUNCHES["conv.pooling_backward"] == before + 1
                    close(dx, CPU["pooling_backward"][0](gy, x, want, **attrs), dt,
                          ("backward",) + where)

    # ties: a window's gradient goes to its first maximum only; overlapping windows add
    x = np.array([[[[1, 3, 3], [3, 0, 3], [2, 3, 1]]]], dtype=np.float32)
    attrs = dict(kernel=(2, 2), stride=(1, 1), pad=(0, 0), pool_type="max",
                 pooling_convention="valid", count_include_pad=True, p_value=2)
    y = tc.pooling(x, **attrs)
    np.testing.assert_array_equal(y[0, 0], [[3, 3], [3, 3]])
    gy = np.array([[[[1, 2], [4, 8]]]], dtype=np.float32)
    dx = tc.pooling_backward(gy, x, y, **attrs)
    np.testing.assert_array_equal(dx[0, 0], [[0, 3, 0], [4, 0, 8], [0, 0, 0]])
    # NaN propagates through max; avg divides by the clipped window
    x = np.ones((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = np.nan
    y = tc.pooling(x, **attrs)
    assert np.isnan(y[0, 0, :2, :2]).all() and (y[0, 0, 2:, 2:] == 1).all()
    x = np.ones((1, 1, 3, 3), np.float32)
    for include, corner in ((True, 4 / 9), (False, 1.0)):
        y = tc.pooling(x, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg",
                       pooling_convention="valid", count_include_pad=include, p_value=2)
        np.testing.assert_allclose(y[0, 0, 0, 0], corner, rtol=1e-7)
    print("POOLING OK")
"""


def test_pooling_and_its_gradient_match_the_cpu_kernels():
    """max/avg/sum pooling and pooling_backward agree with the CPU kernels (both
    conventions, count_include_pad, rectangular and global windows, ties, float32/
    float16/bfloat16); a max window's gradient goes to its first maximum only, NaN
    propagates, avg counts the clipped window."""
    assert "POOLING OK" in _python(POOLING_SCRIPT, interpret=True)


RESOLUTION_SCRIPT = """
    import numpy as np
    import mxcore as mx
    from mxcore.plugins import registry
    from mxcore_cuda.triton._runtime import LAUNCHES

    reg = registry()

    def winner(op, shapes, attrs, dtype="float32"):
        return reg.resolve(op, "cuda", dtype, shapes, (dtype,) * len(shapes), attrs).name

    CONV = dict(kernel=(3, 3), stride=(1, 1), dilate=(1, 1), pad=(1, 1), num_filter=4,
                num_group=1, no_bias=False)
    POOL = dict(kernel=(2, 2), stride=(2, 2), pad=(0, 0), pool_type="max",
                pooling_convention="valid", count_include_pad=True, p_value=2)
    x, w, b, y = (2, 3, 6, 6), (4, 3, 3, 3), (4,), (2, 4, 6, 6)
    px, py = (2, 3, 6, 6), (2, 3, 3, 3)
    ours = {"convolution": ((x, w, b), CONV),
            "convolution_backward": ((y, x, w), dict(CONV, grads=(True, True, True))),
            "pooling": ((px,), POOL), "pooling_backward": ((py, px, py), POOL)}
    for dt in ("float32", "float16", "bfloat16"):
        for op, (shapes, attrs) in ours.items():
            assert winner(op, shapes, attrs, dt) == f"triton.conv.{op}", (op, dt)
        for pt in ("avg", "sum"):
            assert winner("pooling", (px,), dict(POOL, pool_type=pt), dt) == \\
                "triton.conv.pooling"
    grouped = dict(CONV, num_group=3, num_filter=6, no_bias=True)
    assert winner("convolution", ((2, 3, 6, 6), (6, 1, 3, 3)), grouped) == \\
        "triton.conv.convolution"
    declined = [
        ("convolution", ((x, w, b), CONV), "float64"),
        ("convolution", (((2, 3, 6), (4, 3, 3), b), dict(CONV, kernel=(3,), stride=(1,),
                                                          dilate=(1,), pad=(1,))), "float32"),
        ("convolution", (((2, 3, 4, 4, 4), (4, 3, 3, 3, 3), b),
                         dict(CONV, kernel=(3,) * 3, stride=(1,) * 3, dilate=(1,) * 3,
                              pad=(1,) * 3)), "float32"),
        ("convolution", ((x, (4, 3, 2, 3), b), CONV), "float32"),          # weight mismatch
        ("convolution", ((x, w), CONV), "float32"),                        # bias missing
        ("convolution", (((1, 64, 64, 64), (4, 64, 3, 3), b), CONV), "float32"),  # too big
        ("convolution_backward", (((2, 4, 5, 5), x, w), dict(CONV, grads=(1, 1, 1))),
         "float32"),                                                       # wrong out_grad
        ("convolution_backward", ((y, x, w), dict(CONV, grads=(1, 1, 1))), "float64"),
        ("pooling", ((px,), dict(POOL, pool_type="lp")), "float32"),
        ("pooling", ((px,), POOL), "float64"),
        ("pooling", (((2, 3, 6, 6, 6),), dict(POOL, kernel=(2,) * 3, stride=(2,) * 3,
                                               pad=(0,) * 3)), "float32"),
        ("pooling", (((2, 3, 6),), dict(POOL, kernel=(2,), stride=(2,), pad=(0,))),
         "float32"),
        ("pooling_backward", (((2, 3, 2, 2), px, (2, 3, 2, 2)), POOL), "float32"),
    ]
    for op, (shapes, attrs), dt in declined:
        name = winner(op, shapes, attrs, dt)
        assert name.startswith("numpy."), (op, shapes, dt, name)

    # through mx.nd and autograd: the Triton kernels run and agree with the CPU device
    gpu, cpu = mx.gpu(0), mx.cpu()
    out = {}
    for ctx in (gpu, cpu):
        r = np.random.default_rng(3)
        xs = mx.nd.array(r.normal(size=(2, 3, 8, 8)), ctx=ctx, dtype="float16")
        ws = mx.nd.array(r.normal(size=(4, 3, 3, 3)) * 0.3, ctx=ctx, dtype="float16")
        bs = mx.nd.array(r.normal(size=(4,)), ctx=ctx, dtype="float16")
        for v in (xs, ws, bs):
            v.attach_grad()
        before = {k: v for k, v in LAUNCHES.items()}
        with mx.autograd.record():
            h = mx.nd.Convolution(xs, ws, bs, kernel=(3, 3), pad=(1, 1), num_filter=4)
            h = mx.nd.Pooling(h, kernel=(2, 2), stride=(2, 2), pool_type="max")
            h = mx.nd.Pooling(h, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="avg")
            loss = (h * h).sum()
        loss.backward()
        if ctx == gpu:
            ran = {k: LAUNCHES[k] - before.get(k, 0) for k in
                   ("conv.convolution", "conv.convolution_backward", "conv.pooling",
                    "conv.pooling_backward")}
            assert ran == {"conv.convolution": 1, "conv.convolution_backward": 1,
                           "conv.pooling": 2, "conv.pooling_backward": 2}, ran
        out[str(ctx)] = [a.asnumpy().astype(np.float64) for a in (h, xs.grad, ws.grad, bs.grad)]
    for a, b in zip(out[str(gpu)], out[str(cpu)]):
        np.testing.assert_allclose(a, b, rtol=1e-2, atol=2e-2 * max(1.0, np.abs(b).max()))
    print("RESOLUTION OK")
"""


def test_registry_picks_triton_for_2d_and_the_fallback_otherwise():
    """The guards take 2-D NCHW convolution/pooling (max, avg, sum) in 16/32-bit
    floats and decline float64, 1-D and 3-D, lp pooling, inconsistent shapes and
    arrays above the interpreter's size; through mx.nd and autograd the Triton
    kernels run and agree with the CPU device."""
    assert "RESOLUTION OK" in _python(RESOLUTION_SCRIPT, interpret=True)


GPU_GUARDS_SCRIPT = """
    from mxcore.plugins import registry
    reg = registry()

    def winner(op, shapes, attrs, dtype):
        return reg.resolve(op, "cuda", dtype, shapes, (dtype,) * len(shapes), attrs).name

    conv = dict(stride=(1, 1), dilate=(1, 1), pad=(0, 0), num_group=1, no_bias=False)
    lenet = (((64, 1, 28, 28), (20, 1, 5, 5), (20,)), dict(conv, kernel=(5, 5), num_filter=20))
    big = (((128, 256, 56, 56), (256, 256, 3, 3), (256,)),
           dict(conv, kernel=(3, 3), pad=(1, 1), num_filter=256))
    for name, (shapes, attrs) in (("lenet", lenet), ("big", big)):
        for dt in ("float32", "bfloat16"):
            print(name, dt, winner("convolution", shapes, attrs, dt))
    pool = dict(kernel=(2, 2), stride=(2, 2), pad=(0, 0), pool_type="max",
                pooling_convention="valid", count_include_pad=True, p_value=2)
    print("pool_big float32", winner("pooling", ((128, 64, 112, 112),), pool, "float32"))
    print("pool_small float32", winner("pooling", ((2, 3, 4, 4),), pool, "float32"))
    print("pool_lp float32", winner("pooling", ((2, 3, 4, 4),), dict(pool, pool_type="lp"),
                                    "float32"))
"""


def test_gpu_guards_keep_large_float32_convolutions_on_cublas():
    """On the real device (guards only, no GPU needed): float32 convolutions up to
    MXCORE_CUDA_FUSED_FP32_MAX_MACS multiply-adds and every 16-bit one take the
    Triton kernel, larger float32 ones CuPy's im2col and cuBLAS; pooling takes
    Triton at every size, lp goes to CuPy."""
    out = _python(GPU_GUARDS_SCRIPT, interpret=False)
    rows = {tuple(line.split()[:2]): line.split()[2] for line in out.splitlines()}
    conv, pool = "triton.conv.convolution", "triton.conv.pooling"
    assert rows[("lenet", "float32")] == rows[("lenet", "bfloat16")] == conv, out
    assert rows[("big", "bfloat16")] == conv, out
    assert rows[("big", "float32")].startswith("cupy."), out
    assert rows[("pool_big", "float32")] == rows[("pool_small", "float32")] == pool, out
    assert rows[("pool_lp", "float32")].startswith("cupy."), out


GPU_CONFIG_SCRIPT = """
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from mxcore_cuda.triton import conv as tc

    # pointer and int arguments of each kernel, then its constexprs
    ARGS = {"_conv_kernel": (4, 11), "_conv_data_grad_kernel": (3, 11),
            "_conv_weight_grad_kernel": (4, 12)}
    # the GEMM shapes of a ResNet 3x3 convolution (forward, d data, d weight)
    SHAPES = {"_conv_kernel": (128 * 56 * 56, 64, 576),
              "_conv_data_grad_kernel": (128 * 56 * 56, 64, 576),
              "_conv_weight_grad_kernel": (64, 576, 128 * 56 * 56)}
    EXTRA = {"_conv_kernel": {"HAS_BIAS": True}, "_conv_weight_grad_kernel": {"SUMS": True}}

    def shared_bytes(name, ty, width):
        fn = getattr(tc, name)
        ptrs, ints = ARGS[name]
        bm, bn, bk, warps, stages = tc.gemm_config(*SHAPES[name], width)
        sig = {a: f"*{ty}" if i < ptrs else ("i32" if i < ptrs + ints else "constexpr")
               for i, a in enumerate(fn.arg_names)}
        consts = dict(KH=3, KW=3, SH=1, SW=1, DH=1, DW=1, BLOCK_M=bm, BLOCK_N=bn,
                      BLOCK_K=bk, GROUP_M=8, PRECISION="ieee", UPCAST=False,
                      **EXTRA.get(name, {}))
        assert set(consts) == {a for a, t in sig.items() if t == "constexpr"}, name
        c = triton.compile(ASTSource(fn, sig, constexprs=consts),
                           target=GPUTarget("cuda", 90, 32),
                           options={"num_warps": warps, "num_stages": stages})
        return name, ty, (bm, bn, bk, warps, stages), c.metadata.shared

    jobs = [(n, ty, w) for n in ARGS for ty, w in (("fp16", 2), ("bf16", 2), ("fp32", 4))]
    with ProcessPoolExecutor(os.cpu_count() or 1,
                             mp_context=multiprocessing.get_context("fork")) as pool:
        results = list(pool.map(shared_bytes, *zip(*jobs)))
    for r in results:
        print(*r)
    print("SHARED", max(r[-1] for r in results))
"""


def test_gpu_block_configurations_compile_for_sm90():
    """The implicit GEMMs' GPU tile configurations (which interpreted runs never
    use) compile for sm_90 and fit its shared memory (227 KiB a block)."""
    out = _python(GPU_CONFIG_SCRIPT, interpret=False, timeout=600)
    assert 0 < int(out.split("SHARED")[1]) <= 232448, out
