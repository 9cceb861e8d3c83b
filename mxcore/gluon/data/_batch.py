"""Batching helpers shared by datasets and the DataLoader (private).

A *numpy batch* is what ``np_batchify`` makes of a list of samples: a numpy
array per field, a list of fields for tuple samples (recursively), a dict for
dict samples.  NDArray leaves appear only where samples were NDArrays outside
host memory (stacked on their device) or where a batch transform produced them.
The main process turns numpy leaves into NDArrays with one ``mx.nd.array`` call
per field (``to_nd``).
"""
from __future__ import annotations

import numpy as np

from mxcore.ndarray.ndarray import NDArray

_CPU = None


def cpu():
    global _CPU
    if _CPU is None:
        import mxcore as mx
        _CPU = mx.cpu()
    return _CPU


def on_host(x: NDArray) -> bool:
    """True when the NDArray's buffer is a host numpy array (the CPU device)."""
    from mxcore.device import device_type
    return bool(device_type(x.context).host_memory)


def np_batchify(data):
    """Stack a list of samples into a numpy batch (see the module docstring)."""
    if not len(data):
        raise ValueError("cannot batchify an empty list of samples")
    first = data[0]
    if isinstance(first, tuple):
        return [np_batchify(field) for field in zip(*data)]
    if isinstance(first, dict):
        return {k: np_batchify([d[k] for d in data]) for k in first}
    if isinstance(first, NDArray):
        if not on_host(first):
            from mxcore import ndarray as nd
            return nd.stack(*data)
        return np.stack([np.asarray(x) for x in data])
    out = np.stack(data) if isinstance(first, np.ndarray) else np.asarray(data)
    if out.dtype.kind in "OUSV":
        raise TypeError(f"default_batchify_fn cannot batch samples of type "
                        f"{type(first).__name__} (numpy dtype {out.dtype}); pass a batchify_fn")
    return out


def to_nd(batch):
    """numpy leaves -> NDArrays on the CPU (dtype kept); NDArrays stay as they are."""
    if isinstance(batch, np.ndarray):
        from mxcore import ndarray as nd
        return nd.array(batch, ctx=cpu(), dtype=batch.dtype)
    if isinstance(batch, list):
        return [to_nd(b) for b in batch]
    if isinstance(batch, dict):
        return {k: to_nd(v) for k, v in batch.items()}
    return batch


def to_np(batch):
    """NDArray leaves -> numpy (for sending a default batch between processes)."""
    if isinstance(batch, NDArray):
        return batch.asnumpy()
    if isinstance(batch, list):
        return [to_np(b) for b in batch]
    if isinstance(batch, dict):
        return {k: to_np(v) for k, v in batch.items()}
    return batch


class NDPayload:
    """An NDArray's data crossing a process boundary (NDArray refuses pickling)."""
    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array

    def __reduce__(self):
        return (NDPayload, (self.array,))


def wrap_nd(obj):
    """Replace NDArrays in the output of a user batchify_fn by NDPayload (worker side)."""
    if isinstance(obj, NDArray):
        return NDPayload(obj.asnumpy())
    if type(obj) in (list, tuple):
        return type(obj)(wrap_nd(o) for o in obj)
    if type(obj) is dict:
        return {k: wrap_nd(v) for k, v in obj.items()}
    return obj


def unwrap_nd(obj):
    """Inverse of wrap_nd (main-process side): NDPayload -> NDArray on the CPU."""
    if isinstance(obj, NDPayload):
        from mxcore import ndarray as nd
        return nd.array(obj.array, ctx=cpu(), dtype=obj.array.dtype)
    if type(obj) in (list, tuple):
        return type(obj)(unwrap_nd(o) for o in obj)
    if type(obj) is dict:
        return {k: unwrap_nd(v) for k, v in obj.items()}
    return obj


def fetch_batch(dataset, indices):
    """A numpy batch from the dataset's fast path, or None when it has none.

    A dataset's ``_get_batch(indices)`` must return exactly what ``np_batchify``
    would make of ``[dataset[i] for i in indices]``, or None to decline.
    """
    getter = getattr(dataset, "_get_batch", None)
    if getter is None:
        return None
    return getter(indices)


def host_array(x):
    """A numpy view of a numpy array or host NDArray; None for anything else."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, NDArray) and on_host(x):
        return np.asarray(x)
    return None
