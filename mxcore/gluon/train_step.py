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
forward and backward steps as one program (``Plan.forward_backward``): no tape node, no
autograd traversal, no per-block Python.  The gradients land in the parameters' ``.grad``
as ``backward`` writes them (``grad_req`` 'write' or 'add', grad-ready hooks called),
then ``trainer.step`` runs as written (on one device its optimizer's multi-weight op
takes every weight in one call: ``Trainer._gather_fused``).

A call takes the traced path again -- the hybridized call under ``record()``, then
``backward`` -- while autograd is recording, when an input carries a gradient
(``attach_grad``: backward writes it) or under ``MXCORE_GRAPH_DEBUG`` (which then checks
the plan against eager code).  The loss returned is never recorded.  Hooks registered
on the network's blocks (forward hooks, op hooks) run while tracing only, as for any
hybridized block's children.  With ``static_alloc`` and ``static_shape`` on a device
that captures, the step replays device graphs (``_DeviceGraphs``).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from hal import DeviceType

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

    ``static_alloc``/``static_shape``/``backend`` are the plan's ``hybridize`` flags;
    with both static flags, on a device that captures device graphs (CUDA), the step
    replays captured graphs (``_DeviceGraphs``).  ``net`` and ``loss_fn`` need not be
    hybridized themselves; they are left as they are."""

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
        # input signature -> (plan, head gradients, parameters, device graphs or None):
        # the signatures whose plan replays
        self._ready: Dict[Any, Any] = {}
        self._static = bool(static_alloc and static_shape)

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
        plan, heads, params, graphs = ready
        ctx = args[0]._device
        state = _autograd.STATE  # training mode, as the plan was traced (custom ops read it)
        training, state.training = state.training, True
        try:
            replayed = graphs.run(args, heads) if graphs is not None else None
            if replayed is None:
                outs, grads, held = plan.forward_backward(args, heads, ctx)
            else:
                outs, grads, held = replayed
        finally:
            state.training = training
        _write_grads(params, grads, held, ctx)
        if replayed is not None:
            if not graphs.update(self.trainer, batch_size):
                self.trainer.step(batch_size)
            return wrap(outs[0].copy(), ctx)  # the next replay writes the graph's buffer
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
            # ones for each differentiable output (head_slots: None for the others)
            heads = [xp.ones(shape, dtype) for (shape, dtype), slot
                     in zip(_live_outputs(plan), plan.head_slots) if slot is not None]
            params = [(k, p) for k, (kind, p) in enumerate(plan.variables) if kind == "param"]
            graphs = _DeviceGraphs(plan) if self._static and _DeviceGraphs.possible(plan) \
                else None
            self._ready[key] = (plan, heads, params, graphs)
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
    write, take_over = _autograd._write_leaf_grad, _autograd.take_over_grad
    for k, p in params:
        g = grads[k]
        if g is None:
            continue
        arr = p.data(ctx)
        leaf = arr._ag
        if leaf is None:
            continue
        # (taken over before wrapping: no NDArray for the usual case)
        if not take_over(leaf, g, held) and not write(arr, wrap(g, ctx), held):
            continue
        if leaf.hooks:
            for fn in list(leaf.hooks):
                fn(arr)


class _DeviceGraphs:
    """A signature's step as device graphs (``static_alloc`` and ``static_shape`` on a
    device whose ``DeviceType.capture`` records: CUDA graphs).

    The forward and backward program is captured on fixed buffers: the inputs are copied
    into the graph's own, the parameters are read where they live.  A replay leaves the
    loss and the gradients in the graph's buffers; the gradients become the parameters'
    ``.grad`` (each replay overwrites them, as MXNet's gradient buffers are
    overwritten).  The optimizer's multi-weight call (where it has ``_fused_call``: SGD)
    is captured too, and again whenever its arrays or attributes (learning rates,
    ``rescale_grad``...) change; other optimizers update uncaptured.  The first call runs
    uncaptured (kernels compile outside a capture), the second captures; a parameter
    whose array was replaced makes a new capture.  Random steps (dropout), Python
    kernels and asynchronous engines keep the uncaptured replay."""

    def __init__(self, plan):
        self.plan, self.ctx = plan, plan.ctx
        self.replay = None    # the forward-backward replay; False: the device cannot
        self.vals = None      # its slots
        self.inputs = None    # its input buffers
        self.params = None    # the parameter arrays it reads
        self.held = None      # ids of arrays a gradient must not be taken over as
        self.fixed = None     # (slot, the capture's buffer) of what a replay leaves
        self.calls = 0
        self.optimizer_call = None  # (arrays, attributes, op, replay) of the update

    @staticmethod
    def possible(plan) -> bool:
        from mxcore.device import device_type
        if type(device_type(plan.ctx)).capture is DeviceType.capture:
            return False  # the device has no capture
        steps = plan._whole.steps
        return not any("seed" in st.op.volatile_attrs or st.op.needs_rng
                       or st.op.python_kernel is not None for st in steps)

    def run(self, args, heads):
        """``(outputs, gradients, held)`` as ``Plan.forward_backward`` returns them, from
        a replay (capturing first where needed); None: this call runs uncaptured."""
        from mxcore import engine
        from mxcore.device import device_type
        from mxcore.graph.plan import Compiled, _WholeStep
        if self.replay is False or getattr(engine.current(), "asynchronous", False):
            return None
        plan, ctx = self.plan, self.ctx
        step = plan._step
        if step is None:
            step = plan._step = _WholeStep(plan)
        prog = step.program
        datas = [p.data(ctx)._data for _, p in prog.params]
        if self.replay is None or any(a is not b for a, b in zip(self.params, datas)):
            self.calls += 1
            if self.calls < 2:
                return None
            inputs = [x._data.copy() for x in args]
            vals, held = step.slots(inputs, heads, datas)
            compiled = Compiled(prog, ctx, static_alloc=True, free=False)
            replay = device_type(ctx).capture(ctx.index, lambda: compiled.run(vals, {}))
            if replay is None:
                self.replay = False
                return None
            replay()  # the capture recorded the work; this runs it
            held.update(id(vals[s]) for s, _ in step.outputs)
            # the buffers read after a replay: the capture's (a device that replays by
            # running the list again, as the interpreted one, rebinds the slots to new
            # arrays; their values are copied back into these)
            self.fixed = [(s, vals[s]) for s, _ in step.outputs] + [
                (s, vals[s]) for s in step.grads if s is not None]
            self.replay, self.vals, self.inputs, self.params, self.held = (
                replay, vals, inputs, datas, held)
        else:
            for buf, x in zip(self.inputs, args):
                buf[...] = x._data
            self.replay()
            vals = self.vals
            for s, buf in self.fixed:
                if vals[s] is not buf:
                    buf[...] = vals[s]
                    vals[s] = buf
        vals = self.vals
        return ([vals[s] for s, _ in step.outputs],
                [None if s is None else vals[s] for s in step.grads], set(self.held))

    def update(self, trainer: Trainer, batch_size: int) -> bool:
        """The optimizer's step after a replay: its multi-weight call (``_fused_call``)
        replayed.  False: ``trainer.step`` must update (another optimizer, a kvstore...)."""
        from mxcore.device import device_type
        from mxcore.ops.optimizer import invoke_multi_update
        opt = trainer._optimizer
        call = getattr(opt, "_fused_call", None)
        if call is None or trainer._kvstore is not None:
            return False
        opt.rescale_grad = trainer._scale / batch_size  # as trainer.step sets it
        gathered = trainer._gather_fused()
        if gathered is None:
            return False
        trainer._begin_fused(gathered)
        op, per, data, attrs = call(*gathered)
        arrays = [a._data for a in data]
        last = self.optimizer_call
        if (last is not None and last[2] is op and last[1] == attrs
                and len(last[0]) == len(arrays) and all(a is b for a, b in zip(last[0], arrays))):
            last[3]()  # the same call on the same memory: replay it
            return True

        def fn():
            invoke_multi_update(op, per, data, attrs)
        replay = device_type(self.ctx).capture(self.ctx.index, fn)
        if replay is None:
            fn()
            self.optimizer_call = None
            return True
        replay()  # the capture recorded the call; this runs it, once
        self.optimizer_call = (arrays, attrs, op, replay)
        return True
