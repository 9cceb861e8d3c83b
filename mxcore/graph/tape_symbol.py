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
            made[id(tape_node)] = from_core.convert(
                builder, tape_node.op.name, tape_node.attrs, srcs,
                [tuple(arr.shape) for arr in tape_node.inputs], tape_node.nout)
        except from_core.NoMXNetEquivalentError as exc:
            raise from_core.NoMXNetEquivalentError(f"get_symbol: {exc}") from None
    node, index = ag
    return Symbol([made[id(node)][index]])
