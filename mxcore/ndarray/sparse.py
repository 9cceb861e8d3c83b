"""``mx.nd.sparse``: sparse storage (CSR, row-sparse) is not supported by mxcore.

The module exists so that MXNet 1.x code importing it loads; any name looked up in
it raises an error saying so.  mxcore arrays are dense (``stype == 'default'``).
"""
from __future__ import annotations


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    raise NotImplementedError(f"mx.nd.sparse.{name}: sparse storage types (csr, row_sparse) "
                              "are not supported by mxcore; arrays are dense")
