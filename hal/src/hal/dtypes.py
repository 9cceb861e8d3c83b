"""The dtype table shared by mxcore and its plugins.

dtypes are named by strings; each array module maps a name to its own dtype
object.  numpy has no bfloat16 of its own: ``ml_dtypes`` (JAX's numpy dtype
extension, which CuPy 14 also understands) supplies it.  Its numpy kind is
"V", not "f": ask ``is_float`` rather than ``dtype.kind``.
"""
from __future__ import annotations

import numpy as np

try:
    import ml_dtypes
except ImportError:  # pragma: no cover - a dependency of mxcore-hal
    ml_dtypes = None

FLOAT_DTYPES = ("float16", "float32", "float64")
INT_DTYPES = ("int8", "uint8", "int32", "int64")
#: bfloat16, where ml_dtypes is installed
BFLOAT16_DTYPES = ("bfloat16",) if ml_dtypes is not None else ()
ALL_DTYPES = FLOAT_DTYPES + BFLOAT16_DTYPES + INT_DTYPES + ("bool",)

#: name -> numpy dtype, for every dtype numpy can hold.
DTYPES: dict[str, np.dtype] = {name: np.dtype(name) for name in ALL_DTYPES
                               if name not in BFLOAT16_DTYPES}
_BFLOAT16 = None
if BFLOAT16_DTYPES:
    _BFLOAT16 = DTYPES["bfloat16"] = np.dtype(ml_dtypes.bfloat16)


def is_float(dtype) -> bool:
    """Whether ``dtype`` (a numpy dtype) is a floating-point type, bfloat16 included."""
    return dtype.kind == "f" or dtype is _BFLOAT16  # identity: dtype.name costs ~2 us

_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "int": "int32",
            "long": "int64", "bool_": "bool"}


#: MXNet 1.x's numpy stand-in for bfloat16 (what its bfloat16 arrays report as dtype)
_MXNET_BFLOAT16 = np.dtype([("bfloat16", np.uint16)])


def to_dtype(dtype) -> np.dtype:
    """Normalise a dtype given as a name, numpy dtype or numpy scalar type."""
    if isinstance(dtype, np.dtype):
        if dtype.names is not None and dtype == _MXNET_BFLOAT16 and BFLOAT16_DTYPES:
            return DTYPES["bfloat16"]
        return dtype
    if isinstance(dtype, str):
        name = _ALIASES.get(dtype, dtype)
        try:
            return DTYPES[name]
        except KeyError:
            raise TypeError(f"unknown dtype {dtype!r}; mxcore dtypes are "
                            f"{', '.join(ALL_DTYPES)}") from None
    if dtype is bool:
        return DTYPES["bool"]
    if dtype is float:
        return DTYPES["float32"]
    if dtype is int:
        return DTYPES["int32"]
    if isinstance(dtype, type) and dtype.__name__ == "bfloat16" and BFLOAT16_DTYPES:
        return DTYPES["bfloat16"]
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}") from None


def dtype_name(dtype) -> str:
    dt = to_dtype(dtype)
    name = _NAMES.get(dt)  # a dict look-up: numpy's dtype.name costs ~2 us
    if name is None:
        name = _NAMES[dt] = dt.name
    return name


_NAMES: dict = {}
