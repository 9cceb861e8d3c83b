"""Pairing an op with a backward op that computes all its input gradients in one
kernel (the pattern of ops whose gradient is a hand-written kernel: Correlation,
BilinearSampler)."""
from __future__ import annotations

from typing import Callable

from mxcore.base import MXCoreError
from mxcore.dispatch import invoke
from mxcore.op import Op


def fused_backward(forward: Op, backward: Op, forward_infer: Callable) -> None:
    """Make ``backward`` (inputs: the output gradient, then ``forward``'s inputs; one
    output per input, shaped and typed like it) ``forward``'s gradient rule.  Its shape
    rule is ``forward_infer`` on the forward inputs plus a check of the output
    gradient; it is differentiable once (its own gradient is refused)."""
    def infer(s, d, a):
        (out,), _ = forward_infer(s[1:], d[1:], a)
        if tuple(s[0]) != tuple(out):
            raise MXCoreError(f"out_grad shape {tuple(s[0])} differs from the output's "
                              f"{tuple(out)}")
        return [tuple(x) for x in s[1:]], list(d[1:])

    def refuse(c, *g):
        raise MXCoreError(f"{backward.name} has no gradient rule: {forward.name} is "
                          "differentiable once")

    def rule(c, g):
        return tuple(invoke(backward, (g,) + tuple(c.inputs), c.attrs))

    backward.def_infer(infer)
    backward.def_grad(refuse)
    forward.def_grad(rule)
