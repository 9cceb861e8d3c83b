"""The graph IR: nodes, their topological order, and MXNet 1.x's ``-symbol.json`` form.

A :class:`Node` is a variable (``op is None``) or an operator call: the op's MXNet name
(the name of its function in ``mx.nd``: ``FullyConnected``, ``broadcast_add``, or one of
MXNet's internal names such as ``_plus_scalar``), its attributes as Python values, and
its inputs, each an output ``(node, index)`` of another node.  Graphs are immutable
once built: passes make new nodes.

The JSON form is MXNet 1.x's (``nodes`` / ``arg_nodes`` / ``node_row_ptr`` / ``heads``,
attributes as strings), so files move both ways between MXNet 1.9.1 and mxcore.
"""
from __future__ import annotations

import ast
import json
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from mxcore.base import MXCoreError

#: version of the JSON mxcore writes (MXNet's ``mxnet_version`` attribute, 1.9.1)
MXNET_VERSION = 10901


class GraphFormatError(MXCoreError):
    """A symbol file or JSON string that is not a valid graph."""


class Node:
    """One node of a graph: a variable or an operator call."""

    __slots__ = ("op", "name", "attrs", "inputs", "nout", "__weakref__")

    def __init__(self, op: Optional[str], name: str, attrs: Optional[Dict[str, Any]] = None,
                 inputs: Sequence[Tuple["Node", int]] = (), nout: int = 1):
        self.op = op
        self.name = name
        self.attrs: Dict[str, Any] = dict(attrs or {})
        self.inputs: Tuple[Tuple[Node, int], ...] = tuple(inputs)
        self.nout = nout

    @property
    def is_variable(self) -> bool:
        return self.op is None

    def call_attrs(self) -> Dict[str, Any]:
        """The attributes the op function takes (hidden ``__x__`` ones removed)."""
        return {k: v for k, v in self.attrs.items()
                if not (k.startswith("__") and k.endswith("__"))}

    def __repr__(self) -> str:
        return f"<Node {self.op or 'var'} {self.name}>"


Output = Tuple[Node, int]


def topological(heads: Iterable[Output]) -> List[Node]:
    """Nodes reachable from ``heads``, inputs before users, in MXNet's order
    (depth-first, inputs left to right): the order of ``list_arguments``."""
    order: List[Node] = []
    seen = set()
    for head, _ in heads:
        if id(head) in seen:
            continue
        stack = [(head, 0)]
        seen.add(id(head))
        while stack:  # iterative post-order: deep graphs must not hit the recursion limit
            node, i = stack.pop()
            if i < len(node.inputs):
                stack.append((node, i + 1))
                child = node.inputs[i][0]
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append((child, 0))
            else:
                order.append(node)
    return order


# attribute strings ----------------------------------------------------------------------
#: AMP's cast nodes: output i of the node is its input i in another dtype
AMP_CASTS = frozenset({"amp_cast", "amp_multicast"})


def remove_amp_cast(heads: Sequence[Output]) -> List[Output]:
    """The graph of ``heads`` without AMP's cast nodes (``amp_cast``, ``amp_multicast``):
    each of their users reads the cast's input instead, as MXNet's ``save``/``tojson``
    (``remove_amp_cast=True``) and ``export`` write graphs. Nodes whose inputs do not
    change are kept; the others are copied with the new inputs."""
    new: Dict[int, Node] = {}

    def through(out: Output) -> Output:
        node, i = out
        while node.op in AMP_CASTS:
            node, i = node.inputs[i if node.op == "amp_multicast" else 0]
        return new.get(id(node), node), i

    for node in topological(heads):
        if node.is_variable or node.op in AMP_CASTS:
            continue
        inputs = tuple(through(x) for x in node.inputs)
        if inputs != node.inputs:
            new[id(node)] = Node(node.op, node.name, node.attrs, inputs, node.nout)
    return [through(h) for h in heads]


def attr_to_str(value: Any) -> str:
    """An attribute as MXNet writes it: ``(3, 3)``, ``True``, ``relu``, ``0.5``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        value = tuple(value)
    if hasattr(value, "name") and hasattr(value, "itemsize"):  # a numpy dtype
        return value.name
    if isinstance(value, type):  # np.float32 given as a dtype
        import numpy as np
        return np.dtype(value).name
    return str(value)


def attr_from_str(text: Any) -> Any:
    """Parse an attribute MXNet wrote as a string: numbers, tuples, booleans and None
    become Python values; anything else (``relu``, ``NCHW``, ``float32``) stays text."""
    if not isinstance(text, str):
        return text
    s = text.strip()
    if s in ("true", "false"):
        return s == "true"
    try:
        value = ast.literal_eval(s)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, (int, float, bool, tuple, type(None))):
        return value
    return text


# JSON --------------------------------------------------------------------------------------
def to_json(heads: Sequence[Output], indent: Optional[int] = 2) -> str:
    """MXNet 1.x's symbol JSON for the graph ending in ``heads``."""
    order = topological(heads)
    index = {id(n): i for i, n in enumerate(order)}
    nodes, row_ptr = [], [0]
    for node in order:
        entry: Dict[str, Any] = {"op": node.op or "null", "name": node.name}
        if node.attrs:
            entry["attrs"] = {k: attr_to_str(v) for k, v in node.attrs.items()}
        entry["inputs"] = [[index[id(src)], i, 0] for src, i in node.inputs]
        nodes.append(entry)
        row_ptr.append(row_ptr[-1] + node.nout)
    doc = {
        "nodes": nodes,
        "arg_nodes": [i for i, n in enumerate(order) if n.is_variable],
        "node_row_ptr": row_ptr,
        "heads": [[index[id(n)], i, 0] for n, i in heads],
        "attrs": {"mxnet_version": ["int", MXNET_VERSION]},
    }
    return json.dumps(doc, indent=indent)


def from_json(text: str, source: str = "<json>", nout_of=None) -> List[Output]:
    """The heads of the graph in an MXNet 1.x (or mxcore) symbol JSON.  ``nout_of(op,
    attrs)`` gives an op's output count where ``node_row_ptr`` is absent."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
        raise GraphFormatError(f"{source}: not a symbol file: invalid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list) \
            or not isinstance(doc.get("heads"), list):
        raise GraphFormatError(f"{source}: not a symbol file: a JSON object with 'nodes' and "
                               "'heads' lists is expected")
    raw = doc["nodes"]
    row_ptr = doc.get("node_row_ptr")
    nodes: List[Node] = []

    def bad(i, what):
        return GraphFormatError(f"{source}: node {i}: {what}")

    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or "op" not in entry or "name" not in entry:
            raise bad(i, "each node needs 'op' and 'name'")
        op = entry["op"]
        attrs = entry.get("attrs", entry.get("attr", entry.get("param", {}))) or {}
        if not isinstance(attrs, dict):
            raise bad(i, "'attrs' must be an object")
        attrs = {k: attr_from_str(v) for k, v in attrs.items()}
        inputs = []
        for ref in entry.get("inputs", []):
            if not isinstance(ref, list) or len(ref) < 1 or not isinstance(ref[0], int):
                raise bad(i, f"malformed input reference {ref!r}")
            src = ref[0]
            if not 0 <= src < i:
                raise bad(i, f"input {ref!r} refers to node {src}, which does not come "
                             "before it (nodes must be in topological order)")
            out = ref[1] if len(ref) > 1 else 0
            if out >= nodes[src].nout:
                raise bad(i, f"input {ref!r}: node {src} ({nodes[src].name}) has "
                             f"{nodes[src].nout} output(s)")
            inputs.append((nodes[src], out))
        if op == "null":
            if inputs:
                raise bad(i, "a variable cannot have inputs")
            nodes.append(Node(None, str(entry["name"]), attrs))
            continue
        if isinstance(row_ptr, list) and len(row_ptr) == len(raw) + 1:
            nout = row_ptr[i + 1] - row_ptr[i]
        else:
            nout = nout_of(op, attrs) if nout_of is not None else 1
        nodes.append(Node(str(op), str(entry["name"]), attrs, inputs, max(int(nout), 1)))
    heads = []
    for ref in doc["heads"]:
        if not isinstance(ref, list) or not ref or not isinstance(ref[0], int) \
                or not 0 <= ref[0] < len(nodes):
            raise GraphFormatError(f"{source}: malformed head {ref!r}")
        out = ref[1] if len(ref) > 1 else 0
        if out >= nodes[ref[0]].nout:
            raise GraphFormatError(f"{source}: head {ref!r}: node {nodes[ref[0]].name} has "
                                   f"{nodes[ref[0]].nout} output(s)")
        heads.append((nodes[ref[0]], out))
    if not heads:
        raise GraphFormatError(f"{source}: the graph has no outputs ('heads' is empty)")
    return heads
