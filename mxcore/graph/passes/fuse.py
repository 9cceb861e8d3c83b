"""Elementwise fusion: chains of elementwise steps become one ``fused_elemwise`` step.

A step is a candidate when it has one output, is pure, takes only arrays of its
output's shape and dtype (no broadcasting), has no attribute but a ``scalar``, and
the device's fuser implements its op (the ``fusable`` names of the device's
``fused_elemwise`` kernel).  A candidate absorbs the chains that compute its inputs
when those values have no other reader and are not program outputs, so every fused
value is read once, inside the chain.  Where the device offers no fuser the program
is left as it is.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from mxcore.graph.program import Program, Step


def fuser_ops(kind: str, dtype) -> frozenset:
    """The op names the fuser of device kind ``kind`` implements for ``dtype``."""
    from mxcore.base import MXCoreError
    from mxcore.plugins import registry
    import hal
    try:
        kernel = registry().resolve("fused_elemwise", kind, hal.dtype_name(dtype))
    except MXCoreError:
        return frozenset()
    return frozenset(getattr(kernel.fn, "fusable", ()))


def _candidate(program: Program, st: Step, fusable) -> bool:
    if len(st.outs) != 1 or not st.ins or not st.pure or st.op.name not in fusable:
        return False
    if set(st.attrs) - {"scalar"}:
        return False
    out = st.outs[0]
    shape, dtype = program.shapes[out], program.dtypes[out]
    return all(program.shapes[s] == shape and program.dtypes[s] == dtype for s in st.ins)


def fuse_elementwise(program: Program, ctx=None) -> Program:
    kind = getattr(ctx, "kind", "cpu")
    cache: Dict[str, frozenset] = {}

    def fusable(st):
        dt = program.dtypes[st.outs[0]]
        key = str(dt)
        if key not in cache:
            cache[key] = fuser_ops(kind, dt)
        return _candidate(program, st, cache[key])

    readers = program.readers()
    outputs = set(program.outputs)
    group_of: Dict[int, List[int]] = {}   # step index -> its group (step indices)
    owner: Dict[int, int] = {}            # slot -> index of the step whose group holds it
    for i, st in enumerate(program.steps):
        if not fusable(st):
            continue
        group = []
        for s in dict.fromkeys(st.ins):
            j = owner.get(s)
            if j is not None and readers.get(s) == [i] and s not in outputs:
                group.extend(group_of.pop(j))
        group.append(i)
        group_of[i] = group
        owner[st.outs[0]] = i
    groups = {last: g for last, g in group_of.items() if len(g) > 1}
    if not groups:
        return program
    members = {i for g in groups.values() for i in g}
    from mxcore.ops.fused import FUSED_ELEMWISE
    steps = []
    for i, st in enumerate(program.steps):
        if i in groups:
            steps.append(_fused_step(program, [program.steps[k] for k in groups[i]],
                                     FUSED_ELEMWISE))
        elif i not in members:
            steps.append(st)
    return program.replace(steps=steps)


def _fused_step(program: Program, chain_steps: List[Step], op) -> Step:
    inputs: List[int] = []
    result: Dict[int, int] = {}  # slot -> -(entry index + 1)
    chain = []
    for j, st in enumerate(chain_steps):
        args = []
        for s in st.ins:
            ref: Optional[int] = result.get(s)
            if ref is None:
                if s not in inputs:
                    inputs.append(s)
                ref = inputs.index(s)
            args.append(ref)
        chain.append((st.op.name, tuple(args), st.attrs.get("scalar")))
        result[st.outs[0]] = -(j + 1)
    return Step(op, tuple(inputs), {"chain": tuple(chain), "inplace": -1, "scratch": None},
                chain_steps[-1].outs, name=chain_steps[-1].name + "+fused(" + ",".join(
                    st.op.name for st in chain_steps) + ")")
