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
reduction); 16-bit floats are reduced in float32.  A push reduces when it is called; a
Trainer's gradients are reduced while backward goes on (``mxcore.kvstore.overlap``), and
its push then takes those sums.
"""
from __future__ import annotations

import os
import time
from typing import Dict, List, Tuple

import numpy as np

import hal
from mxcore.base import MXCoreError
from mxcore.kvstore.kvstore import KVStore, _compression_threshold
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
        self._dist_threshold = None  # 2-bit gradient compression between the ranks
        self._overlap = None  # a Trainer's gradients reduced during backward (overlap.py)

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
            if self.rank == 0:
                continue  # the root's values are what it sent
            for t, part in self._unpack(bucket, buf):
                t[:] = _from_host(part, t)

    # push: KVStore.push sums over devices, then this over the ranks --------------------
    def _across_processes(self, keys, sums: List[NDArray]) -> List[NDArray]:
        """Each array summed over the ranks (new arrays on the same devices)."""
        if self._group.size == 1 and self._dist_threshold is None:
            return sums
        if self._dist_threshold is not None:
            return self._compressed_sum(keys, sums)
        if self._overlap is not None:
            reduced = self._overlap.finish(keys, sums)
            if reduced is not None:
                return reduced
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
        """MXNet's 2-bit compression between the ranks (``{'type': '2bit', 'threshold':
        t}``): each rank adds its device sum of a key to a residual it keeps, sends
        ``+t``/``-t``/``0`` per element (where the residual reached ``+-t``; 2 bits each,
        four to a byte) and keeps the rest; the ranks' codes are gathered and every rank
        sums them, so values stay identical everywhere. What crosses the wire is 1/16
        of float32 per rank (an allgather: n/16 of the values' size, against about 2 for
        an allreduce). All ranks must set the same parameters (checked)."""
        if not isinstance(compression_params, dict):
            raise TypeError("set_gradient_compression takes a dict such as "
                            "{'type': '2bit', 'threshold': 0.5}")
        threshold = _compression_threshold(compression_params)
        self._agree("set_gradient_compression", "compression parameters",
                    {"type": compression_params.get("type"), "threshold": threshold})
        self._dist_threshold = threshold
        self._residuals.clear()

    def _compressed_sum(self, keys, sums: List[NDArray]) -> List[NDArray]:
        start = time.perf_counter()
        t = self._dist_threshold
        codes = []
        for k, a in zip(keys, sums):
            sent = np.asarray(self._quantize(k, 0, a, t).asnumpy(), dtype=np.float32)
            codes.append(_pack_2bit(sent))
        sizes = [c.size for c in codes]
        gathered = self._group.allgather_(np.concatenate(codes) if codes else
                                          np.zeros(0, np.uint8),
                                          f"KVStore.push of {len(sums)} 2-bit compressed "
                                          f"value(s), {sum(sizes)} bytes")
        self._reduce_bytes += int(sum(sizes))
        out, offset = [], 0
        for a, size in zip(sums, sizes):
            steps = sum(_unpack_2bit(gathered[r, offset:offset + size], a.size)
                        for r in range(gathered.shape[0]))
            total = (steps.astype(np.float64) * t).reshape(a.shape)
            out.append(_from_host(total.astype(_wire_dtype(a.dtype)), a))
            offset += size
        self._reduce_calls += 1
        self._reduce_seconds += time.perf_counter() - start
        return out


#: 2-bit codes: 0 nothing, 1 +threshold, 2 -threshold; decoded to these steps
_STEPS = np.array([0, 1, -1, 0], dtype=np.int8)


def _pack_2bit(sent: np.ndarray) -> np.ndarray:
    """``sent`` (+t, -t or 0 per element) as 2-bit codes, four to a byte."""
    flat = sent.reshape(-1)
    codes = np.zeros(-(-flat.size // 4) * 4, dtype=np.uint8)
    codes[:flat.size][flat > 0] = 1
    codes[:flat.size][flat < 0] = 2
    c = codes.reshape(-1, 4)
    return (c[:, 0] | (c[:, 1] << 2) | (c[:, 2] << 4) | (c[:, 3] << 6)).astype(np.uint8)


def _unpack_2bit(packed: np.ndarray, size: int) -> np.ndarray:
    """The steps (+1, -1, 0) of ``size`` elements packed by ``_pack_2bit``."""
    c = np.stack([(packed >> s) & 3 for s in (0, 2, 4, 6)], axis=1).reshape(-1)[:size]
    return _STEPS[c].astype(np.int32)


def _from_host(part: np.ndarray, like: NDArray) -> NDArray:
    from mxcore.ndarray import array
    return array(part, ctx=like.context, dtype=like.dtype)
