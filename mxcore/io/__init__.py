"""``mx.io``: MXNet 1.x's data iterators for the symbolic training API."""
from mxcore.io.io import DataBatch, DataDesc, DataIter, NDArrayIter, ResizeIter  # noqa: F401
