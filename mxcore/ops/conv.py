"""Convolution and pooling (MXNet's Convolution and Pooling), 1 to 3 spatial dims.

The ops work channel-first (N, C, *spatial); the wrappers take MXNet's attributes
(``kernel``, ``stride``, ``dilate``, ``pad``, ``num_filter``, ``num_group``,
``layout``...), normalise them to tuples and transpose channel-last layouts.  Their
first-order gradients are one op each (``convolution_backward``,
``pooling_backward``), as ``fully_connected_backward`` is; neither is differentiable
again (nor is MXNet's).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke
from mxcore.ndarray.ndarray import NDArray
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
OPS = [CONVOLUTION, CONV_BACKWARD, POOLING, POOL_BACKWARD]

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


@CONVOLUTION.def_grad
def _conv_grad(c, g):
    want = (c.needs_grad(0), c.needs_grad(1),
            not c.attrs["no_bias"] and c.needs_grad(2))
    if not any(want):
        return (None,) * len(c.inputs)
    outs = iter(invoke(CONV_BACKWARD, (g, c.inputs[0], c.inputs[1]),
                       {**c.attrs, "grads": want}))
    grads = tuple(next(outs) if wanted else None for wanted in want)
    return grads[:2] if c.attrs["no_bias"] else grads


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
        k = _tuple("kernel", kernel, nd, 0, "Convolution")
        if not kernel or min(k) < 1:
            raise MXCoreError(f"kernel must be {nd} positive sizes, got {kernel!r}")
        attrs = {"kernel": k, "stride": _tuple("stride", stride, nd, 1, "Convolution"),
                 "dilate": _tuple("dilate", dilate, nd, 1, "Convolution"),
                 "pad": _tuple("pad", pad, nd, 0, "Convolution"),
                 "num_filter": int(num_filter) or weight.shape[0],
                 "num_group": int(num_group), "no_bias": no_bias}
        if min(attrs["stride"]) < 1 or min(attrs["dilate"]) < 1 or min(attrs["pad"]) < 0 \
                or attrs["num_group"] < 1:
            raise MXCoreError("stride and dilate must be >= 1, pad >= 0, num_group >= 1")
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
    'full' rounds the output size up.  ``count_include_pad`` (avg): divide by the
    window clipped to the padded input (True) or to the input itself (False)."""
    from mxcore.ops.shape import transpose
    try:
        attrs, perm = _pool_attrs(data, kernel, pool_type, global_pool, stride, pad,
                                  pooling_convention, count_include_pad, p_value, layout)
        x = transpose(data, perm) if perm is not None else data
        _pool_infer([x.shape], [x.dtype], attrs)
    except MXCoreError as exc:
        raise _fail("Pooling", exc, (data,)) from None
    out = invoke(POOLING, (x,), attrs)
    return transpose(out, _inverse(perm)) if perm is not None else out


Convolution = convolution
Pooling = pooling
