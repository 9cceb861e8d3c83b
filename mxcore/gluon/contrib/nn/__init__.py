"""``gluon.contrib.nn``: container and reshaping layers (MXNet's ``gluon.contrib.nn``)."""
from mxcore.gluon.contrib.nn.basic_layers import (Concurrent, HybridConcurrent, Identity,
                                                  PixelShuffle1D, PixelShuffle2D,
                                                  PixelShuffle3D)
from mxcore.gluon.nn.basic_layers import SyncBatchNorm

__all__ = ["Concurrent", "HybridConcurrent", "Identity", "PixelShuffle1D", "PixelShuffle2D",
           "PixelShuffle3D", "SyncBatchNorm"]
