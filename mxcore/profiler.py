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
import weakref
from typing import Any, Dict, Iterator, List, Tuple

__all__ = ["set_config", "set_state", "get_state", "pause", "resume", "dump", "dumps",
           "scope", "Domain", "Task", "Frame", "Event", "Counter", "Marker"]

#: MXNet keys that select what its (graph) profiler records: accepted, and ignored
#: with a warning (mxcore records every operator call).
_MXNET_ONLY = frozenset({"profile_symbolic", "profile_api", "continuous_dump", "dump_period",
                         "profile_process", "gpu_memory_profile_filename_prefix"})
_DEFAULTS = {"filename": "profile.json", "profile_all": False, "profile_imperative": True,
             "profile_memory": False, "aggregate_stats": False, "synchronize": False}
_SORT_KEYS = {"total": "Total", "count": "Count", "min": "Min", "max": "Max", "avg": "Avg"}
#: Marker scopes -> the Chrome trace's instant-event scope letters
_MARKER_SCOPES = {"process": "p", "thread": "t", "global": "g"}


class _Profiler:
    def __init__(self) -> None:
        self.config: Dict[str, Any] = dict(_DEFAULTS)
        self.running = False
        self.paused = False
        # (phase, name, category, start ns, duration ns, thread id, args): phase "X" a
        # span, "C" a counter's value (args {name: value}), "i" an instant marker
        self.events: List[Tuple[str, str, str, int, int, int, Dict[str, Any]]] = []
        self.names: Dict[Any, Tuple[str, str, str, str]] = {}
        self.inner = None      # the engine the profiling engine wraps
        self.t0 = time.perf_counter_ns()
        self.lock = threading.Lock()
        self.local = threading.local()  # .region: the custom operator a thread is inside
        self.live: Dict[str, int] = {}  # "Memory: cpu/0" -> bytes of live kernel outputs
        # re-entrant: an array's finalizer may run in a collection while it is held
        self.live_lock = threading.RLock()
        self.generation = 0  # counts runs: each counts its own arrays from zero

    @property
    def recording(self) -> bool:
        return self.running and not self.paused

    def record(self, phase: str, name: str, category: str, start: int, dur: int = 0,
               args: Dict[str, Any] = None) -> None:
        if self.recording:
            self.events.append((phase, name, category, start, dur, threading.get_ident(),
                                args if args is not None else {}))

    def kernel_names(self) -> Dict[Any, Tuple[str, str, str, str]]:
        """kernel fn -> (event name, core operator, qualified kernel name, device kind),
        from the registry.  Events carry MXNet's operator name where the core op is
        exactly one MXNet operator (``add_scalar`` is ``_plus_scalar``), so traces and
        tables read as MXNet's; ``args["op"]`` keeps the core op."""
        from mxcore.graph.from_core import mxnet_name
        from mxcore.plugins import registry
        from mxcore.registry import qualified
        names: Dict[Any, Tuple[str, str, str, str]] = {}
        for kernels in registry().kernels.values():
            for k in kernels:
                shown = mxnet_name(k.op)
                try:
                    names.setdefault(k.fn, (shown, k.op, qualified(k), k.device))
                except TypeError:  # an unhashable callable: named by its qualname
                    pass
        return names

    def memory(self, outputs, args, kind: str) -> None:
        """Count the arrays a kernel allocated (outputs that own their memory and are
        not its inputs) until they die: a "Memory: <device>" counter."""
        for o in outputs:
            nbytes = getattr(o, "nbytes", None)
            if nbytes is None or getattr(o, "base", 0) is not None or \
                    any(o is a for a in args):
                continue
            index = getattr(getattr(o, "device", None), "id", 0)
            key = f"Memory: {kind}/{index}"
            self.track(key, int(nbytes), self.generation)
            try:
                weakref.finalize(o, self.track, key, -int(nbytes), self.generation)
            except TypeError:  # an array type without weak references: counted once
                pass

    def track(self, key: str, delta: int, generation: int) -> None:
        with self.live_lock:
            if generation != self.generation:  # an array of an earlier run
                return
            value = self.live[key] = self.live.get(key, 0) + delta
        self.record("C", key, "Device Storage", time.perf_counter_ns(), 0, {key: value})


_P = _Profiler()


def _shown(entry, attrs) -> str:
    """The event name of a call: ``full`` is MXNet's ``_zeros``/``_ones``/``_full``."""
    if entry[1] == "full":
        value = attrs.get("value", 0.0)
        return "_zeros" if value == 0 else "_ones" if value == 1 else "_full"
    return entry[0]


class ProfilingEngine:
    """An engine that times each kernel its inner engine runs."""

    def __init__(self, inner, profiler: _Profiler):
        self.inner = inner
        self.name = f"profiling({inner.name})"
        self._p = profiler

    def push(self, fn, args, attrs, mutates=(), device=None):
        p = self._p
        if p.paused or getattr(fn, "mxcore_region", False):
            return self.inner.push(fn, args, attrs, mutates, device)
        entry = (p.names.get(fn) or p.names.get(getattr(fn, "__wrapped__", None))
                 or self._unknown(fn))
        # a kernel borrowed through a fallback chain runs on the calling device's kind
        kind = getattr(fn, "mxcore_device_kind", entry[3])
        info = {"op": entry[1], "kernel": entry[2], "device": kind,
                "shapes": [list(getattr(a, "shape", ())) for a in args if hasattr(a, "shape")],
                "dtypes": [str(a.dtype) for a in args if hasattr(a, "dtype")]}
        name, category = _shown(entry, attrs), "operator"
        region = getattr(p.local, "region", None)
        if region is not None:  # inside a custom operator: MXNet's "MySigmoid::_zeros"
            name, category = f"{region}::{name}", "Custom Operator"
        if getattr(self.inner, "asynchronous", False):
            return self._push_timed(fn, args, attrs, mutates, device, name, category, info,
                                    kind)
        start = time.perf_counter_ns()
        out = self.inner.push(fn, args, attrs, mutates, device)
        if p.config["synchronize"]:
            self.inner.wait_all()
            _synchronize(kind)
        end = time.perf_counter_ns()
        p.events.append(("X", name, category, start, end - start, threading.get_ident(),
                         info))
        if p.config["profile_memory"]:
            p.memory(out if type(out) is tuple else (out,), args, kind)
        return out

    def _push_timed(self, fn, args, attrs, mutates, device, name, category, info, kind):
        """An engine with workers: the kernel is timed where it runs (one trace track
        per worker), and its wait in the queue is a "queue" span of its own."""
        p = self._p
        queued = time.perf_counter_ns()

        def timed(*a, **k):
            start = time.perf_counter_ns()
            out = fn(*a, **k)
            if p.config["synchronize"]:
                _synchronize(kind)
            end = time.perf_counter_ns()
            tid = threading.get_ident()
            p.events.append(("X", name, "queue", queued, start - queued, tid, {}))
            p.events.append(("X", name, category, start, end - start, tid, info))
            if p.config["profile_memory"]:
                p.memory(out if type(out) is tuple else (out,), a, kind)
            return out
        timed.__wrapped__ = fn  # the engine finds the kernel's operator through it
        return self.inner.push(timed, args, attrs, mutates, device)

    @contextlib.contextmanager
    def region(self, name: str, category: str) -> Iterator[None]:
        p = self._p
        outer = getattr(p.local, "region", None)
        p.local.region = name.split("::")[0]
        start = time.perf_counter_ns()
        try:
            yield
        finally:
            p.local.region = outer
            p.record("X", name, category, start, time.perf_counter_ns() - start)

    def _unknown(self, fn):
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        entry = self._p.names[fn] = (name, name, name, "?")
        return entry

    def wait_to_read(self, data) -> None:
        self.inner.wait_to_read(data)

    def wait_all(self) -> None:
        self.inner.wait_all()

    def resolve(self, data):
        return self.inner.resolve(data)


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
    ``profile_memory`` (a counter of the bytes of live kernel outputs per device),
    ``aggregate_stats`` (accepted; ``dumps`` always works), and mxcore's
    ``synchronize`` (wait for the device after each kernel)."""
    unknown = set(kwargs) - set(_DEFAULTS) - _MXNET_ONLY
    if unknown:
        raise ValueError(f"profiler.set_config: unknown option(s) {sorted(unknown)}; "
                         f"options: {sorted(set(_DEFAULTS) | _MXNET_ONLY)}")
    ignored = sorted(k for k in set(kwargs) & _MXNET_ONLY if kwargs[k])
    if ignored:
        warnings.warn(f"profiler.set_config: {ignored} select parts of MXNet's profiler "
                      "and have no effect in mxcore, which records every operator call "
                      "(dump() writes what was recorded so far)", UserWarning, stacklevel=2)
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
            with _P.live_lock:
                _P.generation += 1
                _P.live.clear()
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
    if not _P.recording:
        yield
        return
    start = time.perf_counter_ns()
    try:
        yield
    finally:
        _P.record("X", str(name), "scope", start, time.perf_counter_ns() - start)


# MXNet's user-defined events --------------------------------------------------------------
class Domain:
    """A named group of tasks, frames, counters and markers (its name is their category
    in the trace and in ``dumps``)."""

    def __init__(self, name: str):
        self.name = str(name)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Domain({self.name!r})"

    def new_task(self, name: str) -> "Task":
        return Task(self, name)

    def new_frame(self, name: str) -> "Frame":
        return Frame(self, name)

    def new_counter(self, name: str, value: int = None) -> "Counter":
        return Counter(self, name, value)

    def new_marker(self, name: str) -> "Marker":
        return Marker(self, name)


class _Span:
    """``start()``/``stop()`` (or ``with``) around work: one span in the trace, timed
    on the host, recorded while the profiler runs."""

    def __init__(self, name: str, category: str):
        self.name = str(name)
        self._category = category
        self._start = None

    def start(self) -> None:
        self._start = time.perf_counter_ns()

    def stop(self) -> None:
        if self._start is None:
            raise RuntimeError(f"profiler {type(self).__name__} {self.name!r}: stop() "
                               "without start()")
        _P.record("X", self.name, self._category, self._start,
                  time.perf_counter_ns() - self._start)
        self._start = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._category!r}, {self.name!r})"


class Task(_Span):
    """A piece of work in a domain (a row of the domain in ``dumps``)."""

    def __init__(self, domain: Domain, name: str):
        super().__init__(name, _domain(domain, "Task").name)
        self.domain = domain


class Frame(_Span):
    """One repetition of a loop (an iteration, a batch): category "<domain>,frame"."""

    def __init__(self, domain: Domain, name: str):
        super().__init__(name, f"{_domain(domain, 'Frame').name},frame")
        self.domain = domain


class Event(_Span):
    """A span outside any domain (category "event")."""

    def __init__(self, name: str):
        super().__init__(name, "event")


class Counter:
    """A value over time (a counter track in the trace; count, min, max and average in
    ``dumps``): ``set_value``, ``increment``, ``decrement``, ``+=`` and ``-=``."""

    def __init__(self, domain: Domain, name: str, value: int = None):
        self.domain = _domain(domain, "Counter")
        self.name = str(name)
        self.value = 0
        if value is not None:
            self.set_value(value)

    def set_value(self, value) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"profiler Counter {self.name!r}: value must be a number, got "
                            f"{type(value).__name__}")
        self.value = value
        _P.record("C", self.name, self.domain.name, time.perf_counter_ns(), 0,
                  {self.name: value})

    def increment(self, delta=1) -> None:
        self.set_value(self.value + delta)

    def decrement(self, delta=1) -> None:
        self.set_value(self.value - delta)

    def __iadd__(self, delta):
        self.increment(delta)
        return self

    def __isub__(self, delta):
        self.decrement(delta)
        return self

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Counter({self.domain.name!r}, {self.name!r}, value={self.value})"


class Marker:
    """An instant in the trace: ``mark(scope)`` with scope 'process', 'thread' or
    'global' (how far the line spans in the viewer)."""

    def __init__(self, domain: Domain, name: str):
        self.domain = _domain(domain, "Marker")
        self.name = str(name)

    def mark(self, scope: str = "process") -> None:
        if scope not in _MARKER_SCOPES:
            raise ValueError(f"profiler Marker {self.name!r}: scope must be one of "
                             f"{sorted(_MARKER_SCOPES)}, got {scope!r}")
        _P.record("i", self.name, f"{self.domain.name},instant_marker",
                  time.perf_counter_ns(), 0, {"s": _MARKER_SCOPES[scope]})


def _domain(domain, what: str) -> Domain:
    if not isinstance(domain, Domain):
        raise TypeError(f"profiler {what}: expected a profiler.Domain, got "
                        f"{type(domain).__name__} {domain!r}")
    return domain


# output -----------------------------------------------------------------------------------
def _trace() -> Dict[str, Any]:
    pid = os.getpid()
    events: List[Dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": pid, "args": {"name": "mxcore"}}]
    threads = {t.ident: t.name for t in threading.enumerate()}
    main = threading.main_thread().ident
    for tid in sorted({e[5] for e in _P.events}):
        label = "main thread" if tid == main else threads.get(tid, f"thread {tid}")
        events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                       "args": {"name": label}})
    for phase, name, cat, start, dur, tid, args in _P.events:
        event = {"name": name, "cat": cat, "ph": phase, "pid": pid, "tid": tid,
                 "ts": (start - _P.t0) / 1e3}
        if phase == "X":
            event.update(dur=dur / 1e3, args=args)
        elif phase == "i":
            event["s"] = args["s"]
        else:
            event["args"] = args
        events.append(event)
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"producer": "mxcore.profiler"}}


def dump(finished: bool = True, profile_process: str = "worker") -> str:
    """Write the recorded events to ``filename`` as a Chrome trace (atomically: a
    reader never sees half a file).  ``finished=True`` also stops the profiler and
    clears the events; ``finished=False`` keeps recording (each dump writes everything
    recorded so far, MXNet's ``continuous_dump``).  Returns the file's path."""
    from mxcore.serialization import atomic_path
    path = os.path.abspath(_P.config["filename"])
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(_trace(), f)
    if finished:
        set_state("stop")
        _P.events.clear()
    return path


def _stats(values: List[float], with_total: bool) -> Dict[str, float]:
    n = len(values)
    out = {"Count": n}
    if with_total:
        out["Total"] = sum(values)
    out.update(Min=min(values), Max=max(values), Avg=sum(values) / n)
    return out


def _aggregate() -> Dict[str, Dict[str, Dict[str, Dict[str, float]]]]:
    """MXNet's layout: "Time" (spans, ms), "Memory" (memory counters, kB) and
    "Counter" (user counters' values), each category -> name -> statistics."""
    spans: Dict[str, Dict[str, List[float]]] = {}
    values: Dict[str, Dict[str, Dict[str, List[float]]]] = {"Memory": {}, "Counter": {}}
    for phase, name, cat, _, dur, _, args in list(_P.events):
        if phase == "X":
            spans.setdefault(cat, {}).setdefault(name, []).append(dur / 1e6)
        elif phase == "C":
            section, scale = ("Memory", 1e-3) if cat == "Device Storage" else ("Counter", 1)
            values[section].setdefault(cat, {}).setdefault(name, []).append(
                args[name] * scale)
    out = {"Time": {c: {n: _stats(v, True) for n, v in t.items()} for c, t in spans.items()}}
    for section, table in values.items():
        out[section] = {c: {n: _stats(v, False) for n, v in t.items()}
                        for c, t in table.items()}
    return out


def dumps(reset: bool = False, format: str = "table", sort_by: str = "total",
          ascending: bool = False) -> str:
    """Statistics of the recorded events, as MXNet's ``dumps`` gives them: per
    category and name, the count, total, min, max and average time of spans (ms), and
    the count, min, max and average of memory (kB) and user counters; a table or,
    with ``format="json"``, ``{"Time": ..., "Memory": ..., "Counter": ..., "Unit": ...}``.
    Entries sort by ``sort_by`` (value tables, without a total, by the count then)."""
    if format not in ("table", "json"):
        raise ValueError(f"profiler.dumps: format must be 'table' or 'json', got {format!r}")
    if sort_by not in _SORT_KEYS:
        raise ValueError(f"profiler.dumps: sort_by must be one of {sorted(_SORT_KEYS)}, "
                         f"got {sort_by!r}")
    stats = _aggregate()
    if reset:
        _P.events.clear()
    key = _SORT_KEYS[sort_by]
    for section in stats.values():
        for cat, table in section.items():
            rows = sorted(table.items(), key=lambda kv: kv[1].get(key, kv[1]["Count"]),
                          reverse=not ascending)
            section[cat] = dict(rows)
    if format == "json":
        return json.dumps({**stats, "Unit": {"Time": "ms", "Memory": "kB"}}, indent=2)
    lines = ["Profile Statistics (times in ms, memory in kB)"]
    for section, cols in (("Time", ("Count", "Total", "Min", "Max", "Avg")),
                          ("Memory", ("Count", "Min", "Max", "Avg")),
                          ("Counter", ("Count", "Min", "Max", "Avg"))):
        for cat, table in sorted(stats[section].items()):
            width = max([len(n) for n in table] + [4])
            lines += ["", cat, "=" * len(cat),
                      f"{'Name':<{width}} " + " ".join(f"{c:>12}" for c in cols)]
            for name, s in table.items():
                lines.append(f"{name:<{width}} {s['Count']:>12d} " + " ".join(
                    f"{s[c]:>12.4f}" for c in cols[1:]))
    return "\n".join(lines)


# MXNet's older names --------------------------------------------------------------------
def profiler_set_config(mode: str = "symbolic", filename: str = "profile.json") -> None:
    """MXNet's deprecated form of ``set_config``."""
    set_config(filename=filename, profile_all=mode == "all")


def profiler_set_state(state: str = "stop") -> None:
    """MXNet's deprecated form of ``set_state``."""
    set_state(state)


def dump_profile() -> str:
    """MXNet's deprecated form of ``dump``."""
    return dump(True)
