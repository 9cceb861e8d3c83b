"""Convolution and pooling layers (MXNet Gluon 1.x ``gluon.nn.conv_layers``).

Signatures, parameter names and shapes follow MXNet 1.x, so scripts and
parameter files carry over: ``Conv2D(6, 5)`` owns ``conv0_weight`` of shape
(6, in_channels / groups, 5, 5) and ``conv0_bias`` of shape (6,).  In a
channel-last layout (``NHWC``...) the weight is (channels, *kernel,
in_channels / groups), as in MXNet.  ``in_channels=0`` defers the weight's
shape to the first input.

The transposed convolutions (``Conv1DTranspose``...) run ``mx.nd.Deconvolution``:
``Conv2DTranspose(6, 3)`` owns ``conv0_weight`` of shape (in_channels,
6 / groups, 3, 3) (channel-last: (in_channels, *kernel, 6 / groups)), as in
MXNet, and ``output_padding`` is the operator's ``adj``.
"""
from __future__ import annotations

import numbers
from typing import Optional, Sequence, Tuple, Union

from mxcore.base import MXCoreError
from mxcore.gluon.block import HybridBlock, is_symbolic
from mxcore.gluon.nn.activations import Activation

__all__ = ["Conv1D", "Conv2D", "Conv3D",
           "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
           "MaxPool1D", "MaxPool2D", "MaxPool3D",
           "AvgPool1D", "AvgPool2D", "AvgPool3D",
           "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D",
           "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D",
           "ReflectionPad2D"]

IntOrTuple = Union[int, Sequence[int]]

# the layouts each number of spatial dimensions accepts: channel-first, channel-last
_LAYOUTS = {1: ("NCW", "NWC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}


def _ints(value: IntOrTuple, n: int, what: str, owner: str, low: int) -> Tuple[int, ...]:
    """``value`` as ``n`` integers >= ``low`` (an int is repeated, as in MXNet)."""
    if isinstance(value, numbers.Integral):
        out = (int(value),) * n
    else:
        try:
            out = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            out = ()
        if len(out) != n or any(not isinstance(v, numbers.Integral) for v in value):
            raise ValueError(f"{owner}: {what} must be an integer or {n} integers, "
                             f"got {value!r}")
    if any(v < low for v in out):
        raise ValueError(f"{owner}: {what} must be >= {low}, got {value!r}")
    return out


def _check_layout(layout: str, ndim: int, owner: str) -> str:
    if layout not in _LAYOUTS[ndim]:
        raise ValueError(f"{owner}: layout must be one of {_LAYOUTS[ndim]}, got {layout!r}")
    return layout


class _Conv(HybridBlock):
    """An n-d convolution (``mx.nd.Convolution``), then ``activation`` if given."""

    _fwd_name = True

    _op = "Convolution"

    def __init__(self, channels: int, kernel_size: IntOrTuple, strides: IntOrTuple,
                 padding: IntOrTuple, dilation: IntOrTuple, groups: int, layout: str,
                 in_channels: int = 0, activation: Optional[str] = None,
                 use_bias: bool = True, weight_initializer=None,
                 bias_initializer="zeros", ndim: int = 2, **kwargs):
        owner = type(self).__name__
        _check_layout(layout, ndim, owner)
        kernel = _ints(kernel_size, ndim, "kernel_size", owner, 1)
        strides = _ints(strides, ndim, "strides", owner, 1)
        padding = _ints(padding, ndim, "padding", owner, 0)
        dilation = _ints(dilation, ndim, "dilation", owner, 1)
        channels, groups, in_channels = int(channels), int(groups), int(in_channels)
        if channels < 1 or groups < 1 or in_channels < 0:
            raise ValueError(f"{owner}: channels and groups must be >= 1 and in_channels "
                             f">= 0, got {channels}, {groups}, {in_channels}")
        if channels % groups or in_channels % groups:
            raise ValueError(f"{owner}: channels ({channels}) and in_channels "
                             f"({in_channels}) must be multiples of groups ({groups})")
        super().__init__(**kwargs)
        self._channels = channels
        self._in_channels = in_channels
        self._channel_axis = layout.find("C")
        self._kwargs = {"kernel": kernel, "stride": strides, "dilate": dilation,
                        "pad": padding, "num_filter": channels, "num_group": groups,
                        "no_bias": not use_bias, "layout": layout}
        with self.name_scope():
            self.weight = self.params.get("weight", shape=self._weight_shape(in_channels),
                                          init=weight_initializer, allow_deferred_init=True)
            self.bias = self.params.get("bias", shape=(channels,), init=bias_initializer,
                                        allow_deferred_init=True) if use_bias else None
            if activation is not None:
                self.act = Activation(activation, prefix=f"{activation}_")
            else:
                self.act = None

    def _alias(self) -> str:
        return "conv"

    def _weight_shape(self, in_channels: int) -> Tuple[int, ...]:
        per_group = in_channels // self._kwargs["num_group"]
        kernel = self._kwargs["kernel"]
        if self._channel_axis == 1:
            return (self._channels, per_group) + kernel
        return (self._channels,) + kernel + (per_group,)  # MXNet's channel-last weights

    def _weight_in_channels(self, shape: Tuple[int, ...]) -> int:
        """The input channels a weight of ``shape`` takes (0: not known yet)."""
        w_axis = 1 if self._channel_axis == 1 else len(shape) - 1
        return shape[w_axis] * self._kwargs["num_group"]

    def _check_input(self, x) -> int:
        """The input's channel count; raises naming this layer when ``x`` cannot be
        its input (the operator's own error would not say which layer failed)."""
        if is_symbolic(x):
            return None
        ndim = len(self._kwargs["kernel"]) + 2
        if x.ndim != ndim:
            raise MXCoreError(f"{type(self).__name__} {self.name!r} takes {ndim}-d input "
                              f"({self._kwargs['layout']}), got shape {tuple(x.shape)}")
        return x.shape[self._channel_axis]

    def infer_shape(self, x, *args) -> None:
        channels = self._check_input(x)
        groups = self._kwargs["num_group"]
        if channels % groups:
            raise MXCoreError(f"{type(self).__name__} {self.name!r}: input of shape "
                              f"{tuple(x.shape)} has {channels} channels, not a multiple of "
                              f"groups={groups}")
        self.weight.shape = self._weight_shape(channels)

    def hybrid_forward(self, F, x, weight, bias=None):
        channels = self._check_input(x)
        expected = channels if channels is None else \
            self._weight_in_channels(tuple(weight.shape))
        if channels != expected:
            raise MXCoreError(
                f"{type(self).__name__} {self.name!r}: input of shape {tuple(x.shape)} has "
                f"{channels} channels ({self._kwargs['layout']}), but the layer takes "
                f"{expected} (weight {self.weight.name} has shape {tuple(weight.shape)})")
        op = getattr(F, self._op)
        if bias is None:
            out = op(x, weight, **self._kwargs)
        else:
            out = op(x, weight, bias, **self._kwargs)
        return self.act(out) if self.act is not None else out

    def __repr__(self) -> str:
        kw = self._kwargs
        n = len(kw["kernel"])
        s = "{name}({mapping}, kernel_size={kernel}, stride={stride}"
        if kw["pad"] != (0,) * n:
            s += ", padding={pad}"
        if kw["dilate"] != (1,) * n:
            s += ", dilation={dilate}"
        if kw.get("adj", (0,) * n) != (0,) * n:
            s += ", output_padding={adj}"
        if kw["num_group"] != 1:
            s += ", groups={num_group}"
        if self.bias is None:
            s += ", bias=False"
        if self.act is not None:
            s += f", {self.act!r}"
        s += ")"
        in_channels = self._weight_in_channels(tuple(self.weight.shape))
        return s.format(name=type(self).__name__,
                        mapping=f"{in_channels if in_channels else None} -> "
                                f"{self._channels}", **kw)


class Conv1D(_Conv):
    """1-d convolution over ``(batch, in_channels, width)`` (layout ``NCW``; ``NWC``
    also accepted).  Output width:
    ``floor((width + 2*padding - dilation*(kernel_size-1) - 1) / strides) + 1``."""

    def __init__(self, channels: int, kernel_size: IntOrTuple, strides: IntOrTuple = 1,
                 padding: IntOrTuple = 0, dilation: IntOrTuple = 1, groups: int = 1,
                 layout: str = "NCW", activation: Optional[str] = None, use_bias: bool = True,
                 weight_initializer=None, bias_initializer="zeros", in_channels: int = 0,
                 **kwargs):
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout,
                         in_channels, activation, use_bias, weight_initializer,
                         bias_initializer, ndim=1, **kwargs)


class Conv2D(_Conv):
    """2-d convolution over ``(batch, in_channels, height, width)`` (layout ``NCHW``;
    ``NHWC`` also accepted).  Each output size is
    ``floor((size + 2*padding - dilation*(kernel_size-1) - 1) / strides) + 1``."""

    def __init__(self, channels: int, kernel_size: IntOrTuple,
                 strides: IntOrTuple = (1, 1), padding: IntOrTuple = (0, 0),
                 dilation: IntOrTuple = (1, 1), groups: int = 1, layout: str = "NCHW",
                 activation: Optional[str] = None, use_bias: bool = True,
                 weight_initializer=None, bias_initializer="zeros", in_channels: int = 0,
                 **kwargs):
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout,
                         in_channels, activation, use_bias, weight_initializer,
                         bias_initializer, ndim=2, **kwargs)


class Conv3D(_Conv):
    """3-d convolution over ``(batch, in_channels, depth, height, width)`` (layout
    ``NCDHW``; ``NDHWC`` also accepted)."""

    def __init__(self, channels: int, kernel_size: IntOrTuple,
                 strides: IntOrTuple = (1, 1, 1), padding: IntOrTuple = (0, 0, 0),
                 dilation: IntOrTuple = (1, 1, 1), groups: int = 1, layout: str = "NCDHW",
                 activation: Optional[str] = None, use_bias: bool = True,
                 weight_initializer=None, bias_initializer="zeros", in_channels: int = 0,
                 **kwargs):
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout,
                         in_channels, activation, use_bias, weight_initializer,
                         bias_initializer, ndim=3, **kwargs)


class _ConvTranspose(_Conv):
    """An n-d transposed convolution (``mx.nd.Deconvolution``), then ``activation``.

    Each output size is ``(size - 1) * strides - 2 * padding + dilation *
    (kernel_size - 1) + 1 + output_padding``; ``output_padding`` must be smaller
    than ``strides``."""

    _op = "Deconvolution"
    #: layouts per number of spatial dims: MXNet's Deconvolution has no NWC
    _layouts = {1: ("NCW",), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}

    def __init__(self, channels: int, kernel_size: IntOrTuple, strides: IntOrTuple,
                 padding: IntOrTuple, output_padding: IntOrTuple, dilation: IntOrTuple,
                 groups: int, layout: str, in_channels: int = 0,
                 activation: Optional[str] = None, use_bias: bool = True,
                 weight_initializer=None, bias_initializer="zeros", ndim: int = 2, **kwargs):
        owner = type(self).__name__
        if layout not in self._layouts[ndim]:
            raise ValueError(f"{owner}: layout must be one of {self._layouts[ndim]}, got "
                             f"{layout!r}")
        adj = _ints(output_padding, ndim, "output_padding", owner, 0)
        steps = _ints(strides, ndim, "strides", owner, 1)
        if any(a >= st for a, st in zip(adj, steps)):
            raise ValueError(f"{owner}: output_padding {adj} must be smaller than strides "
                             f"{steps}")
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout,
                         in_channels, activation, use_bias, weight_initializer,
                         bias_initializer, ndim=ndim, **kwargs)
        self._kwargs["adj"] = adj

    def _weight_shape(self, in_channels: int) -> Tuple[int, ...]:
        per_group = self._channels // self._kwargs["num_group"]
        kernel = self._kwargs["kernel"]
        if self._channel_axis == 1:
            return (in_channels, per_group) + kernel
        return (in_channels,) + kernel + (per_group,)  # MXNet's channel-last weights

    def _weight_in_channels(self, shape: Tuple[int, ...]) -> int:
        return shape[0]


class Conv1DTranspose(_ConvTranspose):
    """Transposed 1-d convolution of ``(batch, in_channels, width)`` (layout ``NCW``):
    output width ``(width - 1) * strides - 2 * padding + dilation * (kernel_size - 1)
    + 1 + output_padding``."""

    def __init__(self, channels: int, kernel_size: IntOrTuple, strides: IntOrTuple = 1,
                 padding: IntOrTuple = 0, output_padding: IntOrTuple = 0,
                 dilation: IntOrTuple = 1, groups: int = 1, layout: str = "NCW",
                 activation: Optional[str] = None, use_bias: bool = True,
                 weight_initializer=None, bias_initializer="zeros", in_channels: int = 0,
                 **kwargs):
        super().__init__(channels, kernel_size, strides, padding, output_padding, dilation,
                         groups, layout, in_channels, activation, use_bias,
                         weight_initializer, bias_initializer, ndim=1, **kwargs)


class Conv2DTranspose(_ConvTranspose):
    """Transposed 2-d convolution of ``(batch, in_channels, height, width)`` (layout
    ``NCHW``; ``NHWC`` also accepted)."""

    def __init__(self, channels: int, kernel_size: IntOrTuple,
                 strides: IntOrTuple = (1, 1), padding: IntOrTuple = (0, 0),
                 output_padding: IntOrTuple = (0, 0), dilation: IntOrTuple = (1, 1),
                 groups: int = 1, layout: str = "NCHW", activation: Optional[str] = None,
                 use_bias: bool = True, weight_initializer=None, bias_initializer="zeros",
                 in_channels: int = 0, **kwargs):
        super().__init__(channels, kernel_size, strides, padding, output_padding, dilation,
                         groups, layout, in_channels, activation, use_bias,
                         weight_initializer, bias_initializer, ndim=2, **kwargs)


class Conv3DTranspose(_ConvTranspose):
    """Transposed 3-d convolution of ``(batch, in_channels, depth, height, width)``
    (layout ``NCDHW``; ``NDHWC`` also accepted)."""

    def __init__(self, channels: int, kernel_size: IntOrTuple,
                 strides: IntOrTuple = (1, 1, 1), padding: IntOrTuple = (0, 0, 0),
                 output_padding: IntOrTuple = (0, 0, 0), dilation: IntOrTuple = (1, 1, 1),
                 groups: int = 1, layout: str = "NCDHW", activation: Optional[str] = None,
                 use_bias: bool = True, weight_initializer=None, bias_initializer="zeros",
                 in_channels: int = 0, **kwargs):
        super().__init__(channels, kernel_size, strides, padding, output_padding, dilation,
                         groups, layout, in_channels, activation, use_bias,
                         weight_initializer, bias_initializer, ndim=3, **kwargs)


class _Pooling(HybridBlock):
    """Pooling (``mx.nd.Pooling``); ``strides=None`` means ``pool_size`` and
    ``ceil_mode`` selects the ``full`` pooling convention (ceil instead of floor)."""

    _fwd_name = True

    def __init__(self, pool_size: IntOrTuple, strides: Optional[IntOrTuple],
                 padding: IntOrTuple, ceil_mode: bool, global_pool: bool, pool_type: str,
                 layout: str, count_include_pad: Optional[bool] = None, ndim: int = 2,
                 **kwargs):
        owner = type(self).__name__
        _check_layout(layout, ndim, owner)
        pool_size = _ints(pool_size, ndim, "pool_size", owner, 1)
        strides = pool_size if strides is None else _ints(strides, ndim, "strides", owner, 1)
        padding = _ints(padding, ndim, "padding", owner, 0)
        super().__init__(**kwargs)
        self._kwargs = {"kernel": pool_size, "stride": strides, "pad": padding,
                        "global_pool": bool(global_pool), "pool_type": pool_type,
                        "layout": layout,
                        "pooling_convention": "full" if ceil_mode else "valid"}
        if count_include_pad is not None:
            self._kwargs["count_include_pad"] = bool(count_include_pad)

    def _alias(self) -> str:
        return "pool"

    def hybrid_forward(self, F, x):
        ndim = len(self._kwargs["kernel"]) + 2
        if not is_symbolic(x) and x.ndim != ndim:
            raise MXCoreError(f"{type(self).__name__} {self.name!r} takes {ndim}-d input "
                              f"({self._kwargs['layout']}), got shape {tuple(x.shape)}")
        return F.Pooling(x, **self._kwargs)

    def __repr__(self) -> str:
        kw = self._kwargs
        return (f"{type(self).__name__}(size={kw['kernel']}, stride={kw['stride']}, "
                f"padding={kw['pad']}, ceil_mode={kw['pooling_convention'] == 'full'}, "
                f"global_pool={kw['global_pool']}, pool_type={kw['pool_type']}, "
                f"layout={kw['layout']})")


class MaxPool1D(_Pooling):
    """Max pooling over the width of ``(batch, channels, width)``."""

    def __init__(self, pool_size: IntOrTuple = 2, strides: Optional[IntOrTuple] = None,
                 padding: IntOrTuple = 0, layout: str = "NCW", ceil_mode: bool = False,
                 **kwargs):
        super().__init__(pool_size, strides, padding, ceil_mode, False, "max", layout,
                         ndim=1, **kwargs)


class MaxPool2D(_Pooling):
    """Max pooling over height and width."""

    def __init__(self, pool_size: IntOrTuple = (2, 2), strides: Optional[IntOrTuple] = None,
                 padding: IntOrTuple = 0, layout: str = "NCHW", ceil_mode: bool = False,
                 **kwargs):
        super().__init__(pool_size, strides, padding, ceil_mode, False, "max", layout,
                         ndim=2, **kwargs)


class MaxPool3D(_Pooling):
    """Max pooling over depth, height and width."""

    def __init__(self, pool_size: IntOrTuple = (2, 2, 2),
                 strides: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False, layout: str = "NCDHW", **kwargs):
        super().__init__(pool_size, strides, padding, ceil_mode, False, "max", layout,
                         ndim=3, **kwargs)


class AvgPool1D(_Pooling):
    """Average pooling over the width; ``count_include_pad=False`` leaves padding
    out of each average."""

    def __init__(self, pool_size: IntOrTuple = 2, strides: Optional[IntOrTuple] = None,
                 padding: IntOrTuple = 0, layout: str = "NCW", ceil_mode: bool = False,
                 count_include_pad: bool = True, **kwargs):
        super().__init__(pool_size, strides, padding, ceil_mode, False, "avg", layout,
                         count_include_pad, ndim=1, **kwargs)


class AvgPool2D(_Pooling):
    """Average pooling over height and width."""

    def __init__(self, pool_size: IntOrTuple = (2, 2), strides: Optional[IntOrTuple] = None,
                 padding: IntOrTuple = 0, ceil_mode: bool = False, layout: str = "NCHW",
                 count_include_pad: bool = True, **kwargs):
        super().__init__(pool_size, strides, padding, ceil_mode, False, "avg", layout,
                         count_include_pad, ndim=2, **kwargs)


class AvgPool3D(_Pooling):
    """Average pooling over depth, height and width."""

    def __init__(self, pool_size: IntOrTuple = (2, 2, 2),
                 strides: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False, layout: str = "NCDHW",
                 count_include_pad: bool = True, **kwargs):
        super().__init__(pool_size, strides, padding, ceil_mode, False, "avg", layout,
                         count_include_pad, ndim=3, **kwargs)


# The global poolings pass MXNet's arguments (size 1, ceil_mode True): global_pool
# makes the operator pool over the whole extent, and the repr matches MXNet's.

class GlobalMaxPool1D(_Pooling):
    """Max over the whole width: output ``(batch, channels, 1)``."""

    def __init__(self, layout: str = "NCW", **kwargs):
        super().__init__((1,), None, 0, True, True, "max", layout, ndim=1, **kwargs)


class GlobalMaxPool2D(_Pooling):
    """Max over height and width: output ``(batch, channels, 1, 1)``."""

    def __init__(self, layout: str = "NCHW", **kwargs):
        super().__init__((1, 1), None, 0, True, True, "max", layout, ndim=2, **kwargs)


class GlobalMaxPool3D(_Pooling):
    """Max over depth, height and width: output ``(batch, channels, 1, 1, 1)``."""

    def __init__(self, layout: str = "NCDHW", **kwargs):
        super().__init__((1, 1, 1), None, 0, True, True, "max", layout, ndim=3, **kwargs)


class GlobalAvgPool1D(_Pooling):
    """Mean over the whole width: output ``(batch, channels, 1)``."""

    def __init__(self, layout: str = "NCW", **kwargs):
        super().__init__((1,), None, 0, True, True, "avg", layout, ndim=1, **kwargs)


class GlobalAvgPool2D(_Pooling):
    """Mean over height and width: output ``(batch, channels, 1, 1)``."""

    def __init__(self, layout: str = "NCHW", **kwargs):
        super().__init__((1, 1), None, 0, True, True, "avg", layout, ndim=2, **kwargs)


class GlobalAvgPool3D(_Pooling):
    """Mean over depth, height and width: output ``(batch, channels, 1, 1, 1)``."""

    def __init__(self, layout: str = "NCDHW", **kwargs):
        super().__init__((1, 1, 1), None, 0, True, True, "avg", layout, ndim=3, **kwargs)


class ReflectionPad2D(HybridBlock):
    """Pad the last two axes of ``(N, C, H, W)`` input with their reflection
    (``mx.nd.pad(mode='reflect')``).  ``padding`` is an int, or MXNet's eight
    ``pad_width`` values (the first four, for N and C, must be 0)."""

    def __init__(self, padding: IntOrTuple = 0, **kwargs):
        if isinstance(padding, numbers.Integral):
            padding = (0, 0, 0, 0) + (int(padding),) * 4
        padding = _ints(padding, 8, "padding", "ReflectionPad2D", 0)
        if any(padding[:4]):
            raise ValueError(f"ReflectionPad2D pads H and W only: the first four values of "
                             f"padding must be 0, got {padding}")
        super().__init__(**kwargs)
        self._padding = padding

    def hybrid_forward(self, F, x):
        if not is_symbolic(x) and x.ndim != 4:
            raise MXCoreError(f"ReflectionPad2D {self.name!r} takes 4-d input (N, C, H, W), "
                              f"got shape {tuple(x.shape)}")
        return F.pad(x, mode="reflect", pad_width=self._padding)

    def __repr__(self) -> str:
        return f"ReflectionPad2D(padding={self._padding[4:]})"
