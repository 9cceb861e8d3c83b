"""Dead code elimination: drop the steps nothing reads (ops that write in place stay)."""
from __future__ import annotations

from mxcore.graph.program import Program, live_steps


def eliminate_dead_code(program: Program, ctx=None) -> Program:
    keep = live_steps(program, program.outputs)
    if all(keep):
        return program
    return program.replace(steps=[st for st, k in zip(program.steps, keep) if k])
