"""The CUDA device plugin (plugins/cuda, ``mxcore_cuda``).

Without a GPU (this machine) the plugin loads and reports the device as
unavailable with the reason; with ``MXCORE_CUDA_INTERPRET=1`` its "cuda" device
runs the Triton kernels in Triton's interpreter on host memory, and the whole
every_device suite runs on it.  Each check runs in a subprocess: the mode is
chosen when the plugin is imported.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mxcore_cuda")

ROOT = Path(__file__).resolve().parents[2]


def _env(interpret: bool):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MXCORE_PLUGINS", "MXCORE_REGISTRY", "MXCORE_DEVICE",
                        "MXCORE_CUDA_INTERPRET", "TRITON_INTERPRET", "MXCORE_NO_THIRD_PARTY")}
    if interpret:
        env["MXCORE_CUDA_INTERPRET"] = "1"
    return env


def _run(args, interpret=False, timeout=300):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          env=_env(interpret), cwd=ROOT)


def _cli(*argv, interpret=False):
    r = _run([sys.executable, "-m", "mxcore.cli", *argv], interpret)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _python(code, interpret=False, timeout=300):
    r = _run([sys.executable, "-c", textwrap.dedent(code)], interpret, timeout)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r.stdout


def _gpu_available() -> bool:
    from mxcore_cuda.device import CUDADevice
    return CUDADevice().availability()[0]


# --- without MXCORE_CUDA_INTERPRET --------------------------------------------------------
def test_plugin_loads_and_registers_the_device():
    infos = {p["name"]: p for p in json.loads(_cli("plugins", "--json"))}
    cuda = infos["cuda"]
    assert cuda["error"] is None and cuda["skipped"] is None, cuda
    assert cuda["distribution"] == "mxcore-cuda" and cuda["module"] == "mxcore_cuda.plugin"
    assert cuda["devices"] == ["cuda"]
    assert cuda["hooks"] == ["register_devices", "register_kernels"]
    assert cuda["kernels"] > 100  # Triton kernels + array-module fallbacks
    text = _cli("plugins")
    assert "device cuda: NVIDIA GPU" in text


@pytest.mark.skipif("_gpu_available()", reason="this machine has a usable CUDA GPU")
def test_unavailable_device_says_why():
    status = json.loads(_cli("devices", "--json"))
    assert status["cpu"]["status"] == "available"
    assert status["cuda"]["provider"] == "mxcore-cuda"
    assert status["cuda"]["status"].startswith("unavailable: ")
    why = status["cuda"]["status"][len("unavailable: "):]
    assert re.search(r"CuPy is not installed|CUDA driver|no CUDA GPU|is_available", why), why
    assert "unavailable" in _cli("devices").split("cuda", 1)[1].splitlines()[0]
    out = _python("""
        import sys
        import numpy as np
        import mxcore as mx
        from hal import DeviceUnavailableError
        for make in (lambda: mx.gpu(0), lambda: mx.device("cuda:0"), lambda: mx.device("gpu(1)")):
            try:
                make()
            except DeviceUnavailableError as exc:
                print("ERR", exc)
            else:
                raise SystemExit("a missing GPU was accepted")
        assert mx.num_gpus() == 0 and mx.context.num_gpus() == 0
        try:
            mx.context.gpu_memory_info(0)
        except DeviceUnavailableError as exc:
            assert "cuda:0 is unavailable" in str(exc), exc
        else:
            raise SystemExit("gpu_memory_info answered without a GPU")
        assert all(d.kind == "cpu" for d in mx.available_devices())
        # the CPU is unaffected, and loading the plugin imported no Triton
        x = mx.nd.array(np.arange(6.0).reshape(2, 3), dtype="float64")
        y = (mx.nd.exp(x) + x).sum().asscalar()
        assert abs(y - (np.exp(np.arange(6.0)) + np.arange(6.0)).sum()) < 1e-9
        assert "triton" not in sys.modules, "the plugin imported triton without need"
        print("OK")
    """)
    errors = [ln[4:] for ln in out.splitlines() if ln.startswith("ERR ")]
    assert len(errors) == 3
    assert errors[0].startswith("device cuda:0 is unavailable: ")
    assert errors[2].startswith("device cuda:1 is unavailable: ")
    assert why in errors[0]
    assert out.rstrip().endswith("OK")


# --- MXCORE_CUDA_INTERPRET=1 --------------------------------------------------------------
# --- with MXCORE_CUDA_INTERPRET=1 ---------------------------------------------------------
# Two scripts drive every Triton kernel on the interpreted device; they run once per
# module (fixture ``interpreted_runs``), recording each distinct launch, which
# ``test_recorded_triton_launches_compile_for_a_gpu`` then compiles for sm_90.
KERNELS_SCRIPT = """
        import numpy as np
        import mxcore as mx
        from mxcore.plugins import registry
        from mxcore_cuda.triton import specs
        from mxcore_cuda.triton._runtime import LAUNCHES

        gpu, cpu = mx.gpu(0), mx.cpu()
        rng = np.random.default_rng(0)
        reg = registry()

        def both(a, dtype="float32"):
            return mx.nd.array(a, ctx=gpu, dtype=dtype), mx.nd.array(a, ctx=cpu, dtype=dtype)

        def close(x, y, tol):
            np.testing.assert_allclose(x.asnumpy().astype(np.float64),
                                       y.asnumpy().astype(np.float64), rtol=tol, atol=tol)

        def winner(op, shapes, dtype, attrs):
            return reg.resolve(op, "cuda", dtype, shapes, (dtype,) * len(shapes), attrs).name

        for dtype, tol in (("float32", 2e-5), ("float64", 1e-12), ("float16", 2e-3),
                           ("bfloat16", 3e-2)):
            pos = rng.uniform(0.5, 2.0, (3, 5))
            x = rng.uniform(-2, 2, (3, 5))
            y = rng.uniform(-2, 2, (3, 5))
            for name in ("exp", "tanh", "sigmoid", "softrelu", "relu", "negative", "sin",
                         "cos", "abs", "square", "floor", "ceil"):
                g, c = both(x, dtype)
                close(getattr(mx.nd, name)(g), getattr(mx.nd, name)(c), tol)
            for name in ("log", "sqrt", "reciprocal"):
                g, c = both(pos, dtype)
                close(getattr(mx.nd, name)(g), getattr(mx.nd, name)(c), tol)
            for name in ("add", "subtract", "multiply", "divide", "maximum", "minimum"):
                (ga, ca), (gb, cb) = both(x, dtype), both(pos, dtype)
                close(getattr(mx.nd, name)(ga, gb), getattr(mx.nd, name)(ca, cb), tol)
            g, c = both(rng.uniform(-3, 3, (4, 3, 33)), dtype)
            close(mx.nd.softmax(g), mx.nd.softmax(c), tol)
            close(mx.nd.log_softmax(g, temperature=2.0), mx.nd.log_softmax(c, temperature=2.0),
                  tol)
            lab = rng.integers(0, 10, 6).astype(np.float32)
            (gx, cx), (gl, cl) = both(rng.normal(size=(6, 10)), dtype), both(lab, "float32")
            for xx in (gx, cx):
                xx.attach_grad()
            with mx.autograd.record():
                lg = mx.nd.softmax_ce_loss(gx, gl)
                lc = mx.nd.softmax_ce_loss(cx, cl)
            lg.backward()
            lc.backward()
            close(lg, lc, tol)
            close(gx.grad, cx.grad, tol)

        for dtype, tol in (("float32", 1e-4), ("float16", 2e-2), ("bfloat16", 2e-2)):
            a, b = rng.normal(size=(64, 48)), rng.normal(size=(48, 32))
            (ga, ca), (gb, cb) = both(a, dtype), both(b, dtype)
            close(mx.nd.matmul(ga, gb), mx.nd.matmul(ca, cb), tol)
            close(mx.nd.dot(ga, gb), mx.nd.dot(ca, cb), tol)
            from mxcore_cuda.triton import matmul as tm  # what the GPU check reports
            assert "BLOCK_M" in tm.best_config(tm._matmul_kernel, np.dtype(dtype).itemsize)
            # transposes are declined by the guard: the numpy fallback serves them
            close(mx.nd.dot(ga, ga, transpose_b=True), mx.nd.dot(ca, ca, transpose_b=True), tol)
            assert winner("dot", ((64, 48), (64, 48)), dtype,
                          {"transpose_a": False, "transpose_b": True}).startswith("numpy.")
            # fully_connected with its epilogue: any sizes (masked tiles), bias or not,
            # every activation, flattened 3-D input or not; gradients through the kept output
            w, bias = rng.normal(size=(10, 21)) * 0.3, rng.normal(size=(10,))
            (gw, cw), (gbias, cbias) = both(w, dtype), both(bias, dtype)
            for act in (None, "relu", "sigmoid", "tanh", "softrelu", "softsign"):
                for shape, kw in (((37, 21), {}), ((5, 3, 7), {}),
                                  ((5, 3, 21), {"flatten": False}), ((37, 21), {"no_bias": 1})):
                    (gx, cx) = both(rng.normal(size=shape), dtype)
                    for v in (gx, gw, cx, cw):
                        v.attach_grad()
                    with mx.autograd.record():
                        yg = mx.nd.FullyConnected(gx, gw, gbias, act_type=act, **kw)
                        yc = mx.nd.FullyConnected(cx, cw, cbias, act_type=act, **kw)
                    yg.backward(yg * 0 + 0.5)
                    yc.backward(yc * 0 + 0.5)
                    # Triton's interpreter truncates float32 -> bfloat16 (GPUs round to
                    # nearest): a bfloat16 chain of backward ops drifts twice as far
                    gtol = 2 * tol if dtype == "bfloat16" else tol
                    close(yg, yc, tol)
                    close(gx.grad, cx.grad, gtol)
                    close(gw.grad, cw.grad, gtol)
            assert winner("fully_connected", ((37, 21), (10, 21), (10,)), dtype,
                          {"flatten": True, "no_bias": False, "act_type": "relu"}) == \
                "triton.matmul.fully_connected"
            # backward in one op; the data's gradient skipped when it is not wanted
            (gx, cx) = both(rng.normal(size=(37, 21)), dtype)
            for v in (gw, gbias, cw, cbias):
                v.attach_grad()
            with mx.autograd.record():
                yg = mx.nd.FullyConnected(gx, gw, gbias, act_type="tanh")
                yc = mx.nd.FullyConnected(cx, cw, cbias, act_type="tanh")
            yg.backward(yg * 0 + 0.5)
            yc.backward(yc * 0 + 0.5)
            close(gw.grad, cw.grad, gtol)
            close(gbias.grad, cbias.grad, gtol)
            assert winner("fully_connected_backward", ((37, 10), (37, 21), (10, 21), (37, 10)),
                          dtype, {"flatten": True, "no_bias": False, "act_type": "tanh",
                                  "grads": (False, True, True)}) == \
                "triton.matmul.fully_connected_backward"

        adam_hp = dict(beta1=0.8, beta2=0.99, epsilon=1e-6, rescale_grad=0.5, clip_gradient=0.7)
        for dtype, tol in (("float32", 2e-5), ("float64", 1e-12), ("float16", 2e-3)):
            w0, g0 = rng.normal(size=(5, 7)), 3 * rng.normal(size=(5, 7))
            for op, nstates, attrs in (
                    ("sgd_update", 0, dict(lr=0.1, wd=0.05, rescale_grad=0.5, clip_gradient=1.0)),
                    ("sgd_mom_update", 1, dict(lr=0.1, momentum=0.9, wd=0.05, rescale_grad=0.5)),
                    ("nag_mom_update", 1, dict(lr=0.1, momentum=0.9, wd=0.05, clip_gradient=0.4)),
                    ("adam_update", 2, dict(lr=0.01, wd=0.05, **adam_hp)),
                    ("adamw_update", 2, dict(lr=0.9, eta=0.01, wd=0.05, **adam_hp))):
                for view in (False, True):  # a transposed view: updated through a copy
                    (gw, cw), (gg, cg) = both(w0, dtype), both(g0, dtype)
                    if view:
                        gw, cw, gg, cg = gw.T, cw.T, gg.T, cg.T
                    gs = [mx.nd.zeros(gw.shape, ctx=gpu, dtype=dtype) for _ in range(nstates)]
                    cs = [mx.nd.zeros(cw.shape, ctx=cpu, dtype=dtype) for _ in range(nstates)]
                    for _ in range(3):
                        assert getattr(mx.nd, op)(gw, gg, *gs, **attrs) is gw
                        getattr(mx.nd, op)(cw, cg, *cs, **attrs)
                    close(gw, cw, tol)
                    for s, t in zip(gs, cs):
                        close(s, t, tol)
            # multi-weight forms: one launch for every weight (sizes across chunk edges)
            shapes = ((3, 4), (4,), (0,), (70, 70))
            for op, nstates, extra in (
                    ("multi_sgd_update", 0, {}), ("multi_sgd_mom_update", 1, {"momentum": 0.9}),
                    ("multi_adam_update", 2, adam_hp),
                    ("multi_adamw_update", 2, dict(adam_hp, etas=[0.5, 1.0, 1.0, 0.1]))):
                # float16: the reference is the CPU kernel in float32 on the same float16
                # values (Triton computes float16 in float32; a float16 CPU step rounds
                # each operation, and (1 - beta2) * s**2 of a small s underflows to 0)
                ref_dt = "float32" if dtype == "float16" else dtype

                def pair(a):
                    g_ = mx.nd.array(a, ctx=gpu, dtype=dtype)
                    return g_, mx.nd.array(g_.asnumpy(), ctx=cpu, dtype=ref_dt)
                ws = [pair(rng.normal(size=s)) for s in shapes]
                gr = [pair(rng.normal(size=s)) for s in shapes]
                st = [[pair(np.zeros(s)) for _ in range(nstates)] for s in shapes]
                before = LAUNCHES["optimizer." + op]
                for k in (0, 1):
                    args = [a for i in range(len(shapes))
                            for a in (ws[i][k], gr[i][k], *(x[k] for x in st[i]))]
                    getattr(mx.nd, op)(*args, lrs=[0.1, 0.2, 0.3, 0.05],
                                       wds=[0.0, 0.01, 0.0, 0.1], num_weights=len(shapes),
                                       **extra)
                mx.nd.waitall()  # (an asynchronous engine launches later)
                assert LAUNCHES["optimizer." + op] == before + 1, op  # one launch, all weights
                for (gw, cw), ss in zip(ws, st):
                    close(gw, cw, tol)
                    for gs_, cs_ in ss:
                        close(gs_, cs_, tol)

        # broadcasting: strided kernel (merged to <= 4 dims); more goes to the fallback
        assert winner("add", ((2, 3), (3,)), "float32", {}) == "triton.elementwise.add"
        assert winner("add", ((2, 1, 2, 1, 2, 1, 2), (2, 1, 2, 1, 2, 1)), "float32",
                      {}) == "numpy.elemwise.add"
        for dtype, tol in (("float32", 2e-5), ("float16", 2e-3), ("int32", 0)):
            for sa, sb in (((4, 3), (3,)), ((2, 3, 4), (3, 1)), ((5, 1), (1, 6)),
                           ((2, 3, 2, 2, 5), (5,))):
                (ga, ca), (gb, cb) = both(rng.uniform(1, 5, sa), dtype), \
                    both(rng.uniform(1, 5, sb), dtype)
                for name in ("add", "multiply", "maximum", "greater", "less_equal"):
                    close(getattr(mx.nd, name)(ga, gb), getattr(mx.nd, name)(ca, cb), tol)
                    close(getattr(mx.nd, name)(gb, ga), getattr(mx.nd, name)(cb, ca), tol)
            gq, cq = both(rng.uniform(-2, 2, (5, 5)), dtype)
            close(gq.T - gq[1:2], cq.T - cq[1:2], tol)  # a strided view: no copy
            for name in ("equal", "not_equal", "greater_equal", "less"):
                close(getattr(mx.nd, name)(gq, gq.T), getattr(mx.nd, name)(cq, cq.T), tol)
        for dtype, tol in (("float32", 2e-5), ("float16", 2e-3)):
            g, c = both(rng.uniform(-2, 2, (4, 5)), dtype)
            for s in (2, 0.3, -1.5):
                for f in (lambda x: x + s, lambda x: x - s, lambda x: s - x, lambda x: x * s,
                          lambda x: x / s, lambda x: s / x, lambda x: mx.nd.maximum(x, s),
                          lambda x: mx.nd.minimum(x, s), lambda x: x == s, lambda x: x != s,
                          lambda x: x > s, lambda x: x >= s, lambda x: x < s, lambda x: x <= s):
                    close(f(g), f(c), tol)
        assert winner("add_scalar", ((4,),), "float64", {"scalar": 1.0}).startswith("numpy.")

        # reductions over a run of axes (all: rows == 1, two stages for long rows;
        # leading/middle axes: the column kernel); more in the reductions test below
        for dtype, tol in (("float32", 1e-5), ("float16", 2e-3), ("float64", 1e-12)):
            g, c = both(rng.uniform(-2, 2, (3, 4, 5)), dtype)
            for ax in (None, (2,), (1, 2), (0,), (1,)):
                for kd in (False, True):
                    for name in ("sum", "mean", "prod", "max", "min", "norm"):
                        r, e = (getattr(mx.nd, name)(v, axis=ax, keepdims=kd) for v in (g, c))
                        assert r.shape == e.shape
                        close(r, e, tol * 10)
            g, c = both(rng.uniform(-1, 1, (2, 5000)), dtype)
            for name in ("sum", "mean", "max", "min"):
                close(getattr(mx.nd, name)(g), getattr(mx.nd, name)(c), tol * 100)
            for name in ("argmax", "argmin"):
                close(getattr(mx.nd, name)(g, axis=0), getattr(mx.nd, name)(c, axis=0), 0)
            assert winner("sum", ((3, 4, 5),), dtype, {"axis": (0, 2), "keepdims": False}) \
                .startswith("numpy.")
        x = np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 3.0]])
        g, c = both(x)
        close(mx.nd.max(g, axis=1), mx.nd.max(c, axis=1), 0)  # NaN propagates
        assert LAUNCHES["reduce.sum.two_stage"] > 0

        # layer norm (last axis), batched products
        for dtype, tol in (("float32", 1e-4), ("float16", 1e-2)):
            (gx, cx), (gg, cg), (gb, cb) = (both(rng.normal(size=s), dtype)
                                            for s in ((6, 33), (33,), (33,)))
            close(mx.nd.LayerNorm(gx, gg, gb, eps=1e-3), mx.nd.LayerNorm(cx, cg, cb, eps=1e-3),
                  tol)
            # its first-order backward: the fused kernel (22 rows: the last program's
            # block of rows is partly past the end), against numpy in float64
            x, dy, gam = (rng.normal(size=s).astype(dtype).astype(np.float64)
                          for s in ((22, 33), (22, 33), (33,)))
            gx, gdy, gg, gb = (mx.nd.array(a, ctx=gpu, dtype=dtype)
                               for a in (x, dy, gam, np.zeros(33)))
            for v in (gx, gg, gb):
                v.attach_grad()
            with mx.autograd.record():
                y = mx.nd.LayerNorm(gx, gg, gb, eps=1e-3)
            y.backward(gdy)
            rstd = 1 / np.sqrt(x.var(axis=1, keepdims=True) + 1e-3)
            xhat, dxhat = (x - x.mean(axis=1, keepdims=True)) * rstd, dy * gam
            dx = rstd * (dxhat - dxhat.mean(axis=1, keepdims=True)
                         - xhat * (dxhat * xhat).mean(axis=1, keepdims=True))
            for got, want in ((gx.grad, dx), (gg.grad, (dy * xhat).sum(0)), (gb.grad, dy.sum(0))):
                assert got.dtype == dtype
                np.testing.assert_allclose(got.asnumpy().astype(np.float64), want,
                                           rtol=tol, atol=tol * 10)
            assert winner("layer_norm_backward", ((22, 33), (22, 33), (33,)), dtype,
                          {"axis": 1, "eps": 1e-3}) == "triton.norm.layer_norm_backward"
            (ga, ca), (gb, cb) = both(rng.normal(size=(3, 32, 48)), dtype), \
                both(rng.normal(size=(3, 48, 16)), dtype)
            close(mx.nd.batch_dot(ga, gb), mx.nd.batch_dot(ca, cb), tol)
            close(mx.nd.matmul(ga, gb), mx.nd.matmul(ca, cb), tol)

        # random: reproducible under mx.random.seed, plausible moments; dropout uses it
        mx.random.seed(5)
        u1 = mx.nd.random.uniform(-1, 3, shape=(60, 50), ctx=gpu).asnumpy()
        n1 = mx.nd.random.normal(1, 2, shape=(4000,), ctx=gpu).asnumpy()
        mx.random.seed(5)
        u2 = mx.nd.random.uniform(-1, 3, shape=(60, 50), ctx=gpu).asnumpy()
        n2 = mx.nd.random.normal(1, 2, shape=(4000,), ctx=gpu).asnumpy()
        u3 = mx.nd.random.uniform(-1, 3, shape=(60, 50), ctx=gpu).asnumpy()
        assert (u1 == u2).all() and (n1 == n2).all() and not (u1 == u3).all()
        assert u1.min() >= -1 and u1.max() < 3
        assert abs(u1.mean() - 1) < 0.1 and abs(u1.var() - 16 / 12) < 0.1
        assert abs(n1.mean() - 1) < 0.15 and abs(n1.var() - 4) < 0.4
        with mx.autograd.record():
            d = mx.nd.Dropout(mx.nd.ones((50, 40), ctx=gpu), p=0.3).asnumpy()
        assert 0.25 < (d == 0).mean() < 0.35 and np.allclose(d[d != 0], 1 / 0.7)

        # 2-D convolution (implicit GEMM) and pooling with their gradients; more in
        # tests/one_device/test_triton_conv.py
        for dtype, tol in (("float32", 1e-4), ("float16", 1e-2), ("bfloat16", 3e-2)):
            for conv, pool in ((dict(kernel=(3, 3), pad=(1, 1)), dict(pool_type="max")),
                               (dict(kernel=(3, 2), stride=(2, 1), dilate=(1, 2),
                                     num_group=3, no_bias=True),
                                dict(pool_type="avg", pad=(1, 1),
                                     pooling_convention="full"))):
                (gx, cx), (gw, cw), (gb, cb) = (both(rng.normal(size=s) * 0.5, dtype) for s in
                                                ((2, 3, 6, 6), (6, 3 // conv.get("num_group", 1))
                                                 + conv["kernel"], (6,)))
                for v in (gx, gw, gb, cx, cw, cb):
                    v.attach_grad()
                ys = []
                for x_, w_, b_ in ((gx, gw, gb), (cx, cw, cb)):
                    with mx.autograd.record():
                        h = mx.nd.Convolution(x_, w_, None if conv.get("no_bias") else b_,
                                              num_filter=6, **conv)
                        h = mx.nd.Pooling(h, kernel=(2, 2), stride=(2, 2), **pool)
                    h.backward(h * 0 + 0.5)
                    ys.append(h)
                close(ys[0], ys[1], tol)
                for g_, c_ in ((gx, cx), (gw, cw)):
                    close(g_.grad, c_.grad, 2 * tol)

        # a graph-fusion chain (a hybridized block's elementwise tail): tanh(x * 0.5) + y
        chain = (("mul_scalar", (0,), 0.5), ("tanh", (-1,), None), ("add", (-2, 1), None))
        for dtype, tol in (("float32", 2e-5), ("float16", 2e-3), ("bfloat16", 3e-2)):
            (gx, cx), (gy, cy) = both(rng.uniform(-2, 2, (3, 5)), dtype), \
                both(rng.uniform(0.5, 2, (3, 5)), dtype)
            close(mx.nd.invoke("fused_elemwise", gx, gy, chain=chain),
                  mx.nd.tanh(cx * 0.5) + cy, tol)
        missing = []
        for op, module, factory, args, dtypes, guard in specs():
            tag = f"{module}.{args[0] if args else factory}"
            if LAUNCHES[tag] == 0:
                missing.append(op)
        assert not missing, f"Triton kernels that never ran: {missing}"
        print("LAUNCHES", sum(LAUNCHES.values()))
"""

REDUCTIONS_SCRIPT = """
        import numpy as np
        import mxcore as mx
        from mxcore.plugins import registry
        from mxcore_cuda.triton._runtime import LAUNCHES

        gpu = mx.gpu(0)
        rng = np.random.default_rng(0)
        reg = registry()
        TOL = {"float16": 3e-3, "float32": 2e-6, "float64": 1e-13}

        def winner(op, shape, attrs, dtype="float32"):
            return reg.resolve(op, "cuda", dtype, (shape,), (dtype,), attrs).name

        def expected(name, a, ax, kd, ord):
            # MXNet 1.x: reducing every axis without keepdims gives shape (1,)
            if name in ("argmax", "argmin"):
                r = getattr(np, name)(a, axis=ax, keepdims=kd)
                return r.reshape((1,) * a.ndim) if ax is None and kd else np.atleast_1d(r)
            w = a.astype(np.float64)
            if name == "norm":
                w = np.abs(w) if ord == 1 else w * w
                r = w.sum(axis=ax, keepdims=kd)
                return np.atleast_1d(r if ord == 1 else np.sqrt(r))
            return np.atleast_1d(getattr(np, name)(w, axis=ax, keepdims=kd))

        def check(name, a, ax, kd=False, ord=2):
            tag = f"reduce.{name}"
            before = LAUNCHES[tag]
            kw = {"ord": ord} if name == "norm" else {}
            r = getattr(mx.nd, name)(mx.nd.array(a, ctx=gpu, dtype=a.dtype), axis=ax,
                                     keepdims=kd, **kw).asnumpy()
            assert LAUNCHES[tag] == before + 1, (name, a.shape, ax)  # Triton, not fallback
            e = expected(name, a, ax, kd, ord)
            where = (name, a.dtype, a.shape, ax, kd)
            assert r.shape == e.shape, where
            if name in ("argmax", "argmin"):
                assert r.dtype == np.float32, where
                np.testing.assert_array_equal(r, e, err_msg=str(where))
            else:
                assert r.dtype == a.dtype, where
                tol = TOL[a.dtype.name] * (1 if name in ("max", "min") else 10)
                np.testing.assert_allclose(r, e, rtol=tol, atol=tol, err_msg=str(where))

        # leading (0,), middle (1,), trailing (2,) runs and pairs, all axes
        for dtype in ("float16", "float32", "float64"):
            a = rng.uniform(0.5, 1.5, (6, 5, 7)).astype(dtype)
            for ax in (None, (0,), (1,), (2,), (0, 1), (1, 2)):
                for kd in (False, True):
                    for name in ("sum", "mean", "prod", "max", "min"):
                        check(name, a, ax, kd)
                    for ord in (1, 2):
                        check("norm", a - 1, ax, kd, ord)
            for ax in (None, 0, 1, 2):
                for kd in (False, True):
                    check("argmax", a, ax, kd)
                    check("argmin", a, ax, kd)

            # NaN propagates (max/min) / its first position wins (argmax/argmin), in
            # leading, middle and trailing positions
            x = rng.uniform(-1, 1, (4, 3, 6)).astype(dtype)
            x[0, 1, 2] = x[2, 1, 2] = x[3, 0, 5] = x[1, 2, 0] = np.nan
            for ax in ((0,), (1,), (2,), None):
                check("max", x, ax)
                check("min", x, ax)
            for ax in (0, 1, 2, None):
                check("argmax", x, ax)
                check("argmin", x, ax)
            # ties: the first occurrence; infinities
            t = rng.integers(0, 3, (5, 4, 6)).astype(dtype)
            t[:, 0, :] = -np.inf
            for ax in (0, 1, 2, None):
                check("argmax", t, ax)
                check("argmin", t, ax)
            check("argmax", np.full((3, 5), -np.inf, dtype), 1)

            # two stages: few long rows (trailing) and few column blocks over a long R,
            # with NaN and ties in late chunks
            for shape, ax in (((2, 5000), (1,)), ((2000, 5), (0,)), ((3, 1500, 7), (1,))):
                a = rng.uniform(0.9, 1.1, shape).astype(dtype)
                for name in ("sum", "mean", "max", "min"):
                    check(name, a, ax)
                check("norm", a, ax)
                check("argmax", a, ax[0])
                check("argmin", a, ax[0])
            t = rng.integers(0, 3, (2000, 5)).astype(dtype)
            t[1500, 2] = t[1700, 2] = t[300, 3] = np.nan
            for ax in (0, None):
                check("argmax", t, ax)
                check("argmin", t, ax)
            check("max", t, (0,))
        for tag in ("sum", "mean", "max", "min", "norm", "argmax", "argmin"):
            assert LAUNCHES[f"reduce.{tag}.two_stage"] > 0, tag

        # guards: one run of axes (size-1 axes do not break it); others: the fallback
        for dtype in ("float16", "float32", "float64"):
            for op, shape, attrs in (("sum", (3, 4, 5), {"axis": (0,)}),
                                     ("mean", (3, 4, 5), {"axis": (1,)}),
                                     ("prod", (3, 4, 5), {"axis": (0, 1)}),
                                     ("max", (3, 1, 5), {"axis": (0, 2)}),
                                     ("norm", (3, 4, 5), {"axis": (1,), "ord": 1}),
                                     ("argmin", (3, 4, 5), {"axis": 1})):
                assert winner(op, shape, dict(attrs, keepdims=False), dtype) \
                    == f"triton.reduce.{op}", (op, attrs)
            for op, shape, attrs in (("sum", (3, 4, 5), {"axis": (0, 2)}),
                                     ("min", (3, 4, 5, 2), {"axis": (1, 3)}),
                                     ("norm", (3, 4), {"axis": (0,), "ord": 3}),
                                     ("sum", (0, 4), {"axis": (0,)}),
                                     ("argmax", (0, 4), {"axis": 1})):
                assert winner(op, shape, dict(attrs, keepdims=False), dtype) \
                    .startswith("numpy."), (op, attrs)
        a = rng.uniform(-1, 1, (3, 4, 5))
        g = mx.nd.array(a, ctx=gpu)
        np.testing.assert_allclose(mx.nd.sum(g, axis=(0, 2)).asnumpy(), a.sum(axis=(0, 2)),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(mx.nd.sum(g, axis=1, exclude=True).asnumpy(),
                                   a.sum(axis=(0, 2)), rtol=1e-5, atol=1e-5)
        print("REDUCTIONS", sum(LAUNCHES.values()))
"""


@pytest.fixture(scope="module")
def interpreted_runs(tmp_path_factory):
    """stdout of each script (run interpreted, launches recorded), and the launches."""
    out = {}
    launches = []
    for name, script in (("kernels", KERNELS_SCRIPT), ("reductions", REDUCTIONS_SCRIPT)):
        log = tmp_path_factory.mktemp("launches") / f"{name}.json"
        prefix = ("from tests.one_device import triton_launches\n"
                  f"triton_launches.record({str(log)!r})\n")
        out[name] = _python(prefix + textwrap.dedent(script), interpret=True)
        launches += json.loads(log.read_text())
    out["launches"] = launches
    return out


def test_interpreted_explain_names_the_triton_kernel():
    out = _cli("kernels", "explain", "exp", "--device", "cuda", "--dtype", "float32",
               "--shape", "8", interpret=True)
    assert "winner: mxcore-cuda:triton.elementwise.exp" in out, out
    assert "mxcore-cuda:numpy.elemwise.exp" in out  # the fallback, ranked below
    devices = json.loads(_cli("devices", "--json", interpret=True))
    assert devices["cuda"]["status"] == "available"
    assert "numpy, not cupy" in _cli("plugins", interpret=True)


def test_interpreted_triton_kernels_run_and_match_numpy(interpreted_runs):
    """Every Triton kernel wins resolution for a call its guard accepts, runs
    (launch counter), and agrees with the CPU device; calls the guards decline
    run the numpy fallback.  Covers broadcasting and scalar elementwise forms,
    comparisons, reductions, layer norm, batched products and random sampling."""
    out = interpreted_runs["kernels"]
    assert "LAUNCHES" in out


def test_interpreted_triton_reductions_over_any_axes_match_numpy(interpreted_runs):
    """sum, mean, prod, max, min, norm over leading, middle and trailing runs of axes and
    argmax/argmin over one axis or all run as Triton kernels (launch counter, every call)
    and agree with numpy: keepdims, float16/32/64, NaN for max/min/argmax/argmin, ties
    (first occurrence), and both two-stage paths; axis sets that are not one run go to
    the numpy fallback."""
    out = interpreted_runs["reductions"]
    assert "REDUCTIONS" in out


def test_gpu_guards_send_small_calls_to_the_cupy_fallback():
    """On the real device (guards only: no GPU needed to evaluate them), Triton
    kernels doing one CuPy call's work take arrays of at least
    MXCORE_CUDA_TRITON_MIN_ELEMENTS elements; fused kernels take every size."""
    code = """
        from mxcore.plugins import registry
        from mxcore_cuda.triton._runtime import MIN_ELEMENTS
        reg = registry()

        def winner(op, shapes, attrs, dtype="float32"):
            return reg.resolve(op, "cuda", dtype, shapes, (dtype,) * len(shapes), attrs).name
        print("MIN", MIN_ELEMENTS)
        for kind, op, small, big, attrs in (
                ("single", "add", ((10, 10), (10,)), ((512, 256), (256,)), {}),
                ("single", "exp", ((10, 10),), ((512, 256),), {}),
                ("single", "mul_scalar", ((10, 10),), ((512, 256),), {"scalar": 2.0}),
                ("single", "sum", ((10, 10),), ((512, 256),), {"axis": (1,), "keepdims": False}),
                ("single", "sum", ((10, 10),), ((512, 256),), {"axis": (0,), "keepdims": False}),
                ("single", "norm", ((10, 10),), ((512, 256),),
                 {"ord": 2, "axis": (0,), "keepdims": False}),
                ("single", "argmax", ((10, 10),), ((512, 256),), {"axis": 0, "keepdims": False}),
                ("single", "matmul", ((64, 64), (64, 64)), ((512, 256), (256, 256)), {}),
                ("single", "batch_dot", ((4, 16, 16), (4, 16, 16)),
                 ((4, 256, 256), (4, 256, 256)), {"transpose_a": False, "transpose_b": False}),
                ("fused", "softmax", ((10, 10),), ((512, 256),), {"axis": 1, "temperature": None}),
                ("fused", "softmax_ce_loss", ((64, 10), (64,)), ((4096, 16), (4096,)),
                 {"axis": 1}),
                ("fused", "layer_norm", ((10, 10), (10,), (10,)), ((512, 256), (256,), (256,)),
                 {"axis": 1, "eps": 1e-5}),
                ("fused", "sgd_mom_update", ((10,),) * 3, ((512, 256),) * 3,
                 {"lr": 0.1, "momentum": 0.9, "wd": 0.0, "rescale_grad": 1.0,
                  "clip_gradient": -1.0})):
            print(kind, op, winner(op, small, attrs), winner(op, big, attrs))
        # bfloat16: Triton at every size (CuPy's bfloat16 is experimental)
        print("bf16", *[winner(op, shp, a, "bfloat16") for op, shp, a in (
            ("add", ((10, 10), (10,)), {}), ("exp", ((10, 10),), {}),
            ("mul_scalar", ((10, 10),), {"scalar": 2.0}),
            ("sum", ((10, 10),), {"axis": (1,), "keepdims": False}),
            ("matmul", ((64, 64), (64, 64)), {}))],
            reg.resolve("random_uniform", "cuda", "bfloat16", (), (),
                        {"shape": (10,), "low": 0.0, "high": 1.0, "dtype": "bfloat16"}).name)
        # more batches than a grid's second dimension takes: CuPy at any size
        print("gridlimit", winner("batch_dot", ((70000, 16, 16), (70000, 16, 16)),
                                   {"transpose_a": False, "transpose_b": False}))
        fc = {"flatten": True, "no_bias": False, "act_type": "relu"}
        fcb = {**fc, "grads": (False, True, True)}
        mlp, big = ((64, 784), (256, 784), (256,)), ((1024, 4096), (4096, 4096), (4096,))
        for dtype in ("float32", "bfloat16"):
            print("dense", dtype, winner("fully_connected", mlp, fc, dtype),
                  winner("fully_connected", big, fc, dtype),
                  winner("fully_connected_backward", ((64, 256), mlp[0], mlp[1], (64, 256)),
                         fcb, dtype),
                  winner("fully_connected_backward",
                         ((1024, 4096), big[0], big[1], (1024, 4096)), fcb, dtype))
        print("random", winner("random_uniform", (), {"shape": (10,), "low": 0.0, "high": 1.0,
                                                      "dtype": "float32"}))
    """
    out = _python(code)
    assert "MIN 65536" in out
    # fused Dense: float32 up to FUSED_FP32_MAX_MACS (the MLP's layer), cuBLAS above it;
    # 16-bit always
    assert "gridlimit cupy.linalg.batch_dot" in out, out
    bf16 = next(ln.split()[1:] for ln in out.splitlines() if ln.startswith("bf16"))
    assert len(bf16) == 6 and all(w.startswith("triton.") for w in bf16), bf16
    dense = {ln.split()[1]: ln.split()[2:] for ln in out.splitlines()
             if ln.startswith("dense ")}
    t, c = "triton.matmul.", "cupy.nn."
    assert dense["float32"] == [t + "fully_connected", c + "fully_connected",
                                t + "fully_connected_backward", c + "fully_connected_backward"]
    assert dense["bfloat16"] == [t + "fully_connected"] * 2 + [t + "fully_connected_backward"] * 2
    out = "\n".join(ln for ln in out.splitlines()
                   if not ln.startswith(("dense", "gridlimit", "bf16")))
    rows = [line.split() for line in out.splitlines()[1:-1]]
    assert {r[0] for r in rows} == {"single", "fused"}
    for kind, op, small, big in rows:
        assert small.startswith("cupy." if kind == "single" else "triton."), (op, small)
        assert big.startswith("triton."), (op, big)
    assert out.splitlines()[-1].split()[1].startswith("cupy.")
    env_out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                             text=True, env={**_env(False),
                                             "MXCORE_CUDA_TRITON_MIN_ELEMENTS": "1"}, cwd=ROOT)
    assert env_out.returncode == 0, env_out.stderr
    assert all(ln.split()[2].startswith("triton.") for ln in env_out.stdout.splitlines()[1:-1]
               if not ln.startswith(("dense", "gridlimit", "bf16")))
    assert "gridlimit cupy.linalg.batch_dot" in env_out.stdout
    assert env_out.stdout.splitlines()[-1].split()[1].startswith("triton.")


def test_cupy_shim_keeps_attributes_and_adds_errstate():
    """The CuPy table's ``xp``: attributes come from the wrapped module and are
    kept after the first read (kernels read them on every call); ``errstate``,
    which CuPy lacks, is a no-op context manager."""
    import numpy as np
    from mxcore_cuda.arraymodule import _CupyShim
    shim = _CupyShim(np)
    assert "maximum" not in vars(shim)
    assert shim.maximum is np.maximum and vars(shim)["maximum"] is np.maximum
    with shim.errstate(divide="ignore"):
        pass
    with pytest.raises(AttributeError):
        shim.no_such_function


def _refusing_bfloat16(fn):
    """``fn`` as CuPy 14's cupyx has it: no bfloat16 loops (cupy#9630)."""
    def call(*args, **kwargs):
        if any(getattr(a, "dtype", None) == "bfloat16" for a in args):
            raise TypeError("no bfloat16 loop")
        return fn(*args, **kwargs)
    return call


def test_cupyx_calls_compute_bfloat16_in_float32():
    """The CuPy table's cupyx calls (special functions, scatter-add), checked with
    numpy stand-ins that refuse bfloat16 as cupyx does: bfloat16 is computed in
    float32 and rounded once; other dtypes reach the function unchanged."""
    import types

    import numpy as np
    import scipy.special
    from mxcore_cuda.arraymodule import _cupy_only, _SpecialShim
    bf16 = np.dtype("bfloat16")
    seen = []
    fake = types.SimpleNamespace(expit=_refusing_bfloat16(
        lambda x, out=None: seen.append(x.dtype) or scipy.special.expit(x, out=out)))
    special = _SpecialShim(fake)
    x = np.linspace(-4, 4, 9)
    for dt in ("float32", bf16):
        xs = x.astype(dt)
        want = scipy.special.expit(xs.astype(np.float32)).astype(dt)
        got = special.expit(xs)
        assert got.dtype == dt and np.array_equal(got, want)
        out = np.empty_like(xs)
        assert special.expit(xs, out=out) is out and np.array_equal(out, want)
    assert seen == [np.float32] * 4  # bfloat16 reached it as float32

    def scatter_add(out, key, g):
        np.add.at(out, key, g)
    kernels = _cupy_only(np, scatter_add=_refusing_bfloat16(scatter_add))
    g = np.arange(1.0, 7.0).reshape(3, 2)
    idx = np.array([1, 1, 0])
    for dt in ("float32", bf16):
        gi = kernels["getitem_grad"](g.astype(dt), (idx,), (4, 2))
        assert gi.dtype == dt
        np.testing.assert_array_equal(gi.astype(np.float64), [[5, 6], [4, 6], [0, 0], [0, 0]])
        ti = kernels["take_grad"](g.T.copy().astype(dt), idx, 1, "clip", 3)
        assert ti.dtype == dt
        np.testing.assert_array_equal(ti.astype(np.float64), [[5, 4, 0], [6, 6, 0]])
        gn = kernels["gather_nd_grad"](g.astype(dt), np.array([[1, 1, -4]]), (4, 2))
        assert gn.dtype == dt
        np.testing.assert_array_equal(gn.astype(np.float64), [[5, 6], [4, 6], [0, 0], [0, 0]])


@pytest.mark.long
def test_interpreted_device_passes_the_every_device_suite():
    """tests/every_device on the interpreted cuda:0 (Triton kernels interpreted,
    the rest numpy fallbacks), split over two processes (MXCORE_TEST_SHARD) so that
    both of CI's cores interpret."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "tests/every_device", "-k", "cuda",
           "-p", "no:cacheprovider"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env={**_env(True), "MXCORE_TEST_SHARD": f"{k}/2"})
             for k in range(2)]
    passed = 0
    for p in procs:
        out, _ = p.communicate(timeout=3000)
        tail = "\n".join(out.splitlines()[-15:])
        assert p.returncode == 0, tail
        assert "failed" not in tail, tail
        m = re.search(r"(\d+) passed", tail)
        assert m, tail
        passed += int(m.group(1))
    assert passed > 1500


def test_recorded_triton_launches_compile_for_a_gpu(interpreted_runs):
    """Every distinct Triton launch of the interpreted runs compiles for an sm_90
    GPU (Triton's compiler and bundled ptxas; no GPU needed) and passes only
    scalar types a real launch accepts: what the interpreter takes but a GPU
    would not fails here."""
    launches = interpreted_runs["launches"]
    kernels = {tuple(e["kernel"]) for e in launches}
    assert len(kernels) >= 15, kernels
    code = """
        import json, sys, types
        from tests.one_device.triton_launches import compile_all, distinct
        from mxcore_cuda.triton import matmul
        entries = distinct(json.loads(sys.stdin.read()))
        # the Dense kernels' GPU-only small-tile configurations (launch-bound sizes;
        # interpreted runs use their own blocks)
        small = {}
        for e in entries:
            if e["kernel"][1] in ("_fc_kernel", "_fc_grad_kernel"):
                width = 4 if "fp32" in json.dumps(e["signature"]) else 2
                for mnk in ((64, 256, 784), (64, 10, 256), (256, 784, 64), (100, 200, 64)):
                    bm, bn, bk, gm, warps, stages = matmul.small_config(
                        *mnk, types.SimpleNamespace(itemsize=width))
                    c = dict(e, constexprs={**e["constexprs"], "BLOCK_M": bm, "BLOCK_N": bn,
                                            "BLOCK_K": bk, "GROUP_M": gm},
                             options={"num_warps": warps, "num_stages": stages})
                    small.setdefault(json.dumps(c, sort_keys=True), c)
        assert len(small) >= 12, len(small)
        entries += list(small.values())
        failures = compile_all(entries)
        print(len(entries), "compiled;", len(failures), "failed")
        print("\\n".join(failures))
    """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], input=json.dumps(launches),
                       capture_output=True, text=True, timeout=600, env=_env(False), cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"^\d+ compiled; 0 failed", r.stdout, re.M), r.stdout[-5000:]
    assert int(r.stdout.split()[0]) >= 100, r.stdout  # every kernel's variants


def test_every_kernel_gets_a_cached_launcher(interpreted_runs):
    """One recorded launch of each Triton kernel, replayed on a stand-in driver
    (``mxcore_cuda.standin_driver``: sm_90 compiles, launches logged): each kernel's
    launches are cached by ``mxcore_cuda.triton._launch`` (none silently keeps
    Triton's slower path) and hand the launcher what Triton's own path hands it.
    (tests/one_device/test_cuda_launch_path.py checks the cache itself.)"""
    code = """
        import json, sys
        from mxcore_cuda import standin_driver
        standin_driver.install()
        from tests.one_device.triton_launches import one_per_kernel, replay_cached
        entries = one_per_kernel(json.loads(sys.stdin.read()))
        failures = replay_cached(entries)
        print(len(entries), "kernels;", len(failures), "failed")
        print("\\n".join(failures))
    """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                       input=json.dumps(interpreted_runs["launches"]), capture_output=True,
                       text=True, timeout=600, env=_env(False), cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    first = r.stdout.strip().splitlines()[0]
    assert first.endswith("; 0 failed") and int(first.split()[0]) >= 15, r.stdout[-5000:]


def test_triton_launches_follow_cupys_device_and_stream(monkeypatch):
    """On a GPU, Triton kernels must launch on CuPy's current device and stream (the
    ones CuPy fallbacks and pinned uploads use): checked on a stand-in driver."""
    import types

    from triton.runtime import driver
    from mxcore_cuda.triton import _runtime
    fake_cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDevice=lambda: 3, setDevice=lambda i: None),
        get_current_stream=lambda: types.SimpleNamespace(ptr=1234)))
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    monkeypatch.setattr(driver, "_active", types.SimpleNamespace())
    _runtime.bind_triton_to_cupy()
    assert driver.active.get_current_device() == 3
    assert driver.active.get_current_stream(3) == 1234


def test_autotune_chooses_between_triton_and_the_array_module_matmul(tmp_path):
    """MXCORE_AUTOTUNE=1 on the cuda device: for a product both the Triton kernel
    and the array-module one (cuBLAS through CuPy on a GPU) accept, the registry times
    both once per signature, keeps the faster, caches it on disk and says so."""
    cache = tmp_path / "autotune.json"
    code = """
        import numpy as np
        import mxcore as mx
        from mxcore.plugins import registry
        rng = np.random.default_rng(0)
        a = rng.normal(size=(64, 48)).astype(np.float32)
        b = rng.normal(size=(48, 32)).astype(np.float32)
        gpu = mx.gpu(0)
        c = mx.nd.dot(mx.nd.array(a, ctx=gpu), mx.nd.array(b, ctx=gpu))
        np.testing.assert_allclose(c.asnumpy(), a @ b, rtol=1e-4, atol=1e-4)
        print(registry().explain("dot", "cuda", "float32", [(64, 48), (48, 32)],
                                 ["float32"] * 2, {"transpose_a": False,
                                                   "transpose_b": False}))
    """
    env = {**_env(True), "MXCORE_AUTOTUNE": "1", "MXCORE_AUTOTUNE_CACHE": str(cache)}
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (entry,) = json.loads(cache.read_text()).values()
    assert set(entry["seconds"]) == {"mxcore-cuda:triton.matmul.dot",
                                     "mxcore-cuda:numpy.linalg.dot"}
    assert all(isinstance(t, float) for t in entry["seconds"].values())
    assert entry["winner"] == min(entry["seconds"], key=entry["seconds"].get)
    assert f"autotune chose {entry['winner']}" in r.stdout


def test_pinned_staging_ring_waits_only_for_the_copy_that_used_a_slot(monkeypatch):
    """Host-to-device copies go through a ring of pinned buffers: each upload stages
    the data at call time (the caller may overwrite its array at once), queues an
    asynchronous copy on CuPy's current stream and records an event; a slot is
    refilled only after waiting for its previous copy's event.  Stand-in CuPy
    objects record the calls (no GPU needed)."""
    import types

    import numpy as np
    from mxcore_cuda.staging import PinnedRing

    log = []

    class Event:
        def __init__(self, n):
            self.n = n

        def synchronize(self):
            log.append(("wait", self.n))

    class Stream:
        def __init__(self):
            self.copies = 0

        def record(self):  # an event after the last queued copy
            return Event(self.copies - 1)

    stream = Stream()

    class DeviceArray:
        def __init__(self, shape, dtype):
            self.data = np.empty(shape, dtype)

        def set(self, host, stream):
            assert stream is stream_obj and not host.flags.owndata  # a view of pinned memory
            self.data[...] = host
            stream.copies += 1
            log.append(("copy", stream.copies - 1))

    stream_obj = stream
    fake_cupy = types.SimpleNamespace(
        cuda=types.SimpleNamespace(get_current_stream=lambda: stream),
        empty=lambda shape, dtype: DeviceArray(shape, dtype))
    pinned = []

    def empty_pinned(shape, dtype):
        pinned.append(np.empty(shape, dtype))
        return pinned[-1]
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    monkeypatch.setitem(sys.modules, "cupyx", types.SimpleNamespace(empty_pinned=empty_pinned))

    ring = PinnedRing(slots=2)
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    first = ring.upload(host)
    host[...] = -1  # the caller's array may change right away
    second = ring.upload(np.ones(5, np.int64))
    third = ring.upload(np.zeros((), np.float16))  # slot 0 again: waits for copy 0 only
    np.testing.assert_array_equal(first.data, np.arange(6).reshape(2, 3))
    assert second.data.tolist() == [1] * 5 and third.data.shape == ()
    assert log == [("copy", 0), ("copy", 1), ("wait", 0), ("copy", 2)]
    assert len(pinned) == 2  # one buffer per slot, reused (it was large enough)


@pytest.mark.parametrize("gpus", [1, 2])
def test_kernels_run_on_their_arrays_gpu_when_there_are_several(monkeypatch, gpus):
    """With several GPUs a kernel runs in the device context of its first CuPy array
    (CuPy and Triton launch on the current device); with one, kernels stay unwrapped
    (no per-call context cost).  Stand-in CuPy module: no GPU needed."""
    import types

    import mxcore_cuda
    from mxcore_cuda import placement

    entered = []

    class Device:
        def __init__(self, i):
            self.i = i

        def __enter__(self):
            entered.append(self.i)

        def __exit__(self, *exc):
            entered.append(-self.i)

    class ndarray:
        def __init__(self, i):
            self.device = Device(i)

    fake = types.SimpleNamespace(ndarray=ndarray, cuda=types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=lambda: gpus)))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(mxcore_cuda, "INTERPRET", False)
    placement.several_gpus.cache_clear()
    try:
        def fn(*arrays, scale):
            return ("ran", len(arrays), scale)
        wrapped = placement.on_array_device(fn)
        assert wrapped(3.0, ndarray(1), ndarray(0), scale=2) == ("ran", 3, 2)
        if gpus == 1:
            assert wrapped is fn and entered == []
        else:
            assert entered == [1, -1]  # the first array's device, entered and left
            assert wrapped(4.0, scale=1) == ("ran", 1, 1) and entered == [1, -1]
    finally:
        placement.several_gpus.cache_clear()


def test_empty_cache_frees_both_pools_on_the_named_gpu(monkeypatch):
    """``empty_cache`` on cuda:N returns the unused blocks of CuPy's device and pinned
    memory pools, inside device N's context.  Stand-in CuPy module: no GPU needed."""
    import types

    from mxcore_cuda.device import CUDADevice

    log = []
    current = [0]

    class Device:
        def __init__(self, i):
            self.i = i

        def __enter__(self):
            current.append(self.i)

        def __exit__(self, *exc):
            current.pop()

    def pool(name):
        return types.SimpleNamespace(free_all_blocks=lambda: log.append((name, current[-1])))
    fake = types.SimpleNamespace(
        cuda=types.SimpleNamespace(Device=Device),
        get_default_memory_pool=lambda: pool("device"),
        get_default_pinned_memory_pool=lambda: pool("pinned"))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    CUDADevice().empty_cache(1)
    assert log == [("device", 1), ("pinned", 1)] and current == [0]


def test_optimizer_tables_upload_only_when_they_change():
    """The fused update's table (addresses, sizes, hyper-parameters) goes to the device
    once and is reused while nothing in it changes; a new learning rate makes a new
    one.  (Gradients are fresh arrays each step, so their addresses alternate between
    two buffers: two tables per learning rate.)  The updates match the CPU device's."""
    out = _python("""
        import numpy as np
        import mxcore as mx
        from mxcore import autograd, gluon
        from mxcore_cuda.triton import optimizer as topt
        uploads = []
        real = topt.upload
        topt.upload = lambda host: uploads.append(host.copy()) or real(host)
        weights = {}
        for dev in (mx.cpu(), mx.gpu(0)):
            net = gluon.nn.Dense(3, in_units=4)
            net.initialize(ctx=dev)
            net.weight.set_data(mx.nd.array(np.linspace(-0.5, 0.5, 12, dtype=np.float32)
                                            .reshape(3, 4), ctx=dev))
            trainer = gluon.Trainer(net.collect_params(), "sgd",
                                    {"learning_rate": 0.1, "momentum": 0.9})
            x = mx.nd.array(np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4), ctx=dev)
            for step in range(8):
                if step == 4:
                    trainer.set_learning_rate(0.05)
                with autograd.record():
                    loss = (net(x) ** 2).sum()
                loss.backward()
                trainer.step(2)
            weights[dev.kind] = net.weight.data().asnumpy()
        np.testing.assert_allclose(weights["cuda"], weights["cpu"], rtol=1e-6, atol=1e-7)
        tables = [t for t in uploads if len(t) == 2 * topt.RECORD + 7]  # not the program map
        assert len({t.tobytes() for t in tables}) == len(tables)  # none uploaded twice
        print("UPLOADS", len(tables), [float(t.view(np.float64)[5]) for t in tables])
    """, interpret=True)
    uploads = out.split("UPLOADS ")[1]
    assert uploads.startswith(("2 [0.1, 0.05]", "3 [0.1, 0.1, 0.05]", "3 [0.1, 0.05, 0.05]",
                               "4 [0.1, 0.1, 0.05, 0.05]")), out  # 8 steps


def test_gpu_check_scripts_compile(tmp_path):
    """The GPU check runs only where a GPU is lent: at least keep its scripts
    syntactically valid (Python and bash) between those runs."""
    import py_compile
    cuda = Path(__file__).resolve().parents[2] / "plugins" / "cuda"
    for name in ("gpu_check.py", "gpu_mlp_vs_torch.py", "gpu_smoke.py"):
        py_compile.compile(str(cuda / name), doraise=True, cfile=str(tmp_path / "x.pyc"))
    r = subprocess.run(["bash", "-n", str(cuda / "gpu_check.sh")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr


def _calls_into_mxcore(path: Path) -> list:
    """Attribute reads and calls of ``path`` on names it imports from mxcore,
    mxcore_cuda or hal that do not exist or whose arguments do not bind to the
    callee's signature (the script may only run on a lent GPU)."""
    import ast
    import importlib
    import inspect
    tree = ast.parse(path.read_text())
    ours = ("mxcore", "mxcore_cuda", "hal")
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ours:
            for a in node.names:
                try:
                    names[a.asname or a.name] = importlib.import_module(f"{node.module}.{a.name}")
                except ImportError:
                    names[a.asname or a.name] = getattr(importlib.import_module(node.module),
                                                        a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in ours:
                    names[a.asname or a.name.split(".")[0]] = importlib.import_module(
                        a.name if a.asname else a.name.split(".")[0])
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in names and not hasattr(names[node.value.id], node.attr):
            problems.append(f"{path.name}:{node.lineno}: no {node.value.id}.{node.attr}")
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id in names):
            continue
        fn = getattr(names[node.func.value.id], node.func.attr, None)
        if fn is None or any(isinstance(a, ast.Starred) for a in node.args) \
                or any(k.arg is None for k in node.keywords):
            continue
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            continue
        try:
            sig.bind(*node.args, **{k.arg: None for k in node.keywords})
        except TypeError as exc:
            problems.append(f"{path.name}:{node.lineno}: {node.func.value.id}."
                            f"{node.func.attr}(): {exc}")
    return problems


def test_gpu_scripts_call_what_mxcore_has(tmp_path):
    """The GPU check's calls into mxcore/mxcore_cuda name attributes that exist and
    pass arguments their signatures take (a renamed or re-signed helper would
    otherwise fail only on the next lent GPU).  The checker itself catches a call
    with a missing argument."""
    cuda = ROOT / "plugins" / "cuda"
    for name in ("gpu_check.py", "gpu_mlp_vs_torch.py", "gpu_smoke.py"):
        assert _calls_into_mxcore(cuda / name) == []
    bad = tmp_path / "bad.py"
    bad.write_text("from mxcore_cuda.triton import matmul as tm\n"
                   "tm.best_config(tm._matmul_kernel)\ntm.no_such_helper\n")
    problems = _calls_into_mxcore(bad)
    assert len(problems) == 2 and "width" in problems[0] and "no_such_helper" in problems[1]


def test_gpu_smoke_script_passes_on_the_interpreted_device():
    """The GPU check's smoke script, as gpu_check.py runs it (size threshold off), on
    the interpreted device: its calls and expectations stay in step with the plugin."""
    env = {**_env(True), "MXCORE_CUDA_TRITON_MIN_ELEMENTS": "1"}
    script = ROOT / "plugins" / "cuda" / "gpu_smoke.py"
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=300, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.rstrip().endswith("SMOKE OK"), r.stdout[-2000:]


def test_gpu_count_and_memory_through_mxnets_names():
    out = _python("""
        import mxcore as mx
        assert mx.context.num_gpus() == 1 and mx.context.gpu(0) == mx.gpu(0)
        free, total = mx.context.gpu_memory_info(0)
        assert 0 < free <= total, (free, total)
        # MXNet's other spellings of the same questions
        assert mx.util.get_gpu_count() == 1 and list(mx.test_utils.list_gpus()) == [0]
        assert mx.util.get_gpu_memory(0)[1] == total
        ctx = mx.gpu() if mx.test_utils.list_gpus() else mx.cpu()
        with ctx:
            assert mx.nd.ones((2,)).context == mx.gpu(0)
        print("OK")
    """, interpret=True)
    assert out.strip().endswith("OK")
    out = _python("""
        import mxcore as mx
        from hal import DeviceUnavailableError
        assert mx.util.get_gpu_count() == 0 and list(mx.test_utils.list_gpus()) == []
        try:
            mx.util.get_gpu_memory(0)
        except DeviceUnavailableError as exc:
            print("ERR", exc)
    """)
    assert "ERR device cuda:0 is unavailable" in out, out


@pytest.mark.skipif(not (ROOT / "data" / "mnist" / "train-images-idx3-ubyte.gz").exists(),
                    reason="data/mnist is missing")
def test_main_job_trains_on_the_interpreted_cuda_device(tmp_path):
    """``mxcore train mnist --device cuda``: ten steps on the interpreted device learn,
    and its profile shows the Triton kernels serving the step."""
    out = tmp_path / "run"
    r = _run([sys.executable, "-m", "mxcore.cli", "train", "mnist", "--device", "cuda",
              "--epochs", "1", "--limit", "640", "--data-root", str(ROOT / "data" / "mnist"),
              "--output", str(out), "--no-progress", "--profile", "2"], interpret=True)
    assert r.returncode == 0, r.stderr
    assert "on cuda(0)" in r.stdout, r.stdout
    history = json.loads((out / "history.json").read_text())["history"]
    assert history["test_acc"][0] > 0.5  # chance is 0.1
    trace = json.loads((out / "profile.json").read_text())["traceEvents"]
    kernels = {}
    for e in trace:
        if e.get("cat") == "operator" and e["args"]["device"] == "cuda":
            kernels.setdefault(e["args"]["op"], set()).add(e["args"]["kernel"])
    # the output layer's Dense (the first layer's 784 x 256 weight is over the
    # interpreter's size limit, so the fallback serves it)
    assert "mxcore-cuda:triton.matmul.fully_connected" in kernels["fully_connected"], kernels
    for op in ("softmax_ce_loss", "softmax_ce_loss_grad"):
        assert kernels[op] == {f"mxcore-cuda:triton.softmax.{op}"}, (op, kernels.get(op))
