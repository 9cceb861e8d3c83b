"""``mx.onnx.export_model``: an mxcore/MXNet symbol and its parameters as an ONNX model.

The graph is walked in topological order.  Variables holding parameters become
initializers (named as the variables), the other arguments become the graph's inputs,
in the order of ``in_shapes``.  Each operator node is handed to its rule in
:data:`mxcore.onnx.export_ops.TABLE`, which emits ONNX nodes through an
:class:`Emitter`.  Shapes and dtypes come from mxcore's own shape inference
(``mxcore.graph.infer``) run from ``in_shapes``, so rules that need them (MXNet's
Reshape codes, ``dot`` of N-d arrays) emit static values.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mxcore.graph import infer as _infer
from mxcore.graph.ir import Node, topological
from mxcore.onnx._common import OnnxError, check_opset, require_onnx, tensor_type

log = logging.getLogger(__name__)

#: inputs of these ops (by position) are labels: training-only, never graph inputs
LABEL_INPUTS = {"SoftmaxOutput": 1, "Softmax": 1, "LinearRegressionOutput": 1,
                "LogisticRegressionOutput": 1, "MAERegressionOutput": 1}


class Emitter:
    """The ONNX graph under construction, as the op rules see it."""

    def __init__(self, opset: int, shapes, dtypes):
        self.opset = opset
        self.nodes: List[Any] = []
        self.initializers: List[Any] = []
        self._shapes, self._dtypes = shapes, dtypes
        self._used: set = set()
        self.node: Optional[Node] = None  # the node whose rule is running

    # names ------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        base = f"{self.node.name}_{hint}" if self.node is not None else hint
        name, k = base, 0
        while name in self._used:
            k += 1
            name = f"{base}{k}"
        self._used.add(name)
        return name

    def reserve(self, name: str) -> None:
        self._used.add(name)

    # what inference knows about the current node ---------------------------------------------
    def in_shape(self, i: int) -> Tuple[int, ...]:
        src, k = self.node.inputs[i]
        return self._known(self._shapes.get((id(src), k)), f"input {i}")

    def out_shape(self, i: int = 0) -> Tuple[int, ...]:
        return self._known(self._shapes.get((id(self.node), i)), f"output {i}")

    def in_dtype(self, i: int = 0) -> str:
        src, k = self.node.inputs[i]
        return self._dtypes.get((id(src), k)) or "float32"

    def _known(self, shape, what):
        if shape is None:
            raise OnnxError(f"node {self.node.name!r} ({self.node.op}): the shape of its "
                            f"{what} is unknown; give in_shapes for every input")
        return tuple(shape)

    # emitting -------------------------------------------------------------------------------
    def emit(self, op_type: str, inputs: Sequence[str], out=None, nout: int = 1,
             **attrs) -> Any:
        """Add one ONNX node; returns its output name (a list when ``nout`` > 1 or
        ``out`` is a list).  ``out`` names the outputs (else fresh names)."""
        from onnx import helper
        many = isinstance(out, list) or nout > 1
        if out is None:
            outs = [self.fresh(op_type.lower()) for _ in range(nout)]
        else:
            outs = list(out) if isinstance(out, list) else [out]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), outs,
                                           name=self.fresh(op_type), **attrs))
        return outs if many else outs[0]

    def const(self, value, dtype=None, hint: str = "const") -> str:
        """An initializer holding ``value``; its name."""
        from onnx import numpy_helper
        arr = np.asarray(value, dtype=dtype)
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(arr, name))
        return name

    def ints(self, values, hint: str = "const") -> str:
        return self.const(np.asarray(list(values), dtype=np.int64), hint=hint)

    def scalar(self, value, like: int = 0, hint: str = "scalar") -> str:
        """A 0-d constant in the dtype of input ``like`` (scalar operands)."""
        return self.const(np.asarray(value).astype(_np(self.in_dtype(like))), hint=hint)

    # opset-dependent forms ----------------------------------------------------------------
    def reduce(self, op_type: str, x: str, axes, keepdims: bool, out=None) -> str:
        """A Reduce* node: axes an input from opset 18 (ReduceSum: 13), else an attribute;
        ``axes=None`` reduces everything."""
        as_input = op_type == "ReduceSum" or self.opset >= 18
        keep = int(bool(keepdims))
        if axes is None:
            return self.emit(op_type, [x], out, keepdims=keep)
        axes = [int(a) for a in axes]
        if as_input:
            return self.emit(op_type, [x, self.ints(axes, "axes")], out, keepdims=keep)
        return self.emit(op_type, [x], out, keepdims=keep, axes=axes)

    def unsqueeze(self, x: str, axes, out=None) -> str:
        return self.emit("Unsqueeze", [x, self.ints(axes, "axes")], out)

    def squeeze(self, x: str, axes, out=None) -> str:
        return self.emit("Squeeze", [x, self.ints(axes, "axes")], out)

    def reshape(self, x: str, shape, out=None) -> str:
        return self.emit("Reshape", [x, self.ints(shape, "shape")], out)

    def cast(self, x: str, dtype, out=None) -> str:
        return self.emit("Cast", [x], out, to=tensor_type(dtype))


def _np(dtype_name: str):
    import hal
    return hal.to_dtype(dtype_name)


# inputs -----------------------------------------------------------------------------------------
def _load_symbol(sym):
    from mxcore import symbol as _sym
    if isinstance(sym, (str, os.PathLike)):
        return _sym.load(os.fspath(sym))
    if isinstance(sym, _sym.Symbol):
        return sym
    raise OnnxError(f"export_model: sym must be a Symbol or a -symbol.json path, got "
                    f"{type(sym).__name__}")


def _load_params(params) -> Dict[str, np.ndarray]:
    from mxcore import ndarray as nd
    if isinstance(params, (str, os.PathLike)):
        params = nd.load(os.fspath(params))
        if not isinstance(params, dict):
            raise OnnxError("export_model: the params file holds a list of arrays; a dict "
                            "of named parameters (arg:NAME / aux:NAME) is needed")
    elif isinstance(params, (list, tuple)) and len(params) == 2 and \
            all(isinstance(p, dict) for p in params):
        params = {**params[0], **params[1]}
    if not isinstance(params, dict):
        raise OnnxError(f"export_model: params must be a dict, an [arg_params, aux_params] "
                        f"pair or a .params path, got {type(params).__name__}")
    out = {}
    for key, value in params.items():
        name = key.split(":", 1)[1] if key.startswith(("arg:", "aux:")) else key
        out[name] = value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)
    return out


def _data_inputs(order: List[Node], params: Dict[str, Any]) -> Tuple[List[str], List[str]]:
    """(all non-parameter variables, those that are not only labels), in graph order."""
    label_only: Dict[str, bool] = {}
    for node in order:
        for k, (src, _) in enumerate(node.inputs):
            if src.is_variable:
                is_label = LABEL_INPUTS.get(node.op) == k
                label_only[src.name] = label_only.get(src.name, True) and is_label
    free = list(dict.fromkeys(n.name for n in order if n.is_variable and n.name not in params))
    return free, [n for n in free if not label_only.get(n, False)]


def _as_list(value, n: int) -> list:
    if isinstance(value, list):
        return value
    return [value] * n


# the conversion ---------------------------------------------------------------------------------
def build_model(sym, params, in_shapes, in_types=np.float32, opset_version=None,
                dynamic=False, dynamic_input_shapes=None, verbose=False):
    """The ONNX ModelProto of ``sym`` with ``params`` (what ``export_model`` writes)."""
    require_onnx()
    from onnx import helper
    from mxcore.onnx.export_ops import TABLE
    opset = check_opset(opset_version)
    sym, params = _load_symbol(sym), _load_params(params)
    heads = list(sym._outputs)
    order = topological(heads)
    free, data = _data_inputs(order, params)
    if in_shapes is None:
        raise OnnxError(f"export_model: in_shapes is required (one shape per input "
                        f"{data})")
    in_shapes = [tuple(int(d) for d in s) for s in in_shapes]
    names = free if len(in_shapes) == len(free) and len(free) != len(data) else data
    if len(in_shapes) != len(names):
        raise OnnxError(f"export_model: {len(in_shapes)} shape(s) given in in_shapes for "
                        f"the {len(names)} input(s) {names} of the graph (the variables "
                        "without a parameter)")
    in_types = _as_list(in_types, len(names))
    if len(in_types) != len(names):
        raise OnnxError("export_model: the lengths of in_types and in_shapes must be equal")
    import hal
    type_names = [hal.dtype_name(np.dtype(t)) if not isinstance(t, str) else t
                  for t in in_types]
    shapes = dict(zip(names, in_shapes))
    shapes.update({k: v.shape for k, v in params.items()})
    dtypes = dict(zip(names, type_names))
    dtypes.update({k: v.dtype.name for k, v in params.items()})
    try:
        out_shapes, out_dtypes = _infer.infer(heads, shapes, dtypes)
    except _infer.InferenceError as exc:
        raise OnnxError(f"export_model: shape inference failed: {exc}") from None

    em = Emitter(opset, out_shapes, out_dtypes)
    tensor: Dict[Tuple[int, int], str] = {}
    used_params = []
    for node in order:
        if node.is_variable:
            tensor[(id(node), 0)] = node.name
            em.reserve(node.name)
            if node.name in params:
                used_params.append(node.name)
    head_names = _head_names(heads)
    for node in order:
        if node.is_variable:
            continue
        rule = TABLE.get(node.op)
        if rule is None:
            raise OnnxError(f"export_model: operator {node.op!r} (node {node.name!r}) has no "
                            f"ONNX translation (opset {opset}); supported operators: "
                            "mx.onnx.get_operator_support()")
        outs = [head_names.get((id(node), i)) or _out_name(node, i) for i in range(node.nout)]
        for o in outs:
            em.reserve(o)
        em.node = node
        if verbose:
            log.info("export %s (%s)", node.name, node.op)
        try:
            rule(em, node.call_attrs(), [tensor[(id(s), i)] for s, i in node.inputs], outs)
        except OnnxError:
            raise
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise OnnxError(f"export_model: node {node.name!r} ({node.op}) with attributes "
                            f"{node.call_attrs()} cannot be translated at opset {opset}: "
                            f"{type(exc).__name__}: {exc}") from None
        em.node = None
        for i, o in enumerate(outs):
            tensor[(id(node), i)] = o

    consumed = {i for n in em.nodes for i in n.input}
    dyn = _dynamic_shapes(dynamic, dynamic_input_shapes, in_shapes)
    inputs = [helper.make_tensor_value_info(n, tensor_type(dtypes[n]), list(dyn[k]))
              for k, n in enumerate(names) if n in consumed or _is_head(n, heads)]
    outputs = []
    for (node, i) in heads:
        name = tensor[(id(node), i)]
        shape = out_shapes.get((id(node), i))
        shape = [None] * len(shape) if dynamic and shape is not None else shape
        outputs.append(helper.make_tensor_value_info(
            name, tensor_type(out_dtypes.get((id(node), i)) or "float32"), shape))
    from onnx import numpy_helper
    inits = [numpy_helper.from_array(np.ascontiguousarray(params[n]), n)
             for n in used_params if n in consumed] + em.initializers
    graph = helper.make_graph(em.nodes, "mxcore_graph", inputs, outputs, inits)
    model = helper.make_model(graph, producer_name="mxcore",
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, _max_ir(opset))
    return model


def _max_ir(opset: int) -> int:
    """The IR version that goes with an opset (runtimes refuse newer IRs)."""
    table = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10}
    return table.get(opset, 10)


def _is_head(name, heads) -> bool:
    return any(n.is_variable and n.name == name for n, _ in heads)


def _out_name(node: Node, i: int) -> str:
    return node.name if node.nout == 1 else f"{node.name}_output{i}"


def _head_names(heads) -> Dict[Tuple[int, int], str]:
    """Graph outputs keep MXNet's output names (``<node>_output``)."""
    names = {}
    for node, i in heads:
        if not node.is_variable:
            names[(id(node), i)] = f"{node.name}_output" if node.nout == 1 else \
                f"{node.name}_output{i}"
    return names


def _dynamic_shapes(dynamic, dynamic_input_shapes, in_shapes):
    if not dynamic:
        return in_shapes
    if dynamic_input_shapes is None:
        return [[None] * len(s) for s in in_shapes]
    if len(dynamic_input_shapes) != len(in_shapes):
        raise OnnxError("export_model: dynamic_input_shapes needs one shape per input")
    return [list(s) for s in dynamic_input_shapes]


def export_model(sym, params, in_shapes=None, in_types=np.float32,
                 onnx_file_path: str = "model.onnx", verbose: bool = False,
                 dynamic: bool = False, dynamic_input_shapes=None,
                 run_shape_inference: bool = False, input_type=None, input_shape=None,
                 opset_version: Optional[int] = None) -> str:
    """Write ``sym`` (a Symbol or -symbol.json path) with ``params`` (a dict, an
    ``[arg_params, aux_params]`` pair or a .params path) as an ONNX file; returns its
    path.  ``input_type``/``input_shape`` are MXNet's older names of ``in_types`` /
    ``in_shapes``."""
    onnx = require_onnx()
    if input_type is not None:
        in_types = input_type
    if input_shape is not None:
        in_shapes = input_shape
    model = build_model(sym, params, in_shapes, in_types, opset_version, dynamic,
                        dynamic_input_shapes, verbose)
    if run_shape_inference:
        try:
            model = onnx.shape_inference.infer_shapes(model)
        except Exception as exc:  # noqa: BLE001 - the model stays valid without it
            log.info("ONNX shape inference failed (%s); the model is written without it", exc)
    path = os.fspath(onnx_file_path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(model.SerializeToString())
    os.replace(tmp, path)
    if verbose:
        log.info("exported %s (opset %d, inputs %s)", path, model.opset_import[0].version,
                 in_shapes)
    return path
