"""Tape-based automatic differentiation (MXNet's ``mx.autograd``).

While recording, every op whose inputs take part in differentiation leaves a
``Node`` on its outputs (``NDArray._ag = (node, output_index)``); arrays marked
with ``attach_grad`` carry a ``Leaf`` holding their gradient buffer.  Backward
walks the nodes in reverse topological order and applies each op's gradient
rule, which is written in mxcore ops: with ``create_graph=True`` the rules run
while recording, so gradients can be differentiated again.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, List, Mapping, Optional, Sequence, Union

from mxcore.base import MXCoreError
from mxcore.op import GradContext


class _State:
    __slots__ = ("recording", "training")

    def __init__(self):
        self.recording = False
        self.training = False


#: Process-wide autograd flags (read on every op call: kept as plain slots).
STATE = _State()

GRAD_REQS = ("write", "add", "null")


class Leaf:
    """Autograd record of a variable made by ``attach_grad``."""

    __slots__ = ("grad", "req", "fresh", "hooks")

    def __init__(self, grad, req: str):
        self.grad = grad
        self.req = req
        self.fresh = False  # set by backward, cleared by the Trainer (stale-gradient check)
        self.hooks = None   # register_grad_ready_hook's functions, or None


#: how many grad-ready hooks are registered: backward looks for them only when some are
_live_hooks = 0


class HookHandle:
    """What ``register_grad_ready_hook`` returns: ``remove()`` unregisters the hook."""

    __slots__ = ("_leaf", "_fn")

    def __init__(self, leaf: Leaf, fn):
        self._leaf, self._fn = leaf, fn

    def remove(self) -> None:
        global _live_hooks
        hooks = self._leaf.hooks
        if hooks and self._fn in hooks:
            hooks.remove(self._fn)
            _live_hooks -= 1
            if not hooks:
                self._leaf.hooks = None


def register_grad_ready_hook(array, fn) -> HookHandle:
    """Call ``fn(array)`` during ``backward`` as soon as ``array.grad`` holds the
    pass's gradient (written or added, by ``grad_req``): after the last op that reads
    ``array`` has been differentiated, while the rest of the graph is still being
    differentiated (PyTorch's ``register_post_accumulate_grad_hook``).  A data-parallel
    Trainer starts reducing gradients this way while backward goes on.  ``array`` must
    have a gradient (``attach_grad``); a later ``attach_grad`` drops its hooks.
    ``autograd.grad`` writes no ``.grad`` and calls no hooks."""
    global _live_hooks
    leaf = array._ag
    if not isinstance(leaf, Leaf):
        raise MXCoreError("register_grad_ready_hook: the array has no gradient buffer; call "
                          "attach_grad() on it first")
    if leaf.hooks is None:
        leaf.hooks = []
    leaf.hooks.append(fn)
    _live_hooks += 1
    return HookHandle(leaf, fn)


#: the attributes of a node whose graph backward freed
_FREED: Mapping[str, Any] = MappingProxyType({})


class Node:
    """One recorded op application."""

    __slots__ = ("op", "attrs", "inputs", "outputs", "nout")

    def __init__(self, op, attrs, inputs, outputs, nout):
        self.op = op
        self.attrs = attrs
        self.inputs = inputs
        self.outputs = outputs
        self.nout = nout


#: what an in-place write while recording may not do (MXNet's words for the second)
_ASSIGN_TRACKED = ("cannot assign into an array that is part of the recorded computational "
                   "graph (a variable or a recorded result) while recording: its gradients "
                   "would be wrong. Call backward first, or write outside the record() "
                   "block; in-place operations (+=, *=, x[idx] = v) are not supported "
                   "inside it")
_INPLACE_RECORDING = ("Inplace operations (+=, -=, x[:]=, etc) are not supported when "
                      "recording with autograd: write the result to a new array instead")


def check_inplace_write(target, value, whole: bool) -> bool:
    """Called while recording before ``target`` is written in place with ``value``
    (an NDArray, or a number).  Raises as MXNet does when the write would corrupt the
    graph: ``target`` is tracked, or a tracked ``value`` would flow into it by an
    in-place op.  Returns True when the write must be recorded: ``whole`` (the write
    covers all of ``target``, ``x[:] = v``), with a tracked ``value``, which MXNet
    records as a copy."""
    if target._ag is not None:
        raise MXCoreError(_ASSIGN_TRACKED)
    if getattr(value, "_ag", None) is None:
        return False
    if not whole:
        raise MXCoreError(_INPLACE_RECORDING)
    return True


def record_op(op, inputs, outputs, attrs) -> None:
    if op.grad is None:  # not differentiable: outputs are constants
        return
    node = Node(op, attrs, tuple(inputs), tuple(outputs) if op.saves_output else None,
                len(outputs))
    for i, o in enumerate(outputs):
        o._ag = (node, i)


# scopes ---------------------------------------------------------------------------
def set_recording(is_recording: bool) -> bool:
    prev = STATE.recording
    STATE.recording = bool(is_recording)
    return prev


def set_training(train_mode: bool) -> bool:
    prev = STATE.training
    STATE.training = bool(train_mode)
    return prev


def is_recording() -> bool:
    return STATE.recording


def is_training() -> bool:
    return STATE.training


class _Scope:
    __slots__ = ("recording", "training", "_prev")

    def __init__(self, recording: Optional[bool], training: Optional[bool]):
        self.recording, self.training = recording, training

    def __enter__(self):
        self._prev = (STATE.recording, STATE.training)
        if self.recording is not None:
            STATE.recording = self.recording
        if self.training is not None:
            STATE.training = self.training
        return self

    def __exit__(self, *exc):
        STATE.recording, STATE.training = self._prev
        return False


def record(train_mode: bool = True) -> _Scope:
    """Record ops for differentiation inside the ``with`` block."""
    return _Scope(True, train_mode)


def pause(train_mode: bool = False) -> _Scope:
    """Stop recording inside the ``with`` block."""
    return _Scope(False, train_mode)


def train_mode() -> _Scope:
    return _Scope(None, True)


def predict_mode() -> _Scope:
    return _Scope(None, False)


# backward ---------------------------------------------------------------------------
def _as_list(x) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _toposort(heads) -> List[Node]:
    """Nodes reachable from ``heads``, every node before the nodes it feeds
    (i.e. reverse topological order: heads first).  Nodes an earlier backward freed
    are constants (as in MXNet), unless a head itself is one."""
    order, seen = [], set()
    for h in heads:
        ag = h._ag
        if type(ag) is not tuple or ag[0] in seen:
            continue
        if ag[0].inputs is None:
            raise MXCoreError(
                "the graph was freed by an earlier backward(); pass retain_graph=True "
                "to differentiate it twice")
        stack = [(ag[0], False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if node in seen:
                continue
            seen.add(node)
            stack.append((node, True))
            for x in node.inputs:
                xag = x._ag
                if type(xag) is tuple and xag[0] not in seen and xag[0].inputs is not None:
                    stack.append((xag[0], False))
    order.reverse()
    return order


def _add_grad(store: dict, key, slot: int, size: int, g) -> None:
    entry = store.get(key)
    if entry is None:
        entry = store[key] = [None] * size
        entry[slot] = g
    else:
        entry[slot] = g if entry[slot] is None else entry[slot] + g


def _backward(heads, head_grads, variables, retain_graph: bool, create_graph: bool,
              train_mode: bool):
    # ones and zeros come from the arrays' own methods (x.ones_like()): autograd sits
    # below the op modules and never imports them
    heads = _as_list(heads)
    head_grads = _as_list(head_grads) or [None] * len(heads)
    if len(head_grads) != len(heads):
        raise MXCoreError(f"backward: {len(heads)} heads but {len(head_grads)} head gradients")
    node_grads: dict = {}     # node -> [grad per output]
    leaf_grads: dict = {}     # leaf array -> [array, grad]
    wanted = {}               # (node, output index) -> grad, for non-leaf variables
    for v in variables or ():
        ag = v._ag
        if ag is None:
            raise MXCoreError("autograd.grad: a variable is not part of the recorded graph; "
                              "call attach_grad() on it before recording")
        if type(ag) is tuple:
            wanted[ag] = None
    # Buffers a gradient may not take over (see the end): the user's head
    # gradients and every array a gradient rule saw.
    protected = {id(hg._data) for hg in head_grads if hg is not None}
    prev = (STATE.recording, STATE.training)
    STATE.recording, STATE.training = create_graph, train_mode
    try:
        for h, hg in zip(heads, head_grads):
            ag = h._ag
            if ag is None:
                raise MXCoreError(
                    "cannot differentiate: the head was not computed from arrays with "
                    "attached gradients inside autograd.record()")
            if hg is None:
                hg = h.ones_like()
            elif hg.shape != h.shape:
                raise MXCoreError(f"backward: head gradient shape {hg.shape} differs from the "
                                  f"head's shape {h.shape}")
            if type(ag) is tuple:
                _add_grad(node_grads, ag[0], ag[1], ag[0].nout, hg)
            else:
                _add_grad(leaf_grads, h, 1, 2, hg)
                leaf_grads[h][0] = h
        order = _toposort(heads)
        # grad-ready hooks: each hooked leaf's gradient is written, and its hooks called,
        # right after the last node that reads it (its position in ``order``)
        due = _hooked_leaves(order) if _live_hooks and variables is None else None
        for position, node in enumerate(order):
            gs = node_grads.pop(node, None)
            if gs is None:
                continue
            inputs = node.inputs
            if wanted:
                for i, g in enumerate(gs):
                    if (node, i) in wanted:
                        wanted[(node, i)] = g
            ctx = GradContext(inputs, node.outputs, node.attrs)
            in_grads = node.op.grad(ctx, gs[0]) if node.nout == 1 else node.op.grad(ctx, *gs)
            for x in inputs:
                protected.add(id(x._data))
            if node.outputs is not None:
                for x in node.outputs:
                    protected.add(id(x._data))
            for x, g in zip(inputs, in_grads):
                if g is None:
                    continue
                xag = x._ag
                if xag is None:
                    continue
                if g._data.shape != x._data.shape:
                    raise MXCoreError(
                        f"gradient rule of {node.op.name!r} returned shape {g.shape} for an "
                        f"input of shape {x.shape}")
                if type(xag) is tuple:
                    _add_grad(node_grads, xag[0], xag[1], xag[0].nout, g)
                else:
                    entry = leaf_grads.get(x)
                    if entry is None:
                        leaf_grads[x] = [x, g]
                    else:
                        entry[1] = entry[1] + g
            if due is not None and position in due:
                for x in due.pop(position):
                    entry = leaf_grads.pop(x, None)
                    if entry is not None and _write_leaf_grad(x, entry[1], None):
                        for fn in list(x._ag.hooks or ()):
                            fn(x)
    finally:
        STATE.recording, STATE.training = prev
    if not retain_graph:  # free saved arrays now (also breaks output<->node cycles)
        for node in order:
            node.inputs = node.outputs = None
            node.attrs = _FREED  # what a rule kept there (a plan's saved activations) too
    if variables is not None:
        out = []
        for v in variables:
            ag = v._ag
            g = wanted.get(ag) if type(ag) is tuple else leaf_grads.get(v, (None, None))[1]
            out.append(v.zeros_like() if g is None else g)
        return out
    for arr, g in leaf_grads.values():
        if _write_leaf_grad(arr, g, protected) and arr._ag.hooks:
            for fn in list(arr._ag.hooks):
                fn(arr)
    return None


def _write_leaf_grad(arr, g, protected: Optional[set]) -> bool:
    """Store ``g`` as ``arr``'s gradient by its grad_req; False for 'null'.  With
    ``protected`` (the buffers others hold: at the end of backward) a fresh ``g`` is
    taken over instead of copied; without (a write while backward goes on, where ``g``
    may still feed nodes not yet differentiated) it is copied."""
    leaf = arr._ag
    if leaf.req == "null":
        return False
    if protected is not None and take_over_grad(leaf, g._data, protected):
        return True
    dst = leaf.grad
    if leaf.req == "add":
        dst[:] = dst + g
    else:
        dst[:] = g
    leaf.fresh = True
    return True


def take_over_grad(leaf, gd, protected: set) -> bool:
    """Make the device array ``gd`` ``leaf``'s 'write' gradient when it is a fresh
    buffer that nothing else holds (not a view, not in ``protected``: ids of what
    others hold), of the gradient's shape and dtype: no copy.  False: not taken."""
    dst = leaf.grad
    dd = dst._data
    if (leaf.req == "write" and getattr(gd, "base", 0) is None and id(gd) not in protected
            and gd.shape == dd.shape and gd.dtype == dd.dtype):
        dst._data = gd
        protected.add(id(gd))
        leaf.fresh = True
        return True
    return False


def _hooked_leaves(order) -> dict:
    """{position in ``order``: hooked leaves whose last reader is that node}."""
    last = {}
    for position, node in enumerate(order):
        for x in node.inputs:
            ag = x._ag
            if type(ag) is Leaf and ag.hooks:
                last[x] = position
    due: dict = {}
    for x, position in last.items():
        due.setdefault(position, []).append(x)
    return due


def backward(heads, head_grads=None, retain_graph: bool = False,
             train_mode: bool = True) -> None:
    """Compute gradients of ``heads`` and store them in the ``.grad`` of every
    variable (``attach_grad``) they depend on."""
    _backward(heads, head_grads, None, retain_graph, False, train_mode)


def grad(heads, variables, head_grads=None, retain_graph: Optional[bool] = None,
         create_graph: bool = False, train_mode: bool = True):
    """Return the gradients of ``heads`` with respect to ``variables`` (without
    touching their ``.grad``).  With ``create_graph=True`` the result is itself
    recorded, so it can be differentiated again."""
    single = not isinstance(variables, (list, tuple))
    variables = _as_list(variables)
    if retain_graph is None:
        retain_graph = create_graph
    out = _backward(heads, head_grads, variables, retain_graph, create_graph, train_mode)
    return out[0] if single else out


def mark_variables(variables, gradients, grad_reqs: Union[str, Sequence[str]] = "write") -> None:
    """Mark arrays as variables whose gradients go into ``gradients``."""
    variables, gradients = _as_list(variables), _as_list(gradients)
    reqs = [grad_reqs] * len(variables) if isinstance(grad_reqs, str) else list(grad_reqs)
    for v, g, r in zip(variables, gradients, reqs):
        if r not in GRAD_REQS:
            raise ValueError(f"grad_req must be one of {GRAD_REQS}, got {r!r}")
        v._ag = Leaf(g, r)


def __getattr__(name: str):
    # ``from mxnet.autograd import *`` gives NDArray too (imported late: the NDArray
    # module imports this one)
    if name == "NDArray":
        from mxcore.array import NDArray
        return NDArray
    raise AttributeError(f"module 'mxcore.autograd' has no attribute {name!r}")


__all__ = ["record", "pause", "train_mode", "predict_mode", "is_recording", "is_training",
           "set_recording", "set_training", "backward", "grad", "mark_variables",
           "register_grad_ready_hook", "Function", "NDArray"]


class Function:
    """A user-defined differentiable function (MXNet's ``autograd.Function``).

    Subclass it with ``forward(*inputs)`` and ``backward(*output_grads)``
    (both on NDArrays; ``backward`` returns one gradient per input), keep what
    backward needs with ``save_for_backward``, and call an instance::

        class Sigmoid(mx.autograd.Function):
            def forward(self, x):
                y = 1 / (1 + mx.nd.exp(-x))
                self.save_for_backward(y)
                return y

            def backward(self, dy):
                (y,) = self.saved_tensors
                return dy * y * (1 - y)

    ``forward`` runs without recording; the call records one node whose
    gradient rule is ``backward``.
    """

    def __init__(self):
        self.saved_tensors = ()

    def save_for_backward(self, *args) -> None:
        self.saved_tensors = args

    def forward(self, *inputs):
        raise NotImplementedError

    def backward(self, *output_grads):
        raise NotImplementedError

    def __call__(self, *inputs):
        from mxcore.op import Op
        with pause(train_mode=STATE.training):
            outputs = self.forward(*inputs)
        single = not isinstance(outputs, (list, tuple))
        outs = (outputs,) if single else tuple(outputs)
        outs = tuple(o.detach() for o in outs)  # fresh records, whatever forward returned
        if STATE.recording and any(x._ag is not None for x in inputs):
            op = Op(f"Function[{type(self).__name__}]", len(inputs), len(outs))
            function = self

            def rule(ctx, *grads):
                grads = [o.zeros_like() if g is None else g
                         for o, g in zip(outs, grads)]
                in_grads = function.backward(*grads)
                in_grads = in_grads if isinstance(in_grads, (list, tuple)) else (in_grads,)
                if len(in_grads) != len(inputs):
                    raise MXCoreError(f"{type(function).__name__}.backward returned "
                                      f"{len(in_grads)} gradients for {len(inputs)} inputs")
                return tuple(in_grads)

            op.def_grad(rule)
            record_op(op, inputs, outs, {})
        return outs[0] if single else outs


def get_symbol(x):
    """The computation recorded (inside ``record()``) that produced NDArray ``x``, as a
    Symbol (``mxcore.graph.tape_symbol``)."""
    from mxcore.graph.tape_symbol import get_symbol as _get_symbol
    return _get_symbol(x)


__all__.append("get_symbol")
