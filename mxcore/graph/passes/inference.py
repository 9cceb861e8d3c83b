"""Rewrites valid only for inference (programs traced outside training).

``drop_dropout``: dropout outside training passes its input on; the step goes (unless it
is ``mode='always'`` dropout, which runs in inference too).

``fold_batch_norm``: a BatchNorm on moving statistics right after a convolution or a
fully connected layer (whose output nothing else reads) is folded into it: the layer
uses ``W * s`` and ``(b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``,
computed per call from the parameters (a few small ops; the activation pass of the
BatchNorm is gone).  Equal up to rounding, not bit for bit: it belongs to the
``fold_bn`` backend (``optimize_for(x, backend='fold_bn')``)."""
from __future__ import annotations

from mxcore.graph.program import Program, Step


def drop_dropout(program: Program, ctx=None) -> Program:
    if program.training:
        return program
    dropped = [st for st in program.steps
               if st.op.name == "dropout" and not st.attrs.get("always", False)]
    if not dropped:
        return program
    alias = {st.outs[0]: st.ins[0] for st in dropped}
    steps = [st for st in program.steps if not any(st is d for d in dropped)]
    return program.replace(steps=steps).renamed(alias)


def _op(name):
    from mxcore.plugins import registry
    return registry().ops[name]


def _foldable(program, layer, bn, readers) -> bool:
    if layer.op.name not in ("convolution", "fully_connected") or len(layer.outs) != 1:
        return False
    if layer.op.name == "fully_connected" and (layer.attrs.get("act_type")
                                               or len(program.shapes[layer.outs[0]]) != 2):
        return False
    y = layer.outs[0]
    return (bn.ins[0] == y and readers.get(y) == [bn] and y not in program.outputs
            and bn.attrs.get("axis", 1) == 1
            and not (bn.attrs.get("training") and not bn.attrs.get("use_global_stats")))


def fold_batch_norm(program: Program, ctx=None) -> Program:
    if program.training:
        return program
    producers = program.producers()
    readers = {}
    for st in program.steps:
        for s in set(st.ins):
            readers.setdefault(s, []).append(st)
    folds = {}
    for st in program.steps:
        if st.op.name != "batch_norm":
            continue
        p = producers.get(st.ins[0])
        if p is not None and _foldable(program, program.steps[p[0]], st, readers):
            folds[id(program.steps[p[0]])] = st
    if not folds:
        return program
    new = program.replace(shapes=list(program.shapes), dtypes=list(program.dtypes))
    skip = {id(bn) for bn in folds.values()}
    steps = []
    for st in program.steps:
        if id(st) in skip:
            continue
        bn = folds.get(id(st))
        if bn is None:
            steps.append(st)
            continue
        steps.extend(_folded(new, st, bn))
    new.steps = steps
    return new


def _folded(prog: Program, layer: Step, bn: Step):
    """Steps computing ``layer`` with ``bn`` folded in, writing bn's output slot."""
    _, gamma, beta, mean, var = bn.ins
    w = layer.ins[1]
    bias = None if layer.attrs.get("no_bias") else layer.ins[2]
    c = prog.shapes[gamma]
    dt = prog.dtypes[w]
    out = []

    def emit(name, ins, attrs, shape):
        slot = prog.new_slot(shape, dt)
        out.append(Step(_op(name), ins, attrs, (slot,), name=bn.name + ":fold:" + name))
        return slot

    std = emit("sqrt", (emit("add_scalar", (var,), {"scalar": float(bn.attrs["eps"])}, c),),
               {}, c)
    if bn.attrs.get("fix_gamma"):
        s = emit("rdiv_scalar", (std,), {"scalar": 1.0}, c)
    else:
        s = emit("divide", (gamma, std), {}, c)
    wshape = prog.shapes[w]
    s_col = emit("reshape", (s,), {"shape": (c[0],) + (1,) * (len(wshape) - 1)},
                 (c[0],) + (1,) * (len(wshape) - 1))
    w2 = emit("multiply", (w, s_col), {}, wshape)
    shifted = emit("subtract", (bias, mean), {}, c) if bias is not None else \
        emit("negative", (mean,), {}, c)
    b2 = emit("add", (emit("multiply", (shifted, s), {}, c), beta), {}, c)
    attrs = dict(layer.attrs, no_bias=False)
    out.append(Step(layer.op, (layer.ins[0], w2, b2), attrs, bn.outs,
                    name=layer.name + "+" + bn.name))
    return out
