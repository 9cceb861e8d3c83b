"""``mx.onnx.import_model``: an ONNX model as an mxcore Symbol and its parameters.

Nodes are translated in graph order by the rules of :data:`mxcore.onnx.import_ops.TABLE`
(ONNX op type -> function building ``mx.sym`` symbols).  Initializers and ``Constant``
nodes are kept as numpy constants: a rule that needs a value (Reshape's shape, Slice's
starts, Pad's pads) reads it, and one that uses it as a tensor turns it into a
parameter variable.  A node whose inputs are all constants is folded to a constant
(shape arithmetic of exported models: Shape -> Gather -> Concat -> Reshape), and
``Shape`` of a tensor whose shape is static is a constant, so such graphs import as
static mxcore graphs.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from mxcore.onnx._common import MAX_OPSET, OnnxError, np_dtype, require_onnx

#: ops never folded at import (random values, or no inputs to fold)
NO_FOLD = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike",
                     "RandomUniformLike", "Multinomial", "Bernoulli", "Dropout"})
#: folding runs the onnx reference evaluator: only on small constants
FOLD_LIMIT = 1 << 20


def load(model_file) -> Any:
    """The ModelProto in ``model_file``; a clear error for a missing, truncated or
    non-ONNX file."""
    onnx = require_onnx()
    path = os.fspath(model_file)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise OnnxError(f"{path}: cannot read the ONNX file ({exc.strerror})") from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(raw)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and its kin
        raise OnnxError(f"{path}: not an ONNX model (the protobuf cannot be decoded: "
                        f"{type(exc).__name__}: {exc}); the file may be truncated") from None
    if not raw or not model.HasField("graph") or (not model.graph.node and
                                                   not model.graph.output):
        raise OnnxError(f"{path}: not an ONNX model (no graph in the file; it may be "
                        "truncated or another format)")
    return model


def opset_of(model) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return MAX_OPSET


class Importer:
    """The symbols, constants and parameters of one graph under translation."""

    def __init__(self, graph, opset: int, source: str = "<model>"):
        from onnx import numpy_helper
        self.graph, self.opset, self.source = graph, opset, source
        self.consts: Dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.syms: Dict[str, Any] = {}
        self.params: Dict[str, np.ndarray] = {}
        self.inputs: List[str] = []
        self.input_shapes: Dict[str, Tuple[int, ...]] = {}
        self.input_dtypes: Dict[str, str] = {}
        self._shape_cache: Dict[str, Tuple[Tuple[int, ...], str]] = {}
        self._names: set = set()

    # graph inputs ----------------------------------------------------------------------------
    def add_inputs(self) -> None:
        from mxcore import symbol as sym
        for vi in self.graph.input:
            if vi.name in self.consts:
                continue  # an initializer listed as an input (IR < 4): a constant
            shape, dtype = _value_info(vi)
            self.inputs.append(vi.name)
            self._names.add(vi.name)
            if dtype is not None:
                self.input_dtypes[vi.name] = dtype
            if shape is not None and all(d > 0 for d in shape):
                self.input_shapes[vi.name] = shape
            self.syms[vi.name] = sym.var(vi.name, dtype=dtype)

    # values ---------------------------------------------------------------------------------
    def is_const(self, name: str) -> bool:
        return name in self.consts

    def tensor(self, name: str):
        """The symbol of tensor ``name``; a constant becomes a parameter variable."""
        s = self.syms.get(name)
        if s is not None:
            return s
        if name in self.consts:
            from mxcore import symbol as sym
            value = self.consts[name]
            var_name = self.unique(name)
            self.params[var_name] = value
            s = self.syms[name] = sym.var(var_name, shape=value.shape if value.size else None,
                                          dtype=value.dtype.name)
            return s
        raise OnnxError(f"{self.source}: tensor {name!r} is used before it is produced")

    def unique(self, name: str) -> str:
        base, k = name or "node", 0
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def shape_dtype(self, name: str) -> Tuple[Tuple[int, ...], str]:
        """The static shape and dtype of tensor ``name`` (mxcore's shape inference)."""
        if name in self.consts:
            v = self.consts[name]
            return tuple(v.shape), v.dtype.name
        hit = self._shape_cache.get(name)
        if hit is not None:
            return hit
        from mxcore.graph import infer as _infer
        s = self.tensor(name)
        shapes = dict(self.input_shapes)
        shapes.update({k: v.shape for k, v in self.params.items()})
        dtypes = dict(self.input_dtypes)
        dtypes.update({k: v.dtype.name for k, v in self.params.items()})
        try:
            out_s, out_d = _infer.infer(s._outputs, shapes, dtypes)
        except _infer.InferenceError as exc:
            raise OnnxError(f"{self.source}: tensor {name!r}: {exc}") from None
        node, i = s._outputs[0]
        shape = out_s.get((id(node), i))
        if shape is None:
            raise OnnxError(f"{self.source}: the shape of tensor {name!r} is not static "
                            "(the graph inputs have symbolic dimensions); this node needs "
                            "it")
        hit = self._shape_cache[name] = (tuple(shape), out_d.get((id(node), i)) or "float32")
        return hit

    # nodes ----------------------------------------------------------------------------------
    def run_node(self, node) -> None:
        from mxcore.onnx.import_ops import TABLE
        if node.domain not in ("", "ai.onnx"):
            raise OnnxError(f"{self.source}: node {node.name or node.output[0]!r}: operator "
                            f"{node.domain}.{node.op_type} (a custom domain) is not supported")
        if self._foldable(node):
            self._fold(node)
            return
        build = TABLE.get(node.op_type)
        if build is None:
            raise OnnxError(f"{self.source}: node {node.name or node.output[0]!r}: ONNX "
                            f"operator {node.op_type!r} (opset {self.opset}) is not "
                            "supported by mxcore's importer")
        ctx = NodeContext(self, node)
        try:
            result = build(ctx)
        except OnnxError:
            raise
        except Exception as exc:  # noqa: BLE001 - the op's own error, with the node named
            raise OnnxError(f"{self.source}: node {node.name or node.output[0]!r} "
                            f"({node.op_type}): {type(exc).__name__}: {exc}") from None
        outs = result if isinstance(result, (list, tuple)) else [result]
        for name, value in zip(node.output, outs):
            if not name:
                continue
            if isinstance(value, np.ndarray):
                self.consts[name] = value
            else:
                self.syms[name] = value

    def _foldable(self, node) -> bool:
        names = [n for n in node.input if n]
        return bool(names) and node.op_type not in NO_FOLD and \
            all(n in self.consts for n in names) and \
            sum(self.consts[n].size for n in names) <= FOLD_LIMIT and \
            not any(a.type in (5, 10) for a in node.attribute)  # no subgraphs

    def _fold(self, node) -> None:
        """Evaluate a node whose inputs are all constants (onnx's reference runtime)."""
        from onnx import helper
        from onnx.reference import ReferenceEvaluator
        names = [n for n in node.input if n]
        inputs = [helper.make_tensor_value_info(n, _elem(self.consts[n]), None)
                  for n in dict.fromkeys(names)]
        outputs = [helper.make_tensor_value_info(n, 0, None) for n in node.output if n]
        graph = helper.make_graph([node], "fold", inputs, outputs)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        try:
            values = ReferenceEvaluator(model).run(None, {n: self.consts[n] for n in names})
        except Exception as exc:  # noqa: BLE001
            raise OnnxError(f"{self.source}: node {node.name or node.output[0]!r} "
                            f"({node.op_type}) on constants: {exc}") from None
        for name, value in zip([n for n in node.output if n], values):
            self.consts[name] = np.asarray(value)

    def outputs(self):
        from mxcore import symbol as sym
        heads = []
        for vi in self.graph.output:
            if vi.name in self.syms or vi.name not in self.consts:
                heads.append(self.tensor(vi.name))
            else:  # a constant output: a parameter passed through
                heads.append(sym.identity(self.tensor(vi.name)))
        return heads[0] if len(heads) == 1 else sym.Group(heads)


def _elem(value: np.ndarray) -> int:
    from onnx import helper
    return helper.np_dtype_to_tensor_dtype(value.dtype)


def _value_info(vi) -> Tuple[Optional[Tuple[int, ...]], Optional[str]]:
    t = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        return None, None
    dtype = np_dtype(t.elem_type).name if t.elem_type else None
    if not t.HasField("shape"):
        return None, dtype
    dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)
    return dims, dtype


class NodeContext:
    """What an import rule sees of its node: inputs, constants, attributes, shapes."""

    def __init__(self, imp: Importer, node):
        from onnx import helper
        self.imp, self.node = imp, node
        self.opset = imp.opset
        self.attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        self.name = imp.unique(node.name or node.output[0])

    @property
    def n(self) -> int:
        return len(self.node.input)

    def has(self, i: int) -> bool:
        return i < len(self.node.input) and bool(self.node.input[i])

    def x(self, i: int):
        """Input ``i`` as a symbol."""
        return self.imp.tensor(self.node.input[i])

    def xs(self) -> List[Any]:
        return [self.x(i) for i in range(self.n) if self.has(i)]

    def const(self, i: int, default=None) -> Optional[np.ndarray]:
        """Input ``i`` as a constant (initializer, Constant or folded); None if absent."""
        if not self.has(i):
            return default
        name = self.node.input[i]
        if name not in self.imp.consts:
            raise OnnxError(f"{self.imp.source}: node {self.name!r} ({self.node.op_type}): "
                            f"input {i} ({name!r}) must be a constant (an initializer or "
                            "a Constant node) for mxcore's importer")
        return self.imp.consts[name]

    def is_const(self, i: int) -> bool:
        return self.has(i) and self.imp.is_const(self.node.input[i])

    def ints(self, i: int, attr: Optional[str] = None, default=None) -> Optional[List[int]]:
        """A list of ints given as input ``i`` (newer opsets) or attribute ``attr``."""
        if self.has(i):
            return [int(v) for v in np.asarray(self.const(i)).reshape(-1)]
        if attr is not None and attr in self.attrs:
            return [int(v) for v in self.attrs[attr]]
        return default

    def attr(self, key: str, default=None):
        v = self.attrs.get(key, default)
        return v.decode() if isinstance(v, bytes) else v

    def shape(self, i: int = 0) -> Tuple[int, ...]:
        return self.imp.shape_dtype(self.node.input[i])[0]

    def dtype(self, i: int = 0) -> str:
        return self.imp.shape_dtype(self.node.input[i])[1]

    def in_dtype(self, i: int = 0) -> Optional[str]:
        """The dtype when cheaply known (constants, graph inputs), else by inference."""
        name = self.node.input[i]
        if name in self.imp.consts:
            return self.imp.consts[name].dtype.name
        if name in self.imp.input_dtypes:
            return self.imp.input_dtypes[name]
        return self.dtype(i)

    def fail(self, what: str) -> OnnxError:
        return OnnxError(f"{self.imp.source}: node {self.name!r} ({self.node.op_type}, opset "
                         f"{self.opset}): {what} is not supported by mxcore's importer")


def translate(model, source: str = "<model>"):
    """``(sym, arg_params, aux_params, input names)`` of a ModelProto."""
    from mxcore import ndarray as nd
    opset = opset_of(model)
    imp = Importer(model.graph, opset, source)
    imp.add_inputs()
    for node in model.graph.node:
        imp.run_node(node)
    out = imp.outputs()
    aux_names = set(out.list_auxiliary_states())
    used = set(out.list_inputs())
    arg_params, aux_params = {}, {}
    for name, value in imp.params.items():
        if name in used:
            target = aux_params if name in aux_names else arg_params
            target[name] = nd.array(value, dtype=value.dtype)
    inputs = [n for n in imp.inputs if n in used]
    return out, arg_params, aux_params, inputs


def import_model(model_file):
    """``(sym, arg_params, aux_params)`` of the ONNX file ``model_file``."""
    path = os.fspath(model_file)
    sym, arg_params, aux_params, _ = translate(load(path), path)
    return sym, arg_params, aux_params


def import_to_gluon(model_file, ctx=None):
    """A ``gluon.SymbolBlock`` of the model with its parameters set (on ``ctx``)."""
    from mxcore import symbol as sym
    from mxcore.gluon.symbol_block import SymbolBlock
    path = os.fspath(model_file)
    out, arg_params, aux_params, inputs = translate(load(path), path)
    block = SymbolBlock(out, [sym.var(n) for n in inputs])
    values = {**arg_params, **aux_params}
    ctx = ctx if ctx is not None else _default_ctx()
    for name, param in block._var_params.items():
        value = values.get(name)
        if value is None:
            raise OnnxError(f"{path}: no value for parameter {name!r}")
        param.shape = tuple(value.shape)
        param.initialize(ctx=ctx)
        param.set_data(value)
    return block


def _default_ctx():
    from mxcore.device import default_device
    return default_device()


def get_model_metadata(model_file) -> Dict[str, List[Tuple[str, Tuple]]]:
    path = os.fspath(model_file)
    model = load(path)
    inits = {t.name for t in model.graph.initializer}

    def rows(values):
        out = []
        for vi in values:
            if vi.name in inits:
                continue
            shape, _ = _value_info(vi)
            out.append((vi.name, tuple(shape) if shape is not None else None))
        return out
    return {"input_tensor_data": rows(model.graph.input),
            "output_tensor_data": rows(model.graph.output)}


def run(sym, arg_params, aux_params, inputs: Dict[str, Any], ctx=None) -> List[Any]:
    """Run an imported symbol once on ``inputs`` (name -> array); the outputs as
    NDArrays."""
    from mxcore import ndarray as nd
    ctx = ctx if ctx is not None else _default_ctx()
    args = {k: v.as_in_context(ctx) if hasattr(v, "as_in_context") else v
            for k, v in arg_params.items()}
    for k, v in inputs.items():
        args[k] = v if hasattr(v, "asnumpy") else nd.array(np.asarray(v), ctx=ctx,
                                                          dtype=np.asarray(v).dtype)
    names = sym.list_arguments()
    aux = {k: aux_params[k] if k in aux_params else args[k]
           for k in sym.list_auxiliary_states()}
    exe = sym.bind(ctx, {n: args[n] for n in names}, grad_req="null", aux_states=aux)
    return exe.forward(is_train=False)
