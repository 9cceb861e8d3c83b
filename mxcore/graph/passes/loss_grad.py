"""A loss and its gradient from one computation.

A program that holds a whole training step (forward and backward traced together:
``gluon.TrainStep``) computes ``softmax_ce_loss(x, label)`` for the loss value and,
later, ``softmax_ce_loss_grad(x, label, g)`` for the backward: two softmaxes of the
same ``x``.  This pass makes the pair one ``softmax_ce_loss_with_grad`` step, in the
loss's place, when the head gradient ``g`` is known there (a program input, or computed
before the loss).  The fused kernel does the two kernels' operations in the same order,
so results keep their bits.  A program with only one of the two (a forward, a backward)
is left as it is, as is a device with no kernel for the fused op.
"""
from __future__ import annotations

from mxcore.graph.program import Program

#: loss op -> (its gradient op, the op computing both)
PAIRS = {"softmax_ce_loss": ("softmax_ce_loss_grad", "softmax_ce_loss_with_grad")}


def _has_kernel(op_name: str, kind: str, dtype) -> bool:
    import hal
    from mxcore.base import MXCoreError
    from mxcore.plugins import registry
    try:
        registry().resolve(op_name, kind, hal.dtype_name(dtype))
    except MXCoreError:
        return False
    return True


def fuse_loss_gradient(program: Program, ctx=None) -> Program:
    from mxcore.plugins import registry
    kind = getattr(ctx, "kind", "cpu")
    producers = program.producers()
    sources = program.sources()
    steps = list(program.steps)
    drop = set()
    for i, st in enumerate(steps):
        pair = PAIRS.get(st.op.name)
        if pair is None or len(st.outs) != 1:
            continue
        grad_name, fused_name = pair
        for j in range(i + 1, len(steps)):
            gst = steps[j]
            if (gst.op.name != grad_name or j in drop or gst.ins[:2] != st.ins
                    or gst.attrs.get("axis") != st.attrs.get("axis")):
                continue
            g = gst.ins[2]
            if g not in sources and producers.get(g, (len(steps),))[0] >= i:
                continue  # the head gradient is not known where the loss is computed
            if not _has_kernel(fused_name, kind, program.dtypes[st.ins[0]]):
                return program
            fused = registry().op(fused_name)
            steps[i] = st.replace(op=fused, ins=st.ins + (g,), attrs=dict(st.attrs),
                                  outs=st.outs + gst.outs,
                                  name=f"{st.name}+{gst.name.rsplit(':', 1)[-1]}")
            drop.add(j)
            break
    if not drop:
        return program
    return program.replace(steps=[st for k, st in enumerate(steps) if k not in drop],
                           free_after=None)
