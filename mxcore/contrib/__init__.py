"""``mx.contrib``: MXNet's home of contributed operators, under its 1.x module names:
``mx.contrib.ndarray`` is ``mx.nd.contrib`` and ``mx.contrib.symbol`` is
``mx.sym.contrib`` (``mx.contrib.nd`` and ``mx.contrib.sym`` for short)."""
from __future__ import annotations

from mxcore.ndarray import contrib as ndarray
from mxcore.symbol import contrib as symbol

nd = ndarray
sym = symbol

__all__ = ["ndarray", "symbol", "nd", "sym"]
