"""``gluon.data.vision``: MNIST, Fashion-MNIST and image transforms."""
from mxcore.gluon.data.vision import datasets, transforms
from mxcore.gluon.data.vision.datasets import MNIST, FashionMNIST

__all__ = ["MNIST", "FashionMNIST", "datasets", "transforms"]
