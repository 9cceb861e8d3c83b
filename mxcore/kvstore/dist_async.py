"""``AsyncDistKVStore``: MXNet's ``dist_async`` over MPI point-to-point messages.

Rank 0 is also the parameter server.  A thread of rank 0 (``_Server``) holds the values
(rank 0's store), applies the store's optimizer to each push as it arrives and answers
each pull with the values it holds then.  No rank waits for another: a push is a message
to the server, a pull a request and its reply, so a rank that is slow (or idle) holds
nobody up, and the weights a rank pulls include whatever pushes of other ranks the
server has applied so far -- MXNet's asynchronous SGD.  A rank's pull after its own push
sees that push applied (MPI keeps the messages of one sender in order).

``init``, ``broadcast``, ``set_optimizer`` and ``barrier`` stay collective, as in MXNet:
every rank calls them, rank 0's values and optimizer win, and ranks that disagree on
shapes or optimizer settings are told.  An update that fails on the server is reported
to every rank at its next pull (and to rank 0 at its next operation), naming the push
that caused it.

The messages travel on a communicator of their own (a duplicate of the job's), so they
never mix with the collectives.  The server polls for requests with a short sleep that
grows while it is idle (up to 0.2 ms) rather than waiting in MPI, whose blocking
waits spin and would take a core from rank 0's own training.  At exit each rank tells the
server it is done; rank 0's process waits for every rank to be done before it ends.
"""
from __future__ import annotations

import atexit
import json
import threading
import time
from typing import List, Optional

import numpy as np

from mxcore.base import MXCoreError
from mxcore.kvstore.base import KVStoreNotProvidedError
from mxcore.kvstore.dist import DistKVStore, _from_host, _wire_dtype
from mxcore.kvstore.kvstore import KVStore
from mxcore.ndarray.ndarray import NDArray

__all__ = ["AsyncDistKVStore", "ASYNC_TYPES"]

#: type -> where values live on each rank (as in DIST_TYPES)
ASYNC_TYPES = {"dist_async": "cpu", "dist_device_async": "device"}

# message tags on the store's own communicator
_REQUEST, _PUSH_DATA, _REPLY, _REPLY_DATA = 1, 2, 3, 4

_IDLE_MIN, _IDLE_MAX = 2e-5, 2e-4  # the server's polling pause while idle (seconds)


class AsyncDistKVStore(DistKVStore):
    """A store whose pushes update the values on rank 0 as they arrive
    (``mx.kv.create('dist_async')``); see the module's documentation."""

    TYPES = ASYNC_TYPES

    def __init__(self, name: str = "dist_async", group=None):
        super().__init__(name, group)
        self._comm = self._group.comm.Dup() if self.num_workers > 1 else None
        self._lock = threading.RLock()   # rank 0: the values and the optimizer
        self._server: Optional[_Server] = None
        self._closed = False
        if self._comm is not None:
            if self.rank == 0:
                self._server = _Server(self)
                self._server.start()
            atexit.register(self.close)

    def __repr__(self) -> str:
        return (f"AsyncDistKVStore(type={self._type!r}, rank={self.rank}, "
                f"num_workers={self.num_workers}, keys={len(self._store)})")

    @property
    def _remote(self) -> bool:
        """Whether the values are on another rank (the server, rank 0)."""
        return self._comm is not None and self.rank != 0

    # collective operations: as DistKVStore (set_optimizer: the agreement check, then
    # _set_updater).  The lock is never held across one: another rank may be waiting for
    # the server to answer its pull before it joins.  init and broadcast need no lock:
    # rank 0 only inserts values (a key nobody pushes yet, or a new array for it) and
    # sends them.
    def _set_updater(self, updater) -> None:
        """The server's updater (collective: returns once rank 0's server has it)."""
        with self._lock:
            super()._set_updater(updater)
        self.barrier()  # no rank pushes before rank 0's server has the updater

    def set_gradient_compression(self, compression_params: dict) -> None:
        raise KVStoreNotProvidedError(
            f"gradient compression is not provided on kvstore type {self._type!r} (the "
            "server would need each rank's residuals); use 'dist_sync'")

    def save_optimizer_states(self, fname: str, dump_optimizer: bool = False) -> None:
        """Rank 0 writes the server's optimizer states, atomically; every rank waits."""
        if self.rank == 0:
            with self._lock:
                KVStore.save_optimizer_states(self, fname, dump_optimizer)
        self.barrier()

    def load_optimizer_states(self, fname: str) -> None:
        """Rank 0's server reads the states (the other ranks hold none); every rank
        waits for it."""
        if self.rank == 0:
            with self._lock:
                KVStore.load_optimizer_states(self, fname)
        self.barrier()

    # push and pull: messages to the server ------------------------------------------------
    def push(self, key, value, priority: int = 0) -> None:
        """Send each key's sum over this rank's devices to the server, which applies the
        optimizer to it on arrival; returns without waiting for that."""
        pairs = self._pairs("push", key, value)
        if self._updater is None:
            raise MXCoreError(
                f"KVStore.push on a {self._type!r} store: the server applies each push "
                "with the store's optimizer as it arrives, and none is set (call "
                "set_optimizer on every rank first; gluon.Trainer does)")
        keys, sums = [], []
        for k, arrays in pairs:
            target = self._stored("push", k)
            self._check_shapes("push", k, target, arrays)
            keys.append(k)
            sums.append(self._reduce(k, arrays, target))
        if not self._remote:
            with self._lock:
                self._raise_server_error()
                self._apply(keys, sums, [self._store[k] for k in keys])
            return
        what = f"KVStore.push of {len(keys)} value(s) to the server (rank 0)"
        self._request("push", keys, what)
        for bucket in self._buckets(sums):
            self._group._wait(self._comm.Isend(self._pack(bucket), dest=0, tag=_PUSH_DATA),
                              what)

    def pull(self, key, out=None, priority: int = 0, ignore_sparse: bool = True) -> None:
        """Copy the values the server holds now into ``out``."""
        if out is None:
            raise MXCoreError("KVStore.pull: out= is required (the arrays to copy into)")
        if not self._remote:
            with self._lock:
                self._raise_server_error()
                super().pull(key, out, priority)
            return
        pairs = self._pairs("pull", key, out)
        for k, outs in pairs:
            self._check_shapes("pull", k, self._stored("pull", k), outs)
        keys = [k for k, _ in pairs]
        what = f"KVStore.pull of {len(keys)} value(s) from the server (rank 0)"
        self._request("pull", keys, what)
        reply = json.loads(self._receive(0, _REPLY, what))
        if reply["error"]:
            raise MXCoreError(f"KVStore.pull on rank {self.rank}: the server (rank 0) "
                              f"failed: {reply['error']}")
        like = [self._store[k] for k in keys]
        index = {id(a): i for i, a in enumerate(like)}
        for bucket in self._buckets(like):
            buf = self._pack_empty(bucket)
            self._group._wait(self._comm.Irecv(buf, source=0, tag=_REPLY_DATA), what)
            for a, part in self._unpack(bucket, buf):
                value = _from_host(part, a)
                for o in pairs[index[id(a)]][1]:
                    o[:] = value if value.context is o.context else \
                        value.as_in_context(o.context)

    def pushpull(self, key, value, out=None, priority: int = 0) -> None:
        """``push`` then ``pull`` (the pull sees the push applied).  ``allreduce_stats``
        counts these calls (a Trainer's steps) and their seconds: sending, the server's
        update and reply; on rank 0 the update itself and waiting for the server's lock.
        No allreduce happens, so its bytes stay 0."""
        start = time.perf_counter()
        super().pushpull(key, value, out, priority)
        self._reduce_calls += 1
        self._reduce_seconds += time.perf_counter() - start

    def _request(self, op: str, keys: List, what: str) -> None:
        header = np.frombuffer(json.dumps({"op": op, "keys": keys}).encode(), dtype=np.uint8)
        self._group._wait(self._comm.Isend(header, dest=0, tag=_REQUEST), what)

    def _receive(self, source: int, tag: int, what: str) -> bytes:
        """The next message of bytes from ``source`` with ``tag`` (waited for with the
        collective deadline)."""
        MPI = self._group.MPI
        status = MPI.Status()
        start = time.monotonic()
        pause = _IDLE_MIN
        while not self._comm.Iprobe(source=source, tag=tag, status=status):
            if time.monotonic() - start > self._group.timeout:
                from mxcore.kvstore.group import CollectiveTimeout
                raise CollectiveTimeout(
                    f"rank {self.rank} of {self.num_workers}: {what} got no answer within "
                    f"{self._group.timeout:g} s (MXCORE_DIST_TIMEOUT): rank 0 died or hangs")
            time.sleep(pause)
            pause = min(_IDLE_MAX, pause * 2)
        buf = np.empty(status.Get_count(MPI.BYTE), dtype=np.uint8)
        self._comm.Recv(buf, source=source, tag=tag)
        return buf.tobytes()

    @staticmethod
    def _pack_empty(bucket: List[NDArray]) -> np.ndarray:
        return np.empty(sum(a.size for a in bucket), dtype=_wire_dtype(bucket[0].dtype))

    def _raise_server_error(self) -> None:
        if self._server is not None and self._server.error:
            raise MXCoreError(f"KVStore on rank 0: the server failed: {self._server.error}")

    # the end of the job ---------------------------------------------------------------------
    def close(self) -> None:
        """Tell the server this rank is done (rank 0: wait until every rank is); runs at
        exit.  The store takes no pushes or pulls after it."""
        if self._closed or self._comm is None:
            return
        self._closed = True
        if self.rank != 0:
            try:
                self._request("done", [], "KVStore.close")
            except MXCoreError:
                pass  # the server is gone: nothing is waiting for this rank
            return
        self._server.join()


class _Server(threading.Thread):
    """Rank 0's thread that applies the other ranks' pushes and answers their pulls."""

    def __init__(self, store: AsyncDistKVStore):
        super().__init__(name="mxcore-kvstore-server", daemon=True)
        self.store = store
        self.error: Optional[str] = None   # the first failed update, reported to all

    def run(self) -> None:
        store = self.store
        done = set()
        pause = _IDLE_MIN
        MPI = store._group.MPI
        status = MPI.Status()
        while len(done) < store.num_workers - 1:
            if not store._comm.Iprobe(source=MPI.ANY_SOURCE, tag=_REQUEST, status=status):
                time.sleep(pause)
                pause = min(_IDLE_MAX, pause * 2)
                continue
            pause = _IDLE_MIN
            source = status.Get_source()
            request = json.loads(store._receive(source, _REQUEST, "the server's receive"))
            op = request["op"]
            if op == "done":
                done.add(source)
                continue
            try:
                if op == "push":
                    self._push(source, request["keys"])
                else:
                    self._pull(source, request["keys"])
            except MXCoreError as exc:  # the rank stopped answering: it is gone
                self._fail(f"the {op} of rank {source}: {exc}")
                done.add(source)

    def _fail(self, error: str) -> None:
        if self.error is None:  # the first failure is the cause of the rest
            self.error = error

    def _push(self, source: int, keys: List) -> None:
        """Receive a rank's sums and apply the optimizer to them."""
        store = self.store
        what = f"the server's receive of rank {source}'s push"
        stored = [store._store[k] for k in keys]
        index = {id(a): i for i, a in enumerate(stored)}
        sums: List[NDArray] = [None] * len(keys)  # type: ignore[list-item]
        for bucket in store._buckets(stored):
            buf = store._pack_empty(bucket)
            store._group._wait(store._comm.Irecv(buf, source=source, tag=_PUSH_DATA), what)
            for a, part in store._unpack(bucket, buf):
                sums[index[id(a)]] = _from_host(part, a)
        if self.error is not None:
            return  # the values are no longer trusted; every reply says why
        with store._lock:
            try:
                store._apply(keys, sums, stored)
                for a in stored:
                    a.wait_to_read()
            except Exception as exc:  # noqa: BLE001 -- reported to every rank
                self._fail(f"applying the push of key(s) {keys} from rank {source}: "
                           f"{type(exc).__name__}: {exc}")

    def _pull(self, source: int, keys: List) -> None:
        """Reply with the values held now (copied under the lock, sent after it)."""
        store = self.store
        what = f"the server's reply to rank {source}'s pull"
        buffers = []
        if self.error is None:
            with store._lock:
                try:
                    buffers = [store._pack(b) for b in
                               store._buckets([store._store[k] for k in keys])]
                except Exception as exc:  # noqa: BLE001 -- reported to every rank
                    self._fail(f"reading key(s) {keys} for rank {source}: "
                               f"{type(exc).__name__}: {exc}")
        reply = np.frombuffer(json.dumps({"error": self.error}).encode(), dtype=np.uint8)
        store._group._wait(store._comm.Isend(reply, dest=source, tag=_REPLY), what)
        if self.error is None:
            for buf in buffers:
                store._group._wait(store._comm.Isend(buf, dest=source, tag=_REPLY_DATA),
                                   what)
