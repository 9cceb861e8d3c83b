"""The ``mx.nd`` front end's NDArray methods: arithmetic and comparison operators,
indexing, conversions and MXNet's fluent methods (``x.reshape``, ``x.sum``, ...).

They call operators, so they live above dispatch and the op modules; the array type
itself (``mxcore.array.NDArray``, re-exported here under MXNet's module path) sits
below them.  ``_Methods`` is written as a class body for readability; its members
are installed on NDArray once, when this module is imported (``import mxcore``
does), by the table at the end.
"""
from __future__ import annotations

from typing import Optional

from mxcore.array import NDArray, _unpickled, py_slice  # noqa: F401  (MXNet's module path)
from mxcore.array import _STORAGE_TYPE_ID_TO_STR, _STORAGE_TYPE_STR_TO_ID  # noqa: F401
from mxcore.autograd import Leaf as _Leaf, STATE as _AG_STATE
from mxcore.autograd import check_inplace_write as _check_inplace_write
from mxcore.dispatch import invoke_binary as _binary, invoke_unary as _unary
from mxcore.ops import creation as _creation, elemwise as _E, indexing as _indexing
from mxcore.ops import linalg as _linalg, nn as _nn, ordering as _ordering, reduce as _reduce
from mxcore.ops import shape as _shape


class _Methods:
    """NDArray's operator methods (installed on NDArray below)."""

    @property
    def T(self) -> "NDArray":
        return _shape.transpose(self)


    def to_dlpack_for_read(self):
        """A DLPack capsule of this array's memory, once its pending writes are done."""
        return _creation.to_dlpack_for_read(self)

    def to_dlpack_for_write(self):
        """A DLPack capsule of this array's memory for the consumer to write into."""
        return _creation.to_dlpack_for_write(self)

    def __setstate__(self, state: dict) -> None:
        """Restore ``__getstate__``'s dict, or MXNet's (``{'handle': raw bytes}``).
        An array pickled on a device this machine lacks comes back on the CPU."""
        from mxcore.ops.creation import array
        from mxcore.serialization import array_from_state
        host, device = array_from_state(state)
        r = array(host, ctx=device, dtype=host.dtype)
        self._data, self._device, self._ag = r._data, r._device, None

    # autograd -----------------------------------------------------------------------
    def attach_grad(self, grad_req: str = "write", stype=None) -> None:
        """Make this array a variable: gradients land in ``.grad``."""
        if grad_req not in ("write", "add", "null"):
            raise ValueError(f"grad_req must be 'write', 'add' or 'null', got {grad_req!r}")
        self._ag = _Leaf(_creation.zeros_like(self), grad_req)

    # copies and conversions ---------------------------------------------------------
    def copy(self) -> "NDArray":
        return _creation.copy(self)

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
        return _creation.to_device(self, other)

    def as_in_context(self, ctx) -> "NDArray":
        from hal import parse_device
        dev = parse_device(ctx)
        if dev is self._device:
            return self
        return _creation.to_device(self, dev)

    as_in_ctx = as_in_context
    to_device = as_in_context

    def tostype(self, stype: str) -> "NDArray":
        """A copy in storage type ``stype``: mxcore arrays are dense, so only
        ``'default'`` exists."""
        if stype != "default":
            from mxcore.base import MXCoreError
            raise MXCoreError(f"tostype({stype!r}): sparse storage types (csr, row_sparse) are "
                              "not supported by mxcore; arrays are dense ('default')")
        return self.copy()

    def astype(self, dtype, copy: bool = True) -> "NDArray":
        from hal import to_dtype
        dt = to_dtype(dtype)
        if not copy and dt == self.dtype:
            return self
        return _creation.cast(self, dt)

    def __getitem__(self, key) -> "NDArray":
        return _indexing.getitem(self, key)

    def __setitem__(self, key, value) -> None:
        _indexing.setitem(self, key, value)

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
        return _linalg.matmul(self, other)

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
        return _shape.reshape(self, shape, **kwargs)

    def reshape_like(self, *args, **kwargs) -> "NDArray":
        """``mx.nd.reshape_like(self, rhs, lhs_begin, lhs_end, rhs_begin, rhs_end)``"""
        return _shape.reshape_like(self, *args, **kwargs)

    def transpose(self, *axes, **kwargs) -> "NDArray":
        if "axes" in kwargs:
            axes = (kwargs.pop("axes"),)
        if kwargs:
            raise TypeError(f"transpose() got unexpected keyword arguments {sorted(kwargs)}")
        if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
            axes = tuple(axes[0])
        return _shape.transpose(self, axes or None)

    def swapaxes(self, dim1: int, dim2: int) -> "NDArray":
        return _shape.swapaxes(self, dim1, dim2)

    # A copy, as MXNet's operators make; inplace=True: a view of this array's buffer.
    def flatten(self, inplace: bool = False) -> "NDArray":
        return _shape.flatten(self, inplace=inplace)

    def expand_dims(self, axis: int, inplace: bool = False) -> "NDArray":
        return _shape.expand_dims(self, axis, inplace=inplace)

    def squeeze(self, axis=None, inplace: bool = False) -> "NDArray":
        return _shape.squeeze(self, axis, inplace=inplace)

    def broadcast_to(self, shape) -> "NDArray":
        return _shape.broadcast_to(self, shape)

    def broadcast_like(self, other: "NDArray", lhs_axes=None, rhs_axes=None) -> "NDArray":
        return _shape.broadcast_like(self, other, lhs_axes, rhs_axes)

    def tile(self, reps) -> "NDArray":
        return _shape.tile(self, reps)

    def repeat(self, repeats: int, axis=None) -> "NDArray":
        return _shape.repeat(self, repeats, axis)

    def pad(self, mode="constant", pad_width=(), constant_value=0.0) -> "NDArray":
        return _shape.pad(self, mode, pad_width, constant_value)

    def split(self, num_outputs: int, axis: int = 1, squeeze_axis: bool = False):
        return _shape.split(self, num_outputs, axis, squeeze_axis)

    def slice(self, begin, end, step=None) -> "NDArray":
        return _indexing.slice(self, begin, end, step)

    def slice_axis(self, axis: int, begin: int, end) -> "NDArray":
        return _indexing.slice_axis(self, axis, begin, end)

    def slice_like(self, shape_like: "NDArray", axes=()) -> "NDArray":
        return _indexing.slice_like(self, shape_like, axes)

    def slice_assign(self, rhs: "NDArray", begin, end, step) -> "NDArray":
        """Write ``rhs`` into the region ``begin:end:step`` of this array; returns it."""
        return _indexing.slice_assign(self, rhs, begin, end, step, out=self)

    def slice_assign_scalar(self, value, begin, end, step) -> "NDArray":
        """Set the region ``begin:end:step`` of this array to ``value``; returns it."""
        return _indexing.slice_assign_scalar(self, value, begin, end, step, out=self)

    def take(self, indices, axis: int = 0, mode: str = "clip") -> "NDArray":
        return _indexing.take(self, indices, axis, mode)

    def pick(self, index, axis: int = -1, keepdims: bool = False, mode: str = "clip"):
        return _indexing.pick(self, index, axis, keepdims, mode)

    def one_hot(self, depth: int, on_value=1.0, off_value=0.0, dtype="float32"):
        return _indexing.one_hot(self, depth, on_value, off_value, dtype)

    def clip(self, a_min, a_max) -> "NDArray":
        return _E.clip(self, a_min, a_max)

    def sum(self, axis=None, keepdims=False, exclude=False) -> "NDArray":
        return _reduce.sum(self, axis, keepdims, exclude)

    def mean(self, axis=None, keepdims=False, exclude=False) -> "NDArray":
        return _reduce.mean(self, axis, keepdims, exclude)

    def prod(self, axis=None, keepdims=False, exclude=False) -> "NDArray":
        return _reduce.prod(self, axis, keepdims, exclude)

    def max(self, axis=None, keepdims=False, exclude=False) -> "NDArray":
        return _reduce.max(self, axis, keepdims, exclude)

    def min(self, axis=None, keepdims=False, exclude=False) -> "NDArray":
        return _reduce.min(self, axis, keepdims, exclude)

    def argmax(self, axis=None, keepdims=False, out=None) -> "NDArray":
        # numpy's np.argmax(x, axis) calls x.argmax(axis=axis, out=None): an NDArray back
        r = _reduce.argmax(self, axis, keepdims)
        if out is None:
            return r
        out[:] = r
        return out

    def argmin(self, axis=None, keepdims=False, out=None) -> "NDArray":
        r = _reduce.argmin(self, axis, keepdims)
        if out is None:
            return r
        out[:] = r
        return out

    def nansum(self, axis=None, keepdims=False, exclude=False) -> "NDArray":
        return _reduce.nansum(self, axis, keepdims, exclude)

    def nanprod(self, axis=None, keepdims=False, exclude=False) -> "NDArray":
        return _reduce.nanprod(self, axis, keepdims, exclude)

    def argmax_channel(self) -> "NDArray":
        return _reduce.argmax_channel(self)

    def softmin(self, axis=-1, temperature=None, dtype=None, use_length=False) -> "NDArray":
        return _nn.softmin(self, axis, temperature, dtype, use_length)

    def topk(self, axis=-1, k=1, ret_typ="indices", is_ascend=False, dtype="float32"):
        return _ordering.topk(self, axis, k, ret_typ, is_ascend, dtype)

    def sort(self, axis=-1, is_ascend=True) -> "NDArray":
        return _ordering.sort(self, axis, is_ascend)

    def argsort(self, axis=-1, is_ascend=True, dtype="float32") -> "NDArray":
        return _ordering.argsort(self, axis, is_ascend, dtype)

    def flip(self, axis) -> "NDArray":
        return _shape.flip(self, axis)

    def diag(self, k=0, axis1=0, axis2=1) -> "NDArray":
        return _shape.diag(self, k, axis1, axis2)

    def depth_to_space(self, block_size) -> "NDArray":
        return _shape.depth_to_space(self, block_size)

    def space_to_depth(self, block_size) -> "NDArray":
        return _shape.space_to_depth(self, block_size)

    def shape_array(self) -> "NDArray":
        return _shape.shape_array(self)

    def size_array(self) -> "NDArray":
        return _shape.size_array(self)

    def split_v2(self, indices_or_sections, axis=0, squeeze_axis=False):
        return _shape.split_v2(self, indices_or_sections, axis, squeeze_axis)

    def broadcast_axes(self, axis=(), size=()) -> "NDArray":
        return _shape.broadcast_axes(self, axis, size)

    def norm(self, ord=2, axis=None, keepdims=False) -> "NDArray":
        return _reduce.norm(self, ord, axis, keepdims)

    def softmax(self, axis=-1, temperature=None) -> "NDArray":
        return _nn.softmax(self, axis=axis, temperature=temperature)

    def log_softmax(self, axis=-1, temperature=None) -> "NDArray":
        return _nn.log_softmax(self, axis=axis, temperature=temperature)

    def zeros_like(self) -> "NDArray":
        return _creation.zeros_like(self)

    def ones_like(self) -> "NDArray":
        return _creation.ones_like(self)

    def dot(self, other, transpose_a=False, transpose_b=False) -> "NDArray":
        return _linalg.dot(self, other, transpose_a, transpose_b)



def _make_unary_method(name):
    def method(self):
        return _unary(getattr(_E, name.upper()), self)
    method.__name__ = name
    method.__qualname__ = f"NDArray.{name}"
    method.__doc__ = f"``mx.nd.{name}(self)``"
    return method


_UNARY_METHODS = ("exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "square", "reciprocal",
                  "abs", "sign", "sin", "cos", "tanh", "sigmoid", "relu", "softrelu", "erf",
                  "floor", "ceil", "round", "arcsin", "arccos", "arctan", "sinh", "cosh", "tan",
                  "arcsinh", "arccosh", "arctanh", "degrees", "radians", "log2", "log10", "cbrt",
                  "rcbrt", "rint", "fix", "trunc")

#: name -> member installed on NDArray: _Methods' own members, then the unary ops
#: (not the class machinery; not __hash__, which defining __eq__ set to None in _Methods:
#: NDArrays hash by identity)
METHODS = {name: member for name, member in vars(_Methods).items()
           if name not in ("__module__", "__qualname__", "__doc__", "__dict__", "__weakref__",
                           "__hash__")}
METHODS.update({name: _make_unary_method(name) for name in _UNARY_METHODS})

for _name, _member in METHODS.items():
    setattr(NDArray, _name, _member)

__all__ = ["NDArray"]
