"""Normalisation operators: MXNet's BatchNorm, InstanceNorm, GroupNorm, L2Normalization
and LRN.

BatchNorm: while training (``autograd.is_training()``), and unless ``use_global_stats``,
the batch's per-channel mean and (biased) variance normalise the data; otherwise the
moving averages do.  As in MXNet, the moving averages are updated in place by the backward
pass (``moving = moving * momentum + batch * (1 - momentum)``), so a forward pass alone
never changes them.  ``fix_gamma`` uses gamma = 1 (and gives gamma no gradient).  The
backward is one op, ``batch_norm_backward``, not differentiable again.

InstanceNorm and GroupNorm view data (N, C, *spatial) as (N, K, M) and normalise each of
the N * K rows by its own mean and biased variance, then scale and shift by a per-K gamma
and beta: K is C for InstanceNorm and ``num_groups`` for GroupNorm (MXNet 1.x's GroupNorm
has one gamma/beta per group, not per channel).  Their first-order backward is one fused
op each (``instance_norm_backward``, ``group_norm_backward``); under
``create_graph=True`` the rule records core ops instead, so they differentiate again.

L2Normalization divides by ``sqrt(sum(x ** 2) + eps)`` over the axes its ``mode`` names;
its gradient is written in core ops.  LRN divides each element by
``(knorm + alpha / nsize * sum of squares over nsize neighbouring channels) ** beta``;
its backward is one op, ``lrn_backward``, not differentiable again (as in MXNet).
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

from mxcore import autograd
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke
from mxcore.array import NDArray
from mxcore.op import REQUIRED, Op
from mxcore.ops import elemwise as E
from mxcore.ops.reduce import mean as _mean
from mxcore.ops.reduce import sum as _sum
from mxcore.ops.shape import reshape

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
    """MXNet's BatchNorm (see the module docstring).  ``output_mean_var=True`` also
    returns the mean and the inverse standard deviation 1/sqrt(var + eps) it
    normalised with, per channel, as MXNet does; ``cudnn_off``, the calibration ranges
    and ``name`` are accepted for compatibility."""
    inputs = (data, gamma, beta, moving_mean, moving_var)
    try:
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
    out = invoke(BATCH_NORM, inputs, attrs)
    if not output_mean_var:
        return out
    mean, var = _bn_statistics(data, moving_mean, moving_var, attrs)
    return out, mean, (var + attrs["eps"]).rsqrt()


def _bn_statistics(data, moving_mean, moving_var, attrs):
    """The per-channel (mean, biased variance) a BatchNorm call normalises with: the
    batch's while training on batch statistics, else the moving ones."""
    if attrs["training"] and not attrs["use_global_stats"]:
        others = tuple(i for i in range(data.ndim) if i != attrs["axis"])
        mean = data.mean(axis=others, keepdims=True)
        var = E.square(data - mean).mean(axis=others)
        return mean.reshape((-1,)), var
    return moving_mean.copy(), moving_var.copy()


BatchNorm = batch_norm
BatchNorm_v1 = batch_norm  # MXNet's older BatchNorm (channel axis 1): the same computation


# instance and group normalisation ---------------------------------------------------------
_NORM_PARAMS = ("gamma", "beta")


def _affine_check(s, d, k: int, what: str) -> None:
    """gamma and beta must be (k,) and every dtype the data's."""
    for name, shape in zip(_NORM_PARAMS, s[1:]):
        if tuple(shape) != (k,):
            raise MXCoreError(f"{name} shape {tuple(shape)} must be ({k},): {what}")
    if len(set(d)) > 1:
        raise MXCoreError("dtypes differ (" + ", ".join(
            f"{n} {t}" for n, t in zip(("data",) + _NORM_PARAMS, d)) + "); cast with .astype() "
            "first")


def _spatial_data(x, op: str) -> Tuple[int, ...]:
    x = tuple(x)
    if len(x) < 3:
        raise MXCoreError(f"data must have rank >= 3 (batch, channel, spatial...) for {op}; "
                          f"got shape {x}")
    return x


def _instance_infer(s, d, a):
    x = _spatial_data(s[0], "InstanceNorm")
    _affine_check(s, d, x[1], f"one value per channel of data {x}")
    return [x], [d[0]]


def _group_infer(s, d, a):
    x = _spatial_data(s[0], "GroupNorm")
    g = a["num_groups"]
    if g < 1 or x[1] % g:
        raise MXCoreError(f"the {x[1]} channels of data {x} do not split into num_groups={g} "
                          "equal groups")
    _affine_check(s, d, g, f"one value per group (num_groups={g}), as in MXNet 1.x")
    return [x], [d[0]]


def _backward_infer(forward):
    """The rule of a fused (out_grad, data, gamma) -> (d data, d gamma, d beta) op."""
    def rule(s, d, a):
        if tuple(s[0]) != tuple(s[1]):
            raise MXCoreError(f"out_grad shape {tuple(s[0])} differs from data shape "
                              f"{tuple(s[1])}")
        (x,), (dt,) = forward((s[1], s[2], s[2]), (d[1], d[2], d[0]), a)
        return [x, tuple(s[2]), tuple(s[2])], [dt] * 3
    return rule


def _rows(x: NDArray, k: int) -> Tuple[int, int, int]:
    """(N, K, M): the view whose N * K rows are normalised."""
    n = x.shape[0]
    return n, k, (x.size // (n * k)) if n * k else 0


def _grouped_grad_ops(c, g, k: int):
    """The gradients of a grouped normalisation in differentiable core ops (for
    ``create_graph=True``).  With x_hat = (x - mean) * rstd per row:
    dx = rstd * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)), dx_hat = g * gamma;
    dgamma = sum(g * x_hat), dbeta = sum(g) over N and M."""
    x, gamma, _ = c.inputs
    view = _rows(x, k)
    x3, g3 = reshape(x, view), reshape(g, view)
    d = x3 - _mean(x3, 2, keepdims=True)
    rstd = E.rsqrt(_mean(d * d, 2, keepdims=True) + c.attrs["eps"])
    xhat = d * rstd
    gx = None
    if c.needs_grad(0):
        dxhat = g3 * reshape(gamma, (1, k, 1))
        gx = reshape(rstd * (dxhat - _mean(dxhat, 2, keepdims=True)
                             - xhat * _mean(dxhat * xhat, 2, keepdims=True)), x.shape)
    ggamma = _sum(g3 * xhat, (0, 2)) if c.needs_grad(1) else None
    gbeta = _sum(g3, (0, 2)) if c.needs_grad(2) else None
    return gx, ggamma, gbeta


def _grouped_grad(backward: Op, groups):
    """First order: the fused backward op; while recording: core ops."""
    def rule(c, g):
        x, gamma, _ = c.inputs
        if autograd.is_recording():
            return _grouped_grad_ops(c, g, groups(c))
        outs = invoke(backward, (g, x, gamma), c.attrs)
        return tuple(v if c.needs_grad(i) else None for i, v in enumerate(outs))
    return rule


def _no_grad_rule(message: str):
    """The rule of a fused backward op: it is not differentiated again."""
    def rule(c, *g):
        raise MXCoreError(message)
    return rule


def _no_second_order(name: str, forward: str):
    return _no_grad_rule(f"{name} has no gradient rule; for higher-order gradients of "
                         f"{forward} use autograd.grad(..., create_graph=True), which records "
                         "the gradient in differentiable ops")


INSTANCE_NORM = Op("instance_norm", 3, attrs={"eps": 1e-3}, aliases=("InstanceNorm",),
                   doc="per-sample, per-channel normalisation over the spatial axes, then "
                       "gamma * x + beta per channel")
INSTANCE_NORM_BACKWARD = Op(
    "instance_norm_backward", 3, nout=3, attrs={"eps": 1e-3},
    doc="instance_norm's gradients in one kernel: (out_grad, data, gamma) -> "
        "(d data, d gamma, d beta)")
GROUP_NORM = Op("group_norm", 3, attrs={"num_groups": 1, "eps": 1e-5},
                aliases=("GroupNorm",),
                doc="per-sample normalisation over groups of channels (and the spatial "
                    "axes), then gamma * x + beta per group")
GROUP_NORM_BACKWARD = Op(
    "group_norm_backward", 3, nout=3, attrs={"num_groups": 1, "eps": 1e-5},
    doc="group_norm's gradients in one kernel: (out_grad, data, gamma) -> "
        "(d data, d gamma, d beta)")
OPS += [INSTANCE_NORM, INSTANCE_NORM_BACKWARD, GROUP_NORM, GROUP_NORM_BACKWARD]

INSTANCE_NORM.def_infer(_instance_infer)
GROUP_NORM.def_infer(_group_infer)
INSTANCE_NORM_BACKWARD.def_infer(_backward_infer(_instance_infer))
GROUP_NORM_BACKWARD.def_infer(_backward_infer(_group_infer))
INSTANCE_NORM.def_grad(_grouped_grad(INSTANCE_NORM_BACKWARD, lambda c: c.inputs[0].shape[1]))
GROUP_NORM.def_grad(_grouped_grad(GROUP_NORM_BACKWARD, lambda c: c.attrs["num_groups"]))
INSTANCE_NORM_BACKWARD.def_grad(_no_second_order("instance_norm_backward", "InstanceNorm"))
GROUP_NORM_BACKWARD.def_grad(_no_second_order("group_norm_backward", "GroupNorm"))


def _checked(op: str, rule, inputs, attrs) -> None:
    """Run ``rule`` on the inputs; its error becomes an OperatorError naming ``op``, the
    inputs and the device (numpy would broadcast a wrong-sized gamma silently)."""
    try:
        rule([x.shape for x in inputs], [x.dtype for x in inputs], attrs)
    except MXCoreError as exc:
        raise OperatorError(op, str(exc), [x.shape for x in inputs],
                            [x.dtype for x in inputs], inputs[0].context) from None


def instance_norm(data: NDArray, gamma: NDArray, beta: NDArray, eps: float = 1e-3,
                  name: Optional[str] = None) -> NDArray:
    """MXNet's InstanceNorm: each sample's channels, data (N, C, *spatial), normalised
    over their spatial axes to zero mean and unit (biased) variance plus ``eps``, then
    ``gamma * x_hat + beta`` with gamma and beta of shape (C,).  ``name`` is accepted for
    compatibility."""
    inputs, attrs = (data, gamma, beta), {"eps": float(eps)}
    _checked("InstanceNorm", _instance_infer, inputs, attrs)
    return invoke(INSTANCE_NORM, inputs, attrs)


def group_norm(data: NDArray, gamma: NDArray, beta: NDArray, num_groups: int = 1,
               eps: float = 1e-5, output_mean_var: bool = False,
               name: Optional[str] = None) -> Union[NDArray, Tuple[NDArray, NDArray, NDArray]]:
    """MXNet's GroupNorm: the C channels of data (N, C, *spatial) split into ``num_groups``
    groups; each sample's group is normalised over its channels and spatial axes, then
    ``gamma * x_hat + beta`` with gamma and beta of shape (num_groups,) (MXNet 1.x).
    ``output_mean_var=True`` also returns the (N, num_groups) mean and standard deviation
    ``sqrt(var + eps)``, computed by differentiable core ops (MXNet drops their
    gradients)."""
    inputs, attrs = (data, gamma, beta), {"num_groups": int(num_groups), "eps": float(eps)}
    _checked("GroupNorm", _group_infer, inputs, attrs)
    out = invoke(GROUP_NORM, inputs, attrs)
    if not output_mean_var:
        return out
    n, k, m = _rows(data, attrs["num_groups"])
    x3 = reshape(data, (n, k, m))
    mean = _mean(x3, 2)
    d = x3 - reshape(mean, (n, k, 1))
    return out, mean, E.sqrt(_mean(d * d, 2) + attrs["eps"])


def instance_norm_backward(out_grad: NDArray, data: NDArray, gamma: NDArray,
                           eps: float = 1e-3) -> Tuple[NDArray, NDArray, NDArray]:
    """The gradients ``(d data, d gamma, d beta)`` of ``instance_norm(data, gamma, beta,
    eps)`` given the output's gradient, in one fused kernel.  Not differentiable."""
    inputs, attrs = (out_grad, data, gamma), {"eps": float(eps)}
    _checked("instance_norm_backward", INSTANCE_NORM_BACKWARD.infer, inputs, attrs)
    return invoke(INSTANCE_NORM_BACKWARD, inputs, attrs)


def group_norm_backward(out_grad: NDArray, data: NDArray, gamma: NDArray, num_groups: int = 1,
                        eps: float = 1e-5) -> Tuple[NDArray, NDArray, NDArray]:
    """The gradients ``(d data, d gamma, d beta)`` of ``group_norm(data, gamma, beta,
    num_groups, eps)`` given the output's gradient, in one fused kernel.  Not
    differentiable."""
    inputs, attrs = (out_grad, data, gamma), {"num_groups": int(num_groups), "eps": float(eps)}
    _checked("group_norm_backward", GROUP_NORM_BACKWARD.infer, inputs, attrs)
    return invoke(GROUP_NORM_BACKWARD, inputs, attrs)


InstanceNorm = instance_norm
GroupNorm = group_norm


# L2 normalisation -------------------------------------------------------------------------
#: mode -> (the axes it normalises over, given ndim; the least rank it takes)
L2_MODES = {"instance": (lambda ndim: tuple(range(1, ndim)), 1),
            "channel": (lambda ndim: (1,), 3),
            "spatial": (lambda ndim: tuple(range(2, ndim)), 3)}

L2_NORMALIZATION = Op("l2_normalization", 1, attrs={"eps": 1e-10, "mode": "instance"},
                      aliases=("L2Normalization",), saves_output=True,
                      doc="x / sqrt(sum(x ** 2) + eps) over the axes ``mode`` names")
OPS.append(L2_NORMALIZATION)


@L2_NORMALIZATION.def_infer
def _l2_infer(s, d, a):
    x, mode = tuple(s[0]), a["mode"]
    if mode not in L2_MODES:
        raise MXCoreError(f"mode must be one of {sorted(L2_MODES)}, got {mode!r}")
    rank = L2_MODES[mode][1]
    if len(x) < rank:
        raise MXCoreError(f"data must have rank >= {rank} in mode {mode!r}; got shape {x}")
    return [x], [d[0]]


def _sum_over(x: NDArray, axes: Tuple[int, ...]) -> NDArray:
    # core sum reads axis=() as "every axis"; here no axes means no reduction
    return _sum(x, axes, keepdims=True) if axes else x


@L2_NORMALIZATION.def_grad
def _l2_grad(c, g):
    """y = x / n, n = sqrt(sum(x ** 2) + eps): dx = (g - y * sum(g * y)) / n."""
    x, y = c.inputs[0], c.outputs[0]
    axes = L2_MODES[c.attrs["mode"]][0](x.ndim)
    n = E.sqrt(_sum_over(x * x, axes) + c.attrs["eps"])
    return ((g - y * _sum_over(g * y, axes)) / n,)


def l2_normalization(data: NDArray, eps: float = 1e-10, mode: str = "instance",
                     name: Optional[str] = None) -> NDArray:
    """MXNet's L2Normalization: ``data / sqrt(sum(data ** 2) + eps)``, the sum over every
    axis but the first (``mode='instance'``), over axis 1 (``'channel'``) or over the axes
    after it (``'spatial'``; these two take data of rank >= 3)."""
    attrs = {"eps": float(eps), "mode": mode}
    _checked("L2Normalization", _l2_infer, (data,), attrs)
    return invoke(L2_NORMALIZATION, (data,), attrs)


L2Normalization = l2_normalization


# local response normalisation --------------------------------------------------------------
_LRN_ATTRS = {"alpha": 1e-4, "beta": 0.75, "knorm": 2.0, "nsize": REQUIRED}
LRN_OP = Op("lrn", 1, attrs=dict(_LRN_ATTRS), aliases=("LRN",),
            doc="x / (knorm + alpha / nsize * sum of x ** 2 over nsize neighbouring "
                "channels) ** beta")
LRN_BACKWARD = Op("lrn_backward", 2, attrs=dict(_LRN_ATTRS),
                  doc="lrn's data gradient in one kernel: (out_grad, data) -> d data")
OPS += [LRN_OP, LRN_BACKWARD]


@LRN_OP.def_infer
def _lrn_infer(s, d, a):
    x, n = tuple(s[0]), a["nsize"]
    if len(x) < 2:
        raise MXCoreError(f"data must have rank >= 2 (batch, channel, ...); got shape {x}")
    if n < 1 or n % 2 == 0:
        raise MXCoreError(f"nsize must be a positive odd number (a window centred on each "
                          f"channel), got {n}")
    return [x], [d[0]]


@LRN_BACKWARD.def_infer
def _lrn_backward_infer(s, d, a):
    if tuple(s[0]) != tuple(s[1]) or d[0] != d[1]:
        raise MXCoreError(f"out_grad ({tuple(s[0])} {d[0]}) must have the data's shape and "
                          f"dtype ({tuple(s[1])} {d[1]})")
    return _lrn_infer(s[1:], d[1:], a)


LRN_OP.def_grad(lambda c, g: (invoke(LRN_BACKWARD, (g, c.inputs[0]), c.attrs),))
LRN_BACKWARD.def_grad(_no_grad_rule("lrn_backward has no gradient rule: LRN is "
                                     "differentiable once here (as in MXNet)"))


def _lrn_attrs(alpha, beta, knorm, nsize) -> dict:
    return {"alpha": float(alpha), "beta": float(beta), "knorm": float(knorm),
            "nsize": int(nsize)}


def lrn(data: NDArray, alpha: float = 1e-4, beta: float = 0.75, knorm: float = 2.0,
        nsize: Optional[int] = None, name: Optional[str] = None) -> NDArray:
    """MXNet's LRN across channels (axis 1): ``data / (knorm + alpha / nsize * s) ** beta``,
    ``s`` the sum of squares over the ``nsize`` (odd) channels centred on each channel,
    zero-padded at the edges.  Takes data of rank >= 2 (MXNet's CPU kernel: 2 or 4)."""
    if nsize is None:
        raise OperatorError("LRN", "nsize (the window width, an odd number of channels) is "
                            "required", [data.shape], [data.dtype], data.context)
    attrs = _lrn_attrs(alpha, beta, knorm, nsize)
    _checked("LRN", _lrn_infer, (data,), attrs)
    return invoke(LRN_OP, (data,), attrs)


def lrn_backward(out_grad: NDArray, data: NDArray, alpha: float = 1e-4, beta: float = 0.75,
                 knorm: float = 2.0, nsize: int = 1) -> NDArray:
    """The data gradient of ``lrn(data, alpha, beta, knorm, nsize)`` given the output's
    gradient, in one kernel.  Not differentiable."""
    attrs = _lrn_attrs(alpha, beta, knorm, nsize)
    _checked("lrn_backward", _lrn_backward_infer, (out_grad, data), attrs)
    return invoke(LRN_BACKWARD, (out_grad, data), attrs)


LRN = lrn
