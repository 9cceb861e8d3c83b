"""``gluon.Trainer``: applies an optimizer to a set of Parameters."""
from __future__ import annotations

import json
import warnings
from typing import Dict, List, Optional

from mxcore.base import MXCoreError
from mxcore.gluon.parameter import Parameter, ParameterDict


class Trainer:
    """Update ``params`` with ``optimizer`` (a name or an Optimizer).

    ``step(batch_size)`` scales gradients by ``1/batch_size``, sums them across
    devices (``allreduce_grads``) and updates every parameter in place
    (``update``).  Optimizer states live on the parameters' devices.
    """

    def __init__(self, params, optimizer, optimizer_params: Optional[Dict] = None,
                 kvstore="device", compression_params=None, update_on_kvstore=None):
        if isinstance(params, (dict, ParameterDict)):
            params = list(params.values())
        if not isinstance(params, (list, tuple)):
            raise ValueError("Trainer: params must be a ParameterDict, a dict or a list of "
                             f"Parameters, got {type(params).__name__}")
        self._params: List[Parameter] = []
        for p in params:
            if not isinstance(p, Parameter):
                raise ValueError(f"Trainer: {p!r} is not a Parameter")
            if any(q is p for q in self._params):
                continue
            self._params.append(p)
        optimizer_params = dict(optimizer_params or {})
        self._scale = optimizer_params.get("rescale_grad", 1.0)
        self._kvstore = kvstore
        self._init_optimizer(optimizer, optimizer_params)

    def _init_optimizer(self, optimizer, optimizer_params) -> None:
        from mxcore import optimizer as opt
        param_dict = {i: p for i, p in enumerate(self._params)}
        if isinstance(optimizer, opt.Optimizer):
            if optimizer_params:
                raise ValueError("optimizer_params must be empty when optimizer is an "
                                 "Optimizer instance")
            self._optimizer = optimizer
        else:
            self._optimizer = opt.create(optimizer, **optimizer_params)
        # lr_mult/wd_mult come from the Parameters through param_dict
        self._optimizer.param_dict = param_dict
        # one updater per device: states are keyed by parameter index
        self._updaters = {}

    def _updater_for(self, device):
        upd = self._updaters.get(device)
        if upd is None:
            from mxcore import optimizer as opt
            upd = self._updaters[device] = opt.get_updater(self._optimizer)
        return upd

    @property
    def optimizer(self):
        return self._optimizer

    @property
    def learning_rate(self) -> float:
        return self._optimizer.learning_rate

    def set_learning_rate(self, lr: float) -> None:
        self._optimizer.set_learning_rate(lr)

    def step(self, batch_size: int, ignore_stale_grad: bool = False) -> None:
        """One optimisation step for gradients summed over ``batch_size`` samples."""
        self._optimizer.rescale_grad = self._scale / batch_size
        self.allreduce_grads()
        self._update(ignore_stale_grad)

    def allreduce_grads(self) -> None:
        """Sum each parameter's gradients over its devices (local reduction)."""
        for p in self._params:
            if p.grad_req == "null" or p._data is None or len(p._data) < 2:
                continue
            grads = p.list_grad()
            total = grads[0].copyto(grads[0].context)
            for g in grads[1:]:
                total += g.copyto(total.context)
            for g in grads:
                g[:] = total.copyto(g.context) if g.context != total.context else total

    def update(self, batch_size: int, ignore_stale_grad: bool = False) -> None:
        """Apply the optimizer without reducing gradients (after a manual
        ``allreduce_grads``)."""
        self._optimizer.rescale_grad = self._scale / batch_size
        self._update(ignore_stale_grad)

    def _update(self, ignore_stale_grad: bool) -> None:
        # one updater call per device with every parameter that has a fresh gradient
        batches: Dict = {}
        for i, p in enumerate(self._params):
            if p.grad_req == "null":
                continue
            if p._data is None:
                p._check_initialized()
            for arr in p._data:
                leaf = arr._ag
                if not leaf.fresh:
                    if ignore_stale_grad:
                        continue
                    raise MXCoreError(
                        f"gradient of Parameter {p.name!r} on {arr.context!r} has not been "
                        "updated by backward since the last step: this parameter may not be "
                        "used in the loss. Call step(batch_size, ignore_stale_grad=True) to "
                        "skip it, or set its grad_req to 'null'")
                leaf.fresh = False
                batch = batches.get(arr._device)
                if batch is None:
                    batch = batches[arr._device] = ([], [], [])
                batch[0].append(i)
                batch[1].append(leaf.grad)
                batch[2].append(arr)
        for device, (indices, grads, weights) in batches.items():
            self._updater_for(device)(indices, grads, weights)

    # optimizer state files ---------------------------------------------------------------
    def save_states(self, fname: str) -> None:
        """Optimizer states (safetensors) and counters (JSON metadata), atomically."""
        from mxcore.serialization import save_arrays
        device = self._params[0].list_ctx()[0] if self._params else None
        arrays, meta = self._updater_for(device).states_to_arrays()
        save_arrays(fname, arrays, {"format": "mxcore-trainer-states",
                                    "optimizer": type(self._optimizer).__name__,
                                    "state": json.dumps(meta)})

    def load_states(self, fname: str) -> None:
        from mxcore.serialization import load_arrays
        arrays, meta = load_arrays(fname)
        if meta.get("format") != "mxcore-trainer-states":
            raise MXCoreError(f"{fname} is not a trainer state file")
        if meta.get("optimizer") != type(self._optimizer).__name__:
            warnings.warn(f"{fname} holds {meta.get('optimizer')} states; this trainer uses "
                          f"{type(self._optimizer).__name__}", stacklevel=2)
        state = json.loads(meta.get("state", "{}"))
        devices = {c for p in self._params for c in p.list_ctx()} or {None}
        for device in devices:
            self._updater_for(device).arrays_to_states(arrays, state, device)
