"""What export and import share: the onnx requirement, the opset range, dtype maps and
the error type.  Nothing here imports onnx at module level: ``import mxcore`` must stay
fast and work without it."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from mxcore.base import MXCoreError

#: the opsets export writes and import reads
MIN_OPSET, MAX_OPSET = 13, 21


class OnnxError(MXCoreError):
    """A model that cannot be exported to or imported from ONNX."""


def require_onnx():
    """The onnx module, or a clear error saying how to get it."""
    try:
        import onnx
    except ImportError:
        raise OnnxError("mx.onnx needs the onnx package: pip install onnx "
                        "(or pip install 'mxcore[onnx]')") from None
    return onnx


def default_opset() -> int:
    """The highest opset the installed onnx knows, capped at MAX_OPSET."""
    onnx = require_onnx()
    return max(MIN_OPSET, min(MAX_OPSET, onnx.defs.onnx_opset_version()))


def check_opset(opset: Optional[int]) -> int:
    if opset is None:
        return default_opset()
    onnx = require_onnx()
    top = min(MAX_OPSET, onnx.defs.onnx_opset_version())
    if not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= int(opset) <= top:
        raise OnnxError(f"opset_version {opset!r} is not supported: mxcore writes opsets "
                        f"{MIN_OPSET}..{top} (with onnx {onnx.__version__})")
    return int(opset)


def tensor_type(dtype: Any) -> int:
    """The TensorProto element type of a numpy/mxcore dtype."""
    import hal
    from onnx import helper
    name = dtype if isinstance(dtype, str) else hal.dtype_name(dtype)
    if name == "bfloat16":
        from onnx import TensorProto
        return TensorProto.BFLOAT16
    try:
        return helper.np_dtype_to_tensor_dtype(np.dtype(name))
    except (KeyError, TypeError) as exc:
        raise OnnxError(f"dtype {name} has no ONNX tensor type") from exc


def np_dtype(elem_type: int) -> np.dtype:
    """The numpy dtype of a TensorProto element type."""
    from onnx import helper
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
