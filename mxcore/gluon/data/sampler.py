"""Samplers: iterables of dataset indices (MXNet ``gluon.data.sampler``).

A sampler yields indices into a dataset; a :class:`BatchSampler` groups them
into lists.  :class:`RandomSampler` draws its permutation from a fresh
``np.random.default_rng`` seeded from mxcore's CPU generator each time
iteration starts, so ``mx.random.seed(n)`` makes shuffling reproducible and no
global numpy state is touched.
"""
from __future__ import annotations

from typing import Callable, Iterator, List

import numpy as np

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "FilterSampler", "BatchSampler",
           "IntervalSampler"]

_LAST_BATCH = ("keep", "discard", "rollover")


class Sampler:
    """Base class for samplers: ``__iter__`` yields indices, ``__len__`` counts them."""

    def __iter__(self) -> Iterator:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """``start, start + 1, ..., start + length - 1``."""

    def __init__(self, length: int, start: int = 0):
        self._length = int(length)
        self._start = int(start)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self._start, self._start + self._length))

    def __len__(self) -> int:
        return self._length


def _epoch_seed() -> int:
    """A seed drawn from mxcore's CPU generator (``mx.random.seed`` resets it)."""
    import mxcore as mx
    from mxcore.device import device_type
    return int(device_type(mx.cpu()).generator(0).integers(2 ** 63))


class RandomSampler(Sampler):
    """A random permutation of ``range(length)``, new at every iteration.

    Each ``iter()`` draws one seed from mxcore's CPU generator and shuffles with
    ``np.random.default_rng(seed)``: ``mx.random.seed(n)`` makes the sequence of
    epochs reproducible; numpy's global random state is neither used nor changed.
    """

    def __init__(self, length: int):
        self._length = int(length)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng(_epoch_seed())
        return iter(rng.permutation(self._length).tolist())

    def __len__(self) -> int:
        return self._length


class FilterSampler(Sampler):
    """Indices ``i`` of ``dataset`` for which ``fn(dataset[i])`` is true (computed once)."""

    def __init__(self, fn: Callable, dataset):
        self._fn = fn
        self._dataset = dataset
        self._indices = [i for i in range(len(dataset)) if fn(dataset[i])]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices)

    def __len__(self) -> int:
        return len(self._indices)


class IntervalSampler(Sampler):
    """Every ``interval``-th index: ``0, k, 2k, ...``; with ``rollover`` then
    ``1, k+1, ...`` and so on until every index has been seen once."""

    def __init__(self, length: int, interval: int, rollover: bool = True):
        if not 0 < interval < length:
            raise ValueError(f"interval {interval} must be in (0, length={length})")
        self._length = int(length)
        self._interval = int(interval)
        self._rollover = bool(rollover)

    def __iter__(self) -> Iterator[int]:
        for i in range(self._interval if self._rollover else 1):
            yield from range(i, self._length, self._interval)

    def __len__(self) -> int:
        if self._rollover:
            return self._length
        return len(range(0, self._length, self._interval))


class BatchSampler(Sampler):
    """Group the indices of ``sampler`` into lists of ``batch_size``.

    ``last_batch`` says what happens to a final incomplete batch: ``'keep'`` yields
    it, ``'discard'`` drops it, ``'rollover'`` keeps its indices and puts them at
    the front of the next epoch's first batch.
    """

    def __init__(self, sampler, batch_size: int, last_batch: str = "keep"):
        if last_batch not in _LAST_BATCH:
            raise ValueError("last_batch must be one of 'keep', 'discard', or 'rollover', "
                             f"but got {last_batch!r}")
        batch_size = int(batch_size)
        if batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self._sampler = sampler
        self._batch_size = batch_size
        self._last_batch = last_batch
        self._prev: List = []

    def __iter__(self) -> Iterator[List]:
        batch, self._prev = self._prev, []
        bs = self._batch_size
        for i in self._sampler:
            batch.append(i)
            if len(batch) == bs:
                yield batch
                batch = []
        if batch:
            if self._last_batch == "keep":
                yield batch
            elif self._last_batch == "rollover":
                self._prev = batch

    def __len__(self) -> int:
        n = len(self._sampler)
        if self._last_batch == "keep":
            return (n + self._batch_size - 1) // self._batch_size
        if self._last_batch == "discard":
            return n // self._batch_size
        return (len(self._prev) + n) // self._batch_size
