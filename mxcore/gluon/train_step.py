"""``gluon.TrainStep``: a whole training step -- forward, loss, backward and the
optimizer's update -- as one call that replays one traced plan.

``step = TrainStep(net, loss_fn, trainer)`` then ``loss = step(data, label)`` does what ::

    with autograd.record():
        loss = loss_fn(net(data), label)
    loss.backward()
    trainer.step(data.shape[0])

does, with the same kernels, gradient rules, seeds and results (bit for bit on the CPU).
The network and the loss are traced together as one plan (``mxcore.graph.plan``), once
per input signature, by the ordinary hybridized call; later calls run that plan's
forward and backward lists directly (``Plan.forward_backward``): no tape node, no
autograd traversal, no per-block Python.  The gradients land in the parameters' ``.grad``
as ``backward`` writes them (``grad_req`` 'write' or 'add', grad-ready hooks called),
then the trainer updates: on one device without a kvstore, an optimizer with a
multi-weight op (SGD, Adam...) takes every weight in one call, as ``trainer.step`` would
make it; anything else goes through ``trainer.step`` itself (kvstores, stale-gradient
errors, float16 master weights).

A call takes the traced path again -- the hybridized call under ``record()``, then
``backward`` -- while autograd is recording, when an input carries a gradient
(``attach_grad``: backward writes it) or under ``MXCORE_GRAPH_DEBUG`` (which then checks
the plan against eager code).  The loss returned is never recorded.  Hooks registered on the network's blocks (forward hooks, op
hooks) run while tracing only, as for any hybridized block's children.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from mxcore import autograd as _autograd
from mxcore.dispatch import wrap
from mxcore.gluon.block import Block, HybridBlock
from mxcore.gluon.trainer import Trainer


class _Objective(HybridBlock):
    """``loss_fn(net(*inputs), label)`` as one block: what the plan is traced from.
    Its children are the caller's own blocks (their parameters, not copies)."""

    def __init__(self, net: Block, loss_fn: Block):
        super().__init__(prefix="trainstep_")
        self.net = net
        self.loss_fn = loss_fn

    def hybridize(self, active: bool = True, **flags) -> None:
        # only this block: hybridizing the children would change the caller's network
        self._active = active
        self._flags = dict(flags)
        self._plans.clear()

    def hybrid_forward(self, F, *args):
        return self.loss_fn(self.net(*args[:-1]), args[-1])


class TrainStep:
    """One training step of ``net`` under ``loss_fn``, updated by ``trainer``:
    ``step(*inputs, label, batch_size=None)`` runs ``net(*inputs)``, the loss against
    ``label``, backward and ``trainer.step(batch_size or inputs[0].shape[0])``, and
    returns the loss (per sample, as ``loss_fn`` returns it; not recorded).

    ``static_alloc``/``static_shape``/``backend`` are the plan's ``hybridize`` flags.
    ``net`` and ``loss_fn`` need not be hybridized themselves; they are left as they
    are."""

    def __init__(self, net: Block, loss_fn: Block, trainer: Trainer, *,
                 static_alloc: bool = False, static_shape: bool = False,
                 backend: Optional[str] = None):
        if not isinstance(net, Block) or not isinstance(loss_fn, Block):
            raise TypeError(f"TrainStep takes a network and a loss block, got "
                            f"{type(net).__name__} and {type(loss_fn).__name__}")
        if not isinstance(trainer, Trainer):
            raise TypeError(f"TrainStep: trainer must be a gluon.Trainer, got "
                            f"{type(trainer).__name__}")
        self.net, self.loss_fn, self.trainer = net, loss_fn, trainer
        self._objective = _Objective(net, loss_fn)
        self._objective.hybridize(static_alloc=static_alloc, static_shape=static_shape,
                                  backend=backend)
        # input signature -> (plan, head gradients): the signatures whose plan replays
        self._ready: Dict[Any, Any] = {}

    def __call__(self, *args, batch_size: Optional[int] = None):
        if len(args) < 2:
            raise TypeError(f"TrainStep takes the network's inputs and a label, got "
                            f"{len(args)} argument(s)")
        if batch_size is None:
            shape = getattr(args[0], "shape", None)
            if not shape:
                raise TypeError(f"TrainStep: the first input must be an NDArray with a batch "
                                f"axis (or give batch_size=), got {type(args[0]).__name__}")
            batch_size = shape[0]
        try:
            key = tuple([(a._data.shape, a._data.dtype, a._device, a._ag) for a in args])
        except AttributeError:  # not all NDArrays: the traced path says what is wrong
            key = None
        ready = self._ready.get(key) if not _autograd.STATE.recording else None
        if ready is None:
            return self._traced(args, batch_size, key)
        plan, heads, params = ready
        ctx = args[0]._device
        with _autograd.train_mode():
            outs, grads, held = plan.forward_backward(args, heads, ctx)
        _write_grads(params, grads, held, ctx)
        if not _fused_update(self.trainer, ctx, batch_size):
            self.trainer.step(batch_size)
        return wrap(outs[0], ctx)

    def _traced(self, args, batch_size: int, key):
        """The step as imperative code writes it, through the hybridized objective
        (which traces its plan on the first call of a signature)."""
        with _autograd.record():
            loss = self._objective(*args)
        loss.backward()
        self.trainer.step(batch_size)
        plan = self._objective.last_plan()
        if (key is not None and plan is not None and plan.backward is not None
                and not plan._debugging and not _autograd.STATE.recording
                and all(a._ag is None for a in args)
                and _signature(plan) == [(a.shape, a._data.dtype) for a in args]):
            from mxcore.device import device_type
            xp = device_type(plan.ctx).xp
            heads = [xp.ones(shape, dtype) for shape, dtype in _live_outputs(plan)]
            params = [(k, p) for k, (kind, p) in enumerate(plan.variables) if kind == "param"]
            self._ready[key] = (plan, heads, params)
        return loss.detach()


def _signature(plan):
    fwd = plan.forward
    return [(tuple(fwd.shapes[s]), fwd.dtypes[s]) for s in fwd.inputs]


def _live_outputs(plan):
    fwd = plan.forward
    return [(tuple(fwd.shapes[s]), fwd.dtypes[s])
            for s in fwd.outputs[:plan.n_outputs] if s is not None]


def _write_grads(params, grads, held, ctx) -> None:
    """Each parameter's gradient into its ``.grad`` as backward writes it (``params``:
    (position in ``grads``, Parameter)): a fresh buffer is taken over, anything the plan
    also holds (``held``: ids) is copied."""
    write = _autograd._write_leaf_grad
    for k, p in params:
        g = grads[k]
        if g is None:
            continue
        arr = p.data(ctx)
        leaf = arr._ag
        if leaf is None:
            continue
        dst = leaf.grad
        if (leaf.req == "write" and getattr(g, "base", 0) is None and id(g) not in held
                and g.shape == dst._data.shape and g.dtype == dst._data.dtype):
            dst._data = g  # what _write_leaf_grad does with a fresh buffer, inline
            held.add(id(g))
            leaf.fresh = True
        elif not write(arr, wrap(g, ctx), held):
            continue
        if leaf.hooks:
            for fn in list(leaf.hooks):
                fn(arr)


def _fused_update(trainer: Trainer, ctx, batch_size: int) -> bool:
    """``trainer.step(batch_size)`` for the usual case -- one device, no kvstore, an
    optimizer with a multi-weight op taking every weight in one call -- without the
    layers between the Trainer and that call (the same counts, rates, states and
    kernel).  False: not that case (or a gradient is stale); ``trainer.step`` then runs
    and does or says what applies."""
    if trainer._kvstore is not None or not trainer._kv_initialized \
            or trainer._params_to_init or len(trainer._updaters) != 1:
        return False
    opt = trainer._optimizer
    updater = trainer._updaters[0]
    fusable = opt._fusable
    if fusable is None or not updater.aggregate_updates:
        return False
    indices, weights, grads, states = [], [], [], []
    table, synced = updater.states, updater.states_synced
    dtype = None
    for i, p in enumerate(trainer._params):
        if p._grad_req == "null":
            continue
        data = p._data
        if data is None or len(data) != 1:
            return False
        w = data[0]
        leaf = w._ag
        state = table.get(i)
        if not leaf.fresh or synced.get(i) is not True or not fusable(w, state):
            return False
        if dtype is None:
            dtype = w._data.dtype
        elif w._data.dtype != dtype:
            return False
        indices.append(i)
        weights.append(w)
        grads.append(leaf.grad)
        states.append(state)
    if not indices or len(indices) > opt.aggregate_num:
        return False
    opt.rescale_grad = trainer._scale / batch_size
    for w in weights:
        w._ag.fresh = False
    opt._set_current_context(ctx.index)
    opt._update_count(indices)
    opt._run_fused(indices, weights, grads, states)
    return True
