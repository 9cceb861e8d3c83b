"""DataLoader: batches from a dataset, optionally loaded by worker processes or threads
(MXNet ``gluon.data.dataloader``).

Batching works in numpy: the samples of a batch are stacked with numpy and each
field becomes an NDArray on the CPU with one ``mx.nd.array`` call, keeping the
sample's dtype (uint8 images stay uint8, int32 labels stay int32, Python ints
become int64, Python floats float64: ``np.asarray`` decides, as in MXNet).
Datasets backed by whole arrays hand over a batch with one indexing call.

With ``num_workers > 0`` worker processes (the ``fork`` start method where the
platform has it, else ``spawn``; ``MXCORE_DATALOADER_START_METHOD`` overrides)
build batches as numpy arrays and send them to the main process, which turns
them into NDArrays.  Workers live for one pass over the data: they start when
iteration starts and are stopped when it ends, when the iterator is closed or
garbage-collected (``break`` out of a ``for`` loop), or when a worker fails.
Batches come back in sampler order; an exception raised in a worker is raised
again in the main process with its type and message, the worker's traceback
attached as the cause.  Each worker seeds Python's ``random``, numpy's global
generator and mxcore's CPU generator with its own seed derived from mxcore's
generator, so random augmentations differ between workers and
``mx.random.seed`` makes them reproducible.
"""
from __future__ import annotations

import collections
import multiprocessing as mp
import multiprocessing.connection
import os
import pickle
import queue
import signal
import time
import traceback
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import numpy as np

from mxcore.base import MXCoreError
from mxcore.gluon.data import _batch
from mxcore.gluon.data import sampler as _sampler

__all__ = ["DataLoader", "default_batchify_fn", "default_mp_batchify_fn"]


def default_batchify_fn(data):
    """Stack a list of samples into a batch.

    NDArrays and numpy arrays are stacked along a new first axis, scalars become
    a 1-D array, tuples are batched field by field into a list (recursively),
    dicts key by key.  The result is made of NDArrays on the CPU whose dtype is
    the samples' (``np.asarray`` rules); NDArray samples on a device without host
    memory are stacked on that device.
    """
    return _batch.to_nd(_batch.np_batchify(data))


#: MXNet's name for the batchify function used with worker processes; here the
#: same function (workers batch in numpy and the main process makes the NDArrays).
default_mp_batchify_fn = default_batchify_fn


class DataLoaderWorkerError(MXCoreError, RuntimeError):
    """A DataLoader worker process died or sent something that cannot be used."""


class _WorkerTraceback(Exception):
    """Carries a worker's formatted traceback as the ``__cause__`` of the re-raised error."""

    def __init__(self, tb: str):
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def _load_batch(dataset, batchify_fn, indices):
    """A numpy batch (default batchify) or the output of ``batchify_fn``."""
    if batchify_fn is None:
        out = _batch.fetch_batch(dataset, indices)
        if out is None:
            out = _batch.np_batchify([dataset[i] for i in indices])
        return out
    return batchify_fn([dataset[i] for i in indices])


def _finish(batchify_fn, out):
    """Main-process side of a batch built in the same process or a thread."""
    return _batch.to_nd(out) if batchify_fn is None else out


class DataLoader:
    """Load a dataset in mini-batches.

    Parameters
    ----------
    dataset : Dataset
        Anything with ``__getitem__`` and ``__len__``.
    batch_size : int
        Samples per batch; required unless ``batch_sampler`` is given.
    shuffle : bool
        Visit the samples in a new random order each epoch (``RandomSampler``;
        ``mx.random.seed`` makes it reproducible).
    sampler : Sampler
        Order in which samples are visited; excludes ``shuffle``.
    last_batch : {'keep', 'discard', 'rollover'}
        What to do with a last incomplete batch (default ``'keep'``): keep it,
        drop it, or carry its samples over to the next epoch.
    batch_sampler : Sampler
        Yields lists of indices; excludes ``batch_size``, ``shuffle``, ``sampler``
        and ``last_batch``.
    batchify_fn : callable
        Turns a list of samples into a batch; default :func:`default_batchify_fn`.
        With worker processes it runs in the workers: NDArrays in its output are
        sent to the main process as numpy data and become CPU NDArrays again;
        everything else in it must be picklable.
    num_workers : int
        Worker processes (or threads with ``thread_pool=True``); 0 loads in the
        main process.
    pin_memory : bool
        Accepted for MXNet compatibility; batches are returned on the CPU.  There
        is nothing to pin here: host devices share the batches' memory, and the
        cuda device stages each host-to-device copy through pinned buffers itself
        (asynchronously, ``mxcore_cuda.staging``).
    pin_device_id : int
        Accepted for MXNet compatibility (see ``pin_memory``).
    prefetch : int
        Batches in flight with workers; default ``2 * num_workers``.
    thread_pool : bool
        Use threads instead of processes (no pickling, shares the GIL).
    timeout : float
        Seconds to wait for one batch from a worker before raising TimeoutError.
    auto_reload : bool
        Start the next pass over the data as soon as one ends (and the first one
        at construction): its workers load its first batches while the caller
        does other work (an evaluation, say).  Without it (the default, as in
        MXNet 1.9.1) a pass starts when iteration starts.  A prefetched pass is
        used by the next ``iter()``; ``refresh()`` starts one by hand and
        ``clean()`` drops it.
    """

    def __init__(self, dataset, batch_size: Optional[int] = None, shuffle: bool = False,
                 sampler=None, last_batch: Optional[str] = None, batch_sampler=None,
                 batchify_fn: Optional[Callable] = None, num_workers: int = 0,
                 pin_memory: bool = False, pin_device_id: int = 0,
                 prefetch: Optional[int] = None, thread_pool: bool = False,
                 timeout: float = 120, auto_reload: bool = False):
        self._dataset = dataset
        self._pin_memory = pin_memory
        self._pin_device_id = pin_device_id
        self._thread_pool = bool(thread_pool)
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, given {timeout}")
        self._timeout = timeout

        if batch_sampler is None:
            if batch_size is None:
                raise ValueError("batch_size must be specified unless batch_sampler is specified")
            if sampler is None:
                if shuffle:
                    sampler = _sampler.RandomSampler(len(dataset))
                else:
                    sampler = _sampler.SequentialSampler(len(dataset))
            elif shuffle:
                raise ValueError("shuffle must not be specified if sampler is specified")
            batch_sampler = _sampler.BatchSampler(sampler, batch_size,
                                                  last_batch if last_batch else "keep")
        elif batch_size is not None or shuffle or sampler is not None or last_batch is not None:
            raise ValueError("batch_size, shuffle, sampler and last_batch must not be specified "
                             "if batch_sampler is specified.")
        self._batch_sampler = batch_sampler
        self._num_workers = max(0, int(num_workers))
        self._prefetch = max(0, int(prefetch) if prefetch is not None else 2 * self._num_workers)
        if batchify_fn is default_batchify_fn:
            batchify_fn = None  # the numpy fast paths
        self._user_batchify_fn = batchify_fn
        self._batchify_fn = batchify_fn if batchify_fn is not None else default_batchify_fn
        self.auto_reload = bool(auto_reload)
        self._iter = None  # a pass started ahead of iter() (auto_reload, refresh)
        if self.auto_reload:
            self.refresh()

    def __iter__(self):
        it, self._iter = self._iter, None  # a prefetched pass serves one iteration
        return it if it is not None else self._start_pass()

    def _start_pass(self):
        on_end = _reload_after(self) if self.auto_reload else None
        if self._num_workers == 0:
            return _same_process_iter(self._dataset, self._user_batchify_fn,
                                      self._batch_sampler, on_end)
        if self._thread_pool:
            return _ThreadWorkerIter(self, on_end)
        return _ProcessWorkerIter(self, on_end)

    def refresh(self) -> None:
        """Start the next pass now: with workers, they begin loading its first
        batches; the next ``iter()`` uses it."""
        self.clean()
        self._iter = self._start_pass()

    def clean(self) -> None:
        """Drop a prefetched pass (its workers stop); the next pass starts at ``iter()``."""
        it, self._iter = self._iter, None
        if isinstance(it, _MultiWorkerIter):
            it.close()

    def __len__(self) -> int:
        return len(self._batch_sampler)


def _reload_after(loader: DataLoader) -> Callable[[], None]:
    """What a pass calls when it ends: prefetch the next pass unless one is
    waiting.  Holds the loader weakly (a prefetched pass is kept by the loader)."""
    ref = weakref.ref(loader)

    def on_end() -> None:
        dl = ref()
        if dl is not None and dl._iter is None and dl.auto_reload:
            dl.refresh()
    return on_end


def _same_process_iter(dataset, batchify_fn, batch_sampler, on_end=None):
    for indices in batch_sampler:
        yield _finish(batchify_fn, _load_batch(dataset, batchify_fn, indices))
    if on_end is not None:
        on_end()


class _MultiWorkerIter:
    """Keeps up to ``prefetch`` batches in flight and returns them in order."""

    def __init__(self, loader: DataLoader, on_end: Optional[Callable[[], None]] = None):
        self._closed = True
        self._on_end = on_end
        self._batch_sampler = loader._batch_sampler
        self._dataset = loader._dataset
        self._batchify_fn = loader._user_batchify_fn
        self._timeout = loader._timeout
        self._num_workers = loader._num_workers
        self._prefetch = max(1, loader._prefetch)
        self._sampler_iter = iter(loader._batch_sampler)
        self._sent = 0
        self._rcvd = 0
        self._exhausted = False
        self._start()
        self._closed = False
        self._top_up()

    # subclass hooks: _start(), _submit(k, indices), _receive(k), _stop(abort)

    def _top_up(self) -> None:
        while not self._exhausted and self._sent - self._rcvd < self._prefetch:
            try:
                indices = next(self._sampler_iter)
            except StopIteration:
                self._exhausted = True
                return
            self._submit(self._sent, indices)
            self._sent += 1

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._batch_sampler)

    def __next__(self):
        if self._closed:
            raise StopIteration
        try:
            self._top_up()
            if self._rcvd == self._sent:
                self._close(abort=False)
                if self._on_end is not None:
                    self._on_end()
                raise StopIteration
            out = self._receive(self._rcvd)
            self._rcvd += 1
            return out
        except StopIteration:
            raise
        except BaseException:
            self._close(abort=True)
            raise

    def close(self) -> None:
        """Stop the workers now (also done at the end of iteration and on garbage collection)."""
        self._close(abort=True)

    def _close(self, abort: bool) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop(abort)

    def __del__(self):
        try:
            if not getattr(self, "_closed", True):
                self._close(abort=True)
        except Exception:
            pass


# threads ---------------------------------------------------------------------------------
class _ThreadWorkerIter(_MultiWorkerIter):
    def _start(self) -> None:
        self._executor = ThreadPoolExecutor(self._num_workers,
                                            thread_name_prefix="mxcore-DataLoader")
        self._futures = collections.deque()

    def _submit(self, k, indices) -> None:
        self._futures.append(self._executor.submit(_load_batch, self._dataset,
                                                   self._batchify_fn, indices))

    def _receive(self, k):
        fut = self._futures.popleft()
        try:
            out = fut.result(timeout=self._timeout)
        except TimeoutError:
            if fut.done():
                raise  # raised by the dataset or batchify_fn itself
            self._timed_out = True
            raise TimeoutError(f"DataLoader worker thread gave no batch within {self._timeout} "
                               "seconds; increase `timeout` if loading is slow") from None
        return _finish(self._batchify_fn, out)

    def _stop(self, abort: bool) -> None:
        # A thread cannot be stopped: wait for the running batches unless one is stuck.
        self._executor.shutdown(wait=not getattr(self, "_timed_out", False), cancel_futures=True)
        self._futures.clear()


# processes -------------------------------------------------------------------------------
_POLL_PARENT_S = 2.0  # how often an idle worker checks that its parent is alive


def _mp_context():
    method = os.environ.get("MXCORE_DATALOADER_START_METHOD")
    if not method:
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    return mp.get_context(method)


def _worker_seeds(n: int):
    """One seed per worker from mxcore's CPU generator, without advancing its stream."""
    from mxcore.device import device_type
    gen = device_type(_batch.cpu()).generator(0)
    try:
        if hasattr(gen, "spawn"):
            children = gen.spawn(n)
        else:  # numpy < 1.25: what Generator.spawn does, through the seed sequence
            bits = gen.bit_generator
            children = [np.random.Generator(type(bits)(s)) for s in bits._seed_seq.spawn(n)]
        return [int(child.integers(2 ** 63)) for child in children]
    except (AttributeError, TypeError, ValueError):
        return [int(s) for s in gen.integers(2 ** 63, size=n)]


def _seed_worker(seed: int) -> None:
    import random

    import mxcore as mx
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    mx.random.seed(seed, ctx=mx.cpu())


def _pack_exception(exc: BaseException):
    tb = traceback.format_exc()
    try:
        blob = pickle.dumps(exc)
        pickle.loads(blob)
    except Exception:
        blob = None
    return (type(exc).__name__, str(exc), tb, blob)


def _worker_loop(wid, task_q, conn, dataset, batchify_fn, seed, parent_pid):
    """Body of a worker process: read (k, indices), send (k, ok, payload)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's business
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        _seed_worker(seed)
    except Exception:  # seeding must never stop loading
        pass
    while True:
        try:
            task = task_q.get(timeout=_POLL_PARENT_S)
        except queue.Empty:
            if os.getppid() != parent_pid:
                return  # orphaned
            continue
        except (EOFError, OSError):
            return
        if task is None:
            return
        k, indices = task
        try:
            out = _load_batch(dataset, batchify_fn, indices)
            msg = (k, True, _batch.to_np(out) if batchify_fn is None else _batch.wrap_nd(out))
        except Exception as exc:
            msg = (k, False, _pack_exception(exc))
        try:
            conn.send(msg)
        except (BrokenPipeError, EOFError, ConnectionError):
            return
        except Exception as exc:  # the batch could not be pickled
            name, message, tb, _ = _pack_exception(exc)
            message = f"DataLoader worker could not send batch {k} to the main process: {message}"
            try:
                conn.send((k, False, (name, message, tb, None)))
            except Exception:
                return


def _raise_worker_exception(info, wid: int, pid) -> None:
    name, message, tb, blob = info
    exc = None
    if blob is not None:
        try:
            exc = pickle.loads(blob)
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        exc = DataLoaderWorkerError(f"{name}: {message}")
    raise exc from _WorkerTraceback(f"in DataLoader worker {wid} (pid {pid}):\n{tb}")


class _ProcessWorkerIter(_MultiWorkerIter):
    """Batch k goes to worker k % n; each worker answers on its own pipe in task
    order, so the main process reads batch k from worker k % n: order is kept
    without a reorder buffer, and a dead worker is noticed through its sentinel."""

    def _start(self) -> None:
        n = self._num_workers
        ctx = _mp_context()
        self._procs, self._task_qs, self._conns = [], [], []
        seeds = _worker_seeds(n)
        parent = os.getpid()
        try:
            for w in range(n):
                task_q = ctx.Queue()
                reader, writer = ctx.Pipe(duplex=False)
                self._task_qs.append(task_q)
                self._conns.append(reader)
                proc = ctx.Process(target=_worker_loop, name=f"mxcore-DataLoader-worker-{w}",
                                   args=(w, task_q, writer, self._dataset, self._batchify_fn,
                                         seeds[w], parent),
                                   daemon=True)
                try:
                    proc.start()
                except Exception as exc:
                    if ctx.get_start_method() != "fork":
                        raise type(exc)(f"{exc} (DataLoader workers started with "
                                        f"{ctx.get_start_method()!r} need a picklable dataset "
                                        "and batchify_fn)") from exc
                    raise
                finally:
                    writer.close()  # later forks must not inherit it: EOF means the worker died
                self._procs.append(proc)
        except BaseException:
            self._stop(abort=True)
            raise

    def _submit(self, k, indices) -> None:
        self._task_qs[k % self._num_workers].put((k, indices))

    def _receive(self, k):
        w = k % self._num_workers
        conn, proc = self._conns[w], self._procs[w]
        deadline = time.monotonic() + self._timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"DataLoader worker {w} (pid {proc.pid}) gave no batch within "
                    f"{self._timeout} seconds; increase `timeout` if loading is slow")
            ready = mp.connection.wait([conn, proc.sentinel], timeout=remaining)
            if conn in ready:
                try:
                    msg = conn.recv()
                except EOFError:
                    raise self._died(w) from None
                break
            if proc.sentinel in ready:
                if conn.poll():
                    continue
                raise self._died(w)
        k2, ok, payload = msg
        if k2 != k:
            raise DataLoaderWorkerError(f"DataLoader worker {w} sent batch {k2}, expected {k}")
        if not ok:
            _raise_worker_exception(payload, w, proc.pid)
        if self._batchify_fn is None:
            return _batch.to_nd(payload)
        return _batch.unwrap_nd(payload)

    def _died(self, w: int) -> DataLoaderWorkerError:
        proc = self._procs[w]
        proc.join(1.0)
        code = proc.exitcode
        how = f"exit code {code}"
        if code is not None and code < 0:
            try:
                how = f"signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"signal {-code}"
            if code == -signal.SIGKILL:
                how += " (out of memory?)"
        return DataLoaderWorkerError(f"DataLoader worker {w} (pid {proc.pid}) exited "
                                     f"unexpectedly ({how})")

    def _stop(self, abort: bool) -> None:
        procs = getattr(self, "_procs", [])
        if not abort:
            for q in self._task_qs:
                try:
                    q.put(None)
                except Exception:
                    pass
            deadline = time.monotonic() + 5.0
            for p in procs:
                p.join(max(0.0, deadline - time.monotonic()))
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join()
            try:
                p.close()
            except Exception:
                pass
        for c in getattr(self, "_conns", []):
            c.close()
        for q in getattr(self, "_task_qs", []):
            try:
                # drain what the feeder thread wrote so that it never blocks, then drop it
                while True:
                    q.get_nowait()
            except Exception:
                pass
            q.cancel_join_thread()
            q.close()
        self._procs, self._conns, self._task_qs = [], [], []
