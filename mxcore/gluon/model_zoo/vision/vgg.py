"""VGG 11/13/16/19 (Simonyan & Zisserman, 2014), with or without BatchNorm."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from mxcore.base import MXCoreError
from mxcore.gluon.block import HybridBlock
from mxcore.gluon.model_zoo.model_store import load_pretrained

__all__ = ["VGG", "get_vgg", "vgg_spec", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn",
           "vgg13_bn", "vgg16_bn", "vgg19_bn"]

# depth -> (3x3 convolutions per stage, channels per stage); each stage ends in a 2x2 pool
vgg_spec: Dict[int, Tuple[List[int], List[int]]] = {
    11: ([1, 1, 2, 2, 2], [64, 128, 256, 512, 512]),
    13: ([2, 2, 2, 2, 2], [64, 128, 256, 512, 512]),
    16: ([2, 2, 3, 3, 3], [64, 128, 256, 512, 512]),
    19: ([2, 2, 4, 4, 4], [64, 128, 256, 512, 512]),
}


class VGG(HybridBlock):
    """Stages of padded 3x3 convolutions (each followed by BatchNorm when
    ``batch_norm``, then ReLU) and 2x2 max pooling, two Dense 4096 ReLU layers with
    dropout 0.5 and a Dense ``classes`` output.  Convolutions start from Xavier
    (gaussian, fan-out, magnitude 2), Dense layers from N(0, 0.01), as in MXNet."""

    def __init__(self, layers: Sequence[int], filters: Sequence[int], classes: int = 1000,
                 batch_norm: bool = False, **kwargs):
        from mxcore import initializer as init
        from mxcore.gluon import nn
        super().__init__(**kwargs)
        if len(layers) != len(filters):
            raise MXCoreError(f"VGG: layers ({len(layers)} stages) and filters "
                              f"({len(filters)}) must have the same length")
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            with self.features.name_scope():
                for num, channels in zip(layers, filters):
                    for _ in range(num):
                        self.features.add(nn.Conv2D(
                            channels, kernel_size=3, padding=1,
                            weight_initializer=init.Xavier(rnd_type="gaussian",
                                                           factor_type="out", magnitude=2),
                            bias_initializer="zeros"))
                        if batch_norm:
                            self.features.add(nn.BatchNorm())
                        self.features.add(nn.Activation("relu"))
                    self.features.add(nn.MaxPool2D(strides=2))
                for _ in range(2):
                    self.features.add(nn.Dense(4096, activation="relu",
                                               weight_initializer="normal",
                                               bias_initializer="zeros"),
                                      nn.Dropout(rate=0.5))
            self.output = nn.Dense(classes, weight_initializer="normal",
                                   bias_initializer="zeros")

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def get_vgg(num_layers: int, pretrained: bool = False, ctx=None, root: Optional[str] = None,
            **kwargs) -> VGG:
    """VGG of depth ``num_layers`` (11, 13, 16 or 19); ``batch_norm=True`` adds
    BatchNorm after every convolution."""
    if num_layers not in vgg_spec:
        raise MXCoreError(f"get_vgg: no VGG of depth {num_layers}; choose one of "
                          f"{sorted(vgg_spec)}")
    layers, filters = vgg_spec[num_layers]
    net = VGG(layers, filters, **kwargs)
    if pretrained:
        suffix = "_bn" if kwargs.get("batch_norm") else ""
        load_pretrained(net, f"vgg{num_layers}{suffix}", ctx, root)
    return net


def vgg11(**kwargs) -> VGG:
    return get_vgg(11, **kwargs)


def vgg13(**kwargs) -> VGG:
    return get_vgg(13, **kwargs)


def vgg16(**kwargs) -> VGG:
    return get_vgg(16, **kwargs)


def vgg19(**kwargs) -> VGG:
    return get_vgg(19, **kwargs)


def vgg11_bn(**kwargs) -> VGG:
    return get_vgg(11, **{**kwargs, "batch_norm": True})


def vgg13_bn(**kwargs) -> VGG:
    return get_vgg(13, **{**kwargs, "batch_norm": True})


def vgg16_bn(**kwargs) -> VGG:
    return get_vgg(16, **{**kwargs, "batch_norm": True})


def vgg19_bn(**kwargs) -> VGG:
    return get_vgg(19, **{**kwargs, "batch_norm": True})
