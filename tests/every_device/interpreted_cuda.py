"""Run test files' cuda checks on the interpreted cuda device (``MXCORE_CUDA_INTERPRET=1``)
in a subprocess: the mode is chosen when the CUDA plugin is imported, so a process that
has none cannot switch to it.  For test files of cuda kernels, on machines without a GPU."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import pytest

import mxcore as mx

ROOT = Path(__file__).resolve().parents[2]

#: variables of this process that would change what the subprocess runs
_DROPPED = ("MXCORE_PLUGINS", "MXCORE_REGISTRY", "MXCORE_DEVICE", "MXCORE_CUDA_INTERPRET",
            "TRITON_INTERPRET", "MXCORE_NO_THIRD_PARTY", "MXCORE_TEST_SHARD",
            "MXCORE_CUDA_INTERPRET_MAX")


def run_cuda_checks(files: Sequence[str]) -> str:
    """pytest ``-k cuda`` over ``files`` on the interpreted device; skips where a real
    cuda device ran the checks already; fails on any failure.  Returns the summary."""
    if "cuda" in {d.kind for d in mx.available_devices()}:
        pytest.skip("a cuda device is available: the checks ran on it")
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env["MXCORE_CUDA_INTERPRET"] = "1"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        *map(str, files), "-k", "cuda"], capture_output=True, text=True,
                       timeout=3000, env=env, cwd=ROOT)
    tail = "\n".join(r.stdout.splitlines()[-15:])
    assert r.returncode == 0, tail + r.stderr[-3000:]
    assert "failed" not in tail and " passed" in tail, tail
    return tail
