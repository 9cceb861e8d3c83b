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
