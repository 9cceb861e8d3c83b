"""``mx.contrib``: MXNet's home of contributed operators, under its 1.x module names:
``mx.contrib.ndarray`` is ``mx.nd.contrib`` and ``mx.contrib.symbol`` is
``mx.sym.contrib`` (``mx.contrib.nd`` and ``mx.contrib.sym`` for short);
``mx.contrib.quantization`` is int8 post-training quantization; ``mx.contrib.amp`` is
``mx.amp`` (automatic mixed precision)."""
from __future__ import annotations

from mxcore import amp
from mxcore.ndarray import contrib as ndarray
from mxcore.symbol import contrib as symbol
from mxcore.contrib import quantization

nd = ndarray
sym = symbol
quant = quantization  # MXNet 1.x's short name (mx.contrib.quant.quantize_model)

__all__ = ["ndarray", "symbol", "nd", "sym", "quantization", "quant", "amp"]
