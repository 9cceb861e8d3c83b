"""Shape and dtype inference over a graph, through the ops' own rules.

Each node's function runs on meta arrays (``mxcore.dispatch.META``: a shape and a
dtype, no memory), so the same wrappers and shape/dtype rules that check eager calls
decide the graph's shapes: no second set of inference rules.  Parameters whose shapes
follow from the data (a FullyConnected weight from ``num_hidden`` and the data's width)
come from the op-info table.  Shapes may be partial: a node whose inputs are not all
known leaves its outputs unknown (``None``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mxcore.base import MXCoreError
from mxcore.graph import functions, opinfo
from mxcore.graph.ir import Node, Output, topological

Shape = Tuple[int, ...]


#: the dtype codes MXNet writes as a variable's ``__dtype__`` (mshadow's type flags)
_MXNET_DTYPES = {0: "float32", 1: "float64", 2: "float16", 3: "uint8", 4: "int32", 5: "int8",
                 6: "int64", 7: "bool", 12: "bfloat16"}


class InferenceError(MXCoreError):
    """Shapes or dtypes that do not fit a node's op."""


def _meta(shape, dtype):
    import hal
    from mxcore import dispatch
    return dispatch.wrap(np.broadcast_to(np.zeros((), hal.to_dtype(dtype)), tuple(shape)),
                         hal.Device("meta", 0))


def var_shape(node: Node) -> Optional[Shape]:
    """A variable's declared shape (``__shape__``); None when absent or partial."""
    s = node.attrs.get("__shape__")
    if s is None:
        return None
    s = tuple(int(d) for d in s) if isinstance(s, (tuple, list)) else None
    # 0 is an unknown dimension (MXNet's partial shapes): kept, so that the known
    # dimensions still decide parameter shapes
    return s if s and all(d >= 0 for d in s) and any(d > 0 for d in s) else None


def is_partial(shape: Optional[Shape]) -> bool:
    """Whether a known shape still has unknown (0) dimensions."""
    return shape is not None and 0 in shape


def infer(heads: Sequence[Output], shapes: Dict[str, Shape], dtypes: Dict[str, Any],
          training: bool = False):
    """Output shapes/dtypes of every node reachable from ``heads``.

    Returns ``(out_shape, out_dtype)``: dicts from ``(id(node), index)`` to a shape
    (None: unknown) and a dtype name; variables are keyed the same way (index 0).

    As in MXNet, inference runs both ways until nothing changes: forward through the
    ops' rules, then backward through the ops whose inputs follow from their output
    (``BACKWARD``: elementwise ops of one shape, transpose, shape-keeping ops), which
    fills unknown variables and the unknown (-1 or 0) dimensions of ``ones``/``zeros``
    nodes from what the graph does with them."""
    from mxcore import autograd
    order = topological(heads)
    out_shape: Dict[Tuple[int, int], Optional[Shape]] = {}
    out_dtype: Dict[Tuple[int, int], Optional[str]] = {}
    for node in order:
        if node.is_variable:
            s = shapes.get(node.name)
            # () is "unknown", as in MXNet's shape inference (not a 0-d array)
            out_shape[(id(node), 0)] = tuple(s) if s else var_shape(node)
            dt = dtypes.get(node.name, _MXNET_DTYPES.get(node.attrs.get("__dtype__"),
                                                        node.attrs.get("__dtype__")))
            out_dtype[(id(node), 0)] = _dtype_name(dt) if dt is not None else None
    with autograd.pause(train_mode=training):
        # a complete graph needs one forward pass; each further pass must fill something
        for _ in range(len(order) + 1):
            before = dict(out_shape)
            _forward(order, out_shape, out_dtype)
            if all(v is not None and not is_partial(v) for v in out_shape.values()):
                break
            _backward(order, out_shape)
            if out_shape == before:
                break
    return out_shape, out_dtype


def _forward(order: List[Node], out_shape, out_dtype) -> None:
    for node in order:
        if node.is_variable:
            continue
        _fill_params(node, out_shape, out_dtype)
        if node.op in opinfo.SAME_SHAPE:
            _fill_same_shape(node, out_shape)
        in_shapes = [out_shape.get((id(src), i)) for src, i in node.inputs]
        in_dtypes = [out_dtype.get((id(src), i)) for src, i in node.inputs]
        first = next((d for d in in_dtypes if d is not None), None)
        fixed = _input_dtypes(node)
        for k, (src, i) in enumerate(node.inputs):  # untyped variables follow the data
            if in_dtypes[k] is None and src.is_variable and (fixed.get(k) or first):
                in_dtypes[k] = out_dtype[(id(src), i)] = fixed.get(k) or first
        partial = partial_shape_attr(node) if not node.inputs else None
        if partial is not None:
            # ones(shape=(2, -1)): known once the graph's other shapes decide it
            _set(node, 0, partial, out_shape)
            out_dtype[(id(node), 0)] = _dtype_name(node.attrs.get("dtype") or "float32")
            continue
        if node.op in opinfo.SAME_SHAPE:
            # inputs of one shape (no broadcasting) decide the output whatever the
            # unknown ones are
            merged = _merge_all(node, in_shapes)
            if any(s is None or is_partial(s) for s in in_shapes):
                for i in range(node.nout):
                    _set(node, i, merged, out_shape)
                    out_dtype[(id(node), i)] = first
                continue
        if any(s is None for s in in_shapes):
            dt = _dtype_name(node.attrs["dtype"]) if node.op in opinfo.DTYPE_ATTR and \
                node.attrs.get("dtype") is not None else first
            rule = opinfo.DTYPE_RULES.get(node.op)
            dts = (rule(node.attrs, in_dtypes) if rule is not None else None) \
                or [dt] * node.nout
            for i in range(node.nout):
                _set(node, i, None, out_shape)
                out_dtype[(id(node), i)] = dts[i]
            continue
        for k, (src, i) in enumerate(node.inputs):  # shapes known, dtypes not: float32
            if in_dtypes[k] is None:
                in_dtypes[k] = "float32"
                if src.is_variable:
                    out_dtype[(id(src), i)] = "float32"
        if any(is_partial(s) for s in in_shapes):
            try:  # unknown dimensions run as 0: what the op keeps of them stays 0
                outs = _run_meta(node, in_shapes, in_dtypes)
            except InferenceError:
                outs = []
            if len(outs) < node.nout:
                for i in range(node.nout):
                    _set(node, i, None, out_shape)
                    out_dtype[(id(node), i)] = first
                continue
        else:
            outs = _run_meta(node, in_shapes, in_dtypes)
        for i, o in enumerate(outs[:node.nout]):
            _set(node, i, tuple(o.shape), out_shape)
            out_dtype[(id(node), i)] = o.dtype.name


def _set(node: Node, i: int, shape: Optional[Shape], out_shape) -> None:
    """Record a forward result, keeping what a backward pass already knew of it."""
    key = (id(node), i)
    if shape is None or is_partial(shape):
        shape = merge(shape, out_shape.get(key)) if out_shape.get(key) is not None else shape
    out_shape[key] = shape


def merge(a: Optional[Shape], b: Optional[Shape]) -> Optional[Shape]:
    """Two partial descriptions of one shape combined (0: unknown dimension); raises
    InferenceError when they disagree."""
    if a is None or b is None:
        return a if b is None else b
    if len(a) != len(b) or any(x and y and x != y for x, y in zip(a, b)):
        raise InferenceError(f"shapes {a} and {b} cannot describe one array")
    return tuple(x or y for x, y in zip(a, b))


def _merge_all(node: Node, shapes) -> Optional[Shape]:
    out = None
    for s in shapes:
        try:
            out = merge(out, s)
        except InferenceError:
            raise InferenceError(f"node {node.name!r} ({node.op}) needs inputs of one shape, "
                                 f"got {[tuple(x) if x else None for x in shapes]}") from None
    return out


def partial_shape_attr(node: Node) -> Optional[Shape]:
    """The ``shape`` attribute of an array-making node when it has unknown (-1 or 0)
    dimensions, with them as 0; None otherwise."""
    import ast
    s = node.attrs.get("shape")
    if isinstance(s, str):
        try:
            s = ast.literal_eval(s)
        except (ValueError, SyntaxError):
            return None
    if isinstance(s, int) or not isinstance(s, (tuple, list)) or not s:
        return None
    if all(isinstance(d, int) and d > 0 for d in s):
        return None
    return tuple(max(int(d), 0) for d in s)


def _transpose_back(node: Node, out: Shape, ins) -> List[Optional[Shape]]:
    axes = node.call_attrs().get("axes")
    if isinstance(axes, str):
        import ast
        axes = ast.literal_eval(axes)
    axes = tuple(axes) if axes else tuple(reversed(range(len(out))))
    if len(axes) != len(out):
        return [None]
    shape = [0] * len(out)
    for k, a in enumerate(axes):
        shape[a] = out[k]
    return [tuple(shape)]


def _reshape_back(node: Node, out: Shape, ins) -> List[Optional[Shape]]:
    """A reshape's input with one unknown dimension: the size the output implies."""
    data = ins[0]
    if data is None or data.count(0) != 1:
        return [None]
    known = int(np.prod([d for d in data if d]))
    total = int(np.prod(out))
    if known == 0 or total % known:
        return [None]
    return [tuple(total // known if d == 0 else d for d in data)]


#: op -> (node, its output shape, its inputs' shapes) -> its inputs' shapes (None: not
#: decided by the output)
def _same(node: Node, out: Shape, ins) -> List[Optional[Shape]]:
    """Every input has the output's shape (same-shape and shape-keeping ops)."""
    return [out] * len(node.inputs)


#: ops whose output has their one input's shape: a parameter reached through them
#: (``Convolution(weight=cast(w))``) still takes its shape from the op-info table
_SHAPE_KEEPING = opinfo.DTYPE_ATTR | {"_copy", "identity", "copy", "BlockGrad",
                                      "stop_gradient"}

BACKWARD = {"transpose": _transpose_back, "Reshape": _reshape_back, "reshape": _reshape_back,
            **{op: _same for op in opinfo.SAME_SHAPE | _SHAPE_KEEPING | {
                "relu", "sigmoid", "tanh", "exp", "log", "sqrt", "square", "abs",
                "negative", "Activation"}}}


def _backward(order: List[Node], out_shape) -> None:
    """Inputs' shapes from outputs', for the ops in ``BACKWARD``, users before inputs."""
    for node in reversed(order):
        rule = BACKWARD.get(node.op) if not node.is_variable else None
        out = out_shape.get((id(node), 0))
        if rule is None or out is None or is_partial(out):
            continue
        ins = [out_shape.get((id(src), i)) for src, i in node.inputs]
        for (src, i), shape in zip(node.inputs, rule(node, out, ins)):
            key = (id(src), i)
            have = out_shape.get(key)
            if shape is not None and (have is None or is_partial(have)):
                if src.is_variable or not src.inputs or src.op in BACKWARD:
                    out_shape[key] = merge(have, shape)


def _run_meta(node: Node, in_shapes, in_dtypes) -> List[Any]:
    inputs = [_meta(s, d) for s, d in zip(in_shapes, in_dtypes)]
    try:
        return functions.run(node.op, inputs, node.call_attrs(), _meta_device())
    except functions.UnknownGraphOpError as exc:
        raise InferenceError(f"node {node.name!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the op's own words, with the node named
        shown = ", ".join(f"{tuple(s)} {d}" for s, d in zip(in_shapes, in_dtypes))
        raise InferenceError(f"node {node.name!r} ({node.op}) cannot take inputs "
                             f"[{shown}]: {exc}") from None


def _meta_device():
    import hal
    return hal.Device("meta", 0)


def _input_dtypes(node: Node) -> Dict[int, str]:
    """{input index: dtype} for the inputs whose untyped variables take a fixed dtype
    (a quantized op's float32 ranges)."""
    row = opinfo.info(node.op, node.attrs)
    if row is None or not row.input_dtypes:
        return {}
    names = opinfo.present_inputs(row, node.attrs)
    return {k: row.input_dtypes[n] for k, n in enumerate(names) if n in row.input_dtypes}


def _fill_params(node: Node, out_shape, out_dtype) -> None:
    """Set the shapes of parameter variables the op-info table derives from the data."""
    row = opinfo.info(node.op, node.attrs)
    if row is None or row.params is None or not node.inputs:
        return
    data = out_shape.get((id(node.inputs[0][0]), node.inputs[0][1]))
    if data is None:
        return
    names = opinfo.present_inputs(row, node.attrs)
    missing = [(name, chain) for name, (src, i) in zip(names, node.inputs)
               for chain in [_unknown_chain(src, i, out_shape)] if chain]
    if not missing:
        return
    try:
        derived = row.params(node.attrs, tuple(data))
    except (KeyError, IndexError, ValueError, TypeError):
        return  # the op call itself reports bad attributes, with the node named
    for name, chain in missing:
        if name in derived:
            for entry in chain:
                out_shape[entry] = tuple(int(s) for s in derived[name])




def _unknown_chain(src: Node, i: int, out_shape) -> Optional[List[Tuple[int, int]]]:
    """The unknown entries from an input back to a variable along shape-keeping ops,
    or None when the input is known or does not lead to a variable so."""
    chain = []
    while out_shape.get((id(src), i)) is None or is_partial(out_shape[(id(src), i)]):
        chain.append((id(src), i))
        if src.is_variable:
            return chain
        if src.op not in _SHAPE_KEEPING or len(src.inputs) != 1:
            return None
        src, i = src.inputs[0]
    return None


def _fill_same_shape(node: Node, out_shape) -> None:
    """Inputs of an op whose inputs share one shape (elemwise_add...) take the shape of
    any known one, as MXNet's inference does in both directions."""
    known = next((out_shape.get((id(src), i)) for src, i in node.inputs
                  if out_shape.get((id(src), i)) is not None), None)
    if known is None:
        return
    for src, i in node.inputs:
        if src.is_variable and out_shape.get((id(src), i)) is None:
            out_shape[(id(src), i)] = known


def _dtype_name(dt) -> str:
    import hal
    return hal.dtype_name(dt)
