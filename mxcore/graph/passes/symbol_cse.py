"""Common subexpression elimination on Symbol graphs (``graph/ir.py`` nodes).

What ``Executor.get_optimized_symbol`` returns (MXNet's ``MXNET_ELIMINATE_COMMON_EXPR``,
on unless set to 0): nodes with the same op, attributes and inputs become one; random
ops and dropout never merge.  Two outputs that would become the same node output are
kept apart by a ``_copy`` of the later one, as MXNet does."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from mxcore.graph.ir import Node, Output, topological

#: op-name fragments of ops whose results differ per call: never merged
_IMPURE = ("dropout", "random", "sample", "shuffle")


def _pure(node: Node) -> bool:
    name = node.op.lower()
    return not any(frag in name for frag in _IMPURE)


def eliminate_common_subexpressions(heads: Sequence[Output]) -> List[Output]:
    """The heads of an equivalent graph with duplicate computations merged."""
    new: Dict[int, Node] = {}
    seen: Dict[Tuple, Node] = {}
    for node in topological(heads):
        if node.is_variable:
            new[id(node)] = node
            continue
        inputs = tuple((new[id(src)], i) for src, i in node.inputs)
        key = None
        if _pure(node):
            key = (node.op, tuple((id(n), i) for n, i in inputs),
                   tuple(sorted((k, repr(v)) for k, v in node.attrs.items()
                                if not k.startswith("__"))))
            if key in seen:
                new[id(node)] = seen[key]
                continue
        made = Node(node.op, node.name, node.attrs, inputs, node.nout)
        if key is not None:
            seen[key] = made
        new[id(node)] = made
    out, used = [], set()
    for node, i in heads:
        head = (new[id(node)], i)
        ref = (id(head[0]), i)
        if ref in used:  # a second output of one value: isolate it
            head = (Node("_copy", f"{head[0].name}_copy{len(out)}", {}, [head]), 0)
        used.add(ref)
        out.append(head)
    return out
