"""gluon.data: datasets, samplers, batchify and the DataLoader (0 workers, processes, threads)."""
from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time

import numpy as np
import pytest

import mxcore as mx
from mxcore.gluon import data as gdata
from mxcore.gluon.data import (ArrayDataset, BatchSampler, DataLoader, FilterSampler,
                               IntervalSampler, RandomSampler, SequentialSampler, SimpleDataset,
                               default_batchify_fn)
from mxcore.gluon.data.dataloader import DataLoaderWorkerError
from mxcore.gluon.data.vision import transforms as T
from mxcore.ndarray.ndarray import NDArray


@pytest.fixture(autouse=True)
def _no_leftover_workers():
    yield
    assert multiprocessing.active_children() == []


def _np(batch):
    """NDArrays (possibly nested in lists) -> numpy, for comparisons."""
    if isinstance(batch, NDArray):
        return batch.asnumpy()
    if isinstance(batch, (list, tuple)):
        return [_np(b) for b in batch]
    return batch


def _assert_same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        x, y = _np(x), _np(y)
        if isinstance(x, list):
            assert len(x) == len(y)
            for u, v in zip(x, y):
                assert u.dtype == v.dtype
                np.testing.assert_array_equal(u, v)
        else:
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)


def _toy(n=23):
    x = np.arange(n * 6, dtype=np.float32).reshape(n, 2, 3)
    y = np.arange(n, dtype=np.int32) % 4
    return x, y


# datasets --------------------------------------------------------------------------------
def test_array_dataset_items_and_lengths():
    x, y = _toy()
    ds = ArrayDataset(x, mx.nd.array(y, dtype=y.dtype), list(range(23)))
    assert len(ds) == 23
    a, b, c = ds[5]
    np.testing.assert_array_equal(a, x[5])
    assert isinstance(b, np.integer) and b == y[5]  # a 1-D NDArray becomes numpy
    assert c == 5
    single = ArrayDataset(x)
    np.testing.assert_array_equal(single[3], x[3])
    nd2 = ArrayDataset(mx.nd.array(x))
    assert isinstance(nd2[1], NDArray) and nd2[1].shape == (2, 3)
    with pytest.raises(ValueError, match="same length"):
        ArrayDataset(x, y[:5])
    with pytest.raises(ValueError):
        ArrayDataset()


def test_simple_dataset_take_filter_shard_sample():
    ds = SimpleDataset(list(range(10)))
    assert len(ds) == 10 and ds[4] == 4
    assert [ds.take(3)[i] for i in range(3)] == [0, 1, 2]
    assert len(ds.take(100)) == 10 and len(ds.take(None)) == 10
    even = ds.filter(lambda v: v % 2 == 0)
    assert len(even) == 5 and [even[i] for i in range(5)] == [0, 2, 4, 6, 8]
    shards = [ds.shard(3, i) for i in range(3)]
    assert [len(s) for s in shards] == [4, 3, 3]
    assert [s[j] for s in shards for j in range(len(s))] == list(range(10))
    sampled = ds.sample(IntervalSampler(10, 3))
    assert [sampled[i] for i in range(10)] == [0, 3, 6, 9, 1, 4, 7, 2, 5, 8]


def test_transform_lazy_and_eager():
    calls = []

    def double(x, y):
        calls.append(1)
        return x * 2, y

    ds = ArrayDataset(np.arange(5), np.arange(5) + 10)
    lazy = ds.transform(double)
    assert calls == []
    assert lazy[2] == (4, 12) and len(calls) == 1
    calls.clear()
    eager = ds.transform(double, lazy=False)
    assert len(calls) == 5 and isinstance(eager, SimpleDataset)
    assert eager[3] == (6, 13) and len(calls) == 5
    first = ds.transform_first(lambda x: -x)
    assert first[1] == (-1, 11)
    assert ds.transform_first(lambda x: -x, lazy=False)[4] == (-4, 14)
    single = SimpleDataset([1, 2, 3]).transform_first(lambda x: x + 100)
    assert single[0] == 101
    assert SimpleDataset([1, 2, 3]).transform(lambda x: x * 3)[2] == 9


# samplers --------------------------------------------------------------------------------
def test_sequential_interval_filter_samplers():
    assert list(SequentialSampler(4)) == [0, 1, 2, 3]
    assert list(SequentialSampler(3, start=5)) == [5, 6, 7] and len(SequentialSampler(3, 5)) == 3
    s = IntervalSampler(7, 3, rollover=False)
    assert list(s) == [0, 3, 6] and len(s) == 3
    assert len(IntervalSampler(7, 3)) == 7
    f = FilterSampler(lambda v: v > 2, [1, 5, 2, 7])
    assert list(f) == [1, 3] and len(f) == 2


def test_random_sampler_reproducible_and_leaves_numpy_alone():
    s = RandomSampler(50)
    state = np.random.get_state()[1].copy()
    mx.random.seed(7)
    e1, e2 = list(s), list(s)
    mx.random.seed(7)
    assert list(s) == e1 and list(s) == e2
    assert e1 != e2  # a new permutation each epoch
    assert sorted(e1) == list(range(50)) and all(type(i) is int for i in e1)
    mx.random.seed(8)
    assert list(s) != e1
    np.testing.assert_array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("last_batch,expected", [
    ("keep", [[0, 1, 2], [3, 4, 5], [6]]),
    ("discard", [[0, 1, 2], [3, 4, 5]]),
])
def test_batch_sampler_keep_discard(last_batch, expected):
    bs = BatchSampler(SequentialSampler(7), 3, last_batch)
    assert list(bs) == expected and len(bs) == len(expected)
    assert list(bs) == expected  # same again next epoch


def test_batch_sampler_rollover():
    bs = BatchSampler(SequentialSampler(7), 3, "rollover")
    assert len(bs) == 2
    assert list(bs) == [[0, 1, 2], [3, 4, 5]]
    assert len(bs) == 2  # 1 carried + 7 = 8 -> 2
    assert list(bs) == [[6, 0, 1], [2, 3, 4]]
    assert len(bs) == 3  # 2 carried + 7 = 9 -> 3
    assert list(bs) == [[5, 6, 0], [1, 2, 3], [4, 5, 6]]


def test_batch_sampler_checks_arguments():
    with pytest.raises(ValueError, match="last_batch"):
        BatchSampler(SequentialSampler(3), 2, "bogus")
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(SequentialSampler(3), 0)


# batchify --------------------------------------------------------------------------------
def test_default_batchify_dtypes_and_tuples():
    samples = [(np.full((2, 2), i, np.uint8), i, float(i) / 2, mx.nd.ones((3,)) * i,
                (np.int32(i), np.float16(i)))
               for i in range(4)]
    img, label, flt, ndv, (i32, f16) = default_batchify_fn(samples)
    for b in (img, label, flt, ndv, i32, f16):
        assert isinstance(b, NDArray) and b.context == mx.cpu()
    assert img.shape == (4, 2, 2) and img.dtype == np.uint8
    assert label.dtype == np.int64 and label.asnumpy().tolist() == [0, 1, 2, 3]
    assert flt.dtype == np.float64
    assert ndv.shape == (4, 3) and ndv.dtype == np.float32
    np.testing.assert_array_equal(ndv.asnumpy()[:, 0], [0, 1, 2, 3])
    assert i32.dtype == np.int32 and f16.dtype == np.float16
    d = default_batchify_fn([{"a": np.int32(1), "b": np.zeros(2)}, {"a": np.int32(2),
                                                                    "b": np.ones(2)}])
    assert d["a"].dtype == np.int32 and d["b"].shape == (2, 2)
    with pytest.raises(TypeError, match="batchify"):
        default_batchify_fn(["a", "b"])


# DataLoader in the main process ----------------------------------------------------------
def test_dataloader_basic_and_last_batch():
    x, y = _toy(23)
    ds = ArrayDataset(x, y)
    loader = DataLoader(ds, batch_size=5)
    batches = list(loader)
    assert len(loader) == 5 and len(batches) == 5
    data, label = batches[0]
    assert data.shape == (5, 2, 3) and data.dtype == np.float32 and label.dtype == np.int32
    assert batches[-1][0].shape == (3, 2, 3)
    np.testing.assert_array_equal(np.concatenate([b[0].asnumpy() for b in batches]), x)
    assert len(DataLoader(ds, batch_size=5, last_batch="discard")) == 4
    assert len(list(DataLoader(ds, batch_size=5, last_batch="discard"))) == 4
    roll = DataLoader(ds, batch_size=5, last_batch="rollover")
    assert len(list(roll)) == 4
    first = list(roll)[0][1].asnumpy()
    np.testing.assert_array_equal(first, np.r_[y[20:], y[:2]])


def test_dataloader_argument_checks():
    ds = SimpleDataset(list(range(4)))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds)
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(ds, batch_size=2, shuffle=True, sampler=SequentialSampler(4))
    with pytest.raises(ValueError, match="batch_sampler"):
        DataLoader(ds, batch_size=2, batch_sampler=BatchSampler(SequentialSampler(4), 2))
    with pytest.raises(ValueError, match="timeout"):
        DataLoader(ds, batch_size=2, timeout=0)
    bl = DataLoader(ds, batch_sampler=BatchSampler(SequentialSampler(4), 3))
    assert [b.asnumpy().tolist() for b in bl] == [[0, 1, 2], [3]]


def test_dataloader_custom_batchify_and_pin_memory():
    ds = SimpleDataset(list(range(6)))
    loader = DataLoader(ds, batch_size=4, batchify_fn=lambda items: sum(items))
    assert list(loader) == [6, 9]
    pinned = list(DataLoader(ds, batch_size=3, pin_memory=True))
    assert pinned[0].context == mx.cpu()


class _ItemWise(ArrayDataset):
    """Same items as ArrayDataset, through an overridden __getitem__ (no fast path)."""

    def __getitem__(self, idx):
        return super().__getitem__(idx)


class _Plus1(ArrayDataset):
    def __getitem__(self, idx):
        x, y = super().__getitem__(idx)
        return x + 1, y


def test_fast_paths_match_item_wise_batching():
    x = np.random.default_rng(0).integers(0, 255, (20, 4, 4, 1)).astype(np.uint8)
    y = np.arange(20, dtype=np.int32)
    fast, slow = ArrayDataset(x, y), _ItemWise(x, y)
    sampler = BatchSampler(IntervalSampler(20, 3), 6)
    _assert_same_batches(list(DataLoader(fast, batch_sampler=sampler)),
                         list(DataLoader(slow, batch_sampler=sampler)))
    # a subclass that changes items is honoured
    plus = list(DataLoader(_Plus1(x, y), batch_size=20))[0][0].asnumpy()
    np.testing.assert_array_equal(plus, x + 1)
    # through take / filter / transform_first with batchable transforms
    t = T.Compose([T.ToTensor(), T.Normalize(0.5, 0.25)])
    a = fast.take(15).filter(lambda s: s[1] % 2 == 0).transform_first(t)
    b = slow.take(15).filter(lambda s: s[1] % 2 == 0).transform_first(lambda v: t(v))
    _assert_same_batches(list(DataLoader(a, batch_size=3)), list(DataLoader(b, batch_size=3)))
    # single arrays and SimpleDataset over an array
    _assert_same_batches(list(DataLoader(ArrayDataset(x), batch_size=7)),
                         list(DataLoader(SimpleDataset(list(x)), batch_size=7)))
    _assert_same_batches(list(DataLoader(SimpleDataset(mx.nd.array(x, dtype=x.dtype)), batch_size=7)),
                         list(DataLoader(SimpleDataset(list(x)), batch_size=7)))


def test_shuffle_reproducible_under_seed():
    x, y = _toy(30)
    loader = DataLoader(ArrayDataset(x, y), batch_size=4, shuffle=True)
    mx.random.seed(11)
    a = [b[1].asnumpy() for b in loader] + [b[1].asnumpy() for b in loader]
    mx.random.seed(11)
    b = [b[1].asnumpy() for b in loader] + [b[1].asnumpy() for b in loader]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    order = np.concatenate([t[0].asnumpy()[:, 0, 0] // 6 for t in loader]).astype(int)
    assert sorted(order.tolist()) == list(range(30)) and order.tolist() != list(range(30))


# worker processes ------------------------------------------------------------------------
class _Slow(SimpleDataset):
    """Item-wise only, with a small random delay so that workers finish out of order."""

    def __getitem__(self, idx):
        time.sleep((idx * 7919 % 5) * 0.001)
        v = self._data[idx]
        return np.full((2,), v, np.float32), np.int32(v)


class _Failing(SimpleDataset):
    def __getitem__(self, idx):
        if idx == 9:
            raise ValueError(f"bad sample {idx} from pid {os.getpid()}")
        return np.float32(idx)


class _Exits(SimpleDataset):
    def __getitem__(self, idx):
        if idx == 4:
            os._exit(3)
        return np.float32(idx)


class _Sleeps(SimpleDataset):
    def __getitem__(self, idx):
        time.sleep(30)
        return np.float32(idx)


class _Pid(SimpleDataset):
    def __getitem__(self, idx):
        return np.int64(os.getpid()), np.float64(np.random.random())


def test_workers_same_batches_in_order():
    ds = _Slow(list(range(37)))
    ref = list(DataLoader(ds, batch_size=3))
    got = list(DataLoader(ds, batch_size=3, num_workers=2))
    _assert_same_batches(got, ref)
    got = list(DataLoader(ds, batch_size=3, num_workers=2, prefetch=1, last_batch="discard"))
    _assert_same_batches(got, ref[:-1])
    x, y = _toy(25)
    arr = ArrayDataset(x, y)
    for shuffle in (False, True):
        mx.random.seed(5)
        ref = list(DataLoader(arr, batch_size=4, shuffle=shuffle))
        mx.random.seed(5)
        got = list(DataLoader(arr, batch_size=4, shuffle=shuffle, num_workers=2))
        _assert_same_batches(got, ref)


def test_workers_transform_and_custom_batchify():
    x = np.random.default_rng(1).integers(0, 255, (10, 5, 5, 3)).astype(np.uint8)
    ds = ArrayDataset(x, np.arange(10)).transform_first(T.ToTensor())
    ref = list(DataLoader(ds, batch_size=4))
    _assert_same_batches(list(DataLoader(ds, batch_size=4, num_workers=2)), ref)
    assert ref[0][0].shape == (4, 3, 5, 5) and ref[0][0].dtype == np.float32

    def batchify(items):
        data = mx.nd.stack(*[it[0] for it in items])
        return {"data": data, "n": len(items), "labels": [int(it[1]) for it in items]}

    out = list(DataLoader(ds, batch_size=4, batchify_fn=batchify, num_workers=2))
    assert [o["n"] for o in out] == [4, 4, 2]
    assert isinstance(out[0]["data"], NDArray) and out[0]["data"].context == mx.cpu()
    np.testing.assert_array_equal(out[1]["data"].asnumpy(), ref[1][0].asnumpy())
    assert out[2]["labels"] == [8, 9]


def test_workers_shut_down_cleanly():
    ds = _Slow(list(range(40)))
    loader = DataLoader(ds, batch_size=2, num_workers=2)
    assert len(list(loader)) == 20
    assert multiprocessing.active_children() == []
    for i, _ in enumerate(loader):  # early break
        if i == 2:
            break
    assert multiprocessing.active_children() == []
    it = iter(loader)
    next(it)
    assert len(multiprocessing.active_children()) == 2
    del it, loader
    gc.collect()
    assert multiprocessing.active_children() == []
    it = iter(DataLoader(ds, batch_size=2, num_workers=2))
    next(it)
    it.close()
    assert multiprocessing.active_children() == []
    with pytest.raises(StopIteration):
        next(it)


def test_worker_exception_propagates():
    loader = DataLoader(_Failing(list(range(20))), batch_size=4, num_workers=2)
    with pytest.raises(ValueError, match="bad sample 9 from pid") as info:
        list(loader)
    assert str(os.getpid()) not in str(info.value)  # raised in a worker
    assert "Traceback" in str(info.value.__cause__) and "test_data.py" in str(info.value.__cause__)
    assert multiprocessing.active_children() == []


def test_worker_death_and_timeout():
    with pytest.raises(DataLoaderWorkerError, match="exited unexpectedly.*exit code 3"):
        list(DataLoader(_Exits(list(range(12))), batch_size=2, num_workers=2))
    assert multiprocessing.active_children() == []
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="within 0.3 seconds"):
        list(DataLoader(_Sleeps(list(range(4))), batch_size=2, num_workers=1, timeout=0.3))
    assert time.monotonic() - t0 < 10


def test_workers_are_seeded_differently_and_reproducibly():
    ds = _Pid([0] * 8)
    mx.random.seed(3)
    a = list(DataLoader(ds, batch_size=1, num_workers=2))
    mx.random.seed(3)
    b = list(DataLoader(ds, batch_size=1, num_workers=2))
    pids = {int(p.asscalar()) for p, _ in a}
    assert len(pids) == 2 and os.getpid() not in pids
    ra = [float(r.asscalar()) for _, r in a]
    assert ra == [float(r.asscalar()) for _, r in b]
    assert ra[0] != ra[1]  # two workers, two streams


def test_spawn_start_method(monkeypatch):
    monkeypatch.setenv("MXCORE_DATALOADER_START_METHOD", "spawn")
    x, y = _toy(9)
    ds = ArrayDataset(x, y)
    _assert_same_batches(list(DataLoader(ds, batch_size=4, num_workers=1)),
                         list(DataLoader(ds, batch_size=4)))
    # NDArrays pickle (by value); a lock does not
    nd_ds = ArrayDataset(mx.nd.array(x))
    _assert_same_batches(list(DataLoader(nd_ds, batch_size=4, num_workers=1)),
                         list(DataLoader(nd_ds, batch_size=4)))
    with pytest.raises(TypeError, match="picklable"):
        iter(DataLoader(_Locked(), batch_size=4, num_workers=1))


class _Locked:
    """A dataset that cannot be pickled (it holds a lock)."""

    def __init__(self):
        self.lock = threading.Lock()

    def __getitem__(self, i):
        return i

    def __len__(self):
        return 8


# threads ---------------------------------------------------------------------------------
def test_thread_pool():
    ds = _Slow(list(range(21)))
    ref = list(DataLoader(ds, batch_size=4))
    _assert_same_batches(list(DataLoader(ds, batch_size=4, num_workers=3, thread_pool=True)),
                         ref)
    loader = DataLoader(_Failing(list(range(20))), batch_size=4, num_workers=2,
                        thread_pool=True)
    with pytest.raises(ValueError, match="bad sample 9"):
        list(loader)
    for i, _ in enumerate(DataLoader(ds, batch_size=1, num_workers=2, thread_pool=True)):
        if i == 1:
            break


# auto_reload: the next pass starts when one ends ---------------------------------------
class _Logged(SimpleDataset):
    """Records which samples were read (threads share the log)."""

    def __init__(self, data):
        super().__init__(data)
        self.log = []

    def __getitem__(self, idx):
        self.log.append(idx)
        return np.float32(self._data[idx])


def _wait_for(cond, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    return cond()


def test_auto_reload_prefetches_with_threads():
    ds = _Logged(list(range(10)))
    lazy = DataLoader(ds, batch_size=2, num_workers=1, thread_pool=True)
    time.sleep(0.1)
    assert ds.log == [] and lazy._iter is None      # MXNet 1.9.1's default: no prefetch
    ref = [b.asnumpy().tolist() for b in lazy]
    assert ref == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]] and lazy._iter is None

    ds = _Logged(list(range(10)))
    loader = DataLoader(ds, batch_size=2, num_workers=1, thread_pool=True, prefetch=2,
                        auto_reload=True)
    assert _wait_for(lambda: len(ds.log) >= 4)      # loading began at construction
    assert sorted(ds.log[:4]) == [0, 1, 2, 3]
    for epoch in range(2):
        assert [b.asnumpy().tolist() for b in loader] == ref
        assert loader._iter is not None              # the next pass is already loading
    loader.clean()
    assert loader._iter is None
    assert [b.asnumpy().tolist() for b in loader] == ref
    loader.auto_reload = False
    loader.clean()


def test_auto_reload_with_processes_and_in_process():
    x, y = _toy(11)
    ds = ArrayDataset(x, y)
    ref = list(DataLoader(ds, batch_size=4))
    for workers in (0, 2):
        loader = DataLoader(ds, batch_size=4, num_workers=workers, auto_reload=True)
        for _ in range(3):
            _assert_same_batches(list(loader), ref)
        # a pass broken off stops (its workers with it); the next iter() starts afresh
        it = iter(loader)
        next(it)
        del it
        _assert_same_batches(list(loader), ref)
        loader.refresh()
        _assert_same_batches(list(loader), ref)
        del loader        # its prefetched pass's workers stop with it
        gc.collect()
    assert _wait_for(lambda: multiprocessing.active_children() == [])


def test_exports():
    for name in ("Dataset", "SimpleDataset", "ArrayDataset", "Sampler", "SequentialSampler",
                 "RandomSampler", "BatchSampler", "DataLoader", "vision"):
        assert hasattr(gdata, name)
    assert gdata.vision.transforms.ToTensor is T.ToTensor
