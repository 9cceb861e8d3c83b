"""``DistKVStore``: MXNet's ``dist_sync`` and ``dist_device_sync`` over MPI.

There is no server: every rank keeps the store's values, and a push sums the values of
each key over the process's devices (as ``local``/``device``), then over the ranks with
one MPI allreduce per bucket (the keys of one call packed into flat buffers of up to
``MXCORE_DIST_BUCKET_MB`` MiB, default 16, per dtype family), then stores the sum or hands
it to the updater.  Every rank applies the same updater to the same sums, so the values
stay identical on every rank: what MXNet's servers compute in ``dist_sync``, without a
round trip to them.  ``init``/``broadcast`` store rank 0's values everywhere; ``init`` and
``set_optimizer`` first check that every rank passed the same shapes, dtypes and optimizer
settings, and report the ranks that differ.

Buffers travel through host memory (device values are copied to the host for the
reduction); 16-bit floats are reduced in float32.  Reduction starts when ``push`` is
called (after backward), not as each gradient becomes ready.
"""
from __future__ import annotations

import os
import time
from typing import Dict, List, Tuple

import numpy as np

import hal
from mxcore.base import MXCoreError
from mxcore.kvstore.base import KVStoreNotProvidedError
from mxcore.kvstore.kvstore import KVStore
from mxcore.ndarray.ndarray import NDArray

__all__ = ["DistKVStore", "DIST_TYPES"]

#: type -> where values live on each rank (as in KVSTORE_TYPES)
DIST_TYPES = {"dist_sync": "cpu", "dist": "cpu", "dist_sync_device": "device",
              "dist_device_sync": "device"}


def _bucket_bytes() -> int:
    value = os.environ.get("MXCORE_DIST_BUCKET_MB", "16")
    try:
        mb = float(value)
    except ValueError:
        raise MXCoreError(f"MXCORE_DIST_BUCKET_MB must be a number, got {value!r}") from None
    return max(1, int(mb * (1 << 20)))


def _wire_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a value is summed in: float64 stays, other floats in float32, integers
    in int64 (MPI has no 16-bit float sum)."""
    if dtype == np.float64:
        return np.dtype(np.float64)
    if hal.is_float(dtype):
        return np.dtype(np.float32)
    return np.dtype(np.int64)


class DistKVStore(KVStore):
    """A store shared by the ranks of an MPI job (``mx.kv.create('dist_sync')``)."""

    TYPES = DIST_TYPES

    def __init__(self, name: str = "dist_sync", group=None):
        super().__init__(name)
        if group is None:
            from mxcore.kvstore.group import world
            group = world()
        self._group = group
        # time in the cross-rank reduction of pushes (``allreduce_stats``)
        self._reduce_calls = 0
        self._reduce_seconds = 0.0
        self._reduce_bytes = 0

    def __repr__(self) -> str:
        return (f"DistKVStore(type={self._type!r}, rank={self.rank}, "
                f"num_workers={self.num_workers}, keys={len(self._store)})")

    @property
    def rank(self) -> int:
        return self._group.rank

    @property
    def num_workers(self) -> int:
        return self._group.size

    # agreement between ranks ------------------------------------------------------------
    def _agree(self, op: str, what: str, value) -> None:
        """Raise unless every rank passed the same ``value``."""
        values = self._group.allgather(value, f"KVStore.{op} (checking the {what} agree)")
        differ = [r for r, v in enumerate(values) if v != values[0]]
        if differ:
            raise MXCoreError(
                f"KVStore.{op}: the ranks disagree on the {what}: rank 0 has {values[0]}, "
                + "; ".join(f"rank {r} has {values[r]}" for r in differ))

    # init / broadcast: rank 0's values everywhere ------------------------------------------
    def init(self, key, value) -> None:
        pairs = self._pairs("init", key, value, new=True)
        self._agree("init", "keys, shapes and dtypes",
                    [[k, list(a[0].shape), a[0].dtype.name] for k, a in pairs])
        for k, arrays in pairs:
            if k in self._store:
                raise MXCoreError(f"KVStore.init: duplicate init of key {k!r} (init and "
                                  "broadcast set a key once)")
            self._set(k, arrays, "init")
        self._from_root([self._store[k] for k, _ in pairs], "init")

    def broadcast(self, key, value, out, priority: int = 0) -> None:
        pairs = self._pairs("broadcast", key, value, new=True)
        self._agree("broadcast", "keys, shapes and dtypes",
                    [[k, list(a[0].shape), a[0].dtype.name] for k, a in pairs])
        for k, arrays in pairs:
            self._set(k, arrays, "broadcast")
        self._from_root([self._store[k] for k, _ in pairs], "broadcast")
        self.pull(key, out, priority)

    def _from_root(self, stored: List[NDArray], op: str) -> None:
        for bucket in self._buckets(stored):
            buf = self._pack(bucket)
            self._group.broadcast_(buf, 0, f"KVStore.{op} of {len(bucket)} value(s)")
            for t, part in self._unpack(bucket, buf):
                t[:] = _from_host(part, t)

    # push: KVStore.push sums over devices, then this over the ranks --------------------
    def _across_processes(self, sums: List[NDArray]) -> List[NDArray]:
        """Each array summed over the ranks (new arrays on the same devices)."""
        if self._group.size == 1:
            return sums
        start = time.perf_counter()
        out: List[NDArray] = [None] * len(sums)  # type: ignore[list-item]
        index = {id(a): i for i, a in enumerate(sums)}
        for bucket in self._buckets(sums):
            buf = self._pack(bucket)
            self._group.allreduce_(buf, f"KVStore.push of {len(bucket)} value(s), "
                                        f"{buf.nbytes} bytes")
            self._reduce_bytes += buf.nbytes
            for a, part in self._unpack(bucket, buf):
                out[index[id(a)]] = _from_host(part, a)
        self._reduce_calls += 1
        self._reduce_seconds += time.perf_counter() - start
        return out

    def allreduce_stats(self) -> Dict[str, float]:
        """Pushes reduced over the ranks so far: their number, the seconds spent packing,
        reducing (including waiting for slower ranks) and unpacking, and the bytes
        reduced."""
        return {"pushes": self._reduce_calls, "seconds": self._reduce_seconds,
                "bytes": self._reduce_bytes}

    def _buckets(self, arrays: List[NDArray]) -> List[List[NDArray]]:
        """``arrays`` grouped by wire dtype into buckets of at most the bucket size (an
        array larger than that is a bucket of its own), in order."""
        limit = _bucket_bytes()
        open_: Dict[np.dtype, Tuple[List[NDArray], int]] = {}
        done: List[List[NDArray]] = []
        for a in arrays:
            wire = _wire_dtype(a.dtype)
            nbytes = a.size * wire.itemsize
            bucket, size = open_.get(wire, ([], 0))
            if bucket and size + nbytes > limit:
                done.append(bucket)
                bucket, size = [], 0
            bucket.append(a)
            open_[wire] = (bucket, size + nbytes)
        done.extend(b for b, _ in open_.values() if b)
        return done

    @staticmethod
    def _pack(bucket: List[NDArray]) -> np.ndarray:
        wire = _wire_dtype(bucket[0].dtype)
        buf = np.empty(sum(a.size for a in bucket), dtype=wire)
        offset = 0
        for a in bucket:
            buf[offset:offset + a.size] = np.asarray(a).reshape(-1)  # no copy on the host
            offset += a.size
        return buf

    @staticmethod
    def _unpack(bucket: List[NDArray], buf: np.ndarray):
        offset = 0
        for a in bucket:
            yield a, buf[offset:offset + a.size].reshape(a.shape)
            offset += a.size

    # the rest of MXNet's API ----------------------------------------------------------------
    def set_optimizer(self, optimizer) -> None:
        """Every rank runs ``optimizer`` on the summed gradients (after checking that
        every rank passed the same kind of optimizer with the same settings)."""
        settings = {"type": type(optimizer).__name__}
        for name, v in sorted(vars(optimizer).items()):
            if isinstance(v, (int, float, str, bool)) or v is None:
                settings[name] = v
        self._agree("set_optimizer", "optimizer", settings)
        super().set_optimizer(optimizer)

    def barrier(self) -> None:
        """Wait until every rank reached its barrier."""
        self._group.barrier("KVStore.barrier")

    _barrier = barrier

    def save_optimizer_states(self, fname: str, dump_optimizer: bool = False) -> None:
        """Rank 0 writes the states (identical on every rank), atomically; the others
        wait for it, so that a load right after finds the file."""
        if self.rank == 0:
            super().save_optimizer_states(fname, dump_optimizer)
        self.barrier()

    def set_gradient_compression(self, compression_params: dict) -> None:
        raise KVStoreNotProvidedError(
            f"gradient compression is not supported by kvstore type {self._type!r}: its "
            "reduction is an MPI allreduce of full-precision values")


def _from_host(part: np.ndarray, like: NDArray) -> NDArray:
    from mxcore.ndarray import array
    return array(part, ctx=like.context, dtype=like.dtype)
