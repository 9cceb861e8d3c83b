"""``gluon.Trainer``: applies an optimizer to a set of Parameters (MXNet 1.x).

Parameters on one device (or ``kvstore=None``) need no kvstore: each step hands
every fresh gradient of a device to that device's updater in one call, so
optimizers with a multi-weight op (SGD, Adam...) update all weights in one
kernel.  Parameters copied on several devices are synchronised through a kvstore
(``kvstore='device'`` by default, any ``mx.kv`` store or type name): either the
store sums the gradients and runs the optimizer, then every copy takes the new
weights (``update_on_kvstore``, MXNet's default; ``MXCORE_UPDATE_ON_KVSTORE=0``
or ``MXNET_UPDATE_ON_KVSTORE=0`` changes the default), or the store only sums
the gradients and each device updates its own copy (``update_on_kvstore=False``;
``allreduce_grads`` and ``update`` then also run separately).

Optimizer states are saved as safetensors + JSON (``mxcore.kvstore.states``); a
file written on either path loads on the other.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

import numpy as np

from mxcore.base import MXCoreError
from mxcore.gluon.parameter import Parameter, ParameterDict
from mxcore.kvstore import states as _states
from mxcore.kvstore.base import KVStoreBase
from mxcore.kvstore.kvstore import KVStore

__all__ = ["Trainer", "StaleGradientError", "TrainerError"]

#: MXNet's 'local' stores leave parameters bigger than this to the devices
_BIG_PARAMETER = 1024 * 1024 * 16


class StaleGradientError(MXCoreError, UserWarning):
    """A parameter's gradient was not written by backward since the last step
    (MXNet raises a UserWarning here, so this is one too)."""


class TrainerError(MXCoreError, AssertionError):
    """A Trainer call its kvstore configuration does not allow (MXNet asserts
    here, so this is an AssertionError too)."""


def _multi_process(kvstore) -> bool:
    """Whether ``kvstore`` (a type name or a store) spans several processes."""
    name = kvstore if isinstance(kvstore, str) else getattr(kvstore, "type", "")
    return isinstance(name, str) and "dist" in name


def _env_update_on_kvstore() -> bool:
    value = os.environ.get("MXCORE_UPDATE_ON_KVSTORE",
                           os.environ.get("MXNET_UPDATE_ON_KVSTORE", "1"))
    return bool(int(value))


def _param_list(params) -> List[Parameter]:
    """The parameters in MXNet's order (a dict's sorted keys), each once."""
    if isinstance(params, (dict, ParameterDict)):
        keys = list(params.keys())
        try:
            keys = sorted(keys)
        except TypeError:  # keys that do not compare keep their order
            pass
        params = [params[k] for k in keys]
    if not isinstance(params, (list, tuple)):
        raise ValueError("Trainer: params must be a ParameterDict, a dict or a list of "
                         f"Parameters, got {type(params).__name__}")
    out, seen = [], set()
    for p in params:
        if not isinstance(p, Parameter):
            raise ValueError(f"Trainer: params must be Parameters, got {type(p).__name__} "
                             f"{p!r}")
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


class Trainer:
    """Update ``params`` with ``optimizer`` (a name or an Optimizer).

    ``optimizer_params`` go to the optimizer (``learning_rate``, ``wd``,
    ``momentum``...).  ``kvstore`` (a type name, a store, or None) and
    ``update_on_kvstore`` (None: decided as MXNet does) choose how copies on
    several devices are kept in step; ``compression_params`` are given to the
    store's ``set_gradient_compression``.  ``step(batch_size)`` scales gradients
    by ``1/batch_size``, sums them across devices and updates every parameter in
    place.
    """

    def __init__(self, params, optimizer, optimizer_params: Optional[Dict] = None,
                 kvstore="device", compression_params: Optional[Dict] = None,
                 update_on_kvstore: Optional[bool] = None):
        self._params: List[Parameter] = _param_list(params)
        self._param2idx = {p.name: i for i, p in enumerate(self._params)}
        self._contains_sparse_weight = any(p._stype != "default" for p in self._params)
        self._contains_sparse_grad = any(p._grad_stype != "default" for p in self._params)
        self._compression_params = compression_params
        self._contexts = self._check_contexts()
        self._init_optimizer(optimizer, dict(optimizer_params or {}))
        self._scale = self._optimizer.rescale_grad
        self._kvstore_params = {"kvstore": kvstore, "update_on_kvstore": update_on_kvstore}
        self._kv_updater = None  # the store's updater, kept across _reset_kvstore
        self._overlap = None     # an OverlappedReduction; False: not possible; None: not tried
        self._overlap_hooks: list = []
        self._reset_kvstore()
        for p in self._params:
            p._set_trainer(self)
        if self._contexts is not None and _multi_process(kvstore):
            # every rank starts from rank 0's values before its first forward (MXNet
            # broadcasts at the first step, after each rank ran a forward of its own)
            self._prepare()

    def _check_contexts(self):
        """The devices of the (initialized or deferred) parameters: one list for all."""
        contexts = None
        for p in self._params:
            if p._data is None and not p._deferred_init:
                continue  # not initialized yet: checked again at the first step
            ctx = p.list_ctx()
            if contexts is not None and ctx != contexts:
                raise TrainerError(
                    "All Parameters must be initialized on the same set of contexts, but "
                    f"Parameter {p.name!r} is initialized on {ctx} while previous Parameters "
                    f"are initialized on {contexts}")
            contexts = ctx
        return contexts

    def _init_optimizer(self, optimizer, optimizer_params: Dict) -> None:
        from mxcore import optimizer as opt
        param_dict = {i: p for i, p in enumerate(self._params)}
        if isinstance(optimizer, opt.Optimizer):
            if optimizer_params:
                raise ValueError("optimizer_params must be empty when optimizer is an "
                                 "Optimizer instance")
            self._optimizer = optimizer
            # not a copy: lr_mult/wd_mult set on the Parameters later take effect
            self._optimizer.param_dict = param_dict
        else:
            self._optimizer = opt.create(optimizer, param_dict=param_dict, **optimizer_params)
        self._updaters = []
        self._sync_updaters()

    def _sync_updaters(self) -> None:
        """One updater per device (states keyed by parameter index); a device added
        later starts from the first updater's states, moved on first use."""
        from mxcore import optimizer as opt
        n = max(1, len(self._contexts or ()))
        while len(self._updaters) < n:
            updater = opt.get_updater(self._optimizer)
            if self._updaters:
                updater.states = dict(self._updaters[0].states)
                updater.states_synced = dict.fromkeys(updater.states, False)
            self._updaters.append(updater)
        del self._updaters[n:]

    # kvstore ----------------------------------------------------------------------------
    def _reset_kvstore(self) -> None:
        """Forget the store; the next step makes it again from the parameters."""
        kv = getattr(self, "_kvstore", None)
        if kv is not None and "dist" in kv.type:
            raise MXCoreError("Cannot reset distributed KVStore.")
        if kv is not None and self._update_on_kvstore:
            self._kv_updater = getattr(kv, "_updater", None)
        self._kv_initialized = False
        self._kvstore = None
        self._distributed = None
        self._update_on_kvstore = None
        self._params_to_init = list(self._params)

    def _param_data_changed(self, param: Parameter) -> None:
        """A parameter's value was replaced (``set_data``, loading, re-initialising,
        ``reset_ctx``): a store holding the weights must take it, and new devices
        need their updaters, before the next update."""
        self._disarm_overlap()
        if _multi_process(self._kvstore_params["kvstore"]) \
                and any(p is param for p in self._params_to_init):
            # a deferred parameter got its value in its block's first forward: every
            # rank takes rank 0's value now, before that forward reads it (MXNet waits
            # for the first step, after each rank's forward and backward ran on values
            # of its own). Ranks finish parameters in the same order, so the broadcasts
            # pair up.
            from mxcore import autograd
            with autograd.pause():
                self._prepare()
            return
        if not self._kv_initialized:
            return
        moved = param._ctx_list != self._contexts
        if moved or (self._update_on_kvstore
                     and all(p is not param for p in self._params_to_init)):
            self._reset_kvstore()

    def _create_kvstore(self, kvstore, num_device: int):
        """(store or None, update on it?) as MXNet's ``model._create_kvstore``."""
        from mxcore import kvstore as kvs
        update = _env_update_on_kvstore()
        if kvstore is None:
            kv = None
        elif isinstance(kvstore, KVStoreBase):
            kv = kvstore
        elif isinstance(kvstore, str):
            if num_device == 1 and "dist" not in kvstore:
                kv = None  # one device on one machine needs no store
            else:
                kv = kvs.create(kvstore)
                if kvstore == "local" and max(
                        (int(np.prod(p.shape)) for p in self._params if p.shape),
                        default=0) > _BIG_PARAMETER:
                    update = False
        else:
            raise TypeError(f"kvstore must be a KVStore, a str or None, got "
                            f"{type(kvstore).__name__}")
        if kv is None:
            return None, False
        return kv, update and kv.is_capable(KVStoreBase.OPTIMIZER)

    def _create_sparse_kvstore(self, kvstore):
        from mxcore import kvstore as kvs
        if isinstance(kvstore, KVStoreBase):
            kv = kvstore
        elif isinstance(kvstore, str):
            kv = kvs.create(kvstore)
        else:
            raise TypeError(f"Cannot create {kvstore!r} KVStore with row_sparse parameters. "
                            "The type must be KVStore or str.")
        if not kv.is_capable(KVStoreBase.OPTIMIZER):
            raise ValueError("KVStore with sparse weight requires optimizer support, which "
                             f"{type(kv).__name__} lacks")
        return kv

    def _init_kvstore(self) -> None:
        """Make the store and decide ``_update_on_kvstore`` (MXNet 1.9.1's rules)."""
        config = self._kvstore_params
        self._contexts = self._check_contexts() or self._contexts
        self._sync_updaters()
        num_device = len(self._contexts) if self._contexts else 1
        asked = config["update_on_kvstore"]
        if self._contains_sparse_weight:
            # the store keeps sparse weights and updates them
            kv, update = self._create_sparse_kvstore(config["kvstore"]), True
            if asked is False:
                raise ValueError("Cannot set update_on_kvstore=False when sparse weights "
                                 "are present.")
        elif self._contains_sparse_grad:
            # sparse gradients on one machine: the devices update (usually faster)
            kv, _ = self._create_kvstore(config["kvstore"], num_device)
            update = asked if asked is not None else False
            if kv is not None and not isinstance(kv, KVStore):
                raise ValueError(f"Cannot use {type(kv)} for multi-device training with "
                                 "sparse gradients")
        else:
            kv, update = self._create_kvstore(config["kvstore"], num_device)
            if kv is not None and "dist" in kv.type and "async" in kv.type:
                # the server applies each push: the workers cannot update
                update = True
                if asked is False:
                    raise ValueError("Please set update_on_kvstore=True when training in "
                                     "async mode.")
            if asked is not None:
                update = asked
            if update and kv is not None and not kv.is_capable(KVStoreBase.OPTIMIZER):
                if asked:
                    raise ValueError("Please set update_on_kvstore=False when training with "
                                     f"{type(kv)}")
                update = False
        if kv is not None:
            if self._compression_params:
                kv.set_gradient_compression(self._compression_params)
            if update:
                self._give_optimizer(kv)
            self._kvstore, self._update_on_kvstore = kv, bool(update)
            self._distributed = "dist" in kv.type
        else:
            self._kvstore, self._update_on_kvstore, self._distributed = None, None, False
        # with no parameter initialized yet, the devices are unknown: decide again later
        self._kv_initialized = self._contexts is not None

    def _give_optimizer(self, kv) -> None:
        """The store runs our optimizer, keeping the states of an earlier store."""
        from mxcore.optimizer import Updater
        kept = self._kv_updater
        if isinstance(kept, Updater) and isinstance(kv, KVStore):
            kept.optimizer = self._optimizer
            kv._set_updater(kept)
        else:
            kv.set_optimizer(self._optimizer)

    def _init_params(self) -> None:
        """Put the initialized parameters into the store (rank 0's value for all);
        those still waiting for their shape stay pending."""
        pending = []
        kv = self._kvstore
        if kv is not None:
            waiting = {id(p) for p in self._params_to_init}
            for i, p in enumerate(self._params):
                if id(p) not in waiting:
                    continue
                if p._data is None and p._deferred_init:
                    pending.append(p)
                    continue
                arrays = p.list_data()
                kv.broadcast(i, arrays[0], arrays)
        self._params_to_init = pending

    def _prepare(self) -> None:
        if not self._kv_initialized:
            self._init_kvstore()
        if self._params_to_init and self._kv_initialized:
            self._init_params()
        if self._overlap is None and self._kv_initialized and not self._params_to_init:
            self._arm_overlap()

    # gradients reduced while backward runs (mxcore.kvstore.overlap) ----------------------
    def _arm_overlap(self) -> None:
        """On a dist_* store (more than one rank, no compression) with one device per
        process and grad_req 'write': reduce each bucket of gradients as soon as
        backward has finished it (grad-ready hooks); step takes the sums."""
        from mxcore import autograd
        from mxcore.kvstore import overlap
        from mxcore.kvstore.dist import DistKVStore
        self._overlap = False  # tried: not possible here
        kv = self._kvstore
        if (not isinstance(kv, DistKVStore) or kv.num_workers < 2 or "async" in kv.type
                or kv._dist_threshold is not None or not overlap.enabled()):
            return
        trained = self._trained()
        if not trained or any(p.grad_req != "write" or len(p.list_data()) != 1
                              for _, p in trained):
            return
        reduction = overlap.OverlappedReduction(kv, [i for i, _ in trained],
                                                [p.list_grad()[0] for _, p in trained])
        self._overlap_hooks = [
            autograd.register_grad_ready_hook(p.list_data()[0],
                                              lambda a, key=i: reduction.ready(key))
            for i, p in trained]
        kv._overlap = self._overlap = reduction

    def _disarm_overlap(self) -> None:
        """Parameters changed: drop the hooks (what is in flight completes first, on every
        rank alike); the next step arms again."""
        reduction = self._overlap
        self._overlap = None
        if not reduction:
            return
        for handle in self._overlap_hooks:
            handle.remove()
        self._overlap_hooks = []
        reduction.finish((), ())
        if self._kvstore is not None and self._kvstore._overlap is reduction:
            self._kvstore._overlap = None

    def _row_sparse_pull(self, parameter: Parameter, out, row_id, full_idx: bool = False):
        """Copy a row_sparse parameter's value from the store into ``out`` (its arrays
        on some devices).  Storage is dense: all rows are pulled.  It runs inside
        forward passes, so the copies are written with recording paused (they are
        the store's value, which the recorded ops then read)."""
        from mxcore import autograd
        with autograd.pause():
            self._prepare()
            kv = self._kvstore
            if kv is None:
                return  # no store: the copies are the value
            idx = self._param2idx[parameter.name]
            if hasattr(kv, "pull"):
                kv.pull(idx, out=out)
            else:
                kv.row_sparse_pull(idx, out=out, row_ids=row_id)

    def _pull_from_kvstore(self) -> None:
        """Every trained parameter takes the store's value: on dist_async, where ranks
        hold the weights of their last pull, the server's latest (call after a
        ``kvstore.barrier()`` to take everyone's pushes)."""
        if self._on_kvstore():
            for i, p in self._trained():
                self._kvstore.pull(i, out=p.list_data())

    def _on_kvstore(self) -> bool:
        return self._kvstore is not None and bool(self._update_on_kvstore)

    # learning rate ----------------------------------------------------------------------
    @property
    def optimizer(self):
        return self._optimizer

    @property
    def learning_rate(self) -> float:
        return self._optimizer.learning_rate

    def set_learning_rate(self, lr: float) -> None:
        self._optimizer.set_learning_rate(lr)

    # steps ------------------------------------------------------------------------------
    def step(self, batch_size: int, ignore_stale_grad: bool = False) -> None:
        """One optimisation step for gradients summed over ``batch_size`` samples:
        ``allreduce_grads`` then ``update``.  A parameter whose gradient backward
        did not write since the last step raises StaleGradientError, or is skipped
        with ``ignore_stale_grad``."""
        self._optimizer.rescale_grad = self._scale / batch_size
        self._prepare()
        if self._on_kvstore():
            self._push_and_update(ignore_stale_grad)
            return
        if self._kvstore is not None and not ignore_stale_grad:
            for _, p in self._trained():  # raise before the reduction changes gradients
                for arr in p.list_data():
                    self._fresh(p, arr, False)
        self._allreduce_grads()
        self._update(ignore_stale_grad)

    def allreduce_grads(self) -> None:
        """Sum each parameter's gradients over its devices (through the kvstore),
        e.g. to clip them before ``update``.  Not available when the kvstore runs
        the optimizer (``update_on_kvstore``)."""
        self._prepare()
        if self._on_kvstore():
            raise TrainerError("allreduce_grads() when parameters are updated on kvstore is "
                               "not supported. Try setting `update_on_kvstore` to False when "
                               "creating trainer.")
        self._allreduce_grads()

    def update(self, batch_size: int, ignore_stale_grad: bool = False) -> None:
        """Apply the optimizer to the (already reduced) gradients: the second half of
        ``step``.  Not available when the kvstore runs the optimizer."""
        self._prepare()
        if self._on_kvstore():
            raise TrainerError("update() when parameters are updated on kvstore is not "
                               "supported. Try setting `update_on_kvstore` to False when "
                               "creating trainer.")
        self._optimizer.rescale_grad = self._scale / batch_size
        self._update(ignore_stale_grad)

    def _trained(self):
        return [(i, p) for i, p in enumerate(self._params) if p.grad_req != "null"]

    def _allreduce_grads(self) -> None:
        kv = self._kvstore
        if kv is None:
            return
        entries = self._trained()
        if isinstance(kv, KVStore):
            if entries:  # one call for all keys
                kv.pushpull([i for i, _ in entries], [p.list_grad() for _, p in entries])
            return
        for i, p in entries:
            kv.pushpull(i, p.list_grad(), priority=-i)

    def _push_and_update(self, ignore_stale_grad: bool) -> None:
        """update_on_kvstore: push the fresh gradients, pull the updated weights."""
        entries = []
        for i, p in self._trained():
            data = p.list_data()
            if all(self._fresh(p, arr, ignore_stale_grad) for arr in data):
                entries.append((i, p, data))
        for _, _, data in entries:
            for arr in data:
                arr._ag.fresh = False
        kv = self._kvstore
        if isinstance(kv, KVStore):
            if entries:
                kv.pushpull([i for i, _, _ in entries], [p.list_grad() for _, p, _ in entries],
                            out=[data for _, _, data in entries])
            return
        for i, p, data in entries:
            kv.pushpull(i, p.list_grad(), out=data, priority=-i)

    @staticmethod
    def _fresh(param: Parameter, arr, ignore_stale_grad: bool) -> bool:
        if arr._ag.fresh:
            return True
        if ignore_stale_grad:
            return False
        raise StaleGradientError(
            f"gradient of Parameter {param.name!r} on {arr.context!r} has not been updated "
            "by backward since the last step: this parameter may not be used in the loss. "
            "Call step(batch_size, ignore_stale_grad=True) to skip it, or set its grad_req "
            "to 'null'")

    def _update(self, ignore_stale_grad: bool) -> None:
        """Each device's updater takes all its fresh gradients in one call."""
        gathered = self._gather_fused()
        if gathered is not None:  # the usual step: the optimizer's one call
            self._begin_fused(gathered)
            self._optimizer._run_fused(*gathered)
            return
        updaters = self._updaters
        batches = [([], [], []) for _ in updaters]
        for i, p in enumerate(self._params):
            if p.grad_req == "null":
                continue
            data = p._data
            if data is None:
                p._check_initialized()
            if len(data) != len(updaters):
                raise TrainerError(f"Parameter {p.name!r} lives on {p.list_ctx()}, but the "
                                   f"Trainer's parameters live on {self._contexts}")
            for arr, (indices, grads, weights) in zip(data, batches):
                leaf = arr._ag
                if leaf.fresh or self._fresh(p, arr, ignore_stale_grad):
                    indices.append(i)
                    grads.append(leaf.grad)
                    weights.append(arr)
        for updater, (indices, grads, weights) in zip(updaters, batches):
            if indices:
                for arr in weights:
                    arr._ag.fresh = False
                updater(indices, grads, weights)

    def _gather_fused(self):
        """``(indices, weights, grads, states)`` when this step is one call of the
        optimizer's multi-weight op -- one device, its states made, an optimizer whose op
        takes every weight at once (one dtype, ``_fusable``), every gradient fresh -- or
        None (``_update``'s general path then runs, or says what is stale).  The call
        then skips the Updater's per-weight layers: the same counts, rates, states and
        kernel."""
        if self._params_to_init or len(self._updaters) != 1:
            return None
        opt = self._optimizer
        updater = self._updaters[0]
        fusable = opt._fusable
        if fusable is None or not updater.aggregate_updates:
            return None
        indices, weights, grads, states = [], [], [], []
        table, synced = updater.states, updater.states_synced
        dtype = None
        for i, p in enumerate(self._params):
            if p._grad_req == "null":
                continue
            data = p._data
            if data is None or len(data) != 1:
                return None
            w = data[0]
            leaf = w._ag
            state = table.get(i)
            if not leaf.fresh or synced.get(i) is not True or not fusable(w, state):
                return None
            if dtype is None:
                dtype = w._data.dtype
            elif w._data.dtype != dtype:
                return None
            indices.append(i)
            weights.append(w)
            grads.append(leaf.grad)
            states.append(state)
        if not 1 < len(indices) <= opt.aggregate_num:  # the Updater's own condition
            return None
        return indices, weights, grads, states

    def _begin_fused(self, gathered) -> None:
        """What the Updater does before the optimizer's call: freshness flags, the
        device's update counts."""
        indices, weights = gathered[0], gathered[1]
        for w in weights:
            w._ag.fresh = False
        opt = self._optimizer
        opt._set_current_context(weights[0]._device.index)
        opt._update_count(indices)

    # optimizer state files ----------------------------------------------------------------
    def save_states(self, fname: str) -> None:
        """Write the optimizer's states, settings and counters (safetensors + JSON
        metadata, atomically).  ``lr_mult``/``wd_mult`` stay with the Parameters."""
        self._prepare()
        if self._on_kvstore():
            if self._params_to_init:
                raise TrainerError("Cannot save trainer states when some parameters are not "
                                   "yet initialized in kvstore.")
            self._kvstore.save_optimizer_states(fname, dump_optimizer=True)
        elif self._distributed:  # the same states on every rank: rank 0 writes them
            if self._kvstore.rank == 0:
                _states.save(fname, self._updaters[0], dump_optimizer=True)
            self._kvstore._barrier()  # the file is there when any rank returns
        else:
            _states.save(fname, self._updaters[0], dump_optimizer=True)

    def load_states(self, fname: str) -> None:
        """Read a file of ``save_states`` (from either update path; nothing in it is
        executed).  The optimizer keeps this Trainer's Parameters' multipliers."""
        self._prepare()
        if self._on_kvstore():
            self._kvstore.load_optimizer_states(fname)
            self._optimizer = self._kvstore._updater.optimizer
        else:
            _states.load(fname, self._updaters, self._contexts or ())
            self._optimizer = self._updaters[0].optimizer
        for updater in self._updaters:
            updater.optimizer = self._optimizer
        self._optimizer.param_dict = {i: p for i, p in enumerate(self._params)}
