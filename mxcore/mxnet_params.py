"""MXNet 1.x binary NDArray files: what ``mx.nd.save``, ``Block.save_parameters`` and
``HybridBlock.export`` (``model-0000.params``) write.

Read with ``struct`` and numpy only: loading a file never runs code (no pickle) and
needs no MXNet.  Every integer is little-endian; ``[...]`` is present only when said.

    file     := u64 0x112 (list magic), u64 0 (reserved),
                u64 n, n x array,
                u64 m, m x name                  m = 0 (a list) or n (a dict)
    name     := u64 length, UTF-8 bytes
    array    := u32 header magic, then
      V2 0xF993FAC9, V3 0xF993FACA:
                i32 storage type (0 dense, 1 row_sparse, 2 csr), [sparse: storage shape],
                shape, [unless the shape says "no data": context, i32 type flag,
                [sparse: per aux array: i32 type flag, shape], data, [sparse: aux data]]
      V1 0xF993FAC8:           shape with a u32 ndim, then as V2 for a dense array
      older (magic = ndim):    u32 dims[ndim], then as V2 for a dense array
    shape    := i32 ndim, i64 dims[ndim]
    context  := i32 device type (1 cpu, 2 gpu, 3 cpu_pinned, 5 cpu_shared), i32 device id
    data     := the elements in C order, product(dims) x itemsize bytes

MXNet 1.9.1 writes V2, or V3 inside ``mx.util.np_shape(True)`` (NumPy shape semantics).
"No data" (an NDArray that was never allocated) is ndim 0 in V2 and older headers,
where a dimension of 0 meant "unknown"; V3 spells it ndim -1, so that ndim 0 is a
scalar and a dimension of 0 an empty array.  Type flags are mshadow's: 0 float32,
1 float64, 2 float16, 3 uint8, 4 int32, 5 int8, 6 int64, 7 bool, 8 int16, 9 uint16,
10 uint32, 11 uint64, 12 bfloat16.  Only dense arrays are read: a sparse one is an
error naming it.  The saved device is not kept (arrays load on the device asked for).

``read`` gives the arrays and names, ``load`` a list or dict (as ``mx.nd.load`` does),
``save`` writes the format back (V2; V3 when an array is 0-d or empty, which MXNet
loads inside ``mx.util.np_shape(True)`` only).
"""
from __future__ import annotations

import io
import math
import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

import hal
from mxcore.base import MXCoreError

LIST_MAGIC = 0x112
V1_MAGIC = 0xF993FAC8
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA
VERSIONS = {V1_MAGIC: "V1", V2_MAGIC: "V2", V3_MAGIC: "V3"}

#: mshadow type flag -> dtype name (bfloat16 is ml_dtypes', through hal)
TYPE_FLAGS = {0: "float32", 1: "float64", 2: "float16", 3: "uint8", 4: "int32", 5: "int8",
              6: "int64", 7: "bool", 8: "int16", 9: "uint16", 10: "uint32", 11: "uint64",
              12: "bfloat16"}
FLAG_OF = {name: flag for flag, name in TYPE_FLAGS.items()}
STORAGE_TYPES = {0: "default", 1: "row_sparse", 2: "csr"}
DEVICE_TYPES = {1: "cpu", 2: "gpu", 3: "cpu_pinned", 5: "cpu_shared"}
#: the prefixes ``HybridBlock.export`` gives parameter names (stripped by load_parameters)
PREFIXES = ("arg:", "aux:")

_MAX_NDIM = 64  # numpy's limit; more is a corrupt header
_HEAD = struct.Struct("<QQ")


class MXNetParamsError(MXCoreError):
    """A file that is not a complete, readable MXNet NDArray file."""


@dataclass
class NDArrayFile:
    """The contents of an MXNet NDArray file."""
    arrays: List[np.ndarray]
    names: List[str]                       # empty: saved as a list
    versions: Tuple[str, ...] = field(default=())  # array header versions met, e.g. ("V2",)

    def as_container(self) -> Union[List[np.ndarray], Dict[str, np.ndarray]]:
        """A dict when the file names its arrays, else a list (``mx.nd.load``)."""
        return dict(zip(self.names, self.arrays)) if self.names else list(self.arrays)


def _dtype(name: str) -> np.dtype:
    """The little-endian numpy dtype of a type flag's name."""
    if name == "bfloat16":
        return hal.to_dtype(name)  # ml_dtypes': byte order is the host's (little on all ours)
    return np.dtype(name).newbyteorder("<")


def is_mxnet_file(path) -> bool:
    """Whether ``path`` starts as an MXNet NDArray file does (list magic, then a zero
    reserved word; a safetensors file has ``{`` at byte 8)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD.size)
    except OSError:
        return False
    return len(head) == _HEAD.size and _HEAD.unpack(head) == (LIST_MAGIC, 0)


class _Reader:
    """Reads the file front to back; every failure names the file, what was being
    read and where."""

    def __init__(self, f: BinaryIO, path: str, size: int) -> None:
        self.f, self.path, self.size = f, path, size
        self.where = "the file header"

    @property
    def pos(self) -> int:
        return self.f.tell()

    def fail(self, message: str) -> MXNetParamsError:
        return MXNetParamsError(f"cannot read {self.path} as an MXNet NDArray file: "
                                f"{self.where}: {message} (at byte {self.pos} of {self.size})")

    def need(self, n: int, what: str) -> None:
        if n > self.size - self.pos:
            raise self.fail(f"truncated: {what} needs {n} bytes, {self.size - self.pos} remain")

    def unpack(self, fmt: str, what: str):
        s = struct.calcsize(fmt)
        self.need(s, what)
        return struct.unpack(fmt, self.f.read(s))

    def u64(self, what: str) -> int:
        return self.unpack("<Q", what)[0]

    def i32(self, what: str) -> int:
        return self.unpack("<i", what)[0]

    def u32(self, what: str) -> int:
        return self.unpack("<I", what)[0]

    def shape(self, ndim_code: str, dim_code: str, v3: bool = False
              ) -> Optional[Tuple[int, ...]]:
        """A shape; None for V3's unknown shape (ndim -1 or a dimension of -1)."""
        ndim = self.unpack("<" + ndim_code, "the rank")[0]
        return None if v3 and ndim == -1 else self.dims(ndim, dim_code, v3)

    def dims(self, ndim: int, dim_code: str, v3: bool = False) -> Optional[Tuple[int, ...]]:
        if not 0 <= ndim <= _MAX_NDIM:
            raise self.fail(f"a shape of {ndim} dimensions")
        dims = self.unpack(f"<{ndim}{dim_code}", f"a shape of {ndim} dimensions")
        if v3 and -1 in dims:
            return None
        if any(d < 0 for d in dims):
            raise self.fail(f"shape {dims} has a negative dimension")
        return tuple(dims)

    def data(self, dtype: np.dtype, shape: Tuple[int, ...]) -> np.ndarray:
        count = math.prod(shape)
        self.need(count * dtype.itemsize, f"the data of a {dtype.name} array of shape {shape}")
        out = np.empty(count, dtype)
        if count:
            self.f.readinto(out.view(np.uint8))
        native = dtype if dtype.name == "bfloat16" else np.dtype(dtype.name)
        return (out.view(native) if native == dtype else out.astype(native)).reshape(shape)


def _read_array(r: _Reader, versions: set) -> np.ndarray:
    magic = r.u32("the array header magic")
    version = VERSIONS.get(magic, "legacy")
    versions.add(version)
    if version in ("V2", "V3"):
        stype = r.i32("the storage type")
        if stype != 0:
            kind = STORAGE_TYPES.get(stype)
            if kind is None:
                raise r.fail(f"unknown storage type {stype}")
            raise r.fail(f"a {kind} (sparse) array: only dense arrays can be read; store it "
                         "with .tostype('default') in MXNet first")
        shape = r.shape("i", "q", v3=version == "V3")
    elif version == "V1":
        shape = r.shape("I", "q")
    elif magic <= _MAX_NDIM:  # the oldest header: the magic is the rank, dims are u32
        shape = r.dims(magic, "I")
    else:
        raise r.fail(f"unknown array header magic 0x{magic:08X}")
    # no data: V3's unknown shape, or rank 0 before V3 (where 0 meant unknown)
    if shape is None or (version != "V3" and not shape):
        raise r.fail("an NDArray that holds no data (never allocated): nothing to load")
    device = r.i32("the device type")
    r.i32("the device id")
    if device not in DEVICE_TYPES:
        raise r.fail(f"unknown device type {device}")
    flag = r.i32("the dtype flag")
    if flag not in TYPE_FLAGS:
        raise r.fail(f"unknown dtype flag {flag}")
    return r.data(_dtype(TYPE_FLAGS[flag]), shape)


def _read_name(r: _Reader) -> str:
    n = r.u64("the name length")
    r.need(n, f"a name of {n} bytes")
    raw = r.f.read(n)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise r.fail(f"a name that is not UTF-8: {raw[:40]!r}") from None


def read(path) -> NDArrayFile:
    """Every array and name of an MXNet NDArray file; a file that is not one, or is
    truncated or corrupt, raises MXNetParamsError naming it and what is wrong."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        return _read_stream(f, path, os.fstat(f.fileno()).st_size)


def read_bytes(buf: bytes, what: str = "a buffer") -> NDArrayFile:
    """``read`` of an in-memory file (``mx.nd.load_frombuffer``)."""
    return _read_stream(io.BytesIO(buf), what, len(buf))


def _read_stream(f, what: str, size: int) -> NDArrayFile:
    r = _Reader(f, what, size)
    magic, reserved = r.unpack("<QQ", "the list magic and reserved word")
    if magic != LIST_MAGIC or reserved != 0:
        raise r.fail(f"starts with 0x{magic:X}, 0x{reserved:X} where an MXNet NDArray "
                     f"file has 0x{LIST_MAGIC:X}, 0")
    n = r.u64("the array count")
    if n > (r.size - r.pos) // 8:  # no array header is shorter than 8 bytes
        raise r.fail(f"truncated: {n} arrays cannot fit in the {r.size - r.pos} bytes left")
    arrays, versions = [], set()
    for i in range(n):
        r.where = f"array {i} of {n}"
        arrays.append(_read_array(r, versions))
    r.where = "the names"
    m = r.u64("the name count")
    if m not in (0, n):
        raise r.fail(f"{m} names for {n} arrays")
    names = []
    for i in range(m):
        r.where = f"name {i} of {m}"
        names.append(_read_name(r))
    r.where = "the end"
    if r.pos != r.size:
        raise r.fail(f"{r.size - r.pos} bytes follow the last name")
    return NDArrayFile(arrays, names, tuple(sorted(versions)))


def load(path) -> Union[List[np.ndarray], Dict[str, np.ndarray]]:
    """The arrays of an MXNet NDArray file: a dict when it names them, else a list."""
    return read(path).as_container()


def strip_prefixes(arrays: Mapping[str, np.ndarray], path: str = "") -> Dict[str, np.ndarray]:
    """``arg:``/``aux:`` removed from the names, as MXNet's ``load_parameters`` does;
    two names that become one are an error."""
    out: Dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        key = name[4:] if name.startswith(PREFIXES) else name
        if key in out:
            raise MXNetParamsError(f"{path or 'parameters'}: {name!r} and another array both "
                                   f"load as {key!r} once arg:/aux: prefixes are removed")
        out[key] = value
    return out


# writing ---------------------------------------------------------------------------------

def _array_bytes(a: np.ndarray, magic: int) -> bytes:
    name = a.dtype.name  # ml_dtypes' bfloat16 is named "bfloat16" too
    if name not in FLAG_OF:
        raise MXNetParamsError(f"MXNet NDArray files have no dtype {a.dtype}")
    header = struct.pack(f"<Iii{a.ndim}qiii", magic, 0, a.ndim, *a.shape, 1, 0, FLAG_OF[name])
    return header + np.ascontiguousarray(a, dtype=_dtype(name)).tobytes()


def save(path, data: Union[Mapping[str, np.ndarray], Sequence[np.ndarray]],
         np_shape: Optional[bool] = None) -> None:
    """Write arrays (a dict name -> array, or a list) as MXNet's ``mx.nd.save`` does,
    atomically.  Headers are V2, or V3 (NumPy shape semantics) when ``np_shape`` or,
    by default, when an array is 0-d or empty, which V2 cannot express."""
    from mxcore.serialization import atomic_path
    if isinstance(data, Mapping):
        names, arrays = [str(k) for k in data], [np.asarray(v) for v in data.values()]
    else:
        names, arrays = [], [np.asarray(v) for v in data]
    if np_shape is None:
        np_shape = any(a.ndim == 0 or a.size == 0 for a in arrays)
    elif not np_shape and any(a.ndim == 0 or a.size == 0 for a in arrays):
        raise MXNetParamsError("0-d and empty arrays need np_shape=True (a V3 header)")
    magic = V3_MAGIC if np_shape else V2_MAGIC
    parts = [_HEAD.pack(LIST_MAGIC, 0), struct.pack("<Q", len(arrays))]
    parts += [_array_bytes(a, magic) for a in arrays]
    parts.append(struct.pack("<Q", len(names)))
    for name in names:
        raw = name.encode("utf-8")
        parts += [struct.pack("<Q", len(raw)), raw]
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.writelines(parts)


# converting ------------------------------------------------------------------------------

def to_safetensors(src, dst, keep_prefixes: bool = False) -> NDArrayFile:
    """Write the arrays of MXNet NDArray file ``src`` to ``dst`` in mxcore's format
    (safetensors, atomically): a named file becomes a parameter file that
    ``Block.load_parameters`` and ``mx.nd.load`` read, its ``arg:``/``aux:`` prefixes
    removed unless ``keep_prefixes``; a list stays a list.  Returns what was read."""
    from mxcore.serialization import save_arrays
    src, dst = os.fspath(src), os.fspath(dst)
    if os.path.exists(dst) and os.path.samefile(src, dst):
        raise MXNetParamsError(f"the output {dst} is the input file")
    contents = read(src)
    source = f"mxnet-ndarrays {','.join(contents.versions) or '-'}"
    if contents.names:
        repeated = sorted({n for n in contents.names if contents.names.count(n) > 1})
        if repeated:
            raise MXNetParamsError(f"{src} names more than one array {repeated}")
        arrays = dict(zip(contents.names, contents.arrays))
        if not keep_prefixes:
            arrays = strip_prefixes(arrays, src)
        meta = {"format": "mxcore-parameters", "version": "1", "source": source}
    else:
        arrays = {str(i): a for i, a in enumerate(contents.arrays)}
        meta = {"format": "mxcore-ndarrays", "container": "list", "source": source}
    save_arrays(dst, arrays, meta)
    return contents
