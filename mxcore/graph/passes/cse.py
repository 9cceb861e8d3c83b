"""Common subexpression elimination: a pure step with the same op, inputs and
attributes as an earlier one reads the earlier one's outputs instead."""
from __future__ import annotations

from mxcore.graph.program import Program


def _key(step):
    items = []
    for k, v in sorted(step.attrs.items()):
        try:
            hash(v)
        except TypeError:
            v = repr(v)
        items.append((k, v))
    return step.op.name, step.ins, tuple(items), str(step.dtype)


def eliminate_common_subexpressions(program: Program, ctx=None) -> Program:
    seen, alias, steps = {}, {}, []
    for st in program.steps:
        if alias and any(s in alias for s in st.ins):
            st = st.replace(ins=tuple(alias.get(s, s) for s in st.ins))
        if not st.pure or not st.ins:  # creation ops may make arrays the caller writes
            steps.append(st)
            continue
        key = _key(st)
        first = seen.get(key)
        if first is None:
            seen[key] = st
            steps.append(st)
            continue
        for a, b in zip(st.outs, first.outs):
            alias[a] = b
    if not alias:
        return program
    return program.replace(steps=steps).renamed(alias)
