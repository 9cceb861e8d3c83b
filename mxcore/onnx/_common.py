"""What export and import share: the onnx requirement, the opset range, dtype maps and
the error type.  Nothing here imports onnx at module level: ``import mxcore`` must stay
fast and work without it."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

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


def registrar(table: Dict[str, Callable]) -> Callable:
    """``@rule("Op", "alias")``: a decorator that enters a translation rule in
    ``table`` under each name (the exporters' rule tables)."""
    def rule(*names: str):
        def register(fn):
            for name in names:
                table[name] = fn
            return fn
        return register
    return rule


def attr_bool(v, default: bool = False) -> bool:
    """A boolean attribute as MXNet writes it (a bool, or 'True'/'1' as a string)."""
    if v is None:
        return default
    if isinstance(v, str):
        return v.lower() in ("true", "1")
    return bool(v)


def unsupported(em, what: str) -> OnnxError:
    """The error for a node part the exporter cannot translate."""
    return OnnxError(f"export_model: node {em.node.name!r} ({em.node.op}): {what} has no "
                     f"ONNX translation (opset {em.opset})")
