"""``mx.np``: MXNet 2's NumPy-compatible array interface is not part of mxcore.

The module exists so that ``import mxnet.numpy`` in MXNet 1.x code succeeds; any name
looked up in it raises an error saying so.  mxcore's arrays are ``mx.nd.NDArray``,
which already follow NumPy's shapes and dtypes and convert with ``asnumpy()`` and
DLPack.
"""
from __future__ import annotations


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    raise NotImplementedError(f"mx.np.{name}: MXNet's NumPy array interface (mx.np, mx.npx) "
                              "is not provided by mxcore; use mx.nd and NDArray.asnumpy()")
