"""Connectionist Temporal Classification loss (MXNet's CTCLoss / ctc_loss).

``data`` is (T, N, C): unnormalised scores per time step, sequence and class; the op
applies the softmax over C itself.  ``label`` is (N, L): class indices, one row per
sequence.  One class is the blank: class 0 with ``blank_label='first'`` (labels are then
1..C-1 and rows are padded with 0), class C-1 with ``'last'`` (labels 0..C-2, padded
with -1).  A row's length is ``label_lengths`` when ``use_label_lengths``, else the
position of its first padding value; a sequence's length is ``data_lengths`` when
``use_data_lengths``, else T.  Label values are truncated to integers, as MXNet does.

The output is the negative log-likelihood of each row's label sequence, shape (N,).  As in
MXNet 1.9.1, a label that cannot be aligned within its sequence (length plus repeated
neighbours above the sequence length) costs 0 and gets a zero gradient.

The gradient with respect to ``data`` is ``softmax(data) - posterior class occupancy``
(from the alpha-beta recursions) for the steps within each sequence's length, 0 after.
As MXNet does, the forward computes it while recording and keeps it as a workspace
output; the backward scales it by the output gradient.  The op is differentiable once
(as MXNet's).
"""
from __future__ import annotations

from typing import Optional

import hal

from mxcore import autograd
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke
from mxcore.array import NDArray
from mxcore.op import Op

__all__ = ["ctc_loss", "CTCLoss"]

#: which class is the blank, and the value that pads label rows, per ``blank_label``
BLANKS = {"first": 0, "last": -1}

_ATTRS = {"use_data_lengths": False, "use_label_lengths": False, "blank_label": "first",
          "keep_workspace": False}
CTC_LOSS = Op("ctc_loss", -1, nout=2, attrs=dict(_ATTRS), aliases=("CTCLoss",),
              saves_output=True,
              doc="per-sequence CTC negative log-likelihood of (T, N, C) scores (softmax "
                  "applied inside) against (N, L) labels: (data, label[, data_lengths]"
                  "[, label_lengths]) -> (loss (N,), workspace: d loss / d data when "
                  "keep_workspace, else empty)")
OPS = [CTC_LOSS]


def _input_names(a):
    return (("data", "label") + (("data_lengths",) if a["use_data_lengths"] else ())
            + (("label_lengths",) if a["use_label_lengths"] else ()))


@CTC_LOSS.def_infer
def _ctc_infer(s, d, a):
    if a["blank_label"] not in BLANKS:
        raise MXCoreError(f"blank_label must be one of {tuple(BLANKS)}, got "
                          f"{a['blank_label']!r}")
    names = _input_names(a)
    if len(s) != len(names):
        raise MXCoreError(f"expected {len(names)} inputs ({', '.join(names)}), got {len(s)}")
    x, label = tuple(s[0]), tuple(s[1])
    if len(x) != 3:
        raise MXCoreError(f"data must be 3-d (sequence length, batch, classes); got shape {x}")
    if len(label) != 2:
        raise MXCoreError(f"label must be 2-d (batch, label length); got shape {label}")
    t, n, c = x
    if label[0] != n:
        raise MXCoreError(f"label batch size {label[0]} differs from data's {n} (data is "
                          f"(sequence length, batch, classes))")
    if label[1] > t:
        raise MXCoreError(f"label length {label[1]} exceeds the sequence length {t} of data")
    if c < 1:
        raise MXCoreError(f"data has no classes: shape {x}")
    for name, shape in zip(names[2:], s[2:]):
        if tuple(shape) != (n,):
            raise MXCoreError(f"{name} shape {tuple(shape)} must be (batch,) = ({n},)")
    if not hal.is_float(hal.to_dtype(d[0])):
        raise MXCoreError(f"data must be a float array, got {d[0]}")
    for name, dt in zip(names[1:], d[1:]):
        if hal.to_dtype(dt).kind == "b":
            raise MXCoreError(f"{name} must be numeric, got {dt}")
    work = x if a["keep_workspace"] else (0,)
    return [(n,), work], [d[0], d[0]]


@CTC_LOSS.def_grad
def _ctc_grad(c, g_loss, g_work=None):
    if g_work is not None:
        raise MXCoreError("ctc_loss is differentiable once (as in MXNet): its gradient "
                          "cannot be differentiated again")
    grads = [None] * len(c.inputs)
    if not c.needs_grad(0) or g_loss is None:
        return tuple(grads)
    if not c.attrs["keep_workspace"]:
        raise MXCoreError("ctc_loss was run without its workspace (keep_workspace=False): "
                          "it cannot be differentiated")
    from mxcore.ops.elemwise import broadcast_mul
    from mxcore.ops.shape import reshape
    grads[0] = broadcast_mul(reshape(g_loss, (1, -1, 1)), c.outputs[1])
    return tuple(grads)


def ctc_loss(data: Optional[NDArray] = None, label: Optional[NDArray] = None,
             data_lengths: Optional[NDArray] = None, label_lengths: Optional[NDArray] = None,
             use_data_lengths: bool = False, use_label_lengths: bool = False,
             blank_label: str = "first", out: Optional[NDArray] = None,
             name: Optional[str] = None) -> NDArray:
    """MXNet's ctc_loss / CTCLoss (see the module docstring): the CTC negative
    log-likelihood of each sequence, shape (N,).  ``name`` is accepted for
    compatibility."""
    attrs = {"use_data_lengths": bool(use_data_lengths),
             "use_label_lengths": bool(use_label_lengths),
             "blank_label": blank_label, "keep_workspace": False}
    inputs = [data, label]
    if attrs["use_data_lengths"]:
        inputs.append(data_lengths)
    if attrs["use_label_lengths"]:
        inputs.append(label_lengths)
    shown = [x for x in inputs if isinstance(x, NDArray)]
    try:
        for given, flag in ((data_lengths, "use_data_lengths"),
                            (label_lengths, "use_label_lengths")):
            if given is not None and not attrs[flag]:
                raise MXCoreError(f"{flag}=False, but lengths were given: set "
                                  f"{flag}=True to use them")
        if not all(isinstance(x, NDArray) for x in inputs):
            missing = [nm for nm, x in zip(_input_names(attrs), inputs)
                       if not isinstance(x, NDArray)]
            raise MXCoreError(f"expected NDArray inputs; missing or not an NDArray: "
                              f"{', '.join(missing)}")
        attrs["keep_workspace"] = autograd.is_recording() and data._ag is not None
        CTC_LOSS.infer_shape_dtype([x.shape for x in inputs], [x.dtype for x in inputs],
                                   attrs)
    except MXCoreError as exc:
        raise OperatorError("ctc_loss", str(exc), [x.shape for x in shown],
                            [x.dtype for x in shown],
                            shown[0].context if shown else None) from None
    result = invoke(CTC_LOSS, tuple(inputs), attrs)[0]
    if out is None:
        return result
    out[:] = result
    return out


CTCLoss = ctc_loss
