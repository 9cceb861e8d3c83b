"""Datasets (MXNet ``gluon.data.dataset``).

A dataset has ``__getitem__`` and ``__len__``.  ``transform`` and
``transform_first`` wrap it lazily (or eagerly with ``lazy=False``); ``filter``,
``take``, ``shard`` and ``sample`` select items.

Datasets backed by whole arrays (ArrayDataset, SimpleDataset over an array,
MNIST) also fetch a batch of indices with one fancy-indexing call, which the
DataLoader uses instead of building the batch item by item; the result is the
same as batching the items.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from mxcore.gluon.data import _batch
from mxcore.ndarray.ndarray import NDArray

__all__ = ["Dataset", "SimpleDataset", "ArrayDataset"]


class Dataset:
    """Abstract dataset: subclasses implement ``__getitem__`` and ``__len__``."""

    def __getitem__(self, idx):
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def filter(self, fn: Callable) -> "Dataset":
        """The items for which ``fn(item)`` is true (evaluated once, now)."""
        from mxcore.gluon.data.sampler import FilterSampler
        return _SampledDataset(self, FilterSampler(fn, self))

    def take(self, count: Optional[int]) -> "Dataset":
        """The first ``count`` items (all of them when ``count`` is None or too large)."""
        from mxcore.gluon.data.sampler import SequentialSampler
        if count is None or count > len(self):
            count = len(self)
        if count < 0:
            raise ValueError(f"take: count must be non-negative, got {count}")
        return _SampledDataset(self, SequentialSampler(count))

    def shard(self, num_shards: int, index: int) -> "Dataset":
        """Part ``index`` of ``num_shards`` contiguous parts whose lengths differ by at most 1."""
        from mxcore.gluon.data.sampler import SequentialSampler
        if not 0 <= index < num_shards:
            raise ValueError(f"shard index {index} out of range for {num_shards} shards")
        length = len(self)
        shard_len, rest = divmod(length, num_shards)
        start = shard_len * index + min(index, rest)
        end = start + shard_len + (index < rest)
        return _SampledDataset(self, SequentialSampler(end - start, start))

    def sample(self, sampler) -> "Dataset":
        """The items at the indices ``sampler`` yields (drawn once, now)."""
        return _SampledDataset(self, sampler)

    def transform(self, fn: Callable, lazy: bool = True) -> "Dataset":
        """Apply ``fn`` to every item: ``fn(*item)`` for tuple items, else ``fn(item)``.

        With ``lazy=True`` the function runs when an item is read; with
        ``lazy=False`` every item is transformed now into a SimpleDataset.
        """
        trans = _LazyTransformDataset(self, fn)
        if lazy:
            return trans
        return SimpleDataset([trans[i] for i in range(len(trans))])

    def transform_first(self, fn: Callable, lazy: bool = True) -> "Dataset":
        """Apply ``fn`` to the first element of each item (the data; labels unchanged)."""
        return self.transform(_TransformFirstClosure(fn), lazy)


class SimpleDataset(Dataset):
    """A dataset over any object with ``__getitem__`` and ``__len__`` (list, array)."""

    def __init__(self, data):
        self._data = data

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, idx):
        return self._data[idx]

    def _get_batch(self, indices):
        if type(self).__getitem__ is not SimpleDataset.__getitem__:
            return None
        arr = _batch.host_array(self._data)
        if arr is None or arr.ndim == 0:
            return None
        return arr[np.asarray(indices, dtype=np.intp)]


class _LazyTransformDataset(Dataset):
    def __init__(self, data, fn: Callable):
        self._data = data
        self._fn = fn

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, idx):
        item = self._data[idx]
        if isinstance(item, tuple):
            return self._fn(*item)
        return self._fn(item)

    def _get_batch(self, indices):
        # Only mxcore's own transforms (ToTensor, Normalize, Cast, Compose of them)
        # declare that applying them to a stacked batch equals stacking their results.
        if type(self).__getitem__ is not _LazyTransformDataset.__getitem__:
            return None
        fn = self._fn
        first = type(fn) is _TransformFirstClosure
        inner = fn._fn if first else fn
        batchable = getattr(inner, "_batchable", None)
        if batchable is None or not callable(batchable) or not batchable():
            return None
        base = _batch.fetch_batch(self._data, indices)
        if base is None or isinstance(base, dict):
            return None
        if isinstance(base, list):
            if not first or not base:
                return None
            return [inner._forward_batch(_as_nd(base[0]))] + base[1:]
        return inner._forward_batch(_as_nd(base))


def _as_nd(x):
    if isinstance(x, NDArray):
        return x
    from mxcore import ndarray as nd
    return nd.array(x, ctx=_batch.cpu(), dtype=x.dtype)


class _TransformFirstClosure:
    """Picklable ``lambda x, *args: (fn(x),) + args``."""

    def __init__(self, fn: Callable):
        self._fn = fn

    def __call__(self, x, *args):
        if args:
            return (self._fn(x),) + args
        return self._fn(x)


class _SampledDataset(Dataset):
    """The items of ``dataset`` at the indices of ``sampler`` (drawn at construction)."""

    def __init__(self, dataset, sampler):
        self._dataset = dataset
        self._sampler = sampler
        self._indices = list(iter(sampler))

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, idx):
        return self._dataset[self._indices[idx]]

    def _get_batch(self, indices):
        if type(self).__getitem__ is not _SampledDataset.__getitem__:
            return None
        ind = self._indices
        return _batch.fetch_batch(self._dataset, [ind[i] for i in indices])


class ArrayDataset(Dataset):
    """Several arrays of the same length; item ``i`` is the tuple of their ``i``-th
    elements, or the element itself when there is only one array.

    Accepts numpy arrays, NDArrays, lists and any other sequence.  A 1-D NDArray
    is converted to numpy (as MXNet does), so its items are numpy scalars.
    """

    def __init__(self, *args):
        if not args:
            raise ValueError("ArrayDataset needs at least 1 array")
        self._length = len(args[0])
        self._data = []
        for i, data in enumerate(args):
            if len(data) != self._length:
                raise ValueError(f"all arrays must have the same length; array[0] has length "
                                 f"{self._length} while array[{i}] has {len(data)}")
            if isinstance(data, NDArray) and data.ndim == 1:
                data = data.asnumpy()
            self._data.append(data)

    def __getitem__(self, idx):
        if len(self._data) == 1:
            return self._data[0][idx]
        return tuple(data[idx] for data in self._data)

    def __len__(self) -> int:
        return self._length

    def _get_batch(self, indices):
        if type(self).__getitem__ is not ArrayDataset.__getitem__:
            return None
        idx = np.asarray(indices, dtype=np.intp)
        fields = []
        for data in self._data:
            arr = _batch.host_array(data)
            if arr is not None:
                fields.append(arr[idx])
            elif isinstance(data, NDArray):
                return None  # on a device: item-wise path stacks there
            else:
                fields.append(_batch.np_batchify([data[i] for i in indices]))
        return fields[0] if len(fields) == 1 else fields
