"""The process group the ``dist_*`` stores reduce over: MPI's ``COMM_WORLD`` through
mpi4py (``pip install 'mxcore[dist]'`` installs mpi4py and the mpich wheel), started by
``mxcore launch -n N script.py`` (``mpiexec``).

Every collective is non-blocking underneath and waited for with a deadline
(``MXCORE_DIST_TIMEOUT`` seconds, default 120): a rank that died, hangs or called another
collective makes the others raise :class:`CollectiveTimeout` naming the operation and the
waiting rank instead of hanging.  numpy buffers go to MPI without copies.  Values agreed on
across ranks (shapes, optimizer settings) travel as JSON, never pickles: receiving them runs
no code.  ``install_abort_hook`` makes an uncaught exception on one rank end the whole job
(``MPI_Abort``) after printing it with the rank's number.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, List, Optional

import numpy as np

from mxcore.base import MXCoreError

__all__ = ["ProcessGroup", "CollectiveTimeout", "world", "install_abort_hook"]


class CollectiveTimeout(MXCoreError, TimeoutError):
    """A collective operation did not complete in time on every rank."""


def _timeout() -> float:
    value = os.environ.get("MXCORE_DIST_TIMEOUT", "120")
    try:
        t = float(value)
    except ValueError:
        raise MXCoreError(f"MXCORE_DIST_TIMEOUT must be a number of seconds, got {value!r}") \
            from None
    if not t > 0:
        raise MXCoreError(f"MXCORE_DIST_TIMEOUT must be positive, got {value!r}")
    return t


class ProcessGroup:
    """The ranks of one job (MPI's COMM_WORLD) and the collectives the stores use."""

    def __init__(self, timeout: Optional[float] = None):
        try:
            from mpi4py import MPI
        except ImportError as exc:
            from mxcore.kvstore.base import KVStoreNotProvidedError
            raise KVStoreNotProvidedError(
                "the dist_* kvstores need mpi4py and an MPI library: pip install "
                f"'mxcore[dist]' (then start the job with `mxcore launch -n N script.py`); "
                f"{exc}") from None
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD
        self.rank: int = self.comm.Get_rank()
        self.size: int = self.comm.Get_size()
        self.timeout = _timeout() if timeout is None else float(timeout)
        launched = os.environ.get("MXCORE_WORLD_SIZE")
        if launched and int(launched) != self.size:
            raise MXCoreError(
                f"this process is one of {launched} (MXCORE_WORLD_SIZE) but MPI sees "
                f"{self.size}: the dist_* kvstores need the processes started by MPI "
                "(`mxcore launch -n N script.py`, not --launcher local)")
        os.environ["MXCORE_RANK"] = str(self.rank)
        ranks = os.environ.get("MXCORE_LAUNCH_DIR")
        if ranks and os.path.isdir(ranks):  # `mxcore launch` names a rank that dies by it
            with open(os.path.join(ranks, f"{self.rank}.pid"), "w") as f:
                f.write(str(os.getpid()))

    def __repr__(self) -> str:
        return f"ProcessGroup(rank={self.rank}, size={self.size})"

    def _wait(self, request, what: str) -> None:
        """Wait for ``request``, polling (a blocking MPI wait cannot time out)."""
        if request.Test():
            return
        start = time.monotonic()
        deadline = start + self.timeout
        spin_until = start + 0.05  # spin first: each Test moves the collective on
        pause = 1e-4
        while not request.Test():
            now = time.monotonic()
            if now > spin_until:
                if now > deadline:
                    raise CollectiveTimeout(
                        f"rank {self.rank} of {self.size}: {what} did not complete within "
                        f"{self.timeout:g} s (MXCORE_DIST_TIMEOUT): another rank died, "
                        "hangs, or called a different operation")
                time.sleep(pause)  # a long wait (a slower rank): let the cores go
                pause = min(0.002, pause * 2)

    def allreduce_(self, buf: np.ndarray, what: str = "allreduce") -> None:
        """Sum ``buf`` (C-contiguous) over the ranks, in place."""
        self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM), what)

    def broadcast_(self, buf: np.ndarray, root: int = 0, what: str = "broadcast") -> None:
        """Rank ``root``'s ``buf`` into every rank's ``buf``, in place."""
        self._wait(self.comm.Ibcast(buf, root=root), what)

    def allgather_(self, buf: np.ndarray, what: str = "allgather") -> np.ndarray:
        """Every rank's ``buf`` (the same size and dtype on every rank), stacked in rank
        order: shape ``(size,) + buf.shape``."""
        out = np.empty((self.size,) + buf.shape, dtype=buf.dtype)
        self._wait(self.comm.Iallgather(np.ascontiguousarray(buf), out), what)
        return out

    def barrier(self, what: str = "barrier") -> None:
        self._wait(self.comm.Ibarrier(), what)

    def allgather(self, value: Any, what: str = "allgather") -> List[Any]:
        """Every rank's ``value`` (JSON-serialisable), in rank order."""
        data = np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)
        sizes = np.zeros(self.size, dtype=np.int64)
        self._wait(self.comm.Iallgather(np.array([data.size], dtype=np.int64), sizes), what)
        out = np.empty(int(sizes.sum()), dtype=np.uint8)
        displs = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._wait(self.comm.Iallgatherv(data, [out, sizes, displs, self.MPI.BYTE]), what)
        return [json.loads(bytes(out[o:o + n]).decode())
                for o, n in zip(displs.tolist(), sizes.tolist())]

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)


_WORLD: Optional[ProcessGroup] = None


def world() -> ProcessGroup:
    """The job's process group (made on first use; installs the abort hook)."""
    global _WORLD
    if _WORLD is None:
        _WORLD = ProcessGroup()
        if _WORLD.size > 1:
            install_abort_hook(_WORLD)
    return _WORLD


def install_abort_hook(group: ProcessGroup) -> None:
    """An uncaught exception on this rank prints it, naming the rank, and aborts every
    rank of the job (the others would otherwise wait in their next collective)."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        # the message first, in one write: the traceback after it may not get out whole
        # once another rank's abort reaches this process
        message = (f"mxcore: rank {group.rank} of {group.size} raised an uncaught "
                   f"{kind.__name__}: {value}; aborting the job")
        _leave_for_launcher(group.rank, message)
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
        previous(kind, value, tb)
        sys.stderr.flush()
        group.abort(1)

    sys.excepthook = hook


def _leave_for_launcher(rank: int, message: str) -> None:
    """Leave ``message`` in ``mxcore launch``'s directory (``<rank>.error``): MPI's abort
    can end mpiexec before it has passed on what the ranks wrote, and the launcher then
    prints the message itself.  Written whole or not at all (rename)."""
    ranks = os.environ.get("MXCORE_LAUNCH_DIR")
    if not ranks or not os.path.isdir(ranks):
        return
    path = os.path.join(ranks, f"{rank}.error")
    try:
        with open(path + ".part", "w") as f:
            f.write(message)
        os.replace(path + ".part", path)
    except OSError:  # the job is failing anyway; stderr still gets the message
        pass
