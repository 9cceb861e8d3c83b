"""Memory planning: when each value dies, and which buffers a step may overwrite.

Kernels allocate their outputs; what the plan decides is how long buffers live.
``free_after[i]`` lists the slots whose last reader is step ``i`` (or, never read,
step ``i`` made them): the executor drops them right there, so a value's memory is
returned as soon as nothing needs it, not when the whole call ends.  A fused chain
may write its result into an input that dies at that step (``inplace``), when that
input is a fresh array of the same shape and dtype that an elementwise step made
(never a parameter, an input, a constant, a view or a program output).

``peak_bytes`` estimates a program's peak activation memory with or without the plan.
"""
from __future__ import annotations

from typing import Dict, List

from mxcore.graph.program import Program

#: ops whose kernels return fresh arrays (no view of an input): their outputs may be
#: overwritten by a fused step that reads them last
_FRESH = {"fused_elemwise", "relu", "sigmoid", "tanh", "exp", "log", "sqrt", "square",
          "negative", "abs", "add", "subtract", "multiply", "divide", "maximum", "minimum",
          "add_scalar", "sub_scalar", "mul_scalar", "div_scalar", "rsub_scalar",
          "rdiv_scalar", "fully_connected", "convolution", "batch_norm", "pooling"}


def last_reads(program: Program) -> Dict[int, int]:
    """slot -> index of the last step that reads it."""
    last = {}
    for i, st in enumerate(program.steps):
        for s in st.ins:
            last[s] = i
    return last


def plan_memory(program: Program, ctx=None) -> Program:
    keep = program.sources() | {s for s in program.outputs if s is not None}
    last = last_reads(program)
    producers = program.producers()
    readers = program.readers()
    free_after: List[List[int]] = [[] for _ in program.steps]
    steps = list(program.steps)
    for i, st in enumerate(program.steps):
        for s in st.outs:
            if s not in last and s not in keep:
                free_after[i].append(s)
    for s, i in last.items():
        if s not in keep:
            free_after[i].append(s)
    for i, st in enumerate(steps):
        if st.op.name != "fused_elemwise":
            continue
        out = st.outs[0]
        for k, s in enumerate(st.ins):
            p = producers.get(s)
            if (s in keep or p is None or readers.get(s) != [i]
                    or program.steps[p[0]].op.name not in _FRESH
                    or program.shapes[s] != program.shapes[out]
                    or program.dtypes[s] != program.dtypes[out]):
                continue
            steps[i] = st.replace(attrs=dict(st.attrs, inplace=k))
            break
    new = program.replace(steps=steps)
    new.free_after = [tuple(f) for f in free_after]
    return new


def peak_bytes(program: Program, planned: bool = True) -> int:
    """The most bytes of step outputs alive at once: values die after their last read
    (``planned``) or all live until the call ends (not planned)."""
    last = last_reads(program)
    keep = {s for s in program.outputs if s is not None}
    live, peak = 0, 0
    dying: Dict[int, List[int]] = {}
    for s, i in last.items():
        dying.setdefault(i, []).append(s)
    made = set()
    for i, st in enumerate(program.steps):
        for s in st.outs:
            live += program.nbytes(s)
            made.add(s)
        peak = max(peak, live)
        if planned:
            for s in st.outs:
                if s not in last and s not in keep:
                    live -= program.nbytes(s)
            for s in dying.get(i, ()):
                if s in made and s not in keep:
                    live -= program.nbytes(s)
    return peak
