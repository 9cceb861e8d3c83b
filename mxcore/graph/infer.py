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

    Returns ``(out_shapes, out_dtypes)``: dicts from ``(id(node), index)`` to a shape
    (None: unknown) and a dtype name; variables are keyed the same way (index 0)."""
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
        for node in order:
            if node.is_variable:
                continue
            _fill_params(node, out_shape, out_dtype)
            if node.op in opinfo.SAME_SHAPE:
                _fill_same_shape(node, out_shape)
            in_shapes = [out_shape.get((id(src), i)) for src, i in node.inputs]
            in_dtypes = [out_dtype.get((id(src), i)) for src, i in node.inputs]
            first = next((d for d in in_dtypes if d is not None), None)
            for k, (src, i) in enumerate(node.inputs):  # untyped variables follow the data
                if in_dtypes[k] is None and src.is_variable and first is not None:
                    in_dtypes[k] = out_dtype[(id(src), i)] = first
            if any(s is None for s in in_shapes):
                dt = _dtype_name(node.attrs["dtype"]) if node.op in opinfo.DTYPE_ATTR and \
                    node.attrs.get("dtype") is not None else first
                # inputs of one shape decide the output whatever the unknown ones are
                same = next((s for s in in_shapes if s is not None and not is_partial(s)),
                            None) if node.op in opinfo.SAME_SHAPE else None
                for i in range(node.nout):
                    out_shape[(id(node), i)] = same
                    out_dtype[(id(node), i)] = dt
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
                        out_shape[(id(node), i)] = None
                        out_dtype[(id(node), i)] = first
                    continue
            else:
                outs = _run_meta(node, in_shapes, in_dtypes)
            for i, o in enumerate(outs[:node.nout]):
                out_shape[(id(node), i)] = tuple(o.shape)
                out_dtype[(id(node), i)] = o.dtype.name
    return out_shape, out_dtype


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


#: ops whose output has their one input's shape: a parameter reached through them
#: (``Convolution(weight=cast(w))``) still takes its shape from the op-info table
_SHAPE_KEEPING = opinfo.DTYPE_ATTR | {"_copy", "identity", "copy", "BlockGrad",
                                      "stop_gradient"}


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
