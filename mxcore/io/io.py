"""Data iterators of MXNet 1.x's symbolic API: ``DataDesc``, ``DataBatch``,
``DataIter`` and ``NDArrayIter`` (what ``mx.mod.Module.fit`` consumes).  Gluon code
uses ``gluon.data.DataLoader`` instead."""
from __future__ import annotations

from collections import namedtuple
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mxcore.base import MXCoreError


class DataDesc(namedtuple("DataDesc", ["name", "shape"])):
    """An input's name and shape, with its dtype and layout (``NCHW``...)."""

    def __new__(cls, name: str, shape, dtype=np.float32, layout: str = "NCHW"):
        ret = super().__new__(cls, name, tuple(shape))
        ret.dtype = dtype
        ret.layout = layout
        return ret

    def __repr__(self) -> str:
        return f"DataDesc[{self.name},{self.shape},{self.dtype},{self.layout}]"

    @staticmethod
    def get_batch_axis(layout: Optional[str]) -> int:
        """The position of ``N`` in ``layout`` (0 when there is no layout)."""
        return 0 if layout is None else layout.find("N")

    @staticmethod
    def get_list(shapes, types) -> List["DataDesc"]:
        if types is not None:
            type_dict = dict(types)
            return [DataDesc(x[0], x[1], type_dict[x[0]]) for x in shapes]
        return [DataDesc(x[0], x[1]) for x in shapes]


class DataBatch:
    """One batch: lists of data and label arrays, the padding count of a last batch."""

    def __init__(self, data, label=None, pad=None, index=None, bucket_key=None,
                 provide_data=None, provide_label=None):
        if data is not None and not isinstance(data, (list, tuple)):
            raise MXCoreError("DataBatch: data must be a list of NDArrays")
        if label is not None and not isinstance(label, (list, tuple)):
            raise MXCoreError("DataBatch: label must be a list of NDArrays")
        self.data = data
        self.label = label
        self.pad = pad
        self.index = index
        self.bucket_key = bucket_key
        self.provide_data = provide_data
        self.provide_label = provide_label

    def __str__(self) -> str:
        shapes = [d.shape for d in self.data]
        lshapes = [d.shape for d in self.label] if self.label else None
        return f"{type(self).__name__}: data shapes: {shapes} label shapes: {lshapes}"


class DataIter:
    """Base class: ``next()`` gives a DataBatch until ``StopIteration``; ``reset()``."""

    def __init__(self, batch_size: int = 0):
        self.batch_size = batch_size

    def __iter__(self):
        return self

    def reset(self) -> None:
        pass

    def next(self) -> DataBatch:
        if self.iter_next():
            return DataBatch(data=self.getdata(), label=self.getlabel(), pad=self.getpad(),
                             index=self.getindex())
        raise StopIteration

    def __next__(self) -> DataBatch:
        return self.next()

    def iter_next(self) -> bool:
        raise NotImplementedError

    def getdata(self):
        raise NotImplementedError

    def getlabel(self):
        raise NotImplementedError

    def getindex(self):
        return None

    def getpad(self):
        raise NotImplementedError


def _init_data(data, allow_empty: bool, default_name: str) -> List[Tuple[str, Any]]:
    """MXNet's normalisation of iterator inputs: an array, a list (names ``_0_data``...)
    or a dict, as a name-sorted list of (name, NDArray)."""
    from mxcore import ndarray as nd
    if data is None:
        data = []
    if isinstance(data, (np.ndarray, nd.NDArray)) or hasattr(data, "__array__") and \
            not isinstance(data, (list, tuple, dict)):
        data = [data]
    if isinstance(data, (list, tuple)):
        if not allow_empty and not data:
            raise MXCoreError("NDArrayIter: data must not be empty")
        if len(data) == 1:
            data = {default_name: data[0]}
        else:
            data = {f"_{i}_{default_name}": d for i, d in enumerate(data)}
    if not isinstance(data, dict):
        raise TypeError("Input must be NDArray, numpy.ndarray, a list of them or a dict "
                        "with them as values")
    out = {}
    for name, value in data.items():
        if not isinstance(value, nd.NDArray):
            value = nd.array(np.asarray(value), dtype=np.asarray(value).dtype)
        out[name] = value
    return sorted(out.items())


class NDArrayIter(DataIter):
    """Batches over in-memory arrays (MXNet 1.x's NDArrayIter).

    ``last_batch_handle``: ``'pad'`` fills the last batch from the start of the data
    (``batch.pad`` says how many), ``'discard'`` drops it, ``'roll_over'`` carries the
    remainder into the next epoch.  ``shuffle`` reorders the samples at the start and on
    every ``reset``."""

    def __init__(self, data, label=None, batch_size: int = 1, shuffle: bool = False,
                 last_batch_handle: str = "pad", data_name: str = "data",
                 label_name: str = "softmax_label"):
        super().__init__(batch_size)
        if last_batch_handle not in ("pad", "discard", "roll_over"):
            raise MXCoreError("NDArrayIter: last_batch_handle must be 'pad', 'discard' or "
                              f"'roll_over', got {last_batch_handle!r}")
        if batch_size < 1:
            raise MXCoreError(f"NDArrayIter: batch_size must be positive, got {batch_size}")
        self.data = _init_data(data, allow_empty=False, default_name=data_name)
        self.label = _init_data(label, allow_empty=True, default_name=label_name)
        self.num_data = self.data[0][1].shape[0]
        for name, arr in self.data + self.label:
            # as in MXNet, labels may be longer than the data (the first rows are used)
            if arr.shape[0] < self.num_data or (arr.shape[0] != self.num_data and
                                                 (name, arr) in self.data):
                raise MXCoreError(f"NDArrayIter: {name!r} has {arr.shape[0]} samples where "
                                  f"the data has {self.num_data}")
        if last_batch_handle == "discard" and self.num_data < batch_size:
            raise MXCoreError(f"NDArrayIter: batch_size {batch_size} is larger than the "
                              f"{self.num_data} samples, and last_batch_handle='discard'")
        self.idx = np.arange(self.num_data)
        self.shuffle = shuffle
        self.last_batch_handle = last_batch_handle
        self.cursor = -batch_size
        self._cache_data: Optional[List[Any]] = None
        self._cache_label: Optional[List[Any]] = None
        if shuffle:
            self._shuffle_data()
        self.reset()

    @property
    def provide_data(self) -> List[DataDesc]:
        return [DataDesc(k, (self.batch_size,) + tuple(v.shape[1:]), np.dtype(v.dtype).type)
                for k, v in self.data]

    @property
    def provide_label(self) -> List[DataDesc]:
        return [DataDesc(k, (self.batch_size,) + tuple(v.shape[1:]), np.dtype(v.dtype).type)
                for k, v in self.label]

    def hard_reset(self) -> None:
        """Back to the start, dropping anything rolled over."""
        if self.shuffle:
            self._shuffle_data()
        self.cursor = -self.batch_size
        self._cache_data = None
        self._cache_label = None

    def reset(self) -> None:
        if self.shuffle:
            self._shuffle_data()
        if self.last_batch_handle == "roll_over" and \
                self.num_data - self.batch_size < self.cursor < self.num_data:
            # the remainder starts the next epoch
            self.cursor = self.cursor - self.num_data - self.batch_size
        else:
            self.cursor = -self.batch_size

    def iter_next(self) -> bool:
        self.cursor += self.batch_size
        return self.cursor < self.num_data

    def next(self) -> DataBatch:
        if not self.iter_next():
            raise StopIteration
        data = self.getdata()
        label = self.getlabel()
        if data[0].shape[0] != self.batch_size:  # a short last batch
            if self.last_batch_handle == "discard":
                raise StopIteration
            if self.last_batch_handle == "roll_over":
                self._cache_data, self._cache_label = data, label
                raise StopIteration
        return DataBatch(data=data, label=label, pad=self.getpad(), index=None)

    def _rows(self, arrays, start: int, end: int) -> List[Any]:
        from mxcore import ndarray as nd
        out = []
        for _, arr in arrays:
            rows = self.idx[start:end]
            if self.shuffle or not _contiguous(rows):
                out.append(nd.take(arr, nd.array(rows, dtype="int64", ctx=arr.context)))
            else:
                out.append(arr[int(rows[0]):int(rows[-1]) + 1].copy() if len(rows) else
                           arr[0:0])
        return out

    def _batch(self, arrays, cache) -> List[Any]:
        from mxcore import ndarray as nd
        if self.cursor < 0:  # the rolled-over remainder, then the start of this epoch
            if cache is None:
                raise MXCoreError("NDArrayIter: nothing was rolled over")
            head = self._rows(arrays, 0, self.cursor + self.batch_size)
            return [nd.concat(c, h, dim=0) for c, h in zip(cache, head)]
        end = self.cursor + self.batch_size
        if end <= self.num_data or self.last_batch_handle != "pad":
            return self._rows(arrays, self.cursor, min(end, self.num_data))
        # pad: wrap around to the start of the data
        first = self._rows(arrays, self.cursor, self.num_data)
        second = self._rows(arrays, 0, end - self.num_data)
        return [nd.concat(a, b, dim=0) for a, b in zip(first, second)]

    def getdata(self) -> List[Any]:
        return self._batch(self.data, self._cache_data)

    def getlabel(self) -> List[Any]:
        return self._batch(self.label, self._cache_label)

    def getpad(self) -> int:
        if self.last_batch_handle == "pad" and self.cursor + self.batch_size > self.num_data:
            return self.cursor + self.batch_size - self.num_data
        if self.last_batch_handle == "roll_over" and -self.batch_size < self.cursor < 0:
            return -self.cursor
        return 0

    def _shuffle_data(self) -> None:
        np.random.shuffle(self.idx)


def _contiguous(rows) -> bool:
    return len(rows) == 0 or (rows[-1] - rows[0] + 1 == len(rows) and
                              bool(np.all(np.diff(rows) == 1)))


class ResizeIter(DataIter):
    """``size`` batches per epoch from ``data_iter``, restarting it as needed."""

    def __init__(self, data_iter: DataIter, size: int, reset_internal: bool = True):
        super().__init__(data_iter.batch_size)
        self.data_iter = data_iter
        self.size = size
        self.reset_internal = reset_internal
        self.cur = 0
        self.current_batch = None
        self.provide_data = data_iter.provide_data
        self.provide_label = data_iter.provide_label

    def reset(self) -> None:
        self.cur = 0
        if self.reset_internal:
            self.data_iter.reset()

    def iter_next(self) -> bool:
        if self.cur == self.size:
            return False
        try:
            self.current_batch = self.data_iter.next()
        except StopIteration:
            self.data_iter.reset()
            self.current_batch = self.data_iter.next()
        self.cur += 1
        return True

    def getdata(self):
        return self.current_batch.data

    def getlabel(self):
        return self.current_batch.label

    def getindex(self):
        return self.current_batch.index

    def getpad(self):
        return self.current_batch.pad
