"""SqueezeNet 1.0 and 1.1 (Iandola et al., 2016).

The classifier ends in a fixed 13x13 average pooling, so the models take
224x224 input (1.1) or about 227x227 (1.0; 224x224 works as in MXNet).
"""
from __future__ import annotations

from typing import Optional

from mxcore.base import MXCoreError
from mxcore.gluon.block import HybridBlock
from mxcore.gluon.model_zoo.model_store import load_pretrained

__all__ = ["SqueezeNet", "get_squeezenet", "squeezenet1_0", "squeezenet1_1"]


def _nn():
    from mxcore.gluon import nn
    return nn


def _fire_conv(channels: int, kernel: int, padding: int = 0):
    nn = _nn()
    out = nn.HybridSequential(prefix="")
    out.add(nn.Conv2D(channels, kernel, padding=padding), nn.Activation("relu"))
    return out


def _fire(squeeze: int, expand1x1: int, expand3x3: int):
    """A fire module: 1x1 squeeze, then 1x1 and 3x3 expansions concatenated."""
    from mxcore.gluon.contrib.nn import HybridConcurrent
    out = _nn().HybridSequential(prefix="")
    out.add(_fire_conv(squeeze, 1))
    paths = HybridConcurrent(axis=1, prefix="")
    paths.add(_fire_conv(expand1x1, 1), _fire_conv(expand3x3, 3, 1))
    out.add(paths)
    return out


# the feature stacks after the stem: "pool" is a 3x3/2 max pool (ceil mode),
# a tuple a fire module (squeeze, expand 1x1, expand 3x3)
_STEMS = {"1.0": (96, 7), "1.1": (64, 3)}
_BODIES = {
    "1.0": [(16, 64, 64), (16, 64, 64), (32, 128, 128), "pool", (32, 128, 128),
            (48, 192, 192), (48, 192, 192), (64, 256, 256), "pool", (64, 256, 256)],
    "1.1": [(16, 64, 64), (16, 64, 64), "pool", (32, 128, 128), (32, 128, 128), "pool",
            (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)],
}


class SqueezeNet(HybridBlock):
    """Stem convolution (stride 2) with ReLU and max pooling, fire modules and max
    pools (``version`` "1.0" or "1.1"), dropout 0.5, then a 1x1 convolution to
    ``classes`` with ReLU, 13x13 average pooling and flatten."""

    def __init__(self, version: str, classes: int = 1000, **kwargs):
        nn = _nn()
        super().__init__(**kwargs)
        if version not in _BODIES:
            raise MXCoreError(f"SqueezeNet: version must be one of {sorted(_BODIES)}, got "
                              f"{version!r}")
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            channels, kernel = _STEMS[version]
            self.features.add(nn.Conv2D(channels, kernel_size=kernel, strides=2),
                              nn.Activation("relu"))
            for item in ["pool"] + _BODIES[version]:
                self.features.add(nn.MaxPool2D(pool_size=3, strides=2, ceil_mode=True)
                                  if item == "pool" else _fire(*item))
            self.features.add(nn.Dropout(0.5))
            self.output = nn.HybridSequential(prefix="")
            self.output.add(nn.Conv2D(classes, kernel_size=1), nn.Activation("relu"),
                            nn.AvgPool2D(13), nn.Flatten())

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def get_squeezenet(version: str, pretrained: bool = False, ctx=None,
                   root: Optional[str] = None, **kwargs) -> SqueezeNet:
    """SqueezeNet ``version`` ("1.0" or "1.1")."""
    net = SqueezeNet(version, **kwargs)
    return load_pretrained(net, f"squeezenet{version}", ctx, root) if pretrained else net


def squeezenet1_0(**kwargs) -> SqueezeNet:
    return get_squeezenet("1.0", **kwargs)


def squeezenet1_1(**kwargs) -> SqueezeNet:
    return get_squeezenet("1.1", **kwargs)
