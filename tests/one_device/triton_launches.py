"""Record the Triton launches of an interpreted run, then compile each for a GPU.

Triton's interpreter runs kernels as Python: code it accepts can still fail to
compile (an unsupported cast, a branch yielding two types) or to launch (a numpy
integer as a scalar argument, which only the interpreter takes).  ``record``
notes every launch of an interpreted process (kernel, argument types, constexpr
values, launch options); ``compile_all``, in a process without the interpreter,
compiles each distinct launch for an sm_90 target with Triton's own compiler
(bundled ptxas: no GPU or driver needed).
"""
from __future__ import annotations

import atexit
import inspect
import json
from typing import Dict, List

from mxcore_cuda.interpret import TRITON_DTYPES

#: numpy dtype name -> Triton pointer element type of a real launch (torch-style bool)
POINTEE = {**TRITON_DTYPES, "bool": "i1"}
OPTIONS = ("num_warps", "num_stages")


def _constexpr_params(fn) -> set:
    # annotations are strings under ``from __future__ import annotations``
    return {n for n, p in inspect.signature(fn).parameters.items()
            if "constexpr" in str(p.annotation)}


def _encode_constexpr(value):
    from triton.runtime.interpreter import InterpretedFunction
    if isinstance(value, InterpretedFunction):  # a @triton.jit formula passed as constexpr
        return {"jit": [value.fn.__module__, value.fn.__name__]}
    value = getattr(value, "value", value)  # tl.constexpr
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"constexpr of type {type(value).__name__}")


def _scalar_type(value) -> str:
    """The Triton type a real launch gives a scalar argument (which accepts only
    Python bool/int/float; numpy scalars fail to specialise)."""
    if type(value) is bool:
        return "i1"
    if type(value) is int:
        return "i32" if -2**31 <= value < 2**31 else "i64"
    if isinstance(value, float) and type(value).__module__ == "builtins":
        return "fp32"
    raise TypeError(f"scalar argument of type {type(value).__module__}."
                    f"{type(value).__name__} (a real launch takes Python bool/int/float)")


def record(path: str) -> None:
    """Note every interpreted launch of this process; write them to ``path`` at exit."""
    import mxcore_cuda  # noqa: F401  (sets TRITON_INTERPRET before Triton is imported)
    from triton.runtime.interpreter import InterpretedFunction
    seen: Dict[str, dict] = {}
    run = InterpretedFunction.run

    def recording_run(self, *args, grid, warmup, **kwargs):
        entry = {"kernel": [self.fn.__module__, self.fn.__name__], "signature": {},
                 "constexprs": {}, "options": {k: kwargs[k] for k in OPTIONS if k in kwargs}}
        try:
            consts = _constexpr_params(self.fn)
            values = dict(zip(self.arg_names, args))
            values.update({k: v for k, v in kwargs.items() if k in self.arg_names})
            for name in self.arg_names:
                v = values.get(name)
                if name in consts or v is None:
                    entry["signature"][name] = "constexpr"
                    entry["constexprs"][name] = _encode_constexpr(v)
                elif hasattr(v, "data_ptr"):
                    entry["signature"][name] = "*" + POINTEE[str(v.dtype)]
                else:
                    entry["signature"][name] = _scalar_type(v)
        except Exception as exc:  # reported by compile_all as this launch's failure
            entry["error"] = f"{type(exc).__name__}: {exc}"
        seen.setdefault(json.dumps(entry, sort_keys=True), entry)
        return run(self, *args, grid=grid, warmup=warmup, **kwargs)

    InterpretedFunction.run = recording_run
    atexit.register(lambda: open(path, "w").write(json.dumps(list(seen.values()))))


def distinct(entries: List[dict]) -> List[dict]:
    """One launch per code path: launches that differ only in block sizes (the
    interpreter picks its own) compile the same code."""
    out = {}
    for e in entries:
        c = {k: v for k, v in e["constexprs"].items() if not k.startswith("BLOCK")}
        out.setdefault(json.dumps([e["kernel"], e["signature"], c], sort_keys=True), e)
    return list(out.values())


def _compile(e: dict, capability: int):
    import importlib

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    where = f"{'.'.join(e['kernel'])}{e['signature']} {e['constexprs']}"
    if "error" in e:
        return f"{where}: {e['error']}"
    try:
        fn = getattr(importlib.import_module(e["kernel"][0]), e["kernel"][1])
        while not isinstance(fn, triton.runtime.JITFunction):
            fn = fn.fn  # an Autotuner (or heuristics) wraps the JIT function
        consts = {}
        for k, v in e["constexprs"].items():
            if isinstance(v, dict):
                v = getattr(importlib.import_module(v["jit"][0]), v["jit"][1])
            consts[k] = v
        triton.compile(ASTSource(fn, e["signature"], constexprs=consts),
                       target=GPUTarget("cuda", capability, 32), options=e["options"] or None)
    except Exception as exc:
        return f"{where}: {type(exc).__name__}: {str(exc)[:400]}"
    return None


def compile_all(entries: List[dict], capability: int = 90) -> List[str]:
    """Compile every distinct recorded launch for ``sm_<capability>`` (on every
    core); the failures, one line each (kernel, signature, error)."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = pool.map(_compile, entries, [capability] * len(entries), chunksize=8)
        return [r for r in results if r is not None]


def one_per_kernel(entries: List[dict]) -> List[dict]:
    """The first recorded launch of each kernel."""
    out: Dict[str, dict] = {}
    for e in entries:
        out.setdefault(json.dumps(e["kernel"]), e)
    return list(out.values())


def _value(kind: str, index: int):
    """A stand-in argument of a recorded Triton type: a 16-byte aligned pointer,
    or a scalar of that type (ints divisible by 16, as most real sizes are)."""
    import numpy as np

    from mxcore_cuda.standin_driver import Pointer
    if kind.startswith("*"):
        names = {v: k for k, v in POINTEE.items()}
        return Pointer((index + 1) << 20, np.dtype(names[kind[1:]]))
    return {"i1": True, "i32": 32, "i64": 2**31 + 32, "fp32": 0.5}[kind]


def replay_cached(entries: List[dict]) -> List[str]:
    """Launch each recorded signature on the stand-in driver (install it first)
    through Triton's path and twice through ``mxcore_cuda.triton._launch``: the
    launcher must receive the same call each time, and the signature must get a
    cached entry (not fall back).  The failures, one line each."""
    import importlib

    import triton
    from mxcore_cuda import standin_driver as sd
    from mxcore_cuda.triton import _launch
    failures = []
    for e in entries:
        where = ".".join(e["kernel"])
        try:
            fn = getattr(importlib.import_module(e["kernel"][0]), e["kernel"][1])
            while not isinstance(fn, triton.runtime.JITFunction):
                fn = fn.fn
            args, meta = [], dict(e["options"])
            for i, (name, kind) in enumerate(e["signature"].items()):
                if kind == "constexpr":
                    v = e["constexprs"][name]
                    if isinstance(v, dict):
                        v = getattr(importlib.import_module(v["jit"][0]), v["jit"][1])
                    meta[name] = v
                else:
                    args.append(_value(kind, i))
            fn[(2, 1)](*args, **meta)
            ref = sd.LOG[-1]
            calls = []
            for _ in range(2):
                _launch.launch(fn, (2, 1), *args, **meta)
                calls.append(sd.LOG[-1])
            cached = [v for k, v in _launch._ENTRIES.items() if k[0] == id(fn)]
            if calls != [ref, ref] or not cached or None in cached:
                failures.append(f"{where}: cached {cached}, calls differ: {calls != [ref, ref]}")
        except Exception as exc:
            failures.append(f"{where}: {type(exc).__name__}: {str(exc)[:300]}")
    return failures
