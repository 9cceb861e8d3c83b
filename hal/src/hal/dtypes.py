"""The dtype table shared by mxcore and its plugins.

dtypes are named by strings; each array module maps a name to its own dtype
object.  bfloat16 exists only where the array module has it: numpy has no
bfloat16, so the CPU device does not offer it (see docs/architecture.md).
"""
from __future__ import annotations

import numpy as np

FLOAT_DTYPES = ("float16", "float32", "float64")
INT_DTYPES = ("int8", "uint8", "int32", "int64")
ALL_DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)

#: name -> numpy dtype, for every dtype numpy can hold.
DTYPES: dict[str, np.dtype] = {name: np.dtype(name) for name in ALL_DTYPES}

_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "int": "int32",
            "long": "int64", "bool_": "bool"}


def to_dtype(dtype) -> np.dtype:
    """Normalise a dtype given as a name, numpy dtype or numpy scalar type."""
    if isinstance(dtype, np.dtype):
        return dtype
    if isinstance(dtype, str):
        name = _ALIASES.get(dtype, dtype)
        try:
            return DTYPES[name]
        except KeyError:
            raise TypeError(f"unknown dtype {dtype!r}; mxcore dtypes are {', '.join(ALL_DTYPES)}"
                            " (bfloat16 where the device's array module has it)") from None
    if dtype is bool:
        return DTYPES["bool"]
    if dtype is float:
        return DTYPES["float32"]
    if dtype is int:
        return DTYPES["int32"]
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}") from None


def dtype_name(dtype) -> str:
    return to_dtype(dtype).name
