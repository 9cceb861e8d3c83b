"""LeNet-5 (LeCun et al., 1998) for 28x28 grey images such as MNIST."""
from __future__ import annotations

from typing import Optional

from mxcore.gluon.block import HybridBlock
from mxcore.gluon.model_zoo.model_store import get_model_file

__all__ = ["LeNet", "lenet"]


class LeNet(HybridBlock):
    """Conv(6, 5x5, pad 2) ReLU, max-pool 2, Conv(16, 5x5) ReLU, max-pool 2, then
    Dense 120 ReLU, Dense 84 ReLU and Dense ``classes``, on (N, 1, 28, 28) input.

    The first convolution pads by 2 so that a 28x28 image is seen as the 32x32
    one of the original LeNet-5: border strokes reach the middle of a window,
    and the second stage sees 16x5x5 features, not 16x4x4.
    """

    def __init__(self, classes: int = 10, **kwargs):
        from mxcore.gluon import nn
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            with self.features.name_scope():
                self.features.add(nn.Conv2D(6, kernel_size=5, padding=2, activation="relu"),
                                  nn.MaxPool2D(pool_size=2, strides=2),
                                  nn.Conv2D(16, kernel_size=5, activation="relu"),
                                  nn.MaxPool2D(pool_size=2, strides=2),
                                  nn.Flatten(),
                                  nn.Dense(120, activation="relu"),
                                  nn.Dense(84, activation="relu"))
            self.output = nn.Dense(classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def lenet(pretrained: bool = False, ctx=None, root: Optional[str] = None,
          classes: int = 10, **kwargs) -> LeNet:
    """LeNet-5 for 28x28 grey images.  ``pretrained=True`` loads parameters from
    ``root`` (a file written by ``save_parameters``, or a folder holding
    ``lenet.safetensors``) onto ``ctx``; nothing is downloaded."""
    net = LeNet(classes=classes, **kwargs)
    if pretrained:
        net.load_parameters(get_model_file("lenet", root=root), ctx=ctx)
    return net
