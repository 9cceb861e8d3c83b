"""``mxcore new-plugin``: the scaffolded package pip-installs, passes its own tests, and
its operator works through mx.nd, autograd, a Gluon block and ``mxcore kernels
explain``; with ``--device`` its device kind appears too."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mxcore.base import MXCoreError
from mxcore.scaffold import new_plugin

PY = sys.executable


def _install(src, target):
    proc = subprocess.run([PY, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--no-build-isolation", "--no-index", "--no-cache-dir",
                           "--disable-pip-version-check", "--target", str(target), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _env(target):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(target), env.get("PYTHONPATH")) if p)
    return env


@pytest.fixture(scope="module")
def scaffold(tmp_path_factory):
    root = tmp_path_factory.mktemp("scaffold")
    folder = new_plugin("demo_ops", str(root / "src"), device="toydev")
    _install(folder, root / "site")
    return folder, root / "site"


def test_the_scaffold_passes_its_own_tests(scaffold):
    folder, site = scaffold
    r = subprocess.run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        os.path.join(folder, "tests")], capture_output=True, text=True,
                       cwd=folder, env=_env(site), timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    # the kit on 2 devices: forward (3 case-dtypes), gradient, second order, fresh
    # outputs (2 cases each) = 9 per device; then the Gluon block and the error message
    assert "20 passed" in r.stdout, r.stdout
    # --mxcore-device picks the device: the kit's 9 on the plugin's own device only
    r = subprocess.run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA",
                        "--mxcore-device", "toydev", os.path.join(folder, "tests")],
                       capture_output=True, text=True, cwd=folder, env=_env(site), timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "11 passed" in r.stdout, r.stdout
    kit = [ln for ln in r.stdout.splitlines() if ln.startswith("PASSED") and "TestSquarePlus" in ln]
    assert len(kit) == 9 and all("toydev" in ln for ln in kit), kit


def test_the_scaffolded_op_runs_through_nd_autograd_gluon_and_explain(scaffold):
    _, site = scaffold
    code = ("import mxcore as mx, numpy as np\n"
            "x = mx.nd.array([1.0, -3.0]); x.attach_grad()\n"
            "with mx.autograd.record():\n"
            "    y = mx.nd.demo_ops_square_plus(x, shift=0.5)\n"
            "y.backward()\n"
            "print(y.asnumpy().tolist(), x.grad.asnumpy().tolist())\n"
            "z = mx.nd.demo_ops_square_plus(mx.nd.ones((2,), ctx=mx.device('toydev')))\n"
            "print(z.context, z.asnumpy().tolist())\n")
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=_env(site),
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.splitlines() == ["[1.5, 9.5] [2.0, -6.0]", "toydev:0 [2.0, 2.0]"]
    r = subprocess.run([PY, "-m", "mxcore", "kernels", "explain", "demo_ops_square_plus",
                        "--device", "toydev", "--dtype", "float32", "--shape", "2,3"],
                       capture_output=True, text=True, env=_env(site), timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "mxcore-demo-ops" in r.stdout and "square_plus" in r.stdout


def test_bad_names_and_existing_folders_are_refused(tmp_path):
    with pytest.raises(MXCoreError, match="lower-case Python identifier"):
        new_plugin("Bad-Name", str(tmp_path / "a"))
    with pytest.raises(MXCoreError, match="--device must be"):
        new_plugin("ok", str(tmp_path / "b"), device="GPU!")
    (tmp_path / "c").mkdir()
    with pytest.raises(MXCoreError, match="already exists"):
        new_plugin("ok", str(tmp_path / "c"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
