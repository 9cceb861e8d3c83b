"""The comparison scripts of asv_bench/ that this repository's notes quote run and report
(on tiny settings; nothing here times anything)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _script(name, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "asv_bench", name), *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_gemm_conv_comparison_reports_both_cases():
    r = _script("compare_gemm_conv.py", "--rounds", "1", "--reps", "1", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert set(out) == {"sgemm 1024^3", "conv 3x3 128->128 28x28 b8"}
    for case in out.values():
        assert case["numpy_gflops"] > 0 and case["mxcore_gflops"] > 0 and case["ratio"] > 0


def test_mlp_phase_comparison_reports_three_phases_per_variant():
    r = _script("compare_mlp_phases.py", "--epochs", "1", "--steps", "5", "--warmup", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [ln.split() for ln in r.stdout.splitlines()[2:]]
    assert [row[0] for row in rows] == ["numpy", "mxcore", "mxcore-hybrid"]
    for row in rows:
        forward, backward, step, total = map(float, row[1:])
        assert min(forward, backward, step) > 0
        assert abs(forward + backward + step - total) < 0.5


def test_mlp_epoch_comparison_runs_every_mxcore_mode():
    r = _script("compare_mlp_epoch.py", "--rounds", "1", "--steps", "5", "--warmup", "2",
                "--variants", "numpy-1t,mxcore-1t,mxcore-hybrid-1t,mxcore-step-1t", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    variants = ["numpy-1t", "mxcore-1t", "mxcore-hybrid-1t", "mxcore-step-1t"]
    assert sorted(out["median_s"]) == sorted(variants)
    assert all(out["median_s"][v] > 0 for v in variants)
    assert out["ratio_vs_numpy"]["numpy-1t"] == 1.0
