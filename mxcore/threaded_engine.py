"""The threaded engine (MXNet's ``ThreadedEnginePerDevice``): kernels run on worker
threads while the caller goes on issuing operators.

``push`` asks the operator's rule for its outputs' shapes and dtypes, queues the kernel
and returns :class:`Pending` placeholders at once; NDArrays hold them as their ``_data``
(``shape`` and ``dtype`` are known, the values come later).  numpy, BLAS and CuPy release
the GIL while they compute, so the caller's Python (dispatch, autograd, the optimizer's
bookkeeping) overlaps with the kernels, and kernels on different workers overlap with
each other.

Each device has its own pool of workers (``MXCORE_ENGINE_WORKERS`` or MXNet's
``MXNET_CPU_WORKER_NTHREADS`` per CPU, ``MXNET_GPU_WORKER_NTHREADS`` per GPU; one by
default, as MXNet).  With a single worker in all, kernels run in push order, which
respects every read and write without further work.  A second worker or a second device
turns on dependency tracking: every piece of memory (a root array; views share their
base's) has a variable (:class:`_Var`) that records its last writer and the readers
since, so a kernel waits for the producers of its inputs and the last writer of what it
reads, and a write waits for the reads and the write before it.  Reads of one array run
together; independent kernels (two branches of a model, the updates of separate
parameters) run side by side.  What ties kernels beyond their arrays is a write too: the
random generator a sampling kernel draws from (so samples come in push order) and
scratch buffers an operator keeps across calls (``Op.state_attrs``).  Operators say
whether their kernels return views of their inputs (``Op.views``); the conformance suite
holds every other operator's kernels to fresh outputs, and a kernel found breaking that
here is ordered as a view from then on, with a warning.

A sync point waits for what it reads, not for the whole queue: ``wait_to_read``
(``asnumpy``, ``__array__``, printing...) and anything else that reads a placeholder's
value (an attribute other than ``shape``/``dtype``/``ndim``/``size``) wait for the kernels
queued up to the one that makes the value, and up to the last queued kernel that writes
its memory in place (the engine keeps the last in-place writer of each array written in
place, and of placeholders written in place as one); a placeholder that is a view of an
input, whose memory may be written through that input, waits for the whole queue, as does
``wait_all`` (``mx.nd.waitall``).  Reading a loss for the log then leaves the optimizer's
queued updates running.  A kernel that fails marks its outputs failed; the error is raised at the next
sync point that touches them, with a note naming the operator, its inputs and the line of
user code that issued it.  Kernels that read a failed output fail with the same cause,
without running; independent kernels run.  ``wait_all`` raises the first error nobody
has seen yet.

Calls the engine cannot infer (kernels outside the registry, such as a custom
operator's Python, or ops without a rule) run synchronously after the queue drains.  The
queue is bounded (``MXCORE_ENGINE_QUEUE``, default 256 kernels): a producer far ahead of
the workers blocks, which bounds the memory held by pending outputs.
"""
from __future__ import annotations

import atexit
import contextvars
import os
import queue
import sys
import threading
import time
import weakref
from math import prod
from typing import Any, Dict, Optional, Tuple

import numpy as np

import hal

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_HAL = os.path.dirname(os.path.abspath(hal.__file__))
_INTERNAL = (_PACKAGE + os.sep, _HAL + os.sep)


class Pending:
    """The output of a queued kernel: its shape and dtype now, its value once the
    kernel has run.  Reading anything else waits for the value."""

    __slots__ = ("shape", "dtype", "_task", "_index", "__weakref__")

    def __init__(self, task: "_Task", index: int, shape, dtype):
        self.shape = shape
        self.dtype = dtype
        self._task = task
        self._index = index

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return prod(self.shape)

    @property
    def base(self):
        """None for a kernel's fresh output (its memory is its own: known without
        waiting, so autograd can take a gradient's buffer over); a view's or an in-place
        output's base once the value is there."""
        task = self._task
        if not task.op.views and not task.mutated:
            return None
        return getattr(self.value(), "base", None)

    def value(self) -> Any:
        """The device array, once its kernel and the kernels queued to write it in place
        have run; raises its kernel's error."""
        task = self._task
        eng = task.engine
        if task.op.views:  # its memory is an input's: any later write may show here
            eng._wait(eng._pushed)
        else:
            eng._wait(max(task.seq, eng._pending_write_seq))
        if task.error is not None:
            eng._report(task)
        result = task.result[self._index]
        if eng._write_seq:  # written in place as a plain array since (resolved before)
            eng._wait(eng._write_seq.get(id(_root(result)), 0))
        return result

    def __getattr__(self, name):
        if name.startswith("__"):  # numpy's __array_interface__ would skip __array__
            raise AttributeError(name)
        return getattr(self.value(), name)

    @property
    def __cuda_array_interface__(self):
        return self.value().__cuda_array_interface__

    def __dlpack__(self, **kwargs):
        return self.value().__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.value().__dlpack_device__()

    def __array__(self, dtype=None, copy=None):
        a = np.asarray(self.value())
        if dtype is not None:
            a = a.astype(dtype, copy=False)
        return np.array(a, copy=True) if copy else a

    def __getitem__(self, key):
        return self.value()[key]

    def __setitem__(self, key, value):
        self.value()[key] = value

    def __len__(self) -> int:
        return len(self.value())

    def __iter__(self):
        return iter(self.value())

    def __float__(self) -> float:
        return float(self.value())

    def __int__(self) -> int:
        return int(self.value())

    def __bool__(self) -> bool:
        return bool(self.value())

    def __repr__(self) -> str:
        state = "failed" if self._task.error is not None else (
            "ready" if self._task.result is not None else "pending")
        return f"<Pending {self.shape} {self.dtype} {state} ({self._task.name})>"


class _Var:
    """The engine's variable for one piece of memory (MXNet's ``VarHandle``): the last
    unfinished kernel that writes it and the unfinished kernels that read it since.
    Views share their base's variable.  A variable lives while kernels that touch it
    are unfinished; ``key`` is the id of the root array it stands for, once known."""

    __slots__ = ("writer", "readers", "key")

    def __init__(self, writer=None):
        self.writer = writer
        self.readers: set = set()
        self.key: Optional[int] = None


class _Task:
    __slots__ = ("engine", "seq", "fn", "args", "attrs", "op", "name", "where", "result",
                 "error", "reported", "mutated", "device", "context", "waits", "dependents",
                 "finished", "reads", "writes", "outvars")

    def __init__(self, engine, seq, fn, args, attrs, op, where, mutated, device):
        self.device = device
        # the caller's context variables (numpy's errstate...): the kernel runs in them
        self.context = contextvars.copy_context()
        self.engine = engine
        self.seq = seq
        self.fn = fn
        self.args = args
        self.attrs = attrs
        self.op = op
        self.name = op.name
        self.where = where
        self.mutated = mutated  # the arrays the kernel writes in place
        self.result: Optional[Tuple[Any, ...]] = None
        self.error: Optional[BaseException] = None
        self.reported = False
        self.dependents: list = []  # tasks waiting for this one
        self.finished = False
        # set by ``_schedule`` (dependency tracking): ``waits``, the unfinished tasks this
        # one waits for; ``reads``/``writes``, its variables; ``outvars``, each output's


def _issuer() -> str:
    """``file:line`` of the first frame outside mxcore and hal: the user's call."""
    f = sys._getframe(2)
    while f is not None and f.f_code.co_filename.startswith(_INTERNAL):
        f = f.f_back
    return "?" if f is None else f"{f.f_code.co_filename}:{f.f_lineno}"


def _root(a):
    """The array that owns ``a``'s memory (views share their base's fate)."""
    base = getattr(a, "base", None)
    while base is not None and hasattr(base, "shape"):
        a, base = base, getattr(base, "base", None)
    return a


def _shutdown(ref) -> None:
    engine = ref()
    if engine is not None:
        engine.shutdown()


def _workers(kind: str) -> int:
    """Worker threads per device of ``kind``: on CPUs MXCORE_ENGINE_WORKERS, else MXNet's
    MXNET_CPU_WORKER_NTHREADS; on other devices MXNET_GPU_WORKER_NTHREADS; else one (as
    MXNet: a kernel parallelises inside itself, and a device's kernels queue on one
    stream; more CPU workers run independent kernels side by side)."""
    if kind == "cpu":
        value = os.environ.get("MXCORE_ENGINE_WORKERS") or \
            os.environ.get("MXNET_CPU_WORKER_NTHREADS")
    else:
        value = os.environ.get("MXNET_GPU_WORKER_NTHREADS")
    if not value:
        return 1
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"the threaded engine's worker count must be an integer, "
                         f"got {value!r}") from None
    if n < 1:
        raise ValueError(f"the threaded engine needs at least one worker per device, got {n}")
    return n


class ThreadedEngine:
    """Runs kernels on per-device worker threads in an order their reads and writes
    allow (see the module docstring)."""

    name = "threaded"
    asynchronous = True  # kernels run later, elsewhere (the profiler times them there)

    def __init__(self, queue_size: Optional[int] = None, workers: Optional[int] = None):
        size = queue_size if queue_size is not None else \
            int(os.environ.get("MXCORE_ENGINE_QUEUE", "256"))
        if size < 1:
            raise ValueError(f"the threaded engine's queue needs room for one kernel, "
                             f"got {size}")
        if workers is not None and workers < 1:
            raise ValueError(f"the threaded engine needs at least one worker per device, "
                             f"got {workers}")
        self._size = size
        self._nworkers = workers
        self._lock = threading.Lock()            # the variables and the task graph
        self._cond = threading.Condition()       # sync points wait on it ...
        self._waiting = 0                        # ... and tell the workers they do
        self._pushed = 0      # sequence number of the last task pushed
        self._done = 0        # every task up to this number has finished
        self._finished: set = set()  # numbers above ``_done`` that finished
        self._vars: Dict[int, _Var] = {}  # id(root array) -> its variable, while in use
        # the last queued in-place writer (its number) of each array written in place,
        # and of any placeholder: what a sync point on that memory waits for
        self._write_seq: Dict[int, int] = {}
        self._pending_write_seq = 0
        self._ops: Optional[Dict[Any, Any]] = None
        self._failed: list = []                   # tasks whose error nobody has seen
        self._poisoned: Dict[int, _Task] = {}    # id(root array) -> failed in-place write
        self._stop = False
        self._pools: Dict[Any, Tuple[queue.SimpleQueue, list]] = {}  # device -> (ready, threads)
        self._running: Dict[int, _Task] = {}     # thread ident -> the task it runs
        self._warned: set = set()
        self._tracking = False  # on with a second worker or device (``_new_pool``)
        atexit.register(_shutdown, weakref.ref(self))
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)
            os.register_at_fork(
                before=lambda: (e := ref()) is not None and e._before_fork(),
                after_in_child=lambda: (e := ref()) is not None and e._after_fork_in_child())

    # the kernel -> operator map (the registry's kernels; built on first use) -------------
    def _op_of(self, fn):
        ops = self._ops
        if ops is None:
            ops = self._ops = self._build_ops()
        op = ops.get(fn)
        if op is None:
            inner = getattr(fn, "__wrapped__", None)
            if inner is not None:
                op = ops.get(inner)
                fn = inner
            if op is None:  # a task that brings its operator (a hybridized plan's)
                op = getattr(fn, "mxcore_op", None)
        return op

    @staticmethod
    def _build_ops() -> Dict[Any, Any]:
        from mxcore.plugins import registry
        reg = registry()
        out: Dict[Any, Any] = {}
        for kernels in reg.kernels.values():
            for k in kernels:
                op = reg.ops.get(k.op)
                if op is not None and op.infer is not None:
                    try:
                        out.setdefault(k.fn, op)
                    except TypeError:  # an unhashable callable: runs synchronously
                        pass
        return out

    # the producer's side --------------------------------------------------------------
    def push(self, fn, args, attrs, mutates=(), device=None):
        op = self._op_of(fn)
        if op is None:
            return self._run_now(fn, args, attrs)
        try:
            shapes, dtypes = op.infer(tuple(tuple(a.shape) for a in args if hasattr(a, "shape")),
                                      tuple(a.dtype for a in args if hasattr(a, "dtype")),
                                      attrs)
        except Exception:  # noqa: BLE001 - the kernel reports bad input in its own words
            return self._run_now(fn, args, attrs)
        if op.overwrites is not None:  # buffers the kernel may reuse: written too
            mutates = tuple(mutates) + tuple(op.overwrites(attrs))
        mutated = tuple(args[i] for i in mutates) if mutates else ()
        if self._pushed - self._done >= self._size:  # full: wait for the oldest to finish
            self._wait(self._pushed - self._size + 1)
        pool = self._pools.get(device)
        if pool is None:
            pool = self._new_pool(device)
        task = _Task(self, 0, fn, args, attrs, op, _issuer(), mutated, device)
        if self._tracking:
            with self._lock:
                self._pushed = task.seq = self._pushed + 1
                ready = self._schedule(task, args, mutates, attrs, len(shapes))
        else:  # one worker takes tasks in push order (only the issuing thread pushes)
            self._pushed = task.seq = self._pushed + 1
            ready = True
        if mutated:
            self._note_writes(task.seq, mutated)
        outs = tuple(Pending(task, i, tuple(s), hal.to_dtype(d))
                     for i, (s, d) in enumerate(zip(shapes, dtypes)))
        if ready:
            pool[0].put(task)
        return outs[0] if op.nout == 1 else outs

    def _note_writes(self, seq: int, mutated) -> None:
        """Remember ``seq`` as the last in-place writer of the arrays in ``mutated``."""
        table = self._write_seq
        for a in mutated:
            if type(a) is Pending:
                self._pending_write_seq = seq
            elif hasattr(a, "shape"):
                table[id(_root(a))] = seq
        if len(table) > 4096:  # forget the writers that have finished
            done = self._done
            for key in [k for k, v in table.items() if v <= done]:
                del table[key]

    def _schedule(self, task: _Task, args, mutates, attrs, nout: int) -> bool:
        """Hang ``task`` in the graph (under the lock): it waits for the producers of the
        placeholders it reads, for the last writer of what it reads, and, for what it
        writes, for that writer and the readers since.  True when it can run now."""
        waits = set()
        reads: list = []
        writes: list = []
        for i, a in enumerate(args):
            if type(a) is Pending:
                src = a._task
                if not src.finished:
                    waits.add(src)
                    vs = src.outvars[a._index]
                else:
                    vs = self._vars_of(src.result[a._index] if src.result is not None
                                       else None)
            elif hasattr(a, "shape"):
                vs = self._vars_of(a)
            else:  # not an array (a random generator): state the kernel changes
                writes.extend(self._vars_of(a, root=False))
                continue
            (writes if i in mutates else reads).extend(vs)
        for name in task.op.state_attrs:
            state = attrs.get(name)
            if state is not None:
                writes.extend(self._vars_of(state, root=False))
        for v in reads:
            if v.writer is not None:
                waits.add(v.writer)
            v.readers.add(task)
        for v in writes:
            if v.writer is not None:
                waits.add(v.writer)
            waits.update(v.readers)
            v.readers = set()
            v.writer = task
        waits.discard(task)
        task.reads = tuple(reads)
        task.writes = tuple(writes)
        # each output's variables: a fresh one, or (views, in-place outputs) the inputs'
        if task.op.views:
            shared = tuple(dict.fromkeys(reads + writes))
            task.outvars = (shared,) * nout
        elif mutates:
            task.outvars = (tuple(writes),) * nout
        else:
            task.outvars = tuple((_Var(task),) for _ in range(nout))
        for w in waits:
            w.dependents.append(task)
        task.waits = len(waits)
        return not waits

    def _vars_of(self, a, root: bool = True) -> tuple:
        """The variable of ``a``'s memory (of its root array: views share it); made when
        no unfinished kernel touches that memory."""
        if a is None:  # the output of a failed kernel: nothing to order against
            return ()
        key = id(_root(a) if root else a)
        v = self._vars.get(key)
        if v is None:
            v = self._vars[key] = _Var()
            v.key = key
        return (v,)

    def _pool(self, device) -> Tuple[queue.SimpleQueue, list]:
        pool = self._pools.get(device)
        return pool if pool is not None else self._new_pool(device)

    def _new_pool(self, device) -> Tuple[queue.SimpleQueue, list]:
        """Start ``device``'s workers.  A single worker runs kernels in push order,
        which already respects every read and write: no graph is kept.  A second worker
        or a second device turns dependency tracking on, after the queue drained."""
        kind = getattr(device, "kind", "cpu")
        n = (self._nworkers if kind == "cpu" else None) or _workers(kind)
        if not self._tracking and (n > 1 or self._pools):
            if threading.get_ident() not in self._running:
                self._wait(self._pushed)
            self._tracking = True
        if n > 1 and device is not None:  # the kernels' own thread pools share the cores
            from mxcore.device import device_type
            device_type(device).set_concurrency(n)
        with self._lock:
            pool = self._pools.get(device)
            if pool is None:
                ready: queue.SimpleQueue = queue.SimpleQueue()
                threads = [threading.Thread(target=self._work, args=(ready,), daemon=True,
                                            name=f"mxcore-engine-{device}-{i}")
                           for i in range(n)]
                pool = self._pools[device] = (ready, threads)
                for t in threads:
                    t.start()
        return pool

    def worker_threads(self) -> list:
        """The worker threads started so far (pools start on a device's first kernel)."""
        return [t for _, threads in list(self._pools.values()) for t in threads]

    def _run_now(self, fn, args, attrs):
        """A call the engine cannot queue: after everything queued, in this thread."""
        self._wait(self._pushed)
        return fn(*[a.value() if type(a) is Pending else a for a in args], **attrs)

    # the workers ------------------------------------------------------------------------
    def _work(self, ready: queue.SimpleQueue) -> None:
        me = threading.get_ident()
        while True:
            task = ready.get()
            if task is None:  # shutdown
                return
            self._running[me] = task
            self._execute(task)
            self._finish(task)
            del self._running[me]
            if self._waiting:
                with self._cond:
                    self._cond.notify_all()
            del task  # a finished task's outputs live as long as their arrays only

    def _finish(self, task: _Task) -> None:
        """Mark ``task`` done: release its variables, start the tasks that waited only
        for it, and move the finished watermark."""
        if not self._tracking:  # one worker, push order: nothing else to release
            task.args = None  # the inputs live as long as their arrays, not the outputs'
            task.finished = True
            self._done = task.seq
            return
        result = task.result
        if result is not None and not task.op.views and not task.mutated:
            self._check_fresh(task, result)
        task.args = None
        start = []
        with self._lock:
            task.finished = True
            for v in task.reads:
                v.readers.discard(task)
                if v.writer is None and not v.readers and v.key is not None:
                    self._drop(v)
            for v in task.writes:
                if v.writer is task:
                    v.writer = None
                if not v.readers and v.writer is None and v.key is not None:
                    self._drop(v)
            if result is not None:
                for vs, r in zip(task.outvars, result):
                    for v in vs:
                        if v.writer is task:
                            v.writer = None
                        if v.readers and v.key is None:  # still read: known by its memory
                            key = id(_root(r))
                            if key not in self._vars:
                                v.key = key
                                self._vars[key] = v
            for d in task.dependents:
                d.waits -= 1
                if d.waits == 0:
                    start.append(d)
            task.dependents = []
            fin = self._finished
            fin.add(task.seq)
            done = self._done
            while done + 1 in fin:
                done += 1
                fin.discard(done)
            self._done = done
        task.reads = task.writes = task.outvars = ()
        for d in start:
            self._pool(d.device)[0].put(d)

    def _drop(self, v: _Var) -> None:
        if self._vars.get(v.key) is v:
            del self._vars[v.key]
        v.key = None

    def _check_fresh(self, task: _Task, result) -> None:
        """An operator without ``views`` promises fresh outputs; a kernel that returned
        memory of an input breaks the order the engine chose.  Learn it (later calls are
        ordered as views) and say so once."""
        for r in result:
            if getattr(r, "base", None) is None:
                continue
            root = _root(r)
            for a in task.args or ():
                if type(a) is Pending:
                    a = a._task.result[a._index] if a._task.result is not None else None
                if a is not None and hasattr(a, "shape") and _root(a) is root:
                    task.op.views = True
                    if task.op.name not in self._warned:
                        self._warned.add(task.op.name)
                        import warnings
                        warnings.warn(f"operator {task.op.name!r}: a kernel returned a view "
                                      "of its input but the operator does not declare "
                                      "views=True; the threaded engine orders it as a view "
                                      "from now on", RuntimeWarning, stacklevel=1)
                    return

    def _before_fork(self) -> None:
        """Let the queue drain before a fork (a DataLoader starting its workers): the
        child then starts with no kernel half-taken by the parent's workers."""
        if not self._stop and threading.get_ident() not in self._running:
            self._wait(self._pushed)

    def _after_fork_in_child(self) -> None:
        """A forked child (a DataLoader worker) has none of the parent's threads: new
        locks, new workers for what is still queued, and the kernels the parent's workers
        were running counted as failed (their outputs were never made here)."""
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._waiting = 0
        running = list(self._running.values())
        self._running = {}
        queued = []
        for ready, _ in self._pools.values():
            while True:
                try:
                    t = ready.get_nowait()
                except queue.Empty:
                    break
                if t is not None:
                    queued.append(t)
        self._pools = {}
        for task in running:
            if not task.finished:
                task.error = RuntimeError(
                    f"operator {task.name!r} was running in the parent process when it "
                    "forked; its outputs do not exist in the child")
                task.reported = True
                self._finish(task)
        for task in queued:
            self._pool(task.device)[0].put(task)

    def _execute(self, task: _Task) -> None:
        args = []
        for a in task.args:
            if type(a) is Pending:
                src = a._task
                if src.error is not None:  # a failed input: fail with its cause
                    self._fail(task, src.error, reported=True)
                    return
                a = src.result[a._index]
            args.append(a)
        try:
            out = task.context.run(task.fn, *args, **task.attrs)
        except Exception as exc:  # noqa: BLE001 - raised at the next sync point
            from mxcore.dispatch import _error  # the naive engine's words for it
            error = _error(task.op, exc, args, task.device, task.attrs)
            if error is not exc:
                error.__cause__ = exc
            self._fail(task, error)
            return
        task.result = out if type(out) is tuple else (out,)
        task.args = args  # resolved: the fresh-output check reads them
        task.fn = task.attrs = task.context = None  # keep nothing else alive

    def _fail(self, task: _Task, exc: BaseException, reported: bool = False) -> None:
        if not reported:
            exc.add_note(f"raised by operator {task.name!r} (inputs "
                         f"{[tuple(a.shape) for a in task.args if hasattr(a, 'shape')]}) "
                         f"queued at {task.where}; the threaded engine reports a kernel's "
                         "error at the next sync point")
        task.error = exc
        task.reported = reported
        for a in task.mutated:  # an array written in place is failed too
            if type(a) is Pending:
                a = a._task.result[a._index] if a._task.result is not None else None
            if a is not None:
                self._poisoned[id(_root(a))] = task
        if not reported:
            self._failed.append(task)
        task.fn = task.args = task.attrs = task.context = None

    # sync points --------------------------------------------------------------------------
    def _wait(self, seq: int, timeout: Optional[float] = None) -> None:
        """Until every task numbered up to ``seq`` has finished (or ``timeout`` seconds)."""
        if self._done >= seq:
            return
        if threading.get_ident() in self._running:  # a kernel reading a pending value
            raise RuntimeError("a threaded engine worker waited on the engine's own queue")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._waiting += 1
            try:
                while self._done < seq:
                    self._cond.wait(0.05)  # (workers notify; the timeout is a backstop)
                    if deadline is not None and time.monotonic() > deadline:
                        return
            finally:
                self._waiting -= 1

    def _report(self, task: _Task) -> None:
        task.reported = True
        for t in self._failed:  # the kernel whose error a dependent raises: seen too
            if t.error is task.error:
                t.reported = True
        for key in [k for k, t in self._poisoned.items() if t is task]:
            del self._poisoned[key]  # the array is usable again (the write left it whole)
        raise task.error

    def wait_to_read(self, data) -> None:
        # a placeholder waits for its kernel (value()); a plain array for the kernels
        # queued to write its memory in place, directly or through a placeholder
        if type(data) is Pending:
            data = data.value()
        else:
            self._wait(max(self._write_seq.get(id(_root(data)), 0), self._pending_write_seq))
        if self._poisoned:
            task = self._poisoned.get(id(_root(data)))
            if task is not None:
                self._report(task)

    def resolve(self, data):
        if type(data) is Pending:
            return data.value()
        return data

    def wait_all(self) -> None:
        self._wait(self._pushed)
        failed = [t for t in self._failed if not t.reported]
        self._failed.clear()
        self._poisoned.clear()
        if failed:
            self._report(failed[0])

    def shutdown(self) -> None:
        """Let the workers finish what is queued and stop (at interpreter exit)."""
        if not self._stop:
            self._stop = True
            self._wait_quietly()
            for ready, threads in self._pools.values():
                for _ in threads:
                    ready.put(None)
        for device, (_, threads) in list(self._pools.items()):
            for t in threads:
                t.join(timeout=10)
            if len(threads) > 1 and device is not None:  # one kernel at a time again
                from mxcore.device import device_type
                device_type(device).set_concurrency(1)

    def _wait_quietly(self) -> None:
        try:
            if threading.get_ident() not in self._running:
                self._wait(self._pushed, timeout=10)
        except Exception:  # noqa: BLE001 - at exit: errors nobody waited for stay unseen
            pass
