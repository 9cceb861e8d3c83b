"""Optimizers with MXNet 1.x names, hyperparameters and update rules.

An optimizer turns ``(index, weight, grad, state)`` into an in-place update of
``weight`` and ``state`` through the fused ops of ``mxcore.ops.optimizer``.
States are NDArrays on the weight's device (``create_state``).  ``Updater``
(``get_updater``) keeps one state per index, as MXNet's kvstore updater does;
its states are saved as a flat ``{name: numpy array}`` dict plus JSON metadata
(``states_to_arrays``/``arrays_to_states``, or safetensors bytes through
``get_states``/``set_states``): nothing is pickled.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import struct
import warnings
from typing import Any, Dict, List, Tuple

import numpy as np

from mxcore.base import MXCoreError
from mxcore.lr_scheduler import LRScheduler
from mxcore.ndarray.ndarray import NDArray
from mxcore.ops import elemwise as _ew, optimizer as _ops
from mxcore.ops.creation import array as _array, zeros_like as _zeros_like
from mxcore.ops.random import normal as _normal

__all__ = ["Optimizer", "SGD", "NAG", "Adam", "AdamW", "RMSProp", "AdaGrad", "AdaDelta",
           "Adamax", "Nadam", "Signum", "FTML", "Ftrl", "LAMB", "SGLD", "DCASGD", "ccSGD",
           "Updater", "create", "get_updater", "register"]


def _aggregation_size() -> int:
    """Weights per multi-weight update call when an optimizer is given lists
    (``MXCORE_OPTIMIZER_AGGREGATION_SIZE``; 0 or 1 updates weights one by one).
    On an accelerator one call is one kernel launch for the whole group."""
    return int(os.environ.get("MXCORE_OPTIMIZER_AGGREGATION_SIZE", "64"))


_FLOAT16 = np.dtype(np.float16)


class Optimizer:
    """Base class of the optimizers.

    Parameters (MXNet 1.x): ``rescale_grad`` (gradients are multiplied by it,
    typically ``1/batch_size``), ``param_idx2name`` (index -> parameter name;
    with names, parameters whose name ends neither in ``_weight`` nor in
    ``_gamma`` get no weight decay), ``wd``, ``clip_gradient`` (clip the
    rescaled gradient to ``[-clip_gradient, clip_gradient]``; ``None`` does not
    clip), ``learning_rate`` (default 0.01; overrides the scheduler's
    ``base_lr``), ``lr_scheduler``, ``sym`` (accepted for compatibility),
    ``begin_num_update``, ``multi_precision`` (float16 weights are updated
    through a float32 master copy) and ``param_dict`` (index -> gluon
    Parameter, whose ``lr_mult``/``wd_mult`` take precedence).
    """

    opt_registry: Dict[str, type] = {}
    # Where the float32 master copy sits in a multi-precision state:
    # (master, state) here, (state, master) for SGD and NAG (as in MXNet).
    _mp_master_first = True

    def __init__(self, rescale_grad=1., param_idx2name=None, wd=0., clip_gradient=None,
                 learning_rate=None, lr_scheduler=None, sym=None, begin_num_update=0,
                 multi_precision=False, param_dict=None):
        self.rescale_grad = rescale_grad
        self.lr_scheduler = lr_scheduler
        if self.lr_scheduler is None and learning_rate is None:
            learning_rate = 0.01
        self.lr = learning_rate
        if self.lr_scheduler is not None and learning_rate is not None:
            if self.lr_scheduler.base_lr != learning_rate:
                warnings.warn("learning rate from ``lr_scheduler`` has been overwritten by "
                              "``learning_rate`` in optimizer.", UserWarning, stacklevel=3)
                self.lr_scheduler.base_lr = learning_rate
        self.wd = wd
        self.lr_mult: Dict[Any, float] = {}
        self.wd_mult: Dict[Any, float] = {}
        self.begin_num_update = begin_num_update
        self.num_update = begin_num_update
        self._all_index_update_counts: Dict[int, Dict[Any, int]] = {0: {}}
        self._index_update_count = self._all_index_update_counts[0]
        self.clip_gradient = clip_gradient
        self.multi_precision = multi_precision
        self.aggregate_num = 0
        if param_idx2name is None:
            param_idx2name = {}
        if not isinstance(param_idx2name, dict):
            raise TypeError("param_idx2name should be a dict of param indexes to names.")
        self.idx2name = param_idx2name.copy()
        self.sym_info = ((sym.attr_dict(), sym.list_arguments())
                         if sym is not None and hasattr(sym, "attr_dict") else ())
        self.param_dict = param_dict if param_dict else {}
        self.set_lr_mult({})
        self.set_wd_mult({})

    # registry ---------------------------------------------------------------------------
    @staticmethod
    def register(klass):
        """Register an optimizer class under its lower-cased name (for ``create``)."""
        if not (isinstance(klass, type) and issubclass(klass, Optimizer)):
            raise TypeError(f"can only register Optimizer subclasses, got {klass!r}")
        name = klass.__name__.lower()
        old = Optimizer.opt_registry.get(name)
        if old is not None and old is not klass:
            warnings.warn(f"WARNING: New optimizer {klass.__module__}.{klass.__name__} is "
                          f"overriding existing optimizer {old.__module__}.{old.__name__}",
                          UserWarning, stacklevel=2)
        Optimizer.opt_registry[name] = klass
        return klass

    @staticmethod
    def create_optimizer(name, **kwargs):
        """An optimizer by (case-insensitive) name: ``create('adam', learning_rate=.1)``."""
        if not isinstance(name, str):
            raise TypeError(f"optimizer name must be a string, got {type(name).__name__}")
        klass = Optimizer.opt_registry.get(name.lower())
        if klass is None:
            raise ValueError(f"Cannot find optimizer {name!r}; registered optimizers: "
                             f"{', '.join(sorted(Optimizer.opt_registry))}")
        return klass(**kwargs)

    # learning rate ---------------------------------------------------------------------
    @property
    def learning_rate(self):
        if self.lr_scheduler is not None:
            return self.lr_scheduler(self.num_update)
        return self.lr

    @learning_rate.setter
    def learning_rate(self, lr):
        self.set_learning_rate(lr)

    def set_learning_rate(self, lr):
        """Set the learning rate (an error when an ``lr_scheduler`` decides it)."""
        if self.lr_scheduler is not None:
            raise UserWarning("LRScheduler of the optimizer has already been defined. Note "
                              "that set_learning_rate can mutate the value of the learning "
                              "rate of the optimizer only when the LRScheduler of the "
                              "optimizer is undefined.")
        self.lr = lr

    def set_lr_scale(self, args_lrscale):
        """[DEPRECATED] Use set_lr_mult instead."""
        raise DeprecationWarning("set_lr_scale is deprecated; use set_lr_mult")

    def set_lr_mult(self, args_lr_mult):
        """Per-parameter learning-rate multipliers, keyed by name or index."""
        self.lr_mult = {}
        if self.sym_info:
            attr, arg_names = self.sym_info
            for name in arg_names:
                if name in attr and "__lr_mult__" in attr[name]:
                    self.lr_mult[name] = float(attr[name]["__lr_mult__"])
        self.lr_mult.update(args_lr_mult)

    def set_wd_mult(self, args_wd_mult):
        """Per-parameter weight-decay multipliers, keyed by name or index.  With
        ``param_idx2name``, names ending neither in ``_weight`` nor ``_gamma``
        default to 0 (biases, BatchNorm's beta...)."""
        self.wd_mult = {}
        for n in self.idx2name.values():
            if not (n.endswith("_weight") or n.endswith("_gamma")):
                self.wd_mult[n] = 0.0
        if self.sym_info:
            attr, arg_names = self.sym_info
            for name in arg_names:
                if name in attr and "__wd_mult__" in attr[name]:
                    self.wd_mult[name] = float(attr[name]["__wd_mult__"])
        self.wd_mult.update(args_wd_mult)

    def _set_current_context(self, device_id):
        """Update counts are kept per device (each device updates its copy)."""
        if device_id not in self._all_index_update_counts:
            self._all_index_update_counts[device_id] = {}
        self._index_update_count = self._all_index_update_counts[device_id]

    def _update_count(self, index):
        if not isinstance(index, (list, tuple)):
            index = [index]
        counts = self._index_update_count
        top = self.num_update
        for idx in index:
            n = counts.get(idx, self.begin_num_update) + 1
            counts[idx] = n
            if n > top:
                top = n
        self.num_update = top

    def _scaled(self, base: float, indices, mult: str, table: Dict) -> List[float]:
        """``base`` times each index's multiplier: its Parameter's ``lr_mult`` /
        ``wd_mult`` (``mult``), else ``table`` by index, else by parameter name."""
        out = [base] * len(indices)
        params = self.param_dict
        for i, index in enumerate(indices):
            p = params.get(index)
            if p is not None:
                out[i] *= getattr(p, mult)
            elif index in table:
                out[i] *= table[index]
            elif index in self.idx2name:
                out[i] *= table.get(self.idx2name[index], 1.0)
        return out

    def _get_lrs(self, indices):
        lr = self.lr_scheduler(self.num_update) if self.lr_scheduler is not None else self.lr
        return self._scaled(lr, indices, "lr_mult", self.lr_mult)

    def _get_lr(self, index):
        return self._get_lrs([index])[0]

    def _get_wds(self, indices):
        return self._scaled(self.wd, indices, "wd_mult", self.wd_mult)

    def _get_wd(self, index):
        return self._get_wds([index])[0]

    def _clip(self) -> float:
        """clip_gradient for the fused ops: MXNet passes it only when truthy."""
        return float(self.clip_gradient) if self.clip_gradient else -1.0

    # states and updates ----------------------------------------------------------------
    def create_state(self, index, weight):
        """The state of one weight (None, an NDArray or a tuple of them)."""
        return None

    def create_state_multi_precision(self, index, weight):
        """``create_state``, plus a float32 master copy for float16 weights
        when ``multi_precision`` is on."""
        if self.multi_precision and weight.dtype == np.float16:
            master = weight.astype(np.float32)
            inner = self.create_state(index, master)
            return (master, inner) if self._mp_master_first else (inner, master)
        if weight.dtype == np.float16 and not self.multi_precision:
            warnings.warn("Accumulating with float16 in optimizer can lead to poor accuracy "
                          "or slow convergence. Consider using multi_precision=True option "
                          f"of the {type(self).__name__} optimizer", UserWarning, stacklevel=3)
        return self.create_state(index, weight)

    #: Optimizers with a multi-weight op set ``_fusable(weight, state)`` (which
    #: weights it takes) and ``_run_fused(indices, weights, grads, states)``.
    _fusable = None

    def update(self, index, weight, grad, state):
        """Update ``weight`` (and ``state``) in place.  ``index``, ``weight``,
        ``grad`` and ``state`` may be lists of the same length (then, with
        ``aggregate_num > 1``, through the optimizer's multi-weight op)."""
        if isinstance(index, (list, tuple)):
            if self._fusable is not None and self.aggregate_num > 1:
                self._update_aggregated(index, weight, grad, state)
                return
            for i, w, g, s in zip(index, weight, grad, state):
                self.update(i, w, g, s)
            return
        self._update_impl(index, weight, grad, state)

    def _update_impl(self, index, weight, grad, state):
        raise NotImplementedError(f"{type(self).__name__} does not implement update()")

    def _update_aggregated(self, index, weight, grad, state) -> None:
        """Update lists of weights through the multi-weight op: those ``_fusable``
        takes go, one dtype at a time, ``aggregate_num`` at a time to ``_run_fused``
        (after their update counts advance), the others one by one.  (A multi-weight
        kernel takes one dtype: mixing float32 and bfloat16 weights in one call would
        send all of them to a slower fallback that also rounds differently.)"""
        fusable = self._fusable
        if index and len(index) <= self.aggregate_num:  # the usual step: one group, one dtype
            dt = weight[0]._data.dtype
            for w, s in zip(weight, state):
                if w._data.dtype != dt or not fusable(w, s):
                    break
            else:
                self._update_count(index)
                self._run_fused(index, weight, grad, state)
                return
        by_dtype: Dict[Any, List[int]] = {}
        for k, (w, s) in enumerate(zip(weight, state)):
            if fusable(w, s):
                dt = w._data.dtype
                group = by_dtype.get(dt)
                if group is None:
                    by_dtype[dt] = [k]
                else:
                    group.append(k)
            else:
                self._update_impl(index[k], w, grad[k], s)
        for ok in by_dtype.values():
            for lo in range(0, len(ok), self.aggregate_num):
                group = ok[lo:lo + self.aggregate_num]
                idx = [index[k] for k in group]
                self._update_count(idx)
                self._run_fused(idx, [weight[k] for k in group], [grad[k] for k in group],
                                [state[k] for k in group])

    def update_multi_precision(self, index, weight, grad, state):
        """``update`` through the float32 master copy for float16 weights with
        ``multi_precision``; plain ``update`` otherwise."""
        if isinstance(index, (list, tuple)):
            mp = [k for k, (w, s) in enumerate(zip(weight, state))
                  if w.dtype == np.float16 and isinstance(s, (tuple, list))] \
                if self.multi_precision else []
            if not mp:
                self.update(index, weight, grad, state)
                return
            # float16 weights update their float32 masters, as lists too (so both
            # groups keep the multi-weight op), then the weights take the masters' values
            taken = set(mp)
            rest = [k for k in range(len(index)) if k not in taken]
            if rest:
                self.update([index[k] for k in rest], [weight[k] for k in rest],
                            [grad[k] for k in rest], [state[k] for k in rest])
            pairs = [(state[k][0], state[k][1]) if self._mp_master_first
                     else (state[k][1], state[k][0]) for k in mp]
            self.update([index[k] for k in mp], [m for m, _ in pairs],
                        [grad[k].astype(np.float32) for k in mp], [s for _, s in pairs])
            for k, (master, _) in zip(mp, pairs):
                weight[k][...] = master
            return
        if self.multi_precision and weight.dtype == np.float16 \
                and isinstance(state, (tuple, list)):
            master, inner = (state[0], state[1]) if self._mp_master_first else (state[1],
                                                                                state[0])
            self.update(index, master, grad.astype(np.float32), inner)
            weight[...] = master  # cast into the weight's own buffer
        else:
            self.update(index, weight, grad, state)

    # JSON configuration (what get_states(dump_optimizer=True) saves) -------------------
    def _to_config(self) -> dict:
        attrs = {k: v for k, v in self.__dict__.items()
                 if k not in ("param_dict", "_index_update_count")}
        current = next((k for k, v in self._all_index_update_counts.items()
                        if v is self._index_update_count), 0)
        return {"class": _class_id(type(self)), "attrs": _encode(attrs, "optimizer"),
                "current_device": current}

    @staticmethod
    def _from_config(config: dict, into: "Optimizer" = None) -> "Optimizer":
        """Restore a configuration; into ``into`` when it is of the saved class
        (its ``param_dict`` is kept), else into a new instance."""
        klass = _find_class(Optimizer, config["class"])
        attrs = _decode(config["attrs"])
        if into is not None and type(into) is klass:
            opt = into
        else:
            opt = klass.__new__(klass)
            opt.param_dict = {}
        opt.__dict__.update(attrs)
        counts = opt._all_index_update_counts
        opt._index_update_count = counts.setdefault(config.get("current_device", 0), {})
        return opt


register = Optimizer.register
create = Optimizer.create_optimizer


# the optimizers ----------------------------------------------------------------------------
@register
class SGD(Optimizer):
    """SGD with momentum and weight decay (MXNet 1.x)::

        mom = momentum * mom - lr * (clip(rescale_grad * grad) + wd * weight)
        weight += mom

    (without momentum: ``weight = (1 - lr*wd)*weight - lr*clip(rescale_grad*grad)``).
    ``lazy_update`` is accepted for compatibility (arrays are dense)."""

    _mp_master_first = False

    def __init__(self, momentum=0.0, lazy_update=True, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.lazy_update = lazy_update
        self.aggregate_num = _aggregation_size()

    def _fusable(self, weight, state) -> bool:
        return weight._data.dtype != _FLOAT16 and (state is None) == (self.momentum == 0.0)

    def _fused_call(self, idx, weights, grads, states):
        """``(op, arrays per weight, arrays, attributes)`` of the one multi-weight call
        that updates these weights now (``_run_fused`` makes it; ``gluon.TrainStep``
        also captures it in a device graph, whose replays hold while the attributes
        stay the same)."""
        lists = {"lrs": self._get_lrs(idx), "wds": self._get_wds(idx)}
        scalars = {"rescale_grad": self.rescale_grad, "clip_gradient": self._clip()}
        if self.momentum == 0.0:
            return (_ops.MULTI_SGD_UPDATE, 2,
                    [a for w, g in zip(weights, grads) for a in (w, g)],
                    _ops.multi_update_attrs(lists, scalars, len(idx)))
        scalars["momentum"] = self.momentum
        return (_ops.MULTI_SGD_MOM_UPDATE, 3,
                [a for w, g, m in zip(weights, grads, states) for a in (w, g, m)],
                _ops.multi_update_attrs(lists, scalars, len(idx)))

    def _run_fused(self, idx, weights, grads, states):
        _ops.invoke_multi_update(*self._fused_call(idx, weights, grads, states))

    def create_state(self, index, weight):
        return _zeros_like(weight) if self.momentum != 0.0 else None

    def _update_impl(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        if state is not None:
            self._momentum_update(weight, grad, state, lr=lr, momentum=self.momentum, wd=wd,
                                  rescale_grad=self.rescale_grad, clip_gradient=self._clip())
        else:
            _ops.sgd_update(weight, grad, lr=lr, wd=wd, rescale_grad=self.rescale_grad,
                            clip_gradient=self._clip())

    _momentum_update = staticmethod(_ops.sgd_mom_update)


@register
class NAG(SGD):
    """Nesterov accelerated gradient (MXNet 1.6+ form)::

        g = clip(rescale_grad * grad) + wd * weight
        mom = momentum * mom - lr * g
        weight += momentum * mom - lr * g
    """

    def __init__(self, momentum=0.0, **kwargs):
        super().__init__(momentum=momentum, **kwargs)
        self.aggregate_num = 0  # the fused multi-weight op is plain SGD momentum

    _momentum_update = staticmethod(_ops.nag_mom_update)


def _adam_fusable(weight, state) -> bool:
    """Adam/AdamW weights the multi-weight ops take: not float16 (those may keep
    a float32 master copy), state (mean, var)."""
    return weight._data.dtype != _FLOAT16 and isinstance(state, tuple) and len(state) == 2


def _interleave(weights, grads, states):
    """w0, g0, mean0, var0, w1, ... for the multi-weight Adam ops."""
    return [a for w, g, (m, v) in zip(weights, grads, states) for a in (w, g, m, v)]


@register
class Adam(Optimizer):
    """Adam (MXNet 1.x): at step ``t`` of a weight::

        g = clip(rescale_grad * grad + wd * weight)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        weight -= lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) + epsilon)

    (the bias correction is folded into the learning rate, so ``epsilon`` is
    not bias-corrected; weight decay is L2 inside the gradient: see AdamW)."""

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 lazy_update=True, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.lazy_update = lazy_update
        self.aggregate_num = _aggregation_size()

    def create_state(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight))  # mean, variance

    def _corrected_lr(self, index, lr):
        t = self._index_update_count[index]
        return lr * math.sqrt(1. - self.beta2 ** t) / (1. - self.beta1 ** t)

    _fusable = staticmethod(_adam_fusable)

    def _run_fused(self, idx, weights, grads, states):
        lrs = [self._corrected_lr(i, lr) for i, lr in zip(idx, self._get_lrs(idx))]
        _ops.multi_adam_update(*_interleave(weights, grads, states), lrs=lrs,
                               wds=self._get_wds(idx), beta1=self.beta1, beta2=self.beta2,
                               epsilon=self.epsilon, rescale_grad=self.rescale_grad,
                               clip_gradient=self._clip(), num_weights=len(idx))

    def _update_impl(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        lr = self._corrected_lr(index, lr)
        mean, var = state
        _ops.adam_update(weight, grad, mean, var, lr=lr, beta1=self.beta1, beta2=self.beta2,
                         epsilon=self.epsilon, wd=wd, rescale_grad=self.rescale_grad,
                         clip_gradient=self._clip())


@register
class AdamW(Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter), the formula of
    PyTorch's ``torch.optim.AdamW``: at step ``t`` of a weight::

        g = clip(rescale_grad * grad)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        weight -= lr * (m_hat / (sqrt(v_hat) + epsilon) + wd * weight)

    with ``m_hat = m / (1 - beta1**t)``, ``v_hat = v / (1 - beta2**t)``.  It
    runs MXNet's contrib ``adamw_update`` with ``eta = lr`` and the bias
    correction folded into its ``lr`` and ``epsilon``.  ``correct_bias=False``
    drops the bias correction (GluonNLP's ``BERTAdam``).  Weight decay is 0
    by default, as for every MXNet optimizer (PyTorch's default is 0.01)."""

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 correct_bias=True, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.correct_bias = correct_bias
        self.aggregate_num = _aggregation_size()

    def create_state(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight))  # mean, variance

    def _correction(self, index):
        """(step, epsilon): the bias correction folded into adamw_update's lr and
        epsilon at this weight's step."""
        if not self.correct_bias:
            return 1.0, self.epsilon
        t = self._index_update_count[index]
        root2 = math.sqrt(1. - self.beta2 ** t)
        return root2 / (1. - self.beta1 ** t), self.epsilon * root2

    _fusable = staticmethod(_adam_fusable)

    def _run_fused(self, idx, weights, grads, states):
        # one call per epsilon: weights at different steps have different corrections
        lrs, wds = self._get_lrs(idx), self._get_wds(idx)
        by_eps: Dict[float, list] = {}
        for k, i in enumerate(idx):
            step, eps = self._correction(i)
            by_eps.setdefault(eps, []).append((k, step))
        for eps, members in by_eps.items():
            ks = [k for k, _ in members]
            _ops.multi_adamw_update(
                *_interleave([weights[k] for k in ks], [grads[k] for k in ks],
                             [states[k] for k in ks]),
                lrs=[step for _, step in members], wds=[wds[k] for k in ks],
                etas=[lrs[k] for k in ks], beta1=self.beta1, beta2=self.beta2, epsilon=eps,
                rescale_grad=self.rescale_grad, clip_gradient=self._clip(),
                num_weights=len(ks))

    def _update_impl(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        step, eps = self._correction(index)
        mean, var = state
        _ops.adamw_update(weight, grad, mean, var, lr=step, eta=lr, beta1=self.beta1,
                          beta2=self.beta2, epsilon=eps, wd=wd,
                          rescale_grad=self.rescale_grad, clip_gradient=self._clip())


@register
class RMSProp(Optimizer):
    """RMSProp: Tieleman & Hinton (``centered=False``, see ``rmsprop_update``)
    or Graves 2013 with momentum ``gamma2`` (``centered=True``,
    ``rmspropalex_update``).  ``clip_weights`` clips the weights after the step."""

    def __init__(self, learning_rate=0.001, gamma1=0.9, gamma2=0.9, epsilon=1e-8,
                 centered=False, clip_weights=None, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.gamma1 = gamma1
        self.gamma2 = gamma2
        self.centered = centered
        self.epsilon = epsilon
        self.clip_weights = clip_weights

    def create_state(self, index, weight):
        if self.centered:
            return (_zeros_like(weight), _zeros_like(weight), _zeros_like(weight))  # n, g, delta
        return (_zeros_like(weight),)  # n

    def _update_impl(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        kwargs = dict(lr=lr, gamma1=self.gamma1, epsilon=self.epsilon, wd=wd,
                      rescale_grad=self.rescale_grad, clip_gradient=self._clip(),
                      clip_weights=float(self.clip_weights) if self.clip_weights else -1.0)
        if not self.centered:
            (n,) = state
            _ops.rmsprop_update(weight, grad, n, **kwargs)
        else:
            n, g, delta = state
            _ops.rmspropalex_update(weight, grad, n, g, delta, gamma2=self.gamma2, **kwargs)


@register
class AdaGrad(Optimizer):
    """AdaGrad (MXNet 1.x)::

        g = clip(rescale_grad * grad)
        history += g**2
        weight -= lr * (g / sqrt(history + eps) + wd * weight)
    """

    def __init__(self, eps=1e-7, **kwargs):
        super().__init__(**kwargs)
        self.float_stable_eps = eps

    def create_state(self, index, weight):
        return _zeros_like(weight)  # history

    def _update_impl(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        clip = -1.0 if self.clip_gradient is None else float(self.clip_gradient)
        _ops.adagrad_update(weight, grad, state, lr=lr, epsilon=self.float_stable_eps, wd=wd,
                            rescale_grad=self.rescale_grad, clip_gradient=clip)


@register
class AdaDelta(Optimizer):
    """AdaDelta (MXNet 1.x, no learning rate)::

        g = clip(rescale_grad * grad)
        acc_g = rho * acc_g + (1 - rho) * g**2
        delta = sqrt(acc_delta + epsilon) / sqrt(acc_g + epsilon) * g
        acc_delta = rho * acc_delta + (1 - rho) * delta**2
        weight -= delta + wd * weight

    MXNet 1.9's AdaDelta ignores ``learning_rate``, its schedule and
    ``lr_mult``; so does this one."""

    def __init__(self, rho=0.90, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.rho = rho
        self.epsilon = epsilon

    def create_state(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight))  # accumulated g, accumulated delta

    def _update_impl(self, index, weight, grad, state):
        wd = self._get_wd(index)
        self._update_count(index)
        clip = -1.0 if self.clip_gradient is None else float(self.clip_gradient)
        acc_g, acc_delta = state
        _ops.adadelta_update(weight, grad, acc_g, acc_delta, rho=self.rho, epsilon=self.epsilon,
                             wd=wd, rescale_grad=self.rescale_grad, clip_gradient=clip, lr=1.0)



@register
class ccSGD(SGD):  # noqa: N801 - MXNet's name
    """[DEPRECATED] The same as ``SGD`` (MXNet keeps the name for old scripts)."""


@register
class Signum(Optimizer):
    """Signum: the sign of the gradient's momentum (Bernstein et al. 2018)::

        mom = momentum * mom - (1 - momentum) * (clip(rescale_grad * grad) + wd * weight)
        weight = (1 - lr * wd_lh) * weight + lr * sign(mom)

    ``wd_lh`` is decoupled weight decay.  With ``momentum=0`` there is no state
    and the step is SignSGD: ``weight = (1 - lr*(wd + wd_lh))*weight -
    lr*sign(grad)`` (MXNet 1.9 rejects ``wd_lh`` there)."""

    def __init__(self, learning_rate=0.01, momentum=0.9, wd_lh=0.0, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = momentum
        self.wd_lh = wd_lh

    def create_state(self, index, weight):
        return _zeros_like(weight) if self.momentum != 0.0 else None

    def _update_impl(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        common = dict(lr=lr, rescale_grad=self.rescale_grad, clip_gradient=self._clip())
        if state is not None:
            _ops.signum_update(weight, grad, state, momentum=self.momentum, wd=wd,
                               wd_lh=self.wd_lh, **common)
        else:
            _ops.signsgd_update(weight, grad, wd=wd + self.wd_lh, **common)


@register
class FTML(Optimizer):
    """FTML, Follow the Moving Leader (Zheng & Kwok 2017): at step ``t``::

        g = clip(rescale_grad * grad + wd * weight)
        v = beta2 * v + (1 - beta2) * g**2
        d_t = (1 - beta1**t) / lr * (sqrt(v / (1 - beta2**t)) + epsilon)
        z = beta1 * z + (1 - beta1) * g - (d_t - beta1 * d) * weight
        d = d_t;  weight = -z / d_t
    """

    def __init__(self, beta1=0.6, beta2=0.999, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon

    def create_state(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight), _zeros_like(weight))  # d, v, z

    def _update_impl(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        d, v, z = state
        _ops.ftml_update(weight, grad, d, v, z, lr=lr, beta1=self.beta1, beta2=self.beta2,
                         epsilon=self.epsilon, t=self._index_update_count[index], wd=wd,
                         rescale_grad=self.rescale_grad, clip_grad=self._clip())


@register
class Ftrl(Optimizer):
    """FTRL-Proximal (McMahan et al., *Ad Click Prediction: a View from the
    Trenches*)::

        g = clip(rescale_grad * grad)
        z += g - (sqrt(n + g**2) - sqrt(n)) * weight / lr
        n += g**2
        weight = (sign(z) * lamda1 - z) / ((beta + sqrt(n)) / lr + wd) * (|z| > lamda1)

    ``lamda1`` is the L1 strength, ``beta`` the per-coordinate learning-rate
    offset.  The learning rate defaults to 0.1.  (Arrays are dense: every row
    is updated, as MXNet does for dense gradients.)"""

    def __init__(self, lamda1=0.01, learning_rate=0.1, beta=1, **kwargs):
        super().__init__(**kwargs)
        self.lamda1 = lamda1
        self.beta = beta
        self.lr = learning_rate

    def create_state(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight))  # z, n

    def _update_impl(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        z, n = state
        _ops.ftrl_update(weight, grad, z, n, lr=lr, lamda1=self.lamda1, beta=self.beta, wd=wd,
                         rescale_grad=self.rescale_grad, clip_gradient=self._clip())


def _preprocessed(opt: Optimizer, weight, grad, wd: float):
    """``clip(rescale_grad * grad + wd * weight)`` as a new array (the Python-level
    optimizers of MXNet clip whenever ``clip_gradient`` is not None)."""
    g = grad * opt.rescale_grad
    if wd:
        g = g + weight * wd
    if opt.clip_gradient is not None:
        g = _ew.clip(g, -opt.clip_gradient, opt.clip_gradient)
    return g


@register
class Adamax(Optimizer):
    """AdaMax, Adam with the infinity norm (Kingma & Ba, section 7)::

        g = clip(rescale_grad * grad + wd * weight)
        m = beta1 * m + (1 - beta1) * g
        u = maximum(beta2 * u, |g|)
        weight -= lr / (1 - beta1**t) * m / u
    """

    def __init__(self, learning_rate=0.002, beta1=0.9, beta2=0.999, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2

    def create_state(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight))  # m, u

    def _update_impl(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        lr /= 1. - self.beta1 ** self._index_update_count[index]
        g = _preprocessed(self, weight, grad, wd)
        m, u = state
        m *= self.beta1
        m += g * (1. - self.beta1)
        u[...] = _ew.maximum(u * self.beta2, _ew.abs(g))
        weight -= m / u * lr


@register
class Nadam(Optimizer):
    """Nadam, Adam with Nesterov momentum (Dozat 2016), with MXNet 1.x's warming
    momentum schedule ``mu_t = beta1 * (1 - 0.5 * 0.96**(t * schedule_decay))``.
    As in MXNet, the running product of the ``mu_t`` (``m_schedule``) is one per
    optimizer, advanced by every weight's update."""

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 schedule_decay=0.004, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.schedule_decay = schedule_decay
        self.m_schedule = 1.

    def create_state(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight))  # mean, variance

    def _update_impl(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        t = self._index_update_count[index]
        g = _preprocessed(self, weight, grad, wd)
        mu_t = self.beta1 * (1. - 0.5 * 0.96 ** (t * self.schedule_decay))
        mu_next = self.beta1 * (1. - 0.5 * 0.96 ** ((t + 1) * self.schedule_decay))
        self.m_schedule = self.m_schedule * mu_t
        schedule_next = self.m_schedule * mu_next
        m, v = state
        m *= self.beta1
        m += g * (1. - self.beta1)
        v *= self.beta2
        v += g * g * (1. - self.beta2)
        m_bar = (g * ((1. - mu_t) / (1. - self.m_schedule))
                 + m * (mu_next / (1. - schedule_next)))
        v_hat = v / (1. - self.beta2 ** t)
        weight -= m_bar / (_ew.sqrt(v_hat) + self.epsilon) * lr


@register
class SGLD(Optimizer):
    """Stochastic Gradient Langevin Dynamics (Welling & Teh 2011)::

        weight += -lr/2 * (clip(rescale_grad * grad) + wd * weight) + N(0, sqrt(lr))

    The noise is drawn from ``mx.random.normal`` in the weight's dtype, so
    ``mx.random.seed`` makes runs repeatable."""

    def create_state(self, index, weight):
        return None

    def _update_impl(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        g = grad * self.rescale_grad
        if self.clip_gradient is not None:
            g = _ew.clip(g, -self.clip_gradient, self.clip_gradient)
        weight += (g + weight * wd) * (-lr / 2)
        weight += _normal(0, math.sqrt(lr), shape=weight.shape, dtype=weight.dtype,
                          ctx=weight.context)


@register
class DCASGD(Optimizer):
    """Delay-compensated asynchronous SGD (Zheng et al. 2017)::

        step = -lr * (g + wd * weight + lamda * g * g * (weight - previous_weight))
        mom = momentum * mom + step  (step alone without momentum)
        previous_weight = weight;  weight += mom

    with ``g = clip(rescale_grad * grad)``.  The state is (momentum or None,
    previous weight)."""

    def __init__(self, momentum=0.0, lamda=0.04, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.weight_previous: Dict[Any, Any] = {}
        self.lamda = lamda

    def create_state(self, index, weight):
        mom = _zeros_like(weight) if self.momentum != 0.0 else None
        return (mom, weight.copy())  # momentum, previous weight

    def _update_impl(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        g = grad * self.rescale_grad
        if self.clip_gradient is not None:
            g = _ew.clip(g, -self.clip_gradient, self.clip_gradient)
        mom, previous = state
        step = (g + weight * wd + g * g * (weight - previous) * self.lamda) * -lr
        if mom is not None:
            mom *= self.momentum
            mom += step
            step = mom
        previous[...] = weight
        weight += step


def _lamb_fusable(weight, state) -> bool:
    """LAMB weights the multi-tensor op takes: not float16 (those may keep a
    float32 master copy), state (mean, var)."""
    return (weight._data.dtype != _FLOAT16 and isinstance(state, tuple) and len(state) == 2
            and isinstance(state[0], NDArray))


@register
class LAMB(Optimizer):
    """LAMB, layer-wise adaptive moments (You et al. 2019): at step ``t``::

        g = clip(rescale_grad * grad)
        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g**2
        d = m_hat / (sqrt(v_hat) + epsilon) + wd * weight   (hats: bias corrected)
        r1 = clip(||weight||, lower_bound, upper_bound);  r2 = ||d||
        weight -= lr * (r1 / r2 if r1 and r2 else 1) * d

    One weight runs ``lamb_update_phase1``/``lamb_update_phase2``; lists of
    weights run ``multi_lamb_update`` (``aggregate_num`` at a time)."""

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-6,
                 lower_bound=None, upper_bound=None, bias_correction=True, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound
        self.bias_correction = bias_correction
        self.aggregate_num = _aggregation_size()

    def create_state(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight))  # mean, variance

    def _hp(self) -> dict:
        """Phase-one hyperparameters (MXNet passes a bound only when it is truthy)."""
        return dict(beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon,
                    bias_correction=self.bias_correction, rescale_grad=self.rescale_grad,
                    clip_gradient=self._clip())

    def _bounds(self) -> dict:
        return dict(lower_bound=float(self.lower_bound) if self.lower_bound else -1.0,
                    upper_bound=float(self.upper_bound) if self.upper_bound else -1.0)

    _fusable = staticmethod(_lamb_fusable)

    def _run_fused(self, idx, weights, grads, states):
        _ops.multi_lamb_update(weights, grads, [m for m, _ in states], [v for _, v in states],
                               step_count=[self._index_update_count[i] for i in idx],
                               lrs=self._get_lrs(idx), wds=self._get_wds(idx),
                               **self._hp(), **self._bounds())

    def _update_impl(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        mean, var = state
        g = _ops.lamb_update_phase1(weight, grad, mean, var, t=self._index_update_count[index],
                                    wd=wd, **self._hp())
        _ops.lamb_update_phase2(weight, g, weight.norm(), g.norm(), lr=lr, **self._bounds())

# Updater -------------------------------------------------------------------------------------
STATES_FORMAT = "mxcore.optimizer.states"
_META_KEY = "mxcore.optimizer.states"


class Updater:
    """``updater(index, grad, weight)``: create the weight's state on first
    use and update (MXNet's kvstore updater).  ``index``, ``grad`` and
    ``weight`` may be lists.  States are keyed by index: use one Updater per
    device when one index has a copy on several devices."""

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        self.states: Dict[Any, Any] = {}
        self.states_synced: Dict[Any, bool] = {}
        self.aggregate_updates = optimizer.aggregate_num > 0

    def __call__(self, index, grad, weight):
        if not isinstance(index, (list, tuple)):
            indices, grads, weights = [index], [grad], [weight]
        else:  # the caller's lists, unchanged (a bytes key is decoded in a copy)
            indices, grads, weights = index, grad, weight
        if weights:
            self.optimizer._set_current_context(weights[0]._device.index)
        synced = self.states_synced
        for i, idx in enumerate(indices):
            if synced.get(idx) is True:  # the state of every step after the first
                continue
            if isinstance(idx, bytes):
                if indices is index:
                    indices = list(index)
                idx = indices[i] = idx.decode()
            if idx not in self.states:
                self.states[idx] = self.optimizer.create_state_multi_precision(idx, weights[i])
                synced[idx] = True
            elif not synced[idx]:
                self.states[idx] = self.sync_state_context(self.states[idx], weights[i].context)
                synced[idx] = True
        if self.aggregate_updates and len(indices) > 1:
            # one call: optimizers that can fuse several weights do so
            self.optimizer.update_multi_precision(indices, weights, grads,
                                                  [self.states[i] for i in indices])
        else:
            for i, w, g in zip(indices, weights, grads):
                self.optimizer.update_multi_precision(i, w, g, self.states[i])

    def sync_state_context(self, state, context):
        """``state`` with its arrays moved to ``context``."""
        if isinstance(state, NDArray):
            return state.as_in_context(context)
        if isinstance(state, (tuple, list)):
            synced = [self.sync_state_context(s, context) for s in state]
            return tuple(synced) if isinstance(state, tuple) else synced
        return state

    # saving -------------------------------------------------------------------------------
    def states_to_arrays(self, dump_optimizer: bool = True) -> Tuple[Dict[str, np.ndarray], dict]:
        """The states as ``({name: numpy array}, metadata)``: the arrays for
        safetensors, the metadata JSON-able (the structure of each state and,
        with ``dump_optimizer``, the optimizer's class, hyperparameters and
        update counters)."""
        arrays: Dict[str, np.ndarray] = {}
        entries = []
        for pos, (idx, state) in enumerate(self.states.items()):
            if not isinstance(idx, (int, str)) or isinstance(idx, bool):
                raise MXCoreError(f"cannot save the state of index {idx!r}: indices must be "
                                  "ints or strings")
            entries.append([idx, _encode_state(state, f"{pos}:{idx}", arrays)])
        meta = {"format": STATES_FORMAT, "version": 1, "states": entries}
        if dump_optimizer:
            meta["optimizer"] = self.optimizer._to_config()
        return arrays, meta

    def arrays_to_states(self, arrays: Dict[str, Any], meta: dict, ctx=None) -> None:
        """Restore states written by ``states_to_arrays`` (on ``ctx``, default
        the default device; they move to their weight's device on first use).
        Saved optimizer settings are restored into ``self.optimizer`` when it is
        of the saved class, else a new optimizer of that class replaces it."""
        if not isinstance(meta, dict) or meta.get("format") != STATES_FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise MXCoreError("not optimizer states written by Updater.states_to_arrays "
                              f"(metadata format {found!r})")
        if meta.get("version", 1) > 1:
            raise MXCoreError(f"optimizer states version {meta['version']} is newer than this "
                              "mxcore understands (1)")
        if ctx is None:
            from mxcore.device import default_device
            ctx = default_device()
        states = {}
        for idx, enc in meta["states"]:
            states[idx] = _decode_state(enc, arrays, ctx)
        self.states = states
        self.states_synced = dict.fromkeys(states, False)
        if "optimizer" in meta:
            self.optimizer = Optimizer._from_config(meta["optimizer"], into=self.optimizer)

    def get_states(self, dump_optimizer: bool = False) -> bytes:
        """The states (and, with ``dump_optimizer``, the optimizer) as
        safetensors bytes; MXNet returned a pickle."""
        from safetensors.numpy import save
        arrays, meta = self.states_to_arrays(dump_optimizer)
        return save(arrays, metadata={_META_KEY: json.dumps(meta)})

    def set_states(self, states: bytes) -> None:
        """Restore ``get_states`` bytes (never a pickle)."""
        from safetensors.numpy import load
        meta = _safetensors_metadata(states)
        if _META_KEY not in meta:
            raise MXCoreError("these bytes are not mxcore optimizer states (pickled MXNet "
                              "states cannot be loaded)")
        self.arrays_to_states(load(bytes(states)), json.loads(meta[_META_KEY]))


def get_updater(optimizer: Optimizer) -> Updater:
    """The updater closure kvstore and Trainer use: ``updater(index, grad, weight)``."""
    return Updater(optimizer)


# helpers ---------------------------------------------------------------------------------------
def _safetensors_metadata(data) -> dict:
    try:
        data = bytes(data)
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n])
    except Exception:  # noqa: BLE001 - any malformed input gets one clear error
        raise MXCoreError("these bytes are not mxcore optimizer states (not safetensors; "
                          "pickled MXNet states cannot be loaded)") from None
    return header.get("__metadata__") or {}


def _encode_state(state, key: str, arrays: dict):
    if state is None:
        return None
    if isinstance(state, NDArray):
        arrays[key] = np.ascontiguousarray(state.asnumpy())
        return {"array": key}
    if isinstance(state, (tuple, list)):
        items = [_encode_state(s, f"{key}.{i}", arrays) for i, s in enumerate(state)]
        return {"tuple" if isinstance(state, tuple) else "list": items}
    if isinstance(state, (bool, numbers.Number)) and not isinstance(state, complex):
        return {"value": state.item() if hasattr(state, "item") else state}
    raise MXCoreError(f"cannot save optimizer state {key!r} of type {type(state).__name__} "
                      "(states are NDArrays, numbers, None, or tuples/lists of them)")


def _decode_state(enc, arrays, ctx):
    if enc is None:
        return None
    if "array" in enc:
        host = arrays[enc["array"]]
        return _array(np.asarray(host), ctx=ctx, dtype=host.dtype)
    if "tuple" in enc:
        return tuple(_decode_state(e, arrays, ctx) for e in enc["tuple"])
    if "list" in enc:
        return [_decode_state(e, arrays, ctx) for e in enc["list"]]
    return enc["value"]


def _class_id(klass) -> str:
    return f"{klass.__module__}.{klass.__qualname__}"


def _find_class(base, class_id: str):
    """A loaded subclass of ``base`` by module-qualified name (nothing is imported)."""
    todo = [base]
    while todo:
        k = todo.pop()
        if _class_id(k) == class_id:
            return k
        todo.extend(k.__subclasses__())
    if base is Optimizer:
        name = class_id.rsplit(".", 1)[-1].lower()
        if name in Optimizer.opt_registry:
            return Optimizer.opt_registry[name]
    raise MXCoreError(f"cannot restore {class_id}: no such {base.__name__} class is loaded "
                      "(import the module that defines it first)")


def _encode(value, where: str):
    """JSON with tags for what JSON lacks: tuples, dicts with non-string keys,
    learning-rate schedulers."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if not (k is None or isinstance(k, (bool, int, float, str))):
                raise MXCoreError(f"cannot save {where}: key {k!r} is not a JSON scalar")
            items.append([k, _encode(v, f"{where}[{k!r}]")])
        return {"__dict__": items}
    if isinstance(value, LRScheduler):
        return {"__lr_scheduler__": _class_id(type(value)),
                "attrs": _encode(dict(value.__dict__), f"{where}.lr_scheduler")}
    raise MXCoreError(f"cannot save {where}: {type(value).__name__} values have no JSON form "
                      "(save the optimizer's states without dump_optimizer)")


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tuple__" in value:
        return tuple(_decode(v) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _decode(v) for k, v in value["__dict__"]}
    if "__lr_scheduler__" in value:
        klass = _find_class(LRScheduler, value["__lr_scheduler__"])
        sched = klass.__new__(klass)
        sched.__dict__.update(_decode(value["attrs"]))
        return sched
    raise MXCoreError(f"unknown tagged value in optimizer configuration: {sorted(value)}")
