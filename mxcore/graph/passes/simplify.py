"""Algebraic simplification: steps that return their input unchanged are removed
(``x * 1``, ``x / 1``, ``x + 0``, ``x - 0``, a reshape or cast to what the value
already is, a transpose undone by the next one); a reshape of a reshape reads the
first one's input.  Removing a step makes its readers read its input: exact, since
these steps compute nothing."""
from __future__ import annotations

from typing import Optional

from mxcore.graph.program import Program, Step

#: scalar op -> the scalar that makes it the identity
_NEUTRAL = {"mul_scalar": 1.0, "div_scalar": 1.0, "add_scalar": 0.0, "sub_scalar": 0.0,
            "pow_scalar": 1.0}


def _identity_input(program: Program, st: Step, producers) -> Optional[int]:
    """The input slot ``st`` merely passes on, or None."""
    name = st.op.name
    x = st.ins[0] if st.ins else None
    if x is None or len(st.outs) != 1:
        return None
    out = st.outs[0]
    if name == "transpose":  # undone by the transpose before it?
        p = producers.get(x)
        first = program.steps[p[0]] if p is not None else None
        if first is None or first.op.name != "transpose":
            return None
        a, b = tuple(first.attrs["axes"]), tuple(st.attrs["axes"])
        if len(a) == len(b) and all(a[b[i]] == i for i in range(len(b))):
            return first.ins[0]
        return None
    if program.shapes[x] != program.shapes[out] or program.dtypes[x] != program.dtypes[out]:
        return None
    if name in _NEUTRAL:
        s = st.attrs.get("scalar")
        return x if isinstance(s, (int, float)) and float(s) == _NEUTRAL[name] else None
    if name in ("reshape", "cast", "copy"):
        return x
    return None


def simplify(program: Program, ctx=None) -> Program:
    producers = program.producers()
    mutated = {st.ins[i] for st in program.steps for i in st.mutating}
    alias, steps = {}, []
    for i, st in enumerate(program.steps):
        if alias and any(s in alias for s in st.ins):
            st = st.replace(ins=tuple(_find(alias, s) for s in st.ins))
        src = _identity_input(program, st, producers)
        if src is not None and src not in mutated and st.outs[0] not in mutated:
            alias[st.outs[0]] = src
            continue
        if st.op.name == "reshape":  # reshape(reshape(x)) -> reshape(x)
            p = producers.get(st.ins[0])
            if p is not None and program.steps[p[0]].op.name == "reshape":
                st = st.replace(ins=(program.steps[p[0]].ins[0],))
        steps.append(st)
    if not alias and steps == program.steps:
        return program
    return program.replace(steps=steps).renamed(alias)


def _find(alias, s):
    while s in alias:
        s = alias[s]
    return s
