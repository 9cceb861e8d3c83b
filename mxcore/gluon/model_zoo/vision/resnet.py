"""ResNet V1 (He et al., 2015) and V2 (pre-activation, He et al., 2016), depths 18-152.

The layout follows MXNet 1.9.1's model zoo block for block, so that parameter
names (``features.5.0.body.0.weight``, ``stage2_conv0_weight``) and shapes match
its files: in V1 the bottleneck strides in its first 1x1 convolution, and the two
1x1 convolutions of a V1 bottleneck have biases.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Type

from mxcore.base import MXCoreError
from mxcore.gluon.block import HybridBlock
from mxcore.gluon.model_zoo.model_store import load_pretrained

__all__ = ["ResNetV1", "ResNetV2", "BasicBlockV1", "BasicBlockV2", "BottleneckV1",
           "BottleneckV2", "resnet_spec", "get_resnet",
           "resnet18_v1", "resnet34_v1", "resnet50_v1", "resnet101_v1", "resnet152_v1",
           "resnet18_v2", "resnet34_v2", "resnet50_v2", "resnet101_v2", "resnet152_v2"]


def _nn():
    from mxcore.gluon import nn
    return nn


def _conv3x3(channels: int, stride: int, in_channels: int):
    return _nn().Conv2D(channels, kernel_size=3, strides=stride, padding=1, use_bias=False,
                        in_channels=in_channels)


def _conv1x1(channels: int, stride: int, in_channels: int = 0, use_bias: bool = False):
    return _nn().Conv2D(channels, kernel_size=1, strides=stride, use_bias=use_bias,
                        in_channels=in_channels)


class BasicBlockV1(HybridBlock):
    """Two 3x3 convolutions with BatchNorm, added to the input (through a strided
    1x1 convolution + BatchNorm when ``downsample``), then ReLU."""

    def __init__(self, channels: int, stride: int, downsample: bool = False,
                 in_channels: int = 0, **kwargs):
        nn = _nn()
        super().__init__(**kwargs)
        with self.name_scope():
            self.body = nn.HybridSequential(prefix="")
            self.body.add(_conv3x3(channels, stride, in_channels), nn.BatchNorm(),
                          nn.Activation("relu"), _conv3x3(channels, 1, channels),
                          nn.BatchNorm())
            self.downsample = _projection_v1(channels, stride, in_channels) if downsample \
                else None

    def hybrid_forward(self, F, x):
        residual = self.downsample(x) if self.downsample is not None else x
        return F.Activation(residual + self.body(x), act_type="relu")


class BottleneckV1(HybridBlock):
    """1x1 (``channels // 4``, strided) - 3x3 - 1x1 (``channels``) convolutions with
    BatchNorm and ReLU between them, added to the (projected) input, then ReLU."""

    def __init__(self, channels: int, stride: int, downsample: bool = False,
                 in_channels: int = 0, **kwargs):
        nn = _nn()
        super().__init__(**kwargs)
        mid = channels // 4
        with self.name_scope():
            self.body = nn.HybridSequential(prefix="")
            self.body.add(_conv1x1(mid, stride, use_bias=True), nn.BatchNorm(),
                          nn.Activation("relu"), _conv3x3(mid, 1, mid), nn.BatchNorm(),
                          nn.Activation("relu"), _conv1x1(channels, 1, use_bias=True),
                          nn.BatchNorm())
            self.downsample = _projection_v1(channels, stride, in_channels) if downsample \
                else None

    hybrid_forward = BasicBlockV1.hybrid_forward


def _projection_v1(channels: int, stride: int, in_channels: int):
    nn = _nn()
    out = nn.HybridSequential(prefix="")
    out.add(_conv1x1(channels, stride, in_channels), nn.BatchNorm())
    return out


class BasicBlockV2(HybridBlock):
    """Pre-activation block: BatchNorm-ReLU before each of two 3x3 convolutions;
    the shortcut is the input, or a strided 1x1 convolution of the first
    activation when ``downsample``."""

    def __init__(self, channels: int, stride: int, downsample: bool = False,
                 in_channels: int = 0, **kwargs):
        nn = _nn()
        super().__init__(**kwargs)
        with self.name_scope():
            self.bn1 = nn.BatchNorm()
            self.conv1 = _conv3x3(channels, stride, in_channels)
            self.bn2 = nn.BatchNorm()
            self.conv2 = _conv3x3(channels, 1, channels)
            self.downsample = _conv1x1(channels, stride, in_channels) if downsample else None

    def _later_convs(self):
        """(BatchNorm, convolution) pairs after the first convolution."""
        return ((self.bn2, self.conv2),)

    def hybrid_forward(self, F, x):
        act = F.Activation(self.bn1(x), act_type="relu")
        residual = self.downsample(act) if self.downsample is not None else x
        out = self.conv1(act)
        for bn, conv in self._later_convs():
            out = conv(F.Activation(bn(out), act_type="relu"))
        return out + residual


class BottleneckV2(BasicBlockV2):
    """Pre-activation bottleneck: BatchNorm-ReLU before 1x1 (``channels // 4``), 3x3
    (strided) and 1x1 (``channels``) convolutions, plus the shortcut."""

    def __init__(self, channels: int, stride: int, downsample: bool = False,
                 in_channels: int = 0, **kwargs):
        nn = _nn()
        HybridBlock.__init__(self, **kwargs)
        mid = channels // 4
        with self.name_scope():
            self.bn1 = nn.BatchNorm()
            self.conv1 = _conv1x1(mid, 1)
            self.bn2 = nn.BatchNorm()
            self.conv2 = _conv3x3(mid, stride, mid)
            self.bn3 = nn.BatchNorm()
            self.conv3 = _conv1x1(channels, 1)
            self.downsample = _conv1x1(channels, stride, in_channels) if downsample else None

    def _later_convs(self):
        return ((self.bn2, self.conv2), (self.bn3, self.conv3))


def _check_spec(owner: str, layers: Sequence[int], channels: Sequence[int]) -> None:
    if len(layers) != len(channels) - 1:
        raise MXCoreError(f"{owner}: channels needs one entry more than layers (the stem's "
                          f"width first), got {len(channels)} channels for {len(layers)} "
                          "stages")


def _make_stage(block: Type[HybridBlock], num_blocks: int, channels: int, stride: int,
                stage_index: int, in_channels: int):
    """``stage{i}_``: the first block changes width/resolution, the rest keep it."""
    stage = _nn().HybridSequential(prefix=f"stage{stage_index}_")
    with stage.name_scope():
        stage.add(block(channels, stride, channels != in_channels, in_channels=in_channels,
                        prefix=""))
        for _ in range(num_blocks - 1):
            stage.add(block(channels, 1, False, in_channels=channels, prefix=""))
    return stage


def _add_stem(features, channels: int, thumbnail: bool) -> None:
    """7x7/2 convolution, BatchNorm, ReLU, 3x3/2 max pool; or one 3x3 convolution
    for ``thumbnail`` (32x32 images such as CIFAR)."""
    nn = _nn()
    if thumbnail:
        features.add(_conv3x3(channels, 1, 0))
        return
    features.add(nn.Conv2D(channels, kernel_size=7, strides=2, padding=3, use_bias=False),
                 nn.BatchNorm(), nn.Activation("relu"),
                 nn.MaxPool2D(pool_size=3, strides=2, padding=1))


class ResNetV1(HybridBlock):
    """ResNet V1: the stem, ``len(layers)`` stages of ``block`` (stride 2 from the
    second on), global average pooling and a Dense ``classes`` output."""

    def __init__(self, block: Type[HybridBlock], layers: Sequence[int],
                 channels: Sequence[int], classes: int = 1000, thumbnail: bool = False,
                 **kwargs):
        nn = _nn()
        super().__init__(**kwargs)
        _check_spec(type(self).__name__, layers, channels)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            _add_stem(self.features, channels[0], thumbnail)
            for i, num_blocks in enumerate(layers):
                self.features.add(_make_stage(block, num_blocks, channels[i + 1],
                                              1 if i == 0 else 2, i + 1, channels[i]))
            self.features.add(nn.GlobalAvgPool2D())
            self.output = nn.Dense(classes, in_units=channels[-1])

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


class ResNetV2(HybridBlock):
    """ResNet V2: an input BatchNorm (no scale/shift trained), the stem, the stages,
    a final BatchNorm-ReLU, global average pooling and a Dense ``classes`` output."""

    def __init__(self, block: Type[HybridBlock], layers: Sequence[int],
                 channels: Sequence[int], classes: int = 1000, thumbnail: bool = False,
                 **kwargs):
        nn = _nn()
        super().__init__(**kwargs)
        _check_spec(type(self).__name__, layers, channels)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            self.features.add(nn.BatchNorm(scale=False, center=False))
            _add_stem(self.features, channels[0], thumbnail)
            for i, num_blocks in enumerate(layers):
                self.features.add(_make_stage(block, num_blocks, channels[i + 1],
                                              1 if i == 0 else 2, i + 1, channels[i]))
            self.features.add(nn.BatchNorm(), nn.Activation("relu"), nn.GlobalAvgPool2D(),
                              nn.Flatten())
            self.output = nn.Dense(classes, in_units=channels[-1])

    hybrid_forward = ResNetV1.hybrid_forward


# depth -> (block kind, blocks per stage, stem width then stage widths)
resnet_spec: Dict[int, Tuple[str, List[int], List[int]]] = {
    18: ("basic_block", [2, 2, 2, 2], [64, 64, 128, 256, 512]),
    34: ("basic_block", [3, 4, 6, 3], [64, 64, 128, 256, 512]),
    50: ("bottle_neck", [3, 4, 6, 3], [64, 256, 512, 1024, 2048]),
    101: ("bottle_neck", [3, 4, 23, 3], [64, 256, 512, 1024, 2048]),
    152: ("bottle_neck", [3, 8, 36, 3], [64, 256, 512, 1024, 2048]),
}
resnet_net_versions = [ResNetV1, ResNetV2]
resnet_block_versions = [{"basic_block": BasicBlockV1, "bottle_neck": BottleneckV1},
                         {"basic_block": BasicBlockV2, "bottle_neck": BottleneckV2}]


def get_resnet(version: int, num_layers: int, pretrained: bool = False, ctx=None,
               root: Optional[str] = None, **kwargs) -> HybridBlock:
    """ResNet ``version`` (1 or 2) of depth ``num_layers`` (18, 34, 50, 101, 152)."""
    if num_layers not in resnet_spec:
        raise MXCoreError(f"get_resnet: no ResNet of depth {num_layers}; choose one of "
                          f"{sorted(resnet_spec)}")
    if version not in (1, 2):
        raise MXCoreError(f"get_resnet: version must be 1 or 2, got {version!r}")
    kind, layers, channels = resnet_spec[num_layers]
    net = resnet_net_versions[version - 1](resnet_block_versions[version - 1][kind], layers,
                                           channels, **kwargs)
    if pretrained:
        load_pretrained(net, f"resnet{num_layers}_v{version}", ctx, root)
    return net


def resnet18_v1(**kwargs) -> ResNetV1:
    return get_resnet(1, 18, **kwargs)


def resnet34_v1(**kwargs) -> ResNetV1:
    return get_resnet(1, 34, **kwargs)


def resnet50_v1(**kwargs) -> ResNetV1:
    return get_resnet(1, 50, **kwargs)


def resnet101_v1(**kwargs) -> ResNetV1:
    return get_resnet(1, 101, **kwargs)


def resnet152_v1(**kwargs) -> ResNetV1:
    return get_resnet(1, 152, **kwargs)


def resnet18_v2(**kwargs) -> ResNetV2:
    return get_resnet(2, 18, **kwargs)


def resnet34_v2(**kwargs) -> ResNetV2:
    return get_resnet(2, 34, **kwargs)


def resnet50_v2(**kwargs) -> ResNetV2:
    return get_resnet(2, 50, **kwargs)


def resnet101_v2(**kwargs) -> ResNetV2:
    return get_resnet(2, 101, **kwargs)


def resnet152_v2(**kwargs) -> ResNetV2:
    return get_resnet(2, 152, **kwargs)
