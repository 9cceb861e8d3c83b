"""``mx.mod.Module``: MXNet 1.x's symbolic training API over the executor.

A Module binds a symbol for given data/label shapes on one device, initialises its
parameters, and trains with an optimizer (``fit``: forward, backward, update, metric,
per batch).  New batch shapes (a short last batch) rebind the executor, sharing the
parameter arrays.  Checkpoints are MXNet's pair ``prefix-symbol.json`` +
``prefix-NNNN.params`` (mxcore's safetensors parameters; MXNet's binary ``.params``
load too), written atomically.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mxcore.base import MXCoreError
from mxcore.io.io import DataDesc


def _as_descs(shapes) -> List[DataDesc]:
    if shapes is None:
        return []
    out = []
    for s in shapes:
        out.append(s if isinstance(s, DataDesc) else DataDesc(s[0], s[1]))
    return out


class BaseModule:
    """What every module does with a bound executor: ``fit``, ``score``, ``predict``."""

    def __init__(self, logger=logging):
        self.logger = logger
        self.binded = False
        self.for_training = False
        self.inputs_need_grad = False
        self.params_initialized = False
        self.optimizer_initialized = False
        self._symbol = None

    @property
    def symbol(self):
        return self._symbol

    def forward_backward(self, data_batch) -> None:
        self.forward(data_batch, is_train=True)
        self.backward()

    def score(self, eval_data, eval_metric, num_batch: Optional[int] = None,
              batch_end_callback=None, score_end_callback=None, reset: bool = True,
              epoch: int = 0, sparse_row_id_fn=None):
        """Evaluate ``eval_metric`` over ``eval_data``; its ``get_name_value()``."""
        from mxcore import metric as _metric
        if not (self.binded and self.params_initialized):
            raise MXCoreError("score: bind the module and initialise its parameters first")
        if reset:
            eval_data.reset()
        if not isinstance(eval_metric, _metric.EvalMetric):
            eval_metric = _metric.create(eval_metric)
        eval_metric.reset()
        nbatch = 0
        for nbatch, batch in enumerate(eval_data):
            if num_batch is not None and nbatch == num_batch:
                break
            self.forward(batch, is_train=False)
            self.update_metric(eval_metric, batch.label, pre_sliced=False, pad=batch.pad)
            _call(batch_end_callback, _Params(epoch, nbatch, eval_metric, locals()))
        _call(score_end_callback, _Params(epoch, nbatch, eval_metric, locals()))
        return eval_metric.get_name_value()

    def iter_predict(self, eval_data, num_batch: Optional[int] = None, reset: bool = True):
        if reset:
            eval_data.reset()
        for nbatch, batch in enumerate(eval_data):
            if num_batch is not None and nbatch == num_batch:
                break
            self.forward(batch, is_train=False)
            pad = batch.pad or 0
            outputs = [o[0:o.shape[0] - pad] for o in self.get_outputs()]
            yield outputs, nbatch, batch

    def predict(self, eval_data, num_batch: Optional[int] = None, merge_batches: bool = True,
                reset: bool = True, always_output_list: bool = False,
                sparse_row_id_fn=None):
        """Outputs over ``eval_data`` (padding removed), concatenated over batches."""
        from mxcore import ndarray as nd
        if isinstance(eval_data, (nd.NDArray, np.ndarray)):
            from mxcore.io.io import NDArrayIter
            eval_data = NDArrayIter(eval_data, batch_size=eval_data.shape[0])
        outputs = [[o.copy() for o in outs] for outs, _, _ in
                   self.iter_predict(eval_data, num_batch, reset)]
        if not outputs:
            return []
        if not merge_batches:
            return outputs
        merged = [nd.concat(*[b[i] for b in outputs], dim=0) for i in range(len(outputs[0]))]
        if len(merged) == 1 and not always_output_list:
            return merged[0]
        return merged

    def fit(self, train_data, eval_data=None, eval_metric="acc", epoch_end_callback=None,
            batch_end_callback=None, kvstore="local", optimizer="sgd",
            optimizer_params=(("learning_rate", 0.01),), eval_end_callback=None,
            eval_batch_end_callback=None, initializer=None, arg_params=None,
            aux_params=None, allow_missing: bool = False, force_rebind: bool = False,
            force_init: bool = False, begin_epoch: int = 0, num_epoch: Optional[int] = None,
            validation_metric=None, monitor=None, sparse_row_id_fn=None):
        """Train for ``num_epoch`` epochs over ``train_data``.  ``monitor`` (an
        ``mx.monitor.Monitor``) is installed on the executor and brackets every batch
        with ``tic`` / ``toc_print``."""
        from mxcore import initializer as _init
        from mxcore import metric as _metric
        if num_epoch is None:
            raise MXCoreError("fit: give num_epoch")
        self.bind(data_shapes=train_data.provide_data, label_shapes=train_data.provide_label,
                  for_training=True, force_rebind=force_rebind)
        if monitor is not None:
            self.install_monitor(monitor)
        self.init_params(initializer=initializer if initializer is not None
                         else _init.Uniform(0.01), arg_params=arg_params,
                         aux_params=aux_params, allow_missing=allow_missing,
                         force_init=force_init)
        self.init_optimizer(kvstore=kvstore, optimizer=optimizer,
                            optimizer_params=optimizer_params)
        if validation_metric is None:
            validation_metric = eval_metric
        if not isinstance(eval_metric, _metric.EvalMetric):
            eval_metric = _metric.create(eval_metric)
        for epoch in range(begin_epoch, num_epoch):
            tic = time.time()
            eval_metric.reset()
            nbatch = 0
            for nbatch, batch in enumerate(train_data):
                if monitor is not None:
                    monitor.tic()
                self.forward_backward(batch)
                self.update()
                self.update_metric(eval_metric, batch.label, pad=batch.pad)
                if monitor is not None:
                    monitor.toc_print()
                _call(batch_end_callback, _Params(epoch, nbatch, eval_metric, locals()))
            for name, val in eval_metric.get_name_value():
                self.logger.info("Epoch[%d] Train-%s=%f", epoch, name, val)
            self.logger.info("Epoch[%d] Time cost=%.3f", epoch, time.time() - tic)
            arg_params_, aux_params_ = self.get_params()
            self.set_params(arg_params_, aux_params_)
            _call(epoch_end_callback, epoch, self.symbol, arg_params_, aux_params_)
            if eval_data is not None:
                res = self.score(eval_data, validation_metric,
                                 score_end_callback=eval_end_callback,
                                 batch_end_callback=eval_batch_end_callback, epoch=epoch)
                for name, val in res:
                    self.logger.info("Epoch[%d] Validation-%s=%f", epoch, name, val)
            train_data.reset()


class _Params:
    """What MXNet passes to batch-end callbacks (BatchEndParam)."""

    def __init__(self, epoch, nbatch, eval_metric, local_vars):
        self.epoch = epoch
        self.nbatch = nbatch
        self.eval_metric = eval_metric
        self.locals = local_vars


def _call(callbacks, *args) -> None:
    if callbacks is None:
        return
    for cb in callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]:
        cb(*args)


class Module(BaseModule):
    """A symbol with its parameters and optimizer on one device."""

    def __init__(self, symbol, data_names: Sequence[str] = ("data",),
                 label_names: Optional[Sequence[str]] = ("softmax_label",), logger=logging,
                 context=None, work_load_list=None, fixed_param_names=None,
                 state_names=None, group2ctxs=None, compression_params=None):
        from mxcore.device import default_device
        super().__init__(logger)
        if isinstance(context, (list, tuple)):
            if len(context) != 1:
                raise MXCoreError("Module runs on one device; data parallelism over several "
                                  "is Gluon's Trainer + split_and_load")
            context = context[0]
        self._context = context if context is not None else default_device()
        self._symbol = symbol
        self._data_names = list(data_names or [])
        self._label_names = list(label_names or [])
        self._state_names = list(state_names or [])
        self._fixed_param_names = list(fixed_param_names or [])
        args = symbol.list_arguments()
        inputs = self._data_names + self._label_names + self._state_names
        for name in self._data_names:
            if name not in args:
                raise MXCoreError(f"Module: data name {name!r} is not an argument of the "
                                  f"symbol (arguments: {args})")
        self._label_names = [n for n in self._label_names if n in args]
        self._param_names = [n for n in args if n not in inputs]
        self._aux_names = symbol.list_auxiliary_states()
        self._output_names = symbol.list_outputs()
        self._arg_params: Optional[Dict[str, Any]] = None
        self._aux_params: Optional[Dict[str, Any]] = None
        self._exec = None
        self._data_shapes: List[DataDesc] = []
        self._label_shapes: List[DataDesc] = []
        self._optimizer = None
        self._updater = None
        self._grad_req = "write"
        self._preload_opt_states = None

    # names and shapes ------------------------------------------------------------------------------
    @property
    def data_names(self) -> List[str]:
        return self._data_names

    @property
    def label_names(self) -> List[str]:
        return self._label_names

    @property
    def output_names(self) -> List[str]:
        return self._output_names

    @property
    def data_shapes(self) -> List[DataDesc]:
        return self._data_shapes

    @property
    def label_shapes(self) -> List[DataDesc]:
        return self._label_shapes

    @property
    def output_shapes(self) -> List[Tuple[str, Tuple[int, ...]]]:
        shapes = {d.name: d.shape for d in self._data_shapes + self._label_shapes}
        _, out, _ = self._symbol.infer_shape(**shapes)
        return list(zip(self._output_names, out))

    # binding ----------------------------------------------------------------------------------------
    def bind(self, data_shapes, label_shapes=None, for_training: bool = True,
             inputs_need_grad: bool = False, force_rebind: bool = False, shared_module=None,
             grad_req="write") -> None:
        if self.binded and not force_rebind:
            self.logger.warning("Already bound, ignoring bind()")
            return
        self.for_training = for_training
        self.inputs_need_grad = inputs_need_grad
        self._grad_req = grad_req
        self._data_shapes = _as_descs(data_shapes)
        self._label_shapes = _as_descs(label_shapes) if label_shapes else []
        names = [d.name for d in self._data_shapes]
        if sorted(names) != sorted(self._data_names):
            raise MXCoreError(f"bind: data shapes name {names}, the module's data names are "
                              f"{self._data_names}")
        self._exec = self._make_executor(shared_module)
        self.binded = True

    def _reqs(self) -> Dict[str, str]:
        """Per argument: ``grad_req`` (a str, or a dict by name) for trained parameters and,
        with ``inputs_need_grad``, for the data; 'null' for the rest (as MXNet)."""
        given = self._grad_req

        def req(name: str) -> str:
            return given.get(name, "null") if isinstance(given, dict) else given

        reqs = {}
        for name in self._symbol.list_arguments():
            if name in self._param_names:
                reqs[name] = "null" if (not self.for_training or
                                        name in self._fixed_param_names) else req(name)
            elif name in self._data_names:
                reqs[name] = req(name) if self.inputs_need_grad else "null"
            else:
                reqs[name] = "null"
        return reqs

    def _make_executor(self, shared_module=None):
        from mxcore.graph.executor import Executor
        shapes = {d.name: d.shape for d in self._data_shapes + self._label_shapes}
        types = {d.name: np.dtype(d.dtype).name for d in self._data_shapes + self._label_shapes
                 if getattr(d, "dtype", None) is not None}
        exe = Executor.simple_bind(self._symbol, self._context, self._reqs(), types, shapes)
        source = shared_module if shared_module is not None else self
        if source._arg_params is not None:  # share the parameter arrays
            exe = Executor(self._symbol, self._context,
                           {**exe.arg_dict, **{n: source._arg_params[n]
                                               for n in self._param_names}},
                           {**{n: g for n, g in exe.grad_dict.items() if g is not None},
                            **source._param_grads()},
                           self._reqs(), {**exe.aux_dict, **source._aux_params})
        if shared_module is not None:
            self._arg_params, self._aux_params = shared_module._arg_params, \
                shared_module._aux_params
            self.params_initialized = shared_module.params_initialized
        return exe

    def _param_grads(self) -> Dict[str, Any]:
        if self._exec is None:
            return {}
        return {n: self._exec.grad_dict[n] for n in self._param_names
                if self._exec.grad_dict.get(n) is not None}

    def reshape(self, data_shapes, label_shapes=None) -> None:
        """Rebind for new input shapes, keeping the parameters."""
        self._data_shapes = _as_descs(data_shapes)
        self._label_shapes = _as_descs(label_shapes) if label_shapes else []
        old = self._exec
        self._exec = self._make_executor()
        monitor = getattr(old, "_monitor", None)
        if monitor is not None:  # a monitor installed on the module stays installed
            self._exec.set_monitor_callback(*monitor)

    # parameters --------------------------------------------------------------------------------------
    def init_params(self, initializer=None, arg_params=None, aux_params=None,
                    allow_missing: bool = False, force_init: bool = False,
                    allow_extra: bool = False) -> None:
        from mxcore import initializer as _init
        from mxcore.initializer import InitDesc
        if self.params_initialized and not force_init:
            return
        if not self.binded:
            raise MXCoreError("init_params: call bind() first")
        if initializer is None:
            initializer = _init.Uniform(0.01)
        attrs = self._symbol.attr_dict()
        self._arg_params = {n: self._exec.arg_dict[n] for n in self._param_names}
        self._aux_params = {n: self._exec.aux_dict[n] for n in self._aux_names}
        for table, given in ((self._arg_params, arg_params), (self._aux_params, aux_params)):
            for name, arr in table.items():
                if given is not None and name in given:
                    src = given[name]
                    if tuple(src.shape) != tuple(arr.shape):
                        raise MXCoreError(f"init_params: {name!r} has shape {src.shape}, "
                                          f"the module needs {arr.shape}")
                    arr[:] = src
                elif given is not None and not allow_missing:
                    raise MXCoreError(f"init_params: {name!r} is missing from the given "
                                      "parameters (allow_missing=True initialises it)")
                else:
                    initializer(InitDesc(name, attrs.get(name)), arr)
        if not allow_extra:
            for given, table in ((arg_params, self._arg_params), (aux_params, self._aux_params)):
                extra = sorted(set(given or {}) - set(table))
                if extra:
                    raise MXCoreError(f"init_params: {extra} are not parameters of the "
                                      "module (allow_extra=True ignores them)")
        self.params_initialized = True

    def get_params(self) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """Copies of the parameters and auxiliary states."""
        if not self.params_initialized:
            raise MXCoreError("get_params: the parameters are not initialised")
        return ({n: a.copy() for n, a in self._arg_params.items()},
                {n: a.copy() for n, a in self._aux_params.items()})

    def set_params(self, arg_params, aux_params, allow_missing: bool = False,
                   force_init: bool = True, allow_extra: bool = False) -> None:
        if not self.params_initialized or force_init:
            if not self.params_initialized:
                self.init_params(None, arg_params, aux_params, allow_missing, True,
                                 allow_extra)
                return
            for table, given in ((self._arg_params, arg_params),
                                 (self._aux_params, aux_params)):
                for name, value in (given or {}).items():
                    if name in table:
                        if table[name] is not value:
                            table[name][:] = value
                    elif not allow_extra:
                        raise MXCoreError(f"set_params: {name!r} is not a parameter")

    # training ---------------------------------------------------------------------------------------
    def init_optimizer(self, kvstore="local", optimizer="sgd",
                       optimizer_params=(("learning_rate", 0.01),),
                       force_init: bool = False) -> None:
        from mxcore import optimizer as _opt
        if self.optimizer_initialized and not force_init:
            self.logger.warning("optimizer already initialized, ignoring...")
            return
        batch = self._data_shapes[0].shape[0] if self._data_shapes else 1
        idx2name = dict(enumerate(self._param_names))
        if isinstance(optimizer, str):
            params = dict(optimizer_params)
            params.setdefault("rescale_grad", 1.0 / batch)
            optimizer = _opt.create(optimizer, sym=self._symbol, param_idx2name=idx2name,
                                    **params)
        else:
            optimizer.idx2name = idx2name.copy()
        self._optimizer = optimizer
        self._updater = _opt.get_updater(optimizer)
        self.optimizer_initialized = True
        if self._preload_opt_states is not None:
            self.load_optimizer_states(self._preload_opt_states)
            self._preload_opt_states = None

    def forward(self, data_batch, is_train: Optional[bool] = None) -> None:
        if not (self.binded and self.params_initialized):
            raise MXCoreError("forward: bind the module and initialise its parameters first")
        if is_train is None:
            is_train = self.for_training
        data = list(data_batch.data)
        labels = list(data_batch.label or []) if self._label_names else []
        shapes = [tuple(d.shape) for d in data]
        bound = [tuple(d.shape) for d in self._data_shapes]
        if shapes != bound:
            lshapes = [DataDesc(n, tuple(l.shape)) for n, l in zip(self._label_names, labels)]
            self.reshape([DataDesc(d.name, s) for d, s in zip(self._data_shapes, shapes)],
                         lshapes or self._label_shapes)
        feed = dict(zip(self._data_names, data))
        feed.update(zip(self._label_names, labels))
        exe = self._exec
        for name, value in feed.items():
            dst = exe.arg_dict[name]
            if value is not dst:
                dst[:] = value.astype(dst.dtype) if value.dtype != dst.dtype else value
        exe.forward(is_train=is_train)

    def backward(self, out_grads=None) -> None:
        if not self.for_training:
            raise MXCoreError("backward: the module was bound with for_training=False")
        self._exec.backward(out_grads)

    def update(self) -> None:
        if not self.optimizer_initialized:
            raise MXCoreError("update: call init_optimizer() first")
        grads = self._exec.grad_dict
        idx, ws, gs = [], [], []
        for i, name in enumerate(self._param_names):
            g = grads.get(name)
            if g is None:
                continue
            idx.append(i)
            ws.append(self._arg_params[name])
            gs.append(g)
        if idx:
            self._updater(idx, gs, ws)

    def get_outputs(self, merge_multi_context: bool = True) -> List[Any]:
        return list(self._exec.outputs)

    def get_input_grads(self, merge_multi_context: bool = True) -> List[Any]:
        if not self.inputs_need_grad:
            raise MXCoreError("get_input_grads: bind with inputs_need_grad=True")
        return [self._exec.grad_dict[n] for n in self._data_names]

    def update_metric(self, eval_metric, labels, pre_sliced: bool = False, pad=None) -> None:
        outputs = self.get_outputs()
        if pad:
            outputs = [o[0:o.shape[0] - pad] for o in outputs]
            labels = [l[0:l.shape[0] - pad] for l in labels]
        eval_metric.update(labels, outputs)

    # checkpoints ----------------------------------------------------------------------------------
    def save_params(self, fname: str) -> None:
        """``arg:``/``aux:``-prefixed parameters in one safetensors file (atomic)."""
        from mxcore.serialization import save_arrays
        arg, aux = self.get_params()
        arrays = {f"arg:{k}": v.asnumpy() for k, v in arg.items()}
        arrays.update({f"aux:{k}": v.asnumpy() for k, v in aux.items()})
        save_arrays(fname, arrays, {"format": "mxcore-checkpoint", "version": "1"})

    def load_params(self, fname: str) -> None:
        arg, aux = load_params_file(fname, self._context)
        self.set_params(arg, aux, allow_missing=False, force_init=True)

    def save_checkpoint(self, prefix: str, epoch: int, save_optimizer_states: bool = False,
                        remove_amp_cast: bool = True) -> None:
        self._symbol.save(f"{prefix}-symbol.json", remove_amp_cast=remove_amp_cast)
        self.save_params(f"{prefix}-{epoch:04d}.params")
        if save_optimizer_states:
            self.save_optimizer_states(f"{prefix}-{epoch:04d}.states")

    @staticmethod
    def load(prefix: str, epoch: int, load_optimizer_states: bool = False, **kwargs) -> "Module":
        from mxcore.model import load_checkpoint
        sym, args, auxs = load_checkpoint(prefix, epoch)
        mod = Module(symbol=sym, **kwargs)
        # bound later: bind() makes the executor over these arrays
        mod._arg_params, mod._aux_params = args, auxs
        mod.params_initialized = True
        if load_optimizer_states:
            mod._preload_opt_states = f"{prefix}-{epoch:04d}.states"
        return mod

    def save_optimizer_states(self, fname: str) -> None:
        if not self.optimizer_initialized:
            raise MXCoreError("save_optimizer_states: no optimizer yet")
        with open(fname, "wb") as f:
            f.write(self._updater.get_states(dump_optimizer=False))

    def load_optimizer_states(self, fname: str) -> None:
        if not self.optimizer_initialized:
            raise MXCoreError("load_optimizer_states: call init_optimizer() first")
        with open(fname, "rb") as f:
            self._updater.set_states(f.read())

    def install_monitor(self, mon) -> None:
        """Install ``mon`` (an ``mx.monitor.Monitor``) on the module's executor; bind the
        module first.  An executor the module rebinds for new batch shapes keeps the
        monitor's callback (the monitor's ``toc`` keeps reading the arguments of the
        executor it was installed on, as in MXNet)."""
        if not self.binded:
            raise MXCoreError("install_monitor: bind the module first")
        mon.install(self._exec)


def load_params_file(fname: str, ctx=None) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(arg_params, aux_params) of a checkpoint's parameter file: mxcore's safetensors
    or MXNet's binary ``.params`` (``arg:``/``aux:`` prefixed names)."""
    from mxcore import ndarray as nd
    from mxcore.serialization import load_arrays
    arrays, _ = load_arrays(fname)
    arg, aux = {}, {}
    for key, value in arrays.items():
        kind, _, name = key.partition(":")
        if kind not in ("arg", "aux") or not name:
            raise MXCoreError(f"{fname}: {key!r} is not a checkpoint entry (names must "
                              "start with 'arg:' or 'aux:')")
        (arg if kind == "arg" else aux)[name] = nd.array(value, ctx=ctx, dtype=value.dtype)
    return arg, aux
