"""``fused_elemwise``: a chain of elementwise ops computed by one kernel.

Graph fusion (``mxcore.graph.passes.fuse``) replaces a chain of elementwise steps
whose intermediate values nothing else reads by one step of this op.  Its attribute
``chain`` is a tuple of entries ``(op name, args, scalar)``: ``args`` index the step's
inputs (``k >= 0``) or earlier entries' results (``-1`` is entry 0, ``-2`` entry 1...),
``scalar`` is the scalar operand of ``*_scalar`` ops (else None); the last entry's
result is the output.  All inputs and the output share one shape and dtype.

``inplace`` (set by memory planning) names an input whose buffer dies at this step
and may take the output; ``scratch`` is a dict the kernel may keep temporary buffers in
across calls (``static_alloc``).  A device offers a fuser by registering a kernel for
this op whose function has a ``fusable`` attribute: the op names it implements.
The op is not differentiable: plans record their own gradient (one tape node per
plan), so a fused step is never on the tape.
"""
from __future__ import annotations

from mxcore.op import REQUIRED, Op

FUSED_ELEMWISE = Op("fused_elemwise", -1, attrs={"chain": REQUIRED, "inplace": -1,
                                                 "scratch": None},
                    volatile_attrs=("scratch",), state_attrs=("scratch",),
                    overwrites=lambda a: (a["inplace"],) if a.get("inplace", -1) >= 0 else (),
                    doc="a chain of elementwise ops in one kernel (graph fusion)")


@FUSED_ELEMWISE.def_infer
def _fused_infer(shapes, dtypes, attrs):
    return [tuple(shapes[0])], [dtypes[0]]


OPS = [FUSED_ELEMWISE]
