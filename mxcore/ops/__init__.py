"""The core operator set, registered through the plugin hook like any other
operator plugin (entry point ``core`` in group ``mxcore.plugins``)."""
from __future__ import annotations

from hal import PLUGIN_API_VERSION, hookimpl
from mxcore.ops import (conv, creation, elemwise, embedding, indexing, linalg, nn, norm,
                        optimizer, ordering, random, reduce, rnn, shape)
from mxcore.ops import loss_output
from mxcore.ops import ctc
from mxcore.ops import fused
from mxcore.ops import roi
from mxcore.ops import correlation, im2col, sampling
from mxcore.ops import quantization

MXCORE_PLUGIN_API = PLUGIN_API_VERSION

MODULES = (elemwise, reduce, linalg, shape, indexing, ordering, nn, conv, norm, embedding,
           rnn, creation, random, optimizer, loss_output, ctc, fused, roi,
           sampling, correlation, im2col, quantization)
ALL_OPS = [op for module in MODULES for op in module.OPS]


@hookimpl
def register_ops(register):
    for op in ALL_OPS:
        register(op)
