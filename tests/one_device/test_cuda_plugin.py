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
        assert mx.num_gpus() == 0
        assert all(d.kind == "cpu" for d in mx.available_devices())
        # the CPU is unaffected, and loading the plugin imported no Triton
        x = mx.nd.array(np.arange(6.0).reshape(2, 3))
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
def test_interpreted_explain_names_the_triton_kernel():
    out = _cli("kernels", "explain", "exp", "--device", "cuda", "--dtype", "float32",
               "--shape", "8", interpret=True)
    assert "winner: mxcore-cuda:triton.elementwise.exp" in out, out
    assert "mxcore-cuda:numpy.elemwise.exp" in out  # the fallback, ranked below
    devices = json.loads(_cli("devices", "--json", interpret=True))
    assert devices["cuda"]["status"] == "available"
    assert "numpy, not cupy" in _cli("plugins", interpret=True)


def test_interpreted_triton_kernels_run_and_match_numpy():
    """Every Triton kernel wins resolution for a call its guard accepts, runs
    (launch counter), and agrees with the CPU device; calls the guards decline
    run the numpy fallback.  Covers broadcasting and scalar elementwise forms,
    comparisons, reductions, layer norm, batched products and random sampling."""
    out = _python("""
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

        for dtype, tol in (("float32", 2e-5), ("float64", 1e-12), ("float16", 2e-3)):
            pos = rng.uniform(0.5, 2.0, (3, 5))
            x = rng.uniform(-2, 2, (3, 5))
            y = rng.uniform(-2, 2, (3, 5))
            for name in ("exp", "tanh", "sigmoid", "relu", "negative", "sin", "cos", "abs",
                         "square", "floor", "ceil"):
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

        for dtype, tol in (("float32", 1e-4), ("float16", 2e-2)):
            a, b = rng.normal(size=(64, 48)), rng.normal(size=(48, 32))
            (ga, ca), (gb, cb) = both(a, dtype), both(b, dtype)
            close(mx.nd.matmul(ga, gb), mx.nd.matmul(ca, cb), tol)
            close(mx.nd.dot(ga, gb), mx.nd.dot(ca, cb), tol)
            # transposes are declined by the guard: the numpy fallback serves them
            close(mx.nd.dot(ga, ga, transpose_b=True), mx.nd.dot(ca, ca, transpose_b=True), tol)
            assert winner("dot", ((64, 48), (64, 48)), dtype,
                          {"transpose_a": False, "transpose_b": True}).startswith("numpy.")

        for dtype, tol in (("float32", 2e-5), ("float64", 1e-12)):
            w0, g0 = rng.normal(size=(5, 7)), 3 * rng.normal(size=(5, 7))
            for op, nstates, attrs in (
                    ("sgd_update", 0, dict(lr=0.1, wd=0.05, rescale_grad=0.5, clip_gradient=1.0)),
                    ("sgd_mom_update", 1, dict(lr=0.1, momentum=0.9, wd=0.05, rescale_grad=0.5)),
                    ("adam_update", 2, dict(lr=0.01, beta1=0.8, beta2=0.99, epsilon=1e-6,
                                            wd=0.05, rescale_grad=0.5, clip_gradient=0.7))):
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
            ws = [both(rng.normal(size=s), dtype) for s in ((3, 4), (4,))]
            gr = [both(rng.normal(size=s), dtype) for s in ((3, 4), (4,))]
            ms = [both(np.zeros(s), dtype) for s in ((3, 4), (4,))]
            for k in (0, 1):
                args = [a for i in range(2) for a in (ws[i][k], gr[i][k], ms[i][k])]
                mx.nd.multi_sgd_mom_update(*args, lrs=[0.1, 0.2], wds=[0.0, 0.01],
                                           momentum=0.9, num_weights=2)
                args = [a for i in range(2) for a in (ws[i][k], gr[i][k])]
                mx.nd.multi_sgd_update(*args, lrs=[0.1, 0.2], wds=[0.0, 0.01], num_weights=2)
            for (gw, cw), (gm, cm) in zip(ws, ms):
                close(gw, cw, tol)
                close(gm, cm, tol)

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

        # reductions over trailing axes (all: rows == 1, two stages for long rows)
        for dtype, tol in (("float32", 1e-5), ("float16", 2e-3), ("float64", 1e-12)):
            g, c = both(rng.uniform(-2, 2, (3, 4, 5)), dtype)
            for ax in (None, (2,), (1, 2)):
                for kd in (False, True):
                    for name in ("sum", "mean", "max", "min"):
                        r, e = (getattr(mx.nd, name)(v, axis=ax, keepdims=kd) for v in (g, c))
                        assert r.shape == e.shape
                        close(r, e, tol * 10)
            g, c = both(rng.uniform(-1, 1, (2, 5000)), dtype)
            for name in ("sum", "mean", "max", "min"):
                close(getattr(mx.nd, name)(g), getattr(mx.nd, name)(c), tol * 100)
            assert winner("sum", ((3, 4),), dtype, {"axis": (0,), "keepdims": False}) \
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

        missing = []
        for op, module, factory, args, dtypes, guard in specs():
            tag = f"{module}.{args[0] if args else factory}"
            if module == "optimizer" and factory.startswith("multi_"):
                tag = f"optimizer.{factory[len('multi_'):]}"
            if LAUNCHES[tag] == 0:
                missing.append(op)
        assert not missing, f"Triton kernels that never ran: {missing}"
        print("LAUNCHES", sum(LAUNCHES.values()))
    """, interpret=True)
    assert "LAUNCHES" in out


def test_gpu_guards_send_small_calls_to_the_cupy_fallback():
    """On the real device (guards only: no GPU needed to evaluate them), launch-bound
    Triton kernels take arrays of at least MXCORE_CUDA_TRITON_MIN_ELEMENTS elements."""
    code = """
        from mxcore.plugins import registry
        from mxcore_cuda.triton._runtime import MIN_ELEMENTS
        reg = registry()

        def winner(op, shapes, attrs, dtype="float32"):
            return reg.resolve(op, "cuda", dtype, shapes, (dtype,) * len(shapes), attrs).name
        print("MIN", MIN_ELEMENTS)
        for op, small, big, attrs in (
                ("add", ((10, 10), (10,)), ((512, 256), (256,)), {}),
                ("exp", ((10, 10),), ((512, 256),), {}),
                ("mul_scalar", ((10, 10),), ((512, 256),), {"scalar": 2.0}),
                ("sum", ((10, 10),), ((512, 256),), {"axis": (1,), "keepdims": False}),
                ("softmax", ((10, 10),), ((512, 256),), {"axis": 1, "temperature": None}),
                ("layer_norm", ((10, 10), (10,), (10,)), ((512, 256), (256,), (256,)),
                 {"axis": 1, "eps": 1e-5}),
                ("matmul", ((64, 64), (64, 64)), ((512, 256), (256, 256)), {})):
            print(op, winner(op, small, attrs), winner(op, big, attrs))
        print("random", winner("random_uniform", (), {"shape": (10,), "low": 0.0, "high": 1.0,
                                                      "dtype": "float32"}))
    """
    out = _python(code)
    assert "MIN 65536" in out
    for line in out.splitlines()[1:-1]:
        op, small, big = line.split()
        assert small.startswith("cupy."), line
        assert big.startswith("triton."), line
    assert out.splitlines()[-1].split()[1].startswith("cupy.")
    env_out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                             text=True, env={**_env(False),
                                             "MXCORE_CUDA_TRITON_MIN_ELEMENTS": "1"}, cwd=ROOT)
    assert env_out.returncode == 0, env_out.stderr
    assert all(ln.split()[1].startswith("triton.") for ln in env_out.stdout.splitlines()[1:])


def test_interpreted_device_passes_the_every_device_suite():
    """tests/every_device on the interpreted cuda:0 (Triton kernels interpreted,
    the rest numpy fallbacks)."""
    r = _run([sys.executable, "-m", "pytest", "-q", "-x", "tests/every_device", "-k", "cuda",
              "-p", "no:cacheprovider"], interpret=True, timeout=600)
    tail = "\n".join(r.stdout.splitlines()[-15:])
    assert r.returncode == 0, tail
    m = re.search(r"(\d+) passed", tail)
    assert m and int(m.group(1)) > 1000, tail
    assert "failed" not in tail, tail
