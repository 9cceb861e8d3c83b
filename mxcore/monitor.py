"""``mx.monitor.Monitor`` (also ``mx.mon``): statistics of the arrays a network computes,
for debugging a training run, as in MXNet 1.x.

A Monitor installed on an executor (``mon.install(exe)``) receives every op output of
the executor's forward passes and the gradients its backward passes compute
(``fc1_backward_output1``: ``pattern='.*backward.*'`` keeps those) -- and every op
input too with ``monitor_all=True`` (``data``, ``fc1_data``) -- through
:meth:`Executor.set_monitor_callback`, named as MXNet 1.9.1 names them.  Every
``interval`` batches it turns on between :meth:`Monitor.tic` (before the forward) and
:meth:`Monitor.toc` (after the batch): it keeps ``stat_func`` of each array whose name
matches ``pattern`` and, at ``toc``, of the executor's arguments (weights, data,
labels) and auxiliary states.
``toc`` returns ``(step, name, stat string)`` triples, ``toc_print`` logs them as
``Batch: <step> <name> <stat>`` through :mod:`logging` at INFO level.

The default statistic is ``norm(x) / sqrt(x.size)``, the root mean square of the
array.  Steps count the ``tic`` calls: the batch of the first ``tic`` is step 1.

Example::

    import logging
    import mxcore as mx

    logging.basicConfig(level=logging.INFO)
    data = mx.sym.var("data")
    net = mx.sym.FullyConnected(data, num_hidden=3, name="fc1")
    net = mx.sym.SoftmaxOutput(net, name="softmax")
    mod = mx.mod.Module(net)
    mon = mx.monitor.Monitor(interval=10, pattern="fc1_.*", sort=True)
    mod.fit(train_iter, num_epoch=2, monitor=mon)   # logs every 10th batch

    # by hand, on an executor
    exe = net.simple_bind(mx.cpu(), data=(4, 5))
    mon = mx.monitor.Monitor(1)
    mon.install(exe)
    mon.tic()
    exe.forward(is_train=True)
    for step, name, stat in mon.toc():
        print(step, name, stat)

Besides executors (and objects with ``set_monitor_callback``), ``install`` takes a
Module (it calls the module's ``install_monitor``, which installs the monitor on the
module's executor) and, as an mxcore extension, a Gluon ``HybridBlock``: the monitor
is registered through ``HybridBlock.register_op_hook``, so it sees the ops of the
block's *hybridized* calls (names as the op hook gives them, ``dense0_fwd_output``),
and ``toc`` adds the block's initialised parameters in place of an executor's
arguments.
"""
from __future__ import annotations

import logging
import re
from math import sqrt
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

from mxcore import ndarray
from mxcore.ndarray import NDArray

__all__ = ["Monitor"]

#: what ``stat_func`` returns: one NDArray or a list of them
Stat = Union[NDArray, Sequence[NDArray]]


def _norm_stat(x: NDArray) -> NDArray:
    """The default statistic: ``norm(x) / sqrt(x.size)`` (the root mean square)."""
    return ndarray.norm(x) / sqrt(x.size)


def _as_str(name: Union[bytes, str]) -> str:
    return name.decode("utf-8") if isinstance(name, (bytes, bytearray)) else str(name)


class Monitor:
    """Monitor the inputs, outputs, weights and auxiliary states of executors.

    Parameters
    ----------
    interval : int
        Collect statistics every ``interval`` batches (``tic`` calls), starting with
        the first.
    stat_func : callable, optional
        Takes an NDArray, returns an NDArray (or a list of NDArrays) of statistics.
        Defaults to ``norm(x) / sqrt(x.size)``.
    pattern : str
        Regular expression; only arrays whose names it matches (``re.match``: from the
        start of the name) are kept.  ``'.*weight|.*output'`` keeps weights and outputs.
    sort : bool
        Sort ``toc``'s results by name (a stable sort) instead of keeping the order in
        which they were collected (op arrays as they ran, then arguments, then
        auxiliary states).
    monitor_all : bool
        Also monitor the inputs of each op, not only its outputs.
    """

    def __init__(self, interval: int, stat_func: Optional[Callable[[NDArray], Stat]] = None,
                 pattern: str = ".*", sort: bool = False, monitor_all: bool = False):
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"Monitor: interval must be a positive int, got {interval!r}")
        self.stat_func = _norm_stat if stat_func is None else stat_func
        self.interval = interval
        self.activated = False
        self.queue: List[Tuple[int, str, Stat]] = []
        self.step = 0
        self.exes: List[Any] = []
        self.re_prog = re.compile(pattern)
        self.sort = sort
        self.monitor_all = monitor_all

    # callbacks ----------------------------------------------------------------------------
    def stat_helper(self, name: Union[bytes, str], array: NDArray) -> None:
        """The executor callback: keep ``stat_func(array)`` while collecting, when the
        name matches the pattern."""
        if not self.activated:
            return
        name = _as_str(name)
        if self.re_prog.match(name):
            self.queue.append((self.step, name, self.stat_func(array)))

    def _op_hook(self, name: Union[bytes, str], op_name: Union[bytes, str],
                 array: NDArray) -> None:
        self.stat_helper(name, array)

    def install(self, exe: Any) -> None:
        """Install the monitor on ``exe``; a monitor may be installed on several.

        ``exe``: an Executor (``symbol.bind``/``simple_bind``), a Module (its
        ``install_monitor`` installs the monitor on its executor; bind it first) or a
        Gluon HybridBlock (through ``register_op_hook``; reported while it runs
        hybridized).
        """
        from mxcore.gluon.block import HybridBlock
        if isinstance(exe, HybridBlock):
            exe.register_op_hook(self._op_hook, self.monitor_all)
        elif callable(getattr(exe, "set_monitor_callback", None)):
            exe.set_monitor_callback(self.stat_helper, self.monitor_all)
        elif callable(getattr(exe, "install_monitor", None)):
            exe.install_monitor(self)  # a module: it installs on its executor(s)
            return
        else:
            raise TypeError(f"Monitor.install: expected an Executor, a Module or a Gluon "
                            f"HybridBlock, got {type(exe).__module__}.{type(exe).__name__}")
        self.exes.append(exe)

    # per batch -----------------------------------------------------------------------------
    def _named_arrays(self, exe: Any) -> List[Tuple[str, NDArray]]:
        """What ``toc`` adds for ``exe``: an executor's arguments then auxiliary states;
        a block's initialised parameters."""
        from mxcore.gluon.block import HybridBlock
        if isinstance(exe, HybridBlock):
            return [(p.name, p._data[0]) for p in exe.collect_params().values()
                    if p._data]
        return list(exe.arg_dict.items()) + list(exe.aux_dict.items())

    def _wait(self) -> None:
        for exe in self.exes:
            for _, array in self._named_arrays(exe):
                array.wait_to_read()

    def tic(self) -> None:
        """Start a batch: call before its forward.  Every ``interval``-th call (the
        first included) starts collecting, dropping what was collected before."""
        if self.step % self.interval == 0:
            self._wait()
            self.queue = []
            self.activated = True
        self.step += 1

    def toc(self) -> List[Tuple[int, str, str]]:
        """End the batch: ``(step, name, stat)`` for what was collected since ``tic``
        and for the executors' arguments and auxiliary states (``[]`` when this batch
        was not collected).  ``stat`` is each statistic followed by a tab: a number for
        a one-element statistic, else the array as numpy prints it."""
        if not self.activated:
            return []
        self._wait()
        for exe in self.exes:
            for name, array in self._named_arrays(exe):
                if self.re_prog.match(name):
                    self.queue.append((self.step, name, self.stat_func(array)))
        self.activated = False
        queue, self.queue = self.queue, []
        if self.sort:
            queue.sort(key=lambda item: item[1])
        return [(step, name, _format(name, stats)) for step, name, stats in queue]

    def toc_print(self) -> None:
        """End the batch and log its statistics (``logging.info``), one line each."""
        for step, name, stat in self.toc():
            logging.info("Batch: {:7d} {:30s} {:s}".format(step, name, stat))


def _format(name: str, stats: Stat) -> str:
    if isinstance(stats, NDArray):
        stats = [stats]
    if not isinstance(stats, (list, tuple)) or not all(isinstance(v, NDArray)
                                                       for v in stats):
        raise TypeError(f"Monitor: stat_func must return an NDArray or a list of NDArrays, "
                        f"got {type(stats).__name__} for {name!r}")
    out = ""
    for v in stats:
        out += (str(v.asscalar()) if v.shape == (1,) else str(v.asnumpy())) + "\t"
    return out
