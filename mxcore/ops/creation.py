"""Array creation and copies: array, zeros, ones, full, empty, arange, eye,
zeros_like, ones_like, copy, cast, moving arrays between devices, and sharing
memory with numpy (from_numpy) and DLPack producers (from_dlpack)."""
from __future__ import annotations

import weakref
from typing import Optional

import numpy as np

from hal import Device, dtype_name, is_float, parse_device, to_dtype
from mxcore.base import MXCoreError
from mxcore.dispatch import invoke_nullary, invoke_unary, wrap
from mxcore.array import NDArray
from mxcore.op import REQUIRED, Op
from mxcore.ops.rules import same_as_first

OPS: list = []


def _new(name, nin=1, **kw) -> Op:
    op = Op(name, nin, **kw)
    OPS.append(op)
    return op


def _device(ctx) -> Device:
    from mxcore.device import default_device, device
    return default_device() if ctx is None else device(ctx)


def _shape(shape) -> tuple:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise MXCoreError(f"negative dimension in shape {shape}")
    return shape


FULL = _new("full", 0, attrs={"shape": REQUIRED, "value": 0.0, "dtype": "float32"})
FULL.def_infer(lambda s, d, a: ([a["shape"]], [np.dtype(a["dtype"])]))
ARANGE = _new("arange", 0, attrs={"start": 0.0, "stop": None, "step": 1.0, "repeat": 1,
                                  "dtype": "float32"})


@ARANGE.def_infer
def _arange_infer(s, d, a):
    start, stop = (0.0, a["start"]) if a["stop"] is None else (a["start"], a["stop"])
    n = max(0, int(np.ceil((stop - start) / a["step"])))
    return [(n * a["repeat"],)], [np.dtype(a["dtype"])]


def _fill_out(op: str, out: NDArray, shape: tuple, dtype, val) -> NDArray:
    """Write ``val`` into all of ``out`` (MXNet's ``out=``): its shape and dtype must
    be the ones asked for."""
    if not isinstance(out, NDArray):
        raise MXCoreError(f"{op}: out must be an NDArray, got {type(out).__name__}")
    if out.shape != shape or (dtype is not None and out.dtype != to_dtype(dtype)):
        want = f"{shape} {to_dtype(dtype).name if dtype is not None else ''}".rstrip()
        raise MXCoreError(f"{op}: out is {out.shape} {out.dtype.name} on {out.context!r}, "
                          f"the result is {want}")
    out[...] = val
    return out


def full(shape, val, ctx=None, dtype="float32", out: Optional[NDArray] = None) -> NDArray:
    """An array of ``shape`` filled with ``val`` (written into ``out`` if given)."""
    if out is not None:
        return _fill_out("full", out, _shape(shape), dtype, val)
    dev = _device(ctx)
    dt = to_dtype(dtype)
    return invoke_nullary(FULL, dev, {"shape": _shape(shape), "value": val,
                                      "dtype": dtype_name(dt)}, dt)


def zeros(shape, ctx=None, dtype="float32", out: Optional[NDArray] = None,
          **kwargs) -> NDArray:
    """An array of zeros (``stype`` is accepted: mxcore arrays are dense)."""
    if out is not None:
        return _fill_out("zeros", out, _shape(shape), dtype, 0)
    return full(shape, 0, ctx, dtype if dtype is not None else "float32")


def ones(shape, ctx=None, dtype="float32", out: Optional[NDArray] = None,
         **kwargs) -> NDArray:
    """An array of ones."""
    if out is not None:
        return _fill_out("ones", out, _shape(shape), dtype, 1)
    return full(shape, 1, ctx, dtype if dtype is not None else "float32")


def eye(N: int, M: int = 0, k: int = 0, ctx=None, dtype="float32",
        out: Optional[NDArray] = None, **kwargs) -> NDArray:
    """An N x M (M = 0: N x N) array with ones on diagonal ``k`` (above the main
    diagonal for k > 0, below for k < 0) and zeros elsewhere (MXNet's eye)."""
    n, m, k = int(N), int(M) or int(N), int(k)
    if n < 0 or m < 0:
        raise MXCoreError(f"eye: N and M must not be negative, got N={N}, M={M}")
    dt = to_dtype(dtype if dtype is not None else "float32")
    values = np.eye(n, m, k, dtype=dt)  # built on the host: a small, one-off array
    if out is not None:
        return _fill_out("eye", out, (n, m), dt, array(values, ctx=out.context, dtype=dt))
    return array(values, ctx=ctx, dtype=dt)


def empty(shape, ctx=None, dtype="float32") -> NDArray:
    """Uninitialised memory from the device allocator."""
    from mxcore.device import device_type
    dev = _device(ctx)
    dt = to_dtype(dtype)
    return wrap(device_type(dev).allocate(dev.index, _shape(shape), dt), dev)


def arange(start, stop=None, step=1.0, repeat=1, infer_range=None, ctx=None,
           dtype="float32") -> NDArray:
    if step == 0:
        raise MXCoreError("arange: step must not be zero")
    dev = _device(ctx)
    dt = to_dtype(dtype)
    return invoke_nullary(ARANGE, dev, {"start": start, "stop": stop, "step": step,
                                        "repeat": int(repeat), "dtype": dt.name}, dt)


def linspace(start, stop, num: int, endpoint: bool = True, ctx=None,
             dtype="float32") -> NDArray:
    """``num`` evenly spaced values from ``start`` to ``stop`` (``stop`` included
    with ``endpoint``), computed in float64 and cast to ``dtype`` (MXNet)."""
    if int(num) < 0:
        raise MXCoreError(f"linspace: num must be non-negative, got {num}")
    values = np.linspace(float(start), float(stop), int(num), endpoint=bool(endpoint))
    return array(values, ctx=ctx, dtype=to_dtype(dtype))


def _check_int_range(src: np.ndarray, dt: np.dtype) -> None:
    """numpy wraps out-of-range integers silently (2**40 -> 0 in int32): refuse."""
    lo, hi = src.min(), src.max()
    if src.dtype.kind == "f" and not (np.isfinite(lo) and np.isfinite(hi)):
        raise MXCoreError(f"array: cannot convert non-finite {src.dtype} values to {dt.name}")
    info = np.iinfo(dt)
    # floats truncate toward zero; int64's max is not a float64, so compare with max + 1
    over = hi >= float(info.max) + 1.0 if src.dtype.kind == "f" else hi > info.max
    if lo < info.min or over:
        raise MXCoreError(f"array: values from {lo} to {hi} do not fit in {dt.name} (range "
                          f"{info.min} to {info.max}); pick a wider dtype")


def array(source_array, ctx=None, dtype=None) -> NDArray:
    """An NDArray from array-like data.  As in MXNet 1.x, dtype defaults to the
    source's for NDArrays (and DLPack producers), float32 for everything else, numpy
    arrays of any dtype included: pass ``dtype=a.dtype`` to keep a numpy array's."""
    from mxcore.device import device_type
    dev = _device(ctx)
    if isinstance(source_array, NDArray):
        src = source_array.asnumpy()
        dtype = dtype or src.dtype
    elif isinstance(source_array, np.ndarray):
        src = source_array
        dtype = dtype or "float32"
    else:
        if hasattr(source_array, "__dlpack__") and not isinstance(source_array, (list, tuple)):
            src = np.from_dlpack(source_array)
            dtype = dtype or src.dtype
        else:
            src = np.asarray(source_array)
            dtype = dtype or "float32"
    dt = to_dtype(dtype)
    if src.dtype.kind in "OUSV" and not is_float(src.dtype):
        raise MXCoreError(f"cannot make an NDArray from {src.dtype} data")
    if dt.kind in "iu" and src.size and src.dtype.kind in "iuf" \
            and not np.can_cast(src.dtype, dt, "safe"):
        _check_int_range(src, dt)
    host = np.asarray(src, dtype=dt, order="C")  # 0-d stays 0-d (ascontiguousarray: (1,))
    return wrap(device_type(dev).from_host(dev.index, host), dev)


# unary creation/copy ops ------------------------------------------------------------------
ZEROS_LIKE = _new("zeros_like")
ONES_LIKE = _new("ones_like")
COPY = _new("copy", aliases=("identity", "_copy"))
CAST = _new("cast", attrs={"dtype": REQUIRED}, aliases=("Cast",))
for _op in (ZEROS_LIKE, ONES_LIKE, COPY):
    _op.def_infer(same_as_first)
CAST.def_infer(lambda s, d, a: ([s[0]], [np.dtype(a["dtype"])]))
COPY.def_grad(lambda c, g: (g,))
CAST.def_grad(lambda c, g: (cast(g, c.inputs[0].dtype),))


def zeros_like(data: NDArray) -> NDArray:
    return invoke_unary(ZEROS_LIKE, data)


def ones_like(data: NDArray) -> NDArray:
    return invoke_unary(ONES_LIKE, data)


def full_like(data: NDArray, fill_value) -> NDArray:
    return full(data.shape, fill_value, data.context, data.dtype)


def copy(data: NDArray) -> NDArray:
    return invoke_unary(COPY, data)


def cast(data: NDArray, dtype) -> NDArray:
    return invoke_unary(CAST, data, {"dtype": to_dtype(dtype).name})


# device transfer -------------------------------------------------------------------------
TO_DEVICE = _new("to_device", attrs={"device": REQUIRED})
TO_DEVICE.def_infer(same_as_first)
TO_DEVICE.def_grad(lambda c, g: (to_device(g, c.inputs[0].context),))


def to_device(data: NDArray, device) -> NDArray:
    """Copy ``data`` to ``device`` (differentiable: the gradient flows back)."""
    from mxcore import autograd
    from mxcore.device import device as check_device, device_type
    dst = check_device(device)
    src = data.context
    # the engine's wait only: to_host orders itself after the device's queued work, and
    # a host-to-device copy needs no wait (a device-wide synchronize would stall it)
    from mxcore import engine
    engine.current().wait_to_read(data._data)
    src_t, dst_t = device_type(src), device_type(dst)
    host = src_t.to_host(src.index, data._data)
    r = wrap(dst_t.from_host(dst.index, np.ascontiguousarray(host)), dst)
    if autograd.STATE.recording and data._ag is not None:
        autograd.record_op(TO_DEVICE, (data,), (r,), {"device": str(dst)})
    return r


def from_numpy(ndarray: np.ndarray, zero_copy: bool = True, array_cls=None) -> NDArray:
    """A CPU NDArray of a numpy array's values and dtype.  With ``zero_copy`` it
    shares the numpy array's memory (which must be C-contiguous) and, as in MXNet,
    the numpy array becomes read-only: writes go through the NDArray."""
    import hal
    if not isinstance(ndarray, np.ndarray):
        raise MXCoreError(f"from_numpy: expected a numpy array, got {type(ndarray).__name__}")
    if ndarray.dtype.name not in hal.ALL_DTYPES:
        raise MXCoreError(f"from_numpy: mxcore arrays have no dtype {ndarray.dtype} (they "
                          f"have {', '.join(hal.ALL_DTYPES)})")
    cpu = parse_device("cpu")
    if not zero_copy:
        return array(ndarray, ctx=cpu, dtype=ndarray.dtype)
    if not ndarray.flags.c_contiguous:
        raise ValueError("from_numpy: zero_copy needs a C-contiguous numpy array; use "
                         "np.ascontiguousarray(x) or zero_copy=False")
    if ndarray.flags.writeable:
        shared = ndarray.view()  # keeps its write access after the original loses it
        ndarray.flags.writeable = False
        _LOCKED[id(ndarray)] = ndarray
    elif _LOCKED.get(id(ndarray)) is ndarray:  # locked by an earlier from_numpy
        shared = np.asarray(_WritableAlias(ndarray)).view(ndarray.dtype)
    else:
        raise ValueError("from_numpy: zero_copy needs a writeable numpy array (this one's "
                         "memory is read-only); use zero_copy=False")
    return wrap(shared, cpu)


#: numpy arrays that from_numpy made read-only, by id (entries go with the arrays)
_LOCKED: "weakref.WeakValueDictionary" = weakref.WeakValueDictionary()


class _WritableAlias:
    """A locked array's memory offered to numpy as writeable again (numpy cannot give
    write access back to a view); holds the array, so the memory lives as long."""

    def __init__(self, owner: np.ndarray):
        self.owner = owner
        iface = dict(owner.__array_interface__)
        iface["data"] = (iface["data"][0], False)  # (address, read-only flag)
        self.__array_interface__ = iface


# DLPack device types -> mxcore device kinds (kDLCPU, kDLCUDA, kDLCUDAHost, kDLCUDAManaged)
_DLPACK_KINDS = {1: "cpu", 2: "cuda", 3: "cpu", 13: "cuda"}


class _Capsule:
    """A DLPack capsule (what MXNet's ``to_dlpack_for_read`` returns) dressed as a
    producer, so that ``from_dlpack`` and the array modules take it."""

    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        import ctypes
        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        name = api.PyCapsule_GetName(self.capsule)
        if name not in _DLTENSOR_OFFSET:
            raise MXCoreError(f"from_dlpack: a capsule named {name!r} is not an unused "
                              "DLPack tensor (each capsule can be consumed once)")
        tensor = api.PyCapsule_GetPointer(self.capsule, name) + _DLTENSOR_OFFSET[name]
        # DLTensor: void *data, then DLDevice {int32 device_type, int32 device_id}
        dev = (ctypes.c_int32 * 2).from_address(tensor + ctypes.sizeof(ctypes.c_void_p))
        return int(dev[0]), int(dev[1])


# where the DLTensor sits in a capsule's struct: first in DLManagedTensor; after the
# version, manager context, deleter and flags in DLManagedTensorVersioned
_DLTENSOR_OFFSET = {b"dltensor": 0, b"dltensor_versioned": 32}


def from_dlpack(obj) -> NDArray:
    """Wrap a DLPack-capable array (numpy, torch, cupy...) or a DLPack capsule
    without copying: host memory becomes a CPU array, CUDA memory an array on
    ``cuda:<id>`` (through that device's array module)."""
    from mxcore.device import device as check_device, device_type
    if type(obj).__name__ == "PyCapsule":
        obj = _Capsule(obj)
    dl_type, dl_id = obj.__dlpack_device__() if hasattr(obj, "__dlpack_device__") else (1, 0)
    kind = _DLPACK_KINDS.get(int(dl_type))
    if kind is None:
        raise MXCoreError(f"from_dlpack: DLPack device type {dl_type} has no mxcore device")
    if kind == "cpu":
        return wrap(np.from_dlpack(obj), parse_device("cpu"))
    dev = check_device(f"{kind}:{int(dl_id)}")
    return wrap(device_type(dev).xp.from_dlpack(obj), dev)


def _capsule(data: NDArray):
    # a versioned (DLPack 1.0) capsule says whether the memory is writeable: numpy
    # makes arrays from unversioned ones read-only
    try:
        return data.__dlpack__(max_version=(1, 0))
    except TypeError:  # an array module from before DLPack 1.0
        return data.__dlpack__()


def to_dlpack_for_read(data: NDArray):
    """A DLPack capsule of ``data``'s memory (``from_dlpack`` and other frameworks
    take it), once pending writes to it are done."""
    return _capsule(data)


def to_dlpack_for_write(data: NDArray):
    """A DLPack capsule of ``data``'s memory that the consumer may write into."""
    return _capsule(data)
