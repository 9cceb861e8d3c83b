"""NDArray: a device buffer with a shape and a dtype (MXNet 1.x names).

The object is deliberately thin: ``_data`` is the device array (numpy on the
CPU), ``_device`` the ``hal.Device`` and ``_ag`` the autograd record (None for
constants, a ``Leaf`` for variables, ``(node, index)`` for recorded results).
Operators go through ``mxcore.dispatch``.
"""
from __future__ import annotations


from typing import Any, Optional, Tuple

import numpy as np

from hal import Device

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
    def T(self) -> "NDArray":
        return _nd.transpose(self)

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
    def _host(self) -> np.ndarray:
        from mxcore.device import device_type
        dt = device_type(self._device)
        if dt.host_memory:
            return self._data
        return dt.to_host(self._device.index, self._data)

    def __deepcopy__(self, memo) -> "NDArray":
        return self.copy()

    def asnumpy(self) -> np.ndarray:
        """A host copy of the data (waits for pending work)."""
        _engine().wait_to_read(self._data)
        host = self._host()
        return np.array(host, copy=True) if host is self._data else host

    def asscalar(self):
        if self.size != 1:
            raise ValueError(f"asscalar() needs an array of size 1, got shape {self.shape}")
        return self.asnumpy().reshape(-1)[0]

    def item(self):
        return self.asscalar().item()

    def tolist(self):
        return self.asnumpy().tolist()

    def __array__(self, dtype=None, copy=None):
        _engine().wait_to_read(self._data)
        a = self._host()
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

    def to_dlpack_for_read(self):
        """A DLPack capsule of this array's memory, once its pending writes are done."""
        return _nd.to_dlpack_for_read(self)

    def to_dlpack_for_write(self):
        """A DLPack capsule of this array's memory for the consumer to write into."""
        return _nd.to_dlpack_for_write(self)

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

    def __setstate__(self, state: dict) -> None:
        """Restore ``__getstate__``'s dict, or MXNet's (``{'handle': raw bytes}``).
        An array pickled on a device this machine lacks comes back on the CPU."""
        from mxcore.ops.creation import array
        from mxcore.serialization import array_from_state
        host, device = array_from_state(state)
        r = array(host, ctx=device, dtype=host.dtype)
        self._data, self._device, self._ag = r._data, r._device, None

    def __reduce__(self):
        return (_unpickled, (), self.__getstate__())

    # autograd -----------------------------------------------------------------------
    def attach_grad(self, grad_req: str = "write", stype=None) -> None:
        """Make this array a variable: gradients land in ``.grad``."""
        if grad_req not in ("write", "add", "null"):
            raise ValueError(f"grad_req must be 'write', 'add' or 'null', got {grad_req!r}")
        self._ag = _Leaf(_nd.zeros_like(self), grad_req)

    def detach(self) -> "NDArray":
        r = NDArray.__new__(NDArray)
        r._data, r._device, r._ag = self._data, self._device, None
        return r

    def backward(self, out_grad: Optional["NDArray"] = None, retain_graph: bool = False,
                 train_mode: bool = True) -> None:
        from mxcore import autograd
        autograd.backward([self], [out_grad] if out_grad is not None else None,
                          retain_graph=retain_graph, train_mode=train_mode)

    # copies and conversions ---------------------------------------------------------
    def copy(self) -> "NDArray":
        return _nd.copy(self)

    def copyto(self, other) -> "NDArray":
        """Copy into ``other`` (an NDArray: returned, or a device: a new array)."""
        if isinstance(other, NDArray):
            if other is self:
                return other
            if other.shape != self.shape:
                raise ValueError(f"copyto: shape {self.shape} does not match the target's "
                                 f"{other.shape}")
            other[:] = self if other._device is self._device else self.copyto(other._device)
            return other
        return _nd.to_device(self, other)

    def as_in_context(self, ctx) -> "NDArray":
        from hal import parse_device
        dev = parse_device(ctx)
        if dev is self._device:
            return self
        return _nd.to_device(self, dev)

    as_in_ctx = as_in_context
    to_device = as_in_context

    def astype(self, dtype, copy: bool = True) -> "NDArray":
        from hal import to_dtype
        dt = to_dtype(dtype)
        if not copy and dt == self.dtype:
            return self
        return _nd.cast(self, dt)

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

    def __getitem__(self, key) -> "NDArray":
        return _nd.getitem(self, key)

    def __setitem__(self, key, value) -> None:
        _nd.setitem(self, key, value)

    # arithmetic ------------------------------------------------------------------------
    def __add__(self, other):
        if type(other) is NDArray:
            return _binary(_E.ADD, self, other)
        return _E.scalar_op(_E.ADD_SCALAR, self, other)

    __radd__ = __add__

    def __sub__(self, other):
        if type(other) is NDArray:
            return _binary(_E.SUBTRACT, self, other)
        return _E.scalar_op(_E.SUB_SCALAR, self, other)

    def __rsub__(self, other):
        return _E.scalar_op(_E.RSUB_SCALAR, self, other)

    def __mul__(self, other):
        if type(other) is NDArray:
            return _binary(_E.MULTIPLY, self, other)
        return _E.scalar_op(_E.MUL_SCALAR, self, other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if type(other) is NDArray:
            return _binary(_E.DIVIDE, self, other)
        return _E.scalar_op(_E.DIV_SCALAR, self, other)

    def __rtruediv__(self, other):
        return _E.scalar_op(_E.RDIV_SCALAR, self, other)

    def __mod__(self, other):
        if type(other) is NDArray:
            return _binary(_E.MOD, self, other)
        return _E.scalar_op(_E.MOD_SCALAR, self, other)

    def __rmod__(self, other):
        return _E.scalar_op(_E.RMOD_SCALAR, self, other)

    def __pow__(self, other):
        if type(other) is NDArray:
            return _binary(_E.POWER, self, other)
        return _E.scalar_op(_E.POW_SCALAR, self, other)

    def __rpow__(self, other):
        return _E.scalar_op(_E.RPOW_SCALAR, self, other)

    def __neg__(self):
        return _unary(_E.NEGATIVE, self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _unary(_E.ABS, self)

    def __matmul__(self, other):
        return _nd.matmul(self, other)

    def __eq__(self, other):
        if type(other) is NDArray:
            return _binary(_E.EQUAL, self, other)
        if other is None:
            return False
        return _E.scalar_op(_E.EQUAL_SCALAR, self, other)

    def __ne__(self, other):
        if type(other) is NDArray:
            return _binary(_E.NOT_EQUAL, self, other)
        if other is None:
            return True
        return _E.scalar_op(_E.NOT_EQUAL_SCALAR, self, other)

    def __gt__(self, other):
        if type(other) is NDArray:
            return _binary(_E.GREATER, self, other)
        return _E.scalar_op(_E.GREATER_SCALAR, self, other)

    def __ge__(self, other):
        if type(other) is NDArray:
            return _binary(_E.GREATER_EQUAL, self, other)
        return _E.scalar_op(_E.GREATER_EQUAL_SCALAR, self, other)

    def __lt__(self, other):
        if type(other) is NDArray:
            return _binary(_E.LESS, self, other)
        return _E.scalar_op(_E.LESS_SCALAR, self, other)

    def __le__(self, other):
        if type(other) is NDArray:
            return _binary(_E.LESS_EQUAL, self, other)
        return _E.scalar_op(_E.LESS_EQUAL_SCALAR, self, other)

    # in-place arithmetic writes into this array's buffer (MXNet semantics)
    def _inplace(self, result: "NDArray") -> "NDArray":
        if type(self._ag) is tuple:
            from mxcore.base import MXCoreError
            raise MXCoreError("in-place update of an array recorded by autograd; "
                              "use out-of-place arithmetic inside autograd.record()")
        if _AG_STATE.recording:
            _check_inplace_write(self, result, whole=False)
        self[...] = result
        return self

    def __iadd__(self, other):
        return self._inplace(self + other)

    def __isub__(self, other):
        return self._inplace(self - other)

    def __imul__(self, other):
        return self._inplace(self * other)

    def __itruediv__(self, other):
        return self._inplace(self / other)

    # method forms of common ops (MXNet's fluent methods) -------------------------------
    def reshape(self, *shape, **kwargs) -> "NDArray":
        if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
            shape = tuple(shape[0])
        if "shape" in kwargs:
            shape = tuple(kwargs.pop("shape"))
        return _nd.reshape(self, shape, **kwargs)

    def reshape_like(self, *args, **kwargs) -> "NDArray":
        """``mx.nd.reshape_like(self, rhs, lhs_begin, lhs_end, rhs_begin, rhs_end)``"""
        return _nd.reshape_like(self, *args, **kwargs)

    def transpose(self, *axes, **kwargs) -> "NDArray":
        if "axes" in kwargs:
            axes = (kwargs.pop("axes"),)
        if kwargs:
            raise TypeError(f"transpose() got unexpected keyword arguments {sorted(kwargs)}")
        if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
            axes = tuple(axes[0])
        return _nd.transpose(self, axes or None)

    def swapaxes(self, dim1: int, dim2: int) -> "NDArray":
        return _nd.swapaxes(self, dim1, dim2)

    # A copy, as MXNet's operators make; inplace=True: a view of this array's buffer.
    def flatten(self, inplace: bool = False) -> "NDArray":
        return _nd.flatten(self, inplace=inplace)

    def expand_dims(self, axis: int, inplace: bool = False) -> "NDArray":
        return _nd.expand_dims(self, axis, inplace=inplace)

    def squeeze(self, axis=None, inplace: bool = False) -> "NDArray":
        return _nd.squeeze(self, axis, inplace=inplace)

    def broadcast_to(self, shape) -> "NDArray":
        return _nd.broadcast_to(self, shape)

    def broadcast_like(self, other: "NDArray", lhs_axes=None, rhs_axes=None) -> "NDArray":
        return _nd.broadcast_like(self, other, lhs_axes, rhs_axes)

    def tile(self, reps) -> "NDArray":
        return _nd.tile(self, reps)

    def repeat(self, repeats: int, axis=None) -> "NDArray":
        return _nd.repeat(self, repeats, axis)

    def pad(self, mode="constant", pad_width=(), constant_value=0.0) -> "NDArray":
        return _nd.pad(self, mode, pad_width, constant_value)

    def split(self, num_outputs: int, axis: int = 1, squeeze_axis: bool = False):
        return _nd.split(self, num_outputs, axis, squeeze_axis)

    def slice(self, begin, end, step=None) -> "NDArray":
        return _nd.slice(self, begin, end, step)

    def slice_axis(self, axis: int, begin: int, end) -> "NDArray":
        return _nd.slice_axis(self, axis, begin, end)

    def slice_like(self, shape_like: "NDArray", axes=()) -> "NDArray":
        return _nd.slice_like(self, shape_like, axes)

    def slice_assign(self, rhs: "NDArray", begin, end, step) -> "NDArray":
        """Write ``rhs`` into the region ``begin:end:step`` of this array; returns it."""
        return _nd._internal._slice_assign(self, rhs, begin, end, step, out=self)

    def slice_assign_scalar(self, value, begin, end, step) -> "NDArray":
        """Set the region ``begin:end:step`` of this array to ``value``; returns it."""
        return _nd._internal._slice_assign_scalar(self, value, begin, end, step, out=self)

    def take(self, indices, axis: int = 0, mode: str = "clip") -> "NDArray":
        return _nd.take(self, indices, axis, mode)

    def pick(self, index, axis: int = -1, keepdims: bool = False, mode: str = "clip"):
        return _nd.pick(self, index, axis, keepdims, mode)

    def one_hot(self, depth: int, on_value=1.0, off_value=0.0, dtype="float32"):
        return _nd.one_hot(self, depth, on_value, off_value, dtype)

    def clip(self, a_min, a_max) -> "NDArray":
        return _nd.clip(self, a_min, a_max)

    def sum(self, axis=None, keepdims=False, exclude=False) -> "NDArray":
        return _nd.sum(self, axis, keepdims, exclude)

    def mean(self, axis=None, keepdims=False, exclude=False) -> "NDArray":
        return _nd.mean(self, axis, keepdims, exclude)

    def prod(self, axis=None, keepdims=False, exclude=False) -> "NDArray":
        return _nd.prod(self, axis, keepdims, exclude)

    def max(self, axis=None, keepdims=False, exclude=False) -> "NDArray":
        return _nd.max(self, axis, keepdims, exclude)

    def min(self, axis=None, keepdims=False, exclude=False) -> "NDArray":
        return _nd.min(self, axis, keepdims, exclude)

    def argmax(self, axis=None, keepdims=False, out=None) -> "NDArray":
        # numpy's np.argmax(x, axis) calls x.argmax(axis=axis, out=None): an NDArray back
        r = _nd.argmax(self, axis, keepdims)
        if out is None:
            return r
        out[:] = r
        return out

    def argmin(self, axis=None, keepdims=False, out=None) -> "NDArray":
        r = _nd.argmin(self, axis, keepdims)
        if out is None:
            return r
        out[:] = r
        return out

    def nansum(self, axis=None, keepdims=False, exclude=False) -> "NDArray":
        return _nd.nansum(self, axis, keepdims, exclude)

    def nanprod(self, axis=None, keepdims=False, exclude=False) -> "NDArray":
        return _nd.nanprod(self, axis, keepdims, exclude)

    def argmax_channel(self) -> "NDArray":
        return _nd.argmax_channel(self)

    def softmin(self, axis=-1, temperature=None, dtype=None, use_length=False) -> "NDArray":
        return _nd.softmin(self, axis, temperature, dtype, use_length)

    def topk(self, axis=-1, k=1, ret_typ="indices", is_ascend=False, dtype="float32"):
        return _nd.topk(self, axis, k, ret_typ, is_ascend, dtype)

    def sort(self, axis=-1, is_ascend=True) -> "NDArray":
        return _nd.sort(self, axis, is_ascend)

    def argsort(self, axis=-1, is_ascend=True, dtype="float32") -> "NDArray":
        return _nd.argsort(self, axis, is_ascend, dtype)

    def flip(self, axis) -> "NDArray":
        return _nd.flip(self, axis)

    def diag(self, k=0, axis1=0, axis2=1) -> "NDArray":
        return _nd.diag(self, k, axis1, axis2)

    def depth_to_space(self, block_size) -> "NDArray":
        return _nd.depth_to_space(self, block_size)

    def space_to_depth(self, block_size) -> "NDArray":
        return _nd.space_to_depth(self, block_size)

    def shape_array(self) -> "NDArray":
        return _nd.shape_array(self)

    def size_array(self) -> "NDArray":
        return _nd.size_array(self)

    def split_v2(self, indices_or_sections, axis=0, squeeze_axis=False):
        return _nd.split_v2(self, indices_or_sections, axis, squeeze_axis)

    def broadcast_axes(self, axis=(), size=()) -> "NDArray":
        return _nd.broadcast_axes(self, axis, size)

    def norm(self, ord=2, axis=None, keepdims=False) -> "NDArray":
        return _nd.norm(self, ord, axis, keepdims)

    def softmax(self, axis=-1, temperature=None) -> "NDArray":
        return _nd.softmax(self, axis, temperature)

    def log_softmax(self, axis=-1, temperature=None) -> "NDArray":
        return _nd.log_softmax(self, axis, temperature)

    def zeros_like(self) -> "NDArray":
        return _nd.zeros_like(self)

    def ones_like(self) -> "NDArray":
        return _nd.ones_like(self)

    def dot(self, other, transpose_a=False, transpose_b=False) -> "NDArray":
        return _nd.dot(self, other, transpose_a, transpose_b)


def _make_unary_method(name):
    def method(self):
        return _unary(getattr(_E, name.upper()), self)
    method.__name__ = name
    method.__doc__ = f"``mx.nd.{name}(self)``"
    return method


for _name in ("exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "square", "reciprocal", "abs",
              "sign", "sin", "cos", "tanh", "sigmoid", "relu", "softrelu", "erf", "floor",
              "ceil", "round", "arcsin", "arccos", "arctan", "sinh", "cosh", "tan", "arcsinh",
              "arccosh", "arctanh", "degrees", "radians", "log2", "log10", "cbrt", "rcbrt",
              "rint", "fix", "trunc"):
    setattr(NDArray, _name, _make_unary_method(_name))


def _engine():
    return _engine_mod.current()


def _unpickled() -> NDArray:
    """An empty NDArray for pickle to fill through ``__setstate__``."""
    return NDArray.__new__(NDArray)


# Late imports: these modules need the NDArray class defined above.
from mxcore import engine as _engine_mod  # noqa: E402
from mxcore import ndarray as _nd  # noqa: E402
from mxcore.autograd import Leaf as _Leaf, STATE as _AG_STATE  # noqa: E402
from mxcore.autograd import check_inplace_write as _check_inplace_write  # noqa: E402
from mxcore.dispatch import invoke_binary as _binary, invoke_unary as _unary  # noqa: E402
from mxcore.ops import elemwise as _E  # noqa: E402

__all__ = ["NDArray"]

