"""Op hooks of hybridized blocks (MXNet's ``HybridBlock.register_op_hook``).

A hooked call runs the block's graph -- the Symbol its forward builds on variables
``data`` (or ``data0``, ``data1``...), nodes named as MXNet names them
(``dense0_fwd``) -- node by node through :class:`mxcore.graph.cached_op.Program`,
and reports arrays to ``callback(name, op_name, array)`` as MXNet 1.9.1 does: after
each op node, its inputs first when ``monitor_all`` (``<node>_<input name>``), then
each output that is used (``<node>_<output name>``).  Input and output names follow
MXNet's operators (``data``/``weight``/``bias``, ``lhs``/``rhs``, ``arg0``...;
``output`` for the ops that name their outputs, else the index); names and the op
name are passed as bytes, as MXNet's C callback gives them (``py_str`` reads them).
The arrays are NDArrays.  The name tables are ``mxcore.graph.op_names``.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Dict, List, Sequence, Tuple

from mxcore.graph.cached_op import Program
from mxcore.graph.ir import Node
# MXNet's op input and output names, shared with the executor's monitor
from mxcore.graph.op_names import input_names, op_name, output_names

Callback = Callable[[bytes, bytes, Any], None]


# running ----------------------------------------------------------------------------------
def _flatten(obj, out: List[Any]):
    """Leaves of nested lists/tuples, and a structure to rebuild them."""
    if isinstance(obj, (list, tuple)):
        return type(obj), [_flatten(o, out) for o in obj]
    out.append(obj)
    return None


def _unflatten(structure, leaves):
    if structure is None:
        return next(leaves)
    kind, parts = structure
    return kind(_unflatten(p, leaves) for p in parts)


class _Graph:
    """A block's graph for one input nesting: the program and which outputs are read."""

    def __init__(self, block, structure, n: int, present: Sequence[bool]):
        from mxcore import symbol as sym
        names = ["data"] if n == 1 else [f"data{i}" for i in range(n)]
        leaves = iter([sym.var(nm) if p else None for nm, p in zip(names, present)])
        out = block(*_unflatten(structure, leaves))
        out_leaves: List[Any] = []
        self.out_structure = _flatten(out, out_leaves)
        group = out_leaves[0] if len(out_leaves) == 1 else sym.Group(out_leaves)
        self.symbol = group
        self.program = Program(group)
        self.data_names = [nm for nm, p in zip(names, present) if p]
        self.used = {(id(src), i) for _, step in self.program.steps
                     for src, i in step.node.inputs}
        self.used.update((id(n), i) for n, i in group._outputs)


_GRAPHS: "weakref.WeakKeyDictionary[Any, Dict[Any, _Graph]]" = weakref.WeakKeyDictionary()


def _graph(block, structure, n: int, present: Tuple[bool, ...]) -> _Graph:
    per_block = _GRAPHS.setdefault(block, {})
    key = (repr(structure), present)
    graph = per_block.get(key)
    if graph is None:
        graph = per_block[key] = _Graph(block, structure, n, present)
    return graph


def _finish_deferred(block, graph: _Graph, arrays: Dict[str, Any]) -> None:
    """Give deferred parameters their shapes from the graph's shape inference."""
    params = {p.name: p for p in block.collect_params().values() if p._data is None}
    if not params:
        return
    shapes = {name: tuple(a.shape) for name, a in arrays.items()}
    arg_shapes, _, aux_shapes = graph.symbol.infer_shape_partial(**shapes)
    names = graph.symbol.list_arguments() + graph.symbol.list_auxiliary_states()
    for name, shape in zip(names, arg_shapes + aux_shapes):
        p = params.get(name)
        if p is not None and shape:
            p.shape = shape
            p._finish_deferred_init()


def run_with_hook(block, args: Sequence[Any], callback: Callback,
                  monitor_all: bool = False):
    """Run HybridBlock ``block`` on ``args`` (its call's positional arguments) node by
    node, reporting arrays to ``callback``; returns what the block's call returns."""
    leaves: List[Any] = []
    structure = _flatten(tuple(args), leaves)
    present = tuple(x is not None for x in leaves)
    graph = _graph(block, structure, len(leaves), present)
    data = dict(zip(graph.data_names, [x for x in leaves if x is not None]))
    ctx = next(iter(data.values())).context
    _finish_deferred(block, graph, data)
    params = {p.name: p for p in block.collect_params().values()}
    feed = [data[name] if name in data else params[name].data(ctx)
            for name in graph.program.input_names]
    used = graph.used

    def hook(node: Node, ins: List[Any], outs: List[Any]) -> None:
        op = op_name(node).encode()
        if monitor_all:
            for name, arr in zip(input_names(node), ins):
                callback(f"{node.name}_{name}".encode(), op, arr)
        for i, (name, arr) in enumerate(zip(output_names(node), outs)):
            if (id(node), i) in used:
                callback(f"{node.name}_{name}".encode(), op, arr)

    outputs = graph.program.run(feed, ctx, hook)
    return _unflatten(graph.out_structure, iter(outputs))
