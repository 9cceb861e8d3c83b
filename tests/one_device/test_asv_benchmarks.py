"""The asv benchmarks still run: every benchmark method of asv_bench/benchmarks,
once, on the CPU, for every parameter combination (sizes: only the smallest of three
or more) -- asv itself times them; here a renamed API or a broken setup fails a test
instead of a dashboard."""
from __future__ import annotations

import importlib
import inspect
import itertools
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREFIXES = ("time_", "peakmem_", "mem_", "track_")


def _cases():
    sys.path.insert(0, str(ROOT / "asv_bench"))
    try:
        for path in sorted((ROOT / "asv_bench" / "benchmarks").glob("bench_*.py")):
            module = importlib.import_module(f"benchmarks.{path.stem}")
            for cls_name, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ != module.__name__ or cls_name.startswith("_"):
                    continue
                methods = [m for m in dir(cls) if m.startswith(PREFIXES)]
                if not methods:
                    continue
                names = getattr(cls, "param_names", [])
                choices = []
                for name, values in zip(names, getattr(cls, "params", [])):
                    if name == "device":
                        values = [v for v in values if v.startswith("cpu")]
                    elif len(values) > 2 and all(isinstance(v, (int, float)) for v in values):
                        values = [min(values)]
                    choices.append(values)
                for combo in itertools.product(*choices):
                    for method in methods:
                        yield pytest.param(cls, method, combo,
                                           id=f"{path.stem}.{cls_name}.{method}{list(combo)}")
    finally:
        sys.path.remove(str(ROOT / "asv_bench"))


@pytest.mark.parametrize("cls, method, params", list(_cases()))
def test_benchmark_runs_once(cls, method, params):
    bench = cls()
    if hasattr(bench, "setup"):
        try:
            bench.setup(*params)
        except NotImplementedError as exc:  # asv's way of skipping a combination
            pytest.skip(f"setup skipped this combination: {exc}")
    try:
        getattr(bench, method)(*params)
    finally:
        if hasattr(bench, "teardown"):
            bench.teardown(*params)
