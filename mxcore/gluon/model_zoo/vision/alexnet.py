"""AlexNet (Krizhevsky et al., 2012), the single-tower variant of MXNet's model zoo."""
from __future__ import annotations

from typing import Optional

from mxcore.gluon.block import HybridBlock
from mxcore.gluon.model_zoo.model_store import load_pretrained

__all__ = ["AlexNet", "alexnet"]

# (channels, kernel, stride, padding, max-pool after it)
_CONVS = [(64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False),
          (256, 3, 1, 1, False), (256, 3, 1, 1, True)]


class AlexNet(HybridBlock):
    """Five ReLU convolutions with 3x3/2 max pooling after the 1st, 2nd and 5th, then
    two Dense 4096 ReLU layers with dropout 0.5 and a Dense ``classes`` output, on
    (N, 3, 224, 224) input (smaller inputs work but change the first Dense's shape)."""

    def __init__(self, classes: int = 1000, **kwargs):
        from mxcore.gluon import nn
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            with self.features.name_scope():
                for channels, kernel, stride, pad, pool in _CONVS:
                    self.features.add(nn.Conv2D(channels, kernel_size=kernel, strides=stride,
                                                padding=pad, activation="relu"))
                    if pool:
                        self.features.add(nn.MaxPool2D(pool_size=3, strides=2))
                self.features.add(nn.Flatten())
                for _ in range(2):
                    self.features.add(nn.Dense(4096, activation="relu"), nn.Dropout(0.5))
            self.output = nn.Dense(classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def alexnet(pretrained: bool = False, ctx=None, root: Optional[str] = None,
            **kwargs) -> AlexNet:
    """AlexNet; ``pretrained=True`` loads ``root`` (see ``model_store``)."""
    net = AlexNet(**kwargs)
    return load_pretrained(net, "alexnet", ctx, root) if pretrained else net
