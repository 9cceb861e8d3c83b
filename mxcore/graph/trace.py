"""Tracing a HybridBlock into a plan of core-op calls, and replaying the plan.

``hybridize()`` runs a block's forward once per input signature (shapes, dtypes,
nesting, device kind, training and recording modes) on meta arrays (shape-only, see
``mxcore.dispatch.META``).  Every op the forward dispatches on them runs its shape/dtype
rule through the meta kernel, which also logs the call here: the op, which earlier
values it reads, its attributes.  Host data turned into arrays (``nd.array`` of a
constant) is logged with its values.  The log is a flat plan: a list of
(op, input slots, attributes, output slots).

The log becomes a ``Program`` (``mxcore.graph.program``) that the pass pipeline
optimises and ``mxcore.graph.plan`` compiles into a flat list of kernel calls.  While
recording, the tracer also runs autograd's backward on the meta arrays: the gradient
rules' ops are logged the same way and become the backward program.
Shapes may be read while tracing (they are part of the signature); values may not: a
forward that reads values (``asnumpy``, ``asscalar``, ``bool(x)``) cannot be traced and
is reported naming the block.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mxcore.base import MXCoreError
from mxcore.device import meta_recorder, set_meta_recorder



class TraceError(MXCoreError):
    """A forward that cannot be turned into a plan."""


def current() -> Optional["Trace"]:
    """The trace running in this thread (the meta device's recorder), if any."""
    return meta_recorder()


class Trace:
    """The plan being recorded: slots are values (inputs, parameters, constants, op
    outputs), steps are op calls between them."""

    def __init__(self, block_name: str):
        self.block_name = block_name
        self.slot_of: Dict[int, int] = {}
        self.keep: List[Any] = []  # the meta arrays, alive so their ids stay unique
        self.nslots = 0
        self.inputs: List[int] = []
        self.params: List[Tuple[int, Any]] = []
        self.param_arrays: Dict[int, Any] = {}
        self.constants: List[Tuple[int, np.ndarray]] = []
        self.steps: List[Tuple[Any, Tuple[int, ...], Dict[str, Any], Tuple[int, ...], Any]] = []
        self.names: List[str] = []           # per step: the block path that made it
        self.shapes: List[Tuple[int, ...]] = []  # per slot
        self.dtypes: List[Any] = []
        self.scopes: List[str] = [block_name]

    def __enter__(self) -> "Trace":
        if current() is not None:
            raise TraceError("a trace is already running in this thread")
        set_meta_recorder(self)
        return self

    def __exit__(self, *exc) -> bool:
        set_meta_recorder(None)
        return False

    def _slot(self, data) -> int:
        slot = self.nslots
        self.nslots += 1
        self.slot_of[id(data)] = slot
        self.keep.append(data)
        self.shapes.append(tuple(data.shape))
        self.dtypes.append(data.dtype)
        return slot

    def scope(self, name: str) -> "_Scope":
        """Name the steps a child block logs (``with trace.scope(child.name):``)."""
        return _Scope(self, name)

    # what the tracer feeds in --------------------------------------------------------------
    def input(self, shape, dtype, tracked: bool = False):
        """A meta NDArray standing for a block input (``tracked``: the real input takes
        part in autograd, which op wrappers may look at)."""
        arr = _meta_array(shape, dtype, tracked)
        self.inputs.append(self._slot(arr._data))
        return arr

    def param(self, param):
        """The meta NDArray standing for a Parameter (one per Parameter)."""
        arr = self.param_arrays.get(id(param))
        if arr is None:
            if param.shape is None or any(int(s) <= 0 for s in param.shape):
                raise TraceError(f"parameter {param.name!r} has no known shape yet")
            arr = _meta_array(param.shape, param.dtype, param.grad_req != "null")
            self.params.append((self._slot(arr._data), param))
            self.param_arrays[id(param)] = arr
        return arr

    # what the meta device reports -------------------------------------------------------------
    def log_op(self, op, datas: Sequence[Any], attrs: Dict[str, Any], outs) -> None:
        ins = []
        for d in datas:
            slot = self.slot_of.get(id(d))
            if slot is None:
                raise TraceError(f"operator {op.name!r} reads an array the trace did not "
                                 "make (an array from outside the forward, or a view made "
                                 "without an operator)")
            ins.append(slot)
        out_list = outs if isinstance(outs, tuple) else (outs,)
        out_slots = tuple(self._slot(o) for o in out_list)
        dtype = out_list[0].dtype if not datas and out_list else None
        self.steps.append((op, tuple(ins), dict(attrs), out_slots, dtype))
        self.names.append("/".join(self.scopes) + ":" + op.name)

    def log_constant(self, host: np.ndarray, out) -> None:
        self.constants.append((self._slot(out), np.array(host, copy=True)))


class _Scope:
    __slots__ = ("trace", "name")

    def __init__(self, trace: Trace, name: str):
        self.trace, self.name = trace, name

    def __enter__(self):
        self.trace.scopes.append(self.name)

    def __exit__(self, *exc):
        self.trace.scopes.pop()
        return False


def _meta_array(shape, dtype, tracked: bool = False):
    import hal
    from mxcore import autograd, dispatch
    arr = dispatch.wrap(np.broadcast_to(np.zeros((), hal.to_dtype(dtype)), tuple(shape)),
                        hal.Device("meta", 0))
    if tracked:  # looks like a variable to wrappers; its tape is never differentiated
        arr._ag = autograd.Leaf(None, "write")
    return arr


def trace_backward(trace: Trace, arrays, out_leaves) -> Dict[str, Any]:
    """While recording: autograd's backward on the meta arrays (``arrays``: the traced
    inputs, in order; ``out_leaves``: the traced outputs), logged as the plan's
    backward program (head gradients in, one gradient per tracked input and
    parameter out).  Nothing to do when nothing is differentiated."""
    from mxcore import autograd
    if not autograd.STATE.recording:
        return {}
    variables = [("input", k) for k, m in enumerate(arrays) if m._ag is not None]
    var_arrays = [arrays[k] for _, k in variables]
    for slot, p in trace.params:
        arr = trace.param_arrays[id(p)]
        if arr._ag is not None:
            variables.append(("param", p))
            var_arrays.append(arr)
    heads = [o for o in out_leaves if o is not None]
    tracked = [o._ag is not None for o in heads]
    if not var_arrays or not any(tracked):
        return {}
    backward_from, backward_slot = len(trace.steps), trace.nslots
    head_slots, head_grads = [], []
    for o, t in zip(heads, tracked):
        if not t:
            head_slots.append(None)
            continue
        g = _meta_array(o.shape, o.dtype)
        head_slots.append(trace._slot(g._data))
        head_grads.append((o, g))
    grads = autograd.grad([o for o, _ in head_grads], var_arrays,
                          [g for _, g in head_grads], retain_graph=False)
    grad_slots = []
    for g in grads:
        slot = trace.slot_of.get(id(g._data))
        if slot is None:
            raise TraceError(f"hybridize: {trace.block_name!r}: a gradient was not "
                             "computed by operators")
        grad_slots.append(slot)
    return {"backward_from": backward_from, "backward_slot": backward_slot,
            "head_slots": head_slots, "grad_slots": grad_slots, "variables": variables}


# nesting of arguments and results ------------------------------------------------------------
def flatten(obj) -> Tuple[List[Any], Any]:
    """Leaves of nested lists/tuples, and the structure to rebuild them."""
    if type(obj) is tuple and not any(isinstance(x, (list, tuple)) for x in obj):
        return list(obj), (tuple, (None,) * len(obj))  # the usual call: flat arguments
    if isinstance(obj, (list, tuple)):
        leaves, parts = [], []
        for item in obj:
            sub, structure = flatten(item)
            leaves.extend(sub)
            parts.append(structure)
        return leaves, (type(obj), tuple(parts))
    return [obj], None


def unflatten(leaves: List[Any], structure):
    if structure is None:  # one array (the usual block output)
        return leaves[0]
    it = iter(leaves)

    def build(s):
        if s is None:
            return next(it)
        kind, parts = s
        return kind(build(p) for p in parts)
    return build(structure)
