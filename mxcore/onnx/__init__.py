"""``mx.onnx``: ONNX export and import (MXNet 1.9's ``mx.onnx.export_model``, and
``import_model`` / ``import_to_gluon`` / ``get_model_metadata`` of its
``mx.contrib.onnx``).

The onnx package is imported only when one of these functions runs, so ``import
mxcore`` neither needs nor loads it; without it the functions raise a clear error.
Export writes opsets 13..21 (default: the highest the installed onnx knows, at most
21); import reads models of opsets 13..21 (older ones are tried as they are).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from mxcore.onnx._common import MAX_OPSET, MIN_OPSET, OnnxError

__all__ = ["export_model", "import_model", "import_to_gluon", "get_model_metadata",
           "get_operator_support", "OnnxError", "MIN_OPSET", "MAX_OPSET"]


def export_model(sym, params, in_shapes=None, in_types=np.float32,
                 onnx_file_path: str = "model.onnx", verbose: bool = False,
                 dynamic: bool = False, dynamic_input_shapes=None,
                 run_shape_inference: bool = False, input_type=None, input_shape=None,
                 opset_version: Optional[int] = None) -> str:
    """Write ``sym`` (a Symbol or ``-symbol.json`` path) with ``params`` (a dict of
    NDArrays, an ``[arg_params, aux_params]`` pair or a ``.params`` path) as an ONNX
    model at ``onnx_file_path``; returns that path.  ``in_shapes``/``in_types`` give
    the graph inputs (the variables without a parameter), in graph order."""
    from mxcore.onnx import export
    return export.export_model(sym, params, in_shapes, in_types, onnx_file_path, verbose,
                               dynamic, dynamic_input_shapes, run_shape_inference,
                               input_type, input_shape, opset_version)


def get_operator_support(opset_version: Optional[int] = None) -> List[str]:
    """The MXNet operators export translates (the same at every supported opset)."""
    from mxcore.onnx._common import check_opset
    from mxcore.onnx.export_ops import supported_ops
    check_opset(opset_version)
    return supported_ops()


def import_model(model_file: str) -> Tuple[Any, Dict[str, Any], Dict[str, Any]]:
    """``(sym, arg_params, aux_params)`` of an ONNX file: a Symbol whose free
    variables are the graph's inputs, and its initializers as NDArrays."""
    from mxcore.onnx import importer
    return importer.import_model(model_file)


def import_to_gluon(model_file: str, ctx=None):
    """A ``gluon.SymbolBlock`` running the ONNX model, its parameters loaded on ``ctx``."""
    from mxcore.onnx import importer
    return importer.import_to_gluon(model_file, ctx)


def get_model_metadata(model_file: str) -> Dict[str, List[Tuple[str, Tuple]]]:
    """``{'input_tensor_data': [(name, shape)], 'output_tensor_data': [...]}`` of the
    graph's inputs (initializers excluded) and outputs."""
    from mxcore.onnx import importer
    return importer.get_model_metadata(model_file)
