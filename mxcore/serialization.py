"""Tensor files: safetensors for arrays, JSON-able string metadata, atomic
writes.  Loading a file never runs code (no pickle anywhere).  The loaders also read
MXNet 1.x's binary NDArray files (``mx.nd.save``, ``save_parameters``, ``export``),
told apart by their magic number (``mxcore.mxnet_params``), from files or from bytes
(``mx.nd.load_frombuffer``).

``mx.nd.save`` records whether NumPy shape semantics were on (``mx.np_shape``), as
MXNet's V2/V3 headers do, and ``mx.nd.load`` refuses such a file under the other
setting, as MXNet does.  Pickled NDArrays (``NDArray.__getstate__``) carry their bytes,
shape, dtype and device; ``array_from_state`` reads them back, and MXNet's pickles
too."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import struct
import os
import re
import secrets
import socket
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from mxcore import mxnet_params
from mxcore.base import MXCoreError


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (``kill(pid, 0)``: EPERM means it exists but
    belongs to someone else)."""
    if pid <= 0:
        return True  # never a writer of ours: leave such files alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _host_tag() -> str:
    # pids are only comparable on one host (and one pid namespace, which in
    # containers goes with its own hostname): another host's files are never touched
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def _remove_stale_temporaries(folder: str, name: str, suffix: str, host: str) -> None:
    """Remove the temporary files for ``name`` left in ``folder`` by writers of this
    host that no longer run (killed before they could clean up)."""
    if os.name != "posix":
        return  # no kill(pid, 0) probe elsewhere (on Windows signal 0 is CTRL_C_EVENT)
    pattern = re.compile(rf"\.{re.escape(name)}\.{host}\.(\d+)\.[0-9a-f]{{8}}{re.escape(suffix)}")
    prefix = f".{name}.{host}."
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    me = os.getpid()
    for entry in entries:
        if not entry.startswith(prefix):
            continue
        m = pattern.fullmatch(entry)
        if m is None:
            continue
        pid = int(m.group(1))
        if pid != me and not _pid_alive(pid):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, entry))


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ".tmp") -> Iterator[str]:
    """A fresh file beside ``path`` to write; renamed over ``path`` when the block
    ends, removed if it raises (KeyboardInterrupt included), so readers see the old
    file or the whole new one.  The file gets the permissions ``open()`` would give
    (0o666 less the umask), even when the writer replaces it (safetensors writes
    0o600 files).

    The temporary file is ``.{name}.{host}.{pid}.{random}{suffix}``: a writer killed
    outright (SIGKILL, power loss) cannot remove it, so every write first removes the
    temporaries for the same target whose process (on this host) is gone.  Files of
    running processes, this one's included, are kept."""
    path = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(path)
    host = _host_tag()
    _remove_stale_temporaries(folder, name, suffix, host)
    tmp = None
    try:
        while True:
            # named before it exists: an interrupt right after creating it must remove it
            tmp = os.path.join(
                folder, f".{name}.{host}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")
            try:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            except FileExistsError:
                tmp = None  # another writer's
                continue
            break
        mode = os.stat(tmp).st_mode & 0o777  # 0o666 less the umask
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


#: the placeholder tensor of a file that holds only metadata (not an array of the file)
_EMPTY_MARK = "__mxcore_no_arrays__"


def save_arrays(path: str, arrays: Dict[str, np.ndarray],
                metadata: Optional[Dict[str, str]] = None) -> None:
    """Write ``arrays`` to ``path`` atomically (``atomic_path``)."""
    from safetensors.numpy import save_file
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tensors = {k: np.asarray(v, order="C") for k, v in arrays.items()}
    if not tensors and metadata:
        # safetensors before 0.4.1 cannot read back metadata without a tensor
        tensors = {_EMPTY_MARK: np.zeros((0,), np.uint8)}
    with atomic_path(path) as tmp:
        # asarray, not ascontiguousarray, which makes 0-d arrays 1-d
        save_file(tensors, tmp, metadata={k: str(v) for k, v in (metadata or {}).items()})


def load_arrays(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Read every array and the metadata of a safetensors file, or of an MXNet NDArray
    file (metadata ``format: mxnet-ndarrays``; a list's arrays are named ``0``,
    ``1``...); a truncated or corrupted file raises MXCoreError naming it."""
    from safetensors import safe_open
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if mxnet_params.is_mxnet_file(path):
        return _load_mxnet(path)
    try:
        with safe_open(path, framework="numpy") as f:
            meta = dict(f.metadata() or {})
            arrays = {k: f.get_tensor(k) for k in f.keys() if k != _EMPTY_MARK}
    except Exception as exc:  # safetensors raises its own error types
        raise MXCoreError(f"cannot read {path}: not a complete safetensors file "
                          f"({type(exc).__name__}: {exc})") from exc
    return arrays, meta


def _load_mxnet(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    return _mxnet_contents(mxnet_params.read(path))


def _mxnet_contents(contents) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    names = contents.names or [str(i) for i in range(len(contents.arrays))]
    meta = {"format": "mxnet-ndarrays", "container": "dict" if contents.names else "list",
            "versions": ",".join(contents.versions)}
    return dict(zip(names, contents.arrays)), meta


def _read_safetensors_bytes(buf: bytes, what: str):
    """Arrays and metadata of a safetensors file held in memory."""
    from safetensors.numpy import load as load_bytes
    try:
        (n,) = struct.unpack("<Q", buf[:8])
        header = json.loads(buf[8:8 + n])
        arrays = load_bytes(bytes(buf))
    except Exception as exc:  # struct, json and safetensors each raise their own
        raise MXCoreError(f"cannot read {what}: not a complete safetensors file "
                          f"({type(exc).__name__}: {exc})") from exc
    return arrays, dict(header.get("__metadata__") or {})


def load_parameter_arrays(path: str) -> Dict[str, np.ndarray]:
    """The arrays of a parameter file, with MXNet's ``arg:``/``aux:`` name prefixes
    removed (what MXNet's ``load_parameters`` and ``ParameterDict.load`` do)."""
    arrays, _ = load_arrays(path)
    return mxnet_params.strip_prefixes(arrays, os.fspath(path))


def save(fname: str, data) -> None:
    """``mx.nd.save``: an NDArray, a list of them or a dict name -> NDArray.  The
    file records whether NumPy shape semantics were on (``mx.np_shape``)."""
    from mxcore.ndarray import NDArray
    if isinstance(data, NDArray):
        data, kind = [data], "list"
    elif isinstance(data, dict):
        kind = "dict"
    elif isinstance(data, (list, tuple)):
        kind = "list"
    else:
        raise TypeError(f"save expects an NDArray, a list or a dict of them, got {type(data)}")
    items = data.items() if kind == "dict" else ((str(i), a) for i, a in enumerate(data))
    arrays = {}
    for key, arr in items:
        if not isinstance(arr, NDArray):
            raise TypeError(f"save: entry {key!r} is {type(arr).__name__}, not an NDArray")
        arrays[key] = arr.asnumpy()
    save_arrays(fname, arrays, {"format": "mxcore-ndarrays", "container": kind,
                                "np_shape": str(int(_np_shape()))})


def _np_shape() -> bool:
    from mxcore.util import is_np_shape
    return is_np_shape()


def _check_np_shape(meta: Dict[str, str], fname: str) -> None:
    """As MXNet's ``mx.nd.load`` does with its own files, a file ``mx.nd.save`` wrote
    loads only under the shape semantics it was saved with.  Files without the record
    (MXNet's, whose arrays mxcore reads the same either way, and older mxcore files)
    load under either."""
    saved = {"1": True, "0": False}.get(meta.get("np_shape"))
    if saved is None or saved == _np_shape():
        return
    if saved:
        raise MXCoreError(f"cannot load {fname}: it was saved with NumPy shape semantics "
                          "on; load it inside `with mx.np_shape(True):`")
    raise MXCoreError(f"cannot load {fname}: it was saved with NumPy shape semantics off; "
                      "load it outside `mx.np_shape(True)` blocks")


def _to_ndarray(value: np.ndarray, name: str, fname: str, ctx):
    from mxcore.ops.creation import array
    import hal
    if value.dtype.name not in hal.ALL_DTYPES:
        raise MXCoreError(f"cannot load {name!r} from {fname}: mxcore arrays have no dtype "
                          f"{value.dtype.name} (they have {', '.join(hal.ALL_DTYPES)})")
    return array(value, ctx=ctx, dtype=value.dtype)


def load(fname: str, ctx=None):
    """``mx.nd.load``: what ``save`` wrote (a list or a dict of NDArrays), or an MXNet
    NDArray file (a dict when it names its arrays, else a list)."""
    arrays, meta = load_arrays(fname)
    return _as_container(arrays, meta, os.fspath(fname), ctx)


def load_frombuffer(buf, ctx=None):
    """``mx.nd.load_frombuffer``: ``load`` of a file's bytes (mxcore's format or
    MXNet's); a truncated or corrupted buffer raises MXCoreError."""
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise TypeError(f"load_frombuffer expects bytes, got {type(buf).__name__}")
    buf = bytes(buf)
    what = f"a buffer of {len(buf)} bytes"
    if len(buf) >= 16 and struct.unpack("<QQ", buf[:16]) == (mxnet_params.LIST_MAGIC, 0):
        arrays, meta = _mxnet_contents(mxnet_params.read_bytes(buf, what))
    else:
        arrays, meta = _read_safetensors_bytes(buf, what)
    return _as_container(arrays, meta, what, ctx)


def _as_container(arrays: Dict[str, np.ndarray], meta: Dict[str, str], fname: str, ctx):
    _check_np_shape(meta, fname)
    if meta.get("container") == "list":
        return [_to_ndarray(arrays[str(i)], str(i), fname, ctx) for i in range(len(arrays))]
    return {k: _to_ndarray(v, k, fname, ctx) for k, v in arrays.items()}


# pickled NDArrays ----------------------------------------------------------------------
def array_from_state(state: dict):
    """(host array, device) from a pickled NDArray's state: mxcore's (``data``,
    ``shape``, ``dtype``, ``device``) or MXNet's (``handle``: one array in its binary
    format).  A device this machine cannot use gives the CPU, as MXNet does."""
    import hal
    from mxcore.device import device as check_device
    if "handle" in state:  # MXNet's NDArray.__getstate__
        raw = bytes(state["handle"])
        r = mxnet_params._Reader(io.BytesIO(raw), "a pickled MXNet NDArray", len(raw))
        return mxnet_params._read_array(r, set()), "cpu"
    try:
        dtype = hal.to_dtype(state["dtype"])
        host = np.frombuffer(state["data"], dtype=dtype).reshape(state["shape"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MXCoreError(f"cannot unpickle an NDArray from this state: {exc}") from None
    try:
        device = check_device(state.get("device", "cpu"))
    except (hal.DeviceUnavailableError, ValueError):
        device = "cpu"
    return host, device
