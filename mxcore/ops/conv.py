"""Convolution, transposed convolution, upsampling and pooling (MXNet's Convolution,
Deconvolution, UpSampling and Pooling), 1 to 3 spatial dims.

The ops work channel-first (N, C, *spatial); the wrappers take MXNet's attributes
(``kernel``, ``stride``, ``dilate``, ``pad``, ``adj``, ``target_shape``,
``num_filter``, ``num_group``, ``layout``...), normalise them to tuples and transpose
channel-last layouts.  The first-order gradients of convolution, deconvolution and
pooling are one op each (``convolution_backward``, ``deconvolution_backward``,
``pooling_backward``), as ``fully_connected_backward`` is; none is differentiable
again (nor is MXNet's).

Deconvolution (a transposed convolution) maps (N, C, *in) with weights
(C, num_filter/num_group, *kernel) to (N, num_filter, *out), out = (in - 1) * stride
+ dilate * (kernel - 1) + 1 - 2 * pad + adj: the data gradient of the convolution
with the same geometry.  UpSampling 'nearest' repeats each pixel ``scale`` times
along height and width (op ``upsampling_nearest``, whose gradient sums the blocks
back); 'bilinear' is MXNet's depthwise Deconvolution with a given weight.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke
from mxcore.array import NDArray
from mxcore.op import REQUIRED, Op

_GEOMETRY = {"kernel": REQUIRED, "stride": REQUIRED, "dilate": REQUIRED, "pad": REQUIRED}
CONVOLUTION = Op("convolution", -1, attrs={**_GEOMETRY, "num_filter": REQUIRED,
                                           "num_group": 1, "no_bias": False},
                 aliases=("Convolution",),
                 doc="N-d convolution (cross-correlation) of (N, C, *spatial) data with "
                     "(F, C/num_group, *kernel) weights, plus an optional (F,) bias")
CONV_BACKWARD = Op("convolution_backward", 3, nout=-1,
                   attrs={**_GEOMETRY, "num_filter": REQUIRED, "num_group": 1,
                          "no_bias": False, "grads": (True, True, True)},
                   doc="convolution's gradients in one op: (out_grad, data, weight) -> the "
                       "gradients ``grads`` asks for, of (data, weight, bias)")
_POOL = {"kernel": REQUIRED, "stride": REQUIRED, "pad": REQUIRED, "pool_type": "max",
         "pooling_convention": "valid", "count_include_pad": True, "p_value": 2}
POOLING = Op("pooling", 1, attrs=dict(_POOL), aliases=("Pooling",), saves_output=True,
             doc="N-d max/avg/sum/lp pooling of (N, C, *spatial) data")
POOL_BACKWARD = Op("pooling_backward", 3, attrs=dict(_POOL),
                   doc="pooling's input gradient: (out_grad, data, output) -> d data")
_DECONV = {**_GEOMETRY, "adj": REQUIRED, "num_filter": REQUIRED, "num_group": 1,
           "no_bias": True}
DECONVOLUTION = Op("deconvolution", -1, attrs=dict(_DECONV), aliases=("Deconvolution",),
                   doc="N-d transposed convolution of (N, C, *spatial) data with "
                       "(C, num_filter/num_group, *kernel) weights, plus an optional "
                       "(num_filter,) bias")
DECONV_BACKWARD = Op("deconvolution_backward", 3, nout=-1,
                     attrs={**_DECONV, "grads": (True, True, True)},
                     doc="deconvolution's gradients in one op: (out_grad, data, weight) "
                         "-> the gradients ``grads`` asks for, of (data, weight, bias)")
UPSAMPLING_NEAREST = Op("upsampling_nearest", 1, attrs={"scale": REQUIRED},
                        doc="(N, C, H, W) -> (N, C, H*scale, W*scale), each pixel "
                            "repeated in a scale x scale block")
OPS = [CONVOLUTION, CONV_BACKWARD, DECONVOLUTION, DECONV_BACKWARD, UPSAMPLING_NEAREST,
       POOLING, POOL_BACKWARD]

POOL_TYPES = ("max", "avg", "sum", "lp")
CONVENTIONS = ("valid", "full")
#: channel-last layouts and the permutation to channel-first
_LAST = {"NWC": (0, 2, 1), "NHWC": (0, 3, 1, 2), "NDHWC": (0, 4, 1, 2, 3)}
_FIRST = {"NCW": 1, "NCHW": 2, "NCDHW": 3}


def _conv_out(size: int, k: int, s: int, d: int, p: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@CONVOLUTION.def_infer
def _conv_infer(s, d, a):
    x, w = s[0], s[1]
    k, g, f = a["kernel"], a["num_group"], a["num_filter"]
    nd = len(k)
    if len(x) != nd + 2:
        raise MXCoreError(f"data must be {nd + 2}-d (N, C, *spatial) for a {nd}-d kernel, "
                          f"got shape {tuple(x)}")
    if x[1] % g or f % g:
        raise MXCoreError(f"channels {x[1]} and num_filter {f} must both divide by "
                          f"num_group {g}")
    want = (f, x[1] // g) + tuple(k)
    if tuple(w) != want:
        raise MXCoreError(f"weight shape {tuple(w)} does not match: expected {want} "
                          f"(num_filter, channels {x[1]} / num_group {g}, *kernel)")
    if not a["no_bias"] and (len(s) < 3 or tuple(s[2]) != (f,)):
        raise MXCoreError(f"bias shape {tuple(s[2]) if len(s) > 2 else None} does not "
                          f"match num_filter {f}")
    if len(set(d)) > 1:
        raise MXCoreError(f"dtypes differ ({', '.join(str(t) for t in d)}); cast with "
                          ".astype() first")
    out = []
    for i in range(nd):
        o = _conv_out(x[2 + i], k[i], a["stride"][i], a["dilate"][i], a["pad"][i])
        if o < 1:
            raise MXCoreError(
                f"kernel {tuple(k)} (dilate {tuple(a['dilate'])}) is larger than the padded "
                f"input {tuple(v + 2 * p for v, p in zip(x[2:], a['pad']))}")
        out.append(o)
    return [(x[0], f) + tuple(out)], [d[0]]


def _fused_grad(backward: Op):
    """The gradient rule of a (transposed) convolution: one call of its fused
    ``backward`` op for the gradients that are wanted."""
    def rule(c, g):
        want = (c.needs_grad(0), c.needs_grad(1),
                not c.attrs["no_bias"] and c.needs_grad(2))
        if not any(want):
            return (None,) * len(c.inputs)
        outs = iter(invoke(backward, (g, c.inputs[0], c.inputs[1]),
                           {**c.attrs, "grads": want}))
        grads = tuple(next(outs) if wanted else None for wanted in want)
        return grads[:2] if c.attrs["no_bias"] else grads
    return rule


CONVOLUTION.def_grad(_fused_grad(CONV_BACKWARD))


@CONV_BACKWARD.def_infer
def _conv_backward_infer(s, d, a):
    g, x, w = s
    want = tuple(bool(v) for v in a["grads"])
    if len(want) != 3 or not any(want) or (want[2] and a["no_bias"]):
        raise MXCoreError(f"grads must be 3 flags, at least one set, no bias gradient "
                          f"with no_bias; got {a['grads']!r}")
    conv_attrs = {k: v for k, v in a.items() if k != "grads"}
    bias = () if a["no_bias"] else ((w[0],),)
    (out,), (dt,) = _conv_infer((x, w) + bias, (d[1], d[2]) + (d[2],) * len(bias),
                                conv_attrs)
    if tuple(g) != out or d[0] != dt:
        raise MXCoreError(f"out_grad {tuple(g)} {d[0]} must be the forward output, {out} {dt}")
    shapes = [tuple(x), tuple(w), (w[0],)]
    return [shapes[i] for i in range(3) if want[i]], [dt] * sum(want)


@CONV_BACKWARD.def_grad
def _conv_backward_grad(c, *g):
    raise MXCoreError("convolution_backward has no gradient rule: convolution is "
                      "differentiable once (as in MXNet)")


def _deconv_out(size: int, k: int, s: int, d: int, p: int, a: int) -> int:
    return (size - 1) * s + d * (k - 1) + 1 - 2 * p + a


@DECONVOLUTION.def_infer
def _deconv_infer(s, d, a):
    x, w = s[0], s[1]
    k, g, f = a["kernel"], a["num_group"], a["num_filter"]
    nd = len(k)
    if len(x) != nd + 2:
        raise MXCoreError(f"data must be {nd + 2}-d (N, C, *spatial) for a {nd}-d kernel, "
                          f"got shape {tuple(x)}")
    if x[1] % g or f % g:
        raise MXCoreError(f"channels {x[1]} and num_filter {f} must both divide by "
                          f"num_group {g}")
    want = (x[1], f // g) + tuple(k)
    if tuple(w) != want:
        raise MXCoreError(f"weight shape {tuple(w)} does not match: expected {want} "
                          f"(channels {x[1]}, num_filter {f} / num_group {g}, *kernel)")
    if not a["no_bias"] and (len(s) < 3 or tuple(s[2]) != (f,)):
        raise MXCoreError(f"bias shape {tuple(s[2]) if len(s) > 2 else None} does not "
                          f"match num_filter {f}")
    if len(set(d)) > 1:
        raise MXCoreError(f"dtypes differ ({', '.join(str(t) for t in d)}); cast with "
                          ".astype() first")
    if any(adj >= st for adj, st in zip(a["adj"], a["stride"])):
        raise MXCoreError(f"adj {tuple(a['adj'])} must be smaller than stride "
                          f"{tuple(a['stride'])}")
    out = tuple(_deconv_out(x[2 + i], k[i], a["stride"][i], a["dilate"][i], a["pad"][i],
                            a["adj"][i]) for i in range(nd))
    if min(out) < 1:
        raise MXCoreError(f"pad {tuple(a['pad'])} is too large: the output of input "
                          f"{tuple(x[2:])} with kernel {tuple(k)}, stride "
                          f"{tuple(a['stride'])} would be {out}")
    return [(x[0], f) + out], [d[0]]


DECONVOLUTION.def_grad(_fused_grad(DECONV_BACKWARD))


@DECONV_BACKWARD.def_infer
def _deconv_backward_infer(s, d, a):
    g, x, w = s
    want = tuple(bool(v) for v in a["grads"])
    if len(want) != 3 or not any(want) or (want[2] and a["no_bias"]):
        raise MXCoreError(f"grads must be 3 flags, at least one set, no bias gradient "
                          f"with no_bias; got {a['grads']!r}")
    attrs = {k: v for k, v in a.items() if k != "grads"}
    bias = () if a["no_bias"] else ((a["num_filter"],),)
    (out,), (dt,) = _deconv_infer((x, w) + bias, (d[1], d[2]) + (d[2],) * len(bias), attrs)
    if tuple(g) != out or d[0] != dt:
        raise MXCoreError(f"out_grad {tuple(g)} {d[0]} must be the forward output, {out} {dt}")
    shapes = [tuple(x), tuple(w), (a["num_filter"],)]
    return [shapes[i] for i in range(3) if want[i]], [dt] * sum(want)


@DECONV_BACKWARD.def_grad
def _deconv_backward_grad(c, *g):
    raise MXCoreError("deconvolution_backward has no gradient rule: deconvolution is "
                      "differentiable once (as in MXNet)")


@UPSAMPLING_NEAREST.def_infer
def _upsampling_infer(s, d, a):
    x, scale = s[0], a["scale"]
    if len(x) != 4:
        raise MXCoreError(f"data must be 4-d (N, C, H, W), got shape {tuple(x)}")
    if scale < 1:
        raise MXCoreError(f"scale must be >= 1, got {scale}")
    return [(x[0], x[1], x[2] * scale, x[3] * scale)], [d[0]]


@UPSAMPLING_NEAREST.def_grad
def _upsampling_grad(c, g):
    from mxcore.ops.reduce import sum as _sum
    from mxcore.ops.shape import reshape
    n, ch, h, w = c.inputs[0].shape
    s = c.attrs["scale"]
    # each input pixel feeds an s x s block: its gradient is the block's sum
    return (_sum(reshape(g, (n, ch, h, s, w, s)), axis=(3, 5)),)


def _pool_out(size: int, k: int, s: int, p: int, convention: str) -> int:
    span = size + 2 * p - k
    return (-(-span // s) if convention == "full" else span // s) + 1


@POOLING.def_infer
def _pool_infer(s, d, a):
    x = s[0]
    k = a["kernel"]
    nd = len(k)
    if len(x) != nd + 2:
        raise MXCoreError(f"data must be {nd + 2}-d (N, C, *spatial) for a {nd}-d kernel, "
                          f"got shape {tuple(x)}")
    if a["pool_type"] not in POOL_TYPES:
        raise MXCoreError(f"pool_type must be one of {POOL_TYPES}, got {a['pool_type']!r}")
    if a["pooling_convention"] not in CONVENTIONS:
        raise MXCoreError(f"pooling_convention must be one of {CONVENTIONS}, got "
                          f"{a['pooling_convention']!r}")
    out = []
    for i in range(nd):
        if k[i] > x[2 + i] + 2 * a["pad"][i]:
            raise MXCoreError(f"kernel {tuple(k)} is larger than the padded input "
                              f"{tuple(v + 2 * p for v, p in zip(x[2:], a['pad']))}")
        out.append(_pool_out(x[2 + i], k[i], a["stride"][i], a["pad"][i],
                             a["pooling_convention"]))
    return [tuple(x[:2]) + tuple(out)], [d[0]]


@POOLING.def_grad
def _pool_grad(c, g):
    if not c.needs_grad(0):
        return (None,)
    return (invoke(POOL_BACKWARD, (g, c.inputs[0], c.outputs[0]), c.attrs),)


@POOL_BACKWARD.def_infer
def _pool_backward_infer(s, d, a):
    (out,), (dt,) = _pool_infer((s[1],), (d[1],), a)
    if tuple(s[0]) != out or tuple(s[2]) != out:
        raise MXCoreError(f"out_grad {tuple(s[0])} and output {tuple(s[2])} must both be "
                          f"the forward output, {out}")
    return [tuple(s[1])], [dt]


@POOL_BACKWARD.def_grad
def _pool_backward_grad(c, *g):
    raise MXCoreError("pooling_backward has no gradient rule: pooling is differentiable "
                      "once (as in MXNet)")


# user-facing functions ----------------------------------------------------------------
def _tuple(name: str, value, nd: int, default: int, op: str) -> Tuple[int, ...]:
    if value is None or value == ():
        return (default,) * nd
    if isinstance(value, int):
        value = (value,) * nd
    value = tuple(int(v) for v in value)
    if len(value) != nd:
        raise MXCoreError(f"{name} {value} must have {nd} entries, one per spatial dim of "
                          f"the {nd + 2}-d data")
    return value


def _layout(layout: Optional[str], ndim: int, op: str):
    """(spatial dims, permutation to channel-first or None) for a layout name."""
    if layout is None:
        return ndim - 2, None
    if layout in _FIRST:
        return _FIRST[layout], None
    if layout in _LAST:
        return len(_LAST[layout]) - 2, _LAST[layout]
    raise MXCoreError(f"unknown layout {layout!r} (one of "
                      f"{', '.join(list(_FIRST) + list(_LAST))})")


def _inverse(perm):
    return tuple(perm.index(i) for i in range(len(perm)))


def _fail(op: str, exc: Exception, inputs) -> OperatorError:
    return OperatorError(op, str(exc), [x.shape for x in inputs], [x.dtype for x in inputs],
                         inputs[0].context)


def _geometry_attrs(op: str, nd: int, kernel, stride, dilate, pad) -> dict:
    k = _tuple("kernel", kernel, nd, 0, op)
    if not kernel or min(k) < 1:
        raise MXCoreError(f"kernel must be {nd} positive sizes, got {kernel!r}")
    attrs = {"kernel": k, "stride": _tuple("stride", stride, nd, 1, op),
             "dilate": _tuple("dilate", dilate, nd, 1, op),
             "pad": _tuple("pad", pad, nd, 0, op)}
    if min(attrs["stride"]) < 1 or min(attrs["dilate"]) < 1 or min(attrs["pad"]) < 0:
        raise MXCoreError("stride and dilate must be >= 1, pad >= 0")
    return attrs


def convolution(data: NDArray, weight: NDArray, bias: Optional[NDArray] = None,
                kernel: Sequence[int] = (), stride: Sequence[int] = (),
                dilate: Sequence[int] = (), pad: Sequence[int] = (), num_filter: int = 0,
                num_group: int = 1, workspace: int = 1024, no_bias: bool = False,
                cudnn_tune=None, cudnn_off: bool = False, layout: Optional[str] = None,
                name: Optional[str] = None) -> NDArray:
    """MXNet's Convolution: ``data`` (N, C, *spatial) or channel-last per ``layout``,
    ``weight`` (num_filter, C/num_group, *kernel) (channel-last: (F, *kernel,
    C/num_group)), ``bias`` (num_filter,) unless ``no_bias``.  ``workspace``,
    ``cudnn_*`` and ``name`` are accepted for compatibility."""
    from mxcore.ops.shape import transpose
    no_bias = bool(no_bias) or bias is None
    inputs = (data, weight) if no_bias else (data, weight, bias)
    try:
        nd, perm = _layout(layout, data.ndim, "Convolution")
        if not 1 <= nd <= 3:
            raise MXCoreError(f"data must be 3-d to 5-d (N, C, *spatial), got {data.ndim}-d")
        attrs = _geometry_attrs("Convolution", nd, kernel, stride, dilate, pad)
        attrs.update(num_filter=int(num_filter) or weight.shape[0],
                     num_group=int(num_group), no_bias=no_bias)
        if attrs["num_group"] < 1:
            raise MXCoreError(f"num_group must be >= 1, got {num_group}")
        if perm is not None:
            inv = _inverse(perm)
            data = transpose(data, perm)
            weight = transpose(weight, perm)
        args = (data, weight) if no_bias else (data, weight, bias)
        _conv_infer([x.shape for x in args], [x.dtype for x in args], attrs)
    except MXCoreError as exc:
        raise _fail("Convolution", exc, inputs) from None
    out = invoke(CONVOLUTION, args, attrs)
    return transpose(out, inv) if perm is not None else out


#: layouts MXNet's Deconvolution accepts
_DECONV_LAYOUTS = ("NCW", "NCHW", "NCDHW", "NHWC", "NDHWC")


def _target_pad_adj(target, spatial, attrs):
    """MXNet's rule for ``target_shape``: the pad and adj that give that output (both
    given values are ignored); the odd pixel, if any, goes to adj."""
    pad, adj = [], []
    for t, n, k, s, d in zip(target, spatial, attrs["kernel"], attrs["stride"],
                             attrs["dilate"]):
        full = (n - 1) * s + d * (k - 1) + 1  # the output with pad 0, adj 0
        if not 1 <= t <= full:
            raise MXCoreError(f"target_shape {tuple(target)} cannot be reached: with "
                              f"input {tuple(spatial)}, kernel {attrs['kernel']} and stride "
                              f"{attrs['stride']} each size must be between 1 and "
                              f"{full} (no padding)")
        pad.append((full - t + 1) // 2)
        adj.append((full - t) % 2)
    return tuple(pad), tuple(adj)


def deconvolution(data: NDArray, weight: NDArray, bias: Optional[NDArray] = None,
                  kernel: Sequence[int] = (), stride: Sequence[int] = (),
                  dilate: Sequence[int] = (), pad: Sequence[int] = (),
                  adj: Sequence[int] = (), target_shape: Sequence[int] = (),
                  num_filter: int = 0, num_group: int = 1, workspace: int = 512,
                  no_bias: bool = True, cudnn_tune=None, cudnn_off: bool = False,
                  layout: Optional[str] = None, name: Optional[str] = None) -> NDArray:
    """MXNet's Deconvolution (transposed convolution): ``data`` (N, C, *spatial) or
    channel-last per ``layout`` (NHWC, NDHWC), ``weight`` (C, num_filter/num_group,
    *kernel) (channel-last: (C, *kernel, num_filter/num_group)), ``bias``
    (num_filter,) when ``no_bias=False`` (MXNet's default is True).  Output size per
    axis: (in - 1) * stride + dilate * (kernel - 1) + 1 - 2 * pad + adj, adj <
    stride; a non-zero ``target_shape`` sets pad and adj to reach it instead.
    ``num_filter=0`` takes it from the weight.  ``workspace``, ``cudnn_*`` and
    ``name`` are accepted for compatibility.

    With both dilate and stride above 1, MXNet 1.9.1's CPU forward is not the
    adjoint of its own gradient; mxcore computes the transposed convolution there
    too (as PyTorch's conv_transpose does), and matches MXNet everywhere else."""
    from mxcore.ops.shape import transpose
    inputs = (data, weight) if bias is None else (data, weight, bias)
    try:
        if bias is not None and no_bias:
            raise MXCoreError("a bias was given but no_bias=True (Deconvolution's "
                              "default): pass no_bias=False to add it")
        no_bias = bias is None
        if layout is not None and layout not in _DECONV_LAYOUTS:
            raise MXCoreError(f"unknown layout {layout!r} (one of "
                              f"{', '.join(_DECONV_LAYOUTS)})")
        nd, perm = _layout(layout, data.ndim, "Deconvolution")
        if not 1 <= nd <= 3:
            raise MXCoreError(f"data must be 3-d to 5-d (N, C, *spatial), got {data.ndim}-d")
        if perm is not None:
            data, weight = transpose(data, perm), transpose(weight, perm)
        attrs = _geometry_attrs("Deconvolution", nd, kernel, stride, dilate, pad)
        attrs["adj"] = _tuple("adj", adj, nd, 0, "Deconvolution")
        target = _tuple("target_shape", target_shape, nd, 0, "Deconvolution")
        if any(target):
            if data.ndim != nd + 2:
                raise MXCoreError(f"data must be {nd + 2}-d (N, C, *spatial) for a "
                                  f"{nd}-d kernel, got shape {data.shape}")
            attrs["pad"], attrs["adj"] = _target_pad_adj(target, data.shape[2:], attrs)
        if min(attrs["adj"]) < 0 or int(num_group) < 1 or int(num_filter) < 0:
            raise MXCoreError("adj and num_filter must be >= 0, num_group >= 1")
        groups = int(num_group)
        attrs.update(num_filter=int(num_filter) or weight.shape[1] * groups,
                     num_group=groups, no_bias=no_bias)
        args = (data, weight) if no_bias else (data, weight, bias)
        _deconv_infer([x.shape for x in args], [x.dtype for x in args], attrs)
    except MXCoreError as exc:
        raise _fail("Deconvolution", exc, inputs) from None
    out = invoke(DECONVOLUTION, args, attrs)
    return transpose(out, _inverse(perm)) if perm is not None else out


_SAMPLE_TYPES = ("nearest", "bilinear")
_MULTI_INPUT_MODES = ("concat", "sum")


def _nearest_factors(data: Sequence[NDArray], scale: int, mode: str) -> Tuple[int, ...]:
    """MXNet's nearest UpSampling: the output is the first input's size times
    ``scale``, and every input is scaled to it by its own integer factor."""
    first = data[0]
    if first.ndim != 4:
        raise MXCoreError(f"data must be 4-d (N, C, H, W), got shape {first.shape}")
    oh, ow = first.shape[2] * scale, first.shape[3] * scale
    for x in data:
        if x.ndim != 4 or x.shape[0] != first.shape[0]:
            raise MXCoreError(f"every input must be 4-d with batch size {first.shape[0]}, "
                              f"got shape {x.shape}")
        if oh % x.shape[2] or ow % x.shape[3] or oh // x.shape[2] != ow // x.shape[3]:
            raise MXCoreError(f"input of shape {x.shape} does not scale to the output "
                              f"size ({oh}, {ow}) by one integer factor")
        if x.dtype != first.dtype:
            raise MXCoreError(f"dtypes differ ({first.dtype}, {x.dtype})")
    if mode == "sum" and len({x.shape[1] for x in data}) > 1:
        raise MXCoreError(f"multi_input_mode 'sum' needs equal channel counts, got "
                          f"{[x.shape[1] for x in data]}")
    return tuple(oh // x.shape[2] for x in data)


def _bilinear_kernel(data: Sequence[NDArray], scale: int, num_filter: int) -> int:
    """The kernel size of MXNet's bilinear UpSampling, after checking its inputs."""
    if len(data) != 2:
        raise MXCoreError(f"bilinear upsampling takes 2 inputs (data, weight), got "
                          f"{len(data)}")
    x, weight = data
    if x.ndim != 4:
        raise MXCoreError(f"data must be 4-d (N, C, H, W), got shape {x.shape}")
    if int(num_filter) != x.shape[1]:
        raise MXCoreError(f"num_filter must be the channel count {x.shape[1]} for "
                          f"bilinear upsampling, got {num_filter}")
    k = 2 * scale - scale % 2
    if weight.shape != (x.shape[1], 1, k, k):
        raise MXCoreError(f"weight shape {weight.shape} does not match: expected "
                          f"{(x.shape[1], 1, k, k)} (channels, 1, 2 * scale - scale % 2 "
                          "twice)")
    return k


def upsampling(*data: NDArray, scale: Optional[int] = None, num_filter: int = 0,
               sample_type: Optional[str] = None, multi_input_mode: str = "concat",
               num_args: Optional[int] = None, workspace: int = 512,
               name: Optional[str] = None) -> NDArray:
    """MXNet's UpSampling of 4-d (N, C, H, W) data by an integer ``scale``.

    ``sample_type='nearest'``: every pixel becomes a scale x scale block.  With several
    inputs the output is the first input's size times ``scale``, each input is
    scaled to it by its own factor, and the results are concatenated along channels
    (``multi_input_mode='concat'``) or summed (``'sum'``).

    ``sample_type='bilinear'``: inputs (data, weight), ``num_filter`` = C; a depthwise
    Deconvolution with kernel 2 * scale - scale % 2, stride ``scale`` and pad
    ceil((scale - 1) / 2) of the given (C, 1, kernel, kernel) weight (MXNet's
    ``init.Bilinear`` fills one with the interpolation kernel)."""
    from mxcore.ops.elemwise import add_n
    from mxcore.ops.shape import concat
    if len(data) == 1 and isinstance(data[0], (list, tuple)):
        data = tuple(data[0])
    if not data or any(not isinstance(x, NDArray) for x in data):
        raise OperatorError("UpSampling", "expected one or more NDArray inputs, got "
                            f"{[type(x).__name__ for x in data]}")
    try:
        if sample_type not in _SAMPLE_TYPES:
            raise MXCoreError(f"sample_type must be one of {_SAMPLE_TYPES}, got "
                              f"{sample_type!r}")
        if multi_input_mode not in _MULTI_INPUT_MODES:
            raise MXCoreError(f"multi_input_mode must be one of {_MULTI_INPUT_MODES}, got "
                              f"{multi_input_mode!r}")
        if scale is None or int(scale) < 1:
            raise MXCoreError(f"scale must be an integer >= 1, got {scale!r}")
        scale = int(scale)
        if num_args is not None and int(num_args) != len(data):
            raise MXCoreError(f"num_args={num_args} but {len(data)} inputs were given")
        if sample_type == "nearest":
            factors = _nearest_factors(data, scale, multi_input_mode)
        else:
            k = _bilinear_kernel(data, scale, num_filter)
    except MXCoreError as exc:
        raise _fail("UpSampling", exc, data) from None
    if sample_type == "bilinear":
        x, weight = data
        p = scale // 2  # ceil((scale - 1) / 2)
        return deconvolution(x, weight, kernel=(k, k), stride=(scale, scale), pad=(p, p),
                             num_filter=x.shape[1], num_group=x.shape[1], no_bias=True)
    ups = [x if f == 1 else invoke(UPSAMPLING_NEAREST, (x,), {"scale": f})
           for x, f in zip(data, factors)]
    if len(ups) == 1:
        return ups[0]
    return concat(*ups, dim=1) if multi_input_mode == "concat" else add_n(*ups)


def _pool_attrs(data: NDArray, kernel, pool_type, global_pool, stride, pad,
                pooling_convention, count_include_pad, p_value, layout):
    nd, perm = _layout(layout, data.ndim, "Pooling")
    if not 1 <= nd <= 3:
        raise MXCoreError(f"data must be 3-d to 5-d (N, C, *spatial), got {data.ndim}-d")
    spatial = (data.shape[2:] if perm is None
               else tuple(data.shape[i] for i in perm[2:]))
    if global_pool:
        k, s, p = tuple(spatial), (1,) * nd, (0,) * nd
    else:
        k = _tuple("kernel", kernel, nd, 0, "Pooling")
        if not kernel or min(k) < 1:
            raise MXCoreError(f"kernel must be {nd} positive sizes, got {kernel!r}")
        s = _tuple("stride", stride, nd, 1, "Pooling")
        p = _tuple("pad", pad, nd, 0, "Pooling")
        if min(s) < 1 or min(p) < 0:
            raise MXCoreError("stride must be >= 1 and pad >= 0")
    return {"kernel": k, "stride": s, "pad": p, "pool_type": pool_type,
            "pooling_convention": pooling_convention,
            "count_include_pad": True if count_include_pad is None else bool(count_include_pad),
            "p_value": 2 if p_value is None else int(p_value)}, perm


def pooling(data: NDArray, kernel: Sequence[int] = (), pool_type: str = "max",
            global_pool: bool = False, cudnn_off: bool = False,
            pooling_convention: str = "valid", stride: Sequence[int] = (),
            pad: Sequence[int] = (), p_value: Optional[int] = None,
            count_include_pad: Optional[bool] = None, layout: Optional[str] = None,
            name: Optional[str] = None) -> NDArray:
    """MXNet's Pooling: max, avg, sum or lp (``p_value``) pooling over windows of
    ``kernel`` (the whole spatial extent with ``global_pool``); ``pooling_convention``
    'full' rounds the output size up; 'same' (1-d max pooling, no ``pad``) gives
    ceil(width / stride) outputs, the last windows cut at the right edge.
    ``count_include_pad`` (avg): divide by the window clipped to the padded input
    (True) or to the input itself (False)."""
    from mxcore.ops.shape import transpose
    if pooling_convention == "same":
        return _same_pooling(data, kernel, pool_type, stride, pad, layout)
    try:
        attrs, perm = _pool_attrs(data, kernel, pool_type, global_pool, stride, pad,
                                  pooling_convention, count_include_pad, p_value, layout)
        x = transpose(data, perm) if perm is not None else data
        _pool_infer([x.shape], [x.dtype], attrs)
    except MXCoreError as exc:
        raise _fail("Pooling", exc, (data,)) from None
    out = invoke(POOLING, (x,), attrs)
    return transpose(out, _inverse(perm)) if perm is not None else out


def _same_pooling(data: NDArray, kernel, pool_type, stride, pad, layout) -> NDArray:
    """MXNet's 'same' convention: 1-d max pooling whose window at output i starts at
    i * stride and stops at the data's end; as valid pooling of the data extended on the
    right by -inf."""
    from mxcore.ops.creation import full
    from mxcore.ops.shape import concat
    try:
        if data.ndim != 3 or (layout not in (None, "NCW")):
            raise MXCoreError("pooling_convention 'same' pools 1-d (N, C, W) data only")
        if pool_type != "max":
            raise MXCoreError(f"pooling_convention 'same' is max pooling only, got "
                              f"pool_type {pool_type!r}")
        if any(int(p) for p in (pad if isinstance(pad, (tuple, list)) else (pad,))):
            raise MXCoreError(f"pooling_convention 'same' takes no pad, got {pad!r}")
        (k,) = _tuple("kernel", kernel, 1, 0, "Pooling")
        (s,) = _tuple("stride", stride, 1, 1, "Pooling")
        if k < 1 or s < 1 or k > data.shape[2]:
            raise MXCoreError(f"kernel ({k}) must be positive and fit in the width "
                              f"{data.shape[2]}, stride ({s}) positive")
    except MXCoreError as exc:
        raise _fail("Pooling", exc, (data,)) from None
    width = data.shape[2]
    extra = max((-(-width // s) - 1) * s + k - width, 0)
    if extra:
        edge = full(data.shape[:2] + (extra,), float("-inf"), ctx=data.context,
                    dtype=data.dtype)
        data = concat(data, edge, dim=2)
    return pooling(data, kernel=(k,), pool_type="max", stride=(s,))


Convolution = convolution
Deconvolution = deconvolution
UpSampling = upsampling
Pooling = pooling
