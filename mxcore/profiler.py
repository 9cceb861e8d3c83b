"""Where an eager program's time goes: every kernel call (forward, backward,
optimizer) as a Chrome trace event (open the file in chrome://tracing or
https://ui.perfetto.dev) and as an aggregate table, with MXNet's profiler API::

    mx.profiler.set_config(filename="trace.json")
    mx.profiler.set_state("run")
    ...                                  # train a few steps
    with mx.profiler.scope("eval"):      # a named span of your own
        ...
    mx.profiler.set_state("stop")
    mx.profiler.dump()                   # writes trace.json
    print(mx.profiler.dumps())           # per-operator count and times

While running, the profiler wraps the engine (``mxcore.engine``): every kernel
the engine runs is timed on the host and named after its operator, with the
kernel that served it and the input shapes and dtypes.  Stopped, it is not
installed at all, so it costs nothing.  On asynchronous devices (cuda) a
kernel's host time is its launch time; ``set_config(synchronize=True)`` waits
for the device after each kernel, so times include the device's work (and the
program runs without overlap while profiled).
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import warnings
from typing import Any, Dict, Iterator, List, Tuple

__all__ = ["set_config", "set_state", "get_state", "pause", "resume", "dump", "dumps",
           "scope"]

#: MXNet keys that select what its (graph) profiler records: accepted, and ignored
#: with a warning (mxcore records every operator call).
_MXNET_ONLY = frozenset({"profile_symbolic", "profile_memory", "profile_api",
                         "continuous_dump", "dump_period", "profile_process",
                         "gpu_memory_profile_filename_prefix"})
_DEFAULTS = {"filename": "profile.json", "profile_all": False, "profile_imperative": True,
             "aggregate_stats": False, "synchronize": False}
_SORT_KEYS = {"total": 1, "count": 0, "min": 2, "max": 3, "avg": 4}


class _Profiler:
    def __init__(self) -> None:
        self.config: Dict[str, Any] = dict(_DEFAULTS)
        self.running = False
        self.paused = False
        # (name, category, start ns, duration ns, thread id, args)
        self.events: List[Tuple[str, str, int, int, int, Dict[str, Any]]] = []
        self.names: Dict[Any, Tuple[str, str, str]] = {}
        self.inner = None      # the engine the profiling engine wraps
        self.t0 = time.perf_counter_ns()
        self.lock = threading.Lock()

    def kernel_names(self) -> Dict[Any, Tuple[str, str, str]]:
        """kernel fn -> (operator, qualified kernel name, device kind), from the registry."""
        from mxcore.plugins import registry
        from mxcore.registry import qualified
        names: Dict[Any, Tuple[str, str, str]] = {}
        for kernels in registry().kernels.values():
            for k in kernels:
                try:
                    names.setdefault(k.fn, (k.op, qualified(k), k.device))
                except TypeError:  # an unhashable callable: named by its qualname
                    pass
        return names


_P = _Profiler()


class ProfilingEngine:
    """An engine that times each kernel its inner engine runs."""

    def __init__(self, inner, profiler: _Profiler):
        self.inner = inner
        self.name = f"profiling({inner.name})"
        self._p = profiler

    def push(self, fn, args, attrs, mutates=()):
        p = self._p
        if p.paused:
            return self.inner.push(fn, args, attrs, mutates)
        start = time.perf_counter_ns()
        out = self.inner.push(fn, args, attrs, mutates)
        op, kernel, kind = (p.names.get(fn) or p.names.get(getattr(fn, "__wrapped__", None))
                             or self._unknown(fn))
        # a kernel borrowed through a fallback chain runs on the calling device's kind
        kind = getattr(fn, "mxcore_device_kind", kind)
        if p.config["synchronize"]:
            self.inner.wait_all()
            _synchronize(kind)
        end = time.perf_counter_ns()
        info = {"kernel": kernel, "device": kind,
                "shapes": [list(getattr(a, "shape", ())) for a in args if hasattr(a, "shape")],
                "dtypes": [str(a.dtype) for a in args if hasattr(a, "dtype")]}
        p.events.append((op, "operator", start, end - start, threading.get_ident(), info))
        return out

    def _unknown(self, fn):
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        entry = self._p.names[fn] = (name, name, "?")
        return entry

    def wait_to_read(self, data) -> None:
        self.inner.wait_to_read(data)

    def wait_all(self) -> None:
        self.inner.wait_all()


def _synchronize(kind: str) -> None:
    """Wait for the devices of ``kind`` this process has used (not every GPU on the
    machine: another process's work there is not this kernel's time)."""
    from mxcore.device import _used
    for dev, dtype in _used(kind=kind):
        dtype.synchronize(dev.index)


# the MXNet API ---------------------------------------------------------------------------
def set_config(**kwargs) -> None:
    """Configure the profiler: ``filename`` (where ``dump`` writes the trace),
    ``profile_all``/``profile_imperative`` (record operator calls; default on),
    ``aggregate_stats`` (accepted; ``dumps`` always works), and mxcore's
    ``synchronize`` (wait for the device after each kernel)."""
    unknown = set(kwargs) - set(_DEFAULTS) - _MXNET_ONLY
    if unknown:
        raise ValueError(f"profiler.set_config: unknown option(s) {sorted(unknown)}; "
                         f"options: {sorted(set(_DEFAULTS) | _MXNET_ONLY)}")
    ignored = sorted(set(kwargs) & _MXNET_ONLY)
    if ignored:
        warnings.warn(f"profiler.set_config: {ignored} select parts of MXNet's graph "
                      "profiler and have no effect in mxcore, which records every operator "
                      "call", UserWarning, stacklevel=2)
    _P.config.update({k: v for k, v in kwargs.items() if k in _DEFAULTS})
    _P.config["filename"] = os.fspath(_P.config["filename"])


def set_state(state: str = "stop", profile_process: str = "worker") -> None:
    """``"run"`` starts recording, ``"stop"`` stops it (events are kept for
    ``dump``/``dumps``)."""
    from mxcore import engine
    if state not in ("run", "stop"):
        raise ValueError(f"profiler.set_state: state must be 'run' or 'stop', got {state!r}")
    with _P.lock:
        if state == "run" and not _P.running:
            if not (_P.config["profile_all"] or _P.config["profile_imperative"]):
                _P.running = True  # scopes only
                return
            _P.names = _P.kernel_names()
            current = engine.current()
            _P.inner = current
            engine.set_engine(ProfilingEngine(current, _P))
            _P.running, _P.paused = True, False
        elif state == "stop" and _P.running:
            current = engine.current()
            if isinstance(current, ProfilingEngine) and current._p is _P:
                engine.set_engine(current.inner)
            _P.running, _P.paused, _P.inner = False, False, None


def get_state() -> str:
    return "run" if _P.running else "stop"


def pause(profile_process: str = "worker") -> None:
    """Stop recording until ``resume`` (the profiler stays installed)."""
    _P.paused = True


def resume(profile_process: str = "worker") -> None:
    _P.paused = False


@contextlib.contextmanager
def scope(name: str = "<unk>:") -> Iterator[None]:
    """A named span around a block of code (shown as its own row in the trace and
    in ``dumps`` with category "scope"); free when the profiler is stopped."""
    if not _P.running or _P.paused:
        yield
        return
    start = time.perf_counter_ns()
    try:
        yield
    finally:
        end = time.perf_counter_ns()
        _P.events.append((str(name), "scope", start, end - start, threading.get_ident(), {}))


def _trace() -> Dict[str, Any]:
    pid = os.getpid()
    events: List[Dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": pid, "args": {"name": "mxcore"}}]
    for tid in sorted({e[4] for e in _P.events}):
        events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                       "args": {"name": f"thread {tid}"}})
    for name, cat, start, dur, tid, args in _P.events:
        events.append({"name": name, "cat": cat, "ph": "X", "pid": pid, "tid": tid,
                       "ts": (start - _P.t0) / 1e3, "dur": dur / 1e3, "args": args})
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"producer": "mxcore.profiler"}}


def dump(finished: bool = True, profile_process: str = "worker") -> str:
    """Write the recorded events to ``filename`` as a Chrome trace (atomically: a
    reader never sees half a file).  ``finished=True`` also stops the profiler and
    clears the events.  Returns the file's path."""
    from mxcore.serialization import atomic_path
    path = os.path.abspath(_P.config["filename"])
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(_trace(), f)
    if finished:
        set_state("stop")
        _P.events.clear()
    return path


def _aggregate() -> Dict[str, Dict[str, List[float]]]:
    """category -> name -> [count, total, min, max, avg] in milliseconds."""
    stats: Dict[str, Dict[str, List[float]]] = {}
    for name, cat, _, dur, _, _ in _P.events:
        ms = dur / 1e6
        s = stats.setdefault(cat, {}).get(name)
        if s is None:
            stats[cat][name] = [1, ms, ms, ms, 0.0]
        else:
            s[0] += 1
            s[1] += ms
            s[2] = min(s[2], ms)
            s[3] = max(s[3], ms)
    for table in stats.values():
        for s in table.values():
            s[4] = s[1] / s[0]
    return stats


def dumps(reset: bool = False, format: str = "table", sort_by: str = "total",
          ascending: bool = False) -> str:
    """Per-name statistics of the recorded events (count, total, min, max and
    average milliseconds) as a table or, with ``format="json"``, a JSON string."""
    if format not in ("table", "json"):
        raise ValueError(f"profiler.dumps: format must be 'table' or 'json', got {format!r}")
    if sort_by not in _SORT_KEYS:
        raise ValueError(f"profiler.dumps: sort_by must be one of {sorted(_SORT_KEYS)}, "
                         f"got {sort_by!r}")
    stats = _aggregate()
    key = _SORT_KEYS[sort_by]
    if reset:
        _P.events.clear()
    if format == "json":
        return json.dumps({cat: {name: dict(zip(("count", "total_ms", "min_ms", "max_ms",
                                                  "avg_ms"), s))
                                 for name, s in table.items()}
                           for cat, table in stats.items()}, indent=2)
    lines = ["Profile Statistics (times in ms)"]
    for cat, table in sorted(stats.items()):
        width = max([len(n) for n in table] + [4])
        lines += ["", f"{cat}", "=" * len(cat),
                  f"{'Name':<{width}} {'Count':>8} {'Total':>12} {'Min':>10} {'Max':>10} "
                  f"{'Avg':>10}"]
        for name, s in sorted(table.items(), key=lambda kv: kv[1][key], reverse=not ascending):
            lines.append(f"{name:<{width}} {s[0]:>8d} {s[1]:>12.4f} {s[2]:>10.4f} "
                         f"{s[3]:>10.4f} {s[4]:>10.4f}")
    return "\n".join(lines)
