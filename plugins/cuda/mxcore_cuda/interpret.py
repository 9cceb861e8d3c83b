"""Host arrays as Triton interpreter arguments.

Triton's interpreter (``TRITON_INTERPRET=1``) treats any argument with a
``data_ptr()`` method as a pointer.  Before running a kernel it makes a host
copy of each such argument through a few torch-tensor methods, and copies the
host copy back afterwards (triton/runtime/interpreter.py,
``GridExecutor._init_args_hst`` / ``_restore_args_dev``)::

    storage = arg.untyped_storage(); host = storage.cpu()
    cpu_arg = arg.new_empty(0, device="cpu")
    cpu_arg.set_(host, arg.storage_offset(), arg.size(), arg.stride())
    ...
    arg.untyped_storage().copy_(cpu_arg.untyped_storage())

Our arrays already live in host memory, so ``HostTensor`` answers those calls
without copying: the "host copy" is the array's own memory, the kernel writes
into it directly and ``copy_`` is a no-op.  No torch needed.

``dtype`` must be something whose ``str()`` ends in a name Triton knows
(``triton._utils.type_canonicalisation_dict``): numpy's dtype names
(``float32``, ``int64``, ``bool``...) are such names.
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

#: numpy dtype name -> Triton type name (for messages and checks; Triton reads ``str(dtype)``).
TRITON_DTYPES = {"float16": "fp16", "float32": "fp32", "float64": "fp64", "int8": "i8",
                 "uint8": "u8", "int16": "i16", "uint16": "u16", "int32": "i32",
                 "uint32": "u32", "int64": "i64", "uint64": "u64", "bool": "u1",
                 "bfloat16": "bf16"}


def triton_dtype(dtype) -> str:
    """The Triton type name of a numpy dtype (``float32`` -> ``fp32``)."""
    name = np.dtype(dtype).name
    try:
        return TRITON_DTYPES[name]
    except KeyError:
        raise TypeError(f"Triton has no type for numpy dtype {name}") from None


class _HostStorage:
    """The storage of a HostTensor: its owner's memory."""

    __slots__ = ("ptr", "owner")

    def __init__(self, ptr: int, owner: Any):
        self.ptr, self.owner = ptr, owner

    def data_ptr(self) -> int:
        return self.ptr

    def cpu(self) -> "_HostStorage":
        return self  # already host memory: no copy

    def copy_(self, other: "_HostStorage") -> None:
        if other.ptr != self.ptr:  # never happens for our own storages
            raise RuntimeError("HostTensor storages are shared, not copied")


class HostTensor:
    """A numpy array as a Triton (interpreter) pointer argument."""

    __slots__ = ("array", "dtype", "_ptr", "_offset", "_size", "_stride")

    def __init__(self, array: np.ndarray | None, dtype=None):
        self.array = array
        if array is not None:
            self.dtype = array.dtype
            self._ptr = array.__array_interface__["data"][0]
            self._size = array.shape
            self._stride = tuple(s // array.itemsize for s in array.strides)
        else:
            self.dtype = np.dtype(dtype)
            self._ptr, self._size, self._stride = 0, (0,), (1,)
        self._offset = 0

    # what Triton reads ---------------------------------------------------------------
    def data_ptr(self) -> int:
        return self._ptr + self._offset * self.dtype.itemsize

    def untyped_storage(self) -> _HostStorage:
        return _HostStorage(self._ptr, self.array)

    def storage_offset(self) -> int:
        return self._offset

    def size(self) -> Tuple[int, ...]:
        return self._size

    def stride(self) -> Tuple[int, ...]:
        return self._stride

    def element_size(self) -> int:
        return self.dtype.itemsize

    def new_empty(self, *sizes, device: str = "cpu") -> "HostTensor":
        return HostTensor(None, self.dtype)

    def set_(self, storage: _HostStorage, offset: int, size, stride) -> "HostTensor":
        self.array = storage.owner
        self._ptr, self._offset = storage.ptr, int(offset)
        self._size, self._stride = tuple(size), tuple(stride)
        return self

    def copy_(self, other: "HostTensor") -> "HostTensor":
        return self

    def __repr__(self) -> str:
        return f"HostTensor({self.dtype.name}, shape={self._size})"


class DeviceTensor:
    """A CuPy array as a Triton pointer argument (real GPUs): Triton needs
    ``data_ptr()`` and ``dtype``; CuPy arrays have ``.data.ptr`` instead."""

    __slots__ = ("array", "dtype")

    def __init__(self, array):
        self.array, self.dtype = array, array.dtype

    def data_ptr(self) -> int:
        return self.array.data.ptr

    def __repr__(self) -> str:
        return f"DeviceTensor({self.dtype.name}, shape={self.array.shape})"
