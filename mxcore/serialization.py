"""Tensor files: safetensors for arrays, JSON-able string metadata, atomic
writes.  Loading a file never runs code (no pickle anywhere)."""
from __future__ import annotations

import os
import tempfile
from typing import Dict, Optional, Tuple

import numpy as np

from mxcore.base import MXCoreError


def save_arrays(path: str, arrays: Dict[str, np.ndarray],
                metadata: Optional[Dict[str, str]] = None) -> None:
    """Write ``arrays`` to ``path`` atomically: a temp file in the same folder
    is renamed over the target only once it is complete."""
    from safetensors.numpy import save_file
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, tmp,
                  metadata={k: str(v) for k, v in (metadata or {}).items()})
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_arrays(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Read every array and the metadata of a safetensors file; a truncated or
    corrupted file raises MXCoreError naming it."""
    from safetensors import safe_open
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with safe_open(path, framework="numpy") as f:
            meta = dict(f.metadata() or {})
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types
        raise MXCoreError(f"cannot read {path}: not a complete safetensors file "
                          f"({type(exc).__name__}: {exc})") from exc
    return arrays, meta


def save(fname: str, data) -> None:
    """``mx.nd.save``: an NDArray, a list of them or a dict name -> NDArray."""
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
    save_arrays(fname, arrays, {"format": "mxcore-ndarrays", "container": kind})


def load(fname: str, ctx=None):
    """``mx.nd.load``: what ``save`` wrote (a list or a dict of NDArrays)."""
    from mxcore.ops.creation import array
    arrays, meta = load_arrays(fname)
    if meta.get("container") == "list":
        return [array(arrays[str(i)], ctx=ctx) for i in range(len(arrays))]
    return {k: array(v, ctx=ctx) for k, v in arrays.items()}
