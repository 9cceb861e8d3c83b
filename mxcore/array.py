"""NDArray, the array type: a device buffer with a shape and a dtype (MXNet 1.x names).

The object is deliberately thin: ``_data`` is the device array (numpy on the
CPU), ``_device`` the ``hal.Device`` and ``_ag`` the autograd record (None for
constants, a ``Leaf`` for variables, ``(node, index)`` for recorded results).

This module sits below dispatch: it holds what the core needs of an array
(storage, properties, host access, synchronisation, pickling, the autograd
record).  Operator methods (arithmetic, indexing, ``reshape`` and MXNet's other
fluent methods) call operators, so they belong to the ``mx.nd`` front end:
``mxcore/ndarray/ndarray.py`` defines them and installs them on this class.
"""
from __future__ import annotations


from typing import Any, Optional, Tuple

import numpy as np

from hal import Device
from mxcore import engine as _engine_mod
from mxcore import autograd as _autograd
from mxcore.autograd import Leaf as _Leaf

#: MXNet's storage-type ids; mxcore arrays are always 'default' (dense)
_STORAGE_TYPE_STR_TO_ID = {"undefined": -1, "default": 0, "row_sparse": 1, "csr": 2}
_STORAGE_TYPE_ID_TO_STR = {v: k for k, v in _STORAGE_TYPE_STR_TO_ID.items()}
py_slice = slice  # MXNet's name for the builtin, shadowed by the slice operator


class NDArray:
    __slots__ = ("_data", "_device", "_ag")
    # numpy must hand mixed expressions (np_array + nd) back to NDArray.
    __array_ufunc__ = None
    __array_priority__ = 1000.0
    __hash__ = object.__hash__

    def __init__(self, data: Any, device: Optional[Device] = None):
        from mxcore.device import default_device
        self._data = data
        self._device = device if device is not None else default_device()
        self._ag = None

    # properties -------------------------------------------------------------------
    @property
    def shape(self) -> Tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def context(self) -> Device:
        return self._device

    ctx = context
    device = context

    @property
    def stype(self) -> str:
        return "default"

    @property
    def writable(self) -> bool:
        """Whether the array's memory may be written (numpy arrays locked read-only
        before they were wrapped may not)."""
        return bool(getattr(getattr(self._data, "flags", None), "writeable", True))

    def as_nd_ndarray(self) -> "NDArray":
        """This array (MXNet converts its NumPy-interface arrays here)."""
        return self

    @property
    def grad(self) -> Optional["NDArray"]:
        ag = self._ag
        return ag.grad if type(ag) is _Leaf else None

    @property
    def grad_req(self) -> str:
        ag = self._ag
        return ag.req if type(ag) is _Leaf else "null"

    @property
    def _fresh_grad(self) -> bool:
        """Whether backward wrote this variable's gradient since the flag was last
        cleared (the Trainer's stale-gradient check)."""
        ag = self._ag
        return type(ag) is _Leaf and ag.fresh

    @_fresh_grad.setter
    def _fresh_grad(self, state: bool) -> None:
        ag = self._ag
        if type(ag) is not _Leaf:
            from mxcore.base import MXCoreError
            raise MXCoreError("_fresh_grad: this NDArray is not a variable (attach_grad) "
                              "and has no gradient state")
        ag.fresh = bool(state)

    # host access -------------------------------------------------------------------
    def _host(self, data: Any = None) -> np.ndarray:
        """The values on the host: ``data`` (the resolved device array) itself on a
        host-memory device, else a copy."""
        from mxcore.device import device_type
        if data is None:
            data = _engine().resolve(self._data)
        dt = device_type(self._device)
        if dt.host_memory:
            return data
        return dt.to_host(self._device.index, data)

    def __deepcopy__(self, memo) -> "NDArray":
        return self.copy()

    def asnumpy(self) -> np.ndarray:
        """A host copy of the data (waits for pending work)."""
        eng = _engine()
        eng.wait_to_read(self._data)
        data = eng.resolve(self._data)
        host = self._host(data)
        return np.array(host, copy=True) if host is data else host

    def asscalar(self):
        if self.size != 1:
            raise ValueError(f"asscalar() needs an array of size 1, got shape {self.shape}")
        return self.asnumpy().reshape(-1)[0]

    def item(self):
        return self.asscalar().item()

    def tolist(self):
        return self.asnumpy().tolist()

    def __array__(self, dtype=None, copy=None):
        eng = _engine()
        eng.wait_to_read(self._data)
        a = self._host(eng.resolve(self._data))
        if dtype is not None:
            a = a.astype(dtype, copy=False)
        return np.array(a, copy=True) if copy else a

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        _engine().wait_to_read(self._data)
        kw = {}
        if max_version is not None:
            kw["max_version"] = max_version
        if copy is not None:
            kw["copy"] = copy
        if stream is not None:
            kw["stream"] = stream
        return self._data.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def wait_to_read(self) -> None:
        """Block until this array's value is computed (on an asynchronous device, until
        the kernels queued before it have run)."""
        _engine().wait_to_read(self._data)
        from mxcore.device import synchronize
        synchronize(self._device)

    wait_to_write = wait_to_read

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.shape) or "scalar"
        return f"\n{self.asnumpy()!s}\n<NDArray {shape} @{self._device!r}>"

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d NDArray")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # numpy's np.all/np.any call these: the answer on the host copy
    def all(self, axis=None, out=None, keepdims: bool = False, **kwargs):
        if out is not None:
            raise TypeError("NDArray.all: out= is not supported")
        return np.all(self.asnumpy(), axis=axis, keepdims=keepdims, **kwargs)

    def any(self, axis=None, out=None, keepdims: bool = False, **kwargs):
        if out is not None:
            raise TypeError("NDArray.any: out= is not supported")
        return np.any(self.asnumpy(), axis=axis, keepdims=keepdims, **kwargs)

    def __bool__(self) -> bool:
        size = self.size
        if size == 1:
            return bool(self.asscalar())
        if size == 0:  # MXNet: an empty array is false
            return False
        raise ValueError(f"the truth value of an NDArray with {size} elements is ambiguous")

    def __float__(self) -> float:
        return float(self.asscalar())

    def __int__(self) -> int:
        return int(self.asscalar())

    def __index__(self) -> int:
        if not np.issubdtype(self.dtype, np.integer):
            raise TypeError("only integer NDArrays can be used as an index")
        return int(self.asscalar())

    # pickling (multiprocessing DataLoader workers, copy.deepcopy) ---------------------
    def __getstate__(self) -> dict:
        """The values (C-order bytes), shape, dtype name and device; autograd state
        is not kept (as in MXNet)."""
        host = np.asarray(self.asnumpy(), order="C")  # (ascontiguousarray: 0-d -> 1-d)
        return {"data": host.tobytes(), "shape": tuple(host.shape),
                "dtype": host.dtype.name, "device": str(self._device)}

    def __reduce__(self):
        return (_unpickled, (), self.__getstate__())

    # autograd -----------------------------------------------------------------------
    def detach(self) -> "NDArray":
        r = NDArray.__new__(NDArray)
        r._data, r._device, r._ag = self._data, self._device, None
        return r

    def backward(self, out_grad: Optional["NDArray"] = None, retain_graph: bool = False,
                 train_mode: bool = True) -> None:
        _autograd.backward([self], [out_grad] if out_grad is not None else None,
                           retain_graph=retain_graph, train_mode=train_mode)

    # indexing -------------------------------------------------------------------------
    @staticmethod
    def _basic_indexing_slice_is_contiguous(slc_key, shape) -> bool:
        """Whether ``x[slc_key]`` (ints and slices) of a C-contiguous array of
        ``shape`` is C-contiguous by numpy's rule: empty, or every axis longer than 1
        steps by the product of the lengths after it."""
        key = slc_key if isinstance(slc_key, tuple) else (slc_key,)
        lengths, strides, stride = [], [], 1
        for axis in range(len(shape) - 1, -1, -1):
            k = key[axis] if axis < len(key) else py_slice(None)
            if isinstance(k, py_slice):
                start, stop, step = k.indices(shape[axis])
                lengths.append(len(range(start, stop, step)))
                strides.append(stride * step)
            else:  # an integer drops the axis
                lengths.append(1)
                strides.append(stride)
            stride *= shape[axis]
        if 0 in lengths:
            return True
        expected = 1
        for n, st in zip(lengths, strides):  # last axis first
            if n == 1:
                continue
            if st != expected:
                return False
            expected *= n
        return True


def _engine():
    return _engine_mod.current()


def _unpickled() -> NDArray:
    """An empty NDArray for pickle to fill through ``__setstate__``."""
    return NDArray.__new__(NDArray)


__all__ = ["NDArray"]
