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
The arrays are NDArrays.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Dict, List, Sequence, Tuple

from mxcore.graph.cached_op import Program
from mxcore.graph.ir import Node

Callback = Callable[[bytes, bytes, Any], None]

_DATA_GB = ("data", "gamma", "beta")
_DATA_LABEL = ("data", "label")
_SEQ = ("data", "sequence_length")
_LHS_RHS = ("lhs", "rhs")

#: MXNet's input names per op (FListInputNames); ops without one name inputs input<i>
INPUT_NAMES: Dict[str, Tuple[str, ...]] = {
    "FullyConnected": ("data", "weight", "bias"), "Convolution": ("data", "weight", "bias"),
    "Deconvolution": ("data", "weight", "bias"),
    "BatchNorm": ("data", "gamma", "beta", "moving_mean", "moving_var"),
    "LayerNorm": _DATA_GB, "InstanceNorm": _DATA_GB, "GroupNorm": _DATA_GB,
    "Embedding": ("data", "weight"), "LeakyReLU": ("data", "gamma"),
    "RNN": ("data", "parameters", "state", "state_cell", "sequence_length"),
    "SoftmaxOutput": _DATA_LABEL, "LinearRegressionOutput": _DATA_LABEL,
    "LogisticRegressionOutput": _DATA_LABEL, "MAERegressionOutput": _DATA_LABEL,
    "softmax_cross_entropy": _DATA_LABEL,
    "SequenceMask": _SEQ, "SequenceLast": _SEQ, "SequenceReverse": _SEQ,
    "where": ("condition", "x", "y"), "take": ("a", "indices"), "pick": ("data", "index"),
    "gather_nd": ("data", "indices"), "one_hot": ("indices",),
    "_linalg_gemm": ("A", "B", "C"), "_linalg_gemm2": ("A", "B"),
    **{op: ("data",) for op in (
        "softmax", "log_softmax", "SliceChannel", "Dropout", "Pooling", "SwapAxis", "LRN",
        "L2Normalization", "MakeLoss", "squeeze", "reverse", "repeat", "tile", "moments")},
    **{op: _LHS_RHS for op in (
        "elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div", "_plus", "_minus",
        "_mul", "_div", "_Plus", "_Minus", "_Mul", "_Div", "dot", "batch_dot",
        "reshape_like", "broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_div",
        "broadcast_mod", "broadcast_power", "broadcast_maximum", "broadcast_minimum",
        "broadcast_hypot", "broadcast_equal", "broadcast_not_equal", "broadcast_greater",
        "broadcast_greater_equal", "broadcast_lesser", "broadcast_lesser_equal",
        "broadcast_logical_and", "broadcast_logical_or", "broadcast_logical_xor",
        "broadcast_plus", "broadcast_minus")},
}
#: ops whose inputs are a list: MXNet names them arg<i>
LIST_INPUTS = frozenset({"Concat", "stack", "add_n", "ElementWiseSum", "UpSampling"})

_OUT = ("output",)
#: MXNet's output names per op (FListOutputNames); other ops name outputs by index
OUTPUT_NAMES: Dict[str, Tuple[str, ...]] = {
    **{op: _OUT for op in (
        "Activation", "FullyConnected", "Convolution", "Deconvolution", "InstanceNorm",
        "softmax", "Concat", "Pooling", "SwapAxis", "SoftmaxOutput", "SequenceMask",
        "SequenceLast", "SequenceReverse", "UpSampling", "MakeLoss", "SoftmaxActivation",
        "elemwise_add", "_plus", "_Plus")},
    "BatchNorm": ("output", "mean", "var"), "LayerNorm": ("output", "mean", "std"),
    "GroupNorm": ("output", "mean", "std"), "LeakyReLU": ("output", "mask"),
    "Dropout": ("output", "mask"), "LRN": ("output", "tmp_norm"),
    "L2Normalization": ("output", "norm"), "RNN": ("output", "state", "statecell"),
}
#: mxcore's spellings of MXNet ops, reported (and looked up) under MXNet's own name
CANONICAL = {"concat": "Concat", "split": "SliceChannel", "flip": "reverse",
             "swapaxes": "SwapAxis", "cast": "Cast", "reshape": "Reshape",
             "flatten": "Flatten", "pad": "Pad", "crop": "Crop",
             "ElementWiseSum": "add_n", "_plus": "elemwise_add", "_Plus": "elemwise_add",
             "_minus": "elemwise_sub", "_Minus": "elemwise_sub", "_mul": "elemwise_mul",
             "_Mul": "elemwise_mul", "_div": "elemwise_div", "_Div": "elemwise_div"}


def op_name(node: Node) -> str:
    """The name MXNet reports for the node's op."""
    return CANONICAL.get(node.op, node.op)


def input_names(node: Node) -> List[str]:
    op = op_name(node)
    if op in LIST_INPUTS:
        return [f"arg{i}" for i in range(len(node.inputs))]
    names = INPUT_NAMES.get(op)
    if names is not None and op in ("FullyConnected", "Convolution", "Deconvolution") \
            and len(node.inputs) == 2:
        names = names[:2]  # no_bias
    if names is None or len(names) < len(node.inputs):
        return [f"input{i}" for i in range(len(node.inputs))]
    if op == "RNN" and len(node.inputs) < 5 and node.attrs.get("mode") != "lstm":
        names = names[:3] + names[4:]  # no state_cell
    return list(names[:len(node.inputs)])


def output_names(node: Node) -> List[str]:
    op = op_name(node)
    if op == "SliceChannel":
        return [f"output{i}" for i in range(node.nout)]
    names = OUTPUT_NAMES.get(op)
    if names is None or len(names) < node.nout:
        return [str(i) for i in range(node.nout)]
    return list(names[:node.nout])


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
