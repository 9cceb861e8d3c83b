"""The example plugins of examples/plugins/, installed as a user installs them.

A module-scoped fixture copies both packages to a temp folder (setuptools writes
build/ and *.egg-info next to the sources it builds; the repository must stay clean)
and pip-installs each into a target folder of its own (no deps, no build isolation,
no index).  Every check runs mxcore in a fresh subprocess with those folders on
PYTHONPATH, so the plugins are found through their entry points (command-line checks
that share an environment run in one subprocess through ``mxcore.cli.main``):

* mxcore-example-ops (entry point ``example_ops``): squared_difference, logsumexp
  and huber, with numpy kernels on ``cpu`` (one guarded);
* mxcore-example-device (entry point ``hostsim``): the ``hostsim`` device kind,
  native add/multiply kernels, the CPU's kernels for everything else.

The last test holds docs/writing-plugins.md to its promise: its code is taken from
the examples (or from this file, which runs it).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

PY = sys.executable
TIMEOUT = 120
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "plugins"
#: key -> (source folder, distribution, entry-point name)
PACKAGES = {"ops": (EXAMPLES / "op_plugin", "mxcore-example-ops", "example_ops"),
            "device": (EXAMPLES / "device_plugin", "mxcore-example-device", "hostsim")}
#: what building a distribution leaves beside its sources
BUILD_LITTER = ("build", "dist", "*.egg-info")
#: variables that change which plugins load, how kernels resolve or the device's state
PLUGIN_ENV = ("MXCORE_PLUGINS", "MXCORE_NO_THIRD_PARTY", "MXCORE_TRACE_PLUGINS",
              "MXCORE_REGISTRY", "MXCORE_DEVICE", "MXCORE_AUTOTUNE", "MXCORE_HOSTSIM_DISABLE")


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> list:
    """Both example packages, pip-installed: their target folders."""
    root = tmp_path_factory.mktemp("example_plugins")
    procs, targets = {}, []
    for key, (source, _, _) in PACKAGES.items():
        copy = root / "src" / key
        shutil.copytree(source, copy,
                        ignore=shutil.ignore_patterns(*BUILD_LITTER, "__pycache__"))
        target = root / "site" / key
        targets.append(target)
        procs[key] = subprocess.Popen(
            [PY, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
             "--no-index", "--no-cache-dir", "--disable-pip-version-check",
             "--target", str(target), str(copy)],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for key, proc in procs.items():
        log, _ = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, f"pip install of the {key} example failed:\n{log}"
    return targets


def _env(site_dirs, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PLUGIN_ENV}
    paths = [str(p) for p in site_dirs]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def cli(args, site_dirs, cwd, **extra) -> subprocess.Popen:
    """``python -m mxcore.cli ARGS``, started; ``finish`` waits for its output."""
    return subprocess.Popen([PY, "-m", "mxcore.cli", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(site_dirs, **extra))


def finish(proc: subprocess.Popen) -> str:
    stdout, stderr = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, f"{' '.join(proc.args)} failed:\n{stdout}\n{stderr}"
    return stdout


#: runs the command line's ``main`` once per argument list in one interpreter (each
#: fresh interpreter costs more than the commands themselves)
CLI_BATCH = """
import contextlib, io, json, sys
from mxcore.cli import main
outs = []
for args in json.loads(sys.argv[1]):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(args)
    assert code == 0, (args, code, buf.getvalue())
    outs.append(buf.getvalue())
print(json.dumps(outs))
"""


def cli_batch(calls, site_dirs, cwd, **extra) -> subprocess.Popen:
    """``mxcore ARGS`` for each argument list of ``calls``, in one subprocess (started;
    ``finish_batch`` returns the outputs)."""
    return subprocess.Popen([PY, "-c", CLI_BATCH, json.dumps(calls)], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(site_dirs, **extra))


def finish_batch(proc: subprocess.Popen) -> list:
    return json.loads(finish(proc).strip().splitlines()[-1])


def py(code: str, site_dirs, cwd, **extra):
    """Run ``code`` in a fresh interpreter; its last line of output is JSON."""
    proc = subprocess.run([PY, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True,
                          text=True, timeout=TIMEOUT, env=_env(site_dirs, **extra))
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def winner(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith("winner:")]
    assert len(lines) == 1, text
    return lines[0]


def explain_args(op, shapes, device="cpu") -> list:
    args = ["kernels", "explain", op, "--device", device, "--dtype", "float32"]
    for shape in shapes:
        args += ["--shape", shape]
    return args


#: command -> arguments, run together by the ``commands`` fixture
COMMANDS = {
    "devices": ["devices", "--json"],
    "same_shapes": explain_args("squared_difference", ["4,5", "4,5"]),
    "broadcast": explain_args("squared_difference", ["4,5", "5"]),
    "add_hostsim": explain_args("add", ["2,3", "2,3"], device="hostsim"),
    "exp_hostsim": explain_args("exp", ["2,3"], device="hostsim"),
}


@pytest.fixture(scope="module")
def commands(sites, tmp_path_factory) -> dict:
    """Outputs of ``mxcore plugins --json`` (a real command line) and of COMMANDS."""
    cwd = tmp_path_factory.mktemp("commands")
    plugins = cli(["plugins", "--json"], sites, cwd)
    batch = cli_batch(list(COMMANDS.values()), sites, cwd)
    return {"plugins": finish(plugins), **dict(zip(COMMANDS, finish_batch(batch)))}


# --------------------------------------------------------------------------------------
# installation and discovery
# --------------------------------------------------------------------------------------


def test_installing_leaves_the_repository_clean(sites):
    litter = sorted(str(p.relative_to(REPO)) for pattern in BUILD_LITTER
                    for p in EXAMPLES.rglob(pattern))
    assert litter == [], f"building the examples wrote into the repository: {litter}"


def test_both_plugins_are_listed_with_their_counts(commands):
    infos = {p["name"]: p for p in json.loads(commands["plugins"])}
    ops, dev = infos["example_ops"], infos["hostsim"]
    for info, (_, dist, _) in ((ops, PACKAGES["ops"]), (dev, PACKAGES["device"])):
        assert info["error"] is None and info["skipped"] is None, info
        assert info["builtin"] is False and info["distribution"] == dist
        assert info["version"] == "0.1.0"
    assert ops["module"] == "mxcore_example_ops.plugin"
    assert ops["hooks"] == ["register_kernels", "register_ops"]
    assert (ops["ops"], ops["kernels"], ops["devices"]) == (3, 4, [])
    assert dev["module"] == "mxcore_example_device.plugin"
    assert dev["hooks"] == ["register_devices", "register_kernels"]
    assert (dev["ops"], dev["kernels"], dev["devices"]) == (0, 2, ["hostsim"])
    assert infos["core"]["error"] is None and infos["cpu"]["error"] is None
    assert json.loads(commands["devices"])["hostsim"] == {
        "status": "available", "provider": "mxcore-example-device"}


def test_an_unavailable_device_says_why(sites, tmp_path):
    got = py("""
        import json
        import mxcore as mx
        from mxcore.device import device_status
        try:
            mx.device("hostsim")
            error = None
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"status": device_status()["hostsim"], "error": error}))
    """, sites, tmp_path, MXCORE_HOSTSIM_DISABLE=1)
    assert got["status"] == "unavailable: disabled by MXCORE_HOSTSIM_DISABLE"
    assert got["error"] == ("DeviceUnavailableError: device hostsim:0 is unavailable: "
                            "disabled by MXCORE_HOSTSIM_DISABLE"), got


def test_without_third_party_plugins_the_ops_say_so(sites, tmp_path):
    got = py("""
        import json
        import mxcore as mx
        import mxcore_example_ops as ex
        from mxcore.plugins import system
        try:
            ex.squared_difference(mx.nd.ones((2,)), mx.nd.ones((2,)))
            error = None
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"error": error, "skipped": {n: system().plugins[n].skipped
                                                      for n in ("example_ops", "hostsim")}}))
    """, sites, tmp_path, MXCORE_NO_THIRD_PARTY=1)
    reason = "third-party plugins disabled by MXCORE_NO_THIRD_PARTY"
    assert got["skipped"] == {"example_ops": reason, "hostsim": reason}
    assert got["error"].startswith("UnknownOperatorError: unknown operator 'squared_difference'")


# --------------------------------------------------------------------------------------
# the operator plugin
# --------------------------------------------------------------------------------------

OP_PROBE = """
import json
import numpy as np
import mxcore as mx
import mxcore_example_ops as ex

rng = np.random.default_rng(7)
out = {"forward": [], "errors": {}, "grad": {}, "grad2": {}}

# forward, in every float dtype, through the package's functions and mx.nd
X = rng.normal(size=(3, 4)) * 3.0
Y = rng.normal(size=(4,))
BIG = np.array([[1000.0, 1000.0, -1000.0], [-np.inf, 0.0, -np.inf]])
for dtype in ("float16", "bfloat16", "float32", "float64"):
    x = mx.nd.array(X, dtype=dtype)
    y = mx.nd.array(Y, dtype=dtype)
    calls = {
        "squared_difference": (ex.squared_difference(x, y), (x, y), {}),
        "squared_difference_same": (mx.nd.squared_difference(x, x * 0.5), (x, x * 0.5), {}),
        "logsumexp": (ex.logsumexp(x), (x,), {"axis": -1, "keepdims": False}),
        "logsumexp_axis0": (mx.nd.logsumexp(x, axis=0, keepdims=True), (x,),
                            {"axis": 0, "keepdims": True}),
        "huber": (ex.huber(x, 1.5), (x,), {"delta": 1.5}),
    }
    if dtype in ("float32", "float64"):
        big = mx.nd.array(BIG, dtype=dtype)
        calls["logsumexp_big"] = (ex.logsumexp(big, axis=1), (big,), {"axis": 1,
                                                                     "keepdims": False})
    for name, (r, args, attrs) in calls.items():
        out["forward"].append({
            "name": name, "dtype": dtype, "out_dtype": str(r.dtype), "shape": list(r.shape),
            "inputs": [a.asnumpy().astype(np.float64).tolist() for a in args],
            "attrs": attrs, "value": r.asnumpy().astype(np.float64).tolist()})

# errors: the rule's message, naming the op and the input shapes
a32 = mx.nd.ones((2, 3))
bad = {
    "no_broadcast": lambda: ex.squared_difference(a32, mx.nd.ones((4,))),
    "no_broadcast_nd": lambda: mx.nd.squared_difference(a32, mx.nd.ones((4,))),
    "mixed_dtypes": lambda: ex.squared_difference(a32, mx.nd.ones((3,), dtype="float64")),
    "axis": lambda: ex.logsumexp(a32, axis=2),
    "empty_axis": lambda: mx.nd.logsumexp(mx.nd.ones((2, 0)), axis=1),
    "int_input": lambda: ex.logsumexp(mx.nd.ones((2, 3), dtype="int32")),
    "unknown_attr": lambda: mx.nd.logsumexp(a32, keepdim=True),
    "missing_delta": lambda: mx.nd.huber(a32),
    "negative_delta": lambda: ex.huber(a32, -1.0),
    "arity": lambda: mx.nd.squared_difference(a32),
}
for name, call in bad.items():
    try:
        call()
        out["errors"][name] = None
    except Exception as exc:
        out["errors"][name] = [type(exc).__name__, isinstance(exc, mx.MXCoreError), str(exc)]


def arr(v):
    return mx.nd.array(v, dtype="float64")


def forward(fn, xs, head):
    return float((fn(*[arr(x) for x in xs]).asnumpy() * head).sum())


def grads(fn, xs, head):
    vs = [arr(x) for x in xs]
    for v in vs:
        v.attach_grad()
    with mx.autograd.record():
        loss = (fn(*vs) * arr(head)).sum()
    loss.backward()
    return [v.grad.asnumpy() for v in vs]


def fd(scalar, xs, i, eps=1e-6):
    g = np.zeros_like(xs[i])
    for k in np.ndindex(xs[i].shape):
        hi = [x.copy() for x in xs]
        lo = [x.copy() for x in xs]
        hi[i][k] += eps
        lo[i][k] -= eps
        g[k] = (scalar(hi) - scalar(lo)) / (2 * eps)
    return g


def second(fn, x, head, w):
    v = arr(x)
    v.attach_grad()
    with mx.autograd.record():
        g = mx.autograd.grad((fn(v) * arr(head)).sum(), [v], create_graph=True)[0]
        z = (g * arr(w)).sum()
    z.backward()
    return v.grad.asnumpy()


X4 = rng.normal(size=(3, 4))
HUBER_X = np.array([[-2.5, -1.2, -0.7, -0.1], [0.3, 0.8, 1.3, 2.2], [-0.4, 0.05, 1.9, -3.0]])
cases = {
    "squared_difference": (ex.squared_difference, [X4, rng.normal(size=(4,))]),
    "squared_difference_col": (ex.squared_difference, [rng.normal(size=(3, 1)), X4]),
    "logsumexp": (ex.logsumexp, [X4]),
    "logsumexp_axis0_keepdims": (lambda x: ex.logsumexp(x, axis=0, keepdims=True), [X4]),
    "huber": (lambda x: ex.huber(x, 1.0), [HUBER_X]),
}
for name, (fn, xs) in cases.items():
    head = rng.normal(size=fn(*[arr(x) for x in xs]).shape)
    analytic = grads(fn, xs, head)
    numeric = [fd(lambda v: forward(fn, v, head), xs, i) for i in range(len(xs))]
    out["grad"][name] = [[a.tolist(), n.tolist()] for a, n in zip(analytic, numeric)]
    if name != "squared_difference_col":  # second order, in the first input
        w = rng.normal(size=xs[0].shape)
        rest = [arr(x) for x in xs[1:]]

        def of_first(v):
            return fn(v, *rest)

        def first_order(v):  # <w, gradient> by first-order autograd
            return float((grads(of_first, [v[0]], head)[0] * w).sum())
        out["grad2"][name] = [second(of_first, xs[0], head, w).tolist(),
                              fd(first_order, [xs[0]], 0).tolist()]

print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def op_probe(sites, tmp_path_factory):
    return py(OP_PROBE, sites, tmp_path_factory.mktemp("op_probe"))


def _logsumexp(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis)


def _huber(x, delta):
    a = np.abs(x)
    return np.where(a <= delta, 0.5 * x * x, delta * (a - 0.5 * delta))


REFERENCES = {
    "squared_difference": lambda a, b: (a - b) ** 2,
    "squared_difference_same": lambda a, b: (a - b) ** 2,
    "logsumexp": _logsumexp, "logsumexp_axis0": _logsumexp, "logsumexp_big": _logsumexp,
    "huber": _huber,
}
#: (rtol, atol) per dtype, as the op table's
TOLERANCES = {"float16": (1e-2, 2e-3), "bfloat16": (2e-2, 1e-2), "float32": (2e-5, 1e-6),
              "float64": (1e-10, 1e-12)}


def test_ops_match_numpy_in_every_float_dtype(op_probe):
    assert len(op_probe["forward"]) == 4 * 5 + 2
    for row in op_probe["forward"]:
        inputs = [np.array(a) for a in row["inputs"]]
        ref = np.asarray(REFERENCES[row["name"]](*inputs, **row["attrs"]))
        assert row["out_dtype"] == row["dtype"], row
        assert tuple(row["shape"]) == ref.shape, row
        rtol, atol = TOLERANCES[row["dtype"]]
        np.testing.assert_allclose(np.array(row["value"]), ref, rtol=rtol, atol=atol,
                                   err_msg=f"{row['name']} in {row['dtype']}")
    big = [r for r in op_probe["forward"] if r["name"] == "logsumexp_big"]
    assert big[0]["value"] == [pytest.approx(1000 + np.log(2)), 0.0]  # no overflow


def test_bad_input_gets_the_rules_message(op_probe):
    e = op_probe["errors"]
    assert all(v is not None and v[1] for v in e.values()), e  # all MXCoreError
    expected = {
        "no_broadcast": "operator 'squared_difference': shapes (2, 3) and (4,) do not broadcast "
                        "[inputs: (2, 3) float32, (4,) float32] on cpu(0)",
        "no_broadcast_nd": "operator 'squared_difference': shapes (2, 3) and (4,) do not "
                           "broadcast [inputs: (2, 3) float32, (4,) float32] on cpu(0)",
        "mixed_dtypes": "operator 'squared_difference': dtypes float32, float64 differ "
                        "[inputs: (2, 3) float32, (3,) float64] on cpu(0)",
        "axis": "operator 'logsumexp': axis 2 is out of range for 2-d input "
                "[inputs: (2, 3) float32] on cpu(0)",
        "empty_axis": "operator 'logsumexp': cannot reduce axis 1 of shape (2, 0): it is empty "
                      "[inputs: (2, 0) float32] on cpu(0)",
        "int_input": "operator 'logsumexp': needs a floating-point input, got int32 "
                     "[inputs: (2, 3) int32] on cpu(0)",
        "negative_delta": "operator 'huber': delta must be a positive number, got -1.0 "
                          "[inputs: (2, 3) float32] on cpu(0)",
    }
    for name, message in expected.items():
        assert e[name][0] == "OperatorError" and e[name][2] == message, (name, e[name])
    assert e["unknown_attr"][2] == ("operator 'logsumexp': unknown attribute(s) ['keepdim']; "
                                    "it takes ['axis', 'keepdims']")
    assert e["missing_delta"][2] == "operator 'huber': missing required attribute 'delta'"
    assert e["arity"][2].startswith("operator 'squared_difference': takes 2 input array(s), "
                                    "got 1")


@pytest.mark.parametrize("name", ["squared_difference", "squared_difference_col", "logsumexp",
                                  "logsumexp_axis0_keepdims", "huber"])
def test_gradients_match_finite_differences(op_probe, name):
    for i, (analytic, numeric) in enumerate(op_probe["grad"][name]):
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7,
                                   err_msg=f"{name}: gradient of input {i}")


@pytest.mark.parametrize("name", ["squared_difference", "logsumexp",
                                  "logsumexp_axis0_keepdims", "huber"])
def test_second_order_gradients_match_finite_differences(op_probe, name):
    analytic, numeric = op_probe["grad2"][name]
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6, err_msg=name)


def test_the_op_plugins_conformance_suite_passes_on_each_device(sites, tmp_path):
    """examples/plugins/op_plugin/tests (the conformance kit, as the guide shows it) on
    the CPU and on the example device, chosen with --mxcore-device."""
    tests = PACKAGES["ops"][0] / "tests"
    r = subprocess.run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA",
                        "--mxcore-device", "cpu,hostsim", str(tests)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300,
                       env=_env(sites, PYTHONDONTWRITEBYTECODE=1))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    passed = [ln for ln in r.stdout.splitlines() if ln.startswith("PASSED")]
    # per device: forward 6, gradient 3, second order 2, fresh outputs 3
    assert len(passed) == 28, r.stdout[-3000:]
    assert sum("hostsim" in ln for ln in passed) == 14


def test_the_guarded_kernel_wins_only_where_its_guard_applies(commands):
    same, broadcast = commands["same_shapes"], commands["broadcast"]
    assert winner(same) == ("winner: mxcore-example-ops:squared_difference_same_shape because "
                            "it has the highest priority (10 > 0)"), same
    line = [ln for ln in broadcast.splitlines() if "squared_difference_same_shape" in ln]
    assert line and "REJECTED: guard declined" in line[0], broadcast
    assert winner(broadcast) == ("winner: mxcore-example-ops:squared_difference because it is "
                                 "the only kernel that accepts this call"), broadcast


# --------------------------------------------------------------------------------------
# the device plugin
# --------------------------------------------------------------------------------------

DEVICE_PROBE = """
import gc
import json
import numpy as np
import mxcore as mx
import mxcore_example_ops as ex
from mxcore.device import device_type

dev = mx.device("hostsim")
dt = device_type(dev)
out = {}


def live():
    mx.nd.waitall()  # (an asynchronous engine runs kernels later)
    return dt.memory_stats(0)["live_bytes"]


# which kernel serves each call, as the profiler records it
mx.profiler.set_config(filename="trace.json")
mx.profiler.set_state("run")
a_host = np.arange(12, dtype=np.float32).reshape(3, 4)
a = mx.nd.array(a_host, ctx=dev)
b = mx.nd.array(a_host[0] + 1, ctx=dev)
results = {"add": a + b, "multiply": a * b, "exp": mx.nd.exp(a * 0.1),
           "sum": mx.nd.sum(a, axis=1), "ones": mx.nd.ones((2, 2), ctx=dev),
           "logsumexp": mx.nd.logsumexp(a, axis=1), "huber": ex.huber(a - 5, 2.0),
           "squared_difference": ex.squared_difference(a, b)}
mx.profiler.set_state("stop")
mx.profiler.dump()
events = json.load(open("trace.json"))
events = events["traceEvents"] if isinstance(events, dict) else events
out["kernels"] = sorted({(e["args"]["op"], e["args"]["kernel"]) for e in events
                         if "kernel" in e.get("args", {})})
out["contexts"] = sorted({str(r.context) for r in results.values()})
out["values"] = {k: r.asnumpy().tolist() for k, r in results.items()}
out["launches"] = dt.properties(0)["native_launches"]

# gradients on hostsim equal the CPU's (the rules run in mxcore ops, via the fallback)
grads = {}
for ctx in (dev, mx.cpu()):
    x = mx.nd.array(a_host / 10, ctx=ctx)
    y = mx.nd.array(a_host[:1] / 7, ctx=ctx)
    x.attach_grad()
    y.attach_grad()
    with mx.autograd.record():
        loss = (ex.logsumexp(x) * 2 + ex.squared_difference(x, y).sum(axis=1)).sum()
    loss.backward()
    grads[str(ctx)] = [x.grad.asnumpy().tolist(), y.grad.asnumpy().tolist(), str(x.grad.context)]
out["grads"] = grads

# memory accounting: buffers counted once while they live
del results, a, b, x, y, loss
gc.collect()
steps = {"start": live()}
h = mx.nd.array(np.ones(256, np.float32), ctx=dev)           # from_host: 1 KiB
steps["array"] = live()
s = h + h                                                    # a native kernel's output
steps["add"] = live()
v = s.reshape((16, 16))                                      # a view: no new buffer
steps["view"] = live()
t = mx.nd.sum(s)                                             # a scalar from the CPU kernel
steps["sum"] = live()
e = mx.nd.empty((8,), ctx=dev)                               # allocate
steps["empty"] = live()
stats = dt.memory_stats(0)
del h, s, v, t, e
gc.collect()
steps["end"] = live()
out["steps"] = steps
out["stats"] = stats
out["total"] = float(mx.nd.sum(mx.nd.ones((4,), ctx=dev)).asscalar())
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def device_probe(sites, tmp_path_factory):
    return py(DEVICE_PROBE, sites, tmp_path_factory.mktemp("device_probe"))


def test_native_kernels_serve_add_and_multiply_the_cpu_the_rest(device_probe):
    kernels = dict(tuple(k) for k in device_probe["kernels"])
    assert kernels["add"] == "mxcore-example-device:hostsim_add"
    assert kernels["multiply"] == "mxcore-example-device:hostsim_multiply"
    assert kernels["exp"] == "mxcore-cpu:elemwise.exp"
    assert kernels["sum"] == "mxcore-cpu:reduce.sum"
    assert kernels["full"] == "mxcore-cpu:creation.full"
    assert kernels["logsumexp"] == "mxcore-example-ops:logsumexp"
    assert kernels["squared_difference"] == "mxcore-example-ops:squared_difference"
    # a * 0.1 is mul_scalar, a CPU kernel: one launch of each native kernel
    assert device_probe["launches"] == {"add": 1, "multiply": 1}
    assert device_probe["contexts"] == ["hostsim:0"]


def test_values_on_the_device_are_right(device_probe):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = a[0] + 1
    v = {k: np.array(x) for k, x in device_probe["values"].items()}
    np.testing.assert_array_equal(v["add"], a + b)
    np.testing.assert_array_equal(v["multiply"], a * b)
    np.testing.assert_allclose(v["exp"], np.exp(a * np.float32(0.1)), rtol=2e-6)
    np.testing.assert_array_equal(v["sum"], a.sum(axis=1))
    np.testing.assert_array_equal(v["ones"], np.ones((2, 2)))
    np.testing.assert_allclose(v["logsumexp"], _logsumexp(a.astype(np.float64), 1, False),
                               rtol=2e-6)
    np.testing.assert_allclose(v["huber"], _huber(a - 5.0, 2.0), rtol=1e-6)
    np.testing.assert_array_equal(v["squared_difference"], (a - b) ** 2)
    assert device_probe["total"] == 4.0


def test_gradients_on_the_device_match_the_cpu(device_probe):
    on_dev, on_cpu = device_probe["grads"]["hostsim:0"], device_probe["grads"]["cpu:0"]
    assert on_dev[2] == "hostsim:0" and on_cpu[2] == "cpu:0"
    np.testing.assert_allclose(on_dev[0], on_cpu[0], rtol=1e-6)
    np.testing.assert_allclose(on_dev[1], on_cpu[1], rtol=1e-6)


def test_memory_stats_go_up_and_down(device_probe):
    s = device_probe["steps"]
    assert s["array"] - s["start"] == 1024
    assert s["add"] - s["array"] == 1024
    assert s["view"] == s["add"]
    assert s["sum"] - s["view"] == 4
    assert s["empty"] - s["sum"] == 32
    assert s["end"] == s["start"]
    stats = device_probe["stats"]
    assert stats["live_bytes"] == s["empty"] and stats["peak_bytes"] >= s["empty"]
    assert stats["live_buffers"] >= 4 and stats["allocations"] >= 4


def test_native_kernels_outrank_fallbacks_in_explain(commands):
    add, exp = commands["add_hostsim"], commands["exp_hostsim"]
    assert "fallback chain: hostsim -> cpu" in add
    assert winner(add) == ("winner: mxcore-example-device:hostsim_add because it is native to "
                           "hostsim (the runner-up is a fallback)"), add
    assert winner(exp) == ("winner: mxcore-cpu:elemwise.exp because it is the only kernel that "
                           "accepts this call"), exp
    assert " via cpu " in [ln for ln in exp.splitlines() if ln.startswith(" * ")][0]


DENY_GUARDED = """\
[ops.squared_difference.cpu]
deny = ["mxcore-example-ops:squared_difference_same_shape"]
"""
NO_FALLBACK = """\
[devices.hostsim]
fallback = []
"""


def test_a_policy_file_denies_kernels_and_overrides_fallbacks(sites, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(DENY_GUARDED + NO_FALLBACK)
    got = py("""
        import contextlib, io, json
        import numpy as np
        import mxcore as mx
        from mxcore.cli import main
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            main(%r)
        x = mx.nd.array(np.ones(3, np.float32), ctx="hostsim")
        out = {"explain": buf.getvalue(), "add": (x + x).asnumpy().tolist()}
        try:
            mx.nd.exp(x)
        except Exception as exc:
            out["exp"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(out))
    """ % (COMMANDS["same_shapes"],), sites, tmp_path, MXCORE_REGISTRY=policy)
    # the guarded kernel, denied by its qualified name, is out even where its guard applies
    line = [ln for ln in got["explain"].splitlines() if "squared_difference_same_shape" in ln]
    assert line and "REJECTED: denied by policy" in line[0], got["explain"]
    assert winner(got["explain"]).startswith("winner: mxcore-example-ops:squared_difference "
                                             "because")
    # hostsim keeps its own kernels and borrows nothing
    assert got["add"] == [2.0, 2.0, 2.0]
    assert got["exp"].startswith("NoKernelError: operator 'exp' has no kernel for device kind "
                                 "'hostsim' (searched: hostsim; kernels exist for: cpu"), got


IN_PROCESS = """
import json
import mxcore as mx
from mxcore.plugins import system
import mxcore_example_device.plugin as hostsim_plugin

info = system().register_plugin(hostsim_plugin, "hostsim")
assert info.error is None and info.devices == ["hostsim"]
y = (mx.nd.ones((2, 3), ctx="hostsim") * 2).sum(axis=1)
print(y.asnumpy(), y.context)
system().unregister_plugin("hostsim")

print(json.dumps(sorted(system().registry.devices)))
"""


def test_a_plugin_registered_in_process(tmp_path):
    """From the sources, not installed: no entry point, registered at run time."""
    proc = subprocess.run([PY, "-c", IN_PROCESS], cwd=tmp_path, capture_output=True, text=True,
                          timeout=TIMEOUT, env=_env([PACKAGES["device"][0]],
                                                    PYTHONDONTWRITEBYTECODE=1))
    assert proc.returncode == 0, proc.stderr
    printed, kinds = proc.stdout.strip().splitlines()
    assert printed == "[6. 6.] hostsim:0"
    assert "hostsim" not in json.loads(kinds)  # unregistered again


# --------------------------------------------------------------------------------------
# the guide
# --------------------------------------------------------------------------------------


def test_the_guides_code_is_taken_from_the_examples():
    """Every python and toml block of docs/writing-plugins.md appears verbatim in the
    example packages or in this file (which runs it)."""
    guide = (REPO / "docs" / "writing-plugins.md").read_text()
    sources = [p.read_text() for p in EXAMPLES.rglob("*")
               if p.suffix in (".py", ".toml") and "egg-info" not in str(p)]
    sources.append(Path(__file__).read_text())
    blocks = re.findall(r"```(python|toml)\n(.*?)```", guide, flags=re.S)
    assert len(blocks) >= 20, "the guide's code blocks were not found"
    for lang, block in blocks:
        assert any(block in text for text in sources), f"not from the examples:\n{block}"
