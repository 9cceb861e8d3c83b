"""Inception V3 (Szegedy et al., 2015) for 299x299 input.

Every convolution is a "basic conv": convolution without bias, BatchNorm
(epsilon 0.001) and ReLU.  The mixed blocks are ``HybridConcurrent``s of
branches named ``A1_``...``E2_`` as in MXNet, so that the parameter names
(``A1_conv1_weight``, ``features.7.1.0.0.weight``) match its files.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

from mxcore.gluon.block import HybridBlock
from mxcore.gluon.model_zoo.model_store import load_pretrained

__all__ = ["Inception3", "inception_v3"]

# a convolution setting: (channels, kernel, stride or None, padding or None)
Conv = Tuple[int, object, Optional[int], object]


def _nn():
    from mxcore.gluon import nn
    return nn


def _basic_conv(channels: int, kernel_size, strides=None, padding=None):
    nn = _nn()
    kwargs = {"strides": strides, "padding": padding}
    out = nn.HybridSequential(prefix="")
    out.add(nn.Conv2D(channels, kernel_size, use_bias=False,
                      **{k: v for k, v in kwargs.items() if v is not None}),
            nn.BatchNorm(epsilon=0.001), nn.Activation("relu"))
    return out


def _branch(pool: Optional[str], *convs: Conv):
    """An optional pooling (``avg``: 3x3/1 padded; ``max``: 3x3/2) then basic convs."""
    nn = _nn()
    out = nn.HybridSequential(prefix="")
    if pool == "avg":
        out.add(nn.AvgPool2D(pool_size=3, strides=1, padding=1))
    elif pool == "max":
        out.add(nn.MaxPool2D(pool_size=3, strides=2))
    for setting in convs:
        out.add(_basic_conv(*setting))
    return out


def _concurrent(prefix: str, make_branches) -> HybridBlock:
    """A channel concatenation named ``prefix`` whose branches are built in its scope."""
    from mxcore.gluon.contrib.nn import HybridConcurrent
    out = HybridConcurrent(axis=1, prefix=prefix)
    with out.name_scope():
        out.add(*make_branches())
    return out


def _block_a(pool_features: int, prefix: str):
    return _concurrent(prefix, lambda: [
        _branch(None, (64, 1, None, None)),
        _branch(None, (48, 1, None, None), (64, 5, None, 2)),
        _branch(None, (64, 1, None, None), (96, 3, None, 1), (96, 3, None, 1)),
        _branch("avg", (pool_features, 1, None, None))])


def _block_b(prefix: str):
    return _concurrent(prefix, lambda: [
        _branch(None, (384, 3, 2, None)),
        _branch(None, (64, 1, None, None), (96, 3, None, 1), (96, 3, 2, None)),
        _branch("max")])


def _block_c(channels_7x7: int, prefix: str):
    c7 = channels_7x7
    row, col = ((1, 7), None, (0, 3)), ((7, 1), None, (3, 0))
    return _concurrent(prefix, lambda: [
        _branch(None, (192, 1, None, None)),
        _branch(None, (c7, 1, None, None), (c7, *row), (192, *col)),
        _branch(None, (c7, 1, None, None), (c7, *col), (c7, *row), (c7, *col), (192, *row)),
        _branch("avg", (192, 1, None, None))])


def _block_d(prefix: str):
    return _concurrent(prefix, lambda: [
        _branch(None, (192, 1, None, None), (320, 3, 2, None)),
        _branch(None, (192, 1, None, None), (192, (1, 7), None, (0, 3)),
                (192, (7, 1), None, (3, 0)), (192, 3, 2, None)),
        _branch("max")])


def _split_3x3(first: Sequence[Conv]):
    """``first`` convolutions, then 1x3 and 3x1 convolutions side by side."""
    from mxcore.gluon.contrib.nn import HybridConcurrent
    out = _nn().HybridSequential(prefix="")
    out.add(_branch(None, *first))
    split = HybridConcurrent(axis=1, prefix="")
    split.add(_branch(None, (384, (1, 3), None, (0, 1))),
              _branch(None, (384, (3, 1), None, (1, 0))))
    out.add(split)
    return out


def _block_e(prefix: str):
    return _concurrent(prefix, lambda: [
        _branch(None, (320, 1, None, None)),
        _split_3x3([(384, 1, None, None)]),
        _split_3x3([(448, 1, None, None), (384, 3, None, 1)]),
        _branch("avg", (192, 1, None, None))])


class Inception3(HybridBlock):
    """The stem (five basic convs, two max pools), mixed blocks A1-A3, B, C1-C4, D,
    E1-E2, 8x8 average pooling, dropout 0.5 and a Dense ``classes`` output."""

    def __init__(self, classes: int = 1000, **kwargs):
        nn = _nn()
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            self.features.add(_basic_conv(32, 3, 2), _basic_conv(32, 3),
                              _basic_conv(64, 3, None, 1), nn.MaxPool2D(pool_size=3, strides=2),
                              _basic_conv(80, 1), _basic_conv(192, 3),
                              nn.MaxPool2D(pool_size=3, strides=2),
                              _block_a(32, "A1_"), _block_a(64, "A2_"), _block_a(64, "A3_"),
                              _block_b("B_"),
                              _block_c(128, "C1_"), _block_c(160, "C2_"),
                              _block_c(160, "C3_"), _block_c(192, "C4_"),
                              _block_d("D_"), _block_e("E1_"), _block_e("E2_"),
                              nn.AvgPool2D(pool_size=8), nn.Dropout(0.5))
            self.output = nn.Dense(classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def inception_v3(pretrained: bool = False, ctx=None, root: Optional[str] = None,
                 **kwargs) -> Inception3:
    """Inception V3 (``get_model("inceptionv3")``), for 299x299 input."""
    net = Inception3(**kwargs)
    return load_pretrained(net, "inceptionv3", ctx, root) if pretrained else net
