"""``mx.contrib.quantization``: int8 post-training quantization (MXNet 1.x's module).

``quantize_net(network, ...)`` turns a Gluon HybridBlock into a ``gluon.SymbolBlock``
that runs its quantized graph; ``quantize_model(sym, arg_params, aux_params, ...)`` does
the same at symbol level and returns ``(qsym, qarg_params, aux_params)``, which
``mx.onnx.export_model`` writes as an ONNX model.  See docs/quantization.md.
"""
from __future__ import annotations

from mxcore.contrib.quantization.api import (calib_graph, quantize_graph, quantize_model,
                                             quantize_net)
from mxcore.contrib.quantization.calibration import (combine_histogram, optimal_threshold,
                                                     optimal_thresholds)
from mxcore.contrib.quantization.mxnet_helpers import (_calibrate_quantized_sym,
                                                       _quantize_params, _quantize_symbol,
                                                       _smooth_distribution)
from mxcore.contrib.quantization.rewrite import QUANTIZABLE

# MXNet's names for the calibration helpers
_get_optimal_threshold = optimal_threshold
_get_optimal_thresholds = optimal_thresholds
quantize_net_v2 = quantize_net

__all__ = ["quantize_net", "quantize_net_v2", "quantize_model", "quantize_graph",
           "calib_graph", "combine_histogram", "optimal_threshold", "optimal_thresholds",
           "QUANTIZABLE"]
