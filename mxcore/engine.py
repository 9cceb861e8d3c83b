"""The execution engine protocol (MXNet's dependency engine).

Every operator call is handed to the engine as ``push(fn, args, attrs,
mutates, device)``: ``fn`` is the kernel, ``args`` the device arrays it reads,
``mutates`` the indices of the arguments it writes in place and ``device`` the
``hal.Device`` it runs on (for error messages and per-device queues).  The naive engine
runs the kernel at once and returns its result.  A threaded engine returns
placeholders for the results and runs the kernel when the arrays it reads and
writes are ready; sync points (``wait_to_read``, ``asnumpy``, ``waitall``) then
surface errors.  Swapping engines needs only a new class here plus
``set_engine``: dispatch never looks behind the protocol.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any, Callable, Dict, Protocol, Sequence, Tuple


class Engine(Protocol):
    name: str

    def push(self, fn: Callable[..., Any], args: Tuple[Any, ...], attrs: Dict[str, Any],
             mutates: Sequence[int] = (), device: Any = None) -> Any: ...

    def wait_to_read(self, data: Any) -> None: ...

    def wait_all(self) -> None: ...

    def resolve(self, data: Any) -> Any: ...


class NaiveEngine:
    """Runs each kernel synchronously in the calling thread."""

    name = "naive"

    def push(self, fn, args, attrs, mutates=(), device=None):
        return fn(*args, **attrs)

    def wait_to_read(self, data) -> None:
        pass

    def wait_all(self) -> None:
        pass

    def resolve(self, data):
        return data


def _threaded():
    from mxcore.threaded_engine import ThreadedEngine
    return ThreadedEngine()


#: name -> engine factory (the threaded engine's module loads when it is chosen)
ENGINES = {"naive": NaiveEngine, "threaded": _threaded}


#: MXNet's MXNET_ENGINE_TYPE values -> mxcore's engines (read when MXCORE_ENGINE is unset)
MXNET_ENGINE_TYPES = {"NaiveEngine": "naive", "ThreadedEngine": "threaded",
                      "ThreadedEnginePerDevice": "threaded"}


def create(name: str | None = None) -> Engine:
    """An engine by name; without a name, the one MXCORE_ENGINE names, else MXNet's
    MXNET_ENGINE_TYPE, else the naive engine (an unknown value warns and falls back to
    the naive engine rather than breaking ``import mxcore``)."""
    if name is None:
        name = os.environ.get("MXCORE_ENGINE")
        if name is None:
            name = MXNET_ENGINE_TYPES.get(os.environ.get("MXNET_ENGINE_TYPE", ""), "naive")
        if name.lower() not in ENGINES:
            warnings.warn(f"MXCORE_ENGINE={name!r} is not an engine ({', '.join(sorted(ENGINES))});"
                          " using the naive engine", RuntimeWarning, stacklevel=2)
            name = "naive"
    try:
        return ENGINES[name.lower()]()
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose from {sorted(ENGINES)}") from None


#: the engine every operator call goes through (``current``/``set_engine``)
_CURRENT: Engine = create()
#: told of each new engine: dispatch keeps the engine's ``push`` bound for its hot path
_LISTENERS: list = []


def current() -> Engine:
    return _CURRENT


def on_change(listener: Callable[[Engine], None]) -> None:
    """Call ``listener(engine)`` whenever ``set_engine`` installs one."""
    _LISTENERS.append(listener)


def set_engine(engine: Engine | str) -> Engine:
    """Install an engine for every later operator call; returns the old one."""
    global _CURRENT
    old = _CURRENT
    old.wait_all()
    _CURRENT = create(engine) if isinstance(engine, str) else engine
    for listener in _LISTENERS:
        listener(_CURRENT)
    return old


def resolve(data: Any) -> Any:
    """The device array behind ``data``: a threaded engine's placeholder becomes its value
    (after the kernels queued before it ran); anything else is itself.  For code that
    needs the array object itself (its identity, its memory), not only its values."""
    return _CURRENT.resolve(data)


_NULL = contextlib.nullcontext()


def region(name: str, category: str):
    """A context manager around a stretch of Python work whose operator calls belong to
    it (a custom operator's forward).  Engines that trace (the profiler's) record it as a
    span and name the calls inside after it; other engines run it as it is."""
    enter = getattr(_CURRENT, "region", None)
    return _NULL if enter is None else enter(name, category)


# MXNet's mx.engine API ----------------------------------------------------------------------
_BULK_SIZE = 15


def set_bulk_size(size: int) -> int:
    """MXNet's hint for how many operators to bundle into one engine task; accepted and
    returned (the previous value) for compatibility: mxcore's engines queue each kernel
    on its own, and compiled plans (``hybridize``) are the way to fewer dispatches."""
    global _BULK_SIZE
    previous, _BULK_SIZE = _BULK_SIZE, int(size)
    return previous


@contextlib.contextmanager
def bulk(size: int):
    """``with mx.engine.bulk(size):`` (MXNet): ``set_bulk_size`` for the block."""
    previous = set_bulk_size(size)
    try:
        yield
    finally:
        set_bulk_size(previous)
