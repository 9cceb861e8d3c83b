"""The threaded engine (MXNet's ``ThreadedEngine``): kernels run on a worker thread
while the caller goes on issuing operators.

``push`` asks the operator's rule for its outputs' shapes and dtypes, queues the kernel
and returns :class:`Pending` placeholders at once; NDArrays hold them as their ``_data``
(``shape`` and ``dtype`` are known, the values come later).  The worker runs the queued
kernels one after another, in the order they were pushed: a read after a write, a write
after a read and a write through a view are then ordered as the program wrote them,
without a dependency graph.  numpy, BLAS and CuPy release the GIL while they compute,
so the caller's Python (dispatch, autograd, the optimizer's bookkeeping) overlaps with
the kernels.

Sync points wait for every kernel queued so far (one of them may write the array in
place or through a view): ``wait_to_read`` (``asnumpy``, ``__array__``, printing...),
``wait_all`` (``mx.nd.waitall``), and anything else that reads a placeholder's value (an
attribute other than ``shape``/``dtype``/``ndim``/``size``).  A kernel
that fails marks its outputs failed; the error is raised at the next sync point that
touches them, with a note naming the operator, its inputs and the line of user code that
issued it.  Kernels that read a failed output fail with the same cause, without running;
independent kernels run.  ``wait_all`` raises the first error nobody has seen yet.

Calls the engine cannot infer (kernels outside the registry, such as a compiled plan's
fused chains, or ops without a rule) run synchronously after the queue drains.  The
queue is bounded (``MXCORE_ENGINE_QUEUE``, default 256 kernels): a producer far ahead
of the worker blocks, which bounds the memory held by pending outputs.
"""
from __future__ import annotations

import atexit
import contextvars
import os
import queue
import sys
import threading
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

    def value(self) -> Any:
        """The device array, once every kernel queued so far has run (a later kernel
        may write it in place); raises its kernel's error."""
        task = self._task
        eng = task.engine
        eng._wait(eng._pushed)
        if task.error is not None:
            eng._report(task)
        return task.result[self._index]

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


class _Task:
    __slots__ = ("engine", "seq", "fn", "args", "attrs", "op", "name", "where", "result",
                 "error", "reported", "mutated", "device", "context")

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


class ThreadedEngine:
    """Runs kernels on one worker thread, in push order (see the module docstring)."""

    name = "threaded"
    asynchronous = True  # kernels run later, elsewhere (the profiler times them there)

    def __init__(self, queue_size: Optional[int] = None):
        size = queue_size if queue_size is not None else \
            int(os.environ.get("MXCORE_ENGINE_QUEUE", "256"))
        if size < 1:
            raise ValueError(f"the threaded engine's queue needs room for one kernel, "
                             f"got {size}")
        self._size = size
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._cond = threading.Condition()       # sync points wait on it ...
        self._waiting = 0                        # ... and tell the worker they do
        self._pushed = 0      # sequence number of the last task pushed
        self._done = 0        # ... and of the last task the worker finished
        self._ops: Optional[Dict[Any, Any]] = None
        self._failed: list = []                   # tasks whose error nobody has seen
        self._poisoned: Dict[int, _Task] = {}    # id(root array) -> failed in-place write
        self._stop = False
        self._running: Optional[_Task] = None
        self._worker = threading.Thread(target=self._work, name="mxcore-engine-worker",
                                        daemon=True)
        self._worker.start()
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
        mutated = tuple(args[i] for i in mutates) if mutates else ()
        if self._pushed - self._done >= self._size:  # full: wait for the oldest to finish
            self._wait(self._pushed - self._size + 1)
        self._pushed = seq = self._pushed + 1  # only the issuing thread pushes
        task = _Task(self, seq, fn, args, attrs, op, _issuer(), mutated, device)
        self._queue.put(task)
        outs = tuple(Pending(task, i, tuple(s), hal.to_dtype(d))
                     for i, (s, d) in enumerate(zip(shapes, dtypes)))
        return outs[0] if op.nout == 1 else outs

    def _run_now(self, fn, args, attrs):
        """A call the engine cannot queue: after everything queued, in this thread."""
        self._wait(self._pushed)
        return fn(*[a.value() if type(a) is Pending else a for a in args], **attrs)

    # the worker -------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            task = self._queue.get()
            if task is None:  # shutdown
                return
            self._running = task
            self._execute(task)
            self._done = task.seq
            self._running = None
            if self._waiting:
                with self._cond:
                    self._cond.notify_all()
            del task  # a finished task's outputs live as long as their arrays only

    def _before_fork(self) -> None:
        """Let the queue drain before a fork (a DataLoader starting its workers): the
        child then starts with no kernel half-taken by the parent's worker."""
        if not self._stop and threading.current_thread() is not self._worker:
            self._wait(self._pushed)

    def _after_fork_in_child(self) -> None:
        """A forked child (a DataLoader worker) has none of the parent's threads: new
        locks, a new worker for what is still queued, and the kernel the parent's worker
        was running counted as failed (its outputs were never made here)."""
        self._cond = threading.Condition()
        self._waiting = 0
        running = self._running
        if running is not None and running.seq > self._done:
            running.error = RuntimeError(
                f"operator {running.name!r} was running in the parent process when it "
                "forked; its outputs do not exist in the child")
            running.reported = True
            self._done = running.seq
        self._running = None
        self._worker = threading.Thread(target=self._work, name="mxcore-engine-worker",
                                        daemon=True)
        self._worker.start()

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
        task.fn = task.args = task.attrs = task.context = None  # keep nothing else alive

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
    def _wait(self, seq: int) -> None:
        if self._done >= seq:
            return
        if threading.current_thread() is self._worker:  # a kernel reading a pending value
            raise RuntimeError("the threaded engine's worker waited on its own queue")
        with self._cond:
            self._waiting += 1
            try:
                while self._done < seq:
                    self._cond.wait(0.05)  # (the worker notifies; the timeout is a backstop)
            finally:
                self._waiting -= 1

    def _report(self, task: _Task) -> None:
        task.reported = True
        for key in [k for k, t in self._poisoned.items() if t is task]:
            del self._poisoned[key]  # the array is usable again (the write left it whole)
        raise task.error

    def wait_to_read(self, data) -> None:
        # every queued kernel first: a later one may write ``data`` in place (or
        # through a view), and views are not told apart here
        self._wait(self._pushed)
        if type(data) is Pending:
            data = data.value()
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
        """Let the worker finish what is queued and stop (at interpreter exit)."""
        if not self._stop:
            self._stop = True
            self._queue.put(None)
        self._worker.join(timeout=10)
