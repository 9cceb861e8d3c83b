"""Gradients summed over the ranks while backward goes on.

A data-parallel Trainer on a ``dist_*`` store arms an ``OverlappedReduction`` with its
parameters' gradient buffers and registers a grad-ready hook on each parameter
(``autograd.register_grad_ready_hook``).  The gradients are grouped once into buckets of
up to ``MXCORE_DIST_BUCKET_MB`` per wire dtype, in reverse parameter order (backward
finishes the last layers first).  When every gradient of the next bucket is ready, the
bucket is packed and its MPI allreduce starts without waiting (``Iallreduce``); each hook
also tests the requests in flight, which is what moves an MPI collective on.  Buckets
start strictly in order, so every rank starts the same collectives in the same order
whatever the order its gradients came in.  The store's next push of exactly these
gradients (``Trainer.step``) starts the buckets left, waits for all of them and takes
the sums instead of reducing again; a gradient written again after its bucket started
(a second backward before the step) has its bucket reduced again then.  Any other push
first completes what is in flight, then reduces as usual.

What this changes for a script: the reduction reads the gradients as backward leaves
them.  Change gradients between backward and ``step`` (say, clipping them on each rank
before the sum) only with ``MXCORE_DIST_OVERLAP=0``, or after ``allreduce_grads()``.
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from mxcore.base import MXCoreError


def enabled() -> bool:
    """``MXCORE_DIST_OVERLAP`` (default 1): 0 reduces gradients at ``step`` only."""
    value = os.environ.get("MXCORE_DIST_OVERLAP", "1")
    if value not in ("0", "1"):
        raise MXCoreError(f"MXCORE_DIST_OVERLAP must be 0 or 1, got {value!r}")
    return value == "1"


class OverlappedReduction:
    """The in-flight reduction of one set of gradients (``grads[i]`` under ``keys[i]``)."""

    def __init__(self, store, keys: Sequence[Any], grads: Sequence[Any]):
        self.store = store
        self.keys = list(keys)
        self.grads = list(grads)
        self._index = {k: i for i, k in enumerate(self.keys)}
        # the store's buckets (per wire dtype, up to the size) over the gradients in
        # reverse order: the last layers' gradients are ready first
        position = {id(g): i for i, g in enumerate(self.grads)}
        buckets = [[position[id(g)] for g in bucket]
                   for bucket in store._buckets(self.grads[::-1])]
        self.buckets = buckets
        self._bucket_of = {i: b for b, members in enumerate(buckets) for i in members}
        #: buckets started during backward (before ``finish``), over the job's steps
        self.started_early = 0
        self._reset()

    def _reset(self) -> None:
        self._missing = [len(b) for b in self.buckets]  # gradients not yet ready
        self._next = 0                                  # the next bucket to start
        self._flight: List[tuple] = []                  # (bucket, request, buffer)
        self._dirty: set = set()
        self._seconds = 0.0

    # during backward ---------------------------------------------------------------------
    def ready(self, key) -> None:
        """The gradient under ``key`` is final for this step (a grad-ready hook)."""
        start = time.perf_counter()
        i = self._index[key]
        b = self._bucket_of[i]
        if b < self._next:
            self._dirty.add(b)  # written again after its bucket started
        else:
            self._missing[b] -= 1
            while self._next < len(self.buckets) and self._missing[self._next] <= 0:
                self._start(self._next)
                self.started_early += 1
        for _, request, _ in self._flight:
            request.Test()  # MPI moves a non-blocking collective on inside its calls
        self._seconds += time.perf_counter() - start

    def _start(self, b: int) -> None:
        group = self.store._group
        buf = self.store._pack([self.grads[i] for i in self.buckets[b]])
        request = group.comm.Iallreduce(group.MPI.IN_PLACE, buf, op=group.MPI.SUM)
        self._flight.append((b, request, buf))
        self._next = b + 1

    # at the step -------------------------------------------------------------------------
    def finish(self, keys: Sequence[Any], sums: Sequence[Any]) -> Optional[List[Any]]:
        """The sums over the ranks of ``sums`` (pushed under ``keys``) when they are this
        reduction's gradients, else None (after completing what is in flight: the push
        then reduces as usual)."""
        from mxcore.kvstore.dist import _from_host
        start = time.perf_counter()
        ours = (len(keys) == len(self.keys) and all(
            k == own and s is g for k, own, s, g in zip(keys, self.keys, sums, self.grads)))
        while self._next < len(self.buckets):
            self._start(self._next)
        group = self.store._group
        parts: Dict[int, np.ndarray] = {}
        for b, request, buf in self._flight:
            group._wait(request, f"KVStore.push of {len(self.buckets[b])} gradient(s) "
                                 f"reduced while backward ran, {buf.nbytes} bytes")
            if b in self._dirty:  # a gradient changed after the bucket left: again
                buf = self.store._pack([self.grads[i] for i in self.buckets[b]])
                group.allreduce_(buf, f"KVStore.push of {len(self.buckets[b])} "
                                      f"gradient(s) written again, {buf.nbytes} bytes")
            offset = 0
            for i in self.buckets[b]:
                n = self.grads[i].size
                parts[i] = buf[offset:offset + n].reshape(self.grads[i].shape)
                offset += n
            self.store._reduce_bytes += buf.nbytes
        seconds = self._seconds + time.perf_counter() - start
        self._reset()
        if not ours:
            return None
        self.store._reduce_calls += 1
        self.store._reduce_seconds += seconds
        return [_from_host(parts[i], self.grads[i]) for i in range(len(self.grads))]
