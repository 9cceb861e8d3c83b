"""Batch normalisation (MXNet's BatchNorm).

While training (``autograd.is_training()``), and unless ``use_global_stats``, the batch's
per-channel mean and (biased) variance normalise the data; otherwise the moving averages
do.  As in MXNet, the moving averages are updated in place by the backward pass
(``moving = moving * momentum + batch * (1 - momentum)``), so a forward pass alone never
changes them.  ``fix_gamma`` uses gamma = 1 (and gives gamma no gradient).  The backward
is one op, ``batch_norm_backward``, not differentiable again.
"""
from __future__ import annotations

from typing import Optional

from mxcore import autograd
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke
from mxcore.ndarray.ndarray import NDArray
from mxcore.op import Op

_ATTRS = {"eps": 1e-3, "momentum": 0.9, "fix_gamma": True, "use_global_stats": False,
          "axis": 1, "training": False}
BATCH_NORM = Op("batch_norm", 5, attrs=dict(_ATTRS), aliases=("BatchNorm",),
                doc="per-channel normalisation of data by batch or moving statistics, "
                    "then gamma * x + beta")


def _bn_backward_mutates(attrs):
    return (3, 4) if attrs["training"] and not attrs["use_global_stats"] else ()


BN_BACKWARD = Op("batch_norm_backward", 5, nout=-1,
                 attrs={**_ATTRS, "grads": (True, True, True)}, mutates=_bn_backward_mutates,
                 doc="batch_norm's gradients in one op: (out_grad, data, gamma, moving_mean, "
                     "moving_var) -> the gradients ``grads`` asks for, of (data, gamma, "
                     "beta); updates the moving averages when training on batch statistics")
OPS = [BATCH_NORM, BN_BACKWARD]


@BATCH_NORM.def_infer
def _bn_infer(s, d, a):
    x = s[0]
    if not x:
        raise MXCoreError("data must have at least one axis")
    axis = a["axis"]
    if not 0 <= axis < len(x):
        raise MXCoreError(f"axis {axis} is out of range for {len(x)}-d data")
    c = x[axis]
    names = ("gamma", "beta", "moving_mean", "moving_var")
    for name, shape in zip(names, s[1:]):
        if tuple(shape) != (c,):
            raise MXCoreError(f"{name} shape {tuple(shape)} does not match the {c} channels "
                              f"of data {tuple(x)} on axis {axis}")
    if len(set(d)) > 1:
        raise MXCoreError("dtypes differ (" + ", ".join(f"{n} {t}" for n, t in
                                                      zip(("data",) + names, d))
                          + "); cast with .astype() first")
    return [tuple(x)], [d[0]]


@BATCH_NORM.def_grad
def _bn_grad(c, g):
    want = (c.needs_grad(0), c.needs_grad(1), c.needs_grad(2))
    if not any(want):
        return (None,) * 5
    x, gamma, _, mean, var = c.inputs
    outs = iter(invoke(BN_BACKWARD, (g, x, gamma, mean, var), {**c.attrs, "grads": want}))
    return tuple(next(outs) if w else None for w in want) + (None, None)


@BN_BACKWARD.def_infer
def _bn_backward_infer(s, d, a):
    want = tuple(bool(v) for v in a["grads"])
    if len(want) != 3 or not any(want):
        raise MXCoreError(f"grads must be 3 flags, at least one set; got {a['grads']!r}")
    fwd = {k: v for k, v in a.items() if k != "grads"}
    (out,), (dt,) = _bn_infer((s[1], s[2], s[2], s[3], s[4]), (d[1],) + (d[2],) * 4, fwd)
    if tuple(s[0]) != out:
        raise MXCoreError(f"out_grad {tuple(s[0])} must have the data's shape {out}")
    shapes = [tuple(s[1]), tuple(s[2]), tuple(s[2])]
    return [shapes[i] for i in range(3) if want[i]], [dt] * sum(want)


@BN_BACKWARD.def_grad
def _bn_backward_grad(c, *g):
    raise MXCoreError("batch_norm_backward has no gradient rule: batch_norm is "
                      "differentiable once here")


def batch_norm(data: NDArray, gamma: NDArray, beta: NDArray, moving_mean: NDArray,
               moving_var: NDArray, eps: float = 1e-3, momentum: float = 0.9,
               fix_gamma: bool = True, use_global_stats: bool = False,
               output_mean_var: bool = False, axis: int = 1, cudnn_off: bool = False,
               min_calib_range=None, max_calib_range=None,
               name: Optional[str] = None) -> NDArray:
    """MXNet's BatchNorm (see the module docstring).  ``output_mean_var`` is not
    supported; ``cudnn_off``, the calibration ranges and ``name`` are accepted for
    compatibility."""
    inputs = (data, gamma, beta, moving_mean, moving_var)
    try:
        if output_mean_var:
            raise MXCoreError("output_mean_var=True is not supported")
        ax = int(axis)
        if not -data.ndim <= ax < max(data.ndim, 1):
            raise MXCoreError(f"axis {axis} is out of range for {data.ndim}-d data")
        attrs = {"eps": float(eps), "momentum": float(momentum), "fix_gamma": bool(fix_gamma),
                 "use_global_stats": bool(use_global_stats), "axis": ax % data.ndim,
                 "training": autograd.is_training()}
        _bn_infer([x.shape for x in inputs], [x.dtype for x in inputs], attrs)
    except MXCoreError as exc:
        raise OperatorError("BatchNorm", str(exc), [x.shape for x in inputs],
                            [x.dtype for x in inputs], data.context) from None
    return invoke(BATCH_NORM, inputs, attrs)


BatchNorm = batch_norm
