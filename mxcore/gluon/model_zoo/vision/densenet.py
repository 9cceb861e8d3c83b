"""DenseNet 121/161/169/201 (Huang et al., 2016).

Each dense layer is a ``HybridConcurrent`` of an ``Identity`` and the new
features, so its output is the input with ``growth_rate`` channels appended.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from mxcore.base import MXCoreError
from mxcore.gluon.block import HybridBlock
from mxcore.gluon.model_zoo.model_store import load_pretrained

__all__ = ["DenseNet", "densenet_spec", "get_densenet", "densenet121", "densenet161",
           "densenet169", "densenet201"]


def _nn():
    from mxcore.gluon import nn
    return nn


def _make_dense_layer(growth_rate: int, bn_size: int, dropout: float):
    """BN-ReLU-1x1 conv (``bn_size * growth_rate``)-BN-ReLU-3x3 conv (``growth_rate``),
    concatenated to its input."""
    from mxcore.gluon.contrib.nn import HybridConcurrent, Identity
    nn = _nn()
    new_features = nn.HybridSequential(prefix="")
    new_features.add(nn.BatchNorm(), nn.Activation("relu"),
                     nn.Conv2D(bn_size * growth_rate, kernel_size=1, use_bias=False),
                     nn.BatchNorm(), nn.Activation("relu"),
                     nn.Conv2D(growth_rate, kernel_size=3, padding=1, use_bias=False))
    if dropout:
        new_features.add(nn.Dropout(dropout))
    out = HybridConcurrent(axis=1, prefix="")
    out.add(Identity(), new_features)
    return out


def _make_dense_block(num_layers: int, bn_size: int, growth_rate: int, dropout: float,
                      stage_index: int):
    block = _nn().HybridSequential(prefix=f"stage{stage_index}_")
    with block.name_scope():
        for _ in range(num_layers):
            block.add(_make_dense_layer(growth_rate, bn_size, dropout))
    return block


def _make_transition(channels: int):
    """BN-ReLU-1x1 conv to ``channels``, then 2x2 average pooling."""
    nn = _nn()
    out = nn.HybridSequential(prefix="")
    out.add(nn.BatchNorm(), nn.Activation("relu"),
            nn.Conv2D(channels, kernel_size=1, use_bias=False),
            nn.AvgPool2D(pool_size=2, strides=2))
    return out


class DenseNet(HybridBlock):
    """7x7/2 convolution, BN, ReLU, 3x3/2 max pool; dense blocks of ``block_config``
    layers separated by transitions halving the channels; BN, ReLU, 7x7 average
    pooling (so 224x224 input) and a Dense ``classes`` output."""

    def __init__(self, num_init_features: int, growth_rate: int, block_config: Sequence[int],
                 bn_size: int = 4, dropout: float = 0, classes: int = 1000, **kwargs):
        nn = _nn()
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            self.features.add(nn.Conv2D(num_init_features, kernel_size=7, strides=2,
                                        padding=3, use_bias=False),
                              nn.BatchNorm(), nn.Activation("relu"),
                              nn.MaxPool2D(pool_size=3, strides=2, padding=1))
            channels = num_init_features
            for i, num_layers in enumerate(block_config):
                self.features.add(_make_dense_block(num_layers, bn_size, growth_rate, dropout,
                                                    i + 1))
                channels += num_layers * growth_rate
                if i != len(block_config) - 1:
                    channels //= 2
                    self.features.add(_make_transition(channels))
            self.features.add(nn.BatchNorm(), nn.Activation("relu"),
                              nn.AvgPool2D(pool_size=7), nn.Flatten())
            self.output = nn.Dense(classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


# depth -> (initial features, growth rate, layers per dense block)
densenet_spec: Dict[int, Tuple[int, int, List[int]]] = {
    121: (64, 32, [6, 12, 24, 16]),
    161: (96, 48, [6, 12, 36, 24]),
    169: (64, 32, [6, 12, 32, 32]),
    201: (64, 32, [6, 12, 48, 32]),
}


def get_densenet(num_layers: int, pretrained: bool = False, ctx=None,
                 root: Optional[str] = None, **kwargs) -> DenseNet:
    """DenseNet of depth ``num_layers`` (121, 161, 169 or 201)."""
    if num_layers not in densenet_spec:
        raise MXCoreError(f"get_densenet: no DenseNet of depth {num_layers}; choose one of "
                          f"{sorted(densenet_spec)}")
    init_features, growth, config = densenet_spec[num_layers]
    net = DenseNet(init_features, growth, config, **kwargs)
    return load_pretrained(net, f"densenet{num_layers}", ctx, root) if pretrained else net


def densenet121(**kwargs) -> DenseNet:
    return get_densenet(121, **kwargs)


def densenet161(**kwargs) -> DenseNet:
    return get_densenet(161, **kwargs)


def densenet169(**kwargs) -> DenseNet:
    return get_densenet(169, **kwargs)


def densenet201(**kwargs) -> DenseNet:
    return get_densenet(201, **kwargs)
