"""docs/kernels.md is generated from the registry and must be current."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import hal
from mxcore.kernel_docs import kernel_call, render
from mxcore.op import REQUIRED, Op
from mxcore.registry import Policy, Registry

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "MXCORE_NO_THIRD_PARTY=1 mxcore kernels --markdown > docs/kernels.md"


def test_docs_kernels_md_is_current():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MXCORE_", "TRITON_"))}
    env["MXCORE_NO_THIRD_PARTY"] = "1"
    proc = subprocess.run([sys.executable, "-m", "mxcore.cli", "kernels", "--markdown"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    checked_in = (ROOT / "docs" / "kernels.md").read_text()
    assert proc.stdout == checked_in, f"docs/kernels.md is stale: regenerate it with `{REGENERATE}`"


def _kernel(op, fn, device="cpu", priority=0, applies=None, provider="mxcore-cpu"):
    return hal.Kernel(op=op, device=device, fn=fn, dtypes={"float32"}, priority=priority,
                      applies=applies, name=f"k.{op}", provider=provider)


def test_kernel_call_names_arrays_then_attributes():
    op = Op("scaled_add", 2, attrs={"alpha": 1.0, "mode": REQUIRED})

    def scaled_add(a, b, alpha, mode):
        return a + alpha * b
    assert kernel_call(op, _kernel("scaled_add", scaled_add)) == \
        "scaled_add(a, b, alpha, mode)"
    # a generic (*arrays, **attrs) kernel: names from the op's arity and schema
    assert kernel_call(op, _kernel("scaled_add", lambda *arrays, **attrs: None)) == \
        "scaled_add(x0, x1, alpha, mode)"
    # a numpy ufunc used as it is
    assert kernel_call(Op("add2", 2), _kernel("add2", np.add)) == "add2(x1, x2)"
    # variadic inputs and the generator of random ops
    cat = Op("cat", -1, attrs={"dim": 1})
    assert kernel_call(cat, _kernel("cat", lambda *xs, dim: None)) == "cat(*xs, dim)"
    rnd = Op("noise", 0, attrs={"shape": REQUIRED}, needs_rng=True)
    assert kernel_call(rnd, _kernel("noise", lambda generator, shape: None)) == \
        "noise(generator, shape)"


def test_render_lists_each_device_and_kernel_with_guard_and_priority():
    reg = Registry(Policy({}, ["<test>"]))
    op = Op("scaled", 1, attrs={"alpha": 2.0}, doc="Scale an array.")
    reg.add_op(op, "my-ops")

    def big(shapes, dtypes, attrs):
        return shapes[0][0] > 100

    def scaled(x, alpha):
        return x * alpha
    reg.add_kernel(_kernel("scaled", scaled))
    reg.add_kernel(_kernel("scaled", scaled, priority=5, applies=big, provider="fast"))
    text = render(reg)
    assert "| [scaled](#scaled) | 1 | 1 |" in text
    assert "Scale an array." in text and "Defined by my-ops; no gradient." in text
    assert "Kernel call: `scaled(x, alpha)`" in text
    assert "Attributes: `alpha` = `2.0`." in text
    lines = text.splitlines()
    fast = lines.index("| `cpu` | fast:k.scaled | 5 | float32 | big |")
    assert lines[fast + 1] == "| `cpu` | mxcore-cpu:k.scaled | 0 | float32 | - |"
