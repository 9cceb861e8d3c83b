"""MobileNet (Howard et al., 2017) and MobileNetV2 (Sandler et al., 2018).

``multiplier`` scales every width (``int(width * multiplier)``); the model names
are ``mobilenet{1.0,0.75,0.5,0.25}`` and ``mobilenetv2_{1.0,0.75,0.5,0.25}``.
"""
from __future__ import annotations

from typing import Optional

from mxcore.gluon.block import HybridBlock
from mxcore.gluon.model_zoo.model_store import load_pretrained

__all__ = ["MobileNet", "MobileNetV2", "RELU6", "LinearBottleneck", "get_mobilenet",
           "get_mobilenet_v2", "mobilenet1_0", "mobilenet0_75", "mobilenet0_5",
           "mobilenet0_25", "mobilenet_v2_1_0", "mobilenet_v2_0_75", "mobilenet_v2_0_5",
           "mobilenet_v2_0_25"]


def _nn():
    from mxcore.gluon import nn
    return nn


class RELU6(HybridBlock):
    """``min(max(x, 0), 6)``."""

    def hybrid_forward(self, F, x):
        return F.clip(x, 0, 6, name="relu6")  # MXNet's node name


def _add_conv(out, channels: int = 1, kernel: int = 1, stride: int = 1, pad: int = 0,
              num_group: int = 1, active: bool = True, relu6: bool = False) -> None:
    """Convolution (no bias), BatchNorm and, when ``active``, ReLU or ReLU6."""
    nn = _nn()
    out.add(nn.Conv2D(channels, kernel, stride, pad, groups=num_group, use_bias=False),
            nn.BatchNorm(scale=True))
    if active:
        out.add(RELU6() if relu6 else nn.Activation("relu"))


def _add_conv_dw(out, dw_channels: int, channels: int, stride: int,
                 relu6: bool = False) -> None:
    """Depthwise 3x3 convolution then pointwise 1x1 convolution, each with BN + ReLU."""
    _add_conv(out, dw_channels, kernel=3, stride=stride, pad=1, num_group=dw_channels,
              relu6=relu6)
    _add_conv(out, channels, relu6=relu6)


class LinearBottleneck(HybridBlock):
    """MobileNetV2's inverted residual: 1x1 expansion by ``t``, depthwise 3x3
    (``stride``), linear 1x1 projection to ``channels``; the input is added back when
    the stride is 1 and the width is unchanged."""

    def __init__(self, in_channels: int, channels: int, t: int, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.use_shortcut = stride == 1 and in_channels == channels
        with self.name_scope():
            self.out = _nn().HybridSequential(prefix="")
            _add_conv(self.out, in_channels * t, relu6=True)
            _add_conv(self.out, in_channels * t, kernel=3, stride=stride, pad=1,
                      num_group=in_channels * t, relu6=True)
            _add_conv(self.out, channels, active=False, relu6=True)

    def hybrid_forward(self, F, x):
        out = self.out(x)
        return F.elemwise_add(out, x) if self.use_shortcut else out


# MobileNet: depthwise widths, pointwise widths and strides of the 13 separable blocks
_V1_DW = [32, 64] + [128] * 2 + [256] * 2 + [512] * 6 + [1024]
_V1_PW = [64] + [128] * 2 + [256] * 2 + [512] * 6 + [1024] * 2
_V1_STRIDES = [1, 2] * 3 + [1] * 5 + [2, 1]

# MobileNetV2: input width, output width, expansion and stride of the 17 bottlenecks
_V2_IN = [32, 16] + [24] * 2 + [32] * 3 + [64] * 4 + [96] * 3 + [160] * 3
_V2_OUT = [16] + [24] * 2 + [32] * 3 + [64] * 4 + [96] * 3 + [160] * 3 + [320]
_V2_T = [1] + [6] * 16
_V2_STRIDES = [1, 2] * 2 + [1, 1, 2] + [1] * 6 + [2] + [1] * 3


class MobileNet(HybridBlock):
    """A 3x3/2 convolution, 13 depthwise-separable blocks, global average pooling
    and a Dense ``classes`` output."""

    def __init__(self, multiplier: float = 1.0, classes: int = 1000, **kwargs):
        nn = _nn()
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            with self.features.name_scope():
                _add_conv(self.features, int(32 * multiplier), kernel=3, pad=1, stride=2)
                for dw, pw, s in zip(_V1_DW, _V1_PW, _V1_STRIDES):
                    _add_conv_dw(self.features, int(dw * multiplier), int(pw * multiplier), s)
                self.features.add(nn.GlobalAvgPool2D(), nn.Flatten())
            self.output = nn.Dense(classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


class MobileNetV2(HybridBlock):
    """A 3x3/2 convolution, 17 linear bottlenecks, a 1x1 convolution to 1280 channels
    (more when ``multiplier > 1``), global average pooling and a 1x1 convolution to
    ``classes`` (``output_pred_weight``, no bias) flattened."""

    def __init__(self, multiplier: float = 1.0, classes: int = 1000, **kwargs):
        nn = _nn()
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="features_")
            with self.features.name_scope():
                _add_conv(self.features, int(32 * multiplier), kernel=3, stride=2, pad=1,
                          relu6=True)
                for cin, cout, t, s in zip(_V2_IN, _V2_OUT, _V2_T, _V2_STRIDES):
                    self.features.add(LinearBottleneck(int(cin * multiplier),
                                                       int(cout * multiplier), t, s))
                last = int(1280 * multiplier) if multiplier > 1.0 else 1280
                _add_conv(self.features, last, relu6=True)
                self.features.add(nn.GlobalAvgPool2D())
            self.output = nn.HybridSequential(prefix="output_")
            with self.output.name_scope():
                self.output.add(nn.Conv2D(classes, 1, use_bias=False, prefix="pred_"),
                                nn.Flatten())

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def _suffix(multiplier: float) -> str:
    """MXNet's model-name suffix: two decimals, but 1.0 and 0.5 (1.0, 0.75, 0.5, 0.25)."""
    text = f"{multiplier:.2f}"
    return text[:-1] if text in ("1.00", "0.50") else text


def get_mobilenet(multiplier: float, pretrained: bool = False, ctx=None,
                  root: Optional[str] = None, **kwargs) -> MobileNet:
    """MobileNet of width ``multiplier``."""
    net = MobileNet(multiplier, **kwargs)
    if pretrained:
        load_pretrained(net, f"mobilenet{_suffix(multiplier)}", ctx, root)
    return net


def get_mobilenet_v2(multiplier: float, pretrained: bool = False, ctx=None,
                     root: Optional[str] = None, **kwargs) -> MobileNetV2:
    """MobileNetV2 of width ``multiplier``."""
    net = MobileNetV2(multiplier, **kwargs)
    if pretrained:
        load_pretrained(net, f"mobilenetv2_{_suffix(multiplier)}", ctx, root)
    return net


def mobilenet1_0(**kwargs) -> MobileNet:
    return get_mobilenet(1.0, **kwargs)


def mobilenet0_75(**kwargs) -> MobileNet:
    return get_mobilenet(0.75, **kwargs)


def mobilenet0_5(**kwargs) -> MobileNet:
    return get_mobilenet(0.5, **kwargs)


def mobilenet0_25(**kwargs) -> MobileNet:
    return get_mobilenet(0.25, **kwargs)


def mobilenet_v2_1_0(**kwargs) -> MobileNetV2:
    return get_mobilenet_v2(1.0, **kwargs)


def mobilenet_v2_0_75(**kwargs) -> MobileNetV2:
    return get_mobilenet_v2(0.75, **kwargs)


def mobilenet_v2_0_5(**kwargs) -> MobileNetV2:
    return get_mobilenet_v2(0.5, **kwargs)


def mobilenet_v2_0_25(**kwargs) -> MobileNetV2:
    return get_mobilenet_v2(0.25, **kwargs)
