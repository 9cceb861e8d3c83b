"""Neural-network operators: softmax, log_softmax (and SoftmaxActivation), softmin,
fully_connected, the fused softmax cross-entropy loss (and MXNet's summed
softmax_cross_entropy), layer_norm, and MXNet's Activation/LeakyReLU/Dropout built
from core ops."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

import hal
from mxcore import autograd
from mxcore.dispatch import invoke, invoke_unary
from mxcore.ops import elemwise as E
from mxcore.ops.elemwise import exp
from mxcore.ops.indexing import one_hot
from mxcore.ops.linalg import dot
from mxcore.ops.reduce import sum as _sum
from mxcore.ops.shape import expand_dims, reshape, transpose
from mxcore.array import NDArray
from mxcore.op import Op
from mxcore.ops.rules import normalize_axis, same_as_first

SOFTMAX = Op("softmax", 1, attrs={"axis": -1, "temperature": None}, saves_output=True)
LOG_SOFTMAX = Op("log_softmax", 1, attrs={"axis": -1, "temperature": None}, saves_output=True)
OPS = [SOFTMAX, LOG_SOFTMAX]
SOFTMAX.def_infer(same_as_first)
LOG_SOFTMAX.def_infer(same_as_first)


def _scale(g, t):
    return g if t is None or t == 1.0 else g / t


@SOFTMAX.def_grad
def _softmax_grad(c, g):
    y, axis = c.outputs[0], c.attrs["axis"]
    return (_scale((g - _sum(g * y, (axis,), keepdims=True)) * y, c.attrs["temperature"]),)


@LOG_SOFTMAX.def_grad
def _log_softmax_grad(c, g):
    y, axis = c.outputs[0], c.attrs["axis"]
    return (_scale(g - exp(y) * _sum(g, (axis,), keepdims=True), c.attrs["temperature"]),)


def softmax(data: NDArray, length: Optional[NDArray] = None, axis: int = -1,
            temperature=None, dtype=None, use_length: bool = False) -> NDArray:
    """MXNet's softmax along ``axis``.  ``dtype`` is the output dtype (the wider of it
    and the input's is computed in); with ``use_length`` the ``length`` array (the
    data's shape without ``axis``) keeps the first ``length`` positions along the axis
    and gives 0 to the rest."""
    ax = normalize_axis(axis, data.ndim, "softmax")
    if not use_length and dtype is None:  # the usual call: one op
        return invoke_unary(SOFTMAX, data, {"axis": ax, "temperature": temperature})
    return _softmax_general(SOFTMAX, data, length, ax, temperature, dtype, use_length,
                            "softmax")


def log_softmax(data: NDArray, axis: int = -1, temperature=None, dtype=None,
                use_length: bool = False) -> NDArray:
    """MXNet's log_softmax along ``axis`` (``dtype``: the output dtype)."""
    ax = normalize_axis(axis, data.ndim, "log_softmax")
    if use_length:
        from mxcore.base import OperatorError
        raise OperatorError("log_softmax", "use_length=True takes a length input, which "
                            "MXNet's log_softmax has not: use softmax", [data.shape],
                            [data.dtype], data.context)
    if dtype is None:
        return invoke_unary(LOG_SOFTMAX, data, {"axis": ax, "temperature": temperature})
    return _softmax_general(LOG_SOFTMAX, data, None, ax, temperature, dtype, False,
                            "log_softmax")


def _softmax_general(op: Op, data: NDArray, length, ax: int, temperature, dtype,
                     use_length: bool, name: str) -> NDArray:
    """softmax/log_softmax with an output dtype and a length mask, from core ops."""
    from mxcore.ops.creation import arange, cast, full_like, zeros_like
    out_dt = data.dtype if dtype is None else hal.to_dtype(dtype)
    work = max(data.dtype, out_dt, key=lambda d: d.itemsize)
    x = data if data.dtype == work else cast(data, work)
    if not use_length:
        y = invoke_unary(op, x, {"axis": ax, "temperature": temperature})
        return y if y.dtype == out_dt else cast(y, out_dt)
    if length is None:
        from mxcore.base import OperatorError
        raise OperatorError(name, "use_length=True needs a length input", [data.shape],
                            [data.dtype], data.context)
    n = data.shape[ax]
    shape = [1] * data.ndim
    shape[ax] = n
    positions = reshape(arange(n, ctx=data.context, dtype=work), tuple(shape))
    mask = positions < expand_dims(cast(length, work), ax)
    masked = E.where(mask, x, full_like(x, -np.inf))
    y = E.where(mask, invoke_unary(op, masked, {"axis": ax, "temperature": temperature}),
                zeros_like(x))
    return y if y.dtype == out_dt else cast(y, out_dt)


_SOFTMAX_ACTIVATION_AXES = {"instance": -1, "channel": 1}


def SoftmaxActivation(data: NDArray, mode: str = "instance") -> NDArray:
    """MXNet's SoftmaxActivation: softmax over the last axis (``mode='instance'``) or
    over axis 1 (``mode='channel'``, at least 2-d)."""
    axis = _SOFTMAX_ACTIVATION_AXES.get(mode)
    if axis is None or (mode == "channel" and data.ndim < 2):
        from mxcore.base import OperatorError
        detail = (f"mode must be 'instance' or 'channel', got {mode!r}" if axis is None
                  else "mode='channel' needs an input of at least 2 dimensions")
        raise OperatorError("SoftmaxActivation", detail, [data.shape], [data.dtype],
                            data.context)
    return softmax(data, axis=axis)


# softmin: softmax(-x / t), with MXNet's optional output dtype ----------------------------
SOFTMIN = Op("softmin", 1, attrs={"axis": -1, "temperature": None, "dtype": None},
             saves_output=True,
             doc="softmax(-x / temperature) along ``axis``; ``dtype`` is the output's float "
                 "dtype (None: the input's)")
OPS.append(SOFTMIN)
_SOFTMIN_DTYPES = ("float16", "float32", "float64", "bfloat16")


@SOFTMIN.def_infer
def _softmin_infer(s, d, a):
    from mxcore.base import MXCoreError
    if a["dtype"] is not None and a["dtype"] not in _SOFTMIN_DTYPES:
        raise MXCoreError(f"dtype must be None or one of {_SOFTMIN_DTYPES}, got {a['dtype']!r}")
    return [s[0]], [hal.to_dtype(a["dtype"]) if a["dtype"] is not None else d[0]]


@SOFTMIN.def_grad
def _softmin_grad(c, g):
    from mxcore.ops.creation import cast
    x, y, axis = c.inputs[0], c.outputs[0], c.attrs["axis"]
    gx = -_scale((g - _sum(g * y, (axis,), keepdims=True)) * y, c.attrs["temperature"])
    return (gx if gx.dtype == x.dtype else cast(gx, x.dtype),)


def softmin(data: NDArray, axis: int = -1, temperature=None, dtype=None,
            use_length: bool = False) -> NDArray:
    """MXNet's softmin: ``softmax(-data / temperature)`` along ``axis``, in ``dtype``
    (float16, float32 or float64; None keeps the input's)."""
    from mxcore.base import MXCoreError, OperatorError
    if use_length:
        raise OperatorError("softmin", "use_length=True (a length input masking the data) "
                            "is not supported", [data.shape], [data.dtype], data.context)
    try:
        if not hal.is_float(data.dtype):
            raise MXCoreError(f"needs a float input, got {data.dtype}")
        attrs = {"axis": normalize_axis(axis, data.ndim, "softmin"),
                 "temperature": None if temperature is None else float(temperature),
                 "dtype": None if dtype is None else hal.dtype_name(hal.to_dtype(dtype))}
        _softmin_infer((data.shape,), (data.dtype,), attrs)
    except (MXCoreError, TypeError, ValueError) as exc:
        raise OperatorError("softmin", str(exc), [data.shape], [data.dtype],
                            data.context) from None
    return invoke_unary(SOFTMIN, data, attrs)


# fully connected ------------------------------------------------------------------------
#: activations a fully_connected kernel applies to its output in the same pass (its
#: "epilogue": one kernel and one write instead of three on a GPU), each with its
#: derivative written from the activation's output y, which the op keeps
FC_ACTIVATIONS = {
    "relu": lambda g, y: g * (y > 0),
    "sigmoid": lambda g, y: g * y * (1.0 - y),
    "tanh": lambda g, y: g * (1.0 - E.square(y)),
    # sigmoid(x) = 1 - exp(-softplus(x)); expm1 keeps it exact where y is tiny
    "softrelu": lambda g, y: g * -E.expm1(-y),
    "softsign": lambda g, y: g * E.square(1.0 - E.abs(y)),
}
FULLY_CONNECTED = Op("fully_connected", -1,
                     attrs={"flatten": True, "no_bias": False, "act_type": None},
                     aliases=("FullyConnected",), saves_output=True)
SOFTMAX_CE = Op("softmax_ce_loss", 2, attrs={"axis": -1})
OPS += [FULLY_CONNECTED, SOFTMAX_CE]


@FULLY_CONNECTED.def_infer
def _fc_infer(s, d, a):
    from mxcore.base import MXCoreError
    x, w = s[0], s[1]
    n_in = x[-1] if not a["flatten"] else int(np.prod(x[1:]))
    if len(w) != 2 or w[1] != n_in:
        raise MXCoreError(f"weight shape {w} does not match input {x} "
                          f"(expected (num_hidden, {n_in}))")
    if not a["no_bias"] and tuple(s[2]) != (w[0],):
        raise MXCoreError(f"bias shape {s[2]} does not match num_hidden {w[0]}")
    act = a["act_type"]
    if act is not None and act not in FC_ACTIVATIONS:
        raise MXCoreError(f"act_type must be None or one of {tuple(FC_ACTIVATIONS)}, "
                          f"got {act!r}")
    if len(set(d)) > 1:
        names = ("data", "weight", "bias")
        raise MXCoreError("dtypes differ (" + ", ".join(f"{n} {t}" for n, t in zip(names, d))
                          + "); cast with .astype() first")
    out = (x[0], w[0]) if a["flatten"] else tuple(x[:-1]) + (w[0],)
    return [out], [d[0]]


@FULLY_CONNECTED.def_grad
def _fc_grad(c, g):
    """A first-order backward runs ``fully_connected_backward`` (one op: the
    activation's derivative and every wanted gradient); while recording
    (``create_graph=True``) the rule is written in core ops, differentiable again."""
    x, w = c.inputs[0], c.inputs[1]
    a = c.attrs
    want = (c.needs_grad(0), c.needs_grad(1), not a["no_bias"] and c.needs_grad(2))
    if not autograd.is_recording():
        outs = iter(invoke(FC_BACKWARD, (g, x, w, c.outputs[0]), {**a, "grads": want}))
        grads = tuple(next(outs) if wanted else None for wanted in want)
        return grads[:2] if a["no_bias"] else grads
    act = a["act_type"]
    if act is not None:  # through the activation first (from the kept output)
        g = FC_ACTIVATIONS[act](g, c.outputs[0])
    n_in = w.shape[1]
    x2 = x if x.ndim == 2 else reshape(x, (-1, n_in))
    g2 = g if g.ndim == 2 else reshape(g, (-1, w.shape[0]))
    gx = reshape(dot(g2, w), x.shape) if want[0] else None  # input data: skipped
    gw = dot(g2, x2, transpose_a=True) if want[1] else None
    if a["no_bias"]:
        return gx, gw
    return gx, gw, _sum(g2, (0,)) if want[2] else None


FC_BACKWARD = Op("fully_connected_backward", 4, nout=-1,
                 attrs={"flatten": True, "no_bias": False, "act_type": None,
                        "grads": (True, True, True)},
                 doc="fully_connected's gradients in one op: (out_grad, data, weight, "
                     "output) -> the gradients ``grads`` asks for, of (data, weight, bias)")
OPS.append(FC_BACKWARD)


@FC_BACKWARD.def_infer
def _fc_backward_infer(s, d, a):
    from mxcore.base import MXCoreError
    g, x, w, y = s
    want = tuple(bool(v) for v in a["grads"])
    if len(want) != 3 or not any(want) or (want[2] and a["no_bias"]):
        raise MXCoreError(f"grads must be 3 flags, at least one set, no bias gradient "
                          f"with no_bias; got {a['grads']!r}")
    fc_attrs = {k: a[k] for k in ("flatten", "no_bias", "act_type")}
    bias = () if a["no_bias"] else ((w[0],) if len(w) else (),)
    (out,), (dt,) = _fc_infer((x, w) + bias, (d[1], d[2]) + (d[2],) * len(bias), fc_attrs)
    if tuple(g) != out or tuple(y) != out or d[0] != dt or d[3] != dt:
        raise MXCoreError(f"out_grad {tuple(g)} {d[0]} and output {tuple(y)} {d[3]} must "
                          f"both be the forward output, {out} {dt}")
    shapes = [x, w, (w[0],)]
    return [shapes[i] for i in range(3) if want[i]], [dt] * sum(want)


@FC_BACKWARD.def_grad
def _fc_backward_grad(c, *g):
    from mxcore.base import MXCoreError
    raise MXCoreError("fully_connected_backward has no gradient rule; for higher-order "
                      "gradients of fully_connected use autograd.grad(..., "
                      "create_graph=True), which records the gradient in differentiable ops")


def fully_connected_backward(out_grad: NDArray, data: NDArray, weight: NDArray,
                             output: NDArray, no_bias: bool = False, flatten: bool = True,
                             act_type: Optional[str] = None, grads=None) -> tuple:
    """The gradients of ``output = fully_connected(data, weight, bias, ...,
    act_type=act_type)`` given ``out_grad``: ``(d data, d weight[, d bias])``, or the
    ones ``grads`` (three flags) asks for, in one op (the activation's derivative is
    taken from ``output``).  Not differentiable itself."""
    from mxcore.base import MXCoreError, OperatorError
    want = tuple(bool(v) for v in (grads or (True, True, not no_bias)))
    attrs = {"flatten": bool(flatten), "no_bias": bool(no_bias), "act_type": act_type,
             "grads": want}
    inputs = (out_grad, data, weight, output)
    try:
        FC_BACKWARD.infer_shape_dtype([x.shape for x in inputs], [x.dtype for x in inputs],
                                      attrs)
    except MXCoreError as exc:
        raise OperatorError("fully_connected_backward", str(exc), [x.shape for x in inputs],
                            [x.dtype for x in inputs], data.context) from None
    return invoke(FC_BACKWARD, inputs, attrs)


def fully_connected(data: NDArray, weight: NDArray, bias=None, num_hidden: int = 0,
                    no_bias: bool = False, flatten: bool = True,
                    act_type: Optional[str] = None) -> NDArray:
    """``data @ weight.T + bias`` (MXNet's FullyConnected); with ``flatten``
    the input is reshaped to (batch, -1) first.  ``act_type`` (an mxcore
    addition: relu, sigmoid, tanh, softrelu or softsign) applies that
    activation in the same kernel, as ``Activation(FullyConnected(...))`` would."""
    from mxcore.base import MXCoreError, OperatorError
    no_bias = no_bias or bias is None
    inputs = (data, weight) if no_bias else (data, weight, bias)
    attrs = {"flatten": bool(flatten), "no_bias": bool(no_bias), "act_type": act_type}
    try:
        if act_type is not None and act_type not in FC_ACTIVATIONS:
            raise OperatorError("fully_connected", "unknown act_type")
        # the bias could broadcast silently: check it here, the rest in the kernel
        if not no_bias and bias.shape != weight.shape[:1]:
            raise OperatorError("fully_connected", "bias does not match the weight")
        # numpy and CuPy would promote mixed dtypes silently (and the backward then fail)
        dt = data._data.dtype
        if weight._data.dtype != dt or (not no_bias and bias._data.dtype != dt):
            raise OperatorError("fully_connected", "dtypes differ")
        return invoke(FULLY_CONNECTED, inputs, attrs)
    except OperatorError as exc:
        try:
            _fc_infer([x.shape for x in inputs], [x.dtype for x in inputs], attrs)
        except MXCoreError as detail:
            raise OperatorError("fully_connected", str(detail), [x.shape for x in inputs],
                                [x.dtype for x in inputs], data.context) from None
        raise exc


FullyConnected = fully_connected


@SOFTMAX_CE.def_infer
def _softmax_ce_infer(s, d, a):
    axis = a["axis"]
    return [tuple(n for i, n in enumerate(s[0]) if i != axis % len(s[0]))], [d[0]]


SOFTMAX_CE_GRAD = Op("softmax_ce_loss_grad", 3, attrs={"axis": -1})
SOFTMAX_CE_GRAD.def_infer(same_as_first)
OPS.append(SOFTMAX_CE_GRAD)

# the loss and its gradient from one softmax: what a training step computes back to back
# (the graph pass ``fuse_loss_gradient`` puts it in a traced step's plan)
SOFTMAX_CE_WITH_GRAD = Op(
    "softmax_ce_loss_with_grad", 3, nout=2, attrs={"axis": -1},
    doc="(data, label, out_grad) -> (softmax_ce_loss(data, label), softmax_ce_loss_grad("
        "data, label, out_grad)): both from one softmax, the same values as the two ops")
OPS.append(SOFTMAX_CE_WITH_GRAD)


@SOFTMAX_CE_WITH_GRAD.def_infer
def _softmax_ce_with_grad_infer(s, d, a):
    from mxcore.base import MXCoreError
    (loss,), (dt,) = _softmax_ce_infer(s[:2], d[:2], a)
    if tuple(s[2]) != tuple(loss):
        raise MXCoreError(f"out_grad shape {tuple(s[2])} must be the loss's shape {loss}")
    return [loss, tuple(s[0])], [dt, d[0]]


@SOFTMAX_CE_WITH_GRAD.def_grad
def _softmax_ce_with_grad_grad(c, *g):
    from mxcore.base import MXCoreError
    raise MXCoreError("softmax_ce_loss_with_grad has no gradient rule; differentiate "
                      "softmax_ce_loss")


@SOFTMAX_CE.def_grad
def _softmax_ce_grad(c, g):
    """d/dx of -log softmax(x)[label] is softmax(x) - one_hot(label)."""
    x, label = c.inputs
    axis = c.attrs["axis"]
    if not autograd.is_recording():
        # first-order backward: one fused kernel
        return invoke(SOFTMAX_CE_GRAD, (x, label, g), c.attrs), None
    # create_graph: the same formula in differentiable ops
    oh = one_hot(label, x.shape[axis], dtype=x.dtype.name)
    if axis != x.ndim - 1:
        perm = list(range(x.ndim - 1))
        perm.insert(axis, x.ndim - 1)
        oh = transpose(oh, tuple(perm))
    return (expand_dims(g, axis, inplace=True) * (softmax(x, axis=axis) - oh), None)


def softmax_ce_loss(data: NDArray, label: NDArray, axis: int = -1) -> NDArray:
    """Per-sample ``-log softmax(data)[label]`` along ``axis`` (sparse labels),
    fused: one kernel forward, ``softmax - one_hot`` backward."""
    ax = normalize_axis(axis, data.ndim, "softmax_ce_loss")
    return invoke(SOFTMAX_CE, (data, label), {"axis": ax})


def softmax_ce_loss_with_grad(data: NDArray, label: NDArray, out_grad: NDArray,
                              axis: int = -1) -> Tuple[NDArray, NDArray]:
    """``(softmax_ce_loss(data, label, axis), its gradient for head gradient out_grad)``
    from one softmax (one op; not differentiable itself)."""
    ax = normalize_axis(axis, data.ndim, "softmax_ce_loss_with_grad")
    return invoke(SOFTMAX_CE_WITH_GRAD, (data, label, out_grad), {"axis": ax})


def softmax_cross_entropy(data: NDArray, label: NDArray) -> NDArray:
    """MXNet's softmax_cross_entropy: the cross-entropy of ``softmax(data)`` against
    the class indices ``label``, summed over the batch: shape ``(1,)``.  ``data`` is
    (batch, classes), ``label`` (batch,) of the same dtype (as MXNet requires)."""
    if (data.ndim != 2 or label.shape != data.shape[:1]
            or label._data.dtype != data._data.dtype):
        from mxcore.base import OperatorError
        raise OperatorError("softmax_cross_entropy", "expects data (batch, classes) and "
                            "label (batch,) of the same dtype", [data.shape, label.shape],
                            [data.dtype, label.dtype], data.context)
    return _sum(softmax_ce_loss(data, label, axis=1))


# layer norm ------------------------------------------------------------------------------
LAYER_NORM = Op("layer_norm", 3, attrs={"axis": -1, "eps": 1e-5}, aliases=("LayerNorm",))
OPS.append(LAYER_NORM)


@LAYER_NORM.def_infer
def _layer_norm_infer(s, d, a):
    from mxcore.base import MXCoreError
    x = s[0]
    axis = a["axis"] % max(len(x), 1)
    if not x:
        raise MXCoreError("layer_norm needs an input with at least one axis")
    for name, shape in (("gamma", s[1]), ("beta", s[2])):
        if tuple(shape) != (x[axis],):
            raise MXCoreError(f"{name} shape {tuple(shape)} does not match the normalised "
                              f"axis {axis} of input {tuple(x)} (expected ({x[axis]},))")
    if len(set(d)) > 1:
        raise MXCoreError(f"dtypes {', '.join(str(t) for t in d)} differ")
    return [tuple(x)], [d[0]]


def _channel(v, ndim, axis):
    """A (C,) parameter reshaped to broadcast along ``axis`` of an ndim-d input."""
    return v if axis == ndim - 1 else reshape(v, tuple(-1 if i == axis else 1
                                                      for i in range(ndim)))


@LAYER_NORM.def_grad
def _layer_norm_grad(c, g):
    """With x_hat = (x - mean) * rstd, rstd = 1/sqrt(var + eps), mean/var over axis:
    dx = rstd * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)), dx_hat = g * gamma;
    dgamma = sum(g * x_hat), dbeta = sum(g) over the other axes.  A first-order backward
    runs the fused ``layer_norm_backward``; while recording (``create_graph=True``) the
    rule is written in core ops, so it is differentiable again (second order)."""
    from mxcore.ops.reduce import mean as _mean
    x, gamma, _ = c.inputs
    axis, eps = c.attrs["axis"], c.attrs["eps"]
    if not autograd.is_recording():
        # first-order backward (create_graph=False): one fused kernel
        gx, ggamma, gbeta = invoke(LAYER_NORM_BACKWARD, (g, x, gamma), c.attrs)
        return tuple(v if c.needs_grad(i) else None
                     for i, v in enumerate((gx, ggamma, gbeta)))
    # create_graph: the same formula in differentiable ops
    ax = (axis,)
    mu = _mean(x, ax, keepdims=True)
    d = x - mu
    rstd = E.rsqrt(_mean(d * d, ax, keepdims=True) + eps)
    xhat = d * rstd
    others = tuple(i for i in range(x.ndim) if i != axis)
    gx = None
    if c.needs_grad(0):
        dxhat = g * _channel(gamma, x.ndim, axis)
        gx = rstd * (dxhat - _mean(dxhat, ax, keepdims=True)
                     - xhat * _mean(dxhat * xhat, ax, keepdims=True))

    def over_others(v):
        return reshape(_sum(v, others), (x.shape[axis],)) if others else v
    ggamma = over_others(g * xhat) if c.needs_grad(1) else None
    gbeta = over_others(g) if c.needs_grad(2) else None
    return gx, ggamma, gbeta


LAYER_NORM_BACKWARD = Op(
    "layer_norm_backward", 3, nout=3, attrs={"axis": -1, "eps": 1e-5},
    doc="layer_norm's gradients in one kernel: (out_grad, data, gamma) -> "
        "(d data, d gamma, d beta)")
OPS.append(LAYER_NORM_BACKWARD)


@LAYER_NORM_BACKWARD.def_infer
def _layer_norm_backward_infer(s, d, a):
    from mxcore.base import MXCoreError
    g, x, gamma = s
    if tuple(g) != tuple(x):
        raise MXCoreError(f"out_grad shape {tuple(g)} differs from data shape {tuple(x)}")
    # layer_norm's rule checks data against gamma (passed for beta too) and the dtypes
    (xs,), (dt,) = _layer_norm_infer((x, gamma, gamma), (d[1], d[2], d[0]), a)
    return [xs, tuple(gamma), tuple(gamma)], [dt, dt, dt]


@LAYER_NORM_BACKWARD.def_grad
def _layer_norm_backward_grad(c, *g):
    from mxcore.base import MXCoreError
    raise MXCoreError("layer_norm_backward has no gradient rule; for higher-order "
                      "gradients of layer_norm use autograd.grad(..., create_graph=True), "
                      "which records the gradient in differentiable ops")


def layer_norm_backward(out_grad: NDArray, data: NDArray, gamma: NDArray, axis: int = -1,
                        eps: float = 1e-5) -> tuple[NDArray, NDArray, NDArray]:
    """The gradients ``(d data, d gamma, d beta)`` of ``layer_norm(data, gamma, beta,
    axis, eps)`` given the output's gradient ``out_grad``, in one fused kernel
    (statistics recomputed from ``data``; d gamma / d beta summed over the other axes).
    Not differentiable itself."""
    ax = normalize_axis(axis, data.ndim, "layer_norm_backward")
    return invoke(LAYER_NORM_BACKWARD, (out_grad, data, gamma), {"axis": ax, "eps": float(eps)})


def layer_norm(data: NDArray, gamma: NDArray, beta: NDArray, axis: int = -1, eps: float = 1e-5,
               output_mean_var: bool = False) -> NDArray:
    """MXNet's LayerNorm: normalise ``data`` over ``axis`` to zero mean and unit
    variance (biased, plus ``eps``), then ``gamma * x_hat + beta`` (gamma and beta
    have shape ``(data.shape[axis],)``)."""
    if output_mean_var:
        from mxcore.base import OperatorError
        raise OperatorError("LayerNorm", "output_mean_var=True is not supported")
    ax = normalize_axis(axis, data.ndim, "layer_norm")
    attrs = {"axis": ax, "eps": float(eps)}
    n, dt = (data.shape[ax],) if data.ndim else None, data._data.dtype
    if (gamma.shape != n or beta.shape != n or gamma._data.dtype != dt
            or beta._data.dtype != dt):
        # numpy would broadcast a wrong-sized gamma/beta and promote mixed dtypes silently
        from mxcore.base import MXCoreError, OperatorError
        inputs = (data, gamma, beta)
        try:
            _layer_norm_infer(tuple(x.shape for x in inputs), tuple(x.dtype for x in inputs),
                              attrs)
            detail = "invalid inputs"
        except MXCoreError as exc:
            detail = str(exc)
        raise OperatorError("layer_norm", detail, [x.shape for x in inputs],
                            [x.dtype for x in inputs], data.context)
    return invoke(LAYER_NORM, (data, gamma, beta), attrs)


LayerNorm = layer_norm


# activations built from core ops ----------------------------------------------------------
_ACT = ("relu", "sigmoid", "tanh", "softrelu", "softsign")


def activation(data: NDArray, act_type: str = "relu") -> NDArray:
    """MXNet's Activation: relu, sigmoid, tanh, softrelu or softsign."""
    if act_type == "relu":
        return invoke_unary(E.RELU, data)
    if act_type == "softsign":
        return invoke_unary(E.SOFTSIGN, data)
    if act_type not in _ACT:
        from mxcore.base import OperatorError
        raise OperatorError("Activation", f"act_type must be one of {_ACT}, got {act_type!r}")
    return getattr(E, act_type)(data)


Activation = activation
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def leaky_relu_act(data: NDArray, gamma=None, act_type: str = "leaky", slope: float = 0.25,
                   lower_bound=0.125, upper_bound=0.334) -> NDArray:
    """MXNet's LeakyReLU operator: leaky, prelu (learnable ``gamma``), elu,
    selu, gelu."""
    if act_type == "leaky":
        return E.leaky_relu(data, slope)
    if act_type == "prelu":
        if gamma is None:
            from mxcore.base import OperatorError
            raise OperatorError("LeakyReLU", "act_type='prelu' needs gamma")
        if gamma.ndim == 1 and data.ndim > 1 and gamma.shape[0] != 1:
            gamma = reshape(gamma, (1, gamma.shape[0]) + (1,) * (data.ndim - 2))
        elif 1 < gamma.ndim < data.ndim:  # MXNet aligns it with the leading axes
            gamma = reshape(gamma, gamma.shape + (1,) * (data.ndim - gamma.ndim))
        return E.relu(data) - gamma * E.relu(-data)
    if act_type == "elu":
        return E.where(data > 0, data, E.expm1(data) * slope)
    if act_type == "selu":
        return E.where(data > 0, data, E.expm1(data) * _SELU_ALPHA) * _SELU_SCALE
    if act_type == "gelu":
        return E.gelu(data)
    from mxcore.base import OperatorError
    raise OperatorError("LeakyReLU", f"unknown act_type {act_type!r}")


LeakyReLU = leaky_relu_act


# Dropout: one op whose mask is a function of a seed attribute, so that the forward
# is one kernel (no separate sampling, comparison and scaling passes), no mask is
# kept for backward, and the gradient is the same op on the output gradient.
DROPOUT = Op("dropout", 1, attrs={"p": 0.5, "seed": 0, "axes": (), "always": False},
             volatile_attrs=("seed",),
             doc="inverted dropout with a mask drawn from a counter-based generator "
                 "seeded by ``seed``: y = x * keep / (1 - p), keep = u >= p; ``axes`` "
                 "share one mask value (the mask has size 1 along them); ``always``: "
                 "mode='always', kept in inference graphs (kernels ignore it)")
DROPOUT.def_infer(same_as_first)
DROPOUT.def_grad(lambda c, g: (invoke_unary(DROPOUT, g, c.attrs),))
OPS.append(DROPOUT)


def dropout(data: NDArray, p: float = 0.5, mode: str = "training", axes=()) -> NDArray:
    """Inverted dropout: active in training mode (``autograd.train_mode``/
    ``record``) or always with ``mode='always'``; ``axes`` share the mask.  The
    mask's seed comes from the device's generator (``mx.random.seed`` makes it
    reproducible); each device's kernels draw their own masks from it."""
    if not 0 <= p < 1:
        from mxcore.base import OperatorError
        raise OperatorError("Dropout", f"p must be in [0, 1), got {p}")
    if p == 0 or (mode == "training" and not autograd.is_training()):
        return data
    from mxcore.device import device_type
    dev = data.context
    axes = tuple(sorted({normalize_axis(a, data.ndim, "Dropout") for a in axes}))
    return invoke_unary(DROPOUT, data, {"p": float(p), "seed": device_type(dev).host_seed(
        dev.index), "axes": axes, "always": mode == "always"})


Dropout = dropout
