"""``autograd.get_symbol``: the recorded computation behind an array, as a Symbol.

The autograd tape keeps, for every recorded op, the core op, its attributes and its
input arrays.  Walking it from an array back to the arrays nothing recorded gives a
graph: recorded ops become MXNet nodes (``mxcore.graph.from_core``) named ``node_<k>``,
variables (``attach_grad``) become inputs named ``var<k>`` and other arrays the ops
read (constants) inputs named ``null<k>``, as MXNet names them.  The numbers count
within the one graph (MXNet's count over the whole process).
"""
from __future__ import annotations

from typing import Dict, List

from mxcore.base import MXCoreError
from mxcore.graph import from_core
from mxcore.graph.ir import Node, Output


def _recorded(ag) -> bool:
    """Whether an array's record is a live tape node (a node whose graph backward
    freed is a constant to later recordings, as in MXNet)."""
    return type(ag) is tuple and ag[0].inputs is not None


def _tape_order(head) -> List:
    """The tape nodes ``head`` depends on, inputs before users, depth first with inputs
    left to right (the order MXNet numbers nodes and lists arguments in)."""
    order, seen = [], {id(head._ag[0])}
    stack = [(head._ag[0], 0)]
    while stack:  # iterative post-order: long tapes must not hit the recursion limit
        node, i = stack.pop()
        if i < len(node.inputs):
            stack.append((node, i + 1))
            ag = node.inputs[i]._ag
            if _recorded(ag) and id(ag[0]) not in seen:
                seen.add(id(ag[0]))
                stack.append((ag[0], 0))
        else:
            order.append(node)
    return order


class _Inputs:
    """Graph variables for the arrays the tape starts from, one per variable/constant."""

    def __init__(self):
        self.count = 0
        self.nodes: Dict[int, Node] = {}

    def of(self, array) -> Output:
        ag = array._ag
        leaf = ag is not None and type(ag) is not tuple
        key = id(ag) if leaf else id(array)  # a Leaf is shared by its views
        node = self.nodes.get(key)
        if node is None:
            prefix = "var" if leaf else "null"
            node = self.nodes[key] = Node(None, f"{prefix}{self.count}")
            self.count += 1
        return (node, 0)


def get_symbol(x):
    """The Symbol of the computation recorded (inside ``autograd.record()``) that
    produced NDArray ``x``."""
    from mxcore.symbol.symbol import Symbol
    ag = getattr(x, "_ag", None)
    if ag is None:
        raise MXCoreError("get_symbol: the array was not computed inside "
                          "autograd.record() from arrays with attach_grad(), so no "
                          "computation was recorded for it")
    inputs = _Inputs()
    if type(ag) is not tuple:  # a variable itself
        return Symbol([inputs.of(x)])
    if not _recorded(ag):
        raise MXCoreError("get_symbol: the recorded graph was freed by backward(); call "
                          "get_symbol before backward, or pass retain_graph=True")
    builder = from_core.Builder()
    made: Dict[int, List[Output]] = {}
    for tape_node in _tape_order(x):
        srcs: List[Output] = []
        for arr in tape_node.inputs:
            a = arr._ag
            srcs.append(made[id(a[0])][a[1]] if _recorded(a) else inputs.of(arr))
        try:
            if "plan" in tape_node.attrs:
                made[id(tape_node)] = _hybridized(builder, tape_node, srcs, inputs)
            else:
                made[id(tape_node)] = from_core.convert(
                    builder, tape_node.op.name, tape_node.attrs, srcs,
                    [tuple(arr.shape) for arr in tape_node.inputs], tape_node.nout)
        except from_core.NoMXNetEquivalentError as exc:
            raise from_core.NoMXNetEquivalentError(f"get_symbol: {exc}") from None
    node, index = ag
    return Symbol([made[id(node)][index]])


def _hybridized(builder, tape_node, srcs: List[Output], inputs: _Inputs) -> List[Output]:
    """A hybridized block's call: MXNet's _CachedOp node over the block's inputs and
    parameters, or, when the block would be inlined (at most ``inline_limit`` ops and no
    static_alloc, as MXNet decides), the ops of its traced forward."""
    attrs = tape_node.attrs
    plan = attrs["plan"]
    raw = plan.raw_forward
    tracked = {("input", k) if kind == "input" else ("param", id(k)): src
               for (kind, k), src in zip(plan.variables, srcs)}
    slot: Dict[int, Output] = {}
    for k, (s, arr) in enumerate(zip(raw.inputs, attrs["inputs"])):
        slot[s] = tracked.get(("input", k)) or inputs.of(arr)
    for (s, p), arr in zip(raw.params, attrs["params"]):
        slot[s] = tracked.get(("param", id(p))) or inputs.of(arr)
    live = [s for s in raw.outputs[:plan.n_outputs] if s is not None]
    if not plan.static_alloc and len(raw.steps) <= plan.inline_limit and \
            not raw.constants:
        for st in raw.steps:
            outs = from_core.convert(builder, st.op.name, st.attrs,
                                     [slot[s] for s in st.ins],
                                     [tuple(raw.shapes[s]) for s in st.ins], len(st.outs))
            slot.update(zip(st.outs, outs))
        if all(s in slot for s in live):
            return [slot[s] for s in live]
    sources = [slot[s] for s in raw.inputs] + [slot[s] for s, _ in raw.params]
    return from_core.convert(builder, tape_node.op.name, {}, sources, [], tape_node.nout)
