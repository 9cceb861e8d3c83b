"""``gluon.contrib``: layers outside MXNet's core set (MXNet's ``mxnet.gluon.contrib``)."""
from mxcore.gluon.contrib import nn

__all__ = ["nn"]
