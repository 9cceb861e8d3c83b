"""Rules the op families share: the out_grad check of a fused backward op and the refusal
of its gradient (a second order goes through the forward op's composite rule)."""
from __future__ import annotations

from typing import Sequence

import hal
from mxcore.base import MXCoreError
from mxcore.op import Op


def check_out_grad(shape: Sequence[int], dtype, want_shape: Sequence[int], want_dtype,
                   what: str) -> None:
    """Raise unless out_grad (``shape``, ``dtype``) is ``what``'s (``want_*``)."""
    if tuple(shape) != tuple(want_shape) or dtype != want_dtype:
        raise MXCoreError(f"out_grad shape {tuple(shape)} {hal.dtype_name(dtype)} does not "
                          f"match {what} {tuple(want_shape)} {hal.dtype_name(want_dtype)}")


def refuse_gradient(backward: Op, forward: str) -> None:
    """``backward`` (``forward``'s fused first-order gradient) has no gradient rule."""
    @backward.def_grad
    def _refuse(ctx, *grads):
        raise MXCoreError(f"{backward.name} has no gradient rule: higher-order gradients of "
                          f"{forward} go through its composite rule (autograd with "
                          "create_graph=True)")
