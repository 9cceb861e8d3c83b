"""Autotuning: time the kernels that could serve a call and keep the fastest.

Enabled with ``MXCORE_AUTOTUNE=1``.  When several kernels accept a call
(after guards and policy deny-lists), the registry asks the autotuner, which
runs each once to warm up and a few times timed on arrays of the call's shapes
and dtypes, and records the winner per signature in memory and in a JSON file
(``MXCORE_AUTOTUNE_CACHE``, default ``~/.mxcore/autotune.json``), so a
signature is timed once per machine.  Kernels that fail on the trial inputs
are left out of the contest.
"""
from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from hal import is_float, to_dtype


def enabled() -> bool:
    return os.environ.get("MXCORE_AUTOTUNE", "") not in ("", "0")


def default_cache_path() -> str:
    return os.environ.get("MXCORE_AUTOTUNE_CACHE") or os.path.join(
        os.path.expanduser("~"), ".mxcore", "autotune.json")


class Autotuner:
    def __init__(self, path: Optional[str] = None, repeats: int = 3):
        self.path = path or default_cache_path()
        self.repeats = repeats
        self.results: Dict[str, Dict[str, Any]] = {}
        self._lock = threading.Lock()
        try:
            with open(self.path) as f:
                data = json.load(f)
            if isinstance(data, dict):
                self.results = data
        except (OSError, ValueError):
            pass

    @staticmethod
    def signature(op: str, kind: str, dtype: str, shapes, dtypes, attrs,
                  names: Sequence[str]) -> str:
        return json.dumps([op, kind, dtype, [list(s) for s in shapes or ()],
                           [str(d) for d in dtypes or ()],
                           sorted((k, repr(v)) for k, v in (attrs or {}).items()),
                           sorted(names)])

    def lookup(self, sig: str) -> Optional[Dict[str, Any]]:
        return self.results.get(sig)

    def choose(self, sig: str, candidates: List[Any], device_type, needs_rng: bool,
               shapes, dtypes, attrs) -> Any:
        """The fastest of ``candidates`` (Kernel objects) for this signature."""
        entry = self.results.get(sig)
        if entry is not None:
            for k in candidates:
                if _name(k) == entry["winner"]:
                    return k
        timings = {}
        for k in candidates:
            try:
                timings[_name(k)] = self._time(k, device_type, needs_rng, shapes, dtypes,
                                               attrs)
            except Exception as exc:  # a kernel that cannot run the trial is out
                timings[_name(k)] = f"failed: {type(exc).__name__}: {exc}"[:200]
        timed = {n: t for n, t in timings.items() if isinstance(t, float)}
        if not timed:
            return candidates[0]
        winner = min(timed, key=timed.get)
        with self._lock:
            self.results[sig] = {"winner": winner, "seconds": timings}
            self._save()
        return next(k for k in candidates if _name(k) == winner)

    def _time(self, kernel, device_type, needs_rng, shapes, dtypes, attrs) -> float:
        rng = np.random.default_rng(0)
        args = []
        for shape, dtype in zip(shapes, dtypes):
            dt = to_dtype(dtype)
            host = (rng.standard_normal(shape).astype(dt) if is_float(dt)
                    else np.zeros(shape, dt))
            args.append(device_type.from_host(0, host))
        if needs_rng:
            args.insert(0, device_type.generator(0))
        attrs = attrs or {}
        kernel.fn(*args, **attrs)  # warm-up (compilation, caches)
        device_type.synchronize(0)
        best = float("inf")
        for _ in range(self.repeats):
            t0 = time.perf_counter()
            kernel.fn(*args, **attrs)
            device_type.synchronize(0)
            best = min(best, time.perf_counter() - t0)
        return best

    def _save(self) -> None:
        from mxcore.serialization import atomic_path
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(folder, exist_ok=True)
            with atomic_path(self.path) as tmp, open(tmp, "w") as f:
                json.dump(self.results, f, indent=1)
        except OSError:
            pass  # an unwritable cache only costs re-timing in the next process


def _name(kernel) -> str:
    return f"{kernel.provider}:{kernel.name}"
