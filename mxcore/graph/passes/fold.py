"""Constant folding: a pure step whose inputs are all constants is computed once, on
the host (CPU kernels), and becomes a constant."""
from __future__ import annotations

import numpy as np

from mxcore.graph.program import Program

#: constants larger than this are not materialised (a folded ``zeros((8192, 8192))``
#: would cost memory that computing it per call does not)
MAX_BYTES = 1 << 20


def fold_constants(program: Program, ctx=None) -> Program:
    consts = dict(program.constants)
    if not consts:
        return program
    steps, changed = [], False
    for st in program.steps:
        if (st.ins and st.pure and all(s in consts for s in st.ins)
                and all(program.nbytes(o) <= MAX_BYTES for o in st.outs)):
            values = _evaluate(st, [consts[s] for s in st.ins])
            if values is not None:
                for slot, v in zip(st.outs, values):
                    consts[slot] = v
                changed = True
                continue
        steps.append(st)
    if not changed:
        return program
    return program.replace(steps=steps, constants=list(consts.items()))


def _evaluate(step, hosts):
    """The step's outputs as host arrays, or None when the CPU cannot compute it."""
    import hal
    from mxcore.base import MXCoreError
    from mxcore.dispatch import invoke
    from mxcore.ops.creation import array
    cpu = hal.Device("cpu", 0)
    try:
        out = invoke(step.op, [array(h, ctx=cpu, dtype=h.dtype) for h in hosts], step.attrs)
    except MXCoreError:
        return None
    outs = out if isinstance(out, tuple) else (out,)
    return [np.array(o.asnumpy(), copy=True) for o in outs]
