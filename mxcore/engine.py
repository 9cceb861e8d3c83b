"""The execution engine protocol (MXNet's dependency engine).

Every operator call is handed to the engine as ``push(fn, args, attrs,
mutates)``: ``fn`` is the kernel, ``args`` the device arrays it reads and
``mutates`` the indices of the arguments it writes in place.  The naive engine
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
             mutates: Sequence[int] = ()) -> Any: ...

    def wait_to_read(self, data: Any) -> None: ...

    def wait_all(self) -> None: ...


class NaiveEngine:
    """Runs each kernel synchronously in the calling thread."""

    name = "naive"

    def push(self, fn, args, attrs, mutates=()):
        return fn(*args, **attrs)

    def wait_to_read(self, data) -> None:
        pass

    def wait_all(self) -> None:
        pass


ENGINES = {"naive": NaiveEngine}


def create(name: str | None = None) -> Engine:
    """An engine by name; without a name, the one MXCORE_ENGINE names (an
    unknown value there warns and falls back to the naive engine rather than
    breaking ``import mxcore``)."""
    if name is None:
        name = os.environ.get("MXCORE_ENGINE", "naive")
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


_NULL = contextlib.nullcontext()


def region(name: str, category: str):
    """A context manager around a stretch of Python work whose operator calls belong to
    it (a custom operator's forward).  Engines that trace (the profiler's) record it as a
    span and name the calls inside after it; other engines run it as it is."""
    enter = getattr(_CURRENT, "region", None)
    return _NULL if enter is None else enter(name, category)
