"""mxcore-arm as a plugin: a built-in, loaded through its entry point; its guards
(host architecture, CPU features, ``MXCORE_ARM_KERNELS``) and what ``mxcore kernels
explain`` says about them; and without onnxruntime, a recorded load error while mxcore
keeps working."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from mxcore_arm import host  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
FC_CALL = ["fully_connected", "--device", "cpu", "--dtype", "float16",
           "--shape", "4,8", "--shape", "5,8", "--shape", "5"]


def _cli(*args, env=None):
    full = dict(os.environ)
    full.pop("MXCORE_ARM_KERNELS", None)  # the outcome must not depend on the caller's
    full.update(env or {})
    return subprocess.run([PY, "-m", "mxcore.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, env=full, timeout=300)


@pytest.fixture
def cpuinfo(tmp_path, monkeypatch):
    """Point the feature look-up at a file of our own."""
    count = iter(range(100))

    def write(features: str):
        path = tmp_path / f"cpuinfo{next(count)}"
        path.write_text(f"processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: {features}\n"
                        f"\nprocessor\t: 1\nFeatures\t: {features}\n")
        monkeypatch.setattr(host, "CPUINFO", str(path))
        monkeypatch.setattr(host, "hwcap_features", lambda: None)  # a real ARM host's
    return write


def _arm(monkeypatch, machine="aarch64"):
    monkeypatch.setattr(host.platform, "machine", lambda: machine)
    monkeypatch.setattr(host.sys, "platform", "linux")


def test_the_plugin_is_a_loaded_builtin():
    proc = _cli("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    info = {p["name"]: p for p in json.loads(proc.stdout)}["arm"]
    assert info["builtin"] and info["distribution"] == "mxcore-arm"
    assert info["error"] is None and info["kernels"] >= 3
    assert "register_passes" in info["hooks"]


@pytest.mark.parametrize("machine", ["aarch64", "arm64"])
def test_arm_host_with_fp16_passes_in_auto_mode(monkeypatch, cpuinfo, machine):
    monkeypatch.delenv(host.ENV, raising=False)
    _arm(monkeypatch, machine)
    cpuinfo("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimddp")
    assert host.why_not("float16") is None and host.why_not("int8") is None
    assert host.guard("float16")(((2, 2),), ("float16",), {}) is True


def test_arm_host_without_the_feature_declines(monkeypatch, cpuinfo):
    monkeypatch.delenv(host.ENV, raising=False)
    _arm(monkeypatch)
    cpuinfo("fp asimd evtstrm aes pmull sha1 sha2 crc32")  # a Cortex-A72: ARMv8.0
    assert "lacks float16 support" in host.why_not("float16")
    assert "asimddp" in host.why_not("int8")
    with pytest.raises(host.ArmKernelDeclined, match="asimdhp"):
        host.guard("float16")(((2, 2),), ("float16",), {})


def test_x86_declines_unless_forced(monkeypatch):
    _arm(monkeypatch, "x86_64")
    monkeypatch.delenv(host.ENV, raising=False)
    assert "not an ARM host" in host.why_not("float16")
    monkeypatch.setenv(host.ENV, "force")
    assert host.why_not("float16") is None
    monkeypatch.setenv(host.ENV, "off")
    _arm(monkeypatch)
    assert "switched off" in host.why_not("float16")
    monkeypatch.setenv(host.ENV, "sometimes")
    with pytest.raises(host.ArmKernelDeclined, match="MXCORE_ARM_KERNELS='sometimes'"):
        host.why_not("float16")


def test_a_shape_check_declines_with_its_reason(monkeypatch):
    monkeypatch.setenv(host.ENV, "force")
    g = host.guard("float16", lambda shapes, dtypes, attrs: "too small" if shapes[0][0] < 2
                   else None)
    assert g(((4,),), ("float16",), {})
    with pytest.raises(host.ArmKernelDeclined, match="too small"):
        g(((1,),), ("float16",), {})


def test_cpu_features_parses_proc_cpuinfo(tmp_path, monkeypatch):
    monkeypatch.setattr(host.sys, "platform", "linux")
    monkeypatch.setattr(host, "hwcap_features", lambda: None)  # a real ARM host's
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nFeatures\t: fp asimd asimdhp\n\nprocessor\t: 1\n")
    monkeypatch.setattr(host, "CPUINFO", str(path))
    assert host.cpu_features() == frozenset({"fp", "asimd", "asimdhp"})
    monkeypatch.setattr(host, "CPUINFO", str(tmp_path / "missing"))
    assert host.cpu_features() is None
    _arm(monkeypatch)
    monkeypatch.delenv(host.ENV, raising=False)
    assert "features are unknown" in host.why_not("float16")


def test_cpu_features_on_linux_aarch64_come_from_at_hwcap(tmp_path, monkeypatch):
    """On Linux aarch64 the kernel's AT_HWCAP word wins over /proc/cpuinfo, which an
    emulator (qemu-user) fills with the host's x86 flags."""
    import ctypes
    import types
    calls = []

    def getauxval(kind):
        calls.append(kind)
        return (1 << 10) | (1 << 20) | (1 << 1)  # asimdhp, asimddp and a bit not asked for

    monkeypatch.setattr(ctypes, "CDLL", lambda name: types.SimpleNamespace(getauxval=getauxval))
    host.hwcap_features.cache_clear()
    monkeypatch.setattr(host.sys, "platform", "linux")
    monkeypatch.setattr(host.os, "uname", lambda: types.SimpleNamespace(machine="aarch64"))
    x86 = tmp_path / "cpuinfo"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse avx2\n")
    monkeypatch.setattr(host, "CPUINFO", str(x86))
    try:
        assert host.cpu_features() == frozenset({"asimdhp", "asimddp"})
        assert calls == [host.AT_HWCAP]
    finally:
        host.hwcap_features.cache_clear()
    monkeypatch.setattr(host, "hwcap_features", lambda: None)  # no auxv: cpuinfo it is
    assert host.cpu_features() == frozenset({"fpu", "sse", "avx2"})


@pytest.mark.skipif(host.is_arm(), reason="checks what a non-ARM host says")
def test_explain_says_why_the_arm_kernel_declined():
    proc = _cli("kernels", "explain", *FC_CALL)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if "mxcore-arm:" in ln)
    assert "REJECTED" in line and "not an ARM host" in line and "MXCORE_ARM_KERNELS=force" in line
    assert "winner: mxcore-cpu:nn.fully_connected" in proc.stdout

    forced = _cli("kernels", "explain", *FC_CALL, env={"MXCORE_ARM_KERNELS": "force"})
    assert "winner: mxcore-arm:ort_fp16.fully_connected" in forced.stdout
    assert "highest priority (20 > 0)" in forced.stdout


# a finder that makes ``import onnxruntime`` fail, as on a host without the wheel
HIDE_ORT = """
import sys
class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise ModuleNotFoundError("No module named 'onnxruntime'", name="onnxruntime")
        return None
sys.meta_path.insert(0, _Hide())
"""


def test_without_onnxruntime_the_load_error_is_recorded_and_mxcore_works():
    code = HIDE_ORT + """
import json
import mxcore as mx
from mxcore.plugins import system
from mxcore.graph import passes
y = mx.nd.FullyConnected(mx.nd.ones((2, 3), dtype="float16"),
                         mx.nd.ones((4, 3), dtype="float16"), num_hidden=4, no_bias=True)
info = system().plugins["arm"]
print(json.dumps({"error": info.error, "y": y.asnumpy().tolist(),
                  "backends": passes.backends(), "cpu": system().plugins["cpu"].error}))
"""
    proc = subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "MXCORE_ARM_KERNELS": "force"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "onnxruntime" in out["error"] and "import of mxcore_arm.plugin failed" in out["error"]
    assert out["cpu"] is None and out["y"] == [[3.0] * 4] * 2
    assert "onnxruntime" not in out["backends"]
