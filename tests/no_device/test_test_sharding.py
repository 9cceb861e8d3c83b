"""MXCORE_TEST_SHARD=k/n splits a pytest run into n disjoint parts (tests/conftest.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _collect(shard=None):
    env = {k: v for k, v in os.environ.items() if k != "MXCORE_TEST_SHARD"}
    if shard:
        env["MXCORE_TEST_SHARD"] = shard
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                        "-p", "no:cacheprovider", "tests/no_device/test_hal.py"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return r, [ln for ln in r.stdout.splitlines() if "::" in ln]


def test_shards_are_disjoint_and_cover_the_run():
    _, everything = _collect()
    parts = [_collect(f"{k}/3")[1] for k in range(3)]
    assert len(everything) >= 3 and all(parts)
    assert sorted(sum(parts, [])) == sorted(everything)
    assert len(set(sum(parts, []))) == len(everything)


def test_a_bad_shard_is_a_usage_error():
    r, _ = _collect("3/3")
    assert r.returncode != 0 and "MXCORE_TEST_SHARD='3/3'" in r.stdout + r.stderr
